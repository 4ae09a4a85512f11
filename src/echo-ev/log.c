/*
 * log.c - see log.h. Under systemd (JOURNAL_STREAM names our stderr) the
 * journal adds timestamps itself and reads the "<N>" prefix as the
 * priority (sd-daemon(3)).
 *
 * Logging never blocks the event loop: a line goes out at once when stderr
 * takes it, else into a bounded buffer that a libev watcher flushes when
 * stderr is writable; when the buffer is full the line is dropped and
 * counted, and a later line says how many were lost.
 */
#include "log.h"

#include <errno.h>
#include <ev.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define LOG_BUF_SIZE (256 * 1024)
#define EXIT_FLUSH_MS 2000 /* at exit, how long to wait for a stalled reader */

static int max_level = LOG_INFO;
static int style; /* 0 text, 1 journal, 2 json */

/* Where lines go: a non-blocking descriptor for stderr's pipe or terminal,
 * send(MSG_DONTWAIT) for a socket (the journal), plain write() for a file. */
static int out_fd = STDERR_FILENO;
static int out_is_socket;
static char out_buf[LOG_BUF_SIZE];
static size_t out_off, out_len; /* pending bytes: out_buf[out_off, out_off + out_len) */
static uint64_t dropped, dropped_told;
static struct ev_loop *out_loop;
static ev_io out_io;

static const char *level_name(int level)
{
    switch (level) {
    case LOG_ERR: return "error";
    case LOG_WARN: return "warn";
    case LOG_INFO: return "info";
    default: return "debug";
    }
}

/* True when stderr is the journal stream systemd gave us. */
static int stderr_is_journal(void)
{
    const char *js = getenv("JOURNAL_STREAM");
    unsigned long long dev, ino;
    struct stat st;

    return js && sscanf(js, "%llu:%llu", &dev, &ino) == 2 && fstat(STDERR_FILENO, &st) == 0 &&
           (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

/* A pipe or terminal gets a descriptor of its own opened non-blocking, so
 * the O_NONBLOCK flag does not leak to the shell or parent that shares our
 * stderr. A regular file never makes write() wait for a reader. */
static void open_output(void)
{
    struct stat st;

    if (fstat(STDERR_FILENO, &st) < 0)
        return;
    if (S_ISSOCK(st.st_mode)) {
        out_is_socket = 1;
    } else if (S_ISFIFO(st.st_mode) || S_ISCHR(st.st_mode)) {
        int fd = open("/proc/self/fd/2", O_WRONLY | O_NONBLOCK | O_CLOEXEC);
        if (fd >= 0)
            out_fd = fd;
    }
}

static ssize_t out_write(const char *p, size_t n)
{
    ssize_t w;
    do
        w = out_is_socket ? send(out_fd, p, n, MSG_DONTWAIT | MSG_NOSIGNAL) : write(out_fd, p, n);
    while (w < 0 && errno == EINTR);
    return w;
}

/* Writes what is pending. Returns 0 when all went, 1 when stderr is full,
 * -1 when it is gone (the pending bytes are then discarded). */
static int out_flush(void)
{
    while (out_len) {
        ssize_t w = out_write(out_buf + out_off, out_len);
        if (w < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return 1;
            out_off = out_len = 0;
            return -1;
        }
        out_off += (size_t)w;
        out_len -= (size_t)w;
    }
    out_off = 0;
    return 0;
}

static void arm(void)
{
    if (!out_loop || ev_is_active(&out_io))
        return;
    ev_io_start(out_loop, &out_io);
    ev_unref(out_loop); /* pending log lines alone don't keep the server running */
}

static void disarm(void)
{
    if (!out_loop || !ev_is_active(&out_io))
        return;
    ev_ref(out_loop);
    ev_io_stop(out_loop, &out_io);
}

/* Queues one whole line, or drops and counts it. */
static void emit(const char *line, size_t n)
{
    if (out_len == 0) {
        ssize_t w = out_write(line, n);
        if (w == (ssize_t)n)
            return;
        if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
            return; /* stderr is gone: nowhere to report it */
        if (w > 0) { /* the rest of a line that began going out */
            line += w;
            n -= (size_t)w;
        }
    } else if (n > sizeof(out_buf) - out_off - out_len) {
        if (n > sizeof(out_buf) - out_len) {
            dropped++;
            return;
        }
        memmove(out_buf, out_buf + out_off, out_len);
        out_off = 0;
    }
    memcpy(out_buf + out_off + out_len, line, n);
    out_len += n;
    arm();
}

static void tell_dropped(void)
{
    if (dropped == dropped_told)
        return;
    uint64_t n = dropped - dropped_told;
    dropped_told = dropped;
    log_msg(LOG_WARN, "%llu log lines dropped: stderr was not keeping up", (unsigned long long)n);
}

static void on_writable(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop;
    (void)w;
    (void)revents;
    if (out_flush() == 1)
        return;
    disarm();
    tell_dropped();
}

/* At exit: what is pending goes out if stderr takes it within a bound. */
static void flush_at_exit(void)
{
    struct pollfd p = {.fd = out_fd, .events = POLLOUT};
    struct timespec t0, now;

    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        if (out_flush() != 1) {
            if (dropped == dropped_told)
                return;
            tell_dropped(); /* queues the count, unless stderr is gone */
            if (out_len == 0)
                return;
            continue;
        }
        clock_gettime(CLOCK_MONOTONIC, &now);
        long left = EXIT_FLUSH_MS - ((now.tv_sec - t0.tv_sec) * 1000 + (now.tv_nsec - t0.tv_nsec) / 1000000);
        if (left <= 0 || poll(&p, 1, (int)left) <= 0)
            return;
    }
}

void log_setup(int level, int format)
{
    max_level = level;
    style = format == LOGF_JSON ? 2 : stderr_is_journal() ? 1 : 0;
    open_output();
    atexit(flush_at_exit);
}

void log_attach(struct ev_loop *loop)
{
    out_loop = loop;
    ev_io_init(&out_io, on_writable, out_fd, EV_WRITE);
    if (out_len)
        arm();
}

uint64_t log_dropped(void)
{
    return dropped;
}

int log_enabled(int level)
{
    return level <= max_level;
}

/* Length of the valid UTF-8 sequence at s (n bytes left), or 0. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    size_t len = s[0] < 0x80 ? 1 : s[0] >= 0xc2 && s[0] <= 0xdf ? 2 : s[0] >= 0xe0 && s[0] <= 0xef ? 3
               : s[0] >= 0xf0 && s[0] <= 0xf4 ? 4 : 0;
    if (len == 0 || len > n)
        return 0;
    for (size_t i = 1; i < len; i++)
        if ((s[i] & 0xc0) != 0x80)
            return 0;
    /* overlong, surrogates, beyond U+10FFFF */
    if ((s[0] == 0xe0 && s[1] < 0xa0) || (s[0] == 0xed && s[1] >= 0xa0) ||
        (s[0] == 0xf0 && s[1] < 0x90) || (s[0] == 0xf4 && s[1] >= 0x90))
        return 0;
    return len;
}

