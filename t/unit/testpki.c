/* Licensed under the Apache License, Version 2.0; see LICENSE. */

/*
 * A throw-away PKI for the unit tests; see testpki.h.
 */

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <apr_strings.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "testpki.h"

static EVP_PKEY *rsa_keys[TESTPKI_NKEYS];
static EVP_PKEY *ec_key;
static testpki_t pki;
static int pki_built;

/* Print a TAP diagnostic line (stdout, like the TAP stream). */
static void tdiag(const char *fmt, ...)
{
    va_list ap;

    fflush(stdout);
    fputs("# ", stdout);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    fputs("\n", stdout);
    fflush(stdout);
}

static int print_err_cb(const char *str, size_t len, void *u)
{
    /* str ends with a newline */
    while (len > 0 && (str[len - 1] == '\n' || str[len - 1] == '\r')) {
        len--;
    }
    tdiag("  %s: %.*s", (const char *)u, (int)len, str);
    return 1;
}

void testpki_diag_ossl(const char *what)
{
    ERR_print_errors_cb(print_err_cb, (void *)what);
}

static int rsa_bits(void)
{
    const char *s = getenv("TESTPKI_RSA_BITS");
    int bits = s ? atoi(s) : 0;

    return bits >= 1024 ? bits : 2048;
}

EVP_PKEY *testpki_rsa_key(int n)
{
    if (n < 0 || n >= TESTPKI_NKEYS) {
        return NULL;
    }
    if (rsa_keys[n] == NULL) {
        rsa_keys[n] = EVP_PKEY_Q_keygen(NULL, NULL, "RSA",
                                        (size_t)rsa_bits());
        if (rsa_keys[n] == NULL) {
            testpki_diag_ossl("RSA keygen");
        }
    }
    return rsa_keys[n];
}

EVP_PKEY *testpki_ec_key(void)
{
    if (ec_key == NULL) {
        ec_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
        if (ec_key == NULL) {
            testpki_diag_ossl("EC keygen");
        }
    }
    return ec_key;
}

/* Pool cleanups for OpenSSL objects. */

static apr_status_t free_x509(void *d)
{
    X509_free(d);
    return APR_SUCCESS;
}

static apr_status_t free_pkey(void *d)
{
    EVP_PKEY_free(d);
    return APR_SUCCESS;
}

static apr_status_t free_x509_stack(void *d)
{
    sk_X509_pop_free(d, X509_free);
    return APR_SUCCESS;
}

static apr_status_t free_name(void *d)
{
    X509_NAME_free(d);
    return APR_SUCCESS;
}

static apr_status_t free_req(void *d)
{
    X509_REQ_free(d);
    return APR_SUCCESS;
}

static apr_status_t free_crl(void *d)
{
    X509_CRL_free(d);
    return APR_SUCCESS;
}

X509 *testpki_keep_x509(apr_pool_t *p, X509 *x)
{
    if (x) {
        apr_pool_cleanup_register(p, x, free_x509, apr_pool_cleanup_null);
    }
    return x;
}

EVP_PKEY *testpki_keep_pkey(apr_pool_t *p, EVP_PKEY *k)
{
    if (k) {
        apr_pool_cleanup_register(p, k, free_pkey, apr_pool_cleanup_null);
    }
    return k;
}

STACK_OF(X509) *testpki_keep_x509_stack(apr_pool_t *p, STACK_OF(X509) *s)
{
    if (s) {
        apr_pool_cleanup_register(p, s, free_x509_stack,
                                  apr_pool_cleanup_null);
    }
    return s;
}

STACK_OF(X509) *testpki_stack(apr_pool_t *p, X509 *first, ...)
{
    STACK_OF(X509) *sk = sk_X509_new_null();
    va_list ap;
    X509 *x;

    if (sk == NULL) {
        return NULL;
    }
    va_start(ap, first);
    for (x = first; x != NULL; x = va_arg(ap, X509 *)) {
        if (!X509_up_ref(x) || !sk_X509_push(sk, x)) {
            va_end(ap);
            sk_X509_pop_free(sk, X509_free);
            return NULL;
        }
    }
    va_end(ap);
    return testpki_keep_x509_stack(p, sk);
}

