/* Licensed under the Apache License, Version 2.0; see LICENSE. */

/*
 * Submission provider "local": the embedded CA.  Certificates are made by
 * scep_ca.c; every one is recorded in the CA's database (apr_dbd, SQLite
 * by default) before the reply goes out, and a request resent with the
 * same transactionID and key gets the recorded certificate back
 * (RFC 8894 3.3.1), never a second one.
 */

#include <unistd.h>

#include <apr_dbd.h>
#include <apr_file_info.h>
#include <apr_hash.h>
#include <apr_strings.h>
#include <apr_thread_mutex.h>

#include <httpd.h>
#include <http_config.h>
#include <http_log.h>
#include <mpm_common.h>
#include <unixd.h>

#include <openssl/pem.h>

#include "mod_scep.h"
#include "scep_ca.h"
#include "scep_ca_local.h"
#include "scep_config.h"
#include "scep_log.h"
#include "scep_pool.h"

APLOG_USE_MODULE(scep);

#ifndef SCEP_STATE_DIR
#define SCEP_STATE_DIR "/var/lib/mod_scep"
#endif

static const char *const schema =
    "CREATE TABLE IF NOT EXISTS scep_issued ("
    " serial TEXT PRIMARY KEY,"      /* hex */
    " transid TEXT NOT NULL,"        /* SHA-256 of the transactionID */
    " keyid TEXT NOT NULL,"          /* SHA-256 of the request's key */
    " renews TEXT NOT NULL DEFAULT '',"  /* serial a renewal renews */
    " subject TEXT NOT NULL,"
    " template TEXT NOT NULL,"
    " requester TEXT,"
    " client TEXT,"
    " issued TEXT NOT NULL,"
    " not_after TEXT NOT NULL,"
    " cert TEXT NOT NULL,"           /* PEM */
    " superseded_by TEXT,"           /* serial of its renewal */
    " revoked TEXT,"                 /* when, if revoked */
    " reason TEXT,"                  /* CRL reason name, if revoked */
    " UNIQUE (transid, keyid, renews))";

/* One connection per database per process; apr_dbd handles are not
 * thread-safe, so requests take turns. */
typedef struct {
    const apr_dbd_driver_t *driver;
    apr_dbd_t *handle;
    apr_thread_mutex_t *mutex;
    apr_dbd_prepared_t *select;        /* the certificate of a request */
    apr_dbd_prepared_t *insert;        /* record an issued certificate */
    apr_dbd_prepared_t *status;        /* revoked column of a serial */
    apr_dbd_prepared_t *supersede;     /* mark a renewed certificate */
    apr_dbd_prepared_t *by_serial;     /* GetCert */
    apr_dbd_prepared_t *poll_key;      /* CertPoll by the request's key */
    apr_dbd_prepared_t *poll_renews;   /* CertPoll by the renewed cert */
    apr_dbd_prepared_t *revoked;       /* GetCRL */
} db_conn_t;

static const char *const poll_key_sql =
    "SELECT cert FROM scep_issued WHERE transid = %s AND keyid = %s "
    "ORDER BY issued DESC";
static const char *const poll_renews_sql =
    "SELECT cert FROM scep_issued WHERE transid = %s AND renews = %s "
    "ORDER BY issued DESC";
static const char *const by_serial_sql =
    "SELECT cert FROM scep_issued WHERE serial = %s";
static const char *const revoked_sql =
    "SELECT serial, revoked, COALESCE(reason, '') FROM scep_issued "
    "WHERE revoked IS NOT NULL";
static const char *const status_sql =
    "SELECT COALESCE(revoked, '') FROM scep_issued WHERE serial = %s";
static const char *const supersede_sql =
    "UPDATE scep_issued SET superseded_by = %s WHERE serial = %s";

/* Clients that keep their key derive the transactionID from it, so a
 * renewal shares transaction and key with the request that got the
 * certificate it renews: the serial renewed tells them apart. */
