/*
 * hist.h - log-linear latency histogram (HdrHistogram-like buckets).
 *
 * Values are nanoseconds. Below 128 every value has its own bucket; above,
 * each power of two [2^e, 2^(e+1)) is split into 64 equal sub-buckets, so
 * the relative error of a reported value is at most 1/64 (1.6%). The whole
 * uint64_t range is covered, so nothing is ever clamped.
 */
#ifndef ECHO_BENCH_HIST_H
#define ECHO_BENCH_HIST_H

#include <stdint.h>

#define HIST_SUB_BITS 6
#define HIST_SUB (1u << HIST_SUB_BITS)
#define HIST_BUCKETS ((64 - HIST_SUB_BITS + 1) * HIST_SUB)

typedef struct hist {
    uint64_t cnt;     /* values recorded */
    uint64_t sum;     /* their sum, for the mean */
    uint64_t min, max; /* exact; min is UINT64_MAX while cnt == 0 */
    uint64_t bucket[HIST_BUCKETS];
} hist;

void hist_init(hist *h);
void hist_add(hist *h, uint64_t v);
/* Adds every value of src to dst. */
void hist_merge(hist *dst, const hist *src);
/* The value at percentile p (0..100): the upper edge of the bucket holding
 * it, never above the exact maximum. 0 when empty. */
uint64_t hist_percentile(const hist *h, double p);

#endif /* ECHO_BENCH_HIST_H */
