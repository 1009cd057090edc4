/* Licensed under the Apache License, Version 2.0; see LICENSE. */

#ifndef SCEP_POOL_H
#define SCEP_POOL_H

#include <apr_pools.h>

/*
 * Pools own OpenSSL objects: SCEP_POOL_FREE(X509, X509_free) defines
 * own_X509(p, x), which registers x's release with p and returns x.
 */
#define SCEP_POOL_FREE(type, freefn)                                       \
    static apr_status_t free_##type(void *d)                               \
    {                                                                      \
        freefn((type *)d);                                                 \
        return APR_SUCCESS;                                                \
    }                                                                      \
    static type *own_##type(apr_pool_t *p, type *o)                        \
    {                                                                      \
        if (o) {                                                           \
            apr_pool_cleanup_register(p, o, free_##type,                   \
                                      apr_pool_cleanup_null);              \
        }                                                                  \
        return o;                                                          \
    }

#endif /* SCEP_POOL_H */
