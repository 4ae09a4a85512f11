/*
 * config.h - the command line, parsed and validated into one struct.
 */
#ifndef EEV_CONFIG_H
#define EEV_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define MAX_LIST 32
#define MAX_TLS_PAIRS 4
#define MAX_BIND 8 /* listening addresses from --bind */

struct config {
    unsigned port;
    int port_off;             /* --port off: no plain listener */
    int tls_port;             /* --tls-port, or -1: no TLS listener */
    const char *tls_certs[MAX_TLS_PAIRS]; /* --tls-cert/--tls-key pairs, in order */
    const char *tls_keys[MAX_TLS_PAIRS];
    int tls_pair_cnt;
    struct sockaddr_storage bind_addr[MAX_BIND]; /* --bind, resolved, with --port filled in */
    socklen_t bind_len[MAX_BIND];
    int bind_cnt;             /* 0: no --bind (dual-stack "::", else 0.0.0.0) */
    unsigned unix_mode;       /* permissions of a unix:PATH listener */
    int reuse_port;
    unsigned long max_connections;
    uint64_t max_message_size;
    uint64_t max_memory;      /* --max-memory, or half the physical memory */
    double idle_timeout;      /* 0: off */
    double handshake_timeout;
    double ping_interval;     /* 0: off */
    double shutdown_timeout;
    double backpressure_timeout;
    size_t high_water, low_water;
    const char *origins[MAX_LIST + 1]; /* NULL-ended */
    int origin_cnt;
    const char *protocols[MAX_LIST + 1];
    int protocol_cnt;
    const char *metrics_bind; /* ADDR:PORT as given, or NULL */
    struct sockaddr_storage metrics_addr; /* --metrics-bind, parsed */
    socklen_t metrics_len;
    int metrics;              /* serve /metrics */
    int metrics_public;       /* ... on the main port even with --metrics-bind */
    int log_level;
    int log_format;
    int access_log;           /* log each WebSocket's open and close */
    int deflate;              /* negotiate permessage-deflate */
    int deflate_window_bits;  /* 9-15: the largest window, ours and the client's */
    int deflate_takeover;     /* keep compression context between messages */
    int deflate_level;        /* zlib level 1-9 (when we compress) */
};

/* Fills cfg from argv. Returns 0 to run, 1 when --help/--version was
 * answered, 2 on a usage error (already reported on stderr). */
int config_parse(struct config *cfg, int argc, char **argv);

#endif
