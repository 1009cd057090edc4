/* Licensed under the Apache License, Version 2.0; see LICENSE. */

/**
 * @file scep_transport.h
 * @brief Getting the pkiMessage out of an HTTP request (RFC 8894 4.1),
 * as leniently as real clients need.  No httpd types.
 */
#ifndef SCEP_TRANSPORT_H
#define SCEP_TRANSPORT_H

#include <apr_pools.h>

/**
 * The message= value of a GET, as found in the raw query string:
 * percent-decoded without turning '+' into a space (a space is taken for
 * a '+' a proxy decoded), CR, LF and other whitespace dropped, missing
 * '=' padding accepted, base64url accepted.  Returns 0 when it is not
 * base64 at all.
 */
int scep_transport_query_message(apr_pool_t *p, const char *raw,
                                 apr_size_t rawlen, unsigned char **out,
                                 apr_size_t *outlen);

/**
 * A POST body: DER or BER as sent, or base64 (some clients encode it).
 * out may point into body.
 */
int scep_transport_body(apr_pool_t *p, const unsigned char *body,
                        apr_size_t len, const unsigned char **out,
                        apr_size_t *outlen);

#endif /* SCEP_TRANSPORT_H */
