/*
 * fuzz_frames.c - libFuzzer target: a driver already past the handshake,
 * then arbitrary bytes as frames. See fuzz_util.h for the input layout.
 *
 * flags: bit 0 client role (else server), bit 1 echo messages,
 *        bit 2 no_auto_pong, bit 3 max_message_size 1024,
 *        bit 4 eev_driver_close after the first message,
 *        bit 5 queue a text and a ping of our own before the input,
 *        bit 6 eev_driver_eof at the end,
 *        bit 7 permessage-deflate negotiated (echo_only when echoing; the
 *              split seed's low bits pick no-context-takeover and
 *              window offers), with a small inflate budget per call.
 * When echoing, bit 2 of the split seed feeds with eev_driver_recv_echo()
 * and borrow_input (the input buffer is wiped after each call).
 */
#include <stdio.h>

#include "fuzz_util.h"

static const char upgrade[] = "GET /chat HTTP/1.1\r\nHost: fuzz\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                              "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n";

/* The extension offer (server) or answer (client) for split-seed bits. */
static const char *const pmd_lines[4] = {
    "Sec-WebSocket-Extensions: permessage-deflate\r\n",
    "Sec-WebSocket-Extensions: permessage-deflate; client_no_context_takeover\r\n",
    "Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; client_max_window_bits=9\r\n",
    "Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=10\r\n",
};

/* Completes the handshake; returns 0 when the driver is open. */
static int open_driver(eev_driver *d, fuzz_ctx *c, int client, const char *ext)
{
    uint8_t buf[1024];

    if (!client) {
        int n = snprintf((char *)buf, sizeof(buf), "%s%s\r\n", upgrade, ext);
        eev_driver_recv(d, buf, (size_t)n);
        fuzz_drain(d, c, NULL, 0);
    } else {
        size_t n = fuzz_drain(d, c, buf, sizeof(buf) - 1);
        char acc[29], *k, *e;
        int len;
        buf[n < sizeof(buf) ? n : sizeof(buf) - 1] = 0;
        k = strstr((char *)buf, "Sec-WebSocket-Key: ");
        if (k == NULL || (e = strstr(k, "\r\n")) == NULL)
            return -1;
        k += 19;
        if (eev_accept_key(k, (size_t)(e - k), acc) != 0)
            return -1;
        len = snprintf((char *)buf, sizeof(buf),
                       "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                       "Sec-WebSocket-Accept: %s\r\n%s\r\n",
                       acc, ext);
        eev_driver_recv(d, buf, (size_t)len);
        fuzz_drain(d, c, NULL, 0);
    }
    return eev_driver_state(d) == EEV_STATE_OPEN ? 0 : -1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    eev_options opt = {.role = EEV_ROLE_SERVER, .host = "fuzz"};
    fuzz_ctx c = {0};
    eev_echo_stats stats = {0};
    eev_driver *d;

    if (size < 2)
        return 0;
    if (data[0] & 1)
        opt.role = EEV_ROLE_CLIENT;
    c.echo = data[0] & 2;
    opt.no_auto_pong = data[0] & 4;
    if (data[0] & 8)
        opt.max_message_size = 1024;
    c.close_at = data[0] & 16 ? 1 : -1;
    c.rng = 0x85EBCA6Bu ^ data[1];
    if (c.echo && (data[1] & 4)) {
        opt.borrow_input = 1;
        c.echo_stats = &stats;
    }
    const char *ext = "";
    if (data[0] & 128) {
        opt.deflate.enable = 1;
        opt.deflate.echo_only = c.echo != 0;
        opt.deflate.inflate_budget = 4096;
        opt.deflate.client_max_window_bits = (data[0] & 1) && (data[1] & 3) == 2 ? 9 : 0;
        opt.deflate.server_max_window_bits = (data[0] & 1) && (data[1] & 3) == 3 ? 10 : 0;
        opt.deflate.server_no_context_takeover = (data[0] & 1) && (data[1] & 3) == 2;
        ext = pmd_lines[data[1] & 3];
    }
    if (eev_driver_new(&d, &fuzz_callbacks, &opt, &c) != 0)
        return 0;
    if (open_driver(d, &c, data[0] & 1, ext) != 0)
        __builtin_trap(); /* the harness itself is broken */
    if (data[0] & 32) {
        eev_driver_text(d, "hello", 5);
        eev_driver_ping(d, "p", 1);
    }
    fuzz_feed(d, &c, data[1] == 0, data + 2, size - 2);
    if (data[0] & 64)
        eev_driver_eof(d);
    fuzz_drain(d, &c, NULL, 0);
    eev_driver_del(d);
    return 0;
}
