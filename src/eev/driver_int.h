/*
 * driver_int.h - the driver object (opaque to users of eev/driver.h),
 * shared by the files that implement it: driver.c (the open connection:
 * frames, messages, close, output) and handshake_recv.c (the CONNECTING
 * state and the auxiliary state, entry points below). Calls go one way,
 * from driver.c into handshake_recv.c.
 */
#ifndef EEV_DRIVER_INT_H
#define EEV_DRIVER_INT_H

#include <stdint.h>

#include "eev/driver.h"
#include "frame.h"
#include "outq.h"

/* Frame decoder states (RFC 6455 §5.2). */
enum { IN_HEADER = 0, IN_PAYLOAD };

/* d->fixed, from the options at init (hot-path checks without d->opt). */
enum {
    FX_BORROW = 1 << 0,       /* server role with borrow_input: echoes may go out from the owner's input */
    FX_SHORT_ANY = 1 << 1,    /* max_message_size allows every 16-bit length */
};

/* flags */
enum {
    F_CLOSE_SENT = 1 << 0,   /* our Close is queued: no more frames out */
    F_CLOSE_RCVD = 1 << 1,   /* the peer's Close arrived */
    F_FAILED = 1 << 2,       /* the connection failed (protocol error) */
    F_REPORTED = 1 << 3,     /* on_close has been called */
    F_SPLIT = 1 << 4,        /* current frame's payload is being copied */
    F_REPLIED = 1 << 5,      /* on_request answered with http_reply */
    F_HTTP_CLOSE = 1 << 6,   /* close after the HTTP response */
    F_IN_REQUEST = 1 << 7,   /* inside on_request: http_reply allowed */
};

/* xflags: where the current input lies (reset by every eev_driver_recv) */
enum {
    X_HDR_INPLACE = 1 << 0, /* the current frame's header is in this input */
    X_MSG_INPLACE = 1 << 1, /* on_message: the message lies in this input,
                             * right behind its own header */
    X_VIEW_JOIN = 1 << 2,   /* the queue's view ends in this input */
};

/* Auxiliary state, allocated only while needed: the handshake buffer
 * while CONNECTING, a control frame split across reads, and (client role,
 * for the driver's life) the pool of masking-key bytes. */
struct hs_state;
struct pmd;

struct eev_driver {
    const eev_callbacks *cb; /* borrowed */
    const eev_options *opt;  /* borrowed, never NULL */
    void *ud;
    outq oq;
    struct hs_state *hs;
    struct pmd *pmd;    /* permessage-deflate, once negotiated */
    uint8_t *msg;       /* reassembly buffer of the open message (malloc) */
    uint32_t msg_len;   /* bytes of the open message received so far */
    uint32_t msg_cap;   /* size of msg (grown with the bytes that arrive) */
    uint32_t remaining; /* payload bytes of the current frame still due
                         * (<= the message limit, which fits 32 bits) */
    uint32_t utf8;      /* validation state of the open text message */
    uint16_t code_sent, code_rcvd;
    uint8_t hdr[FRAME_MAX_HEADER]; /* a header split across reads */
    /* These four in this order: between_messages() reads them at once. */
    uint8_t hdr_have;   /* bytes in hdr */
    uint8_t istate;     /* IN_* */
    uint8_t msg_op;     /* opcode of the open message, 0 when none */
    uint8_t state;      /* eev_state */
    uint8_t mask[4];
    uint8_t mask_phase; /* key offset of the next payload byte */
    uint8_t fb0;        /* FIN/RSV/opcode byte of the current frame */
    uint8_t msg_rsv1;
    uint8_t flags;      /* F_* */
    uint8_t proto;      /* 1 + index of the chosen subprotocol, 0: none */
    uint8_t rsv_ok;     /* RSV bits an extension negotiated (RSV1: deflate) */
    uint8_t yield;      /* eev_driver_recv_yield(): return after this request */
    uint8_t head_req;   /* the request being answered is HEAD: no body */
    uint8_t xflags;     /* X_* */
    uint8_t fixed;      /* FX_*: what the options (fixed for life) allow */
    uint32_t msgs_in;   /* eev_driver_counts(): data messages received */
    uint64_t bytes_in, bytes_out; /* and the payload bytes in and out */
};

/* Defaults for zero option fields. */
#define DEFAULT_MAX_MESSAGE (64ull << 20)
#define DEFAULT_MAX_HEAD 8192

/*
 * Makes room for need bytes in d->msg (the message being received, or an
 * inflated one), growing geometrically but never past limit (the declared
 * final size when known, else the message limit) and asking the owner's
 * on_mem_grow first. Returns 0, EEV_ERR_NOMEM, or 1 when the owner refused:
 * the connection has then failed with the owner's close code.
 */
int driver_msg_reserve(eev_driver *d, size_t need, size_t limit);
/* Asks on_mem_grow for grow more bytes of message memory. Returns 0, 1
 * when refused (the connection failed) or EEV_ERR_NOMEM. */
int driver_mem_ask(eev_driver *d, size_t grow);

/* handshake_recv.c */
ssize_t driver_handshake_recv(eev_driver *d, uint8_t *in, size_t len);
int driver_client_start(eev_driver *d);
void driver_hs_free(eev_driver *d);
/* The handshake is over: drop its buffer (the client keeps its key pool). */
void driver_hs_done(eev_driver *d);
/* Gathers a control payload split across reads; *out and *len show what
 * has arrived so far (the whole payload once d->remaining is 0). Returns 0
 * or EEV_ERR_NOMEM. */
int driver_ctl_append(eev_driver *d, const uint8_t *p, size_t n, const uint8_t **out, size_t *len);

/* Fills out with getrandom() bytes from the driver's pool (client role). */
void driver_random(eev_driver *d, uint8_t *out, size_t n);

#endif
