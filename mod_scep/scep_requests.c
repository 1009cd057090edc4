/* Licensed under the Apache License, Version 2.0; see LICENSE. */

/*
 * The approval page (SetHandler scep-requests): administrators whom httpd
 * authorizes there (a Require of its own, apart from the password page's)
 * see the requests the embedded CA holds (SCEPLocalCAApproval manual),
 * approve or reject them, and revoke certificates.  HTML for people, JSON
 * for scripts.  A change is a POST that carries a token bound to the
 * user, which a GET of the page gives (no cross-site request forgery).
 */

#include <apr_strings.h>

#include <httpd.h>
#include <http_config.h>
#include <http_core.h>
#include <http_log.h>
#include <http_protocol.h>
#include <http_request.h>
#include <http_ssl.h>
#include <util_script.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "scep_admin.h"
#include "scep_ca_local.h"
#include "scep_config.h"
#include "scep_log.h"

APLOG_USE_MODULE(scep);

/* Made in the parent at each start, so every child knows it. */
static unsigned char csrf_secret[32];

#define FORM_MAX 8192         /* bytes of a POST body */
#define FIELD_MAX 1024        /* bytes of one field */

apr_status_t scep_requests_init(void)
{
    return RAND_bytes(csrf_secret, sizeof(csrf_secret)) == 1 ? APR_SUCCESS
                                                             : APR_EGENERAL;
}

/* The token of r->user for one hour since the epoch. */
static const char *csrf_token(request_rec *r, apr_time_t hour)
{
    const char *data = apr_psprintf(r->pool, "scep-requests\n%s\n%"
                                    APR_TIME_T_FMT, r->user, hour);
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int n = 0, i;
    char *hex;

    if (!HMAC(EVP_sha256(), csrf_secret, sizeof(csrf_secret),
              (const unsigned char *)data, strlen(data), mac, &n)) {
        return NULL;
    }
    hex = apr_palloc(r->pool, 2 * n + 1);
    for (i = 0; i < n; i++) {
        apr_snprintf(hex + 2 * i, 3, "%02x", mac[i]);
    }
    return hex;
}

/* This hour's token or the last hour's: a page stays usable an hour. */
static int csrf_ok(request_rec *r, const char *token)
{
    apr_time_t hour = apr_time_sec(apr_time_now()) / 3600;
    int i;

    for (i = 0; token && i < 2; i++) {
        const char *want = csrf_token(r, hour - i);
        if (want && strlen(token) == strlen(want)
            && CRYPTO_memcmp(token, want, strlen(want)) == 0) {
            return 1;
        }
    }
    return 0;
}

static const char *json_str(apr_pool_t *p, const char *s)
{
    apr_size_t n = strlen(s);
    char *out = apr_palloc(p, 6 * n + 3), *q = out;

    *q++ = '"';
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\') {
            *q++ = '\\';
            *q++ = (char)ch;
        }
        else if (ch < 0x20 || ch == 0x7f) {
            q += apr_snprintf(q, 7, "\\u%04x", ch);
        }
        else {
            *q++ = (char)ch;
        }
    }
    *q++ = '"';
    *q = '\0';
    return out;
}

static const char *html(request_rec *r, const char *s)
{
    return ap_escape_html2(r->pool, s, 0);
}

static const char *iso_time(request_rec *r, apr_time_t t)
{
    return ap_ht_time(r->pool, t, "%Y-%m-%dT%H:%M:%SZ", 1);
}

static int send_error(request_rec *r, int json, int status, const char *code,
                      const char *text)
{
    if (json) {
        return scep_admin_send_json(r, status, apr_psprintf(r->pool,
                                    "{\"error\":%s,\"message\":%s}",
                                    json_str(r->pool, code),
                                    json_str(r->pool, text)));
    }
    r->status = status;
    ap_set_content_type(r, "text/html; charset=utf-8");
    ap_rvputs(r, "<!DOCTYPE html>\n<html><head><title>Certificate requests"
              "</title></head><body>\n<p>", html(r, text),
              "</p>\n<p><a href=\"", html(r, r->uri),
              "\">Back to the requests</a></p>\n"
              "</body></html>\n", NULL);
    return OK;
}

static const char *age_text(request_rec *r, apr_time_t since)
{
    apr_time_t s = apr_time_sec(apr_time_now() - since);

    return s < 3600 ? apr_psprintf(r->pool, "%" APR_TIME_T_FMT " min",
                                   s / 60)
           : s < 172800 ? apr_psprintf(r->pool, "%" APR_TIME_T_FMT " h",
                                       s / 3600)
                        : apr_psprintf(r->pool, "%" APR_TIME_T_FMT " days",
                                       s / 86400);
}

