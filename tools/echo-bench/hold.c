/*
 * hold.c - hold mode: N idle upgraded connections kept open until a signal
 * (or -d). Up to HOLD_PER_PROCESS they are held by this process's own run();
 * above that the work is forked over worker processes, each reporting its
 * progress to the parent through a pipe, and the parent says "holding N"
 * once every worker is up.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"

/* Progress record a hold worker sends to its parent. */
typedef struct hold_msg {
    uint32_t up, failed, done;
} hold_msg;

void hold_report(int done)
{
    if (g.hold_report_fd < 0) {
        if (done) {
            if (g.conn_errors) {
                fprintf(stderr, "echo-bench: only %u of %u connections are up\n", g.up, g.conns);
                g.interrupted = 1;
                begin_close();
                return;
            }
            printf("holding %u\n", g.up);
            fflush(stdout);
        }
        return;
    }
    hold_msg m = {g.up, (uint32_t)g.conn_errors, (uint32_t)done};
    ssize_t rv = write(g.hold_report_fd, &m, sizeof(m));
    (void)rv;
}

static volatile sig_atomic_t parent_sig;

static void parent_sig_handler(int sig)
{
    parent_sig = sig;
}

int hold_main(uint32_t n)
{
    uint32_t workers = (n + HOLD_PER_PROCESS - 1) / HOLD_PER_PROCESS;
    pid_t *pids = calloc(workers, sizeof(*pids));
    int *fds = calloc(workers, sizeof(*fds));
    hold_msg *st = calloc(workers, sizeof(*st));
    if (!pids || !fds || !st)
        return 1;
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = parent_sig_handler;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    pid_t parent = getpid();
    fflush(stdout);
    fflush(stderr);
    for (uint32_t w = 0; w < workers; w++) {
        int p[2];
        if (pipe2(p, O_CLOEXEC) < 0) {
            perror("echo-bench: pipe");
            return 1;
        }
        uint32_t share = n / workers + (w < n % workers);
        pid_t pid = fork();
        if (pid < 0) {
            perror("echo-bench: fork");
            return 1;
        }
        if (pid == 0) {
            close(p[0]);
            prctl(PR_SET_PDEATHSIG, SIGTERM);
            if (getppid() != parent)
                _exit(1);
            signal(SIGINT, SIG_IGN); /* the parent forwards SIGTERM */
            signal(SIGTERM, SIG_DFL);
            g.hold_report_fd = p[1];
            g.hold_id_base = w * HOLD_PER_PROCESS;
            g.conns = share;
            g.warmup = 0;
            g.progress_tty = 0;
            g.json = 2; /* no progress lines from workers */
            if (run() < 0)
                _exit(1);
            _exit(g.conn_errors ? 1 : 0);
        }
        close(p[1]);
        fds[w] = p[0];
        pids[w] = pid;
    }
    /* Parent: aggregate progress until every worker is up, then wait. */
    struct pollfd *pfd = calloc(workers, sizeof(*pfd));
    int announced = 0, failed = 0, tty = isatty(2);
    uint64_t deadline = g.duration > 0 ? now_ns() + (uint64_t)(g.duration * 1e9) : 0;
    uint32_t open_pipes = workers;
    while (!parent_sig && open_pipes) {
        for (uint32_t w = 0; w < workers; w++) {
            pfd[w].fd = fds[w];
            pfd[w].events = POLLIN;
        }
        int rv = poll(pfd, workers, 200);
        if (rv < 0 && errno != EINTR)
            break;
        for (uint32_t w = 0; rv > 0 && w < workers; w++) {
            if (!pfd[w].revents)
                continue;
            hold_msg m;
            ssize_t r = read(fds[w], &m, sizeof(m));
            if (r == sizeof(m)) {
                st[w] = m;
            } else if (r <= 0) {
                close(fds[w]);
                fds[w] = -1;
                open_pipes--;
                if (!st[w].done || !announced)
                    failed = 1;
            }
        }
        uint32_t up = 0, done = 0, bad = 0;
        for (uint32_t w = 0; w < workers; w++) {
            up += st[w].up;
            done += st[w].done != 0;
            bad += st[w].failed;
        }
        if (!announced && !g.quiet && tty)
            fprintf(stderr, "\rconnecting %u/%u", up, n);
        if (!announced && done == workers) {
            if (!g.quiet && tty)
                fprintf(stderr, "\n");
            if (bad) {
                fprintf(stderr, "echo-bench: only %u of %u connections are up\n", up, n);
                failed = 1;
                break;
            }
            printf("holding %u\n", up);
            fflush(stdout);
            announced = 1;
        }
        if (failed)
            break;
        if (deadline && now_ns() >= deadline)
            break;
    }
    for (uint32_t w = 0; w < workers; w++)
        kill(pids[w], SIGTERM);
    int rc = failed ? 1 : 0;
    for (uint32_t w = 0; w < workers; w++) {
        int status;
        while (waitpid(pids[w], &status, 0) < 0 && errno == EINTR)
            ;
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            /* Workers killed by our own SIGTERM are fine once announced. */
            if (!(announced && WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM))
                rc = 1;
        }
    }
    return rc;
}
