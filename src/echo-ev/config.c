/*
 * config.c - command-line parsing (getopt_long) and validation.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <eev/driver.h>

#include "addr.h"
#include "log.h"

#ifndef EEV_VERSION
#define EEV_VERSION "unknown"
#endif

static const char usage_text[] =
    "Usage: echo-ev [OPTION]...\n"
    "A WebSocket (RFC 6455) echo server: every message comes back as sent.\n"
    "\n"
    "  --port N|off                TCP port for ws:// (default 54398; 0 picks one; off: none)\n"
    "  --bind ADDR                 address to listen on: an IP address, a host name (every\n"
    "                              address it resolves to) or unix:PATH (plain ws:// only);\n"
    "                              repeatable (default :: dual-stack, or 0.0.0.0)\n"
    "  --unix-mode MODE            permissions of a unix:PATH socket (octal, default 0660)\n"
    "  --tls-port N                TCP port for wss:// (TLS), on the --bind address\n"
    "  --tls-cert FILE             PEM certificate chain, leaf first (repeatable: ECDSA and RSA)\n"
    "  --tls-key FILE              PEM private key of the --tls-cert given before it\n"
    "  --reuse-port                share the port with other echo-ev processes (SO_REUSEPORT)\n"
    "  --max-connections N         refuse connections beyond N with 503 (default 100000)\n"
    "  --max-message-size BYTES    close larger messages with 1009 (default 16M)\n"
    "  --max-memory BYTES          budget for messages being received and queued output, all\n"
    "                              clients together; past it the largest holders get 1013\n"
    "                              (or the large message, if it is the largest; default: half\n"
    "                              the physical memory)\n"
    "  --idle-timeout SECS         close connections idle for SECS (default 0: never)\n"
    "  --handshake-timeout SECS    drop connections not upgraded within SECS (default 10)\n"
    "  --ping-interval SECS        ping quiet peers; drop those that don't answer (default 0: off)\n"
    "  --shutdown-timeout SECS     on SIGTERM/SIGINT, wait SECS for close handshakes (default 5)\n"
    "  --backpressure-timeout SECS close clients that leave echoes unread for SECS (default 30)\n"
    "  --high-water BYTES          stop reading a client with this much output queued (default 4M)\n"
    "  --low-water BYTES           resume reading below this (default 1M)\n"
    "  --origin ORIGIN             accept browsers only from ORIGIN (repeatable; default: any)\n"
    "  --protocol NAME             accept subprotocol NAME (repeatable, in order of preference)\n"
    "  --metrics-bind ADDR:PORT    serve /metrics on a separate listener\n"
    "  --metrics-public            with --metrics-bind, serve /metrics on the main port too\n"
    "  --no-metrics                do not serve /metrics\n"
    "  --permessage-deflate on|off compression (RFC 7692) when clients offer it (default on)\n"
    "  --deflate-window-bits N     largest compression window, 2^N bytes, 9-15 (default 15)\n"
    "  --deflate-context-takeover on|off  keep compression context between messages (default on)\n"
    "  --deflate-level N           zlib level 1-9 when the echo must compress (default 6)\n"
    "  --log-level LEVEL           error, warn, info or debug (default info)\n"
    "  --log-format FORMAT         text or json (default text)\n"
    "  --access-log on|off         log each WebSocket's open and close (default on)\n"
    "  -h, --help                  show this help and exit\n"
    "  -V, --version               show the version and exit\n"
    "\n"
    "Endpoints: GET / (a WebSocket test console), GET /healthz, GET /metrics, WebSocket upgrade on any path.\n"
    "Signals: SIGTERM/SIGINT drain and exit 0; SIGHUP reloads --tls-cert/--tls-key.\n";

enum {
    OPT_PORT = 256, OPT_BIND, OPT_UNIX_MODE, OPT_REUSE_PORT, OPT_MAX_CONN, OPT_MAX_MSG, OPT_IDLE, OPT_HANDSHAKE,
    OPT_PING, OPT_SHUTDOWN, OPT_BACKPRESSURE, OPT_HIGH, OPT_LOW, OPT_ORIGIN, OPT_PROTOCOL,
    OPT_METRICS_BIND, OPT_METRICS_PUBLIC, OPT_NO_METRICS, OPT_LOG_LEVEL, OPT_LOG_FORMAT,
    OPT_ACCESS_LOG, OPT_HELP, OPT_VERSION,
    OPT_TLS_PORT, OPT_TLS_CERT, OPT_TLS_KEY, OPT_MAX_MEMORY,
    OPT_DEFLATE, OPT_DEFLATE_BITS, OPT_DEFLATE_TAKEOVER, OPT_DEFLATE_LEVEL,
};

static const struct option options[] = {
    {"port", required_argument, NULL, OPT_PORT},
    {"bind", required_argument, NULL, OPT_BIND},
    {"unix-mode", required_argument, NULL, OPT_UNIX_MODE},
    {"reuse-port", no_argument, NULL, OPT_REUSE_PORT},
    {"max-connections", required_argument, NULL, OPT_MAX_CONN},
    {"max-message-size", required_argument, NULL, OPT_MAX_MSG},
    {"idle-timeout", required_argument, NULL, OPT_IDLE},
    {"handshake-timeout", required_argument, NULL, OPT_HANDSHAKE},
    {"ping-interval", required_argument, NULL, OPT_PING},
    {"shutdown-timeout", required_argument, NULL, OPT_SHUTDOWN},
    {"backpressure-timeout", required_argument, NULL, OPT_BACKPRESSURE},
    {"high-water", required_argument, NULL, OPT_HIGH},
    {"low-water", required_argument, NULL, OPT_LOW},
    {"origin", required_argument, NULL, OPT_ORIGIN},
    {"protocol", required_argument, NULL, OPT_PROTOCOL},
    {"metrics-bind", required_argument, NULL, OPT_METRICS_BIND},
    {"metrics-public", no_argument, NULL, OPT_METRICS_PUBLIC},
    {"no-metrics", no_argument, NULL, OPT_NO_METRICS},
    {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
    {"log-format", required_argument, NULL, OPT_LOG_FORMAT},
    {"access-log", required_argument, NULL, OPT_ACCESS_LOG},
    {"help", no_argument, NULL, 'h'},   /* at OPT_HELP's place: names are found by index */
    {"version", no_argument, NULL, 'V'},
    {"tls-port", required_argument, NULL, OPT_TLS_PORT},
    {"tls-cert", required_argument, NULL, OPT_TLS_CERT},
    {"tls-key", required_argument, NULL, OPT_TLS_KEY},
    {"max-memory", required_argument, NULL, OPT_MAX_MEMORY},
    {"permessage-deflate", required_argument, NULL, OPT_DEFLATE},
    {"deflate-window-bits", required_argument, NULL, OPT_DEFLATE_BITS},
    {"deflate-context-takeover", required_argument, NULL, OPT_DEFLATE_TAKEOVER},
    {"deflate-level", required_argument, NULL, OPT_DEFLATE_LEVEL},
    {NULL, 0, NULL, 0},
};

