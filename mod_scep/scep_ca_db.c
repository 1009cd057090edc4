/* Licensed under the Apache License, Version 2.0; see LICENSE. */

/*
 * The embedded CA's database: schema (created and extended at startup),
 * one connection per database per process with its prepared statements,
 * and the queries shared by the provider (scep_ca_local.c), the CRL
 * (scep_ca_crl.c) and the approval page (scep_ca_approve.c).
 */

#include <stdarg.h>
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
#include "scep_ca_db.h"
#include "scep_ca_local.h"
#include "scep_config.h"
#include "scep_log.h"
#include "scep_pool.h"

APLOG_USE_MODULE(scep);

#ifndef SCEP_STATE_DIR
#define SCEP_STATE_DIR "/var/lib/mod_scep"
#endif

/* Later versions add columns and tables; startup adds what is missing. */
static const char *const schema[] = {
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
    " revoked TEXT,"                 /* when (YYYYMMDDHHMMSSZ), if revoked */
    " reason TEXT,"                  /* CRL reason name, if revoked */
    " recorded INTEGER NOT NULL DEFAULT 0," /* when issued, Unix seconds */
    " signer TEXT NOT NULL DEFAULT '',"  /* SHA-256 of the key that signed
                                          the request (an RA in front) */
    " UNIQUE (transid, keyid, renews))",
    /* Requests held for approval (SCEPLocalCAApproval manual), then
     * decided; kept the SCEPPendingRetention of the location they came
     * to (locations of one CA share the table). */
    "CREATE TABLE IF NOT EXISTS scep_pending ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " transid TEXT NOT NULL,"
    " keyid TEXT NOT NULL,"
    " renews TEXT NOT NULL DEFAULT '',"
    " subject TEXT NOT NULL,"
    " sans TEXT NOT NULL DEFAULT '',"
    " keytype TEXT NOT NULL DEFAULT '',"
    " template TEXT NOT NULL,"
    " requester TEXT,"
    " client TEXT,"
    " received INTEGER NOT NULL,"    /* Unix seconds */
    " expires INTEGER NOT NULL,"     /* received + SCEPPendingRetention */
    " csr TEXT NOT NULL,"            /* PEM */
    " revoke_old INTEGER NOT NULL DEFAULT 0," /* SCEPRenewalRevokeOld */
    " signer TEXT NOT NULL DEFAULT '',"
    " state TEXT NOT NULL DEFAULT 'pending'," /* pending issued rejected */
    " decided INTEGER,"
    " decided_by TEXT,"
    " serial TEXT,"                  /* issued */
    " reason TEXT,"                  /* rejected */
    " UNIQUE (transid, keyid, renews))",
    "CREATE INDEX IF NOT EXISTS scep_pending_expires "
    "ON scep_pending (expires)",
    /* The CRL last signed, shared by all processes: they serve the same
     * one, and its number only grows. */
    "CREATE TABLE IF NOT EXISTS scep_crl ("
    " kind TEXT PRIMARY KEY,"        /* validity days / hash */
    " state TEXT NOT NULL,"          /* the revocations it lists */
    " made INTEGER NOT NULL,"        /* Unix seconds */
    " number INTEGER NOT NULL,"      /* its CRL number */
    " pem TEXT NOT NULL)",
    NULL
};

/* Columns later versions added to scep_issued; an error means it is
 * there. */
static const char *const added_columns[] = {
    "superseded_by TEXT", "revoked TEXT", "reason TEXT",
    "renews TEXT NOT NULL DEFAULT ''", "recorded INTEGER NOT NULL DEFAULT 0",
    "signer TEXT NOT NULL DEFAULT ''", NULL
};

