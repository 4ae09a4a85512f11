/*
 * server.c - listeners, accept, connection lists and their timers,
 * signals, systemd notifications and graceful shutdown. With conn.c it is
 * one unit (see server.h): conn.c does each connection's I/O in the context
 * kept here.
 */
#include "server.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "addr.h"
#include "budget.h"
#include "conn.h"
#include "log.h"
#include "ready.h"
#include "sd.h"
#include "tls.h"

#define ACCEPTS_PER_EVENT 64
#define CLOSE_WAIT 5.0 /* seconds to wait for a peer's Close or EOF */
#define LISTEN_BACKLOG 4096
#define SPARE_SLOTS 8 /* connections beyond --max-connections for health checks */

static const char busy_response[] = "HTTP/1.1 503 Service Unavailable\r\n"
                                    "Content-Type: text/plain\r\nContent-Length: 18\r\n"
                                    "Connection: close\r\n\r\ntoo many clients\r\n";

/* ---- connection lists ---- */

static void list_arm(struct server *srv, int id)
{
    struct conn_list *l = &srv->lists[id];

    if (l->timeout <= 0)
        return;
    if (!l->head) {
        ev_timer_stop(srv->loop, &l->timer);
        return;
    }
    if (ev_is_active(&l->timer))
        return; /* armed for an older head, which is no later than this one */
    /* placed is rounded down to a tick: aim one tick late, so the head is
     * surely due when the timer fires and the loop never spins on it. */
    double due = srv->t0 + (l->head->placed + 1) / 64.0 + l->timeout - ev_now(srv->loop);
    ev_timer_set(&l->timer, due > 0 ? due : 0, 0);
    ev_timer_start(srv->loop, &l->timer);
}

void conn_list_remove(struct server *srv, struct conn *c)
{
    struct conn_list *l = &srv->lists[c->list];

    if (c->list == L_NONE)
        return;
    if (c->prev)
        c->prev->next = c->next;
    else
        l->head = c->next;
    if (c->next)
        c->next->prev = c->prev;
    else
        l->tail = c->prev;
    c->prev = c->next = NULL;
    c->list = L_NONE;
}

void conn_list_add(struct server *srv, struct conn *c, int id)
{
    struct conn_list *l = &srv->lists[id];

    conn_list_remove(srv, c);
    c->list = (uint8_t)id;
    c->placed = server_ticks(srv);
    c->prev = l->tail;
    c->next = NULL;
    if (l->tail)
        l->tail->next = c;
    else
        l->head = c;
    l->tail = c;
    list_arm(srv, id);
}

static void on_list_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct server *srv = w->data;
    uint32_t now = server_ticks(srv);
    int id;

    (void)loop;
    (void)revents;
    for (id = 0; id < L_COUNT; id++)
        if (&srv->lists[id].timer == w)
            break;
    struct conn_list *l = &srv->lists[id];
    uint32_t span = (uint32_t)(l->timeout * 64.0);
    /* Expire every head that is due; each is destroyed or re-placed at
     * the tail, so the loop visits a connection at most once. */
    for (struct conn *c = l->head, *last = l->tail; c && (int32_t)(now - c->placed) >= (int32_t)span;
         c = l->head) {
        int was_last = c == last;
        conn_expire(srv, c, id);
        if (was_last)
            break;
    }
    list_arm(srv, id);
}

void server_conn_gone(struct server *srv)
{
    srv->nconn--;
    if (srv->draining && srv->nconn == 0)
        ev_break(srv->loop, EVBREAK_ALL);
}

/* Descriptors are counted once at start; afterwards the server knows what
 * it opens (connections, listeners, the spare), so a scrape lists nothing. */
static long fds_at_start(const struct server *srv)
{
    DIR *dir = opendir("/proc/self/fd");
    long n = 0;

    if (!dir)
        return 0;
    while (readdir(dir))
        n++;
    closedir(dir);
    return n - 3 - srv->nlst - (srv->reserve_fd >= 0); /* ".", ".." and dir's own fd */
}

void server_gauges(const struct server *srv, struct metrics_gauges *g)
{
    g->ws_open = srv->ws_open;
    g->http_open = srv->nconn - srv->ws_open;
    g->queued = srv->queued;
    g->mem = srv->mem;
    g->mem_limit = srv->cfg->max_memory;
    g->open_fds = srv->base_fds + srv->nlst + (srv->reserve_fd >= 0) + (long)srv->nconn;
    g->log_dropped = log_dropped();
}

