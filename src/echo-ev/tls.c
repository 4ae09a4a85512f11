/*
 * tls.c - wss:// with OpenSSL 3, used the way a careful daemon uses it:
 * TLS 1.2 and 1.3 only, Mozilla's "intermediate" cipher list, ECDSA and/or
 * RSA certificates, ALPN http/1.1, stateless session tickets (no server
 * cache), client renegotiation refused, and released record buffers so an
 * idle connection holds only the SSL object.
 *
 * The transport reads and writes through OpenSSL's socket BIO on the
 * connection's own non-blocking fd; WANT_READ/WANT_WRITE become libev
 * events (tls_events), never a retry loop.
 */
#include "tls.h"

#include <errno.h>
#include <ev.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "conn.h"
#include "log.h"
#include "metrics.h"
#include "tls_batch.h"

/* Mozilla Server Side TLS "intermediate" (v5.7), TLS 1.2 part; the TLS 1.3
 * suites are OpenSSL's defaults, which are the same three. */
static const char intermediate_ciphers[] =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"
    "DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:DHE-RSA-CHACHA20-POLY1305";

/* nginx's wording, for a browser pointed at http:// on the TLS port. */
static const char plain_http_reply[] =
    "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nContent-Length: 57\r\n"
    "Connection: close\r\n\r\nThe plain HTTP request was sent to a TLS port: use https\n";

struct tls_server {
    SSL_CTX *ctx; /* for new handshakes; open connections hold their own reference */
    const struct config *cfg;
    struct metrics *m;
    unsigned char gather[TLS_RECORD_MAX]; /* small queued pieces, sealed as one record */
};

enum {
    T_UP = 1 << 0,          /* handshake complete */
    T_READ_WANTS_W = 1 << 1, /* SSL_read needs the socket writable */
    T_WRITE_WANTS_R = 1 << 2, /* SSL_write needs the socket readable */
    T_MORE = 1 << 3,        /* records left in OpenSSL after a full buffer */
    T_PEEKED = 1 << 4,      /* a first byte came (and was not plain HTTP) */
    T_RENEG = 1 << 5,       /* the client tried to renegotiate */
    T_DONE = 1 << 6,        /* failed or close_notify sent: no more shutdown */
};

struct tls_conn {
    SSL *ssl;
    struct tls_server *ts;
    uint8_t flags;
};

/* ---- context ---- */

static int select_alpn(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                       const unsigned char *in, unsigned int inlen, void *arg)
{
    static const unsigned char ours[] = "\x08http/1.1";
    unsigned char *sel;

    (void)ssl;
    (void)arg;
    /* A client that offers ALPN but not http/1.1 cannot talk to us
     * (RFC 7301 §3.2: no_application_protocol). */
    if (SSL_select_next_proto(&sel, outlen, ours, sizeof(ours) - 1, in, inlen) != OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_ALERT_FATAL;
    *out = sel;
    return SSL_TLSEXT_ERR_OK;
}

/* SSL_OP_NO_RENEGOTIATION answers a renegotiating ClientHello with a
 * no_renegotiation alert and carries on; we close the connection instead. */
static void on_info(const SSL *ssl, int where, int ret)
{
    struct tls_conn *t = SSL_get_app_data(ssl);

    if (!t)
        return;
    if ((where & SSL_CB_WRITE_ALERT) == SSL_CB_WRITE_ALERT && (ret & 0xff) == SSL_AD_NO_RENEGOTIATION)
        t->flags |= T_RENEG;
    if ((where & SSL_CB_HANDSHAKE_START) && (t->flags & T_UP) && SSL_version(ssl) < TLS1_3_VERSION)
        t->flags |= T_RENEG;
}

/* The newest OpenSSL error as text, for one log line. */
static const char *ssl_reason(char *buf, size_t cap)
{
    unsigned long e = ERR_peek_last_error();

    if (!e)
        return "unknown error";
    const char *r = ERR_reason_error_string(e);
    if (r)
        snprintf(buf, cap, "%s", r);
    else
        ERR_error_string_n(e, buf, cap);
    return buf;
}

/* "serial 1A2B, expires 2027-01-01" of the certificate last loaded. */
static void describe(SSL_CTX *ctx, char *buf, size_t cap)
{
    X509 *x = SSL_CTX_get0_certificate(ctx);
    BIGNUM *bn = x ? ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL) : NULL;
    char *hex = bn ? BN_bn2hex(bn) : NULL;
    struct tm tm;
    char when[32] = "?";

    if (x && ASN1_TIME_to_tm(X509_get0_notAfter(x), &tm))
        strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%SZ", &tm);
    snprintf(buf, cap, "serial %s, expires %s", hex ? hex : "?", when);
    OPENSSL_free(hex);
    BN_free(bn);
}

