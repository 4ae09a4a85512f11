/* util.c - see util.h. */
#include "util.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

const uint8_t tmask_key[4] = {0x37, 0xfa, 0x21, 0x3d};

const char treq_upgrade[] = "GET /chat HTTP/1.1\r\n"
                            "Host: server.example.com\r\n"
                            "Upgrade: websocket\r\n"
                            "Connection: Upgrade\r\n"
                            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                            "Origin: http://example.com\r\n"
                            "Sec-WebSocket-Version: 13\r\n"
                            "\r\n";

void sb_put(sbuf *b, const void *p, size_t len)
{
    if (b->len + len + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + len + 1)
            cap *= 2;
        b->p = realloc(b->p, cap);
        if (b->p == NULL)
            abort();
        b->cap = cap;
    }
    if (len)
        memcpy(b->p + b->len, p, len);
    b->len += len;
    b->p[b->len] = 0; /* keep text NUL-terminated for strstr */
}

void sb_puts(sbuf *b, const char *s)
{
    sb_put(b, s, strlen(s));
}

void sb_printf(sbuf *b, const char *fmt, ...)
{
    char tmp[512];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    sb_put(b, tmp, n < (int)sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1);
}

void sb_reset(sbuf *b)
{
    b->len = 0;
    if (b->p)
        b->p[0] = 0;
}

void sb_free(sbuf *b)
{
    free(b->p);
    memset(b, 0, sizeof(*b));
}

void sb_frame_header(sbuf *b, uint8_t b0, int masked, uint64_t len)
{
    uint8_t h[14];
    size_t n = 0;
    uint8_t m = masked ? 0x80 : 0;

    h[n++] = b0;
    if (len < 126) {
        h[n++] = m | (uint8_t)len;
    } else if (len <= 0xFFFF) {
        h[n++] = m | 126;
        h[n++] = (uint8_t)(len >> 8);
        h[n++] = (uint8_t)len;
    } else {
        h[n++] = m | 127;
        for (int i = 7; i >= 0; i--)
            h[n++] = (uint8_t)(len >> (8 * i));
    }
    if (masked) {
        memcpy(h + n, tmask_key, 4);
        n += 4;
    }
    sb_put(b, h, n);
}

void sb_frame(sbuf *b, uint8_t b0, int masked, const void *p, size_t len)
{
    const uint8_t *s = p;

    sb_frame_header(b, b0, masked, len);
    for (size_t i = 0; i < len; i++) {
        uint8_t c = s[i] ^ (masked ? tmask_key[i & 3] : 0);
        sb_put(b, &c, 1);
    }
}

size_t tfr_parse(const uint8_t *p, size_t len, tfr *f)
{
    size_t n = 2;
    uint64_t plen;

    memset(f, 0, sizeof(*f));
    if (len < 2)
        return 0;
    f->fin = p[0] >> 7;
    f->rsv = (p[0] >> 4) & 7;
    f->op = p[0] & 15;
    f->masked = p[1] >> 7;
    plen = p[1] & 127;
    if (plen == 126) {
        if (len < 4)
            return 0;
        plen = (uint64_t)p[2] << 8 | p[3];
        n = 4;
    } else if (plen == 127) {
        if (len < 10)
            return 0;
        plen = 0;
        for (int i = 0; i < 8; i++)
            plen = plen << 8 | p[2 + i];
        n = 10;
    }
    if (f->masked) {
        if (len < n + 4)
            return 0;
        memcpy(f->key, p + n, 4);
        n += 4;
    }
    if (plen > len - n)
        return 0;
    f->len = plen;
    f->hdr_len = n;
    f->data = malloc(plen + 1);
    for (size_t i = 0; i < plen; i++)
        f->data[i] = p[n + i] ^ (f->masked ? f->key[i & 3] : 0);
    return n + plen;
}

void tfr_free(tfr *f)
{
    free(f->data);
    f->data = NULL;
}

size_t tfr_count(const sbuf *out)
{
    size_t cnt = 0, off = 0, n;
    tfr f;

    while ((n = tfr_parse(out->p + off, out->len - off, &f)) > 0) {
        tfr_free(&f);
        off += n;
        cnt++;
    }
    return cnt;
}

static int frames_close(const trec *r, int last)
{
    size_t off = 0, n;
    int code = -1;
    tfr f;

    /* Skip an HTTP response head, if any. */
    if (r->out.len >= 5 && memcmp(r->out.p, "HTTP/", 5) == 0) {
        const char *e = strstr((const char *)r->out.p, "\r\n\r\n");
        if (e == NULL)
            return -1;
        off = (size_t)(e + 4 - (const char *)r->out.p);
    }
    while ((n = tfr_parse(r->out.p + off, r->out.len - off, &f)) > 0) {
        if (f.op == 8 && (code < 0 || last))
            code = f.len >= 2 ? (f.data[0] << 8 | f.data[1]) : f.len == 0 ? 0 : -2;
        tfr_free(&f);
        off += n;
    }
    return code;
}

