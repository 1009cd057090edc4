/* Licensed under the Apache License, Version 2.0; see LICENSE. */

/*
 * Device operations (RFC 8894 section 4): GetCACert, GetNextCACert,
 * GetCACaps, PKIOperation, at any path below the configured location
 * (clients append mscep.dll, pkiclient.exe and the like).
 */

#include <apr_atomic.h>
#include <apr_strings.h>

#include <httpd.h>
#include <http_config.h>
#include <http_core.h>
#include <http_log.h>
#include <http_protocol.h>
#include <http_request.h>

#include "scep_caps.h"
#include "scep_config.h"
#include "scep_log.h"
#include "scep_msg.h"
#include "scep_ops.h"

APLOG_USE_MODULE(scep);

/* The raw (still percent-encoded) value of a query parameter; NULL if
 * absent.  The raw form matters: base64 '+' must not become a space. */
const char *scep_ops_query_param(request_rec *r, const char *name,
                                 apr_size_t *rawlen)
{
    const char *q = r->args;
    apr_size_t n = strlen(name);

    while (q && *q) {
        const char *end = strchr(q, '&');
        apr_size_t len = end ? (apr_size_t)(end - q) : strlen(q);
        if (len > n && q[n] == '=' && !strncmp(q, name, n)) {
            *rawlen = len - n - 1;
            return apr_pstrmemdup(r->pool, q + n + 1, len - n - 1);
        }
        if (len == n && !strncmp(q, name, n)) {
            *rawlen = 0;
            return "";
        }
        q = end ? end + 1 : NULL;
    }
    return NULL;
}

static int send_body(request_rec *r, const char *type,
                     const unsigned char *data, apr_size_t len)
{
    ap_set_content_type(r, type);
    ap_set_content_length(r, (apr_off_t)len);
    if (!r->header_only) {
        ap_rwrite(data, (int)len, r);
        /* A small reply goes out now, not when the event MPM next looks
         * for a pipelined request. */
        ap_rflush(r);
    }
    return OK;
}

static int method_not_allowed(request_rec *r, const char *op, int post_ok)
{
    ap_allow_methods(r, REPLACE_ALLOW, "GET", post_ok ? "POST" : NULL, NULL);
    ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, SCEPLOGNO(00016)
                  "method %s not allowed for %s", r->method, op);
    return HTTP_METHOD_NOT_ALLOWED;
}

static int no_ca(request_rec *r)
{
    ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, SCEPLOGNO(00017)
                  "no SCEPCACertificateFile applies to %s (NDES event 10)",
                  r->uri);
    return HTTP_INTERNAL_SERVER_ERROR;
}

static void push_unique(STACK_OF(X509) *sk, X509 *x)
{
    int i;

    for (i = 0; i < sk_X509_num(sk); i++) {
        if (X509_cmp(sk_X509_value(sk, i), x) == 0) {
            return;
        }
    }
    sk_X509_push(sk, x);
}

/*
 * GetCACert and GetNextCACert answer the same bytes until the
 * configuration changes, so each process builds a body once and keeps
 * it.  The key is what the body is made of: the configuration's
 * certificate and key objects (loaded at configuration time, so their
 * addresses stay put for a generation; a merged configuration is made
 * afresh per request) and the generation.  Bodies are never changed once
 * published, so readers take no lock; two threads may build the same
 * body at once, and the one that publishes second throws its copy away.
 * Each lives in a small pool of its own for the life of the process: a
 * few per configured service, and only in the children (the parent
 * answers nothing).
 */
typedef struct reply_t {
    struct reply_t *next;
    int gen;                   /* configuration generation */
    int op;                    /* REPLY_CA or REPLY_NEXT_CA */
    const void *key[4];        /* what the body is made of */
    const char *type;
    const unsigned char *der;
    apr_size_t len;
} reply_t;

enum { REPLY_CA, REPLY_NEXT_CA };

static volatile void *replies;  /* reply_t list, pushed at its head */

static const reply_t *reply_find(const reply_t *head, const reply_t *want)
{
    const reply_t *e;

    for (e = head; e; e = e->next) {
        if (e->gen == want->gen && e->op == want->op
            && !memcmp(e->key, want->key, sizeof(e->key))) {
            return e;
        }
    }
    return NULL;
}

