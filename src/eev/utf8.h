/*
 * utf8.h - incremental UTF-8 validation (RFC 3629 §4), state kept across
 * calls so text split over frames and reads fails at the first bad byte.
 */
#ifndef EEV_UTF8_H
#define EEV_UTF8_H

#include <stddef.h>
#include <stdint.h>

#include "eev/driver.h"

/* Like eev_utf8_validate(), but returns only the new state. */
uint32_t utf8_advance(uint32_t state, const uint8_t *p, size_t len);

#endif
