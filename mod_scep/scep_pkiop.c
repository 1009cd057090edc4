/* Licensed under the Apache License, Version 2.0; see LICENSE. */

/*
 * PKIOperation (RFC 8894 3.3 and 4.3): take the pkiMessage from the
 * request, check it, hand a PKCSReq to the submission provider with its
 * challenge verified, and answer with a signed CertRep.  Every answer is
 * application/x-pki-message, FAILURE and PENDING included; an HTTP error
 * only where there is nobody to sign a CertRep for.  Every failure inside
 * the envelope answers FAILURE badRequest alike; the detail goes to the
 * log only (otherwise RSA key transport becomes a padding oracle).
 */

#include <apr_strings.h>

#include <httpd.h>
#include <http_config.h>
#include <http_core.h>
#include <http_log.h>
#include <http_protocol.h>
#include <http_request.h>

#include "scep_ca.h"
#include "scep_config.h"
#include "scep_log.h"
#include "scep_msg.h"
#include "scep_ops.h"
#include "scep_spool.h"
#include "scep_transport.h"

APLOG_USE_MODULE(scep);

/* Read a POST body, at most max bytes. */
static int read_body(request_rec *r, apr_off_t max, unsigned char **out,
                     apr_size_t *outlen)
{
    apr_size_t cap = 8192, n = 0;
    unsigned char *buf;
    int rv = ap_setup_client_block(r, REQUEST_CHUNKED_DECHUNK);

    if (rv != OK) {
        return rv;
    }
    if (!ap_should_client_block(r)) {
        *out = NULL;
        *outlen = 0;
        return OK;
    }
    buf = apr_palloc(r->pool, cap);
    for (;;) {
        long got;
        if (n == cap) {
            unsigned char *bigger;
            if ((apr_off_t)cap >= max) {
                return HTTP_REQUEST_ENTITY_TOO_LARGE;
            }
            bigger = apr_palloc(r->pool, cap * 2);
            memcpy(bigger, buf, n);
            buf = bigger;
            cap *= 2;
        }
        got = ap_get_client_block(r, (char *)buf + n, cap - n);
        if (got < 0) {
            return HTTP_BAD_REQUEST;
        }
        if (got == 0) {
            break;
        }
        n += (apr_size_t)got;
        if ((apr_off_t)n > max) {
            return HTTP_REQUEST_ENTITY_TOO_LARGE;
        }
    }
    *out = buf;
    *outlen = n;
    return OK;
}

static int send_certrep(request_rec *r, const unsigned char *der,
                        apr_size_t len)
{
    ap_set_content_type(r, "application/x-pki-message");
    ap_set_content_length(r, (apr_off_t)len);
    ap_rwrite(der, (int)len, r);
    ap_rflush(r);
    return OK;
}

typedef struct pkiop_t {
    request_rec *r;
    const scep_dir_conf_t *c;
    scep_ra_ids_t ra;
    scep_msg_t *msg;
    const unsigned char *der;      /* msg as received */
    apr_size_t len;
    /* A spooled request retried for a poll: the answer goes to the
     * poll, and the entry's history is kept. */
    struct pkiop_t *answer_to;
    const scep_spool_entry_t *spooled;
} pkiop_t;

static int reply(pkiop_t *op, scep_pkistatus_e status, scep_failinfo_e fail,
                 STACK_OF(X509) *certs)
{
    scep_signer_t signer = { op->ra.sign_cert, op->ra.sign_key };
    unsigned char *der;
    apr_size_t len;
    scep_err_e rv;

    rv = scep_msg_certrep(op->r->pool,
                          op->answer_to ? op->answer_to->msg : op->msg,
                          status, fail, certs, NULL, &signer,
                          scep_conf_hash(op->c), &der, &len);
    if (rv != SCEP_OK) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, op->r, SCEPLOGNO(00070)
                      "cannot build the CertRep: %s %s",
                      scep_msg_strerror(rv),
                      scep_msg_ossl_errors(op->r->pool));
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    return send_certrep(op->r, der, len);
}

