/*
 * echo-bench - WebSocket echo load generator (libev, single thread).
 *
 * Three modes share one connection layer built on the eev driver in the
 * client role (handshake, framing and masking are the driver's):
 *
 *   echo          CONNS connections, each keeping INFLIGHT messages in
 *                 flight (closed loop), or sending at a fixed total --rate
 *                 (open loop; latency runs from the intended send time, so
 *                 a stalled server cannot hide its queueing: no coordinated
 *                 omission). Every echo is checked against the payload
 *                 regenerated from (connection id, seq) and against the
 *                 FIFO of outstanding sequence numbers.
 *   connect-rate  CONNS loops of connect, upgrade, Close, wait, repeat.
 *   hold          N idle upgraded connections, forked over workers when N
 *                 exceeds what one process may open.
 *
 * Latency is recorded for messages whose (intended) send time falls in
 * [t_measure, t_end); throughput counts echoes received in that window
 * (the timeline is drawn in run.c). Outstanding echoes at t_grace are lost.
 * bench.h lists the files and what each one does; this one only wires
 * them together.
 */
#include <signal.h>
#include <stdio.h>
#include <sys/resource.h>

#include "bench.h"

struct bench g;

int main(int argc, char **argv)
{
    options_parse(argc, argv);
    if (g.tls && tls_client_init() != 0) {
        fprintf(stderr, "echo-bench: cannot set up TLS\n");
        return 1;
    }

    signal(SIGPIPE, SIG_IGN);
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }

    if (g.mode == MODE_HOLD) {
        if (!g.duration_given)
            g.duration = 0;
        uint32_t n = g.hold;
        if (n > HOLD_PER_PROCESS)
            return hold_main(n);
        /* One process: the same loop with the hold tick. */
        g.conns = n;
        g.warmup = 0;
        g.json = g.json ? 1 : 0;
        if (run() < 0)
            return 1;
        return g.conn_errors ? 1 : 0;
    }

    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && g.conns + 16 > rl.rlim_cur) {
        fprintf(stderr, "echo-bench: -c %u exceeds the open-file limit (%llu); use --hold for more\n", g.conns,
                (unsigned long long)rl.rlim_cur);
        return 2;
    }
    if (run() < 0)
        return 1;
    if (g.phase != PH_DONE || g.t_start == 0)
        return 1; /* never got past connecting */
    count_backlog();
    if (g.messages && g.received < g.messages) {
        g.short_count = g.messages - g.received;
        fprintf(stderr, "echo-bench: %llu of %llu messages echoed within the time limit\n",
                (unsigned long long)g.received, (unsigned long long)g.messages);
    }
    if (g.json)
        report_json();
    else
        report_human();
    precomp_free();
    return has_errors() ? 1 : 0;
}
