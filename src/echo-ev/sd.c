/*
 * sd.c - the systemd service protocol through libsystemd when built with
 * it (HAVE_SYSTEMD), and the same four calls as no-ops otherwise, so the
 * server never tests for systemd itself. The contracts are in sd.h.
 */
#include "sd.h"

#ifdef HAVE_SYSTEMD
#include <systemd/sd-daemon.h>

int sd_inherited_fds(void)
{
    int n = sd_listen_fds(1);
    return n > 0 ? n : 0;
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