static const char *const select_sql =
    "SELECT cert FROM scep_issued WHERE transid = %s AND keyid = %s "
    "AND renews = %s";
static const char *const insert_sql =
    "INSERT INTO scep_issued (serial, transid, keyid, renews, subject, "
    "template, requester, client, issued, not_after, cert) "
    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)";

static apr_pool_t *child_pool;

SCEP_POOL_FREE(X509, X509_free)
SCEP_POOL_FREE(X509_REQ, X509_REQ_free)
SCEP_POOL_FREE(X509_CRL, X509_CRL_free)

/* The stack only: its certificates are owned elsewhere. */
static apr_status_t free_stack(void *d)
{
    sk_X509_free(d);
    return APR_SUCCESS;
}
static apr_hash_t *conns;
static apr_thread_mutex_t *conns_mutex;

const char *scep_ca_local_db(apr_pool_t *p, const scep_dir_conf_t *c)
{
    const unsigned char *realm;
    char hex[17];
    int i;

    if (c->localca_db) {
        return c->localca_db;
    }
    realm = c->localca_cert ? c->localca_cert->realm : c->ca->realm;
    for (i = 0; i < 8; i++) {
        apr_snprintf(hex + 2 * i, 3, "%02x", realm[i]);
    }
    return apr_psprintf(p, "sqlite3:%s/ca-%s.db", SCEP_STATE_DIR, hex);
}

static X509 *ca_cert(const scep_dir_conf_t *c)
{
    return sk_X509_value(c->localca_cert ? c->localca_cert->certs
                                         : c->ca->certs, 0);
}

static const char *open_db(apr_pool_t *p, const char *spec,
                           const apr_dbd_driver_t **driver, apr_dbd_t **h)
{
    const char *params = strchr(spec, ':') + 1;
    const char *name = apr_pstrmemdup(p, spec, params - spec - 1);
    const char *err = NULL;
    apr_status_t rv;

    rv = apr_dbd_get_driver(p, name, driver);
    if (rv != APR_SUCCESS) {
        return apr_psprintf(p, "apr_dbd driver '%s' is not available "
                            "(Debian: libaprutil1-dbd-%s)", name, name);
    }
    rv = apr_dbd_open_ex(*driver, p, params, h, &err);
    if (rv != APR_SUCCESS) {
        return apr_psprintf(p, "cannot open database %s: %s", spec,
                            err ? err : "unknown error");
    }
    return NULL;
}

/* Startup, as root: check the CA key and create the database, owned by
 * the user the children run as. */
const char *scep_ca_local_startup(apr_pool_t *p, server_rec *s,
                                  const scep_dir_conf_t *c)
{
    const apr_dbd_driver_t *driver;
    const char *spec, *err;
    apr_dbd_t *h;
    int rows;

    if (c->localca_key == NULL) {
        return "the local CA needs SCEPLocalCAKeyFile";
    }
    if (X509_check_private_key(ca_cert(c), c->localca_key->key) != 1) {
        return apr_psprintf(p, "%s: the key does not belong to the CA "
                            "certificate", c->localca_key->file);
    }
    spec = scep_ca_local_db(p, c);
    if (!strncmp(spec, "sqlite3:", 8)) {
        char *dir = ap_make_dirstr_parent(p, spec + 8);
        apr_dir_make_recursive(dir, APR_FPROT_UREAD | APR_FPROT_UWRITE
                                        | APR_FPROT_UEXECUTE, p);
        if (geteuid() == 0) {
            /* SQLite writes its journal beside the file. */
            if (chown(dir, ap_unixd_config.user_id, -1) != 0) {
                return apr_psprintf(p, "cannot give %s to the httpd user",
                                    dir);
            }
        }
    }
    err = open_db(p, spec, &driver, &h);
    if (err) {
        return err;
    }
    /* WAL: one sync per issuance, readers never wait for the writer. */
    if (!strncmp(spec, "sqlite3:", 8)) {
        apr_dbd_query(driver, h, &rows, "PRAGMA journal_mode = WAL");
    }
    if (apr_dbd_query(driver, h, &rows, schema) != 0) {
        err = apr_psprintf(p, "cannot create the table in %s: %s", spec,
                           apr_dbd_error(driver, h, 0));
    }
    else {
        /* Columns later versions added; an error means it is there. */
        static const char *const added[] = {
            "superseded_by TEXT", "revoked TEXT", "reason TEXT",
            "renews TEXT NOT NULL DEFAULT ''"
        };
        int i;
        for (i = 0; i < 4; i++) {
            apr_dbd_query(driver, h, &rows,
                          apr_pstrcat(p, "ALTER TABLE scep_issued ADD COLUMN ",
                                      added[i], NULL));
        }
    }
    apr_dbd_close(driver, h);
    if (!err && !strncmp(spec, "sqlite3:", 8) && geteuid() == 0
        && chown(spec + 8, ap_unixd_config.user_id, -1) != 0) {
        err = apr_psprintf(p, "cannot give %s to the httpd user", spec + 8);
    }
    return err;
}

