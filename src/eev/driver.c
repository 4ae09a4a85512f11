/*
 * driver.c - the WebSocket driver: ready state, frame decoding, messages,
 * the close handshake and the output side.
 *
 * References: RFC 6455 §5 (framing), §5.5 (control frames), §7 (closing),
 * §8.1 (UTF-8 handling). The decoder consumes every byte it is given: a
 * header split across reads is kept in d->hdr, a payload split across reads
 * (or a fragmented message) in d->msg. A single-frame message that arrives
 * whole is unmasked and delivered where it lies, without a copy.
 */
#include <stdlib.h>
#include <string.h>

#include "driver_int.h"
#include "pmd.h"
#include "utf8.h"

/* Payloads at least this long move into the output queue instead of being
 * copied (eev_driver_send_message); smaller ones pack into a shared chunk. */
#define STEAL_MIN 16384
/* With borrow_input, payloads at least this long are queued as views of the
 * input; below it a copy costs less than another iovec. */
#define BORROW_MIN 2048
/* First size of a reassembly buffer: small messages split across reads
 * take one allocation. */
#define MSG_MIN_CAP 4096
/* Inflated bytes that are only checked (echo_only) go through a scratch
 * buffer this big: the step by which a bomb may overshoot the limit. */
#define INFLATE_STEP 16384
/* Bytes one eev_driver_recv() call may inflate before it returns early,
 * leaving the rest of its input to the owner (deflate.inflate_budget 0). */
#define INFLATE_BUDGET (4u << 20)

static const eev_options default_options;
static const eev_callbacks no_callbacks;

const char *eev_strerror(int rv)
{
    switch (rv) {
    case EEV_OK: return "success";
    case EEV_ERR_NOMEM: return "out of memory";
    case EEV_ERR_CALLBACK: return "callback failure";
    case EEV_ERR_STATE: return "invalid state";
    case EEV_ERR_ARG: return "invalid argument";
    default: return "unknown error";
    }
}

size_t eev_driver_size(void)
{
    return sizeof(eev_driver);
}

int eev_driver_init(eev_driver *d, const eev_callbacks *cb, const eev_options *opt, void *ud)
{
    memset(d, 0, sizeof(*d));
    d->cb = cb ? cb : &no_callbacks;
    d->opt = opt ? opt : &default_options;
    d->ud = ud;
    d->state = EEV_STATE_CONNECTING;
    uint64_t max = d->opt->max_message_size;
    d->fixed = (uint8_t)((d->opt->role == EEV_ROLE_SERVER && d->opt->borrow_input ? FX_BORROW : 0) |
                         (!max || max >= 0xFFFF ? FX_SHORT_ANY : 0));
    if (d->opt->role == EEV_ROLE_CLIENT) {
        if (!d->opt->host)
            return EEV_ERR_ARG;
        int rv = driver_client_start(d);
        if (rv < 0) {
            eev_driver_free(d);
            return rv;
        }
    }
    return 0;
}

int eev_driver_new(eev_driver **pd, const eev_callbacks *cb, const eev_options *opt, void *ud)
{
    eev_driver *d = malloc(sizeof(*d));

    if (!d)
        return EEV_ERR_NOMEM;
    int rv = eev_driver_init(d, cb, opt, ud);
    if (rv < 0) {
        free(d);
        return rv;
    }
    *pd = d;
    return 0;
}

void eev_driver_free(eev_driver *d)
{
    outq_free(&d->oq);
    driver_hs_free(d);
    free(d->msg);
    d->msg = NULL;
    pmd_free(d->pmd);
    d->pmd = NULL;
}

void eev_driver_del(eev_driver *d)
{
    if (d) {
        eev_driver_free(d);
        free(d);
    }
}

/* Queues one frame; the client role masks it (RFC 6455 §5.3). */
static int queue_frame(eev_driver *d, uint8_t b0, const void *p, size_t len)
{
    uint8_t hdr[FRAME_MAX_HEADER], key[4];
    int client = d->opt->role == EEV_ROLE_CLIENT;

    if (client)
        driver_random(d, key, 4);
    size_t hl = frame_encode_header(hdr, b0, len, client ? key : NULL);
    uint8_t *o = outq_reserve(&d->oq, hl + len);
    if (!o)
        return EEV_ERR_NOMEM;
    memcpy(o, hdr, hl);
    if (len) {
        memcpy(o + hl, p, len);
        if (client)
            frame_mask(o + hl, len, key, 0);
    }
    return 0;
}

static int queue_close(eev_driver *d, uint16_t code, const char *reason, size_t rlen)
{
    uint8_t pl[FRAME_MAX_CONTROL];
    size_t n = 0;

    if (code) {
        pl[0] = (uint8_t)(code >> 8);
        pl[1] = (uint8_t)code;
        if (rlen > FRAME_MAX_CONTROL - 2)
            rlen = FRAME_MAX_CONTROL - 2;
        if (rlen)
            memcpy(pl + 2, reason, rlen);
        n = 2 + rlen;
    }
    d->flags |= F_CLOSE_SENT;
    d->code_sent = code ? code : EEV_CLOSE_NO_STATUS;
    return queue_frame(d, FRAME_FIN | EEV_OP_CLOSE, pl, n);
}

/* Calls on_close once; reason is the peer's (borrowed), NULL if none. */
static void report_close(eev_driver *d, uint16_t rcvd, int clean, const uint8_t *reason, size_t rlen)
{
    if (d->flags & F_REPORTED)
        return;
    d->flags |= F_REPORTED;
    if (d->cb->on_close) {
        eev_close_arg c = {rcvd, d->code_sent, (const char *)reason, rlen, clean};
        d->cb->on_close(d, &c, d->ud);
    }
}

static void drop_message(eev_driver *d)
{
    free(d->msg);
    d->msg = NULL;
    d->msg_len = d->msg_cap = 0;
    d->msg_op = 0;
    if (d->pmd)
        pmd_msg_end(d->pmd);
}

