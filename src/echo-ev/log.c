/*
 * log.c - see log.h. Under systemd (JOURNAL_STREAM names our stderr) the
 * journal adds timestamps itself and reads the "<N>" prefix as the
 * priority (sd-daemon(3)).
 */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static int max_level = LOG_INFO;
static int style; /* 0 text, 1 journal, 2 json */

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

void log_setup(int level, int format)
{
    max_level = level;
    style = format == LOGF_JSON ? 2 : stderr_is_journal() ? 1 : 0;
}

int log_enabled(int level)
{
    return level <= max_level;
}

static void json_escape(char *out, size_t cap, const char *s)
{
    size_t o = 0;
    for (; *s && o + 7 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            out[o++] = '\\';
            out[o++] = (char)c;
        } else if (c < 0x20) {
            o += (size_t)snprintf(out + o, cap - o, "\\u%04x", c);
        } else {
            out[o++] = (char)c;
        }
    }
    out[o] = 0;
}

void log_msg(int level, const char *fmt, ...)
{
    char msg[1024], line[2200], ts[40];
    struct timespec now;
    struct tm tm;
    va_list ap;
    int n;

    if (!log_enabled(level))
        return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (style == 1) {
        n = snprintf(line, sizeof(line), "<%d>%s: %s\n", level, level_name(level), msg);
    } else {
        clock_gettime(CLOCK_REALTIME, &now);
        gmtime_r(&now.tv_sec, &tm);
        size_t tl = strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
        snprintf(ts + tl, sizeof(ts) - tl, ".%03ldZ", now.tv_nsec / 1000000);
        if (style == 2) {
            char esc[1100];
            json_escape(esc, sizeof(esc), msg);
            n = snprintf(line, sizeof(line), "{\"time\":\"%s\",\"level\":\"%s\",\"msg\":\"%s\"}\n", ts,
                         level_name(level), esc);
        } else {
            n = snprintf(line, sizeof(line), "%s echo-ev[%d]: %s: %s\n", ts, (int)getpid(),
                         level_name(level), msg);
        }
    }
    if (n > (int)sizeof(line) - 1)
        n = (int)sizeof(line) - 1;
    /* One write per line, so lines from several processes don't mix. */
    if (write(STDERR_FILENO, line, (size_t)n) < 0) {
        /* nowhere left to report it */
    }
}
