/*
 * conn.c - per-connection I/O: read into the server's shared buffer, feed
 * the driver, echo, flush with writev, and keep the libev watcher in step
 * with what the connection wants.
 *
 * Life of a connection:
 *
 *   accept -> L_HANDSHAKE --101--> L_OPEN <--> L_PAUSED (backpressure)
 *                 |                  |
 *                 |                  +--close sent--> L_CLOSING
 *                 +--HTTP reply/refusal, or driver finished + flushed-->
 *                    shutdown(SHUT_WR), linger in L_CLOSING until EOF --> destroy
 *
 * The server closes TCP first (RFC 6455 §7.1.1) but half-closes and drains
 * input before close(), so unread input cannot turn our last frame into a
 * reset.
 *
 * With server.c this is one unit (see server.h): a connection works in the
 * server's context (struct server) and moves itself between its lists.
 */
#include "conn.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "addr.h"
#include "budget.h"
#include "log.h"
#include "page.h"
#include "ready.h"
#include "server.h"
#include "tls.h"


#define READS_PER_EVENT 4 /* fairness: then let other connections run */
#define IOV_MAX_BATCH 512 /* one writev for a read buffer of echoes */
/* HTTP keep-alive bounds: answered requests whose responses are not all
 * out yet (then the rest of the input waits), and requests per connection
 * (the last is answered with Connection: close). The connection's whole
 * HTTP phase is also bounded by --handshake-timeout. */
#define HTTP_PIPELINE_MAX 16
#define HTTP_MAX_REQUESTS 10000

static inline struct conn *conn_of(ev_io *w)
{
    return (struct conn *)((char *)w - offsetof(struct conn, io));
}

static inline struct server *srv_of(struct conn *c)
{
    return c->io.data;
}

const char *conn_peer(const struct conn *c, char *buf, size_t cap)
{
    struct sockaddr_in6 s6 = {.sin6_family = AF_INET6, .sin6_port = htons(c->port)};
    static const uint8_t none[16];

    if (c->port == 0 && memcmp(c->addr, none, 16) == 0) /* no TCP peer has port 0 */
        return snprintf(buf, cap, "unix"), buf;
    memcpy(&s6.sin6_addr, c->addr, 16);
    return addr_format((const struct sockaddr *)&s6, buf, cap);
}

/* ---- transport: the socket itself, or TLS over it (tls.c) ---- */

/* plain: c is known to have no TLS (the serve loop's plain copy). */
static inline ssize_t t_read(struct conn *c, void *buf, size_t len, int plain)
{
    return !plain && c->tls ? tls_read(c, buf, len) : read(c->io.fd, buf, len);
}

/* Writes a batch; a short count means the socket is full. */
static inline ssize_t t_writev(struct conn *c, const struct iovec *iov, int n, int plain)
{
    if (!plain && c->tls)
        return tls_writev(c, iov, n);
    /* One buffer (the common small echo) takes the plainer syscall. */
    return n == 1 ? write(c->io.fd, iov[0].iov_base, iov[0].iov_len) : writev(c->io.fd, iov, n);
}

/* Recomputes the watcher's events: read unless paused or done, write while
 * output is blocked. libev only touches epoll when they change. */
static void update_events(struct server *srv, struct conn *c, const eev_status *st)
{
    int ev = 0;

    if (c->flags & C_LINGER)
        ev = EV_READ;
    else if (c->flags & C_PEER_EOF)
        ev = 0; /* nothing more to read */
    else if ((st->flags & EEV_WANT_READ) && !(c->flags & C_PAUSED))
        ev = EV_READ;
    if ((st->flags & EEV_WANT_WRITE) || c->held)
        ev |= EV_WRITE; /* held input is fed once the socket takes output */
    if (c->tls) {
        ev |= tls_events(c->tls);
        /* Records OpenSSL already read are invisible to epoll. */
        if ((ev & EV_READ) && tls_buffered(c->tls))
            ev_feed_event(srv->loop, &c->io, EV_READ);
    }
    if (ev != (c->io.events & (EV_READ | EV_WRITE))) {
        ev_io_stop(srv->loop, &c->io);
        ev_io_set(&c->io, c->io.fd, ev);
        if (ev)
            ev_io_start(srv->loop, &c->io);
    }
}