static int list_json(request_rec *r, apr_array_header_t *list,
                     const char *token)
{
    const char *out = apr_psprintf(r->pool, "{\"csrf_token\":%s,"
                                   "\"pending\":[",
                                   json_str(r->pool, token));
    int i;

    for (i = 0; i < list->nelts; i++) {
        scep_pending_t *p = &APR_ARRAY_IDX(list, i, scep_pending_t);
        out = apr_pstrcat(r->pool, out, i ? "," : "", apr_psprintf(r->pool,
            "{\"id\":%s,\"subject\":%s,\"subject_alt_names\":%s,\"key\":%s,"
            "\"template\":%s,\"requester\":%s,\"client\":%s,"
            "\"received\":%s,\"renewal\":%s}",
            json_str(r->pool, p->id), json_str(r->pool, p->subject),
            json_str(r->pool, p->sans), json_str(r->pool, p->key),
            json_str(r->pool, p->template_name),
            json_str(r->pool, p->requester), json_str(r->pool, p->client),
            json_str(r->pool, iso_time(r, p->received)),
            p->renewal ? "true" : "false"), NULL);
    }
    return scep_admin_send_json(r, HTTP_OK,
                                apr_pstrcat(r->pool, out, "]}", NULL));
}

/* A form posting one action back here. */
static const char *form(request_rec *r, const char *token,
                        const char *fields, const char *button)
{
    return apr_pstrcat(r->pool, "<form method=\"post\" action=\"",
                       html(r, r->uri), "\" style=\"display:inline\">"
                       "<input type=\"hidden\" name=\"token\" value=\"",
                       token, "\">", fields, "<button type=\"submit\">",
                       button, "</button></form>", NULL);
}

static int list_html(request_rec *r, apr_array_header_t *list,
                     const char *token, const char *message)
{
    const char *rows = "";
    int i;

    for (i = 0; i < list->nelts; i++) {
        scep_pending_t *p = &APR_ARRAY_IDX(list, i, scep_pending_t);
        const char *id = html(r, p->id);
        const char *idf = apr_pstrcat(r->pool, "<input type=\"hidden\" "
                                      "name=\"id\" value=\"", id, "\">",
                                      NULL);
        rows = apr_pstrcat(r->pool, rows, "<tr><td>", id, "</td><td>",
            html(r, p->subject), "</td><td>", html(r, p->sans), "</td><td>",
            html(r, p->key), "</td><td>", html(r, p->template_name),
            p->renewal ? " (renewal)" : "", "</td><td>",
            html(r, p->requester), "</td><td>", html(r, p->client),
            "</td><td>", age_text(r, p->received), "</td><td>",
            form(r, token, apr_pstrcat(r->pool, idf, "<input type=\"hidden\" "
                 "name=\"action\" value=\"approve\">", NULL), "Approve"),
            form(r, token, apr_pstrcat(r->pool, idf, "<input type=\"hidden\" "
                 "name=\"action\" value=\"reject\"><input name=\"reason\" "
                 "placeholder=\"reason\" size=\"12\">", NULL), "Reject"),
            "</td></tr>\n", NULL);
    }
    ap_set_content_type(r, "text/html; charset=utf-8");
    ap_rvputs(r, "<!DOCTYPE html>\n<html><head><title>Certificate requests"
              "</title></head><body>\n<h2>Certificate requests waiting for "
              "approval</h2>\n", message ? "<p><b>" : "",
              message ? html(r, message) : "", message ? "</b></p>\n" : "",
              NULL);
    if (list->nelts == 0) {
        ap_rputs("<p>No request is waiting.</p>\n", r);
    }
    else {
        ap_rvputs(r, "<table border=\"1\" cellpadding=\"4\">\n<tr><th>Id</th>"
                  "<th>Subject</th><th>Subject alternative names</th>"
                  "<th>Key</th><th>Template</th><th>Password from</th>"
                  "<th>Device address</th><th>Waiting</th><th></th></tr>\n",
                  rows, "</table>\n", NULL);
    }
    ap_rvputs(r, "<h2>Revoke a certificate</h2>\n",
              form(r, token, "<input name=\"serial\" placeholder=\"serial "
                   "(hex)\" size=\"40\"> <select name=\"reason\">"
                   "<option>unspecified</option><option>keyCompromise"
                   "</option><option>affiliationChanged</option><option>"
                   "superseded</option><option>cessationOfOperation</option>"
                   "<option>certificateHold</option></select>"
                   "<input type=\"hidden\" name=\"action\" value=\"revoke\">",
                   "Revoke"),
              "\n</body></html>\n", NULL);
    return OK;
}

