/* Licensed under the Apache License, Version 2.0; see LICENSE. */

/*
 * Submission provider "local": the embedded CA.  Certificates are made by
 * scep_ca.c; every one is recorded in the CA's database (apr_dbd, SQLite
 * by default) before the reply goes out, and a request resent with the
 * same transactionID and key gets the recorded certificate back
 * (RFC 8894 3.3.1), never a second one.
 */

#include <apr_dbd.h>
#include <apr_strings.h>
#include <apr_thread_mutex.h>

#include <httpd.h>
#include <http_config.h>
#include <http_log.h>

#include <openssl/x509v3.h>

#include "mod_scep.h"
#include "scep_ca.h"
#include "scep_ca_db.h"
#include "scep_ca_local.h"
#include "scep_config.h"
#include "scep_log.h"
#include "scep_pool.h"

APLOG_USE_MODULE(scep);

SCEP_POOL_FREE(X509_REQ, X509_REQ_free)

/* The stack only: its certificates are owned elsewhere. */
static apr_status_t free_stack(void *d)
{
    sk_X509_free(d);
    return APR_SUCCESS;
}

static void issued(scep_submit_result_t *res, apr_pool_t *p, X509 *x,
                   const scep_dir_conf_t *c)
{
    STACK_OF(X509) *chain = scep_db_ca_chain(c);
    int i;

    memset(res, 0, sizeof(*res));
    res->status = SCEP_SUBMIT_ISSUED;
    res->certs = sk_X509_new_null();
    apr_pool_cleanup_register(p, res->certs, free_stack,
                              apr_pool_cleanup_null);
    sk_X509_push(res->certs, x);
    for (i = 0; chain && i < sk_X509_num(chain); i++) {
        sk_X509_push(res->certs, sk_X509_value(chain, i));
    }
}

static void refused(scep_submit_result_t *res, int fail_info,
                    const char *why)
{
    memset(res, 0, sizeof(*res));
    res->status = SCEP_SUBMIT_REJECTED;
    res->fail_info = fail_info;
    res->reason = why;
}

#define FAIL_BADREQUEST 2
#define FAIL_BADCERTID 4

static void pending(scep_submit_result_t *res, const char *id)
{
    memset(res, 0, sizeof(*res));
    res->status = SCEP_SUBMIT_PENDING;
    res->request_id = id;
}

/* Decided and expired requests go, at most once a minute per process. */
static void purge_pending(request_rec *r, scep_db_t *db)
{
    apr_time_t now = scep_db_now();

    if (now - db->last_purge >= 60) {
        db->last_purge = now;
        scep_db_exec(r, db, ST_PENDING_PURGE, scep_db_secs(r->pool, now),
                     NULL);
    }
}

/* "DNS:a, IP Address:b" from a request's subjectAltName. */
static const char *sans_text(apr_pool_t *p, X509_REQ *csr)
{
    STACK_OF(X509_EXTENSION) *exts = X509_REQ_get_extensions(csr);
    GENERAL_NAMES *gens = exts ? X509V3_get_d2i(exts, NID_subject_alt_name,
                                                NULL, NULL)
                               : NULL;
    STACK_OF(CONF_VALUE) *vals = gens ? i2v_GENERAL_NAMES(NULL, gens, NULL)
                                      : NULL;
    const char *out = "";
    int i;

    for (i = 0; vals && i < sk_CONF_VALUE_num(vals); i++) {
        CONF_VALUE *v = sk_CONF_VALUE_value(vals, i);
        out = apr_pstrcat(p, out, *out ? ", " : "", v->name, ":",
                          v->value ? v->value : "", NULL);
    }
    sk_CONF_VALUE_pop_free(vals, X509V3_conf_free);
    GENERAL_NAMES_free(gens);
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    return out;
}