/* Both Close frames went by: the peer sends nothing more. */
static int closed_cleanly(struct conn *c)
{
    uint16_t sent, rcvd;
    eev_driver_close_codes(conn_driver(c), &sent, &rcvd);
    return sent && rcvd;
}

/* A connection event for the log, with the peer's address. */
static void log_conn(struct conn *c, int level, const char *event, int code, const char *reason)
{
    char peer[64];

    if (!log_enabled(level))
        return;
    struct log_event e = {.conn = c->id, .peer = conn_peer(c, peer, sizeof(peer)), .event = event,
                          .code = code, .reason = reason, .reason_len = reason ? strlen(reason) : 0};
    log_event(level, &e);
}

static uint32_t now_ms(struct server *srv)
{
    return (uint32_t)(int64_t)((ev_now(srv->loop) - srv->t0) * 1000.0);
}

/* The WebSocket ended (the driver reports it once): count it, and the
 * access log's "close" line with what the connection did. */
static void on_close(eev_driver *d, const eev_close_arg *a, void *ud)
{
    struct conn *c = ud;
    struct server *srv = srv_of(c);
    char peer[64];

    /* The peer's code, else ours (a failure, or no answer to our Close),
     * else 1006: the connection just went away. */
    uint16_t code = a->code_received != EEV_CLOSE_ABNORMAL ? a->code_received
                    : a->code_sent                         ? a->code_sent
                                                           : EEV_CLOSE_ABNORMAL;
    metrics_count_close(&srv->m, code);
    srv->ws_open--;
    if (!srv->cfg->access_log || !log_enabled(LOG_INFO))
        return;
    eev_counts n = eev_driver_counts(d);
    struct log_event e = {.conn = c->id, .peer = conn_peer(c, peer, sizeof(peer)), .event = "close",
                          .code = code, .reason = a->reason_len ? a->reason : NULL,
                          .reason_len = a->reason_len, .counted = 1, .bytes_in = n.bytes_in,
                          .bytes_out = n.bytes_out, .messages = n.messages_in,
                          .duration_ms = (double)(uint32_t)(now_ms(srv) - c->born_ms),
                          .unclean = !a->clean};
    log_event(LOG_INFO, &e);
}

void conn_destroy(struct server *srv, struct conn *c)
{
    char peer[64];

    if (c->flags & C_OPENED) {
        eev_driver_eof(conn_driver(c)); /* on_close, unless it was called already */
        if (eev_driver_deflate(conn_driver(c), NULL))
            srv->m.deflate_conns--;
    } else {
        if (c->flags & C_SPARE)
            srv->spare_open--;
        log_debug("#%u %s disconnected", c->id, conn_peer(c, peer, sizeof(peer)));
    }
    srv->queued -= c->queued;
    srv->mem -= c->mem;
    free(c->held);
    conn_list_remove(srv, c);
    if (c->marks & M_READY)
        ready_forget(srv, c);
    ev_io_stop(srv->loop, &c->io);
    tls_conn_del(c->tls);
    close(c->io.fd);
    eev_driver_free(conn_driver(c));
    pool_put(&srv->conn_pool, c);
    server_conn_gone(srv);
}

/* Writes what is queued. Returns 0 with *st the driver's status then, or
 * -1 when the peer is gone. Inlined: it runs once per read on the echo
 * path. */
static inline __attribute__((always_inline)) int flush_status(struct conn *c, eev_status *st, int plain)
{
    eev_driver *d = conn_driver(c);
    struct iovec iov[IOV_MAX_BATCH];

    for (;;) {
        int n = eev_driver_out_iov(d, iov, IOV_MAX_BATCH);
        if (n == 0)
            break; /* nothing queued */
        ssize_t w = t_writev(c, iov, n, plain);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                return -1;
            break;
        }
        *st = eev_driver_out_consume(d, (size_t)w);
        /* Less than a full batch: that was all of the queue, or the socket
         * is full (what is left shows in the status; EV_WRITE waits for
         * room). After a full batch, try again: at worst the next write
         * says EAGAIN. */
        if (n < IOV_MAX_BATCH)
            return 0;
    }
    *st = eev_driver_status(d);
    return 0;
}

static inline __attribute__((always_inline)) int flush(struct conn *c)
{
    eev_status st;
    return flush_status(c, &st, 0);
}

