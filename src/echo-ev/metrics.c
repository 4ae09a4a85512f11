/*
 * metrics.c - Prometheus text format 0.0.4 for the server's counters and
 * the usual process_* metrics.
 */
#include "metrics.h"

#include <dirent.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

static const char *const hs_names[HSF_N] = {"bad_request", "version", "too_large",
                                            "origin",      "timeout", "capacity"};

void metrics_count_close(struct metrics *m, uint16_t code)
{
    /* The last slot collects codes that find no room. */
    for (int i = 0; i < CLOSE_CODE_SLOTS - 1; i++) {
        if (!m->closed[i].count)
            m->closed[i].code = code;
        if (m->closed[i].code == code) {
            m->closed[i].count++;
            return;
        }
    }
    m->closed[CLOSE_CODE_SLOTS - 1].count++;
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

static long count_fds(void)
{
    DIR *dir = opendir("/proc/self/fd");
    long n = 0;
    if (!dir)
        return -1;
    while (readdir(dir))
        n++;
    closedir(dir);
    return n - 3; /* ".", ".." and the directory's own fd */
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

char *metrics_render(const struct metrics *m, unsigned long open, uint64_t queued, size_t *len)
{
    struct out o = {malloc(4096), 0, 4096, 0};
    struct rusage ru;
    struct rlimit rl;

    if (!o.buf)
        return NULL;
    gauge(&o, "echo_ev_connections_open", "Connections currently open.", (double)open);
    counter(&o, "echo_ev_connections_accepted_total", "Connections accepted.", m->accepted);
    put(&o, "# HELP echo_ev_connections_closed_total WebSocket connections closed, by close code "
            "(1006: no close frame).\n# TYPE echo_ev_connections_closed_total counter\n");
    for (int i = 0; i < CLOSE_CODE_SLOTS - 1 && m->closed[i].count; i++)
        put(&o, "echo_ev_connections_closed_total{code=\"%u\"} %llu\n", m->closed[i].code,
            (unsigned long long)m->closed[i].count);
    if (m->closed[CLOSE_CODE_SLOTS - 1].count)
        put(&o, "echo_ev_connections_closed_total{code=\"other\"} %llu\n",
            (unsigned long long)m->closed[CLOSE_CODE_SLOTS - 1].count);
    counter(&o, "echo_ev_messages_received_total", "WebSocket messages received.", m->msgs_in);
    counter(&o, "echo_ev_messages_sent_total", "WebSocket messages sent (echoes).", m->msgs_out);
    counter(&o, "echo_ev_bytes_received_total", "Message payload bytes received.", m->bytes_in);
    counter(&o, "echo_ev_bytes_sent_total", "Message payload bytes sent.", m->bytes_out);
    put(&o, "# HELP echo_ev_handshake_failures_total Refused or abandoned handshakes, by reason.\n"
            "# TYPE echo_ev_handshake_failures_total counter\n");
    for (int i = 0; i < HSF_N; i++)
        put(&o, "echo_ev_handshake_failures_total{reason=\"%s\"} %llu\n", hs_names[i],
            (unsigned long long)m->hs_failures[i]);
    counter(&o, "echo_ev_backpressure_pauses_total",
            "Times reading from a client stopped because its echoes were not read.",
            m->backpressure_pauses);
    gauge(&o, "echo_ev_queued_bytes", "Bytes queued for sending.", (double)queued);
    counter(&o, "echo_ev_http_requests_total", "HTTP requests parsed (upgrades included).",
            m->http_requests);
    getrusage(RUSAGE_SELF, &ru);
    put(&o, "# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.\n"
            "# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total %.6f\n",
        (double)ru.ru_utime.tv_sec + (double)ru.ru_stime.tv_sec +
            ((double)ru.ru_utime.tv_usec + (double)ru.ru_stime.tv_usec) / 1e6);
    gauge(&o, "process_resident_memory_bytes", "Resident memory size in bytes.", rss_bytes());
    gauge(&o, "process_open_fds", "Number of open file descriptors.", (double)count_fds());
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
