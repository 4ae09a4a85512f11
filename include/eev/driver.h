/*
 * eev/driver.h - an I/O-free WebSocket (RFC 6455) driver.
 *
 * A driver is a per-connection protocol engine that knows nothing about
 * sockets. The owner pushes received bytes in with eev_driver_recv(); the
 * driver answers through callbacks (request, open, message, ping, pong,
 * close, error) that fire synchronously inside that call, and queues the
 * bytes to send. The owner takes them as iovec runs with
 * eev_driver_out_iov(), writes them wherever it likes, and reports how many
 * went out with eev_driver_out_consume().
 *
 * The driver allocates only while it holds data: an idle open connection
 * owns no buffers. It has no globals; separate drivers may be used from
 * separate threads, one driver from one thread at a time.
 */
#ifndef EEV_DRIVER_H
#define EEV_DRIVER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct eev_driver eev_driver;

/* zlib streams that drivers used from one thread may share (see
 * eev_deflate_options.shared). */
typedef struct eev_deflate_shared eev_deflate_shared;

typedef enum eev_role { EEV_ROLE_SERVER = 0, EEV_ROLE_CLIENT = 1 } eev_role;

/* RFC 6455 §5.2 opcodes. */
typedef enum eev_opcode {
    EEV_OP_CONTINUATION = 0x0,
    EEV_OP_TEXT = 0x1,
    EEV_OP_BINARY = 0x2,
    EEV_OP_CLOSE = 0x8,
    EEV_OP_PING = 0x9,
    EEV_OP_PONG = 0xA,
} eev_opcode;

/* Ready state, as in the browser API. */
typedef enum eev_state {
    EEV_STATE_CONNECTING = 0, /* handshake in progress (or HTTP keep-alive) */
    EEV_STATE_OPEN = 1,
    EEV_STATE_CLOSING = 2, /* we sent Close and wait for the peer's */
    EEV_STATE_CLOSED = 3,  /* nothing more will be read or queued */
} eev_state;

/* RFC 6455 §7.4.1 status codes (and 1012-1014 from the IANA registry). */
enum eev_close_code {
    EEV_CLOSE_NORMAL = 1000,
    EEV_CLOSE_GOING_AWAY = 1001,
    EEV_CLOSE_PROTOCOL_ERROR = 1002,
    EEV_CLOSE_UNSUPPORTED = 1003,
    EEV_CLOSE_NO_STATUS = 1005,  /* never on the wire */
    EEV_CLOSE_ABNORMAL = 1006,   /* never on the wire */
    EEV_CLOSE_INVALID_DATA = 1007,
    EEV_CLOSE_POLICY = 1008,
    EEV_CLOSE_TOO_BIG = 1009,
    EEV_CLOSE_MANDATORY_EXT = 1010,
    EEV_CLOSE_INTERNAL_ERROR = 1011,
    EEV_CLOSE_TRY_AGAIN = 1013, /* a server limit, not the peer's fault */
};

/* API errors. Peer misbehaviour is never one of these: it becomes a close
 * code and an on_error callback. */
typedef enum eev_error {
    EEV_OK = 0,
    EEV_ERR_NOMEM = -1,    /* allocation failed: fatal, delete the driver */
    EEV_ERR_CALLBACK = -2, /* a callback returned non-zero: fatal */
    EEV_ERR_STATE = -3,    /* not allowed in this state (e.g. Close sent) */
    EEV_ERR_ARG = -4,      /* bad argument (e.g. control payload > 125) */
} eev_error;

/* Returns a static English description of an eev_error value. */
const char *eev_strerror(int rv);

/* One header line of a parsed HTTP head. Not NUL-terminated. */
typedef struct eev_header {
    const char *name;
    size_t name_len;
    const char *value; /* leading and trailing whitespace removed */
    size_t value_len;
} eev_header;

/*
 * A parsed HTTP request head (server role). All pointers are borrowed and
 * valid only until the on_request callback returns. Strings are not
 * NUL-terminated.
 */
