/* Licensed under the Apache License, Version 2.0; see LICENSE. */

/**
 * @file testpki.h
 * @brief A throw-away PKI for the unit tests and the fuzz seed generator,
 * built in memory with OpenSSL 3.
 *
 * RSA keys are generated once per process and shared (key generation is
 * the slow part of every test program); testpki_cleanup() frees them and
 * the standard identities.  Everything else a function here returns is
 * owned by the pool passed to it (freed by a pool cleanup).
 *
 * TESTPKI_RSA_BITS in the environment overrides the RSA key size (2048),
 * e.g. 1024 to make runs under valgrind faster.
 */
#ifndef TESTPKI_H
#define TESTPKI_H

#include <apr_pools.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <openssl/evp.h>

/** Shared RSA keys: index 0..TESTPKI_NKEYS-1, generated on first use. */
#define TESTPKI_NKEYS 8
EVP_PKEY *testpki_rsa_key(int n);

/** A shared EC P-256 key, generated on first use. */
EVP_PKEY *testpki_ec_key(void);

/** The standard identities (testpki_get()). */
typedef struct {
    EVP_PKEY *ca_key;       /* key 0 */
    X509 *ca_cert;          /* self-signed "mod_scep Test CA", CA:TRUE */
    EVP_PKEY *ra_key;       /* key 1 */
    X509 *ra_cert;          /* by the CA: KU digitalSignature +
                             * keyEncipherment, EKU Certificate Request
                             * Agent */
    EVP_PKEY *client_key;   /* key 2 */
    X509 *client_cert;      /* self-signed "SCEP SIGNER" */
    EVP_PKEY *other_key;    /* key 3 */
    X509 *other_cert;       /* another self-signed identity */
} testpki_t;

/** Build the standard identities on first call; NULL on failure. */
const testpki_t *testpki_get(void);

/** Free the shared keys and the standard identities. */
void testpki_cleanup(void);

/** Subject names of the standard identities. */
#define TESTPKI_CA_SUBJECT     "/O=mod_scep test/CN=mod_scep Test CA"
#define TESTPKI_RA_SUBJECT     "/O=mod_scep test/CN=mod_scep Test RA"
#define TESTPKI_CLIENT_SUBJECT "/O=SCEP SIGNER/CN=SCEP SIGNER"
#define TESTPKI_OTHER_SUBJECT  "/O=mod_scep test/CN=Someone Else"

/** Certificate Request Agent EKU. */
#define TESTPKI_EKU_CRA "1.3.6.1.4.1.311.20.2.1"

/** What a certificate made by testpki_cert() looks like. */
typedef struct {
    const char *subject;   /* "/O=x/CN=y" (NULL: "/CN=test") */
    EVP_PKEY *key;         /* subject public key (required) */
    X509 *issuer;          /* NULL: self-signed with key */
    EVP_PKEY *issuer_key;  /* the issuer's key (with issuer) */
    long serial;           /* 0: random 63-bit */
    int validity_set;      /* 0: notBefore -1 day, notAfter +1 year */
    long not_before;       /* seconds from now (with validity_set) */
    long not_after;        /* seconds from now (with validity_set) */
    int ku;                /* KU_* bits of openssl/x509v3.h; 0: none */
    const char *eku;       /* "serverAuth,1.3.6.1.4.1.311.20.2.1"; NULL:
                            * none */
    int ca;                /* basicConstraints CA:TRUE */
    const EVP_MD *md;      /* NULL: SHA-256 */
} testpki_certspec_t;

/** Make a certificate; NULL on failure (OpenSSL errors printed as TAP
 * diagnostics). */
X509 *testpki_cert(apr_pool_t *p, const testpki_certspec_t *spec);

/** Parse "/O=x/CN=y" into a pool-owned X509_NAME. */
X509_NAME *testpki_name(apr_pool_t *p, const char *subject);

/**
 * A PKCS#10 request for subject signed by key with SHA-256, with a
 * challengePassword attribute unless challenge is NULL.
 */