/* Half-closes and waits (in L_CLOSING) for the peer's EOF. */
static void linger(struct server *srv, struct conn *c)
{
    c->flags |= C_LINGER;
    c->flags &= (uint8_t)~C_PAUSED;
    if (c->tls)
        tls_shutdown(c->tls);
    shutdown(c->io.fd, SHUT_WR);
    conn_list_add(srv, c, L_CLOSING);
}

/* Keeps the server's total of queued bytes in step with this connection. */
static void count_queued(struct server *srv, struct conn *c, size_t queued)
{
    srv->queued += queued - c->queued;
    c->queued = queued;
}

/* What c holds toward --max-memory: its driver's message buffer and
 * output queue, and HTTP input held back. */
static size_t held_mem(struct conn *c)
{
    return eev_driver_mem(conn_driver(c)) + c->held_len;
}

static void count_mem(struct server *srv, struct conn *c)
{
    size_t mem = held_mem(c);
    srv->mem += mem - c->mem;
    c->mem = mem;
}

/* After any event: settle lists, backpressure and watcher events, from
 * the driver's current status st. */
static void proceed_with(struct server *srv, struct conn *c, eev_status st)
{
    size_t queued = st.out_len;

    count_queued(srv, c, queued);
    count_mem(srv, c);
    int over = srv->mem > srv->cfg->max_memory;
    if (queued == 0)
        c->inflight = 0;
    if (c->flags & C_PEER_EOF) {
        /* Half-closed peer: it is still owed everything queued before its
         * FIN, within the backpressure timeout (or the close wait). */
        if (queued == 0) {
            conn_destroy(srv, c);
            return;
        }
        if (c->list != L_PAUSED && c->list != L_CLOSING)
            conn_list_add(srv, c, L_PAUSED);
    } else if (!(c->flags & C_LINGER) && (st.flags & EEV_FINISHED) && queued == 0) {
        /* After a clean close handshake the peer sends nothing more, so
         * close() cannot reset our last frame; otherwise half-close and
         * drain first. */
        if (closed_cleanly(c)) {
            conn_destroy(srv, c);
            return;
        }
        linger(srv, c);
    } else if ((c->list == L_OPEN || c->list == L_PAUSED) && st.state >= EEV_STATE_CLOSING) {
        /* Closing or failed with output still queued: bound the wait. */
        c->flags &= (uint8_t)~C_PAUSED;
        conn_list_add(srv, c, L_CLOSING);
    } else if (!(c->flags & C_LINGER) && st.state == EEV_STATE_OPEN) {
        if (!(c->flags & C_PAUSED) && (queued > srv->cfg->high_water || (over && queued > 0))) {
            /* The peer reads slower than it writes (or, past --max-memory,
             * has anything unread): stop reading until its echoes drain,
             * so memory stays bounded. */
            c->flags |= C_PAUSED;
            srv->m.backpressure_pauses++;
            conn_list_add(srv, c, L_PAUSED);
            if (c->mem > BUDGET_SMALL)
                budget_watch(srv, c); /* a queue worth evicting */
            log_debug("#%u paused with %zu bytes queued", c->id, queued);
        } else if ((c->flags & C_PAUSED) && queued < srv->cfg->low_water && (!over || queued == 0) && !c->held) {
            c->flags &= (uint8_t)~C_PAUSED;
            conn_list_add(srv, c, L_OPEN);
        }
    } else if (!(c->flags & C_LINGER) && st.state == EEV_STATE_CONNECTING) {
        /* HTTP keep-alive: the same pause (the handshake deadline, which
         * requests do not restart, bounds it), and no reading while
         * pipelined input is held back. */
        if (c->held || queued > srv->cfg->high_water)
            c->flags |= C_PAUSED;
        else if (queued < srv->cfg->low_water)
            c->flags &= (uint8_t)~C_PAUSED;
    }
    update_events(srv, c, &st);
}

static void proceed(struct server *srv, struct conn *c)
{
    proceed_with(srv, c, eev_driver_status(conn_driver(c)));
}

/* Keeps input the driver yielded on. Returns 0, or -1 (out of memory). */
static int hold(struct conn *c, const uint8_t *p, size_t n)
{
    c->held = malloc(n);
    if (!c->held) {
        log_error("#%u out of memory holding pipelined requests", c->id);
        return -1;
    }
    memcpy(c->held, p, n);
    c->held_len = (uint32_t)n;
    c->flags |= C_PAUSED;
    return 0;
}

/* Feeds held input once the responses so far have gone out. Returns 0, or
 * -1 when c must be destroyed. */