X509_NAME *testpki_name(apr_pool_t *p, const char *subject)
{
    X509_NAME *name = X509_NAME_new();
    char *s, *field, *last = NULL, *eq;

    if (name == NULL) {
        return NULL;
    }
    apr_pool_cleanup_register(p, name, free_name, apr_pool_cleanup_null);
    s = apr_pstrdup(p, subject ? subject : "/CN=test");
    for (field = apr_strtok(s, "/", &last); field;
         field = apr_strtok(NULL, "/", &last)) {
        eq = strchr(field, '=');
        if (eq == NULL) {
            tdiag("testpki_name: bad field '%s'", field);
            return NULL;
        }
        *eq = '\0';
        if (!X509_NAME_add_entry_by_txt(name, field, MBSTRING_UTF8,
                                        (unsigned char *)eq + 1, -1, -1,
                                        0)) {
            testpki_diag_ossl("X509_NAME_add_entry_by_txt");
            return NULL;
        }
    }
    return name;
}

static int add_ext(X509 *x, X509V3_CTX *ctx, int nid, const char *value)
{
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, ctx, nid, value);
    int rv;

    if (ext == NULL) {
        testpki_diag_ossl(value);
        return 0;
    }
    rv = X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
    return rv;
}

static const char *ku_text(apr_pool_t *p, int ku)
{
    static const struct {
        int bit;
        const char *name;
    } names[] = {
        { KU_DIGITAL_SIGNATURE, "digitalSignature" },
        { KU_NON_REPUDIATION, "nonRepudiation" },
        { KU_KEY_ENCIPHERMENT, "keyEncipherment" },
        { KU_DATA_ENCIPHERMENT, "dataEncipherment" },
        { KU_KEY_AGREEMENT, "keyAgreement" },
        { KU_KEY_CERT_SIGN, "keyCertSign" },
        { KU_CRL_SIGN, "cRLSign" },
    };
    const char *s = "critical";
    size_t i;

    for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (ku & names[i].bit) {
            s = apr_pstrcat(p, s, ",", names[i].name, NULL);
        }
    }
    return s;
}

static int set_random_serial(X509 *x)
{
    unsigned char buf[8];
    BIGNUM *bn;
    int ok;

    if (RAND_bytes(buf, sizeof(buf)) != 1) {
        return 0;
    }
    buf[0] &= 0x7f;
    buf[0] |= 0x01;  /* positive, 8 bytes, never zero */
    bn = BN_bin2bn(buf, sizeof(buf), NULL);
    ok = bn && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) != NULL;
    BN_free(bn);
    return ok;
}

