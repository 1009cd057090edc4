/* Licensed under the Apache License, Version 2.0; see LICENSE. */

/*
 * The embedded CA's CRL (RFC 5280): made of the database's revoked
 * certificates, kept in the database so that every process serves the
 * same one, and signed again only when it changed or half its validity
 * has passed.  GetCRL and SetHandler scep-crl serve it.
 */

#include <apr_dbd.h>
#include <apr_strings.h>
#include <apr_thread_mutex.h>

#include <httpd.h>
#include <http_config.h>
#include <http_log.h>

#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "mod_scep.h"
#include "scep_ca.h"
#include "scep_ca_db.h"
#include "scep_ca_local.h"
#include "scep_config.h"
#include "scep_log.h"
#include "scep_pool.h"

APLOG_USE_MODULE(scep);

SCEP_POOL_FREE(X509_CRL, X509_CRL_free)

static const char *const crl_reasons[] = {
    "unspecified", "keyCompromise", "CACompromise", "affiliationChanged",
    "superseded", "cessationOfOperation", "certificateHold", NULL
};

static int crl_reason(const char *name)
{
    int i;

    for (i = 0; crl_reasons[i]; i++) {
        if (!ap_cstr_casecmp(name, crl_reasons[i])) {
            return i;
        }
    }
    return -1;
}

int scep_ca_local_reason_ok(const char *reason)
{
    return crl_reason(reason) >= 0;
}

/* One revoked row as a CRL entry; 0 when it cannot be read. */
static int add_revoked(X509_CRL *crl, const char *sn, const char *when,
                       const char *why)
{
    X509_REVOKED *rev = X509_REVOKED_new();
    BIGNUM *bn = NULL;
    ASN1_INTEGER *ai = NULL;
    ASN1_TIME *t = ASN1_TIME_new();
    int reason = why ? crl_reason(why) : -1, ok = 0;

    if (rev && t && BN_hex2bn(&bn, sn) && (ai = BN_to_ASN1_INTEGER(bn, NULL))
        && X509_REVOKED_set_serialNumber(rev, ai)
        && ASN1_TIME_set_string_X509(t, when)
        && X509_REVOKED_set_revocationDate(rev, t)) {
        if (reason > 0) {
            ASN1_ENUMERATED *e = ASN1_ENUMERATED_new();
            if (e && ASN1_ENUMERATED_set(e, reason)) {
                X509_REVOKED_add1_ext_i2d(rev, NID_crl_reason, e, 0, 0);
            }
            ASN1_ENUMERATED_free(e);
        }
        ok = X509_CRL_add0_revoked(crl, rev);
        if (ok) {
            rev = NULL;
        }
    }
    X509_REVOKED_free(rev);
    ASN1_INTEGER_free(ai);
    ASN1_TIME_free(t);
    BN_free(bn);
    return ok;
}

/* A CRL of the revoked rows, signed now (the mutex held), with the
 * authority key identifier and the CRL number RFC 5280 5.2 asks for. */
static X509_CRL *make_crl(request_rec *r, const scep_dir_conf_t *c,
                          scep_db_t *db, apr_int64_t serial)
{
    X509 *ca = scep_db_ca_cert(c);
    X509_CRL *crl = X509_CRL_new();
    ASN1_TIME *now = X509_time_adj_ex(NULL, 0, 0, NULL);
    ASN1_TIME *next = X509_time_adj_ex(NULL, c->crl_days > 0 ? c->crl_days
                                                             : 7, 0, NULL);
    ASN1_INTEGER *number = ASN1_INTEGER_new();
    const ASN1_OCTET_STRING *skid = X509_get0_subject_key_id(ca);
    AUTHORITY_KEYID *akid = NULL;
    apr_dbd_results_t *res = NULL;
    apr_dbd_row_t *row = NULL;
    int ok;

    ok = crl && now && next && number
         && X509_CRL_set_version(crl, 1)
         && X509_CRL_set_issuer_name(crl, X509_get_subject_name(ca))
         && X509_CRL_set1_lastUpdate(crl, now)
         && X509_CRL_set1_nextUpdate(crl, next)
         && ASN1_INTEGER_set_int64(number, serial)
         && X509_CRL_add1_ext_i2d(crl, NID_crl_number, number, 0, 0);
    if (ok && skid) {
        akid = AUTHORITY_KEYID_new();
        ok = akid && (akid->keyid = ASN1_OCTET_STRING_dup(skid)) != NULL
             && X509_CRL_add1_ext_i2d(crl, NID_authority_key_identifier,
                                      akid, 0, 0);
    }
    if (ok && apr_dbd_pvselect(db->driver, r->pool, db->handle, &res,
                               db->st[ST_REVOKED], 0) != 0) {
        ok = 0;
    }
    while (ok && apr_dbd_get_row(db->driver, r->pool, res, &row, -1) == 0) {
        const char *sn = apr_dbd_get_entry(db->driver, row, 0);
        const char *when = apr_dbd_get_entry(db->driver, row, 1);
        if (!add_revoked(crl, sn, when,
                         apr_dbd_get_entry(db->driver, row, 2))) {
            ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r, SCEPLOGNO(00113)
                          "local CA: serial %s is revoked at '%s', not a "
                          "YYYYMMDDHHMMSSZ time: left out of the CRL", sn,
                          when);
        }
    }
    AUTHORITY_KEYID_free(akid);
    ASN1_INTEGER_free(number);
    ASN1_TIME_free(now);
    ASN1_TIME_free(next);
    if (!ok || !X509_CRL_sort(crl)
        || !X509_CRL_sign(crl, c->localca_key->key, scep_conf_hash(c))) {
        X509_CRL_free(crl);
        return NULL;
    }
    return crl;
}

