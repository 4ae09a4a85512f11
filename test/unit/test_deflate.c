/*
 * test_deflate.c - permessage-deflate (RFC 7692): negotiation in both
 * roles, the §7.2.3 sample messages at every split, RSV1 rules, inflated
 * text validation, bombs against every limit (with the largest single
 * allocation watched through link-time malloc wrapping), the echo that
 * passes compressed bytes through, and driver-to-driver round trips over
 * every window and context-takeover combination.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "util.h"

/* ---- the largest single allocation the driver (and zlib, through the
 * driver's zalloc) asked for ---- */
static size_t max_alloc;
static size_t big_allocs; /* malloc/realloc calls of BIG_ALLOC bytes or more */
static size_t all_allocs; /* malloc/realloc calls */
#define BIG_ALLOC 7000    /* zlib's inflate state is ~7 KiB, its window 2^bits */
void *__real_malloc(size_t n);
void *__real_realloc(void *p, size_t n);
void *__wrap_malloc(size_t n);
void *__wrap_realloc(void *p, size_t n);

void *__wrap_malloc(size_t n)
{
    if (n > max_alloc)
        max_alloc = n;
    big_allocs += n >= BIG_ALLOC;
    all_allocs++;
    return __real_malloc(n);
}

void *__wrap_realloc(void *p, size_t n)
{
    if (n > max_alloc)
        max_alloc = n;
    big_allocs += n >= BIG_ALLOC;
    all_allocs++;
    return __real_realloc(p, n);
}

#define KEY "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
#define REQ(ext) "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" KEY \
                 "Sec-WebSocket-Version: 13\r\n" ext "\r\n"
#define PMD "Sec-WebSocket-Extensions: "

/* ---- negotiation, server role ---- */

/* Feeds req to a fresh server driver with deflate options o; checks the
 * upgrade succeeded and the response's extension line is want (NULL:
 * none). */
static void negotiate(const char *name, const eev_deflate_options *o, const char *req, const char *want,
                      int want_pass)
{
    tscn scn = {.opt = {.role = EEV_ROLE_SERVER}};
    trec r;
    eev_deflate_params dp;

    scn.opt.deflate = *o;
    if (trec_start(&r, &scn) != 0)
        return;
    tfeed(&r, req, strlen(req));
    sb_put(&r.out, "", 1);
    const char *out = (const char *)r.out.p;
    const char *ext = strstr(out, PMD);
    char got[256] = "";
    if (ext) {
        ext += strlen(PMD);
        const char *e = strstr(ext, "\r\n");
        snprintf(got, sizeof(got), "%.*s", (int)(e - ext), ext);
    }
    int negotiated = eev_driver_deflate(r.d, &dp);
    ok(r.n_open == 1 && strncmp(out, "HTTP/1.1 101", 12) == 0 &&
           (want ? strcmp(got, want) == 0 && negotiated : !ext && !negotiated) &&
           (!want || dp.passthrough == want_pass),
       "%s: 101 with %s (got '%s', passthrough %d)", name, want ? want : "no extension", got,
       negotiated ? dp.passthrough : -1);
    trec_end(&r);
}

static void test_negotiation(void)
{
    eev_deflate_options on = {.enable = 1}, echo = {.enable = 1, .echo_only = 1};
    eev_deflate_options nct = {.enable = 1, .echo_only = 1, .server_no_context_takeover = 1,
                               .client_no_context_takeover = 1};
    eev_deflate_options small = {.enable = 1, .echo_only = 1, .server_max_window_bits = 12,
                                 .client_max_window_bits = 11};
    eev_deflate_options off = {0};

    note("negotiation, server role (RFC 7692 §5, §7.1; RFC 6455 §9.1)");
    negotiate("plain offer", &echo, REQ(PMD "permessage-deflate\r\n"), "permessage-deflate", 1);
    negotiate("Chrome's offer", &echo, REQ(PMD "permessage-deflate; client_max_window_bits\r\n"),
              "permessage-deflate; client_max_window_bits=15", 1);
    negotiate("disabled", &off, REQ(PMD "permessage-deflate\r\n"), NULL, 0);
    negotiate("no offer", &echo, REQ(""), NULL, 0);
    negotiate("other extension only", &echo, REQ(PMD "x-webkit-deflate-frame\r\n"), NULL, 0);
    negotiate("second header", &echo, REQ(PMD "foo\r\n" PMD "permessage-deflate\r\n"), "permessage-deflate", 1);
    negotiate("case-insensitive names", &echo, REQ(PMD "PerMessage-Deflate; Client_No_Context_Takeover\r\n"),
              "permessage-deflate; client_no_context_takeover", 1);
    negotiate("server_max_window_bits=10 alone: client window cannot shrink", &echo,
              REQ(PMD "permessage-deflate; server_max_window_bits=10\r\n"),
              "permessage-deflate; server_max_window_bits=10", 0);
    negotiate("server_max_window_bits=10 + client_max_window_bits: echo asks the client for 10", &echo,
              REQ(PMD "permessage-deflate; server_max_window_bits=10; client_max_window_bits\r\n"),
              "permessage-deflate; server_max_window_bits=10; client_max_window_bits=10", 1);
    negotiate("same, not echo_only: the client keeps 15", &on,
              REQ(PMD "permessage-deflate; server_max_window_bits=10; client_max_window_bits\r\n"),
              "permessage-deflate; server_max_window_bits=10; client_max_window_bits=15", 0);
    negotiate("server_no_context_takeover: echo asks client_no_context_takeover too", &echo,
              REQ(PMD "permessage-deflate; server_no_context_takeover\r\n"),
              "permessage-deflate; server_no_context_takeover; client_no_context_takeover", 1);
    negotiate("server_no_context_takeover, not echo_only", &on,
              REQ(PMD "permessage-deflate; server_no_context_takeover\r\n"),
              "permessage-deflate; server_no_context_takeover", 0);
    negotiate("client_no_context_takeover", &echo, REQ(PMD "permessage-deflate; client_no_context_takeover\r\n"),
              "permessage-deflate; client_no_context_takeover", 1);
    negotiate("all four", &echo,
              REQ(PMD "permessage-deflate; server_no_context_takeover; client_no_context_takeover; "
                      "server_max_window_bits=9; client_max_window_bits=12\r\n"),
              "permessage-deflate; server_no_context_takeover; client_no_context_takeover; "
              "server_max_window_bits=9; client_max_window_bits=9", 1);
    negotiate("owner wants no context takeover", &nct, REQ(PMD "permessage-deflate\r\n"),
              "permessage-deflate; server_no_context_takeover; client_no_context_takeover", 1);
    negotiate("owner windows 12/11, client offers 14 and any", &small,
              REQ(PMD "permessage-deflate; server_max_window_bits=14; client_max_window_bits\r\n"),
              "permessage-deflate; server_max_window_bits=12; client_max_window_bits=11", 1);
    negotiate("owner windows, client offers client 9", &small,
              REQ(PMD "permessage-deflate; client_max_window_bits=9\r\n"),
              "permessage-deflate; client_max_window_bits=9", 1);
    negotiate("quoted value", &echo, REQ(PMD "permessage-deflate; client_max_window_bits=\"10\"\r\n"),
              "permessage-deflate; client_max_window_bits=10", 1);
    negotiate("spaces around = and ;", &echo, REQ(PMD "permessage-deflate ;client_max_window_bits = 11 \r\n"),
              "permessage-deflate; client_max_window_bits=11", 1);
    negotiate("first acceptable of several offers", &echo,
              REQ(PMD "permessage-deflate; foo=1, permessage-deflate; server_max_window_bits=16, "
                      "permessage-deflate; client_max_window_bits=12, permessage-deflate\r\n"),
              "permessage-deflate; client_max_window_bits=12", 1);
    negotiate("bad element then a good one", &echo, REQ(PMD "permessage-deflate; a=\"x,y\"; =, permessage-deflate\r\n"),
              "permessage-deflate", 1);
    static const char *const bad[] = {
        "permessage-deflate; foo",
        "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
        "permessage-deflate; client_max_window_bits; client_max_window_bits=10",
        "permessage-deflate; server_max_window_bits",
        "permessage-deflate; server_max_window_bits=7",
        "permessage-deflate; server_max_window_bits=16",
        "permessage-deflate; server_max_window_bits=08",
        "permessage-deflate; server_max_window_bits=1 0",
        "permessage-deflate; client_max_window_bits=0",
        "permessage-deflate; client_max_window_bits=\"1 0\"",
        "permessage-deflate; client_max_window_bits=\"10",
        "permessage-deflate; server_no_context_takeover=1",
        "permessage-deflate; client_no_context_takeover=\"\"",
        "permessage-deflate;",
        "permessage-deflate;;",
        "permessage-deflate x",
        "permessage-deflate; a; b; c; d; e; f; g; h; i",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char req[512], name[160];
        snprintf(req, sizeof(req), REQ(PMD "%s\r\n"), bad[i]);
        snprintf(name, sizeof(name), "declined: %s", bad[i]);
        negotiate(name, &echo, req, NULL, 0);
    }
}

