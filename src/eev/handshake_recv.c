/*
 * handshake_recv.c - the driver's CONNECTING state: accumulate an HTTP
 * head, answer it (server) or check it (client), then hand the rest of the
 * input to the frame decoder. It also owns the driver's auxiliary state
 * (struct hs_state): the head buffer, a control payload split across reads
 * and the client's pool of masking-key bytes.
 *
 * driver.c calls in here (driver_int.h lists the entry points); nothing here
 * calls back into driver.c: responses go straight onto the output queue.
 *
 * A head that arrives whole in one read is parsed where it lies; only a
 * head split across reads is copied into hs->buf, which grows up to
 * max_head_size and is freed once the connection opens.
 */
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "driver_int.h"
#include "handshake.h"
#include "pmd.h"

struct hs_state {
    uint16_t rng_pos;         /* client: next unused byte of rng */
    uint8_t rng[256];         /* client: getrandom() bytes for masking keys */
    char key[WS_KEY_LEN + 1]; /* client: the key we sent */
    uint8_t ctl_len;          /* bytes in ctl */
    uint8_t ctl[125];         /* a control payload split across reads */
    size_t len, cap;          /* bytes held in buf, and its size */
    char buf[];
};

static size_t max_head(const eev_driver *d)
{
    return d->opt->max_head_size ? d->opt->max_head_size : DEFAULT_MAX_HEAD;
}

void driver_hs_free(eev_driver *d)
{
    free(d->hs);
    d->hs = NULL;
}

static int hs_append(eev_driver *d, const uint8_t *p, size_t n)
{
    struct hs_state *hs = d->hs;
    size_t need = (hs ? hs->len : 0) + n;

    if (!hs || need > hs->cap) {
        size_t cap = hs && hs->cap ? hs->cap * 2 : n ? 1024 : 0;
        while (cap < need)
            cap = cap ? cap * 2 : 1024;
        hs = realloc(hs, sizeof(*hs) + cap);
        if (!hs)
            return EEV_ERR_NOMEM;
        if (!d->hs) {
            hs->len = 0;
            hs->key[0] = 0;
            hs->ctl_len = 0;
            hs->rng_pos = sizeof(hs->rng);
        }
        hs->cap = cap;
        d->hs = hs;
    }
    memcpy(hs->buf + hs->len, p, n);
    hs->len += n;
    return 0;
}

void driver_hs_done(eev_driver *d)
{
    if (d->opt->role == EEV_ROLE_SERVER || !d->hs) {
        driver_hs_free(d);
        return;
    }
    struct hs_state *hs = realloc(d->hs, sizeof(*hs)); /* keep the key pool */
    if (hs)
        d->hs = hs;
    d->hs->len = d->hs->cap = 0;
}

int driver_ctl_append(eev_driver *d, const uint8_t *p, size_t n, const uint8_t **out, size_t *len)
{
    int rv;

    if (!d->hs && (rv = hs_append(d, (const uint8_t *)"", 0)) < 0)
        return rv;
    memcpy(d->hs->ctl + d->hs->ctl_len, p, n);
    d->hs->ctl_len = (uint8_t)(d->hs->ctl_len + n);
    *out = d->hs->ctl;
    *len = d->hs->ctl_len;
    if (d->remaining == 0)
        d->hs->ctl_len = 0; /* complete: the caller uses it before the next append */
    return 0;
}

void driver_random(eev_driver *d, uint8_t *out, size_t n)
{
    struct hs_state *hs = d->hs;

    if (!hs && hs_append(d, (const uint8_t *)"", 0) == 0)
        hs = d->hs;
    while (n > 0) {
        if (!hs) { /* no memory for a pool: ask the kernel each time */
            ssize_t got = getrandom(out, n, 0);
            if (got > 0) {
                out += got;
                n -= (size_t)got;
            }
            continue;
        }
        if (hs->rng_pos == sizeof(hs->rng)) {
            if (getrandom(hs->rng, sizeof(hs->rng), 0) != (ssize_t)sizeof(hs->rng))
                continue; /* EINTR, or a short read before the pool is seeded */
            hs->rng_pos = 0;
        }
        *out++ = hs->rng[hs->rng_pos++];
        n--;
    }
}

/* Queues bytes as they are (an HTTP head). */
static int queue_raw(eev_driver *d, const void *p, size_t len)
{
    uint8_t *o = outq_reserve(&d->oq, len);

    if (!o)
        return EEV_ERR_NOMEM;
    memcpy(o, p, len);
    return 0;
}

