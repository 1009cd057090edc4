/* Licensed under the Apache License, Version 2.0; see LICENSE. */

/*
 * mod_scep_hello: the smallest useful submission provider for mod_scep,
 * an example for docs/providers.md.  It issues nothing: it logs every
 * request it is handed and holds it pending, as a CA that waits for an
 * administrator would.  Build and install it against the installed
 * mod_scep.h with apxs:
 *
 *   apxs -i -a -c mod_scep_hello.c -lcrypto
 *
 * and use it where mod_scep serves devices:
 *
 *   LoadModule scep_module modules/mod_scep.so
 *   LoadModule scep_hello_module modules/mod_scep_hello.so
 *   <Location /certsrv/mscep/>
 *       SetHandler scep
 *       SCEPProvider hello "greetings from the example CA"
 *   </Location>
 */

#include <string.h>

#include <httpd.h>
#include <http_config.h>
#include <http_log.h>
#include <ap_provider.h>
#include <apr_strings.h>

#include <mod_scep.h>

module AP_MODULE_DECLARE_DATA scep_hello_module;

APLOG_USE_MODULE(scep_hello);

/* What SCEPProvider hello TEXT made: one per directive. */
typedef struct {
    const char *greeting;
} hello_t;

/* Configuration time: the words after "SCEPProvider hello". */
static const char *hello_create(void **instance, apr_pool_t *p, server_rec *s,
                                int argc, char *const argv[])
{
    hello_t *h = apr_pcalloc(p, sizeof(*h));

    if (argc > 1) {
        return "SCEPProvider hello takes at most one argument, a greeting";
    }
    h->greeting = argc ? apr_pstrdup(p, argv[0]) : "hello";
    *instance = h;
    return NULL;
}

/* A request: log it, hold it.  The CA's id for it is derived from the
 * transaction, so the same request sent again gets the same answer. */
static apr_status_t hello_submit(void *instance, request_rec *r,
                                 const scep_submit_request_t *req,
                                 scep_submit_result_t *res)
{
    hello_t *h = instance;
    char *subject =
        X509_NAME_oneline(X509_REQ_get_subject_name(req->csr_parsed), NULL, 0);

    ap_log_rerror(APLOG_MARK, APLOG_NOTICE, 0, r,
                  "%s: transaction %s, subject %s, template %s, "
                  "password from %s, RA request of %" APR_SIZE_T_FMT " bytes",
                  h->greeting, req->transaction_id, subject ? subject : "?",
                  req->template_name, req->requester ? req->requester : "-",
                  req->ra_request_len);
    OPENSSL_free(subject);
    memset(res, 0, sizeof(*res));
    res->status = SCEP_SUBMIT_PENDING;
    res->request_id =
        apr_pstrcat(r->pool, "hello-", req->transaction_id, NULL);
    return APR_SUCCESS;
}

/* A poll: still waiting, forever. */
static apr_status_t hello_poll(void *instance, request_rec *r,
                               const char *transaction_id, X509_NAME *subject,
                               X509 *requester, scep_submit_result_t *res)
{
    memset(res, 0, sizeof(*res));
    res->status = SCEP_SUBMIT_PENDING;
    res->request_id = apr_pstrcat(r->pool, "hello-", transaction_id, NULL);
    return APR_SUCCESS;
}

static const scep_submit_provider_t hello_provider = {
    "hello", /* the name SCEPProvider takes */
    hello_create,
    NULL, /* init: nothing to set up at startup */
    NULL, /* child_init */
    hello_submit,
    hello_poll,
    NULL, /* get_cert: GetCert is refused */
    NULL, /* get_crl: GetCRL is refused */
    NULL, /* cert_status: renewal is refused */
    0     /* flags: it wants the RA-signed request */
};

static void hello_register_hooks(apr_pool_t *p)
{
    ap_register_provider(p, SCEP_SUBMIT_PROVIDER_GROUP, "hello",
                         SCEP_SUBMIT_PROVIDER_VERSION, &hello_provider);
}

module AP_MODULE_DECLARE_DATA scep_hello_module = {
    STANDARD20_MODULE_STUFF, NULL, NULL, NULL, NULL, NULL,
    hello_register_hooks};