/* ---- accept ---- */

static void on_accept_retry(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct server *srv = w->data;

    (void)revents;
    if (srv->reserve_fd < 0)
        srv->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    for (int i = 0; i < srv->nlst; i++)
        if (!ev_is_active(&srv->lst[i].rest))
            ev_io_start(loop, &srv->lst[i].io);
}

/* Out of descriptors: accept with the spare one and close at once, so the
 * client is told instead of left waiting, and the loop does not spin on a
 * listener that stays readable (libev manual, "The special problem of
 * accept()ing when you can't"). */
static void shed(struct server *srv, int lfd)
{
    double now = ev_now(srv->loop);

    if (now - srv->last_emfile_log >= 1.0) {
        log_warn("accept: %s: shedding connections (%lu open)", strerror(errno), srv->nconn);
        srv->last_emfile_log = now;
    }
    srv->m.hs_failures[HSF_CAPACITY]++;
    if (srv->reserve_fd >= 0) {
        close(srv->reserve_fd);
        int fd = accept(lfd, NULL, NULL);
        if (fd >= 0)
            close(fd);
        srv->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    }
    if (srv->reserve_fd < 0) {
        /* No spare either: stop accepting for a moment instead of spinning. */
        for (int i = 0; i < srv->nlst; i++)
            ev_io_stop(srv->loop, &srv->lst[i].io);
        ev_timer_set(&srv->accept_retry, 0.5, 0);
        ev_timer_start(srv->loop, &srv->accept_retry);
    }
}

/* accept(2) passes on these network errors of a pending connection: that
 * client is lost, the listener is fine. */
static int accept_error_is_the_peers(int e)
{
    return e == EPROTO || e == ENETDOWN || e == ENOPROTOOPT || e == EHOSTDOWN || e == ENONET ||
           e == EHOSTUNREACH || e == EOPNOTSUPP || e == ENETUNREACH || e == ETIMEDOUT;
}

static void on_rest_over(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct listener *lst = w->data;

    (void)revents;
    ev_io_start(loop, &lst->io);
}

/* Any other error would come back at once (the listener stays readable):
 * stop accepting on this listener for a while, doubling the pause up to
 * 10 s while the error persists, and say so at most every 10 s. */
static void rest(struct server *srv, struct listener *lst)
{
    double now = ev_now(srv->loop);

    lst->errors++;
    lst->backoff = lst->backoff > 0 ? (lst->backoff * 2 < 10 ? lst->backoff * 2 : 10) : 0.1;
    if (now - lst->last_log >= 10.0) {
        log_warn("accept on fd %d: %s (%lu times): pausing it %gs", lst->io.fd, strerror(errno),
                 lst->errors, lst->backoff);
        lst->last_log = now;
        lst->errors = 0;
    }
    ev_io_stop(srv->loop, &lst->io);
    ev_timer_set(&lst->rest, lst->backoff, 0);
    ev_timer_start(srv->loop, &lst->rest);
}

static void on_accept(struct ev_loop *loop, ev_io *w, int revents)
{
    struct server *srv = w->data;
    struct listener *lst = (struct listener *)w;
    static const int one = 1;

    (void)loop;
    (void)revents;
    for (int i = 0; i < ACCEPTS_PER_EVENT; i++) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);
        int fd = accept4(w->fd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED || accept_error_is_the_peers(errno))
                continue;
            if (errno == EMFILE || errno == ENFILE)
                shed(srv, w->fd);
            else if (errno != EAGAIN && errno != EWOULDBLOCK)
                rest(srv, lst);
            return;
        }
        lst->backoff = 0;
        srv->m.accepted++;
        /* When full, a few spare slots still answer health checks (the
         * metrics listener is never full), so a load balancer can tell
         * "full" from "down"; beyond them, 503 at once. */
        int flags = lst->metrics_only ? C_METRICS : 0;
        if (!lst->metrics_only && server_full(srv) && srv->spare_open < SPARE_SLOTS) {
            flags |= C_SPARE;
        } else if (!lst->metrics_only && server_full(srv)) {
            srv->m.hs_failures[HSF_CAPACITY]++;
            if (write(fd, busy_response, sizeof(busy_response) - 1) < 0) {
                /* the client is gone already */
            }
            close(fd);
            double now = ev_now(srv->loop);
            if (now - srv->last_emfile_log >= 1.0) {
                log_warn("refusing connections: --max-connections %lu reached", srv->cfg->max_connections);
                srv->last_emfile_log = now;
            }
            continue;
        }
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        if (conn_accept(srv, fd, (struct sockaddr *)&ss, flags, lst->tls) == 0) {
            srv->nconn++;
            srv->spare_open += (flags & C_SPARE) != 0;
        } else
            log_error("out of memory accepting a connection");
    }
}

