/*
 * utf8.c - a byte-class DFA for UTF-8 validation with an ASCII fast path.
 *
 * Well-formed sequences (RFC 3629 §4, Unicode table 3-7):
 *
 *   00..7F
 *   C2..DF 80..BF
 *   E0     A0..BF 80..BF      (no overlongs)
 *   E1..EC 80..BF 80..BF
 *   ED     80..9F 80..BF      (no surrogates)
 *   EE..EF 80..BF 80..BF
 *   F0     90..BF 80..BF 80..BF
 *   F1..F3 80..BF 80..BF 80..BF
 *   F4     80..8F 80..BF 80..BF  (nothing above U+10FFFF)
 *
 * Each state says what the next byte must be, so the DFA rejects at the
 * first byte that cannot start or continue a well-formed sequence.
 */
#include "utf8.h"

#include <stdint.h>
#include <string.h>

enum {
    ACC = EEV_UTF8_ACCEPT, /* at a character boundary */
    REJ = EEV_UTF8_REJECT,
    C1,    /* one more 80..BF */
    C2,    /* two more 80..BF */
    E0A,   /* after E0: A0..BF, then C1 */
    EDA,   /* after ED: 80..9F, then C1 */
    F0A,   /* after F0: 90..BF, then C2 */
    C3,    /* after F1..F3: three more 80..BF */
    F4A,   /* after F4: 80..8F, then C2 */
    NSTATES
};

/* Byte classes. */
enum { K_ASCII, K_80_8F, K_90_9F, K_A0_BF, K_BAD, K_C2_DF, K_E0, K_E1_EF, K_ED, K_F0, K_F1_F3, K_F4, NCLASSES };

/* byte -> class, one row per high nibble (generated from the table above) */
static const uint8_t byte_class[256] = {
     0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0, /* 00..0F */
     0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0, /* 10..1F */
     0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0, /* 20..2F */
     0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0, /* 30..3F */
     0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0, /* 40..4F */
     0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0, /* 50..5F */
     0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0, /* 60..6F */
     0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0, /* 70..7F */
     1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1, /* 80..8F */
     2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2, /* 90..9F */
     3,  3,  3,  3,  3,  3,  3,  3,  3,  3,  3,  3,  3,  3,  3,  3, /* A0..AF */
     3,  3,  3,  3,  3,  3,  3,  3,  3,  3,  3,  3,  3,  3,  3,  3, /* B0..BF */
     4,  4,  5,  5,  5,  5,  5,  5,  5,  5,  5,  5,  5,  5,  5,  5, /* C0..CF */
     5,  5,  5,  5,  5,  5,  5,  5,  5,  5,  5,  5,  5,  5,  5,  5, /* D0..DF */
     6,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  8,  7,  7, /* E0..EF */
     9, 10, 10, 10, 11,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4, /* F0..FF */
};

#define ALL_REJ {REJ, REJ, REJ, REJ, REJ, REJ, REJ, REJ, REJ, REJ, REJ, REJ}

static const uint8_t next_state[NSTATES][NCLASSES] = {
    /*          ASCII 80-8F 90-9F A0-BF BAD  C2-DF E0   E1-EF ED   F0   F1-F3 F4 */
    [ACC] = {ACC, REJ, REJ, REJ, REJ, C1, E0A, C2, EDA, F0A, C3, F4A},
    [REJ] = ALL_REJ,
    [C1] = {REJ, ACC, ACC, ACC, REJ, REJ, REJ, REJ, REJ, REJ, REJ, REJ},
    [C2] = {REJ, C1, C1, C1, REJ, REJ, REJ, REJ, REJ, REJ, REJ, REJ},
    [E0A] = {REJ, REJ, REJ, C1, REJ, REJ, REJ, REJ, REJ, REJ, REJ, REJ},
    [EDA] = {REJ, C1, C1, REJ, REJ, REJ, REJ, REJ, REJ, REJ, REJ, REJ},
    [F0A] = {REJ, REJ, C2, C2, REJ, REJ, REJ, REJ, REJ, REJ, REJ, REJ},
    [C3] = {REJ, C2, C2, C2, REJ, REJ, REJ, REJ, REJ, REJ, REJ, REJ},
    [F4A] = {REJ, C2, REJ, REJ, REJ, REJ, REJ, REJ, REJ, REJ, REJ, REJ},
};

#define HIGH_BITS 0x8080808080808080ull

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define ASCII_VECTOR_MIN 64

/* Bytes of p[0..len) skipped as ASCII, 128 a step with AVX2 (stops at the
 * step holding the first byte >= 0x80). Unaligned loads. */
__attribute__((target("avx2"))) static size_t ascii_avx2(const uint8_t *p, size_t len)
{
    size_t i = 0;

    for (; i + 128 <= len; i += 128) {
        __m256i a = _mm256_loadu_si256((const __m256i *)(const void *)(p + i));
        __m256i b = _mm256_loadu_si256((const __m256i *)(const void *)(p + i + 32));
        __m256i c = _mm256_loadu_si256((const __m256i *)(const void *)(p + i + 64));
        __m256i d = _mm256_loadu_si256((const __m256i *)(const void *)(p + i + 96));
        if (_mm256_movemask_epi8(_mm256_or_si256(_mm256_or_si256(a, b), _mm256_or_si256(c, d))))
            break;
    }
    return i;
}

/* The same, 64 bytes a step with SSE2. */
static size_t ascii_sse2(const uint8_t *p, size_t len)
{
    size_t i = 0;

    for (; i + 64 <= len; i += 64) {
        __m128i a = _mm_loadu_si128((const __m128i *)(const void *)(p + i));
        __m128i b = _mm_loadu_si128((const __m128i *)(const void *)(p + i + 16));
        __m128i c = _mm_loadu_si128((const __m128i *)(const void *)(p + i + 32));
        __m128i d = _mm_loadu_si128((const __m128i *)(const void *)(p + i + 48));
        if (_mm_movemask_epi8(_mm_or_si128(_mm_or_si128(a, b), _mm_or_si128(c, d))))
            break;
    }
    return i;
}

static size_t ascii_vector(const uint8_t *p, size_t len)
{
    return __builtin_cpu_supports("avx2") ? ascii_avx2(p, len) : ascii_sse2(p, len);
}
#else
#define ASCII_VECTOR_MIN SIZE_MAX
static size_t ascii_vector(const uint8_t *p, size_t len)
{
    (void)p, (void)len;
    return 0;
}
#endif

uint32_t utf8_advance(uint32_t state, const uint8_t *p, size_t len)
{
    const uint8_t *end = p + len;

    while (p < end) {
        if (state == ACC) {
            /* ASCII fast path: vectors while they last, then 16 bytes per
             * step while no high bit is set. */
            if ((size_t)(end - p) >= ASCII_VECTOR_MIN)
                p += ascii_vector(p, (size_t)(end - p));
            while (end - p >= 16) {
                uint64_t a, b;
                memcpy(&a, p, 8);
                memcpy(&b, p + 8, 8);
                if ((a | b) & HIGH_BITS)
                    break;
                p += 16;
            }
            while (p < end && *p < 0x80)
                p++;
            if (p == end)
                break;
        }
        state = next_state[state][byte_class[*p++]];
        if (state == REJ)
            break;
    }
    return state;
}

uint32_t eev_utf8_validate(uint32_t *state, const uint8_t *p, size_t len)
{
    *state = utf8_advance(*state, p, len);
    return *state;
}
