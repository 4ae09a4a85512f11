/*
 * payload.h - deterministic message payloads.
 *
 * The payload of message seq on connection id is a splitmix64 stream seeded
 * from (run seed, id, seq), so the sender needs no copy of what it sent:
 * an echo is checked by regenerating the stream and comparing word by word.
 * Text payloads map every byte into 0x30..0x6f (printable ASCII, hence
 * valid UTF-8) with one add per word: (b & 0x3f) + 0x30 cannot carry.
 */
#ifndef ECHO_BENCH_PAYLOAD_H
#define ECHO_BENCH_PAYLOAD_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define PAYLOAD_GOLDEN 0x9e3779b97f4a7c15ull
#define PAYLOAD_TEXT_MASK 0x3f3f3f3f3f3f3f3full
#define PAYLOAD_TEXT_BASE 0x3030303030303030ull

static inline uint64_t payload_mix(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static inline uint64_t payload_seed(uint64_t run, uint32_t id, uint64_t seq)
{
    return payload_mix(run ^ payload_mix(((uint64_t)id << 40) ^ seq));
}

static inline uint64_t payload_word(uint64_t *s, int text)
{
    uint64_t w = payload_mix(*s += PAYLOAD_GOLDEN);
    return text ? (w & PAYLOAD_TEXT_MASK) + PAYLOAD_TEXT_BASE : w;
}

/* Writes the len-byte payload of (id, seq) to p. */
static inline void payload_fill(uint8_t *p, size_t len, uint64_t run, uint32_t id, uint64_t seq, int text)
{
    uint64_t s = payload_seed(run, id, seq), w;
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        w = payload_word(&s, text);
        memcpy(p + i, &w, 8);
    }
    if (i < len) {
        w = payload_word(&s, text);
        memcpy(p + i, &w, len - i);
    }
}

/* Returns 1 when p[0..len) is exactly the payload of (id, seq). */
static inline int payload_check(const uint8_t *p, size_t len, uint64_t run, uint32_t id, uint64_t seq,
                                int text)
{
    uint64_t s = payload_seed(run, id, seq), w, v;
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        w = payload_word(&s, text);
        memcpy(&v, p + i, 8);
        if (v != w)
            return 0;
    }
    if (i < len) {
        w = payload_word(&s, text);
        return memcmp(p + i, &w, len - i) == 0;
    }
    return 1;
}

#endif /* ECHO_BENCH_PAYLOAD_H */
