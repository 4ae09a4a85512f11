/*
 * outq.h - the driver's output queue: a list of chunks exported as iovecs.
 *
 * Small frames are packed back to back into shared chunks, so a burst of
 * echoes leaves as one iovec; a large payload the driver already owns is
 * linked in place (header in the chunk, payload by pointer) instead of
 * being copied. Nothing is allocated while the queue is empty.
 *
 *   chunk:  [hdr..][inline bytes ..................)      INLINE
 *           |<-off->|<--------- pending ---------->|
 *   chunk:  [hdr 2..14 bytes] -> ext payload             EXTERNAL
 *
 * An external payload is owned (freed once sent) or borrowed (a view into
 * the caller's input, copied by outq_settle() if still unsent).
 *
 * Ahead of the chunks the queue may hold one borrowed run of whole frames
 * laid out in the caller's input buffer (outq_inplace_at): echoes that
 * arrived whole leave from where they lie, with no chunk at all.
 *
 *   input:  [mhdr|payload][mhdr|payload][mhdr|pay...   (masked frames)
 *   view:       [h|payload][h|payload]                 (frames moved down
 *               |<------- view_len ----->|              over spent bytes)
 */
#ifndef EEV_OUTQ_H
#define EEV_OUTQ_H

#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

typedef struct outq_chunk outq_chunk;

typedef struct outq {
    outq_chunk *head;
    outq_chunk *tail;
    size_t len;    /* bytes queued and not yet consumed (view included) */
    uint8_t *view; /* borrowed frames that go out before the chunks, or NULL */
    size_t view_len;
} outq;

/* Reserves n contiguous bytes at the end of the queue and returns them
 * (to be filled by the caller at once), or NULL when out of memory. */
uint8_t *outq_reserve(outq *q, size_t n);

/* Appends a frame whose payload buffer (from malloc) the queue takes over
 * and frees once sent. hdr is copied. Returns 0 or -1 (nothing taken). */
int outq_push_owned(outq *q, const uint8_t *hdr, size_t hdr_len, uint8_t *payload, size_t len);

/* Appends a frame whose payload is borrowed: it stays where it is, and must
 * stay valid until outq_settle(). hdr is copied. Returns 0 or -1. */
int outq_push_view(outq *q, const uint8_t *hdr, size_t hdr_len, const uint8_t *payload, size_t len);

/*
 * Frames in the caller's input buffer, in two steps. outq_inplace_at()
 * says where a frame goes whose payload lies at p there, with the
 * hdr_len bytes before p spent (the frame's own, longer, masked header):
 * just before p when the queue is empty, or, with join, at the end of the
 * view it extends (same buffer, nothing queued after it), so the caller
 * moves the frame down over spent bytes. NULL: the queue cannot take it
 * this way (the caller copies). The caller writes the frame there, then
 * outq_inplace_commit() queues it. The buffer must stay valid until
 * outq_settle().
 */
static inline uint8_t *outq_inplace_at(const outq *q, uint8_t *p, size_t hdr_len, int join)
{
    if (q->head)
        return NULL; /* chunks are queued: the frame goes behind them */
    if (!q->view)
        return p - hdr_len;
    if (!join)
        return NULL;
    assert(q->view + q->view_len <= p - hdr_len);
    return q->view + q->view_len;
}

static inline void outq_inplace_commit(outq *q, uint8_t *at, size_t n)
{
    if (!q->view)
        q->view = at;
    q->view_len += n;
    q->len += n;
}

/* Copies the borrowed payloads still queued into memory the queue owns.
 * Returns 0, or -1 when out of memory (the views then remain). */
int outq_settle(outq *q);

int outq_iov(const outq *q, struct iovec *iov, int iovmax);
void outq_consume(outq *q, size_t n);
/* Drops every frame not yet begun, keeping a frame partly written (the
 * rest of the head chunk, or the view): cutting it would corrupt the
 * stream. Returns non-zero when the last frame queued was dropped. */
int outq_drop_unsent(outq *q);
void outq_free(outq *q);

#endif
