/*
 * options.c - the echo-bench command line: usage text, number and duration
 * parsing, and the ws:// URL (Host header, path, and the address to connect
 * to). Fills the options part of g; a usage error exits with status 2.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bench.h"

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: echo-bench ws[s]://HOST:PORT/PATH [options]\n"
            "\n"
            "WebSocket echo load generator. HOST is an IPv4 literal, a bracketed IPv6\n"
            "literal (ws://[::1]:9001/) or a name such as localhost. wss:// speaks TLS\n"
            "(OpenSSL; the certificate is checked against the system's CAs, --cafile\n"
            "FILE, or not at all with --insecure; --tls-resume resumes sessions).\n"
            "\n"
            "Echo mode (default): every echo is verified (content, opcode, order).\n"
            "  -c, --connections N     connections (default 10)\n"
            "  -s, --size BYTES        message payload size; suffixes k, m (KiB, MiB)\n"
            "                          (default 16)\n"
            "      --text              send text messages (printable ASCII payloads)\n"
            "      --binary            send binary messages (default)\n"
            "      --deflate           offer permessage-deflate (RFC 7692): messages go out\n"
            "                          compressed (zlib level 1), echoes are inflated and\n"
            "                          verified; a server that declines is an error\n"
            "      --compressible      payloads of words (compress ~3:1) instead of random\n"
            "      --precompressed     --deflate, but 16 payloads are compressed once, at\n"
            "                          start, and sent as they are (no zlib per message;\n"
            "                          both sides asked for no context takeover); an echo\n"
            "                          that comes back byte for byte is not inflated\n"
            "  -i, --inflight N        messages in flight per connection, closed loop\n"
            "                          (default 1)\n"
            "  -r, --rate MSGS_PER_S   open loop: send at this total rate, spread evenly\n"
            "                          over the connections; latency is measured from\n"
            "                          the intended send time (no coordinated omission)\n"
            "  -d, --duration SECONDS  measured duration (default 10)\n"
            "  -w, --warmup SECONDS    warmup before measuring, not counted (default 1)\n"
            "  -n, --messages N        send N messages in all (spread evenly over the\n"
            "                          connections) and stop once all are echoed; -d is\n"
            "                          then a time limit, and --warmup defaults to 0\n"
            "      --grace SECONDS     after the run, wait this long for outstanding\n"
            "                          echoes before counting them lost (default 2)\n"
            "      --connect-concurrency N\n"
            "                          connections being set up at once (default 256),\n"
            "                          so that large -c stays within the listen backlog\n"
            "      --json              print one JSON object instead of the text report\n"
            "  -q, --quiet             no progress or per-connection messages on stderr\n"
            "                          (progress: connecting, then on a terminal one line\n"
            "                          a second during warmup and measure)\n"
            "      --insecure          wss://: do not check the server's certificate\n"
            "      --cafile FILE       wss://: trust the CA certificates in FILE (PEM)\n"
            "      --tls-resume        wss://: resume the last TLS session on new\n"
            "                          connections (with --connect-rate: resumed handshakes)\n"
            "\n"
            "Connect-rate mode:\n"
            "      --connect-rate      run -c loops of connect, upgrade, Close, wait for\n"
            "                          the reply or EOF, repeat, for -d seconds after\n"
            "                          --warmup; reports handshakes/s and the latency\n"
            "                          from connect() to the 101 response\n"
            "\n"
            "Hold mode:\n"
            "      --hold N            open N idle upgraded connections, print\n"
            "                          \"holding N\" on stdout once all are up, and keep\n"
            "                          them until SIGINT/SIGTERM (or -d SECONDS when -d\n"
            "                          is given); above %u connections the work is\n"
            "                          forked over worker processes\n"
            "\n"
            "Reports messages/s, MB/s (payload bytes echoed per second, 10^6 bytes),\n"
            "latency p50/p90/p99/p99.9/max (log-linear histogram, 64 sub-buckets per\n"
            "power of two, ns resolution) and errors: lost (connection closed with\n"
            "messages outstanding, or no echo by the end of the grace period),\n"
            "corrupted, out-of-order, unexpected (echo of nothing sent) and connection\n"
            "errors.\n"
            "\n"
            "Exit status: 0 success, 1 any error above, 2 usage error.\n"
            "  -h, --help              this text\n",
            HOLD_PER_PROCESS);
}

static void die_usage(const char *fmt, const char *arg)
{
    fprintf(stderr, "echo-bench: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\nTry 'echo-bench --help'.\n");
    exit(2);
}

static uint64_t parse_u64(const char *s, const char *what, int suffixes)
{
    char *end;
    errno = 0;
    if (*s == '-' || *s == '\0')
        die_usage("invalid %s", what);
    unsigned long long v = strtoull(s, &end, 10);
    if (errno)
        die_usage("invalid %s", what);
    if (suffixes && *end) {
        unsigned shift = 0;
        switch (*end) {
        case 'k':
        case 'K':
            shift = 10;
            break;
        case 'm':
        case 'M':
            shift = 20;
            break;
        case 'g':
        case 'G':
            shift = 30;
            break;
        default:
            die_usage("invalid %s", what);
        }
        end++;
        if (*end == 'i' && end[1] == 'B')
            end += 2;
        else if (*end == 'B')
            end++;
        if (v > (UINT64_MAX >> shift))
            die_usage("invalid %s", what);
        v <<= shift;
    }
    if (*end)
        die_usage("invalid %s", what);
    return v;
}

static double parse_secs(const char *s, const char *what)
{
    char *end;
    double v = strtod(s, &end);
    if (end == s || *end || !isfinite(v) || v < 0 || v > 1e7)
        die_usage("invalid %s", what);
    return v;
}

/* Parses ws://HOST[:PORT][/PATH] and resolves HOST. */
static void parse_url(const char *url)
{
    g.tls = strncmp(url, "wss://", 6) == 0;
    if (strncmp(url, "ws://", 5) != 0 && !g.tls)
        die_usage("%s: the URL must start with ws:// or wss://", url);
    const char *a = url + (g.tls ? 6 : 5);
    const char *slash = a + strcspn(a, "/?#");
    char host[256], port[16] = "80";
    if (g.tls)
        strcpy(port, "443");
    const char *hend;
    if (*a == '[') {
        hend = memchr(a, ']', (size_t)(slash - a));
        if (!hend || hend - a - 1 >= (ptrdiff_t)sizeof(host) || hend == a + 1)
            die_usage("%s: bad IPv6 literal", url);
        memcpy(host, a + 1, (size_t)(hend - a - 1));
        host[hend - a - 1] = '\0';
        hend++;
    } else {
        hend = a;
        while (hend < slash && *hend != ':')
            hend++;
        if (hend == a || hend - a >= (ptrdiff_t)sizeof(host))
            die_usage("%s: bad host", url);
        memcpy(host, a, (size_t)(hend - a));
        host[hend - a] = '\0';
    }
    if (hend < slash) {
        if (*hend != ':' || slash - hend - 1 < 1 || slash - hend - 1 > 5)
            die_usage("%s: bad port", url);
        memcpy(port, hend + 1, (size_t)(slash - hend - 1));
        port[slash - hend - 1] = '\0';
        char *end;
        long p = strtol(port, &end, 10);
        if (*end || p < 1 || p > 65535)
            die_usage("%s: bad port", url);
    }
    snprintf(g.tls_host, sizeof(g.tls_host), "%s", host);
    if ((size_t)(slash - a) >= sizeof(g.host_hdr))
        die_usage("%s: host too long", url);
    /* Host header: the authority as written (RFC 7230 §5.4). */
    memcpy(g.host_hdr, a, (size_t)(slash - a));
    g.host_hdr[slash - a] = '\0';
    if (*slash == '\0' || *slash == '#')
        g.path = strdup("/");
    else if (*slash == '?') {
        g.path = malloc(strlen(slash) + 2);
        if (g.path)
            sprintf(g.path, "/%s", slash);
    } else {
        g.path = strdup(slash);
        if (g.path)
            g.path[strcspn(g.path, "#")] = '\0';
    }

    struct addrinfo hints, *res, *ai;
    memset(&hints, 0, sizeof(hints));
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    int rv = getaddrinfo(host, port, &hints, &res);
    if (rv != 0) {
        fprintf(stderr, "echo-bench: %s: %s\n", host, gai_strerror(rv));
        exit(1);
    }
    /* Names such as localhost resolve to several addresses while the server
     * may listen on one: take the first that accepts a (blocking) probe. */
    int found = 0, err = 0;
    for (ai = res; ai && !found; ai = ai->ai_next) {
        int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
            continue;
        if (!ai->ai_next || connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
            memcpy(&g.addr, ai->ai_addr, ai->ai_addrlen);
            g.addr_len = ai->ai_addrlen;
            found = 1;
        } else {
            err = errno;
        }
        close(fd);
    }
    freeaddrinfo(res);
    if (!found) {
        fprintf(stderr, "echo-bench: %s: %s\n", host, strerror(err));
        exit(1);
    }
}

