/*
 * bench.h - what the parts of echo-bench share: the connection record, the
 * one run-wide state `g` (options, runtime, results), and each part's entry
 * points. A benchmark is one process (or one per hold worker) running one
 * load, so a single global keeps every hot path free of context pointers.
 *
 *   main.c     wiring: options, limits, the mode, the report
 *   options.c  the command line: usage, parsing, ws:// URL resolution
 *   client.c   one client connection on the eev driver (socket, pump, end)
 *   load.c     what each connection sends and when, and the check of each
 *              echo (closed-loop window, open-loop timerfd schedule)
 *   run.c      the run's timeline: connect, warmup, measure, grace, close
 *   report.c   the text and JSON reports
 *   hold.c     hold mode, forked over workers above HOLD_PER_PROCESS
 *   tls.c      wss://: the OpenSSL client context and TLS read/write
 *   hist.c     the latency histogram; payload.h the message payloads
 *   precomp.c  --precompressed: payloads compressed once, echoes checked
 */
#ifndef ECHO_BENCH_BENCH_H
#define ECHO_BENCH_BENCH_H

#include <ev.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <time.h>

#include <eev/driver.h>

#include "hist.h"
#include "payload.h"

#define RBUF_LEN (256 * 1024)     /* shared read buffer */
#define OUT_HIGH_WATER (256 * 1024) /* stop producing above this much queued */
#define IOV_MAX_BATCH 64
#define READS_PER_EVENT 8 /* fairness: reads per readiness event */
#define HOLD_PER_PROCESS 15000 /* the fd limit is 20000 (hard) */
#define CONNECT_TIMEOUT_NS (10 * NS_PER_S)
#define CLOSE_TIMEOUT_S 2.0
#define OOO_SCAN 64 /* seqs either side checked to tell reordering from corruption */
#define NS_PER_S 1000000000ull

enum mode { MODE_ECHO, MODE_CONNECT_RATE, MODE_HOLD };

/* Run phases, in order. */
enum phase { PH_CONNECT, PH_RUN, PH_GRACE, PH_CLOSE, PH_DONE };

enum cstate {
    C_IDLE,       /* no socket */
    C_CONNECTING, /* TCP connect in progress */
    C_HANDSHAKE,  /* upgrade request sent, waiting for 101 */
    C_OPEN,
    C_CLOSING, /* Close queued, waiting for the reply or EOF */
};

struct ssl_st;

/* conn.tls_want */
enum { TLSW_WRITE = 1, TLSW_DEAD = 2 };

typedef struct conn {
    ev_io io;
    eev_driver *drv;
    struct ssl_st *ssl; /* wss:// */
    int fd;
    uint32_t id;
    uint8_t state;     /* enum cstate */
    uint8_t closed;    /* on_close fired */
    uint8_t eof;       /* read returned 0 or failed */
    uint8_t evmask;    /* events the io watcher is started with, or 0 */
    uint8_t tls_want;  /* TLSW_*: OpenSSL waits for the socket to be writable */
    uint8_t zbits;     /* --precompressed: our negotiated window bits */
    uint64_t t_connect; /* ns: connect() started (handshake latency) */
    /* Outstanding echoes are seqs [ack_seq, next_seq); ring[seq & ring_mask]
     * is the send time (intended, in open loop) of seq. */
    uint64_t next_seq;
    uint64_t ack_seq;
    uint64_t *ring;
    uint64_t ring_mask;
    uint64_t next_due; /* open loop: intended time of next_seq */
    uint32_t heap_idx; /* open loop: position in g.heap, or NOT_QUEUED */
} conn;

#define NOT_QUEUED UINT32_MAX

