/* Licensed under the Apache License, Version 2.0; see LICENSE. */

/*
 * Submission provider "local": the embedded CA.  Certificates are made by
 * scep_ca.c; every one is recorded in the CA's database (apr_dbd, SQLite
 * by default) before the reply goes out, and a request resent with the
 * same transactionID and key gets the recorded certificate back
 * (RFC 8894 3.3.1), never a second one.
 */

#include <stdarg.h>
#include <unistd.h>

#include <apr_dbd.h>
#include <apr_file_info.h>
#include <apr_lib.h>
#include <apr_hash.h>
#include <apr_strings.h>
#include <apr_thread_mutex.h>

#include <httpd.h>
#include <http_config.h>
#include <http_log.h>
#include <mpm_common.h>
#include <unixd.h>

#include <openssl/pem.h>
#include <openssl/x509v3.h>

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

/* The prepared statements of a connection. */
enum {
    ST_SELECT, ST_INSERT, ST_STATUS, ST_SUPERSEDE, ST_REVOKE, ST_BY_SERIAL,
    ST_POLL_KEY, ST_POLL_RENEWS, ST_REVOKED, ST_CRL_STATE, ST_CRL_GET,
    ST_CRL_NUMBER, ST_CRL_PUT, ST_RETIRE,
    ST_PENDING_GET, ST_PENDING_POLL, ST_PENDING_ADD, ST_PENDING_DROP,
    ST_PENDING_ROW, ST_PENDING_LIST, ST_PENDING_DECIDE, ST_PENDING_PURGE,
    ST_COUNT
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

/* One connection per database per process; apr_dbd handles are not
 * thread-safe, so requests take turns.  The current CRL is kept parsed. */
typedef struct {
    const apr_dbd_driver_t *driver;
    apr_dbd_t *handle;
    apr_thread_mutex_t *mutex;
    apr_dbd_prepared_t *st[ST_COUNT];
    apr_time_t last_purge;
    X509_CRL *crl;                     /* parsed from scep_crl */
    char crl_key[96];                  /* its kind/made/number */
} db_conn_t;

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

static STACK_OF(X509) *ca_chain(const scep_dir_conf_t *c)
{
    return c->localca_cert ? c->localca_cert->certs : c->ca->certs;
}

static X509 *ca_cert(const scep_dir_conf_t *c)
{
    return sk_X509_value(ca_chain(c), 0);
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

static apr_status_t free_conn_crl(void *d)
{
    db_conn_t *conn = d;

    X509_CRL_free(conn->crl);
    conn->crl = NULL;
    return APR_SUCCESS;
}

/* Open a connection in its own pool, so a failed attempt leaves nothing
 * behind in the child. */
static db_conn_t *open_conn(request_rec *r, const char *spec)
{
    apr_pool_t *p;
    db_conn_t *conn;
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

static db_conn_t *connection(request_rec *r, const char *spec)
{
    db_conn_t *conn;

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

static db_conn_t *conf_db(request_rec *r, const scep_dir_conf_t **c)
{
    *c = ap_get_module_config(r->per_dir_config, &scep_module);
    return (*c)->localca_key ? connection(r, scep_ca_local_db(r->pool, *c))
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
static int db_row(request_rec *r, db_conn_t *db, int st, const char **cols,
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
static int db_exec(request_rec *r, db_conn_t *db, int st, ...)
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

static const char *secs_text(apr_pool_t *p, apr_time_t secs)
{
    return apr_psprintf(p, "%" APR_TIME_T_FMT, secs);
}

static apr_time_t now_secs(void)
{
    return apr_time_sec(apr_time_now());
}

static X509 *pem_cert(apr_pool_t *p, const char *pem)
{
    BIO *bio = BIO_new_mem_buf(pem, -1);
    X509 *x = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;

    BIO_free(bio);
    return own_X509(p, x);
}

static X509_REQ *pem_csr(apr_pool_t *p, const char *pem)
{
    BIO *bio = BIO_new_mem_buf(pem, -1);
    X509_REQ *x = bio ? PEM_read_bio_X509_REQ(bio, NULL, NULL, NULL) : NULL;

    BIO_free(bio);
    return own_X509_REQ(p, x);
}

/* PEM of a certificate (csr NULL) or of a request. */
static const char *pem_of(apr_pool_t *p, X509 *x, X509_REQ *csr)
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

/* Who asked for a certificate: kept with it. */
typedef struct {
    const char *transid, *keyid, *renews;  /* hashes; renews: a serial */
    const char *signer;                    /* hash of the signer's key */
    const char *template_name, *requester, *client;
} origin_t;

static int record(request_rec *r, db_conn_t *db, X509 *x, const origin_t *o)
{
    return db_exec(r, db, ST_INSERT, scep_ca_serial_hex(r->pool, x),
                   o->transid, o->keyid, o->renews,
                   scep_ra_subject(r->pool, x), o->template_name,
                   o->requester ? o->requester : "",
                   o->client ? o->client : "",
                   asn1_time_text(r->pool, X509_get0_notBefore(x)),
                   asn1_time_text(r->pool, X509_get0_notAfter(x)),
                   pem_of(r->pool, x, NULL), secs_text(r->pool, now_secs()),
                   o->signer, NULL) == 1;
}

/* Now as the revoked column keeps it: YYYYMMDDHHMMSSZ. */
static const char *revocation_time(apr_pool_t *p)
{
    apr_time_exp_t tm;

    apr_time_exp_gmt(&tm, apr_time_now());
    return apr_psprintf(p, "%04d%02d%02d%02d%02d%02dZ", tm.tm_year + 1900,
                        tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                        tm.tm_sec);
}

/* The certificate a renewal replaced: superseded, and revoked too with
 * SCEPRenewalRevokeOld On. */
static void replaced(request_rec *r, db_conn_t *db, X509 *x,
                     const char *old, int revoke)
{
    const char *serial = scep_ca_serial_hex(r->pool, x);

    db_exec(r, db, ST_SUPERSEDE, serial, old, NULL);
    if (revoke && db_exec(r, db, ST_REVOKE, revocation_time(r->pool),
                          "superseded", old, NULL) == 1) {
        ap_log_rerror(APLOG_MARK, APLOG_NOTICE, 0, r, SCEPLOGNO(00110)
                      "local CA: serial %s revoked (superseded by its "
                      "renewal %s; SCEPRenewalRevokeOld On)", old, serial);
    }
}

static void issued(scep_submit_result_t *res, apr_pool_t *p, X509 *x,
                   const scep_dir_conf_t *c)
{
    STACK_OF(X509) *chain = ca_chain(c);
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
static void purge_pending(request_rec *r, db_conn_t *db)
{
    apr_time_t now = now_secs();

    if (now - db->last_purge >= 60) {
        db->last_purge = now;
        db_exec(r, db, ST_PENDING_PURGE, secs_text(r->pool, now), NULL);
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
                         db_conn_t *db, const scep_submit_request_t *req,
                         X509_REQ *csr, const origin_t *o,
                         scep_submit_result_t *res)
{
    apr_time_t now = now_secs();
    const char *cols[1];
    int added;

    added = db_exec(r, db, ST_PENDING_ADD, o->transid, o->keyid, o->renews,
                    scep_ra_name(r->pool, X509_REQ_get_subject_name(csr)),
                    sans_text(r->pool, csr), key_text(r->pool, csr),
                    o->template_name, o->requester ? o->requester : "",
                    o->client ? o->client : "", secs_text(r->pool, now),
                    secs_text(r->pool, now + scep_conf_pending_retention(c)),
                    pem_of(r->pool, NULL, csr),
                    c->renewal_revoke_old == 1 ? "1" : "0", o->signer,
                    NULL) == 1;
    /* Not added: a twin from another process was (found here), or the
     * database failed. */
    if (db_row(r, db, ST_PENDING_GET, cols, 1, o->transid, o->keyid,
               o->renews, secs_text(r->pool, now), NULL) != 1) {
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
                              db_conn_t *db, X509_REQ *csr,
                              const scep_template_t *t, const origin_t *o,
                              int revoke_old, scep_submit_result_t *res)
{
    const char *why, *cols[1];
    X509 *x = NULL;
    int attempt, done = 0;

    for (attempt = 0; attempt < 3 && !done; attempt++) {
        why = scep_ca_issue(r->pool, ca_cert(c), c->localca_key->key,
                            scep_conf_hash(c), csr, t, &x);
        if (why) {
            refused(res, FAIL_BADREQUEST, why);
            return APR_SUCCESS;
        }
        apr_thread_mutex_lock(db->mutex);
        if (record(r, db, x, o)) {
            if (*o->renews) {
                replaced(r, db, x, o->renews, revoke_old);
            }
            done = 1;
        }
        else if (db_row(r, db, ST_SELECT, cols, 1, o->transid, o->keyid,
                        o->renews, NULL) == 1
                 && (x = pem_cert(r->pool, cols[0])) != NULL) {
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

static X509 *cert_by_serial(request_rec *r, db_conn_t *db, const char *hex)
{
    const char *cols[1];

    return db_row(r, db, ST_BY_SERIAL, cols, 1, hex, NULL) == 1
               ? pem_cert(r->pool, cols[0]) : NULL;
}

/* What the CA answers a request (the connection's mutex held): what it
 * answered before for the same transaction and key (RFC 8894 3.3.1),
 * else a new decision; APR_INCOMPLETE when it is to be issued now. */
static apr_status_t submit_locked(request_rec *r, const scep_dir_conf_t *c,
                                  db_conn_t *db,
                                  const scep_submit_request_t *req,
                                  X509_REQ *csr, const scep_template_t *t,
                                  const origin_t *o,
                                  scep_submit_result_t *res)
{
    apr_time_t now = now_secs();
    const char *cols[4];
    X509 *x;
    int found;

    purge_pending(r, db);
    found = db_row(r, db, ST_PENDING_GET, cols, 4, o->transid, o->keyid,
                   o->renews, secs_text(r->pool, now), NULL);
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
        db_exec(r, db, ST_PENDING_DROP, cols[0], NULL);
    }
    found = db_row(r, db, ST_SELECT, cols, 2, o->transid, o->keyid, o->renews,
                   NULL);
    if (found == 1) {
        if (apr_atoi64(cols[1]) >= now - scep_conf_issued_retention(c)
            && (x = pem_cert(r->pool, cols[0])) != NULL) {
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
        db_exec(r, db, ST_RETIRE, o->transid, o->keyid, o->renews, NULL);
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
    db_conn_t *db = conf_db(r, &c);
    const unsigned char *in = req->csr;
    const scep_template_t *t;
    X509_REQ *csr;
    origin_t o;
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
    o.keyid = key_id(r->pool, X509_REQ_get_X509_PUBKEY(csr));
    if (o.keyid == NULL) {
        return APR_EINVAL;
    }
    o.transid = transaction_key(r->pool, req->transaction_id);
    o.signer = req->requester_cert
                   ? key_id(r->pool, X509_get_X509_PUBKEY(req->requester_cert))
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
    db_conn_t *db = conf_db(r, &c);
    const char *keyid = key_id(r->pool, X509_get_X509_PUBKEY(requester));
    const char *transid = transaction_key(r->pool, transaction_id);
    const char *serial = scep_ca_serial_hex(r->pool, requester);
    const char *cols[5];
    apr_time_t now = now_secs();
    X509_REQ *csr = NULL;
    X509 *x = NULL;
    int found;

    if (db == NULL || keyid == NULL) {
        return APR_EGENERAL;
    }
    apr_thread_mutex_lock(db->mutex);
    purge_pending(r, db);
    found = db_row(r, db, ST_PENDING_POLL, cols, 5, transid, keyid, keyid,
                   serial, secs_text(r->pool, now), NULL);
    if (found == 1) {
        csr = pem_csr(r->pool, cols[4]);
        if (!strcmp(cols[1], "issued")) {
            x = cert_by_serial(r, db, cols[2]);
        }
    }
    else {
        const char *cutoff =
            secs_text(r->pool, now - scep_conf_issued_retention(c));
        if (db_row(r, db, ST_POLL_KEY, cols, 1, transid, keyid, keyid, cutoff,
                   NULL) == 1
            || db_row(r, db, ST_POLL_RENEWS, cols, 1, transid, serial,
                      cutoff, NULL) == 1) {
            x = pem_cert(r->pool, cols[0]);
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
                          db_conn_t *db, apr_int64_t serial)
{
    X509 *ca = ca_cert(c);
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

/* The current CRL (the mutex held, in a database transaction): the one
 * in scep_crl while it lists what is revoked and is less than half its
 * validity old, else a new one put there, numbered after every earlier
 * one (at least the time, so a lost table does not restart at 1). */
static X509_CRL *current_crl(request_rec *r, const scep_dir_conf_t *c,
                             db_conn_t *db)
{
    apr_time_t now = now_secs();
    apr_time_t half = (c->crl_days > 0 ? c->crl_days : 7) * 43200;
    const char *cols[4], *state, *kind, *key, *pem;
    apr_int64_t number;
    X509_CRL *crl;
    BIO *bio;

    if (db_row(r, db, ST_CRL_STATE, cols, 2, NULL) != 1) {
        return NULL;
    }
    state = apr_pstrcat(r->pool, cols[0], "/", cols[1], NULL);
    /* Locations of one CA may differ in validity and hash. */
    kind = apr_psprintf(r->pool, "%d/%s", c->crl_days,
                        EVP_MD_get0_name(scep_conf_hash(c)));
    if (db_row(r, db, ST_CRL_GET, cols, 4, kind, NULL) == 1
        && !strcmp(cols[0], state) && now - apr_atoi64(cols[1]) < half) {
        key = apr_pstrcat(r->pool, kind, "/", cols[1], "/", cols[2], NULL);
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
            return crl;
        }
    }
    if (db_row(r, db, ST_CRL_NUMBER, cols, 1, NULL) != 1) {
        return NULL;
    }
    number = apr_atoi64(cols[0]) + 1;
    if (number < now) {
        number = now;
    }
    crl = make_crl(r, c, db, number);
    bio = crl ? BIO_new(BIO_s_mem()) : NULL;
    if (bio == NULL || !PEM_write_bio_X509_CRL(bio, crl)
        || BIO_write(bio, "", 1) != 1 || BIO_get_mem_data(bio, &pem) <= 0
        || db_exec(r, db, ST_CRL_PUT, kind, state, secs_text(r->pool, now),
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
    db_conn_t *db = c->localca_key
                        ? connection(r, scep_ca_local_db(r->pool, c)) : NULL;
    apr_dbd_transaction_t *trans = NULL;
    X509_CRL *crl;

    if (db == NULL) {
        return APR_EGENERAL;
    }
    apr_thread_mutex_lock(db->mutex);
    /* One process at a time decides and signs. */
    if (apr_dbd_transaction_start(db->driver, r->pool, db->handle, &trans)
        != 0) {
        apr_thread_mutex_unlock(db->mutex);
        return APR_EGENERAL;
    }
    crl = current_crl(r, c, db);
    if (crl == NULL) {
        apr_dbd_transaction_mode_set(db->driver, trans,
                                     APR_DBD_TRANSACTION_ROLLBACK);
    }
    apr_dbd_transaction_end(db->driver, r->pool, trans);
    if (crl) {
        X509_CRL_up_ref(crl);
        *out = own_X509_CRL(r->pool, crl);
    }
    apr_thread_mutex_unlock(db->mutex);
    return crl ? APR_SUCCESS : APR_EGENERAL;
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
    if (X509_NAME_cmp(issuer, X509_get_subject_name(ca_cert(c))) != 0) {
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
    db_conn_t *db;
    int found;

    c = ap_get_module_config(r->per_dir_config, &scep_module);
    if (c->localca_key == NULL
        || X509_NAME_cmp(X509_get_issuer_name(cert),
                         X509_get_subject_name(ca_cert(c))) != 0
        || (db = conf_db(r, &c)) == NULL) {
        return SCEP_CERT_UNKNOWN;
    }
    apr_thread_mutex_lock(db->mutex);
    found = db_row(r, db, ST_STATUS, cols, 1,
                   scep_ca_serial_hex(r->pool, cert), NULL);
    apr_thread_mutex_unlock(db->mutex);
    return found != 1 ? SCEP_CERT_UNKNOWN
           : *cols[0] ? SCEP_CERT_REVOKED : SCEP_CERT_GOOD;
}

/* ---- what administrators do (scep_requests.c) ---- */

apr_array_header_t *scep_ca_local_pending(request_rec *r,
                                          const scep_dir_conf_t *c)
{
    db_conn_t *db = conf_db(r, &c);
    apr_array_header_t *list;
    apr_dbd_results_t *res = NULL;
    apr_dbd_row_t *row = NULL;
    const char *now;

    if (db == NULL) {
        return NULL;
    }
    list = apr_array_make(r->pool, 8, sizeof(scep_pending_t));
    now = secs_text(r->pool, now_secs());
    apr_thread_mutex_lock(db->mutex);
    if (apr_dbd_pvselect(db->driver, r->pool, db->handle, &res,
                         db->st[ST_PENDING_LIST], 0, now) != 0) {
        list = NULL;
    }
    while (list && apr_dbd_get_row(db->driver, r->pool, res, &row, -1) == 0) {
        scep_pending_t *p = apr_array_push(list);
        const char *v[9];
        int i;
        for (i = 0; i < 9; i++) {
            v[i] = apr_dbd_get_entry(db->driver, row, i);
            v[i] = apr_pstrdup(r->pool, v[i] ? v[i] : "");
        }
        p->id = v[0];
        p->subject = v[1];
        p->sans = v[2];
        p->key = v[3];
        p->template_name = v[4];
        p->requester = v[5];
        p->client = v[6];
        p->received = apr_time_from_sec(apr_atoi64(v[7]));
        p->renewal = *v[8] != '\0';
    }
    apr_thread_mutex_unlock(db->mutex);
    return list;
}

static scep_local_result_e decide_locked(request_rec *r,
                                         const scep_dir_conf_t *c,
                                         db_conn_t *db, const char *id,
                                         int approve, const char *reason,
                                         const char **detail)
{
    const char *cols[11], *now = secs_text(r->pool, now_secs());
    const scep_template_t *t;
    const char *why;
    X509_REQ *csr;
    X509 *x = NULL;
    origin_t o;
    int found;

    found = db_row(r, db, ST_PENDING_ROW, cols, 11, id, NULL);
    if (found < 0) {
        return SCEP_LOCAL_ERROR;
    }
    if (found == 0 || apr_atoi64(cols[9]) < now_secs()) {
        return SCEP_LOCAL_NOT_FOUND;
    }
    if (strcmp(cols[8], "pending")) {
        *detail = cols[8];
        return SCEP_LOCAL_CONFLICT;
    }
    if (!approve) {
        return db_exec(r, db, ST_PENDING_DECIDE, "rejected", now, r->user, "",
                       reason ? reason : "", id, NULL) == 1
                   ? SCEP_LOCAL_DONE : SCEP_LOCAL_ERROR;
    }
    csr = pem_csr(r->pool, cols[6]);
    t = scep_conf_template_named(cols[3]);
    why = csr == NULL ? "the stored request cannot be read"
          : t == NULL ? apr_psprintf(r->pool, "template %s is no longer "
                                     "configured", cols[3])
                      : scep_ca_issue(r->pool, ca_cert(c),
                                      c->localca_key->key, scep_conf_hash(c),
                                      csr, t, &x);
    if (why) {
        db_exec(r, db, ST_PENDING_DECIDE, "rejected", now, r->user, "", why,
                id, NULL);
        *detail = why;
        return SCEP_LOCAL_REFUSED;
    }
    o.transid = cols[0];
    o.keyid = cols[1];
    o.renews = cols[2];
    o.template_name = cols[3];
    o.requester = cols[4];
    o.client = cols[5];
    o.signer = cols[10];
    if (!record(r, db, x, &o)) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, SCEPLOGNO(00114)
                      "local CA: cannot record the certificate of request "
                      "%s: %s", id, apr_dbd_error(db->driver, db->handle, 0));
        return SCEP_LOCAL_ERROR;
    }
    if (*o.renews) {
        replaced(r, db, x, o.renews, !strcmp(cols[7], "1"));
    }
    *detail = scep_ca_serial_hex(r->pool, x);
    db_exec(r, db, ST_PENDING_DECIDE, "issued", now, r->user, *detail, "",
            id, NULL);
    return SCEP_LOCAL_DONE;
}

scep_local_result_e scep_ca_local_decide(request_rec *r,
                                         const scep_dir_conf_t *c,
                                         const char *id, int approve,
                                         const char *reason,
                                         const char **detail)
{
    db_conn_t *db = conf_db(r, &c);
    scep_local_result_e rv;

    *detail = NULL;
    if (db == NULL) {
        return SCEP_LOCAL_ERROR;
    }
    apr_thread_mutex_lock(db->mutex);
    rv = decide_locked(r, c, db, id, approve, reason, detail);
    apr_thread_mutex_unlock(db->mutex);
    return rv;
}

scep_local_result_e scep_ca_local_revoke(request_rec *r,
                                         const scep_dir_conf_t *c,
                                         const char *serial,
                                         const char *reason)
{
    db_conn_t *db = conf_db(r, &c);
    char *hex = apr_palloc(r->pool, strlen(serial) + 2), *q = hex + 1;
    const char *s, *cols[1];
    int n;

    /* As BN_bn2hex stores it: upper case, whole bytes, no leading 00. */
    for (s = serial; *s; s++) {
        if (*s == ':') {
            continue;
        }
        if (!apr_isxdigit(*s)) {
            return SCEP_LOCAL_NOT_FOUND;
        }
        if (q == hex + 1 && *s == '0') {
            continue;
        }
        *q++ = (char)apr_toupper(*s);
    }
    *q = '\0';
    if (q == hex + 1 || db == NULL) {
        return db ? SCEP_LOCAL_NOT_FOUND : SCEP_LOCAL_ERROR;
    }
    if ((q - hex - 1) % 2) {
        *hex = '0';
    }
    else {
        hex++;
    }
    apr_thread_mutex_lock(db->mutex);
    n = db_exec(r, db, ST_REVOKE, revocation_time(r->pool),
                reason ? reason : "unspecified", hex, NULL);
    if (n == 0) {
        n = db_row(r, db, ST_STATUS, cols, 1, hex, NULL) == 1 ? -2 : 0;
    }
    apr_thread_mutex_unlock(db->mutex);
    return n == 1 ? SCEP_LOCAL_DONE : n == -2 ? SCEP_LOCAL_CONFLICT
           : n == 0 ? SCEP_LOCAL_NOT_FOUND : SCEP_LOCAL_ERROR;
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