/* Queues a complete HTTP response. */
static int queue_response(eev_driver *d, int status, const char *headers, const void *body,
                          size_t body_len, int close)
{
    char head[512];
    int n = snprintf(head, sizeof(head), "HTTP/1.1 %d %s\r\n%sContent-Length: %zu\r\n%s\r\n",
                     status, http_reason(status), headers ? headers : "", body_len,
                     close ? "Connection: close\r\n" : "");

    if (n < 0 || (size_t)n >= sizeof(head))
        return EEV_ERR_ARG;
    if (d->head_req)
        body_len = 0; /* RFC 9110 §9.3.2: the GET's headers, never a body */
    uint8_t *p = outq_reserve(&d->oq, (size_t)n + body_len);
    if (!p)
        return EEV_ERR_NOMEM;
    memcpy(p, head, (size_t)n);
    if (body_len)
        memcpy(p + n, body, body_len);
    return 0;
}

/* The handshake failed: nothing more is read, and since the connection
 * never opened there is no on_close. */
static void handshake_failed(eev_driver *d, uint16_t code, const char *why)
{
    eev_error_arg e = {code, why};

    d->state = EEV_STATE_CLOSED;
    d->flags |= F_FAILED | F_REPORTED;
    if (d->cb->on_error)
        d->cb->on_error(d, &e, d->ud);
}

/* Refuses the handshake with status and a one-line body saying why. */
static int refuse(eev_driver *d, int status, const char *why)
{
    const char *extra = status == 426 ? "Sec-WebSocket-Version: 13\r\nContent-Type: text/plain\r\n"
                                      : "Content-Type: text/plain\r\n";
    char body[160];
    int n = snprintf(body, sizeof(body), "%s\n", why);
    int rv = queue_response(d, status, extra, body, (size_t)n, 1);

    handshake_failed(d, (uint16_t)status, why);
    return rv;
}

int eev_driver_http_reply(eev_driver *d, int status, const char *extra_headers, const void *body,
                          size_t body_len, int close)
{
    if (!(d->flags & F_IN_REQUEST) || (d->flags & F_REPLIED))
        return EEV_ERR_STATE;
    close = close || (d->flags & F_HTTP_CLOSE);
    int rv = queue_response(d, status, extra_headers, body, body_len, close);
    if (rv < 0)
        return rv;
    d->flags |= F_REPLIED | (close ? F_HTTP_CLOSE : 0);
    return 0;
}

static int accept_upgrade(eev_driver *d, const http_head *h, const eev_header *key)
{
    char accept[29], head[512], ext[160] = "";
    int pi = ws_pick_protocol(h, d->opt->protocols);
    const char *proto = pi >= 0 ? d->opt->protocols[pi] : NULL;
    struct pmd_params pp;

    if (eev_accept_key(key->value, key->value_len, accept) < 0)
        return EEV_ERR_NOMEM;
    if (pmd_accept_offer(h, &d->opt->deflate, &pp)) {
        if (!(d->pmd = pmd_new(&pp, 0)))
            return EEV_ERR_NOMEM;
        d->rsv_ok = FRAME_RSV1;
        pmd_format_response(&pp, ext, sizeof(ext));
    }
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n%s%s%s%s\r\n",
                     accept, proto ? "Sec-WebSocket-Protocol: " : "", proto ? proto : "",
                     proto ? "\r\n" : "", ext);
    if (n < 0 || (size_t)n >= sizeof(head))
        return EEV_ERR_ARG; /* absurdly long protocol name */
    int rv = queue_raw(d, head, (size_t)n);
    if (rv < 0)
        return rv;
    d->proto = (uint8_t)(pi + 1);
    d->state = EEV_STATE_OPEN;
    if (d->cb->on_open)
        d->cb->on_open(d, d->ud);
    return 0;
}

/* Does the request promise a body we would have to skip? */
static int has_body(const http_head *h)
{
    const eev_header *cl = http_header(h, "content-length");
    return http_header(h, "transfer-encoding") || (cl && !(cl->value_len == 1 && cl->value[0] == '0'));
}

static int server_head(eev_driver *d, const char *buf, size_t len)
{
    http_head h;
    const char *why;
    const eev_header *key = NULL;

    d->head_req = len > 5 && memcmp(buf, "HEAD ", 5) == 0;
    if (http_parse_request(buf, len, &h, &why) < 0)
        return refuse(d, 400, why);
    d->flags &= (uint8_t)~F_REPLIED;
    if (h.req.minor_version < 1 ? !http_header_has_token(&h, "connection", "keep-alive")
                                : http_header_has_token(&h, "connection", "close"))
        d->flags |= F_HTTP_CLOSE;
    if (has_body(&h))
        d->flags |= F_HTTP_CLOSE;
    if (d->cb->on_request) {
        d->flags |= F_IN_REQUEST;
        int rv = d->cb->on_request(d, &h.req, d->ud);
        d->flags &= (uint8_t)~F_IN_REQUEST;
        if (rv != 0)
            return EEV_ERR_CALLBACK;
    }
    if (d->flags & F_REPLIED) {
        if (d->flags & F_HTTP_CLOSE) {
            d->state = EEV_STATE_CLOSED;
            d->flags |= F_REPORTED;
        }
        return 0;
    }
    int status = ws_check_request(&h, &key, &why);
    if (status)
        return refuse(d, status, why);
    return accept_upgrade(d, &h, key);
}