static const char *const statements[ST_COUNT] = {
    /* ST_SELECT: clients that keep their key derive the transactionID
     * from it, so a renewal shares transaction and key with the request
     * that got the certificate it renews: the serial renewed tells them
     * apart. */
    "SELECT cert, recorded FROM scep_issued WHERE transid = %s "
    "AND keyid = %s AND renews = %s",
    /* ST_INSERT */
    "INSERT INTO scep_issued (serial, transid, keyid, renews, subject, "
    "template, requester, client, issued, not_after, cert, recorded, "
    "signer) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
    /* ST_STATUS */
    "SELECT COALESCE(revoked, '') FROM scep_issued WHERE serial = %s",
    /* ST_SUPERSEDE */
    "UPDATE scep_issued SET superseded_by = %s WHERE serial = %s",
    /* ST_REVOKE */
    "UPDATE scep_issued SET revoked = %s, reason = %s "
    "WHERE serial = %s AND revoked IS NULL",
    /* ST_BY_SERIAL: GetCert */
    "SELECT cert FROM scep_issued WHERE serial = %s",
    /* ST_POLL_KEY: CertPoll by the request's key */
    "SELECT cert FROM scep_issued WHERE transid = %s "
    "AND (keyid = %s OR signer = %s) AND recorded >= %s "
    "ORDER BY recorded DESC",
    /* ST_POLL_RENEWS: CertPoll signed by the certificate renewed */
    "SELECT cert FROM scep_issued WHERE transid = %s AND renews = %s "
    "AND recorded >= %s ORDER BY recorded DESC",
    /* ST_REVOKED: the CRL's entries */
    "SELECT serial, revoked, COALESCE(reason, '') FROM scep_issued "
    "WHERE revoked IS NOT NULL",
    /* ST_CRL_STATE: has the CRL changed since it was signed? */
    "SELECT COUNT(*), COALESCE(MAX(revoked), '') FROM scep_issued "
    "WHERE revoked IS NOT NULL",
    /* ST_CRL_GET */
    "SELECT state, made, number, pem FROM scep_crl WHERE kind = %s",
    /* ST_CRL_NUMBER */
    "SELECT COALESCE(MAX(number), 0) FROM scep_crl",
    /* ST_CRL_PUT */
    "INSERT INTO scep_crl (kind, state, made, number, pem) "
    "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (kind) DO UPDATE SET "
    "state = excluded.state, made = excluded.made, "
    "number = excluded.number, pem = excluded.pem",
    /* ST_RETIRE: a transaction issued longer ago than
     * SCEPIssuedRetention steps aside for a new request with the same
     * transaction and key; its certificate stays (GetCert, CRL). */
    "UPDATE scep_issued SET transid = transid || '~' || serial "
    "WHERE transid = %s AND keyid = %s AND renews = %s",
    /* ST_PENDING_GET */
    "SELECT id, state, COALESCE(serial, ''), COALESCE(reason, '') "
    "FROM scep_pending WHERE transid = %s AND keyid = %s AND renews = %s "
    "AND expires >= %s",
    /* ST_PENDING_POLL */
    "SELECT id, state, COALESCE(serial, ''), COALESCE(reason, ''), csr "
    "FROM scep_pending WHERE transid = %s "
    "AND (keyid = %s OR signer = %s OR renews = %s) "
    "AND expires >= %s ORDER BY id DESC",
    /* ST_PENDING_ADD */
    "INSERT INTO scep_pending (transid, keyid, renews, subject, sans, "
    "keytype, template, requester, client, received, expires, csr, "
    "revoke_old, signer) "
    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
    /* ST_PENDING_DROP: a rejected request asked again with a password */
    "DELETE FROM scep_pending WHERE id = %s",
    /* ST_PENDING_ROW */
    "SELECT transid, keyid, renews, template, COALESCE(requester, ''), "
    "COALESCE(client, ''), csr, revoke_old, state, expires, signer "
    "FROM scep_pending WHERE id = %s",
    /* ST_PENDING_LIST */
    "SELECT id, subject, sans, keytype, template, COALESCE(requester, ''), "
    "COALESCE(client, ''), received, renews FROM scep_pending "
    "WHERE state = 'pending' AND expires >= %s ORDER BY id",
    /* ST_PENDING_DECIDE */
    "UPDATE scep_pending SET state = %s, decided = %s, decided_by = %s, "
    "serial = %s, reason = %s WHERE id = %s AND state = 'pending'",
    /* ST_PENDING_PURGE */
    "DELETE FROM scep_pending WHERE expires < %s"
};

static apr_pool_t *child_pool;

SCEP_POOL_FREE(X509, X509_free)
SCEP_POOL_FREE(X509_REQ, X509_REQ_free)

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

STACK_OF(X509) *scep_db_ca_chain(const scep_dir_conf_t *c)
{
    return c->localca_cert ? c->localca_cert->certs : c->ca->certs;
}

