/*
 * test_failmalloc.c - every allocation the driver makes is made to fail in
 * turn (malloc/realloc are wrapped at link time): the driver must report
 * EEV_ERR_NOMEM, never crash, never leak (run it under ASan), and a driver
 * whose allocation failed must still be deletable. And none is made at all
 * to echo whole messages in steady state.
 */
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "util.h"

static long alloc_count;
static long fail_at; /* 0: never */

void *__real_malloc(size_t n);
void *__real_realloc(void *p, size_t n);
void *__wrap_malloc(size_t n);
void *__wrap_realloc(void *p, size_t n);

void *__wrap_malloc(size_t n)
{
    if (++alloc_count == fail_at)
        return NULL;
    return __real_malloc(n);
}

void *__wrap_realloc(void *p, size_t n)
{
    if (++alloc_count == fail_at)
        return NULL;
    return __real_realloc(p, n);
}

static const char upgrade[] = "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                              "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                              "Sec-WebSocket-Version: 13\r\n\r\n";

static const char up_deflate[] = "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                                  "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                                  "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\r\n";
static const char up_deflate_snct[] = "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                                  "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                                  "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Extensions: permessage-deflate; "
                                  "server_no_context_takeover\r\n\r\n";

static int echo(eev_driver *d, const eev_message_arg *m, void *ud)
{
    int rv = eev_driver_send_message(d, m);
    (void)ud;
    return rv == EEV_ERR_NOMEM ? -1 : 0;
}

static const eev_callbacks cb = {.on_message = echo};

/* Feeds in[] in pieces of `step` bytes; returns the first negative result
 * of the driver, or 0. */
static int scenario(const uint8_t *in, size_t len, size_t step, int borrow, int mode)
{
    eev_options opt = {.role = EEV_ROLE_SERVER, .borrow_input = borrow,
                       .deflate = {.enable = mode > 0, .echo_only = mode == 1}};
    eev_driver *d;
    int rv = eev_driver_new(&d, &cb, &opt, NULL);

    if (rv < 0)
        return rv;
    uint8_t *copy = malloc(len);
    if (!copy) {
        eev_driver_del(d);
        return EEV_ERR_NOMEM;
    }
    memcpy(copy, in, len);
    for (size_t off = 0; off < len && rv >= 0; off += step) {
        size_t n = len - off < step ? len - off : step;
        ssize_t r = eev_driver_recv(d, copy + off, n);
        if (r < 0) {
            rv = (int)r;
            break;
        }
        struct iovec iov[8];
        int cnt = eev_driver_out_iov(d, iov, 8);
        if (cnt > 0)
            eev_driver_out_consume(d, iov[0].iov_len / 2 + 1 > iov[0].iov_len ? iov[0].iov_len : iov[0].iov_len / 2 + 1);
        rv = eev_driver_out_settle(d);
    }
    free(copy);
    eev_driver_del(d);
    return rv;
}

/* Writes out everything queued, as a socket that takes it all would. */
static void drain(eev_driver *d)
{
    struct iovec iov[8];
    int cnt;

    while ((cnt = eev_driver_out_iov(d, iov, 8)) > 0) {
        size_t n = 0;
        for (int i = 0; i < cnt; i++)
            n += iov[i].iov_len;
        eev_driver_out_consume(d, n);
    }
}

/* Steady state with borrow_input: buffers of whole messages (one small,
 * a burst of small ones, one large) are echoed without an allocation. */
static void test_no_alloc(void)
{
    eev_options opt = {.role = EEV_ROLE_SERVER, .borrow_input = 1};
    eev_driver *d;
    sbuf one = {0}, burst = {0}, large = {0}, hs = {0};
    uint8_t p[16384];

    memset(p, 'x', sizeof(p));
    sb_frame(&one, 0x82, 1, p, 16);
    for (int i = 0; i < 16; i++)
        sb_frame(&burst, i & 1 ? 0x81 : 0x82, 1, p, 16 + (size_t)i * 40);
    sb_frame(&large, 0x82, 1, p, sizeof(p));
    sb_put(&hs, upgrade, sizeof(upgrade) - 1);
    ok(eev_driver_new(&d, &cb, &opt, NULL) == 0, "no-alloc: driver created");
    eev_driver_recv(d, hs.p, hs.len);
    drain(d);
    eev_driver_out_settle(d);
    for (int round = 0; round < 4; round++) {
        static const char *const what[] = {"one small message", "a burst of 16 small messages",
                                           "one 16 KiB message", "one small message again"};
        static const size_t frames[] = {1, 16, 1, 1};
        sbuf *in = round == 1 ? &burst : round == 2 ? &large : &one;
        uint8_t *buf = malloc(in->len);
        memcpy(buf, in->p, in->len);
        alloc_count = 0;
        ssize_t r = eev_driver_recv(d, buf, in->len);
        size_t queued = eev_driver_out_len(d);
        drain(d);
        int rv = eev_driver_out_settle(d);
        ok(r == (ssize_t)in->len && queued == in->len - 4 * frames[round] && rv == 0 && alloc_count == 0,
           "no-alloc: %s echoed with %ld allocations", what[round], alloc_count);
        free(buf);
    }
    eev_driver_del(d);
    sb_free(&one);
    sb_free(&burst);
    sb_free(&large);
    sb_free(&hs);
}

