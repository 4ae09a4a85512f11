/*
 * test_driver_handshake.c - server-role opening handshake (RFC 6455 §4.2),
 * refusals, subprotocols, on_request and HTTP keep-alive replies.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util.h"

static const char *out_str(const trec *r)
{
    return r->out.p ? (const char *)r->out.p : "";
}

/* Body of the HTTP response in r->out (after the blank line), or NULL. */
static const char *body_of(const trec *r)
{
    const char *e = strstr(out_str(r), "\r\n\r\n");
    return e ? e + 4 : NULL;
}

static void test_handshake_accept_key(void)
{
    char out[29];

    note("eev_accept_key");
    memset(out, 'x', sizeof(out));
    ok(eev_accept_key("dGhlIHNhbXBsZSBub25jZQ==", 24, out) == 0 && strcmp(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=") == 0,
       "RFC 6455 §1.3 sample key gives s3pPLMBiTxaQ9kYGzzhZRbK+xOo= (got %.29s)", out);
    ok(eev_accept_key("x3JJHMbDL1EzLkh9GBhXDw==", 24, out) == 0 && strcmp(out, "HSmrc0sMlYUkAGmm5OPpG2HaGWk=") == 0,
       "RFC 6455 §1.2 example key gives HSmrc0sMlYUkAGmm5OPpG2HaGWk= (got %.29s)", out);
}

static void test_handshake_upgrade(void)
{
    tscn scn = {.opt = {.role = EEV_ROLE_SERVER}};
    trec r;

    note("a valid upgrade gets 101");
    tsplit("RFC upgrade", &scn, treq_upgrade, strlen(treq_upgrade), &r);
    ok(strncmp(out_str(&r), "HTTP/1.1 101 ", 13) == 0, "status line is 101");
    ok(strstr(out_str(&r), "\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n") != NULL, "accept header");
    ok(strcasestr(out_str(&r), "\r\nUpgrade: websocket\r\n") != NULL, "Upgrade: websocket");
    ok(strcasestr(out_str(&r), "\r\nConnection: Upgrade\r\n") != NULL, "Connection: Upgrade");
    ok(strcasestr(out_str(&r), "Sec-WebSocket-Protocol") == NULL, "no subprotocol header without protocols");
    ok(r.out.len >= 4 && memcmp(r.out.p + r.out.len - 4, "\r\n\r\n", 4) == 0, "response ends with the blank line");
    ok(r.n_request == 1 && r.n_open == 1 && r.n_error == 0, "on_request then on_open, no error");
    ok(eev_driver_state(r.d) == EEV_STATE_OPEN && eev_driver_want_read(r.d) && !eev_driver_finished(r.d),
       "state OPEN, reading");
    ok(eev_driver_protocol(r.d) == NULL, "no protocol chosen");
    ok(strncmp((const char *)r.req.p, "GET|/chat|/chat|(null)|1|1\n", 27) == 0, "request line exposed: %.26s",
       (const char *)r.req.p);
    ok(strstr((const char *)r.req.p, "\nHost: server.example.com\n") && strstr((const char *)r.req.p, "\nOrigin: http://example.com\n") &&
           strstr((const char *)r.req.p, "\nSec-WebSocket-Version: 13\n"),
       "headers exposed with trimmed values");
    ok(strstr((const char *)r.log.p, "request ") == (const char *)r.log.p && strstr((const char *)r.log.p, "open\n"),
       "request reported before open");
    trec_end(&r);
}

static void test_handshake_variants(void)
{
    static const char req[] = "GET /a/b?x=1&y=2 HTTP/1.1\r\n"
                              "host:  h.example \r\n"
                              "upgrade: Foo, WebSocket\r\n"
                              "connection: keep-alive, Upgrade\r\n"
                              "sec-websocket-key:   AQIDBAUGBwgJCgsMDQ4PEA==\r\n"
                              "SEC-WEBSOCKET-VERSION: 13\r\n"
                              "\r\n";
    tscn scn = {.opt = {.role = EEV_ROLE_SERVER}};
    trec r;
    char acc[29];

    note("token lists, case-insensitive names and values, query");
    tsplit("variant upgrade", &scn, req, strlen(req), &r);
    eev_accept_key("AQIDBAUGBwgJCgsMDQ4PEA==", 24, acc);
    ok(strncmp(out_str(&r), "HTTP/1.1 101 ", 13) == 0 && strstr(out_str(&r), acc) != NULL && r.n_open == 1,
       "101 for 'keep-alive, Upgrade' and 'Foo, WebSocket'");
    ok(strncmp((const char *)r.req.p, "GET|/a/b?x=1&y=2|/a/b|x=1&y=2|1|1\n", 34) == 0, "path and query split: %.33s",
       (const char *)r.req.p);
    ok(strstr((const char *)r.req.p, "\nhost: h.example\n") != NULL, "value whitespace trimmed");
    trec_end(&r);
}

static void test_handshake_subprotocol(void)
{
    static const char *const protos[] = {"chat", "superchat", NULL};
    static const char req1[] = "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                               "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
                               "Sec-WebSocket-Protocol: soap, superchat\r\nSec-WebSocket-Protocol: chat\r\n\r\n";
    static const char req2[] = "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                               "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
                               "Sec-WebSocket-Protocol: soap, wamp\r\n\r\n";
    static const char req3[] = "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                               "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
                               "Sec-WebSocket-Protocol: soap,superchat\r\n\r\n";
    tscn scn = {.opt = {.role = EEV_ROLE_SERVER, .protocols = protos}};
    tscn none = {.opt = {.role = EEV_ROLE_SERVER}};
    trec r;

    note("subprotocol negotiation");
    tsplit("protocols, server preference", &scn, req1, strlen(req1), &r);
    ok(r.n_open == 1 && strstr(out_str(&r), "\r\nSec-WebSocket-Protocol: chat\r\n") != NULL &&
           eev_driver_protocol(r.d) && strcmp(eev_driver_protocol(r.d), "chat") == 0,
       "server's first preference 'chat' chosen across repeated headers");
    trec_end(&r);
    tsplit("protocols, no overlap", &scn, req2, strlen(req2), &r);
    ok(r.n_open == 1 && strcasestr(out_str(&r), "Sec-WebSocket-Protocol") == NULL && eev_driver_protocol(r.d) == NULL,
       "no common protocol: 101 without Sec-WebSocket-Protocol");
    trec_end(&r);
    tsplit("protocols, no spaces", &scn, req3, strlen(req3), &r);
    ok(r.n_open == 1 && strstr(out_str(&r), "\r\nSec-WebSocket-Protocol: superchat\r\n") != NULL,
       "'soap,superchat' offers superchat");
    trec_end(&r);
    tsplit("protocols offered, none configured", &none, req2, strlen(req2), &r);
    ok(r.n_open == 1 && strcasestr(out_str(&r), "Sec-WebSocket-Protocol") == NULL, "no protocols configured: none chosen");
    trec_end(&r);
}

static void refuse(const char *name, const tscn *scn, const char *req, size_t len, int status)
{
    trec r;
    char line[32];
    const char *body;

    tsplit(name, scn, req, len, &r);
    if (r.d == NULL)
        return;
    if (status < 0) /* either is defensible: 400 (malformed) or 426 (version) */
        status = strncmp(out_str(&r), "HTTP/1.1 426 ", 13) == 0 ? 426 : 400;
    snprintf(line, sizeof(line), "HTTP/1.1 %d ", status);
    body = body_of(&r);
    ok(strncmp(out_str(&r), line, strlen(line)) == 0 && r.n_open == 0 && r.n_error == 1 && r.error_code == status,
       "%s: refused with %d (on_error %d, response '%.20s')", name, status, r.error_code, out_str(&r));
    ok(body != NULL && *body != 0 && strlen(body) < 512, "%s: short body", name);
    ok(eev_driver_finished(r.d) && eev_driver_out_len(r.d) == 0 && !eev_driver_want_read(r.d),
       "%s: finished after the output is consumed", name);
    if (status == 426)
        ok(strstr(out_str(&r), "\r\nSec-WebSocket-Version: 13\r\n") != NULL, "%s: 426 names version 13", name);
    trec_end(&r);
}

/* Builds the standard request with one header line replaced (or dropped
 * when repl is ""), or the request line replaced. */
static char *req_with(const char *name, const char *repl)
{
    static char buf[1024];
    const char *p = treq_upgrade, *line;
    size_t o = 0;

    while (*p) {
        const char *e = strstr(p, "\r\n") + 2;
        line = p;
        if (strncasecmp(line, name, strlen(name)) == 0) {
            o += (size_t)snprintf(buf + o, sizeof(buf) - o, "%s", repl);
        } else {
            memcpy(buf + o, line, (size_t)(e - line));
            o += (size_t)(e - line);
        }
        p = e;
    }
    buf[o] = 0;
    return buf;
}

static void test_handshake_refusals(void)
{
    tscn scn = {.opt = {.role = EEV_ROLE_SERVER}};
    tscn small = {.opt = {.role = EEV_ROLE_SERVER, .max_head_size = 512}};
    static const struct {
        const char *name, *line, *repl;
        int status;
    } cases[] = {
        {"version 8", "Sec-WebSocket-Version:", "Sec-WebSocket-Version: 8\r\n", 426},
        {"version missing", "Sec-WebSocket-Version:", "", -1},
        {"version 130", "Sec-WebSocket-Version:", "Sec-WebSocket-Version: 130\r\n", 426},
        {"method POST", "GET ", "POST /chat HTTP/1.1\r\n", 400},
        {"method get (case)", "GET ", "get /chat HTTP/1.1\r\n", 400},
        {"HTTP/1.0", "GET ", "GET /chat HTTP/1.0\r\n", 400},
        {"HTTP/2.0", "GET ", "GET /chat HTTP/2.0\r\n", 400},
        {"no Host", "Host:", "", 400},
        {"no Upgrade", "Upgrade:", "", 400},
        {"Upgrade: h2c", "Upgrade:", "Upgrade: h2c\r\n", 400},
        {"Upgrade: websocketx", "Upgrade:", "Upgrade: websocketx\r\n", 400},
        {"no Connection", "Connection:", "", 400},
        {"Connection: keep-alive", "Connection:", "Connection: keep-alive\r\n", 400},
        {"Connection: Upgraded", "Connection:", "Connection: Upgraded, close\r\n", 400},
        {"no key", "Sec-WebSocket-Key:", "", 400},
        {"key of 15 bytes", "Sec-WebSocket-Key:", "Sec-WebSocket-Key: AQIDBAUGBwgJCgsMDQ4P\r\n", 400},
        {"key of 17 bytes", "Sec-WebSocket-Key:", "Sec-WebSocket-Key: AQIDBAUGBwgJCgsMDQ4PEBE=\r\n", 400},
        {"key not base64", "Sec-WebSocket-Key:", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ!!\r\n", 400},
        {"key empty", "Sec-WebSocket-Key:", "Sec-WebSocket-Key: \r\n", 400},
        {"header without colon", "Origin:", "Origin http://example.com\r\n", 400},
        {"garbage request line", "GET ", "\x01\x02\x03 garbage\r\n", 400},
    };

    note("refusals");
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *req = req_with(cases[i].line, cases[i].repl);
        refuse(cases[i].name, &scn, req, strlen(req), cases[i].status);
    }

    /* 431: a head over the limit, refused before it ends. */
    {
        size_t n = 9000;
        char *big = malloc(n + 64);
        int k = snprintf(big, 64, "GET / HTTP/1.1\r\nHost: x\r\nX-Big: ");
        memset(big + k, 'a', n - (size_t)k);
        big[n] = 0;
        refuse("head over 8192, unterminated", &scn, big, n, 431);
        refuse("head over max_head_size 512", &small, big, 600, 431);
        free(big);
    }
    {
        /* A head of exactly the default limit is fine; one byte more is not. */
        char *req = malloc(8300);
        const char *tail = "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                           "Sec-WebSocket-Version: 13\r\n\r\n";
        size_t pre = (size_t)sprintf(req, "GET / HTTP/1.1\r\nHost: x\r\nX-Pad: ");
        size_t pad = 8192 - pre - 2 - strlen(tail);
        trec r;
        memset(req + pre, 'p', pad);
        sprintf(req + pre + pad, "\r\n%s", tail);
        ok(strlen(req) == 8192, "built an 8192-byte head");
        if (trec_start(&r, &scn) == 0) {
            tfeed(&r, req, 8192);
            ok(r.n_open == 1, "head of exactly 8192 bytes accepted");
        }
        trec_end(&r);
        memmove(req + pre + 1, req + pre, strlen(req + pre) + 1);
        req[pre] = 'p';
        if (trec_start(&r, &scn) == 0) {
            tfeed(&r, req, 8193);
            ok(r.n_open == 0 && r.error_code == 431, "head of 8193 bytes refused with 431 (got %d)", r.error_code);
        }
        trec_end(&r);
        free(req);
    }
}

static void test_handshake_frames_after_head(void)
{
    tscn scn = {.opt = {.role = EEV_ROLE_SERVER}};
    static const uint8_t hello[] = {0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58};
    sbuf in = {0};
    trec r;

    note("frames in the same read as the head");
    sb_puts(&in, treq_upgrade);
    sb_put(&in, hello, sizeof(hello));
    sb_frame(&in, 0x89, 1, "pp", 2);
    tsplit("head + masked Hello + ping", &scn, in.p, in.len, &r);
    ok(r.n_open == 1 && r.n_message == 1 && r.msgs.len == 5 && memcmp(r.msgs.p, "Hello", 5) == 0,
       "message after the head delivered");
    {
        const char *b = body_of(&r);
        tfr f;
        size_t used = b ? tfr_parse((const uint8_t *)b, r.out.len - (size_t)(b - out_str(&r)), &f) : 0;
        ok(used > 0 && f.op == 0xA && f.len == 2 && memcmp(f.data, "pp", 2) == 0 && !f.masked,
           "pong follows the 101 response");
        tfr_free(&f);
    }
    trec_end(&r);

    /* A head followed by more than max_head_size bytes of frames. */
    {
        uint8_t *big = malloc(20000);
        memset(big, 'z', 20000);
        sb_reset(&in);
        sb_puts(&in, treq_upgrade);
        sb_frame(&in, 0x82, 1, big, 20000);
        if (trec_start(&r, &scn) == 0) {
            tfeed(&r, in.p, in.len);
            ok(r.n_open == 1 && r.n_message == 1 && r.msgs.len == 20000 && r.n_error == 0,
               "head + 20000-byte frame in one read: not mistaken for a big head (error %d)", r.error_code);
        }
        trec_end(&r);
        free(big);
    }
    sb_free(&in);
}

static void test_handshake_http_reply(void)
{
    static const char get[] = "GET /index.html?q HTTP/1.1\r\nHost: x\r\n\r\n";
    static const char getclose[] = "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    tscn ka = {.opt = {.role = EEV_ROLE_SERVER}, .http_status = 200};
    tscn cl = {.opt = {.role = EEV_ROLE_SERVER}, .http_status = 404, .http_close = 1};
    sbuf in = {0};
    trec r;
    const char *second;

    note("eev_driver_http_reply and keep-alive");
    sb_puts(&in, get);
    sb_puts(&in, get);
    tsplit("two keep-alive requests", &ka, in.p, in.len, &r);
    second = strstr(out_str(&r) + 1, "HTTP/1.1 200 ");
    ok(r.n_request == 2 && strncmp(out_str(&r), "HTTP/1.1 200 ", 13) == 0 && second != NULL,
       "both requests answered with 200 (requests %d)", r.n_request);
    ok(strstr(out_str(&r), "hello, http\n") != NULL && strstr(out_str(&r), "Content-Type: text/plain\r\n") != NULL,
       "body and extra headers sent");
    ok(strncmp((const char *)r.req.p, "GET|/index.html?q|/index.html|q|1|0\n", 36) == 0, "non-upgrade request: is_websocket 0");
    ok(!eev_driver_finished(r.d) && eev_driver_want_read(r.d) && r.n_open == 0 && r.n_error == 0 && r.send_rv == 0,
       "still reading after keep-alive replies");
    trec_end(&r);

    /* An upgrade after a plain request on the same connection. */
    sb_reset(&in);
    sb_puts(&in, get);
    sb_puts(&in, treq_upgrade);
    tsplit("plain request then upgrade", &ka, in.p, in.len, &r);
    ok(r.n_request == 2 && r.n_open == 1 && strstr(out_str(&r), "HTTP/1.1 101 ") != NULL, "upgrade after keep-alive");
    trec_end(&r);

    sb_reset(&in);
    sb_puts(&in, get);
    sb_puts(&in, get);
    tsplit("reply with close", &cl, in.p, in.len, &r);
    ok(r.n_request == 1 && strncmp(out_str(&r), "HTTP/1.1 404 ", 13) == 0 && strstr(out_str(&r) + 1, "HTTP/1.1") == NULL,
       "close: one response, second request ignored");
    ok(eev_driver_finished(r.d), "finished after the reply with close");
    trec_end(&r);

    tsplit("request asks for close", &ka, getclose, strlen(getclose), &r);
    ok(r.n_request == 1 && eev_driver_finished(r.d), "Connection: close request: finished after the reply");
    trec_end(&r);

    /* Without an on_request reply, a plain GET is refused. */
    {
        tscn plain = {.opt = {.role = EEV_ROLE_SERVER}};
        tsplit("plain GET, no handler", &plain, get, strlen(get), &r);
        ok(strncmp(out_str(&r), "HTTP/1.1 400 ", 13) == 0 || strncmp(out_str(&r), "HTTP/1.1 426 ", 13) == 0,
           "plain GET without a reply is refused");
        trec_end(&r);
    }
    sb_free(&in);
}

static void test_handshake_api_state(void)
{
    tscn scn = {.opt = {.role = EEV_ROLE_SERVER}};
    trec r;

    note("API in the CONNECTING state");
    if (trec_start(&r, &scn) != 0)
        return;
    ok(eev_driver_state(r.d) == EEV_STATE_CONNECTING, "state CONNECTING");
    ok(eev_driver_text(r.d, "x", 1) == EEV_ERR_STATE, "send before open: EEV_ERR_STATE");
    ok(eev_driver_close(r.d, 1000, NULL, 0) == EEV_ERR_STATE, "close before open: EEV_ERR_STATE");
    ok(eev_driver_http_reply(r.d, 200, NULL, "", 0, 0) == EEV_ERR_STATE, "http_reply outside on_request: EEV_ERR_STATE");
    ok(eev_driver_user_data(r.d) == &r, "user data");
    ok(eev_driver_size() > 0 && eev_driver_size() < 4096, "eev_driver_size %zu", eev_driver_size());
    ok(eev_strerror(EEV_ERR_STATE) != NULL && eev_strerror(EEV_OK) != NULL, "eev_strerror");
    trec_end(&r);
}

int main(void)
{
    test_handshake_accept_key();
    test_handshake_upgrade();
    test_handshake_variants();
    test_handshake_subprotocol();
    test_handshake_refusals();
    test_handshake_frames_after_head();
    test_handshake_http_reply();
    test_handshake_api_state();
    return done_testing();
}
