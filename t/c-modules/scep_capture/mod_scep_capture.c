/* Licensed under the Apache License, Version 2.0; see LICENSE. */

/*
 * TEST ONLY: mod_scep_capture, built and loaded by the Apache::Test suite
 * (t/TEST builds t/c-modules/NAME/mod_NAME.c with apxs).  Never load it
 * in a real server.
 *
 * A submission provider (mod_scep.h) that issues nothing: it writes what
 * the RA hands a CA to a directory, so that t/52-provider.t can check it,
 * and answers as its arguments say.
 *
 *   SCEPProvider capture DIR pending|reject|error [FAILINFO]
 *
 *   pending   SCEP_SUBMIT_PENDING, request_id "capture-TRANSID"
 *   reject    SCEP_SUBMIT_REJECTED with fail_info FAILINFO (default 2,
 *             badRequest)
 *   error     the CA cannot be asked: APR_EGENERAL
 *
 * For every submission TRANSID (the transaction ID, characters other than
 * letters, digits, '-' and '_' replaced by '_') it writes, each file
 * complete before it appears (written aside, then renamed):
 *   DIR/TRANSID.ra.der   req->ra_request (CMS SignedData, DER)
 *   DIR/TRANSID.csr.der  req->csr (PKCS#10, DER)
 *   DIR/TRANSID.info     "name=value" lines: template, transaction_id,
 *                        requester, client_ip, renewal, answer
 * A lookup (req->lookup_only: a resent request whose password is spent)
 * writes nothing but a line "lookup TRANSID" appended to DIR/lookups and
 * answers what the earlier request got: PENDING ("pending", when
 * DIR/TRANSID.info exists: a CA still holding the request), otherwise
 * REJECTED badCertId, as a CA with no such earlier request does.  (It
 * does not compare keys: a test provider.)
 */

#include <string.h>
#include <stdlib.h>
#include <unistd.h>

#include <apr_file_io.h>
#include <apr_lib.h>
#include <apr_strings.h>

#include <httpd.h>
#include <http_config.h>
#include <http_log.h>
#include <ap_provider.h>

#include "../../../mod_scep/mod_scep.h"

module AP_MODULE_DECLARE_DATA scep_capture_module;

typedef enum { ANSWER_PENDING, ANSWER_REJECT, ANSWER_ERROR } answer_e;

typedef struct {
    const char *dir;
    answer_e answer;
    int fail_info;
} capture_t;

static const char *capture_create(void **instance, apr_pool_t *p,
                                  server_rec *s, int argc,
                                  char *const argv[])
{
    capture_t *c = apr_pcalloc(p, sizeof(*c));

    if (argc < 2 || argc > 3) {
        return "SCEPProvider capture DIR pending|reject|error [FAILINFO]";
    }
    c->dir = ap_server_root_relative(p, argv[0]);
    if (!strcmp(argv[1], "pending")) {
        c->answer = ANSWER_PENDING;
    }
    else if (!strcmp(argv[1], "reject")) {
        c->answer = ANSWER_REJECT;
    }
    else if (!strcmp(argv[1], "error")) {
        c->answer = ANSWER_ERROR;
    }
    else {
        return apr_pstrcat(p, "SCEPProvider capture: unknown answer ",
                           argv[1], NULL);
    }
    c->fail_info = argc == 3 ? atoi(argv[2]) : 2;
    *instance = c;
    return NULL;
}

static apr_status_t capture_init(void *instance, apr_pool_t *pconf,
                                 apr_pool_t *ptemp, server_rec *s)
{
    capture_t *c = instance;
    apr_status_t rv = apr_dir_make_recursive(c->dir, APR_FPROT_OS_DEFAULT,
                                             ptemp);

    if (rv != APR_SUCCESS && !APR_STATUS_IS_EEXIST(rv)) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, rv, s,
                     "scep_capture: cannot create %s", c->dir);
        return rv;
    }
    return APR_SUCCESS;
}

/* Write a file completely under another name, then rename it. */
static apr_status_t put(apr_pool_t *p, const char *dir, const char *name,
                        const void *data, apr_size_t len)
{
    const char *path = apr_pstrcat(p, dir, "/", name, NULL);
    const char *tmp = apr_psprintf(p, "%s.tmp.%" APR_PID_T_FMT, path,
                                   getpid());
    apr_file_t *f;
    apr_status_t rv;

    rv = apr_file_open(&f, tmp, APR_FOPEN_WRITE | APR_FOPEN_CREATE
                                    | APR_FOPEN_TRUNCATE | APR_FOPEN_BINARY,
                       APR_FPROT_OS_DEFAULT, p);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    rv = apr_file_write_full(f, data, len, NULL);
    apr_file_close(f);
    if (rv == APR_SUCCESS) {
        rv = apr_file_rename(tmp, path, p);
    }
    return rv;
}

