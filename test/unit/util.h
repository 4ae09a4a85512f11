/*
 * util.h - shared helpers for the driver unit tests: a recording set of
 * callbacks, guarded feeding, frame builders, an output frame parser and
 * the split runner that feeds an input whole, in two pieces at every
 * index and one byte at a time, and compares the transcripts.
 */
#ifndef EEV_TEST_UTIL_H
#define EEV_TEST_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "eev/driver.h"
#include "tap.h"

/* A growable byte string. */
typedef struct sbuf {
    uint8_t *p;
    size_t len, cap;
} sbuf;

void sb_put(sbuf *b, const void *p, size_t len);
void sb_puts(sbuf *b, const char *s);
void sb_printf(sbuf *b, const char *fmt, ...) TAP_PRINTF(2, 3);
void sb_reset(sbuf *b);
void sb_free(sbuf *b);

/* The mask key used by every client frame the tests build (RFC §5.7). */
extern const uint8_t tmask_key[4];

/* Appends a frame: b0 is FIN|RSV|opcode, masked uses tmask_key, the
 * length uses the shortest encoding. */
void sb_frame(sbuf *b, uint8_t b0, int masked, const void *p, size_t len);
/* Appends only a header announcing len bytes (shortest encoding). */
void sb_frame_header(sbuf *b, uint8_t b0, int masked, uint64_t len);

/* One parsed output frame. data is an unmasked copy (caller frees via
 * tfr_free). */
typedef struct tfr {
    int fin, rsv, op, masked;
    uint8_t key[4];
    uint64_t len;
    size_t hdr_len;
    uint8_t *data;
} tfr;

/* Parses one frame at p; returns bytes used, 0 when incomplete. */
size_t tfr_parse(const uint8_t *p, size_t len, tfr *f);
void tfr_free(tfr *f);
/* Number of complete frames in out. */
size_t tfr_count(const sbuf *out);

/* What a scenario's driver does and how it starts. */
typedef struct tscn {
    eev_options opt;
    int open;          /* complete the handshake before the input */
    int echo;          /* on_message: eev_driver_send_message */
    int http_status;   /* on_request for non-upgrade: eev_driver_http_reply */
    int http_close;    /* ... with close */
    int fail_callback; /* on_message returns -1 */
    const char *upgrade;   /* server: the request that opens it (NULL: treq_upgrade) */
    const char *resp_extra; /* client: header lines added to the 101 response */
} tscn;

/* Everything a driver did. */
typedef struct trec {
    const tscn *scn;
    eev_driver *d;
    sbuf log;  /* one text line per callback */
    sbuf out;  /* bytes drained from the output queue */
    sbuf msgs; /* payloads of all messages, concatenated */
    sbuf req;  /* last request: "method|target|path|query|minor|ws" + headers */
    int n_request, n_open, n_message, n_ping, n_pong, n_close, n_error;
    int error_code;
    eev_close_arg close; /* last on_close (reason not kept) */
    sbuf close_reason;
    int send_rv;         /* return of the last send from a callback */
    int fatal;           /* a recv returned negative */
    size_t out_at_first_error; /* out.len when on_error fired */
} trec;

/* Creates the driver (and, with scn->open, completes the handshake and
 * clears the record). Returns 0, or -1 (after a failed ok()). */
int trec_start(trec *r, const tscn *scn);
void trec_end(trec *r);
/* Clears log, out and counters but keeps the driver. */
void trec_clear(trec *r);

/* Copies p into a buffer that ends at a PROT_NONE page and feeds it;
 * then drains the output into r->out. Returns what recv returned. */
ssize_t tfeed(trec *r, const void *p, size_t len);
void tdrain(trec *r);

/* Status code of the last Close frame in r->out: the code, 0 for an empty
 * Close, -1 when there is none. */
int tclose_code(const trec *r);
/* Status code of the first Close frame found in r->out, or -1. */
int tlast_op(const trec *r);

/* The standard upgrade request, and the RFC 6455 sample key. */
extern const char treq_upgrade[];

/*
 * Runs scn over in: whole (guarded), in two pieces at every index (sampled
 * for long inputs) and one byte at a time. Checks all transcripts are
 * identical and leaves the whole run in *whole (caller calls trec_end).
 */
void tsplit(const char *name, const tscn *scn, const void *in, size_t len, trec *whole);

/* Builds a client-role driver, completes the handshake from its own key. */
int topen_client(trec *r, const tscn *scn);

/* Hex dump helper for notes. */
const char *thex(const void *p, size_t len);



/* Runs tsplit and checks the driver failed the connection with code: a
 * Close with that code is the last frame queued, on_error reported it, no
 * message was delivered, reading stopped and on_close came once. */
void tfail(const char *name, const tscn *scn, const void *in, size_t len, int code);

/* Runs tsplit and checks exactly one message with (op, p, len) arrived and
 * nothing failed. */
void tmsg(const char *name, const tscn *scn, const void *in, size_t len, int op, const void *p, size_t plen);

/* Common scenarios: open server, open client. */
extern const tscn tsrv, tcli;
#endif
