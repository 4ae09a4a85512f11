/*
 * pmd_negotiate.c - the Sec-WebSocket-Extensions header (RFC 6455 §9.1)
 * and permessage-deflate's parameters (RFC 7692 §7.1).
 *
 *   extension-list = 1#extension
 *   extension      = token *( OWS ";" OWS param )
 *   param          = token [ OWS "=" OWS ( token / quoted-string ) ]
 *
 * Several header lines form one list. A syntax error spoils only the
 * element it is in: the server declines that offer and reads the next.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "pmd.h"

#define MAX_PARAMS 8
#define MAX_VALUE 16

struct ext_param {
    const char *name;
    size_t name_len;
    char value[MAX_VALUE]; /* unquoted, NUL-terminated */
    int has_value;
};

struct ext {
    const char *name;
    size_t name_len;
    struct ext_param param[MAX_PARAMS];
    int n;
    int bad; /* syntax error, too many parameters or too long a value */
};

static int tchar(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c && strchr("!#$%&'*+-.^_`|~", c));
}

static const char *ows(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    return p;
}

static const char *token(const char *p, const char *end)
{
    while (p < end && tchar(*p))
        p++;
    return p;
}

/* Skips to the next top-level comma (or end), stepping over quoted strings. */
static const char *to_comma(const char *p, const char *end)
{
    int q = 0;
    for (; p < end; p++) {
        if (q && *p == '\\' && p + 1 < end)
            p++;
        else if (*p == '"')
            q = !q;
        else if (!q && *p == ',')
            break;
    }
    return p;
}

/* A value: token or quoted-string (whose content must also be a token,
 * RFC 6455 §9.1). Returns the end, or NULL when malformed. */
static const char *value(const char *p, const char *end, char out[MAX_VALUE])
{
    size_t n = 0;

    if (p < end && *p == '"') {
        for (p++; p < end && *p != '"'; p++) {
            if (*p == '\\' && ++p == end)
                return NULL;
            if (!tchar(*p) || n + 1 >= MAX_VALUE)
                return NULL;
            out[n++] = *p;
        }
        if (p == end)
            return NULL;
        p++;
    } else {
        const char *e = token(p, end);
        if (e == p || (size_t)(e - p) >= MAX_VALUE)
            return NULL;
        memcpy(out, p, (size_t)(e - p));
        n = (size_t)(e - p);
        p = e;
    }
    out[n] = 0;
    return n ? p : NULL;
}

/* Parses one list element at p; returns where the next one starts. */
static const char *ext_parse(const char *p, const char *end, struct ext *e)
{
    memset(e, 0, sizeof(*e));
    e->name = p;
    p = token(p, end);
    e->name_len = (size_t)(p - e->name);
    if (!e->name_len)
        goto bad;
    for (;;) {
        p = ows(p, end);
        if (p == end || *p == ',')
            return p;
        if (*p != ';')
            goto bad;
        p = ows(p + 1, end);
        if (e->n == MAX_PARAMS)
            goto bad;
        struct ext_param *pa = &e->param[e->n++];
        pa->name = p;
        p = token(p, end);
        pa->name_len = (size_t)(p - pa->name);
        if (!pa->name_len)
            goto bad;
        const char *q = ows(p, end);
        if (q < end && *q == '=') {
            const char *v = value(ows(q + 1, end), end, pa->value);
            if (!v) {
                p = q + 1;
                goto bad;
            }
            p = v;
            pa->has_value = 1;
        }
    }
bad:
    e->bad = 1;
    return to_comma(p, end);
}

/* Calls fn for each element of every header called name; stops when fn
 * returns non-zero and returns that. */
static int ext_each(const http_head *h, int (*fn)(const struct ext *, void *), void *arg)
{
    for (size_t i = 0; i < h->req.header_cnt; i++) {
        const eev_header *hd = &h->headers[i];
        if (hd->name_len != 24 || strncasecmp(hd->name, "sec-websocket-extensions", 24) != 0)
            continue;
        const char *p = hd->value, *end = p + hd->value_len;
        while (p < end) {
            p = ows(p, end);
            if (p < end && *p == ',') {
                p++;
                continue; /* empty elements are allowed in a #list */
            }
            if (p == end)
                break;
            struct ext e;
            p = ext_parse(p, end, &e);
            int rv = fn(&e, arg);
            if (rv)
                return rv;
        }
    }
    return 0;
}