/* The CRL in scep_crl, while it lists what is revoked and is less than
 * half its validity old (the mutex held; reads only); NULL when a new one
 * is due.  Parsed once per process. */
static X509_CRL *stored_crl(request_rec *r, const scep_dir_conf_t *c,
                            scep_db_t *db, const char **state,
                            const char **kind)
{
    apr_time_t half = (c->crl_days > 0 ? c->crl_days : 7) * 43200;
    const char *cols[4], *key;
    X509_CRL *crl;
    BIO *bio;

    if (scep_db_row(r, db, ST_CRL_STATE, cols, 2, NULL) != 1) {
        return NULL;
    }
    *state = apr_pstrcat(r->pool, cols[0], "/", cols[1], NULL);
    /* Locations of one CA may differ in validity and hash. */
    *kind = apr_psprintf(r->pool, "%d/%s", c->crl_days,
                         EVP_MD_get0_name(scep_conf_hash(c)));
    if (scep_db_row(r, db, ST_CRL_GET, cols, 4, *kind, NULL) != 1
        || strcmp(cols[0], *state)
        || scep_db_now() - apr_atoi64(cols[1]) >= half) {
        return NULL;
    }
    key = apr_pstrcat(r->pool, *kind, "/", cols[1], "/", cols[2], NULL);
    if (db->crl && !strcmp(db->crl_key, key)) {
        return db->crl;
    }
    bio = BIO_new_mem_buf(cols[3], -1);
    crl = bio ? PEM_read_bio_X509_CRL(bio, NULL, NULL, NULL) : NULL;
    BIO_free(bio);
    if (crl) {
        X509_CRL_free(db->crl);
        db->crl = crl;
        apr_cpystrn(db->crl_key, key, sizeof(db->crl_key));
    }
    return crl;
}

/* A new CRL put in scep_crl (the mutex held, in a database transaction,
 * so one process at a time), numbered after every earlier one (at least
 * the time, so a lost table does not restart at 1); or the one another
 * process has just put there. */
static X509_CRL *new_crl(request_rec *r, const scep_dir_conf_t *c,
                         scep_db_t *db)
{
    apr_time_t now = scep_db_now();
    const char *cols[1], *state = NULL, *kind = NULL, *pem;
    apr_int64_t number;
    X509_CRL *crl = stored_crl(r, c, db, &state, &kind);
    BIO *bio;

    if (crl || state == NULL
        || scep_db_row(r, db, ST_CRL_NUMBER, cols, 1, NULL) != 1) {
        return crl;
    }
    number = apr_atoi64(cols[0]) + 1;
    if (number < now) {
        number = now;
    }
    crl = make_crl(r, c, db, number);
    bio = crl ? BIO_new(BIO_s_mem()) : NULL;
    if (bio == NULL || !PEM_write_bio_X509_CRL(bio, crl)
        || BIO_write(bio, "", 1) != 1 || BIO_get_mem_data(bio, &pem) <= 0
        || scep_db_exec(r, db, ST_CRL_PUT, kind, state,
                        scep_db_secs(r->pool, now),
                        apr_psprintf(r->pool, "%" APR_INT64_T_FMT, number),
                        apr_pstrdup(r->pool, pem), NULL) != 1) {
        BIO_free(bio);
        X509_CRL_free(crl);
        return NULL;
    }
    BIO_free(bio);
    X509_CRL_free(db->crl);
    db->crl = crl;
    apr_snprintf(db->crl_key, sizeof(db->crl_key), "%s/%" APR_TIME_T_FMT
                 "/%" APR_INT64_T_FMT, kind, now, number);
    return crl;
}

apr_status_t scep_ca_local_crl(request_rec *r, const scep_dir_conf_t *c,
                               X509_CRL **out)
{
    scep_db_t *db = c->localca_key
                        ? scep_db_connect(r, scep_ca_local_db(r->pool, c))
                        : NULL;
    apr_dbd_transaction_t *trans = NULL;
    const char *state = NULL, *kind = NULL;
    X509_CRL *crl;

    if (db == NULL) {
        return APR_EGENERAL;
    }
    apr_thread_mutex_lock(db->mutex);
    /* Most of the time the stored CRL is current: no write lock then. */
    crl = stored_crl(r, c, db, &state, &kind);
    if (crl == NULL
        && apr_dbd_transaction_start(db->driver, r->pool, db->handle, &trans)
               == 0) {
        crl = new_crl(r, c, db);
        if (crl == NULL) {
            apr_dbd_transaction_mode_set(db->driver, trans,
                                         APR_DBD_TRANSACTION_ROLLBACK);
        }
        apr_dbd_transaction_end(db->driver, r->pool, trans);
    }
    if (crl) {
        X509_CRL_up_ref(crl);
        *out = own_X509_CRL(r->pool, crl);
    }
    apr_thread_mutex_unlock(db->mutex);
    return crl ? APR_SUCCESS : APR_EGENERAL;
}