int tclose_code(const trec *r)
{
    return frames_close(r, 1);
}

int tlast_op(const trec *r)
{
    return frames_close(r, 0);
}

const char *thex(const void *p, size_t len)
{
    static char buf[3 * 64 + 8];
    const uint8_t *s = p;
    size_t i, o = 0;

    for (i = 0; i < len && i < 64; i++)
        o += (size_t)snprintf(buf + o, sizeof(buf) - o, "%02x ", s[i]);
    if (i < len)
        snprintf(buf + o, sizeof(buf) - o, "...");
    return buf;
}

static uint64_t fnv(const void *p, size_t len)
{
    const uint8_t *s = p;
    uint64_t h = 0xcbf29ce484222325ull;

    for (size_t i = 0; i < len; i++)
        h = (h ^ s[i]) * 0x100000001b3ull;
    return h;
}

/* Callbacks: each logs one line. */

static int cb_request(eev_driver *d, const eev_request_arg *q, void *ud)
{
    trec *r = ud;

    r->n_request++;
    sb_reset(&r->req);
    sb_put(&r->req, q->method, q->method_len);
    sb_puts(&r->req, "|");
    sb_put(&r->req, q->target, q->target_len);
    sb_puts(&r->req, "|");
    sb_put(&r->req, q->path, q->path_len);
    sb_puts(&r->req, "|");
    if (q->query)
        sb_put(&r->req, q->query, q->query_len);
    else
        sb_puts(&r->req, "(null)");
    sb_printf(&r->req, "|%d|%d\n", q->minor_version, q->is_websocket);
    for (size_t i = 0; i < q->header_cnt; i++) {
        sb_put(&r->req, q->headers[i].name, q->headers[i].name_len);
        sb_puts(&r->req, ": ");
        sb_put(&r->req, q->headers[i].value, q->headers[i].value_len);
        sb_puts(&r->req, "\n");
    }
    sb_puts(&r->log, "request ");
    sb_put(&r->log, r->req.p, r->req.len);
    if (r->scn && r->scn->http_status && !q->is_websocket) {
        static const char body[] = "hello, http\n";
        r->send_rv = eev_driver_http_reply(d, r->scn->http_status, "Content-Type: text/plain\r\n", body,
                                           sizeof(body) - 1, r->scn->http_close);
    }
    return 0;
}

static void cb_open(eev_driver *d, void *ud)
{
    trec *r = ud;

    r->n_open++;
    sb_puts(&r->log, "open\n");
}

static int cb_message(eev_driver *d, const eev_message_arg *m, void *ud)
{
    trec *r = ud;

    r->n_message++;
    sb_printf(&r->log, "message op=%d len=%zu rsv1=%d h=%016llx\n", (int)m->opcode, m->len, m->rsv1,
              (unsigned long long)(m->data ? fnv(m->data, m->len) : 0));
    if (m->data)
        sb_put(&r->msgs, m->data, m->len);
    if (r->scn && r->scn->echo)
        r->send_rv = eev_driver_send_message(d, m);
    if (r->scn && r->scn->fail_callback)
        return -1;
    return 0;
}

static void cb_ping(eev_driver *d, const uint8_t *p, size_t len, void *ud)
{
    trec *r = ud;

    r->n_ping++;
    sb_printf(&r->log, "ping len=%zu h=%016llx\n", len, (unsigned long long)fnv(p, len));
}

static void cb_pong(eev_driver *d, const uint8_t *p, size_t len, void *ud)
{
    trec *r = ud;

    r->n_pong++;
    sb_printf(&r->log, "pong len=%zu h=%016llx\n", len, (unsigned long long)fnv(p, len));
}

static void cb_close(eev_driver *d, const eev_close_arg *c, void *ud)
{
    trec *r = ud;

    r->n_close++;
    r->close = *c;
    r->close.reason = NULL;
    sb_reset(&r->close_reason);
    sb_put(&r->close_reason, c->reason, c->reason ? c->reason_len : 0);
    sb_printf(&r->log, "close recv=%u sent=%u clean=%d reason_len=%zu\n", c->code_received, c->code_sent,
              c->clean, c->reason_len);
}

static void cb_error(eev_driver *d, const eev_error_arg *e, void *ud)
{
    trec *r = ud;

    if (r->n_error++ == 0) {
        /* The Close (or refusal) must already be queued: count it. */
        r->out_at_first_error = r->out.len + eev_driver_out_len(d);
    }
    r->error_code = e->close_code;
    sb_printf(&r->log, "error %u\n", e->close_code);
}

