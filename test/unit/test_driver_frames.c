/*
 * test_driver_frames.c - RFC 6455 §5 framing in the OPEN state: the §5.7
 * samples, masking rules, every fail-the-connection rule, size limits,
 * interleaved control frames, ping/pong and outgoing length encodings.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

static const uint8_t hello_unmasked[] = {0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f};
static const uint8_t hello_masked[] = {0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58};
static const uint8_t hel_lo[] = {0x01, 0x03, 0x48, 0x65, 0x6c, 0x80, 0x02, 0x6c, 0x6f};
static const uint8_t ping_hello[] = {0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f};
static const uint8_t pong_hello_masked[] = {0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58};

/* Finds the first output frame with opcode op; 1 when found. */
static int find_frame(const trec *r, int op, tfr *out)
{
    size_t off = 0, n;
    tfr f;

    while ((n = tfr_parse(r->out.p + off, r->out.len - off, &f)) > 0) {
        if (f.op == op) {
            *out = f;
            return 1;
        }
        tfr_free(&f);
        off += n;
    }
    return 0;
}

static void test_frames_rfc_samples(void)
{
    trec r;
    tfr f;
    uint8_t *big = malloc(65536 + 16);
    sbuf in = {0};

    note("RFC 6455 §5.7 sample frames");
    tfail("server: unmasked Hello", &tsrv, hello_unmasked, sizeof(hello_unmasked), 1002);
    tmsg("client: unmasked Hello", &tcli, hello_unmasked, sizeof(hello_unmasked), 1, "Hello", 5);
    tmsg("server: masked Hello", &tsrv, hello_masked, sizeof(hello_masked), 1, "Hello", 5);
    tfail("client: masked Hello from server", &tcli, hello_masked, sizeof(hello_masked), 1002);
    tmsg("client: fragmented Hel+lo", &tcli, hel_lo, sizeof(hel_lo), 1, "Hello", 5);

    tsplit("client: ping Hello", &tcli, ping_hello, sizeof(ping_hello), &r);
    ok(r.n_ping == 1 && find_frame(&r, 0xA, &f) && f.len == 5 && memcmp(f.data, "Hello", 5) == 0 && f.masked && f.fin,
       "client: pong Hello queued, masked");
    tfr_free(&f);
    trec_end(&r);

    tsplit("server: pong Hello", &tsrv, pong_hello_masked, sizeof(pong_hello_masked), &r);
    ok(r.n_pong == 1 && r.out.len == 0 && strstr((const char *)r.log.p, "pong len=5 ") != NULL,
       "server: on_pong, nothing sent");
    trec_end(&r);

    /* 256 bytes binary, 0x82 0x7E 0x0100, unmasked (client role). */
    for (int i = 0; i < 65536; i++)
        big[i] = (uint8_t)(i * 7 + 3);
    sb_frame(&in, 0x82, 0, big, 256);
    ok(in.len == 260 && in.p[0] == 0x82 && in.p[1] == 0x7E && in.p[2] == 0x01 && in.p[3] == 0x00, "256-byte header bytes");
    tmsg("client: 256-byte binary", &tcli, in.p, in.len, 2, big, 256);
    sb_reset(&in);
    sb_frame(&in, 0x82, 0, big, 65536);
    ok(in.len == 65546 && in.p[1] == 0x7F && in.p[2] == 0 && in.p[7] == 1 && in.p[8] == 0 && in.p[9] == 0,
       "64 KiB header bytes 0x7F 0x0000000000010000");
    tmsg("client: 64 KiB binary", &tcli, in.p, in.len, 2, big, 65536);
    sb_reset(&in);
    sb_frame(&in, 0x82, 1, big, 256);
    tmsg("server: masked 256-byte binary", &tsrv, in.p, in.len, 2, big, 256);
    sb_reset(&in);
    sb_frame(&in, 0x82, 1, big, 65536);
    tmsg("server: masked 64 KiB binary", &tsrv, in.p, in.len, 2, big, 65536);
    sb_reset(&in);
    sb_frame(&in, 0x81, 1, "", 0);
    tmsg("server: empty text", &tsrv, in.p, in.len, 1, "", 0);
    sb_free(&in);
    free(big);
}