/* A new context with cfg's certificate/key pairs. Returns NULL after
 * writing the reason into err. */
static SSL_CTX *load(const struct config *cfg, char *err, size_t cap)
{
    char why[160];
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

    ERR_clear_error();
    if (!ctx) {
        snprintf(err, cap, "cannot create a TLS context: %s", ssl_reason(why, sizeof(why)));
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION);
    /* A TCP EOF between records is an ordinary end (many clients close
     * without close_notify); one inside a record is still caught, by the
     * bytes left over (failed()). */
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION | SSL_OP_IGNORE_UNEXPECTED_EOF);
    /* Mozilla intermediate: the client picks among good ciphers. */
    SSL_CTX_clear_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE);
    /* Release record buffers when empty (an idle connection keeps none);
     * writes may be partial and retried from a moved buffer, since the
     * queue that feeds them is copied or gathered on each call. */
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE |
                              SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    /* One read() takes several records. */
    SSL_CTX_set_read_ahead(ctx, 1);
    /* Stateless tickets resume sessions; a server-side cache would only
     * cost memory. One ticket per handshake is what browsers use. */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_num_tickets(ctx, 1);
    SSL_CTX_set_dh_auto(ctx, 1);
    SSL_CTX_set_alpn_select_cb(ctx, select_alpn, NULL);
    SSL_CTX_set_info_callback(ctx, on_info);
    if (SSL_CTX_set_cipher_list(ctx, intermediate_ciphers) != 1 ||
        SSL_CTX_set1_groups_list(ctx, "X25519:P-256:P-384") != 1) {
        snprintf(err, cap, "cipher/group setup: %s", ssl_reason(why, sizeof(why)));
        goto Fail;
    }
    for (int i = 0; i < cfg->tls_pair_cnt; i++) {
        const char *cert = cfg->tls_certs[i], *key = cfg->tls_keys[i];
        if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
            snprintf(err, cap, "cannot load certificate %s: %s", cert, ssl_reason(why, sizeof(why)));
            goto Fail;
        }
        if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 ||
            SSL_CTX_check_private_key(ctx) != 1) {
            snprintf(err, cap, "cannot use key %s for %s: %s", key, cert, ssl_reason(why, sizeof(why)));
            goto Fail;
        }
    }
    ERR_clear_error();
    return ctx;
Fail:
    ERR_clear_error();
    SSL_CTX_free(ctx);
    return NULL;
}

struct tls_server *tls_server_new(const struct config *cfg, struct metrics *m)
{
    struct tls_server *ts = calloc(1, sizeof(*ts));
    char err[512], what[128];

    if (!ts) {
        fprintf(stderr, "echo-ev: out of memory\n");
        return NULL;
    }
    ts->cfg = cfg;
    ts->m = m;
    ts->ctx = load(cfg, err, sizeof(err));
    if (!ts->ctx) {
        fprintf(stderr, "echo-ev: --tls-cert/--tls-key: %s\n", err);
        free(ts);
        return NULL;
    }
    describe(ts->ctx, what, sizeof(what));
    log_info("tls: certificate loaded (%s)", what);
    return ts;
}

void tls_server_reload(struct tls_server *ts)
{
    char err[512], what[128];
    unsigned char keys[80];
    SSL_CTX *ctx = load(ts->cfg, err, sizeof(err));

    if (!ctx) {
        log_error("tls: reload failed, keeping the current certificate: %s", err);
        return;
    }
    /* Keep the ticket keys, so sessions resume across a reload. */
    if (SSL_CTX_get_tlsext_ticket_keys(ts->ctx, keys, sizeof(keys)) > 0)
        SSL_CTX_set_tlsext_ticket_keys(ctx, keys, sizeof(keys));
    OPENSSL_cleanse(keys, sizeof(keys));
    SSL_CTX_free(ts->ctx); /* connections that use it keep a reference */
    ts->ctx = ctx;
    describe(ctx, what, sizeof(what));
    log_info("tls: certificate reloaded (%s)", what);
}

