/*
 * echo-bench - WebSocket echo load generator (libev, single thread).
 *
 * Three modes share one connection layer built on the eev driver in the
 * client role (handshake, framing and masking are the driver's):
 *
 *   echo          CONNS connections, each keeping INFLIGHT messages in
 *                 flight (closed loop), or sending at a fixed total --rate
 *                 (open loop; latency runs from the intended send time, so
 *                 a stalled server cannot hide its queueing: no coordinated
 *                 omission). Every echo is checked against the payload
 *                 regenerated from (connection id, seq) and against the
 *                 FIFO of outstanding sequence numbers.
 *   connect-rate  CONNS loops of connect, upgrade, Close, wait, repeat.
 *   hold          N idle upgraded connections, forked over workers when N
 *                 exceeds what one process may open.
 *
 * Timeline of an echo or connect-rate run:
 *
 *   connect ... | warmup | measure      | grace         | close
 *               t_start  t_measure      t_end           t_grace
 *               (sends)  (counted)      (no new sends;  (Close all,
 *                                        wait echoes)    exit)
 *
 * Latency is recorded for messages whose (intended) send time falls in
 * [t_measure, t_end); throughput counts echoes received in that window.
 * Outstanding echoes at t_grace are lost.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ev.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <eev/driver.h>

#include "hist.h"
#include "payload.h"

#define RBUF_LEN (256 * 1024)     /* shared read buffer */
#define OUT_HIGH_WATER (256 * 1024) /* stop producing above this much queued */
#define IOV_MAX_BATCH 64
#define READS_PER_EVENT 8 /* fairness: reads per readiness event */
#define HOLD_PER_PROCESS 15000 /* the fd limit is 20000 (hard) */
#define CONNECT_TIMEOUT_NS (10 * NS_PER_S)
#define CLOSE_TIMEOUT_S 2.0
#define OOO_SCAN 64 /* seqs either side checked to tell reordering from corruption */
#define NS_PER_S 1000000000ull

enum mode { MODE_ECHO, MODE_CONNECT_RATE, MODE_HOLD };

/* Run phases, in order. */
enum phase { PH_CONNECT, PH_RUN, PH_GRACE, PH_CLOSE, PH_DONE };

enum cstate {
    C_IDLE,       /* no socket */
    C_CONNECTING, /* TCP connect in progress */
    C_HANDSHAKE,  /* upgrade request sent, waiting for 101 */
    C_OPEN,
    C_CLOSING, /* Close queued, waiting for the reply or EOF */
};

typedef struct conn {
    ev_io io;
    eev_driver *drv;
    int fd;
    uint32_t id;
    uint8_t state;     /* enum cstate */
    uint8_t closed;    /* on_close fired */
    uint8_t eof;       /* read returned 0 or failed */
    uint8_t evmask;    /* events the io watcher is started with, or 0 */
    uint64_t t_connect; /* ns: connect() started (handshake latency) */
    /* Outstanding echoes are seqs [ack_seq, next_seq); ring[seq & ring_mask]
     * is the send time (intended, in open loop) of seq. */
    uint64_t next_seq;
    uint64_t ack_seq;
    uint64_t *ring;
    uint64_t ring_mask;
    uint64_t next_due; /* open loop: intended time of next_seq */
    uint32_t heap_idx; /* open loop: position in g.heap, or NOT_QUEUED */
} conn;

#define NOT_QUEUED UINT32_MAX

static struct {
    /* options */
    enum mode mode;
    const char *url;
    char host_hdr[300]; /* Host header value */
    char *path;
    struct sockaddr_storage addr;
    socklen_t addr_len;
    uint32_t conns;
    uint64_t size;
    int text;
    uint32_t inflight;
    double duration;
    double warmup;
    double rate; /* 0: closed loop */
    double grace;
    uint32_t connect_conc;
    int json;
    int quiet;
    uint32_t hold_id_base; /* hold workers: first connection id */

    /* runtime */
    struct ev_loop *loop;
    eev_callbacks cb;
    eev_options opt;
    conn *c;
    uint8_t *rbuf;
    payload_pool pool; /* every message's payload */
    uint64_t run_seed;
    enum phase phase;
    uint64_t now;      /* ns, refreshed after each read */
    uint64_t t_start, t_measure, t_end, t_grace;
    uint64_t period; /* open loop: ns between sends on one connection */
    uint32_t next_connect; /* connect phase: next index to start */
    uint32_t pending;      /* connections being set up */
    uint32_t up;           /* connections open */
    uint32_t live;         /* connections with a socket */
    ev_timer tick;
    /* Open loop schedule: a min-heap of connections by next_due, woken by a
     * timerfd. libev's own timers go through epoll_wait()'s millisecond
     * timeout, and that lateness would show up as latency. */
    conn **heap;
    uint32_t heap_len;
    int tfd;
    ev_io tfd_io;
    ev_signal sigint, sigterm;
    int interrupted;
    int progress_tty;
    int hold_report_fd; /* hold worker: pipe to the parent, or -1 */

