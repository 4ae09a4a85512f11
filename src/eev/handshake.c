/*
 * handshake.c - HTTP heads and the WebSocket opening handshake.
 *
 * References: RFC 6455 §4.1 (client requirements), §4.2.1 (reading the
 * client's handshake), §4.2.2 (the server's response); RFC 9112 §2-§5
 * (message syntax). The head is parsed in one pass once its blank line has
 * arrived; the driver accumulates it until then.
 */
#include "handshake.h"

#include <openssl/evp.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

static const char WS_GUID[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

size_t http_head_end(const char *buf, size_t len, size_t from)
{
    /* The head ends with an empty line: "\n\r\n" or "\n\n" (RFC 9112 §2.2
     * lets a recipient accept a bare LF as a line terminator). */
    size_t i = from > 2 ? from - 2 : 0;
    for (; i < len; i++) {
        const char *nl = memchr(buf + i, '\n', len - i);
        if (!nl)
            return 0;
        i = (size_t)(nl - buf);
        if (i + 1 < len && buf[i + 1] == '\n')
            return i + 2;
        if (i + 2 < len && buf[i + 1] == '\r' && buf[i + 2] == '\n')
            return i + 3;
    }
    return 0;
}

/* RFC 9110 §5.6.2 token characters: ALPHA DIGIT !#$%&'*+-.^_`|~, as a
 * 256-bit set. */
static const uint32_t tchar_set[8] = {0x00000000, 0x03ff6cfa, 0xc7fffffe, 0x57ffffff, 0x00000000, 0x00000000, 0x00000000, 0x00000000};

static int is_tchar(unsigned char c)
{
    return (tchar_set[c >> 5] >> (c & 31)) & 1;
}

/* Returns the end of the line starting at p (before CRLF/LF) and sets *next
 * to the start of the following line. */
static const char *line_end(const char *p, const char *end, const char **next)
{
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    if (!nl) {
        *next = end;
        return end;
    }
    *next = nl + 1;
    return nl > p && nl[-1] == '\r' ? nl - 1 : nl;
}

static int parse_headers(const char *p, const char *end, http_head *h, const char **why)
{
    size_t n = 0;

    for (;;) {
        const char *next, *le = line_end(p, end, &next);
        if (le == p)
            break; /* the blank line */
        if (*p == ' ' || *p == '\t') {
            *why = "obsolete header line folding";
            return -1;
        }
        if (n == HTTP_MAX_HEADERS) {
            *why = "too many header fields";
            return -1;
        }
        const char *colon = p;
        while (colon < le && is_tchar((unsigned char)*colon))
            colon++;
        if (colon == p || colon == le || *colon != ':') {
            *why = "malformed header field";
            return -1;
        }
        const char *v = colon + 1, *ve = le;
        while (v < ve && (*v == ' ' || *v == '\t'))
            v++;
        while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
            ve--;
        for (const char *c = v; c < ve; c++) {
            if ((unsigned char)*c < 0x20 && *c != '\t') {
                *why = "control character in a header value";
                return -1;
            }
        }
        h->headers[n].name = p;
        h->headers[n].name_len = (size_t)(colon - p);
        h->headers[n].value = v;
        h->headers[n].value_len = (size_t)(ve - v);
        n++;
        p = next;
    }
    h->req.headers = h->headers;
    h->req.header_cnt = n;
    return 0;
}

/* "HTTP/1.x" at p; returns x or -1. */
static int http_version(const char *p, const char *end)
{
    if (end - p < 8 || memcmp(p, "HTTP/1.", 7) != 0 || p[7] < '0' || p[7] > '9')
        return -1;
    return p[7] - '0';
}

static int name_is(const eev_header *hd, const char *name);
static size_t header_count(const http_head *h, const char *name);

/* RFC 9112 §3.2: exactly one Host in HTTP/1.1 (at most one in 1.0);
 * §6.3: Content-Length values that are not digits, or that differ, make
 * the message length unknowable. Either is a 400. */
static int check_framing(const http_head *h, const char **why)
{
    size_t hosts = header_count(h, "host");
    const eev_header *cl = NULL;

    if (hosts > 1)
        return *why = "more than one Host header", -1;
    if (hosts == 0 && h->req.minor_version >= 1)
        return *why = "missing Host header", -1;
    for (size_t i = 0; i < h->req.header_cnt; i++) {
        const eev_header *hd = &h->headers[i];
        if (!name_is(hd, "content-length"))
            continue;
        size_t digits = 0;
        while (digits < hd->value_len && hd->value[digits] >= '0' && hd->value[digits] <= '9')
            digits++;
        if (hd->value_len == 0 || digits < hd->value_len)
            return *why = "invalid Content-Length", -1;
        if (cl && (cl->value_len != hd->value_len || memcmp(cl->value, hd->value, hd->value_len) != 0))
            return *why = "conflicting Content-Length headers", -1;
        cl = hd;
    }
    return 0;
}

int http_parse_request(const char *buf, size_t len, http_head *h, const char **why)
{
    const char *end = buf + len, *next;
    const char *le = line_end(buf, end, &next);
    const char *p = buf, *sp1, *sp2;

    memset(&h->req, 0, sizeof(h->req));
    h->status = 0;
    /* request-line = method SP request-target SP HTTP-version */
    for (sp1 = p; sp1 < le && is_tchar((unsigned char)*sp1); sp1++)
        ;
    if (sp1 == p || sp1 == le || *sp1 != ' ') {
        *why = "malformed request line";
        return -1;
    }
    for (sp2 = sp1 + 1; sp2 < le && (unsigned char)*sp2 > 0x20 && *sp2 != 0x7F; sp2++)
        ;
    if (sp2 == sp1 + 1 || sp2 == le || *sp2 != ' ') {
        *why = "malformed request line";
        return -1;
    }
    int minor = http_version(sp2 + 1, le);
    if (sp2 + 9 != le || minor < 0) {
        *why = "malformed request line";
        return -1;
    }
    h->req.method = p;
    h->req.method_len = (size_t)(sp1 - p);
    h->req.target = sp1 + 1;
    h->req.target_len = (size_t)(sp2 - sp1 - 1);
    h->req.path = h->req.target;
    const char *q = memchr(h->req.target, '?', h->req.target_len);
    h->req.path_len = q ? (size_t)(q - h->req.target) : h->req.target_len;
    if (q) {
        h->req.query = q + 1;
        h->req.query_len = (size_t)(sp2 - q - 1);
    }
    h->req.minor_version = minor;
    if (parse_headers(next, end, h, why) < 0 || check_framing(h, why) < 0)
        return -1;
    h->req.is_websocket = http_header_has_token(h, "upgrade", "websocket");
    return 0;
}

int http_parse_response(const char *buf, size_t len, http_head *h, const char **why)
{
    const char *end = buf + len, *next;
    const char *le = line_end(buf, end, &next);

    memset(&h->req, 0, sizeof(h->req));
    /* status-line = HTTP-version SP status-code SP [reason-phrase] */
    if (http_version(buf, le) < 0 || le - buf < 12 || buf[8] != ' ' || buf[12] != ' ' ||
        buf[9] < '1' || buf[9] > '5' || buf[10] < '0' || buf[10] > '9' || buf[11] < '0' ||
        buf[11] > '9') {
        *why = "malformed status line";
        return -1;
    }
    h->status = (buf[9] - '0') * 100 + (buf[10] - '0') * 10 + (buf[11] - '0');
    return parse_headers(next, end, h, why);
}

static int name_is(const eev_header *hd, const char *name)
{
    size_t n = strlen(name);
    return hd->name_len == n && strncasecmp(hd->name, name, n) == 0;
}

static size_t header_count(const http_head *h, const char *name)
{
    size_t n = 0;
    for (size_t i = 0; i < h->req.header_cnt; i++)
        n += name_is(&h->headers[i], name);
    return n;
}

const eev_header *http_header(const http_head *h, const char *name)
{
    for (size_t i = 0; i < h->req.header_cnt; i++)
        if (name_is(&h->headers[i], name))
            return &h->headers[i];
    return NULL;
}

/* Calls back for each element of a comma-separated list (RFC 9110 §5.6.1),
 * trimmed; stops when fn returns non-zero and returns that. */
static int list_each(const char *v, size_t len, int (*fn)(const char *, size_t, const void *),
                     const void *arg)
{
    const char *p = v, *end = v + len;

    while (p < end) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        const char *e = comma ? comma : end, *s = p;
        while (s < e && (*s == ' ' || *s == '\t'))
            s++;
        while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
            e--;
        if (e > s) {
            int rv = fn(s, (size_t)(e - s), arg);
            if (rv)
                return rv;
        }
        if (!comma)
            break;
        p = comma + 1;
    }
    return 0;
}

