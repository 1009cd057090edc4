/* Licensed under the Apache License, Version 2.0; see LICENSE. */

/*
 * Unit tests of the RA credentials (scep_ra.h): loading PEM files,
 * checking a certificate and key for a role, and picking certificates
 * from a store directory by NDES's rules.
 */

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <unistd.h>

#include <apr_general.h>
#include <apr_pools.h>
#include <apr_strings.h>
#include <apr_tables.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "scep_ra.h"
#include "testpki.h"
#include "tap.h"

static apr_pool_t *root;
static const testpki_t *pki;

#define DAY 86400L

/* ok() for an error string that must be set and name a path. */
static int is_error_naming(const char *err, const char *path,
                           const char *what)
{
    int pass = ok(err != NULL && strstr(err, path) != NULL,
                  "%s: error names the file", what);

    if (!pass) {
        diag("    error: %s", err ? err : "(NULL)");
    }
    return pass;
}

static int is_null_err(const char *err, const char *what)
{
    int pass = ok(err == NULL, "%s", what);

    if (!pass) {
        diag("    error: %s", err);
    }
    return pass;
}

static int has_suffix(const char *s, const char *suffix)
{
    size_t n = s ? strlen(s) : 0, m = strlen(suffix);

    return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* An RA-like certificate issued by the test CA. */
static X509 *ra_cert(apr_pool_t *p, const char *cn, EVP_PKEY *key, int ku,
                     const char *eku, long nb, long na)
{
    testpki_certspec_t spec;

    memset(&spec, 0, sizeof(spec));
    spec.subject = apr_pstrcat(p, "/O=mod_scep test/CN=", cn, NULL);
    spec.key = key;
    spec.issuer = pki->ca_cert;
    spec.issuer_key = pki->ca_key;
    spec.ku = ku;
    spec.eku = eku;
    spec.validity_set = 1;
    spec.not_before = nb;
    spec.not_after = na;
    return testpki_cert(p, &spec);
}

/* ------------------------------------------------------------------ */

static void test_load_certs(void)
{
    apr_pool_t *p;
    const char *dir, *path, *err;
    STACK_OF(X509) *certs;
    X509 *three[3];
    BIO *mem;

    apr_pool_create(&p, root);
    dir = testpki_mkdtemp(p);
    if (dir == NULL) {
        bail_out("no temporary directory");
    }

    path = apr_pstrcat(p, dir, "/missing.pem", NULL);
    certs = NULL;
    err = scep_ra_load_certs(p, path, &certs);
    is_error_naming(err, path, "load_certs: missing file");

    path = testpki_write_file(p, dir, "garbage.pem", "\x01\x02garbage\n",
                              10);
    err = scep_ra_load_certs(p, path, &certs);
    is_error_naming(err, path, "load_certs: garbage file");

    path = testpki_write_file(p, dir, "empty.pem", "", 0);
    err = scep_ra_load_certs(p, path, &certs);
    is_error_naming(err, path, "load_certs: empty file");

    path = testpki_write_key(p, dir, "keyonly.pem", pki->ra_key,
                             TESTPKI_KEY_PKCS8);
    err = scep_ra_load_certs(p, path, &certs);
    is_error_naming(err, path, "load_certs: file with only a key");

    three[0] = pki->ra_cert;
    three[1] = pki->ca_cert;
    three[2] = pki->client_cert;
    path = testpki_write_pem(p, dir, "three.pem", three, 3, NULL);
    certs = NULL;
    err = scep_ra_load_certs(p, path, &certs);
    if (is_null_err(err, "load_certs: file with three certificates")) {
        ok(certs && sk_X509_num(certs) == 3
           && X509_cmp(sk_X509_value(certs, 0), pki->ra_cert) == 0
           && X509_cmp(sk_X509_value(certs, 1), pki->ca_cert) == 0
           && X509_cmp(sk_X509_value(certs, 2), pki->client_cert) == 0,
           "load_certs: all three, in file order");
    }

    /* a chain file whose second certificate is cut short must not load
     * as a shorter chain */
    if (path) {
        FILE *f = fopen(path, "rb");
        char buf[16384];
        size_t n = f ? fread(buf, 1, sizeof(buf), f) : 0;
        const char *cut;

        if (f) {
            fclose(f);
        }
        /* keep the first certificate and the second without its end */
        cut = n ? strstr(buf + 1, "-----BEGIN CERTIFICATE-----") : NULL;
        if (cut) {
            cut = strstr(cut + 1, "-----BEGIN CERTIFICATE-----");
        }
        if (cut) {
            size_t keep = (size_t)(cut - buf) - 200;

            path = testpki_write_file(p, dir, "truncated.pem", buf, keep);
            certs = NULL;
            err = scep_ra_load_certs(p, path, &certs);
            is_error_naming(err, path,
                            "load_certs: second certificate truncated");
        }
        else {
            ok(0, "load_certs: could not make the truncated file");
        }
    }

    /* with a key in the same file and CRLF line ends (Windows exports) */
    mem = BIO_new(BIO_s_mem());
    if (mem && PEM_write_bio_X509(mem, pki->ra_cert)
        && PEM_write_bio_PrivateKey(mem, pki->ra_key, NULL, NULL, 0, NULL,
                                    NULL)) {
        char *data, *crlf;
        long n = BIO_get_mem_data(mem, &data), i, j = 0;

        crlf = apr_palloc(p, (apr_size_t)n * 2);
        for (i = 0; i < n; i++) {
            if (data[i] == '\n') {
                crlf[j++] = '\r';
            }
            crlf[j++] = data[i];
        }
        path = testpki_write_file(p, dir, "crlf.pem", crlf, (apr_size_t)j);
        certs = NULL;
        err = scep_ra_load_certs(p, path, &certs);
        if (is_null_err(err, "load_certs: certificate + key, CRLF lines")) {
            ok(certs && sk_X509_num(certs) == 1
               && X509_cmp(sk_X509_value(certs, 0), pki->ra_cert) == 0,
               "load_certs: the certificate of a cert+key file");
        }
    }
    BIO_free(mem);
    ERR_clear_error();
    apr_pool_destroy(p);
}

/*
 * An encrypted key must be refused, never prompted for: run the load in
 * a child without a controlling terminal and with a deadline.
 */
static void test_encrypted_key(const char *path)
{
    pid_t pid;
    int status = 0;

    fflush(stdout);
    pid = fork();
    if (pid == 0) {
        apr_pool_t *p;
        EVP_PKEY *key = NULL;
        const char *err;
        int fd = open("/dev/null", O_RDWR);

        setsid();
        if (fd >= 0) {
            dup2(fd, 0);
        }
        alarm(30);
        apr_pool_create(&p, NULL);
        err = scep_ra_load_key(p, path, &key);
        _exit(err != NULL && strstr(err, path) != NULL ? 0 : 1);
    }
    if (pid < 0 || waitpid(pid, &status, 0) != pid) {
        ok(0, "load_key: encrypted key (fork failed)");
        return;
    }
    if (WIFSIGNALED(status)) {
        ok(0, "load_key: encrypted key refused without prompting");
        diag("    the child died of signal %d (%s)", WTERMSIG(status),
             WTERMSIG(status) == SIGALRM ? "it waited for a pass phrase"
                                         : "crash");
        return;
    }
    ok(WIFEXITED(status) && WEXITSTATUS(status) == 0,
       "load_key: encrypted key refused without prompting, error names "
       "the file");
}

static void test_load_key(void)
{
    apr_pool_t *p;
    const char *dir, *path, *err;
    EVP_PKEY *key;
    X509 *one[1];

    apr_pool_create(&p, root);
    dir = testpki_mkdtemp(p);
    if (dir == NULL) {
        bail_out("no temporary directory");
    }

    path = apr_pstrcat(p, dir, "/missing.key", NULL);
    err = scep_ra_load_key(p, path, &key);
    is_error_naming(err, path, "load_key: missing file");

    path = testpki_write_file(p, dir, "garbage.key", "not a key\n", 10);
    err = scep_ra_load_key(p, path, &key);
    is_error_naming(err, path, "load_key: garbage file");

    one[0] = pki->ra_cert;
    path = testpki_write_pem(p, dir, "certonly.pem", one, 1, NULL);
    err = scep_ra_load_key(p, path, &key);
    is_error_naming(err, path, "load_key: file with only a certificate");

    path = testpki_write_key(p, dir, "pkcs8.key", pki->ra_key,
                             TESTPKI_KEY_PKCS8);
    key = NULL;
    err = scep_ra_load_key(p, path, &key);
    if (is_null_err(err, "load_key: PKCS#8 PEM")) {
        ok(key && EVP_PKEY_eq(key, pki->ra_key) == 1,
           "load_key: PKCS#8 key is the one written");
    }

    path = testpki_write_key(p, dir, "rsa.key", pki->ra_key,
                             TESTPKI_KEY_TRADITIONAL);
    key = NULL;
    err = scep_ra_load_key(p, path, &key);
    if (is_null_err(err, "load_key: traditional RSA PEM")) {
        ok(key && EVP_PKEY_eq(key, pki->ra_key) == 1,
           "load_key: traditional key is the one written");
    }

    path = testpki_write_key(p, dir, "ec.key", testpki_ec_key(),
                             TESTPKI_KEY_PKCS8);
    key = NULL;
    err = scep_ra_load_key(p, path, &key);
    if (is_null_err(err, "load_key: EC key")) {
        ok(key && EVP_PKEY_eq(key, testpki_ec_key()) == 1,
           "load_key: EC key is the one written");
    }

    path = testpki_write_pem(p, dir, "both.pem", one, 1, pki->ra_key);
    key = NULL;
    err = scep_ra_load_key(p, path, &key);
    if (is_null_err(err, "load_key: certificate then key in one file")) {
        ok(key && EVP_PKEY_eq(key, pki->ra_key) == 1,
           "load_key: the key of a cert+key file");
    }

    path = testpki_write_key(p, dir, "encrypted.key", pki->ra_key,
                             TESTPKI_KEY_ENCRYPTED);
    if (path) {
        test_encrypted_key(path);
    }
    ERR_clear_error();
    apr_pool_destroy(p);
}

static void test_check(void)
{
    apr_pool_t *p;
    X509 *x;
    const char *err;
    long left;

    apr_pool_create(&p, root);

    is_null_err(scep_ra_check(p, pki->ra_cert, pki->ra_key, SCEP_RA_SIGN),
                "check: RA cert for signing");
    is_null_err(scep_ra_check(p, pki->ra_cert, pki->ra_key,
                              SCEP_RA_ENCRYPT),
                "check: RA cert for encryption");

    err = scep_ra_check(p, pki->ra_cert, pki->other_key, SCEP_RA_SIGN);
    ok(err != NULL, "check: another RSA key is refused");
    err = scep_ra_check(p, pki->ra_cert, testpki_ec_key(), SCEP_RA_SIGN);
    ok(err != NULL, "check: an EC key for an RSA certificate is refused");

    x = ra_cert(p, "sign only", pki->ra_key, KU_DIGITAL_SIGNATURE,
                TESTPKI_EKU_CRA, -DAY, DAY);
    is_null_err(scep_ra_check(p, x, pki->ra_key, SCEP_RA_SIGN),
                "check: digitalSignature cert for signing");
    ok(scep_ra_check(p, x, pki->ra_key, SCEP_RA_ENCRYPT) != NULL,
       "check: digitalSignature-only cert refused for encryption");

    x = ra_cert(p, "encrypt only", pki->ra_key, KU_KEY_ENCIPHERMENT,
                TESTPKI_EKU_CRA, -DAY, DAY);
    is_null_err(scep_ra_check(p, x, pki->ra_key, SCEP_RA_ENCRYPT),
                "check: keyEncipherment cert for encryption");
    ok(scep_ra_check(p, x, pki->ra_key, SCEP_RA_SIGN) != NULL,
       "check: keyEncipherment-only cert refused for signing");

    x = ra_cert(p, "expired", pki->ra_key,
                KU_DIGITAL_SIGNATURE | KU_KEY_ENCIPHERMENT, TESTPKI_EKU_CRA,
                -10 * DAY, -3600);
    ok(scep_ra_check(p, x, pki->ra_key, SCEP_RA_SIGN) != NULL,
       "check: expired cert refused");
    left = scep_ra_seconds_left(x);
    ok(left <= -3600 + 5 && left >= -3600 - 120,
       "seconds_left: expired an hour ago (%ld)", left);

    x = ra_cert(p, "not yet", pki->ra_key,
                KU_DIGITAL_SIGNATURE | KU_KEY_ENCIPHERMENT, TESTPKI_EKU_CRA,
                DAY, 10 * DAY);
    ok(scep_ra_check(p, x, pki->ra_key, SCEP_RA_SIGN) != NULL,
       "check: not yet valid cert refused");

    x = ra_cert(p, "one day", pki->ra_key, KU_DIGITAL_SIGNATURE,
                TESTPKI_EKU_CRA, -DAY, DAY);
    left = scep_ra_seconds_left(x);
    ok(left <= DAY + 5 && left >= DAY - 120,
       "seconds_left: a day left (%ld)", left);

    err = scep_ra_subject(p, pki->ra_cert);
    ok(err && strstr(err, "CN=mod_scep Test RA")
       && strstr(err, "O=mod_scep test"),
       "subject: '%s'", err ? err : "(NULL)");
    ok(err && strncmp(err, "CN=", 3) == 0, "subject: CN first");
    ERR_clear_error();
    apr_pool_destroy(p);
}

/* ------------------------------------------------------------------ */
/* Stores                                                              */

static const scep_ra_cred_t *find_cred(apr_array_header_t *creds,
                                       const char *suffix)
{
    int i;

    for (i = 0; i < creds->nelts; i++) {
        const scep_ra_cred_t *c = &APR_ARRAY_IDX(creds, i, scep_ra_cred_t);

        if (has_suffix(c->file, suffix)) {
            return c;
        }
    }
    return NULL;
}

static void write_cred(apr_pool_t *p, const char *dir, const char *name,
                       X509 *x, EVP_PKEY *key)
{
    if (testpki_write_pem(p, dir, name, &x, 1, key) == NULL) {
        bail_out("cannot write %s", name);
    }
}

static void test_store_rules(void)
{
    apr_pool_t *p;
    const char *dir, *err, *why;
    apr_array_header_t *creds = NULL;
    const scep_ra_cred_t *sign, *enc;
    STACK_OF(X509) *cachain;
    X509 *x, *foreign_ca;
    EVP_PKEY *k1 = pki->ra_key, *knew = testpki_rsa_key(4);
    EVP_PKEY *kforeign = testpki_rsa_key(5);
    const int both = KU_DIGITAL_SIGNATURE | KU_KEY_ENCIPHERMENT;
    testpki_certspec_t spec;

    apr_pool_create(&p, root);
    dir = testpki_mkdtemp(p);
    cachain = testpki_stack(p, pki->ca_cert, NULL);
    if (dir == NULL || knew == NULL || kforeign == NULL) {
        bail_out("store setup");
    }

    /* the good ones: old in one file, new with a separate .key file */
    write_cred(p, dir, "ra-old.pem",
               ra_cert(p, "RA old", k1, both, TESTPKI_EKU_CRA, -10 * DAY,
                       365 * DAY), k1);
    x = ra_cert(p, "RA new", knew, both, TESTPKI_EKU_CRA, -DAY, 365 * DAY);
    write_cred(p, dir, "ra-new.crt", x, NULL);
    testpki_write_key(p, dir, "ra-new.key", knew, TESTPKI_KEY_PKCS8);

    /* newer ones that must lose */
    write_cred(p, dir, "noeku.pem",
               ra_cert(p, "no EKU", k1, both, NULL, -3600, 365 * DAY), k1);
    write_cred(p, dir, "servereku.pem",
               ra_cert(p, "serverAuth EKU", k1, both, "serverAuth", -3600,
                       365 * DAY), k1);
    write_cred(p, dir, "nokey.pem",
               ra_cert(p, "no key", k1, both, TESTPKI_EKU_CRA, -3600,
                       365 * DAY), NULL);
    write_cred(p, dir, "expired.pem",
               ra_cert(p, "expired", k1, both, TESTPKI_EKU_CRA, -1800, -60),
               k1);
    write_cred(p, dir, "notyet.pem",
               ra_cert(p, "not yet", k1, both, TESTPKI_EKU_CRA, DAY,
                       365 * DAY), k1);

    memset(&spec, 0, sizeof(spec));
    spec.subject = "/O=elsewhere/CN=Foreign CA";
    spec.key = kforeign;
    spec.ca = 1;
    spec.ku = KU_KEY_CERT_SIGN | KU_CRL_SIGN;
    foreign_ca = testpki_cert(p, &spec);
    memset(&spec, 0, sizeof(spec));
    spec.subject = "/O=mod_scep test/CN=foreign RA";
    spec.key = k1;
    spec.issuer = foreign_ca;
    spec.issuer_key = kforeign;
    spec.ku = both;
    spec.eku = TESTPKI_EKU_CRA;
    spec.validity_set = 1;
    spec.not_before = -3600;
    spec.not_after = 365 * DAY;
    write_cred(p, dir, "foreign.pem", testpki_cert(p, &spec), k1);

    /* the CA's name, another key: only a signature check tells */
    memset(&spec, 0, sizeof(spec));
    spec.subject = TESTPKI_CA_SUBJECT;
    spec.key = kforeign;
    spec.ca = 1;
    spec.ku = KU_KEY_CERT_SIGN | KU_CRL_SIGN;
    foreign_ca = testpki_cert(p, &spec);
    spec.subject = "/O=mod_scep test/CN=impostor RA";
    spec.key = k1;
    spec.issuer = foreign_ca;
    spec.issuer_key = kforeign;
    spec.ca = 0;
    spec.ku = both;
    spec.eku = TESTPKI_EKU_CRA;
    spec.validity_set = 1;
    spec.not_before = -3600;
    spec.not_after = 365 * DAY;
    write_cred(p, dir, "impostor.pem", testpki_cert(p, &spec), k1);

    /* not certificate files at all */
    testpki_write_file(p, dir, "README.txt", "hello\n", 6);
    testpki_write_key(p, dir, "lonely.key", k1, TESTPKI_KEY_PKCS8);

    err = scep_ra_store_read(p, dir, &creds);
    if (!is_null_err(err, "store_read: mixed store") || creds == NULL) {
        apr_pool_destroy(p);
        return;
    }
    is_int(creds->nelts, 8, "store_read: every certificate with a key");
    ok(find_cred(creds, "/nokey.pem") == NULL,
       "store_read: certificate without a key skipped");
    ok(find_cred(creds, "/ra-old.pem") && find_cred(creds, "/ra-new.crt"),
       "store_read: key in the same file and in NAME.key");
    enc = find_cred(creds, "/ra-new.crt");
    ok(enc && enc->key && EVP_PKEY_eq(enc->key, knew) == 1,
       "store_read: ra-new.crt has the key of ra-new.key");

    why = NULL;
    sign = scep_ra_store_pick(p, creds, cachain, SCEP_RA_SIGN, &why);
    ok(sign && has_suffix(sign->file, "/ra-new.crt"),
       "store_pick: newest qualifying for signing (%s)",
       sign ? sign->file : why);
    why = NULL;
    enc = scep_ra_store_pick(p, creds, cachain, SCEP_RA_ENCRYPT, &why);
    ok(enc && has_suffix(enc->file, "/ra-new.crt"),
       "store_pick: newest qualifying for encryption (%s)",
       enc ? enc->file : why);
    ok(sign && enc && X509_cmp(sign->cert, enc->cert) == 0,
       "store_pick: the same certificate serves both roles");
    ok(sign && EVP_PKEY_eq(sign->key, knew) == 1,
       "store_pick: the picked credential carries its key");
    ERR_clear_error();
    apr_pool_destroy(p);
}

static void test_store_roles(void)
{
    apr_pool_t *p;
    const char *dir, *err, *why;
    apr_array_header_t *creds = NULL;
    const scep_ra_cred_t *c;
    STACK_OF(X509) *cachain;
    EVP_PKEY *k1 = pki->ra_key, *k2 = testpki_rsa_key(4);

    apr_pool_create(&p, root);
    dir = testpki_mkdtemp(p);
    cachain = testpki_stack(p, pki->ca_cert, NULL);

    /* NDES's usual pair: a newer signing cert, an older encryption cert */
    write_cred(p, dir, "sign.pem",
               ra_cert(p, "RA sign", k1, KU_DIGITAL_SIGNATURE,
                       TESTPKI_EKU_CRA, -3600, 365 * DAY), k1);
    write_cred(p, dir, "enc.cer",
               ra_cert(p, "RA enc", k2, KU_KEY_ENCIPHERMENT,
                       TESTPKI_EKU_CRA, -2 * DAY, 365 * DAY), k2);
    err = scep_ra_store_read(p, dir, &creds);
    if (is_null_err(err, "store_read: sign + enc store") && creds) {
        c = scep_ra_store_pick(p, creds, cachain, SCEP_RA_SIGN, &why);
        ok(c && has_suffix(c->file, "/sign.pem"),
           "store_pick: digitalSignature cert for signing");
        c = scep_ra_store_pick(p, creds, cachain, SCEP_RA_ENCRYPT, &why);
        ok(c && has_suffix(c->file, "/enc.cer"),
           "store_pick: keyEncipherment cert (.cer) for encryption");
    }
    apr_pool_destroy(p);
}

static void test_store_intermediate(void)
{
    apr_pool_t *p;
    const char *dir, *err, *why = NULL;
    apr_array_header_t *creds = NULL;
    const scep_ra_cred_t *c;
    X509 *sub, *ra;
    EVP_PKEY *ksub = testpki_rsa_key(5), *k1 = pki->ra_key;
    testpki_certspec_t spec;

    apr_pool_create(&p, root);
    dir = testpki_mkdtemp(p);

    memset(&spec, 0, sizeof(spec));
    spec.subject = "/O=mod_scep test/CN=Issuing CA";
    spec.key = ksub;
    spec.issuer = pki->ca_cert;
    spec.issuer_key = pki->ca_key;
    spec.ca = 1;
    spec.ku = KU_KEY_CERT_SIGN | KU_CRL_SIGN;
    sub = testpki_cert(p, &spec);
    memset(&spec, 0, sizeof(spec));
    spec.subject = "/O=mod_scep test/CN=RA under the issuing CA";
    spec.key = k1;
    spec.issuer = sub;
    spec.issuer_key = ksub;
    spec.ku = KU_DIGITAL_SIGNATURE | KU_KEY_ENCIPHERMENT;
    spec.eku = TESTPKI_EKU_CRA;
    ra = testpki_cert(p, &spec);
    write_cred(p, dir, "ra.pem", ra, k1);
    err = scep_ra_store_read(p, dir, &creds);
    if (is_null_err(err, "store_read: RA under an issuing CA") && creds) {
        c = scep_ra_store_pick(p, creds,
                               testpki_stack(p, sub, pki->ca_cert, NULL),
                               SCEP_RA_SIGN, &why);
        ok(c && X509_cmp(c->cert, ra) == 0,
           "store_pick: chain issuing CA -> root accepted (%s)",
           c ? "picked" : why);
        why = NULL;
        c = scep_ra_store_pick(p, creds, testpki_stack(p, pki->ca_cert,
                                                       NULL),
                               SCEP_RA_SIGN, &why);
        ok(c == NULL, "store_pick: issued by another CA than the "
           "configured one: refused");
    }
    ERR_clear_error();
    apr_pool_destroy(p);
}

static void test_store_none(void)
{
    apr_pool_t *p;
    const char *dir, *err, *why, *missing;
    apr_array_header_t *creds = NULL;
    const scep_ra_cred_t *c;
    STACK_OF(X509) *cachain;
    EVP_PKEY *k1 = pki->ra_key;
    const int both = KU_DIGITAL_SIGNATURE | KU_KEY_ENCIPHERMENT;

    apr_pool_create(&p, root);
    dir = testpki_mkdtemp(p);
    cachain = testpki_stack(p, pki->ca_cert, NULL);

    write_cred(p, dir, "noeku.pem",
               ra_cert(p, "no EKU", k1, both, NULL, -3600, 365 * DAY), k1);
    write_cred(p, dir, "expired.pem",
               ra_cert(p, "expired", k1, both, TESTPKI_EKU_CRA, -DAY, -60),
               k1);
    write_cred(p, dir, "signonly.pem",
               ra_cert(p, "sign only", k1, KU_DIGITAL_SIGNATURE,
                       TESTPKI_EKU_CRA, -DAY, 365 * DAY), k1);
    err = scep_ra_store_read(p, dir, &creds);
    if (is_null_err(err, "store_read: store with nothing usable") && creds) {
        why = NULL;
        c = scep_ra_store_pick(p, creds, cachain, SCEP_RA_ENCRYPT, &why);
        ok(c == NULL, "store_pick: none qualifies -> NULL");
        ok(why && *why, "store_pick: says why (%s)", why ? why : "NULL");
        ok(why && strstr(why, "noeku.pem") && strstr(why, "expired.pem")
           && strstr(why, "signonly.pem"),
           "store_pick: why names each rejected file");
        c = scep_ra_store_pick(p, creds, cachain, SCEP_RA_SIGN, &why);
        ok(c && has_suffix(c->file, "/signonly.pem"),
           "store_pick: the same store has a signing cert");
    }

    /* an empty store */
    dir = testpki_mkdtemp(p);
    creds = NULL;
    err = scep_ra_store_read(p, dir, &creds);
    if (is_null_err(err, "store_read: empty directory") && creds) {
        is_int(creds->nelts, 0, "store_read: empty directory, no creds");
        why = NULL;
        c = scep_ra_store_pick(p, creds, cachain, SCEP_RA_SIGN, &why);
        ok(c == NULL && why && *why,
           "store_pick: empty store -> NULL with a reason");
    }

    missing = apr_pstrcat(p, dir, "/no-such-dir", NULL);
    err = scep_ra_store_read(p, missing, &creds);
    is_error_naming(err, missing, "store_read: missing directory");
    ERR_clear_error();
    apr_pool_destroy(p);
}

int main(void)
{
    int rc;

    apr_initialize();
    apr_pool_create(&root, NULL);
    pki = testpki_get();
    if (pki == NULL) {
        bail_out("cannot build the test PKI");
    }

    test_load_certs();
    test_load_key();
    test_check();
    test_store_rules();
    test_store_roles();
    test_store_intermediate();
    test_store_none();

    rc = done_testing();
    testpki_cleanup();
    apr_pool_destroy(root);
    apr_terminate();
    return rc;
}
