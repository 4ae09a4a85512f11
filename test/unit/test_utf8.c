/*
 * test_utf8.c - UTF-8 validation: eev_utf8_validate against a reference
 * decoder (exhaustive up to 3 bytes), and text messages through the driver
 * (1007, failing fast at the first bad byte).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

/* Reference: Unicode Table 3-7 (well-formed byte sequences). Returns 1
 * valid, 0 invalid, -1 valid so far but truncated. */
static int ref_valid(const uint8_t *p, size_t len)
{
    size_t i = 0;

    while (i < len) {
        uint8_t c = p[i];
        unsigned n, lo = 0x80, hi = 0xBF;
        if (c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0xC2 && c <= 0xDF)
            n = 1;
        else if (c >= 0xE0 && c <= 0xEF) {
            n = 2;
            if (c == 0xE0)
                lo = 0xA0;
            if (c == 0xED)
                hi = 0x9F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            n = 3;
            if (c == 0xF0)
                lo = 0x90;
            if (c == 0xF4)
                hi = 0x8F;
        } else
            return 0;
        for (unsigned k = 1; k <= n; k++) {
            if (i + k >= len)
                return -1;
            if (p[i + k] < (k == 1 ? lo : 0x80) || p[i + k] > (k == 1 ? hi : 0xBF))
                return 0;
        }
        i += n + 1;
    }
    return 1;
}

static int validate(const uint8_t *p, size_t len)
{
    uint32_t st = EEV_UTF8_ACCEPT;
    uint32_t rv = eev_utf8_validate(&st, p, len);
    if (rv != st)
        return 99;
    return rv == EEV_UTF8_ACCEPT ? 1 : rv == EEV_UTF8_REJECT ? 0 : -1;
}

static int validate_bytewise(const uint8_t *p, size_t len)
{
    uint32_t st = EEV_UTF8_ACCEPT;
    for (size_t i = 0; i < len && st != EEV_UTF8_REJECT; i++)
        eev_utf8_validate(&st, p + i, 1);
    return st == EEV_UTF8_ACCEPT ? 1 : st == EEV_UTF8_REJECT ? 0 : -1;
}

typedef struct ucase {
    const char *name;
    const char *s;
    size_t len;
    int valid; /* 1 valid, 0 invalid, -1 truncated */
} ucase;

#define U(name, s, v) {name, s, sizeof(s) - 1, v}
static const ucase cases[] = {
    U("empty", "", 1),
    U("ASCII", "Hello, world", 1),
    U("NUL", "a\0b", 1),
    U("U+007F", "\x7F", 1),
    U("U+0080", "\xC2\x80", 1),
    U("U+07FF", "\xDF\xBF", 1),
    U("U+0800", "\xE0\xA0\x80", 1),
    U("U+D7FF", "\xED\x9F\xBF", 1),
    U("U+E000", "\xEE\x80\x80", 1),
    U("U+FFFD", "\xEF\xBF\xBD", 1),
    U("U+FFFF", "\xEF\xBF\xBF", 1),
    U("U+10000", "\xF0\x90\x80\x80", 1),
    U("U+10FFFF", "\xF4\x8F\xBF\xBF", 1),
    U("Greek kosme", "\xCE\xBA\xE1\xBD\xB9\xCF\x83\xCE\xBC\xCE\xB5", 1),
    U("mixed", "a\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80z", 1),
    U("lone continuation 80", "\x80", 0),
    U("lone continuation BF", "a\xBF", 0),
    U("overlong 2-byte C0 80", "\xC0\x80", 0),
    U("overlong 2-byte C1 BF", "\xC1\xBF", 0),
    U("overlong 3-byte E0 80 80", "\xE0\x80\x80", 0),
    U("overlong 3-byte E0 9F BF", "\xE0\x9F\xBF", 0),
    U("overlong 4-byte F0 80 80 80", "\xF0\x80\x80\x80", 0),
    U("overlong 4-byte F0 8F BF BF", "\xF0\x8F\xBF\xBF", 0),
    U("surrogate U+D800", "\xED\xA0\x80", 0),
    U("surrogate U+DBFF", "\xED\xAF\xBF", 0),
    U("surrogate U+DC00", "\xED\xB0\x80", 0),
    U("surrogate U+DFFF", "\xED\xBF\xBF", 0),
    U("surrogate pair", "\xED\xA0\x80\xED\xB0\x80", 0),
    U("U+110000 F4 90 80 80", "\xF4\x90\x80\x80", 0),
    U("F5", "\xF5\x80\x80\x80", 0),
    U("F8", "\xF8\x88\x80\x80\x80", 0),
    U("FC", "\xFC\x84\x80\x80\x80\x80", 0),
    U("FE", "\xFE", 0),
    U("FF", "a\xFF", 0),
    U("bad continuation 2-byte", "\xC3\x28", 0),
    U("bad continuation 3-byte", "\xE2\x28\xA1", 0),
    U("bad continuation 3-byte last", "\xE2\x82\x28", 0),
    U("bad continuation 4-byte", "\xF0\x90\x28\xBC", 0),
    U("lead then ASCII", "\xC3" "a", 0),
    U("truncated 2-byte", "\xC3", -1),
    U("truncated 3-byte", "\xE2\x82", -1),
    U("truncated 4-byte", "\xF0\x9F\x98", -1),
};
#undef U

