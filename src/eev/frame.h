/*
 * frame.h - RFC 6455 §5.2 frame header encoding and payload masking.
 *
 *   0                   1                   2                   3
 *   0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 *  +-+-+-+-+-------+-+-------------+-------------------------------+
 *  |F|R|R|R| opcode|M| Payload len |    Extended payload length    |
 *  |I|S|S|S|  (4)  |A|     (7)     |             (16/64)           |
 *  |N|V|V|V|       |S|             |   (if payload len==126/127)   |
 *  +-+-+-+-+-------+-+-------------+ - - - - - - - - - - - - - - - +
 *  |     Extended payload length continued, if payload len == 127  |
 *  + - - - - - - - - - - - - - - - +-------------------------------+
 *  |                               |Masking-key, if MASK set to 1  |
 *  +-------------------------------+-------------------------------+
 */
#ifndef EEV_FRAME_H
#define EEV_FRAME_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define FRAME_FIN 0x80
#define FRAME_RSV1 0x40
#define FRAME_RSV_ALL 0x70
#define FRAME_OPCODE 0x0F
#define FRAME_MASK 0x80
#define FRAME_MAX_HEADER 14
#define FRAME_MAX_CONTROL 125

/* Bytes the header needs once its first two bytes b0 b1 are known. */
static inline size_t frame_header_len(uint8_t b1)
{
    static const uint8_t ext[4] = {0, 0, 2, 8};
    uint8_t len7 = b1 & 0x7F;
    size_t n = 2 + (b1 & FRAME_MASK ? 4 : 0);
    return len7 < 126 ? n : n + ext[len7 - 124];
}

/*
 * Writes a header with the shortest length encoding into out (at least
 * FRAME_MAX_HEADER bytes). mask is the 4-byte key or NULL. Returns its
 * length.
 */
static inline size_t frame_encode_header(uint8_t *out, uint8_t b0, uint64_t len, const uint8_t *mask)
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

/*
 * XORs p[0..len) with the key, starting at key byte phase (0..3). Returns
 * the phase after the last byte.
 */
unsigned frame_mask(uint8_t *p, size_t len, const uint8_t key[4], unsigned phase);

/* The key repeated over a word, shifted to start at key byte phase. */
static inline uint64_t frame_key_at(uint64_t k64, unsigned phase)
{
    unsigned s = 8 * phase;
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    return k64 << s | k64 >> ((64 - s) & 63);
#else
    return k64 >> s | k64 << ((64 - s) & 63);
#endif
}

/*
 * The same for a short payload (a small frame whole in the input) with
 * phase 0, in 8-byte words and no loop over bytes: the last word ends at
 * the payload's end and may overlap the one before. It is loaded before
 * any store and stored after them, from the original bytes, so the bytes
 * both cover come out right either way. Unaligned access goes through
 * memcpy (plain moves).
 */
static inline void frame_mask_short(uint8_t *p, size_t len, const uint8_t key[4])
{
    uint32_t k32;

    memcpy(&k32, key, 4);
    if (len >= 8) {
        uint64_t k64 = (uint64_t)k32 << 32 | k32, w, last;
        memcpy(&last, p + len - 8, 8);
        last ^= frame_key_at(k64, len & 3);
        memcpy(&w, p, 8); /* the first word outside the loop: up to 16 bytes take none */
        w ^= k64;
        memcpy(p, &w, 8);
        for (size_t i = 8; i + 8 < len; i += 8) {
            memcpy(&w, p + i, 8);
            w ^= k64;
            memcpy(p + i, &w, 8);
        }
        memcpy(p + len - 8, &last, 8);
    } else if (len >= 4) { /* the same with two 4-byte words */
        uint32_t first, last;
        memcpy(&first, p, 4);
        memcpy(&last, p + len - 4, 4);
        first ^= k32;
        last ^= (uint32_t)frame_key_at((uint64_t)k32 << 32 | k32, len & 3);
        memcpy(p + len - 4, &last, 4);
        memcpy(p, &first, 4);
    } else {
        for (size_t i = 0; i < len; i++)
            p[i] ^= key[i];
    }
}

static inline int frame_opcode_is_control(unsigned op) { return op & 0x8; }

static inline int frame_opcode_known(unsigned op)
{
    return op <= 0x2 || (op >= 0x8 && op <= 0xA);
}

#endif