static int feed_held(struct conn *c)
{
    eev_driver *d = conn_driver(c);

    for (int i = 0; i < READS_PER_EVENT && c->held && eev_driver_out_len(d) == 0; i++) {
        uint8_t *buf = c->held;
        size_t len = c->held_len;
        c->inflight = 0;
        ssize_t rv = eev_driver_recv(d, buf, len);
        if (rv < 0) {
            log_error("#%u driver: %s", c->id, eev_strerror((int)rv));
            return -1;
        }
        if (flush(c) < 0)
            return -1;
        if (eev_driver_out_len(d) && eev_driver_out_settle(d) < 0) {
            log_error("#%u out of memory queueing echoes", c->id);
            return -1;
        }
        if ((size_t)rv < len) {
            memmove(buf, buf + rv, len - (size_t)rv);
            c->held_len = (uint32_t)(len - (size_t)rv);
        } else {
            free(buf);
            c->held = NULL;
            c->held_len = 0;
            c->flags &= (uint8_t)~C_PAUSED;
        }
    }
    return 0;
}

/* Reads and feeds the driver. Returns 0, 1 when *last is the driver's
 * status as it is now, or -1 when c must be destroyed. */
static inline __attribute__((always_inline)) int on_readable(struct server *srv, struct conn *c, eev_status *last,
                                                           int plain)
{
    eev_driver *d = conn_driver(c);

    for (int i = 0; i < READS_PER_EVENT; i++) {
        ssize_t n = t_read(c, srv->rbuf, SERVER_RBUF_SIZE, plain);
        if (n > 0) {
            if (c->flags & C_LINGER)
                continue; /* draining: discard */
            c->flags = (uint8_t)((c->flags & ~C_PING_OUT) | C_RX);
            /* Whole small messages are echoed inside the driver (no
             * on_message), which counts them itself. */
            uint64_t msgs = srv->echoes.messages;
            ssize_t rv = eev_driver_recv_echo(d, srv->rbuf, (size_t)n, &srv->echoes);
            if (rv < 0) {
                log_error("#%u driver: %s", c->id, eev_strerror((int)rv));
                return -1;
            }
            if (srv->cfg->idle_timeout > 0 && srv->echoes.messages != msgs) /* the idle clock, read only then */
                c->last_msg = server_ticks(srv);
            /* Echoes go out straight from the read buffer; what the socket
             * does not take is copied before the buffer is read into again. */
            eev_status st;
            if (flush_status(c, &st, plain) < 0)
                return -1;
            if (st.out_len && eev_driver_out_settle(d) < 0) {
                log_error("#%u out of memory queueing echoes", c->id);
                return -1;
            }
            /* Pipelined requests, or a read that inflated its budget
             * (permessage-deflate): the rest waits for the output. */
            if (rv < n)
                return hold(c, srv->rbuf + rv, (size_t)(n - rv));
            /* A short read drained the socket; epoll is level-triggered
             * and will tell us when more arrives. */
            if ((size_t)n < SERVER_RBUF_SIZE || !(st.flags & EEV_WANT_READ) || st.out_len > srv->cfg->high_water) {
                *last = st;
                return 1;
            }
        } else if (n == 0) {
            if (c->flags & C_LINGER)
                return -1;
            /* A half-close: what was queued before the FIN (echoes, HTTP
             * responses, a Close reply) still goes out; proceed() closes
             * once it has. */
            eev_driver_eof(d);
            c->flags |= C_PEER_EOF;
            c->flags &= (uint8_t)~C_PAUSED;
            return flush(c);
        } else if (errno == EINTR) {
            i--;
        } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
            return 0;
        } else {
            if (!(c->flags & C_LINGER))
                eev_driver_eof(d);
            return -1;
        }
    }
    return 0;
}

/* Inlined into the round's loop (conn_serve_ready): the registers it
 * needs are saved once a round, not once a connection. */
