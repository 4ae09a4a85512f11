/*
 * pool.h - fixed-size object pool: connections come from large blocks
 * without malloc's per-object header and size-class rounding, which is a
 * tenth of an idle connection's cost.
 */
#ifndef EEV_POOL_H
#define EEV_POOL_H

#include <stddef.h>

struct pool {
    size_t size;  /* object size, a multiple of 8 (pointer alignment) */
    void *free;   /* freed objects, linked through their first word */
    char *cur;    /* unused tail of the newest block */
    char *end;
    void *blocks; /* every block, linked through its first word */
};

void pool_init(struct pool *p, size_t size);
/* An uninitialised object, or NULL when out of memory. */
void *pool_get(struct pool *p);
void pool_put(struct pool *p, void *obj);
/* Releases every block (all objects must be put back or abandoned). */
void pool_destroy(struct pool *p);

#endif
