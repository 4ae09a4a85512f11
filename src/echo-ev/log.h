/*
 * log.h - leveled logging to stderr: human lines with timestamps, journal
 * lines with <N> priority prefixes, or JSON objects. Never blocks: lines
 * that stderr cannot take wait in a bounded buffer, or are dropped and
 * counted.
 */
#ifndef EEV_LOG_H
#define EEV_LOG_H

#include <stddef.h>
#include <stdint.h>

struct ev_loop;

enum log_level { LOG_ERR = 3, LOG_WARN = 4, LOG_INFO = 6, LOG_DEBUG = 7 };
enum log_format { LOGF_AUTO, LOGF_TEXT, LOGF_JSON };

void log_setup(int level, int format);
/* From now on pending lines are flushed by a watcher on this loop (before,
 * they wait for the next line or for exit). */
void log_attach(struct ev_loop *loop);
/* Lines dropped so far because stderr was not keeping up. */
uint64_t log_dropped(void);
int log_enabled(int level);
void log_msg(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/*
 * One connection event (open, close, refused, failed, timeout) with real
 * fields: in JSON each set field is a member; in text, a readable line
 * "#conn peer event ...". Strings from the peer (path, reason) may hold
 * anything: control characters and bytes that are not UTF-8 are escaped.
 */
struct log_event {
    uint32_t conn;
    const char *peer;
    const char *event;
    int code;                         /* close code or HTTP status; 0: none */
    const char *reason;               /* NULL: none */
    size_t reason_len;
    const char *path;                 /* NULL: none */
    size_t path_len;
    const char *protocol;             /* NULL: none */
    const char *deflate;              /* permessage-deflate parameters (ours), NULL: none */
    int counted;                      /* the counts below are set */
    uint64_t bytes_in, bytes_out, messages;
    double duration_ms;
    int unclean;                      /* close: no close handshake */
};

void log_event(int level, const struct log_event *e);

#define log_error(...) log_msg(LOG_ERR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...) do { if (log_enabled(LOG_INFO)) log_msg(LOG_INFO, __VA_ARGS__); } while (0)
#define log_debug(...) do { if (log_enabled(LOG_DEBUG)) log_msg(LOG_DEBUG, __VA_ARGS__); } while (0)

#endif
