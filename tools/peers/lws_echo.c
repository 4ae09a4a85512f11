/*
 * lws_echo.c - a WebSocket echo server on libwebsockets, the "lws" peer of
 * tools/bench (not part of echo-ev).
 *
 * Usage: lws_echo PORT [BIND_ADDR [RX_BUFFER_SIZE]]
 *        (BIND_ADDR defaults to 127.0.0.1, RX_BUFFER_SIZE to 65536)
 *
 * One thread, one lws_service() loop. libwebsockets hands a message to the
 * callback in pieces of at most RX_BUFFER_SIZE bytes; every piece is copied
 * into a per-connection queue and sent back as a frame of its own, with
 * lws_write_ws_flags() marking the first and last piece, so the message
 * boundaries (and text/binary) are preserved while a 16 MiB message never
 * has to be held whole. This is the pattern of lws's own
 * minimal-ws-server-echo example, without its fixed-size ring.
 *
 * Back-pressure: when more than HIGH_WATER bytes wait for a connection we
 * stop reading it (lws_rx_flow_control) until the queue drains below
 * LOW_WATER.
 *
 * Note on memory: lws allocates RX_BUFFER_SIZE + LWS_PRE bytes per upgraded
 * connection at establishment (and sets SO_SNDBUF to that size), so an idle
 * connection costs about RX_BUFFER_SIZE. Smaller buffers save memory but cut
 * large-message throughput.
 */
#include <libwebsockets.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HIGH_WATER (4u << 20)
#define LOW_WATER (1u << 20)

struct piece {
    struct piece *next;
    size_t len;
    int flags; /* lws_write_protocol incl. fragment flags */
    unsigned char buf[]; /* LWS_PRE bytes of headroom, then len bytes */
};

struct session {
    struct piece *head, *tail;
    size_t queued;
    int paused;
};

static volatile sig_atomic_t interrupted;

static void queue_free(struct session *s)
{
    struct piece *p = s->head;
    while (p) {
        struct piece *n = p->next;
        free(p);
        p = n;
    }
    s->head = s->tail = NULL;
    s->queued = 0;
}

static int echo_cb(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                   size_t len)
{
    struct session *s = user;

    switch (reason) {
    case LWS_CALLBACK_ESTABLISHED:
        memset(s, 0, sizeof *s);
        break;

    case LWS_CALLBACK_RECEIVE: {
        int first = lws_is_first_fragment(wsi);
        int final = lws_is_final_fragment(wsi);
        int binary = lws_frame_is_binary(wsi);
        struct piece *p = malloc(sizeof *p + LWS_PRE + len);
        if (!p)
            return -1;
        p->next = NULL;
        p->len = len;
        p->flags = lws_write_ws_flags(binary ? LWS_WRITE_BINARY : LWS_WRITE_TEXT, first, final);
        if (len)
            memcpy(p->buf + LWS_PRE, in, len);
        if (s->tail)
            s->tail->next = p;
        else
            s->head = p;
        s->tail = p;
        s->queued += len;
        if (!s->paused && s->queued > HIGH_WATER) {
            s->paused = 1;
            lws_rx_flow_control(wsi, 0);
        }
        lws_callback_on_writable(wsi);
        break;
    }

    case LWS_CALLBACK_SERVER_WRITEABLE:
        /* Write as many queued pieces as the socket takes now; lws buffers
         * a partial write itself and then reports the pipe as choked. */
        while (s->head) {
            struct piece *p = s->head;
            int n = lws_write(wsi, p->buf + LWS_PRE, p->len, (enum lws_write_protocol)p->flags);
            if (n < (int)p->len)
                return -1;
            s->head = p->next;
            if (!s->head)
                s->tail = NULL;
            s->queued -= p->len;
            free(p);
            if (s->head && lws_send_pipe_choked(wsi)) {
                lws_callback_on_writable(wsi);
                break;
            }
        }
        if (s->paused && s->queued < LOW_WATER) {
            s->paused = 0;
            lws_rx_flow_control(wsi, 1);
        }
        break;

    case LWS_CALLBACK_CLOSED:
        queue_free(s);
        break;

    default:
        break;
    }
    return 0;
}

static struct lws_protocols protocols[] = {
    {"echo", echo_cb, sizeof(struct session), 65536, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

static void on_signal(int sig)
{
    (void)sig;
    interrupted = 1;
}

int main(int argc, char **argv)
{
    struct lws_context_creation_info info;
    struct lws_context *ctx;
    long rx = 65536;

    if (argc < 2 || argc > 4) {
        fprintf(stderr, "usage: %s PORT [BIND_ADDR [RX_BUFFER_SIZE]]\n", argv[0]);
        return 2;
    }
    if (argc > 3) {
        rx = strtol(argv[3], NULL, 10);
        if (rx < 128 || rx > (64L << 20)) {
            fprintf(stderr, "%s: bad RX_BUFFER_SIZE\n", argv[0]);
            return 2;
        }
    }
    protocols[0].rx_buffer_size = (size_t)rx;
    protocols[0].tx_packet_size = (size_t)rx + 16; /* header + one received piece */

    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    signal(SIGPIPE, SIG_IGN);
    lws_set_log_level(LLL_ERR | LLL_WARN, NULL);

    memset(&info, 0, sizeof info);
    info.port = atoi(argv[1]);
    info.iface = argc > 2 ? argv[2] : "127.0.0.1";
    info.protocols = protocols; /* the first protocol is the default one */
    info.pt_serv_buf_size = 256 * 1024; /* one read() per service pass */
    info.count_threads = 1;
    info.options = LWS_SERVER_OPTION_DISABLE_IPV6;

    ctx = lws_create_context(&info);
    if (!ctx) {
        fprintf(stderr, "%s: lws_create_context failed\n", argv[0]);
        return 1;
    }
    while (!interrupted)
        if (lws_service(ctx, 0) < 0)
            break;
    lws_context_destroy(ctx);
    return 0;
}
