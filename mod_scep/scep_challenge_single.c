/* Licensed under the Apache License, Version 2.0; see LICENSE. */

/*
 * Challenge provider "single": NDES's UseSinglePassword.  One master
 * password per service that never expires and serves any number of
 * requests.  It is made on first use and kept in SCEPSinglePasswordFile
 * as a CMS EnvelopedData to the RA encryption certificate, so the key
 * that opens it is the RA key, never a secret in the configuration.
 */

#include <unistd.h>
#include <errno.h>

#include <apr_file_io.h>
#include <apr_strings.h>

#include <httpd.h>
#include <http_config.h>
#include <http_log.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "mod_scep.h"
#include "scep_config.h"
#include "scep_log.h"
#include "scep_msg.h"
#include "scep_pwcache.h"

APLOG_USE_MODULE(scep);

static apr_status_t read_file(apr_pool_t *p, const char *path,
                              scep_bytes_t *out)
{
    apr_finfo_t fi;
    apr_file_t *f;
    apr_size_t n;
    apr_status_t rv;
    unsigned char *buf;

    rv = apr_file_open(&f, path, APR_FOPEN_READ, 0, p);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    rv = apr_file_info_get(&fi, APR_FINFO_SIZE, f);
    if (rv == APR_SUCCESS && (fi.size <= 0 || fi.size > 65536)) {
        rv = APR_EINVAL;
    }
    if (rv == APR_SUCCESS) {
        n = (apr_size_t)fi.size;
        buf = apr_palloc(p, n);
        rv = apr_file_read_full(f, buf, n, &n);
        out->data = buf;
        out->len = n;
    }
    apr_file_close(f);
    return rv;
}

/* Make the password file if there is none; a concurrent maker wins. */
static apr_status_t create_file(request_rec *r, const char *path,
                                const scep_challenge_service_t *svc,
                                X509 *cert)
{
    static const char hex[] = "0123456789ABCDEF";
    unsigned char rnd[SCEP_PW_MAX_BYTES];
    char pw[2 * SCEP_PW_MAX_BYTES + 1];
    const char *tmp = apr_psprintf(r->pool, "%s.new.%" APR_PID_T_FMT ".%ld",
                                   path, getpid(), (long)apr_time_now());
    unsigned char *der;
    apr_size_t len, i, n;
    apr_file_t *f;
    apr_status_t rv;

    if (RAND_bytes(rnd, (int)svc->length) != 1) {
        return APR_EGENERAL;
    }
    for (i = 0; i < svc->length; i++) {
        pw[2 * i] = hex[rnd[i] >> 4];
        pw[2 * i + 1] = hex[rnd[i] & 15];
    }
    OPENSSL_cleanse(rnd, sizeof(rnd));
    if (scep_msg_envelope(r->pool, (unsigned char *)pw, 2 * svc->length,
                          cert, EVP_aes_256_cbc(), &der, &len) != SCEP_OK) {
        OPENSSL_cleanse(pw, sizeof(pw));
        return APR_EGENERAL;
    }
    OPENSSL_cleanse(pw, sizeof(pw));
    rv = apr_file_open(&f, tmp, APR_FOPEN_WRITE | APR_FOPEN_CREATE
                                    | APR_FOPEN_EXCL,
                       APR_FPROT_UREAD | APR_FPROT_UWRITE, r->pool);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    rv = apr_file_write_full(f, der, len, &n);
    if (rv == APR_SUCCESS) {
        rv = apr_file_sync(f);
    }
    apr_file_close(f);
    /* link() fails if the file exists: the first maker's password stays. */
    if (rv == APR_SUCCESS && link(tmp, path) != 0 && errno != EEXIST) {
        rv = APR_FROM_OS_ERROR(errno);
    }
    apr_file_remove(tmp, r->pool);
    return rv;
}

/* The service's master password, made on first use. */
static const char *master_password(request_rec *r,
                                   const scep_challenge_service_t *svc,
                                   apr_size_t *len)
{
    const scep_dir_conf_t *c =
        ap_get_module_config(r->per_dir_config, &scep_module);
    const char *path = c->single_password_file;
    scep_ra_ids_t ra;
    scep_bytes_t der, pw;
    apr_status_t rv;

    if (path == NULL || !scep_conf_ra(c, &ra)) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, SCEPLOGNO(00040)
                      "SCEPChallengeProvider single needs "
                      "SCEPSinglePasswordFile and RA certificates");
        return NULL;
    }
    rv = read_file(r->pool, path, &der);
    if (APR_STATUS_IS_ENOENT(rv)) {
        rv = create_file(r, path, svc, ra.enc_cert);
        if (rv == APR_SUCCESS) {
            ap_log_rerror(APLOG_MARK, APLOG_NOTICE, 0, r, SCEPLOGNO(00041)
                          "single password created in %s", path);
            rv = read_file(r->pool, path, &der);
        }
    }
    if (rv != APR_SUCCESS) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, rv, r, SCEPLOGNO(00042)
                      "cannot read or create the single password file %s "
                      "(the httpd user must be able to write its directory)",
                      path);
        return NULL;
    }
    if (scep_msg_open_envelope(r->pool, der.data, der.len, ra.enc_key,
                               ra.enc_cert, &pw) != SCEP_OK
        || pw.len == 0 || pw.len > 2 * SCEP_PW_MAX_BYTES) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, SCEPLOGNO(00043)
                      "the single password file %s cannot be opened with "
                      "the RA encryption key: %s", path,
                      scep_msg_ossl_errors(r->pool));
        return NULL;
    }
    *len = pw.len;
    return apr_pstrmemdup(r->pool, (const char *)pw.data, pw.len);
}

static scep_challenge_status_e single_generate(
    request_rec *r, const scep_challenge_service_t *svc,
    const char **challenge, apr_time_t *expires)
{
    apr_size_t len;
    const char *pw = master_password(r, svc, &len);

    if (pw == NULL) {
        return SCEP_CHALLENGE_ERROR;
    }
    *challenge = pw;
    *expires = 0;  /* never */
    return SCEP_CHALLENGE_OK;
}

static scep_challenge_status_e single_verify(
    request_rec *r, const scep_challenge_service_t *svc,
    const char *challenge, apr_size_t len, int key_usage, void **token,
    const char **admin)
{
    char typed[2 * SCEP_PW_MAX_BYTES];
    apr_size_t mlen, i;
    const char *pw = master_password(r, svc, &mlen);

    *token = NULL;
    if (admin) {
        *admin = "(single password)";
    }
    if (pw == NULL) {
        return SCEP_CHALLENGE_ERROR;
    }
    if (len != mlen) {
        return SCEP_CHALLENGE_REJECT;
    }
    for (i = 0; i < len; i++) {
        char ch = challenge[i];
        typed[i] = (ch >= 'a' && ch <= 'z') ? (char)(ch - 32) : ch;
    }
    return CRYPTO_memcmp(typed, pw, len) == 0 ? SCEP_CHALLENGE_OK
                                              : SCEP_CHALLENGE_REJECT;
}

static scep_challenge_status_e single_commit(request_rec *r, void *token)
{
    return SCEP_CHALLENGE_OK;  /* never spent */
}

static void single_notify(request_rec *r, void *token, int committed)
{
}

const scep_challenge_provider_t scep_challenge_single = {
    "single",
    NULL,
    NULL,
    single_generate,
    single_verify,
    single_commit,
    single_notify
};
