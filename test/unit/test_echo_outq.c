/*
 * test_echo_outq.c - eev_driver_send_message echoes from on_message, and
 * the output queue (out_iov / out_consume / out_len) under partial writes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

static const tscn echo_srv = {.opt = {.role = EEV_ROLE_SERVER}, .open = 1, .echo = 1};
static const tscn echo_cli = {.opt = {.role = EEV_ROLE_CLIENT, .host = "h", .path = "/"}, .open = 1, .echo = 1};

/* Checks r->out holds exactly one unfragmented frame per expected message. */
static void check_echo(const char *name, const trec *r, int op, const uint8_t *p, size_t len, int masked)
{
    tfr f;
    size_t n = tfr_parse(r->out.p, r->out.len, &f);

    ok(r->send_rv == 0 && n == r->out.len && f.op == op && f.fin && f.rsv == 0 && f.masked == masked && f.len == len &&
           memcmp(f.data, p, len) == 0,
       "%s: echoed byte-identical as one frame (%zu bytes, rv %d)", name, len, r->send_rv);
    tfr_free(&f);
}

static void test_echo(void)
{
    static const size_t sizes[] = {0, 5, 125, 126, 3000, 65536, 200000};
    uint8_t *p = malloc(200000);
    sbuf in = {0};
    trec r;
    char name[64];

    note("echo with eev_driver_send_message");
    for (size_t i = 0; i < 200000; i++)
        p[i] = (uint8_t)('a' + i % 26);
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        sb_reset(&in);
        sb_frame(&in, 0x81, 1, p, sizes[i]);
        snprintf(name, sizeof(name), "text %zu one frame", sizes[i]);
        tsplit(name, &echo_srv, in.p, in.len, &r);
        check_echo(name, &r, 1, p, sizes[i], 0);
        trec_end(&r);
    }
    /* Fragmented binary, with a ping in the middle. */
    for (size_t i = 0; i < 3000; i++)
        p[i] = (uint8_t)(i * 31);
    sb_reset(&in);
    sb_frame(&in, 0x02, 1, p, 1000);
    sb_frame(&in, 0x00, 1, p + 1000, 1);
    sb_frame(&in, 0x89, 1, "x", 1);
    sb_frame(&in, 0x00, 1, p + 1001, 0);
    sb_frame(&in, 0x80, 1, p + 1001, 1999);
    tsplit("binary in four fragments", &echo_srv, in.p, in.len, &r);
    {
        tfr f = {0}, g = {0};
        size_t n = tfr_parse(r.out.p, r.out.len, &f);
        size_t m = n ? tfr_parse(r.out.p + n, r.out.len - n, &g) : 0;
        ok(n && m && n + m == r.out.len && f.op == 0xA && g.op == 2 && g.len == 3000 && memcmp(g.data, p, 3000) == 0,
           "pong, then the joined message echoed byte-identical");
        tfr_free(&f);
        tfr_free(&g);
    }
    trec_end(&r);

    /* Two messages in one read, client role (masked echo). */
    sb_reset(&in);
    sb_frame(&in, 0x81, 0, "one", 3);
    sb_frame(&in, 0x82, 0, "two!", 4);
    tsplit("client: two messages", &echo_cli, in.p, in.len, &r);
    {
        tfr f = {0}, g = {0};
        size_t n = tfr_parse(r.out.p, r.out.len, &f);
        size_t m = n ? tfr_parse(r.out.p + n, r.out.len - n, &g) : 0;
        ok(n && m && f.masked && g.masked && f.op == 1 && g.op == 2 && f.len == 3 && g.len == 4 &&
               memcmp(f.data, "one", 3) == 0 && memcmp(g.data, "two!", 4) == 0,
           "client: both echoed masked, in order");
        tfr_free(&f);
        tfr_free(&g);
    }
    trec_end(&r);

    /* The echo stays intact when the input buffer is overwritten after recv. */
    if (trec_start(&r, &echo_srv) == 0) {
        uint8_t *buf = malloc(70000);
        sb_reset(&in);
        sb_frame(&in, 0x82, 1, p, 3000);
        memcpy(buf, in.p, 2000);
        eev_driver_recv(r.d, buf, 2000);
        memset(buf, 0xEE, 2000);
        memcpy(buf, in.p + 2000, in.len - 2000);
        eev_driver_recv(r.d, buf, in.len - 2000);
        memset(buf, 0xEE, in.len - 2000);
        tdrain(&r);
        check_echo("input buffer reused", &r, 2, p, 3000, 0);
        free(buf);
    }
    trec_end(&r);

    /* Same for a message that arrived whole in one recv (payload in place). */
    for (int role = 0; role < 2; role++) {
        if (trec_start(&r, role ? &echo_cli : &echo_srv) == 0) {
            uint8_t *buf = malloc(70000);
            sb_reset(&in);
            sb_frame(&in, 0x82, !role, p, 3000);
            sb_frame(&in, 0x81, !role, "tail", 4);
            memcpy(buf, in.p, in.len);
            eev_driver_recv(r.d, buf, in.len);
            memset(buf, 0xEE, in.len);
            tdrain(&r);
            {
                tfr f = {0}, g = {0};
                size_t n = tfr_parse(r.out.p, r.out.len, &f);
                size_t m = n ? tfr_parse(r.out.p + n, r.out.len - n, &g) : 0;
                ok(n && m && f.len == 3000 && memcmp(f.data, p, 3000) == 0 && g.len == 4 && memcmp(g.data, "tail", 4) == 0 &&
                       f.masked == role,
                   "%s: in-place echo survives reuse of the input buffer", role ? "client" : "server");
                tfr_free(&f);
                if (m)
                    tfr_free(&g);
            }
            free(buf);
        }
        trec_end(&r);
    }
    sb_free(&in);
    free(p);
}