/* Appends s[0, n) to out as the inside of a quoted string: '"' and '\\'
 * escaped, control characters as \u00NN (JSON) or \xNN (text), bytes
 * that are not UTF-8 as \xNN (in JSON, as the text "\\xNN"). Cut short,
 * never mid-escape, when out fills. Returns the new length of out. */
static size_t put_escaped(char *out, size_t o, size_t cap, const char *str, size_t n, int json)
{
    const unsigned char *s = (const unsigned char *)str;

    for (size_t i = 0; i < n && o + 8 < cap;) {
        size_t len = utf8_seq(s + i, n - i);
        if (len == 1 && (s[i] == '"' || s[i] == '\\')) {
            out[o++] = '\\';
            out[o++] = (char)s[i];
        } else if (len == 1 && (s[i] < 0x20 || s[i] == 0x7f)) {
            o += (size_t)snprintf(out + o, cap - o, json ? "\\u%04x" : "\\x%02x", s[i]);
        } else if (len == 0) {
            o += (size_t)snprintf(out + o, cap - o, json ? "\\\\x%02x" : "\\x%02x", s[i]);
            len = 1;
        } else {
            memcpy(out + o, s + i, len);
            o += len;
        }
        i += len;
    }
    out[o] = 0;
    return o;
}

__attribute__((format(printf, 4, 5))) static size_t put(char *out, size_t o, size_t cap, const char *fmt, ...)
{
    va_list ap;

    if (o >= cap)
        return o;
    va_start(ap, fmt);
    int n = vsnprintf(out + o, cap - o, fmt, ap);
    va_end(ap);
    return n < 0 ? o : o + (size_t)n < cap ? o + (size_t)n : cap - 1;
}

/* Appends one field holding a peer's or message string: pre, then
 * str[0, n) escaped (put_escaped), then post. The escaped part stops
 * `keep` bytes short of cap, leaving room for the fields after it. */
static size_t put_field(char *out, size_t o, size_t cap, size_t keep, const char *pre, const char *str, size_t n,
                        const char *post, int json)
{
    o = put(out, o, cap, "%s", pre);
    o = put_escaped(out, o, cap - keep, str, n, json);
    return put(out, o, cap, "%s", post);
}

