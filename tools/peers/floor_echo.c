/*
 * floor_echo.c - the yardstick for tools/bench and tools/instr-bench: about
 * the least work a WebSocket echo server on epoll can do.
 *
 * One thread, level-triggered epoll, no library but libcrypto (SHA-1 and
 * base64 for the handshake). Per readiness event on an open connection: one
 * read() into a shared buffer; each frame's header is rewritten unmasked
 * into a shared output buffer and its payload XOR-copied behind it; then one
 * write() for the whole batch. A frame split across reads goes out in
 * pieces as it arrives (its header first), so nothing but a split header
 * (at most 14 bytes) is kept between reads. Ping becomes pong, pong is
 * dropped, Close is echoed and then the socket closed. No UTF-8 check, no
 * limits, no timers: this is a measuring stick, not a server.
 *
 * Output the socket does not take is kept per connection (the rare path)
 * and reading stops until it has drained.
 *
 * Usage: floor_echo PORT [IPV4_ADDR]   (default 127.0.0.1; SIGTERM exits)
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/evp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define BUF_SIZE (256 * 1024)
#define HEAD_MAX 8192
#define EVENTS_MAX 512

struct peer {
    int fd;
    uint8_t open;        /* upgraded */
    uint8_t drop;        /* the current frame's payload is not echoed (pong) */
    uint8_t closing;     /* a Close was echoed: close once it is out */
    uint8_t key[4];      /* masking key of the current frame */
    uint8_t phase;       /* key offset of the next payload byte */
    uint8_t split_len;   /* bytes of a header split across reads */
    uint8_t split[14];
    uint64_t left;       /* payload bytes of the current frame still due */
    char *head;          /* HTTP request so far (until the upgrade) */
    size_t head_len;
    uint8_t *pend;       /* output the socket did not take */
    size_t pend_len, pend_off;
};

static int epfd;
static uint8_t inbuf[BUF_SIZE + 14], outbuf[BUF_SIZE + 16];
static volatile sig_atomic_t stop;

static void on_stop(int sig)
{
    (void)sig;
    stop = 1;
}

static void peer_drop(struct peer *p)
{
    close(p->fd);
    free(p->head);
    free(p->pend);
    free(p);
}

static void watch(struct peer *p, uint32_t events)
{
    struct epoll_event ev = {.events = events, .data.ptr = p};
    epoll_ctl(epfd, EPOLL_CTL_MOD, p->fd, &ev);
}

/* Writes buf or keeps what the socket refuses. Returns -1 to drop p. */
static int out(struct peer *p, const uint8_t *buf, size_t len)
{
    ssize_t w = len ? write(p->fd, buf, len) : 0;

    if (w < 0 && errno != EAGAIN && errno != EINTR)
        return -1;
    if (w < 0)
        w = 0;
    if ((size_t)w == len)
        return 0;
    p->pend = malloc(len - (size_t)w);
    if (!p->pend)
        return -1;
    memcpy(p->pend, buf + w, len - (size_t)w);
    p->pend_len = len - (size_t)w;
    p->pend_off = 0;
    watch(p, EPOLLOUT);
    return 0;
}

/* XOR-copies n payload bytes, advancing the key phase. */
static void unmask_copy(struct peer *p, uint8_t *dst, const uint8_t *src, size_t n)
{
    uint8_t k[8];
    uint64_t k64;
    size_t i = 0;

    for (int j = 0; j < 8; j++)
        k[j] = p->key[(p->phase + j) & 3];
    memcpy(&k64, k, 8);
    for (; i + 8 <= n; i += 8) {
        uint64_t v;
        memcpy(&v, src + i, 8);
        v ^= k64;
        memcpy(dst + i, &v, 8);
    }
    for (; i < n; i++)
        dst[i] = src[i] ^ k[i & 3];
    p->phase = (uint8_t)((p->phase + n) & 3);
}

/* Turns in[0..len) into echo frames in outbuf. Returns the output length,
 * or -1 on a frame we refuse (unmasked). */
static ssize_t frames(struct peer *p, const uint8_t *in, size_t len)
{
    size_t r = 0, w = 0;

    while (r < len && !(p->closing && !p->left)) {
        if (p->left) {
            size_t n = len - r < p->left ? len - r : (size_t)p->left;
            if (!p->drop) {
                unmask_copy(p, outbuf + w, in + r, n);
                w += n;
            }
            p->left -= n;
            r += n;
            continue;
        }
        size_t have = len - r, need = 6;
        if (have >= 2) {
            uint8_t b1 = in[r + 1] & 0x7F;
            need = b1 == 126 ? 8 : b1 == 127 ? 14 : 6;
        }
        if (have < need) { /* keep the split header for the next read */
            memcpy(p->split, in + r, have);
            p->split_len = (uint8_t)have;
            break;
        }
        uint8_t b0 = in[r], op = b0 & 0x0F;
        if (!(in[r + 1] & 0x80))
            return -1;
        uint64_t plen = in[r + 1] & 0x7F;
        if (plen == 126)
            plen = (uint64_t)in[r + 2] << 8 | in[r + 3];
        else if (plen == 127) {
            plen = 0;
            for (int i = 0; i < 8; i++)
                plen = plen << 8 | in[r + 2 + i];
        }
        memcpy(p->key, in + r + need - 4, 4);
        p->phase = 0;
        p->left = plen;
        p->drop = op == 0xA;
        if (!p->drop) {
            outbuf[w] = op == 0x9 ? (uint8_t)((b0 & 0xF0) | 0xA) : b0;
            memcpy(outbuf + w + 1, in + r + 1, need - 5);
            outbuf[w + 1] &= 0x7F; /* no mask on the way out */
            w += need - 4;
        }
        p->closing = op == 0x8; /* its payload is echoed, then nothing more */
        r += need;
    }
    return (ssize_t)w;
}