/* Appends a compressed message (client context kept) as frames of at most
 * frag bytes. */
static void sb_deflated(sbuf *b, z_stream *z, uint8_t op, const void *p, size_t len, size_t frag)
{
    static uint8_t out[65536];
    z->next_in = (Bytef *)p;
    z->avail_in = (uInt)len;
    z->next_out = out;
    z->avail_out = sizeof(out);
    deflate(z, Z_SYNC_FLUSH);
    size_t n = sizeof(out) - z->avail_out - 4, off = 0;
    do {
        size_t k = n - off < frag ? n - off : frag;
        sb_frame(b, (uint8_t)((off == 0 ? 0x40 | op : 0) | (off + k == n ? 0x80 : 0)), 1, out + off, k);
        off += k;
    } while (off < n);
}

static void run(const sbuf *in, int mode)
{
    static const size_t steps[] = {7, 4096, 1 << 20};

    for (size_t s = 0; s < sizeof(steps) / sizeof(steps[0]); s++) {
        for (int borrow = 0; borrow <= 1; borrow++) {
            fail_at = 0;
            alloc_count = 0;
            int clean = scenario(in->p, in->len, steps[s], borrow, mode);
            long total = alloc_count;
            ok(clean == 0 && total > 0, "mode %d step %zu borrow %d: clean run makes %ld allocations", mode, steps[s],
               borrow, total);
            int nomem = 0, bad = 0;
            for (long k = 1; k <= total; k++) {
                alloc_count = 0;
                fail_at = k;
                int rv = scenario(in->p, in->len, steps[s], borrow, mode);
                if (rv == EEV_ERR_NOMEM || rv == EEV_ERR_CALLBACK)
                    nomem++;
                else if (rv != 0)
                    bad++;
            }
            fail_at = 0;
            ok(bad == 0, "mode %d step %zu borrow %d: every failed allocation gives NOMEM (or is absorbed), %d reported",
               mode, steps[s], borrow, nomem);
            ok(nomem > 0, "mode %d step %zu borrow %d: failures are reported, not ignored", mode, steps[s], borrow);
        }
    }
}

int main(void)
{
    sbuf in = {0};
    uint8_t big[20000];
    static const size_t steps[] = {7, 4096, 1 << 20};

    for (size_t i = 0; i < sizeof(big); i++)
        big[i] = (uint8_t)i;
    sb_put(&in, upgrade, sizeof(upgrade) - 1);
    sb_frame(&in, 0x01, 1, "frag", 4);                 /* fragmented text */
    sb_frame(&in, 0x89, 1, "ping payload", 12);        /* ping between fragments */
    sb_frame(&in, 0x80, 1, "mented", 6);
    sb_frame(&in, 0x82, 1, big, sizeof(big));          /* big binary */
    sb_frame(&in, 0x82, 1, big, 3000);                 /* borrowed when whole */
    sb_frame(&in, 0x88, 1, "\x03\xe8" "bye", 5);        /* close 1000 */

    (void)steps;
    run(&in, 0);

    /* permessage-deflate: passthrough echo (mode 1), and compressed again
     * because the server resets context while the client keeps it (2). */
    for (int mode = 1; mode <= 2; mode++) {
        z_stream z = {0};
        deflateInit2(&z, 6, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY);
        sb_reset(&in);
        sb_puts(&in, mode == 1 ? up_deflate : up_deflate_snct);
        sb_deflated(&in, &z, 1, "fragmented and compressed", 25, 6);
        sb_frame(&in, 0x89, 1, "ping payload", 12);
        sb_deflated(&in, &z, 2, big, sizeof(big), 1 << 20);
        sb_deflated(&in, &z, 2, big, 3000, 1 << 20);
        sb_frame(&in, 0x82, 1, big, 100);                  /* uncompressed */
        sb_frame(&in, 0x88, 1, "\x03\xe8" "bye", 5);
        deflateEnd(&z);
        run(&in, mode);
    }
    sb_free(&in);
    test_no_alloc();
    return done_testing();
}