/* Queues a mixed set of frames on a fresh open server driver. */
static void fill(trec *r, const uint8_t *p)
{
    eev_driver_text(r->d, "hello", 5);
    eev_driver_binary(r->d, p, 70000);
    eev_driver_ping(r->d, "pi", 2);
    eev_driver_binary(r->d, p + 5, 126);
    eev_driver_text(r->d, "", 0);
    eev_driver_close(r->d, 1000, "done", 4);
}

static void test_outq(void)
{
    uint8_t *p = malloc(70000);
    trec r;
    sbuf whole = {0}, part = {0};
    size_t total = 0;
    int good;

    note("output queue");
    for (size_t i = 0; i < 70000; i++)
        p[i] = (uint8_t)(i ^ (i >> 8));
    if (trec_start(&r, &tsrv) != 0)
        return;
    ok(eev_driver_out_len(r.d) == 0 && !eev_driver_want_write(r.d), "empty queue");
    {
        struct iovec iov[1];
        ok(eev_driver_out_iov(r.d, iov, 1) == 0, "out_iov on an empty queue: 0");
    }
    fill(&r, p);
    total = eev_driver_out_len(r.d);
    ok(eev_driver_want_write(r.d) && total == 7 + 70010 + 4 + 130 + 2 + 8, "out_len %zu", total);
    tdrain(&r);
    sb_put(&whole, r.out.p, r.out.len);
    ok(whole.len == total && eev_driver_out_len(r.d) == 0 && !eev_driver_want_write(r.d), "drained all %zu bytes", whole.len);
    ok(tfr_count(&r.out) == 6 && tclose_code(&r) == 1000, "six frames, ending with Close 1000");
    trec_end(&r);

    /* One byte at a time, iovmax 1 and 16. */
    for (int iovmax = 1; iovmax <= 16; iovmax += 15) {
        if (trec_start(&r, &tsrv) != 0)
            break;
        fill(&r, p);
        sb_reset(&part);
        good = 1;
        while (eev_driver_out_len(r.d) > 0 && good) {
            struct iovec iov[16];
            size_t before = eev_driver_out_len(r.d), sum = 0;
            int n = eev_driver_out_iov(r.d, iov, iovmax);
            for (int i = 0; i < n; i++)
                sum += iov[i].iov_len;
            if (n <= 0 || n > iovmax || sum > before || iov[0].iov_len == 0) {
                good = 0;
                break;
            }
            sb_put(&part, iov[0].iov_base, 1);
            eev_driver_out_consume(r.d, 1);
            good = eev_driver_out_len(r.d) == before - 1;
        }
        ok(good && part.len == whole.len && memcmp(part.p, whole.p, whole.len) == 0,
           "one byte at a time (iovmax %d) reproduces the stream", iovmax);
        trec_end(&r);
    }

    /* Irregular partial writes spanning iovecs. */
    if (trec_start(&r, &tsrv) == 0) {
        size_t k = 0;
        fill(&r, p);
        sb_reset(&part);
        good = 1;
        while (eev_driver_out_len(r.d) > 0 && good) {
            struct iovec iov[3];
            size_t want = 1 + (k++ * 7919) % 9000, got = 0;
            int n = eev_driver_out_iov(r.d, iov, 3);
            for (int i = 0; i < n && got < want; i++) {
                size_t take = iov[i].iov_len < want - got ? iov[i].iov_len : want - got;
                sb_put(&part, iov[i].iov_base, take);
                got += take;
            }
            good = n > 0;
            eev_driver_out_consume(r.d, got);
        }
        ok(good && part.len == whole.len && memcmp(part.p, whole.p, whole.len) == 0,
           "irregular partial writes across iovecs reproduce the stream");
    }
    trec_end(&r);

    if (trec_start(&r, &tsrv) == 0) {
        eev_driver_text(r.d, "first", 5);
        eev_driver_out_consume(r.d, 3);
        eev_driver_text(r.d, "second", 6);
        tdrain(&r);
        ok(r.out.len == 12 && memcmp(r.out.p, "irst\x81\x06second", 12) == 0,
           "queue after a partial consume keeps order (%s)", thex(r.out.p, r.out.len));
    }
    trec_end(&r);
    sb_free(&whole);
    sb_free(&part);
    free(p);
}

int main(void)
{
    test_echo();
    test_outq();
    return done_testing();
}