X509 *scep_db_ca_cert(const scep_dir_conf_t *c)
{
    return sk_X509_value(scep_db_ca_chain(c), 0);
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
    const char *spec, *err = NULL;
    apr_dbd_t *h;
    int rows, i;

    if (c->localca_key == NULL) {
        return "the local CA needs SCEPLocalCAKeyFile";
    }
    if (X509_check_private_key(scep_db_ca_cert(c), c->localca_key->key) != 1) {
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
    for (i = 0; schema[i] && !err; i++) {
        if (apr_dbd_query(driver, h, &rows, schema[i]) != 0) {
            err = apr_psprintf(p, "cannot create the tables in %s: %s", spec,
                               apr_dbd_error(driver, h, 0));
        }
    }
    for (i = 0; added_columns[i] && !err; i++) {
        apr_dbd_query(driver, h, &rows,
                      apr_pstrcat(p, "ALTER TABLE scep_issued ADD COLUMN ",
                                  added_columns[i], NULL));
    }
    apr_dbd_close(driver, h);
    if (!err && !strncmp(spec, "sqlite3:", 8) && geteuid() == 0
        && chown(spec + 8, ap_unixd_config.user_id, -1) != 0) {
        err = apr_psprintf(p, "cannot give %s to the httpd user", spec + 8);
    }
    return err;
}

apr_status_t scep_db_child_init(void *instance, apr_pool_t *p,
                                     server_rec *s)
{
    child_pool = p;
    conns = apr_hash_make(p);
    return apr_thread_mutex_create(&conns_mutex, APR_THREAD_MUTEX_DEFAULT, p);
}

/* SHA-256 of a SubjectPublicKeyInfo as it was received (re-encoding the
 * parsed structure; no trip through OpenSSL 3's key encoders). */
const char *scep_db_key_id(apr_pool_t *p, X509_PUBKEY *spki)
{
    unsigned char *der = NULL;
    int n = i2d_X509_PUBKEY(spki, &der);
    const char *id = n > 0 ? scep_ca_sha256_hex(p, der, (apr_size_t)n)
                           : NULL;

    OPENSSL_free(der);
    return id;
}

const char *scep_db_transaction_key(apr_pool_t *p, const char *transid)
{
    return scep_ca_sha256_hex(p, transid, strlen(transid));
}

static apr_status_t free_conn_crl(void *d)
{
    scep_db_t *conn = d;

    X509_CRL_free(conn->crl);
    conn->crl = NULL;
    return APR_SUCCESS;
}

/* Open a connection in its own pool, so a failed attempt leaves nothing
 * behind in the child. */
static scep_db_t *open_conn(request_rec *r, const char *spec)
{
    apr_pool_t *p;
    scep_db_t *conn;
    const char *err;
    int rows, i;

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
    err = NULL;
    if (apr_thread_mutex_create(&conn->mutex, APR_THREAD_MUTEX_DEFAULT, p)
            != APR_SUCCESS) {
        err = "no mutex";
    }
    for (i = 0; i < ST_COUNT && !err; i++) {
        if (apr_dbd_prepare(conn->driver, p, conn->handle, statements[i],
                            NULL, &conn->st[i]) != 0) {
            err = apr_dbd_error(conn->driver, conn->handle, 0);
        }
    }
    if (err) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, SCEPLOGNO(00063)
                      "local CA: cannot prepare statements on %s: %s", spec,
                      err);
        apr_dbd_close(conn->driver, conn->handle);
        apr_pool_destroy(p);
        return NULL;
    }
    apr_pool_cleanup_register(p, conn, free_conn_crl, apr_pool_cleanup_null);
    apr_hash_set(conns, apr_pstrdup(p, spec), APR_HASH_KEY_STRING, conn);
    return conn;
}

scep_db_t *scep_db_connect(request_rec *r, const char *spec)
{
    scep_db_t *conn;

    if (conns == NULL) {
        return NULL;  /* no configuration uses the local CA */
    }
    apr_thread_mutex_lock(conns_mutex);
    conn = apr_hash_get(conns, spec, APR_HASH_KEY_STRING);
    if (conn == NULL) {
        conn = open_conn(r, spec);
    }
    apr_thread_mutex_unlock(conns_mutex);
    return conn;
}

scep_db_t *scep_db_for(request_rec *r, const scep_dir_conf_t **c)
{
    *c = ap_get_module_config(r->per_dir_config, &scep_module);
    return (*c)->localca_key
               ? scep_db_connect(r, scep_ca_local_db(r->pool, *c))
               : NULL;
}

/* A statement's arguments: a NULL-terminated list (never NULL values). */
#define DB_MAX_ARGS 16
static int collect_args(const char **argv, va_list ap)
{
    const char *a;
    int n = 0;

    while (n < DB_MAX_ARGS && (a = va_arg(ap, const char *)) != NULL) {
        argv[n++] = a;
    }
    return n;
}

/* Run a query (the connection's mutex held); the first row's first
 * ncols columns go to cols, copied to r->pool.  1: a row, 0: none,
 * -1: an error. */
