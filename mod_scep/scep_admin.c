/* Licensed under the Apache License, Version 2.0; see LICENSE. */

/*
 * The administrator page: hands a challenge password to an administrator
 * whom httpd has authenticated and authorized (Require); the page never
 * checks credentials itself.  The HTML carries the sentences NDES
 * scrapers look for (PAN-OS "Dynamic" challenges, PowerShell scripts);
 * Accept: application/json gets the same as JSON with real status codes.
 */

#include <apr_strings.h>

#include <httpd.h>
#include <http_config.h>
#include <http_core.h>
#include <http_log.h>
#include <http_protocol.h>
#include <http_request.h>
#include <http_ssl.h>

#include <openssl/evp.h>

#include "scep_admin.h"
#include "scep_config.h"
#include "scep_log.h"

APLOG_USE_MODULE(scep);

#define FULL_TEXT "The password cache is full."
#define HTTPS_TEXT "Challenge passwords are only given out over HTTPS."

int scep_admin_wants_json(request_rec *r)
{
    const char *accept = apr_table_get(r->headers_in, "Accept");

    if (r->args && ap_strstr_c(r->args, "format=json")) {
        return 1;
    }
    return accept && ap_strcasestr(accept, "application/json") != NULL;
}

static const char *hex_digest(request_rec *r, X509 *cert, const EVP_MD *md,
                              int groups)
{
    unsigned char buf[EVP_MAX_MD_SIZE];
    unsigned int n = 0, i;
    char *out, *q;

    if (!X509_digest(cert, md, buf, &n)) {
        return "";
    }
    out = q = apr_palloc(r->pool, n * 3 + 1);
    for (i = 0; i < n; i++) {
        /* NDES shows MD5 as four groups of eight. */
        if (groups && i && i % 4 == 0) {
            *q++ = ' ';
        }
        q += apr_snprintf(q, 3, "%02X", buf[i]);
    }
    *q = '\0';
    return out;
}

/* ASCII HTML to what NDES sends: UTF-16LE with a byte order mark. */
static int send_html(request_rec *r, const scep_dir_conf_t *c, int status,
                     const char *body)
{
    apr_size_t n = strlen(body), i;
    char *out;

    r->status = status;
    if (c->admin_utf8 == 1) {
        ap_set_content_type(r, "text/html; charset=utf-8");
        ap_rputs(body, r);
        return OK;
    }
    out = apr_palloc(r->pool, 2 * n + 2);
    out[0] = (char)0xff;
    out[1] = (char)0xfe;
    for (i = 0; i < n; i++) {
        out[2 + 2 * i] = body[i];
        out[3 + 2 * i] = '\0';
    }
    ap_set_content_type(r, "text/html; charset=utf-16");
    ap_rwrite(out, (int)(2 * n + 2), r);
    return OK;
}

static const char *page(request_rec *r, const char *content)
{
    return apr_pstrcat(r->pool,
                       "<HTML><HEAD><TITLE>SCEP challenge password</TITLE>"
                       "</HEAD>\r\n<BODY>\r\n<H2>Network Device Enrollment"
                       "</H2>\r\n", content, "\r\n</BODY></HTML>\r\n", NULL);
}

/* NDES's sentence, which scrapers and people read. */
static const char *validity_sentence(request_rec *r, apr_time_t secs)
{
    return secs % 60
        ? apr_psprintf(r->pool, "This password can be used only once and "
                       "will expire within %" APR_TIME_T_FMT " seconds.", secs)
        : apr_psprintf(r->pool, "This password can be used only once and "
                       "will expire within %" APR_TIME_T_FMT " minutes.",
                       secs / 60);
}

int scep_admin_send_json(request_rec *r, int status, const char *body)
{
    r->status = status;
    ap_set_content_type(r, "application/json");
    ap_rputs(body, r);
    ap_rputs("\n", r);
    return OK;
}

static int refuse(request_rec *r, const scep_dir_conf_t *c, int json,
                  int status, const char *code, const char *text)
{
    if (json) {
        return scep_admin_send_json(r, status,
                         apr_psprintf(r->pool, "{\"error\":\"%s\","
                                      "\"message\":\"%s\"}", code, text));
    }
    return send_html(r, c, status,
                     page(r, apr_pstrcat(r->pool, "<P> ", text, " </P>",
                                         NULL)));
}

