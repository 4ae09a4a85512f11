/* tap.c - see tap.h. */
#include "tap.h"

#include <stdarg.h>
#include <stdio.h>

static int tap_cnt, tap_fail;

int tap_ok(const char *file, int line, int cond, const char *fmt, ...)
{
    va_list ap;

    ++tap_cnt;
    if (!cond)
        ++tap_fail;
    printf("%sok %d - ", cond ? "" : "not ", tap_cnt);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    if (!cond)
        printf("# failed at %s:%d\n", file, line);
    fflush(stdout);
    return cond;
}

void note(const char *fmt, ...)
{
    va_list ap;

    printf("# ");
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    fflush(stdout);
}

int tap_failures(void)
{
    return tap_fail;
}

int done_testing(void)
{
    printf("1..%d\n", tap_cnt);
    fflush(stdout);
    return tap_fail != 0;
}