/* ---- negotiation, client role ---- */

static void client_case(const char *name, const eev_deflate_options *o, const char *resp_ext, int want_open,
                        const char *want_offer)
{
    tscn scn = {.opt = {.role = EEV_ROLE_CLIENT, .host = "h"}, .open = 0, .resp_extra = resp_ext};
    trec r;

    scn.opt.deflate = *o;
    if (trec_start(&r, &scn) != 0)
        return;
    tdrain(&r);
    sb_put(&r.out, "", 1);
    int offer_ok = !want_offer || strstr((const char *)r.out.p, want_offer) != NULL;
    /* Answer as a server would, with resp_ext. */
    char key[32] = "", acc[29], resp[512];
    const char *k = strstr((const char *)r.out.p, "Sec-WebSocket-Key: ");
    if (k)
        memcpy(key, k + 19, 24);
    eev_accept_key(key, 24, acc);
    snprintf(resp, sizeof(resp),
             "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
             "Sec-WebSocket-Accept: %s\r\n%s\r\n", acc, resp_ext ? resp_ext : "");
    tfeed(&r, resp, strlen(resp));
    ok(offer_ok && (want_open ? r.n_open == 1 && eev_driver_deflate(r.d, NULL) == (resp_ext != NULL)
                              : r.n_open == 0 && r.n_error == 1),
       "client: %s (opened %d, errors %d)", name, r.n_open, r.n_error);
    trec_end(&r);
}

static void test_client_negotiation(void)
{
    eev_deflate_options on = {.enable = 1}, off = {0};
    eev_deflate_options ask = {.enable = 1, .server_max_window_bits = 10, .client_max_window_bits = 12,
                               .server_no_context_takeover = 1};

    note("negotiation, client role");
    client_case("offers client_max_window_bits", &on, NULL, 1, PMD "permessage-deflate; client_max_window_bits\r\n");
    client_case("offer with all wishes", &ask, NULL, 1,
                PMD "permessage-deflate; server_no_context_takeover; server_max_window_bits=10; "
                    "client_max_window_bits=12\r\n");
    client_case("accepted plain", &on, PMD "permessage-deflate\r\n", 1, NULL);
    client_case("accepted with parameters", &on,
                PMD "permessage-deflate; server_no_context_takeover; client_no_context_takeover; "
                    "server_max_window_bits=9; client_max_window_bits=10\r\n", 1, NULL);
    client_case("declined (no header)", &on, NULL, 1, NULL);
    client_case("not offered but chosen", &off, PMD "permessage-deflate\r\n", 0, NULL);
    client_case("unknown extension chosen", &on, PMD "foo\r\n", 0, NULL);
    client_case("two extensions chosen", &on, PMD "permessage-deflate, permessage-deflate\r\n", 0, NULL);
    client_case("unknown parameter", &on, PMD "permessage-deflate; foo\r\n", 0, NULL);
    client_case("client_max_window_bits without value", &on, PMD "permessage-deflate; client_max_window_bits\r\n",
                0, NULL);
    client_case("server window above what we asked", &ask,
                PMD "permessage-deflate; server_no_context_takeover; server_max_window_bits=11\r\n", 0, NULL);
    client_case("client window above what we offered", &ask,
                PMD "permessage-deflate; server_no_context_takeover; server_max_window_bits=10; "
                    "client_max_window_bits=13\r\n", 0, NULL);
    client_case("ignored our server_no_context_takeover", &ask,
                PMD "permessage-deflate; server_max_window_bits=10\r\n", 0, NULL);
}

/* ---- RFC 7692 §7.2.3 samples ---- */