/* Fails the connection (RFC 6455 §7.1.7): a Close with code, no more input. */
static int driver_fail(eev_driver *d, uint16_t code, const char *why)
{
    int rv = 0;

    if (d->state == EEV_STATE_CLOSED)
        return 0;
    if (!(d->flags & F_CLOSE_SENT))
        rv = queue_close(d, code, why, strlen(why));
    d->flags |= F_FAILED;
    d->state = EEV_STATE_CLOSED;
    drop_message(d);
    if (d->cb->on_error) {
        eev_error_arg e = {code, why};
        d->cb->on_error(d, &e, d->ud);
    }
    report_close(d, EEV_CLOSE_ABNORMAL, 0, NULL, 0);
    return rv;
}

int eev_close_code_valid(unsigned code)
{
    /* §7.4.1 and the IANA registry: 1004-1006 and 1015 never on the wire;
     * 1016-2999 reserved; 3000-4999 for libraries and applications. */
    return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
           (code >= 3000 && code <= 4999);
}

static int on_close_frame(eev_driver *d, const uint8_t *p, size_t n)
{
    uint16_t code = EEV_CLOSE_NO_STATUS;
    int rv = 0;

    if (n == 1)
        return driver_fail(d, EEV_CLOSE_PROTOCOL_ERROR, "close frame with a 1-byte payload");
    if (n >= 2) {
        code = (uint16_t)(p[0] << 8 | p[1]);
        if (!eev_close_code_valid(code))
            return driver_fail(d, EEV_CLOSE_PROTOCOL_ERROR, "invalid close code");
        if (utf8_advance(EEV_UTF8_ACCEPT, p + 2, n - 2) != EEV_UTF8_ACCEPT)
            return driver_fail(d, EEV_CLOSE_INVALID_DATA, "close reason is not valid UTF-8");
    }
    d->code_rcvd = code;
    d->flags |= F_CLOSE_RCVD;
    if (!(d->flags & F_CLOSE_SENT)) /* §5.5.1: echo the status code */
        rv = queue_close(d, code == EEV_CLOSE_NO_STATUS ? 0 : code, NULL, 0);
    drop_message(d);
    d->state = EEV_STATE_CLOSED;
    report_close(d, code, 1, n > 2 ? p + 2 : NULL, n > 2 ? n - 2 : 0);
    return rv;
}

static int on_control(eev_driver *d, unsigned op, const uint8_t *p, size_t n)
{
    switch (op) {
    case EEV_OP_PING:
        if (d->cb->on_ping)
            d->cb->on_ping(d, p, n, d->ud);
        if (!d->opt->no_auto_pong && !(d->flags & F_CLOSE_SENT) && d->state == EEV_STATE_OPEN)
            return queue_frame(d, FRAME_FIN | EEV_OP_PONG, p, n);
        return 0;
    case EEV_OP_PONG:
        if (d->cb->on_pong)
            d->cb->on_pong(d, p, n, d->ud);
        return 0;
    default:
        return on_close_frame(d, p, n);
    }
}

static uint64_t max_message(const eev_driver *d)
{
    uint64_t m = d->opt->max_message_size ? d->opt->max_message_size : DEFAULT_MAX_MESSAGE;
    return m > EEV_MAX_MESSAGE_SIZE ? EEV_MAX_MESSAGE_SIZE : m;
}

/* Checks what the first two header bytes decide (§5.2, §5.4, §5.5), as
 * soon as they arrive. Returns 0 when the frame may go on. */
static int check_start(eev_driver *d, uint8_t b0, uint8_t b1)
{
    unsigned op = b0 & FRAME_OPCODE;

    if (b0 & FRAME_RSV_ALL & ~d->rsv_ok)
        return driver_fail(d, EEV_CLOSE_PROTOCOL_ERROR, "reserved bits set"), -1;
    /* RFC 7692 §6: RSV1 marks a compressed message on its first frame only. */
    if ((b0 & FRAME_RSV1) && (frame_opcode_is_control(op) || op == EEV_OP_CONTINUATION))
        return driver_fail(d, EEV_CLOSE_PROTOCOL_ERROR, "RSV1 on a control or continuation frame"), -1;
    if (!frame_opcode_known(op))
        return driver_fail(d, EEV_CLOSE_PROTOCOL_ERROR, "reserved opcode"), -1;
    if ((b1 & FRAME_MASK) != (d->opt->role == EEV_ROLE_SERVER ? FRAME_MASK : 0))
        return driver_fail(d, EEV_CLOSE_PROTOCOL_ERROR,
                           d->opt->role == EEV_ROLE_SERVER ? "unmasked client frame"
                                                           : "masked server frame"), -1;
    if (frame_opcode_is_control(op)) {
        if (!(b0 & FRAME_FIN))
            return driver_fail(d, EEV_CLOSE_PROTOCOL_ERROR, "fragmented control frame"), -1;
        if ((b1 & 0x7F) > FRAME_MAX_CONTROL)
            return driver_fail(d, EEV_CLOSE_PROTOCOL_ERROR, "control frame too long"), -1;
    } else if (op == EEV_OP_CONTINUATION && !d->msg_op) {
        return driver_fail(d, EEV_CLOSE_PROTOCOL_ERROR, "continuation frame without a message"), -1;
    } else if (op != EEV_OP_CONTINUATION && d->msg_op) {
        return driver_fail(d, EEV_CLOSE_PROTOCOL_ERROR, "new message inside a fragmented one"), -1;
    }
    return 0;
}