    /* results */
    hist lat;
    uint64_t sent, received; /* all, including warmup */
    uint64_t msgs, bytes;    /* echoes received in the measure window */
    uint64_t handshakes;     /* connect-rate: opened in the window */
    uint64_t lost, corrupted, out_of_order, unexpected;
    uint64_t conn_errors;
    uint64_t backlog; /* open loop: intended sends never made */
    uint64_t outstanding;
} g;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * NS_PER_S + (uint64_t)ts.tv_nsec;
}

/* ---- connection layer ---------------------------------------------------- */

static void conn_start(conn *c);
static void conn_proceed(conn *c);
static void run_check_done(void);

static void conn_fail(conn *c, const char *what, int err)
{
    g.conn_errors++;
    if (!g.quiet && g.conn_errors <= 10)
        fprintf(stderr, "echo-bench: conn %u: %s%s%s\n", c->id, what, err ? ": " : "", err ? strerror(err) : "");
    if (g.conn_errors == 11 && !g.quiet)
        fprintf(stderr, "echo-bench: (further connection errors not shown)\n");
}

static void io_set(conn *c, int ev)
{
    if (c->evmask == ev)
        return;
    ev_io_stop(g.loop, &c->io);
    ev_io_set(&c->io, c->fd, ev);
    ev_io_start(g.loop, &c->io);
    c->evmask = (uint8_t)ev;
}

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

static void sched_remove(conn *c)
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

/* Drops the socket and the driver. Outstanding echoes become lost. */
static void conn_teardown(conn *c)
{
    uint8_t was = c->state;
    if (c->state == C_IDLE)
        return;
    ev_io_stop(g.loop, &c->io);
    c->evmask = 0;
    sched_remove(c);
    close(c->fd);
    c->fd = -1;
    if (c->drv)
        eev_driver_del(c->drv);
    c->drv = NULL;
    uint64_t out = c->next_seq - c->ack_seq;
    g.lost += out;
    g.outstanding -= out;
    c->ack_seq = c->next_seq;
    c->state = C_IDLE;
    g.live--;
    if (was == C_OPEN || was == C_CLOSING)
        g.up--;
    else
        g.pending--;
}

/* Connect phase: keeps connect_conc connections in setup, so that a large
 * -c does not overflow the server's listen backlog (dropped SYNs cost a
 * one-second retransmission). */
static void connect_more(void)
{
    while (g.phase == PH_CONNECT && g.pending < g.connect_conc && g.next_connect < g.conns)
        conn_start(&g.c[g.next_connect++]);
}

/* The connection ended (cleanly or not); decides what comes next. */
static void conn_finish(conn *c, int failed, const char *why, int err)
{
    uint8_t was = c->state;
    if (failed)
        conn_fail(c, why, err);
    conn_teardown(c);
    if (g.phase == PH_CONNECT) {
        connect_more();
    } else if (g.mode == MODE_CONNECT_RATE && g.phase == PH_RUN && (was == C_CLOSING || failed)) {
        conn_start(c);
    }
    run_check_done();
}

static void on_open(eev_driver *d, void *ud)
{
    conn *c = ud;
    c->state = C_OPEN;
    g.pending--;
    g.up++;
    connect_more();
    if (g.mode == MODE_CONNECT_RATE && g.phase == PH_RUN) {
        uint64_t t = now_ns();
        if (c->t_connect >= g.t_measure && c->t_connect < g.t_end) {
            g.handshakes++;
            hist_add(&g.lat, t - c->t_connect);
        }
        if (eev_driver_close(d, EEV_CLOSE_NORMAL, NULL, 0) == 0)
            c->state = C_CLOSING;
    }
}

static void count_bad_echo(conn *c, const eev_message_arg *m)
{
    int txt = m->opcode == EEV_OP_TEXT;
    if (m->len == g.size && txt == g.text) {
        uint64_t lo = c->ack_seq > OOO_SCAN ? c->ack_seq - OOO_SCAN : 0;
        uint64_t hi = c->ack_seq + OOO_SCAN;
        for (uint64_t s = lo; s <= hi; s++) {
            if (s != c->ack_seq && payload_check(&g.pool, m->data, m->len, c->id, s)) {
                g.out_of_order++;
                return;
            }
        }
    }
    g.corrupted++;
}