X509 *testpki_cert(apr_pool_t *p, const testpki_certspec_t *spec)
{
    X509 *x = X509_new();
    X509_NAME *name;
    X509V3_CTX ctx;
    X509 *issuer = spec->issuer;
    EVP_PKEY *signkey = spec->issuer ? spec->issuer_key : spec->key;
    long nb = spec->validity_set ? spec->not_before : -86400L;
    long na = spec->validity_set ? spec->not_after : 365L * 86400L;

    if (x == NULL || spec->key == NULL || signkey == NULL) {
        X509_free(x);
        return NULL;
    }
    testpki_keep_x509(p, x);
    name = testpki_name(p, spec->subject);
    if (name == NULL
        || !X509_set_version(x, 2)
        || !X509_set_subject_name(x, name)
        || !X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer)
                                           : name)
        || !X509_set_pubkey(x, spec->key)
        || X509_time_adj_ex(X509_getm_notBefore(x), 0, nb, NULL) == NULL
        || X509_time_adj_ex(X509_getm_notAfter(x), 0, na, NULL) == NULL) {
        testpki_diag_ossl("testpki_cert");
        return NULL;
    }
    if (spec->serial) {
        if (!ASN1_INTEGER_set(X509_get_serialNumber(x), spec->serial)) {
            return NULL;
        }
    }
    else if (!set_random_serial(x)) {
        return NULL;
    }

    X509V3_set_ctx(&ctx, issuer ? issuer : x, x, NULL, NULL, 0);
    if (spec->ca
        && !add_ext(x, &ctx, NID_basic_constraints, "critical,CA:TRUE")) {
        return NULL;
    }
    if (spec->ku && !add_ext(x, &ctx, NID_key_usage, ku_text(p, spec->ku))) {
        return NULL;
    }
    if (spec->eku && !add_ext(x, &ctx, NID_ext_key_usage, spec->eku)) {
        return NULL;
    }
    if (!add_ext(x, &ctx, NID_subject_key_identifier, "hash")) {
        return NULL;
    }
    if (issuer && !add_ext(x, &ctx, NID_authority_key_identifier,
                           "keyid:always")) {
        return NULL;
    }
    if (!X509_sign(x, signkey, spec->md ? spec->md : EVP_sha256())) {
        testpki_diag_ossl("X509_sign");
        return NULL;
    }
    return x;
}

X509_REQ *testpki_csr(apr_pool_t *p, EVP_PKEY *key, const char *subject,
                      const char *challenge)
{
    X509_REQ *req = X509_REQ_new();
    X509_NAME *name;

    if (req == NULL) {
        return NULL;
    }
    apr_pool_cleanup_register(p, req, free_req, apr_pool_cleanup_null);
    name = testpki_name(p, subject);
    if (name == NULL
        || !X509_REQ_set_version(req, 0)
        || !X509_REQ_set_subject_name(req, name)
        || !X509_REQ_set_pubkey(req, key)) {
        testpki_diag_ossl("testpki_csr");
        return NULL;
    }
    if (challenge
        && !X509_REQ_add1_attr_by_NID(req, NID_pkcs9_challengePassword,
                                      MBSTRING_ASC,
                                      (const unsigned char *)challenge,
                                      -1)) {
        testpki_diag_ossl("challengePassword");
        return NULL;
    }
    if (!X509_REQ_sign(req, key, EVP_sha256())) {
        testpki_diag_ossl("X509_REQ_sign");
        return NULL;
    }
    return req;
}

static apr_status_t free_ext_stack(void *d)
{
    sk_X509_EXTENSION_pop_free(d, X509_EXTENSION_free);
    return APR_SUCCESS;
}

X509_REQ *testpki_csr_spec(apr_pool_t *p, const testpki_csrspec_t *spec)
{
    X509_REQ *req = X509_REQ_new();
    STACK_OF(X509_EXTENSION) *exts = NULL;
    X509_NAME *name;
    X509V3_CTX ctx;
    int i;

    if (req == NULL || spec->key == NULL) {
        X509_REQ_free(req);
        return NULL;
    }
    apr_pool_cleanup_register(p, req, free_req, apr_pool_cleanup_null);
    name = testpki_name(p, spec->subject);
    if (name == NULL
        || !X509_REQ_set_version(req, 0)
        || !X509_REQ_set_subject_name(req, name)
        || !X509_REQ_set_pubkey(req, spec->key)) {
        testpki_diag_ossl("testpki_csr_spec");
        return NULL;
    }
    if (spec->challenge) {
        int len = spec->challenge_len ? spec->challenge_len
                                      : (int)strlen(spec->challenge);
        int type = spec->challenge_type ? spec->challenge_type
                                        : MBSTRING_ASC;

        if (!X509_REQ_add1_attr_by_NID(req, NID_pkcs9_challengePassword,
                                       type,
                                       (const unsigned char *)
                                           spec->challenge, len)) {
            testpki_diag_ossl("challengePassword");
            return NULL;
        }
    }
    if (spec->exts && spec->exts[0]) {
        exts = sk_X509_EXTENSION_new_null();
        if (exts == NULL) {
            return NULL;
        }
        apr_pool_cleanup_register(p, exts, free_ext_stack,
                                  apr_pool_cleanup_null);
        X509V3_set_ctx(&ctx, NULL, NULL, req, NULL, 0);
        for (i = 0; spec->exts[i]; i++) {
            char *ext = apr_pstrdup(p, spec->exts[i]);
            char *eq = strchr(ext, '=');
            X509_EXTENSION *e;

            if (eq == NULL) {
                tdiag("testpki_csr_spec: bad extension '%s'", ext);
                return NULL;
            }
            *eq = '\0';
            e = X509V3_EXT_nconf(NULL, &ctx, ext, eq + 1);
            if (e == NULL || !sk_X509_EXTENSION_push(exts, e)) {
                X509_EXTENSION_free(e);
                testpki_diag_ossl(spec->exts[i]);
                return NULL;
            }
        }
        if (!X509_REQ_add_extensions(req, exts)) {
            testpki_diag_ossl("X509_REQ_add_extensions");
            return NULL;
        }
    }
    if (!X509_REQ_sign(req, spec->key, spec->md ? spec->md : EVP_sha256())) {
        testpki_diag_ossl("X509_REQ_sign");
        return NULL;
    }
    return req;
}