/* A complete header h: decode the length and key. Returns 0 to go on. */
static int on_header(eev_driver *d, const uint8_t *h)
{
    uint8_t b0 = h[0], b1 = h[1];
    uint64_t len = b1 & 0x7F;
    const uint8_t *k = h + 2;
    unsigned op = b0 & FRAME_OPCODE;

    if (check_start(d, b0, b1) < 0)
        return -1;
    if (len == 126) {
        len = (uint64_t)h[2] << 8 | h[3];
        k = h + 4;
        if (len < 126)
            return driver_fail(d, EEV_CLOSE_PROTOCOL_ERROR, "non-minimal length encoding"), -1;
    } else if (len == 127) {
        len = 0;
        for (int i = 0; i < 8; i++)
            len = len << 8 | h[2 + i];
        k = h + 10;
        if (len >> 63)
            return driver_fail(d, EEV_CLOSE_PROTOCOL_ERROR, "64-bit length with the top bit set"), -1;
        if (len <= 0xFFFF)
            return driver_fail(d, EEV_CLOSE_PROTOCOL_ERROR, "non-minimal length encoding"), -1;
    }
    if (!frame_opcode_is_control(op)) {
        /* Compressed messages: the received bytes count here, the
         * inflated ones while inflating. */
        uint64_t have = op != EEV_OP_CONTINUATION ? 0 : d->msg_rsv1 ? d->pmd->zwire : d->msg_len;
        if (len > max_message(d) || have + len > max_message(d))
            return driver_fail(d, EEV_CLOSE_TOO_BIG, "message too big"), -1;
        if (op != EEV_OP_CONTINUATION) {
            d->msg_op = (uint8_t)op;
            d->msg_rsv1 = (b0 & FRAME_RSV1) != 0;
            d->utf8 = EEV_UTF8_ACCEPT;
            struct pmd *z = d->pmd;
            if (d->msg_rsv1 && (z->flags & PMD_PASS) && (z->p.c_nct || (z->flags & PMD_SYNC)))
                z->flags |= PMD_MSG_PASS;
        }
    }
    if (b1 & FRAME_MASK)
        memcpy(d->mask, k, 4);
    d->fb0 = b0;
    d->remaining = (uint32_t)len; /* checked against the limit above */
    d->mask_phase = 0;
    d->flags &= (uint8_t)~F_SPLIT;
    d->istate = IN_PAYLOAD;
    return 0;
}

/* Gathers a frame header, in place when it lies whole in the input.
 * Returns the header, or NULL when more bytes are needed (or the frame
 * failed early). */
static const uint8_t *take_header(eev_driver *d, uint8_t **pp, const uint8_t *end)
{
    uint8_t *p = *pp;

    if (d->hdr_have == 0 && end - p >= 2) {
        size_t hl = frame_header_len(p[1]);
        if ((size_t)(end - p) >= hl) {
            *pp = p + hl;
            return p;
        }
    }
    while (p < end) {
        d->hdr[d->hdr_have++] = *p++;
        if (d->hdr_have < 2)
            continue;
        if (d->hdr_have == 2 && check_start(d, d->hdr[0], d->hdr[1]) < 0)
            break;
        if (d->hdr_have == frame_header_len(d->hdr[1])) {
            d->hdr_have = 0;
            *pp = p;
            return d->hdr;
        }
    }
    *pp = p;
    return NULL;
}

/* A data message arrived (eev_driver_counts). */
static inline void count_in(eev_driver *d, size_t len)
{
    d->msgs_in++;
    d->bytes_in += len;
}

static int deliver(eev_driver *d, uint8_t *data, size_t len)
{
    eev_message_arg m = {(eev_opcode)d->msg_op, data, len, d->msg_rsv1,
                         d->msg_rsv1 ? d->pmd->zwire : 0};
    int rv = 0;

    if (m.opcode == EEV_OP_TEXT && d->utf8 != EEV_UTF8_ACCEPT)
        return driver_fail(d, EEV_CLOSE_INVALID_DATA, "text message is not valid UTF-8");
    d->msg_op = 0;
    count_in(d, len);
    if (data != d->msg && (d->xflags & X_HDR_INPLACE) && (d->fixed & FX_BORROW))
        d->xflags |= X_MSG_INPLACE; /* eev_driver_send_message may echo it in place */
    if (d->cb->on_message && d->cb->on_message(d, &m, d->ud) != 0)
        rv = EEV_ERR_CALLBACK;
    d->xflags &= (uint8_t)~X_MSG_INPLACE;
    struct pmd *z = d->pmd;
    /* Both sides keep context: a compressed message not echoed as
     * received leaves our stream behind the client's for good. */
    if (d->msg_rsv1 && (z->flags & PMD_MSG_PASS) && !(z->flags & PMD_ECHOED) && !z->p.c_nct)
        z->flags &= (uint8_t)~PMD_SYNC;
    drop_message(d); /* d->msg is NULL when the owner took it */
    return rv;
}

/*
 * Inflates a piece of a compressed message (RFC 7692 §7.2.2), the tail
 * after its last piece. The inflated size counts against the limit as it
 * grows: a bomb fails with 1009 at most one step past the limit, and the
 * buffer never grows beyond the limit. Text is validated as it comes out.
 * With echo_only and an echo that passes the compressed bytes through,
 * the inflated bytes are only checked, in a scratch buffer.
 */
static int inflate_piece(eev_driver *d, const uint8_t *p, size_t n, int fin)
{
    struct pmd *z = d->pmd;
    uint8_t scratch[INFLATE_STEP];
    uint64_t limit = max_message(d);
    int keep = !(d->opt->deflate.echo_only && (z->flags & PMD_MSG_PASS));
    int more, rv;

    do {
        uint8_t *out = scratch;
        size_t cap = sizeof(scratch), got;
        const char *why;
        if (keep && d->msg_len < limit) {
            /* The reassembly buffer, and its accounting (on_mem_grow). */
            if (d->msg_len == d->msg_cap && (rv = driver_msg_reserve(d, d->msg_len + 1, limit)) != 0)
                return rv < 0 ? rv : 0; /* 1: refused, the connection failed */
            out = d->msg + d->msg_len;
            cap = d->msg_cap - d->msg_len;
        } else if (keep) {
            cap = 1; /* full: does anything more come out? */
        }
        more = pmd_inflate(z, d->opt->deflate.shared, &p, &n, fin, out, cap, &got, &why);
        if (more == -2)
            return EEV_ERR_NOMEM;
        if (more == -1)
            return driver_fail(d, EEV_CLOSE_INVALID_DATA, why);
        if (d->msg_len + (uint64_t)got > limit)
            return driver_fail(d, EEV_CLOSE_TOO_BIG, "message too big");
        if (d->msg_op == EEV_OP_TEXT &&
            (d->utf8 = utf8_advance(d->utf8, out, got)) == EEV_UTF8_REJECT)
            return driver_fail(d, EEV_CLOSE_INVALID_DATA, "text message is not valid UTF-8");
        d->msg_len += (uint32_t)got;
        z->budget = got < UINT32_MAX - z->budget ? z->budget + (uint32_t)got : UINT32_MAX;
    } while (more);
    return 0;
}

