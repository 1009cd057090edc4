/* Licensed under the Apache License, Version 2.0; see LICENSE. */

/**
 * @file scep_caps.h
 * @brief GetCACaps keywords (RFC 8894 3.5.2) from the configuration.
 */
#ifndef SCEP_CAPS_H
#define SCEP_CAPS_H

#include <apr_pools.h>

typedef struct {
    int legacy;        /* advertise DES3 and SHA-1 */
    int next_ca;       /* a rollover CA certificate is configured */
    int renewal;       /* renewal is served */
} scep_caps_t;

/**
 * The GetCACaps body: one keyword per line, LF-terminated, exact case, no
 * blank line.  SHA-384 is always listed (strongSwan 5.9.8 needs it to use
 * AES and POST).
 */
const char *scep_caps_text(apr_pool_t *p, const scep_caps_t *caps);

#endif /* SCEP_CAPS_H */