X509_CRL *testpki_crl(apr_pool_t *p, X509 *issuer, EVP_PKEY *issuer_key,
                      long revoked_serial)
{
    X509_CRL *crl = X509_CRL_new();
    X509_REVOKED *rev = NULL;
    ASN1_TIME *t = NULL;
    ASN1_INTEGER *serial = NULL;
    int ok = 0;

    if (crl == NULL) {
        return NULL;
    }
    apr_pool_cleanup_register(p, crl, free_crl, apr_pool_cleanup_null);
    t = X509_time_adj_ex(NULL, 0, 0, NULL);
    rev = X509_REVOKED_new();
    serial = ASN1_INTEGER_new();
    if (t == NULL || rev == NULL || serial == NULL
        || !X509_CRL_set_version(crl, 1)
        || !X509_CRL_set_issuer_name(crl, X509_get_subject_name(issuer))
        || !X509_CRL_set1_lastUpdate(crl, t)
        || X509_time_adj_ex(t, 7, 0, NULL) == NULL
        || !X509_CRL_set1_nextUpdate(crl, t)
        || !ASN1_INTEGER_set(serial, revoked_serial)
        || !X509_REVOKED_set_serialNumber(rev, serial)
        || X509_time_adj_ex(t, -1, 0, NULL) == NULL
        || !X509_REVOKED_set_revocationDate(rev, t)
        || !X509_CRL_add0_revoked(crl, rev)) {
        goto out;
    }
    rev = NULL;
    if (!X509_CRL_sort(crl)
        || !X509_CRL_sign(crl, issuer_key, EVP_sha256())) {
        goto out;
    }
    ok = 1;
out:
    if (!ok) {
        testpki_diag_ossl("testpki_crl");
    }
    X509_REVOKED_free(rev);
    ASN1_INTEGER_free(serial);
    ASN1_TIME_free(t);
    return ok ? crl : NULL;
}

unsigned char *testpki_x509_der(apr_pool_t *p, X509 *x, apr_size_t *len)
{
    unsigned char *der = NULL, *copy;
    int n = i2d_X509(x, &der);

    if (n <= 0) {
        return NULL;
    }
    copy = apr_pmemdup(p, der, n);
    OPENSSL_free(der);
    *len = (apr_size_t)n;
    return copy;
}

unsigned char *testpki_req_der(apr_pool_t *p, X509_REQ *req,
                               apr_size_t *len)
{
    unsigned char *der = NULL, *copy;
    int n = i2d_X509_REQ(req, &der);

    if (n <= 0) {
        return NULL;
    }
    copy = apr_pmemdup(p, der, n);
    OPENSSL_free(der);
    *len = (apr_size_t)n;
    return copy;
}