/* "RSA 2048", "EC prime256v1". */
static const char *key_text(apr_pool_t *p, X509_REQ *csr)
{
    EVP_PKEY *k = X509_REQ_get0_pubkey(csr);
    char group[64];

    if (k == NULL) {
        return "?";
    }
    if (EVP_PKEY_get_group_name(k, group, sizeof(group), NULL)) {
        return apr_psprintf(p, "%s %s", EVP_PKEY_get0_type_name(k), group);
    }
    return apr_psprintf(p, "%s %d", EVP_PKEY_get0_type_name(k),
                        EVP_PKEY_get_bits(k));
}

/* SCEPLocalCAApproval manual: keep the request for an administrator. */
static apr_status_t hold(request_rec *r, const scep_dir_conf_t *c,
                         scep_db_t *db, const scep_submit_request_t *req,
                         X509_REQ *csr, const scep_origin_t *o,
                         scep_submit_result_t *res)
{
    apr_time_t now = scep_db_now();
    const char *cols[1];
    int added;

    added = scep_db_exec(
                r, db, ST_PENDING_ADD, o->transid, o->keyid, o->renews,
                scep_ra_name(r->pool, X509_REQ_get_subject_name(csr)),
                sans_text(r->pool, csr), key_text(r->pool, csr),
                o->template_name, o->requester ? o->requester : "",
                o->client ? o->client : "", scep_db_secs(r->pool, now),
                scep_db_secs(r->pool, now + scep_conf_pending_retention(c)),
                scep_db_pem(r->pool, NULL, csr),
                c->renewal_revoke_old == 1 ? "1" : "0", o->signer, NULL) == 1;
    /* Not added: a twin from another process was (found here), or the
     * database failed. */
    if (scep_db_row(r, db, ST_PENDING_GET, cols, 1, o->transid, o->keyid,
                    o->renews, scep_db_secs(r->pool, now), NULL) != 1) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, SCEPLOGNO(00111)
                      "local CA: cannot keep transaction %s for approval: "
                      "%s", req->transaction_id,
                      apr_dbd_error(db->driver, db->handle, 0));
        return APR_EGENERAL;
    }
    if (added) {
        ap_log_rerror(APLOG_MARK, APLOG_NOTICE, 0, r, SCEPLOGNO(00112)
                      "local CA: transaction %s (%s) waits for approval as "
                      "request %s (template %s)", req->transaction_id,
                      scep_ra_name(r->pool, X509_REQ_get_subject_name(csr)),
                      cols[0], o->template_name);
    }
    pending(res, cols[0]);
    return APR_SUCCESS;
}

/* Sign (outside the connection's mutex: other threads of the process
 * keep using the database meanwhile), then record; a clash on the unique
 * keys is a concurrent twin from another process or thread (its
 * certificate is answered) or a serial reuse (a new serial is drawn). */
static apr_status_t issue_now(request_rec *r, const scep_dir_conf_t *c,
                              scep_db_t *db, X509_REQ *csr,
                              const scep_template_t *t, const scep_origin_t *o,
                              int revoke_old, scep_submit_result_t *res)
{
    const char *why, *cols[1];
    X509 *x = NULL;
    int attempt, done = 0;

    for (attempt = 0; attempt < 3 && !done; attempt++) {
        why = scep_ca_issue(r->pool, scep_db_ca_cert(c), c->localca_key->key,
                            scep_conf_hash(c), csr,
                            scep_conf_issuing(r->pool, c, t), &x);
        if (why) {
            refused(res, FAIL_BADREQUEST, why);
            return APR_SUCCESS;
        }
        apr_thread_mutex_lock(db->mutex);
        if (scep_db_record(r, db, x, o)) {
            if (*o->renews) {
                scep_db_replaced(r, db, x, o->renews, revoke_old);
            }
            done = 1;
        }
        else if (scep_db_row(r, db, ST_SELECT, cols, 1, o->transid, o->keyid,
                             o->renews, NULL) == 1
                 && (x = scep_db_cert(r->pool, cols[0])) != NULL) {
            done = 1;
        }
        else if (attempt == 2) {
            ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, SCEPLOGNO(00062)
                          "local CA: cannot record the certificate: %s",
                          apr_dbd_error(db->driver, db->handle, 0));
        }
        apr_thread_mutex_unlock(db->mutex);
    }
    if (!done) {
        return APR_EGENERAL;
    }
    issued(res, r->pool, x, c);
    return APR_SUCCESS;
}

