/*
 * tls_batch.c - see tls_batch.h.
 */
#include "tls_batch.h"

#include <string.h>

/* Copies the next TLS_RECORD_MAX bytes of the stream, from iov[i] + off
 * on, into gather. Returns how many. */
static size_t gather_record(const struct iovec *iov, int cnt, int i, size_t off, unsigned char *gather)
{
    size_t got = 0;

    for (int j = i; j < cnt && got < TLS_RECORD_MAX; j++) {
        size_t from = j == i ? off : 0;
        size_t k = iov[j].iov_len - from;
        if (k > TLS_RECORD_MAX - got)
            k = TLS_RECORD_MAX - got;
        memcpy(gather + got, (const unsigned char *)iov[j].iov_base + from, k);
        got += k;
    }
    return got;
}

size_t tls_write_batch(SSL *ssl, const struct iovec *iov, int cnt, unsigned char *gather, int *err)
{
    size_t done = 0, off = 0, n, w;
    int i = 0;

    *err = SSL_ERROR_NONE;
    while (i < cnt) {
        const unsigned char *p = (const unsigned char *)iov[i].iov_base + off;
        n = iov[i].iov_len - off;
        if (n == 0) {
            i++, off = 0;
            continue;
        }
        if (n < TLS_RECORD_MAX && i + 1 < cnt) {
            n = gather_record(iov, cnt, i, off, gather);
            p = gather;
        }
        int rv = SSL_write_ex(ssl, p, n, &w);
        if (rv != 1) {
            *err = SSL_get_error(ssl, rv);
            break;
        }
        done += w;
        /* Advance over what was written. */
        while (w && i < cnt) {
            size_t k = iov[i].iov_len - off;
            if (w < k) {
                off += w;
                w = 0;
            } else {
                w -= k;
                i++, off = 0;
            }
        }
    }
    return done;
}