typedef struct eev_request_arg {
    const char *method;
    size_t method_len;
    const char *target; /* request-target as sent: path and query */
    size_t target_len;
    const char *path; /* target up to '?' */
    size_t path_len;
    const char *query; /* after '?', or NULL */
    size_t query_len;
    int minor_version; /* HTTP/1.x */
    const eev_header *headers;
    size_t header_cnt;
    int is_websocket; /* the request asks for a WebSocket upgrade */
} eev_request_arg;

/* A complete received message (all fragments joined). */
typedef struct eev_message_arg {
    eev_opcode opcode; /* EEV_OP_TEXT or EEV_OP_BINARY */
    uint8_t *data;     /* unmasked payload; writable; borrowed until the
                        * callback returns (but see eev_driver_send_message) */
    size_t len;
    int rsv1; /* RSV1 of the first frame: with permessage-deflate, the
               * message came compressed and data/len are the inflated
               * bytes (data is NULL with deflate.echo_only, see there) */
    size_t compressed_len; /* payload bytes as received (rsv1 only) */
} eev_message_arg;

typedef struct eev_close_arg {
    uint16_t code_received; /* 1005 when the Close had no code, 1006 when
                             * no Close arrived (failure or transport loss) */
    uint16_t code_sent;     /* 0 when we sent no Close */
    const char *reason;     /* received reason (valid UTF-8), borrowed */
    size_t reason_len;
    int clean; /* both Close frames were exchanged */
} eev_close_arg;

typedef struct eev_error_arg {
    uint16_t close_code; /* the code sent in our Close (1002, 1007, 1009...),
                          * or the HTTP status for a refused handshake */
    const char *message; /* static, for logs */
} eev_error_arg;

typedef struct eev_callbacks {
    /* Server role, optional. Called when a request head has been parsed,
     * before the driver answers it. Return 0 to let the driver answer: a
     * valid upgrade gets 101, anything else is refused. The callback may
     * instead answer by calling eev_driver_http_reply() itself. Non-zero is
     * fatal (EEV_ERR_CALLBACK). */
    int (*on_request)(eev_driver *d, const eev_request_arg *req, void *ud);
    /* The handshake completed; the connection is open. */
    void (*on_open)(eev_driver *d, void *ud);
    /* A complete message. Non-zero is fatal (EEV_ERR_CALLBACK). */
    int (*on_message)(eev_driver *d, const eev_message_arg *m, void *ud);
    /* A ping arrived (it is answered automatically unless no_auto_pong). */
    void (*on_ping)(eev_driver *d, const uint8_t *p, size_t len, void *ud);
    void (*on_pong)(eev_driver *d, const uint8_t *p, size_t len, void *ud);
    /* An open connection ended: called once, for a clean close handshake,
     * a failure or eev_driver_eof(). Never called for a connection that
     * did not open (a refused or abandoned handshake: see on_error and
     * eev_driver_finished()). */
    void (*on_close)(eev_driver *d, const eev_close_arg *c, void *ud);
    /* The peer broke the protocol (or the handshake); a Close with
     * close_code (or an HTTP refusal) has been queued. */
    void (*on_error)(eev_driver *d, const eev_error_arg *e, void *ud);
    /* Optional memory accounting. Called before the driver grows the
     * buffer of the message being received (reassembly, or inflated bytes
     * of a compressed message) by grow bytes. Return 0 to allow it, or a
     * close code (EEV_CLOSE_TOO_BIG, EEV_CLOSE_TRY_AGAIN) to refuse: the
     * connection then fails with that code (on_error, then on_close). The
     * buffer grows with the bytes that arrive, geometrically, never past
     * the message's declared size or max_message_size, so this is called
     * O(log size) times per message. Owners keeping a global budget add
     * grow to their total here and read eev_driver_mem() after each call
     * into the driver for the exact figure (it falls when messages are
     * delivered and queued bytes are sent). */
    int (*on_mem_grow)(eev_driver *d, size_t grow, void *ud);
} eev_callbacks;

/* The largest max_message_size the driver supports: 4 GiB - 1. */
#define EEV_MAX_MESSAGE_SIZE 0xffffffffu

/*
 * permessage-deflate (RFC 7692). Server role: what we accept and prefer;
 * client role: what we offer. Zero fields mean the RFC's defaults.
 */