static int bad(const char *flag, const char *value, const char *why)
{
    fprintf(stderr, "echo-ev: --%s: invalid value '%s'%s%s\n", flag, value, why ? ": " : "",
            why ? why : "");
    return 2;
}

/* Unsigned integer with an optional K/M/G (binary) suffix. */
static int parse_size(const char *s, uint64_t max, uint64_t *out)
{
    char *end;
    errno = 0;
    if (*s == '-' || *s == '+' || *s == ' ' || !*s)
        return -1;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s)
        return -1;
    int shift = 0;
    if (*end) {
        switch (*end) {
        case 'k': case 'K': shift = 10; break;
        case 'm': case 'M': shift = 20; break;
        case 'g': case 'G': shift = 30; break;
        default: return -1;
        }
        if (end[1] && !(end[1] == 'i' && end[2] == 'B' && !end[3]) && !((end[1] == 'B') && !end[2]))
            return -1;
    }
    if (v > (max >> shift))
        return -1;
    *out = (uint64_t)v << shift;
    return 0;
}

static int parse_secs(const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v) || v < 0 || v > 31536000)
        return -1;
    *out = v;
    return 0;
}

/* "1.2.3.4:80", "[::1]:80", "localhost:80": a port where only an address goes. */
static int has_port(const char *s)
{
    const char *colon = strrchr(s, ':');

    if (!colon || !colon[1] || strspn(colon + 1, "0123456789") != strlen(colon + 1))
        return 0;
    return s[0] == '[' ? colon > s && colon[-1] == ']' : strchr(s, ':') == colon;
}