/* The start of a line: journal priority, or timestamp and pid, or the
 * JSON object's time and level. */
static size_t line_start(char *line, size_t cap, int level)
{
    char ts[40];
    struct timespec now;
    struct tm tm;

    if (style == 1)
        return put(line, 0, cap, "<%d>%s: ", level, level_name(level));
    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    size_t tl = strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(ts + tl, sizeof(ts) - tl, ".%03ldZ", now.tv_nsec / 1000000);
    if (style == 2)
        return put(line, 0, cap, "{\"time\":\"%s\",\"level\":\"%s\",", ts, level_name(level));
    return put(line, 0, cap, "%s echo-ev[%d]: %s: ", ts, (int)getpid(), level_name(level));
}

static void line_end(char *line, size_t n, size_t cap)
{
    if (n > cap - 3)
        n = cap - 3;
    if (style == 2)
        line[n++] = '}';
    line[n++] = '\n';
    emit(line, n);
}

void log_msg(int level, const char *fmt, ...)
{
    char msg[1024], line[2400];
    va_list ap;

    if (!log_enabled(level))
        return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    size_t n = line_start(line, sizeof(line), level);
    if (style == 2) {
        n = put_field(line, n, sizeof(line), 4, "\"msg\":\"", msg, strlen(msg), "\"", 1);
    } else {
        n = put(line, n, sizeof(line), "%s", msg);
    }
    line_end(line, n, sizeof(line));
}

static void event_json(char *line, size_t *pn, size_t cap, const struct log_event *e)
{
    size_t n = *pn;

    n = put(line, n, cap, "\"conn\":%u,\"peer\":\"%s\",\"event\":\"%s\"", e->conn, e->peer, e->event);
    if (e->code)
        n = put(line, n, cap, ",\"code\":%d", e->code);
    if (e->reason)
        n = put_field(line, n, cap, 300, ",\"reason\":\"", e->reason, e->reason_len, "\"", 1);
    if (e->path)
        n = put_field(line, n, cap, 250, ",\"path\":\"", e->path, e->path_len, "\"", 1);
    if (e->protocol)
        n = put_field(line, n, cap, 200, ",\"protocol\":\"", e->protocol, strlen(e->protocol), "\"", 1);
    if (e->deflate)
        n = put(line, n, cap, ",\"permessage_deflate\":\"%s\"", e->deflate);
    if (e->counted)
        n = put(line, n, cap, ",\"bytes_in\":%llu,\"bytes_out\":%llu,\"messages\":%llu,\"duration_ms\":%.0f",
                (unsigned long long)e->bytes_in, (unsigned long long)e->bytes_out,
                (unsigned long long)e->messages, e->duration_ms);
    if (e->unclean)
        n = put(line, n, cap, ",\"clean\":false");
    *pn = n;
}

static void event_text(char *line, size_t *pn, size_t cap, const struct log_event *e)
{
    size_t n = *pn;
    int closed = !strcmp(e->event, "close");

    n = put(line, n, cap, "#%u %s ", e->conn, e->peer);
    if (closed)
        n = put(line, n, cap, "closed code=%d", e->code);
    else if (!strcmp(e->event, "timeout"))
        n = put(line, n, cap, "%s timeout", e->reason ? e->reason : "?");
    else if (e->code)
        n = put(line, n, cap, "%s %d", e->event, e->code);
    else
        n = put(line, n, cap, "%s", e->event);
    if (e->reason && strcmp(e->event, "timeout"))
        n = put_field(line, n, cap, 300, closed ? " reason=\"" : ": ", e->reason, e->reason_len, closed ? "\"" : "",
                      0);
    if (e->path)
        n = put_field(line, n, cap, 250, " path=\"", e->path, e->path_len, "\"", 0);
    if (e->protocol)
        n = put_field(line, n, cap, 200, " protocol=", e->protocol, strlen(e->protocol), "", 0);
    if (e->deflate)
        n = put(line, n, cap, " permessage-deflate %s", e->deflate);
    if (e->counted)
        n = put(line, n, cap, " messages=%llu bytes_in=%llu bytes_out=%llu duration_ms=%.0f",
                (unsigned long long)e->messages, (unsigned long long)e->bytes_in,
                (unsigned long long)e->bytes_out, e->duration_ms);
    if (e->unclean)
        n = put(line, n, cap, " (no close handshake)");
    *pn = n;
}

void log_event(int level, const struct log_event *e)
{
    char line[2400];

    if (!log_enabled(level))
        return;
    size_t n = line_start(line, sizeof(line), level);
    if (style == 2)
        event_json(line, &n, sizeof(line), e);
    else
        event_text(line, &n, sizeof(line), e);
    line_end(line, n, sizeof(line));
}