static int is(const char *s, size_t n, const char *lit)
{
    return n == strlen(lit) && strncasecmp(s, lit, n) == 0;
}

/* Window bits: a decimal 8-15 without leading zeros (RFC 7692 §7.1.2). */
static int bits_value(const char *v)
{
    if (v[0] == '8' || v[0] == '9')
        return v[1] ? -1 : v[0] - '0';
    if (v[0] == '1' && v[1] >= '0' && v[1] <= '5' && !v[2])
        return 10 + v[1] - '0';
    return -1;
}

/* What an offer or response says. -1: absent; client_max_window_bits
 * without a value is 0. */
struct pmd_said {
    int s_nct, c_nct, s_bits, c_bits;
};

/* Reads the parameters of a permessage-deflate element. Returns 0, or -1
 * for an unknown, duplicate, malformed or out-of-range one. value_ok_c:
 * client_max_window_bits may come without a value (in an offer). */
static int read_params(const struct ext *e, struct pmd_said *s, int c_bits_bare_ok)
{
    *s = (struct pmd_said){-1, -1, -1, -1};
    if (e->bad)
        return -1;
    for (int i = 0; i < e->n; i++) {
        const struct ext_param *pa = &e->param[i];
        int *slot;
        if (is(pa->name, pa->name_len, "server_no_context_takeover"))
            slot = &s->s_nct;
        else if (is(pa->name, pa->name_len, "client_no_context_takeover"))
            slot = &s->c_nct;
        else if (is(pa->name, pa->name_len, "server_max_window_bits"))
            slot = &s->s_bits;
        else if (is(pa->name, pa->name_len, "client_max_window_bits"))
            slot = &s->c_bits;
        else
            return -1;
        if (*slot != -1)
            return -1; /* duplicate */
        if (slot == &s->s_nct || slot == &s->c_nct) {
            if (pa->has_value)
                return -1;
            *slot = 1;
        } else if (pa->has_value) {
            if ((*slot = bits_value(pa->value)) < 0)
                return -1;
        } else {
            if (slot != &s->c_bits || !c_bits_bare_ok)
                return -1;
            *slot = 0;
        }
    }
    return 0;
}

static int bits_or(int v, int dflt)
{
    return v >= 8 && v <= 15 ? v : dflt;
}

struct accept_arg {
    const eev_deflate_options *o;
    struct pmd_params *out;
};

static int offer_cb(const struct ext *e, void *arg)
{
    struct accept_arg *a = arg;
    const eev_deflate_options *o = a->o;
    struct pmd_params *p = a->out;
    struct pmd_said s;

    if (!is(e->name, e->name_len, "permessage-deflate") || read_params(e, &s, 1) < 0)
        return 0; /* declined: try the next offer */
    memset(p, 0, sizeof(*p));
    p->s_nct = s.s_nct == 1 || o->server_no_context_takeover;
    p->c_nct = s.c_nct == 1 || o->client_no_context_takeover;
    /* Our window is what the client allows and we prefer; the client's
     * inflater must expect the announced value, or 15. */
    int ours = bits_or(o->server_max_window_bits, 15);
    p->s_bits = 15;
    if (s.s_bits > 0) {
        p->s_bits = (uint8_t)(s.s_bits < ours ? s.s_bits : ours);
        p->s_bits_sent = 1;
    }
    /* The client's window can be limited only when it offered the
     * parameter (§7.1.2.2); then it also must not exceed ours for the
     * echo to pass its bytes through (echo_only). */
    p->c_bits = 15;
    if (s.c_bits >= 0) {
        int c = bits_or(o->client_max_window_bits, 15);
        if (s.c_bits > 0 && s.c_bits < c)
            c = s.c_bits;
        if (o->echo_only && c > p->s_bits)
            c = p->s_bits;
        p->c_bits = (uint8_t)c;
        p->c_bits_sent = 1;
    }
    /* If we reset our context, the client's messages must be
     * self-contained for an echo to pass them through (§7.1.1.2 lets the
     * server ask for it). */
    if (o->echo_only && p->s_nct)
        p->c_nct = 1;
    return 1;
}

