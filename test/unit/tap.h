/*
 * tap.h - a tiny TAP producer in the picotest style (ok, note, done_testing).
 * Output goes to stdout; meson runs the binaries with protocol: 'tap'.
 */
#ifndef EEV_TEST_TAP_H
#define EEV_TEST_TAP_H

#if defined(__GNUC__)
#define TAP_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define TAP_PRINTF(a, b)
#endif

/* Emits "ok N - desc" or "not ok N - desc" (with file:line); returns cond. */
int tap_ok(const char *file, int line, int cond, const char *fmt, ...) TAP_PRINTF(4, 5);
/* Emits a "# ..." diagnostic line. */
void note(const char *fmt, ...) TAP_PRINTF(1, 2);
/* Prints the plan; returns the exit status for main() (0 when all passed). */
int done_testing(void);
/* Number of failed checks so far. */
int tap_failures(void);

#define ok(...) tap_ok(__FILE__, __LINE__, __VA_ARGS__)

#endif