static apr_status_t local_child_init(void *instance, apr_pool_t *p,
                                     server_rec *s)
{
    child_pool = p;
    conns = apr_hash_make(p);
    return apr_thread_mutex_create(&conns_mutex, APR_THREAD_MUTEX_DEFAULT, p);
}

/* SHA-256 of a SubjectPublicKeyInfo as it was received (re-encoding the
 * parsed structure; no trip through OpenSSL 3's key encoders). */
static const char *key_id(apr_pool_t *p, X509_PUBKEY *spki)
{
    unsigned char *der = NULL;
    int n = i2d_X509_PUBKEY(spki, &der);
    const char *id = n > 0 ? scep_ca_sha256_hex(p, der, (apr_size_t)n)
                           : NULL;

    OPENSSL_free(der);
    return id;
}

static const char *transaction_key(apr_pool_t *p, const char *transid)
{
    return scep_ca_sha256_hex(p, transid, strlen(transid));
}

/* Open a connection in its own pool, so a failed attempt leaves nothing
 * behind in the child. */
static db_conn_t *open_conn(request_rec *r, const char *spec)
{
    apr_pool_t *p;
    db_conn_t *conn;
    const char *err;
    int rows;

    if (apr_pool_create(&p, child_pool) != APR_SUCCESS) {
        return NULL;
    }
    conn = apr_pcalloc(p, sizeof(*conn));
    err = open_db(p, spec, &conn->driver, &conn->handle);
    if (err) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, SCEPLOGNO(00060)
                      "local CA: %s", err);
        apr_pool_destroy(p);
        return NULL;
    }
    /* Several processes write: wait for each other's locks. */
    if (!strncmp(spec, "sqlite3:", 8)) {
        apr_dbd_query(conn->driver, conn->handle, &rows,
                      "PRAGMA busy_timeout = 10000");
    }
    if (apr_thread_mutex_create(&conn->mutex, APR_THREAD_MUTEX_DEFAULT, p)
            != APR_SUCCESS
        || apr_dbd_prepare(conn->driver, p, conn->handle, select_sql, NULL,
                           &conn->select) != 0
        || apr_dbd_prepare(conn->driver, p, conn->handle, insert_sql, NULL,
                           &conn->insert) != 0
        || apr_dbd_prepare(conn->driver, p, conn->handle, status_sql, NULL,
                           &conn->status) != 0
        || apr_dbd_prepare(conn->driver, p, conn->handle, supersede_sql,
                           NULL, &conn->supersede) != 0
        || apr_dbd_prepare(conn->driver, p, conn->handle, by_serial_sql,
                           NULL, &conn->by_serial) != 0
        || apr_dbd_prepare(conn->driver, p, conn->handle, poll_key_sql,
                           NULL, &conn->poll_key) != 0
        || apr_dbd_prepare(conn->driver, p, conn->handle, poll_renews_sql,
                           NULL, &conn->poll_renews) != 0
        || apr_dbd_prepare(conn->driver, p, conn->handle, revoked_sql, NULL,
                           &conn->revoked) != 0) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, SCEPLOGNO(00063)
                      "local CA: cannot prepare statements on %s: %s", spec,
                      apr_dbd_error(conn->driver, conn->handle, 0));
        apr_dbd_close(conn->driver, conn->handle);
        apr_pool_destroy(p);
        return NULL;
    }
    apr_hash_set(conns, apr_pstrdup(p, spec), APR_HASH_KEY_STRING, conn);
    return conn;
}

