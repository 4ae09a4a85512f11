/*
 * pmd.c - permessage-deflate's zlib streams (RFC 7692 §7.2): raw DEFLATE,
 * the 00 00 ff ff tail removed by the sender and appended by the receiver,
 * context reset per message where "no context takeover" was agreed.
 *
 * zlib allocates through zalloc() below (malloc, so the driver's
 * allocation-failure tests reach it too).
 */
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "pmd.h"

/* Streams shared by the drivers of one thread: a compressor for messages
 * that reset context anyway, set up for the last parameters used, and the
 * state of one compressed message being received by a connection that
 * keeps no context, with an inflate stream per window size. */
struct eev_deflate_shared {
    z_stream def;
    int ready, bits, level, mem;
    struct pmd_msg msg;
    unsigned inf_ready; /* bit b: inf[b - 8] is set up */
    z_stream inf[8];    /* window bits 8 (as 9) to 15 */
};

static void *zalloc(void *op, unsigned n, unsigned size)
{
    (void)op;
    return malloc((size_t)n * size);
}

static void zfree(void *op, void *p)
{
    (void)op;
    free(p);
}

static const uint8_t tail[4] = {0x00, 0x00, 0xff, 0xff};

struct pmd *pmd_new(const struct pmd_params *p, unsigned role)
{
    struct pmd *z = calloc(1, sizeof(*z));

    if (!z)
        return NULL;
    z->p = *p;
    if (role & PMD_CLIENT)
        z->flags |= (uint8_t)(role & (PMD_CLIENT | PMD_RAW));
    /* The echo may pass compressed bytes through when the client's
     * window fits ours and either its messages are self-contained or both
     * sides keep context (then only while every message is echoed). zlib
     * cannot compress with an 8-bit window, so 8 means "never compress". */
    else if (p->c_bits <= p->s_bits && p->s_bits >= 9 && (p->c_nct || !p->s_nct))
        z->flags |= PMD_PASS | PMD_SYNC;
    return z;
}

static void inf_free(struct pmd_msg *m)
{
    if (m->inf) {
        inflateEnd(m->inf);
        free(m->inf);
        m->inf = NULL;
    }
}

void pmd_free(struct pmd *z)
{
    if (!z)
        return;
    pmd_msg_end(z); /* gives back the shared state */
    if (z->m) {
        inf_free(z->m);
        if (z->m->def) {
            deflateEnd(z->m->def);
            free(z->m->def);
        }
        free(z->m);
    }
    free(z);
}

static int in_nct(const struct pmd *z)
{
    return z->flags & PMD_CLIENT ? z->p.s_nct : z->p.c_nct;
}

static int in_bits(const struct pmd *z)
{
    int b = z->flags & PMD_CLIENT ? z->p.s_bits : z->p.c_bits;
    /* zlib's compressor cannot do 8 bits and silently uses 9: accept
     * that from peers that asked for 8. */
    return b < 9 ? 9 : b;
}

/* Our compressor starts afresh for every message (the peer's inflater
 * may keep context: with passthrough our messages interleave with the
 * client's, so each must stand alone). */
static int out_nct(const struct pmd *z)
{
    return z->flags & PMD_CLIENT ? z->p.c_nct : z->p.s_nct || (z->flags & PMD_PASS);
}

int pmd_msg_open(struct pmd *z, eev_deflate_shared *sh)
{
    if (z->m)
        return 0;
    /* Nothing to keep between messages: the shared state serves, unless
     * another driver holds it (an owner feeding a driver from inside
     * another's callback). */
    if (sh && !sh->msg.busy && in_nct(z) && out_nct(z)) {
        sh->msg.busy = 1;
        z->m = &sh->msg;
        z->flags |= PMD_SHARED;
        return 0;
    }
    return (z->m = calloc(1, sizeof(*z->m))) ? 0 : EEV_ERR_NOMEM;
}

/* Sets up a raw inflate stream with our allocator. Returns 0 or -1. */
static int inf_init(z_stream *s, int bits)
{
    memset(s, 0, sizeof(*s));
    s->zalloc = zalloc;
    s->zfree = zfree;
    return inflateInit2(s, -bits) == Z_OK ? 0 : -1;
}

static z_stream *inf_new(int bits)
{
    z_stream *s = malloc(sizeof(*s));
    if (s && inf_init(s, bits) != 0) {
        free(s);
        return NULL;
    }
    return s;
}

/* The shared inflate stream for this window size, set up on first use. */
static z_stream *inf_shared(eev_deflate_shared *sh, int bits)
{
    z_stream *s = &sh->inf[bits - 8];
    if (!(sh->inf_ready & 1u << bits)) {
        if (inf_init(s, bits) != 0)
            return NULL;
        sh->inf_ready |= 1u << bits;
    }
    return s;
}

/* Forgets the compressed bytes kept for the echo of the message. */
static void msg_drop_kept(struct pmd_msg *m)
{
    free(m->zmsg);
    m->zmsg = NULL;
    m->zsrc = NULL;
    m->zlen = m->zcap = 0;
}

