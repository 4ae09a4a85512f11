/*
 * client.c - one echo-bench connection on the eev driver in the client role:
 * non-blocking connect, the upgrade (the driver writes the request and
 * checks the 101), the pump that reads into the shared buffer, feeds the
 * driver and writes its output with writev(), and the end of a connection
 * (teardown, counting its outstanding echoes as lost, and what comes next).
 * What to send is load.c's; when the run moves on is run.c's.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "bench.h"

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

/* Drops the socket and the driver. Outstanding echoes become lost. */
void conn_teardown(conn *c)
{
    uint8_t was = c->state;
    if (c->state == C_IDLE)
        return;
    ev_io_stop(g.loop, &c->io);
    c->evmask = 0;
    sched_remove(c);
    tls_conn_end(c);
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

/* The connection ended (cleanly or not); decides what comes next. */
void conn_finish(conn *c, int failed, const char *why, int err)
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
    int unusable = 0; /* --precompressed cannot send on it: close it */
    if (g.deflate && !eev_driver_deflate(d, NULL)) {
        g.conn_errors++;
        unusable = g.precompressed;
        if (!g.quiet && g.conn_errors <= 10)
            fprintf(stderr, "echo-bench: connection %u: the server declined permessage-deflate\n", c->id);
    } else if (g.precompressed && g.mode == MODE_ECHO && precomp_open(c) < 0) {
        g.conn_errors++;
        unusable = 1;
    }
    c->state = C_OPEN;
    g.pending--;
    g.up++;
    connect_more();
    if (unusable && g.mode == MODE_ECHO) {
        if (eev_driver_close(d, EEV_CLOSE_NORMAL, NULL, 0) == 0)
            c->state = C_CLOSING;
        return;
    }
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

/* Writes queued output until the kernel pushes back. Returns 0, or -1 with
 * errno on a socket error. */
static int flush(conn *c)
{
    struct iovec iov[IOV_MAX_BATCH];
    for (;;) {
        int n = eev_driver_out_iov(c->drv, iov, IOV_MAX_BATCH);
        if (n <= 0)
            return 0;
        ssize_t w = c->ssl ? tls_writev(c, iov, n) : writev(c->fd, iov, n);
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
void conn_proceed(conn *c)
{
    for (int round = 0; round < 4; round++) {
        load_produce(c);
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
    io_set(c, EV_READ | (eev_driver_want_write(c->drv) || (c->tls_want & TLSW_WRITE) ? EV_WRITE : 0));
}

static void conn_read(conn *c)
{
    for (int i = 0; i < READS_PER_EVENT; i++) {
        ssize_t n = c->ssl ? tls_read(c, g.rbuf, RBUF_LEN) : read(c->fd, g.rbuf, RBUF_LEN);
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

void conn_start(conn *c)
{
    c->fd = socket(g.addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        g.conn_errors++;
        fprintf(stderr, "echo-bench: socket: %s\n", strerror(errno));
        return;
    }
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (eev_driver_new(&c->drv, &g.cb, &g.opt, c) != 0 || (g.tls && tls_conn_start(c) != 0)) {
        tls_conn_end(c);
        if (c->drv)
            eev_driver_del(c->drv);
        c->drv = NULL;
        close(c->fd);
        g.conn_errors++;
        fprintf(stderr, "echo-bench: cannot set up a connection (out of memory)\n");
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

void client_init(void)
{
    g.cb.on_open = on_open;
    g.cb.on_message = load_on_message;
    g.cb.on_close = on_close;
    g.cb.on_error = on_error;
    g.opt.role = EEV_ROLE_CLIENT;
    g.opt.host = g.host_hdr;
    g.opt.path = g.path;
    if (g.deflate) {
        g.opt.deflate.enable = 1;
        g.opt.deflate.level = 1; /* the load generator's own cost, kept low */
    }
    if (g.precompressed) { /* see precomp.c */
        g.opt.deflate.client_no_context_takeover = 1;
        g.opt.deflate.server_no_context_takeover = 1;
        g.opt.deflate.deliver_compressed = 1;
    }
    if (g.size > 64ull << 20)
        g.opt.max_message_size = g.size;
}