typedef struct eev_deflate_options {
    int enable; /* negotiate permessage-deflate */
    /* Largest LZ77 window, as bits (8-15; 0: 15). Server: ours is used for
     * what we compress (announced when the client offered the parameter);
     * the client's is requested when its offer allows (a window the client
     * cannot be told to shrink stays 15). Client: asked of the server
     * (server_*, 0: not asked) and offered for ours (client_*). */
    int server_max_window_bits;
    int client_max_window_bits;
    /* Reset the compressor after each message (RFC 7692 §7.1.1). Asking
     * for the client's saves its inflate window between messages. */
    int server_no_context_takeover;
    int client_no_context_takeover;
    int level;     /* zlib level 1-9; 0: 6 */
    int mem_level; /* zlib memLevel 1-9; 0: 8 */
    /* Server role: the owner answers each data message only by echoing it
     * with eev_driver_send_message(). A compressed message that will be
     * echoed as received (see there) is then inflated only to check it:
     * on_message gets data == NULL with len the inflated size. */
    int echo_only;
    /* Client role: compressed messages are delivered as received: on_message
     * gets their compressed payload (fragments joined, without the
     * 00 00 ff ff tail) with rsv1 set, neither inflated nor checked (text
     * is not validated); max_message_size applies to the compressed bytes.
     * For owners that compare or forward compressed bytes (load
     * generators, see eev_driver_send_compressed()). */
    int deliver_compressed;
    /* Bytes one eev_driver_recv() call may inflate (0: 4 MiB); past it the
     * call returns early, leaving the rest of the input to the owner. */
    size_t inflate_budget;
    /* Streams shared by every driver of one thread (from
     * eev_deflate_shared_new()), or NULL: each driver makes its own. */
    eev_deflate_shared *shared;
} eev_deflate_options;

/* The parameters negotiated (eev_driver_deflate()). */
typedef struct eev_deflate_params {
    int server_max_window_bits; /* 8-15 */
    int client_max_window_bits;
    int server_no_context_takeover;
    int client_no_context_takeover;
    /* Server role: compressed messages can be echoed as received, without
     * compressing them again (see eev_driver_send_message). */
    int passthrough;
} eev_deflate_params;

typedef struct eev_options {
    eev_role role;
    /* Largest message (sum of its fragments) accepted, in bytes; larger ones
     * fail with 1009 as soon as a header announces them. 0: 64 MiB; values
     * above EEV_MAX_MESSAGE_SIZE (4 GiB - 1) act as EEV_MAX_MESSAGE_SIZE. */
    uint64_t max_message_size;
    /* Largest HTTP head; larger ones are refused with 431. 0: 8 KiB. */
    size_t max_head_size;
    /* Server: subprotocols we accept, in order of preference, NULL-ended.
     * Client: subprotocols to offer. NULL: none. Strings are borrowed for
     * the driver's lifetime. */
    const char *const *protocols;
    /* Do not answer pings automatically. */
    int no_auto_pong;
    /* Server role: the owner keeps each buffer given to eev_driver_recv()
     * unchanged until it has called eev_driver_out_settle(), so that
     * eev_driver_send_message() may echo a message from that buffer
     * instead of copying it: one that arrived whole gets its header written
     * over the spent bytes of its own (masked) header, and whole small
     * echoes of one buffer are moved together into one run, so a steady
     * echo allocates nothing. */
    int borrow_input;
    /* Client role: Host header, request path ("/" when NULL) and optional
     * Origin. Copied into the request at creation. */
    const char *host;
    const char *path;
    const char *origin;
    eev_deflate_options deflate;
} eev_options;

/*
 * Creates a driver. cb and opt (NULL: server role, defaults) are borrowed:
 * they must stay valid and unchanged for the driver's lifetime, so a
 * server shares one pair among all its connections. In the client role the
 * upgrade request is queued at once (key from getrandom()).
 * Returns 0, EEV_ERR_NOMEM or EEV_ERR_ARG (client role without host).
 */
int eev_driver_new(eev_driver **pd, const eev_callbacks *cb, const eev_options *opt, void *ud);

/* Frees the driver and everything queued. Never call it from a callback. */
void eev_driver_del(eev_driver *d);

