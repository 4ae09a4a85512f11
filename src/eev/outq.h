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
 * laid out in the caller's input buffer (outq_push_inplace): echoes that
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
#include <string.h>
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
 * Queues a frame in the caller's input buffer: its payload p[0..len) lies
 * there and the hdr_len bytes before p are spent (the frame's own, longer,
 * masked header), so hdr goes there and the frame leaves from the buffer.
 * With join, a view that ends before p in the same buffer (nothing queued
 * after it) is extended instead: the frame moves down to its end, over
 * spent bytes. The buffer must stay valid until outq_settle(). Returns 0,
 * or -1 when the queue cannot take it this way (the caller copies).
 */
static inline int outq_push_inplace(outq *q, const uint8_t *hdr, size_t hdr_len, uint8_t *p, size_t len, int join)
{
    if (q->head)
        return -1; /* chunks are queued: the frame goes behind them */
    if (!q->view) {
        q->view = p - hdr_len;
        q->view_len = 0;
    } else if (!join) {
        return -1;
    }
    uint8_t *e = q->view + q->view_len;
    assert(e <= p - hdr_len);
    /* Constant sizes: plain moves, no call. */
    if (hdr_len == 2)
        memcpy(e, hdr, 2);
    else if (hdr_len == 4)
        memcpy(e, hdr, 4);
    else
        memcpy(e, hdr, hdr_len);
    if (e + hdr_len != p)
        memmove(e + hdr_len, p, len);
    q->view_len += hdr_len + len;
    q->len += hdr_len + len;
    return 0;
}

/* Copies the borrowed payloads still queued into memory the queue owns.
 * Returns 0, or -1 when out of memory (the views then remain). */
int outq_settle(outq *q);

int outq_iov(const outq *q, struct iovec *iov, int iovmax);
void outq_consume(outq *q, size_t n);
void outq_free(outq *q);

#endif
