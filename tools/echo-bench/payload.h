/*
 * payload.h - deterministic message payloads.
 *
 * At start a pool of size + PAYLOAD_WINDOW pseudo-random bytes is filled
 * from a splitmix64 stream (run seed). The payload of message seq on
 * connection id is the size-byte view of the pool at
 *
 *     off(id, seq) = (mix(run ^ id) + seq * PAYLOAD_STRIDE) mod PAYLOAD_WINDOW
 *
 * so sending costs no generation (the driver copies straight from the pool)
 * and checking an echo is one memcmp(). Consecutive seqs of a connection
 * never share an offset (the stride is odd, so seqs repeat only 2^20 apart),
 * which keeps reordering distinguishable from corruption; two different
 * connections coincide with probability 2^-20.
 *
 * Text payloads map every byte into 0x30..0x6f (printable ASCII, hence
 * valid UTF-8) with one add per word: (b & 0x3f) + 0x30 cannot carry.
 */
#ifndef ECHO_BENCH_PAYLOAD_H
#define ECHO_BENCH_PAYLOAD_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define PAYLOAD_WINDOW (1u << 20)
#define PAYLOAD_STRIDE 40503u /* odd */
#define PAYLOAD_GOLDEN 0x9e3779b97f4a7c15ull
#define PAYLOAD_TEXT_MASK 0x3f3f3f3f3f3f3f3full
#define PAYLOAD_TEXT_BASE 0x3030303030303030ull

static inline uint64_t payload_mix(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

typedef struct payload_pool {
    uint8_t *base; /* size + PAYLOAD_WINDOW bytes */
    size_t size;   /* message size */
    uint64_t run;  /* run seed */
} payload_pool;

/* Words for compressible payloads (--compressible): picked at random, so
 * the pool has no short period, and deflate takes them ~3:1. */
static const char *const payload_words[16] = {
    "echo ", "server ", "message ", "frame ", "deflate ", "window ", "context ", "socket ",
    "payload ", "latency ", "buffer ", "stream ", "client ", "header ", "mask ", "close ",
};

/* Allocates and fills the pool. Returns 0 or -1 (out of memory). */
static inline int payload_pool_init(payload_pool *pp, size_t size, uint64_t run, int text, int words)
{
    size_t len = size + PAYLOAD_WINDOW;
    pp->base = malloc(len + 8);
    if (!pp->base)
        return -1;
    pp->size = size;
    pp->run = run;
    uint64_t s = run;
    if (words) { /* printable ASCII: valid as text too */
        for (size_t i = 0; i < len + 8;) {
            uint64_t w = payload_mix(s += PAYLOAD_GOLDEN);
            for (int k = 0; k < 16 && i < len + 8; k++, w >>= 4)
                for (const char *p = payload_words[w & 15]; *p && i < len + 8; p++)
                    pp->base[i++] = (uint8_t)*p;
        }
        return 0;
    }
    for (size_t i = 0; i < len; i += 8) {
        uint64_t w = payload_mix(s += PAYLOAD_GOLDEN);
        if (text)
            w = (w & PAYLOAD_TEXT_MASK) + PAYLOAD_TEXT_BASE;
        memcpy(pp->base + i, &w, 8);
    }
    return 0;
}

/* The payload of (id, seq): pp->size bytes, borrowed from the pool. */
static inline const uint8_t *payload_of(const payload_pool *pp, uint32_t id, uint64_t seq)
{
    uint64_t off = payload_mix(pp->run ^ id) + seq * PAYLOAD_STRIDE;
    return pp->base + (off & (PAYLOAD_WINDOW - 1));
}

/* Returns 1 when p[0..len) is exactly the payload of (id, seq). */
static inline int payload_check(const payload_pool *pp, const uint8_t *p, size_t len, uint32_t id, uint64_t seq)
{
    return len == pp->size && memcmp(p, payload_of(pp, id, seq), len) == 0;
}

#endif /* ECHO_BENCH_PAYLOAD_H */
