/*
 * main.c - echo-ev: parse the command line, set up logging, run the server.
 */
#include <ev.h>
#include <malloc.h>
#include <stdio.h>

#include "config.h"
#include "log.h"
#include "server.h"

int main(int argc, char **argv)
{
    struct config cfg;
    struct server srv;
    int rv = config_parse(&cfg, argc, argv);

    if (rv)
        return rv == 1 ? 0 : rv;
    log_setup(cfg.log_level, cfg.log_format);
    /* Echo buffers come and go in bursts: keep freed memory in the heap
     * rather than returning it with brk/munmap and faulting it back in a
     * moment later (glibc's defaults trim at 128 KiB). Messages up to the
     * mmap threshold reuse heap memory. */
    mallopt(M_TRIM_THRESHOLD, 32 << 20);
    mallopt(M_MMAP_THRESHOLD, 4 << 20);
    struct ev_loop *loop = ev_default_loop(EVBACKEND_EPOLL);
    if (!loop)
        loop = ev_default_loop(0);
    if (!loop) {
        fprintf(stderr, "echo-ev: cannot create an event loop\n");
        return 1;
    }
    if ((rv = server_init(&srv, loop, &cfg)) == 0)
        rv = server_run(&srv);
    server_free(&srv);
    return rv;
}