static const uint8_t s_hello[] = {0xc1, 0x07, 0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00};
static const uint8_t s_hello_frag[] = {0x41, 0x03, 0xf2, 0x48, 0xcd, 0x80, 0x04, 0xc9, 0xc9, 0x07, 0x00};
static const uint8_t s_hello_again[] = {0xc1, 0x05, 0xf2, 0x00, 0x11, 0x00, 0x00}; /* shares the window */
static const uint8_t s_stored[] = {0xc1, 0x0b, 0x00, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x00};
static const uint8_t s_bfinal[] = {0xc1, 0x08, 0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00};
static const uint8_t s_two_blocks[] = {0xc1, 0x0d, 0xf2, 0x48, 0x05, 0x00, 0x00, 0x00, 0xff,
                                       0xff, 0xca, 0xc9, 0xc9, 0x07, 0x00};
static const uint8_t s_empty[] = {0xc1, 0x01, 0x00};

/* Re-encodes the unmasked server-to-client frames in p as masked frames
 * from a client (same bits). */
static void masked(sbuf *out, const uint8_t *p, size_t len)
{
    size_t off = 0, n;
    tfr f;

    while ((n = tfr_parse(p + off, len - off, &f)) > 0) {
        sb_frame(out, (uint8_t)(p[off] & 0xF0) | (uint8_t)f.op, 1, f.data, f.len);
        tfr_free(&f);
        off += n;
    }
}

/* The owner's shared streams, as echo-ev passes them to every driver. */
static eev_deflate_shared *shared;

static tscn srv_deflate(int echo, const char *ext)
{
    static char reqs[8][512];
    static int next;
    char *req = reqs[next++ & 7];
    tscn s = {.opt = {.role = EEV_ROLE_SERVER, .deflate = {.enable = 1, .echo_only = echo, .shared = shared}},
              .open = 1, .echo = echo};
    snprintf(req, 512, REQ(PMD "%s\r\n"), ext);
    s.upgrade = req;
    return s;
}

static tscn cli_deflate(const char *resp)
{
    static char exts[8][256];
    static int next;
    char *e = exts[next++ & 7];
    tscn s = {.opt = {.role = EEV_ROLE_CLIENT, .host = "h", .deflate = {.enable = 1}}, .open = 1};
    snprintf(e, 256, PMD "%s\r\n", resp);
    s.resp_extra = e;
    return s;
}

static void sample(const char *name, const uint8_t *p, size_t len, const char *want)
{
    sbuf m = {0};
    char n[128];
    tscn cli = cli_deflate("permessage-deflate");
    tscn srv = srv_deflate(0, "permessage-deflate");

    snprintf(n, sizeof(n), "client: %s", name);
    tmsg(n, &cli, p, len, 1, want, strlen(want));
    masked(&m, p, len);
    snprintf(n, sizeof(n), "server: %s", name);
    tmsg(n, &srv, m.p, m.len, 1, want, strlen(want));
    /* Client resets context: the shared inflate stream, and a private copy
     * for a message split across reads or frames. */
    tscn nct = srv_deflate(0, "permessage-deflate; client_no_context_takeover");
    snprintf(n, sizeof(n), "server, no context takeover: %s", name);
    tmsg(n, &nct, m.p, m.len, 1, want, strlen(want));
    sb_free(&m);
}

/* Inflates a compressed payload with a fresh raw inflater (the test's
 * own, not the driver's). Returns the length or -1. */
static long inflate_test(const uint8_t *p, size_t len, uint8_t *out, size_t cap)
{
    z_stream s = {0};
    uint8_t *in = malloc(len + 4);
    memcpy(in, p, len);
    memcpy(in + len, "\x00\x00\xff\xff", 4);
    inflateInit2(&s, -15);
    s.next_in = in;
    s.avail_in = (uInt)len + 4;
    s.next_out = out;
    s.avail_out = (uInt)cap;
    int rv = inflate(&s, Z_SYNC_FLUSH);
    long n = rv == Z_OK || rv == Z_STREAM_END || rv == Z_BUF_ERROR ? (long)(cap - s.avail_out) : -1;
    inflateEnd(&s);
    free(in);
    return n;
}