static X509 *cert_by_serial(request_rec *r, scep_db_t *db, const char *hex)
{
    const char *cols[1];

    return scep_db_row(r, db, ST_BY_SERIAL, cols, 1, hex, NULL) == 1
               ? scep_db_cert(r->pool, cols[0]) : NULL;
}

/* What the CA answers a request (the connection's mutex held): what it
 * answered before for the same transaction and key (RFC 8894 3.3.1),
 * else a new decision; APR_INCOMPLETE when it is to be issued now. */
static apr_status_t submit_locked(request_rec *r, const scep_dir_conf_t *c,
                                  scep_db_t *db,
                                  const scep_submit_request_t *req,
                                  X509_REQ *csr, const scep_template_t *t,
                                  const scep_origin_t *o,
                                  scep_submit_result_t *res)
{
    apr_time_t now = scep_db_now();
    const char *cols[4];
    X509 *x;
    int found;

    purge_pending(r, db);
    found = scep_db_row(r, db, ST_PENDING_GET, cols, 4, o->transid, o->keyid,
                        o->renews, scep_db_secs(r->pool, now), NULL);
    if (found == 1) {
        if (!strcmp(cols[1], "pending")) {
            pending(res, cols[0]);
            return APR_SUCCESS;
        }
        if (!strcmp(cols[1], "issued")
            && (x = cert_by_serial(r, db, cols[2])) != NULL) {
            issued(res, r->pool, x, c);
            return APR_SUCCESS;
        }
        if (req->lookup_only || strcmp(cols[1], "rejected")) {
            refused(res, FAIL_BADREQUEST, apr_pstrcat(r->pool,
                    "rejected by an administrator: ", cols[3], NULL));
            return APR_SUCCESS;
        }
        /* Asked again with a good password: held again. */
        scep_db_exec(r, db, ST_PENDING_DROP, cols[0], NULL);
    }
    found = scep_db_row(r, db, ST_SELECT, cols, 2, o->transid, o->keyid,
                        o->renews, NULL);
    if (found == 1) {
        if (apr_atoi64(cols[1]) >= now - scep_conf_issued_retention(c)
            && (x = scep_db_cert(r->pool, cols[0])) != NULL) {
            ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, SCEPLOGNO(00061)
                          "local CA: transaction %s was issued before; "
                          "sending the same certificate",
                          req->transaction_id);
            issued(res, r->pool, x, c);
            return APR_SUCCESS;
        }
        if (req->lookup_only) {
            refused(res, FAIL_BADCERTID, "the transaction was issued longer "
                    "ago than SCEPIssuedRetention; GetCert still returns "
                    "its certificate");
            return APR_SUCCESS;
        }
        scep_db_exec(r, db, ST_RETIRE, o->transid, o->keyid, o->renews, NULL);
    }
    if (req->lookup_only) {
        refused(res, FAIL_BADCERTID,
                "no earlier request with this transaction and key");
        return APR_SUCCESS;
    }
    if (scep_conf_needs_approval(c, t->name)) {
        const char *why = scep_ca_check(r->pool, csr);
        if (why) {
            refused(res, FAIL_BADREQUEST, why);
            return APR_SUCCESS;
        }
        return hold(r, c, db, req, csr, o, res);
    }
    return APR_INCOMPLETE;  /* to be issued, outside the mutex */
}