int scep_admin_handle(request_rec *r)
{
    const scep_dir_conf_t *c =
        ap_get_module_config(r->per_dir_config, &scep_module);
    const scep_challenge_provider_t *prov;
    scep_challenge_service_t svc;
    const char *pw = NULL, *md5, *sha256, *subject;
    apr_time_t expires = 0;
    int json = scep_admin_wants_json(r);
    X509 *ca;

    /* Passwords must never be cached by browsers or proxies. */
    apr_table_setn(r->err_headers_out, "Cache-Control", "no-store");
    if (r->method_number != M_GET
        && !(json && r->method_number == M_POST)) {
        ap_allow_methods(r, REPLACE_ALLOW, "GET", "POST", NULL);
        return HTTP_METHOD_NOT_ALLOWED;
    }
    if (!ap_ssl_conn_is_ssl(r->connection) && c->admin_allow_http != 1) {
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r, SCEPLOGNO(00050)
                      "challenge password refused to %s over plain HTTP "
                      "(use HTTPS, or SCEPAdminAllowHTTP On)",
                      r->user ? r->user : "an anonymous client");
        return refuse(r, c, json, HTTP_FORBIDDEN, "https_required",
                      HTTPS_TEXT);
    }
    if (r->user == NULL || *r->user == '\0') {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, SCEPLOGNO(00051)
                      "the admin page has no authenticated user: protect "
                      "%s with httpd authentication (AuthType, Require)",
                      r->uri);
        return refuse(r, c, json, HTTP_FORBIDDEN, "forbidden",
                      SCEP_ADMIN_NO_PERMISSION);
    }
    if (c->ca == NULL) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, SCEPLOGNO(00052)
                      "no SCEPCACertificateFile applies to the admin page "
                      "%s", r->uri);
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    prov = scep_conf_challenge(c, &svc);
    switch (prov ? prov->generate(r, &svc, &pw, &expires)
                 : SCEP_CHALLENGE_ERROR) {
    case SCEP_CHALLENGE_OK:
        break;
    case SCEP_CHALLENGE_FULL:
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r, SCEPLOGNO(00053)
                      "password cache full (SCEPPasswordMax %u): no "
                      "password for %s", svc.max, r->user);
        return refuse(r, c, json, HTTP_SERVICE_UNAVAILABLE, "cache_full",
                      FULL_TEXT);
    default:
        return HTTP_INTERNAL_SERVER_ERROR;
    }

    ca = sk_X509_value(c->ca->certs, 0);
    subject = scep_ra_subject(r->pool, ca);
    /* The audit line names the administrator, never the password. */
    ap_log_rerror(APLOG_MARK, APLOG_NOTICE, 0, r, SCEPLOGNO(00054)
                  "challenge password issued to %s for CA %s by provider "
                  "%s%s%s", r->user, subject, prov->name,
                  expires ? ", valid until " : "",
                  expires ? ap_ht_time(r->pool, expires,
                                       "%Y-%m-%dT%H:%M:%SZ", 1) : "");
    md5 = hex_digest(r, ca, EVP_md5(), 1);
    sha256 = hex_digest(r, ca, EVP_sha256(), 0);
    if (json) {
        const char *md5_plain = apr_pstrdup(r->pool, md5);
        char *q = (char *)md5_plain, *s;
        for (s = q; *s; s++) {
            if (*s != ' ') {
                *q++ = *s;
            }
        }
        *q = '\0';
        return scep_admin_send_json(r, HTTP_CREATED, apr_psprintf(r->pool,
            "{\"password\":\"%s\",\"expires\":%s,"
            "\"ca_thumbprint_sha256\":\"%s\",\"ca_thumbprint_md5\":\"%s\"}",
            pw, expires ? apr_pstrcat(r->pool, "\"",
                                      ap_ht_time(r->pool, expires,
                                                 "%Y-%m-%dT%H:%M:%SZ", 1),
                                      "\"", NULL)
                        : "null",
            sha256, md5_plain));
    }
    return send_html(r, c, HTTP_OK, page(r, apr_psprintf(r->pool,
        "<P> To enroll a network device you need the following. </P>\r\n"
        "<P> The thumbprint (hash value) for the CA certificate is: "
        "<B> %s </B> </P>\r\n"
        "<P> The enrollment challenge password is: <B> %s </B> </P>\r\n"
        "<P> %s </P>\r\n"
        "<P> Reload this page for another password: every enrollment "
        "needs its own. </P>", md5, pw,
        expires ? validity_sentence(r, apr_time_sec(svc.validity))
                : "This password does not expire.")));
}