static void test_samples(void)
{
    trec r;
    sbuf in = {0}, all = {0};
    tfr f;

    note("RFC 7692 §7.2.3 sample messages, both roles, at every split");
    sample("Hello (§7.2.3.1)", s_hello, sizeof(s_hello), "Hello");
    sample("fragmented Hello (§7.2.3.1)", s_hello_frag, sizeof(s_hello_frag), "Hello");
    sample("stored block (§7.2.3.3)", s_stored, sizeof(s_stored), "Hello");
    sample("BFINAL set (§7.2.3.4)", s_bfinal, sizeof(s_bfinal), "Hello");
    sample("two DEFLATE blocks (§7.2.3.5)", s_two_blocks, sizeof(s_two_blocks), "Hello");
    sample("empty message (§7.2.3.6)", s_empty, sizeof(s_empty), "");

    /* §7.2.3.2: the second Hello refers to the first through the window. */
    sb_put(&all, s_hello, sizeof(s_hello));
    sb_put(&all, s_hello_again, sizeof(s_hello_again));
    tscn cli = cli_deflate("permessage-deflate");
    tsplit("client: Hello twice, window shared (§7.2.3.2)", &cli, all.p, all.len, &r);
    ok(r.n_message == 2 && r.msgs.len == 10 && memcmp(r.msgs.p, "HelloHello", 10) == 0 && r.n_error == 0,
       "client: both Hellos delivered");
    trec_end(&r);
    masked(&in, all.p, all.len);
    tscn srv = srv_deflate(0, "permessage-deflate");
    tsplit("server: Hello twice, window shared", &srv, in.p, in.len, &r);
    ok(r.n_message == 2 && r.msgs.len == 10 && memcmp(r.msgs.p, "HelloHello", 10) == 0, "server: both delivered");
    trec_end(&r);
    /* With client_no_context_takeover agreed the reference is invalid. */
    tscn srv_nct = srv_deflate(0, "permessage-deflate; client_no_context_takeover");
    tsplit("server: window reference after client_no_context_takeover", &srv_nct, in.p, in.len, &r);
    ok(r.n_message == 1 && r.error_code == 1007 && tclose_code(&r) == 1007,
       "server: second message fails with 1007 (messages %d, error %d)", r.n_message, r.error_code);
    trec_end(&r);

    /* The echo passes the compressed bytes through: same payload, RSV1,
     * unmasked; fragmented input comes back as one frame. */
    tscn echo = srv_deflate(1, "permessage-deflate");
    sb_reset(&in);
    masked(&in, s_hello_frag, sizeof(s_hello_frag));
    masked(&in, s_hello_again, sizeof(s_hello_again));
    tsplit("server echo: fragmented Hello then a window reference", &echo, in.p, in.len, &r);
    size_t off = tfr_parse(r.out.p, r.out.len, &f);
    ok(off && f.fin && f.rsv == 4 && f.op == 1 && !f.masked && f.len == 7 &&
           memcmp(f.data, s_hello_frag + 2, 3) == 0 && memcmp(f.data + 3, s_hello_frag + 7, 4) == 0,
       "echo 1: the received compressed bytes, one frame, RSV1");
    tfr_free(&f);
    size_t n2 = off ? tfr_parse(r.out.p + off, r.out.len - off, &f) : 0;
    ok(n2 && f.rsv == 4 && f.len == 5 && memcmp(f.data, s_hello_again + 2, 5) == 0,
       "echo 2: passed through too (both sides keep context)");
    if (n2)
        tfr_free(&f);
    ok(r.n_message == 2 && strstr((const char *)r.log.p, "len=5 rsv1=1 h=0000000000000000") != NULL,
       "echo_only: on_message gets data NULL, len 5");
    trec_end(&r);

    /* Not passable (server resets context, client keeps it): re-deflated. */
    tscn redo = srv_deflate(0, "permessage-deflate; server_no_context_takeover");
    redo.echo = 1;
    sb_reset(&in);
    masked(&in, s_hello, sizeof(s_hello));
    masked(&in, s_hello_again, sizeof(s_hello_again));
    tsplit("server echo, server_no_context_takeover: compressed again", &redo, in.p, in.len, &r);
    off = tfr_parse(r.out.p, r.out.len, &f);
    uint8_t out[64];
    ok(off && f.rsv == 4 && inflate_test(f.data, f.len, out, sizeof(out)) == 5 && memcmp(out, "Hello", 5) == 0,
       "echo 1 inflates alone to Hello");
    if (off)
        tfr_free(&f);
    n2 = off ? tfr_parse(r.out.p + off, r.out.len - off, &f) : 0;
    ok(n2 && f.rsv == 4 && inflate_test(f.data, f.len, out, sizeof(out)) == 5 && memcmp(out, "Hello", 5) == 0,
       "echo 2 inflates alone to Hello (no context taken over)");
    if (n2)
        tfr_free(&f);
    trec_end(&r);

    /* An uncompressed message on a deflate connection comes back so. */
    sb_reset(&in);
    sb_frame(&in, 0x81, 1, "plain", 5);
    tsplit("server echo: uncompressed message", &echo, in.p, in.len, &r);
    ok(tfr_parse(r.out.p, r.out.len, &f) && f.rsv == 0 && f.len == 5 && memcmp(f.data, "plain", 5) == 0,
       "uncompressed echo stays uncompressed");
    tfr_free(&f);
    trec_end(&r);
    sb_free(&in);
    sb_free(&all);
}

/* ---- RSV1 rules and inflated text ---- */

static void test_rsv_rules(void)
{
    sbuf in = {0};
    tscn srv = srv_deflate(0, "permessage-deflate");

    note("RSV1 rules (RFC 7692 §6) and UTF-8 on inflated text");
    sb_frame(&in, 0xc1, 1, s_hello + 2, 7);
    tfail("RSV1 without the extension", &tsrv, in.p, in.len, 1002);
    sb_reset(&in);
    sb_frame(&in, 0x41, 1, s_hello_frag + 2, 3);
    sb_frame(&in, 0xc0, 1, s_hello_frag + 7, 4);
    tfail("RSV1 on a continuation frame", &srv, in.p, in.len, 1002);
    sb_reset(&in);
    sb_frame(&in, 0xc9, 1, "", 0);
    tfail("RSV1 on a ping", &srv, in.p, in.len, 1002);
    sb_reset(&in);
    sb_frame(&in, 0xc8, 1, "\x03\xe8", 2);
    tfail("RSV1 on a close", &srv, in.p, in.len, 1002);
    sb_reset(&in);
    sb_frame(&in, 0xa1, 1, "x", 1);
    tfail("RSV2 with deflate negotiated", &srv, in.p, in.len, 1002);
    sb_reset(&in);
    sb_frame(&in, 0xc1, 1, "\xff\xff\xff", 3);
    tfail("corrupt DEFLATE data", &srv, in.p, in.len, 1007);

    /* Invalid UTF-8 fails as soon as it is inflated: one frame of three
     * that declares a message whose rest never arrives. */
    uint8_t bad[1024], z[2048];
    memset(bad, 'a', sizeof(bad));
    bad[10] = 0xff;
    z_stream s = {0};
    deflateInit2(&s, 6, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY);
    s.next_in = bad;
    s.avail_in = sizeof(bad);
    s.next_out = z;
    s.avail_out = sizeof(z);
    deflate(&s, Z_SYNC_FLUSH);
    size_t zl = sizeof(z) - s.avail_out;
    deflateEnd(&s);
    sb_reset(&in);
    sb_frame(&in, 0x41, 1, z, zl - 4);
    sb_frame_header(&in, 0x80, 1, 1000);
    tfail("invalid UTF-8 inside compressed text fails before the message ends", &srv, in.p, in.len, 1007);
    sb_free(&in);
}

/* ---- bombs ---- */

/* Compresses n zero bytes (ratio about 1000:1) into a malloc'd buffer. */
static uint8_t *bomb(size_t n, size_t *zl)
{
    z_stream s = {0};
    size_t cap = n / 500 + 1024;
    uint8_t *out = malloc(cap), *zeros = calloc(1, 1 << 20);
    deflateInit2(&s, 9, Z_DEFLATED, -15, 9, Z_DEFAULT_STRATEGY);
    s.next_out = out;
    s.avail_out = (uInt)cap;
    for (size_t done = 0; done < n;) {
        size_t k = n - done < (1u << 20) ? n - done : (1u << 20);
        s.next_in = zeros;
        s.avail_in = (uInt)k;
        deflate(&s, done + k == n ? Z_SYNC_FLUSH : Z_NO_FLUSH);
        done += k;
    }
    *zl = cap - s.avail_out - 4;
    deflateEnd(&s);
    free(zeros);
    return out;
}