/* --bind: an IP literal, unix:PATH, or a host name listened on at every
 * address it resolves to. Appends to cfg->bind_*. Returns 0 or 2. */
static int parse_bind(struct config *cfg, const char *arg)
{
    struct sockaddr_storage *ss = cfg->bind_addr + cfg->bind_cnt;
    socklen_t *sl = cfg->bind_len + cfg->bind_cnt;
    int room = MAX_BIND - cfg->bind_cnt, n = 1;
    const char *why;

    if (room == 0)
        return bad("bind", arg, "too many addresses");
    if (strncmp(arg, "unix:", 5) == 0) {
        if (arg[5] != '/' || addr_unix(arg + 5, ss, sl) < 0)
            return bad("bind", arg, "expected unix:/absolute/path (at most 107 bytes)");
    } else if (has_port(arg)) {
        return bad("bind", arg, "the port goes in --port, e.g. --bind 127.0.0.1 --port 8080");
    } else if (addr_parse(arg, strlen(arg), 0, ss, sl) < 0 &&
               (n = addr_resolve(arg, 0, ss, sl, room, &why)) < 0) {
        char msg[160];
        snprintf(msg, sizeof(msg), "not an IP address, unix:PATH or a host name that resolves (%s)", why);
        return bad("bind", arg, msg);
    }
    cfg->bind_cnt += n;
    return 0;
}

