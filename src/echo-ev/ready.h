/*
 * ready.h - serves each loop round's connections in the order epoll
 * reported them.
 *
 * libev keeps a round's pending watchers on a stack, so it calls them back
 * newest first: after a stall (a busy round, a descheduled VM) the
 * connection whose input arrived first was served last, and the tail
 * latency grew with the batch. Instead a connection's watcher only notes
 * it here (ready_note), and once libev has called every watcher of the
 * round the noted connections are served oldest first (conn_serve_ready,
 * from the loop's invoke_pending hook that server.c installs).
 */
#ifndef EEV_READY_H
#define EEV_READY_H

#include <stdint.h>

#include "conn.h"
#include "server.h"

/* ready_note() when c is noted already or the array is full; out of
 * memory, it serves c at once, out of order. */
void ready_note_slow(struct server *srv, struct conn *c, int revents);
/* Drops c's entry (c is gone before its turn, or noted again) and returns
 * the events it had. */
int ready_forget(struct server *srv, struct conn *c);
/* Frees the array (server_free). */
void ready_free(struct server *srv);

/* Notes c with revents for this round (on the echo path: a few moves). */
static inline void ready_note(struct server *srv, struct conn *c, int revents)
{
    if (__builtin_expect((c->marks & M_READY) || srv->nready == srv->ready_cap, 0)) {
        ready_note_slow(srv, c, revents);
        return;
    }
    srv->ready[srv->nready++] = (struct ready_slot){c, revents};
    c->marks |= M_READY;
}

#endif