static int client_head(eev_driver *d, const char *buf, size_t len)
{
    http_head h;
    const char *why, *chosen;

    struct pmd_params pp;
    int ext;

    if (http_parse_response(buf, len, &h, &why) < 0 ||
        ws_check_response(&h, d->hs->key, d->opt->protocols, &chosen, &why) < 0 ||
        (ext = pmd_check_response(&h, &d->opt->deflate, &pp, &why)) < 0) {
        handshake_failed(d, EEV_CLOSE_PROTOCOL_ERROR, why);
        return 0;
    }
    if (ext) {
        if (!(d->pmd = pmd_new(&pp, PMD_CLIENT | (d->opt->deflate.deliver_compressed ? PMD_RAW : 0))))
            return EEV_ERR_NOMEM;
        d->rsv_ok = FRAME_RSV1;
    }
    for (int i = 0; chosen && d->opt->protocols[i]; i++)
        if (d->opt->protocols[i] == chosen)
            d->proto = (uint8_t)(i + 1);
    d->state = EEV_STATE_OPEN;
    if (d->cb->on_open)
        d->cb->on_open(d, d->ud);
    return 0;
}

static int on_head(eev_driver *d, const char *buf, size_t len)
{
    return d->opt->role == EEV_ROLE_SERVER ? server_head(d, buf, len) : client_head(d, buf, len);
}

ssize_t driver_handshake_recv(eev_driver *d, uint8_t *in, size_t len)
{
    size_t limit = max_head(d), end, held = d->hs ? d->hs->len : 0;
    int rv;

    if (held == 0) {
        /* Fast path: the whole head lies in this read. */
        end = http_head_end((const char *)in, len < limit ? len : limit, 0);
        if (end) {
            rv = on_head(d, (const char *)in, end);
            return rv < 0 ? rv : (ssize_t)end;
        }
    }
    /* Slow path: accumulate. Look only at what fits under the limit. */
    size_t take = len < limit - held ? len : limit - held;
    if ((rv = hs_append(d, in, take)) < 0)
        return rv;
    end = http_head_end(d->hs->buf, d->hs->len, held);
    if (!end) {
        if (d->hs->len >= limit)
            return refuse(d, 431, "request head too large") < 0 ? EEV_ERR_NOMEM : (ssize_t)len;
        return (ssize_t)len;
    }
    rv = on_head(d, d->hs->buf, end);
    if (rv < 0)
        return rv;
    /* Bytes past the head came from this read: hand them back. */
    size_t used = end - held;
    d->hs->len = 0;
    return (ssize_t)used;
}

static void b64_key(eev_driver *d, char out[WS_KEY_LEN + 1])
{
    uint8_t raw[16];

    driver_random(d, raw, sizeof(raw));
    EVP_EncodeBlock((unsigned char *)out, raw, sizeof(raw)); /* 24 chars + NUL */
}

/* Appends to a request being built; on overflow marks it with *n = -1. */
__attribute__((format(printf, 4, 5))) static void put(char *buf, size_t cap, int *n, const char *fmt, ...)
{
    va_list ap;

    if (*n < 0)
        return;
    va_start(ap, fmt);
    int w = vsnprintf(buf + *n, cap - (size_t)*n, fmt, ap);
    va_end(ap);
    *n = w < 0 || (size_t)w >= cap - (size_t)*n ? -1 : *n + w;
}

int driver_client_start(eev_driver *d)
{
    const eev_options *o = d->opt;
    char req[2048];
    int n = 0, rv;

    if ((rv = hs_append(d, (const uint8_t *)"", 0)) < 0)
        return rv;
    b64_key(d, d->hs->key);
    put(req, sizeof(req), &n,
        "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n",
        o->path ? o->path : "/", o->host, d->hs->key);
    if (o->origin)
        put(req, sizeof(req), &n, "Origin: %s\r\n", o->origin);
    for (int i = 0; o->protocols && o->protocols[i]; i++)
        put(req, sizeof(req), &n, "%s%s%s", i ? ", " : "Sec-WebSocket-Protocol: ", o->protocols[i],
            o->protocols[i + 1] ? "" : "\r\n");
    if (o->deflate.enable) {
        char ext[160];
        pmd_format_offer(&o->deflate, ext, sizeof(ext));
        put(req, sizeof(req), &n, "%s", ext);
    }
    put(req, sizeof(req), &n, "\r\n");
    if (n < 0)
        return EEV_ERR_ARG; /* host, path, origin or protocols too long */
    return queue_raw(d, req, (size_t)n);
}