static int on_message(eev_driver *d, const eev_message_arg *m, void *ud)
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
    if (m->len != g.size || (m->opcode == EEV_OP_TEXT) != g.text ||
        !payload_check(&g.pool, m->data, m->len, c->id, seq)) {
        c->ack_seq--; /* count_bad_echo() looks at the seq it replaced */
        count_bad_echo(c, m);
        c->ack_seq++;
        return 0;
    }
    if (g.now >= g.t_measure && g.now < g.t_end) {
        g.msgs++;
        g.bytes += m->len;
    }
    if (t_send >= g.t_measure && t_send < g.t_end)
        hist_add(&g.lat, g.now > t_send ? g.now - t_send : 0);
    return 0;
}

static void on_close(eev_driver *d, const eev_close_arg *a, void *ud)
{
    conn *c = ud;
    (void)d;
    c->closed = 1;
    if ((c->state == C_OPEN && g.phase < PH_CLOSE && g.mode != MODE_CONNECT_RATE) ||
        c->state == C_HANDSHAKE || c->state == C_CONNECTING) {
        if (!g.quiet && g.conn_errors < 10)
            fprintf(stderr, "echo-bench: conn %u: closed by peer (code %u%s%.*s)\n", c->id, a->code_received,
                    a->reason_len ? ", " : "", (int)a->reason_len, a->reason ? a->reason : "");
    }
}

static void on_error(eev_driver *d, const eev_error_arg *e, void *ud)
{
    conn *c = ud;
    (void)d;
    if (!g.quiet && g.conn_errors < 10)
        fprintf(stderr, "echo-bench: conn %u: protocol error %u (%s)\n", c->id, e->close_code,
                e->message ? e->message : "?");
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
    const uint8_t *p = payload_of(&g.pool, c->id, c->next_seq);
    if (eev_driver_send(c->drv, g.text ? EEV_OP_TEXT : EEV_OP_BINARY, p, g.size) != 0)
        return -1;
    c->ring[c->next_seq & c->ring_mask] = t;
    c->next_seq++;
    g.sent++;
    g.outstanding++;
    return 0;
}

static int may_produce(conn *c)
{
    return c->state == C_OPEN && !c->closed && eev_driver_out_len(c->drv) < OUT_HIGH_WATER;
}

/* Sends what the mode calls for now: top up the window (closed loop) or
 * everything due (open loop). */
static void produce(conn *c)
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

/* Writes queued output until the kernel pushes back. Returns 0, or -1 with
 * errno on a socket error. */
static int flush(conn *c)
{
    struct iovec iov[IOV_MAX_BATCH];
    for (;;) {
        int n = eev_driver_out_iov(c->drv, iov, IOV_MAX_BATCH);
        if (n <= 0)
            return 0;
        ssize_t w = writev(c->fd, iov, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return 0;
            return -1;
        }
        eev_driver_out_consume(c->drv, (size_t)w);
        size_t total = 0;
        for (int i = 0; i < n; i++)
            total += iov[i].iov_len;
        if ((size_t)w < total)
            return 0; /* short write: the socket buffer is full */
    }
}

/*
 * The pump: produce, flush, produce again if flushing made room, then
 * decide on the watchers or on the end of the connection.
 */
static void conn_proceed(conn *c)
{
    for (int round = 0; round < 4; round++) {
        produce(c);
        size_t before = eev_driver_out_len(c->drv);
        if (flush(c) < 0) {
            int err = errno;
            eev_driver_eof(c->drv);
            int expected = c->state == C_CLOSING || g.phase >= PH_CLOSE;
            conn_finish(c, !expected, "write", err);
            return;
        }
        size_t after = eev_driver_out_len(c->drv);
        if (after >= before || after != 0)
            break; /* nothing written, or the socket is full */
    }
    /* A refused handshake reports on_error but no on_close: the driver is
     * simply CLOSED. */
    if (eev_driver_state(c->drv) == EEV_STATE_CLOSED)
        c->closed = 1;
    /* After our own Close, wait for the server to close TCP first (RFC 6455
     * §7.1.1: the TIME_WAIT then stays on its side); otherwise the end of the
     * protocol ends the connection. */
    if (c->eof || (c->closed && !eev_driver_want_write(c->drv) && c->state != C_CLOSING)) {
        int clean = c->state == C_CLOSING || g.phase >= PH_CLOSE ||
                    (g.mode == MODE_CONNECT_RATE && c->state == C_OPEN);
        conn_finish(c, !clean, c->state == C_HANDSHAKE ? "handshake failed" : "connection closed", 0);
        return;
    }
    io_set(c, EV_READ | (eev_driver_want_write(c->drv) ? EV_WRITE : 0));
}