/* Feeds everything, again and again while the driver returns early. */
static void feed_all(trec *r, const uint8_t *p, size_t len)
{
    for (size_t off = 0; off < len;) {
        ssize_t n = tfeed(r, p + off, len - off);
        off += n > 0 ? (size_t)n : len;
    }
}

static void bomb_case(size_t limit, size_t inflated, int echo_only, int frags, int op, int nct)
{
    size_t zl;
    uint8_t *z = bomb(inflated, &zl);
    sbuf in = {0};
    char name[160];
    /* (no context takeover: inflated on the shared stream, held privately
     * between frames) */
    tscn srv = srv_deflate(echo_only, nct ? "permessage-deflate; client_no_context_takeover" : "permessage-deflate");

    srv.opt.max_message_size = limit;
    srv.echo = 1;
    size_t step = (zl + (size_t)frags - 1) / (size_t)frags;
    for (int i = 0; i < frags; i++) {
        size_t a = (size_t)i * step, b = a + step > zl ? zl : a + step;
        uint8_t b0 = (uint8_t)((i == 0 ? (0x40 | op) : 0) | (i == frags - 1 ? 0x80 : 0));
        sb_frame(&in, b0, 1, z + a, b - a);
    }
    snprintf(name, sizeof(name), "bomb %zu:%zu (%.0f:1) vs limit %zu, %s, %d frame(s), %s%s", inflated, zl,
             (double)inflated / (double)zl, limit, echo_only ? "echo_only" : "kept", frags,
             op == 1 ? "text" : "binary", nct ? ", no context takeover" : "");
    trec r;
    max_alloc = 0;
    if (trec_start(&r, &srv) == 0) {
        feed_all(&r, in.p, in.len);
        ok(r.error_code == 1009 && tclose_code(&r) == 1009 && r.n_message == 0 && max_alloc <= limit + 65536,
           "%s: 1009, largest allocation %zu", name, max_alloc);
        trec_end(&r);
    }
    sb_free(&in);
    free(z);
}

static void test_bombs(void)
{
    note("decompression bombs: 1009 one step past the limit, no allocation beyond it");
    static const size_t limits[] = {1024, 65536, 1 << 20, 16 << 20};
    for (size_t i = 0; i < sizeof(limits) / sizeof(limits[0]); i++) {
        size_t l = limits[i];
        size_t inflated = l + (2u << 20); /* >= 2 MiB: ratio > 1000:1 */
        bomb_case(l, inflated, 0, 1, 2, 0);
        bomb_case(l, inflated, 1, 1, 2, 0);
        bomb_case(l, inflated, 0, 3, 1, 0);
        bomb_case(l, inflated, 1, 3, 1, 0);
        bomb_case(l, inflated, 1, 1, 2, 1);
        bomb_case(l, inflated, 1, 3, 1, 1);
    }
    /* Just below the limit passes, just above fails. */
    for (int echo_only = 0; echo_only < 2; echo_only++) {
        for (int over = 0; over < 2; over++) {
            size_t zl, limit = 100000, n = limit + (size_t)over;
            uint8_t *z = bomb(n, &zl);
            sbuf in = {0};
            tscn srv = srv_deflate(echo_only, "permessage-deflate");
            srv.opt.max_message_size = limit;
            sb_frame(&in, 0xc2, 1, z, zl);
            trec r;
            tsplit(over ? "limit + 1 inflated bytes" : "exactly the limit", &srv, in.p, in.len, &r);
            ok(over ? r.error_code == 1009 && r.n_message == 0
                    : r.n_message == 1 && r.n_error == 0 && strstr((const char *)r.log.p, "len=100000 ") != NULL,
               "%s, %s: %s", over ? "limit + 1" : "limit", echo_only ? "echo_only" : "kept",
               over ? "1009" : "delivered");
            trec_end(&r);
            sb_free(&in);
            free(z);
        }
    }
}

/* ---- the inflate budget of one recv call ---- */

static void test_budget(void)
{
    size_t zl;
    uint8_t *z = bomb(100000, &zl); /* 100 kB of zeros, about 100 bytes */
    sbuf in = {0};
    trec r;
    tscn srv = srv_deflate(1, "permessage-deflate; client_no_context_takeover");

    note("one recv call inflates a bounded amount, then returns early: the owner feeds the rest");
    srv.opt.deflate.inflate_budget = 250000;
    for (int i = 0; i < 10; i++)
        sb_frame(&in, 0xc2, 1, z, zl);
    if (trec_start(&r, &srv) != 0)
        return;
    ssize_t n = tfeed(&r, in.p, in.len);
    ok(r.n_message == 3 && n == (ssize_t)(in.len / 10 * 3),
       "10 messages of 100 kB in one read, budget 250 kB: 3 inflated (%d), %zd of %zu bytes consumed",
       r.n_message, n, in.len);
    size_t off = n > 0 ? (size_t)n : in.len;
    int calls = 1;
    while (off < in.len && calls < 100) {
        n = tfeed(&r, in.p + off, in.len - off);
        off += n > 0 ? (size_t)n : in.len;
        calls++;
    }
    ok(r.n_message == 10 && r.n_error == 0 && tfr_count(&r.out) == 10 && calls == 4,
       "all 10 delivered and echoed after %d calls", calls);
    trec_end(&r);
    sb_free(&in);
    free(z);
}

/* ---- inflated and kept bytes go through the owner's memory budget ---- */

static size_t granted;

static int grow_cb(eev_driver *d, size_t grow, void *ud)
{
    (void)d;
    (void)ud;
    if (granted + grow > 100000)
        return EEV_CLOSE_TRY_AGAIN;
    granted += grow;
    return 0;
}

static int count_msg(eev_driver *d, const eev_message_arg *m, void *ud)
{
    (*(int *)ud)++;
    return eev_driver_send_message(d, m);
}