void tls_server_del(struct tls_server *ts)
{
    if (!ts)
        return;
    SSL_CTX_free(ts->ctx);
    free(ts);
}

/* ---- one connection ---- */

struct tls_conn *tls_conn_new(struct tls_server *ts, int fd)
{
    struct tls_conn *t = calloc(1, sizeof(*t));

    if (!t)
        return NULL;
    t->ts = ts;
    t->ssl = SSL_new(ts->ctx);
    if (!t->ssl || SSL_set_fd(t->ssl, fd) != 1) {
        SSL_free(t->ssl);
        free(t);
        ERR_clear_error();
        return NULL;
    }
    SSL_set_accept_state(t->ssl);
    SSL_set_app_data(t->ssl, t);
    return t;
}

void tls_shutdown(struct tls_conn *t)
{
    if ((t->flags & (T_UP | T_DONE)) != T_UP)
        return;
    t->flags |= T_DONE;
    SSL_shutdown(t->ssl); /* queues close_notify; no wait for the peer's */
    ERR_clear_error();
}

void tls_conn_del(struct tls_conn *t)
{
    if (!t)
        return;
    tls_shutdown(t);
    SSL_free(t->ssl);
    free(t);
}

int tls_events(const struct tls_conn *t)
{
    return (t->flags & T_READ_WANTS_W ? EV_WRITE : 0) | (t->flags & T_WRITE_WANTS_R ? EV_READ : 0);
}

int tls_revents(const struct tls_conn *t, int revents)
{
    if ((t->flags & T_READ_WANTS_W) && (revents & EV_WRITE))
        revents |= EV_READ;
    if ((t->flags & T_WRITE_WANTS_R) && (revents & EV_READ))
        revents |= EV_WRITE;
    return revents;
}

int tls_buffered(const struct tls_conn *t)
{
    return t->flags & T_MORE;
}

int tls_handshaking(const struct tls_conn *t)
{
    return !(t->flags & T_UP);
}

void tls_count_timeout(struct tls_conn *t)
{
    if (!(t->flags & T_UP))
        t->ts->m->tls_failures[TLSF_HANDSHAKE_TIMEOUT]++;
}

/* Counts and logs (once) what broke the connection; returns -1/EPROTO. */
static ssize_t broken(struct conn *c, int kind, const char *what)
{
    struct tls_conn *t = c->tls;
    char peer[64];

    t->flags |= T_DONE;
    t->ts->m->tls_failures[kind]++;
    log_info("#%u %s tls: %s", c->id, conn_peer(c, peer, sizeof(peer)), what);
    ERR_clear_error();
    errno = EPROTO;
    return -1;
}

/* Plain HTTP on the TLS port: a short 400, as nginx does, then close. */
static int plain_http(struct conn *c)
{
    struct tls_conn *t = c->tls;
    unsigned char b;
    char sink[4096];

    if (recv(c->io.fd, &b, 1, MSG_PEEK) != 1)
        return 0; /* nothing yet, EOF or error: SSL_read will say */
    t->flags |= T_PEEKED;
    if (b < 'A' || b > 'Z') /* a TLS record starts with 0x16 */
        return 0;
    /* Read what the request sent so close() does not turn the reply into a
     * reset, then answer. */
    for (int i = 0; i < 4 && recv(c->io.fd, sink, sizeof(sink), 0) == (ssize_t)sizeof(sink); i++)
        ;
    if (write(c->io.fd, plain_http_reply, sizeof(plain_http_reply) - 1) < 0) {
        /* the client is gone already */
    }
    shutdown(c->io.fd, SHUT_WR);
    return 1;
}

static void handshake_done(struct conn *c)
{
    struct tls_conn *t = c->tls;
    int resumed = SSL_session_reused(t->ssl);
    char peer[64];

    t->flags |= T_UP;
    t->ts->m->tls_handshakes[resumed ? 1 : 0]++;
    log_debug("#%u %s tls: %s %s%s", c->id, conn_peer(c, peer, sizeof(peer)), SSL_get_version(t->ssl),
              SSL_get_cipher_name(t->ssl), resumed ? " (resumed)" : "");
}

/* A failed SSL_read/SSL_write: classify, count, log. Returns 0 for a peer
 * that simply went away, else -1 with errno set. */
