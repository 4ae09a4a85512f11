/*
 * page.h - the test console served at GET / (page.html, page.css, page.js
 * and favicon.svg, embedded at build time by embed.py into page_assets.c).
 */
#ifndef EEV_PAGE_H
#define EEV_PAGE_H

#include <stddef.h>

struct page_asset {
    const char *path;    /* the route, e.g. "/" or "/page.js" */
    const char *headers; /* "Content-Type: ...\r\n" and caching, for eev_driver_http_reply */
    const unsigned char *body;
    size_t len;
};

extern const struct page_asset page_assets[];
extern const size_t page_asset_cnt;

/* The asset served at this request path, or NULL. */
const struct page_asset *page_find(const char *path, size_t len);

#endif
