/*
 * pmd.h - permessage-deflate (RFC 7692): negotiation and the zlib streams.
 *
 * A driver that negotiated the extension holds a struct pmd (24 bytes).
 * zlib state is allocated only while needed, in a struct pmd_msg: for the
 * life of the connection when it keeps context between messages (the
 * client's, for our inflate stream; ours, when an echo cannot pass the
 * client's bytes through). A connection that keeps none uses, while it
 * receives a compressed message, the one pmd_msg and inflate stream of the
 * owner's eev_deflate_shared (one thread runs every driver of it): only a
 * message still open when its bytes run out (it spans reads or frames)
 * moves to a private copy (inflateCopy), so whole messages allocate
 * nothing.
 */
#ifndef EEV_PMD_H
#define EEV_PMD_H

#include <stddef.h>
#include <stdint.h>

#include "eev/driver.h"
#include "handshake.h"

/* The agreed parameters. */
struct pmd_params {
    uint8_t s_bits, c_bits; /* window bits of the server's / client's compressor */
    uint8_t s_nct, c_nct;   /* no context takeover */
    uint8_t s_bits_sent;    /* server_max_window_bits appears in the response */
    uint8_t c_bits_sent;    /* client_max_window_bits appears in the response */
};

/* pmd.flags */
enum {
    PMD_PASS = 1 << 0,    /* parameters allow echoing compressed bytes as received */
    PMD_SYNC = 1 << 1,    /* both-takeover case: our stream still mirrors the client's */
    PMD_MSG_PASS = 1 << 2, /* the open message will be echoed as received */
    PMD_ECHOED = 1 << 3,  /* the open message was echoed as received */
    PMD_ZEND = 1 << 4,    /* the open message's DEFLATE stream ended (BFINAL) */
    PMD_CLIENT = 1 << 5,  /* we are the client */
    PMD_RAW = 1 << 6,     /* client: deliver compressed messages as received */
    PMD_SHARED = 1 << 7,  /* m is the owner's shared pmd_msg (held for this message) */
};

/* The zlib streams and the kept bytes of the open message. */
struct pmd_msg {
    struct z_stream_s *inf;   /* inflate: the connection's (context kept), this
                               * message's, or the shared one's; or NULL */
    struct z_stream_s *def;   /* our own compressor (context kept), or NULL */
    uint8_t *zmsg;            /* compressed bytes of the open message, kept for the echo */
    const uint8_t *zsrc;      /* ... or where they lie in the input (whole single frame) */
    uint32_t zlen, zcap;      /* bytes in zmsg, and its size */
    uint8_t busy;             /* the shared one: held by a driver */
};

struct pmd {
    struct pmd_params p;
    uint8_t flags;            /* PMD_* */
    uint8_t tail_used;        /* bytes of the 00 00 ff ff tail inflated */
    uint32_t zwire;           /* compressed bytes of the open message so far */
    uint32_t budget;          /* bytes inflated in this eev_driver_recv() call (saturating) */
    struct pmd_msg *m;        /* streams and kept bytes, or NULL (see above) */
};

/* ---- negotiation (pmd_negotiate.c) ---- */

/* Server: picks the first acceptable permessage-deflate offer of the
 * request. Returns 1 (and *out), or 0 when there is none to accept. */
int pmd_accept_offer(const http_head *h, const eev_deflate_options *o, struct pmd_params *out);

/* Server: the response header line for p ("Sec-WebSocket-Extensions: ...
 * \r\n"); returns its length (cap >= 160 is enough). */
size_t pmd_format_response(const struct pmd_params *p, char *buf, size_t cap);

/* Client: the offer header line; returns its length. */
size_t pmd_format_offer(const eev_deflate_options *o, char *buf, size_t cap);

/* Client: checks the response's extensions against what we offered.
 * Returns 1 (negotiated, *out), 0 (declined) or -1 with *why. */
int pmd_check_response(const http_head *h, const eev_deflate_options *o, struct pmd_params *out,
                       const char **why);

/* ---- streams (pmd.c) ---- */

/* Sets up a driver's extension state after negotiation; role is 0
 * (server) or PMD_CLIENT, with PMD_RAW for deliver_compressed. NULL: no
 * memory. */
struct pmd *pmd_new(const struct pmd_params *p, unsigned role);
void pmd_free(struct pmd *z);

/* A compressed message's payload is arriving: makes sure z->m is there
 * (the shared one when the connection keeps no context and sh is free).
 * Returns 0 or EEV_ERR_NOMEM. */
int pmd_msg_open(struct pmd *z, eev_deflate_shared *sh);

/* Inflates in[0..*in_len) (then the 00 00 ff ff tail when fin) into
 * out[0..cap); advances *in and *in_len; *produced gets the bytes
 * written. After pmd_msg_open(). Returns 1 when called again could
 * produce more (output full), 0 when the input is used up, -1 on corrupt
 * data (*why) or -2 when out of memory. */
int pmd_inflate(struct pmd *z, eev_deflate_shared *sh, const uint8_t **in, size_t *in_len, int fin,
                uint8_t *out, size_t cap, size_t *produced, const char **why);

/* The open message goes on beyond this input: a message on the shared
 * state moves to a private copy. Returns 0 or EEV_ERR_NOMEM (the message's
 * state is then gone). */
int pmd_msg_hold(struct pmd *z);

/* The open message is complete or dropped: per-message state goes. */
void pmd_msg_end(struct pmd *z);

/* Compresses p[0..len) as one message (sync flush, tail removed) into a
 * malloc'd buffer *out of *out_len bytes. Returns 0 or EEV_ERR_NOMEM. */
int pmd_deflate(struct pmd *z, const eev_deflate_options *o, const uint8_t *p, size_t len,
                uint8_t **out, size_t *out_len);

/* A message compressed elsewhere (eev_driver_send_compressed()) went out:
 * our own compressor starts afresh, and our stream no longer mirrors the
 * client's. */
void pmd_sent_foreign(struct pmd *z);

/* Appends compressed bytes of the open message to z->m->zmsg (after
 * pmd_msg_open()). Returns 0 or EEV_ERR_NOMEM. pmd_keep_grow() says by how
 * much zmsg would grow. */
int pmd_keep(struct pmd *z, const uint8_t *p, size_t n);
size_t pmd_keep_grow(const struct pmd *z, size_t n);

/* Message memory held (the kept compressed bytes), for eev_driver_mem(). */
size_t pmd_mem(const struct pmd *z);

#endif
