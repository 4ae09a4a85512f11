/*
 * tls_batch.h - writes a batch of iovecs through one OpenSSL connection.
 * Shared by the server (src/echo-ev/tls.c) and echo-bench
 * (tools/echo-bench/tls.c), which compile it in; not part of libeev.
 */
#ifndef EEV_TLS_BATCH_H
#define EEV_TLS_BATCH_H

#include <openssl/ssl.h>
#include <stddef.h>
#include <sys/uio.h>

#define TLS_RECORD_MAX 16384 /* TLS plaintext record limit */

/*
 * Seals iov[0, cnt) in order as TLS records with SSL_write_ex. A piece of
 * a record or more goes to SSL_write as it is; smaller pieces are copied
 * into gather (TLS_RECORD_MAX bytes, the caller's) and sealed as one
 * record, so a batch of small messages costs one record and one write(2),
 * not one each.
 *
 * Returns the bytes written. *err is SSL_ERROR_NONE when the whole batch
 * went, else SSL_get_error() of the SSL_write_ex that stopped it (after
 * some bytes went, the next call meets that error again). After
 * SSL_ERROR_WANT_WRITE or _WANT_READ the caller must retry with a batch
 * that starts with the same bytes; they may have moved
 * (SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER), as the gathered copy does.
 */
size_t tls_write_batch(SSL *ssl, const struct iovec *iov, int cnt, unsigned char *gather, int *err);

#endif
