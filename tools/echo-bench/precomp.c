/*
 * precomp.c - --precompressed: a few payloads compressed once and sent as
 * they are, every time (eev_driver_send_compressed(): a fresh mask per
 * frame, no zlib per message), so that the server and not the load
 * generator's compressor sets the pace of a permessage-deflate run — as
 * uWebSockets' load generator does with its one pre-compressed message.
 *
 * We offer client_no_context_takeover (our messages stand alone, so the
 * same bytes are valid every time) and server_no_context_takeover (so do
 * the server's, and each echo can be checked on its own). An echo that
 * comes back byte for byte as sent (a server that passes compressed bytes
 * through) is checked with one memcmp(), without inflating; one the server
 * compressed again, or sent uncompressed, is inflated (bounded by the
 * payload size) and compared with the payload.
 *
 * Message seq of connection id carries payload (id + seq) mod PRE_COUNT:
 * consecutive messages differ, so reordering still shows.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "bench.h"

#define PRE_COUNT 16

/* The compressed payloads for one client window size (the server may
 * ask for a smaller window than 15: client_max_window_bits). */
struct preset {
    uint8_t *z[PRE_COUNT];
    size_t zlen[PRE_COUNT];
};

static struct preset sets[16]; /* by window bits, filled on first use */
static z_stream inf;           /* checks echoes that were compressed again */
static int inf_ready;
static uint8_t *inf_out; /* g.size + 1 bytes: one more means too long */

static const uint8_t *plain(uint32_t idx)
{
    return payload_of(&g.pool, 0, idx);
}

static uint32_t pre_index(const conn *c, uint64_t seq)
{
    return (uint32_t)((c->id + seq) % PRE_COUNT);
}

/* Compresses the payloads as a fresh compressor with this window would
 * (level 6, zlib's default), sync-flushed, the 00 00 ff ff tail removed. */
static int prepare(int bits)
{
    struct preset *s = &sets[bits];
    z_stream zs;

    if (s->z[0])
        return 0;
    for (uint32_t i = 0; i < PRE_COUNT; i++) {
        memset(&zs, 0, sizeof(zs));
        if (deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -bits, 8, Z_DEFAULT_STRATEGY) != Z_OK)
            return -1;
        size_t cap = deflateBound(&zs, (uLong)g.size) + 16;
        uint8_t *out = malloc(cap);
        if (!out) {
            deflateEnd(&zs);
            return -1;
        }
        zs.next_in = (Bytef *)plain(i);
        zs.avail_in = (uInt)g.size;
        zs.next_out = out;
        zs.avail_out = (uInt)cap;
        int rv = deflate(&zs, Z_SYNC_FLUSH);
        size_t n = cap - zs.avail_out;
        deflateEnd(&zs);
        if (rv != Z_OK || zs.avail_in || n < 4 || memcmp(out + n - 4, "\0\0\xff\xff", 4) != 0) {
            free(out);
            return -1;
        }
        s->z[i] = out;
        s->zlen[i] = n - 4;
    }
    return 0;
}

int precomp_open(conn *c)
{
    eev_deflate_params p;

    if (!eev_driver_deflate(c->drv, &p))
        return -1; /* (reported as a declined extension) */
    /* zlib cannot compress for an 8-bit window (it uses 9). */
    if (p.client_max_window_bits < 9 || !p.client_no_context_takeover) {
        fprintf(stderr, "echo-bench: the server's parameters rule out --precompressed (client window %d bits%s)\n",
                p.client_max_window_bits, p.client_no_context_takeover ? "" : ", context kept");
        return -1;
    }
    if (prepare(p.client_max_window_bits) < 0) {
        fprintf(stderr, "echo-bench: --precompressed: cannot compress the payloads\n");
        return -1;
    }
    c->zbits = (uint8_t)p.client_max_window_bits;
    return 0;
}

int precomp_send(conn *c, uint64_t seq)
{
    const struct preset *s = &sets[c->zbits];
    uint32_t i = pre_index(c, seq);

    return eev_driver_send_compressed(c->drv, g.text ? EEV_OP_TEXT : EEV_OP_BINARY, s->z[i], s->zlen[i]);
}

/* Inflates p[0..len) as a message that stands alone; 1 when it gives
 * exactly want[0..g.size). */
static int inflate_equals(const uint8_t *p, size_t len, const uint8_t *want)
{
    static const uint8_t tail[4] = {0x00, 0x00, 0xff, 0xff};

    if (!inf_ready) {
        if (inflateInit2(&inf, -15) != Z_OK || !(inf_out = malloc(g.size + 1)))
            return 0;
        inf_ready = 1;
    } else if (inflateReset(&inf) != Z_OK) {
        return 0;
    }
    inf.next_out = inf_out;
    inf.avail_out = (uInt)g.size + 1;
    for (int part = 0; part < 2; part++) {
        inf.next_in = (Bytef *)(part ? tail : p);
        inf.avail_in = (uInt)(part ? 4 : len);
        int rv = inflate(&inf, Z_SYNC_FLUSH);
        if (rv == Z_STREAM_END)
            break;
        if ((rv != Z_OK && rv != Z_BUF_ERROR) || inf.avail_out == 0)
            return 0;
    }
    return g.size + 1 - inf.avail_out == g.size && memcmp(inf_out, want, g.size) == 0;
}

/* 1: a good echo; 2: one that came back compressed byte for byte. */
int precomp_echo_ok(const conn *c, const eev_message_arg *m, uint64_t seq)
{
    uint32_t i = pre_index(c, seq);
    const struct preset *s = &sets[c->zbits];

    if ((m->opcode == EEV_OP_TEXT) != g.text)
        return 0;
    if (!m->rsv1)
        return m->len == g.size && memcmp(m->data, plain(i), g.size) == 0;
    if (m->len == s->zlen[i] && memcmp(m->data, s->z[i], m->len) == 0)
        return 2;
    return inflate_equals(m->data, m->len, plain(i));
}

void precomp_free(void)
{
    for (size_t b = 0; b < sizeof(sets) / sizeof(sets[0]); b++)
        for (uint32_t i = 0; i < PRE_COUNT; i++)
            free(sets[b].z[i]);
    if (inf_ready)
        inflateEnd(&inf);
    free(inf_out);
}
