/*
 * conn.h - one client connection: its socket watcher, its driver, and the
 * glue between them (read, echo, flush, backpressure, close).
 *
 * The per-connection half of the libev server; server.h, the shared half,
 * says why the two use each other. Only server.c calls in here.
 */
#ifndef EEV_CONN_H
#define EEV_CONN_H

#include <ev.h>
#include <stdint.h>
#include <sys/socket.h>

#include "eev/driver.h"

struct server;
struct tls_conn;

enum {
    C_PAUSED = 1 << 0,   /* reading stopped: too much output queued */
    C_PING_OUT = 1 << 1, /* a ping is unanswered */
    C_LINGER = 1 << 2,   /* our side is shut: draining input until EOF */
    C_METRICS = 1 << 3,  /* accepted on the metrics listener */
    C_OPENED = 1 << 4,   /* the WebSocket opened (logged, counted) */
    C_RX = 1 << 5,       /* input arrived since the last ping check */
    C_PEER_EOF = 1 << 6, /* the peer half-closed: flush what it is owed, then close */
    C_SPARE = 1 << 7,    /* accepted beyond --max-connections: health checks only */
};

/* Where else the connection is noted (besides its list). */
enum {
    M_WATCHED = 1 << 0, /* in srv->holders (budget.c) */
    M_READY = 1 << 1,   /* in srv->ready, to be served this round (ready.c) */
};

/*
 * Kept small: an idle open connection costs this struct plus the driver
 * embedded after it (one 304-byte pool slot), and nothing else.
 */
struct conn {
    ev_io io;                 /* io.data points at the server */
    struct conn *prev, *next; /* in srv->lists[list] */
    size_t queued;            /* output queued at the last count (srv->queued) */
    size_t mem;               /* bytes held at the last count (srv->mem) */
    struct tls_conn *tls;     /* wss://: the transport is TLS (tls.c); NULL: the socket */
    uint8_t *held;            /* HTTP: input kept back after the driver yielded */
    uint32_t held_len;
    uint32_t placed;          /* when it joined its list (ticks) */
    uint32_t last_msg;        /* last message (ticks), for --idle-timeout */
    uint32_t id;
    uint32_t born_ms;         /* accepted, in ms since start (for the access log) */
    uint16_t port;            /* peer port */
    uint16_t http_reqs;       /* HTTP requests on this connection */
    uint8_t inflight;         /* HTTP requests answered since the output was last empty */
    uint8_t list;             /* enum conn_list_id */
    uint8_t flags;            /* C_* */
    uint8_t addr[16];         /* peer address, IPv4 as v4-mapped IPv6 */
    uint8_t marks;            /* M_* */
    _Alignas(8) unsigned char drv[]; /* eev_driver, eev_driver_size() bytes */
};

static inline eev_driver *conn_driver(struct conn *c)
{
    return (eev_driver *)c->drv;
}

/* Takes over an accepted socket; flags: C_METRICS, C_SPARE; tls: speak TLS
 * on it. Returns 0, or -1 (fd closed). */
int conn_accept(struct server *srv, int fd, const struct sockaddr *sa, int flags, int tls);

/* Driver callbacks shared by all connections. */
extern const eev_callbacks conn_callbacks;

/* Timeout handling, called from the list timers. */
void conn_expire(struct server *srv, struct conn *c, int list);
/* Starts the close handshake (code 1001 at shutdown). */
void conn_close(struct server *srv, struct conn *c, uint16_t code, const char *reason);
void conn_destroy(struct server *srv, struct conn *c);
/* Does c's I/O for the events its watcher reported (out of turn: ready.c
 * when out of memory). */
void conn_serve(struct server *srv, struct conn *c, int revents);
/* Serves the connections noted this round (ready.h), in the order epoll
 * reported them. */
void conn_serve_ready(struct server *srv);

/* "[addr]:port" for logs. */
const char *conn_peer(const struct conn *c, char *buf, size_t cap);

#endif