static void test_frames_fail_rules(void)
{
    sbuf in = {0};
    char name[64];
    uint8_t p126[126];

    note("fail-the-connection rules (1002)");
    for (int rsv = 1; rsv < 8; rsv++) {
        sb_reset(&in);
        sb_frame(&in, (uint8_t)(0x81 | rsv << 4), 1, "Hello", 5);
        snprintf(name, sizeof(name), "RSV bits %d%d%d", rsv >> 2 & 1, rsv >> 1 & 1, rsv & 1);
        tfail(name, &tsrv, in.p, in.len, 1002);
    }
    sb_reset(&in);
    sb_frame(&in, 0xC9, 1, "", 0);
    tfail("RSV1 on a ping", &tsrv, in.p, in.len, 1002);
    for (int op = 3; op < 16; op++) {
        if (op >= 8 && op <= 10)
            continue;
        sb_reset(&in);
        sb_frame(&in, (uint8_t)(0x80 | op), 1, "x", 1);
        snprintf(name, sizeof(name), "reserved opcode 0x%X", op);
        tfail(name, &tsrv, in.p, in.len, 1002);
    }
    for (int op = 8; op <= 10; op++) {
        sb_reset(&in);
        sb_frame(&in, (uint8_t)op, 1, "", 0);
        snprintf(name, sizeof(name), "control 0x%X with FIN=0", op);
        tfail(name, &tsrv, in.p, in.len, 1002);
        sb_reset(&in);
        memset(p126, 'a', sizeof(p126));
        sb_frame(&in, (uint8_t)(0x80 | op), 1, p126, 126);
        snprintf(name, sizeof(name), "control 0x%X with 126 bytes", op);
        tfail(name, &tsrv, in.p, in.len, 1002);
        sb_reset(&in);
        sb_frame_header(&in, (uint8_t)(0x80 | op), 1, 126);
        snprintf(name, sizeof(name), "control 0x%X, header only, 126", op);
        tfail(name, &tsrv, in.p, in.len, 1002);
    }
    sb_reset(&in);
    sb_frame(&in, 0x80, 1, "lo", 2);
    tfail("continuation without a message", &tsrv, in.p, in.len, 1002);
    sb_reset(&in);
    sb_frame(&in, 0x00, 1, "lo", 2);
    tfail("non-final continuation without a message", &tsrv, in.p, in.len, 1002);
    sb_reset(&in);
    sb_frame(&in, 0x81, 1, "a", 1);
    sb_frame(&in, 0x80, 1, "b", 1);
    {
        trec r;
        tsplit("continuation after a complete message", &tsrv, in.p, in.len, &r);
        ok(r.n_message == 1 && tclose_code(&r) == 1002 && r.error_code == 1002,
           "continuation after a complete message: first delivered, then 1002");
        trec_end(&r);
    }
    sb_reset(&in);
    sb_frame(&in, 0x01, 1, "Hel", 3);
    sb_frame(&in, 0x81, 1, "lo", 2);
    tfail("text while a fragmented message is open", &tsrv, in.p, in.len, 1002);
    sb_reset(&in);
    sb_frame(&in, 0x02, 1, "Hel", 3);
    sb_frame(&in, 0x02, 1, "lo", 2);
    tfail("binary while a fragmented message is open", &tsrv, in.p, in.len, 1002);
    {
        static const uint8_t top[] = {0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 1, 0x37, 0xfa, 0x21, 0x3d};
        tfail("64-bit length with the top bit set", &tsrv, top, sizeof(top), 1002);
    }
    tfail("client: masked pong from server", &tcli, pong_hello_masked, sizeof(pong_hello_masked), 1002);
    sb_free(&in);
}