static apr_status_t local_submit(void *instance, request_rec *r,
                                 const scep_submit_request_t *req,
                                 scep_submit_result_t *res)
{
    const scep_dir_conf_t *c;
    scep_db_t *db = scep_db_for(r, &c);
    const unsigned char *in = req->csr;
    const scep_template_t *t;
    X509_REQ *csr;
    scep_origin_t o;
    apr_status_t rv;

    memset(res, 0, sizeof(*res));
    csr = req->csr_parsed;
    if (csr == NULL) {
        csr = own_X509_REQ(r->pool, d2i_X509_REQ(NULL, &in,
                                                 (long)req->csr_len));
    }
    if (csr == NULL || c->localca_key == NULL) {
        return APR_EINVAL;
    }
    if (db == NULL) {
        return APR_EGENERAL;
    }
    t = scep_conf_template(c, scep_ca_request_key_usage(csr));
    if (t == NULL || strcmp(t->name, req->template_name)) {
        t = scep_conf_template(c, -1);
    }
    o.keyid = scep_db_key_id(r->pool, X509_REQ_get_X509_PUBKEY(csr));
    if (o.keyid == NULL) {
        return APR_EINVAL;
    }
    o.transid = scep_db_transaction_key(r->pool, req->transaction_id);
    o.signer = req->requester_cert
                   ? scep_db_key_id(r->pool, X509_get_X509_PUBKEY(
                                                 req->requester_cert))
                   : NULL;
    if (o.signer == NULL) {
        o.signer = "";
    }
    o.renews = req->renewal_signer
                   ? scep_ca_serial_hex(r->pool, req->renewal_signer) : "";
    o.template_name = t->name;
    o.requester = req->requester;
    o.client = req->client_ip;

    apr_thread_mutex_lock(db->mutex);
    rv = submit_locked(r, c, db, req, csr, t, &o, res);
    apr_thread_mutex_unlock(db->mutex);
    return rv == APR_INCOMPLETE
               ? issue_now(r, c, db, csr, t, &o, c->renewal_revoke_old == 1,
                           res)
               : rv;
}

/* CertPoll (RFC 8894 3.3.3): a held request's state, or the certificate
 * of a transaction issued within SCEPIssuedRetention; bound to the key
 * that asked (or, for a renewal, the certificate renewed). */
static apr_status_t local_poll(void *instance, request_rec *r,
                               const char *transaction_id, X509_NAME *subject,
                               X509 *requester, scep_submit_result_t *res)
{
    const scep_dir_conf_t *c;
    scep_db_t *db = scep_db_for(r, &c);
    const char *keyid = scep_db_key_id(r->pool,
                                       X509_get_X509_PUBKEY(requester));
    const char *transid = scep_db_transaction_key(r->pool, transaction_id);
    const char *serial = scep_ca_serial_hex(r->pool, requester);
    const char *cols[5];
    apr_time_t now = scep_db_now();
    X509_REQ *csr = NULL;
    X509 *x = NULL;
    int found;

    if (db == NULL || keyid == NULL) {
        return APR_EGENERAL;
    }
    apr_thread_mutex_lock(db->mutex);
    purge_pending(r, db);
    found = scep_db_row(r, db, ST_PENDING_POLL, cols, 5, transid, keyid, keyid,
                        serial, scep_db_secs(r->pool, now), NULL);
    if (found == 1) {
        csr = scep_db_csr(r->pool, cols[4]);
        if (!strcmp(cols[1], "issued")) {
            x = cert_by_serial(r, db, cols[2]);
        }
    }
    else {
        const char *cutoff =
            scep_db_secs(r->pool, now - scep_conf_issued_retention(c));
        if (scep_db_row(r, db, ST_POLL_KEY, cols, 1, transid, keyid, keyid,
                        cutoff, NULL) == 1
            || scep_db_row(r, db, ST_POLL_RENEWS, cols, 1, transid, serial,
                           cutoff, NULL) == 1) {
            x = scep_db_cert(r->pool, cols[0]);
        }
    }
    apr_thread_mutex_unlock(db->mutex);

    if (found == 1 && csr != NULL
        && X509_NAME_cmp(X509_REQ_get_subject_name(csr), subject) != 0) {
        refused(res, FAIL_BADCERTID, "the poll names another subject");
    }
    else if (found == 1 && !strcmp(cols[1], "pending")) {
        pending(res, cols[0]);
    }
    else if (found == 1 && !strcmp(cols[1], "rejected")) {
        refused(res, FAIL_BADREQUEST, apr_pstrcat(r->pool,
                "rejected by an administrator: ", cols[3], NULL));
    }
    else if (x == NULL) {
        refused(res, FAIL_BADCERTID,
                "no request with this transaction and key (or it is older "
                "than SCEPPendingRetention / SCEPIssuedRetention)");
    }
    else if (X509_NAME_cmp(X509_get_subject_name(x), subject) != 0) {
        refused(res, FAIL_BADCERTID, "the poll names another subject");
    }
    else {
        issued(res, r->pool, x, c);
    }
    return APR_SUCCESS;
}