struct bench {
    /* options (options.c) */
    enum mode mode;
    const char *url;
    char host_hdr[300]; /* Host header value */
    char *path;
    struct sockaddr_storage addr;
    socklen_t addr_len;
    uint32_t conns;
    uint64_t size;
    int text;
    int deflate;      /* --deflate: offer permessage-deflate, verify echoes through it */
    int compressible; /* --compressible: payloads of dictionary words */
    int precompressed; /* --precompressed: send payloads compressed once (precomp.c) */
    uint32_t inflight;
    double duration;
    int duration_given; /* -d was given (hold mode: otherwise hold forever) */
    double warmup;
    double rate; /* 0: closed loop */
    double grace;
    uint64_t messages; /* --messages: the total to send, then stop (0: no limit) */
    uint32_t connect_conc;
    int json;
    int quiet;
    uint32_t hold; /* --hold N */
    uint32_t hold_id_base; /* hold workers: first connection id */
    int tls;               /* wss:// */
    int insecure;          /* --insecure: no certificate check */
    const char *cafile;    /* --cafile */
    int tls_resume;        /* --tls-resume */
    char tls_host[256];    /* the URL's host, for SNI and the check */

    /* runtime */
    struct ev_loop *loop;
    eev_callbacks cb;
    eev_options opt;
    conn *c;
    uint8_t *rbuf;
    payload_pool pool; /* every message's payload */
    uint64_t run_seed;
    enum phase phase;
    uint64_t now;      /* ns, refreshed after each read */
    uint64_t t_start, t_measure, t_end, t_grace;
    uint64_t period; /* open loop: ns between sends on one connection */
    uint32_t next_connect; /* connect phase: next index to start */
    uint32_t pending;      /* connections being set up */
    uint32_t up;           /* connections open */
    uint32_t live;         /* connections with a socket */
    ev_timer tick;
    /* Open loop schedule: a min-heap of connections by next_due, woken by a
     * timerfd. libev's own timers go through epoll_wait()'s millisecond
     * timeout, and that lateness would show up as latency. */
    conn **heap;
    uint32_t heap_len;
    int tfd;
    ev_io tfd_io;
    ev_signal sigint, sigterm;
    int interrupted;
    int progress_tty;
    int hold_report_fd; /* hold worker: pipe to the parent, or -1 */

    /* results */
    hist lat;
    uint64_t sent, received; /* all, including warmup */
    uint64_t msgs, bytes;    /* echoes received in the measure window */
    uint64_t handshakes;     /* connect-rate: opened in the window */
    uint64_t lost, corrupted, out_of_order, unexpected;
    uint64_t conn_errors;
    uint64_t backlog; /* open loop: intended sends never made */
    uint64_t outstanding;
    uint64_t deflated_echoes; /* --deflate: echoes that came compressed */
    uint64_t passthrough_echoes; /* --precompressed: ... byte for byte as sent */
    uint64_t short_count; /* --messages: echoes missing when time ran out */
};

extern struct bench g;

static inline uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * NS_PER_S + (uint64_t)ts.tv_nsec;
}

/* options.c: fills the options part of g from argv, resolves the URL; on
 * --help or a usage error prints and exits (0 or 2). */
void options_parse(int argc, char **argv);

/* client.c */
void client_init(void); /* the driver callbacks and client options in g */
void conn_start(conn *c);
void conn_proceed(conn *c);
void conn_finish(conn *c, int failed, const char *why, int err);
void conn_teardown(conn *c);

/* tls.c */
int tls_client_init(void);
int tls_conn_start(conn *c);
void tls_conn_end(conn *c);
ssize_t tls_read(conn *c, void *buf, size_t len);
ssize_t tls_writev(conn *c, const struct iovec *iov, int cnt);

/* precomp.c (--precompressed) */
int precomp_open(conn *c); /* on open: the payloads for c's window; -1: unusable */
int precomp_send(conn *c, uint64_t seq);
int precomp_echo_ok(const conn *c, const eev_message_arg *m, uint64_t seq);
void precomp_free(void);

/* load.c */
int load_init(void); /* open loop: the schedule heap and its timerfd */
void load_produce(conn *c);
int load_on_message(eev_driver *d, const eev_message_arg *m, void *ud);
void sched_remove(conn *c);

/* run.c */
int run(void);
void run_check_done(void);
void connect_more(void);
void begin_grace(void);
void begin_close(void);

/* report.c */
void count_backlog(void);
int has_errors(void);
void report_human(void);
void report_json(void);

/* hold.c */
void hold_report(int done);
int hold_main(uint32_t n);

#endif
