/*
 * frame.c - frame header encoding and masking (RFC 6455 §5.2, §5.3).
 */
#include "frame.h"

#include <stdint.h>
#include <string.h>

/* The key as a 32-bit word whose first byte in memory is key[phase]. */
static inline uint32_t key_word(const uint8_t key[4], unsigned phase)
{
    uint32_t k;
    unsigned sh = (phase & 3) * 8;

    memcpy(&k, key, 4);
    if (!sh)
        return k;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    return k << sh | k >> (32 - sh);
#else
    return k >> sh | k << (32 - sh);
#endif
}

/* XORs whole 8-byte words; returns the bytes done. Unaligned loads and
 * stores go through memcpy, which compiles to plain moves. */
static inline size_t mask_words(uint8_t *p, size_t len, uint64_t k64)
{
    size_t i = 0;

    for (; i + 8 <= len; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        w ^= k64;
        memcpy(p + i, &w, 8);
    }
    return i;
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define MASK_VECTOR_MIN 128

/* 128 bytes a step with AVX2 (four unaligned 32-byte loads and stores). */
__attribute__((target("avx2"))) static size_t mask_avx2(uint8_t *p, size_t len, uint32_t k32)
{
    __m256i k = _mm256_set1_epi32((int)k32);
    size_t i = 0;

    for (; i + 128 <= len; i += 128) {
        __m256i a = _mm256_loadu_si256((const __m256i *)(const void *)(p + i));
        __m256i b = _mm256_loadu_si256((const __m256i *)(const void *)(p + i + 32));
        __m256i c = _mm256_loadu_si256((const __m256i *)(const void *)(p + i + 64));
        __m256i d = _mm256_loadu_si256((const __m256i *)(const void *)(p + i + 96));
        _mm256_storeu_si256((__m256i *)(void *)(p + i), _mm256_xor_si256(a, k));
        _mm256_storeu_si256((__m256i *)(void *)(p + i + 32), _mm256_xor_si256(b, k));
        _mm256_storeu_si256((__m256i *)(void *)(p + i + 64), _mm256_xor_si256(c, k));
        _mm256_storeu_si256((__m256i *)(void *)(p + i + 96), _mm256_xor_si256(d, k));
    }
    return i;
}

/* 64 bytes a step with SSE2, which every x86-64 has. */
static size_t mask_sse2(uint8_t *p, size_t len, uint32_t k32)
{
    __m128i k = _mm_set1_epi32((int)k32);
    size_t i = 0;

    for (; i + 64 <= len; i += 64) {
        __m128i a = _mm_loadu_si128((const __m128i *)(const void *)(p + i));
        __m128i b = _mm_loadu_si128((const __m128i *)(const void *)(p + i + 16));
        __m128i c = _mm_loadu_si128((const __m128i *)(const void *)(p + i + 32));
        __m128i d = _mm_loadu_si128((const __m128i *)(const void *)(p + i + 48));
        _mm_storeu_si128((__m128i *)(void *)(p + i), _mm_xor_si128(a, k));
        _mm_storeu_si128((__m128i *)(void *)(p + i + 16), _mm_xor_si128(b, k));
        _mm_storeu_si128((__m128i *)(void *)(p + i + 32), _mm_xor_si128(c, k));
        _mm_storeu_si128((__m128i *)(void *)(p + i + 48), _mm_xor_si128(d, k));
    }
    return i;
}

static size_t mask_vector(uint8_t *p, size_t len, uint32_t k32)
{
    return __builtin_cpu_supports("avx2") ? mask_avx2(p, len, k32) : mask_sse2(p, len, k32);
}
#else
#define MASK_VECTOR_MIN SIZE_MAX
static size_t mask_vector(uint8_t *p, size_t len, uint32_t k32)
{
    (void)p, (void)len, (void)k32;
    return 0;
}
#endif

unsigned frame_mask(uint8_t *p, size_t len, const uint8_t key[4], unsigned phase)
{
    uint32_t k32 = key_word(key, phase);
    size_t i = 0;

    /* Every step is a multiple of 4 bytes, so the key stays in phase. */
    if (len >= MASK_VECTOR_MIN)
        i = mask_vector(p, len, k32);
    i += mask_words(p + i, len - i, (uint64_t)k32 << 32 | k32);
    if (len - i >= 4) {
        uint32_t w;
        memcpy(&w, p + i, 4);
        w ^= k32;
        memcpy(p + i, &w, 4);
        i += 4;
    }
    uint8_t k[4];
    memcpy(k, &k32, 4);
    for (unsigned j = 0; i < len; i++, j++)
        p[i] ^= k[j];
    return (unsigned)((phase + len) & 3);
}
