/*
 * test_close.c - the closing handshake (RFC 6455 §5.5.1, §7): received
 * Close frames, status code validity, our own close, EOF.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

static void close_frame(sbuf *b, int masked, int code, const char *reason, size_t rlen)
{
    uint8_t p[128];
    size_t n = 0;

    if (code >= 0) {
        p[n++] = (uint8_t)(code >> 8);
        p[n++] = (uint8_t)code;
    }
    memcpy(p + n, reason, rlen);
    n += rlen;
    sb_frame(b, 0x88, masked, p, n);
}

static void test_close_code_valid(void)
{
    int bad = 0;

    note("eev_close_code_valid");
    for (unsigned c = 0; c < 70000; c++) {
        int want = (c >= 1000 && c <= 1003) || (c >= 1007 && c <= 1014) || (c >= 3000 && c <= 4999);
        if (!!eev_close_code_valid(c) != want) {
            if (bad++ < 5)
                note("code %u: got %d, want %d", c, eev_close_code_valid(c), want);
        }
    }
    ok(bad == 0, "valid exactly for 1000-1003, 1007-1014, 3000-4999 (%d wrong)", bad);
    ok(!eev_close_code_valid(1005) && !eev_close_code_valid(1006) && !eev_close_code_valid(1015), "1005, 1006, 1015 invalid");
}

static void test_close_received(void)
{
    static const int invalid[] = {0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535};
    static const int valid[] = {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 4999};
    sbuf in = {0};
    char name[64];
    trec r;

    note("received Close frames");
    sb_frame(&in, 0x88, 1, "\x03", 1);
    tfail("close with a 1-byte payload", &tsrv, in.p, in.len, 1002);
    for (size_t i = 0; i < sizeof(invalid) / sizeof(invalid[0]); i++) {
        sb_reset(&in);
        close_frame(&in, 1, invalid[i], "", 0);
        snprintf(name, sizeof(name), "close with invalid code %d", invalid[i]);
        tfail(name, &tsrv, in.p, in.len, 1002);
    }
    for (size_t i = 0; i < sizeof(valid) / sizeof(valid[0]); i++) {
        sb_reset(&in);
        close_frame(&in, 1, valid[i], "", 0);
        snprintf(name, sizeof(name), "close %d", valid[i]);
        tsplit(name, &tsrv, in.p, in.len, &r);
        ok(tclose_code(&r) == valid[i] && tfr_count(&r.out) == 1 && r.n_error == 0 && r.n_close == 1 &&
               r.close.code_received == valid[i] && r.close.code_sent == valid[i] && r.close.clean &&
               eev_driver_finished(r.d) && eev_driver_state(r.d) == EEV_STATE_CLOSED && !eev_driver_want_read(r.d),
           "%s: echoed, on_close recv %u sent %u clean %d", name, r.close.code_received, r.close.code_sent,
           r.close.clean);
        trec_end(&r);
    }
    sb_reset(&in);
    sb_frame(&in, 0x88, 1, "", 0);
    tsplit("empty close", &tsrv, in.p, in.len, &r);
    ok(r.out.len == 2 && r.out.p[0] == 0x88 && r.out.p[1] == 0x00, "empty close: empty close reply (%s)",
       thex(r.out.p, r.out.len));
    ok(r.n_close == 1 && r.close.code_received == 1005 && r.close.clean && eev_driver_finished(r.d),
       "empty close: on_close recv 1005, clean");
    trec_end(&r);

    sb_reset(&in);
    close_frame(&in, 1, 1001, "going \xE2\x82\xAC", 9);
    tsplit("close with a reason", &tsrv, in.p, in.len, &r);
    ok(tclose_code(&r) == 1001 && r.close_reason.len == 9 && memcmp(r.close_reason.p, "going \xE2\x82\xAC", 9) == 0,
       "reason reported");
    trec_end(&r);
    sb_reset(&in);
    close_frame(&in, 1, 1000, "bad \xFF", 5);
    tfail("close reason with invalid UTF-8", &tsrv, in.p, in.len, 1007);
    sb_reset(&in);
    close_frame(&in, 1, 1000, "cut \xE2\x82", 6);
    tfail("close reason with truncated UTF-8", &tsrv, in.p, in.len, 1007);

    /* Data after the peer's Close is ignored. */
    sb_reset(&in);
    close_frame(&in, 1, 1000, "", 0);
    sb_frame(&in, 0x81, 1, "late", 4);
    tsplit("data after close", &tsrv, in.p, in.len, &r);
    ok(r.n_message == 0 && tfr_count(&r.out) == 1, "frames after a received Close are ignored");
    trec_end(&r);

    /* Close between fragments. */
    sb_reset(&in);
    sb_frame(&in, 0x01, 1, "Hel", 3);
    close_frame(&in, 1, 1000, "", 0);
    tsplit("close inside a fragmented message", &tsrv, in.p, in.len, &r);
    ok(r.n_message == 0 && tclose_code(&r) == 1000 && r.close.clean, "close between fragments: echoed, no message");
    trec_end(&r);

    /* Client role: the echoed close is masked. */
    sb_reset(&in);
    close_frame(&in, 0, 1000, "", 0);
    tsplit("client: server closes", &tcli, in.p, in.len, &r);
    {
        tfr f;
        size_t n = tfr_parse(r.out.p, r.out.len, &f);
        ok(n && f.op == 8 && f.masked && f.len == 2 && f.data[0] == 0x03 && f.data[1] == 0xE8 && r.close.clean,
           "client: close echoed masked");
        tfr_free(&f);
    }
    trec_end(&r);
    sb_free(&in);
}