int config_parse(struct config *cfg, int argc, char **argv)
{
    uint64_t v;
    int c, rv;

    memset(cfg, 0, sizeof(*cfg));
    cfg->port = 54398;
    cfg->tls_port = -1;
    cfg->max_connections = 100000;
    cfg->max_message_size = 16u << 20;
    cfg->handshake_timeout = 10;
    cfg->shutdown_timeout = 5;
    cfg->backpressure_timeout = 30;
    cfg->high_water = 4u << 20;
    cfg->low_water = 1u << 20;
    cfg->metrics = 1;
    cfg->unix_mode = 0660;
    cfg->log_level = LOG_INFO;
    cfg->log_format = LOGF_TEXT;
    cfg->access_log = 1;
    cfg->deflate = 1;
    cfg->deflate_window_bits = 15;
    cfg->deflate_takeover = 1;
    cfg->deflate_level = 6;

    opterr = 0;
    while ((c = getopt_long(argc, argv, ":hV", options, NULL)) != -1) {
        const char *flag = optind > 0 && optind <= argc ? argv[optind - 1] + 2 : "?";
        const char *name = c >= OPT_PORT && c <= OPT_DEFLATE_LEVEL ? options[c - OPT_PORT].name : flag;
        switch (c) {
        case OPT_PORT:
            if (!strcmp(optarg, "off")) {
                cfg->port_off = 1;
                break;
            }
            if (parse_size(optarg, 65535, &v) < 0 || strpbrk(optarg, "kKmMgG"))
                return bad(name, optarg, "expected 0-65535 or off");
            cfg->port = (unsigned)v;
            cfg->port_off = 0;
            break;
        case OPT_TLS_PORT:
            if (parse_size(optarg, 65535, &v) < 0 || strpbrk(optarg, "kKmMgG"))
                return bad(name, optarg, "expected 0-65535");
            cfg->tls_port = (int)v;
            break;
        case OPT_TLS_CERT:
        case OPT_TLS_KEY: {
            int n = cfg->tls_pair_cnt;
            const char **slot = c == OPT_TLS_CERT ? cfg->tls_certs : cfg->tls_keys;
            /* A pair completes with its second half; then a new one starts. */
            if (cfg->tls_certs[n] && cfg->tls_keys[n])
                n = ++cfg->tls_pair_cnt;
            if (n == MAX_TLS_PAIRS)
                return bad(name, optarg, "too many certificates");
            if (slot[n])
                return bad(name, optarg, c == OPT_TLS_CERT ? "expected --tls-key for the previous --tls-cert"
                                                           : "expected --tls-cert for the previous --tls-key");
            if (!*optarg)
                return bad(name, optarg, "empty");
            slot[n] = optarg;
            break;
        }
        case OPT_BIND:
            if ((rv = parse_bind(cfg, optarg)) != 0)
                return rv;
            break;
        case OPT_UNIX_MODE: {
            char *end;
            errno = 0;
            unsigned long mode = strtoul(optarg, &end, 8);
            if (errno || end == optarg || *end || mode > 0777)
                return bad(name, optarg, "expected octal permissions, e.g. 0660");
            cfg->unix_mode = (unsigned)mode;
            break;
        }
        case OPT_REUSE_PORT: cfg->reuse_port = 1; break;
        case OPT_MAX_CONN:
            if (parse_size(optarg, 100000000, &v) < 0 || v == 0)
                return bad(name, optarg, "expected a positive count");
            cfg->max_connections = (unsigned long)v;
            break;
        case OPT_MAX_MSG:
            if (parse_size(optarg, 1ull << 40, &v) < 0 || v == 0)
                return bad(name, optarg, "expected a positive size (K/M/G suffixes allowed)");
            if (v > EEV_MAX_MESSAGE_SIZE)
                return bad(name, optarg, "above the largest message the driver supports, "
                                         "4294967295 bytes (4G - 1)");
            cfg->max_message_size = v;
            break;
        case OPT_MAX_MEMORY:
            if (parse_size(optarg, 1ull << 50, &v) < 0 || v == 0)
                return bad(name, optarg, "expected a positive size (K/M/G suffixes allowed)");
            cfg->max_memory = v;
            break;
        case OPT_HIGH:
        case OPT_LOW:
            if (parse_size(optarg, 1ull << 40, &v) < 0 || v == 0)
                return bad(name, optarg, "expected a positive size (K/M/G suffixes allowed)");
            if (c == OPT_HIGH)
                cfg->high_water = (size_t)v;
            else
                cfg->low_water = (size_t)v;
            break;
        case OPT_IDLE:
        case OPT_HANDSHAKE:
        case OPT_PING:
        case OPT_SHUTDOWN:
        case OPT_BACKPRESSURE: {
            double *dst = c == OPT_IDLE ? &cfg->idle_timeout
                        : c == OPT_HANDSHAKE ? &cfg->handshake_timeout
                        : c == OPT_PING ? &cfg->ping_interval
                        : c == OPT_SHUTDOWN ? &cfg->shutdown_timeout
                                            : &cfg->backpressure_timeout;
            if (parse_secs(optarg, dst) < 0)
                return bad(name, optarg, "expected seconds");
            if ((c == OPT_HANDSHAKE || c == OPT_BACKPRESSURE) && *dst == 0)
                return bad(name, optarg, "must be positive");
            break;
        }
        case OPT_ORIGIN:
        case OPT_PROTOCOL: {
            int *cnt = c == OPT_ORIGIN ? &cfg->origin_cnt : &cfg->protocol_cnt;
            const char **list = c == OPT_ORIGIN ? cfg->origins : cfg->protocols;
            if (*cnt == MAX_LIST)
                return bad(name, optarg, "too many");
            if (!*optarg || (c == OPT_PROTOCOL && strpbrk(optarg, " ,\t\r\n\"")))
                return bad(name, optarg, c == OPT_PROTOCOL ? "expected a token" : "empty");
            list[(*cnt)++] = optarg;
            break;
        }
        case OPT_METRICS_BIND: {
            const char *colon = strrchr(optarg, ':');
            if (!colon || parse_size(colon + 1, 65535, &v) < 0 || strpbrk(colon + 1, "kKmMgG") ||
                addr_parse(optarg, (size_t)(colon - optarg), (unsigned)v, &cfg->metrics_addr,
                           &cfg->metrics_len) < 0)
                return bad(name, optarg, "expected ADDR:PORT, e.g. 127.0.0.1:9100 or [::1]:9100");
            cfg->metrics_bind = optarg;
            break;
        }
        case OPT_METRICS_PUBLIC: cfg->metrics_public = 1; break;
        case OPT_NO_METRICS: cfg->metrics = 0; break;
        case OPT_LOG_LEVEL:
            if (!strcmp(optarg, "error")) cfg->log_level = LOG_ERR;
            else if (!strcmp(optarg, "warn")) cfg->log_level = LOG_WARN;
            else if (!strcmp(optarg, "info")) cfg->log_level = LOG_INFO;
            else if (!strcmp(optarg, "debug")) cfg->log_level = LOG_DEBUG;
            else return bad(name, optarg, "expected error, warn, info or debug");
            break;
        case OPT_LOG_FORMAT:
            if (!strcmp(optarg, "text")) cfg->log_format = LOGF_TEXT;
            else if (!strcmp(optarg, "json")) cfg->log_format = LOGF_JSON;
            else return bad(name, optarg, "expected text or json");
            break;
        case OPT_ACCESS_LOG:
            if (!strcmp(optarg, "on")) cfg->access_log = 1;
            else if (!strcmp(optarg, "off")) cfg->access_log = 0;
            else return bad(name, optarg, "expected on or off");
            break;
        case OPT_DEFLATE:
        case OPT_DEFLATE_TAKEOVER: {
            int on = !strcmp(optarg, "on") ? 1 : !strcmp(optarg, "off") ? 0 : -1;
            if (on < 0)
                return bad(name, optarg, "expected on or off");
            *(c == OPT_DEFLATE ? &cfg->deflate : &cfg->deflate_takeover) = on;
            break;
        }
        case OPT_DEFLATE_BITS:
        case OPT_DEFLATE_LEVEL: {
            int lo = c == OPT_DEFLATE_BITS ? 9 : 1, hi = c == OPT_DEFLATE_BITS ? 15 : 9;
            if (parse_size(optarg, (uint64_t)hi, &v) < 0 || strpbrk(optarg, "kKmMgG") || v < (uint64_t)lo)
                return bad(name, optarg, c == OPT_DEFLATE_BITS ? "expected 9-15" : "expected 1-9");
            *(c == OPT_DEFLATE_BITS ? &cfg->deflate_window_bits : &cfg->deflate_level) = (int)v;
            break;
        }
        case 'h': fputs(usage_text, stdout); return 1;
        case 'V': printf("echo-ev %s\n", EEV_VERSION); return 1;
        case ':':
            fprintf(stderr, "echo-ev: %s: missing value\n", argv[optind - 1]);
            return 2;
        default:
            fprintf(stderr, "echo-ev: unknown option '%s' (see --help)\n", argv[optind - 1]);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "echo-ev: unexpected argument '%s' (see --help)\n", argv[optind]);
        return 2;
    }
    for (int i = 0; i < cfg->bind_cnt; i++)
        addr_set_port(&cfg->bind_addr[i], cfg->port); /* --port may come after --bind */
    if (cfg->tls_pair_cnt < MAX_TLS_PAIRS && (cfg->tls_certs[cfg->tls_pair_cnt] || cfg->tls_keys[cfg->tls_pair_cnt])) {
        if (!cfg->tls_certs[cfg->tls_pair_cnt] || !cfg->tls_keys[cfg->tls_pair_cnt]) {
            fprintf(stderr, "echo-ev: --tls-cert and --tls-key go in pairs\n");
            return 2;
        }
        cfg->tls_pair_cnt++;
    }
    if (cfg->tls_port >= 0 && cfg->tls_pair_cnt == 0) {
        fprintf(stderr, "echo-ev: --tls-port: needs --tls-cert FILE and --tls-key FILE\n");
        return 2;
    }
    if (cfg->port_off && cfg->tls_port < 0) {
        fprintf(stderr, "echo-ev: --port off: needs --tls-port (nothing to listen on)\n");
        return 2;
    }
    if (cfg->low_water >= cfg->high_water) {
        fprintf(stderr, "echo-ev: --low-water: must be below --high-water\n");
        return 2;
    }
    if (cfg->max_memory == 0) {
        /* Half the machine: the kernel's socket buffers need room too. */
        long pages = sysconf(_SC_PHYS_PAGES), psize = sysconf(_SC_PAGESIZE);
        cfg->max_memory = pages > 0 && psize > 0 ? (uint64_t)pages * (uint64_t)psize / 2 : 1ull << 30;
    }
    return 0;
}
