/*
 * test_recv_echo.c - eev_driver_recv_echo(): whole short messages are
 * echoed by the driver itself, without on_message, and counted; every
 * other message still goes to on_message, in order; checks and failures
 * are the same as eev_driver_recv()'s.
 */
#include <stdlib.h>
#include <string.h>

#include "util.h"

static const char upgrade[] = "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                              "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                              "Sec-WebSocket-Version: 13\r\n\r\n";

struct ctx {
    int messages; /* on_message calls */
    size_t bytes; /* their payload bytes */
};

static int echo(eev_driver *d, const eev_message_arg *m, void *ud)
{
    struct ctx *c = ud;

    c->messages++;
    c->bytes += m->len;
    return eev_driver_send_message(d, m);
}

static const eev_callbacks cb = {.on_message = echo};

static int consumes, consume_mismatches; /* eev_driver_out_consume()'s status against eev_driver_status() */

/* Drains up to max bytes of output into out. */
static void take(eev_driver *d, sbuf *out, size_t max)
{
    struct iovec iov[64];
    int n = eev_driver_out_iov(d, iov, 64);
    size_t got = 0;

    for (int i = 0; i < n && got < max; i++) {
        size_t l = iov[i].iov_len < max - got ? iov[i].iov_len : max - got;
        sb_put(out, iov[i].iov_base, l);
        got += l;
    }
    eev_status a = eev_driver_out_consume(d, got), b = eev_driver_status(d);
    consumes++;
    consume_mismatches += a.flags != b.flags || a.state != b.state || a.out_len != b.out_len;
}

static int size_class(size_t len)
{
    int k = 0;

    while (((size_t)1 << k) < len)
        k++;
    return k;
}

/* What a run should count: the messages the driver echoes itself. */
static void expect(eev_echo_stats *st, size_t len)
{
    st->messages++;
    st->bytes += len;
    st->size_class[size_class(len)]++;
}

/* Feeds in, cut at cuts[0..ncut), each piece in an exact malloc'd buffer
 * that is wiped after settling (as the server reuses its read buffer),
 * taking first_take bytes of output after the first piece. */
static ssize_t feed(eev_driver *d, eev_echo_stats *st, const sbuf *in, const size_t *cuts, int ncut,
                    size_t first_take, sbuf *out)
{
    size_t from = 0;
    ssize_t last = 0;

    for (int b = 0; b <= ncut; b++) {
        size_t to = b < ncut ? cuts[b] : in->len, n = to - from;
        uint8_t *buf = malloc(n ? n : 1);
        memcpy(buf, in->p + from, n);
        last = eev_driver_recv_echo(d, buf, n, st);
        take(d, out, b == 0 ? first_take : (size_t)-1);
        if (eev_driver_out_settle(d) != 0)
            last = EEV_ERR_NOMEM;
        memset(buf, 0xEE, n);
        free(buf);
        from = to;
    }
    take(d, out, (size_t)-1);
    return last;
}

static eev_driver *open_driver(const eev_options *opt, struct ctx *c)
{
    eev_driver *d;
    sbuf hs = {0}, out = {0};

    if (eev_driver_new(&d, &cb, opt, c) != 0)
        return NULL;
    sb_put(&hs, upgrade, sizeof(upgrade) - 1);
    eev_driver_recv(d, hs.p, hs.len);
    take(d, &out, (size_t)-1);
    sb_free(&hs);
    sb_free(&out);
    return d;
}

static int stats_equal(const eev_echo_stats *a, const eev_echo_stats *b)
{
    return memcmp(a, b, sizeof(*a)) == 0;
}

/*
 * A mix: small messages (joined into one run), an empty one, one too large
 * to join, a ping, a message split across buffers, a header that ends a
 * buffer, a fragmented message and one over 64 KiB. The echoes must be
 * byte-identical and in order; the short whole ones are counted, the rest
 * go through on_message.
 */