int scep_db_row(request_rec *r, scep_db_t *db, int st, const char **cols,
                  int ncols, ...)
{
    const char *argv[DB_MAX_ARGS];
    apr_dbd_results_t *res = NULL;
    apr_dbd_row_t *row = NULL;
    int n, i, found = 0;
    va_list ap;

    va_start(ap, ncols);
    n = collect_args(argv, ap);
    va_end(ap);
    if (apr_dbd_pselect(db->driver, r->pool, db->handle, &res, db->st[st], 0,
                        n, argv) != 0) {
        return -1;
    }
    /* Read every row so the statement is finished. */
    while (apr_dbd_get_row(db->driver, r->pool, res, &row, -1) == 0) {
        for (i = 0; !found && i < ncols; i++) {
            const char *v = apr_dbd_get_entry(db->driver, row, i);
            cols[i] = apr_pstrdup(r->pool, v ? v : "");
        }
        found = 1;
    }
    return found;
}

/* Run a change (the mutex held): the rows changed, or -1. */
int scep_db_exec(request_rec *r, scep_db_t *db, int st, ...)
{
    const char *argv[DB_MAX_ARGS];
    int n, rows = 0;
    va_list ap;

    va_start(ap, st);
    n = collect_args(argv, ap);
    va_end(ap);
    return apr_dbd_pquery(db->driver, r->pool, db->handle, &rows, db->st[st],
                          n, argv) == 0 ? rows : -1;
}

const char *scep_db_secs(apr_pool_t *p, apr_time_t secs)
{
    return apr_psprintf(p, "%" APR_TIME_T_FMT, secs);
}

apr_time_t scep_db_now(void)
{
    return apr_time_sec(apr_time_now());
}

X509 *scep_db_cert(apr_pool_t *p, const char *pem)
{
    BIO *bio = BIO_new_mem_buf(pem, -1);
    X509 *x = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;

    BIO_free(bio);
    return own_X509(p, x);
}

X509_REQ *scep_db_csr(apr_pool_t *p, const char *pem)
{
    BIO *bio = BIO_new_mem_buf(pem, -1);
    X509_REQ *x = bio ? PEM_read_bio_X509_REQ(bio, NULL, NULL, NULL) : NULL;

    BIO_free(bio);
    return own_X509_REQ(p, x);
}

/* PEM of a certificate (csr NULL) or of a request. */
const char *scep_db_pem(apr_pool_t *p, X509 *x, X509_REQ *csr)
{
    BIO *b = BIO_new(BIO_s_mem());
    const char *s = NULL;
    char *data;
    long n;

    if (b && (x ? PEM_write_bio_X509(b, x) : PEM_write_bio_X509_REQ(b, csr))
        && (n = BIO_get_mem_data(b, &data)) > 0) {
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

int scep_db_record(request_rec *r, scep_db_t *db, X509 *x,
                   const scep_origin_t *o)
{
    return scep_db_exec(r, db, ST_INSERT, scep_ca_serial_hex(r->pool, x),
                        o->transid, o->keyid, o->renews,
                        scep_ra_subject(r->pool, x), o->template_name,
                        o->requester ? o->requester : "",
                        o->client ? o->client : "",
                        asn1_time_text(r->pool, X509_get0_notBefore(x)),
                        asn1_time_text(r->pool, X509_get0_notAfter(x)),
                        scep_db_pem(r->pool, x, NULL),
                        scep_db_secs(r->pool, scep_db_now()), o->signer,
                        NULL) == 1;
}

/* Now as the revoked column keeps it: YYYYMMDDHHMMSSZ. */
const char *scep_db_revocation_time(apr_pool_t *p)
{
    apr_time_exp_t tm;

    apr_time_exp_gmt(&tm, apr_time_now());
    return apr_psprintf(p, "%04d%02d%02d%02d%02d%02dZ", tm.tm_year + 1900,
                        tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                        tm.tm_sec);
}

/* The certificate a renewal replaced: superseded, and revoked too with
 * SCEPRenewalRevokeOld On. */
void scep_db_replaced(request_rec *r, scep_db_t *db, X509 *x,
                     const char *old, int revoke)
{
    const char *serial = scep_ca_serial_hex(r->pool, x);

    scep_db_exec(r, db, ST_SUPERSEDE, serial, old, NULL);
    if (revoke
        && scep_db_exec(r, db, ST_REVOKE, scep_db_revocation_time(r->pool),
                        "superseded", old, NULL) == 1) {
        ap_log_rerror(APLOG_MARK, APLOG_NOTICE, 0, r, SCEPLOGNO(00110)
                      "local CA: serial %s revoked (superseded by its "
                      "renewal %s; SCEPRenewalRevokeOld On)", old, serial);
    }
}