/* ---- listening sockets ---- */

static void add_listener(struct server *srv, int fd, int metrics_only, int tls)
{
    struct listener *l = &srv->lst[srv->nlst++];
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    char name[140] = "?";

    if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0)
        addr_format((struct sockaddr *)&ss, name, sizeof(name));
    memset(l, 0, sizeof(*l));
    ev_io_init(&l->io, on_accept, fd, EV_READ);
    l->io.data = srv;
    ev_init(&l->rest, on_rest_over);
    l->rest.data = l;
    l->metrics_only = metrics_only;
    l->tls = tls;
    ev_io_start(srv->loop, &l->io);
    log_info("listening on %s%s", name, metrics_only ? " (metrics)" : tls ? " (tls)" : "");
}

/* A unix socket file left behind by a process that is gone: nothing
 * accepts on it. One that accepts, or any other file, is not ours to remove. */
static int stale_unix_socket(const struct sockaddr_un *su, socklen_t sl)
{
    struct stat st;
    int fd, stale;

    if (lstat(su->sun_path, &st) < 0 || !S_ISSOCK(st.st_mode))
        return 0;
    if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
        return 0;
    stale = connect(fd, (const struct sockaddr *)su, sl) < 0 && errno == ECONNREFUSED;
    close(fd);
    return stale;
}

/* Binds a unix socket, replacing a stale one, with --unix-mode permissions
 * set before it listens. Returns 0, or -1 with errno set. */
static int bind_unix(const struct server *srv, int fd, const struct sockaddr_storage *ss, socklen_t sl)
{
    const struct sockaddr_un *su = (const struct sockaddr_un *)ss;

    if (bind(fd, (const struct sockaddr *)ss, sl) < 0) {
        if (errno != EADDRINUSE || !stale_unix_socket(su, sl) || unlink(su->sun_path) < 0 ||
            bind(fd, (const struct sockaddr *)ss, sl) < 0)
            return -1;
        log_info("removed the stale socket %s", su->sun_path);
    }
    return chmod(su->sun_path, srv->cfg->unix_mode);
}

/* Binds and listens. Returns the fd, or -1 with errno set. */
static int open_listener(const struct server *srv, const struct sockaddr_storage *ss, socklen_t sl)
{
    static const int one = 1;
    int v6only = srv->cfg->bind_cnt > 1; /* :: and 0.0.0.0 may both be asked for */
    int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

    if (fd < 0)
        return -1;
    if (ss->ss_family == AF_UNIX) {
        if (bind_unix(srv, fd, ss, sl) < 0 || listen(fd, LISTEN_BACKLOG) < 0)
            goto Fail;
        return fd;
    }
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (srv->cfg->reuse_port && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0)
        goto Fail;
    if (ss->ss_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof(v6only)); /* dual-stack unless several */
    if (bind(fd, (const struct sockaddr *)ss, sl) < 0 || listen(fd, LISTEN_BACKLOG) < 0)
        goto Fail;
    return fd;
Fail:;
    int e = errno;
    close(fd);
    errno = e;
    return -1;
}

/* Listens on ss (from the CLI); NULL means the default: dual-stack "::",
 * or 0.0.0.0 where IPv6 is absent. Returns 0, or 1 after saying why not. */
static int listen_on(struct server *srv, const struct sockaddr_storage *addr, socklen_t len,
                     unsigned port, int metrics_only, int tls)
{
    struct sockaddr_storage ss;
    socklen_t sl = len;
    char name[140];

    if (addr) {
        ss = *addr;
        if (tls)
            addr_set_port(&ss, port); /* --bind serves both ports */
    } else
        addr_parse("::", 2, port, &ss, &sl);
    int fd = open_listener(srv, &ss, sl);
    if (fd < 0 && !addr && (errno == EAFNOSUPPORT || errno == EADDRNOTAVAIL)) {
        addr_parse("0.0.0.0", 7, port, &ss, &sl); /* no IPv6 here */
        fd = open_listener(srv, &ss, sl);
    }
    if (fd < 0) {
        addr_format((struct sockaddr *)&ss, name, sizeof(name));
        fprintf(stderr, "echo-ev: cannot listen on %s%s: %s\n", name,
                metrics_only ? " (the metrics listener, --metrics-bind)" : "", strerror(errno));
        return 1;
    }
    add_listener(srv, fd, metrics_only, tls);
    return 0;
}