static const char *safe_name(apr_pool_t *p, const char *id)
{
    char *s = apr_pstrdup(p, id ? id : "-");
    char *q;

    for (q = s; *q; q++) {
        if (!apr_isalnum(*q) && *q != '-' && *q != '_') {
            *q = '_';
        }
    }
    return s;
}

static apr_status_t capture_submit(void *instance, request_rec *r,
                                   const scep_submit_request_t *req,
                                   scep_submit_result_t *res)
{
    capture_t *c = instance;
    const char *name = safe_name(r->pool, req->transaction_id);
    const char *answer = c->answer == ANSWER_PENDING ? "pending"
                         : c->answer == ANSWER_REJECT ? "reject" : "error";
    const char *info;
    apr_status_t rv;

    memset(res, 0, sizeof(*res));
    if (req->lookup_only) {
        apr_file_t *f;
        const char *line = apr_pstrcat(r->pool, "lookup ", name, "\n", NULL);
        if (apr_file_open(&f, apr_pstrcat(r->pool, c->dir, "/lookups", NULL),
                          APR_FOPEN_WRITE | APR_FOPEN_CREATE
                              | APR_FOPEN_APPEND,
                          APR_FPROT_OS_DEFAULT, r->pool) == APR_SUCCESS) {
            apr_file_write_full(f, line, strlen(line), NULL);
            apr_file_close(f);
        }
        if (c->answer == ANSWER_PENDING) {
            apr_finfo_t fi;
            const char *seen = apr_pstrcat(r->pool, c->dir, "/", name,
                                           ".info", NULL);
            if (apr_stat(&fi, seen, APR_FINFO_TYPE, r->pool) == APR_SUCCESS) {
                res->status = SCEP_SUBMIT_PENDING;
                res->request_id = apr_pstrcat(r->pool, "capture-", name,
                                              NULL);
                return APR_SUCCESS;
            }
        }
        res->status = SCEP_SUBMIT_REJECTED;
        res->fail_info = 4;  /* badCertId */
        res->reason = "capture: no earlier request";
        return APR_SUCCESS;
    }

    info = apr_psprintf(r->pool,
                        "template=%s\ntransaction_id=%s\nrequester=%s\n"
                        "client_ip=%s\nrenewal=%d\nanswer=%s\n",
                        req->template_name ? req->template_name : "(null)",
                        req->transaction_id ? req->transaction_id : "(null)",
                        req->requester ? req->requester : "(null)",
                        req->client_ip ? req->client_ip : "(null)",
                        req->renewal_signer != NULL, answer);
    if ((rv = put(r->pool, c->dir, apr_pstrcat(r->pool, name, ".ra.der",
                                               NULL),
                  req->ra_request, req->ra_request_len)) != APR_SUCCESS
        || (rv = put(r->pool, c->dir, apr_pstrcat(r->pool, name, ".csr.der",
                                                  NULL),
                     req->csr, req->csr_len)) != APR_SUCCESS
        || (rv = put(r->pool, c->dir, apr_pstrcat(r->pool, name, ".info",
                                                  NULL),
                     info, strlen(info))) != APR_SUCCESS) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, rv, r,
                      "scep_capture: cannot write to %s", c->dir);
        return rv;
    }

    switch (c->answer) {
    case ANSWER_PENDING:
        res->status = SCEP_SUBMIT_PENDING;
        res->request_id = apr_pstrcat(r->pool, "capture-", name, NULL);
        return APR_SUCCESS;
    case ANSWER_REJECT:
        res->status = SCEP_SUBMIT_REJECTED;
        res->fail_info = c->fail_info;
        res->reason = "the capture provider rejects every request";
        return APR_SUCCESS;
    case ANSWER_ERROR:
        break;
    }
    return APR_EGENERAL;
}

static const scep_submit_provider_t capture_provider = {
    "capture",
    capture_create,
    capture_init,
    NULL,
    capture_submit,
    NULL,
    NULL,
    NULL
};

static void capture_register_hooks(apr_pool_t *p)
{
    ap_register_provider(p, SCEP_SUBMIT_PROVIDER_GROUP, "capture",
                         SCEP_SUBMIT_PROVIDER_VERSION, &capture_provider);
}

AP_DECLARE_MODULE(scep_capture) = {
    STANDARD20_MODULE_STUFF,
    NULL, NULL, NULL, NULL, NULL,
    capture_register_hooks
};