void options_parse(int argc, char **argv)
{
    enum {
        OPT_TEXT = 256,
        OPT_BINARY,
        OPT_GRACE,
        OPT_JSON,
        OPT_CONNECT_RATE,
        OPT_HOLD,
        OPT_CONC,
        OPT_INSECURE,
        OPT_CAFILE,
        OPT_TLS_RESUME,
        OPT_DEFLATE,
        OPT_COMPRESSIBLE,
        OPT_PRECOMPRESSED,
    };
    static const struct option longopts[] = {
        {"connections", required_argument, NULL, 'c'},
        {"size", required_argument, NULL, 's'},
        {"text", no_argument, NULL, OPT_TEXT},
        {"binary", no_argument, NULL, OPT_BINARY},
        {"inflight", required_argument, NULL, 'i'},
        {"rate", required_argument, NULL, 'r'},
        {"duration", required_argument, NULL, 'd'},
        {"warmup", required_argument, NULL, 'w'},
        {"grace", required_argument, NULL, OPT_GRACE},
        {"messages", required_argument, NULL, 'n'},
        {"json", no_argument, NULL, OPT_JSON},
        {"connect-rate", no_argument, NULL, OPT_CONNECT_RATE},
        {"hold", required_argument, NULL, OPT_HOLD},
        {"connect-concurrency", required_argument, NULL, OPT_CONC},
        {"deflate", no_argument, NULL, OPT_DEFLATE},
        {"compressible", no_argument, NULL, OPT_COMPRESSIBLE},
        {"precompressed", no_argument, NULL, OPT_PRECOMPRESSED},
        {"quiet", no_argument, NULL, 'q'},
        {"insecure", no_argument, NULL, OPT_INSECURE},
        {"cafile", required_argument, NULL, OPT_CAFILE},
        {"tls-resume", no_argument, NULL, OPT_TLS_RESUME},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    g.mode = MODE_ECHO;
    g.conns = 10;
    g.size = 16;
    g.inflight = 1;
    g.duration = 10;
    g.warmup = 1;
    g.grace = 2;
    g.connect_conc = 256;
    g.hold_report_fd = -1;
    int ch, warmup_given = 0;
    while ((ch = getopt_long(argc, argv, "c:s:i:r:d:w:n:qh", longopts, NULL)) != -1) {
        switch (ch) {
        case 'c': {
            uint64_t v = parse_u64(optarg, "connection count", 0);
            if (v < 1 || v > 1000000)
                die_usage("connection count %s out of range (1..1000000)", optarg);
            g.conns = (uint32_t)v;
            break;
        }
        case 's':
            g.size = parse_u64(optarg, "size", 1);
            if (g.size > (1ull << 30))
                die_usage("size %s too large (max 1 GiB)", optarg);
            break;
        case OPT_TEXT:
            g.text = 1;
            break;
        case OPT_BINARY:
            g.text = 0;
            break;
        case OPT_DEFLATE:
            g.deflate = 1;
            break;
        case OPT_COMPRESSIBLE:
            g.compressible = 1;
            break;
        case OPT_PRECOMPRESSED:
            g.precompressed = g.deflate = 1;
            break;
        case 'i': {
            uint64_t v = parse_u64(optarg, "inflight", 0);
            if (v < 1 || v > 1000000)
                die_usage("inflight %s out of range (1..1000000)", optarg);
            g.inflight = (uint32_t)v;
            break;
        }
        case 'r':
            g.rate = parse_secs(optarg, "rate");
            if (g.rate <= 0)
                die_usage("rate %s must be positive", optarg);
            break;
        case 'd':
            g.duration = parse_secs(optarg, "duration");
            g.duration_given = 1;
            break;
        case 'w':
            g.warmup = parse_secs(optarg, "warmup");
            warmup_given = 1;
            break;
        case 'n':
            g.messages = parse_u64(optarg, "message count", 0);
            if (g.messages < 1)
                die_usage("message count %s must be positive", optarg);
            break;
        case OPT_GRACE:
            g.grace = parse_secs(optarg, "grace");
            break;
        case OPT_JSON:
            g.json = 1;
            break;
        case OPT_CONNECT_RATE:
            g.mode = MODE_CONNECT_RATE;
            break;
        case OPT_HOLD: {
            uint64_t v = parse_u64(optarg, "hold count", 0);
            if (v < 1 || v > 1000000)
                die_usage("hold count %s out of range (1..1000000)", optarg);
            g.hold = (uint32_t)v;
            g.mode = MODE_HOLD;
            break;
        }
        case OPT_CONC: {
            uint64_t v = parse_u64(optarg, "connect concurrency", 0);
            if (v < 1 || v > 100000)
                die_usage("connect concurrency %s out of range", optarg);
            g.connect_conc = (uint32_t)v;
            break;
        }
        case 'q':
            g.quiet = 1;
            break;
        case OPT_INSECURE:
            g.insecure = 1;
            break;
        case OPT_CAFILE:
            g.cafile = optarg;
            break;
        case OPT_TLS_RESUME:
            g.tls_resume = 1;
            break;
        case 'h':
            usage(stdout);
            exit(0);
        default:
            fprintf(stderr, "Try 'echo-bench --help'.\n");
            exit(2);
        }
    }
    if (optind != argc - 1)
        die_usage("%s", optind >= argc ? "missing URL" : "more than one URL");
    g.url = argv[optind];
    if (g.mode != MODE_HOLD && g.duration <= 0)
        die_usage("%s", "duration must be positive");
    if (g.messages && !warmup_given)
        g.warmup = 0;
    parse_url(g.url);
}