static int token_eq(const char *s, size_t len, const void *token)
{
    return strlen(token) == len && strncasecmp(s, token, len) == 0;
}

int http_header_has_token(const http_head *h, const char *name, const char *token)
{
    for (size_t i = 0; i < h->req.header_cnt; i++)
        if (name_is(&h->headers[i], name) &&
            list_each(h->headers[i].value, h->headers[i].value_len, token_eq, token))
            return 1;
    return 0;
}

static int key_valid(const eev_header *key)
{
    unsigned char raw[20];

    /* §4.2.1 item 5: base64 that decodes to exactly 16 bytes. */
    if (!key || key->value_len != WS_KEY_LEN || key->value[22] != '=' || key->value[23] != '=')
        return 0;
    for (int i = 0; i < 22; i++)
        if (key->value[i] == '=')
            return 0;
    return EVP_DecodeBlock(raw, (const unsigned char *)key->value, WS_KEY_LEN) == 18;
}

int ws_check_request(const http_head *h, const eev_header **key, const char **why)
{
    const eev_request_arg *r = &h->req;
    const eev_header *ver;

    if (r->method_len != 3 || memcmp(r->method, "GET", 3) != 0)
        return *why = "WebSocket handshake must use GET", 400;
    if (r->minor_version < 1)
        return *why = "WebSocket handshake needs HTTP/1.1", 400;
    const eev_header *host = http_header(h, "host");
    if (!host || host->value_len == 0)
        return *why = "missing Host header", 400;
    if (!r->is_websocket)
        return *why = "missing 'Upgrade: websocket'", 400;
    if (!http_header_has_token(h, "connection", "upgrade"))
        return *why = "missing 'Connection: Upgrade'", 400;
    ver = http_header(h, "sec-websocket-version");
    if (!ver)
        return *why = "missing Sec-WebSocket-Version", 400;
    if (ver->value_len != 2 || memcmp(ver->value, "13", 2) != 0)
        return *why = "unsupported Sec-WebSocket-Version (only 13)", 426;
    *key = http_header(h, "sec-websocket-key");
    if (!key_valid(*key) || header_count(h, "sec-websocket-key") != 1)
        return *why = "missing or malformed Sec-WebSocket-Key", 400;
    return 0;
}

