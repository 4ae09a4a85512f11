/*
 * metrics.c - Prometheus text format 0.0.4 for the server's counters and
 * the usual process_* metrics.
 */
#include "metrics.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

static const char *const hs_names[HSF_N] = {"bad_request", "version", "too_large",
                                            "origin",      "timeout", "capacity"};

#ifndef EEV_VERSION
#define EEV_VERSION "unknown"
#endif

/* RFC 6455 §7.4 and the IANA registry: 1004 is reserved, 1005 and 1006
 * never go on the wire but name "no code" and "no Close". */
static const char *const close_names[CLOSE_LABELS] = {
    "1000", "1001", "1002", "1003", "1005", "1006", "1007", "1008", "1009", "1010",
    "1011", "1012", "1013", "1014", "1015", "1xxx", "3xxx", "4xxx", "other"};

static int close_label(uint16_t code)
{
    if (code >= 1000 && code <= 1003)
        return code - 1000;
    if (code >= 1005 && code <= 1015)
        return code - 1001;
    if (code >= 1000 && code < 3000)
        return 15;
    if (code >= 3000 && code < 4000)
        return 16;
    if (code >= 4000 && code < 5000)
        return 17;
    return 18;
}

static const char *const tls_names[TLSF_N] = {"plain_http", "handshake", "handshake_eof",
                                              "handshake_timeout", "renegotiation", "truncated",
                                              "protocol"};

void metrics_count_close(struct metrics *m, uint16_t code)
{
    m->closed[close_label(code)]++;
}

struct out {
    char *buf;
    size_t len, cap;
    int oom;
};

__attribute__((format(printf, 2, 3))) static void put(struct out *o, const char *fmt, ...)
{
    va_list ap;
    for (;;) {
        va_start(ap, fmt);
        int n = vsnprintf(o->buf + o->len, o->cap - o->len, fmt, ap);
        va_end(ap);
        if (n < 0)
            return;
        if ((size_t)n < o->cap - o->len) {
            o->len += (size_t)n;
            return;
        }
        char *b = realloc(o->buf, o->cap * 2 + (size_t)n);
        if (!b) {
            o->oom = 1;
            return;
        }
        o->buf = b;
        o->cap = o->cap * 2 + (size_t)n;
    }
}

static void counter(struct out *o, const char *name, const char *help, uint64_t v)
{
    put(o, "# HELP %s %s\n# TYPE %s counter\n%s %llu\n", name, help, name, name,
        (unsigned long long)v);
}

static void gauge(struct out *o, const char *name, const char *help, double v)
{
    put(o, "# HELP %s %s\n# TYPE %s gauge\n%s %.17g\n", name, help, name, name, v);
}

static double rss_bytes(void)
{
    long pages = 0, rss = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) {
        if (fscanf(f, "%ld %ld", &pages, &rss) != 2)
            rss = 0;
        fclose(f);
    }
    return (double)rss * (double)sysconf(_SC_PAGESIZE);
}

void metrics_take_echoes(struct metrics *m, const eev_echo_stats *e)
{
    eev_echo_stats *t = &m->echoes_taken;

    m->msgs_in += e->messages - t->messages;
    m->msgs_out += e->messages - t->messages;
    m->bytes_in += e->bytes - t->bytes;
    m->bytes_out += e->bytes - t->bytes;
    for (int k = 0; k < EEV_ECHO_SIZE_CLASSES; k++)
        m->msg_size[metrics_size_bucket(k)] += e->size_class[k] - t->size_class[k];
    *t = *e;
}

static void histogram(struct out *o, const struct metrics *m)
{
    uint64_t cum = 0;

    put(o, "# HELP echo_ev_message_size_bytes Sizes of the WebSocket messages received.\n"
           "# TYPE echo_ev_message_size_bytes histogram\n");
    for (int i = 0; i < MSG_SIZE_BUCKETS - 1; i++) {
        cum += m->msg_size[i];
        put(o, "echo_ev_message_size_bytes_bucket{le=\"%llu\"} %llu\n", 1ull << (2 * i + 6),
            (unsigned long long)cum);
    }
    cum += m->msg_size[MSG_SIZE_BUCKETS - 1];
    put(o, "echo_ev_message_size_bytes_bucket{le=\"+Inf\"} %llu\n"
           "echo_ev_message_size_bytes_sum %llu\necho_ev_message_size_bytes_count %llu\n",
        (unsigned long long)cum, (unsigned long long)m->bytes_in, (unsigned long long)cum);
}

