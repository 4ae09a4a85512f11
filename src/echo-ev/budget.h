/*
 * budget.h - --max-memory: which connections to evict when a message
 * buffer would grow past the budget.
 *
 * The server keeps, apart from its deadline lists, an array of the
 * connections that have held more than BUDGET_SMALL bytes: only they can
 * be worth evicting, and they join it off the hot path (a message buffer
 * growing past BUDGET_SMALL, or a connection paused with a full queue). So
 * a search costs O(holders), not O(connections), and runs only when a
 * growth would cross the budget.
 */
#ifndef EEV_BUDGET_H
#define EEV_BUDGET_H

#include <stdint.h>

struct server;
struct conn;

/* Messages up to this size may still grow past the budget (so ordinary
 * traffic goes on), and holders this small are never evicted. */
#define BUDGET_SMALL 65536
/* At most this many connections are evicted for one growth. */
#define BUDGET_EVICT_MAX 8

/* An entry of srv->holders. The connection may be gone since: its pool
 * slot stays mapped, and a slot that is free (list L_NONE) or reused (a new
 * id) tells a stale entry apart. */
struct holder {
    struct conn *c;
    uint32_t id;
};

/* Remembers c as a possible victim (once; idempotent). */
void budget_watch(struct server *srv, struct conn *c);

/*
 * The connections to evict so that excess bytes are freed for g, which
 * would then hold size bytes: the largest holders first (the oldest first
 * among equals), each holding more than g would (or as much, and older).
 * Fills v (at most max) and returns how many are needed, or 0 when even
 * the max largest of them would not free excess: then g is the one
 * refused. Forgets holders that are gone or now small.
 */
int budget_pick(struct server *srv, const struct conn *g, uint64_t size, uint64_t excess, struct conn **v,
                int max);

void budget_free(struct server *srv);

#endif