static void test_utf8_direct(void)
{
    uint8_t b[4];
    long bad = 0;

    note("eev_utf8_validate, table");
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const ucase *c = &cases[i];
        const uint8_t *p = (const uint8_t *)c->s;
        ok(ref_valid(p, c->len) == c->valid, "reference agrees: %s", c->name);
        ok(validate(p, c->len) == c->valid && validate_bytewise(p, c->len) == c->valid, "%s: %s", c->name,
           c->valid == 1 ? "valid" : c->valid == 0 ? "invalid" : "incomplete");
    }
    {
        /* The result is REJECT from the first bad byte on, and stays. */
        uint32_t st = EEV_UTF8_ACCEPT;
        eev_utf8_validate(&st, (const uint8_t *)"\xFF", 1);
        ok(st == EEV_UTF8_REJECT && eev_utf8_validate(&st, (const uint8_t *)"abc", 3) == EEV_UTF8_REJECT,
           "REJECT is sticky");
    }

    note("eev_utf8_validate vs reference, exhaustive to 3 bytes");
    for (unsigned a = 0; a < 256; a++) {
        b[0] = (uint8_t)a;
        bad += validate(b, 1) != ref_valid(b, 1);
        for (unsigned c = 0; c < 256; c++) {
            b[1] = (uint8_t)c;
            bad += validate(b, 2) != ref_valid(b, 2);
            if (ref_valid(b, 2) == 0)
                continue; /* already rejected: third byte irrelevant */
            for (unsigned e = 0; e < 256; e++) {
                b[2] = (uint8_t)e;
                bad += validate(b, 3) != ref_valid(b, 3);
            }
        }
    }
    ok(bad == 0, "all 1-, 2- and live 3-byte sequences agree (%ld mismatches)", bad);
    bad = 0;
    for (unsigned a = 0xF0; a < 0x100; a++) {
        for (unsigned c = 0; c < 256; c++) {
            for (unsigned e = 0x70; e < 0xD0; e++) {
                for (unsigned f = 0x70; f < 0xD0; f += 7) {
                    b[0] = (uint8_t)a, b[1] = (uint8_t)c, b[2] = (uint8_t)e, b[3] = (uint8_t)f;
                    bad += validate(b, 4) != ref_valid(b, 4);
                }
            }
        }
    }
    ok(bad == 0, "4-byte sequences F0..FF x all x 70..CF x sampled agree (%ld mismatches)", bad);

    /* The vectorised ASCII skip: one non-ASCII sequence (valid, invalid or
     * cut short) at every position of a long ASCII run, from every start
     * alignment, so it falls in every lane of every vector step. */
    static const char *const odd[] = {"\xC3\xA9", "\xE2\x82\xAC", "\xF0\x9F\x98\x80", "\xFF", "\xC3\x28",
                                      "\xED\xA0\x80", "\x80", "\xF0\x9F"};
    uint8_t run[400 + 8];
    bad = 0;
    for (size_t k = 0; k < sizeof(odd) / sizeof(odd[0]); k++) {
        size_t ol = strlen(odd[k]);
        for (size_t at = 0; at + ol <= 400; at++) {
            for (size_t off = 0; off < 8; off += 3) {
                memset(run, 'a', sizeof(run));
                memcpy(run + off + at, odd[k], ol);
                bad += validate(run + off, 400) != ref_valid(run + off, 400);
                bad += validate(run + off, at + ol) != ref_valid(run + off, at + ol);
            }
        }
    }
    ok(bad == 0, "a non-ASCII sequence at every offset of a 400-byte ASCII run agrees (%ld mismatches)", bad);
}

static void test_utf8_driver_messages(void)
{
    char name[128];
    sbuf in = {0};

    note("text messages through the driver");
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const ucase *c = &cases[i];
        sb_reset(&in);
        sb_frame(&in, 0x81, 1, c->s, c->len);
        snprintf(name, sizeof(name), "text %s", c->name);
        if (c->valid == 1)
            tmsg(name, &tsrv, in.p, in.len, 1, c->s, c->len);
        else
            tfail(name, &tsrv, in.p, in.len, 1007);
        /* Binary is never validated. */
        sb_reset(&in);
        sb_frame(&in, 0x82, 1, c->s, c->len);
        snprintf(name, sizeof(name), "binary %s", c->name);
        if (c->valid != 1)
            tmsg(name, &tsrv, in.p, in.len, 2, c->s, c->len);
    }
    /* Client role too. */
    sb_reset(&in);
    sb_frame(&in, 0x81, 0, "\xED\xA0\x80", 3);
    tfail("client: text with a surrogate", &tcli, in.p, in.len, 1007);
    sb_free(&in);
}

