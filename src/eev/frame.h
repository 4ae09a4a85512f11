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
size_t frame_encode_header(uint8_t *out, uint8_t b0, uint64_t len, const uint8_t *mask);

/*
 * XORs p[0..len) with the key, starting at key byte phase (0..3). Returns
 * the phase after the last byte.
 */
unsigned frame_mask(uint8_t *p, size_t len, const uint8_t key[4], unsigned phase);

static inline int frame_opcode_is_control(unsigned op) { return op & 0x8; }

static inline int frame_opcode_known(unsigned op)
{
    return op <= 0x2 || (op >= 0x8 && op <= 0xA);
}

#endif
