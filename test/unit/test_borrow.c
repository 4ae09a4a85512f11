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

/* Allocates an exact copy of b (ASan sees any write before or after it). */
static uint8_t *exact(const uint8_t *p, size_t len)
{
    uint8_t *c = malloc(len ? len : 1);
    memcpy(c, p, len);
    return c;
}

/*
 * Echoes of messages that arrive whole after the handshake leave from the
 * input buffer itself: each echo's header is written over the spent masked
 * header, small echoes are moved together into one run. Mixed with a ping,
 * a large message, a message split across two buffers and a header that
 * ends one buffer (its payload must not get a header written before the
 * next buffer). Whatever is unsent when the buffer is settled is copied.
 */
static void run_inplace(size_t first_take)
{
    eev_options opt = {.role = EEV_ROLE_SERVER, .borrow_input = 1};
    eev_driver *d;
    sbuf in = {0}, want = {0}, out = {0}, hs = {0};
    uint8_t big[3000], p16[16], t10[10];
    int inside = 0, ignore = 0;

    for (size_t i = 0; i < sizeof(big); i++)
        big[i] = (uint8_t)(i * 7 + 1);
    memset(p16, 0xA5, sizeof(p16));
    memcpy(t10, "0123456789", 10);
    ok(eev_driver_new(&d, &cb, &opt, NULL) == 0, "in place, first write %zu: driver created", first_take);
    sb_put(&hs, upgrade, sizeof(upgrade) - 1);
    eev_driver_recv(d, hs.p, hs.len);
    take(d, &out, (size_t)-1, NULL, NULL, &ignore);
    eev_driver_out_settle(d);
    sb_reset(&out);

    sb_frame(&in, 0x82, 1, p16, 16);
    sb_frame(&in, 0x81, 1, t10, 10);
    sb_frame(&in, 0x82, 1, "", 0);
    sb_frame(&in, 0x82, 1, big, sizeof(big));
    sb_frame(&in, 0x82, 1, p16, 16);
    sb_frame(&in, 0x89, 1, "p", 1);
    sb_frame(&in, 0x82, 1, p16, 5);
    size_t cut1 = in.len;
    sb_frame(&in, 0x81, 1, t10, 7);  /* split: 3 bytes of payload in the next buffer */
    size_t cut2 = in.len - 3;
    sb_frame(&in, 0x82, 1, p16, 16); /* header at the end of the second buffer */
    size_t cut3 = in.len - 16;
    sb_frame(&in, 0x82, 1, p16, 12);

    sb_frame(&want, 0x82, 0, p16, 16);
    sb_frame(&want, 0x81, 0, t10, 10);
    sb_frame(&want, 0x82, 0, "", 0);
    sb_frame(&want, 0x82, 0, big, sizeof(big));
    sb_frame(&want, 0x82, 0, p16, 16);
    sb_frame(&want, 0x8A, 0, "p", 1);
    sb_frame(&want, 0x82, 0, p16, 5);
    sb_frame(&want, 0x81, 0, t10, 7);
    sb_frame(&want, 0x82, 0, p16, 16);
    sb_frame(&want, 0x82, 0, p16, 12);

    const uint8_t *cuts[4] = {in.p, in.p + cut2, in.p + cut3, in.p + in.len};
    (void)cut1;
    for (int b = 0; b < 3; b++) {
        size_t n = (size_t)(cuts[b + 1] - cuts[b]);
        uint8_t *buf = exact(cuts[b], n);
        int here = 0;
        ok(eev_driver_recv(d, buf, n) == (ssize_t)n, "in place, first write %zu: buffer %d consumed", first_take, b);
        struct iovec iov[8];
        int cnt = eev_driver_out_iov(d, iov, 8);
        if (b == 0)
            ok(cnt >= 1 && (uint8_t *)iov[0].iov_base >= buf && (uint8_t *)iov[0].iov_base < buf + n &&
                   iov[0].iov_len >= 18 + 12 + 2,
               "in place: the first (small) echoes are one run inside the input buffer (%d iovecs)", cnt);
        take(d, &out, b == 0 ? first_take : (size_t)-1, buf, buf + n, &here);
        ok(eev_driver_out_settle(d) == 0, "in place, first write %zu: settle %d", first_take, b);
        memset(buf, 0xEE, n);
        here = 0;
        struct iovec after[8];
        cnt = eev_driver_out_iov(d, after, 8);
        for (int i = 0; i < cnt; i++)
            if ((uint8_t *)after[i].iov_base >= buf && (uint8_t *)after[i].iov_base < buf + n)
                here = 1;
        ok(!here, "in place, first write %zu: nothing points into buffer %d after settle", first_take, b);
        inside |= here;
        free(buf);
    }
    take(d, &out, (size_t)-1, NULL, NULL, &ignore);
    ok(out.len == want.len && memcmp(out.p, want.p, want.len) == 0,
       "in place, first write %zu: echoes byte-identical, in order (%zu of %zu bytes)", first_take, out.len, want.len);
    ok(eev_driver_out_len(d) == 0, "in place: queue empty");
    eev_driver_del(d);
    sb_free(&in);
    sb_free(&want);
    sb_free(&out);
    sb_free(&hs);
}

