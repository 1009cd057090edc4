/* Licensed under the Apache License, Version 2.0; see LICENSE. */

/*
 * RA credentials.  NDES picks its RA certificates from the machine store
 * by EKU (Certificate Request Agent) and KeyUsage, the newest valid one
 * winning; SCEPRACertificateStore does the same with a directory.
 */

#include <string.h>

#include <apr_file_info.h>
#include <apr_strings.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "scep_ra.h"

static apr_status_t free_cert_stack(void *d)
{
    sk_X509_pop_free((STACK_OF(X509) *)d, X509_free);
    return APR_SUCCESS;
}

static apr_status_t free_pkey(void *d)
{
    EVP_PKEY_free((EVP_PKEY *)d);
    return APR_SUCCESS;
}

static const char *last_ossl_error(void)
{
    unsigned long e = ERR_peek_last_error();
    const char *r = e ? ERR_reason_error_string(e) : NULL;

    ERR_clear_error();
    return r ? r : "no PEM data";
}

static BIO *open_file(apr_pool_t *p, const char *file, const char **err)
{
    BIO *b = BIO_new_file(file, "r");

    if (b == NULL) {
        ERR_clear_error();
        *err = apr_psprintf(p, "%s: cannot be read (missing or no "
                            "permission)", file);
    }
    return b;
}