static db_conn_t *connection(request_rec *r, const char *spec)
{
    db_conn_t *conn;

    apr_thread_mutex_lock(conns_mutex);
    conn = apr_hash_get(conns, spec, APR_HASH_KEY_STRING);
    if (conn == NULL) {
        conn = open_conn(r, spec);
    }
    apr_thread_mutex_unlock(conns_mutex);
    return conn;
}

/* The first certificate a query finds, if any (the mutex is held). */
static X509 *select_cert(request_rec *r, db_conn_t *db,
                         apr_dbd_prepared_t *stmt, const char *a,
                         const char *b, const char *c)
{
    apr_dbd_results_t *res = NULL;
    apr_dbd_row_t *row = NULL;
    const char *pem;
    X509 *x = NULL;
    BIO *bio;

    if (apr_dbd_pvselect(db->driver, r->pool, db->handle, &res, stmt, 0, a,
                         b, c) != 0) {
        return NULL;
    }
    /* Read every row so the statement is finished. */
    while (apr_dbd_get_row(db->driver, r->pool, res, &row, -1) == 0) {
        if (x == NULL && (pem = apr_dbd_get_entry(db->driver, row, 0))) {
            bio = BIO_new_mem_buf(pem, -1);
            x = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
            BIO_free(bio);
        }
    }
    if (x) {
        own_X509(r->pool, x);
    }
    return x;
}

/* The certificate recorded for this transaction and key, if any. */
static X509 *recorded(request_rec *r, db_conn_t *db, const char *transid,
                      const char *keyid, const char *renews)
{
    return select_cert(r, db, db->select, transid, keyid, renews);
}

static const char *pem_of(apr_pool_t *p, X509 *x)
{
    BIO *b = BIO_new(BIO_s_mem());
    const char *s = NULL;
    char *data;
    long n;

    if (b && PEM_write_bio_X509(b, x) && (n = BIO_get_mem_data(b, &data)) > 0) {
        s = apr_pstrmemdup(p, data, (apr_size_t)n);
    }
    BIO_free(b);
    return s;
}

static const char *asn1_time_text(apr_pool_t *p, const ASN1_TIME *t)
{
    struct tm tm;

    if (!ASN1_TIME_to_tm(t, &tm)) {
        return "?";
    }
    return apr_psprintf(p, "%04d-%02d-%02dT%02d:%02d:%02dZ",
                        tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                        tm.tm_hour, tm.tm_min, tm.tm_sec);
}

static int record(request_rec *r, db_conn_t *db, X509 *x,
                  const char *transid, const char *keyid, const char *renews,
                  const scep_submit_request_t *req)
{
    int rows = 0;

    return apr_dbd_pvquery(db->driver, r->pool, db->handle, &rows, db->insert,
                           scep_ca_serial_hex(r->pool, x), transid, keyid,
                           renews, scep_ra_subject(r->pool, x),
                           req->template_name,
                           req->requester ? req->requester : "",
                           req->client_ip ? req->client_ip : "",
                           asn1_time_text(r->pool, X509_get0_notBefore(x)),
                           asn1_time_text(r->pool, X509_get0_notAfter(x)),
                           pem_of(r->pool, x)) == 0
           && rows == 1;
}

