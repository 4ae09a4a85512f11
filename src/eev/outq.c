/*
 * outq.c - the driver's chunked output queue: reserve space in a shared
 * inline chunk or link a payload in place, export the pending bytes as
 * iovecs, and drop what was written. The layout and contracts are in outq.h.
 */
#include "outq.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

/* Inline chunks are at least this big, so small frames share one. The
 * first chunk of an empty queue is smaller: most batches (a handshake
 * response, a few small echoes) fit in it, and a block that small comes
 * from malloc's per-thread cache instead of fragmenting the heap between
 * connection objects. */
#define CHUNK_MIN 16384
#define CHUNK_MAX (1024 * 1024)
#define CHUNK_FIRST (1000 - sizeof(outq_chunk))

struct outq_chunk {
    outq_chunk *next;
    size_t off;      /* bytes of this chunk already consumed */
    size_t len;      /* bytes of this chunk in use (header + data) */
    size_t cap;      /* inline capacity; 0 for an external chunk */
    uint8_t *ext;    /* external payload, after hdr */
    size_t ext_len;
    uint8_t hdr_len; /* external chunks: bytes used in data[] as header */
    uint8_t borrowed; /* ext is a view, not ours to free */
    uint8_t begun;   /* inline: may start mid-frame (the rest of a view) */
    uint8_t data[];  /* inline bytes, or the external chunk's header */
};

static void chunk_link(outq *q, outq_chunk *c)
{
    c->next = NULL;
    if (q->tail)
        q->tail->next = c;
    else
        q->head = c;
    q->tail = c;
}

uint8_t *outq_reserve(outq *q, size_t n)
{
    outq_chunk *c = q->tail;

    if (!c || c->ext || c->cap - c->len < n) {
        /* Each new chunk of a busy queue is twice the last, so a large
         * burst of echoes takes a few allocations, not one per frame. */
        size_t min = !c ? CHUNK_FIRST : c->cap * 2 < CHUNK_MIN ? CHUNK_MIN
                   : c->cap * 2 > CHUNK_MAX ? CHUNK_MAX : c->cap * 2;
        size_t cap = n < min ? min : n;
        c = malloc(sizeof(*c) + cap);
        if (!c)
            return NULL;
        c->off = c->len = 0;
        c->cap = cap;
        c->ext = NULL;
        c->ext_len = 0;
        c->hdr_len = 0;
        c->borrowed = 0;
        c->begun = 0;
        chunk_link(q, c);
    }
    uint8_t *p = c->data + c->len;
    c->len += n;
    q->len += n;
    return p;
}

static int push_ext(outq *q, const uint8_t *hdr, size_t hdr_len, uint8_t *payload, size_t len,
                    int borrowed)
{
    outq_chunk *c = malloc(sizeof(*c) + hdr_len);

    if (!c)
        return -1;
    memcpy(c->data, hdr, hdr_len);
    c->off = 0;
    c->hdr_len = (uint8_t)hdr_len;
    c->len = hdr_len + len;
    c->cap = 0;
    c->ext = payload;
    c->ext_len = len;
    c->borrowed = (uint8_t)borrowed;
    c->begun = 0;
    chunk_link(q, c);
    q->len += c->len;
    return 0;
}

int outq_push_owned(outq *q, const uint8_t *hdr, size_t hdr_len, uint8_t *payload, size_t len)
{
    return push_ext(q, hdr, hdr_len, payload, len, 0);
}

int outq_push_view(outq *q, const uint8_t *hdr, size_t hdr_len, const uint8_t *payload, size_t len)
{
    return push_ext(q, hdr, hdr_len, (uint8_t *)payload, len, 1);
}

int outq_settle(outq *q)
{
    if (q->view) {
        /* The unsent rest of the view becomes the first chunk. */
        outq_chunk *c = malloc(sizeof(*c) + q->view_len);
        if (!c)
            return -1;
        memcpy(c->data, q->view, q->view_len);
        c->off = 0;
        c->len = c->cap = q->view_len;
        c->ext = NULL;
        c->ext_len = 0;
        c->hdr_len = 0;
        c->borrowed = 0;
        c->begun = 1; /* part of the view may have gone already */
        c->next = q->head;
        q->head = c;
        if (!q->tail)
            q->tail = c;
        q->view = NULL;
        q->view_len = 0;
    }
    for (outq_chunk *c = q->head; c; c = c->next) {
        if (!c->borrowed)
            continue;
        /* Only the unsent part is copied; the chunk then starts there. */
        size_t skip = c->off > c->hdr_len ? c->off - c->hdr_len : 0;
        size_t keep = c->ext_len - skip;
        uint8_t *copy = malloc(keep ? keep : 1);
        if (!copy)
            return -1;
        memcpy(copy, c->ext + skip, keep);
        c->ext = copy;
        c->ext_len = keep;
        c->off -= skip;
        c->len -= skip;
        c->borrowed = 0;
    }
    return 0;
}

int outq_iov(const outq *q, struct iovec *iov, int iovmax)
{
    int n = 0;

    if (q->view && iovmax > 0) {
        iov[0].iov_base = q->view;
        iov[0].iov_len = q->view_len;
        n = 1;
    }
    for (const outq_chunk *c = q->head; c && n < iovmax; c = c->next) {
        if (!c->ext) {
            iov[n].iov_base = (void *)(c->data + c->off);
            iov[n++].iov_len = c->len - c->off;
            continue;
        }
        if (c->off < c->hdr_len) {
            iov[n].iov_base = (void *)(c->data + c->off);
            iov[n++].iov_len = c->hdr_len - c->off;
            if (n == iovmax)
                break;
        }
        size_t skip = c->off > c->hdr_len ? c->off - c->hdr_len : 0;
        if (c->ext_len > skip) {
            iov[n].iov_base = c->ext + skip;
            iov[n++].iov_len = c->ext_len - skip;
        }
    }
    return n;
}

static void chunk_free(outq_chunk *c)
{
    if (!c->borrowed)
        free(c->ext);
    free(c);
}

void outq_consume(outq *q, size_t n)
{
    assert(n <= q->len);
    q->len -= n;
    if (q->view) {
        if (n < q->view_len) {
            q->view += n;
            q->view_len -= n;
            return;
        }
        n -= q->view_len;
        q->view = NULL;
        q->view_len = 0;
    }
    while (n > 0) {
        outq_chunk *c = q->head;
        size_t left = c->len - c->off;
        if (n < left) {
            c->off += n;
            return;
        }
        n -= left;
        q->head = c->next;
        if (!q->head)
            q->tail = NULL;
        chunk_free(c);
    }
}

int outq_drop_unsent(outq *q)
{
    outq_chunk *keep = NULL, *c = q->head;

    /* Frames never straddle chunks, except the head's first one. The view
     * (whole frames, maybe partly written) goes first and stays. */
    if (!q->view && c && (c->off > 0 || c->begun)) {
        keep = c;
        c = c->next;
    }
    int dropped = c != NULL;
    while (c) {
        outq_chunk *next = c->next;
        q->len -= c->len - c->off;
        chunk_free(c);
        c = next;
    }
    q->head = q->tail = keep;
    if (keep)
        keep->next = NULL;
    return dropped;
}

void outq_free(outq *q)
{
    outq_chunk *c = q->head;

    while (c) {
        outq_chunk *next = c->next;
        chunk_free(c);
        c = next;
    }
    q->head = q->tail = NULL;
    q->len = 0;
    q->view = NULL;
    q->view_len = 0;
}