const char *scep_ra_load_certs(apr_pool_t *p, const char *file,
                               STACK_OF(X509) **certs)
{
    const char *err = NULL;
    STACK_OF(X509) *sk;
    unsigned long e;
    X509 *x;
    BIO *b = open_file(p, file, &err);

    if (b == NULL) {
        return err;
    }
    ERR_clear_error();
    sk = sk_X509_new_null();
    while (sk && (x = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL) {
        if (!sk_X509_push(sk, x)) {
            X509_free(x);
            break;
        }
    }
    BIO_free(b);
    /* Reading ends with "no start line" at the end of the file; any other
     * error is a damaged certificate, which must not shorten a chain. */
    e = ERR_peek_last_error();
    ERR_clear_error();
    if (e && !(ERR_GET_LIB(e) == ERR_LIB_PEM
               && ERR_GET_REASON(e) == PEM_R_NO_START_LINE)) {
        int n = sk ? sk_X509_num(sk) + 1 : 1;
        sk_X509_pop_free(sk, X509_free);
        return apr_psprintf(p, "%s: certificate %d in the file is damaged "
                            "(%s)", file, n,
                            ERR_reason_error_string(e)
                                ? ERR_reason_error_string(e) : "unreadable");
    }
    if (sk == NULL || sk_X509_num(sk) == 0) {
        sk_X509_free(sk);
        return apr_psprintf(p, "%s: no PEM certificate in the file", file);
    }
    apr_pool_cleanup_register(p, sk, free_cert_stack, apr_pool_cleanup_null);
    *certs = sk;
    return NULL;
}

const char *scep_ra_load_key(apr_pool_t *p, const char *file, EVP_PKEY **key)
{
    const char *err = NULL;
    EVP_PKEY *k;
    BIO *b = open_file(p, file, &err);

    if (b == NULL) {
        return err;
    }
    /* An empty pass phrase: encrypted keys fail instead of prompting. */
    k = PEM_read_bio_PrivateKey(b, NULL, NULL, (void *)"");
    BIO_free(b);
    if (k == NULL) {
        return apr_psprintf(p, "%s: no usable private key (%s; keys must be "
                            "unencrypted PEM)", file, last_ossl_error());
    }
    apr_pool_cleanup_register(p, k, free_pkey, apr_pool_cleanup_null);
    *key = k;
    return NULL;
}

static int has_ku(X509 *cert, scep_ra_role_e role)
{
    uint32_t ku = X509_get_key_usage(cert);  /* all bits when absent */

    return role == SCEP_RA_SIGN ? (ku & KU_DIGITAL_SIGNATURE) != 0
                                : (ku & KU_KEY_ENCIPHERMENT) != 0;
}

static int has_cra_eku(X509 *cert)
{
    EXTENDED_KEY_USAGE *eku = X509_get_ext_d2i(cert, NID_ext_key_usage,
                                               NULL, NULL);
    ASN1_OBJECT *cra = OBJ_txt2obj(SCEP_OID_CERT_REQUEST_AGENT, 1);
    int i, found = 0;

    for (i = 0; eku && cra && i < sk_ASN1_OBJECT_num(eku); i++) {
        if (OBJ_cmp(sk_ASN1_OBJECT_value(eku, i), cra) == 0) {
            found = 1;
        }
    }
    ASN1_OBJECT_free(cra);
    EXTENDED_KEY_USAGE_free(eku);
    return found;
}

static const char *role_name(scep_ra_role_e role)
{
    return role == SCEP_RA_SIGN ? "signing (KeyUsage digitalSignature)"
                                : "encryption (KeyUsage keyEncipherment)";
}

static const char *validity_problem(X509 *cert)
{
    if (X509_cmp_current_time(X509_get0_notBefore(cert)) > 0) {
        return "is not yet valid";
    }
    if (X509_cmp_current_time(X509_get0_notAfter(cert)) < 0) {
        return "has expired";
    }
    return NULL;
}

const char *scep_ra_check(apr_pool_t *p, X509 *cert, EVP_PKEY *key,
                          scep_ra_role_e role)
{
    const char *why;

    if (X509_check_private_key(cert, key) != 1) {
        ERR_clear_error();
        return "the private key does not belong to the certificate";
    }
    if (!has_ku(cert, role)) {
        return apr_pstrcat(p, "the certificate's KeyUsage does not allow ",
                           role_name(role), NULL);
    }
    if ((why = validity_problem(cert)) != NULL) {
        return apr_pstrcat(p, "the certificate ", why, NULL);
    }
    return NULL;
}

long scep_ra_seconds_left(X509 *cert)
{
    int days = 0, secs = 0;

    if (!ASN1_TIME_diff(&days, &secs, NULL, X509_get0_notAfter(cert))) {
        return 0;
    }
    return (long)days * 86400L + secs;
}

const char *scep_ra_name(apr_pool_t *p, const X509_NAME *name)
{
    BIO *b = BIO_new(BIO_s_mem());
    const char *s = "?";
    char *data;
    long n;

    if (b == NULL) {
        return s;
    }
    X509_NAME_print_ex(b, name, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB);
    n = BIO_get_mem_data(b, &data);
    if (n > 0) {
        s = apr_pstrmemdup(p, data, (apr_size_t)n);
    }
    BIO_free(b);
    return s;
}

const char *scep_ra_subject(apr_pool_t *p, X509 *cert)
{
    return scep_ra_name(p, X509_get_subject_name(cert));
}

/* ---- the store ---- */

static int has_suffix(const char *name, const char *suffix)
{
    size_t n = strlen(name), s = strlen(suffix);

    return n > s && strcmp(name + n - s, suffix) == 0;
}

/* Every key in a PEM file (a file may hold a certificate and its key). */
static void read_keys(apr_pool_t *p, const char *file,
                      apr_array_header_t *keys)
{
    BIO *b = BIO_new_file(file, "r");
    EVP_PKEY *k;

    if (b == NULL) {
        ERR_clear_error();
        return;
    }
    while ((k = PEM_read_bio_PrivateKey(b, NULL, NULL, (void *)"")) != NULL) {
        apr_pool_cleanup_register(p, k, free_pkey, apr_pool_cleanup_null);
        APR_ARRAY_PUSH(keys, EVP_PKEY *) = k;
    }
    BIO_free(b);
    ERR_clear_error();
}

static EVP_PKEY *key_for(X509 *cert, apr_array_header_t *keys)
{
    int i;

    for (i = 0; i < keys->nelts; i++) {
        EVP_PKEY *k = APR_ARRAY_IDX(keys, i, EVP_PKEY *);
        if (X509_check_private_key(cert, k) == 1) {
            return k;
        }
    }
    ERR_clear_error();
    return NULL;
}

const char *scep_ra_store_read(apr_pool_t *p, const char *dir,
                               apr_array_header_t **creds)
{
    apr_dir_t *d;
    apr_finfo_t fi;
    apr_status_t rv;
    apr_array_header_t *out = apr_array_make(p, 4, sizeof(scep_ra_cred_t));

    rv = apr_dir_open(&d, dir, p);
    if (rv != APR_SUCCESS) {
        return apr_psprintf(p, "%s: cannot open the certificate store "
                            "directory", dir);
    }
    while (apr_dir_read(&fi, APR_FINFO_NAME | APR_FINFO_TYPE, d)
           == APR_SUCCESS) {
        const char *file, *keyfile;
        apr_array_header_t *keys;
        STACK_OF(X509) *certs;
        int i;

        if (fi.filetype != APR_REG || fi.name[0] == '.'
            || !(has_suffix(fi.name, ".pem") || has_suffix(fi.name, ".crt")
                 || has_suffix(fi.name, ".cer"))) {
            continue;
        }
        file = apr_pstrcat(p, dir, "/", fi.name, NULL);
        if (scep_ra_load_certs(p, file, &certs) != NULL) {
            continue;  /* a key-only or foreign file: not a candidate */
        }
        keys = apr_array_make(p, 2, sizeof(EVP_PKEY *));
        read_keys(p, file, keys);
        keyfile = apr_pstrcat(p, apr_pstrmemdup(p, file, strlen(file) - 4),
                              ".key", NULL);
        read_keys(p, keyfile, keys);
        for (i = 0; i < sk_X509_num(certs); i++) {
            X509 *x = sk_X509_value(certs, i);
            EVP_PKEY *k = key_for(x, keys);
            scep_ra_cred_t *c;
            if (k == NULL) {
                continue;  /* NDES: the private key must be present */
            }
            c = apr_array_push(out);
            c->cert = x;
            c->key = k;
            c->file = file;
        }
    }
    apr_dir_close(d);
    *creds = out;
    return NULL;
}

int scep_ra_chains_to_ca(X509 *cert, STACK_OF(X509) *cachain)
{
    X509_STORE *store = X509_STORE_new();
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    STACK_OF(X509) *untrusted = sk_X509_new_null();
    int ok = 0, i;

    if (store && ctx && untrusted && sk_X509_num(cachain) > 0) {
        /* The configured CA is the anchor even if it is an intermediate. */
        X509_STORE_add_cert(store, sk_X509_value(cachain, 0));
        X509_STORE_set_flags(store, X509_V_FLAG_PARTIAL_CHAIN);
        for (i = 1; i < sk_X509_num(cachain); i++) {
            sk_X509_push(untrusted, sk_X509_value(cachain, i));
        }
        if (X509_STORE_CTX_init(ctx, store, cert, untrusted)) {
            /* RA certificates carry the CRA EKU, not a TLS purpose. */
            X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_ANY);
            ok = X509_verify_cert(ctx) == 1;
        }
    }
    sk_X509_free(untrusted);
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(store);
    ERR_clear_error();
    return ok;
}

