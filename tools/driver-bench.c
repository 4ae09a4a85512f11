/*
 * driver-bench.c - micro-benchmark of the receive path of the eev driver:
 * frame parsing, unmasking and UTF-8 validation through eev_driver_recv()
 * (server role, after the handshake, no-op on_message). Not a test.
 *
 * For each case a buffer of about 8 MiB of masked frames is built once and
 * fed repeatedly for about a second (-t). recv unmasks in place, so every
 * pass turns the payload into payload ^ key and the next pass turns it
 * back. The text payload and the key are 7-bit ASCII, so both states are
 * valid UTF-8 and every pass does the same work; the message count of
 * each pass is checked.
 *
 * usage: driver-bench [-t seconds] [-r read_size] [-s msg_size]
 *   -r 0 (default) feeds the whole buffer per recv call and also runs a
 *   pass with 64 KiB reads (messages then span reads and are reassembled).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "eev/driver.h"

static const char upgrade[] = "GET / HTTP/1.1\r\nHost: bench\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                              "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";

typedef struct bench_state {
    uint64_t messages;
    uint64_t bytes;
    int errors;
} bench_state;

static int on_message(eev_driver *d, const eev_message_arg *m, void *ud)
{
    bench_state *s = ud;

    s->messages++;
    s->bytes += m->len;
    return 0;
}

static void on_error(eev_driver *d, const eev_error_arg *e, void *ud)
{
    bench_state *s = ud;

    s->errors++;
    fprintf(stderr, "driver-bench: driver failed: %u %s\n", e->close_code, e->message ? e->message : "");
}

static double now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Appends one masked frame of len bytes at p; returns its size. */
static size_t put_frame(uint8_t *p, uint8_t op, const uint8_t *payload, size_t len)
{
    static const uint8_t key[4] = {0x11, 0x22, 0x33, 0x44}; /* ASCII: keeps text valid */
    size_t n = 0;

    p[n++] = 0x80 | op;
    if (len < 126) {
        p[n++] = 0x80 | (uint8_t)len;
    } else if (len <= 0xFFFF) {
        p[n++] = 0x80 | 126;
        p[n++] = (uint8_t)(len >> 8);
        p[n++] = (uint8_t)len;
    } else {
        p[n++] = 0x80 | 127;
        for (int i = 7; i >= 0; i--)
            p[n++] = (uint8_t)((uint64_t)len >> (8 * i));
    }
    memcpy(p + n, key, 4);
    n += 4;
    for (size_t i = 0; i < len; i++)
        p[n + i] = payload[i] ^ key[i & 3];
    return n + len;
}

static int run_case(const char *label, uint8_t op, size_t msg, size_t rd, double secs)
{
    const size_t target = 8u << 20;
    size_t frame = msg + 14, cnt = target / frame ? target / frame : 1, len = 0, passes = 0;
    uint8_t *payload = malloc(msg ? msg : 1), *buf = malloc(cnt * frame);
    eev_callbacks cb = {.on_message = on_message, .on_error = on_error};
    bench_state st = {0};
    eev_driver *d;
    uint8_t hs[sizeof(upgrade)];
    double t0, t1;

    if (payload == NULL || buf == NULL || eev_driver_new(&d, &cb, NULL, &st) != 0) {
        fprintf(stderr, "driver-bench: out of memory\n");
        return -1;
    }
    for (size_t i = 0; i < msg; i++)
        payload[i] = (uint8_t)(op == EEV_OP_TEXT ? 'a' + i % 26 : (i * 131) >> 3);
    for (size_t i = 0; i < cnt; i++)
        len += put_frame(buf + len, op, payload, msg);

    memcpy(hs, upgrade, sizeof(upgrade) - 1);
    eev_driver_recv(d, hs, sizeof(upgrade) - 1);
    eev_driver_out_consume(d, eev_driver_out_len(d));
    if (eev_driver_state(d) != EEV_STATE_OPEN) {
        fprintf(stderr, "driver-bench: handshake failed\n");
        return -1;
    }

    t0 = now();
    do {
        uint64_t before = st.messages;
        for (size_t off = 0; off < len;) {
            size_t n = rd && rd < len - off ? rd : len - off;
            if (eev_driver_recv(d, buf + off, n) != (ssize_t)n) {
                fprintf(stderr, "driver-bench: recv failed\n");
                return -1;
            }
            off += n;
        }
        passes++;
        if (st.errors || st.messages - before != cnt) {
            fprintf(stderr, "driver-bench: %s: expected %zu messages per pass, got %llu\n", label, cnt,
                    (unsigned long long)(st.messages - before));
            return -1;
        }
        t1 = now();
    } while (t1 - t0 < secs);

    {
        double el = t1 - t0;
        double wire = (double)len * (double)passes;
        printf("%-7s %8zu B  read %-6s %12.2f Mmsg/s %8.2f GB/s payload %8.2f GB/s wire  (%zu passes, %.2fs)\n",
               label, msg, rd ? "64KiB" : "whole", (double)st.messages / el / 1e6, (double)st.bytes / el / 1e9,
               wire / el / 1e9, passes, el);
        fflush(stdout);
    }
    eev_driver_del(d);
    free(buf);
    free(payload);
    return 0;
}

int main(int argc, char **argv)
{
    static const size_t sizes[] = {16, 1024, 65536};
    double secs = 1.0;
    long rd = 0, only = -1;
    int c, rv = 0;

    while ((c = getopt(argc, argv, "t:r:s:")) != -1) {
        switch (c) {
        case 't':
            secs = atof(optarg);
            break;
        case 'r':
            rd = atol(optarg);
            break;
        case 's':
            only = atol(optarg);
            break;
        default:
            fprintf(stderr, "usage: %s [-t seconds] [-r read_size] [-s msg_size]\n", argv[0]);
            return 2;
        }
    }
    for (int pass = 0; pass < (rd ? 1 : 2); pass++) {
        size_t r = rd ? (size_t)rd : pass ? 65536 : 0;
        for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
            size_t msg = only >= 0 ? (size_t)only : sizes[i];
            rv |= run_case("text", EEV_OP_TEXT, msg, r, secs);
            rv |= run_case("binary", EEV_OP_BINARY, msg, r, secs);
            if (only >= 0)
                break;
        }
    }
    return rv ? 1 : 0;
}