static unsigned listener_port(const struct listener *l)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);

    if (getsockname(l->io.fd, (struct sockaddr *)&ss, &sl) < 0)
        return 0;
    if (ss.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    if (ss.ss_family == AF_INET)
        return ntohs(((struct sockaddr_in *)&ss)->sin_port);
    return 0;
}

/* Listens at port on every --bind address, or the default one. unix:
 * addresses serve plain ws:// only. With port 0, the first address picks
 * the port and the others share it. Returns 0, or 1 after saying why not. */
static int listen_all(struct server *srv, unsigned port, int tls)
{
    const struct config *cfg = srv->cfg;
    int rv;

    if (cfg->bind_cnt == 0)
        return listen_on(srv, NULL, 0, port, 0, tls);
    for (int i = 0; i < cfg->bind_cnt; i++) {
        struct sockaddr_storage ss = cfg->bind_addr[i];
        if (ss.ss_family == AF_UNIX && tls)
            continue;
        srv->own_unix |= ss.ss_family == AF_UNIX;
        addr_set_port(&ss, port);
        if ((rv = listen_on(srv, &ss, cfg->bind_len[i], port, 0, tls)) != 0)
            return rv;
        if (port == 0 && ss.ss_family != AF_UNIX)
            port = listener_port(&srv->lst[srv->nlst - 1]);
    }
    return 0;
}

/* An inherited socket must be a listening stream socket: accept() on
 * anything else fails at once, for ever. */
static int is_listening(int fd)
{
    int on = 0, type = 0;
    socklen_t l1 = sizeof(on), l2 = sizeof(type);

    return getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &on, &l1) == 0 && on &&
           getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &l2) == 0 && type == SOCK_STREAM;
}

/* ---- signals, status, shutdown ---- */

static void tell_status(struct server *srv)
{
    char s[96];
    snprintf(s, sizeof(s), "STATUS=%lu connections%s", srv->nconn, srv->draining ? ", draining" : "");
    sd_tell(s);
}

static void on_status_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    tell_status(w->data);
}

static void on_watchdog(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)w;
    (void)revents;
    sd_tell("WATCHDOG=1");
}

static void on_shutdown_timeout(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct server *srv = w->data;

    (void)revents;
    log_info("shutdown timeout: dropping %lu connections", srv->nconn);
    for (int l = L_HANDSHAKE; l < L_COUNT; l++)
        while (srv->lists[l].head) {
            conn_destroy(srv, srv->lists[l].head);
        }
    ev_break(loop, EVBREAK_ALL);
}

static void drain(struct server *srv)
{
    if (srv->draining)
        return;
    srv->draining = 1;
    sd_tell("STOPPING=1");
    log_info("shutting down: closing %lu WebSocket and %lu HTTP connections", srv->ws_open,
             srv->nconn - srv->ws_open);
    for (int i = 0; i < srv->nlst; i++) {
        ev_io_stop(srv->loop, &srv->lst[i].io);
        ev_timer_stop(srv->loop, &srv->lst[i].rest);
        close(srv->lst[i].io.fd);
    }
    srv->nlst = 0;
    ev_timer_stop(srv->loop, &srv->accept_retry);
    /* Connections not yet upgraded just go; open ones get 1001. Each
     * moves to L_CLOSING or is destroyed, so the lists shrink. */
    while (srv->lists[L_HANDSHAKE].head)
        conn_destroy(srv, srv->lists[L_HANDSHAKE].head);
    for (int l = L_OPEN; l <= L_PAUSED; l++)
        while (srv->lists[l].head)
            conn_close(srv, srv->lists[l].head, EEV_CLOSE_GOING_AWAY, "going away");
    if (srv->nconn == 0) {
        ev_break(srv->loop, EVBREAK_ALL);
        return;
    }
    ev_timer_set(&srv->shutdown_timer, srv->cfg->shutdown_timeout, 0);
    ev_timer_start(srv->loop, &srv->shutdown_timer);
}

