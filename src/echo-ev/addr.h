/*
 * addr.h - IP address literals, host names and unix paths <-> socket
 * addresses, for the CLI, the listeners and the logs.
 */
#ifndef EEV_ADDR_H
#define EEV_ADDR_H

#include <stddef.h>
#include <sys/socket.h>

/* Parses an IPv4 or IPv6 literal of n bytes (IPv6 optionally in brackets)
 * with a port. Returns 0, or -1 when it is not one. */
int addr_parse(const char *host, size_t n, unsigned port, struct sockaddr_storage *ss, socklen_t *sl);

/* Resolves a host name (getaddrinfo, passive, TCP) into up to max distinct
 * addresses with the port set. Returns how many, or -1 with *why set. */
int addr_resolve(const char *name, unsigned port, struct sockaddr_storage *ss, socklen_t *sl, int max,
                 const char **why);

/* A unix socket address for path. Returns 0, or -1 when the path is too long. */
int addr_unix(const char *path, struct sockaddr_storage *ss, socklen_t *sl);

/* Sets the port of a parsed IPv4 or IPv6 address (unix addresses have none). */
void addr_set_port(struct sockaddr_storage *ss, unsigned port);

/* "1.2.3.4:80", "[::1]:80" or "unix:/path" ("unix" for an unnamed unix
 * peer); v4-mapped IPv6 addresses print as IPv4. */
const char *addr_format(const struct sockaddr *sa, char *buf, size_t cap);

#endif