/*
 * The same for a driver embedded in memory the caller owns (at least
 * eev_driver_size() bytes, aligned for any object), to save an allocation
 * per connection: init as eev_driver_new, free releases what it holds.
 */
int eev_driver_init(eev_driver *d, const eev_callbacks *cb, const eev_options *opt, void *ud);
void eev_driver_free(eev_driver *d);

/* Shared deflate/inflate streams for the drivers of one thread. NULL when
 * out of memory. Free only after every driver using it. */
eev_deflate_shared *eev_deflate_shared_new(void);
void eev_deflate_shared_free(eev_deflate_shared *s);

/*
 * Feeds received bytes. The buffer is modified in place (payloads are
 * unmasked where they lie) and may be reused once the call returns: the
 * driver keeps what it needs. Any split of the stream is accepted.
 * Returns len (all consumed), fewer after eev_driver_recv_yield() or once
 * the call has inflated its budget (deflate.inflate_budget) — the rest,
 * unread and unchanged, is the owner's to feed again later (after serving
 * other connections) — or EEV_ERR_NOMEM / EEV_ERR_CALLBACK (fatal).
 * Bytes that arrive after the driver stopped reading are ignored.
 */
ssize_t eev_driver_recv(eev_driver *d, uint8_t *in, size_t len);

/*
 * What eev_driver_recv_echo() echoed by itself. The caller owns it and
 * zeroes it once; the driver only adds to it, so one may serve all the
 * drivers of one thread (and be read whenever convenient).
 */
#define EEV_ECHO_SIZE_CLASSES 17
typedef struct eev_echo_stats {
    uint64_t messages; /* messages echoed */
    uint64_t bytes;    /* their payload bytes (each echo is as long) */
    /* Messages by payload size: [k] counts 2^(k-1) + 1 to 2^k bytes, [0]
     * 0 or 1 byte (every such message is shorter than 64 KiB). */
    uint64_t size_class[EEV_ECHO_SIZE_CLASSES];
} eev_echo_stats;

/*
 * eev_driver_recv() for an owner that answers every data message with its
 * echo (server role; in the client role it is eev_driver_recv()). A
 * message that lies whole in the buffer as one final frame, uncompressed,
 * shorter than 64 KiB and within max_message_size, while no other message
 * is open, is checked as usual (UTF-8 for text, failing with 1007) and
 * then echoed by the driver itself, as eev_driver_send_message() would
 * from on_message (with borrow_input: in place, see there), without
 * calling on_message; it is counted in *st. Everything else is handled
 * as by eev_driver_recv() (other messages go to on_message, in order).
 * Same returns.
 */
ssize_t eev_driver_recv_echo(eev_driver *d, uint8_t *in, size_t len, eev_echo_stats *st);

/*
 * Server role, from inside on_request: the current eev_driver_recv()
 * returns right after this request, with the bytes consumed so far. An
 * owner uses it to cap pipelined HTTP requests: it stops reading, keeps
 * the rest of the input, and feeds it once the responses have been sent.
 */
void eev_driver_recv_yield(eev_driver *d);

/* The transport reached end of stream or failed: reports on_close (1006
 * unless the close handshake was already complete) and stops reading. */
void eev_driver_eof(eev_driver *d);

/*
 * Queues a data message (EEV_OP_TEXT or EEV_OP_BINARY) as one frame, or a
 * ping/pong. The payload is copied (compressed when permessage-deflate was
 * negotiated). Text is not re-validated.
 * Returns 0, EEV_ERR_STATE (not open, or Close already sent),
 * EEV_ERR_ARG (bad opcode, control payload > 125) or EEV_ERR_NOMEM.
 */
int eev_driver_send(eev_driver *d, eev_opcode op, const void *p, size_t len);

/*
 * Queues a data message (EEV_OP_TEXT or EEV_OP_BINARY) whose payload
 * p[0..len) is already compressed, as one frame with RSV1 (RFC 7692
 * §7.2.1). It must stand alone: raw DEFLATE from a fresh compressor (no
 * preset history) with a window no larger than the one negotiated for our
 * side (eev_deflate_params: server_max_window_bits in the server role,
 * client_max_window_bits in the client role), ended with a sync flush and
 * the final 00 00 ff ff removed. The payload is copied. It lets an owner
 * compress a message once and send it many times, or on many connections.
 * Our own compressor, when it keeps context, starts afresh after it, so
 * the peer's history stays consistent.
 * Returns as eev_driver_send(), and EEV_ERR_STATE when permessage-deflate
 * was not negotiated.
 */