static void test_frames_size_limits(void)
{
    tscn lim = tsrv;
    sbuf in = {0};
    uint8_t *p = calloc(1, 2048);

    note("message size limits (1009), decided from headers");
    lim.opt.max_message_size = 1000;
    sb_frame_header(&in, 0x82, 1, 1001);
    tfail("frame of max+1, header only", &lim, in.p, in.len, 1009);
    sb_reset(&in);
    sb_frame(&in, 0x82, 1, p, 1000);
    tmsg("frame of exactly max", &lim, in.p, in.len, 2, p, 1000);
    sb_reset(&in);
    sb_frame(&in, 0x02, 1, p, 600);
    sb_frame_header(&in, 0x80, 1, 401);
    tfail("fragments 600 + 401 (header only)", &lim, in.p, in.len, 1009);
    sb_reset(&in);
    sb_frame(&in, 0x01, 1, p, 600);
    sb_frame(&in, 0x00, 1, p, 400);
    sb_frame(&in, 0x80, 1, "", 0);
    tmsg("fragments 600 + 400 + 0 = max", &lim, in.p, in.len, 1, p, 1000);
    sb_reset(&in);
    sb_frame_header(&in, 0x82, 1, (uint64_t)1 << 40);
    tfail("default limit: 2^40 header only", &tsrv, in.p, in.len, 1009);
    sb_reset(&in);
    sb_frame_header(&in, 0x82, 1, (64u << 20) + 1);
    tfail("default limit: 64 MiB + 1 header only", &tsrv, in.p, in.len, 1009);
    sb_reset(&in);
    sb_frame_header(&in, 0x82, 0, (uint64_t)1 << 40);
    tfail("client: 2^40 header only", &tcli, in.p, in.len, 1009);
    sb_free(&in);
    free(p);
}

static void test_frames_interleaved_control(void)
{
    sbuf in = {0};
    trec r;
    tfr f;
    size_t first;

    note("control frames between fragments");
    sb_frame(&in, 0x01, 1, "Hel", 3);
    sb_frame(&in, 0x89, 1, "pi", 2);
    first = in.len;
    sb_frame(&in, 0x8A, 1, "po", 2);
    sb_frame(&in, 0x80, 1, "lo", 2);
    tsplit("ping and pong between fragments", &tsrv, in.p, in.len, &r);
    ok(r.n_message == 1 && r.msgs.len == 5 && memcmp(r.msgs.p, "Hello", 5) == 0 && r.n_ping == 1 && r.n_pong == 1,
       "message joined around control frames");
    ok(strstr((const char *)r.log.p, "ping") < strstr((const char *)r.log.p, "message"), "ping reported before the message");
    trec_end(&r);
    if (trec_start(&r, &tsrv) == 0) {
        tfeed(&r, in.p, first);
        ok(r.n_message == 0 && find_frame(&r, 0xA, &f) && f.len == 2 && memcmp(f.data, "pi", 2) == 0,
           "pong queued before the message completes");
        tfr_free(&f);
    }
    trec_end(&r);
    sb_free(&in);
}

static void test_frames_ping(void)
{
    tscn nopong = tsrv;
    sbuf in = {0};
    uint8_t p125[125];
    trec r;
    tfr f;

    note("ping / pong");
    for (int i = 0; i < 125; i++)
        p125[i] = (uint8_t)(i ^ 0x5a);
    sb_frame(&in, 0x89, 1, p125, 125);
    tsplit("ping with 125 bytes", &tsrv, in.p, in.len, &r);
    ok(r.n_ping == 1 && tfr_count(&r.out) == 1 && find_frame(&r, 0xA, &f) && f.len == 125 &&
           memcmp(f.data, p125, 125) == 0 && !f.masked && f.fin && f.rsv == 0 && f.hdr_len == 2,
       "auto-pong with the identical 125-byte payload");
    tfr_free(&f);
    trec_end(&r);
    sb_reset(&in);
    sb_frame(&in, 0x89, 1, "", 0);
    tsplit("empty ping", &tsrv, in.p, in.len, &r);
    ok(r.n_ping == 1 && r.out.len == 2 && r.out.p[0] == 0x8A && r.out.p[1] == 0, "empty ping: empty pong");
    trec_end(&r);
    nopong.opt.no_auto_pong = 1;
    sb_reset(&in);
    sb_frame(&in, 0x89, 1, "abc", 3);
    tsplit("no_auto_pong", &nopong, in.p, in.len, &r);
    ok(r.n_ping == 1 && r.out.len == 0, "no_auto_pong: on_ping but no pong");
    ok(eev_driver_send(r.d, EEV_OP_PONG, "abc", 3) == 0 && eev_driver_out_len(r.d) == 5, "manual pong queued");
    trec_end(&r);
    sb_free(&in);
}