static void conn_read(conn *c)
{
    for (int i = 0; i < READS_PER_EVENT; i++) {
        ssize_t n = read(c->fd, g.rbuf, RBUF_LEN);
        if (n > 0) {
            g.now = now_ns();
            if (eev_driver_recv(c->drv, g.rbuf, (size_t)n) < 0) {
                c->eof = 1;
                conn_fail(c, "driver failure", 0);
                return;
            }
            if ((size_t)n < RBUF_LEN || c->closed)
                return;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        c->eof = 1;
        if (!c->closed)
            eev_driver_eof(c->drv);
        return;
    }
}

static void io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    conn *c = (conn *)w;
    (void)loop;
    if (c->state == C_CONNECTING) {
        int err = 0;
        socklen_t len = sizeof(err);
        if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
            err = errno;
        if (err == EINPROGRESS || err == EALREADY)
            return;
        if (err) {
            conn_finish(c, 1, "connect", err);
            return;
        }
        c->state = C_HANDSHAKE;
    }
    if (revents & EV_READ)
        conn_read(c);
    conn_proceed(c);
}

static void conn_start(conn *c)
{
    c->fd = socket(g.addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        g.conn_errors++;
        fprintf(stderr, "echo-bench: socket: %s\n", strerror(errno));
        return;
    }
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (eev_driver_new(&c->drv, &g.cb, &g.opt, c) != 0) {
        close(c->fd);
        g.conn_errors++;
        fprintf(stderr, "echo-bench: eev_driver_new failed\n");
        return;
    }
    c->closed = c->eof = 0;
    c->t_connect = now_ns();
    g.live++;
    g.pending++;
    c->state = C_CONNECTING;
    ev_io_init(&c->io, io_cb, c->fd, EV_WRITE);
    c->evmask = 0;
    if (connect(c->fd, (struct sockaddr *)&g.addr, g.addr_len) == 0) {
        c->state = C_HANDSHAKE;
        conn_proceed(c);
        return;
    }
    if (errno != EINPROGRESS) {
        conn_finish(c, 1, "connect", errno);
        return;
    }
    io_set(c, EV_WRITE);
}

/* ---- run control --------------------------------------------------------- */

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

static void begin_close(void)
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
static void begin_grace(void)
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
static void run_check_done(void)
{
    if (g.phase == PH_GRACE && grace_done())
        begin_close();
    else if (g.phase == PH_CLOSE && g.live == 0) {
        g.phase = PH_DONE;
        ev_break(g.loop, EVBREAK_ALL);
    }
}

static void hold_report(int done);

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
static int run(void)
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
    if (!g.c || !g.rbuf || (g.mode == MODE_ECHO && payload_pool_init(&g.pool, g.size, g.run_seed, g.text) < 0)) {
        fprintf(stderr, "echo-bench: out of memory\n");
        return -1;
    }
    for (uint32_t i = 0; i < g.conns; i++) {
        g.c[i].id = g.hold_id_base + i;
        g.c[i].fd = -1;
        g.c[i].heap_idx = NOT_QUEUED;
    }
    hist_init(&g.lat);
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
    g.cb.on_open = on_open;
    g.cb.on_message = on_message;
    g.cb.on_close = on_close;
    g.cb.on_error = on_error;
    g.opt.role = EEV_ROLE_CLIENT;
    g.opt.host = g.host_hdr;
    g.opt.path = g.path;
    if (g.size > 64ull << 20)
        g.opt.max_message_size = g.size;
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

/* ---- reports ------------------------------------------------------------- */

static const double pcts[] = {50, 90, 99, 99.9};
static const char *const pct_names[] = {"p50", "p90", "p99", "p99_9"};

/* The measured window in seconds (shorter when interrupted). */
static double window_secs(void)
{
    double s = g.t_end > g.t_measure ? (double)(g.t_end - g.t_measure) / 1e9 : 0;
    return s > 0 ? s : 1e-9;
}

/* Open loop: intended sends before t_end that were never made. */
static void count_backlog(void)
{
    if (g.rate <= 0 || !g.period)
        return;
    for (uint32_t i = 0; i < g.conns; i++)
        if (g.c[i].next_due && g.c[i].next_due < g.t_end)
            g.backlog += (g.t_end - g.c[i].next_due + g.period - 1) / g.period;
}