/* A piece of a compressed message's payload (unmasked, at p). */
static int take_compressed(eev_driver *d, const uint8_t *p, size_t n, int whole)
{
    struct pmd *z = d->pmd;
    int fin = d->remaining == 0 && (d->fb0 & FRAME_FIN);
    int rv;

    if ((rv = pmd_msg_open(z, d->opt->deflate.shared)) < 0)
        return rv;
    if (z->flags & PMD_MSG_PASS) { /* keep the received bytes for the echo */
        if (whole && fin && z->zwire == 0) {
            z->m->zsrc = p; /* a whole single frame: it stays in the input */
        } else if (n) {
            if ((rv = driver_mem_ask(d, pmd_keep_grow(z, n))) != 0)
                return rv < 0 ? rv : 0; /* 1: refused, the connection failed */
            if ((rv = pmd_keep(z, p, n)) < 0)
                return rv;
        }
    }
    z->zwire += (uint32_t)n;
    if ((rv = inflate_piece(d, p, n, fin)) < 0 || d->state == EEV_STATE_CLOSED)
        return rv;
    d->flags |= F_SPLIT;
    if (!fin)
        return pmd_msg_hold(z); /* the shared state serves only within one input */
    return deliver(d, (z->flags & PMD_MSG_PASS) && d->opt->deflate.echo_only ? NULL : d->msg,
                   d->msg_len);
}

/* Appends a piece of the open message to d->msg. The first piece of each
 * frame sizes the buffer for the whole frame (the header told us), so a
 * frame costs at most one realloc however it is split. */
int driver_mem_ask(eev_driver *d, size_t grow)
{
    if (!d->cb->on_mem_grow || !grow)
        return 0;
    int code = d->cb->on_mem_grow(d, grow, d->ud);
    if (!code)
        return 0;
    int rv = driver_fail(d, eev_close_code_valid((unsigned)code) ? (uint16_t)code : EEV_CLOSE_TRY_AGAIN,
                         "memory budget exceeded");
    return rv < 0 ? rv : 1;
}

int driver_msg_reserve(eev_driver *d, size_t need, size_t limit)
{
    if (need <= d->msg_cap)
        return 0;
    /* Doubling: a message trickling in as many small frames or reads costs
     * O(log n) reallocs, and a header alone reserves nothing. */
    size_t cap = d->msg_cap < MSG_MIN_CAP / 2 ? MSG_MIN_CAP : (size_t)d->msg_cap * 2;
    if (cap > limit)
        cap = limit;
    if (cap < need)
        cap = need;
    int rv = driver_mem_ask(d, cap - d->msg_cap);
    if (rv)
        return rv;
    uint8_t *m = realloc(d->msg, cap);
    if (!m)
        return EEV_ERR_NOMEM;
    d->msg = m;
    d->msg_cap = (uint32_t)cap;
    return 0;
}

/* Appends a piece of the open message to d->msg. The buffer grows with
 * the bytes that arrive, up to the frame's declared end when it is the
 * last frame. */
static int msg_append(eev_driver *d, const uint8_t *p, size_t n)
{
    size_t need = (size_t)d->msg_len + n;
    size_t limit = d->fb0 & FRAME_FIN ? need + d->remaining : max_message(d);
    int rv = driver_msg_reserve(d, need, limit);

    if (rv != 0)
        return rv;
    memcpy(d->msg + d->msg_len, p, n);
    d->msg_len += (uint32_t)n;
    return 0;
}

static int take_payload(eev_driver *d, uint8_t **pp, const uint8_t *end)
{
    uint8_t *p = *pp;
    size_t n = (size_t)(end - p) < d->remaining ? (size_t)(end - p) : d->remaining;
    unsigned op = d->fb0 & FRAME_OPCODE;
    int whole = n == d->remaining && !(d->flags & F_SPLIT);
    int rv = 0;

    if (n == 0 && d->remaining > 0)
        return 0; /* the header ended the input: the payload comes next time */

    if (d->opt->role == EEV_ROLE_SERVER)
        d->mask_phase = (uint8_t)frame_mask(p, n, d->mask, d->mask_phase);
    *pp = p + n;
    d->remaining -= n;

    if (frame_opcode_is_control(op)) {
        if (whole)
            return on_control(d, op, p, n);
        const uint8_t *ctl;
        size_t ctl_len;
        if ((rv = driver_ctl_append(d, p, n, &ctl, &ctl_len)) < 0)
            return rv;
        d->flags |= F_SPLIT;
        if (d->remaining)
            return 0;
        rv = on_control(d, op, ctl, ctl_len);
        if (d->state != EEV_STATE_CONNECTING)
            driver_hs_done(d); /* the server frees the buffer again */
        return rv;
    }
    if (d->flags & F_CLOSE_SENT) /* §1.4: data after our Close is dropped */
        return d->remaining || !(d->fb0 & FRAME_FIN) ? 0 : (drop_message(d), 0);
    if (d->msg_rsv1) {
        if (!(d->pmd->flags & PMD_RAW))
            return take_compressed(d, p, n, whole);
        d->pmd->zwire += (uint32_t)n; /* deliver_compressed: kept as received */
    } else if (d->msg_op == EEV_OP_TEXT &&
               (d->utf8 = utf8_advance(d->utf8, p, n)) == EEV_UTF8_REJECT) { /* §8.1: fail fast */
        return driver_fail(d, EEV_CLOSE_INVALID_DATA, "text message is not valid UTF-8");
    }
    if (whole && (d->fb0 & FRAME_FIN) && d->msg_len == 0)
        return deliver(d, p, n); /* the common case: no copy */
    if (n && (rv = msg_append(d, p, n)) != 0)
        return rv < 0 ? rv : 0; /* refused: the connection failed */
    d->flags |= F_SPLIT;
    if (d->remaining == 0 && (d->fb0 & FRAME_FIN))
        return deliver(d, d->msg, (size_t)d->msg_len);
    return 0;
}

/*
 * The echo of an uncompressed message whole in the current input at data,
 * right behind its own (masked, longer) header, with borrow_input: the
 * echo's header goes over the spent masked one: no copy, no chunk. A small
 * message joins the echoes before it in this input (a short move); a large
 * one does only when it is the first. Returns 0, or 1 when the queue
 * cannot take it so (echo_copy then does).
 */