static ssize_t failed(struct conn *c, int err)
{
    struct tls_conn *t = c->tls;
    char why[200], what[240];
    int saved = errno;

    if (t->flags & T_RENEG)
        return broken(c, TLSF_RENEGOTIATION, "client renegotiation refused");
    if (err == SSL_ERROR_ZERO_RETURN || err == SSL_ERROR_SYSCALL) {
        /* close_notify, or the TCP connection ended (IGNORE_UNEXPECTED_EOF
         * makes that look the same) or broke. */
        int reset = err == SSL_ERROR_SYSCALL && saved != 0;
        if (!(t->flags & T_UP)) {
            if (!(t->flags & T_PEEKED) && !reset) {
                ERR_clear_error();
                return 0; /* connected and left: a port probe, not a TLS error */
            }
            return broken(c, TLSF_HANDSHAKE_EOF, reset ? "connection reset during the handshake"
                                                       : "connection closed during the handshake");
        }
        if (SSL_has_pending(t->ssl))
            return broken(c, TLSF_TRUNCATED, "connection closed in the middle of a record");
        ERR_clear_error();
        if (reset) {
            t->flags |= T_DONE;
            errno = saved;
            return -1;
        }
        /* The peer is done sending; we may still write what it is owed.
         * Whether the end was clean is for the WebSocket close to say. */
        return 0;
    }
    snprintf(what, sizeof(what), "%s: %s", t->flags & T_UP ? "protocol error" : "handshake failed",
             ssl_reason(why, sizeof(why)));
    return broken(c, t->flags & T_UP ? TLSF_PROTOCOL : TLSF_HANDSHAKE, what);
}

ssize_t tls_read(struct conn *c, void *buf, size_t len)
{
    struct tls_conn *t = c->tls;
    size_t got = 0, n;

    if (t->flags & T_DONE) {
        /* After close_notify or a failure nothing more is decrypted;
         * lingering conn.c only wants the socket drained. */
        ssize_t r = read(c->io.fd, buf, len);
        return r;
    }
    if (!(t->flags & T_PEEKED) && plain_http(c))
        return broken(c, TLSF_PLAIN_HTTP, "plain HTTP request on the TLS port (400 sent)");
    t->flags &= (uint8_t) ~(T_READ_WANTS_W | T_MORE);
    ERR_clear_error();
    while (got < len) {
        int rv = SSL_read_ex(t->ssl, (char *)buf + got, len - got, &n);
        if (!(t->flags & T_UP) && SSL_is_init_finished(t->ssl))
            handshake_done(c);
        if (t->flags & T_RENEG)
            return broken(c, TLSF_RENEGOTIATION, "client renegotiation refused");
        if (rv == 1) {
            got += n;
            /* epoll reports what is still in the socket, not in OpenSSL. */
            if (!SSL_has_pending(t->ssl))
                break;
            continue;
        }
        int err = SSL_get_error(t->ssl, rv);
        if (err == SSL_ERROR_WANT_READ)
            break;
        if (err == SSL_ERROR_WANT_WRITE) {
            t->flags |= T_READ_WANTS_W;
            break;
        }
        if (got)
            return (ssize_t)got; /* deliver it; the next call fails the same way */
        return failed(c, err);
    }
    if (got == len && SSL_has_pending(t->ssl))
        t->flags |= T_MORE;
    if (got)
        return (ssize_t)got;
    errno = EAGAIN;
    return -1;
}

/*
 * Seals the batch as records (tls_batch.h: small pieces gathered into
 * one record). After WANT_WRITE or WANT_READ, the caller retries with a
 * queue that starts with the same bytes (its queue is append-only and
 * nothing was consumed), which is what OpenSSL requires.
 */
ssize_t tls_writev(struct conn *c, const struct iovec *iov, int cnt)
{
    struct tls_conn *t = c->tls;
    int err;

    if (t->flags & T_DONE) {
        errno = EPIPE;
        return -1;
    }
    t->flags &= (uint8_t)~T_WRITE_WANTS_R;
    ERR_clear_error();
    size_t done = tls_write_batch(t->ssl, iov, cnt, t->ts->gather, &err);
    if (err == SSL_ERROR_WANT_READ) {
        t->flags |= T_WRITE_WANTS_R;
    } else if (err != SSL_ERROR_NONE && err != SSL_ERROR_WANT_WRITE && !done) {
        if (failed(c, err) == 0)
            errno = EPIPE;
        return -1;
    }
    if (done)
        return (ssize_t)done;
    errno = EAGAIN;
    return -1;
}
