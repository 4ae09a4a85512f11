/*
 * tls.h - wss:// with OpenSSL: the server's TLS context (certificates,
 * reload on SIGHUP) and the TLS transport of one connection, which conn.c
 * uses in place of read()/writev() on the socket.
 */
#ifndef EEV_TLS_H
#define EEV_TLS_H

#include <stddef.h>
#include <sys/types.h>
#include <sys/uio.h>

struct config;
struct conn;
struct metrics;
struct tls_server;
struct tls_conn;

/* Loads the certificates and keys named in cfg. Returns the context, or
 * NULL after printing why on stderr. */
struct tls_server *tls_server_new(const struct config *cfg, struct metrics *m);
/* SIGHUP: loads the files again for new handshakes; on any error keeps
 * the old pair and logs one line. */
void tls_server_reload(struct tls_server *ts);
void tls_server_del(struct tls_server *ts);

/* The TLS side of an accepted socket (server role), or NULL on OOM. */
struct tls_conn *tls_conn_new(struct tls_server *ts, int fd);
/* Sends close_notify if the session is up (best effort), then frees. */
void tls_conn_del(struct tls_conn *t);

/* Like read(2) and writev(2) on the socket: >0 bytes, 0 on the peer's
 * close, -1 with errno EAGAIN (wait: see tls_events) or another errno
 * (the connection is broken; already logged and counted). */
ssize_t tls_read(struct conn *c, void *buf, size_t len);
ssize_t tls_writev(struct conn *c, const struct iovec *iov, int cnt);
/* Before shutdown(SHUT_WR): close_notify, best effort. */
void tls_shutdown(struct tls_conn *t);

/* Extra libev events OpenSSL waits for (a read that must write first, or
 * the reverse), and the events to act on when some arrive. */
int tls_events(const struct tls_conn *t);
int tls_revents(const struct tls_conn *t, int revents);
/* Decrypted input is waiting in OpenSSL that epoll cannot report. */
int tls_buffered(const struct tls_conn *t);
/* The TLS handshake is not complete (for the handshake-timeout count). */
int tls_handshaking(const struct tls_conn *t);
/* Counts a handshake that ran out of --handshake-timeout. */
void tls_count_timeout(struct tls_conn *t);

#endif
