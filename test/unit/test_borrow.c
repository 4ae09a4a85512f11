/*
 * test_borrow.c - options.borrow_input: large echoes are queued as views of
 * the input buffer, and eev_driver_out_settle() copies what is unsent so
 * the buffer can be reused.
 */
#include <stdlib.h>
#include <string.h>

#include "util.h"

static const char upgrade[] = "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                              "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                              "Sec-WebSocket-Version: 13\r\n\r\n";

static int echo(eev_driver *d, const eev_message_arg *m, void *ud)
{
    (void)ud;
    return eev_driver_send_message(d, m);
}

static const eev_callbacks cb = {.on_message = echo};

/* Takes up to max bytes of output into out; returns how many, and sets
 * *inside when some queued iovec pointed into [lo, hi). */
static size_t take(eev_driver *d, sbuf *out, size_t max, const uint8_t *lo, const uint8_t *hi, int *inside)
{
    struct iovec iov[64];
    int n = eev_driver_out_iov(d, iov, 64);
    size_t got = 0;

    for (int i = 0; i < n; i++)
        if ((const uint8_t *)iov[i].iov_base >= lo && (const uint8_t *)iov[i].iov_base < hi)
            *inside = 1;
    for (int i = 0; i < n && got < max; i++) {
        const uint8_t *b = iov[i].iov_base;
        size_t l = iov[i].iov_len < max - got ? iov[i].iov_len : max - got;
        sb_put(out, b, l);
        got += l;
    }
    eev_driver_out_consume(d, got);
    return got;
}

static void run(int borrow, size_t first_take)
{
    eev_options opt = {.role = EEV_ROLE_SERVER, .borrow_input = borrow};
    eev_driver *d;
    sbuf in = {0}, want = {0}, out = {0};
    uint8_t big[5000], small[10];
    int inside = 0;

    for (size_t i = 0; i < sizeof(big); i++)
        big[i] = (uint8_t)(i * 31 + 7);
    memset(small, 'a', sizeof(small));
    sb_put(&in, upgrade, sizeof(upgrade) - 1);
    sb_frame(&in, 0x82, 1, big, sizeof(big));
    sb_frame(&in, 0x81, 1, small, sizeof(small));
    sb_frame(&in, 0x82, 1, big, sizeof(big));
    sb_frame(&want, 0x82, 0, big, sizeof(big));
    sb_frame(&want, 0x81, 0, small, sizeof(small));
    sb_frame(&want, 0x82, 0, big, sizeof(big));

    ok(eev_driver_new(&d, &cb, &opt, NULL) == 0, "borrow=%d: driver created", borrow);
    ok(eev_driver_recv(d, in.p, in.len) == (ssize_t)in.len, "borrow=%d: input consumed", borrow);
    take(d, &out, first_take, in.p, in.p + in.len, &inside);
    ok(eev_driver_out_settle(d) == 0, "borrow=%d: settle", borrow);
    memset(in.p, 0xEE, in.len); /* the owner reuses its buffer */
    int inside_after = 0;
    take(d, &out, (size_t)-1, in.p, in.p + in.len, &inside_after);
    ok(inside == borrow, "borrow=%d: first output %s the input buffer", borrow,
       borrow ? "points into" : "does not point into");
    ok(!inside_after, "borrow=%d: after settle no output points into the input", borrow);
    const char *end_of_101 = strstr((const char *)out.p, "\r\n\r\n");
    size_t hl = end_of_101 ? (size_t)(end_of_101 + 4 - (const char *)out.p) : 0;
    ok(hl > 0 && out.len - hl == want.len && memcmp(out.p + hl, want.p, want.len) == 0,
       "borrow=%d, first write %zu bytes: echoes byte-identical", borrow, first_take);
    ok(eev_driver_out_len(d) == 0, "borrow=%d: queue empty", borrow);
    eev_driver_del(d);
    sb_free(&in);
    sb_free(&want);
    sb_free(&out);
}

int main(void)
{
    /* Partial first writes: inside the 101, inside the first echo's
     * header, inside its payload, and everything. */
    size_t takes[] = {0, 50, 130, 140, 1000, 5200, (size_t)-1};
    for (size_t i = 0; i < sizeof(takes) / sizeof(takes[0]); i++) {
        run(1, takes[i]);
        run(0, takes[i]);
    }
    return done_testing();
}