struct pick {
    const char *const *ours;
    int best;
};

static int offer_cb(const char *s, size_t len, const void *arg)
{
    struct pick *pk = (struct pick *)arg;
    for (int i = 0; pk->ours[i]; i++)
        if (strlen(pk->ours[i]) == len && memcmp(pk->ours[i], s, len) == 0 &&
            (pk->best < 0 || i < pk->best))
            pk->best = i;
    return 0;
}

int ws_pick_protocol(const http_head *h, const char *const *ours)
{
    struct pick pk = {ours, -1};

    if (!ours)
        return -1;
    for (size_t i = 0; i < h->req.header_cnt; i++)
        if (name_is(&h->headers[i], "sec-websocket-protocol"))
            list_each(h->headers[i].value, h->headers[i].value_len, offer_cb, &pk);
    return pk.best;
}

int eev_accept_key(const char *key, size_t key_len, char out[29])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ok = ctx && EVP_DigestInit_ex(ctx, EVP_sha1(), NULL) &&
             EVP_DigestUpdate(ctx, key, key_len) &&
             EVP_DigestUpdate(ctx, WS_GUID, sizeof(WS_GUID) - 1) &&
             EVP_DigestFinal_ex(ctx, md, &mdlen);

    EVP_MD_CTX_free(ctx);
    if (!ok || mdlen != 20)
        return -1;
    EVP_EncodeBlock((unsigned char *)out, md, 20); /* writes 28 chars + NUL */
    return 0;
}

int ws_check_response(const http_head *h, const char *key, const char *const *offered,
                      const char **chosen, const char **why)
{
    char want[29];
    const eev_header *acc, *proto;

    *chosen = NULL;
    if (h->status != 101)
        return *why = "server did not answer 101", -1;
    if (!http_header_has_token(h, "upgrade", "websocket"))
        return *why = "response lacks 'Upgrade: websocket'", -1;
    if (!http_header_has_token(h, "connection", "upgrade"))
        return *why = "response lacks 'Connection: Upgrade'", -1;
    acc = http_header(h, "sec-websocket-accept");
    if (eev_accept_key(key, WS_KEY_LEN, want) < 0 || !acc || acc->value_len != WS_ACCEPT_LEN ||
        memcmp(acc->value, want, WS_ACCEPT_LEN) != 0)
        return *why = "wrong Sec-WebSocket-Accept", -1;
    proto = http_header(h, "sec-websocket-protocol");
    if (proto) {
        for (int i = 0; offered && offered[i]; i++)
            if (strlen(offered[i]) == proto->value_len &&
                memcmp(offered[i], proto->value, proto->value_len) == 0)
                *chosen = offered[i];
        if (!*chosen)
            return *why = "server chose a subprotocol we did not offer", -1;
    }
    return 0;
}

const char *http_reason(int status)
{
    switch (status) {
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 426: return "Upgrade Required";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    default: return "Unknown";
    }
}
