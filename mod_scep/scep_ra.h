/* Licensed under the Apache License, Version 2.0; see LICENSE. */

/**
 * @file scep_ra.h
 * @brief RA credentials: load PEM files, pick certificates from a store by
 * NDES's rules, check them against the CA.  APR and OpenSSL only.
 *
 * Errors come back as a message naming the file and the reason; the
 * httpd glue logs it (NDES event 10) and refuses to start.
 */
#ifndef SCEP_RA_H
#define SCEP_RA_H

#include <apr_pools.h>
#include <apr_tables.h>
#include <openssl/x509.h>
#include <openssl/evp.h>

/** Certificate Request Agent EKU, which NDES requires of its RA certs. */
#define SCEP_OID_CERT_REQUEST_AGENT "1.3.6.1.4.1.311.20.2.1"

/** Load every certificate of a PEM file (at least one). */
const char *scep_ra_load_certs(apr_pool_t *p, const char *file,
                               STACK_OF(X509) **certs);

/** Load one private key from a PEM file (unencrypted). */
const char *scep_ra_load_key(apr_pool_t *p, const char *file,
                             EVP_PKEY **key);

/** A certificate with its key, as found in a store. */
typedef struct {
    X509 *cert;
    EVP_PKEY *key;
    const char *file;   /* where the certificate came from */
} scep_ra_cred_t;

/**
 * Read a certificate store directory: every *.pem, *.crt and *.cer file;
 * a certificate's key is in the same file or in the file of the same
 * name ending .key.  Certificates without a key are skipped.
 */
const char *scep_ra_store_read(apr_pool_t *p, const char *dir,
                               apr_array_header_t **creds);

typedef enum {
    SCEP_RA_SIGN,      /* KeyUsage digitalSignature */
    SCEP_RA_ENCRYPT    /* KeyUsage keyEncipherment */
} scep_ra_role_e;

/**
 * Pick the certificate for a role, by NDES's rules: EKU Certificate
 * Request Agent, KeyUsage for the role, key present, currently valid,
 * chain valid to the CA (cachain: the CA certificate then its chain);
 * the most recently issued wins.  NULL if none qualifies; *why then
 * says what was rejected.
 */
const scep_ra_cred_t *scep_ra_store_pick(apr_pool_t *p,
                                         apr_array_header_t *creds,
                                         STACK_OF(X509) *cachain,
                                         scep_ra_role_e role,
                                         const char **why);

/**
 * Check a configured RA certificate and key for a role: the key matches
 * the certificate, the KeyUsage allows the role, the certificate is
 * valid now.  NULL if usable, else the reason.
 */
const char *scep_ra_check(apr_pool_t *p, X509 *cert, EVP_PKEY *key,
                          scep_ra_role_e role);

/** Does cert chain to the CA (cachain: the CA then its chain), valid
 * now?  The configured CA is the anchor even if it is not a root. */
int scep_ra_chains_to_ca(X509 *cert, STACK_OF(X509) *cachain);

/** Seconds until notAfter (negative when expired). */
long scep_ra_seconds_left(X509 *cert);

/** "CN=..., O=..." for the log. */
const char *scep_ra_subject(apr_pool_t *p, X509 *cert);

/** A name as RFC 2253 text (the same form as scep_ra_subject). */
const char *scep_ra_name(apr_pool_t *p, const X509_NAME *name);

#endif /* SCEP_RA_H */