static inline __attribute__((always_inline)) void serve(struct server *srv, struct conn *c, int revents, int plain)
{
    if (!plain && c->tls)
        revents = tls_revents(c->tls, revents);
    if ((revents & EV_WRITE) && (flush(c) < 0 || (c->held && feed_held(c) < 0))) {
        eev_driver_eof(conn_driver(c));
        conn_destroy(srv, c);
        return;
    }
    eev_status st;
    int r = revents & EV_READ ? on_readable(srv, c, &st, plain) : 0;
    if (r < 0) {
        conn_destroy(srv, c);
        return;
    }
    if (r != 1) {
        proceed(srv, c);
        return;
    }
    /* The echo path's usual end: an open connection that held and queued
     * nothing at its last count (so held no HTTP input either, and its
     * watcher, set from that same count, reads and does not write) still
     * holds and queues nothing: proceed_with() would change nothing. (Over
     * TLS it may have to feed records OpenSSL holds.) */
    if (st.flags == EEV_WANT_READ && st.state == EEV_STATE_OPEN && (c->mem | c->queued) == 0 &&
        c->list == L_OPEN && !(c->flags & (C_PAUSED | C_LINGER | C_PEER_EOF)) && (plain || !c->tls))
        return;
    proceed_with(srv, c, st); /* no second look at the driver */
}

void conn_serve(struct server *srv, struct conn *c, int revents)
{
    serve(srv, c, revents, 0);
}

void conn_serve_ready(struct server *srv)
{
    /* libev called back the newest first: the last noted came first. */
    for (uint32_t i = srv->nready; i-- > 0;) {
        struct conn *c = srv->ready[i].c;
        if (c) {
            c->marks &= (uint8_t)~M_READY;
            if (c->tls)
                serve(srv, c, srv->ready[i].revents, 0);
            else /* a copy without the TLS checks */
                serve(srv, c, srv->ready[i].revents, 1);
        }
    }
    srv->nready = 0;
}

/* Served later in the round, in epoll's order (ready.h). */
static void on_io(struct ev_loop *loop, ev_io *w, int revents)
{
    struct conn *c = conn_of(w);
    struct server *srv = srv_of(c);

    (void)loop;
    ready_note(srv, c, revents);
}

int conn_accept(struct server *srv, int fd, const struct sockaddr *sa, int flags, int tls)
{
    struct conn *c = pool_get(&srv->conn_pool);

    if (!c) {
        close(fd);
        return -1;
    }
    memset(c, 0, sizeof(*c));
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
        memcpy(c->addr, &s6->sin6_addr, 16);
        c->port = ntohs(s6->sin6_port);
    } else if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;
        c->addr[10] = c->addr[11] = 0xff;
        memcpy(c->addr + 12, &s4->sin_addr, 4);
        c->port = ntohs(s4->sin_port);
    }
    c->id = ++srv->next_id;
    c->born_ms = now_ms(srv);
    c->last_msg = server_ticks(srv);
    c->flags = (uint8_t)flags;
    if ((tls && !(c->tls = tls_conn_new(srv->tls, fd))) ||
        eev_driver_init(conn_driver(c), &srv->cb, &srv->opt, c) < 0) {
        tls_conn_del(c->tls);
        pool_put(&srv->conn_pool, c);
        close(fd);
        return -1;
    }
    ev_io_init(&c->io, on_io, fd, EV_READ);
    c->io.data = srv;
    ev_io_start(srv->loop, &c->io);
    conn_list_add(srv, c, L_HANDSHAKE);
    return 0;
}

void conn_close(struct server *srv, struct conn *c, uint16_t code, const char *reason)
{
    eev_driver *d = conn_driver(c);

    switch (eev_driver_state(d)) {
    case EEV_STATE_CONNECTING:
        conn_destroy(srv, c);
        return;
    case EEV_STATE_OPEN:
        eev_driver_close(d, code, reason, strlen(reason));
        break;
    default:
        break; /* closing already */
    }
    c->flags &= (uint8_t)~C_PAUSED;
    if (!(c->flags & C_LINGER))
        conn_list_add(srv, c, L_CLOSING);
    if (flush(c) < 0) {
        eev_driver_eof(d);
        conn_destroy(srv, c);
        return;
    }
    proceed(srv, c);
}