static inline int echo_inplace(eev_driver *d, uint8_t b0, uint8_t *data, size_t len)
{
    size_t hl = len < 126 ? 2 : len <= 0xFFFF ? 4 : 10;
    uint8_t *at = outq_inplace_at(&d->oq, data, hl, (d->xflags & X_VIEW_JOIN) && len < BORROW_MIN);

    if (!at)
        return 1;
    frame_encode_header(at, b0, len, NULL);
    if (at + hl != data)
        memmove(at + hl, data, len);
    outq_inplace_commit(&d->oq, at, hl + len);
    d->xflags |= X_VIEW_JOIN;
    return 0;
}

/* The echo of an uncompressed message otherwise: the reassembly buffer
 * moves to the queue when large, a large message in the input is queued as
 * a view of it (borrow_input), anything else is copied. */
static int echo_copy(eev_driver *d, uint8_t b0, uint8_t *data, size_t len)
{
    uint8_t hdr[FRAME_MAX_HEADER], key[4];
    int client = d->opt->role == EEV_ROLE_CLIENT;
    int owned = d->msg && data == d->msg;

    if (!owned && (d->fixed & FX_BORROW) && len >= BORROW_MIN) {
        size_t hl = frame_encode_header(hdr, b0, len, NULL);
        return outq_push_view(&d->oq, hdr, hl, data, len) < 0 ? EEV_ERR_NOMEM : 0;
    }
    if (!owned || len < STEAL_MIN)
        return queue_frame(d, b0, data, len);
    if (client)
        driver_random(d, key, 4);
    size_t hl = frame_encode_header(hdr, b0, len, client ? key : NULL);
    if (outq_push_owned(&d->oq, hdr, hl, d->msg, len) < 0)
        return EEV_ERR_NOMEM;
    if (client)
        frame_mask(d->msg, len, key, 0);
    d->msg = NULL; /* the queue owns it now */
    d->msg_cap = 0;
    return 0;
}

/* The echo of an uncompressed payload: in place when inplace says the
 * header may go over the spent masked one and the queue takes it so, else
 * as echo_copy() queues it. */
static inline int echo_payload(eev_driver *d, uint8_t b0, uint8_t *data, size_t len, int inplace)
{
    if (inplace && echo_inplace(d, b0, data, len) == 0)
        return 0;
    return echo_copy(d, b0, data, len);
}

/* The largest payload the short paths take: 16-bit lengths, within the
 * message limit (larger ones go the general way, which fails them). */
static inline size_t short_max(const eev_driver *d)
{
    return d->fixed & FX_SHORT_ANY ? 0xFFFF : (size_t)d->opt->max_message_size;
}

/*
 * The frames the short paths take: final text or binary, masked, no RSV
 * bit, a minimal 7- or 16-bit length of at most cap bytes, whole between p
 * and end (at least 6 bytes). Returns the header's length (6 or 8) with
 * *len the payload's, or 0 for any other frame.
 */
static inline size_t short_frame(const uint8_t *p, const uint8_t *end, size_t cap, size_t *len)
{
    size_t n = p[1] & 0x7Fu, hl = 6;

    if ((uint8_t)(p[0] - (FRAME_FIN | EEV_OP_TEXT)) > 1 || !(p[1] & FRAME_MASK))
        return 0; /* (FIN | TEXT and FIN | BINARY are 0x81 and 0x82) */
    if (n >= 126) {
        if (n == 127 || end - p < 8 || (n = (size_t)p[2] << 8 | p[3]) < 126)
            return 0;
        hl = 8;
    }
    if (n > cap || (size_t)(end - p) < hl + n)
        return 0;
    *len = n;
    return hl;
}

/* Unmasks the payload of a short frame (header length hl) in place. */
static inline void short_unmask(uint8_t *p, size_t hl, size_t len)
{
    if (hl == 6)
        frame_mask_short(p + 6, len, p + 2);
    else
        frame_mask(p + 8, len, p + 4, 0);
}

/* Its echo, made by eev_driver_recv_echo() itself: counted for the
 * connection and in the owner's st. */
static inline void count_echo(eev_driver *d, eev_echo_stats *st, size_t len)
{
    count_in(d, len);
    d->bytes_out += len;
    st->bytes += len;
    st->size_class[len > 1 ? 32 - __builtin_clz((unsigned)len - 1) : 0]++;
    st->messages++;
}

/*
 * The common case in one piece: a short frame (short_frame) lies whole at p
 * (server role, no message open, no Close sent). Unmasks, validates and
 * delivers it where it lies, as the general path would, or with st echoes
 * and counts it (eev_driver_recv_echo). Returns the bytes it used, 0 when
 * the frame is not such a case (the general path takes it, failing it if
 * need be), or an error.
 */
static ssize_t whole_frame(eev_driver *d, uint8_t *p, const uint8_t *end, eev_echo_stats *st)
{
    size_t len, hl = short_frame(p, end, short_max(d), &len);
    uint8_t b0 = p[0], *data = p + hl;
    int rv = 0;

    if (!hl)
        return 0;
    short_unmask(p, hl, len);
    if (b0 == (FRAME_FIN | EEV_OP_TEXT) && utf8_advance(EEV_UTF8_ACCEPT, data, len) != EEV_UTF8_ACCEPT) {
        rv = driver_fail(d, EEV_CLOSE_INVALID_DATA, "text message is not valid UTF-8");
        return rv < 0 ? rv : (ssize_t)(hl + len);
    }
    d->xflags |= X_HDR_INPLACE;
    if (st) { /* eev_driver_recv_echo: the echo, without on_message */
        if ((rv = echo_payload(d, b0, data, len, d->fixed & FX_BORROW)) < 0)
            return rv;
        count_echo(d, st, len);
        return (ssize_t)(hl + len);
    }
    eev_message_arg m = {(eev_opcode)(b0 & FRAME_OPCODE), data, len, 0, 0};
    count_in(d, len);
    d->xflags |= d->fixed & FX_BORROW ? X_MSG_INPLACE : 0;
    if (d->cb->on_message && d->cb->on_message(d, &m, d->ud) != 0)
        rv = EEV_ERR_CALLBACK;
    d->xflags &= (uint8_t)~X_MSG_INPLACE;
    return rv < 0 ? rv : (ssize_t)(hl + len);
}

/* memmove() to a lower address, inline for the small echoes that join a
 * run: every load is done before the stores that may overlap it. */
