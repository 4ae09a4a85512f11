/*
 * page.h - the HTML page served at GET /: the tutorial's browser test.
 */
#ifndef EEV_PAGE_H
#define EEV_PAGE_H

#include <stddef.h>

extern const char page_html[];
extern const size_t page_html_len;

#endif