static void issued(scep_submit_result_t *res, apr_pool_t *p, X509 *x,
                   const scep_dir_conf_t *c)
{
    STACK_OF(X509) *chain = c->localca_cert ? c->localca_cert->certs
                                            : c->ca->certs;
    int i;

    res->status = SCEP_SUBMIT_ISSUED;
    res->certs = sk_X509_new_null();
    apr_pool_cleanup_register(p, res->certs, free_stack,
                              apr_pool_cleanup_null);
    sk_X509_push(res->certs, x);
    for (i = 0; i < sk_X509_num(chain); i++) {
        sk_X509_push(res->certs, sk_X509_value(chain, i));
    }
}

static apr_status_t local_submit(void *instance, request_rec *r,
                                 const scep_submit_request_t *req,
                                 scep_submit_result_t *res)
{
    const scep_dir_conf_t *c =
        ap_get_module_config(r->per_dir_config, &scep_module);
    const unsigned char *in = req->csr;
    const scep_template_t *t;
    const char *transid, *keyid, *renews, *why;
    X509_REQ *csr;
    X509 *x = NULL;
    db_conn_t *db;
    int attempt;

    memset(res, 0, sizeof(*res));
    csr = req->csr_parsed;
    if (csr == NULL) {
        csr = own_X509_REQ(r->pool, d2i_X509_REQ(NULL, &in,
                                                 (long)req->csr_len));
    }
    if (csr == NULL || c->localca_key == NULL) {
        return APR_EINVAL;
    }
    t = scep_conf_template(c, scep_ca_request_key_usage(csr));
    if (t == NULL || strcmp(t->name, req->template_name)) {
        t = scep_conf_template(c, -1);
    }
    db = connection(r, scep_ca_local_db(r->pool, c));
    if (db == NULL) {
        return APR_EGENERAL;
    }
    keyid = key_id(r->pool, X509_REQ_get_X509_PUBKEY(csr));
    if (keyid == NULL) {
        return APR_EINVAL;
    }
    transid = transaction_key(r->pool, req->transaction_id);
    renews = req->renewal_signer
                 ? scep_ca_serial_hex(r->pool, req->renewal_signer) : "";

    apr_thread_mutex_lock(db->mutex);
    for (attempt = 0; attempt < 3; attempt++) {
        X509 *again = recorded(r, db, transid, keyid, renews);
        if (again) {
            /* The same request again: the same certificate. */
            apr_thread_mutex_unlock(db->mutex);
            ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, SCEPLOGNO(00061)
                          "local CA: transaction %s was issued before; "
                          "sending the same certificate",
                          req->transaction_id);
            issued(res, r->pool, again, c);
            return APR_SUCCESS;
        }
        if (req->lookup_only) {
            apr_thread_mutex_unlock(db->mutex);
            res->status = SCEP_SUBMIT_REJECTED;
            res->fail_info = 4;  /* badCertId */
            res->reason = "no earlier request with this transaction and key";
            return APR_SUCCESS;
        }
        why = scep_ca_issue(r->pool, ca_cert(c), c->localca_key->key,
                            scep_conf_hash(c), csr, t, &x);
        if (why) {
            apr_thread_mutex_unlock(db->mutex);
            res->status = SCEP_SUBMIT_REJECTED;
            res->fail_info = 2;  /* badRequest */
            res->reason = why;
            return APR_SUCCESS;
        }
        /* A unique key on serial and on (transaction, key): a clash is a
         * concurrent twin (found on the next pass) or a serial reuse. */
        if (record(r, db, x, transid, keyid, renews, req)) {
            if (req->renewal_signer) {
                int rows = 0;
                apr_dbd_pvquery(db->driver, r->pool, db->handle, &rows,
                                db->supersede, scep_ca_serial_hex(r->pool, x),
                                scep_ca_serial_hex(r->pool,
                                                   req->renewal_signer));
            }
            apr_thread_mutex_unlock(db->mutex);
            issued(res, r->pool, x, c);
            return APR_SUCCESS;
        }
    }
    ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, SCEPLOGNO(00062)
                  "local CA: cannot record the certificate: %s",
                  apr_dbd_error(db->driver, db->handle, 0));
    apr_thread_mutex_unlock(db->mutex);
    return APR_EGENERAL;
}