static inline void move_down(uint8_t *dst, const uint8_t *src, size_t len)
{
    uint64_t a, b;
    uint32_t c, e;

    if (len > 16) {
        memmove(dst, src, len);
    } else if (len >= 8) {
        memcpy(&a, src, 8);
        memcpy(&b, src + len - 8, 8);
        memcpy(dst, &a, 8);
        memcpy(dst + len - 8, &b, 8);
    } else if (len >= 4) {
        memcpy(&c, src, 4);
        memcpy(&e, src + len - 4, 4);
        memcpy(dst, &c, 4);
        memcpy(dst + len - 4, &e, 4);
    } else {
        for (size_t i = 0; i < len; i++) /* dst < src: forward is safe */
            dst[i] = src[i];
    }
}

/*
 * The steady echo (eev_driver_recv_echo with borrow_input, the connection
 * open and between messages): short frames one after the other, each
 * unmasked, checked and echoed in place as echo_inplace() would, as long
 * as the queue holds nothing but this buffer's echoes. Returns the bytes
 * it took, stopping at the first frame it does not take (the general path
 * takes that one and the rest), or an error.
 *
 *   in:   [mask hdr 6|payload][mask hdr 6|payload] ...
 *   out:      [h 2|payload]   <- written over the first header's tail
 *                  ...[h 2|payload]   <- moved down to join the run
 */
static ssize_t echo_run(eev_driver *d, uint8_t *in, const uint8_t *end, eev_echo_stats *st)
{
    outq *q = &d->oq;
    size_t cap = short_max(d);
    uint8_t *p = in;

    while (end - p >= 6 && !q->head) {
        size_t len, hl_in = short_frame(p, end, cap, &len);
        if (!hl_in)
            break;
        size_t hl = hl_in - 4; /* the echo's header: 2 or 4 bytes */
        uint8_t b0 = p[0], *data = p + hl_in, *at = data - hl;
        if (q->view) {
            if (!(d->xflags & X_VIEW_JOIN) || len >= BORROW_MIN)
                break; /* the general path queues it otherwise */
            at = q->view + q->view_len;
        }
        short_unmask(p, hl_in, len);
        if (b0 == (FRAME_FIN | EEV_OP_TEXT) && utf8_advance(EEV_UTF8_ACCEPT, data, len) != EEV_UTF8_ACCEPT) {
            int rv = driver_fail(d, EEV_CLOSE_INVALID_DATA, "text message is not valid UTF-8");
            return rv < 0 ? rv : data + len - in;
        }
        at[0] = b0;
        if (hl == 2) {
            at[1] = (uint8_t)len;
        } else {
            at[1] = 126;
            at[2] = (uint8_t)(len >> 8);
            at[3] = (uint8_t)len;
        }
        if (at + hl != data)
            move_down(at + hl, data, len);
        outq_inplace_commit(q, at, hl + len);
        d->xflags |= X_VIEW_JOIN;
        count_echo(d, st, len);
        p = data + len;
    }
    return p - in;
}

/* The short paths (server role) may take the next frame: the connection
 * is open, between messages, no frame header begun and no Close sent. */
static inline int between_messages(const eev_driver *d)
{
    /* hdr_have 0, istate IN_HEADER, msg_op 0, state OPEN: one 4-byte compare */
    static const uint8_t want[4] = {0, IN_HEADER, 0, EEV_STATE_OPEN};
    uint32_t have, w;

    _Static_assert(offsetof(eev_driver, istate) == offsetof(eev_driver, hdr_have) + 1 &&
                       offsetof(eev_driver, msg_op) == offsetof(eev_driver, hdr_have) + 2 &&
                       offsetof(eev_driver, state) == offsetof(eev_driver, hdr_have) + 3,
                   "between_messages() reads four adjacent fields");
    memcpy(&have, (const char *)d + offsetof(eev_driver, hdr_have), 4);
    memcpy(&w, want, 4);
    return have == w && !(d->flags & F_CLOSE_SENT);
}

static size_t inflate_budget(const eev_driver *d)
{
    return d->opt->deflate.inflate_budget ? d->opt->deflate.inflate_budget : INFLATE_BUDGET;
}

/* A new input buffer: nothing is known to lie in it yet, nothing has been
 * inflated from it. */
static inline void recv_start(eev_driver *d)
{
    d->xflags = 0;
    if (d->pmd)
        d->pmd->budget = 0;
}

/* eev_driver_recv() of the buffer that starts at in, from p on (with st:
 * eev_driver_recv_echo()). */
static ssize_t recv_frames(eev_driver *d, uint8_t *in, uint8_t *p, uint8_t *end, eev_echo_stats *st)
{
    size_t len = (size_t)(end - in);
    int rv, server = d->opt->role == EEV_ROLE_SERVER;

    while (p < end || (d->istate == IN_PAYLOAD && d->remaining == 0)) {
        if (server && between_messages(d) && end - p >= 6) {
            ssize_t n = whole_frame(d, p, end, st);
            if (n < 0)
                return n;
            if (n > 0) {
                p += n;
                continue;
            }
        }
        if (d->state == EEV_STATE_CONNECTING) {
            ssize_t n = driver_handshake_recv(d, p, (size_t)(end - p));
            if (n < 0)
                return n;
            p += n;
            if (d->state != EEV_STATE_CONNECTING)
                driver_hs_done(d);
            if (d->yield) {
                d->yield = 0;
                if (d->state == EEV_STATE_CONNECTING)
                    break; /* keep-alive: the owner holds the rest */
            }
            continue;
        }
        if (!eev_driver_want_read(d))
            break;
        if (d->pmd && d->pmd->budget >= inflate_budget(d) && p < end)
            return (ssize_t)(p - in); /* enough inflating: the owner feeds the rest later */
        if (d->istate == IN_HEADER) {
            const uint8_t *h = take_header(d, &p, end);
            if (!h || on_header(d, h) < 0)
                continue; /* need more, or failed: the loop re-checks */
            if (h == d->hdr)
                d->xflags &= (uint8_t)~X_HDR_INPLACE;
            else
                d->xflags |= X_HDR_INPLACE;
        }
        /* IN_PAYLOAD, possibly empty */
        if ((rv = take_payload(d, &p, end)) < 0)
            return rv;
        if (d->remaining == 0)
            d->istate = IN_HEADER;
    }
    return p < end && d->state == EEV_STATE_CONNECTING ? (ssize_t)(p - in) : (ssize_t)len;
}