/* GetCert (RFC 8894 3.3.4): a certificate this CA issued. */
static apr_status_t local_get_cert(void *instance, request_rec *r,
                                   X509_NAME *issuer,
                                   const ASN1_INTEGER *serial,
                                   scep_submit_result_t *res)
{
    const scep_dir_conf_t *c;
    scep_db_t *db = scep_db_for(r, &c);
    BIGNUM *bn = ASN1_INTEGER_to_BN(serial, NULL);
    char *hex = bn ? BN_bn2hex(bn) : NULL;
    X509 *x = NULL;

    BN_free(bn);
    if (db == NULL || hex == NULL) {
        OPENSSL_free(hex);
        return APR_EGENERAL;
    }
    if (X509_NAME_cmp(issuer, X509_get_subject_name(scep_db_ca_cert(c)))
        == 0) {
        apr_thread_mutex_lock(db->mutex);
        x = cert_by_serial(r, db, hex);
        apr_thread_mutex_unlock(db->mutex);
    }
    OPENSSL_free(hex);
    if (x == NULL) {
        refused(res, FAIL_BADCERTID, "no such certificate");
        return APR_SUCCESS;
    }
    memset(res, 0, sizeof(*res));
    res->status = SCEP_SUBMIT_ISSUED;
    res->certs = sk_X509_new_null();
    apr_pool_cleanup_register(r->pool, res->certs, free_stack,
                              apr_pool_cleanup_null);
    sk_X509_push(res->certs, x);
    return APR_SUCCESS;
}

/* GetCRL (RFC 8894 3.3.5). */
static apr_status_t local_get_crl(void *instance, request_rec *r,
                                  X509_NAME *issuer,
                                  const ASN1_INTEGER *serial, X509_CRL **out)
{
    const scep_dir_conf_t *c =
        ap_get_module_config(r->per_dir_config, &scep_module);

    if (c->localca_key == NULL) {
        return APR_EGENERAL;
    }
    if (X509_NAME_cmp(issuer, X509_get_subject_name(scep_db_ca_cert(c)))
        != 0) {
        return APR_NOTFOUND;
    }
    return scep_ca_local_crl(r, c, out);
}

/* Known, and not revoked, in this CA's own records. */
static scep_cert_status_e local_cert_status(void *instance, request_rec *r,
                                            X509 *cert)
{
    const scep_dir_conf_t *c;
    const char *cols[1];
    scep_db_t *db;
    int found;

    c = ap_get_module_config(r->per_dir_config, &scep_module);
    if (c->localca_key == NULL
        || X509_NAME_cmp(X509_get_issuer_name(cert),
                         X509_get_subject_name(scep_db_ca_cert(c))) != 0
        || (db = scep_db_for(r, &c)) == NULL) {
        return SCEP_CERT_UNKNOWN;
    }
    apr_thread_mutex_lock(db->mutex);
    found = scep_db_row(r, db, ST_STATUS, cols, 1,
                        scep_ca_serial_hex(r->pool, cert), NULL);
    apr_thread_mutex_unlock(db->mutex);
    return found != 1 ? SCEP_CERT_UNKNOWN
           : *cols[0] ? SCEP_CERT_REVOKED : SCEP_CERT_GOOD;
}

const scep_submit_provider_t scep_submit_local = {
    "local",
    NULL,
    NULL,
    scep_db_child_init,
    local_submit,
    local_poll,
    local_get_cert,
    local_get_crl,
    local_cert_status,
    SCEP_SUBMIT_NO_RA_REQUEST
};