static void test_close_initiated(void)
{
    sbuf in = {0};
    trec r;
    char r124[124];

    note("eev_driver_close: we close first");
    if (trec_start(&r, &tsrv) != 0)
        return;
    ok(eev_driver_close(r.d, 1000, "bye", 3) == 0, "close queued");
    tdrain(&r);
    ok(tclose_code(&r) == 1000 && r.out.len == 7 && memcmp(r.out.p + 4, "bye", 3) == 0, "Close 1000 'bye' sent");
    ok(eev_driver_state(r.d) == EEV_STATE_CLOSING && eev_driver_want_read(r.d) && !eev_driver_finished(r.d),
       "CLOSING, still reading");
    ok(eev_driver_send(r.d, EEV_OP_TEXT, "x", 1) == EEV_ERR_STATE && eev_driver_binary(r.d, "x", 1) == EEV_ERR_STATE &&
           eev_driver_ping(r.d, "x", 1) == EEV_ERR_STATE,
       "send after close: EEV_ERR_STATE");
    ok(eev_driver_close(r.d, 1000, NULL, 0) == EEV_ERR_STATE, "second close: EEV_ERR_STATE");
    sb_frame(&in, 0x81, 1, "late", 4);
    sb_frame(&in, 0x01, 1, "fr", 2);
    sb_frame(&in, 0x80, 1, "ag", 2);
    tfeed(&r, in.p, in.len);
    ok(r.n_message == 0 && r.n_error == 0, "data frames after our Close are not delivered");
    sb_reset(&in);
    close_frame(&in, 1, 1000, "", 0);
    sb_reset(&r.out);
    tfeed(&r, in.p, in.len);
    ok(r.out.len == 0, "no second Close sent");
    ok(eev_driver_finished(r.d) && eev_driver_state(r.d) == EEV_STATE_CLOSED, "finished after the peer's reply");
    ok(r.n_close == 1 && r.close.code_received == 1000 && r.close.code_sent == 1000 && r.close.clean,
       "on_close recv 1000 sent 1000 clean (got %u %u %d)", r.close.code_received, r.close.code_sent, r.close.clean);
    eev_driver_eof(r.d);
    ok(r.n_close == 1, "eof after a clean close: no second on_close");
    trec_end(&r);

    /* Reply with a different code. */
    if (trec_start(&r, &tsrv) == 0) {
        eev_driver_close(r.d, 4000, NULL, 0);
        sb_reset(&in);
        close_frame(&in, 1, 1001, "", 0);
        tfeed(&r, in.p, in.len);
        ok(r.close.code_received == 1001 && r.close.code_sent == 4000 && r.close.clean, "codes differ: reported");
    }
    trec_end(&r);

    /* Close without a code. */
    if (trec_start(&r, &tsrv) == 0) {
        ok(eev_driver_close(r.d, 0, NULL, 0) == 0, "close with no code");
        tdrain(&r);
        ok(r.out.len == 2 && r.out.p[0] == 0x88 && r.out.p[1] == 0, "empty Close sent");
    }
    trec_end(&r);

    if (trec_start(&r, &tsrv) == 0) {
        memset(r124, 'r', sizeof(r124));
        ok(eev_driver_close(r.d, 1000, r124, 124) == EEV_ERR_ARG, "reason of 124 bytes: EEV_ERR_ARG");
        ok(eev_driver_close(r.d, 1005, NULL, 0) == EEV_ERR_ARG, "code 1005: EEV_ERR_ARG");
        ok(eev_driver_close(r.d, 1000, r124, 123) == 0, "reason of 123 bytes accepted");
    }
    trec_end(&r);

    /* A ping while CLOSING still gets... nothing wrong; pong optional. EOF in CLOSING. */
    if (trec_start(&r, &tsrv) == 0) {
        eev_driver_close(r.d, 1000, NULL, 0);
        eev_driver_eof(r.d);
        ok(r.n_close == 1 && r.close.code_received == 1006 && r.close.code_sent == 1000 && !r.close.clean,
           "eof while CLOSING: 1006, not clean");
    }
    trec_end(&r);

    if (trec_start(&r, &tsrv) == 0) {
        eev_driver_eof(r.d);
        ok(r.n_close == 1 && r.close.code_received == 1006 && r.close.code_sent == 0 && !r.close.clean &&
               !eev_driver_want_read(r.d),
           "eof while OPEN: on_close 1006, sent 0");
        eev_driver_eof(r.d);
        ok(r.n_close == 1, "on_close only once");
    }
    trec_end(&r);
    sb_free(&in);
}

