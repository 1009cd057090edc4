/* Licensed under the Apache License, Version 2.0; see LICENSE. */

/**
 * @file scep_spool.h
 * @brief The RA's spool: requests a CA could not take (unreachable,
 * timing out, answering nonsense), kept as the device sent them (its
 * pkiMessage, encrypted to the RA) until a retry gets an answer.  One
 * file per entry, written atomically.  APR only.
 */
#ifndef SCEP_SPOOL_H
#define SCEP_SPOOL_H

#include <apr_pools.h>
#include <apr_time.h>

/** A spooled request. */
typedef struct {
    apr_time_t since;            /**< when the CA first failed it */
    int attempts;                /**< how often the CA failed it */
    const unsigned char *der;    /**< the device's pkiMessage */
    apr_size_t len;
} scep_spool_entry_t;

/** The entry name of a transaction for a key (hex of their SHA-256). */
const char *scep_spool_name(apr_pool_t *p, const char *transid,
                            const char *keyid);

/** Write an entry (replacing one of the same name). */
apr_status_t scep_spool_put(apr_pool_t *p, const char *dir, const char *name,
                            const scep_spool_entry_t *e);

/** Read an entry: APR_SUCCESS, APR_ENOENT, or another error (a damaged
 * entry is APR_EGENERAL). */
apr_status_t scep_spool_get(apr_pool_t *p, const char *dir, const char *name,
                            apr_size_t max, scep_spool_entry_t *e);

/** Remove an entry; no error when there is none. */
apr_status_t scep_spool_drop(apr_pool_t *p, const char *dir,
                             const char *name);

/** Remove the entries kept since before a time, damaged entries and old
 * temporary files; *removed counts them. */
apr_status_t scep_spool_sweep(apr_pool_t *p, const char *dir,
                              apr_time_t before, apr_size_t max,
                              int *removed);

#endif /* SCEP_SPOOL_H */
