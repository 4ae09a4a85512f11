/*
 * ready.c - the round's noted connections, served oldest first (ready.h).
 */
#include "ready.h"

#include <stdlib.h>

void ready_note_slow(struct server *srv, struct conn *c, int revents)
{
    if (c->marks & M_READY) /* fed twice in a round */
        revents |= ready_forget(srv, c);
    if (srv->nready == srv->ready_cap) {
        uint32_t cap = srv->ready_cap ? srv->ready_cap * 2 : 256;
        struct ready_slot *r = realloc(srv->ready, cap * sizeof(*r));
        if (!r) {
            conn_serve(srv, c, revents);
            return;
        }
        srv->ready = r;
        srv->ready_cap = cap;
    }
    ready_note(srv, c, revents);
}

int ready_forget(struct server *srv, struct conn *c)
{
    for (uint32_t i = 0; i < srv->nready; i++)
        if (srv->ready[i].c == c) {
            srv->ready[i].c = NULL;
            c->marks &= (uint8_t)~M_READY;
            return srv->ready[i].revents;
        }
    return 0;
}

void ready_free(struct server *srv)
{
    free(srv->ready);
    srv->ready = NULL;
    srv->nready = srv->ready_cap = 0;
}