int pmd_accept_offer(const http_head *h, const eev_deflate_options *o, struct pmd_params *out)
{
    struct accept_arg a = {o, out};

    if (!o->enable)
        return 0;
    return ext_each(h, offer_cb, &a);
}

size_t pmd_format_response(const struct pmd_params *p, char *buf, size_t cap)
{
    char sb[40] = "", cb[40] = "";

    if (p->s_bits_sent)
        snprintf(sb, sizeof(sb), "; server_max_window_bits=%u", p->s_bits);
    if (p->c_bits_sent)
        snprintf(cb, sizeof(cb), "; client_max_window_bits=%u", p->c_bits);
    int n = snprintf(buf, cap, "Sec-WebSocket-Extensions: permessage-deflate%s%s%s%s\r\n",
                     p->s_nct ? "; server_no_context_takeover" : "",
                     p->c_nct ? "; client_no_context_takeover" : "", sb, cb);
    return n < 0 || (size_t)n >= cap ? 0 : (size_t)n;
}

size_t pmd_format_offer(const eev_deflate_options *o, char *buf, size_t cap)
{
    char sb[40] = "", cb[40] = "; client_max_window_bits";
    int c = bits_or(o->client_max_window_bits, 15);

    if (bits_or(o->server_max_window_bits, 0))
        snprintf(sb, sizeof(sb), "; server_max_window_bits=%d", o->server_max_window_bits);
    if (c < 15)
        snprintf(cb, sizeof(cb), "; client_max_window_bits=%d", c);
    int n = snprintf(buf, cap, "Sec-WebSocket-Extensions: permessage-deflate%s%s%s%s\r\n",
                     o->server_no_context_takeover ? "; server_no_context_takeover" : "",
                     o->client_no_context_takeover ? "; client_no_context_takeover" : "", sb, cb);
    return n < 0 || (size_t)n >= cap ? 0 : (size_t)n;
}

struct check_arg {
    const eev_deflate_options *o;
    struct pmd_params *out;
    int count;
    const char *why;
};

static int response_cb(const struct ext *e, void *arg)
{
    struct check_arg *a = arg;
    const eev_deflate_options *o = a->o;
    struct pmd_params *p = a->out;
    struct pmd_said s;

    if (++a->count > 1)
        return a->why = "server chose more than one extension", -1;
    if (!is(e->name, e->name_len, "permessage-deflate"))
        return a->why = "server chose an extension we did not offer", -1;
    if (read_params(e, &s, 0) < 0)
        return a->why = "bad permessage-deflate parameters in the response", -1;
    int asked_s = bits_or(o->server_max_window_bits, 0);
    int offered_c = bits_or(o->client_max_window_bits, 15);
    if (s.s_bits > 0 && asked_s && s.s_bits > asked_s)
        return a->why = "server_max_window_bits above what we asked", -1;
    if (s.s_bits < 0 && asked_s)
        return a->why = "server ignored our server_max_window_bits", -1;
    if (s.c_bits > offered_c)
        return a->why = "client_max_window_bits above what we offered", -1;
    if (o->server_no_context_takeover && s.s_nct != 1)
        return a->why = "server ignored our server_no_context_takeover", -1;
    memset(p, 0, sizeof(*p));
    p->s_bits = (uint8_t)(s.s_bits > 0 ? s.s_bits : 15);
    p->c_bits = (uint8_t)(s.c_bits > 0 ? s.c_bits : offered_c);
    p->s_nct = s.s_nct == 1;
    p->c_nct = s.c_nct == 1 || o->client_no_context_takeover;
    return 0;
}

int pmd_check_response(const http_head *h, const eev_deflate_options *o, struct pmd_params *out,
                       const char **why)
{
    struct check_arg a = {o, out, 0, NULL};

    if (ext_each(h, response_cb, &a) < 0) {
        *why = a.why;
        return -1;
    }
    if (a.count && !o->enable) {
        *why = "server chose an extension we did not offer";
        return -1;
    }
    return a.count > 0;
}