static int reply_crl(pkiop_t *op, X509_CRL *crl)
{
    scep_signer_t signer = { op->ra.sign_cert, op->ra.sign_key };
    unsigned char *der;
    apr_size_t len;

    if (scep_msg_certrep(op->r->pool, op->msg, SCEP_STATUS_SUCCESS, 0, NULL,
                         crl, &signer, scep_conf_hash(op->c), &der, &len)
        != SCEP_OK) {
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    return send_certrep(op->r, der, len);
}

static void spool_done(pkiop_t *op);

/* FAILURE is final: a spooled request that gets it leaves the spool. */
static int fail(pkiop_t *op, scep_failinfo_e info)
{
    spool_done(op);
    return reply(op, SCEP_STATUS_FAILURE, info, NULL);
}

static const char *transid_text(pkiop_t *op)
{
    return op->msg->transid.len ? (const char *)op->msg->transid.data : "-";
}

/* The SAN extension's DER (NULL when absent), for comparing names. */
static const unsigned char *san_der(apr_pool_t *p,
                                    STACK_OF(X509_EXTENSION) *exts, int *len)
{
    int idx = X509v3_get_ext_by_NID(exts, NID_subject_alt_name, -1);
    ASN1_OCTET_STRING *v;

    if (idx < 0) {
        *len = 0;
        return NULL;
    }
    v = X509_EXTENSION_get_data(X509v3_get_ext(exts, idx));
    *len = ASN1_STRING_length(v);
    return apr_pmemdup(p, ASN1_STRING_get0_data(v), (apr_size_t)*len);
}

/* SCEPRenewalWindow: the share of its life, or the time, the signer
 * certificate has left must be within the window.  NULL when it is. */
static const char *renewal_too_early(pkiop_t *op, X509 *signer)
{
    const scep_dir_conf_t *c = op->c;
    int days, secs, ldays, lsecs;
    apr_int64_t left, life;

    if (!ASN1_TIME_diff(&days, &secs, NULL, X509_get0_notAfter(signer))
        || !ASN1_TIME_diff(&ldays, &lsecs, X509_get0_notBefore(signer),
                           X509_get0_notAfter(signer))) {
        return "the signer certificate's validity cannot be read";
    }
    left = (apr_int64_t)days * 86400 + secs;
    life = (apr_int64_t)ldays * 86400 + lsecs;
    if (c->renewal_window_pct ? left * 100 > life * c->renewal_window
                              : left > c->renewal_window) {
        return apr_psprintf(op->r->pool, "too early: the certificate has "
                            "%" APR_INT64_T_FMT " days left; "
                            "SCEPRenewalWindow accepts a renewal from %s",
                            left / 86400,
                            c->renewal_window_pct
                                ? apr_psprintf(op->r->pool, "%d%% of its "
                                               "life left",
                                               c->renewal_window)
                                : c->renewal_window % 86400
                                ? apr_psprintf(op->r->pool, "%d seconds "
                                               "before it expires",
                                               c->renewal_window)
                                : apr_psprintf(op->r->pool, "%d days before "
                                               "it expires",
                                               c->renewal_window / 86400));
    }
    return NULL;
}

/*
 * A renewal (RFC 8894 3.3.1.2; NDES KB959193): signed by a certificate of
 * this CA, valid now, not revoked (unknown counts as revoked), with the
 * same names unless SCEPRenewalSubjectNameMatch Off.  NULL if it holds.
 */
static const char *renewal_problem(pkiop_t *op,
                                   const scep_submit_provider_t *prov)
{
    request_rec *r = op->r;
    X509 *signer = op->msg->signer;
    STACK_OF(X509) *chain = op->c->localca_cert ? op->c->localca_cert->certs
                                                : op->c->ca->certs;
    scep_cert_status_e st;

    if (op->msg->digest_nid == NID_sha1) {
        return "a renewal request must be signed with SHA-2";
    }
    if (!scep_ra_chains_to_ca(signer, chain)) {
        return "the signer certificate is not a valid certificate of this "
               "CA (foreign or expired)";
    }
    st = (prov && prov->cert_status)
             ? prov->cert_status(op->c->submit_instance, r, signer)
             : SCEP_CERT_UNKNOWN;
    if (st == SCEP_CERT_REVOKED) {
        return "the signer certificate is revoked";
    }
    if (st != SCEP_CERT_GOOD) {
        return "the CA does not know the signer certificate, so it cannot "
               "tell whether it is revoked";
    }
    if (op->c->renewal_window > 0) {
        const char *why = renewal_too_early(op, signer);
        if (why) {
            return why;
        }
    }
    if (op->c->renewal_name_match != 0) {
        STACK_OF(X509_EXTENSION) *exts =
            X509_REQ_get_extensions(op->msg->csr);
        const STACK_OF(X509_EXTENSION) *old = X509_get0_extensions(signer);
        const unsigned char *a, *b;
        int alen, blen;
        a = san_der(r->pool, exts, &alen);
        b = san_der(r->pool, (STACK_OF(X509_EXTENSION) *)old, &blen);
        sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
        if (X509_NAME_cmp(X509_get_subject_name(signer),
                          X509_REQ_get_subject_name(op->msg->csr)) != 0) {
            return "the request's subject differs from the certificate's";
        }
        if (alen != blen || (alen && memcmp(a, b, (size_t)alen) != 0)) {
            return "the request's subjectAltName differs from the "
                   "certificate's";
        }
    }
    return NULL;
}

/* Is this request signed by a certificate of our CA rather than by a
 * device's own self-signed one? */
static int signed_by_issued_cert(pkiop_t *op)
{
    X509 *signer = op->msg->signer;
    X509 *ca = sk_X509_value(op->c->localca_cert ? op->c->localca_cert->certs
                                                 : op->c->ca->certs, 0);

    return X509_NAME_cmp(X509_get_issuer_name(signer),
                         X509_get_subject_name(ca)) == 0
           && X509_NAME_cmp(X509_get_issuer_name(signer),
                            X509_get_subject_name(signer)) != 0;
}

/* ---- the spool: requests the CA could not take ---- */

static const char *pubkey_id(apr_pool_t *p, X509_PUBKEY *k)
{
    unsigned char *der = NULL;
    int n = k ? i2d_X509_PUBKEY(k, &der) : 0;
    const char *id = n > 0 ? scep_ca_sha256_hex(p, der, (apr_size_t)n)
                           : NULL;

    OPENSSL_free(der);
    return id;
}

/* An entry is found by the transaction and the key of whoever polls: the
 * device's request key, or for a renewal also the renewed certificate's. */
static int spool_names(pkiop_t *op, const char **names)
{
    apr_pool_t *p = op->r->pool;
    const char *a = pubkey_id(p, X509_get_X509_PUBKEY(op->msg->signer));
    const char *b = pubkey_id(p, X509_REQ_get_X509_PUBKEY(op->msg->csr));
    int n = 0;

    if (a) {
        names[n++] = scep_spool_name(p, transid_text(op), a);
    }
    if (b && (a == NULL || strcmp(a, b))) {
        names[n++] = scep_spool_name(p, transid_text(op), b);
    }
    return n;
}

/* The CA could not be asked: keep the request for the device's next
 * poll.  APR_SUCCESS when kept. */
static apr_status_t spool_keep(pkiop_t *op, const char *provider)
{
    apr_pool_t *p = op->r->pool;
    const char *dir = scep_conf_spool_dir(op->c), *names[2];
    apr_time_t retention = apr_time_from_sec(scep_conf_pending_retention(
                                                 op->c));
    scep_spool_entry_t e;
    apr_status_t rv = APR_EGENERAL;
    int i, n = spool_names(op, names), removed = 0;

    e.since = op->spooled ? op->spooled->since : apr_time_now();
    e.attempts = op->spooled ? op->spooled->attempts + 1 : 1;
    e.der = op->der;
    e.len = op->len;
    for (i = 0; i < n; i++) {
        rv = scep_spool_put(p, dir, names[i], &e);
        if (rv != APR_SUCCESS) {
            ap_log_rerror(APLOG_MARK, APLOG_ERR, rv, op->r, SCEPLOGNO(00093)
                          "transaction %s: cannot keep the request in the "
                          "spool %s", transid_text(op), dir);
            return rv;
        }
    }
    ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, op->r, SCEPLOGNO(00092)
                  "transaction %s: the CA (provider %s) could not take the "
                  "request (NDES event 31); kept in the spool after %d "
                  "attempt%s since %s: the device is told PENDING and its "
                  "next poll tries again", transid_text(op), provider,
                  e.attempts, e.attempts == 1 ? "" : "s",
                  ap_ht_time(p, e.since, "%Y-%m-%dT%H:%M:%SZ", 1));
    /* Faults are rare: tidy up then, not on every request. */
    scep_spool_sweep(p, dir, apr_time_now() - retention,
                     (apr_size_t)scep_conf_max_request(op->c), &removed);
    return rv;
}