static void test_utf8_fragments(void)
{
    static const char euro[] = "\xE2\x82\xAC";
    static const char cat[] = "\xF0\x9F\x98\xBA";
    sbuf in = {0};
    char name[64];

    note("sequences across fragment boundaries");
    /* Every split point of a 4-byte and a 3-byte sequence across fragments. */
    for (int k = 1; k < 4; k++) {
        sb_reset(&in);
        sb_frame(&in, 0x01, 1, cat, (size_t)k);
        sb_frame(&in, 0x80, 1, cat + k, (size_t)(4 - k));
        snprintf(name, sizeof(name), "U+1F63A split %d+%d", k, 4 - k);
        tmsg(name, &tsrv, in.p, in.len, 1, cat, 4);
    }
    sb_reset(&in);
    sb_frame(&in, 0x01, 1, euro, 1);
    sb_frame(&in, 0x00, 1, euro + 1, 1);
    sb_frame(&in, 0x89, 1, "p", 1);
    sb_frame(&in, 0x80, 1, euro + 2, 1);
    tmsg("euro in three fragments around a ping", &tsrv, in.p, in.len, 1, euro, 3);
    sb_reset(&in);
    sb_frame(&in, 0x01, 1, "ab\xE2\x82", 4);
    sb_frame(&in, 0x80, 1, "", 0);
    tfail("truncated at message end (empty final fragment)", &tsrv, in.p, in.len, 1007);
    sb_reset(&in);
    sb_frame(&in, 0x01, 1, "ab\xE2", 3);
    sb_frame(&in, 0x80, 1, "(", 1);
    tfail("bad continuation in the next fragment", &tsrv, in.p, in.len, 1007);
    sb_free(&in);
}

static void check_fast(const char *name, const sbuf *in, size_t feed)
{
    trec r;

    if (trec_start(&r, &tsrv) != 0)
        return;
    tfeed(&r, in->p, feed);
    ok(tclose_code(&r) == 1007 && r.error_code == 1007 && r.n_message == 0, "%s: 1007 after %zu of %zu bytes", name, feed,
       in->len);
    trec_end(&r);
}

static void test_utf8_fail_fast(void)
{
    sbuf in = {0};
    size_t first;
    char big[1000];

    note("invalid text fails fast");
    sb_frame(&in, 0x01, 1, "abc\xFF", 4);
    first = in.len;
    sb_frame(&in, 0x80, 1, "def", 3);
    check_fast("first fragment ends in FF", &in, first);
    sb_reset(&in);
    sb_frame(&in, 0x01, 1, "abc\xC0", 4);
    first = in.len;
    sb_frame(&in, 0x80, 1, "\x80", 1);
    check_fast("first fragment ends in C0", &in, first);
    sb_reset(&in);
    sb_frame(&in, 0x01, 1, "abc\xED\xA0", 5);
    first = in.len;
    sb_frame(&in, 0x80, 1, "\x80", 1);
    check_fast("first fragment ends inside a surrogate", &in, first);

    memset(big, 'a', sizeof(big));
    big[10] = (char)0xFF;
    sb_reset(&in);
    sb_frame(&in, 0x81, 1, big, sizeof(big));
    check_fast("big frame, bad byte at 10, 20 bytes of payload fed", &in, 4 + 4 + 20);
    check_fast("big frame, bad byte at 10, payload up to it", &in, 4 + 4 + 11);
    big[10] = (char)0xF4;
    big[11] = (char)0x90;
    sb_reset(&in);
    sb_frame(&in, 0x81, 1, big, sizeof(big));
    check_fast("big frame, F4 90 at 10", &in, 4 + 4 + 12);
    {
        /* Fed in 7-byte pieces, the close must appear with the piece
         * holding the bad byte. */
        trec r;
        size_t at = 0, bad_at = 8 + 11;
        int good = 1;
        if (trec_start(&r, &tsrv) == 0) {
            while (at < in.len) {
                size_t n = in.len - at < 7 ? in.len - at : 7;
                tfeed(&r, in.p + at, n);
                at += n;
                if ((at < bad_at && r.n_error) || (at >= bad_at + 1 && tclose_code(&r) != 1007)) {
                    good = 0;
                    break;
                }
                if (r.n_error)
                    break;
            }
            ok(good && at < in.len, "big frame in 7-byte pieces: 1007 right after the bad byte (at %zu)", at);
        }
        trec_end(&r);
    }
    sb_free(&in);
}

int main(void)
{
    test_utf8_direct();
    test_utf8_driver_messages();
    test_utf8_fragments();
    test_utf8_fail_fast();
    return done_testing();
}
