/*
 * test_mask.c - frame_mask (the vectorised unmasking) against a byte-at-a-
 * time reference: every length up to 700 and some large ones, every key
 * phase, every start alignment, and payloads unmasked in pieces (the key
 * phase carried from one call to the next, as when a frame spans reads);
 * and frame_mask_short, the small-frame path, for every 7-bit length.
 */
#include <stdlib.h>
#include <string.h>

#include "frame.h"
#include "tap.h"

static void reference(uint8_t *p, size_t len, const uint8_t key[4], unsigned phase)
{
    for (size_t i = 0; i < len; i++)
        p[i] ^= key[(phase + i) & 3];
}

int main(void)
{
    static const uint8_t key[4] = {0x37, 0xfa, 0x21, 0x3d};
    static const size_t large[] = {1023, 1024, 4097, 16384, 16389, 65536 + 131};
    enum { MAXLEN = 65536 + 256 };
    uint8_t *src = malloc(MAXLEN), *a = malloc(MAXLEN + 64), *b = malloc(MAXLEN + 64);
    int bad = 0, cases = 0;

    for (size_t i = 0; i < MAXLEN; i++)
        src[i] = (uint8_t)(i * 131 + (i >> 8));
    for (size_t len = 0; len <= 700 + sizeof(large) / sizeof(large[0]); len++) {
        size_t n = len <= 700 ? len : large[len - 701];
        for (unsigned phase = 0; phase < 4; phase++) {
            for (size_t off = 0; off < 33; off += len <= 700 ? 1 : 8) {
                memcpy(a + off, src, n);
                memcpy(b + off, src, n);
                reference(a + off, n, key, phase);
                unsigned after = frame_mask(b + off, n, key, phase);
                cases++;
                if (memcmp(a + off, b + off, n) != 0 || after != ((phase + n) & 3))
                    bad++;
            }
        }
    }
    ok(bad == 0, "whole payloads: %d of %d length/phase/alignment cases differ from the reference", bad, cases);

    bad = 0;
    cases = 0;
    for (size_t n = 0; n < 126; n++) {
        for (size_t off = 0; off < 9; off++) {
            memcpy(a + off, src, n);
            memcpy(b + off, src, n);
            reference(a + off, n, key, 0);
            frame_mask_short(b + off, n, key);
            cases++;
            bad += memcmp(a + off, b + off, n) != 0 || a[off + n] != b[off + n];
        }
    }
    ok(bad == 0, "short payloads (frame_mask_short): %d of %d length/alignment cases differ", bad, cases);

    /* In pieces: split points that are not multiples of 4. */
    bad = 0;
    cases = 0;
    static const size_t pieces[] = {1, 3, 7, 16, 61, 130, 257, 1000, 4093};
    for (size_t pi = 0; pi < sizeof(pieces) / sizeof(pieces[0]); pi++) {
        size_t n = 20000;
        memcpy(a, src, n);
        memcpy(b, src, n);
        reference(a, n, key, 0);
        unsigned phase = 0;
        for (size_t at = 0; at < n; at += pieces[pi]) {
            size_t m = n - at < pieces[pi] ? n - at : pieces[pi];
            phase = frame_mask(b + at, m, key, phase);
        }
        cases++;
        if (memcmp(a, b, n) != 0 || phase != (n & 3))
            bad++;
    }
    ok(bad == 0, "in pieces: %d of %d piece sizes differ from the reference", bad, cases);
    free(src);
    free(a);
    free(b);
    return done_testing();
}