static int show(request_rec *r, const scep_dir_conf_t *c, int json,
                const char *message)
{
    apr_array_header_t *list = scep_ca_local_pending(r, c);
    const char *token = csrf_token(r, apr_time_sec(apr_time_now()) / 3600);

    if (list == NULL || token == NULL) {
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    return json ? list_json(r, list, token)
                : list_html(r, list, token, message);
}

/* The fields of a urlencoded POST, bounded. */
static apr_table_t *read_form(request_rec *r)
{
    apr_array_header_t *pairs = NULL;
    apr_table_t *t = apr_table_make(r->pool, 5);
    int i;

    if (ap_parse_form_data(r, NULL, &pairs, 8, FORM_MAX) != OK) {
        return NULL;
    }
    for (i = 0; pairs && i < pairs->nelts; i++) {
        ap_form_pair_t *f = &APR_ARRAY_IDX(pairs, i, ap_form_pair_t);
        apr_off_t len = 0;
        apr_size_t size;
        char *v;
        apr_brigade_length(f->value, 1, &len);
        if (len < 0 || len > FIELD_MAX) {
            return NULL;
        }
        size = (apr_size_t)len;
        v = apr_palloc(r->pool, size + 1);
        apr_brigade_flatten(f->value, v, &size);
        v[size] = '\0';
        apr_table_setn(t, f->name, v);
    }
    return t;
}

static int act(request_rec *r, const scep_dir_conf_t *c, int json)
{
    apr_table_t *form = read_form(r);
    const char *action, *id, *serial, *reason, *detail = NULL, *msg;
    scep_local_result_e rv;

    if (form == NULL) {
        return send_error(r, json, HTTP_BAD_REQUEST, "bad_form",
                          "The form cannot be read (a urlencoded POST of at "
                          "most 8 KB is expected).");
    }
    if (!csrf_ok(r, apr_table_get(form, "token"))) {
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r, SCEPLOGNO(00120)
                      "approval page: a POST by %s without a valid token "
                      "refused (cross-site request, or a page over an hour "
                      "old)", r->user);
        return send_error(r, json, HTTP_FORBIDDEN, "bad_token",
                          "The form's token is missing, wrong or expired: "
                          "load the page again.");
    }
    action = apr_table_get(form, "action");
    id = apr_table_get(form, "id");
    serial = apr_table_get(form, "serial");
    reason = apr_table_get(form, "reason");
    if (reason && !*reason) {
        reason = NULL;
    }
    if (action && !strcmp(action, "revoke")) {
        if (serial == NULL || !*serial
            || (reason && !scep_ca_local_reason_ok(reason))) {
            return send_error(r, json, HTTP_BAD_REQUEST, "bad_request",
                              "revoke needs a serial (hex) and, optionally, "
                              "a CRL reason name.");
        }
        rv = scep_ca_local_revoke(r, c, serial, reason);
        if (rv == SCEP_LOCAL_DONE) {
            ap_log_rerror(APLOG_MARK, APLOG_NOTICE, 0, r, SCEPLOGNO(00121)
                          "certificate serial %s revoked by %s (reason %s)",
                          serial, r->user, reason ? reason : "unspecified");
            msg = apr_psprintf(r->pool, "Certificate %s revoked.", serial);
            if (!json) {
                return show(r, c, 0, msg);
            }
            return scep_admin_send_json(r, HTTP_OK, apr_psprintf(r->pool,
                       "{\"serial\":%s,\"status\":\"revoked\",\"reason\":%s}",
                       json_str(r->pool, serial),
                       json_str(r->pool, reason ? reason : "unspecified")));
        }
    }
    else if (action && (!strcmp(action, "approve")
                        || !strcmp(action, "reject"))) {
        int approve = action[0] == 'a';
        if (id == NULL || !*id || strspn(id, "0123456789") != strlen(id)) {
            return send_error(r, json, HTTP_BAD_REQUEST, "bad_request",
                              "approve and reject need the request's id.");
        }
        rv = scep_ca_local_decide(r, c, id, approve, reason, &detail);
        if (rv == SCEP_LOCAL_DONE) {
            ap_log_rerror(APLOG_MARK, APLOG_NOTICE, 0, r, SCEPLOGNO(00122)
                          "request %s %s by %s%s%s", id,
                          approve ? "approved" : "rejected", r->user,
                          approve ? ": issued serial " : "",
                          approve ? detail : "");
            msg = approve ? apr_psprintf(r->pool, "Request %s approved: "
                                         "certificate %s issued; the device "
                                         "gets it when it next polls.", id,
                                         detail)
                          : apr_psprintf(r->pool, "Request %s rejected.", id);
            if (!json) {
                return show(r, c, 0, msg);
            }
            return scep_admin_send_json(r, HTTP_OK, apr_psprintf(r->pool,
                       "{\"id\":%s,\"status\":\"%s\"%s%s}",
                       json_str(r->pool, id), approve ? "issued" : "rejected",
                       approve ? ",\"serial\":" : "",
                       approve ? json_str(r->pool, detail) : ""));
        }
        if (rv == SCEP_LOCAL_REFUSED) {
            ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, SCEPLOGNO(00123)
                          "request %s approved by %s, but the CA refuses to "
                          "issue it: %s (the device gets FAILURE)", id,
                          r->user, detail);
            return send_error(r, json, HTTP_UNPROCESSABLE_ENTITY,
                              "refused", apr_psprintf(r->pool,
                              "The CA refuses request %s: %s. It is now "
                              "rejected.", id, detail));
        }
    }
    else {
        return send_error(r, json, HTTP_BAD_REQUEST, "bad_request",
                          "action must be approve, reject or revoke.");
    }
    switch (rv) {
    case SCEP_LOCAL_NOT_FOUND:
        return send_error(r, json, HTTP_NOT_FOUND, "not_found",
                          id && !serial ? "No such request is waiting."
                                        : "This CA issued no such "
                                          "certificate.");
    case SCEP_LOCAL_CONFLICT:
        return send_error(r, json, HTTP_CONFLICT, "conflict",
                          detail ? apr_psprintf(r->pool, "The request was "
                                                "already decided (%s).",
                                                detail)
                                 : "The certificate is already revoked.");
    default:
        return HTTP_INTERNAL_SERVER_ERROR;
    }
}