/* Takes n bytes of output as a transport would, recording them. */
static void take_out(trec *r, size_t n)
{
    struct iovec iov[8];
    int cnt = eev_driver_out_iov(r->d, iov, 8);

    for (int i = 0; i < cnt && n > 0; i++) {
        size_t k = iov[i].iov_len < n ? iov[i].iov_len : n;
        sb_put(&r->out, iov[i].iov_base, k);
        eev_driver_out_consume(r->d, k);
        n -= k;
    }
}

/* The frames in r->out, as "op:len" words. */
static const char *frames_of(const trec *r, char *buf, size_t cap)
{
    size_t at = 0, used = 0;
    tfr f;

    buf[0] = 0;
    while (at < r->out.len) {
        size_t n = tfr_parse(r->out.p + at, r->out.len - at, &f);
        if (!n) {
            snprintf(buf + used, cap - used, "partial");
            break;
        }
        used += (size_t)snprintf(buf + used, cap - used, "%s%x:%llu", used ? " " : "", f.op,
                                 (unsigned long long)f.len);
        tfr_free(&f);
        at += n;
        if (used >= cap)
            break;
    }
    return buf;
}

static void test_fail(void)
{
    static uint8_t big[60000];
    sbuf in = {0};
    char fr[256];
    trec r;

    note("eev_driver_fail: the owner takes the memory back");
    if (trec_start(&r, &tsrv) == 0) {
        /* Half of a 1 MiB message: its buffer is held. */
        sb_frame_header(&in, 0x82, 1, 1 << 20);
        sb_put(&in, big, sizeof(big));
        tfeed(&r, in.p, in.len);
        ok(eev_driver_mem(r.d) >= sizeof(big), "half a message held: %zu bytes", eev_driver_mem(r.d));
        ok(eev_driver_fail(r.d, 1013, "try again later", 15) == 0, "fail 1013");
        ok(eev_driver_mem(r.d) == 19 && eev_driver_out_len(r.d) == 19, "only the Close is held (%zu bytes)",
           eev_driver_mem(r.d));
        tdrain(&r);
        ok(tclose_code(&r) == 1013 && tfr_count(&r.out) == 1 && memcmp(r.out.p + 4, "try again later", 15) == 0,
           "Close 1013 'try again later' sent (%s)", frames_of(&r, fr, sizeof(fr)));
        ok(r.n_close == 1 && r.n_error == 0 && r.close.code_sent == 1013 && r.close.code_received == 1006 &&
               !r.close.clean,
           "on_close once (sent %u, received %u), no on_error", r.close.code_sent, r.close.code_received);
        ok(eev_driver_finished(r.d) && !eev_driver_want_read(r.d) && eev_driver_state(r.d) == EEV_STATE_CLOSED,
           "finished, not reading");
        sb_reset(&in);
        sb_put(&in, big, sizeof(big));
        sb_frame(&in, 0x81, 1, "late", 4);
        tfeed(&r, in.p, in.len);
        ok(r.n_message == 0 && r.n_close == 1 && eev_driver_mem(r.d) == 0, "later input ignored, nothing held");
        ok(eev_driver_fail(r.d, 1013, NULL, 0) == EEV_ERR_STATE, "fail again: EEV_ERR_STATE");
    }
    trec_end(&r);

    if (trec_start(&r, &tsrv) == 0) {
        /* Three frames queued; the transport took 10 bytes of the first:
         * its rest must still go, the others never begun are dropped. */
        eev_driver_binary(r.d, big, sizeof(big));
        eev_driver_binary(r.d, big, sizeof(big));
        eev_driver_text(r.d, "small", 5);
        take_out(&r, 10);
        ok(eev_driver_fail(r.d, 1013, "", 0) == 0, "fail with a frame partly written");
        ok(eev_driver_out_len(r.d) == sizeof(big) + 4 - 10 + 4, "the frame's rest and the Close stay (%zu)",
           eev_driver_out_len(r.d));
        tdrain(&r);
        ok(strcmp(frames_of(&r, fr, sizeof(fr)), "2:60000 8:2") == 0 && tclose_code(&r) == 1013,
           "the stream stays valid: the begun frame, then Close 1013 (%s)", fr);
    }
    trec_end(&r);

    if (trec_start(&r, &tsrv) == 0) {
        eev_driver_binary(r.d, big, sizeof(big));
        eev_driver_text(r.d, "small", 5);
        ok(eev_driver_fail(r.d, 1011, "x", 1) == 0 && eev_driver_out_len(r.d) == 5, "nothing begun: all dropped");
        tdrain(&r);
        ok(strcmp(frames_of(&r, fr, sizeof(fr)), "8:3") == 0 && tclose_code(&r) == 1011, "only Close 1011 (%s)", fr);
    }
    trec_end(&r);

    if (trec_start(&r, &tsrv) == 0) {
        /* CLOSING: our Close sat behind unsent data; it is queued again. */
        eev_driver_binary(r.d, big, sizeof(big));
        eev_driver_close(r.d, 1000, "bye", 3);
        ok(eev_driver_fail(r.d, 1013, "", 0) == 0, "fail while CLOSING");
        tdrain(&r);
        ok(strcmp(frames_of(&r, fr, sizeof(fr)), "8:2") == 0 && tclose_code(&r) == 1013 && r.close.code_sent == 1013,
           "one Close, 1013 (%s)", fr);
    }
    trec_end(&r);

    if (trec_start(&r, &tsrv) == 0) {
        /* CLOSING with the Close already written: none is added. */
        eev_driver_close(r.d, 1000, "bye", 3);
        tdrain(&r);
        ok(eev_driver_fail(r.d, 1013, "", 0) == 0 && eev_driver_out_len(r.d) == 0 && r.n_close == 1 &&
               r.close.code_sent == 1000,
           "fail after our Close went out: nothing queued, on_close sent 1000");
    }
    trec_end(&r);

    if (trec_start(&r, &tsrv) == 0) {
        ok(eev_driver_fail(r.d, 1005, "", 0) == EEV_ERR_ARG && eev_driver_fail(r.d, 0, "", 0) == EEV_ERR_ARG,
           "codes 1005 and 0: EEV_ERR_ARG");
        ok(eev_driver_fail(r.d, 1013, "\xff", 1) == EEV_ERR_ARG, "reason not UTF-8: EEV_ERR_ARG");
        ok(eev_driver_state(r.d) == EEV_STATE_OPEN, "still open after bad arguments");
    }
    trec_end(&r);

    eev_driver *d;
    if (eev_driver_new(&d, NULL, NULL, NULL) == 0) {
        ok(eev_driver_fail(d, 1013, "", 0) == EEV_ERR_STATE, "before the handshake: EEV_ERR_STATE");
        eev_driver_del(d);
    }
    sb_free(&in);
}

