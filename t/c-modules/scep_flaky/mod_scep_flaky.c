/* Licensed under the Apache License, Version 2.0; see LICENSE. */

/*
 * TEST ONLY: mod_scep_flaky, built and loaded by the Apache::Test suite
 * (t/TEST builds t/c-modules/NAME/mod_NAME.c with apxs).  Never load it
 * in a real server.
 *
 * A submission provider (mod_scep.h) in front of the embedded CA that
 * can be switched off, as a CA going down:
 *
 *   SCEPProvider flaky SWITCHFILE
 *
 * While SWITCHFILE holds "down", submit and poll fail (APR_ECONNREFUSED,
 * as an unreachable CA); otherwise it hands them to the provider "local".
 * The revocation status (renewals) always comes from "local".  Every submit appends "submit TRANSID retry=R lookup=L
 * answer=A" to SWITCHFILE.log, so tests can count what reached the CA.
 */

#include <string.h>

#include <apr_file_io.h>
#include <apr_strings.h>

#include <httpd.h>
#include <http_config.h>
#include <ap_provider.h>

#include "../../../mod_scep/mod_scep.h"

module AP_MODULE_DECLARE_DATA scep_flaky_module;

typedef struct {
    const char *switch_file;
} flaky_t;

static const char *flaky_create(void **instance, apr_pool_t *p,
                                server_rec *s, int argc, char *const argv[])
{
    flaky_t *f = apr_pcalloc(p, sizeof(*f));

    if (argc != 1) {
        return "SCEPProvider flaky SWITCHFILE";
    }
    f->switch_file = ap_server_root_relative(p, argv[0]);
    *instance = f;
    return NULL;
}

static int is_down(request_rec *r, flaky_t *f)
{
    char buf[8] = "";
    apr_file_t *fh;
    apr_size_t n = sizeof(buf) - 1;

    if (apr_file_open(&fh, f->switch_file, APR_FOPEN_READ, 0, r->pool)
        != APR_SUCCESS) {
        return 0;
    }
    apr_file_read(fh, buf, &n);
    apr_file_close(fh);
    buf[n] = '\0';
    return strncmp(buf, "down", 4) == 0;
}

static const scep_submit_provider_t *local(void)
{
    return ap_lookup_provider(SCEP_SUBMIT_PROVIDER_GROUP, "local",
                              SCEP_SUBMIT_PROVIDER_VERSION);
}

static void note(request_rec *r, flaky_t *f, const char *line)
{
    apr_file_t *fh;

    if (apr_file_open(&fh, apr_pstrcat(r->pool, f->switch_file, ".log",
                                       NULL),
                      APR_FOPEN_WRITE | APR_FOPEN_CREATE | APR_FOPEN_APPEND,
                      APR_FPROT_OS_DEFAULT, r->pool) == APR_SUCCESS) {
        apr_file_write_full(fh, line, strlen(line), NULL);
        apr_file_close(fh);
    }
}

static apr_status_t flaky_submit(void *instance, request_rec *r,
                                 const scep_submit_request_t *req,
                                 scep_submit_result_t *res)
{
    flaky_t *f = instance;
    int down = is_down(r, f);
    apr_status_t rv = down ? APR_ECONNREFUSED
                           : local()->submit(NULL, r, req, res);

    note(r, f, apr_psprintf(r->pool, "submit %s retry=%d lookup=%d "
                            "answer=%s\n", req->transaction_id, req->retry,
                            req->lookup_only,
                            rv != APR_SUCCESS ? "error"
                            : res->status == SCEP_SUBMIT_ISSUED ? "issued"
                            : res->status == SCEP_SUBMIT_PENDING ? "pending"
                                                                 : "rejected"));
    return rv;
}

static apr_status_t flaky_poll(void *instance, request_rec *r,
                               const char *transaction_id, X509_NAME *subject,
                               X509 *requester, scep_submit_result_t *res)
{
    return is_down(r, instance)
               ? APR_ECONNREFUSED
               : local()->poll(NULL, r, transaction_id, subject, requester,
                               res);
}

/* Revocation status stays known while the CA is down, as an RA holding
 * the CA's CRL would know it, so renewals can wait in the spool too. */
static scep_cert_status_e flaky_cert_status(void *instance, request_rec *r,
                                            X509 *cert)
{
    return local()->cert_status(NULL, r, cert);
}

static const scep_submit_provider_t flaky_provider = {
    "flaky",
    flaky_create,
    NULL,
    NULL,
    flaky_submit,
    flaky_poll,
    NULL,
    NULL,
    flaky_cert_status,
    0
};

static void flaky_register_hooks(apr_pool_t *p)
{
    ap_register_provider(p, SCEP_SUBMIT_PROVIDER_GROUP, "flaky",
                         SCEP_SUBMIT_PROVIDER_VERSION, &flaky_provider);
}

AP_DECLARE_MODULE(scep_flaky) = {
    STANDARD20_MODULE_STUFF,
    NULL, NULL, NULL, NULL, NULL,
    flaky_register_hooks
};
