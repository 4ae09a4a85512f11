/*
 * run.c - the run's timeline, one phase after the other:
 *
 *   connect ... | warmup | measure      | grace         | close
 *               t_start  t_measure      t_end           t_grace
 *               (sends)  (counted)      (no new sends;  (Close all,
 *                                        wait echoes)    exit)
 *
 * A 10 ms tick moves the phases on, times out stuck connections and shows
 * connect progress; SIGINT/SIGTERM cut the measure window short (a second
 * signal stops at once). run() sets up the loop and runs it to the end.
 */
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "bench.h"

/* Connect phase: keeps connect_conc connections in setup, so that a large
 * -c does not overflow the server's listen backlog (dropped SYNs cost a
 * one-second retransmission). */
void connect_more(void)
{
    while (g.phase == PH_CONNECT && g.pending < g.connect_conc && g.next_connect < g.conns)
        conn_start(&g.c[g.next_connect++]);
}

/* Connect progress on stderr: a rewritten line on a terminal, otherwise
 * one line a second (and a last one). */
static void progress(int final)
{
    static uint64_t last;
    if (g.quiet || g.json > 1 || g.mode == MODE_CONNECT_RATE)
        return;
    uint64_t t = now_ns();
    if (!final && t - last < (g.progress_tty ? NS_PER_S / 10 : NS_PER_S))
        return;
    last = t;
    if (g.progress_tty)
        fprintf(stderr, "\rconnecting %u/%u%s", g.up, g.conns, final ? "\n" : "");
    else
        fprintf(stderr, "connecting %u/%u%s\n", g.up, g.conns, final ? " done" : "");
}

/* Warmup and measure progress: on a terminal, one line a second with what
 * that second echoed (or handshook); nothing when stderr is not one, so
 * logs and pipes get only the report. */
static void run_progress(uint64_t t)
{
    static uint64_t last_t, last_n, last_bytes;
    uint64_t n = g.mode == MODE_CONNECT_RATE ? g.handshakes : g.received;
    uint64_t bytes = g.received * g.size;

    if (!g.progress_tty || g.quiet || g.json || g.mode == MODE_HOLD)
        return;
    if (last_t == 0 || t < last_t) {
        last_t = t;
        last_n = n;
        last_bytes = bytes;
        return;
    }
    if (t - last_t < NS_PER_S)
        return;
    double secs = (double)(t - last_t) / 1e9;
    int warm = last_t < g.t_measure; /* the phase of the second that just ended */
    double at = (double)(t - (warm ? g.t_start : g.t_measure)) / 1e9, of = warm ? g.warmup : g.duration;
    uint64_t errors = g.lost + g.corrupted + g.out_of_order + g.unexpected + g.conn_errors;
    if (g.mode == MODE_CONNECT_RATE)
        fprintf(stderr, "%s %.0f/%.0fs: %.0f handshakes/s, %" PRIu64 " errors\n", warm ? "warmup" : "measure",
                at, of, (double)(n - last_n) / secs, errors);
    else
        fprintf(stderr, "%s %.0f/%.0fs: %.0f msg/s, %.3f MB/s, %u connections open, %" PRIu64 " errors\n",
                warm ? "warmup" : "measure", at, of, (double)(n - last_n) / secs,
                (double)(bytes - last_bytes) / secs / 1e6, g.up, errors);
    last_t = t;
    last_n = n;
    last_bytes = bytes;
}

void begin_close(void)
{
    g.phase = PH_CLOSE;
    g.t_grace = now_ns() + (uint64_t)(CLOSE_TIMEOUT_S * 1e9);
    for (uint32_t i = 0; i < g.conns; i++) {
        conn *c = &g.c[i];
        if (c->state == C_IDLE)
            continue;
        if (c->state == C_OPEN && !c->closed && eev_driver_close(c->drv, EEV_CLOSE_NORMAL, NULL, 0) == 0) {
            c->state = C_CLOSING;
            conn_proceed(c);
        } else if (c->state != C_CLOSING) {
            conn_teardown(c);
        }
    }
    run_check_done();
}

/* No new sends (or handshakes); loops in progress finish their cycle. */
void begin_grace(void)
{
    g.phase = PH_GRACE;
    g.t_grace = now_ns() + (uint64_t)(g.grace * 1e9);
    run_check_done();
}

static int grace_done(void)
{
    if (g.mode == MODE_CONNECT_RATE)
        return g.live == 0;
    return g.outstanding == 0;
}

/* Moves on when the current phase has nothing left to wait for. */
void run_check_done(void)
{
    if (g.phase == PH_GRACE && grace_done())
        begin_close();
    else if (g.phase == PH_CLOSE && g.live == 0) {
        g.phase = PH_DONE;
        ev_break(g.loop, EVBREAK_ALL);
    }
}

