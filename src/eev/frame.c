/*
 * frame.c - frame header encoding and masking (RFC 6455 §5.2, §5.3).
 */
#include "frame.h"

#include <string.h>

size_t frame_encode_header(uint8_t *out, uint8_t b0, uint64_t len, const uint8_t *mask)
{
    uint8_t mbit = mask ? FRAME_MASK : 0;
    size_t n;

    out[0] = b0;
    if (len < 126) {
        out[1] = mbit | (uint8_t)len;
        n = 2;
    } else if (len <= 0xFFFF) {
        out[1] = mbit | 126;
        out[2] = (uint8_t)(len >> 8);
        out[3] = (uint8_t)len;
        n = 4;
    } else {
        out[1] = mbit | 127;
        for (int i = 0; i < 8; i++)
            out[2 + i] = (uint8_t)(len >> (56 - 8 * i));
        n = 10;
    }
    if (mask) {
        memcpy(out + n, mask, 4);
        n += 4;
    }
    return n;
}

unsigned frame_mask(uint8_t *p, size_t len, const uint8_t key[4], unsigned phase)
{
    uint8_t rot[8];
    uint64_t k64;
    size_t i = 0;

    if (len < 8) { /* short payloads: not worth building the word key */
        for (; i < len; i++)
            p[i] ^= key[(phase + i) & 3];
        return (unsigned)((phase + len) & 3);
    }
    for (int j = 0; j < 8; j++)
        rot[j] = key[(phase + j) & 3];
    memcpy(&k64, rot, 8);

    /* A word at a time; the compiler widens this loop to vectors. Since
     * 8 and 16 are multiples of 4, the key stays in phase across words. */
    for (; i + 32 <= len; i += 32) {
        uint64_t w[4];
        memcpy(w, p + i, 32);
        w[0] ^= k64;
        w[1] ^= k64;
        w[2] ^= k64;
        w[3] ^= k64;
        memcpy(p + i, w, 32);
    }
    for (; i + 8 <= len; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        w ^= k64;
        memcpy(p + i, &w, 8);
    }
    for (; i < len; i++)
        p[i] ^= rot[i & 3];
    return (unsigned)((phase + len) & 3);
}