static void on_signal(struct ev_loop *loop, ev_signal *w, int revents)
{
    struct server *srv = w->data;

    (void)loop;
    (void)revents;
    if (w->signum == SIGHUP) {
        if (srv->tls)
            tls_server_reload(srv->tls);
        else
            log_info("SIGHUP: nothing to reload");
        return;
    }
    log_info("%s received", w->signum == SIGINT ? "SIGINT" : "SIGTERM");
    drain(srv);
}

/* ---- setup ---- */

int server_init(struct server *srv, struct ev_loop *loop, const struct config *cfg)
{
    int rv;

    memset(srv, 0, sizeof(*srv));
    srv->reserve_fd = -1;
    srv->loop = loop;
    srv->cfg = cfg;
    srv->t0 = ev_now(loop);
    log_attach(loop);
    srv->m.start_time = ev_time();
    srv->cb = conn_callbacks;
    srv->opt.role = EEV_ROLE_SERVER;
    srv->opt.max_message_size = cfg->max_message_size;
    srv->opt.protocols = cfg->protocol_cnt ? cfg->protocols : NULL;
    srv->opt.borrow_input = 1; /* conn.c settles before the next read */
    /* permessage-deflate: the echo passes compressed bytes through where
     * the parameters allow (echo_only), and shares one compressor among
     * the connections that reset context when it must compress. */
    srv->opt.deflate.enable = cfg->deflate;
    srv->opt.deflate.echo_only = 1;
    srv->opt.deflate.server_max_window_bits = cfg->deflate_window_bits;
    srv->opt.deflate.client_max_window_bits = cfg->deflate_window_bits;
    srv->opt.deflate.server_no_context_takeover = !cfg->deflate_takeover;
    srv->opt.deflate.client_no_context_takeover = !cfg->deflate_takeover;
    srv->opt.deflate.level = cfg->deflate_level;
    pool_init(&srv->conn_pool, sizeof(struct conn) + eev_driver_size());
    srv->lists[L_HANDSHAKE].timeout = cfg->handshake_timeout;
    /* Open connections are checked at the shorter of the two periods, so
     * each deadline fires within its own period. An idle timeout no longer
     * than the ping interval closes a quiet peer before a ping is due. */
    double ping = cfg->ping_interval, idle = cfg->idle_timeout;
    srv->lists[L_OPEN].timeout = ping > 0 && (idle <= 0 || ping < idle) ? ping : idle;
    srv->lists[L_PAUSED].timeout = cfg->backpressure_timeout;
    srv->lists[L_CLOSING].timeout = CLOSE_WAIT;
    for (int l = 0; l < L_COUNT; l++) {
        ev_init(&srv->lists[l].timer, on_list_timer);
        srv->lists[l].timer.data = srv;
    }

    /* Signals first: one that arrives as soon as we listen must find its
     * handler (libev records it until the loop runs). */
    signal(SIGPIPE, SIG_IGN);
    ev_signal_init(&srv->sig_int, on_signal, SIGINT);
    ev_signal_init(&srv->sig_term, on_signal, SIGTERM);
    ev_signal_init(&srv->sig_hup, on_signal, SIGHUP);
    srv->sig_int.data = srv->sig_term.data = srv->sig_hup.data = srv;
    ev_signal_start(loop, &srv->sig_int);
    ev_signal_start(loop, &srv->sig_term);
    ev_signal_start(loop, &srv->sig_hup);

    /* Raise the soft descriptor limit to the hard one: each client is a
     * descriptor. */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }

    if (cfg->tls_pair_cnt && !(srv->tls = tls_server_new(cfg, &srv->m)))
        return 1;
    int ntls = 0;
    int inherited = sd_inherited_fds();
    if (inherited > 0) {
        for (int i = 0; i < inherited && srv->nlst < MAX_LISTENERS; i++) {
            int fd = 3 + i;
            if (!is_listening(fd)) {
                fprintf(stderr, "echo-ev: socket-activation fd %d is not a listening stream socket "
                                "(Accept=yes is not supported: use a .socket unit with "
                                "ListenStream= and Accept=no)\n", fd);
                return 1;
            }
            /* FileDescriptorName=tls in the .socket unit marks wss:// ones. */
            int tls = sd_fd_is_named(i, "tls");
            fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
            fcntl(fd, F_SETFD, FD_CLOEXEC);
            if (tls && !srv->tls) {
                fprintf(stderr, "echo-ev: inherited socket %d is named 'tls': needs --tls-cert and --tls-key\n", fd);
                return 1;
            }
            add_listener(srv, fd, 0, tls);
            ntls += tls;
        }
        log_info("using %d socket(s) from socket activation", inherited);
    } else {
        if (!cfg->port_off && (rv = listen_all(srv, cfg->port, 0)) != 0)
            return rv;
        if (cfg->tls_port >= 0 && (rv = listen_all(srv, (unsigned)cfg->tls_port, 1)) != 0)
            return rv;
        ntls = cfg->tls_port >= 0;
    }
    if (srv->tls && !ntls) {
        fprintf(stderr, "echo-ev: --tls-cert given but no TLS listener (--tls-port N, or a socket named 'tls')\n");
        return 2;
    }
    if (cfg->metrics_len &&
        (rv = listen_on(srv, &cfg->metrics_addr, cfg->metrics_len, 0, 1, 0)) != 0)
        return rv;

    srv->rbuf = malloc(SERVER_RBUF_SIZE);
    srv->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (!srv->rbuf) {
        fprintf(stderr, "echo-ev: out of memory\n");
        return 1;
    }
    /* One compressor shared by the connections that must compress with
     * no context takeover (server_free() releases it on every path). */
    if (cfg->deflate && !(srv->opt.deflate.shared = eev_deflate_shared_new())) {
        fprintf(stderr, "echo-ev: out of memory\n");
        return 1;
    }
    memset(srv->rbuf, 0, SERVER_RBUF_SIZE); /* fault it in now: it is in use from the first read */
    srv->base_fds = fds_at_start(srv);
    /* libcrypto loads its providers on first use: do it now, not during
     * the first client's handshake. */
    char warm[29];
    eev_accept_key("dGhlIHNhbXBsZSBub25jZQ==", 24, warm);
    ev_init(&srv->shutdown_timer, on_shutdown_timeout);
    srv->shutdown_timer.data = srv;
    ev_init(&srv->accept_retry, on_accept_retry);
    srv->accept_retry.data = srv;
    ev_timer_init(&srv->status_timer, on_status_timer, 5.0, 5.0);
    srv->status_timer.data = srv;
    ev_timer_start(loop, &srv->status_timer);
    ev_unref(loop); /* status updates alone don't keep the loop alive */
    uint64_t wd = sd_watchdog_interval();
    if (wd) {
        ev_timer_init(&srv->watchdog_timer, on_watchdog, 0, wd / 2e6);
        ev_timer_again(loop, &srv->watchdog_timer);
        ev_unref(loop);
    }
    return 0;
}