int scep_requests_handle(request_rec *r)
{
    const scep_dir_conf_t *c =
        ap_get_module_config(r->per_dir_config, &scep_module);
    int json = scep_admin_wants_json(r);

    apr_table_setn(r->err_headers_out, "Cache-Control", "no-store");
    if (r->method_number != M_GET && r->method_number != M_POST) {
        ap_allow_methods(r, REPLACE_ALLOW, "GET", "POST", NULL);
        return HTTP_METHOD_NOT_ALLOWED;
    }
    if (!ap_ssl_conn_is_ssl(r->connection) && c->admin_allow_http != 1) {
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r, SCEPLOGNO(00124)
                      "approval page refused to %s over plain HTTP (use "
                      "HTTPS, or SCEPAdminAllowHTTP On)",
                      r->user ? r->user : "an anonymous client");
        return send_error(r, json, HTTP_FORBIDDEN, "https_required",
                          "The approval page is only served over HTTPS.");
    }
    if (r->user == NULL || *r->user == '\0') {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, SCEPLOGNO(00125)
                      "the approval page has no authenticated user: protect "
                      "%s with httpd authentication (AuthType, Require)",
                      r->uri);
        return send_error(r, json, HTTP_FORBIDDEN, "forbidden",
                          "No administrator is authenticated here.");
    }
    if (c->localca_key == NULL || c->ca == NULL) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, SCEPLOGNO(00126)
                      "the approval page %s has no embedded CA "
                      "(SCEPLocalCAKeyFile) to act on", r->uri);
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    return r->method_number == M_POST ? act(r, c, json)
                                      : show(r, c, json, NULL);
}

/* SetHandler scep-crl: the CRL as a file, for the CRL distribution point
 * of issued certificates (RFC 5280 4.2.1.13): DER, application/pkix-crl
 * (RFC 2585), no authentication. */
int scep_crl_handle(request_rec *r)
{
    const scep_dir_conf_t *c =
        ap_get_module_config(r->per_dir_config, &scep_module);
    X509_CRL *crl = NULL;
    unsigned char *der = NULL;
    int n;

    if (r->method_number != M_GET) {
        ap_allow_methods(r, REPLACE_ALLOW, "GET", NULL);
        return HTTP_METHOD_NOT_ALLOWED;
    }
    if (c->localca_key == NULL || c->ca == NULL
        || scep_ca_local_crl(r, c, &crl) != APR_SUCCESS
        || (n = i2d_X509_CRL(crl, &der)) <= 0) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, SCEPLOGNO(00127)
                      "no CRL at %s: it needs the embedded CA "
                      "(SCEPLocalCAKeyFile) and its database", r->uri);
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    ap_set_content_type(r, "application/pkix-crl");
    ap_set_content_length(r, n);
    if (!r->header_only) {
        ap_rwrite(der, n, r);
    }
    OPENSSL_free(der);
    return OK;
}
