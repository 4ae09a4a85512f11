/*
 * load.c - the echo load: what each connection sends and when, and the check
 * of every echo. Closed loop keeps INFLIGHT messages outstanding per
 * connection; open loop (--rate) sends each connection's messages at their
 * intended times, kept in a min-heap woken by a timerfd. Every echo is
 * compared with the payload regenerated from (connection id, seq) and with
 * the FIFO of outstanding seqs.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "bench.h"

/* ---- open-loop schedule: binary min-heap on next_due ---- */

static void heap_swap(uint32_t a, uint32_t b)
{
    conn *t = g.heap[a];
    g.heap[a] = g.heap[b];
    g.heap[b] = t;
    g.heap[a]->heap_idx = a;
    g.heap[b]->heap_idx = b;
}

static void heap_up(uint32_t i)
{
    while (i > 0 && g.heap[(i - 1) / 2]->next_due > g.heap[i]->next_due) {
        heap_swap(i, (i - 1) / 2);
        i = (i - 1) / 2;
    }
}

static void heap_down(uint32_t i)
{
    for (;;) {
        uint32_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < g.heap_len && g.heap[l]->next_due < g.heap[m]->next_due)
            m = l;
        if (r < g.heap_len && g.heap[r]->next_due < g.heap[m]->next_due)
            m = r;
        if (m == i)
            return;
        heap_swap(i, m);
        i = m;
    }
}

/* Arms the timerfd for the earliest next_due (absolute CLOCK_MONOTONIC). */
static void sched_arm(void)
{
    struct itimerspec its;
    memset(&its, 0, sizeof(its));
    if (g.heap_len) {
        uint64_t t = g.heap[0]->next_due;
        if (t == 0)
            t = 1; /* zero would disarm */
        its.it_value.tv_sec = (time_t)(t / NS_PER_S);
        its.it_value.tv_nsec = (long)(t % NS_PER_S);
    }
    timerfd_settime(g.tfd, TFD_TIMER_ABSTIME, &its, NULL);
}

void sched_remove(conn *c)
{
    uint32_t i = c->heap_idx;
    if (i == NOT_QUEUED)
        return;
    c->heap_idx = NOT_QUEUED;
    if (i != --g.heap_len) {
        g.heap[i] = g.heap[g.heap_len];
        g.heap[i]->heap_idx = i;
        heap_down(i);
        heap_up(i);
    }
}

static void sched_insert(conn *c)
{
    int rearm = !g.heap_len || c->next_due < g.heap[0]->next_due;
    if (c->heap_idx != NOT_QUEUED)
        return;
    c->heap_idx = g.heap_len;
    g.heap[g.heap_len++] = c;
    heap_up(c->heap_idx);
    if (rearm)
        sched_arm();
}

/* 0: not the echo of seq; 1: it is; 2: it is, and came back compressed
 * byte for byte as sent (--precompressed). */
static int echo_ok(const conn *c, const eev_message_arg *m, uint64_t seq)
{
    if (g.precompressed)
        return precomp_echo_ok(c, m, seq);
    return m->len == g.size && (m->opcode == EEV_OP_TEXT) == g.text &&
           payload_check(&g.pool, m->data, m->len, c->id, seq);
}

static void count_bad_echo(conn *c, const eev_message_arg *m)
{
    int txt = m->opcode == EEV_OP_TEXT;
    if ((m->len == g.size || g.precompressed) && txt == g.text) {
        uint64_t lo = c->ack_seq > OOO_SCAN ? c->ack_seq - OOO_SCAN : 0;
        uint64_t hi = c->ack_seq + OOO_SCAN;
        for (uint64_t s = lo; s <= hi; s++) {
            if (s != c->ack_seq && echo_ok(c, m, s)) {
                g.out_of_order++;
                return;
            }
        }
    }
    g.corrupted++;
}

int load_on_message(eev_driver *d, const eev_message_arg *m, void *ud)
{
    conn *c = ud;
    (void)d;
    if (g.mode != MODE_ECHO || g.phase >= PH_CLOSE)
        return 0;
    g.received++;
    if (c->ack_seq == c->next_seq) {
        /* Nothing outstanding: an echo of something we never sent. */
        g.unexpected++;
        return 0;
    }
    uint64_t seq = c->ack_seq++;
    g.outstanding--;
    uint64_t t_send = c->ring[seq & c->ring_mask];
    int ok = echo_ok(c, m, seq);
    if (!ok) {
        c->ack_seq--; /* count_bad_echo() looks at the seq it replaced */
        count_bad_echo(c, m);
        c->ack_seq++;
        return 0;
    }
    g.deflated_echoes += m->rsv1 != 0;
    g.passthrough_echoes += ok == 2;
    if (g.now >= g.t_measure && g.now < g.t_end) {
        g.msgs++;
        g.bytes += g.size;
    }
    if (t_send >= g.t_measure && t_send < g.t_end)
        hist_add(&g.lat, g.now > t_send ? g.now - t_send : 0);
    if (g.messages && g.received == g.messages && g.phase == PH_RUN) {
        g.t_end = g.now > g.t_measure ? g.now : g.t_measure;
        begin_grace(); /* every message echoed: the run is over */
    }
    return 0;
}