/* libev's invoke_pending: the watchers of the round (connections only note
 * themselves), then the noted connections in epoll's order (ready.h); again
 * if serving them fed events (TLS records OpenSSL already holds). */
static void invoke_in_order(struct ev_loop *loop)
{
    struct server *srv = ev_userdata(loop);

    do {
        ev_invoke_pending(loop);
        conn_serve_ready(srv);
    } while (ev_pending_count(loop));
}

int server_run(struct server *srv)
{
    sd_tell("READY=1");
    tell_status(srv);
    ev_set_userdata(srv->loop, srv);
    ev_set_invoke_pending_cb(srv->loop, invoke_in_order);
    ev_run(srv->loop, 0);
    log_info("exiting");
    for (int i = 0; srv->own_unix && i < srv->cfg->bind_cnt; i++) /* our unix sockets' files */
        if (srv->cfg->bind_addr[i].ss_family == AF_UNIX)
            unlink(((const struct sockaddr_un *)&srv->cfg->bind_addr[i])->sun_path);
    return 0;
}

void server_free(struct server *srv)
{
    free(srv->rbuf);
    srv->rbuf = NULL;
    pool_destroy(&srv->conn_pool);
    budget_free(srv);
    ready_free(srv);
    tls_server_del(srv->tls);
    srv->tls = NULL;
    eev_deflate_shared_free(srv->opt.deflate.shared);
    srv->opt.deflate.shared = NULL;
    if (srv->reserve_fd >= 0)
        close(srv->reserve_fd);
    srv->reserve_fd = -1;
}
