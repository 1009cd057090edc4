/* Licensed under the Apache License, Version 2.0; see LICENSE. */

/*
 * The embedded CA's database (inside the module; not an API): the schema,
 * one connection per database per process with its prepared statements,
 * and the queries the provider, the CRL and the approval page share.
 */
#ifndef SCEP_CA_DB_H
#define SCEP_CA_DB_H

#include <apr_dbd.h>
#include <apr_thread_mutex.h>

#include <httpd.h>
#include <openssl/x509.h>

#include "scep_config.h"

/* The prepared statements of a connection. */
enum {
    ST_SELECT, ST_INSERT, ST_STATUS, ST_SUPERSEDE, ST_REVOKE, ST_BY_SERIAL,
    ST_POLL_KEY, ST_POLL_RENEWS, ST_REVOKED, ST_CRL_STATE, ST_CRL_GET,
    ST_CRL_NUMBER, ST_CRL_PUT, ST_RETIRE,
    ST_PENDING_GET, ST_PENDING_POLL, ST_PENDING_ADD, ST_PENDING_DROP,
    ST_PENDING_ROW, ST_PENDING_LIST, ST_PENDING_DECIDE, ST_PENDING_PURGE,
    ST_COUNT
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
} scep_db_t;

/* Who asked for a certificate: kept with it. */
typedef struct {
    const char *transid, *keyid, *renews;  /* hashes; renews: a serial */
    const char *signer;                    /* hash of the signer's key */
    const char *template_name, *requester, *client;
} scep_origin_t;

/* Startup (as root) and the children's set-up: see scep_ca_local.h. */
apr_status_t scep_db_child_init(void *instance, apr_pool_t *p, server_rec *s);

/* The connection to a database (opened on first use in the process), or
 * that of the local CA of the request's location (*c: its config);
 * NULL when it cannot be opened (logged) or there is no local CA. */
scep_db_t *scep_db_connect(request_rec *r, const char *spec);
scep_db_t *scep_db_for(request_rec *r, const scep_dir_conf_t **c);

/* Run a prepared statement (the mutex held) with a NULL-terminated list
 * of arguments.  scep_db_row: the first row's first ncols columns into
 * cols (r->pool); 1 a row, 0 none, -1 an error.  scep_db_exec: the rows
 * changed, or -1. */
int scep_db_row(request_rec *r, scep_db_t *db, int st, const char **cols,
                int ncols, ...);
int scep_db_exec(request_rec *r, scep_db_t *db, int st, ...);

/* Record an issued certificate; 0 on a clash or an error. */
int scep_db_record(request_rec *r, scep_db_t *db, X509 *x,
                   const scep_origin_t *o);

/* The certificate a renewal replaced: superseded by x, and revoked too
 * when revoke (SCEPRenewalRevokeOld On). */
void scep_db_replaced(request_rec *r, scep_db_t *db, X509 *x,
                      const char *old, int revoke);

/* The CA certificate and its chain of the local CA of c. */
X509 *scep_db_ca_cert(const scep_dir_conf_t *c);
STACK_OF(X509) *scep_db_ca_chain(const scep_dir_conf_t *c);

/* Small conversions: Unix seconds (now, as text), PEM to objects owned by
 * p (NULL if unreadable), objects to PEM (x, or else csr), key and
 * transaction hashes, now as a revocation time (YYYYMMDDHHMMSSZ). */
apr_time_t scep_db_now(void);
const char *scep_db_secs(apr_pool_t *p, apr_time_t secs);
X509 *scep_db_cert(apr_pool_t *p, const char *pem);
X509_REQ *scep_db_csr(apr_pool_t *p, const char *pem);
const char *scep_db_pem(apr_pool_t *p, X509 *x, X509_REQ *csr);
const char *scep_db_key_id(apr_pool_t *p, X509_PUBKEY *spki);
const char *scep_db_transaction_key(apr_pool_t *p, const char *transid);
const char *scep_db_revocation_time(apr_pool_t *p);

#endif /* SCEP_CA_DB_H */
