/*
 * pool.c - see pool.h. Blocks are big enough that malloc maps them
 * directly, so untouched slots cost no memory; freed objects are reused
 * most-recent first, while their cache lines are still warm.
 */
#include "pool.h"

#include <stdlib.h>

#define BLOCK_SIZE (256 * 1024)
#define BLOCK_HEADER 16 /* the link to the next block, kept 16-aligned */

void pool_init(struct pool *p, size_t size)
{
    p->size = (size + 7) & ~(size_t)7;
    p->free = NULL;
    p->cur = p->end = NULL;
    p->blocks = NULL;
}

void *pool_get(struct pool *p)
{
    void *obj = p->free;

    if (obj) {
        p->free = *(void **)obj;
        return obj;
    }
    if ((size_t)(p->end - p->cur) < p->size) {
        char *b = malloc(BLOCK_SIZE);
        if (!b)
            return NULL;
        *(void **)b = p->blocks;
        p->blocks = b;
        p->cur = b + BLOCK_HEADER;
        p->end = b + BLOCK_SIZE;
    }
    obj = p->cur;
    p->cur += p->size;
    return obj;
}

void pool_put(struct pool *p, void *obj)
{
    *(void **)obj = p->free;
    p->free = obj;
}

void pool_destroy(struct pool *p)
{
    void *b = p->blocks;
    while (b) {
        void *next = *(void **)b;
        free(b);
        b = next;
    }
    pool_init(p, p->size);
}