/* The body kept for want (its op and key set), or NULL. */
static const reply_t *reply_get(reply_t *want)
{
    want->gen = ap_state_query(AP_SQ_CONFIG_GEN);
    /* A compare-and-swap of NULL for NULL: an atomic read. */
    return reply_find(apr_atomic_casptr(&replies, NULL, NULL), want);
}

/* Send a body just built in r->pool, and keep a copy for the next
 * requests (or the copy another thread kept meanwhile). */
static int reply_send(request_rec *r, const reply_t *want, const char *type,
                      const unsigned char *der, apr_size_t len)
{
    const reply_t *twin;
    reply_t *e, *head;
    apr_pool_t *p;

    if (apr_pool_create_unmanaged_ex(&p, NULL, NULL) != APR_SUCCESS) {
        return send_body(r, type, der, len);
    }
    apr_pool_tag(p, "mod_scep_replies");
    e = apr_pmemdup(p, want, sizeof(*want));
    e->type = type;  /* a literal */
    e->der = apr_pmemdup(p, der, len);
    e->len = len;
    for (;;) {
        head = apr_atomic_casptr(&replies, NULL, NULL);
        if ((twin = reply_find(head, e)) != NULL) {
            apr_pool_destroy(p);  /* another thread's came first */
            break;
        }
        e->next = head;
        if (apr_atomic_casptr(&replies, e, head) == head) {
            twin = e;
            break;
        }
    }
    return send_body(r, twin->type, twin->der, twin->len);
}

/* RFC 8894 4.2.1 */
static int get_ca_cert(request_rec *r, const scep_dir_conf_t *c)
{
    STACK_OF(X509) *certs;
    const reply_t *done;
    scep_ra_ids_t ra;
    unsigned char *der;
    apr_size_t len;
    reply_t want;
    scep_err_e rv;
    int have_ra, i;

    if (!c->ca) {
        return no_ca(r);
    }
    have_ra = scep_conf_ra(c, &ra);
    memset(&want, 0, sizeof(want));
    want.op = REPLY_CA;
    want.key[0] = c->ca;
    want.key[1] = have_ra ? ra.enc_cert : NULL;
    want.key[2] = have_ra ? ra.sign_cert : NULL;
    if ((done = reply_get(&want)) != NULL) {
        return send_body(r, done->type, done->der, done->len);
    }
    if (!have_ra) {
        X509 *ca = sk_X509_value(c->ca->certs, 0);
        int n = i2d_X509(ca, NULL);
        unsigned char *q;
        if (n <= 0) {
            return HTTP_INTERNAL_SERVER_ERROR;
        }
        der = q = apr_palloc(r->pool, (apr_size_t)n);
        i2d_X509(ca, &q);
        return reply_send(r, &want, "application/x-x509-ca-cert", der,
                          (apr_size_t)n);
    }
    /* Recipient first: clients that take the first certificate encrypt
     * to it; the rest are told apart by KeyUsage. */
    certs = sk_X509_new_null();
    if (certs == NULL) {
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    push_unique(certs, ra.enc_cert);
    push_unique(certs, ra.sign_cert);
    for (i = 0; i < sk_X509_num(c->ca->certs); i++) {
        push_unique(certs, sk_X509_value(c->ca->certs, i));
    }
    rv = scep_msg_certs_only(r->pool, certs, NULL, &der, &len);
    sk_X509_free(certs);
    if (rv != SCEP_OK) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, SCEPLOGNO(00019)
                      "cannot build the GetCACert reply: %s %s",
                      scep_msg_strerror(rv), scep_msg_ossl_errors(r->pool));
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    return reply_send(r, &want, "application/x-x509-ca-ra-cert", der, len);
}

/* RFC 8894 4.7.1: the new CA certificate in a certs-only SignedData,
 * itself signed by the RA: once per process (its signingTime is that of
 * the first request), not once per request. */
