/*
 * sd.h - the systemd service protocol (sd_notify(3), sd_listen_fds(3),
 * sd_watchdog_enabled(3)) when built with libsystemd; no-ops otherwise.
 */
#ifndef EEV_SD_H
#define EEV_SD_H

#include <stdint.h>

/* Number of sockets passed by socket activation (fds 3..3+n-1), or 0. */
int sd_inherited_fds(void);
/* Non-zero when inherited socket i (0-based) has FileDescriptorName=name. */
int sd_fd_is_named(int i, const char *name);
/* Sends a notification ("READY=1", "STATUS=..."); ignored when not under
 * systemd. */
void sd_tell(const char *state);
/* Watchdog interval in microseconds, or 0 when not requested. */
uint64_t sd_watchdog_interval(void);
/* Non-zero when built with libsystemd. */
int sd_supported(void);

#endif