static int has_errors(void)
{
    return g.lost || g.corrupted || g.out_of_order || g.unexpected || g.conn_errors;
}

static void report_human(void)
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

static void report_json(void)
{
    double secs = window_secs();
    printf("{\"mode\":\"%s\",\"url\":",
           g.mode == MODE_ECHO ? (g.rate > 0 ? "open-loop" : "closed-loop") : "connect-rate");
    json_str(g.url);
    printf(",\"conns\":%u,\"size\":%" PRIu64 ",\"text\":%s,\"inflight\":%u,\"rate\":%.3f", g.conns, g.size,
           g.text ? "true" : "false", g.inflight, g.rate);
    printf(",\"duration_s\":%.3f,\"warmup_s\":%.3f", secs, g.warmup);
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

/* ---- hold mode ----------------------------------------------------------- */

/* Progress record a hold worker sends to its parent. */
typedef struct hold_msg {
    uint32_t up, failed, done;
} hold_msg;

static void hold_report(int done)
{
    if (g.hold_report_fd < 0) {
        if (done) {
            if (g.conn_errors) {
                fprintf(stderr, "echo-bench: only %u of %u connections are up\n", g.up, g.conns);
                g.interrupted = 1;
                begin_close();
                return;
            }
            printf("holding %u\n", g.up);
            fflush(stdout);
        }
        return;
    }
    hold_msg m = {g.up, (uint32_t)g.conn_errors, (uint32_t)done};
    ssize_t rv = write(g.hold_report_fd, &m, sizeof(m));
    (void)rv;
}

static volatile sig_atomic_t parent_sig;

static void parent_sig_handler(int sig)
{
    parent_sig = sig;
}

static int hold_main(uint32_t n)
{
    uint32_t workers = (n + HOLD_PER_PROCESS - 1) / HOLD_PER_PROCESS;
    pid_t *pids = calloc(workers, sizeof(*pids));
    int *fds = calloc(workers, sizeof(*fds));
    hold_msg *st = calloc(workers, sizeof(*st));
    if (!pids || !fds || !st)
        return 1;
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = parent_sig_handler;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    pid_t parent = getpid();
    fflush(stdout);
    fflush(stderr);
    for (uint32_t w = 0; w < workers; w++) {
        int p[2];
        if (pipe2(p, O_CLOEXEC) < 0) {
            perror("echo-bench: pipe");
            return 1;
        }
        uint32_t share = n / workers + (w < n % workers);
        pid_t pid = fork();
        if (pid < 0) {
            perror("echo-bench: fork");
            return 1;
        }
        if (pid == 0) {
            close(p[0]);
            prctl(PR_SET_PDEATHSIG, SIGTERM);
            if (getppid() != parent)
                _exit(1);
            signal(SIGINT, SIG_IGN); /* the parent forwards SIGTERM */
            signal(SIGTERM, SIG_DFL);
            g.hold_report_fd = p[1];
            g.hold_id_base = w * HOLD_PER_PROCESS;
            g.conns = share;
            g.warmup = 0;
            g.progress_tty = 0;
            g.json = 2; /* no progress lines from workers */
            if (run() < 0)
                _exit(1);
            _exit(g.conn_errors ? 1 : 0);
        }
        close(p[1]);
        fds[w] = p[0];
        pids[w] = pid;
    }
    /* Parent: aggregate progress until every worker is up, then wait. */
    struct pollfd *pfd = calloc(workers, sizeof(*pfd));
    int announced = 0, failed = 0, tty = isatty(2);
    uint64_t deadline = g.duration > 0 ? now_ns() + (uint64_t)(g.duration * 1e9) : 0;
    uint32_t open_pipes = workers;
    while (!parent_sig && open_pipes) {
        for (uint32_t w = 0; w < workers; w++) {
            pfd[w].fd = fds[w];
            pfd[w].events = POLLIN;
        }
        int rv = poll(pfd, workers, 200);
        if (rv < 0 && errno != EINTR)
            break;
        for (uint32_t w = 0; rv > 0 && w < workers; w++) {
            if (!pfd[w].revents)
                continue;
            hold_msg m;
            ssize_t r = read(fds[w], &m, sizeof(m));
            if (r == sizeof(m)) {
                st[w] = m;
            } else if (r <= 0) {
                close(fds[w]);
                fds[w] = -1;
                open_pipes--;
                if (!st[w].done || !announced)
                    failed = 1;
            }
        }
        uint32_t up = 0, done = 0, bad = 0;
        for (uint32_t w = 0; w < workers; w++) {
            up += st[w].up;
            done += st[w].done != 0;
            bad += st[w].failed;
        }
        if (!announced && !g.quiet && tty)
            fprintf(stderr, "\rconnecting %u/%u", up, n);
        if (!announced && done == workers) {
            if (!g.quiet && tty)
                fprintf(stderr, "\n");
            if (bad) {
                fprintf(stderr, "echo-bench: only %u of %u connections are up\n", up, n);
                failed = 1;
                break;
            }
            printf("holding %u\n", up);
            fflush(stdout);
            announced = 1;
        }
        if (failed)
            break;
        if (deadline && now_ns() >= deadline)
            break;
    }
    for (uint32_t w = 0; w < workers; w++)
        kill(pids[w], SIGTERM);
    int rc = failed ? 1 : 0;
    for (uint32_t w = 0; w < workers; w++) {
        int status;
        while (waitpid(pids[w], &status, 0) < 0 && errno == EINTR)
            ;
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            /* Workers killed by our own SIGTERM are fine once announced. */
            if (!(announced && WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM))
                rc = 1;
        }
    }
    return rc;
}