static void test_mem_budget(void)
{
    static const eev_callbacks cb = {.on_message = count_msg, .on_mem_grow = grow_cb};
    note("on_mem_grow sees inflated bytes (kept) and kept compressed bytes (echo_only)");
    for (int echo_only = 0; echo_only < 2; echo_only++) {
        eev_options o = {.role = EEV_ROLE_SERVER, .deflate = {.enable = 1, .echo_only = echo_only}};
        eev_driver *d;
        int msgs = 0;
        size_t zl;
        uint8_t *z;
        if (echo_only) { /* 300 kB that do not compress: the kept bytes pass the budget */
            z_stream s = {0};
            uint8_t *rnd = malloc(300000);
            uint32_t x = 2463534242u;
            for (size_t i = 0; i < 300000; i++) {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                rnd[i] = (uint8_t)x;
            }
            z = malloc(400000);
            deflateInit2(&s, 1, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY);
            s.next_in = rnd;
            s.avail_in = 300000;
            s.next_out = z;
            s.avail_out = 400000;
            deflate(&s, Z_SYNC_FLUSH);
            zl = 400000 - s.avail_out - 4;
            deflateEnd(&s);
            free(rnd);
        } else {
            z = bomb(1 << 20, &zl); /* 1 MiB inflated from ~1 kB */
        }
        sbuf in = {0};
        sb_puts(&in, REQ(PMD "permessage-deflate\r\n"));
        sb_frame(&in, 0x42, 1, z, 64);          /* first fragment, RSV1 */
        for (size_t off = 64; off < zl; off += 64) /* then many fragments */
            sb_frame(&in, (uint8_t)(off + 64 >= zl ? 0x80 : 0x00), 1, z + off, off + 64 > zl ? zl - off : 64);
        granted = 0;
        eev_driver_new(&d, &cb, &o, &msgs);
        for (size_t off = 0; off < in.len;) {
            ssize_t got = eev_driver_recv(d, in.p + off, in.len - off < 4096 ? in.len - off : 4096);
            off += got > 0 ? (size_t)got : in.len;
        }
        uint16_t sent, rcvd;
        eev_driver_close_codes(d, &sent, &rcvd);
        ok(sent == 1013 && msgs == 0 && granted > 0 && granted <= 100000,
           "%s: refused with 1013 past a 100 kB budget (granted %zu, sent %u)",
           echo_only ? "echo_only, compressed bytes kept" : "inflated bytes kept", granted, sent);
        eev_driver_del(d);
        sb_free(&in);
        free(z);
    }
}

/* ---- driver to driver: every window and context-takeover combination ---- */

struct pair {
    trec cli, srv;
};

static void pump(trec *from, trec *to)
{
    tdrain(from);
    if (from->out.len) {
        tfeed(to, from->out.p, from->out.len);
        sb_reset(&from->out);
    }
}

static void round_trip(const char *name, const eev_deflate_options *co, const eev_deflate_options *so,
                       int want_pass)
{
    tscn cs = {.opt = {.role = EEV_ROLE_CLIENT, .host = "h"}};
    tscn ss = {.opt = {.role = EEV_ROLE_SERVER}, .echo = 1};
    struct pair p;
    eev_deflate_params dp = {0};
    int good = 1;
    size_t sizes[] = {0, 1, 5, 100, 4000, 70000};
    uint8_t *buf = malloc(70000);

    cs.opt.deflate = *co;
    ss.opt.deflate = *so;
    ss.opt.deflate.shared = so->echo_only ? shared : NULL; /* echo-ev's setup, and without */
    if (trec_start(&p.cli, &cs) != 0 || trec_start(&p.srv, &ss) != 0)
        return;
    pump(&p.cli, &p.srv);
    pump(&p.srv, &p.cli);
    int neg = p.cli.n_open == 1 && p.srv.n_open == 1 && eev_driver_deflate(p.srv.d, &dp) &&
              eev_driver_deflate(p.cli.d, NULL);
    unsigned seed = 1;
    for (int round = 0; round < 2 && neg && good; round++) {
        for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]) && good; i++) {
            size_t n = sizes[i];
            for (size_t k = 0; k < n; k++) { /* repetitive text with some noise */
                seed = seed * 1103515245u + 12345u;
                buf[k] = (uint8_t)((k % 97 < 90) ? (unsigned)"the quick brown fox "[k % 20] : 'a' + (seed >> 16) % 26);
            }
            sb_reset(&p.cli.msgs);
            int op = (i & 1) ? 2 : 1;
            eev_driver_send(p.cli.d, (eev_opcode)op, buf, n);
            pump(&p.cli, &p.srv);
            pump(&p.srv, &p.cli);
            good = p.cli.msgs.len == n && memcmp(p.cli.msgs.p ? p.cli.msgs.p : (uint8_t *)"", buf, n) == 0 &&
                   p.srv.n_error == 0 && p.cli.n_error == 0;
            if (!good)
                note("%s: round %d size %zu: echo %zu bytes, errors %d/%d", name, round, n, p.cli.msgs.len,
                     p.srv.error_code, p.cli.error_code);
        }
    }
    ok(neg && good && dp.passthrough == want_pass, "round trip %s: negotiated %d, echoes exact %d, passthrough %d",
       name, neg, good, dp.passthrough);
    trec_end(&p.cli);
    trec_end(&p.srv);
    free(buf);
}

static void test_round_trips(void)
{
    note("driver to driver: client offers x server prefers, echo exact");
    for (int cs_nct = 0; cs_nct < 2; cs_nct++)
        for (int cc_nct = 0; cc_nct < 2; cc_nct++)
            for (int ss_nct = 0; ss_nct < 2; ss_nct++)
                for (int bits = 9; bits <= 15; bits += 3)
                    for (int echo_only = 0; echo_only < 2; echo_only++) {
                        eev_deflate_options co = {.enable = 1, .server_no_context_takeover = cs_nct,
                                                  .client_no_context_takeover = cc_nct,
                                                  .server_max_window_bits = bits == 15 ? 0 : bits,
                                                  .client_max_window_bits = bits == 12 ? 10 : 0};
                        eev_deflate_options so = {.enable = 1, .echo_only = echo_only,
                                                  .server_no_context_takeover = ss_nct,
                                                  .client_no_context_takeover = ss_nct,
                                                  .server_max_window_bits = bits == 9 ? 0 : bits,
                                                  .level = bits == 12 ? 1 : 0, .mem_level = bits == 9 ? 1 : 0};
                        /* Passthrough needs (own window >= client's) and
                         * (client self-contained or both keep context). */
                        int s_nct = cs_nct || ss_nct, c_nct = cc_nct || ss_nct || (echo_only && s_nct);
                        int s_bits = bits == 15 ? 15 : bits; /* announced only when asked */
                        int c_bits = bits == 12 ? 10 : (echo_only ? s_bits : 15);
                        int want = c_bits <= s_bits && (c_nct || !s_nct);
                        char name[160];
                        snprintf(name, sizeof(name),
                                 "client{snct=%d cnct=%d sbits=%d} server{nct=%d bits=%d echo_only=%d}", cs_nct,
                                 cc_nct, co.server_max_window_bits, ss_nct, so.server_max_window_bits, echo_only);
                        round_trip(name, &co, &so, want);
                    }
}