const testpki_t *testpki_get(void)
{
    apr_pool_t *tmp;
    testpki_certspec_t spec;

    if (pki_built) {
        return &pki;
    }
    /* the certificates are made in a scratch pool, then kept globally */
    if (apr_pool_create(&tmp, NULL) != APR_SUCCESS) {
        return NULL;
    }
    pki.ca_key = testpki_rsa_key(0);
    pki.ra_key = testpki_rsa_key(1);
    pki.client_key = testpki_rsa_key(2);
    pki.other_key = testpki_rsa_key(3);
    if (!pki.ca_key || !pki.ra_key || !pki.client_key || !pki.other_key) {
        apr_pool_destroy(tmp);
        return NULL;
    }

    memset(&spec, 0, sizeof(spec));
    spec.subject = TESTPKI_CA_SUBJECT;
    spec.key = pki.ca_key;
    spec.serial = 1;
    spec.validity_set = 1;
    spec.not_before = -2L * 86400L;
    spec.not_after = 3650L * 86400L;
    spec.ku = KU_KEY_CERT_SIGN | KU_CRL_SIGN | KU_DIGITAL_SIGNATURE;
    spec.ca = 1;
    pki.ca_cert = testpki_cert(tmp, &spec);

    if (pki.ca_cert) {
        memset(&spec, 0, sizeof(spec));
        spec.subject = TESTPKI_RA_SUBJECT;
        spec.key = pki.ra_key;
        spec.issuer = pki.ca_cert;
        spec.issuer_key = pki.ca_key;
        spec.serial = 2;
        spec.ku = KU_DIGITAL_SIGNATURE | KU_KEY_ENCIPHERMENT;
        spec.eku = TESTPKI_EKU_CRA;
        pki.ra_cert = testpki_cert(tmp, &spec);
    }

    memset(&spec, 0, sizeof(spec));
    spec.subject = TESTPKI_CLIENT_SUBJECT;
    spec.key = pki.client_key;
    pki.client_cert = testpki_cert(tmp, &spec);

    memset(&spec, 0, sizeof(spec));
    spec.subject = TESTPKI_OTHER_SUBJECT;
    spec.key = pki.other_key;
    pki.other_cert = testpki_cert(tmp, &spec);

    /* keep one reference each beyond the scratch pool */
    if (pki.ca_cert) {
        X509_up_ref(pki.ca_cert);
    }
    if (pki.ra_cert) {
        X509_up_ref(pki.ra_cert);
    }
    if (pki.client_cert) {
        X509_up_ref(pki.client_cert);
    }
    if (pki.other_cert) {
        X509_up_ref(pki.other_cert);
    }
    apr_pool_destroy(tmp);
    pki_built = 1;
    if (!pki.ca_cert || !pki.ra_cert || !pki.client_cert
        || !pki.other_cert) {
        return NULL;
    }
    return &pki;
}

void testpki_cleanup(void)
{
    int i;

    X509_free(pki.ca_cert);
    X509_free(pki.ra_cert);
    X509_free(pki.client_cert);
    X509_free(pki.other_cert);
    memset(&pki, 0, sizeof(pki));
    pki_built = 0;
    for (i = 0; i < TESTPKI_NKEYS; i++) {
        EVP_PKEY_free(rsa_keys[i]);
        rsa_keys[i] = NULL;
    }
    EVP_PKEY_free(ec_key);
    ec_key = NULL;
}

/* Temporary directories */

static void remove_tree(const char *path)
{
    DIR *d = opendir(path);
    struct dirent *e;
    struct stat st;
    char *sub;
    size_t n;

    if (d == NULL) {
        return;
    }
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) {
            continue;
        }
        n = strlen(path) + strlen(e->d_name) + 2;
        sub = malloc(n);
        if (sub == NULL) {
            break;
        }
        snprintf(sub, n, "%s/%s", path, e->d_name);
        if (lstat(sub, &st) == 0 && S_ISDIR(st.st_mode)) {
            remove_tree(sub);
        }
        else {
            unlink(sub);
        }
        free(sub);
    }
    closedir(d);
    rmdir(path);
}

