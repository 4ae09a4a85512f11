/*
 * server.h - the listener side: sockets, accept, signals, timeouts and
 * shutdown, for one libev loop on one thread.
 *
 * server.c and conn.c are one unit, the libev server, cut into its shared
 * half (here) and its per-connection half (conn.h). They call each other on
 * purpose: struct server is the context every connection runs in (loop,
 * config, shared read buffer, deadline lists and their clock, pool,
 * metrics), and a connection tells the server when it changes list or is
 * gone. Only main.c sees the server from outside, through server_init() and
 * server_run().
 */
#ifndef EEV_SERVER_H
#define EEV_SERVER_H

#include <ev.h>
#include <stdint.h>

#include "config.h"
#include "eev/driver.h"
#include "metrics.h"
#include "pool.h"

struct conn;
struct holder;
struct tls_server;

/* A connection to serve this round, with its watcher's events (ready.h). */
struct ready_slot {
    struct conn *c; /* NULL: gone before its turn */
    int revents;
};

/*
 * Connections waiting on the same kind of deadline, oldest first. Every
 * member of a list has the same timeout, so appending keeps the list in
 * deadline order and one ev_timer (armed for the head) serves them all:
 * the linked-list technique of the libev manual, "Be smart about timeouts".
 */
enum conn_list_id { L_NONE = 0, L_HANDSHAKE, L_OPEN, L_PAUSED, L_CLOSING, L_COUNT };

struct conn_list {
    struct conn *head, *tail;
    ev_timer timer;
    double timeout; /* seconds; 0: no deadline */
};

#define MAX_LISTENERS 16
/* The shared read buffer: one read can take many pipelined frames. */
#define SERVER_RBUF_SIZE (512 * 1024)

struct listener {
    ev_io io;
    int metrics_only; /* serves /metrics and /healthz, no WebSocket */
    /* Persistent accept() errors: the listener rests for backoff seconds. */
    ev_timer rest;
    double backoff;
    double last_log;
    unsigned long errors; /* since the last line that reported them */
    int tls;          /* wss:// (https for the page) */
};

struct server {
    struct ev_loop *loop;
    const struct config *cfg;
    eev_callbacks cb; /* shared by every connection's driver */
    eev_options opt;
    struct listener lst[MAX_LISTENERS];
    int nlst;
    int own_unix;             /* --bind unix: files we created, removed at exit */
    struct conn_list lists[L_COUNT];
    unsigned long nconn;      /* every accepted connection */
    unsigned long ws_open;    /* those upgraded to WebSocket */
    unsigned long spare_open; /* those on spare slots (health checks when full) */
    uint64_t queued;          /* sum of the connections' queued output */
    const char *req_path;     /* the upgrade request's path, from on_request to on_open */
    size_t req_path_len;
    uint64_t mem;             /* sum of the connections' c->mem (--max-memory) */
    struct holder *holders;   /* eviction candidates past --max-memory (budget.c) */
    uint32_t nholders, holders_cap;
    struct ready_slot *ready; /* this round's connections, newest first (ready.c) */
    uint32_t nready, ready_cap;
    long base_fds;            /* descriptors open at start besides listeners and the spare */
    uint32_t next_id;
    double t0;       /* ev_now() at start: origin of conn timestamps */
    int reserve_fd;  /* spare fd for the EMFILE trick, or -1 */
    double last_emfile_log;
    uint8_t *rbuf;   /* shared read buffer */
    struct pool conn_pool; /* struct conn + driver, one slot each */
    struct tls_server *tls; /* certificates for TLS listeners, or NULL */
    int draining;
    ev_signal sig_int, sig_term, sig_hup;
    ev_timer shutdown_timer, status_timer, watchdog_timer, accept_retry;
    struct metrics m;
    eev_echo_stats echoes; /* counted by the drivers, added to m at each scrape */
};

/* Sets up listeners (inherited or bound). Returns 0, or 1 after printing
 * why it cannot listen. */
int server_init(struct server *srv, struct ev_loop *loop, const struct config *cfg);
/* Runs until shut down; returns the exit status. */
int server_run(struct server *srv);
/* Releases what server_init() allocated, after server_run() or after
 * server_init() failed half-way (so a sanitizer sees no leak either way). */
void server_free(struct server *srv);

/* Conn timestamps: 1/64 s ticks since start, compared wrap-safely. */
static inline uint32_t server_ticks(const struct server *srv)
{
    return (uint32_t)(int64_t)((ev_now(srv->loop) - srv->t0) * 64.0);
}

void conn_list_add(struct server *srv, struct conn *c, int list);
void conn_list_remove(struct server *srv, struct conn *c);
/* At --max-connections (connections on spare slots aside). */
static inline int server_full(const struct server *srv)
{
    return srv->nconn - srv->spare_open >= srv->cfg->max_connections;
}
/* The gauges /metrics shows, from counts kept as things happen. */
void server_gauges(const struct server *srv, struct metrics_gauges *g);
/* Called by conn.c when a connection is gone. */
void server_conn_gone(struct server *srv);

#endif