/* ---- pre-compressed messages: eev_driver_send_compressed() and
 * deflate.deliver_compressed ---- */

/* Compresses p as a fresh compressor would (sync flush, tail removed);
 * returns the length written to out. */
static size_t deflate_test(const uint8_t *p, size_t len, int bits, uint8_t *out, size_t cap)
{
    z_stream s = {0};
    deflateInit2(&s, 6, Z_DEFLATED, -bits, 8, Z_DEFAULT_STRATEGY);
    s.next_in = (Bytef *)p;
    s.avail_in = (uInt)len;
    s.next_out = out;
    s.avail_out = (uInt)cap;
    deflate(&s, Z_SYNC_FLUSH);
    size_t n = cap - s.avail_out - 4; /* the 00 00 ff ff tail */
    deflateEnd(&s);
    return n;
}

static void fill_text(uint8_t *buf, size_t n, unsigned seed)
{
    for (size_t k = 0; k < n; k++) {
        seed = seed * 1103515245u + 12345u;
        buf[k] = (uint8_t)((k % 50 < 45) ? (unsigned)"pre-compressed once, sent many times "[k % 37]
                                         : 'a' + (seed >> 16) % 26);
    }
}

static void test_precompressed(void)
{
    note("pre-compressed messages: sent as given, delivered as received");
    static uint8_t plain[3][6000], z[3][8000];
    size_t zl[3];
    for (int i = 0; i < 3; i++) {
        fill_text(plain[i], sizeof(plain[i]), 7u + (unsigned)i);
        zl[i] = deflate_test(plain[i], sizeof(plain[i]), 15, z[i], sizeof(z[i]));
    }

    /* Client (deliver_compressed) to an echo_only server, both resetting
     * context: the echo passes the bytes through, and the client gets
     * them back as it sent them, not inflated. */
    tscn cs = {.opt = {.role = EEV_ROLE_CLIENT, .host = "h",
                       .deflate = {.enable = 1, .client_no_context_takeover = 1,
                                   .server_no_context_takeover = 1, .deliver_compressed = 1}}};
    tscn ss = {.opt = {.role = EEV_ROLE_SERVER, .deflate = {.enable = 1, .echo_only = 1}}, .echo = 1};
    struct pair p;
    if (trec_start(&p.cli, &cs) != 0 || trec_start(&p.srv, &ss) != 0)
        return;
    pump(&p.cli, &p.srv);
    pump(&p.srv, &p.cli);
    ok(p.cli.n_open == 1 && eev_driver_deflate(p.cli.d, NULL), "deflate negotiated");
    int rv = 0;
    for (int k = 0; k < 4; k++) /* the same bytes again and again, as load generators do */
        rv |= eev_driver_send_compressed(p.cli.d, EEV_OP_TEXT, z[k & 1], zl[k & 1]);
    pump(&p.cli, &p.srv);
    pump(&p.srv, &p.cli);
    sbuf want = {0};
    for (int k = 0; k < 4; k++)
        sb_put(&want, z[k & 1], zl[k & 1]);
    ok(rv == 0 && p.cli.n_message == 4 && p.srv.n_error == 0 && p.cli.n_error == 0 &&
           p.cli.msgs.len == want.len && memcmp(p.cli.msgs.p, want.p, want.len) == 0,
       "4 pre-compressed text messages echoed and delivered compressed, byte for byte (%d messages, %zu bytes)",
       p.cli.n_message, p.cli.msgs.len);
    ok(strstr((const char *)p.cli.log.p, "rsv1=1") != NULL, "... with rsv1 set");
    ok(eev_driver_send_compressed(p.cli.d, EEV_OP_PING, z[0], 3) == EEV_ERR_ARG,
       "a control opcode is refused (EEV_ERR_ARG)");
    trec_end(&p.cli);
    trec_end(&p.srv);
    sb_free(&want);

    /* deliver_compressed: fragments joined, the compressed text not
     * validated as UTF-8 (RFC 7692 §7.2.3.1's fragmented "Hello"). */
    tscn c2 = cli_deflate("permessage-deflate");
    c2.opt.deflate.deliver_compressed = 1;
    tmsg("client deliver_compressed: a fragmented compressed message joined, not inflated", &c2, s_hello_frag,
         sizeof(s_hello_frag), 1, "\xf2\x48\xcd\xc9\xc9\x07\x00", 7);

    /* Without a negotiated extension there is nothing to send it with. */
    tscn c3 = {.opt = {.role = EEV_ROLE_CLIENT, .host = "h"}};
    trec r;
    if (topen_client(&r, &c3) == 0) {
        ok(eev_driver_send_compressed(r.d, EEV_OP_BINARY, z[0], zl[0]) == EEV_ERR_STATE,
           "without permessage-deflate: EEV_ERR_STATE");
        trec_end(&r);
    }

    /* A client that keeps context: its own compressor restarts after a
     * pre-compressed message, so the server inflates every message right
     * (the third repeats the first: a back-reference across the second
     * would be off by its length). Both roles send them. */
    for (int role = 0; role < 2; role++) {
        tscn ca = {.opt = {.role = EEV_ROLE_CLIENT, .host = "h", .deflate = {.enable = 1}}};
        tscn sa = {.opt = {.role = EEV_ROLE_SERVER, .deflate = {.enable = 1, .client_max_window_bits = 15,
                                                                .server_max_window_bits = 15}}};
        if (trec_start(&p.cli, &ca) != 0 || trec_start(&p.srv, &sa) != 0)
            return;
        pump(&p.cli, &p.srv);
        pump(&p.srv, &p.cli);
        trec *from = role ? &p.srv : &p.cli, *to = role ? &p.cli : &p.srv;
        eev_deflate_params dp;
        eev_driver_deflate(from->d, &dp);
        rv = eev_driver_send(from->d, EEV_OP_BINARY, plain[0], sizeof(plain[0]));
        rv |= eev_driver_send_compressed(from->d, EEV_OP_BINARY, z[1], zl[1]);
        rv |= eev_driver_send(from->d, EEV_OP_BINARY, plain[0], sizeof(plain[0]));
        rv |= eev_driver_send_compressed(from->d, EEV_OP_BINARY, z[2], zl[2]);
        rv |= eev_driver_send(from->d, EEV_OP_BINARY, plain[1], sizeof(plain[1]));
        pump(from, to);
        sbuf w = {0};
        sb_put(&w, plain[0], sizeof(plain[0]));
        sb_put(&w, plain[1], sizeof(plain[1]));
        sb_put(&w, plain[0], sizeof(plain[0]));
        sb_put(&w, plain[2], sizeof(plain[2]));
        sb_put(&w, plain[1], sizeof(plain[1]));
        ok(rv == 0 && !dp.server_no_context_takeover && !dp.client_no_context_takeover && to->n_message == 5 &&
               to->n_error == 0 && to->msgs.len == w.len && memcmp(to->msgs.p, w.p, w.len) == 0,
           "%s keeping context, pre-compressed messages between its own: all 5 inflate right (%d messages, "
           "error %d)", role ? "server" : "client", to->n_message, to->error_code);
        sb_free(&w);
        trec_end(&p.cli);
        trec_end(&p.srv);
    }
}

