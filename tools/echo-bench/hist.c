/*
 * hist.c - log-linear latency histogram; see hist.h.
 */
#include "hist.h"

#include <string.h>

void hist_init(hist *h)
{
    memset(h, 0, sizeof(*h));
    h->min = UINT64_MAX;
}

/*
 * Bucket layout (S = HIST_SUB = 64):
 *
 *   index  0 .. 2S-1   value itself (v < 128, width 1)
 *   index  k*S + sub   v in [(S + sub) << (k-1), (S + sub + 1) << (k-1)),
 *                      k = e - 5 for 2^e <= v < 2^(e+1), e >= 6
 */
static unsigned bucket_of(uint64_t v)
{
    if (v < HIST_SUB)
        return (unsigned)v;
    unsigned e = 63u - (unsigned)__builtin_clzll(v);
    return (e - HIST_SUB_BITS + 1) * HIST_SUB + (unsigned)((v >> (e - HIST_SUB_BITS)) & (HIST_SUB - 1));
}

static uint64_t bucket_high(unsigned i)
{
    unsigned k = i / HIST_SUB, sub = i % HIST_SUB;
    if (k == 0)
        return i;
    uint64_t low = (uint64_t)(HIST_SUB + sub) << (k - 1);
    return low + ((uint64_t)1 << (k - 1)) - 1;
}

void hist_add(hist *h, uint64_t v)
{
    h->bucket[bucket_of(v)]++;
    h->cnt++;
    h->sum += v;
    if (v < h->min)
        h->min = v;
    if (v > h->max)
        h->max = v;
}

void hist_merge(hist *dst, const hist *src)
{
    for (unsigned i = 0; i < HIST_BUCKETS; i++)
        dst->bucket[i] += src->bucket[i];
    dst->cnt += src->cnt;
    dst->sum += src->sum;
    if (src->min < dst->min)
        dst->min = src->min;
    if (src->max > dst->max)
        dst->max = src->max;
}

uint64_t hist_percentile(const hist *h, double p)
{
    if (h->cnt == 0)
        return 0;
    /* The rank of the wanted value, 1-based: ceil(p% of cnt), at least 1. */
    double r = p / 100.0 * (double)h->cnt;
    uint64_t rank = (uint64_t)r;
    if ((double)rank < r)
        rank++;
    if (rank == 0)
        rank = 1;
    uint64_t seen = 0;
    for (unsigned i = 0; i < HIST_BUCKETS; i++) {
        seen += h->bucket[i];
        if (seen >= rank) {
            uint64_t v = bucket_high(i);
            return v > h->max ? h->max : v;
        }
    }
    return h->max;
}