/* ---- options ------------------------------------------------------------- */

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: echo-bench ws://HOST:PORT/PATH [options]\n"
            "\n"
            "WebSocket echo load generator. HOST is an IPv4 literal, a bracketed IPv6\n"
            "literal (ws://[::1]:9001/) or a name such as localhost. Only ws:// (no TLS).\n"
            "\n"
            "Echo mode (default): every echo is verified (content, opcode, order).\n"
            "  -c, --connections N     connections (default 10)\n"
            "  -s, --size BYTES        message payload size; suffixes k, m (KiB, MiB)\n"
            "                          (default 16)\n"
            "      --text              send text messages (printable ASCII payloads)\n"
            "      --binary            send binary messages (default)\n"
            "  -i, --inflight N        messages in flight per connection, closed loop\n"
            "                          (default 1)\n"
            "  -r, --rate MSGS_PER_S   open loop: send at this total rate, spread evenly\n"
            "                          over the connections; latency is measured from\n"
            "                          the intended send time (no coordinated omission)\n"
            "  -d, --duration SECONDS  measured duration (default 10)\n"
            "  -w, --warmup SECONDS    warmup before measuring, not counted (default 1)\n"
            "      --grace SECONDS     after the run, wait this long for outstanding\n"
            "                          echoes before counting them lost (default 2)\n"
            "      --connect-concurrency N\n"
            "                          connections being set up at once (default 256),\n"
            "                          so that large -c stays within the listen backlog\n"
            "      --json              print one JSON object instead of the text report\n"
            "  -q, --quiet             no progress or per-connection messages on stderr\n"
            "\n"
            "Connect-rate mode:\n"
            "      --connect-rate      run -c loops of connect, upgrade, Close, wait for\n"
            "                          the reply or EOF, repeat, for -d seconds after\n"
            "                          --warmup; reports handshakes/s and the latency\n"
            "                          from connect() to the 101 response\n"
            "\n"
            "Hold mode:\n"
            "      --hold N            open N idle upgraded connections, print\n"
            "                          \"holding N\" on stdout once all are up, and keep\n"
            "                          them until SIGINT/SIGTERM (or -d SECONDS when -d\n"
            "                          is given); above %u connections the work is\n"
            "                          forked over worker processes\n"
            "\n"
            "Reports messages/s, MB/s (payload bytes echoed per second, 10^6 bytes),\n"
            "latency p50/p90/p99/p99.9/max (log-linear histogram, 64 sub-buckets per\n"
            "power of two, ns resolution) and errors: lost (connection closed with\n"
            "messages outstanding, or no echo by the end of the grace period),\n"
            "corrupted, out-of-order, unexpected (echo of nothing sent) and connection\n"
            "errors.\n"
            "\n"
            "Exit status: 0 success, 1 any error above, 2 usage error.\n"
            "  -h, --help              this text\n",
            HOLD_PER_PROCESS);
}

static void die_usage(const char *fmt, const char *arg)
{
    fprintf(stderr, "echo-bench: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\nTry 'echo-bench --help'.\n");
    exit(2);
}