const scep_ra_cred_t *scep_ra_store_pick(apr_pool_t *p,
                                         apr_array_header_t *creds,
                                         STACK_OF(X509) *cachain,
                                         scep_ra_role_e role,
                                         const char **why)
{
    const scep_ra_cred_t *best = NULL;
    const char *rejected = "";
    int i;

    for (i = 0; i < creds->nelts; i++) {
        const scep_ra_cred_t *c = &APR_ARRAY_IDX(creds, i, scep_ra_cred_t);
        const char *problem = NULL;

        if (!has_cra_eku(c->cert)) {
            problem = "no Certificate Request Agent EKU";
        }
        else if (!has_ku(c->cert, role)) {
            problem = "KeyUsage does not allow the role";
        }
        else if ((problem = validity_problem(c->cert)) != NULL) {
            /* set */
        }
        else if (!scep_ra_chains_to_ca(c->cert, cachain)) {
            problem = "does not chain to the CA certificate";
        }
        if (problem) {
            rejected = apr_psprintf(p, "%s%s%s (%s): %s", rejected,
                                    *rejected ? "; " : "", c->file,
                                    scep_ra_subject(p, c->cert), problem);
            continue;
        }
        /* Most recently issued wins. */
        if (best == NULL
            || ASN1_TIME_compare(X509_get0_notBefore(c->cert),
                                 X509_get0_notBefore(best->cert)) > 0) {
            best = c;
        }
    }
    if (best == NULL && why) {
        *why = apr_psprintf(p, "no certificate qualifies for %s%s%s",
                            role_name(role), *rejected ? ": " : "",
                            rejected);
    }
    return best;
}