/* The CA answered a spooled request: its entry goes. */
static void spool_done(pkiop_t *op)
{
    const char *names[2];
    int i, n;

    if (op->spooled == NULL) {
        return;
    }
    n = spool_names(op, names);
    for (i = 0; i < n; i++) {
        scep_spool_drop(op->r->pool, scep_conf_spool_dir(op->c), names[i]);
    }
}

/* PKCSReq and RenewalReq (RFC 8894 3.3.1): challenge or renewal check,
 * template, CA. */
static int enroll(pkiop_t *op)
{
    request_rec *r = op->r;
    const scep_dir_conf_t *c = op->c;
    const scep_challenge_provider_t *chal;
    const scep_submit_provider_t *prov = scep_conf_submit(c);
    scep_challenge_service_t svc;
    scep_submit_request_t req;
    scep_submit_result_t res;
    const scep_template_t *t;
    const char *pw, *admin = NULL;
    void *token = NULL;
    apr_size_t pwlen = 0;
    unsigned char *csr = NULL;
    scep_signer_t ra = { op->ra.sign_cert, op->ra.sign_key };
    int ku, n, committed = 0;
    apr_status_t rv;

    ku = scep_ca_request_key_usage(op->msg->csr);
    if (ku < 0) {
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, SCEPLOGNO(00071)
                      "transaction %s: the request has no KeyUsage; the "
                      "general purpose template applies (NDES event 39)",
                      transid_text(op));
    }
    t = scep_conf_template(c, ku);
    if (t == NULL) {
        return fail(op, SCEP_FAIL_BADREQUEST);
    }

    n = i2d_X509_REQ(op->msg->csr, &csr);
    memset(&req, 0, sizeof(req));
    if (n <= 0
        || (!(prov && (prov->flags & SCEP_SUBMIT_NO_RA_REQUEST))
            && scep_msg_sign_data(r->pool, csr, (apr_size_t)n, ra.cert,
                                  ra.key, scep_conf_hash(c),
                                  (unsigned char **)&req.ra_request,
                                  &req.ra_request_len) != SCEP_OK)) {
        OPENSSL_free(csr);
        return fail(op, SCEP_FAIL_BADREQUEST);
    }
    req.csr = apr_pmemdup(r->pool, csr, (apr_size_t)n);
    req.csr_len = (apr_size_t)n;
    req.csr_parsed = op->msg->csr;
    OPENSSL_free(csr);
    req.template_name = t->name;
    req.transaction_id = transid_text(op);
    req.client_ip = r->useragent_ip;
    req.requester_cert = op->msg->signer;

    chal = scep_conf_challenge(c, &svc);
    pw = scep_ca_request_challenge(r->pool, op->msg->csr, &pwlen);
    if (op->msg->type == SCEP_MT_RENEWALREQ || signed_by_issued_cert(op)) {
        const char *why = renewal_problem(op, prov);
        if (why == NULL) {
            /* The certificate vouches: no challenge is needed. */
            req.renewal_signer = op->msg->signer;
            svc.enforce = 0;
            ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, SCEPLOGNO(00087)
                          "transaction %s: renewal of serial %s (%s)",
                          transid_text(op),
                          scep_ca_serial_hex(r->pool, op->msg->signer),
                          scep_ra_subject(r->pool, op->msg->signer));
        }
        else if (op->msg->type == SCEP_MT_RENEWALREQ || pw == NULL) {
            ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, SCEPLOGNO(00088)
                          "transaction %s: renewal refused: %s",
                          transid_text(op), why);
            return fail(op, SCEP_FAIL_BADREQUEST);
        }
        else {
            ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, SCEPLOGNO(00089)
                          "transaction %s: not a renewal (%s); checking its "
                          "challenge password", transid_text(op), why);
        }
    }
    if (svc.enforce) {
        scep_challenge_status_e st;
        if (pw == NULL || pwlen == 0) {
            ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, SCEPLOGNO(00072)
                          "transaction %s: no challenge password in the "
                          "request (NDES event 28)", transid_text(op));
            return fail(op, SCEP_FAIL_BADREQUEST);
        }
        st = chal ? chal->verify(r, &svc, pw, pwlen, ku, &token, &admin)
                  : SCEP_CHALLENGE_ERROR;
        if (st == SCEP_CHALLENGE_USED || st == SCEP_CHALLENGE_REJECT) {
            /* A device resending its request (same transaction, same
             * key) gets what it got before (RFC 8894 3.3.1). */
            req.lookup_only = 1;
            req.retry = op->spooled != NULL;
            if (prov && prov->submit(c->submit_instance, r, &req, &res)
                            == APR_SUCCESS
                && res.status != SCEP_SUBMIT_REJECTED) {
                spool_done(op);
                ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, SCEPLOGNO(00086)
                              "transaction %s: a resent request; answering "
                              "as before (%s)", transid_text(op),
                              res.status == SCEP_SUBMIT_ISSUED ? "issued"
                                                               : "pending");
                return res.status == SCEP_SUBMIT_ISSUED
                           ? reply(op, SCEP_STATUS_SUCCESS, 0, res.certs)
                           : reply(op, SCEP_STATUS_PENDING, 0, NULL);
            }
            req.lookup_only = 0;
        }
        if (st != SCEP_CHALLENGE_OK) {
            ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, SCEPLOGNO(00073)
                          "transaction %s: %s (NDES event %d)",
                          transid_text(op),
                          st == SCEP_CHALLENGE_USED
                              ? "the password was already used for this "
                                "KeyUsage"
                              : "the password cannot be verified",
                          st == SCEP_CHALLENGE_USED ? 43 : 29);
            return fail(op, SCEP_FAIL_BADREQUEST);
        }
    }
    req.requester = admin;

    req.retry = op->spooled != NULL;
    rv = prov ? prov->submit(c->submit_instance, r, &req, &res) : APR_ENOTIMPL;
    if (rv != APR_SUCCESS) {
        /* The password stays unspent until the CA accepts the request; a
         * retry checks it again. */
        if (chal && token) {
            chal->notify(r, token, 0);
        }
        if (prov && spool_keep(op, prov->name) == APR_SUCCESS) {
            return reply(op, SCEP_STATUS_PENDING, 0, NULL);
        }
        ap_log_rerror(APLOG_MARK, APLOG_ERR, rv, r, SCEPLOGNO(00074)
                      "transaction %s: the CA (provider %s) could not take "
                      "the request (NDES event 31)", transid_text(op),
                      prov ? prov->name : "none");
        return fail(op, SCEP_FAIL_BADREQUEST);
    }
    spool_done(op);
    if (res.status != SCEP_SUBMIT_REJECTED && chal && token) {
        /* Spent only now that the CA has accepted it. */
        committed = chal->commit(r, token) == SCEP_CHALLENGE_OK;
        if (!committed) {
            ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r, SCEPLOGNO(00075)
                          "transaction %s: the password was spent by a "
                          "concurrent request", transid_text(op));
        }
    }
    if (chal && token) {
        chal->notify(r, token, committed);
    }
    switch (res.status) {
    case SCEP_SUBMIT_ISSUED: {
        X509 *leaf = sk_X509_value(res.certs, 0);
        ap_log_rerror(APLOG_MARK, APLOG_NOTICE, 0, r, SCEPLOGNO(00076)
                      "issued: transaction %s, subject %s, serial %s, "
                      "template %s, provider %s, password from %s, "
                      "client %s", transid_text(op),
                      scep_ra_subject(r->pool, leaf),
                      scep_ca_serial_hex(r->pool, leaf), t->name,
                      prov->name, admin ? admin : "-", r->useragent_ip);
        return reply(op, SCEP_STATUS_SUCCESS, 0, res.certs);
    }
    case SCEP_SUBMIT_PENDING:
        ap_log_rerror(APLOG_MARK, APLOG_NOTICE, 0, r, SCEPLOGNO(00077)
                      "pending: transaction %s, request %s, template %s, "
                      "provider %s", transid_text(op),
                      res.request_id ? res.request_id : "-", t->name,
                      prov->name);
        return reply(op, SCEP_STATUS_PENDING, 0, NULL);
    case SCEP_SUBMIT_REJECTED:
        break;
    }
    ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, SCEPLOGNO(00078)
                  "transaction %s: the CA refused the request: %s "
                  "(NDES event 42)", transid_text(op),
                  res.reason ? res.reason : "no reason given");
    return fail(op, (scep_failinfo_e)res.fail_info);
}

