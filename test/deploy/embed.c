/*
 * embed.c - a program built against the *installed* libeev (pkg-config eev)
 * by test_install.py: a server-role driver gets a canned upgrade request and
 * the RFC 6455 §5.7 masked "Hello" frame, echoes it from on_message, and the
 * bytes it queues are checked. Exit 0 and "ok" on success.
 */
#include <eev/driver.h>

#include <stdio.h>
#include <string.h>

static int opened, messages;

static void on_open(eev_driver *d, void *ud)
{
    (void)d;
    (void)ud;
    opened = 1;
}

static int on_message(eev_driver *d, const eev_message_arg *m, void *ud)
{
    (void)ud;
    messages++;
    return eev_driver_send_message(d, m);
}

/* Takes everything queued into buf; returns its length. */
static size_t drain(eev_driver *d, char *buf, size_t cap)
{
    struct iovec iov[16];
    size_t n = 0;
    int cnt;

    while ((cnt = eev_driver_out_iov(d, iov, 16)) > 0) {
        size_t taken = 0;
        for (int i = 0; i < cnt && n + iov[i].iov_len <= cap; i++) {
            memcpy(buf + n, iov[i].iov_base, iov[i].iov_len);
            n += iov[i].iov_len;
            taken += iov[i].iov_len;
        }
        if (!taken)
            break;
        eev_driver_out_consume(d, taken);
    }
    return n;
}

#define FAIL(...) do { fprintf(stderr, "embed: " __VA_ARGS__); fputc('\n', stderr); return 1; } while (0)

int main(void)
{
    static const eev_callbacks cb = {.on_open = on_open, .on_message = on_message};
    char req[] = "GET /chat HTTP/1.1\r\n"
                 "Host: server.example.com\r\n"
                 "Upgrade: websocket\r\n"
                 "Connection: Upgrade\r\n"
                 "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                 "Sec-WebSocket-Version: 13\r\n\r\n";
    /* RFC 6455 §5.7: a single-frame masked text message "Hello". */
    unsigned char frame[] = {0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58};
    /* A masked Close 1000. */
    unsigned char close_frame[] = {0x88, 0x82, 0x01, 0x02, 0x03, 0x04, 0x03 ^ 0x01, 0xe8 ^ 0x02};
    char out[4096];
    char accept[29];
    eev_driver *d;
    size_t n;

    if (eev_accept_key("dGhlIHNhbXBsZSBub25jZQ==", 24, accept) != 0 ||
        strcmp(accept, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=") != 0)
        FAIL("eev_accept_key: %s", accept);
    if (eev_driver_new(&d, &cb, NULL, NULL) != 0)
        FAIL("eev_driver_new failed");

    if (eev_driver_recv(d, (uint8_t *)req, strlen(req)) != (ssize_t)strlen(req))
        FAIL("recv(request) failed");
    n = drain(d, out, sizeof(out) - 1);
    out[n] = 0;
    if (strncmp(out, "HTTP/1.1 101 ", 13) != 0 || !strstr(out, "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"))
        FAIL("bad 101 response:\n%s", out);
    if (!opened || eev_driver_state(d) != EEV_STATE_OPEN)
        FAIL("not open after the handshake");

    /* Split delivery: the driver must accept any split of the stream. */
    if (eev_driver_recv(d, frame, 3) != 3 || eev_driver_recv(d, frame + 3, sizeof(frame) - 3) != (ssize_t)sizeof(frame) - 3)
        FAIL("recv(frame) failed");
    n = drain(d, out, sizeof(out));
    if (messages != 1 || n != 7 || memcmp(out, "\x81\x05Hello", 7) != 0)
        FAIL("bad echo (%d messages, %zu bytes)", messages, n);

    if (eev_driver_recv(d, close_frame, sizeof(close_frame)) != (ssize_t)sizeof(close_frame))
        FAIL("recv(close) failed");
    n = drain(d, out, sizeof(out));
    if (n != 4 || memcmp(out, "\x88\x02\x03\xe8", 4) != 0 || !eev_driver_finished(d))
        FAIL("bad close reply (%zu bytes)", n);
    eev_driver_del(d);
    printf("ok: echoed \"Hello\" through libeev (%s)\n", eev_strerror(EEV_OK));
    return 0;
}