int eev_driver_send_compressed(eev_driver *d, eev_opcode op, const void *p, size_t len);

/* Shorthands for eev_driver_send(). */
int eev_driver_text(eev_driver *d, const char *p, size_t len);
int eev_driver_binary(eev_driver *d, const void *p, size_t len);
int eev_driver_ping(eev_driver *d, const void *p, size_t len);

/*
 * Queues m (as received in on_message, same opcode and bytes) for sending:
 * the echo primitive. Must be called from inside on_message for that m.
 * When the payload lives in a buffer the driver allocated (a message that
 * spanned reads or fragments), the buffer moves to the output queue
 * instead of being copied; with options.borrow_input a message that lies
 * in the input buffer is sent from there (see borrow_input). A message that
 * came uncompressed is sent uncompressed. A compressed one is sent as
 * received (its compressed bytes, RSV1 set) when the negotiated parameters
 * make them valid on our stream too (eev_deflate_params.passthrough: the
 * client's window is no larger than ours, and either its messages are
 * self-contained or both sides keep context and every compressed message
 * is echoed in order); otherwise it is compressed again. Returns as
 * eev_driver_send().
 */
int eev_driver_send_message(eev_driver *d, const eev_message_arg *m);

/*
 * With options.borrow_input: copies whatever is still queued from the last
 * input buffer into memory the driver owns. Call it after writing what
 * could be written and before reusing the buffer. Returns 0 or
 * EEV_ERR_NOMEM.
 */
int eev_driver_out_settle(eev_driver *d);

/*
 * Starts the closing handshake: queues a Close with code (0: no code) and
 * reason (UTF-8, at most 123 bytes). Data can no longer be sent, and data
 * frames that still arrive are dropped. Returns 0, EEV_ERR_STATE (Close
 * already sent or handshake not done) or EEV_ERR_ARG.
 */
int eev_driver_close(eev_driver *d, uint16_t code, const char *reason, size_t reason_len);

/*
 * Fails the connection at once, for an owner that must take its memory
 * back (a global memory budget): drops the message being received and
 * every queued frame not yet begun, queues a Close with code (required)
 * and reason (UTF-8, at most 123 bytes), and stops reading; on_close
 * follows (code_received 1006), on_error does not (the owner decided).
 * A frame already partly written stays ahead of the Close, since cutting
 * it would corrupt the stream: eev_driver_mem() says what is still held.
 * Works while OPEN or CLOSING; call it outside this driver's callbacks.
 * Returns 0, EEV_ERR_STATE, EEV_ERR_ARG or EEV_ERR_NOMEM (the Close could
 * not be queued; the rest is done).
 */
int eev_driver_fail(eev_driver *d, uint16_t code, const char *reason, size_t reason_len);

/*
 * Server role, from inside on_request: answers the request with an HTTP
 * response instead of an upgrade. extra_headers are complete header lines
 * ("Content-Type: text/html\r\n"), may be NULL. The body is copied.
 * With close non-zero (or when the request asked for it) the connection is
 * finished after the response; otherwise the driver reads the next request
 * (HTTP/1.1 keep-alive). A HEAD request gets the same head (its
 * Content-Length included) without the body.
 * Returns 0, EEV_ERR_STATE or EEV_ERR_NOMEM.
 */
int eev_driver_http_reply(eev_driver *d, int status, const char *extra_headers, const void *body,
                          size_t body_len, int close);

/* The driver's state in one value (eev_driver_status()). */
enum {
    EEV_WANT_READ = 1 << 0,  /* eev_driver_want_read() */
    EEV_WANT_WRITE = 1 << 1, /* eev_driver_want_write() */
    EEV_FINISHED = 1 << 2,   /* eev_driver_finished() */
    EEV_HOLDS = 1 << 3,      /* eev_driver_mem() > 0 */
};
typedef struct eev_status {
    unsigned flags;  /* EEV_WANT_READ | EEV_WANT_WRITE | EEV_FINISHED | EEV_HOLDS */
    eev_state state; /* eev_driver_state() */
    size_t out_len;  /* eev_driver_out_len() */
} eev_status;