static uint64_t parse_u64(const char *s, const char *what, int suffixes)
{
    char *end;
    errno = 0;
    if (*s == '-' || *s == '\0')
        die_usage("invalid %s", what);
    unsigned long long v = strtoull(s, &end, 10);
    if (errno)
        die_usage("invalid %s", what);
    if (suffixes && *end) {
        unsigned shift = 0;
        switch (*end) {
        case 'k':
        case 'K':
            shift = 10;
            break;
        case 'm':
        case 'M':
            shift = 20;
            break;
        case 'g':
        case 'G':
            shift = 30;
            break;
        default:
            die_usage("invalid %s", what);
        }
        end++;
        if (*end == 'i' && end[1] == 'B')
            end += 2;
        else if (*end == 'B')
            end++;
        if (v > (UINT64_MAX >> shift))
            die_usage("invalid %s", what);
        v <<= shift;
    }
    if (*end)
        die_usage("invalid %s", what);
    return v;
}

static double parse_secs(const char *s, const char *what)
{
    char *end;
    double v = strtod(s, &end);
    if (end == s || *end || !isfinite(v) || v < 0 || v > 1e7)
        die_usage("invalid %s", what);
    return v;
}

/* Parses ws://HOST[:PORT][/PATH] and resolves HOST. */
static void parse_url(const char *url)
{
    if (strncmp(url, "ws://", 5) != 0) {
        if (strncmp(url, "wss://", 6) == 0)
            die_usage("%s: wss:// (TLS) is not supported", url);
        die_usage("%s: the URL must start with ws://", url);
    }
    const char *a = url + 5;
    const char *slash = a + strcspn(a, "/?#");
    char host[256], port[16] = "80";
    const char *hend;
    if (*a == '[') {
        hend = memchr(a, ']', (size_t)(slash - a));
        if (!hend || hend - a - 1 >= (ptrdiff_t)sizeof(host) || hend == a + 1)
            die_usage("%s: bad IPv6 literal", url);
        memcpy(host, a + 1, (size_t)(hend - a - 1));
        host[hend - a - 1] = '\0';
        hend++;
    } else {
        hend = a;
        while (hend < slash && *hend != ':')
            hend++;
        if (hend == a || hend - a >= (ptrdiff_t)sizeof(host))
            die_usage("%s: bad host", url);
        memcpy(host, a, (size_t)(hend - a));
        host[hend - a] = '\0';
    }
    if (hend < slash) {
        if (*hend != ':' || slash - hend - 1 < 1 || slash - hend - 1 > 5)
            die_usage("%s: bad port", url);
        memcpy(port, hend + 1, (size_t)(slash - hend - 1));
        port[slash - hend - 1] = '\0';
        char *end;
        long p = strtol(port, &end, 10);
        if (*end || p < 1 || p > 65535)
            die_usage("%s: bad port", url);
    }
    if ((size_t)(slash - a) >= sizeof(g.host_hdr))
        die_usage("%s: host too long", url);
    /* Host header: the authority as written (RFC 7230 §5.4). */
    memcpy(g.host_hdr, a, (size_t)(slash - a));
    g.host_hdr[slash - a] = '\0';
    if (*slash == '\0' || *slash == '#')
        g.path = strdup("/");
    else if (*slash == '?') {
        g.path = malloc(strlen(slash) + 2);
        if (g.path)
            sprintf(g.path, "/%s", slash);
    } else {
        g.path = strdup(slash);
        if (g.path)
            g.path[strcspn(g.path, "#")] = '\0';
    }

    struct addrinfo hints, *res, *ai;
    memset(&hints, 0, sizeof(hints));
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    int rv = getaddrinfo(host, port, &hints, &res);
    if (rv != 0) {
        fprintf(stderr, "echo-bench: %s: %s\n", host, gai_strerror(rv));
        exit(1);
    }
    /* Names such as localhost resolve to several addresses while the server
     * may listen on one: take the first that accepts a (blocking) probe. */
    int found = 0, err = 0;
    for (ai = res; ai && !found; ai = ai->ai_next) {
        int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
            continue;
        if (!ai->ai_next || connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
            memcpy(&g.addr, ai->ai_addr, ai->ai_addrlen);
            g.addr_len = ai->ai_addrlen;
            found = 1;
        } else {
            err = errno;
        }
        close(fd);
    }
    freeaddrinfo(res);
    if (!found) {
        fprintf(stderr, "echo-bench: %s: %s\n", host, strerror(err));
        exit(1);
    }
}

