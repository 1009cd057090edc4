/* Licensed under the Apache License, Version 2.0; see LICENSE. */

/**
 * @file scep_http.h
 * @brief A small HTTP/1.0 client over APR sockets, enough to talk to an
 * upstream SCEP server (RFC 8894 4.1): GET or POST, one connection per
 * request, a connect timeout and a total deadline, a bounded reply.
 * No httpd types.
 *
 * What matters to an RA that must never submit twice is whether the
 * upstream may have received the request: the reply says whether any
 * byte of it was written (sent).  A failure before that (address not
 * resolved, connection refused, connect timeout) means the request was
 * certainly not delivered.
 */
#ifndef SCEP_HTTP_H
#define SCEP_HTTP_H

#include <apr_pools.h>
#include <apr_time.h>

/** One exchange. */
typedef struct {
    int status;                /**< HTTP status, 0 when none was read */
    const char *content_type;  /**< "" when absent */
    const unsigned char *body; /**< the entity, not NUL-terminated */
    apr_size_t len;
    int sent;          /**< a byte of the request was written */
    const char *error; /**< on failure, for the log */
} scep_http_reply_t;

/** Limits of one exchange. */
typedef struct {
    apr_interval_time_t connect_timeout;
    apr_interval_time_t timeout; /**< the whole exchange */
    apr_size_t max_body;         /**< a longer reply is an error */
} scep_http_limits_t;

/**
 * Send one request to url (http:// only) with query appended (may be
 * NULL; without '?'), as POST with body when body is not NULL, else as
 * GET.  APR_SUCCESS when a complete reply was read, whatever its status;
 * otherwise an error with rep->error and rep->sent set: APR_EINVAL (bad
 * URL), APR_ENOTIMPL (not http), the resolver's or connect's error,
 * APR_TIMEUP (the deadline passed), APR_ENOSPC (reply over max_body),
 * APR_EGENERAL (not HTTP, or cut short).
 */
apr_status_t scep_http_exchange(apr_pool_t *p, const char *url,
                                const char *query, const unsigned char *body,
                                apr_size_t len, const char *content_type,
                                const scep_http_limits_t *lim,
                                scep_http_reply_t *rep);

#endif /* SCEP_HTTP_H */