/* Grows the send-time ring so that one more seq fits. */
static int ring_reserve(conn *c)
{
    uint64_t out = c->next_seq - c->ack_seq;
    if (c->ring && out <= c->ring_mask)
        return 0;
    uint64_t cap = c->ring ? (c->ring_mask + 1) * 2 : 16;
    while (cap < g.inflight + 1ull)
        cap *= 2;
    uint64_t *r = malloc(cap * sizeof(*r));
    if (!r)
        return -1;
    for (uint64_t s = c->ack_seq; s != c->next_seq; s++)
        r[s & (cap - 1)] = c->ring[s & c->ring_mask];
    free(c->ring);
    c->ring = r;
    c->ring_mask = cap - 1;
    return 0;
}

/* Queues message next_seq stamped with t. Returns 0, or -1 (not sent). */
static int send_one(conn *c, uint64_t t)
{
    if (ring_reserve(c) < 0)
        return -1;
    int rv = g.precompressed ? precomp_send(c, c->next_seq)
                             : eev_driver_send(c->drv, g.text ? EEV_OP_TEXT : EEV_OP_BINARY,
                                               payload_of(&g.pool, c->id, c->next_seq), g.size);
    if (rv != 0)
        return -1;
    c->ring[c->next_seq & c->ring_mask] = t;
    c->next_seq++;
    g.sent++;
    g.outstanding++;
    return 0;
}

/* --messages: this connection's share of the total. */
static uint64_t quota(const conn *c)
{
    uint64_t i = c->id - g.hold_id_base;
    return g.messages / g.conns + (i < g.messages % g.conns);
}

static int may_produce(conn *c)
{
    return c->state == C_OPEN && !c->closed && eev_driver_out_len(c->drv) < OUT_HIGH_WATER &&
           (!g.messages || c->next_seq < quota(c));
}

/* Sends what the mode calls for now: top up the window (closed loop) or
 * everything due (open loop). */
void load_produce(conn *c)
{
    /* Nothing is sent after t_end, not even an open-loop backlog: the grace
     * period only waits for echoes of what was sent. */
    if (g.mode != MODE_ECHO || g.phase != PH_RUN || c->state != C_OPEN)
        return;
    if (g.rate == 0) {
        uint64_t t = 0;
        while (c->next_seq - c->ack_seq < g.inflight && may_produce(c)) {
            if (!t)
                t = now_ns();
            if (t >= g.t_end || send_one(c, t) < 0)
                break;
        }
        return;
    }
    uint64_t t = now_ns();
    while (c->next_due <= t && c->next_due < g.t_end && may_produce(c)) {
        if (send_one(c, c->next_due) < 0)
            break;
        c->next_due += g.period;
    }
    /* Blocked by backpressure: the write path calls produce() again. */
    if (c->next_due < g.t_end && c->next_due > t)
        sched_insert(c);
}

static void tfd_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    uint64_t expirations;
    (void)loop;
    (void)w;
    (void)revents;
    if (read(g.tfd, &expirations, sizeof(expirations)) < 0 && errno != EAGAIN)
        return;
    uint64_t t = now_ns();
    while (g.heap_len && g.heap[0]->next_due <= t) {
        conn *c = g.heap[0];
        sched_remove(c);
        conn_proceed(c); /* sends what is due; re-queues c */
    }
    sched_arm();
}

/* Open loop: the schedule heap and its timerfd. Returns 0, or -1. */
int load_init(void)
{
    if (g.rate > 0) {
        g.heap = calloc(g.conns, sizeof(*g.heap));
        g.tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
        if (!g.heap || g.tfd < 0) {
            fprintf(stderr, "echo-bench: timerfd: %s\n", strerror(errno));
            return -1;
        }
        ev_io_init(&g.tfd_io, tfd_cb, g.tfd, EV_READ);
        ev_io_start(g.loop, &g.tfd_io);
    }
    return 0;
}