/* ---- the shared inflate stream (connections that keep no context) ---- */

static void test_shared_inflate(void)
{
    note("no context takeover: one shared inflate stream; only messages spanning reads get their own");
    static uint8_t plain[2][6000], z[2][8000];
    size_t zl[2];
    sbuf one = {0}, two = {0};
    for (int i = 0; i < 2; i++) {
        fill_text(plain[i], sizeof(plain[i]), 11u + (unsigned)i);
        zl[i] = deflate_test(plain[i], sizeof(plain[i]), 15, z[i], sizeof(z[i]));
    }
    sb_frame(&one, 0xc2, 1, z[0], zl[0]);
    sb_frame(&two, 0xc1, 1, z[1], zl[1]);

    /* Whole messages, each in its own read: no zlib state is allocated
     * once the shared stream exists (without it: state and window per
     * message), and with borrow_input (echo-ev's setup) nothing at all:
     * the echo leaves from the input. */
    size_t per[2] = {0, 0}, all = 0;
    for (int with_shared = 0; with_shared < 2; with_shared++) {
        tscn srv = srv_deflate(1, "permessage-deflate; client_no_context_takeover");
        srv.opt.deflate.shared = with_shared ? shared : NULL;
        srv.opt.borrow_input = with_shared;
        trec r;
        if (trec_start(&r, &srv) != 0)
            return;
        for (int i = 0; i < 3; i++) /* warm-up: the shared stream, the records' buffers */
            tfeed(&r, one.p, one.len);
        size_t before = big_allocs, before_all = all_allocs;
        for (int i = 0; i < 20; i++) {
            sb_reset(&r.out);
            sb_reset(&r.log);
            tfeed(&r, one.p, one.len);
        }
        per[with_shared] = big_allocs - before;
        all = all_allocs - before_all;
        tfr f;
        size_t fl = tfr_parse(r.out.p, r.out.len, &f);
        ok(r.n_message == 23 && r.n_error == 0 && fl && f.rsv == 4 && f.len == zl[0] &&
               memcmp(f.data, z[0], zl[0]) == 0,
           "%s: 23 messages echoed as received", with_shared ? "shared streams" : "no shared streams");
        if (fl)
            tfr_free(&f);
        trec_end(&r);
    }
    ok(per[1] == 0, "with the shared stream, 20 whole messages allocated no zlib state (%zu allocations of >= %d "
       "bytes; %zu without it)", per[1], BIG_ALLOC, per[0]);
    ok(all == 0, "... and with borrow_input, no allocation at all (%zu): the echo leaves from the input", all);

    /* A message split across reads moves to its own stream while other
     * connections go on using the shared one; then it is shared again. */
    tscn sa = srv_deflate(0, "permessage-deflate; client_no_context_takeover");
    tscn sb = srv_deflate(1, "permessage-deflate; client_no_context_takeover");
    trec a, b;
    if (trec_start(&a, &sa) != 0 || trec_start(&b, &sb) != 0)
        return;
    size_t cut = one.len / 2;
    tfeed(&a, one.p, cut);
    tfeed(&b, two.p, two.len);
    tfeed(&b, one.p, one.len);
    tfeed(&a, one.p + cut, one.len - cut);
    tfeed(&a, two.p, two.len);
    ok(a.n_message == 2 && a.n_error == 0 && a.msgs.len == sizeof(plain[0]) + sizeof(plain[1]) &&
           memcmp(a.msgs.p, plain[0], sizeof(plain[0])) == 0 &&
           memcmp(a.msgs.p + sizeof(plain[0]), plain[1], sizeof(plain[1])) == 0,
       "connection A: its split message and the next inflate right (%d messages, error %d)", a.n_message,
       a.error_code);
    ok(b.n_message == 2 && b.n_error == 0 && tfr_count(&b.out) == 2 &&
           strstr((const char *)b.log.p, "op=1 len=6000 rsv1=1") && strstr((const char *)b.log.p, "op=2 len=6000 rsv1=1"),
       "connection B, between A's two reads: both messages checked and echoed");
    /* A bad text message split across reads fails with 1007, and B goes on. */
    static uint8_t bad[6000], zb[8000];
    memcpy(bad, plain[1], sizeof(bad));
    bad[5990] = 0xff;
    size_t zbl = deflate_test(bad, sizeof(bad), 15, zb, sizeof(zb));
    sbuf badf = {0};
    sb_frame(&badf, 0xc1, 1, zb, zbl);
    tfeed(&a, badf.p, 10);
    tfeed(&b, one.p, one.len);
    tfeed(&a, badf.p + 10, badf.len - 10);
    tfeed(&b, two.p, two.len);
    ok(a.error_code == 1007 && tclose_code(&a) == 1007 && b.n_message == 4 && b.n_error == 0,
       "invalid UTF-8 in a split compressed text: 1007 (%d); the other connection served (%d messages)",
       a.error_code, b.n_message);
    trec_end(&a);
    trec_end(&b);
    sb_free(&one);
    sb_free(&two);
    sb_free(&badf);
}

int main(void)
{
    shared = eev_deflate_shared_new();
    test_negotiation();
    test_client_negotiation();
    test_samples();
    test_rsv_rules();
    test_bombs();
    test_budget();
    test_mem_budget();
    test_round_trips();
    test_precompressed();
    test_shared_inflate();
    eev_deflate_shared_free(shared);
    return done_testing();
}