ssize_t eev_driver_recv(eev_driver *d, uint8_t *in, size_t len)
{
    recv_start(d);
    return recv_frames(d, in, in, in + len, NULL);
}

ssize_t eev_driver_recv_echo(eev_driver *d, uint8_t *in, size_t len, eev_echo_stats *st)
{
    uint8_t *p = in, *end = in + len;

    recv_start(d);
    if ((d->fixed & FX_BORROW) && between_messages(d)) {
        ssize_t n = echo_run(d, in, end, st);
        if (n < 0 || (size_t)n == len)
            return n;
        p += n;
    }
    return recv_frames(d, in, p, end, st);
}

void eev_driver_recv_yield(eev_driver *d)
{
    if (d->flags & F_IN_REQUEST)
        d->yield = 1;
}

void eev_driver_eof(eev_driver *d)
{
    if (d->state == EEV_STATE_CONNECTING)
        d->flags |= F_REPORTED; /* never opened */
    d->state = EEV_STATE_CLOSED;
    report_close(d, EEV_CLOSE_ABNORMAL, 0, NULL, 0);
}

/* Queues a frame whose payload buffer (malloc'd, len bytes) the queue
 * takes over when it is large, else copies and frees. */
static int queue_owned(eev_driver *d, uint8_t b0, uint8_t *buf, size_t len)
{
    uint8_t hdr[FRAME_MAX_HEADER], key[4];
    int client = d->opt->role == EEV_ROLE_CLIENT;

    if (len < STEAL_MIN) {
        int rv = queue_frame(d, b0, buf, len);
        free(buf);
        return rv;
    }
    if (client)
        driver_random(d, key, 4);
    size_t hl = frame_encode_header(hdr, b0, len, client ? key : NULL);
    if (outq_push_owned(&d->oq, hdr, hl, buf, len) < 0) {
        free(buf);
        return EEV_ERR_NOMEM;
    }
    if (client)
        frame_mask(buf, len, key, 0);
    return 0;
}

/* Compresses a data message (RFC 7692 §7.2.1) and queues it with RSV1.
 * A negotiated 8-bit window is one zlib cannot compress for: such
 * messages go uncompressed, which the extension allows. */
static int send_compressed(eev_driver *d, unsigned op, const void *p, size_t len)
{
    struct pmd *z = d->pmd;
    uint8_t *c;
    size_t clen;

    if ((z->flags & PMD_CLIENT ? z->p.c_bits : z->p.s_bits) < 9)
        return queue_frame(d, (uint8_t)(FRAME_FIN | op), p, len);
    int rv = pmd_deflate(z, &d->opt->deflate, p, len, &c, &clen);
    if (rv < 0)
        return rv;
    /* Both sides keep context: our stream no longer mirrors the client's. */
    if (!z->p.c_nct)
        z->flags &= (uint8_t)~PMD_SYNC;
    return queue_owned(d, (uint8_t)(FRAME_FIN | FRAME_RSV1 | op), c, clen);
}

/* Echoes the open compressed message as it came (see pmd.h). */
static int send_passthrough(eev_driver *d, const eev_message_arg *m)
{
    struct pmd *z = d->pmd;
    struct pmd_msg *k = z->m; /* (open: the message has just been delivered) */
    uint8_t b0 = (uint8_t)(FRAME_FIN | FRAME_RSV1 | m->opcode);

    z->flags |= PMD_ECHOED;
    if (k->zsrc) /* as eev_driver_send_message() echoes from the owner's input */
        return echo_payload(d, b0, (uint8_t *)k->zsrc, z->zwire,
                            (d->xflags & X_HDR_INPLACE) && d->opt->borrow_input);
    uint8_t *buf = k->zmsg;
    k->zmsg = NULL; /* the queue owns it now */
    k->zlen = k->zcap = 0;
    return queue_owned(d, b0, buf, z->zwire);
}

/* rv is a send's result: a data message queued counts (eev_driver_counts). */
static inline int count_out(eev_driver *d, int rv, size_t len)
{
    if (rv == 0)
        d->bytes_out += len;
    return rv;
}

int eev_driver_send(eev_driver *d, eev_opcode op, const void *p, size_t len)
{
    if (op != EEV_OP_TEXT && op != EEV_OP_BINARY && op != EEV_OP_PING && op != EEV_OP_PONG)
        return EEV_ERR_ARG;
    if (frame_opcode_is_control(op) && len > FRAME_MAX_CONTROL)
        return EEV_ERR_ARG;
    if (d->state != EEV_STATE_OPEN || (d->flags & F_CLOSE_SENT))
        return EEV_ERR_STATE;
    if (frame_opcode_is_control(op))
        return queue_frame(d, FRAME_FIN | op, p, len);
    return count_out(d, d->pmd ? send_compressed(d, op, p, len) : queue_frame(d, FRAME_FIN | op, p, len), len);
}

int eev_driver_send_compressed(eev_driver *d, eev_opcode op, const void *p, size_t len)
{
    if (op != EEV_OP_TEXT && op != EEV_OP_BINARY)
        return EEV_ERR_ARG;
    if (d->state != EEV_STATE_OPEN || (d->flags & F_CLOSE_SENT) || !d->pmd)
        return EEV_ERR_STATE;
    pmd_sent_foreign(d->pmd);
    return count_out(d, queue_frame(d, (uint8_t)(FRAME_FIN | FRAME_RSV1 | op), p, len), len);
}

int eev_driver_text(eev_driver *d, const char *p, size_t len)
{
    return eev_driver_send(d, EEV_OP_TEXT, p, len);
}

int eev_driver_binary(eev_driver *d, const void *p, size_t len)
{
    return eev_driver_send(d, EEV_OP_BINARY, p, len);
}

int eev_driver_ping(eev_driver *d, const void *p, size_t len)
{
    return eev_driver_send(d, EEV_OP_PING, p, len);
}