/* A CertPoll for a request in the spool: submit it again and answer the
 * poll with what the CA says now.  -1 when there is no such request (or
 * it cannot be used, or the poll names another subject): the provider
 * answers the poll then. */
static int retry_spooled(pkiop_t *op, const scep_msg_opts_t *opts)
{
    request_rec *r = op->r;
    const char *dir = scep_conf_spool_dir(op->c), *name, *key;
    apr_time_t retention = apr_time_from_sec(scep_conf_pending_retention(
                                                 op->c));
    scep_spool_entry_t e;
    pkiop_t again;
    apr_status_t rv;

    key = pubkey_id(r->pool, X509_get_X509_PUBKEY(op->msg->signer));
    if (key == NULL) {
        return -1;
    }
    name = scep_spool_name(r->pool, transid_text(op), key);
    rv = scep_spool_get(r->pool, dir, name,
                        (apr_size_t)scep_conf_max_request(op->c), &e);
    if (rv == APR_ENOENT) {
        return -1;
    }
    again = *op;
    again.answer_to = op;
    again.spooled = &e;
    again.der = e.der;
    again.len = e.len;
    if (rv != APR_SUCCESS || e.since < apr_time_now() - retention
        || scep_msg_parse(r->pool, e.der, e.len, opts, &again.msg) != SCEP_OK
        || scep_msg_decrypt(r->pool, again.msg, op->ra.enc_key,
                            op->ra.enc_cert, opts) != SCEP_OK
        || again.msg->csr == NULL) {
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, rv, r, SCEPLOGNO(00094)
                      "transaction %s: the spooled request is %s; it is "
                      "dropped", transid_text(op),
                      rv == APR_SUCCESS && e.since < apr_time_now() - retention
                          ? "older than SCEPPendingRetention"
                          : "unreadable");
        scep_spool_drop(r->pool, dir, name);
        return -1;
    }
    if (X509_NAME_cmp(X509_REQ_get_subject_name(again.msg->csr),
                      op->msg->subject) != 0) {
        return -1;
    }
    ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, SCEPLOGNO(00095)
                  "transaction %s: CertPoll for a spooled request: asking "
                  "the CA again (attempt %d)", transid_text(op),
                  e.attempts + 1);
    return enroll(&again);
}

