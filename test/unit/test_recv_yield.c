/*
 * test_recv_yield.c - eev_driver_recv_yield(): from on_request, the
 * current eev_driver_recv() returns right after that request, leaving the
 * rest of the input unread and unchanged for the owner to feed later.
 */
#include <stdlib.h>
#include <string.h>

#include "util.h"

static int requests, yield_every;

static int on_request(eev_driver *d, const eev_request_arg *req, void *ud)
{
    (void)ud;
    requests++;
    if (!req->is_websocket)
        eev_driver_http_reply(d, 200, NULL, "ok\n", 3, 0);
    if (yield_every && requests % yield_every == 0)
        eev_driver_recv_yield(d);
    return 0;
}

static const eev_callbacks cb = {.on_request = on_request};

static const char get[] = "GET /x HTTP/1.1\r\nHost: h\r\n\r\n";
static const char upgrade[] = "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                              "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                              "Sec-WebSocket-Version: 13\r\n\r\n";

int main(void)
{
    eev_driver *d;
    size_t glen = sizeof(get) - 1;
    uint8_t in[10 * sizeof(get)], copy[sizeof(in)];

    note("ten pipelined requests, yielding after every third");
    for (int i = 0; i < 10; i++)
        memcpy(in + i * glen, get, glen);
    memcpy(copy, in, sizeof(in));
    eev_driver_new(&d, &cb, NULL, NULL);
    requests = 0;
    yield_every = 3;
    ssize_t rv = eev_driver_recv(d, in, 10 * glen);
    ok(rv == (ssize_t)(3 * glen) && requests == 3, "first call: 3 requests, %zd bytes consumed", rv);
    ok(memcmp(in + rv, copy + rv, 10 * glen - (size_t)rv) == 0, "the rest is unchanged");
    size_t off = (size_t)rv;
    for (int calls = 0; off < 10 * glen && calls < 10; calls++) {
        rv = eev_driver_recv(d, in + off, 10 * glen - off);
        if (rv <= 0)
            break;
        off += (size_t)rv;
    }
    ok(off == 10 * glen && requests == 10, "fed again: all 10 answered (%d)", requests);
    ok(eev_driver_out_len(d) > 0 && eev_driver_state(d) == EEV_STATE_CONNECTING, "responses queued, keep-alive");
    eev_driver_del(d);

    note("a yield outside on_request does nothing");
    eev_driver_new(&d, &cb, NULL, NULL);
    requests = 0;
    yield_every = 0;
    eev_driver_recv_yield(d);
    memcpy(in, copy, sizeof(in));
    rv = eev_driver_recv(d, in, 10 * glen);
    ok(rv == (ssize_t)(10 * glen) && requests == 10, "all consumed (%zd)", rv);
    eev_driver_del(d);

    note("an upgrade after a yield point opens and reads its frames");
    sbuf b = {0};
    sb_put(&b, get, glen);
    sb_put(&b, upgrade, sizeof(upgrade) - 1);
    sb_frame(&b, 0x81, 1, "hi", 2);
    eev_driver_new(&d, &cb, NULL, NULL);
    requests = 0;
    yield_every = 1;
    rv = eev_driver_recv(d, b.p, b.len);
    ok(rv == (ssize_t)glen, "stops after the plain GET (%zd)", rv);
    rv = eev_driver_recv(d, b.p + glen, b.len - glen);
    ok(rv == (ssize_t)(b.len - glen) && eev_driver_state(d) == EEV_STATE_OPEN, "the upgrade and its frame consumed, open");
    eev_driver_del(d);
    sb_free(&b);
    return done_testing();
}