static int send_message(eev_driver *d, const eev_message_arg *m)
{
    if (d->pmd && m->rsv1) { /* (what came uncompressed goes back so) */
        if ((d->pmd->flags & (PMD_MSG_PASS | PMD_ECHOED)) == PMD_MSG_PASS)
            return send_passthrough(d, m);
        if (!m->data && m->len)
            return EEV_ERR_ARG;
        return send_compressed(d, m->opcode, m->data, m->len);
    }
    /* (X_MSG_INPLACE: set only with borrow_input, server role) */
    return echo_payload(d, (uint8_t)(FRAME_FIN | m->opcode), m->data, m->len, d->xflags & X_MSG_INPLACE);
}

int eev_driver_send_message(eev_driver *d, const eev_message_arg *m)
{
    if (d->state != EEV_STATE_OPEN || (d->flags & F_CLOSE_SENT))
        return EEV_ERR_STATE;
    if (m->opcode != EEV_OP_TEXT && m->opcode != EEV_OP_BINARY)
        return EEV_ERR_ARG;
    return count_out(d, send_message(d, m), m->len);
}

int eev_driver_close(eev_driver *d, uint16_t code, const char *reason, size_t reason_len)
{
    if (d->state != EEV_STATE_OPEN || (d->flags & F_CLOSE_SENT))
        return EEV_ERR_STATE;
    if ((code && !eev_close_code_valid(code)) || (!code && reason_len) ||
        reason_len > FRAME_MAX_CONTROL - 2 ||
        utf8_advance(EEV_UTF8_ACCEPT, (const uint8_t *)reason, reason_len) != EEV_UTF8_ACCEPT)
        return EEV_ERR_ARG;
    int rv = queue_close(d, code, reason, reason_len);
    if (rv == 0)
        d->state = EEV_STATE_CLOSING;
    return rv;
}

int eev_driver_fail(eev_driver *d, uint16_t code, const char *reason, size_t reason_len)
{
    if (d->state != EEV_STATE_OPEN && d->state != EEV_STATE_CLOSING)
        return EEV_ERR_STATE;
    if (!eev_close_code_valid(code) || reason_len > FRAME_MAX_CONTROL - 2 ||
        utf8_advance(EEV_UTF8_ACCEPT, (const uint8_t *)reason, reason_len) != EEV_UTF8_ACCEPT)
        return EEV_ERR_ARG;
    drop_message(d);
    /* Our Close, when sent already, is the last frame: queued again if it
     * was among the frames dropped. */
    int rv = 0;
    if (outq_drop_unsent(&d->oq) || !(d->flags & F_CLOSE_SENT))
        rv = queue_close(d, code, reason, reason_len);
    d->flags |= F_FAILED;
    d->state = EEV_STATE_CLOSED;
    report_close(d, EEV_CLOSE_ABNORMAL, 0, NULL, 0);
    return rv;
}

/* eev_driver_status() of a connection with deflate state (a tail call,
 * so that the common case needs no stack frame). */
static __attribute__((noinline)) eev_status status_pmd(const eev_driver *d, eev_status st)
{
    if (pmd_mem(d->pmd))
        st.flags |= EEV_HOLDS;
    return st;
}

static inline eev_status status_of(const eev_driver *d)
{
    /* (EEV_FINISHED is EEV_WANT_READ + 3: no branch) */
    eev_status st = {EEV_WANT_READ + 3u * (d->state == EEV_STATE_CLOSED), (eev_state)d->state, d->oq.len};

    st.flags |= d->oq.len ? EEV_WANT_WRITE : 0;
    if (d->oq.len | d->msg_cap)
        st.flags |= EEV_HOLDS;
    else if (d->pmd)
        return status_pmd(d, st);
    return st;
}

eev_status eev_driver_status(const eev_driver *d)
{
    return status_of(d);
}

int eev_driver_out_iov(eev_driver *d, struct iovec *iov, int iovmax)
{
    if (d->oq.view && !d->oq.head && iovmax > 0) { /* echoes in place, and nothing else */
        iov[0].iov_base = d->oq.view;
        iov[0].iov_len = d->oq.view_len;
        return 1;
    }
    return outq_iov(&d->oq, iov, iovmax);
}

eev_status eev_driver_out_consume(eev_driver *d, size_t n)
{
    if (n == d->oq.len && !d->oq.head) { /* all of the view went */
        d->oq.view = NULL;
        d->oq.view_len = d->oq.len = 0;
    } else {
        outq_consume(&d->oq, n);
    }
    return status_of(d);
}

int eev_driver_out_settle(eev_driver *d)
{
    return outq_settle(&d->oq) < 0 ? EEV_ERR_NOMEM : 0;
}

size_t eev_driver_out_len(const eev_driver *d)
{
    return d->oq.len;
}

static inline size_t mem_held(const eev_driver *d)
{
    return (size_t)d->msg_cap + d->oq.len + (d->pmd ? pmd_mem(d->pmd) : 0);
}

size_t eev_driver_mem(const eev_driver *d)
{
    return mem_held(d);
}

int eev_driver_want_read(const eev_driver *d)
{
    return d->state != EEV_STATE_CLOSED;
}

int eev_driver_want_write(const eev_driver *d)
{
    return d->oq.len > 0;
}

int eev_driver_finished(const eev_driver *d)
{
    return d->state == EEV_STATE_CLOSED;
}

eev_state eev_driver_state(const eev_driver *d)
{
    return (eev_state)d->state;
}

eev_counts eev_driver_counts(const eev_driver *d)
{
    return (eev_counts){d->msgs_in, d->bytes_in, d->bytes_out};
}

void eev_driver_close_codes(const eev_driver *d, uint16_t *sent, uint16_t *received)
{
    *sent = d->code_sent;
    *received = d->code_rcvd;
}

int eev_driver_deflate(const eev_driver *d, eev_deflate_params *p)
{
    const struct pmd *z = d->pmd;

    if (!z)
        return 0;
    if (p) {
        p->server_max_window_bits = z->p.s_bits;
        p->client_max_window_bits = z->p.c_bits;
        p->server_no_context_takeover = z->p.s_nct;
        p->client_no_context_takeover = z->p.c_nct;
        p->passthrough = (z->flags & PMD_PASS) != 0;
    }
    return 1;
}

const char *eev_driver_protocol(const eev_driver *d)
{
    return d->proto ? d->opt->protocols[d->proto - 1] : NULL;
}

void *eev_driver_user_data(const eev_driver *d)
{
    return d->ud;
}

void eev_driver_set_user_data(eev_driver *d, void *ud)
{
    d->ud = ud;
}