static void run_mix(int borrow, size_t first_take)
{
    eev_options opt = {.role = EEV_ROLE_SERVER, .borrow_input = borrow};
    struct ctx c = {0};
    eev_echo_stats st = {0}, want_st = {0};
    sbuf in = {0}, want = {0}, out = {0};
    uint8_t big[3000], huge_[70000], p16[16], t10[10];
    size_t cuts[3];
    int cb_msgs = 0;
    size_t cb_bytes = 0;

    for (size_t i = 0; i < sizeof(big); i++)
        big[i] = (uint8_t)(i * 7 + 1);
    for (size_t i = 0; i < sizeof(huge_); i++)
        huge_[i] = (uint8_t)(i * 13 + 5);
    memset(p16, 0xA5, sizeof(p16));
    memcpy(t10, "0123456789", 10);
    eev_driver *d = open_driver(&opt, &c);
    ok(d != NULL, "mix borrow=%d take=%zu: driver open", borrow, first_take);

#define ECHOED(b0, p, n)                                                                                     \
    do {                                                                                                     \
        sb_frame(&in, b0, 1, p, n);                                                                          \
        sb_frame(&want, b0, 0, p, n);                                                                        \
        expect(&want_st, n);                                                                                 \
    } while (0)
    ECHOED(0x82, p16, 16);
    ECHOED(0x81, t10, 10);
    ECHOED(0x82, "", 0);
    ECHOED(0x82, big, sizeof(big));
    ECHOED(0x82, p16, 16);
    sb_frame(&in, 0x89, 1, "p", 1);
    sb_frame(&want, 0x8A, 0, "p", 1);
    ECHOED(0x82, p16, 5);
    sb_frame(&in, 0x81, 1, t10, 7); /* split: 3 bytes of payload in the next buffer */
    sb_frame(&want, 0x81, 0, t10, 7);
    cb_msgs++, cb_bytes += 7;
    cuts[0] = in.len - 3;
    sb_frame(&in, 0x82, 1, p16, 16); /* header at the end of the second buffer */
    sb_frame(&want, 0x82, 0, p16, 16);
    cb_msgs++, cb_bytes += 16;
    cuts[1] = in.len - 16;
    ECHOED(0x82, p16, 12);
    sb_frame(&in, 0x02, 1, t10, 4); /* fragmented: on_message, joined */
    sb_frame(&in, 0x80, 1, t10 + 4, 6);
    sb_frame(&want, 0x82, 0, t10, 10);
    cb_msgs++, cb_bytes += 10;
    ECHOED(0x81, "ok", 2);
    cuts[2] = in.len;
    sb_frame(&in, 0x82, 1, huge_, sizeof(huge_)); /* over 64 KiB: on_message */
    sb_frame(&want, 0x82, 0, huge_, sizeof(huge_));
    cb_msgs++, cb_bytes += sizeof(huge_);
    ECHOED(0x82, p16, 1);
#undef ECHOED

    ok(feed(d, &st, &in, cuts, 3, first_take, &out) == (ssize_t)(in.len - cuts[2]),
       "mix borrow=%d take=%zu: every buffer consumed", borrow, first_take);
    ok(out.len == want.len && memcmp(out.p, want.p, want.len) == 0,
       "mix borrow=%d take=%zu: echoes byte-identical, in order (%zu of %zu bytes)", borrow, first_take, out.len,
       want.len);
    ok(stats_equal(&st, &want_st), "mix borrow=%d take=%zu: %llu messages, %llu bytes counted (want %llu, %llu)",
       borrow, first_take, (unsigned long long)st.messages, (unsigned long long)st.bytes,
       (unsigned long long)want_st.messages, (unsigned long long)want_st.bytes);
    ok(c.messages == cb_msgs && c.bytes == cb_bytes, "mix borrow=%d take=%zu: on_message for the other %d (%d)",
       borrow, first_take, cb_msgs, c.messages);
    /* The connection's own counts take both kinds: echoed here or through
     * on_message and eev_driver_send_message(). */
    eev_counts n = eev_driver_counts(d);
    uint64_t all_msgs = want_st.messages + (uint64_t)cb_msgs, all_bytes = want_st.bytes + cb_bytes;
    ok(n.messages_in == all_msgs && n.bytes_in == all_bytes && n.bytes_out == all_bytes,
       "mix borrow=%d take=%zu: eev_driver_counts %llu in (%llu bytes), %llu bytes out; want %llu, %llu, %llu",
       borrow, first_take, (unsigned long long)n.messages_in, (unsigned long long)n.bytes_in,
       (unsigned long long)n.bytes_out, (unsigned long long)all_msgs, (unsigned long long)all_bytes,
       (unsigned long long)all_bytes);
    ok(eev_driver_out_len(d) == 0 && eev_driver_mem(d) == 0 && eev_driver_state(d) == EEV_STATE_OPEN,
       "mix borrow=%d take=%zu: open, nothing held", borrow, first_take);
    eev_driver_del(d);
    sb_free(&in);
    sb_free(&want);
    sb_free(&out);
}

/* Every short length joined into one run after a first message (each
 * moved down over the spent headers before it), text and binary. */
static void run_lengths(void)
{
    eev_options opt = {.role = EEV_ROLE_SERVER, .borrow_input = 1};
    struct ctx c = {0};
    eev_echo_stats st = {0}, want_st = {0};
    sbuf in = {0}, want = {0}, out = {0};
    uint8_t pl[300];

    for (size_t i = 0; i < sizeof(pl); i++)
        pl[i] = (uint8_t)('a' + i % 26);
    eev_driver *d = open_driver(&opt, &c);
    for (size_t len = 0; len <= sizeof(pl); len += len < 40 ? 1 : 37) {
        uint8_t b0 = len & 1 ? 0x81 : 0x82;
        sb_frame(&in, b0, 1, pl, len);
        sb_frame(&want, b0, 0, pl, len);
        expect(&want_st, len);
    }
    ok(feed(d, &st, &in, NULL, 0, (size_t)-1, &out) == (ssize_t)in.len, "lengths: consumed");
    ok(out.len == want.len && memcmp(out.p, want.p, want.len) == 0,
       "lengths 0-40 and up to 300 in one run: echoes byte-identical (%zu of %zu bytes)", out.len, want.len);
    ok(stats_equal(&st, &want_st) && c.messages == 0, "lengths: all counted, none through on_message");
    eev_driver_del(d);
    sb_free(&in);
    sb_free(&want);
    sb_free(&out);
}

