/*
 * page.c - finds the test console's files by path. The files themselves
 * (page.html, page.css, page.js, favicon.svg) are embedded at build time
 * into the generated page_assets.c.
 */
#include "page.h"

#include <string.h>

const struct page_asset *page_find(const char *path, size_t len)
{
    for (size_t i = 0; i < page_asset_cnt; i++)
        if (strlen(page_assets[i].path) == len && memcmp(page_assets[i].path, path, len) == 0)
            return &page_assets[i];
    return NULL;
}