static void start_run(void)
{
    progress(1);
    g.phase = PH_RUN;
    g.t_start = now_ns();
    g.t_measure = g.t_start + (uint64_t)(g.warmup * 1e9);
    g.t_end = g.t_measure + (uint64_t)(g.duration * 1e9);
    if (g.mode == MODE_HOLD) {
        hold_report(1);
        return;
    }
    if (g.mode == MODE_CONNECT_RATE) {
        for (uint32_t i = 0; i < g.conns; i++)
            conn_start(&g.c[i]);
        return;
    }
    if (g.rate > 0)
        g.period = (uint64_t)((double)g.conns * 1e9 / g.rate);
    if (g.period == 0)
        g.period = 1;
    for (uint32_t i = 0; i < g.conns; i++) {
        conn *c = &g.c[i];
        if (c->state != C_OPEN)
            continue;
        /* Spread the connections' schedules evenly over one period. */
        c->next_due = g.t_start + g.period * i / g.conns;
        conn_proceed(c);
    }
}

static void tick_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)w;
    (void)revents;
    uint64_t t = now_ns();
    if (g.phase == PH_CONNECT) {
        progress(0);
        if (g.mode == MODE_HOLD)
            hold_report(0);
        for (uint32_t i = 0; i < g.next_connect; i++) {
            conn *c = &g.c[i];
            if ((c->state == C_CONNECTING || c->state == C_HANDSHAKE) && t - c->t_connect > CONNECT_TIMEOUT_NS)
                conn_finish(c, 1, "connect/handshake timeout", 0);
        }
        if (g.pending == 0 && g.next_connect == g.conns) {
            if (g.up == 0) {
                progress(1);
                fprintf(stderr, "echo-bench: no connection could be established\n");
                g.phase = PH_DONE;
                ev_break(g.loop, EVBREAK_ALL);
                return;
            }
            start_run();
        }
        return;
    }
    if (g.mode == MODE_CONNECT_RATE && g.phase != PH_CLOSE) {
        for (uint32_t i = 0; i < g.conns; i++) {
            conn *c = &g.c[i];
            if (c->state != C_IDLE && t - c->t_connect > CONNECT_TIMEOUT_NS)
                conn_finish(c, 1, "handshake/close timeout", 0);
        }
    }
    if (g.phase == PH_RUN && g.mode == MODE_HOLD) {
        if (g.interrupted || (g.duration > 0 && t >= g.t_end))
            begin_close();
        return;
    }
    if (g.phase == PH_RUN)
        run_progress(t);
    if (g.phase == PH_RUN && (t >= g.t_end || g.interrupted)) {
        if (g.interrupted && g.t_end > t)
            g.t_end = t > g.t_measure ? t : g.t_measure;
        begin_grace();
        return;
    }
    if (g.phase == PH_GRACE && t >= g.t_grace) {
        begin_close();
        return;
    }
    if (g.phase == PH_CLOSE && t >= g.t_grace) {
        for (uint32_t i = 0; i < g.conns; i++)
            conn_teardown(&g.c[i]);
        g.phase = PH_DONE;
        ev_break(g.loop, EVBREAK_ALL);
        return;
    }
    if (g.phase == PH_GRACE || g.phase == PH_CLOSE)
        run_check_done();
    /* Hold mode: drop of an idle connection is an error already counted. */
}

static void signal_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
    (void)loop;
    (void)w;
    (void)revents;
    if (g.interrupted++) {
        /* Second signal: stop at once. */
        g.phase = PH_DONE;
        ev_break(g.loop, EVBREAK_ALL);
        return;
    }
    if (g.phase == PH_CONNECT) {
        begin_close();
        return;
    }
    tick_cb(g.loop, &g.tick, 0);
}

/* Runs the current mode over g.conns connections (ids from hold_id_base).
 * Returns 0, or -1 when setup failed. */
int run(void)
{
    g.loop = ev_default_loop(EVFLAG_AUTO);
    if (!g.loop) {
        fprintf(stderr, "echo-bench: cannot initialise libev\n");
        return -1;
    }
    g.c = calloc(g.conns, sizeof(*g.c));
    g.rbuf = malloc(RBUF_LEN);
    if (getrandom(&g.run_seed, sizeof(g.run_seed), 0) != sizeof(g.run_seed))
        g.run_seed = now_ns() ^ (uint64_t)getpid() << 32;
    if (!g.c || !g.rbuf || (g.mode == MODE_ECHO && payload_pool_init(&g.pool, g.size, g.run_seed, g.text, g.compressible) < 0)) {
        fprintf(stderr, "echo-bench: out of memory\n");
        return -1;
    }
    for (uint32_t i = 0; i < g.conns; i++) {
        g.c[i].id = g.hold_id_base + i;
        g.c[i].fd = -1;
        g.c[i].heap_idx = NOT_QUEUED;
    }
    hist_init(&g.lat);
    if (load_init() < 0)
        return -1;
    client_init();
    g.progress_tty = isatty(2);

    ev_timer_init(&g.tick, tick_cb, 0.01, 0.01);
    ev_timer_start(g.loop, &g.tick);
    ev_signal_init(&g.sigint, signal_cb, SIGINT);
    ev_signal_start(g.loop, &g.sigint);
    ev_signal_init(&g.sigterm, signal_cb, SIGTERM);
    ev_signal_start(g.loop, &g.sigterm);

    if (g.mode == MODE_CONNECT_RATE) {
        start_run();
    } else {
        g.phase = PH_CONNECT;
        connect_more();
    }
    ev_run(g.loop, 0);
    return 0;
}
