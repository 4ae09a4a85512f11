/*
 * tls.c - wss:// for echo-bench: an OpenSSL client context (TLS 1.2+,
 * ALPN http/1.1, the server verified against --cafile or the system store
 * unless --insecure), and read/write of one connection through it, with
 * the same contract as read()/writev() on the socket. --tls-resume offers
 * the last session's ticket on every new connection (resumed handshakes).
 */
#include <errno.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"
#include "tls_batch.h"

static SSL_CTX *ctx;
static SSL_SESSION *last_session; /* --tls-resume: offered to the next connection */
static unsigned char gather[TLS_RECORD_MAX];

static int on_new_session(SSL *ssl, SSL_SESSION *sess)
{
    (void)ssl;
    if (!g.tls_resume)
        return 0;
    SSL_SESSION_free(last_session);
    last_session = sess;
    return 1; /* we keep the reference */
}

int tls_client_init(void)
{
    ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx)
        return -1;
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE |
                              SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_CTX_set_read_ahead(ctx, 1);
    SSL_CTX_set_alpn_protos(ctx, (const unsigned char *)"\x08http/1.1", 9);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(ctx, on_new_session);
    if (g.insecure) {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    } else {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
        if ((g.cafile ? SSL_CTX_load_verify_locations(ctx, g.cafile, NULL)
                      : SSL_CTX_set_default_verify_paths(ctx)) != 1) {
            fprintf(stderr, "echo-bench: --cafile %s: %s\n", g.cafile ? g.cafile : "(system)",
                    ERR_reason_error_string(ERR_get_error()));
            return -1;
        }
    }
    return 0;
}

int tls_conn_start(conn *c)
{
    c->ssl = SSL_new(ctx);
    if (!c->ssl || SSL_set_fd(c->ssl, c->fd) != 1)
        return -1;
    SSL_set_connect_state(c->ssl);
    if (!g.insecure) {
        /* Check the name or address in the URL. */
        X509_VERIFY_PARAM *vp = SSL_get0_param(c->ssl);
        if (X509_VERIFY_PARAM_set1_ip_asc(vp, g.tls_host) != 1)
            SSL_set1_host(c->ssl, g.tls_host);
    }
    if (strspn(g.tls_host, "0123456789.:abcdefABCDEF") != strlen(g.tls_host))
        SSL_set_tlsext_host_name(c->ssl, g.tls_host); /* SNI: names only */
    if (last_session)
        SSL_set_session(c->ssl, last_session);
    c->tls_want = 0;
    return 0;
}

void tls_conn_end(conn *c)
{
    if (!c->ssl)
        return;
    if (SSL_is_init_finished(c->ssl) && !(c->tls_want & TLSW_DEAD))
        SSL_shutdown(c->ssl);
    SSL_free(c->ssl);
    c->ssl = NULL;
    ERR_clear_error();
}

/* err: SSL_get_error() of the failed call. */
static ssize_t failed(conn *c, int err)
{
    if (err == SSL_ERROR_WANT_READ) {
        errno = EAGAIN;
        return -1;
    }
    if (err == SSL_ERROR_WANT_WRITE) {
        c->tls_want |= TLSW_WRITE;
        errno = EAGAIN;
        return -1;
    }
    c->tls_want |= TLSW_DEAD;
    if (err == SSL_ERROR_ZERO_RETURN)
        return 0;
    unsigned long e = ERR_get_error();
    if (e && !g.quiet && g.conn_errors < 10)
        fprintf(stderr, "echo-bench: conn %u: tls: %s\n", c->id, ERR_reason_error_string(e));
    ERR_clear_error();
    if (err == SSL_ERROR_SYSCALL && errno == 0)
        return 0;
    if (err != SSL_ERROR_SYSCALL)
        errno = EPROTO;
    return -1;
}

ssize_t tls_read(conn *c, void *buf, size_t len)
{
    size_t got = 0, n;
    c->tls_want &= (uint8_t)~TLSW_WRITE;
    while (got < len) {
        int rv = SSL_read_ex(c->ssl, (char *)buf + got, len - got, &n);
        if (rv != 1) {
            if (got)
                break;
            return failed(c, SSL_get_error(c->ssl, rv));
        }
        got += n;
        if (!SSL_has_pending(c->ssl))
            break;
    }
    return (ssize_t)got;
}

/* Small pieces are gathered into one record (tls_batch.h); after
 * WANT_WRITE the caller retries with a queue that starts with the same
 * bytes (see the server's tls.c). */
ssize_t tls_writev(conn *c, const struct iovec *iov, int cnt)
{
    int err;

    c->tls_want &= (uint8_t)~TLSW_WRITE;
    size_t done = tls_write_batch(c->ssl, iov, cnt, gather, &err);
    if (done)
        return (ssize_t)done;
    if (err == SSL_ERROR_NONE) { /* only empty pieces */
        errno = EAGAIN;
        return -1;
    }
    if (failed(c, err) == 0)
        errno = EPIPE;
    return -1;
}