/* eev_driver_status() says what the single queries say, in every state. */
static int status_agrees(eev_driver *d)
{
    eev_status st = eev_driver_status(d);

    return st.state == eev_driver_state(d) && st.out_len == eev_driver_out_len(d) &&
           !(st.flags & EEV_WANT_READ) == !eev_driver_want_read(d) &&
           !(st.flags & EEV_WANT_WRITE) == !eev_driver_want_write(d) &&
           !(st.flags & EEV_FINISHED) == !eev_driver_finished(d) &&
           !(st.flags & EEV_HOLDS) == !eev_driver_mem(d);
}

static void test_status(void)
{
    eev_driver *d;
    sbuf in = {0};
    struct iovec iov[4];
    int agree = 1;

    note("eev_driver_status");
    ok(eev_driver_new(&d, NULL, NULL, NULL) == 0, "status: driver created");
    eev_status st = eev_driver_status(d);
    agree &= status_agrees(d);
    ok(st.state == EEV_STATE_CONNECTING && st.flags == EEV_WANT_READ && st.out_len == 0, "status: connecting");
    sb_puts(&in, treq_upgrade);
    eev_driver_recv(d, in.p, in.len);
    st = eev_driver_status(d);
    agree &= status_agrees(d);
    ok(st.state == EEV_STATE_OPEN && st.flags == (EEV_WANT_READ | EEV_WANT_WRITE | EEV_HOLDS) && st.out_len > 0,
       "status: open with the 101 queued");
    int n = eev_driver_out_iov(d, iov, 4);
    for (int i = 0; i < n; i++)
        eev_driver_out_consume(d, iov[i].iov_len);
    st = eev_driver_status(d);
    agree &= status_agrees(d);
    ok(st.flags == EEV_WANT_READ && st.out_len == 0, "status: open, nothing queued");
    eev_driver_close(d, 1000, "", 0);
    st = eev_driver_status(d);
    agree &= status_agrees(d);
    ok(st.state == EEV_STATE_CLOSING && st.flags == (EEV_WANT_READ | EEV_WANT_WRITE | EEV_HOLDS), "status: closing");
    sb_reset(&in);
    sb_frame(&in, 0x88, 1, "\x03\xe8", 2);
    eev_driver_recv(d, in.p, in.len);
    st = eev_driver_status(d);
    agree &= status_agrees(d);
    ok(st.state == EEV_STATE_CLOSED && (st.flags & EEV_FINISHED) && !(st.flags & EEV_WANT_READ),
       "status: closed, finished");
    ok(agree, "status: agrees with want_read/want_write/finished/state/out_len throughout");
    eev_driver_del(d);
    sb_free(&in);
}

int main(void)
{
    test_status();
    test_close_code_valid();
    test_close_received();
    test_close_initiated();
    test_fail();
    return done_testing();
}
