/*
 * test_msg_growth.c - the reassembly buffer grows with the bytes that
 * arrive (not with a header's declared length), geometrically (not one
 * frame at a time), and asks on_mem_grow first: a refusal fails the
 * connection with the owner's close code.
 */
#include <stdlib.h>
#include <string.h>

#include "util.h"

static const char upgrade[] = "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                              "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                              "Sec-WebSocket-Version: 13\r\n\r\n";

struct rec {
    size_t grows, grown, msg_len;
    int msgs, errors, error_code, refuse; /* refuse: close code to return */
    size_t budget;                        /* refuse once grown would pass it */
};

static int on_message(eev_driver *d, const eev_message_arg *m, void *ud)
{
    struct rec *r = ud;
    (void)d;
    r->msgs++;
    r->msg_len = m->len;
    return 0;
}

static int on_mem_grow(eev_driver *d, size_t grow, void *ud)
{
    struct rec *r = ud;
    (void)d;
    if (r->budget && r->grown + grow > r->budget)
        return r->refuse;
    r->grows++;
    r->grown += grow;
    return 0;
}

static void on_error(eev_driver *d, const eev_error_arg *e, void *ud)
{
    struct rec *r = ud;
    (void)d;
    r->errors++;
    r->error_code = e->close_code;
}

static const eev_callbacks cb = {.on_message = on_message, .on_error = on_error, .on_mem_grow = on_mem_grow};
static const eev_options opt = {.max_message_size = 64u << 20};

static eev_driver *open_driver(struct rec *r)
{
    eev_driver *d;
    char req[sizeof(upgrade)];

    memset(r, 0, sizeof(*r));
    if (eev_driver_new(&d, &cb, &opt, r) < 0)
        return NULL;
    memcpy(req, upgrade, sizeof(upgrade));
    eev_driver_recv(d, (uint8_t *)req, sizeof(upgrade) - 1);
    struct iovec iov[4];
    while (eev_driver_out_iov(d, iov, 4) > 0)
        eev_driver_out_consume(d, iov[0].iov_len);
    return d;
}

static void feed(eev_driver *d, const sbuf *b)
{
    uint8_t *copy = malloc(b->len ? b->len : 1);
    memcpy(copy, b->p, b->len);
    eev_driver_recv(d, copy, b->len);
    free(copy);
}

static void test_header_reserves_nothing(void)
{
    struct rec r;
    eev_driver *d = open_driver(&r);
    sbuf in = {0};
    static uint8_t part[1000];

    note("a header declaring 16 MiB reserves what arrived, not 16 MiB");
    sb_frame_header(&in, 0x82, 1, 16u << 20);
    sb_put(&in, tmask_key, 4);
    sb_put(&in, part, sizeof(part));
    feed(d, &in);
    ok(eev_driver_mem(d) <= 8192, "16 MiB header + 1000 bytes: driver holds %zu bytes", eev_driver_mem(d));
    ok(r.grown == eev_driver_mem(d), "on_mem_grow saw every byte of growth (%zu)", r.grown);
    eev_driver_del(d);
    sb_free(&in);
}

static void test_tiny_fragments(void)
{
    struct rec r;
    eev_driver *d = open_driver(&r);
    sbuf in = {0};
    enum { N = 100000 };

    note("%d one-byte fragments: O(log n) growths, not one per frame", N);
    sb_frame(&in, 0x02, 1, "a", 1);
    for (int i = 1; i < N - 1; i++)
        sb_frame(&in, 0x00, 1, "b", 1);
    sb_frame(&in, 0x80, 1, "c", 1);
    feed(d, &in);
    ok(r.msgs == 1 && r.msg_len == N, "one message of %d bytes (got %d of %zu)", N, r.msgs, r.msg_len);
    ok(r.grows <= 20, "%zu buffer growths for %d fragments", r.grows, N);
    ok(eev_driver_mem(d) == 0, "nothing held after delivery (%zu)", eev_driver_mem(d));
    eev_driver_del(d);
    sb_free(&in);
}

static void test_split_large(void)
{
    struct rec r;
    eev_driver *d = open_driver(&r);
    sbuf in = {0};
    size_t len = 3u << 20;
    uint8_t *p = calloc(1, len);

    note("a 3 MiB frame fed in 64 KiB pieces: grows geometrically, ends exactly at its size");
    sb_frame(&in, 0x82, 1, p, len);
    size_t peak = 0;
    for (size_t off = 0; off < in.len; off += 65536) {
        size_t n = in.len - off < 65536 ? in.len - off : 65536;
        uint8_t *piece = malloc(n);
        memcpy(piece, in.p + off, n);
        eev_driver_recv(d, piece, n);
        free(piece);
        if (eev_driver_mem(d) > peak)
            peak = eev_driver_mem(d);
    }
    ok(r.msgs == 1 && r.msg_len == len, "delivered whole");
    ok(peak <= len, "peak buffer %zu <= the declared %zu", peak, len);
    ok(r.grows <= 12, "%zu growths", r.grows);
    eev_driver_del(d);
    sb_free(&in);
    free(p);
}

static void test_refused(void)
{
    struct rec r;
    eev_driver *d = open_driver(&r);
    sbuf in = {0};
    static uint8_t part[100000];

    note("on_mem_grow refuses: the connection fails with the owner's code");
    r.budget = 50000;
    r.refuse = EEV_CLOSE_TRY_AGAIN;
    sb_frame_header(&in, 0x82, 1, 1u << 20);
    sb_put(&in, tmask_key, 4);
    sb_put(&in, part, sizeof(part));
    feed(d, &in);
    ok(r.errors == 1 && r.error_code == 1013, "on_error with 1013 (got %d x %d)", r.errors, r.error_code);
    ok(eev_driver_finished(d), "no more input");
    struct iovec iov[4];
    int n = eev_driver_out_iov(d, iov, 4);
    const uint8_t *f = n > 0 ? iov[0].iov_base : NULL;
    ok(n > 0 && iov[0].iov_len >= 4 && f[0] == 0x88 && (f[2] << 8 | f[3]) == 1013, "Close 1013 queued");
    ok(eev_driver_mem(d) == eev_driver_out_len(d), "message buffer released");
    eev_driver_del(d);
    sb_free(&in);
}

int main(void)
{
    test_header_reserves_nothing();
    test_tiny_fragments();
    test_split_large();
    test_refused();
    return done_testing();
}