static int get_next_ca_cert(request_rec *r, const scep_dir_conf_t *c)
{
    const reply_t *done;
    scep_ra_ids_t ra;
    unsigned char *inner, *der;
    apr_size_t inner_len, len;
    reply_t want;
    scep_err_e rv;

    if (!c->ca) {
        return no_ca(r);
    }
    if (!c->next_ca || !scep_conf_ra(c, &ra)) {
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, SCEPLOGNO(00018)
                      "GetNextCACert: no rollover CA certificate is "
                      "configured (SCEPNextCACertificateFile)");
        return HTTP_NOT_FOUND;
    }
    memset(&want, 0, sizeof(want));
    want.op = REPLY_NEXT_CA;
    want.key[0] = c->next_ca;
    want.key[1] = ra.sign_cert;
    want.key[2] = ra.sign_key;
    want.key[3] = scep_conf_hash(c);
    if ((done = reply_get(&want)) != NULL) {
        return send_body(r, done->type, done->der, done->len);
    }
    rv = scep_msg_certs_only(r->pool, c->next_ca->certs, NULL, &inner,
                             &inner_len);
    if (rv == SCEP_OK) {
        rv = scep_msg_sign_data(r->pool, inner, inner_len, ra.sign_cert,
                                ra.sign_key, scep_conf_hash(c), &der, &len);
    }
    if (rv != SCEP_OK) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, SCEPLOGNO(00021)
                      "cannot build the GetNextCACert reply: %s %s",
                      scep_msg_strerror(rv), scep_msg_ossl_errors(r->pool));
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    return reply_send(r, &want, "application/x-x509-next-ca-cert", der,
                      len);
}

/* RFC 8894 3.5.2 */
static int get_ca_caps(request_rec *r, const scep_dir_conf_t *c)
{
    scep_ra_ids_t ra;
    scep_caps_t caps;
    const char *text;

    caps.legacy = scep_conf_legacy(c);
    caps.next_ca = c->next_ca && scep_conf_ra(c, &ra);
    caps.renewal = 1;
    text = scep_caps_text(r->pool, &caps);
    return send_body(r, "text/plain", (const unsigned char *)text,
                     strlen(text));
}

static int pki_operation(request_rec *r, const scep_dir_conf_t *c)
{
    apr_off_t max = scep_conf_max_request(c);

    if (r->method_number == M_POST) {
        const char *cl = apr_table_get(r->headers_in, "Content-Length");
        apr_off_t n;
        char *end;
        if (cl && apr_strtoff(&n, cl, &end, 10) == APR_SUCCESS && !*end
            && n > max) {
            ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, SCEPLOGNO(00015)
                          "PKIOperation body of %" APR_OFF_T_FMT " bytes is "
                          "over SCEPMaxRequestSize %" APR_OFF_T_FMT
                          " (NDES event 15)", n, max);
            return HTTP_REQUEST_ENTITY_TOO_LARGE;
        }
    }
    return scep_pkiop_handle(r, c);
}

int scep_ops_handle(request_rec *r)
{
    const scep_dir_conf_t *c =
        ap_get_module_config(r->per_dir_config, &scep_module);
    static const struct {
        const char *name;
        int (*fn)(request_rec *, const scep_dir_conf_t *);
        int post_ok;
    } ops[] = {
        { "GetCACert", get_ca_cert, 0 },
        { "GetNextCACert", get_next_ca_cert, 0 },
        { "GetCACaps", get_ca_caps, 0 },
        { "PKIOperation", pki_operation, 1 },
    };
    apr_size_t oplen = 0, msglen = 0;
    const char *op = scep_ops_query_param(r, "operation", &oplen);
    const char *msg = scep_ops_query_param(r, "message", &msglen);
    apr_off_t max = scep_conf_max_request(c);
    size_t i;

    /* Base64 carries 3 bytes in 4 characters. */
    if (msg && (apr_off_t)(msglen / 4 * 3) > max) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, SCEPLOGNO(00014)
                      "message parameter of %" APR_SIZE_T_FMT " characters "
                      "is over SCEPMaxRequestSize %" APR_OFF_T_FMT
                      " (NDES event 15)", msglen, max);
        return HTTP_REQUEST_ENTITY_TOO_LARGE;
    }
    if (op) {
        char *decoded = apr_pstrdup(r->pool, op);
        if (ap_unescape_url(decoded) == OK) {
            op = decoded;
        }
        for (i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
            if (ap_cstr_casecmp(op, ops[i].name)) {
                continue;
            }
            if (r->method_number != M_GET
                && !(ops[i].post_ok && r->method_number == M_POST)) {
                return method_not_allowed(r, ops[i].name, ops[i].post_ok);
            }
            return ops[i].fn(r, c);
        }
    }
    ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, SCEPLOGNO(00011)
                  "%s SCEP operation%s%s (NDES event 11)",
                  op ? "unknown" : "missing", op ? " " : "",
                  op ? ap_escape_logitem(r->pool, op) : "");
    return HTTP_BAD_REQUEST;
}
