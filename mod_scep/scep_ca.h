/* Licensed under the Apache License, Version 2.0; see LICENSE. */

/**
 * @file scep_ca.h
 * @brief The embedded CA's certificate factory: a certificate from a
 * PKCS#10 and a template, with what a request may not decide refused.
 * OpenSSL and APR only.
 */
#ifndef SCEP_CA_H
#define SCEP_CA_H

#include <apr_pools.h>
#include <openssl/x509.h>

/** A certificate template (NDES: a CA template named in the registry). */
typedef struct {
    const char *name;
    int validity_days;          /* default 365, NDES's one year */
    unsigned int key_usage;     /* X509v3 KU_* bits set critical; 0: from
                                   the request's KeyUsage */
    const char *eku;            /* comma-separated names or OIDs, or NULL */
    const char *crl_url;        /* CRL distribution point URI, or NULL (set
                                   per CA by the caller, not a template's) */
} scep_template_t;

/** The built-in templates, NDES's default name first; NULL-terminated. */
extern const scep_template_t scep_ca_builtin_templates[];

/** The KeyUsage first octet a request asks for, -1 when it has none. */
int scep_ca_request_key_usage(X509_REQ *csr);

/** The challengePassword of a request (length-delimited), or NULL. */
const char *scep_ca_request_challenge(apr_pool_t *p, X509_REQ *csr,
                                      apr_size_t *len);

/**
 * Issue: subject and subjectAltName (DNS, IP, e-mail, URI, UPN) copied
 * from the request; basicConstraints CA:FALSE; KeyUsage and EKU from the
 * template; notBefore 10 minutes back for devices with slow clocks; a
 * random positive 127-bit serial.  Refused (reason returned, for the log):
 * CA:TRUE, the Microsoft SID extension, SID URIs or otherNames, unknown
 * critical extensions.  NULL on success with *out owned by p.
 */
const char *scep_ca_issue(apr_pool_t *p, X509 *ca_cert, EVP_PKEY *ca_key,
                          const EVP_MD *md, X509_REQ *csr,
                          const scep_template_t *t, X509 **out);

/** What scep_ca_issue would refuse in a request, without signing
 * anything (a request held for approval is refused at once); NULL when
 * nothing. */
const char *scep_ca_check(apr_pool_t *p, X509_REQ *csr);

/** Upper-case hex of data's SHA-256 (storage keys). */
const char *scep_ca_sha256_hex(apr_pool_t *p, const void *data,
                               apr_size_t len);

/** A certificate's serial number in upper-case hex. */
const char *scep_ca_serial_hex(apr_pool_t *p, X509 *x);

#endif /* SCEP_CA_H */
