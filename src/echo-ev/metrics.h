/*
 * metrics.h - server counters and their Prometheus text exposition.
 */
#ifndef EEV_METRICS_H
#define EEV_METRICS_H

#include <stddef.h>
#include <stdint.h>

enum hs_failure {
    HSF_BAD_REQUEST, HSF_VERSION, HSF_TOO_LARGE, HSF_ORIGIN, HSF_TIMEOUT, HSF_CAPACITY, HSF_N
};

#define CLOSE_CODE_SLOTS 32

struct metrics {
    uint64_t accepted;
    uint64_t http_requests;
    uint64_t msgs_in, msgs_out;
    uint64_t bytes_in, bytes_out; /* message payload bytes */
    uint64_t backpressure_pauses;
    uint64_t hs_failures[HSF_N];
    struct {
        uint16_t code;
        uint64_t count;
    } closed[CLOSE_CODE_SLOTS]; /* by close code; code 0 collects overflow */
    double start_time;          /* Unix time */
};

void metrics_count_close(struct metrics *m, uint16_t code);

/* Renders the exposition into a malloc'd buffer; *len gets its length.
 * open and queued are gauges the server computes. Returns NULL on OOM. */
char *metrics_render(const struct metrics *m, unsigned long open, uint64_t queued, size_t *len);

#endif
