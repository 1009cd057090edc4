/* Licensed under the Apache License, Version 2.0; see LICENSE. */

/*
 * What administrators do to the embedded CA through the approval page
 * (scep_requests.c): list the requests it holds, approve (issue) or
 * reject them, revoke certificates.
 */

#include <apr_lib.h>
#include <apr_dbd.h>
#include <apr_strings.h>
#include <apr_thread_mutex.h>

#include <httpd.h>
#include <http_config.h>
#include <http_log.h>


#include "mod_scep.h"
#include "scep_ca.h"
#include "scep_ca_db.h"
#include "scep_ca_local.h"
#include "scep_config.h"
#include "scep_log.h"

APLOG_USE_MODULE(scep);

apr_array_header_t *scep_ca_local_pending(request_rec *r,
                                          const scep_dir_conf_t *c)
{
    scep_db_t *db = scep_db_for(r, &c);
    apr_array_header_t *list;
    apr_dbd_results_t *res = NULL;
    apr_dbd_row_t *row = NULL;
    const char *now;

    if (db == NULL) {
        return NULL;
    }
    list = apr_array_make(r->pool, 8, sizeof(scep_pending_t));
    now = scep_db_secs(r->pool, scep_db_now());
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
                                         scep_db_t *db, const char *id,
                                         int approve, const char *reason,
                                         const char **detail)
{
    const char *cols[11], *now = scep_db_secs(r->pool, scep_db_now());
    const scep_template_t *t;
    const char *why;
    X509_REQ *csr;
    X509 *x = NULL;
    scep_origin_t o;
    int found;

    found = scep_db_row(r, db, ST_PENDING_ROW, cols, 11, id, NULL);
    if (found < 0) {
        return SCEP_LOCAL_ERROR;
    }
    if (found == 0 || apr_atoi64(cols[9]) < scep_db_now()) {
        return SCEP_LOCAL_NOT_FOUND;
    }
    if (strcmp(cols[8], "pending")) {
        *detail = cols[8];
        return SCEP_LOCAL_CONFLICT;
    }
    if (!approve) {
        return scep_db_exec(r, db, ST_PENDING_DECIDE, "rejected", now,
                            r->user, "", reason ? reason : "", id, NULL) == 1
                   ? SCEP_LOCAL_DONE : SCEP_LOCAL_ERROR;
    }
    csr = scep_db_csr(r->pool, cols[6]);
    t = scep_conf_issuing(r->pool, c, scep_conf_template_named(cols[3]));
    why = csr == NULL ? "the stored request cannot be read"
          : t == NULL ? apr_psprintf(r->pool, "template %s is no longer "
                                     "configured", cols[3])
                      : scep_ca_issue(r->pool, scep_db_ca_cert(c),
                                      c->localca_key->key, scep_conf_hash(c),
                                      csr, t, &x);
    if (why) {
        scep_db_exec(r, db, ST_PENDING_DECIDE, "rejected", now, r->user, "",
                     why, id, NULL);
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
    if (!scep_db_record(r, db, x, &o)) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, SCEPLOGNO(00114)
                      "local CA: cannot record the certificate of request "
                      "%s: %s", id, apr_dbd_error(db->driver, db->handle, 0));
        return SCEP_LOCAL_ERROR;
    }
    if (*o.renews) {
        scep_db_replaced(r, db, x, o.renews, !strcmp(cols[7], "1"));
    }
    *detail = scep_ca_serial_hex(r->pool, x);
    scep_db_exec(r, db, ST_PENDING_DECIDE, "issued", now, r->user, *detail, "",
                 id, NULL);
    return SCEP_LOCAL_DONE;
}

scep_local_result_e scep_ca_local_decide(request_rec *r,
                                         const scep_dir_conf_t *c,
                                         const char *id, int approve,
                                         const char *reason,
                                         const char **detail)
{
    scep_db_t *db = scep_db_for(r, &c);
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
    scep_db_t *db = scep_db_for(r, &c);
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
    n = scep_db_exec(r, db, ST_REVOKE, scep_db_revocation_time(r->pool),
                     reason ? reason : "unspecified", hex, NULL);
    if (n == 0) {
        n = scep_db_row(r, db, ST_STATUS, cols, 1, hex, NULL) == 1 ? -2 : 0;
    }
    apr_thread_mutex_unlock(db->mutex);
    return n == 1 ? SCEP_LOCAL_DONE : n == -2 ? SCEP_LOCAL_CONFLICT
           : n == 0 ? SCEP_LOCAL_NOT_FOUND : SCEP_LOCAL_ERROR;
}