/* Gives the shared state back, ready for the next message. */
static void msg_release(struct pmd *z)
{
    struct pmd_msg *m = z->m;

    msg_drop_kept(m);
    if (m->inf)
        inflateReset(m->inf); /* keeps its window: no allocation next time */
    m->inf = NULL;
    m->busy = 0;
    z->m = NULL;
    z->flags &= (uint8_t)~PMD_SHARED;
}

int pmd_msg_hold(struct pmd *z)
{
    struct pmd_msg *sm = z->m, *m;

    if (!(z->flags & PMD_SHARED))
        return 0;
    if ((m = calloc(1, sizeof(*m))) != NULL && sm->inf) {
        /* (inflateCopy() uses the source's allocator: ours) */
        if ((m->inf = malloc(sizeof(*m->inf))) == NULL || inflateCopy(m->inf, sm->inf) != Z_OK) {
            free(m->inf);
            free(m);
            m = NULL;
        }
    }
    if (m) { /* the kept bytes move with it */
        m->zmsg = sm->zmsg;
        m->zlen = sm->zlen;
        m->zcap = sm->zcap;
        sm->zmsg = NULL;
        sm->zlen = sm->zcap = 0;
    }
    msg_release(z);
    z->m = m;
    return m ? 0 : EEV_ERR_NOMEM;
}

int pmd_inflate(struct pmd *z, eev_deflate_shared *sh, const uint8_t **in, size_t *in_len, int fin,
                uint8_t *out, size_t cap, size_t *produced, const char **why)
{
    struct pmd_msg *m = z->m;

    *produced = 0;
    if (z->flags & PMD_ZEND) { /* after a BFINAL block nothing more counts */
        *in += *in_len;
        *in_len = 0;
        return 0;
    }
    if (!m->inf && !(m->inf = z->flags & PMD_SHARED ? inf_shared(sh, in_bits(z)) : inf_new(in_bits(z))))
        return *why = NULL, -2;
    z_stream *s = m->inf;
    /* The tail goes in once the payload is used up (zlib keeps no pointer
     * to our input between calls, so a partly used tail is remembered). */
    int tail_now = fin && *in_len == 0;
    s->next_in = (Bytef *)(tail_now ? tail + z->tail_used : *in);
    s->avail_in = tail_now ? 4u - z->tail_used : (uInt)*in_len;
    s->next_out = out;
    s->avail_out = (uInt)cap;
    int rv = inflate(s, Z_SYNC_FLUSH);
    *produced = cap - s->avail_out;
    if (tail_now) {
        z->tail_used = (uint8_t)(4 - s->avail_in);
    } else {
        *in += *in_len - s->avail_in;
        *in_len = s->avail_in;
    }
    if (rv == Z_STREAM_END) {
        z->flags |= PMD_ZEND;
        *in += *in_len;
        *in_len = 0;
        return 0;
    }
    if (rv == Z_MEM_ERROR)
        return *why = NULL, -2;
    if (rv != Z_OK && rv != Z_BUF_ERROR)
        return *why = "invalid compressed data", -1;
    if (s->avail_out == 0 || *in_len || (fin && (!tail_now || z->tail_used < 4)))
        return 1; /* more output may be pending, or more input to feed */
    return 0;
}

void pmd_msg_end(struct pmd *z)
{
    struct pmd_msg *m = z->m;

    if (z->flags & PMD_SHARED) {
        msg_release(z);
    } else if (m) {
        /* A stream that ended (BFINAL) cannot go on: the next message
         * starts afresh, and the echo can no longer mirror the client's
         * stream. */
        if (m->inf && in_nct(z))
            inf_free(m);
        else if (m->inf && (z->flags & PMD_ZEND))
            inflateReset(m->inf);
        msg_drop_kept(m);
        if (!m->inf && !m->def) { /* nothing kept between messages */
            free(m);
            z->m = NULL;
        }
    }
    if ((z->flags & PMD_ZEND) && !z->p.c_nct)
        z->flags &= (uint8_t)~PMD_SYNC;
    z->flags &= (uint8_t)~(PMD_MSG_PASS | PMD_ECHOED | PMD_ZEND);
    z->zwire = 0;
    z->tail_used = 0;
}

void pmd_sent_foreign(struct pmd *z)
{
    if (z->m && z->m->def)
        deflateReset(z->m->def);
    if (!z->p.c_nct)
        z->flags &= (uint8_t)~PMD_SYNC;
}

static size_t keep_cap(const struct pmd_msg *m, size_t n)
{
    size_t cap = m->zcap ? (size_t)m->zcap * 2 : 1024;
    while (cap < m->zlen + n)
        cap *= 2;
    return cap > UINT32_MAX ? UINT32_MAX : cap;
}

size_t pmd_keep_grow(const struct pmd *z, size_t n)
{
    const struct pmd_msg *m = z->m;
    return m->zlen + n > m->zcap ? keep_cap(m, n) - m->zcap : 0;
}

size_t pmd_mem(const struct pmd *z)
{
    return z->m ? z->m->zcap : 0;
}