void conn_expire(struct server *srv, struct conn *c, int list)
{
    const struct config *cfg = srv->cfg;
    uint32_t now = server_ticks(srv);

    switch (list) {
    case L_HANDSHAKE:
        if (c->http_reqs) { /* requests were answered: the keep-alive lifetime is over */
            log_conn(c, LOG_INFO, "timeout", 0, "keep-alive lifetime");
            conn_destroy(srv, c);
            return;
        }
        if (!(c->flags & C_OPENED) && eev_driver_out_len(conn_driver(c)) == 0)
            srv->m.hs_failures[HSF_TIMEOUT]++;
        if (c->tls)
            tls_count_timeout(c->tls);
        log_conn(c, LOG_INFO, "timeout", 0, "handshake");
        conn_destroy(srv, c);
        return;
    case L_PAUSED:
        log_conn(c, LOG_INFO, "timeout", 0, "backpressure");
        conn_destroy(srv, c);
        return;
    case L_CLOSING:
        conn_destroy(srv, c);
        return;
    }
    /* L_OPEN: idle and ping checks. */
    if (cfg->idle_timeout > 0 && (int32_t)(now - c->last_msg) >= (int32_t)(cfg->idle_timeout * 64)) {
        log_conn(c, LOG_INFO, "timeout", 0, "idle");
        conn_close(srv, c, EEV_CLOSE_NORMAL, "idle timeout");
        return;
    }
    if (cfg->ping_interval > 0 && !(c->flags & C_RX)) {
        /* Nothing arrived since the last check. */
        if (c->flags & C_PING_OUT) {
            log_conn(c, LOG_INFO, "timeout", 0, "ping");
            conn_destroy(srv, c);
            return;
        }
        eev_driver_ping(conn_driver(c), "echo-ev", 7);
        c->flags |= C_PING_OUT;
        if (flush(c) < 0) {
            eev_driver_eof(conn_driver(c));
            conn_destroy(srv, c);
            return;
        }
        eev_status st = eev_driver_status(conn_driver(c));
        count_queued(srv, c, st.out_len);
        update_events(srv, c, &st);
    }
    c->flags &= (uint8_t)~C_RX;
    conn_list_add(srv, c, L_OPEN); /* re-placed at the tail */
}

/* ---- driver callbacks ---- */

/* The keep-alive request limit: this response closes the connection. */
static int last_request(const struct conn *c)
{
    return c->http_reqs >= HTTP_MAX_REQUESTS;
}

static void reply(eev_driver *d, int status, const char *headers, const char *body, size_t len)
{
    eev_driver_http_reply(d, status, headers, body, len, last_request(eev_driver_user_data(d)));
}

static int origin_allowed(const struct config *cfg, const eev_request_arg *req)
{
    if (cfg->origin_cnt == 0)
        return 1;
    for (size_t i = 0; i < req->header_cnt; i++) {
        const eev_header *h = &req->headers[i];
        if (h->name_len != 6 || strncasecmp(h->name, "origin", 6) != 0)
            continue;
        for (int j = 0; j < cfg->origin_cnt; j++)
            if (strlen(cfg->origins[j]) == h->value_len &&
                strncasecmp(cfg->origins[j], h->value, h->value_len) == 0)
                return 1;
        return 0;
    }
    return 1; /* no Origin: not a browser, which is what --origin guards */
}

static void serve_metrics(struct server *srv, eev_driver *d, int close)
{
    struct metrics_gauges g;
    size_t len;

    server_gauges(srv, &g);
    metrics_take_echoes(&srv->m, &srv->echoes);
    char *body = metrics_render(&srv->m, &g, &len);

    if (!body) {
        eev_driver_http_reply(d, 500, "Content-Type: text/plain\r\n", "out of memory\n", 14, close);
        return;
    }
    eev_driver_http_reply(d, 200, "Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n", body, len,
                          close);
    free(body);
}

/* HEAD is GET without the body (the driver leaves it out). */
static int get_or_head(const eev_request_arg *req)
{
    return (req->method_len == 3 && memcmp(req->method, "GET", 3) == 0) ||
           (req->method_len == 4 && memcmp(req->method, "HEAD", 4) == 0);
}

static int path_is(const eev_request_arg *req, const char *p)
{
    return req->path_len == strlen(p) && memcmp(req->path, p, req->path_len) == 0;
}

/* /healthz: the process is alive, "ok", or "full" at --max-connections
 * (still 200: a full instance is not a dead one). /readyz: 503 when full or
 * draining, so a load balancer stops sending new clients without cutting
 * the ones it has. */
static void health(struct server *srv, struct conn *c, const eev_request_arg *req, int close)
{
    eev_driver *d = conn_driver(c);
    int ready = path_is(req, "/readyz");
    /* Full: no room for one more client once this request's connection is gone. */
    unsigned long held = srv->nconn - srv->spare_open - !(c->flags & C_SPARE);
    int full = held >= srv->cfg->max_connections;
    const char *state = srv->draining ? "draining\n" : full ? "full\n" : "ok\n";
    int status = ready && state[0] != 'o' ? 503 : 200;

    eev_driver_http_reply(d, status, "Content-Type: text/plain\r\nCache-Control: no-store\r\n", state,
                          strlen(state), close);
}

