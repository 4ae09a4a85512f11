/*
 * test_driver_client.c - client-role opening handshake (RFC 6455 §4.1):
 * the request the driver queues and how it checks the server's answer.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util.h"

static const tscn cli_closed = {.opt = {.role = EEV_ROLE_CLIENT, .host = "server.example.com", .path = "/chat"}};

/* Decodes base64; returns the byte count or -1. */
static int b64dec(const char *s, size_t len, uint8_t *out)
{
    static const char al[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    uint32_t acc = 0;
    int bits = 0, n = 0;
    size_t i;

    for (i = 0; i < len && s[i] != '='; i++) {
        const char *c = s[i] ? strchr(al, s[i]) : NULL;
        if (c == NULL)
            return -1;
        acc = acc << 6 | (uint32_t)(c - al);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[n++] = (uint8_t)(acc >> bits);
        }
    }
    return n;
}

/* Copies the value of header name from the queued request into val. */
static int header_value(const trec *r, const char *name, char *val, size_t max)
{
    const char *p = r->out.p ? (const char *)r->out.p : "", *e;
    char pat[64];

    snprintf(pat, sizeof(pat), "\r\n%s: ", name);
    p = strcasestr(p, pat);
    if (p == NULL)
        return -1;
    p += strlen(pat);
    e = strstr(p, "\r\n");
    if (e == NULL || (size_t)(e - p) >= max)
        return -1;
    memcpy(val, p, (size_t)(e - p));
    val[e - p] = 0;
    return 0;
}

static void response_for(const trec *r, char *resp, size_t max, const char *extra)
{
    char key[64] = "", acc[29] = "";

    header_value(r, "Sec-WebSocket-Key", key, sizeof(key));
    eev_accept_key(key, strlen(key), acc);
    snprintf(resp, max,
             "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
             "Sec-WebSocket-Accept: %s\r\n%s\r\n",
             acc, extra);
}

static void test_client_request(void)
{
    trec a, b;
    char key1[64] = "", key2[64] = "", v[128];
    uint8_t raw[64];
    eev_driver *d = NULL;
    eev_callbacks cb = {0};
    eev_options nohost = {.role = EEV_ROLE_CLIENT};

    note("the queued upgrade request");
    ok(eev_driver_new(&d, &cb, &nohost, NULL) == EEV_ERR_ARG, "client without host: EEV_ERR_ARG");
    if (trec_start(&a, &cli_closed) || trec_start(&b, &cli_closed))
        return;
    tdrain(&a);
    tdrain(&b);
    ok(eev_driver_want_write(a.d) == 0 && a.out.len > 0, "request queued at creation");
    ok(strncmp((const char *)a.out.p, "GET /chat HTTP/1.1\r\n", 20) == 0, "request line GET /chat HTTP/1.1");
    ok(header_value(&a, "Host", v, sizeof(v)) == 0 && strcmp(v, "server.example.com") == 0, "Host header");
    ok(header_value(&a, "Upgrade", v, sizeof(v)) == 0 && strcasecmp(v, "websocket") == 0, "Upgrade: websocket");
    ok(header_value(&a, "Connection", v, sizeof(v)) == 0 && strcasestr(v, "upgrade") != NULL, "Connection: Upgrade");
    ok(header_value(&a, "Sec-WebSocket-Version", v, sizeof(v)) == 0 && strcmp(v, "13") == 0, "version 13");
    ok(header_value(&a, "Sec-WebSocket-Key", key1, sizeof(key1)) == 0 && strlen(key1) == 24 &&
           b64dec(key1, strlen(key1), raw) == 16,
       "key is 24 base64 chars for 16 bytes: %s", key1);
    header_value(&b, "Sec-WebSocket-Key", key2, sizeof(key2));
    ok(strcmp(key1, key2) != 0, "keys differ between drivers");
    ok(a.out.len >= 4 && memcmp(a.out.p + a.out.len - 4, "\r\n\r\n", 4) == 0, "request ends with a blank line");
    ok(eev_driver_state(a.d) == EEV_STATE_CONNECTING, "state CONNECTING");
    ok(eev_driver_text(a.d, "x", 1) == EEV_ERR_STATE, "send before open: EEV_ERR_STATE");
    trec_end(&a);
    trec_end(&b);

    {
        static const char *const protos[] = {"chat", "superchat", NULL};
        tscn s = {.opt = {.role = EEV_ROLE_CLIENT, .host = "h", .protocols = protos, .origin = "http://o.example"}};
        char resp[512];
        if (trec_start(&a, &s) == 0) {
            tdrain(&a);
            ok(strncmp((const char *)a.out.p, "GET / HTTP/1.1\r\n", 16) == 0, "path defaults to /");
            ok(header_value(&a, "Sec-WebSocket-Protocol", v, sizeof(v)) == 0 && strstr(v, "chat") && strstr(v, "superchat"),
               "protocols offered: %s", v);
            ok(header_value(&a, "Origin", v, sizeof(v)) == 0 && strcmp(v, "http://o.example") == 0, "Origin header");
            response_for(&a, resp, sizeof(resp), "Sec-WebSocket-Protocol: superchat\r\n");
            tfeed(&a, resp, strlen(resp));
            ok(a.n_open == 1 && eev_driver_protocol(a.d) && strcmp(eev_driver_protocol(a.d), "superchat") == 0,
               "server's choice reported");
        }
        trec_end(&a);
    }
}