static apr_status_t remove_dir(void *d)
{
    remove_tree(d);
    return APR_SUCCESS;
}

const char *testpki_mkdtemp(apr_pool_t *p)
{
    const char *base = getenv("TMPDIR");
    char *tmpl;

    if (base == NULL || *base == '\0') {
        base = "/tmp";
    }
    tmpl = apr_pstrcat(p, base, "/scep-test-XXXXXX", NULL);
    if (mkdtemp(tmpl) == NULL) {
        tdiag("mkdtemp(%s): %s", tmpl, strerror(errno));
        return NULL;
    }
    apr_pool_cleanup_register(p, tmpl, remove_dir, apr_pool_cleanup_null);
    return tmpl;
}

const char *testpki_write_pem(apr_pool_t *p, const char *dir,
                              const char *name, X509 *const *certs,
                              int ncerts, EVP_PKEY *key)
{
    const char *path = apr_pstrcat(p, dir, "/", name, NULL);
    BIO *b = BIO_new_file(path, "w");
    int i, ok = 1;

    if (b == NULL) {
        testpki_diag_ossl(path);
        return NULL;
    }
    for (i = 0; i < ncerts && ok; i++) {
        ok = PEM_write_bio_X509(b, certs[i]);
    }
    if (ok && key) {
        ok = PEM_write_bio_PrivateKey(b, key, NULL, NULL, 0, NULL, NULL);
    }
    if (BIO_free(b) != 1) {
        ok = 0;
    }
    if (!ok) {
        testpki_diag_ossl(path);
        return NULL;
    }
    return path;
}

const char *testpki_write_key(apr_pool_t *p, const char *dir,
                              const char *name, EVP_PKEY *key,
                              testpki_keyform_e form)
{
    const char *path = apr_pstrcat(p, dir, "/", name, NULL);
    BIO *b = BIO_new_file(path, "w");
    static char pass[] = "secret";
    int ok = 0;

    if (b == NULL) {
        testpki_diag_ossl(path);
        return NULL;
    }
    switch (form) {
    case TESTPKI_KEY_PKCS8:
        ok = PEM_write_bio_PrivateKey(b, key, NULL, NULL, 0, NULL, NULL);
        break;
    case TESTPKI_KEY_TRADITIONAL:
        ok = PEM_write_bio_PrivateKey_traditional(b, key, NULL, NULL, 0,
                                                  NULL, NULL);
        break;
    case TESTPKI_KEY_ENCRYPTED:
        ok = PEM_write_bio_PKCS8PrivateKey(b, key, EVP_aes_128_cbc(), NULL,
                                           0, NULL, pass);
        break;
    }
    if (BIO_free(b) != 1) {
        ok = 0;
    }
    if (!ok) {
        testpki_diag_ossl(path);
        return NULL;
    }
    return path;
}

const char *testpki_write_file(apr_pool_t *p, const char *dir,
                               const char *name, const void *data,
                               apr_size_t len)
{
    const char *path = apr_pstrcat(p, dir, "/", name, NULL);
    FILE *f = fopen(path, "wb");
    int ok;

    if (f == NULL) {
        tdiag("fopen(%s): %s", path, strerror(errno));
        return NULL;
    }
    ok = (len == 0 || fwrite(data, 1, len, f) == len);
    if (fclose(f) != 0) {
        ok = 0;
    }
    return ok ? path : NULL;
}

const char *testpki_hex(apr_pool_t *p, const unsigned char *data,
                        apr_size_t len)
{
    static const char digits[] = "0123456789abcdef";
    char *s = apr_palloc(p, len * 2 + 1);
    apr_size_t i;

    for (i = 0; i < len; i++) {
        s[2 * i] = digits[data[i] >> 4];
        s[2 * i + 1] = digits[data[i] & 0x0f];
    }
    s[2 * len] = '\0';
    return s;
}