int pmd_keep(struct pmd *z, const uint8_t *p, size_t n)
{
    struct pmd_msg *m = z->m;

    if (m->zlen + n > m->zcap) {
        size_t cap = keep_cap(m, n);
        uint8_t *b = realloc(m->zmsg, cap);
        if (!b)
            return EEV_ERR_NOMEM;
        m->zmsg = b;
        m->zcap = (uint32_t)cap;
    }
    memcpy(m->zmsg + m->zlen, p, n);
    m->zlen += (uint32_t)n;
    return 0;
}

eev_deflate_shared *eev_deflate_shared_new(void)
{
    return calloc(1, sizeof(eev_deflate_shared));
}

void eev_deflate_shared_free(eev_deflate_shared *sh)
{
    if (!sh)
        return;
    if (sh->ready)
        deflateEnd(&sh->def);
    for (int b = 8; b <= 15; b++)
        if (sh->inf_ready & 1u << b)
            inflateEnd(&sh->inf[b - 8]);
    free(sh);
}

static int def_init(z_stream *s, int level, int bits, int mem)
{
    memset(s, 0, sizeof(*s));
    s->zalloc = zalloc;
    s->zfree = zfree;
    return deflateInit2(s, level, Z_DEFLATED, -bits, mem, Z_DEFAULT_STRATEGY) == Z_OK ? 0 : -1;
}

/* The compressor for one message: our own (context kept) or the shared
 * one, reset; *tmp when a temporary one had to be made. */
static z_stream *def_get(struct pmd *z, const eev_deflate_options *o, z_stream *tmp, int *is_tmp)
{
    int level = o->level >= 1 && o->level <= 9 ? o->level : 6;
    int mem = o->mem_level >= 1 && o->mem_level <= 9 ? o->mem_level : 8;
    int client = z->flags & PMD_CLIENT;
    int bits = client ? z->p.c_bits : z->p.s_bits;
    int pref = client ? 15 : o->server_max_window_bits;
    /* With passthrough allowed, our messages interleave with the client's
     * on the peer's inflater: each must stand alone. */
    int nct = out_nct(z);

    if (pref >= 9 && pref < bits)
        bits = pref;
    *is_tmp = 0;
    if (!nct) { /* (then z->m is never the shared one: see pmd_msg_open) */
        if (!z->m && !(z->m = calloc(1, sizeof(*z->m))))
            return NULL;
        if (!z->m->def) {
            z_stream *s = malloc(sizeof(*s));
            if (!s || def_init(s, level, bits, mem) < 0) {
                free(s);
                return NULL;
            }
            z->m->def = s;
        }
        return z->m->def;
    }
    eev_deflate_shared *sh = o->shared;
    if (sh) {
        if (sh->ready && (sh->bits != bits || sh->level != level || sh->mem != mem)) {
            deflateEnd(&sh->def);
            sh->ready = 0;
        }
        if (!sh->ready) {
            if (def_init(&sh->def, level, bits, mem) < 0)
                return NULL;
            sh->ready = 1;
            sh->bits = bits;
            sh->level = level;
            sh->mem = mem;
        } else if (deflateReset(&sh->def) != Z_OK) {
            return NULL;
        }
        return &sh->def;
    }
    if (def_init(tmp, level, bits, mem) < 0)
        return NULL;
    *is_tmp = 1;
    return tmp;
}

int pmd_deflate(struct pmd *z, const eev_deflate_options *o, const uint8_t *p, size_t len,
                uint8_t **out, size_t *out_len)
{
    z_stream tmp, *s;
    int is_tmp, rv = 0;

    if ((s = def_get(z, o, &tmp, &is_tmp)) == NULL)
        return EEV_ERR_NOMEM;
    /* deflateBound() covers Z_FINISH; a sync flush adds an empty stored
     * block (5 bytes) and possibly a partial one. */
    size_t cap = deflateBound(s, (uLong)len) + 16, have = 0;
    uint8_t *buf = malloc(cap);
    if (!buf) {
        rv = EEV_ERR_NOMEM;
        goto out;
    }
    s->next_in = (Bytef *)p;
    s->avail_in = (uInt)len;
    for (;;) {
        s->next_out = buf + have;
        s->avail_out = (uInt)(cap - have);
        int zr = deflate(s, Z_SYNC_FLUSH);
        have = cap - s->avail_out;
        if (zr != Z_OK && zr != Z_BUF_ERROR) {
            rv = EEV_ERR_NOMEM;
            break;
        }
        if (s->avail_out > 0 && s->avail_in == 0)
            break;
        uint8_t *b = realloc(buf, cap * 2);
        if (!b) {
            rv = EEV_ERR_NOMEM;
            break;
        }
        buf = b;
        cap *= 2;
    }
    if (rv == 0) {
        if (have >= 4 && memcmp(buf + have - 4, tail, 4) == 0)
            have -= 4;
        /* A flush with nothing new since the last one writes nothing, and
         * an empty payload would leave the peer's inflater mid-block:
         * send the empty stored block's first byte (§7.2.3.6). */
        if (have == 0)
            buf[have++] = 0x00;
        *out = buf;
        *out_len = have;
    } else {
        free(buf);
    }
out:
    if (is_tmp)
        deflateEnd(s);
    return rv;
}