/* The first close code in out, or -1. Data frames before it are counted
 * in *before. */
static int first_close(const sbuf *out, int *before)
{
    size_t at = 0;
    tfr f;

    *before = 0;
    while (at < out->len) {
        size_t n = tfr_parse(out->p + at, out->len - at, &f);
        if (!n)
            break;
        at += n;
        int op = f.op, code = f.len >= 2 ? f.data[0] << 8 | f.data[1] : 0;
        tfr_free(&f);
        if (op == 0x8)
            return code;
        *before += op == 0x1 || op == 0x2;
    }
    return -1;
}

/* Frames the short path must not take, or must fail as the general path
 * does: the connection closes with code after the echoes before. */
static void run_fail(const char *name, const sbuf *bad, int code, uint64_t max)
{
    eev_options opt = {.role = EEV_ROLE_SERVER, .borrow_input = 1, .max_message_size = max};
    struct ctx c = {0};
    eev_echo_stats st = {0};
    sbuf in = {0}, out = {0};
    int before;

    eev_driver *d = open_driver(&opt, &c);
    sb_frame(&in, 0x82, 1, "abc", 3);
    sb_frame(&in, 0x81, 1, "d", 1);
    sb_put(&in, bad->p, bad->len);
    sb_frame(&in, 0x82, 1, "after", 5); /* never echoed */
    ok(feed(d, &st, &in, NULL, 0, (size_t)-1, &out) == (ssize_t)in.len, "%s: consumed", name);
    ok(first_close(&out, &before) == code && before == 2, "%s: two echoes, then Close %d", name, code);
    ok(st.messages == 2 && st.bytes == 4 && c.messages == 0, "%s: the two counted, nothing else delivered",
       name);
    ok(eev_driver_state(d) == EEV_STATE_CLOSED, "%s: closed", name);
    eev_driver_del(d);
    sb_free(&in);
    sb_free(&out);
}

static void test_failures(void)
{
    sbuf b = {0};

    sb_frame(&b, 0x81, 1, "\xc3\x28", 2);
    run_fail("invalid UTF-8 text", &b, 1007, 0);
    sb_reset(&b);
    sb_frame(&b, 0x81, 1, "caf\xc3", 4); /* truncated sequence at the end */
    run_fail("text ending mid-sequence", &b, 1007, 0);
    sb_reset(&b);
    sb_frame(&b, 0x82, 1, "0123456789abcdef", 16);
    run_fail("over max_message_size", &b, 1009, 10);
    sb_reset(&b);
    sb_frame(&b, 0xC2, 1, "x", 1);
    run_fail("RSV1 without an extension", &b, 1002, 0);
    sb_reset(&b);
    sb_frame(&b, 0x82, 0, "x", 1);
    run_fail("unmasked frame", &b, 1002, 0);
    sb_reset(&b);
    sb_put(&b, "\x82\xfe\x00\x05", 4); /* 16-bit length under 126 */
    sb_put(&b, tmask_key, 4);
    sb_put(&b, "hello", 5);
    run_fail("non-minimal length", &b, 1002, 0);
    sb_reset(&b);
    sb_frame(&b, 0x88, 1, "\x03\xe8", 2); /* a Close: answered, nothing after echoed */
    run_fail("a Close in the run", &b, 1000, 0);
    sb_free(&b);
}

/* The client role has no short path: everything goes to on_message. */
static void test_client(void)
{
    tscn scn = tcli;
    trec r;
    eev_echo_stats st = {0};
    sbuf in = {0};

    if (topen_client(&r, &scn) != 0)
        return;
    sb_frame(&in, 0x82, 0, "abc", 3);
    sb_frame(&in, 0x81, 0, "de", 2);
    ok(eev_driver_recv_echo(r.d, in.p, in.len, &st) == (ssize_t)in.len, "client: consumed");
    ok(r.n_message == 2 && st.messages == 0, "client: both messages delivered to on_message, none counted");
    trec_end(&r);
    sb_free(&in);
}

int main(void)
{
    size_t takes[] = {0, 1, 17, 18, 30, 40, 1000, 3055, 3100, (size_t)-1};
    for (size_t i = 0; i < sizeof(takes) / sizeof(takes[0]); i++) {
        run_mix(1, takes[i]);
        run_mix(0, takes[i]);
    }
    run_lengths();
    test_failures();
    test_client();
    ok(consumes > 100 && consume_mismatches == 0,
       "eev_driver_out_consume() returns the status as it is then: %d of %d differ", consume_mismatches, consumes);
    return done_testing();
}