char *metrics_render(const struct metrics *m, const struct metrics_gauges *g, size_t *len)
{
    struct out o = {malloc(4096), 0, 4096, 0};
    struct rusage ru;
    struct rlimit rl;

    if (!o.buf)
        return NULL;
    put(&o, "# HELP echo_ev_build_info The version of echo-ev serving.\n"
            "# TYPE echo_ev_build_info gauge\necho_ev_build_info{version=\"%s\"} 1\n", EEV_VERSION);
    gauge(&o, "echo_ev_connections_open", "WebSocket connections currently open.",
          (double)g->ws_open);
    gauge(&o, "echo_ev_http_connections_open",
          "Connections open and not upgraded (HTTP requests, handshakes in progress).",
          (double)g->http_open);
    counter(&o, "echo_ev_connections_accepted_total", "Connections accepted.", m->accepted);
    put(&o, "# HELP echo_ev_connections_closed_total WebSocket connections closed, by close code "
            "(1006: no close frame).\n# TYPE echo_ev_connections_closed_total counter\n");
    for (int i = 0; i < CLOSE_LABELS; i++)
        if (m->closed[i] || i < 2 || i == 5)
            put(&o, "echo_ev_connections_closed_total{code=\"%s\"} %llu\n", close_names[i],
                (unsigned long long)m->closed[i]);
    counter(&o, "echo_ev_messages_received_total", "WebSocket messages received.", m->msgs_in);
    counter(&o, "echo_ev_messages_sent_total", "WebSocket messages sent (echoes).", m->msgs_out);
    counter(&o, "echo_ev_bytes_received_total", "Message payload bytes received.", m->bytes_in);
    counter(&o, "echo_ev_bytes_sent_total", "Message payload bytes sent.", m->bytes_out);
    histogram(&o, m);
    put(&o, "# HELP echo_ev_handshake_failures_total Refused or abandoned handshakes, by reason.\n"
            "# TYPE echo_ev_handshake_failures_total counter\n");
    for (int i = 0; i < HSF_N; i++)
        put(&o, "echo_ev_handshake_failures_total{reason=\"%s\"} %llu\n", hs_names[i],
            (unsigned long long)m->hs_failures[i]);
    put(&o, "# HELP echo_ev_tls_handshakes_total Completed TLS handshakes.\n"
            "# TYPE echo_ev_tls_handshakes_total counter\n"
            "echo_ev_tls_handshakes_total{resumed=\"false\"} %llu\n"
            "echo_ev_tls_handshakes_total{resumed=\"true\"} %llu\n",
        (unsigned long long)m->tls_handshakes[0], (unsigned long long)m->tls_handshakes[1]);
    put(&o, "# HELP echo_ev_tls_errors_total TLS connections closed on an error, by reason.\n"
            "# TYPE echo_ev_tls_errors_total counter\n");
    for (int i = 0; i < TLSF_N; i++)
        put(&o, "echo_ev_tls_errors_total{reason=\"%s\"} %llu\n", tls_names[i],
            (unsigned long long)m->tls_failures[i]);
    counter(&o, "echo_ev_backpressure_pauses_total",
            "Times reading from a client stopped because its echoes were not read.",
            m->backpressure_pauses);
    counter(&o, "echo_ev_deflate_compressed_bytes_total",
            "Payload bytes of compressed (permessage-deflate) messages received, as sent.",
            m->deflate_bytes_compressed);
    counter(&o, "echo_ev_deflate_uncompressed_bytes_total",
            "Payload bytes of compressed messages received, once inflated.",
            m->deflate_bytes_inflated);
    gauge(&o, "echo_ev_deflate_connections", "Open connections that negotiated permessage-deflate.",
          (double)m->deflate_conns);
    gauge(&o, "echo_ev_queued_bytes", "Bytes queued for sending.", (double)g->queued);
    gauge(&o, "echo_ev_memory_bytes",
          "Bytes held for clients: messages being received, queued output, held HTTP input.",
          (double)g->mem);
    gauge(&o, "echo_ev_memory_limit_bytes", "The --max-memory budget.", (double)g->mem_limit);
    counter(&o, "echo_ev_memory_refusals_total",
            "Messages refused with 1013 because --max-memory was reached.", m->mem_refusals);
    counter(&o, "echo_ev_memory_evictions_total",
            "Connections closed with 1013 to make room under --max-memory (the largest holders first).",
            m->mem_evictions);
    counter(&o, "echo_ev_log_lines_dropped_total",
            "Log lines dropped because stderr was not taking them fast enough.", g->log_dropped);
    counter(&o, "echo_ev_http_requests_total", "HTTP requests parsed (upgrades included).",
            m->http_requests);
    getrusage(RUSAGE_SELF, &ru);
    put(&o, "# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.\n"
            "# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total %.6f\n",
        (double)ru.ru_utime.tv_sec + (double)ru.ru_stime.tv_sec +
            ((double)ru.ru_utime.tv_usec + (double)ru.ru_stime.tv_usec) / 1e6);
    gauge(&o, "process_resident_memory_bytes", "Resident memory size in bytes.", rss_bytes());
    gauge(&o, "process_open_fds", "Number of open file descriptors.", (double)g->open_fds);
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
        gauge(&o, "process_max_fds", "Maximum number of open file descriptors.",
              (double)rl.rlim_cur);
    gauge(&o, "process_start_time_seconds", "Start time of the process since the Unix epoch.",
          m->start_time);
    if (o.oom) {
        free(o.buf);
        return NULL;
    }
    *len = o.len;
    return o.buf;
}