static void check_encoding(const char *who, const tscn *scn)
{
    static const size_t lens[] = {0, 1, 125, 126, 127, 65535, 65536, 70000};
    static const size_t hdr[] = {2, 2, 2, 4, 4, 4, 10, 10};
    uint8_t *p = malloc(70000);
    trec r;

    for (size_t i = 0; i < 70000; i++)
        p[i] = (uint8_t)(i * 13 + 1);
    for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
        tfr f;
        size_t used;
        size_t want_hdr = hdr[i] + (scn->opt.role == EEV_ROLE_CLIENT ? 4 : 0);
        if (trec_start(&r, scn) != 0)
            break;
        ok(eev_driver_binary(r.d, p, lens[i]) == 0, "%s: queue %zu bytes", who, lens[i]);
        tdrain(&r);
        used = tfr_parse(r.out.p, r.out.len, &f);
        ok(used == r.out.len && f.hdr_len == want_hdr && f.len == lens[i] && f.op == 2 && f.fin && f.rsv == 0 &&
               f.masked == (scn->opt.role == EEV_ROLE_CLIENT) && memcmp(f.data, p, lens[i]) == 0,
           "%s: %zu bytes: %zu-byte header (got %zu), mask %d, payload intact", who, lens[i], want_hdr, f.hdr_len,
           f.masked);
        tfr_free(&f);
        trec_end(&r);
    }
    free(p);
}

static void test_frames_output(void)
{
    trec r;

    note("outgoing frames: shortest length encoding, client masking");
    check_encoding("server", &tsrv);
    check_encoding("client", &tcli);
    if (trec_start(&r, &tsrv) == 0) {
        uint8_t p126[126] = {0};
        ok(eev_driver_send(r.d, EEV_OP_PING, p126, 126) == EEV_ERR_ARG, "ping of 126 bytes: EEV_ERR_ARG");
        ok(eev_driver_send(r.d, EEV_OP_PONG, p126, 126) == EEV_ERR_ARG, "pong of 126 bytes: EEV_ERR_ARG");
        ok(eev_driver_send(r.d, (eev_opcode)3, "x", 1) == EEV_ERR_ARG, "opcode 3: EEV_ERR_ARG");
        ok(eev_driver_send(r.d, EEV_OP_CONTINUATION, "x", 1) == EEV_ERR_ARG, "continuation: EEV_ERR_ARG");
        ok(eev_driver_send(r.d, EEV_OP_CLOSE, "", 0) == EEV_ERR_ARG, "close through send: EEV_ERR_ARG");
        ok(eev_driver_out_len(r.d) == 0, "nothing queued by rejected sends");
        ok(eev_driver_ping(r.d, p126, 125) == 0 && eev_driver_text(r.d, "t", 1) == 0 && eev_driver_out_len(r.d) == 127 + 3,
           "ping 125 and text queued (%zu bytes)", eev_driver_out_len(r.d));
    }
    trec_end(&r);
}

static void test_frames_callback_failure(void)
{
    tscn f = tsrv;
    trec r;

    note("callback failure is fatal");
    f.fail_callback = 1;
    if (trec_start(&r, &f) == 0) {
        uint8_t buf[sizeof(hello_masked)];
        memcpy(buf, hello_masked, sizeof(buf));
        ok(eev_driver_recv(r.d, buf, sizeof(buf)) == EEV_ERR_CALLBACK, "on_message != 0: EEV_ERR_CALLBACK");
    }
    trec_end(&r);
}

int main(void)
{
    test_frames_rfc_samples();
    test_frames_fail_rules();
    test_frames_size_limits();
    test_frames_interleaved_control();
    test_frames_ping();
    test_frames_output();
    test_frames_callback_failure();
    return done_testing();
}