static const eev_callbacks tcb = {cb_request, cb_open, cb_message, cb_ping, cb_pong, cb_close, cb_error, NULL};

/* Guarded input area: GUARD_LEN writable bytes followed by a PROT_NONE page. */
#define GUARD_LEN (4u << 20)
static uint8_t *guard_base;

static uint8_t *guard_place(const void *p, size_t len)
{
    if (guard_base == NULL) {
        long pg = sysconf(_SC_PAGESIZE);
        uint8_t *m = mmap(NULL, GUARD_LEN + (size_t)pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (m == MAP_FAILED)
            abort();
        if (mprotect(m + GUARD_LEN, (size_t)pg, PROT_NONE) != 0)
            abort();
        guard_base = m;
    }
    if (len > GUARD_LEN)
        abort();
    memcpy(guard_base + GUARD_LEN - len, p, len);
    return guard_base + GUARD_LEN - len;
}

void tdrain(trec *r)
{
    struct iovec iov[8];
    int n;

    while ((n = eev_driver_out_iov(r->d, iov, 8)) > 0) {
        size_t tot = 0;
        for (int i = 0; i < n; i++) {
            sb_put(&r->out, iov[i].iov_base, iov[i].iov_len);
            tot += iov[i].iov_len;
        }
        eev_driver_out_consume(r->d, tot);
    }
}

ssize_t tfeed(trec *r, const void *p, size_t len)
{
    ssize_t rv;

    tdrain(r);
    rv = eev_driver_recv(r->d, guard_place(p, len), len);
    if (rv < 0) {
        r->fatal = 1;
        sb_printf(&r->log, "recv -> %zd\n", rv);
    } else if ((size_t)rv != len) {
        sb_printf(&r->log, "recv consumed %zd of %zu\n", rv, len);
    }
    tdrain(r);
    return rv;
}

void trec_clear(trec *r)
{
    eev_driver *d = r->d;
    const tscn *scn = r->scn;

    sb_free(&r->log);
    sb_free(&r->out);
    sb_free(&r->msgs);
    sb_free(&r->req);
    sb_free(&r->close_reason);
    memset(r, 0, sizeof(*r));
    r->d = d;
    r->scn = scn;
}

static int client_handshake(trec *r)
{
    char key[64], acc[29], resp[512];
    const char *k, *e;

    tdrain(r);
    k = strstr((const char *)r->out.p, "Sec-WebSocket-Key: ");
    if (k == NULL)
        return -1;
    k += strlen("Sec-WebSocket-Key: ");
    e = strstr(k, "\r\n");
    if (e == NULL || (size_t)(e - k) >= sizeof(key))
        return -1;
    memcpy(key, k, (size_t)(e - k));
    key[e - k] = 0;
    if (eev_accept_key(key, strlen(key), acc) != 0)
        return -1;
    snprintf(resp, sizeof(resp),
             "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
             "Sec-WebSocket-Accept: %s\r\n%s\r\n",
             acc, r->scn->resp_extra ? r->scn->resp_extra : "");
    tfeed(r, resp, strlen(resp));
    return r->n_open == 1 ? 0 : -1;
}

int trec_start(trec *r, const tscn *scn)
{
    memset(r, 0, sizeof(*r));
    r->scn = scn;
    if (eev_driver_new(&r->d, &tcb, &scn->opt, r) != 0 || r->d == NULL) {
        ok(0, "eev_driver_new");
        r->d = NULL;
        return -1;
    }
    if (!scn->open)
        return 0;
    if (scn->opt.role == EEV_ROLE_CLIENT) {
        if (client_handshake(r) != 0) {
            ok(0, "client handshake completes");
            return -1;
        }
    } else {
        const char *up = scn->upgrade ? scn->upgrade : treq_upgrade;
        tfeed(r, up, strlen(up));
        if (r->n_open != 1 || r->out.len < 12 || memcmp(r->out.p, "HTTP/1.1 101", 12) != 0) {
            ok(0, "server handshake completes");
            return -1;
        }
    }
    trec_clear(r);
    return 0;
}

void trec_end(trec *r)
{
    if (r->d)
        eev_driver_del(r->d);
    r->d = NULL;
    trec_clear(r);
}

int topen_client(trec *r, const tscn *scn)
{
    return trec_start(r, scn);
}

/* Output with client masks removed (keys are random), for comparison. */
static void norm_out(const sbuf *out, sbuf *dst)
{
    size_t off = 0, n;
    tfr f;

    if (out->len == 0)
        return;
    if (out->len >= 5 && (memcmp(out->p, "HTTP/", 5) == 0 || memcmp(out->p, "GET ", 4) == 0)) {
        const char *e = strstr((const char *)out->p, "\r\n\r\n");
        off = e ? (size_t)(e + 4 - (const char *)out->p) : out->len;
        sb_put(dst, out->p, off);
    }
    while ((n = tfr_parse(out->p + off, out->len - off, &f)) > 0) {
        sb_printf(dst, "[%d %d %d %d %llu]", f.fin, f.rsv, f.op, f.masked, (unsigned long long)f.len);
        sb_put(dst, f.data, f.len);
        tfr_free(&f);
        off += n;
    }
    sb_put(dst, out->p + off, out->len - off);
}

static int same(const trec *a, const trec *b)
{
    sbuf na = {0}, nb = {0};
    int eq;

    norm_out(&a->out, &na);
    norm_out(&b->out, &nb);
    eq = na.len == nb.len && (na.len == 0 || memcmp(na.p, nb.p, na.len) == 0);
    sb_free(&na);
    sb_free(&nb);
    return eq && a->log.len == b->log.len && a->msgs.len == b->msgs.len &&
           (a->log.len == 0 || memcmp(a->log.p, b->log.p, a->log.len) == 0) &&
           (a->msgs.len == 0 || memcmp(a->msgs.p, b->msgs.p, a->msgs.len) == 0);
}

static void diff_note(const char *what, size_t at, const trec *a, const trec *b)
{
    note("%s split at %zu differs", what, at);
    note("whole log:\n%s", a->log.p ? (const char *)a->log.p : "");
    note("split log:\n%s", b->log.p ? (const char *)b->log.p : "");
    note("whole out (%zu): %s", a->out.len, thex(a->out.p, a->out.len));
    note("split out (%zu): %s", b->out.len, thex(b->out.p, b->out.len));
}

void tsplit(const char *name, const tscn *scn, const void *in, size_t len, trec *whole)
{
    const uint8_t *s = in;
    int good = 1;
    size_t step = len <= 2048 ? 1 : len / 512;

    if (trec_start(whole, scn) != 0)
        return;
    tfeed(whole, in, len);

    /* Two pieces at every index (sampled, but always near both ends). */
    for (size_t i = 1; i < len && good; i += (i < 64 || i + 64 > len) ? 1 : step) {
        trec r;
        if (trec_start(&r, scn) != 0) {
            good = 0;
            break;
        }
        tfeed(&r, s, i);
        tfeed(&r, s + i, len - i);
        if (!same(whole, &r)) {
            diff_note(name, i, whole, &r);
            good = 0;
        }
        trec_end(&r);
    }
    ok(good, "%s: two-piece splits match the whole feed", name);

    {
        trec r;
        good = 0;
        if (trec_start(&r, scn) == 0) {
            for (size_t i = 0; i < len; i++)
                tfeed(&r, s + i, 1);
            good = same(whole, &r);
            if (!good)
                diff_note(name, 1, whole, &r);
        }
        trec_end(&r);
        ok(good, "%s: byte-at-a-time matches the whole feed", name);
    }
}

const tscn tsrv = {.opt = {.role = EEV_ROLE_SERVER}, .open = 1};
const tscn tcli = {.opt = {.role = EEV_ROLE_CLIENT, .host = "server.example.com", .path = "/chat"}, .open = 1};

void tfail(const char *name, const tscn *scn, const void *in, size_t len, int code)
{
    trec r;

    tsplit(name, scn, in, len, &r);
    if (r.d == NULL)
        return;
    ok(tclose_code(&r) == code && r.error_code == code && r.n_error == 1 && r.n_message == 0 &&
           !eev_driver_want_read(r.d) && r.n_close == 1 && r.close.code_sent == code && !r.fatal,
       "%s: fails with %d (close frame %d, on_error %d, messages %d, want_read %d, on_close %d sent %u)", name,
       code, tclose_code(&r), r.error_code, r.n_message, eev_driver_want_read(r.d), r.n_close,
       r.close.code_sent);
    trec_end(&r);
}

void tmsg(const char *name, const tscn *scn, const void *in, size_t len, int op, const void *p, size_t plen)
{
    trec r;

    tsplit(name, scn, in, len, &r);
    if (r.d == NULL)
        return;
    ok(r.n_message == 1 && r.n_error == 0 && r.msgs.len == plen && (plen == 0 || memcmp(r.msgs.p, p, plen) == 0) &&
           strstr((const char *)r.log.p, op == 1 ? "message op=1 " : "message op=2 ") != NULL &&
           eev_driver_want_read(r.d) && !r.fatal,
       "%s: one message of %zu bytes delivered (messages %d, errors %d/%d, got %zu bytes)", name, plen,
       r.n_message, r.n_error, r.error_code, r.msgs.len);
    trec_end(&r);
}