/* CertPoll, GetCert, GetCRL (RFC 8894 3.3.3 to 3.3.5): the provider
 * answers from what the CA holds. */
static int lookup(pkiop_t *op, const scep_msg_opts_t *opts)
{
    request_rec *r = op->r;
    const scep_submit_provider_t *prov = scep_conf_submit(op->c);
    void *inst = op->c->submit_instance;
    scep_submit_result_t res;
    X509_CRL *crl = NULL;
    apr_status_t rv = APR_ENOTIMPL;

    memset(&res, 0, sizeof(res));
    switch (op->msg->type) {
    case SCEP_MT_CERTPOLL: {
        int done = retry_spooled(op, opts);
        if (done >= 0) {
            return done;
        }
        if (prov && prov->poll) {
            rv = prov->poll(inst, r, transid_text(op), op->msg->subject,
                            op->msg->signer, &res);
        }
        break;
    }
    case SCEP_MT_GETCERT:
        if (prov && prov->get_cert) {
            rv = prov->get_cert(inst, r, op->msg->issuer, op->msg->serial,
                                &res);
        }
        break;
    default:
        if (prov && prov->get_crl) {
            rv = prov->get_crl(inst, r, op->msg->issuer, op->msg->serial,
                               &crl);
        }
        if (rv == APR_SUCCESS) {
            return reply_crl(op, crl);
        }
        if (rv == APR_NOTFOUND) {
            res.status = SCEP_SUBMIT_REJECTED;
            res.fail_info = SCEP_FAIL_BADCERTID;
            res.reason = "not a certificate of this CA";
            rv = APR_SUCCESS;
        }
    }
    if (rv != APR_SUCCESS && rv != APR_ENOTIMPL
        && op->msg->type == SCEP_MT_CERTPOLL) {
        /* The CA cannot be asked now; as far as the RA knows the request
         * still waits, so the device keeps polling. */
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, rv, r, SCEPLOGNO(00096)
                      "transaction %s: CertPoll cannot be answered by "
                      "provider %s now (NDES event 26): PENDING",
                      transid_text(op), prov ? prov->name : "none");
        return reply(op, SCEP_STATUS_PENDING, 0, NULL);
    }
    if (rv != APR_SUCCESS) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, rv, r, SCEPLOGNO(00090)
                      "transaction %s: %s cannot be answered by provider %s",
                      transid_text(op), scep_msgtype_name(op->msg->type),
                      prov ? prov->name : "none");
        return fail(op, SCEP_FAIL_BADREQUEST);
    }
    switch (res.status) {
    case SCEP_SUBMIT_ISSUED:
        return reply(op, SCEP_STATUS_SUCCESS, 0, res.certs);
    case SCEP_SUBMIT_PENDING:
        return reply(op, SCEP_STATUS_PENDING, 0, NULL);
    case SCEP_SUBMIT_REJECTED:
        break;
    }
    ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, SCEPLOGNO(00091)
                  "transaction %s: %s: %s (NDES event 25)", transid_text(op),
                  scep_msgtype_name(op->msg->type),
                  res.reason ? res.reason : "refused");
    return fail(op, (scep_failinfo_e)res.fail_info);
}