static void test_client_response(void)
{
    char resp[512];
    trec r;
    int good = 1;
    size_t len;

    note("the server's answer");
    /* Correct 101, fed whole, in two pieces at every index, byte by byte. */
    if (trec_start(&r, &cli_closed) == 0) {
        tdrain(&r);
        response_for(&r, resp, sizeof(resp), "");
        tfeed(&r, resp, strlen(resp));
        ok(r.n_open == 1 && r.n_error == 0 && eev_driver_state(r.d) == EEV_STATE_OPEN, "correct 101: on_open");
        ok(eev_driver_text(r.d, "hi", 2) == 0, "send works once open");
    }
    trec_end(&r);
    len = strlen(resp);
    for (size_t i = 0; i <= len && good; i++) {
        if (trec_start(&r, &cli_closed) != 0)
            break;
        tdrain(&r);
        response_for(&r, resp, sizeof(resp), "");
        if (i == len) {
            for (size_t k = 0; k < len; k++)
                tfeed(&r, resp + k, 1);
        } else {
            tfeed(&r, resp, i);
            tfeed(&r, resp + i, len - i);
        }
        good = r.n_open == 1 && r.n_error == 0;
        if (!good)
            note("split at %zu fails", i);
        trec_end(&r);
    }
    ok(good, "correct 101 split anywhere / byte by byte: on_open");

    /* 101 followed by a server frame in the same read. */
    if (trec_start(&r, &cli_closed) == 0) {
        sbuf in = {0};
        tdrain(&r);
        response_for(&r, resp, sizeof(resp), "");
        sb_puts(&in, resp);
        sb_frame(&in, 0x81, 0, "Hello", 5);
        tfeed(&r, in.p, in.len);
        ok(r.n_open == 1 && r.n_message == 1 && r.msgs.len == 5, "frame right after the 101 delivered");
        sb_free(&in);
    }
    trec_end(&r);

    if (trec_start(&r, &cli_closed) == 0) {
        static const char bad[] = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                                  "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";
        tdrain(&r);
        tfeed(&r, bad, strlen(bad));
        ok(r.n_open == 0 && r.n_error == 1 && eev_driver_finished(r.d) && !eev_driver_want_read(r.d),
           "wrong accept: on_error, finished");
    }
    trec_end(&r);

    if (trec_start(&r, &cli_closed) == 0) {
        static const char no[] = "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n";
        tdrain(&r);
        tfeed(&r, no, strlen(no));
        ok(r.n_open == 0 && r.n_error == 1 && eev_driver_finished(r.d), "403: on_error, finished");
    }
    trec_end(&r);

    if (trec_start(&r, &cli_closed) == 0) {
        static const char no[] = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
        tdrain(&r);
        tfeed(&r, no, strlen(no));
        ok(r.n_open == 0 && r.n_error == 1, "200: on_error");
    }
    trec_end(&r);

    if (trec_start(&r, &cli_closed) == 0) {
        tdrain(&r);
        response_for(&r, resp, sizeof(resp), "");
        /* Drop the Upgrade header. */
        char *u = strstr(resp, "Upgrade: websocket\r\n");
        memmove(u, u + 20, strlen(u + 20) + 1);
        tfeed(&r, resp, strlen(resp));
        ok(r.n_open == 0 && r.n_error == 1, "101 without Upgrade: on_error");
    }
    trec_end(&r);

    if (trec_start(&r, &cli_closed) == 0) {
        tdrain(&r);
        response_for(&r, resp, sizeof(resp), "Sec-WebSocket-Protocol: chat\r\n");
        tfeed(&r, resp, strlen(resp));
        ok(r.n_open == 0 && r.n_error == 1, "101 with a protocol we did not offer: on_error");
    }
    trec_end(&r);
}

/* A request that does not fit the driver's request buffer is refused with
 * EEV_ERR_ARG instead of overrunning it (ASan would see an overrun). */
static void test_client_request_too_long(void)
{
    static char host[3000], origin[2000];
    static const char *protos[] = {"a", "b", NULL};
    eev_driver *d = NULL;

    memset(host, 'h', sizeof(host) - 1);
    memset(origin, 'o', sizeof(origin) - 1);
    eev_options big_host = {.role = EEV_ROLE_CLIENT, .host = host};
    ok(eev_driver_new(&d, NULL, &big_host, NULL) == EEV_ERR_ARG, "3000-byte host: EEV_ERR_ARG");
    eev_options big_origin = {.role = EEV_ROLE_CLIENT, .host = "x", .origin = origin, .protocols = protos};
    ok(eev_driver_new(&d, NULL, &big_origin, NULL) == EEV_ERR_ARG,
       "request overflowing at the Origin line: EEV_ERR_ARG");
    origin[1400] = 0;
    ok(eev_driver_new(&d, NULL, &big_origin, NULL) == 0, "1400-byte origin still fits");
    eev_driver_del(d);
}

int main(void)
{
    test_client_request();
    test_client_request_too_long();
    test_client_response();
    return done_testing();
}