static void bad_cert_id(scep_submit_result_t *res, const char *why)
{
    memset(res, 0, sizeof(*res));
    res->status = SCEP_SUBMIT_REJECTED;
    res->fail_info = 4;  /* badCertId */
    res->reason = why;
}

static db_conn_t *conf_db(request_rec *r, const scep_dir_conf_t **c)
{
    *c = ap_get_module_config(r->per_dir_config, &scep_module);
    return (*c)->localca_key ? connection(r, scep_ca_local_db(r->pool, *c))
                             : NULL;
}

/* CertPoll (RFC 8894 3.3.3): every request is decided at once here, so a
 * poll finds the certificate of its transaction, for the same key. */
static apr_status_t local_poll(void *instance, request_rec *r,
                               const char *transaction_id, X509_NAME *subject,
                               X509 *requester, scep_submit_result_t *res)
{
    const scep_dir_conf_t *c;
    db_conn_t *db = conf_db(r, &c);
    const char *keyid = key_id(r->pool, X509_get_X509_PUBKEY(requester));
    X509 *x;

    if (db == NULL || keyid == NULL) {
        return APR_EGENERAL;
    }
    apr_thread_mutex_lock(db->mutex);
    x = select_cert(r, db, db->poll_key,
                    transaction_key(r->pool, transaction_id), keyid, NULL);
    if (x == NULL) {
        /* A renewal's poll may be signed by the certificate it renews. */
        x = select_cert(r, db, db->poll_renews,
                        transaction_key(r->pool, transaction_id),
                        scep_ca_serial_hex(r->pool, requester), NULL);
    }
    apr_thread_mutex_unlock(db->mutex);
    if (x == NULL) {
        bad_cert_id(res, "no request with this transaction and key");
    }
    else if (X509_NAME_cmp(X509_get_subject_name(x), subject) != 0) {
        bad_cert_id(res, "the poll names another subject");
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
    db_conn_t *db = conf_db(r, &c);
    BIGNUM *bn = ASN1_INTEGER_to_BN(serial, NULL);
    char *hex = bn ? BN_bn2hex(bn) : NULL;
    X509 *x = NULL;

    BN_free(bn);
    if (db == NULL || hex == NULL) {
        OPENSSL_free(hex);
        return APR_EGENERAL;
    }
    if (X509_NAME_cmp(issuer, X509_get_subject_name(ca_cert(c))) == 0) {
        apr_thread_mutex_lock(db->mutex);
        x = select_cert(r, db, db->by_serial, hex, NULL, NULL);
        apr_thread_mutex_unlock(db->mutex);
    }
    OPENSSL_free(hex);
    if (x == NULL) {
        bad_cert_id(res, "no such certificate");
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

static int crl_reason(const char *name)
{
    static const char *const names[] = {
        "unspecified", "keyCompromise", "CACompromise", "affiliationChanged",
        "superseded", "cessationOfOperation", "certificateHold"
    };
    int i;

    for (i = 0; i < (int)(sizeof(names) / sizeof(names[0])); i++) {
        if (!ap_cstr_casecmp(name, names[i])) {
            return i;
        }
    }
    return -1;
}

/* GetCRL (RFC 8894 3.3.5): a CRL of the revoked rows, signed now. */
static apr_status_t local_get_crl(void *instance, request_rec *r,
                                  X509_NAME *issuer,
                                  const ASN1_INTEGER *serial, X509_CRL **out)
{
    const scep_dir_conf_t *c;
    db_conn_t *db = conf_db(r, &c);
    apr_dbd_results_t *res = NULL;
    apr_dbd_row_t *row = NULL;
    X509_CRL *crl;
    int ok = 1;

    if (db == NULL) {
        return APR_EGENERAL;
    }
    if (X509_NAME_cmp(issuer, X509_get_subject_name(ca_cert(c))) != 0) {
        return APR_NOTFOUND;
    }
    crl = X509_CRL_new();
    if (crl == NULL) {
        return APR_ENOMEM;
    }
    own_X509_CRL(r->pool, crl);
    ok = X509_CRL_set_version(crl, 1)
         && X509_CRL_set_issuer_name(crl, X509_get_subject_name(ca_cert(c)));
    {
        ASN1_TIME *now = X509_time_adj_ex(NULL, 0, 0, NULL);
        ASN1_TIME *next = X509_time_adj_ex(NULL, c->crl_days > 0
                                                     ? c->crl_days : 7,
                                           0, NULL);
        ok = ok && now && next && X509_CRL_set1_lastUpdate(crl, now)
             && X509_CRL_set1_nextUpdate(crl, next);
        ASN1_TIME_free(now);
        ASN1_TIME_free(next);
    }
    apr_thread_mutex_lock(db->mutex);
    if (ok && apr_dbd_pvselect(db->driver, r->pool, db->handle, &res,
                               db->revoked, 0) != 0) {
        ok = 0;
    }
    while (ok && apr_dbd_get_row(db->driver, r->pool, res, &row, -1) == 0) {
        const char *sn = apr_dbd_get_entry(db->driver, row, 0);
        const char *when = apr_dbd_get_entry(db->driver, row, 1);
        const char *why = apr_dbd_get_entry(db->driver, row, 2);
        X509_REVOKED *rev = X509_REVOKED_new();
        BIGNUM *bn = NULL;
        ASN1_INTEGER *ai = NULL;
        ASN1_TIME *t = ASN1_TIME_new();
        int reason = why ? crl_reason(why) : -1;

        if (rev && t && BN_hex2bn(&bn, sn) && (ai = BN_to_ASN1_INTEGER(bn,
                                                                     NULL))
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
            X509_CRL_add0_revoked(crl, rev);
            rev = NULL;
        }
        X509_REVOKED_free(rev);
        ASN1_INTEGER_free(ai);
        ASN1_TIME_free(t);
        BN_free(bn);
    }
    apr_thread_mutex_unlock(db->mutex);
    if (!ok || !X509_CRL_sort(crl)
        || !X509_CRL_sign(crl, c->localca_key->key, scep_conf_hash(c))) {
        return APR_EGENERAL;
    }
    *out = crl;
    return APR_SUCCESS;
}

/* Known, and not revoked, in this CA's own records. */
static scep_cert_status_e local_cert_status(void *instance, request_rec *r,
                                            X509 *cert)
{
    const scep_dir_conf_t *c =
        ap_get_module_config(r->per_dir_config, &scep_module);
    scep_cert_status_e st = SCEP_CERT_UNKNOWN;
    apr_dbd_results_t *res = NULL;
    apr_dbd_row_t *row = NULL;
    const char *revoked;
    db_conn_t *db;

    if (c->localca_key == NULL
        || X509_NAME_cmp(X509_get_issuer_name(cert),
                         X509_get_subject_name(ca_cert(c))) != 0
        || (db = connection(r, scep_ca_local_db(r->pool, c))) == NULL) {
        return SCEP_CERT_UNKNOWN;
    }
    apr_thread_mutex_lock(db->mutex);
    if (apr_dbd_pvselect(db->driver, r->pool, db->handle, &res, db->status,
                         0, scep_ca_serial_hex(r->pool, cert)) == 0) {
        while (apr_dbd_get_row(db->driver, r->pool, res, &row, -1) == 0) {
            revoked = apr_dbd_get_entry(db->driver, row, 0);
            st = (revoked && *revoked) ? SCEP_CERT_REVOKED : SCEP_CERT_GOOD;
        }
    }
    apr_thread_mutex_unlock(db->mutex);
    return st;
}

const scep_submit_provider_t scep_submit_local = {
    "local",
    NULL,
    NULL,
    local_child_init,
    local_submit,
    local_poll,
    local_get_cert,
    local_get_crl,
    local_cert_status,
    SCEP_SUBMIT_NO_RA_REQUEST
};
