/*
 * budget.c - eviction candidates for --max-memory (see budget.h).
 */
#include "budget.h"

#include <stdlib.h>

#include "conn.h"
#include "server.h"

/* The entry still names a live connection. */
static int live(const struct holder *h)
{
    return h->c->list != L_NONE && h->c->id == h->id;
}

/* Drops entries that are gone or small now, except keep: the connection
 * being fed, whose count (c->mem) is settled only after its input. */
static void prune(struct server *srv, const struct conn *keep)
{
    uint32_t i = 0;

    while (i < srv->nholders) {
        struct holder *h = &srv->holders[i];
        if (live(h) && (h->c->mem > BUDGET_SMALL || h->c == keep)) {
            i++;
            continue;
        }
        if (live(h))
            h->c->marks &= (uint8_t)~M_WATCHED;
        *h = srv->holders[--srv->nholders];
    }
}

void budget_watch(struct server *srv, struct conn *c)
{
    if (c->marks & M_WATCHED)
        return;
    if (srv->nholders == srv->holders_cap) {
        prune(srv, c); /* stale entries go first: churn does not grow the array */
        if (srv->nholders > srv->holders_cap / 2 || srv->holders_cap == 0) {
            uint32_t cap = srv->holders_cap ? srv->holders_cap * 2 : 64;
            struct holder *h = realloc(srv->holders, cap * sizeof(*h));
            if (!h)
                return; /* not a candidate, that is all */
            srv->holders = h;
            srv->holders_cap = cap;
        }
    }
    srv->holders[srv->nholders++] = (struct holder){c, c->id};
    c->marks |= M_WATCHED;
}

/* a goes before b: it holds more, or as much and came first. */
static int before(const struct conn *a, uint64_t a_mem, const struct conn *b, uint64_t b_mem)
{
    return a_mem != b_mem ? a_mem > b_mem : (int32_t)(a->id - b->id) < 0;
}

int budget_pick(struct server *srv, const struct conn *g, uint64_t size, uint64_t excess, struct conn **v,
                int max)
{
    int n = 0;

    prune(srv, g);
    for (uint32_t i = 0; i < srv->nholders; i++) {
        struct conn *c = srv->holders[i].c;
        if (c == g || !before(c, c->mem, g, size))
            continue;
        if (n == max && !before(c, c->mem, v[max - 1], v[max - 1]->mem))
            continue;
        int k = n < max ? n++ : max - 1;
        for (; k > 0 && before(c, c->mem, v[k - 1], v[k - 1]->mem); k--)
            v[k] = v[k - 1];
        v[k] = c;
    }
    uint64_t freed = 0;
    for (int k = 0; k < n; k++)
        if ((freed += v[k]->mem) >= excess)
            return k + 1;
    return 0;
}

void budget_free(struct server *srv)
{
    free(srv->holders);
    srv->holders = NULL;
    srv->nholders = srv->holders_cap = 0;
}