/* eev_driver_fail() after a settle that left the rest of a partly
 * written run of echoes: that frame is finished before the Close, so the
 * stream stays valid wherever the transport stopped. */
static void fail_after_settle(size_t first_take)
{
    eev_options opt = {.role = EEV_ROLE_SERVER, .borrow_input = 1};
    eev_driver *d;
    sbuf in = {0}, out = {0};
    uint8_t big[5000];
    int inside = 0;
    size_t at = 0, frames = 0;
    int last_op = -1, last_code = -1, whole = 1;
    tfr f;

    memset(big, 'b', sizeof(big));
    sb_put(&in, upgrade, sizeof(upgrade) - 1);
    if (eev_driver_new(&d, &cb, &opt, NULL) != 0)
        return;
    eev_driver_recv(d, in.p, in.len);
    take(d, &out, (size_t)-1, NULL, NULL, &inside); /* the 101 */
    sb_reset(&out);
    sb_reset(&in);
    sb_frame(&in, 0x82, 1, big, sizeof(big));
    sb_frame(&in, 0x81, 1, "tiny", 4);
    sb_frame(&in, 0x82, 1, big, sizeof(big));
    eev_driver_recv(d, in.p, in.len);
    take(d, &out, first_take, NULL, NULL, &inside);
    eev_driver_out_settle(d);
    memset(in.p, 0xEE, in.len);
    ok(eev_driver_fail(d, 1013, "", 0) == 0, "fail after %zu bytes and a settle", first_take);
    take(d, &out, (size_t)-1, NULL, NULL, &inside);
    while (at < out.len) {
        size_t n = tfr_parse(out.p + at, out.len - at, &f);
        if (!n) {
            whole = 0;
            break;
        }
        frames++;
        last_op = f.op;
        last_code = f.len >= 2 ? f.data[0] << 8 | f.data[1] : -1;
        whole &= f.op == 8 || f.len == sizeof(big) || f.len == 4;
        tfr_free(&f);
        at += n;
    }
    ok(whole && frames >= 2 && last_op == 8 && last_code == 1013,
       "after %zu bytes: %zu whole frames, the last Close 1013 (op %d, code %d)", first_take, frames, last_op,
       last_code);
    eev_driver_del(d);
    sb_free(&in);
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
    size_t inplace_takes[] = {0, 1, 17, 18, 30, 40, 1000, 3055, 3100, (size_t)-1};
    for (size_t i = 0; i < sizeof(inplace_takes) / sizeof(inplace_takes[0]); i++)
        run_inplace(inplace_takes[i]);
    size_t fail_takes[] = {1, 100, 5004, 5010};
    for (size_t i = 0; i < sizeof(fail_takes) / sizeof(fail_takes[0]); i++)
        fail_after_settle(fail_takes[i]);
    return done_testing();
}