int scep_pkiop_handle(request_rec *r, const scep_dir_conf_t *c)
{
    apr_off_t max = scep_conf_max_request(c);
    scep_msg_opts_t opts;
    const unsigned char *der = NULL;
    apr_size_t len = 0;
    pkiop_t op = { r, c };
    scep_err_e err;

    if (!c->ca || !scep_conf_ra(c, &op.ra)) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, SCEPLOGNO(00079)
                      "PKIOperation needs SCEPCACertificateFile and RA "
                      "certificates at %s (NDES event 10)", r->uri);
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    if (r->method_number == M_POST) {
        unsigned char *body;
        apr_size_t blen;
        int rv = read_body(r, max, &body, &blen);
        if (rv != OK) {
            if (rv == HTTP_REQUEST_ENTITY_TOO_LARGE) {
                ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, SCEPLOGNO(00085)
                              "PKIOperation body over SCEPMaxRequestSize %"
                              APR_OFF_T_FMT " (NDES event 15)", max);
            }
            return rv;
        }
        if (!scep_transport_body(r->pool, body, blen, &der, &len)) {
            der = NULL;
        }
    }
    else {
        apr_size_t rawlen = 0;
        const char *raw = scep_ops_query_param(r, "message", &rawlen);
        unsigned char *dec;
        if (raw
            && scep_transport_query_message(r->pool, raw, rawlen, &dec,
                                            &len)) {
            der = dec;
        }
    }
    if (der == NULL || len == 0) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, SCEPLOGNO(00080)
                      "PKIOperation without a readable message (NDES event "
                      "11)");
        return HTTP_BAD_REQUEST;
    }

    opts.allow_des = c->allow_des == 1;
    opts.allow_legacy = scep_conf_legacy(c);
    opts.max_size = (apr_size_t)max;
    op.der = der;
    op.len = len;
    err = scep_msg_parse(r->pool, der, len, &opts, &op.msg);
    if (err != SCEP_OK && op.msg->signer == NULL) {
        /* Nobody to sign a CertRep for. */
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, SCEPLOGNO(00081)
                      "PKIOperation: %s %s", scep_msg_strerror(err),
                      scep_msg_ossl_errors(r->pool));
        return err == SCEP_E_TOO_LARGE ? HTTP_REQUEST_ENTITY_TOO_LARGE
                                       : HTTP_BAD_REQUEST;
    }
    if (err != SCEP_OK) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, SCEPLOGNO(00082)
                      "transaction %s: %s", transid_text(&op),
                      scep_msg_strerror(err));
        return fail(&op, err == SCEP_E_SIGNATURE ? SCEP_FAIL_BADMESSAGECHECK
                         : err == SCEP_E_DIGEST  ? SCEP_FAIL_BADALG
                                                 : SCEP_FAIL_BADREQUEST);
    }
    err = scep_msg_decrypt(r->pool, op.msg, op.ra.enc_key, op.ra.enc_cert,
                           &opts);
    if (err != SCEP_OK) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, SCEPLOGNO(00083)
                      "transaction %s: %s %s", transid_text(&op),
                      scep_msg_strerror(err), scep_msg_ossl_errors(r->pool));
        return fail(&op, err == SCEP_E_CIPHER ? SCEP_FAIL_BADALG
                                              : SCEP_FAIL_BADREQUEST);
    }
    switch (op.msg->type) {
    case SCEP_MT_PKCSREQ:
    case SCEP_MT_RENEWALREQ:
        return enroll(&op);
    case SCEP_MT_CERTPOLL:
    case SCEP_MT_GETCERT:
    case SCEP_MT_GETCRL:
        return lookup(&op, &opts);
    default:
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, SCEPLOGNO(00084)
                      "transaction %s: %s is not served yet",
                      transid_text(&op), scep_msgtype_name(op.msg->type));
        return fail(&op, SCEP_FAIL_BADREQUEST);
    }
}