static void on_frames(struct peer *p)
{
    size_t carry = p->split_len;

    memcpy(inbuf, p->split, carry);
    ssize_t n = read(p->fd, inbuf + carry, BUF_SIZE);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
        peer_drop(p);
        return;
    }
    if (n < 0)
        return;
    p->split_len = 0;
    ssize_t w = frames(p, inbuf, carry + (size_t)n);
    if (w < 0 || out(p, outbuf, (size_t)w) < 0 || (p->closing && !p->left && !p->pend))
        peer_drop(p);
}

/* The value of header name in the head (NUL-terminated), or NULL. */
static const char *header(const char *head, const char *name, size_t *vlen)
{
    size_t nl = strlen(name);

    for (const char *l = strstr(head, "\r\n"); l && l[2] != '\r'; l = strstr(l + 2, "\r\n")) {
        if (strncasecmp(l + 2, name, nl) != 0 || l[2 + nl] != ':')
            continue;
        const char *v = l + 3 + nl, *e = strstr(v, "\r\n");
        while (*v == ' ' || *v == '\t')
            v++;
        while (e > v && (e[-1] == ' ' || e[-1] == '\t'))
            e--;
        *vlen = (size_t)(e - v);
        return v;
    }
    return NULL;
}

static void on_head(struct peer *p)
{
    static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    char *h = realloc(p->head, p->head_len + HEAD_MAX + 1);

    if (!h) {
        peer_drop(p);
        return;
    }
    p->head = h;
    ssize_t n = read(p->fd, h + p->head_len, HEAD_MAX);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
        peer_drop(p);
        return;
    }
    if (n < 0)
        return;
    p->head_len += (size_t)n;
    h[p->head_len] = 0;
    char *end = strstr(h, "\r\n\r\n");
    if (!end) {
        if (p->head_len > HEAD_MAX)
            peer_drop(p);
        return;
    }
    end[2] = 0; /* the head ends at the last header line's CRLF */
    size_t klen = 0;
    const char *key = header(h, "Sec-WebSocket-Key", &klen);
    char buf[256];
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned mdlen = 0;
    if (!key || klen > 64) {
        static const char bad[] = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
        (void)!write(p->fd, bad, sizeof(bad) - 1);
        peer_drop(p);
        return;
    }
    memcpy(buf, key, klen);
    memcpy(buf + klen, guid, sizeof(guid) - 1);
    EVP_Digest(buf, klen + sizeof(guid) - 1, md, &mdlen, EVP_sha1(), NULL);
    char accept[32];
    EVP_EncodeBlock((unsigned char *)accept, md, (int)mdlen);
    int rl = snprintf(buf, sizeof(buf),
                      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                      "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n", accept);
    p->open = 1;
    /* Frames pipelined behind the request. */
    size_t used = (size_t)(end + 4 - h), rest = p->head_len - used;
    memcpy(inbuf, h + used, rest);
    free(p->head);
    p->head = NULL;
    if (out(p, (const uint8_t *)buf, (size_t)rl) < 0) {
        peer_drop(p);
        return;
    }
    ssize_t w = rest ? frames(p, inbuf, rest) : 0;
    /* (A client that pipelines frames into a full socket is not worth a queue.) */
    if (w < 0 || (w > 0 && (p->pend || out(p, outbuf, (size_t)w) < 0)))
        peer_drop(p);
}

static void on_writable(struct peer *p)
{
    ssize_t w = write(p->fd, p->pend + p->pend_off, p->pend_len - p->pend_off);

    if (w < 0) {
        if (errno != EAGAIN && errno != EINTR)
            peer_drop(p);
        return;
    }
    p->pend_off += (size_t)w;
    if (p->pend_off < p->pend_len)
        return;
    free(p->pend);
    p->pend = NULL;
    if (p->closing && !p->left)
        peer_drop(p);
    else
        watch(p, EPOLLIN);
}

static void on_listener(int lfd)
{
    int one = 1;

    for (;;) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return; /* EAGAIN, or out of descriptors: the next event retries */
        struct peer *p = calloc(1, sizeof(*p));
        if (!p) {
            close(fd);
            continue;
        }
        p->fd = fd;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = p};
        epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev);
    }
}

int main(int argc, char **argv)
{
    struct sockaddr_in sa = {.sin_family = AF_INET};
    int one = 1;

    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: floor_echo PORT [IPV4_ADDR]\n");
        return 2;
    }
    sa.sin_port = htons((uint16_t)atoi(argv[1]));
    if (inet_pton(AF_INET, argc > 2 ? argv[2] : "127.0.0.1", &sa.sin_addr) != 1) {
        fprintf(stderr, "floor_echo: bad address\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    struct sigaction st = {.sa_handler = on_stop};
    sigaction(SIGTERM, &st, NULL);
    sigaction(SIGINT, &st, NULL);
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(lfd, 4096) < 0) {
        perror("floor_echo: listen");
        return 1;
    }
    epfd = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event lev = {.events = EPOLLIN, .data.ptr = NULL};
    epoll_ctl(epfd, EPOLL_CTL_ADD, lfd, &lev);
    fprintf(stderr, "floor_echo listening on %s:%s\n", argc > 2 ? argv[2] : "127.0.0.1", argv[1]);

    struct epoll_event evs[EVENTS_MAX];
    while (!stop) {
        int n = epoll_wait(epfd, evs, EVENTS_MAX, -1);
        for (int i = 0; i < n; i++) {
            struct peer *p = evs[i].data.ptr;
            if (!p)
                on_listener(lfd);
            else if (p->pend)
                on_writable(p);
            else if (p->open)
                on_frames(p);
            else
                on_head(p);
        }
    }
    return 0;
}