X509_REQ *testpki_csr(apr_pool_t *p, EVP_PKEY *key, const char *subject,
                      const char *challenge);

/** What a request made by testpki_csr_spec() looks like. */
typedef struct {
    const char *subject;        /* "/O=x/CN=y" (NULL: "/CN=test") */
    EVP_PKEY *key;              /* subject key, signs the request */
    const char *challenge;      /* challengePassword; NULL: none */
    int challenge_len;          /* bytes of challenge; 0: strlen */
    int challenge_type;         /* V_ASN1_UTF8STRING etc.; 0: chosen
                                 * from MBSTRING_ASC as testpki_csr() */
    const char *const *exts;    /* requested extensions, NULL-terminated
                                 * "name=value" in openssl.cnf syntax,
                                 * e.g. "keyUsage=critical,digitalSignature"
                                 * or "1.2.3.4=critical,DER:0500"; NULL:
                                 * none */
    const EVP_MD *md;           /* NULL: SHA-256 */
} testpki_csrspec_t;

/** Make a request; NULL on failure (OpenSSL errors as TAP diagnostics). */
X509_REQ *testpki_csr_spec(apr_pool_t *p, const testpki_csrspec_t *spec);

/** A CRL of issuer revoking one serial number. */
X509_CRL *testpki_crl(apr_pool_t *p, X509 *issuer, EVP_PKEY *issuer_key,
                      long revoked_serial);

/** DER encodings in pool memory (NULL on failure). */
unsigned char *testpki_x509_der(apr_pool_t *p, X509 *x, apr_size_t *len);
unsigned char *testpki_req_der(apr_pool_t *p, X509_REQ *req,
                               apr_size_t *len);

/** Hand an OpenSSL object to a pool (freed when the pool is). */
X509 *testpki_keep_x509(apr_pool_t *p, X509 *x);
EVP_PKEY *testpki_keep_pkey(apr_pool_t *p, EVP_PKEY *k);
STACK_OF(X509) *testpki_keep_x509_stack(apr_pool_t *p, STACK_OF(X509) *s);

/** A stack of the given certificates (NULL-terminated list), pool-owned;
 * each certificate is up-referenced. */
STACK_OF(X509) *testpki_stack(apr_pool_t *p, X509 *first, ...);

/**
 * A new private temporary directory (under $TMPDIR or /tmp), removed
 * with everything in it when p is cleared.
 */
const char *testpki_mkdtemp(apr_pool_t *p);

/**
 * Write dir/name holding the certificates (PEM, in order) and then key
 * (PKCS#8 PEM) if not NULL.  Returns the path, NULL on failure.
 */
const char *testpki_write_pem(apr_pool_t *p, const char *dir,
                              const char *name, X509 *const *certs,
                              int ncerts, EVP_PKEY *key);

/** How testpki_write_key() writes a key. */
typedef enum {
    TESTPKI_KEY_PKCS8,        /* BEGIN PRIVATE KEY */
    TESTPKI_KEY_TRADITIONAL,  /* BEGIN RSA PRIVATE KEY */
    TESTPKI_KEY_ENCRYPTED     /* BEGIN ENCRYPTED PRIVATE KEY, "secret" */
} testpki_keyform_e;

/** Write dir/name holding only key in the given form. */
const char *testpki_write_key(apr_pool_t *p, const char *dir,
                              const char *name, EVP_PKEY *key,
                              testpki_keyform_e form);

/** Write dir/name with the given bytes. */
const char *testpki_write_file(apr_pool_t *p, const char *dir,
                               const char *name, const void *data,
                               apr_size_t len);

/** Lower-case hex of bytes, in pool memory. */
const char *testpki_hex(apr_pool_t *p, const unsigned char *data,
                        apr_size_t len);

/** Print OpenSSL's error queue as TAP diagnostics and clear it. */
void testpki_diag_ossl(const char *what);

#endif /* TESTPKI_H */
