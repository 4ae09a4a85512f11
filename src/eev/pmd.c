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
 * that reset context anyway, set up for the last parameters used. */
struct eev_deflate_shared {
    z_stream def;
    int ready, bits, level, mem;
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

static void inf_free(struct pmd *z)
{
    if (z->inf) {
        inflateEnd(z->inf);
        free(z->inf);
        z->inf = NULL;
    }
}

void pmd_free(struct pmd *z)
{
    if (!z)
        return;
    inf_free(z);
    if (z->def) {
        deflateEnd(z->def);
        free(z->def);
    }
    free(z->zmsg);
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

int pmd_inflate(struct pmd *z, const uint8_t **in, size_t *in_len, int fin, uint8_t *out,
                size_t cap, size_t *produced, const char **why)
{
    *produced = 0;
    if (z->flags & PMD_ZEND) { /* after a BFINAL block nothing more counts */
        *in += *in_len;
        *in_len = 0;
        return 0;
    }
    if (!z->inf) {
        z_stream *s = calloc(1, sizeof(*s));
        if (!s)
            return *why = NULL, -2;
        s->zalloc = zalloc;
        s->zfree = zfree;
        if (inflateInit2(s, -in_bits(z)) != Z_OK) {
            free(s);
            return *why = NULL, -2;
        }
        z->inf = s;
    }
    z_stream *s = z->inf;
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
    /* A stream that ended (BFINAL) cannot go on: the next message starts
     * afresh, and the echo can no longer mirror the client's stream. */
    if (z->inf && (in_nct(z) || (z->flags & PMD_ZEND))) {
        if (in_nct(z))
            inf_free(z);
        else
            inflateReset(z->inf);
    }
    if ((z->flags & PMD_ZEND) && !z->p.c_nct)
        z->flags &= (uint8_t)~PMD_SYNC;
    z->flags &= (uint8_t)~(PMD_MSG_PASS | PMD_ECHOED | PMD_ZEND);
    free(z->zmsg);
    z->zmsg = NULL;
    z->zsrc = NULL;
    z->zlen = z->zcap = z->zwire = 0;
    z->tail_used = 0;
}

void pmd_sent_foreign(struct pmd *z)
{
    if (z->def)
        deflateReset(z->def);
    if (!z->p.c_nct)
        z->flags &= (uint8_t)~PMD_SYNC;
}

static size_t keep_cap(const struct pmd *z, size_t n)
{
    size_t cap = z->zcap ? (size_t)z->zcap * 2 : 1024;
    while (cap < z->zlen + n)
        cap *= 2;
    return cap > UINT32_MAX ? UINT32_MAX : cap;
}

size_t pmd_keep_grow(const struct pmd *z, size_t n)
{
    return z->zlen + n > z->zcap ? keep_cap(z, n) - z->zcap : 0;
}

size_t pmd_mem(const struct pmd *z)
{
    return z->zcap;
}

int pmd_keep(struct pmd *z, const uint8_t *p, size_t n)
{
    if (z->zlen + n > z->zcap) {
        size_t cap = keep_cap(z, n);
        uint8_t *b = realloc(z->zmsg, cap);
        if (!b)
            return EEV_ERR_NOMEM;
        z->zmsg = b;
        z->zcap = (uint32_t)cap;
    }
    memcpy(z->zmsg + z->zlen, p, n);
    z->zlen += (uint32_t)n;
    return 0;
}

eev_deflate_shared *eev_deflate_shared_new(void)
{
    return calloc(1, sizeof(eev_deflate_shared));
}

void eev_deflate_shared_free(eev_deflate_shared *sh)
{
    if (sh && sh->ready)
        deflateEnd(&sh->def);
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
    int nct = (client ? z->p.c_nct : z->p.s_nct) || (z->flags & PMD_PASS);

    if (pref >= 9 && pref < bits)
        bits = pref;
    *is_tmp = 0;
    if (!nct) {
        if (!z->def) {
            z_stream *s = malloc(sizeof(*s));
            if (!s || def_init(s, level, bits, mem) < 0) {
                free(s);
                return NULL;
            }
            z->def = s;
        }
        return z->def;
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
