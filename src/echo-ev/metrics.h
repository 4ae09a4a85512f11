/*
 * metrics.h - server counters and their Prometheus text exposition.
 * Everything here is kept up to date as it happens, so a scrape costs the
 * same whatever the number of connections.
 */
#ifndef EEV_METRICS_H
#define EEV_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "eev/driver.h"

enum hs_failure {
    HSF_BAD_REQUEST, HSF_VERSION, HSF_TOO_LARGE, HSF_ORIGIN, HSF_TIMEOUT, HSF_CAPACITY, HSF_N
};

/* TLS connections that broke, by what broke them. */
enum tls_failure {
    TLSF_PLAIN_HTTP, TLSF_HANDSHAKE, TLSF_HANDSHAKE_EOF, TLSF_HANDSHAKE_TIMEOUT, TLSF_RENEGOTIATION,
    TLSF_TRUNCATED, TLSF_PROTOCOL, TLSF_N
};

/* Close-code labels: one per standard code, then one per class, so a peer
 * sending rare codes cannot crowd out the common ones. */
#define CLOSE_LABELS 19
/* Message-size histogram: <= 64 B, 256 B, ... 16 MiB (powers of 4), +Inf. */
#define MSG_SIZE_BUCKETS 11

struct metrics {
    uint64_t accepted;
    uint64_t http_requests;
    uint64_t msgs_in, msgs_out;
    uint64_t bytes_in, bytes_out; /* message payload bytes */
    uint64_t backpressure_pauses;
    uint64_t mem_refusals; /* messages refused (1013) by --max-memory */
    uint64_t mem_evictions; /* connections closed (1013) to make room under it */
    eev_echo_stats echoes_taken; /* the drivers' echo counts already added */
    uint64_t deflate_bytes_compressed; /* compressed messages received: as sent */
    uint64_t deflate_bytes_inflated;   /* ... and inflated */
    uint64_t deflate_conns;            /* open connections that negotiated it */
    uint64_t hs_failures[HSF_N];
    uint64_t tls_handshakes[2]; /* full, resumed */
    uint64_t tls_failures[TLSF_N];
    uint64_t closed[CLOSE_LABELS];       /* by close_label() */
    uint64_t msg_size[MSG_SIZE_BUCKETS]; /* received messages, not cumulative */
    double start_time;                   /* Unix time */
};

/* What the server keeps counted; sampled at each scrape. */
struct metrics_gauges {
    unsigned long ws_open, http_open; /* upgraded connections, the others */
    uint64_t queued;                  /* bytes queued for sending */
    uint64_t mem, mem_limit;          /* --max-memory: bytes held, and the budget */
    long open_fds;
    uint64_t log_dropped;
};

void metrics_count_close(struct metrics *m, uint16_t code);

/* The histogram bucket of sizes whose ceil(log2) is cl: bucket i holds
 * sizes up to 4^(i+3). */
static inline int metrics_size_bucket(int cl)
{
    int i = cl > 6 ? (cl - 5) / 2 : 0;
    return i < MSG_SIZE_BUCKETS - 1 ? i : MSG_SIZE_BUCKETS - 1;
}

static inline void metrics_count_message(struct metrics *m, uint64_t len)
{
    m->msg_size[metrics_size_bucket(len > 1 ? 64 - __builtin_clzll(len - 1) : 0)]++;
}

/* Adds the messages the drivers echoed by themselves (eev_driver_recv_echo)
 * since the last call into m, each counted received and sent. *e is not
 * reset: a scrape may run inside a recv whose caller reads e's counts
 * before and after it. */
void metrics_take_echoes(struct metrics *m, const eev_echo_stats *e);

/* Renders the exposition into a malloc'd buffer; *len gets its length.
 * Returns NULL on OOM. */
char *metrics_render(const struct metrics *m, const struct metrics_gauges *g, size_t *len);

#endif