/*
 * Output side. Fills up to iovmax iovecs with views of queued bytes, in
 * order, and returns how many it filled (0: nothing queued). The views are
 * borrowed until the next call that changes the driver.
 */
int eev_driver_out_iov(eev_driver *d, struct iovec *iov, int iovmax);

/* Drops n bytes (what writev() returned) from the front of the queue, and
 * returns eev_driver_status() as it is then (saving the owner that call). */
eev_status eev_driver_out_consume(eev_driver *d, size_t n);

/* Bytes queued for sending. */
size_t eev_driver_out_len(const eev_driver *d);

/* Bytes the driver holds for this connection, for memory budgets: the
 * buffer of the message being received plus the bytes queued for sending.
 * O(1). (Fixed costs are not included: the driver object, a handshake or
 * control-frame buffer of at most max_head_size, the unused tail of an
 * output chunk.) */
size_t eev_driver_mem(const eev_driver *d);

/* Non-zero while the driver accepts input (not after a Close was received
 * or the connection failed). */
int eev_driver_want_read(const eev_driver *d);

/* Non-zero when there is output to send. */
int eev_driver_want_write(const eev_driver *d);

/* Non-zero when the protocol is done: once the output is flushed the
 * transport should be closed (server role: the server closes first). */
int eev_driver_finished(const eev_driver *d);

eev_state eev_driver_state(const eev_driver *d);

/* Everything the owner re-checks after feeding or draining the driver, in
 * one call: the four queries above, eev_driver_out_len() and whether
 * eev_driver_mem() is 0 (eev_status is defined above, with the output side). */
eev_status eev_driver_status(const eev_driver *d);

/* What the connection carried so far, as its log line or accounting wants
 * it: data messages received (whole) and their payload bytes, and the
 * payload bytes of the data messages queued for sending (as the caller
 * gave them: before compression; eev_driver_send_compressed() counts what
 * it was given). The echoes eev_driver_recv_echo() makes count too. */
typedef struct eev_counts {
    uint64_t messages_in; /* (kept in 32 bits: wraps after 2^32) */
    uint64_t bytes_in;
    uint64_t bytes_out;
} eev_counts;
eev_counts eev_driver_counts(const eev_driver *d);

/* The close codes so far: *sent is the code of our Close (1005: one
 * without a code; 0: none sent), *received the peer's (likewise). */
void eev_driver_close_codes(const eev_driver *d, uint16_t *sent, uint16_t *received);

/* The chosen subprotocol (NUL-terminated, borrowed from the options), or
 * NULL when none. */
const char *eev_driver_protocol(const eev_driver *d);

/* Non-zero when permessage-deflate was negotiated; fills *p (may be NULL)
 * with the parameters. */
int eev_driver_deflate(const eev_driver *d, eev_deflate_params *p);

/* The user data given at creation, and a way to change it. */
void *eev_driver_user_data(const eev_driver *d);
void eev_driver_set_user_data(eev_driver *d, void *ud);

/* Size of a driver object in bytes (for eev_driver_init). */
size_t eev_driver_size(void);

/* Computes Sec-WebSocket-Accept for a key (RFC 6455 §4.2.2): out receives
 * 28 base64 characters and a NUL. Returns 0, or -1 on a libcrypto error. */
int eev_accept_key(const char *key, size_t key_len, char out[29]);

/* Non-zero when code may appear in a received Close frame (§7.4). */
int eev_close_code_valid(unsigned code);

/* Incremental UTF-8 validation state for owners that stream text. */
#define EEV_UTF8_ACCEPT 0u
#define EEV_UTF8_REJECT 1u
/* Advances *state over p[0..len); returns the new state: EEV_UTF8_REJECT
 * at the first invalid byte, EEV_UTF8_ACCEPT at a complete boundary,
 * anything else mid-sequence. */
uint32_t eev_utf8_validate(uint32_t *state, const uint8_t *p, size_t len);

#ifdef __cplusplus
}
#endif
#endif /* EEV_DRIVER_H */