/* A connection on a spare slot (the server is full) gets health checks and
 * metrics, one request each, and 503 for anything else. */
static void spare_request(struct server *srv, struct conn *c, eev_driver *d, const eev_request_arg *req,
                          int metrics_here)
{
    int get = get_or_head(req);

    if (get && (path_is(req, "/healthz") || path_is(req, "/readyz"))) {
        health(srv, c, req, 1);
    } else if (get && path_is(req, "/metrics") && metrics_here) {
        serve_metrics(srv, d, 1);
    } else {
        if (req->is_websocket)
            srv->m.hs_failures[HSF_CAPACITY]++;
        eev_driver_http_reply(d, 503, "Content-Type: text/plain\r\n", "too many clients\n", 17, 1);
    }
    (void)c;
}

static int answer(eev_driver *d, const eev_request_arg *req, struct conn *c)
{
    struct server *srv = srv_of(c);
    int metrics_here = (c->flags & C_METRICS) ||
                       (srv->cfg->metrics && (!srv->cfg->metrics_bind || srv->cfg->metrics_public));
    const struct page_asset *asset;

    if (c->flags & C_SPARE) {
        spare_request(srv, c, d, req, metrics_here);
        return 0;
    }
    if (req->is_websocket && !(c->flags & C_METRICS)) {
        if (srv->draining) {
            reply(d, 503, "Content-Type: text/plain\r\n", "shutting down\n", 14);
            return 0;
        }
        if (!origin_allowed(srv->cfg, req)) {
            srv->m.hs_failures[HSF_ORIGIN]++;
            log_conn(c, LOG_INFO, "refused", 403, "origin not allowed");
            eev_driver_http_reply(d, 403, "Content-Type: text/plain\r\n", "origin not allowed\n", 19, 1);
            return 0;
        }
        /* The driver checks and answers the upgrade, and calls on_open
         * right away: it logs the path from here. */
        srv->req_path = req->path;
        srv->req_path_len = req->path_len;
        return 0;
    }
    if (!get_or_head(req)) {
        reply(d, 405, "Allow: GET, HEAD\r\nContent-Type: text/plain\r\n", "method not allowed\n", 19);
    } else if (path_is(req, "/healthz") || path_is(req, "/readyz")) {
        health(srv, c, req, last_request(c));
    } else if (path_is(req, "/metrics") && metrics_here) {
        serve_metrics(srv, d, last_request(c));
    } else if (!(c->flags & C_METRICS) && (asset = page_find(req->path, req->path_len))) {
        reply(d, 200, asset->headers, (const char *)asset->body, asset->len);
    } else {
        reply(d, 404, "Content-Type: text/plain\r\n", "not found\n", 10);
    }
    return 0;
}

static int on_request(eev_driver *d, const eev_request_arg *req, void *ud)
{
    struct conn *c = ud;
    struct server *srv = srv_of(c);

    srv->m.http_requests++;
    if (c->http_reqs < UINT16_MAX)
        c->http_reqs++;
    int rv = answer(d, req, c);
    /* Pipelining: past the cap, the rest of the input waits until the
     * responses have been sent (conn.c holds it; the reading stops). */
    if (++c->inflight >= HTTP_PIPELINE_MAX || eev_driver_out_len(d) > srv->cfg->high_water)
        eev_driver_recv_yield(d);
    return rv;
}

/* Closes v with 1013 to take its memory back: its half-received message
 * and unsent output are dropped at once. A peer owed the rest of a large
 * frame already begun is not reading: it is cut instead. */
static void evict(struct server *srv, struct conn *v)
{
    eev_driver *d = conn_driver(v);
    char why[64];

    srv->m.mem_evictions++;
    snprintf(why, sizeof(why), "memory budget: largest holder (%zu bytes)", v->mem);
    log_conn(v, LOG_INFO, "evicted", EEV_CLOSE_TRY_AGAIN, why);
    if (eev_driver_fail(d, EEV_CLOSE_TRY_AGAIN, "memory budget exceeded", 22) == 0 && flush(v) == 0 &&
        eev_driver_mem(d) <= BUDGET_SMALL) {
        proceed(srv, v);
        return;
    }
    eev_driver_eof(d);
    conn_destroy(srv, v);
}

