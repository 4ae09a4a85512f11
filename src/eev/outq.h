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
 */
#ifndef EEV_OUTQ_H
#define EEV_OUTQ_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

typedef struct outq_chunk outq_chunk;

typedef struct outq {
    outq_chunk *head;
    outq_chunk *tail;
    size_t len; /* bytes queued and not yet consumed */
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

/* Copies the borrowed payloads still queued into memory the queue owns.
 * Returns 0, or -1 when out of memory (the views then remain). */
int outq_settle(outq *q);

int outq_iov(const outq *q, struct iovec *iov, int iovmax);
void outq_consume(outq *q, size_t n);
void outq_free(outq *q);

#endif
