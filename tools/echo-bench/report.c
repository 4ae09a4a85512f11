/*
 * report.c - the end-of-run report, as text or as one JSON object: rates over
 * the measured window, latency percentiles from the histogram, and the error
 * counts that make the exit status 1.
 */
#include <inttypes.h>
#include <stdio.h>

#include "bench.h"

static const double pcts[] = {50, 90, 99, 99.9};
static const char *const pct_names[] = {"p50", "p90", "p99", "p99_9"};

/* The measured window in seconds (shorter when interrupted). */
static double window_secs(void)
{
    double s = g.t_end > g.t_measure ? (double)(g.t_end - g.t_measure) / 1e9 : 0;
    return s > 0 ? s : 1e-9;
}

/* Open loop: intended sends before t_end that were never made. */
void count_backlog(void)
{
    if (g.rate <= 0 || !g.period)
        return;
    for (uint32_t i = 0; i < g.conns; i++)
        if (g.c[i].next_due && g.c[i].next_due < g.t_end)
            g.backlog += (g.t_end - g.c[i].next_due + g.period - 1) / g.period;
}

int has_errors(void)
{
    return g.lost || g.corrupted || g.out_of_order || g.unexpected || g.conn_errors || g.short_count;
}

void report_human(void)
{
    double secs = window_secs();
    printf("echo-bench %s  mode=%s conns=%u", g.url,
           g.mode == MODE_ECHO ? (g.rate > 0 ? "open-loop" : "closed-loop") : "connect-rate", g.conns);
    if (g.mode == MODE_ECHO) {
        printf(" size=%" PRIu64 " %s", g.size, g.text ? "text" : "binary");
        if (g.rate > 0)
            printf(" rate=%.0f/s", g.rate);
        else
            printf(" inflight=%u", g.inflight);
    }
    printf(" duration=%.3gs warmup=%.3gs\n", secs, g.warmup);
    if (g.mode == MODE_ECHO) {
        printf("messages:   %" PRIu64 " echoed in window, %.1f msg/s, %.3f MB/s payload each way\n", g.msgs,
               (double)g.msgs / secs, (double)g.bytes / secs / 1e6);
        if (g.deflate)
            printf("deflate:    permessage-deflate on every connection, %" PRIu64 " of %" PRIu64
                   " echoes came compressed\n", g.deflated_echoes, g.received);
        if (g.precompressed)
            printf("            (pre-compressed payloads; %" PRIu64 " echoes came back byte for byte as sent)\n",
                   g.passthrough_echoes);
        printf("sent:       %" PRIu64 " total, %" PRIu64 " echoes received", g.sent, g.received);
        if (g.rate > 0)
            printf(", %" PRIu64 " intended sends not made (backlog)", g.backlog);
        printf("\n");
    } else {
        printf("handshakes: %" PRIu64 " in window, %.1f handshakes/s\n", g.handshakes, (double)g.handshakes / secs);
    }
    printf("latency:   ");
    for (int i = 0; i < 4; i++)
        printf(" %s %.1fus", i == 3 ? "p99.9" : pct_names[i], (double)hist_percentile(&g.lat, pcts[i]) / 1e3);
    printf(" max %.1fus mean %.1fus (%" PRIu64 " samples)\n", (double)g.lat.max / 1e3,
           g.lat.cnt ? (double)g.lat.sum / (double)g.lat.cnt / 1e3 : 0.0, g.lat.cnt);
    if (g.backlog)
        printf("warning:    --rate was not reached: %" PRIu64 " intended sends were never made (latency\n"
               "            of those is unbounded; the sent ones count from their intended time)\n",
               g.backlog);
    printf("errors:     lost %" PRIu64 ", corrupted %" PRIu64 ", out-of-order %" PRIu64 ", unexpected %" PRIu64
           ", connection %" PRIu64 "%s\n",
           g.lost, g.corrupted, g.out_of_order, g.unexpected, g.conn_errors, has_errors() ? "  FAIL" : "");
}

static void json_str(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            printf("\\%c", *s);
        else if ((unsigned char)*s < 0x20)
            printf("\\u%04x", *s);
        else
            putchar(*s);
    }
    putchar('"');
}

void report_json(void)
{
    double secs = window_secs();
    printf("{\"mode\":\"%s\",\"url\":",
           g.mode == MODE_ECHO ? (g.rate > 0 ? "open-loop" : "closed-loop") : "connect-rate");
    json_str(g.url);
    printf(",\"conns\":%u,\"size\":%" PRIu64 ",\"text\":%s,\"inflight\":%u,\"rate\":%.3f", g.conns, g.size,
           g.text ? "true" : "false", g.inflight, g.rate);
    printf(",\"duration_s\":%.3f,\"warmup_s\":%.3f", secs, g.warmup);
    if (g.deflate)
        printf(",\"deflate\":true,\"deflated_echoes\":%" PRIu64, g.deflated_echoes);
    if (g.compressible)
        printf(",\"compressible\":true");
    if (g.precompressed)
        printf(",\"precompressed\":true,\"passthrough_echoes\":%" PRIu64, g.passthrough_echoes);
    if (g.mode == MODE_ECHO)
        printf(",\"messages\":%" PRIu64 ",\"msgs_per_s\":%.3f,\"mb_per_s\":%.6f,\"sent\":%" PRIu64
               ",\"received\":%" PRIu64 ",\"backlog\":%" PRIu64,
               g.msgs, (double)g.msgs / secs, (double)g.bytes / secs / 1e6, g.sent, g.received, g.backlog);
    else
        printf(",\"handshakes\":%" PRIu64 ",\"handshakes_per_s\":%.3f", g.handshakes, (double)g.handshakes / secs);
    printf(",\"latency_us\":{");
    for (int i = 0; i < 4; i++)
        printf("\"%s\":%.3f,", pct_names[i], (double)hist_percentile(&g.lat, pcts[i]) / 1e3);
    printf("\"max\":%.3f,\"mean\":%.3f,\"samples\":%" PRIu64 "}", (double)g.lat.max / 1e3,
           g.lat.cnt ? (double)g.lat.sum / (double)g.lat.cnt / 1e3 : 0.0, g.lat.cnt);
    printf(",\"errors\":{\"lost\":%" PRIu64 ",\"corrupted\":%" PRIu64 ",\"out_of_order\":%" PRIu64
           ",\"unexpected\":%" PRIu64 ",\"connection\":%" PRIu64 ",\"total\":%" PRIu64 "}",
           g.lost, g.corrupted, g.out_of_order, g.unexpected, g.conn_errors,
           g.lost + g.corrupted + g.out_of_order + g.unexpected + g.conn_errors);
    printf(",\"ok\":%s}\n", has_errors() ? "false" : "true");
}
