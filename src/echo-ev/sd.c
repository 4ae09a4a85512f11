/*
 * sd.c - the systemd service protocol through libsystemd when built with
 * it (HAVE_SYSTEMD), and the same four calls as no-ops otherwise, so the
 * server never tests for systemd itself. The contracts are in sd.h.
 */
#include "sd.h"

#ifdef HAVE_SYSTEMD
#include <string.h>
#include <systemd/sd-daemon.h>

static char **fd_names; /* FileDescriptorName= of each inherited socket */
static int fd_cnt;

int sd_inherited_fds(void)
{
    /* Takes the names too: the environment that holds them is cleared. */
    int n = sd_listen_fds_with_names(1, &fd_names);
    fd_cnt = n > 0 ? n : 0;
    return fd_cnt;
}

int sd_fd_is_named(int i, const char *name)
{
    return fd_names && i < fd_cnt && fd_names[i] && strcmp(fd_names[i], name) == 0;
}

void sd_tell(const char *state)
{
    sd_notify(0, state);
}

uint64_t sd_watchdog_interval(void)
{
    uint64_t usec = 0;
    return sd_watchdog_enabled(0, &usec) > 0 ? usec : 0;
}

int sd_supported(void)
{
    return 1;
}
#else
int sd_inherited_fds(void)
{
    return 0;
}

int sd_fd_is_named(int i, const char *name)
{
    (void)i;
    (void)name;
    return 0;
}

void sd_tell(const char *state)
{
    (void)state;
}

uint64_t sd_watchdog_interval(void)
{
    return 0;
}

int sd_supported(void)
{
    return 0;
}
#endif
