/*
 * handshake.h - HTTP/1.1 head parsing and the WebSocket opening handshake
 * (RFC 6455 §4, RFC 9112 for the message syntax).
 */
#ifndef EEV_HANDSHAKE_H
#define EEV_HANDSHAKE_H

#include <stddef.h>

#include "eev/driver.h"

#define HTTP_MAX_HEADERS 64
#define WS_KEY_LEN 24    /* base64 of 16 bytes */
#define WS_ACCEPT_LEN 28 /* base64 of a SHA-1 */

typedef struct http_head {
    eev_request_arg req; /* request line and headers (server side) */
    int status;          /* status code (client side) */
    eev_header headers[HTTP_MAX_HEADERS];
} http_head;

/*
 * Looks for the blank line that ends a head in buf[0..len), resuming the
 * scan at from (the previous len). Returns the head's length including the
 * blank line, or 0 when it has not arrived yet.
 */
size_t http_head_end(const char *buf, size_t len, size_t from);

/* Parse a complete head in place. Return 0, or -1 when malformed (then
 * *why says what). Pointers in h point into buf. */
int http_parse_request(const char *buf, size_t len, http_head *h, const char **why);
int http_parse_response(const char *buf, size_t len, http_head *h, const char **why);

/* The first header called name (case-insensitive), or NULL. */
const eev_header *http_header(const http_head *h, const char *name);

/* Non-zero when some header called name lists token (comma-separated,
 * case-insensitive), as Connection: keep-alive, Upgrade. */
int http_header_has_token(const http_head *h, const char *name, const char *token);

/*
 * Checks a request against RFC 6455 §4.2.1. Returns 0 (and the key) when it
 * is a valid upgrade, else the HTTP status to refuse it with (400, 426)
 * and *why.
 */
int ws_check_request(const http_head *h, const eev_header **key, const char **why);

/* Checks a 101 response against our key (RFC 6455 §4.1 items 1-6). Returns
 * 0 or -1 with *why. */
int ws_check_response(const http_head *h, const char *key, const char *const *offered,
                      const char **chosen, const char **why);

/* Picks the first of ours (in our order) that the request offers, or -1. */
int ws_pick_protocol(const http_head *h, const char *const *ours);

/* Reason phrase for the statuses we send. */
const char *http_reason(int status);

#endif