/* --max-memory: a message buffer may grow while the total stays within
 * the budget. Past it, room is made by evicting larger holders (budget.c);
 * when none is larger, the growth of a message beyond BUDGET_SMALL is
 * refused with 1013 "try again later" (smaller ones still pass, so
 * ordinary traffic goes on). */
static int on_mem_grow(eev_driver *d, size_t grow, void *ud)
{
    struct conn *c = ud;
    struct server *srv = srv_of(c);
    size_t now = held_mem(c);
    size_t msg = now - eev_driver_out_len(d) - c->held_len + grow; /* its buffer after growing */
    uint64_t max = srv->cfg->max_memory;

    if (now + grow > BUDGET_SMALL)
        budget_watch(srv, c);
    if (srv->mem - c->mem + now + grow <= max || msg <= BUDGET_SMALL)
        return 0;
    struct conn *v[BUDGET_EVICT_MAX];
    int n = budget_pick(srv, c, now + grow, srv->mem - c->mem + now + grow - max, v, BUDGET_EVICT_MAX);
    for (int i = 0; i < n; i++)
        evict(srv, v[i]);
    if (n && srv->mem - c->mem + now + grow <= max)
        return 0;
    srv->m.mem_refusals++;
    return EEV_CLOSE_TRY_AGAIN;
}

static void on_open(eev_driver *d, void *ud)
{
    struct conn *c = ud;
    struct server *srv = srv_of(c);
    char peer[64];
    const char *proto = eev_driver_protocol(d);

    eev_deflate_params dp;
    int deflate = eev_driver_deflate(d, &dp);

    c->flags |= C_OPENED;
    srv->ws_open++;
    srv->m.deflate_conns += deflate != 0;
    c->last_msg = server_ticks(srv);
    conn_list_add(srv, c, L_OPEN);
    if (srv->cfg->access_log && log_enabled(LOG_INFO)) {
        struct log_event e = {.conn = c->id, .peer = conn_peer(c, peer, sizeof(peer)), .event = "open",
                              .path = srv->req_path, .path_len = srv->req_path_len, .protocol = proto};
        char dbuf[120];
        if (deflate) {
            snprintf(dbuf, sizeof(dbuf), "server_bits=%d client_bits=%d%s%s%s", dp.server_max_window_bits,
                     dp.client_max_window_bits, dp.server_no_context_takeover ? " server_no_context_takeover" : "",
                     dp.client_no_context_takeover ? " client_no_context_takeover" : "",
                     dp.passthrough ? " passthrough" : "");
            e.deflate = dbuf;
        }
        log_event(LOG_INFO, &e);
    }
    srv->req_path = NULL;
}

static int on_message(eev_driver *d, const eev_message_arg *m, void *ud)
{
    struct conn *c = ud;
    struct server *srv = srv_of(c);

    srv->m.msgs_in++;
    srv->m.bytes_in += m->len;
    metrics_count_message(&srv->m, m->len);
    if (m->rsv1) {
        srv->m.deflate_bytes_compressed += m->compressed_len;
        srv->m.deflate_bytes_inflated += m->len;
    }
    c->last_msg = server_ticks(srv);
    int rv = eev_driver_send_message(d, m);
    if (rv == 0) {
        srv->m.msgs_out++;
        srv->m.bytes_out += m->len;
    }
    return rv == EEV_ERR_NOMEM ? -1 : 0;
}

static void on_error(eev_driver *d, const eev_error_arg *e, void *ud)
{
    struct conn *c = ud;
    struct server *srv = srv_of(c);

    if (c->flags & C_OPENED) {
        log_conn(c, LOG_INFO, "failed", e->close_code, e->message);
        return;
    }
    (void)d;
    srv->m.hs_failures[e->close_code == 426   ? HSF_VERSION
                       : e->close_code == 431 ? HSF_TOO_LARGE
                                              : HSF_BAD_REQUEST]++;
    log_conn(c, LOG_INFO, "refused", e->close_code, e->message);
}

const eev_callbacks conn_callbacks = {
    .on_request = on_request,
    .on_open = on_open,
    .on_message = on_message,
    .on_error = on_error,
    .on_close = on_close,
    .on_mem_grow = on_mem_grow,
};
