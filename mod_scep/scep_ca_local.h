/* Licensed under the Apache License, Version 2.0; see LICENSE. */

#ifndef SCEP_CA_LOCAL_H
#define SCEP_CA_LOCAL_H

#include "scep_config.h"

extern const scep_submit_provider_t scep_submit_local;

/* The database of a local CA: SCEPLocalCADatabase, or SQLite in the
 * state directory named after the CA. */
const char *scep_ca_local_db(apr_pool_t *p, const scep_dir_conf_t *c);

/* Startup checks and schema; NULL when ready, else the reason. */
const char *scep_ca_local_startup(apr_pool_t *p, server_rec *s,
                                  const scep_dir_conf_t *c);

/* What an administrator's action on the CA came to. */
typedef enum {
    SCEP_LOCAL_DONE = 0,
    SCEP_LOCAL_NOT_FOUND,      /* no such request or certificate */
    SCEP_LOCAL_CONFLICT,       /* already decided, or already revoked */
    SCEP_LOCAL_REFUSED,        /* approved, but the CA refused to issue */
    SCEP_LOCAL_ERROR           /* the database failed; logged */
} scep_local_result_e;

/* A request held for approval (SCEPLocalCAApproval manual). */
typedef struct {
    const char *id;
    const char *subject;
    const char *sans;          /* "DNS:a, IP Address:b", or "" */
    const char *key;           /* "RSA 2048", "EC prime256v1" */
    const char *template_name;
    const char *requester;     /* who issued the challenge, or "" */
    const char *client;        /* the device's address */
    apr_time_t received;
    int renewal;
} scep_pending_t;

/* The requests waiting for approval at the CA of c, oldest first
 * (scep_pending_t); NULL if the database cannot be read. */
apr_array_header_t *scep_ca_local_pending(request_rec *r,
                                          const scep_dir_conf_t *c);

/* Approve (issue now; the device gets the certificate at its next poll)
 * or reject a held request as r->user.  *detail: the serial issued, or
 * why the CA refused. */
scep_local_result_e scep_ca_local_decide(request_rec *r,
                                         const scep_dir_conf_t *c,
                                         const char *id, int approve,
                                         const char *reason,
                                         const char **detail);

/* Revoke a certificate by serial (hex, colons allowed) with a CRL reason
 * name; NULL reason: unspecified.  The next CRL lists it. */
scep_local_result_e scep_ca_local_revoke(request_rec *r,
                                         const scep_dir_conf_t *c,
                                         const char *serial,
                                         const char *reason);

/* Is this a CRL reason name the CA knows? */
int scep_ca_local_reason_ok(const char *reason);

/* The CA's current CRL, owned by r->pool: signed again when a
 * revocation changed it or half its validity has passed. */
apr_status_t scep_ca_local_crl(request_rec *r, const scep_dir_conf_t *c,
                               X509_CRL **crl);

#endif /* SCEP_CA_LOCAL_H */