int main(int argc, char **argv)
{
    enum {
        OPT_TEXT = 256,
        OPT_BINARY,
        OPT_GRACE,
        OPT_JSON,
        OPT_CONNECT_RATE,
        OPT_HOLD,
        OPT_CONC,
    };
    static const struct option longopts[] = {
        {"connections", required_argument, NULL, 'c'},
        {"size", required_argument, NULL, 's'},
        {"text", no_argument, NULL, OPT_TEXT},
        {"binary", no_argument, NULL, OPT_BINARY},
        {"inflight", required_argument, NULL, 'i'},
        {"rate", required_argument, NULL, 'r'},
        {"duration", required_argument, NULL, 'd'},
        {"warmup", required_argument, NULL, 'w'},
        {"grace", required_argument, NULL, OPT_GRACE},
        {"json", no_argument, NULL, OPT_JSON},
        {"connect-rate", no_argument, NULL, OPT_CONNECT_RATE},
        {"hold", required_argument, NULL, OPT_HOLD},
        {"connect-concurrency", required_argument, NULL, OPT_CONC},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    uint64_t hold = 0;
    int duration_given = 0;
    g.mode = MODE_ECHO;
    g.conns = 10;
    g.size = 16;
    g.inflight = 1;
    g.duration = 10;
    g.warmup = 1;
    g.grace = 2;
    g.connect_conc = 256;
    g.hold_report_fd = -1;
    int ch;
    while ((ch = getopt_long(argc, argv, "c:s:i:r:d:w:qh", longopts, NULL)) != -1) {
        switch (ch) {
        case 'c': {
            uint64_t v = parse_u64(optarg, "connection count", 0);
            if (v < 1 || v > 1000000)
                die_usage("connection count %s out of range (1..1000000)", optarg);
            g.conns = (uint32_t)v;
            break;
        }
        case 's':
            g.size = parse_u64(optarg, "size", 1);
            if (g.size > (1ull << 30))
                die_usage("size %s too large (max 1 GiB)", optarg);
            break;
        case OPT_TEXT:
            g.text = 1;
            break;
        case OPT_BINARY:
            g.text = 0;
            break;
        case 'i': {
            uint64_t v = parse_u64(optarg, "inflight", 0);
            if (v < 1 || v > 1000000)
                die_usage("inflight %s out of range (1..1000000)", optarg);
            g.inflight = (uint32_t)v;
            break;
        }
        case 'r':
            g.rate = parse_secs(optarg, "rate");
            if (g.rate <= 0)
                die_usage("rate %s must be positive", optarg);
            break;
        case 'd':
            g.duration = parse_secs(optarg, "duration");
            duration_given = 1;
            break;
        case 'w':
            g.warmup = parse_secs(optarg, "warmup");
            break;
        case OPT_GRACE:
            g.grace = parse_secs(optarg, "grace");
            break;
        case OPT_JSON:
            g.json = 1;
            break;
        case OPT_CONNECT_RATE:
            g.mode = MODE_CONNECT_RATE;
            break;
        case OPT_HOLD:
            hold = parse_u64(optarg, "hold count", 0);
            if (hold < 1 || hold > 1000000)
                die_usage("hold count %s out of range (1..1000000)", optarg);
            g.mode = MODE_HOLD;
            break;
        case OPT_CONC: {
            uint64_t v = parse_u64(optarg, "connect concurrency", 0);
            if (v < 1 || v > 100000)
                die_usage("connect concurrency %s out of range", optarg);
            g.connect_conc = (uint32_t)v;
            break;
        }
        case 'q':
            g.quiet = 1;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            fprintf(stderr, "Try 'echo-bench --help'.\n");
            return 2;
        }
    }
    if (optind != argc - 1)
        die_usage("%s", optind >= argc ? "missing URL" : "more than one URL");
    g.url = argv[optind];
    if (g.mode != MODE_HOLD && g.duration <= 0)
        die_usage("%s", "duration must be positive");
    parse_url(g.url);

    signal(SIGPIPE, SIG_IGN);
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }

    if (g.mode == MODE_HOLD) {
        if (!duration_given)
            g.duration = 0;
        uint32_t n = (uint32_t)hold;
        if (n > HOLD_PER_PROCESS)
            return hold_main(n);
        /* One process: the same loop with the hold tick. */
        g.conns = n;
        g.warmup = 0;
        g.json = g.json ? 1 : 0;
        if (run() < 0)
            return 1;
        return g.conn_errors ? 1 : 0;
    }

    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && g.conns + 16 > rl.rlim_cur) {
        fprintf(stderr, "echo-bench: -c %u exceeds the open-file limit (%llu); use --hold for more\n", g.conns,
                (unsigned long long)rl.rlim_cur);
        return 2;
    }
    if (run() < 0)
        return 1;
    if (g.phase != PH_DONE || g.t_start == 0)
        return 1; /* never got past connecting */
    count_backlog();
    if (g.json)
        report_json();
    else
        report_human();
    return has_errors() ? 1 : 0;
}
