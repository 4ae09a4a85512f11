/*
 * fuzz_util.h - shared pieces of the libFuzzer harnesses: input layout,
 * split sizes derived from the input, callbacks and output draining.
 *
 * Input layout for every harness:
 *   byte 0  flags (harness-specific options)
 *   byte 1  split seed: 0 feeds the rest whole, otherwise it seeds the
 *           generator that picks each recv() size
 *   rest    the byte stream
 * Each piece is copied into a malloc'd buffer of exactly its size, so
 * AddressSanitizer sees any over-read.
 */
#ifndef EEV_FUZZ_UTIL_H
#define EEV_FUZZ_UTIL_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "eev/driver.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct fuzz_ctx {
    uint32_t rng;
    int echo;       /* on_message: send_message */
    int http_reply; /* on_request: answer non-upgrades with 200 */
    int close_at;   /* after this many messages, eev_driver_close */
    int messages;
    eev_echo_stats *echo_stats; /* feed with eev_driver_recv_echo */
} fuzz_ctx;

static inline uint32_t fuzz_next(fuzz_ctx *c)
{
    c->rng ^= c->rng << 13;
    c->rng ^= c->rng >> 17;
    c->rng ^= c->rng << 5;
    return c->rng;
}

static inline int fuzz_on_request(eev_driver *d, const eev_request_arg *q, void *ud)
{
    fuzz_ctx *c = ud;
    size_t sum = q->method_len + q->target_len + q->path_len + q->query_len;

    /* Touch every borrowed byte so ASan checks the views. */
    for (size_t i = 0; i < q->header_cnt; i++)
        sum += (size_t)q->headers[i].name[0] * q->headers[i].name_len +
               (q->headers[i].value_len ? (size_t)q->headers[i].value[q->headers[i].value_len - 1] : 0);
    if (q->path_len)
        sum += (size_t)q->path[q->path_len - 1];
    if (c->http_reply && !q->is_websocket)
        eev_driver_http_reply(d, sum & 1 ? 200 : 404, "X-Fuzz: 1\r\n", "ok", 2, (int)(sum & 2));
    return 0;
}

static inline int fuzz_on_message(eev_driver *d, const eev_message_arg *m, void *ud)
{
    fuzz_ctx *c = ud;

    if (m->len && m->data) /* NULL: echo_only, inflated bytes not kept */
        m->data[0] ^= m->data[m->len - 1];
    if (c->echo)
        eev_driver_send_message(d, m);
    if (++c->messages == c->close_at)
        eev_driver_close(d, 1000, "bye", 3);
    return 0;
}

static inline void fuzz_on_ping(eev_driver *d, const uint8_t *p, size_t len, void *ud)
{
    if (len)
        (void)*(volatile const uint8_t *)(p + len - 1);
}

static inline void fuzz_on_close(eev_driver *d, const eev_close_arg *a, void *ud)
{
    if (a->reason_len)
        (void)*(volatile const char *)(a->reason + a->reason_len - 1);
}

static const eev_callbacks fuzz_callbacks = {
    fuzz_on_request, NULL, fuzz_on_message, fuzz_on_ping, fuzz_on_ping, fuzz_on_close, NULL, NULL,
};

/* Drains the output with irregular partial consumes; copies the bytes to
 * sink (may be NULL) up to sink_max. Returns bytes drained. */
static inline size_t fuzz_drain(eev_driver *d, fuzz_ctx *c, uint8_t *sink, size_t sink_max)
{
    struct iovec iov[4];
    size_t total = 0;
    int n;

    while ((n = eev_driver_out_iov(d, iov, 1 + (int)(fuzz_next(c) % 4))) > 0) {
        size_t take = 0, want = 1 + fuzz_next(c) % 4096;
        for (int i = 0; i < n && take < want; i++) {
            size_t t = iov[i].iov_len < want - take ? iov[i].iov_len : want - take;
            if (t)
                (void)*(volatile const uint8_t *)((const uint8_t *)iov[i].iov_base + t - 1);
            if (sink && total + take + t <= sink_max)
                memcpy(sink + total + take, iov[i].iov_base, t);
            take += t;
        }
        eev_driver_out_consume(d, take);
        total += take;
    }
    return total;
}

/* Feeds p[0..len) in pieces; stops early when a recv fails. */
static inline void fuzz_feed(eev_driver *d, fuzz_ctx *c, int whole, const uint8_t *p, size_t len)
{
    size_t off = 0;

    while (off < len) {
        size_t n = len - off;
        uint8_t *buf;
        if (!whole) {
            uint32_t r = fuzz_next(c);
            size_t lim = r & 0x80000000u ? 4096 : 16;
            if (r % 5)
                n = n < 1 + r % lim ? n : 1 + r % lim;
        }
        buf = malloc(n);
        if (buf == NULL)
            return;
        memcpy(buf, p + off, n);
        ssize_t rv = c->echo_stats ? eev_driver_recv_echo(d, buf, n, c->echo_stats) : eev_driver_recv(d, buf, n);
        if (rv >= 0)
            fuzz_drain(d, c, NULL, 0);
        /* borrow_input: what is still queued from buf moves out of it */
        int settled = eev_driver_out_settle(d);
        memset(buf, 0xEE, n);
        free(buf);
        if (rv < 0 || settled < 0)
            return;
        if (rv == 0 && n)
            return; /* no progress: the driver holds back (a yield) */
        off += (size_t)rv; /* fewer than n: the rest is fed again */
    }
}

#endif
