/* Licensed under the Apache License, Version 2.0; see LICENSE. */

/*
 * Submission provider "scep": SCEPProvider scep URL [JOURNAL_DIR].
 *
 * The RA holds no device key, so it cannot change the device's PKCS#10:
 * it puts the PKCS#10 as it came into a PKCSReq of its own, signed with
 * the RA signing key and encrypted to the upstream's RA (or CA)
 * certificate, and relays what the upstream answers.  The upstream's
 * certificates come from its GetCACert (kept per child for an hour,
 * fetched again after any fault) and must chain to
 * SCEPUpstreamCAFingerprint's certificate or, without it, to the
 * location's own SCEPCACertificateFile: the CA the RA names to devices.
 *
 * Nothing is submitted twice for one transaction: a small journal, one
 * file per transaction and key, says what went upstream (sent, pending,
 * issued).  A request that was sent without an answer is "maybe
 * delivered": asked again, the provider polls the upstream (CertPoll)
 * and sends the PKCSReq again only when the upstream answers that it
 * does not know the transaction (badCertId), which RFC 8894 5.2 makes
 * the way to resynchronise.
 */

#include <string.h>

#include <apr_base64.h>
#include <apr_file_io.h>
#include <apr_lib.h>
#include <apr_strings.h>
#include <apr_thread_mutex.h>

#include <httpd.h>
#include <http_config.h>
#include <http_log.h>
#include <unixd.h>

#include <unistd.h>

#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "scep_ca_scep.h"
#include "scep_config.h"
#include "scep_http.h"
#include "scep_log.h"
#include "scep_msg.h"
#include "scep_pool.h"
#include "scep_ra.h"

APLOG_USE_MODULE(scep);

#ifndef SCEP_STATE_DIR
#define SCEP_STATE_DIR "/var/lib/mod_scep"
#endif

/* The upstream's GetCACert and GetCACaps are asked again after this. */
#define UPSTREAM_CACHE_TTL apr_time_from_sec(3600)
/* A CertRep or GetCACert larger than this is not one. */
#define UPSTREAM_MAX_REPLY (256 * 1024)
/* Connecting takes at most this (or the whole timeout, if shorter). */
#define UPSTREAM_CONNECT_MAX apr_time_from_sec(10)
/* A journal file is small: a PKCS#10 and a few certificates. */
#define JOURNAL_MAX (128 * 1024)

#define CAP_POST 0x01
#define CAP_AES 0x02
#define CAP_DES3 0x04
#define CAP_SHA256 0x08
#define CAP_SHA512 0x10
#define CAP_SHA1 0x20
#define CAP_STANDARD 0x40

SCEP_POOL_FREE(X509_REQ, X509_REQ_free)
SCEP_POOL_FREE(X509_STORE, X509_STORE_free)
SCEP_POOL_FREE(BIO, BIO_free)

static apr_status_t free_x509_stack(void *d)
{
    sk_X509_pop_free(d, X509_free);
    return APR_SUCCESS;
}

static apr_status_t free_stack_only(void *d)
{
    sk_X509_free(d);
    return APR_SUCCESS;
}

/* One SCEPProvider scep line. */
typedef struct {
    const char *url;     /* the upstream's SCEP URL */
    const char *journal; /* the journal directory */
    /* per child: what GetCACert and GetCACaps said */
    apr_pool_t *child_pool;
    apr_thread_mutex_t *mutex;   /* NULL: no threads, no lock */
    apr_pool_t *cache_pool;      /* holds cacert; replaced on refresh */
    const unsigned char *cacert; /* GetCACert body */
    apr_size_t cacert_len;
    unsigned int caps;  /* CAP_* */
    apr_time_t fetched; /* 0: nothing cached */
    apr_time_t purged;  /* last sweep of the journal */
} upstream_t;

/* One call of submit or poll. */
typedef struct {
    request_rec *r;
    const scep_dir_conf_t *c;
    upstream_t *u;
    scep_ra_ids_t ra;
    const char *transid;
    int event;              /* NDES event of a fault: 31, 26 */
    scep_msg_opts_t opts;   /* what replies may use */
    STACK_OF(X509) * certs; /* the upstream's, as fetched */
    X509_STORE *trust;      /* the anchor(s) they must chain to */
    X509 *ca;               /* the issuing CA (IssuerAndSubject) */
    X509 *recipient;        /* what requests are encrypted to */
    unsigned int caps;
} call_t;

typedef enum { J_NONE = 0, J_SENT, J_PENDING, J_ISSUED } jstate_e;

static const char *const jstate_names[] = {"none", "sent", "pending",
                                           "issued"};

/* What the journal holds for a transaction. */
typedef struct {
    jstate_e state;
    apr_time_t since;       /* when this state was written */
    X509_REQ *csr;          /* the request as the device sent it */
    STACK_OF(X509) * certs; /* J_ISSUED: certificate, then chain */
} journal_t;

/* ------------------------------------------------------------------ */
/* configuration                                                       */

static const char *scep_create(void **instance, apr_pool_t *p, server_rec *s,
                               int argc, char *const argv[])
{
    upstream_t *u = apr_pcalloc(p, sizeof(*u));
    apr_uri_t uri;

    if (argc < 1 || argc > 2) {
        return "SCEPProvider scep needs the upstream's URL, then optionally "
               "its journal directory";
    }
    if (apr_uri_parse(p, argv[0], &uri) != APR_SUCCESS || !uri.scheme
        || strcasecmp(uri.scheme, "http") || !uri.hostname) {
        return apr_psprintf(p,
                            "SCEPProvider scep: %s is not an http:// URL "
                            "(SCEP protects its messages itself; https is "
                            "not supported)",
                            argv[0]);
    }
    u->url = argv[0];
    u->journal = argc > 1 ? ap_server_root_relative(p, argv[1])
                          : SCEP_STATE_DIR "/upstream";
    if (u->journal == NULL) {
        return apr_pstrcat(p, "SCEPProvider scep: invalid path ", argv[1],
                           NULL);
    }
    *instance = u;
    return NULL;
}

const char *scep_cmd_SCEPUpstreamCAFingerprint(cmd_parms *cmd, void *dc,
                                               const char *arg)
{
    scep_dir_conf_t *c = dc;
    unsigned char *fp = apr_palloc(cmd->pool, 32);
    const char *hex = arg;
    int i = 0;

    if (!strncasecmp(hex, "sha256:", 7)) {
        hex += 7;
    }
    /* Colons between the bytes, as openssl prints them, are fine. */
    while (*hex && i < 64) {
        int v;
        if (*hex == ':') {
            hex++;
            continue;
        }
        if (!apr_isxdigit(*hex)) {
            break;
        }
        v = apr_isdigit(*hex) ? *hex - '0' : apr_tolower(*hex) - 'a' + 10;
        if (i % 2 == 0) {
            fp[i / 2] = (unsigned char)(v << 4);
        }
        else {
            fp[i / 2] |= (unsigned char)v;
        }
        i++;
        hex++;
    }
    if (i != 64 || *hex) {
        return "SCEPUpstreamCAFingerprint must be sha256: and 64 hex digits "
               "(the SHA-256 of the upstream CA certificate)";
    }
    c->upstream_pin = fp;
    return NULL;
}

const char *scep_cmd_SCEPUpstreamTimeout(cmd_parms *cmd, void *dc,
                                         const char *arg)
{
    char *end;
    long v = strtol(arg, &end, 10);

    if (!apr_isdigit(*arg) || *end || v < 1 || v > 3600) {
        return "SCEPUpstreamTimeout must be 1 to 3600 seconds";
    }
    ((scep_dir_conf_t *)dc)->upstream_timeout = (int)v;
    return NULL;
}

/* The journal directory: made at startup (as root, then given to the
 * user the children run as). */
static apr_status_t scep_init(void *instance, apr_pool_t *pconf,
                              apr_pool_t *ptemp, server_rec *s)
{
    upstream_t *u = instance;
    apr_status_t rv = apr_dir_make_recursive(
        u->journal, APR_FPROT_UREAD | APR_FPROT_UWRITE | APR_FPROT_UEXECUTE,
        ptemp);

    if (rv != APR_SUCCESS) {
        ap_log_error(
            APLOG_MARK, APLOG_EMERG, rv, s,
            SCEPLOGNO(00200) "provider scep (%s): cannot create the journal "
                             "directory %s",
            u->url, u->journal);
        return rv;
    }
    if (geteuid() == 0 && chown(u->journal, ap_unixd_config.user_id, -1)) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s, SCEPLOGNO(00201)
                     "provider scep (%s): cannot give the journal directory "
                     "%s to the httpd user", u->url, u->journal);
        return APR_EGENERAL;
    }
    return APR_SUCCESS;
}

static apr_status_t scep_child_init(void *instance, apr_pool_t *p,
                                    server_rec *s)
{
    upstream_t *u = instance;

    u->child_pool = p;
    u->fetched = 0;
    return apr_thread_mutex_create(&u->mutex, APR_THREAD_MUTEX_DEFAULT, p);
}

/* ------------------------------------------------------------------ */
/* the upstream's certificates and capabilities                        */

static void cache_lock(upstream_t *u)
{
    if (u->mutex) {
        apr_thread_mutex_lock(u->mutex);
    }
}

static void cache_unlock(upstream_t *u)
{
    if (u->mutex) {
        apr_thread_mutex_unlock(u->mutex);
    }
}

/* After a fault the upstream may have new certificates: ask again. */
static void cache_forget(upstream_t *u)
{
    cache_lock(u);
    u->fetched = 0;
    cache_unlock(u);
}

static unsigned int parse_caps(const unsigned char *b, apr_size_t len)
{
    static const struct {
        const char *word;
        unsigned int cap;
    } words[] = {
        {"POSTPKIOperation", CAP_POST},
        {"AES", CAP_AES},
        {"DES3", CAP_DES3},
        {"SHA-256", CAP_SHA256},
        {"SHA-512", CAP_SHA512},
        {"SHA-1", CAP_SHA1},
        {"SCEPStandard", CAP_STANDARD},
    };
    unsigned int caps = 0;
    apr_size_t i = 0;

    while (i < len) {
        apr_size_t s = i, e, k;
        while (i < len && b[i] != '\n') {
            i++;
        }
        e = i++;
        while (s < e && apr_isspace(b[s])) {
            s++;
        }
        while (e > s && apr_isspace(b[e - 1])) {
            e--;
        }
        for (k = 0; k < sizeof(words) / sizeof(words[0]); k++) {
            if (strlen(words[k].word) == e - s
                && !strncasecmp((const char *)b + s, words[k].word, e - s)) {
                caps |= words[k].cap;
            }
        }
    }
    return caps;
}

static const char *caps_text(apr_pool_t *p, unsigned int caps)
{
    return apr_pstrcat(
        p, caps & CAP_POST ? " POSTPKIOperation" : "",
        caps & CAP_AES ? " AES" : "", caps & CAP_DES3 ? " DES3" : "",
        caps & CAP_SHA256 ? " SHA-256" : "",
        caps & CAP_SHA512 ? " SHA-512" : "", caps & CAP_SHA1 ? " SHA-1" : "",
        caps & CAP_STANDARD ? " SCEPStandard" : "", caps ? "" : " (none)",
        NULL);
}

static scep_http_limits_t limits(const call_t *k)
{
    scep_http_limits_t lim;
    int secs = k->c->upstream_timeout > 0 ? k->c->upstream_timeout
                                          : SCEP_UPSTREAM_DEFAULT_TIMEOUT;

    lim.timeout = apr_time_from_sec(secs);
    lim.connect_timeout = lim.timeout < UPSTREAM_CONNECT_MAX
                              ? lim.timeout
                              : UPSTREAM_CONNECT_MAX;
    lim.max_body = UPSTREAM_MAX_REPLY;
    return lim;
}

/* GetCACaps, then GetCACert.  Nothing of a request is sent here. */
static apr_status_t fetch_ca(call_t *k, const unsigned char **der,
                             apr_size_t *len, unsigned int *caps)
{
    request_rec *r = k->r;
    scep_http_limits_t lim = limits(k);
    scep_http_reply_t rep;
    apr_status_t rv;

    rv = scep_http_exchange(r->pool, k->u->url, "operation=GetCACaps", NULL, 0,
                            NULL, &lim, &rep);
    if (rv != APR_SUCCESS) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, rv, r, SCEPLOGNO(00202)
                      "transaction %s: upstream %s not reached, nothing "
                      "delivered: GetCACaps: %s (NDES event %d)",
                      k->transid, k->u->url, rep.error, k->event);
        return SCEP_UPSTREAM_NOT_DELIVERED;
    }
    /* RFC 8894 3.5.1: an error means no capabilities. */
    *caps = rep.status == 200 ? parse_caps(rep.body, rep.len) : 0;

    rv = scep_http_exchange(r->pool, k->u->url, "operation=GetCACert", NULL, 0,
                            NULL, &lim, &rep);
    if (rv == APR_SUCCESS && (rep.status != 200 || rep.len == 0)) {
        rep.error =
            apr_psprintf(r->pool, "HTTP status %d, %" APR_SIZE_T_FMT " bytes",
                         rep.status, rep.len);
        rv = APR_EGENERAL;
    }
    if (rv != APR_SUCCESS) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, rv, r, SCEPLOGNO(00203)
                      "transaction %s: upstream %s: no CA certificates, "
                      "nothing delivered: GetCACert: %s (NDES event %d)",
                      k->transid, k->u->url, rep.error, k->event);
        return SCEP_UPSTREAM_NOT_DELIVERED;
    }
    *der = rep.body;
    *len = rep.len;
    ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r,
                  SCEPLOGNO(00204) "upstream %s: GetCACert %" APR_SIZE_T_FMT
                                   " bytes (%s), "
                                   "GetCACaps%s",
                  k->u->url, rep.len, rep.content_type,
                  caps_text(r->pool, *caps));
    return APR_SUCCESS;
}

/* The certificates of a GetCACert body: one DER certificate, or a
 * degenerate certs-only SignedData. */
static STACK_OF(X509)
    * parse_cacert(apr_pool_t *p, const unsigned char *der, apr_size_t len)
{
    const unsigned char *in = der;
    CMS_ContentInfo *cms = d2i_CMS_ContentInfo(NULL, &in, (long)len);
    STACK_OF(X509) *certs = NULL;

    if (cms) {
        certs = CMS_get1_certs(cms);
        CMS_ContentInfo_free(cms);
    }
    else {
        X509 *x;
        in = der;
        x = d2i_X509(NULL, &in, (long)len);
        if (x) {
            certs = sk_X509_new_null();
            if (!certs || !sk_X509_push(certs, x)) {
                X509_free(x);
            }
        }
    }
    /* The form not taken leaves errors that would mislead a later log. */
    ERR_clear_error();
    if (certs && sk_X509_num(certs) == 0) {
        sk_X509_free(certs);
        certs = NULL;
    }
    if (certs) {
        apr_pool_cleanup_register(p, certs, free_x509_stack,
                                  apr_pool_cleanup_null);
    }
    return certs;
}

/* Does x chain to the anchors (through the upstream's certificates),
 * valid now? */
static int trusted(call_t *k, X509 *x, STACK_OF(X509) * more)
{
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    STACK_OF(X509) *chain = sk_X509_dup(k->certs);
    int i, ok = 0;

    for (i = 0; chain && more && i < sk_X509_num(more); i++) {
        sk_X509_push(chain, sk_X509_value(more, i));
    }
    if (ctx && chain && X509_STORE_CTX_init(ctx, k->trust, x, chain)) {
        ok = X509_verify_cert(ctx) == 1;
    }
    X509_STORE_CTX_free(ctx);
    sk_X509_free(chain);
    return ok;
}

static int is_pinned(X509 *x, const unsigned char *pin)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;

    return X509_digest(x, EVP_sha256(), md, &n) && n == 32
           && !memcmp(md, pin, 32);
}

/* Pick the anchor, the recipient and the issuing CA among the upstream's
 * certificates.  NULL when they will do, else why not. */
static const char *check_upstream(call_t *k)
{
    apr_pool_t *p = k->r->pool;
    STACK_OF(X509) *anchors = k->c->ca->certs;
    int i;

    k->trust = own_X509_STORE(p, X509_STORE_new());
    if (k->trust == NULL) {
        return "out of memory";
    }
    if (k->c->upstream_pin) {
        X509 *pinned = NULL;
        for (i = 0; i < sk_X509_num(k->certs); i++) {
            if (is_pinned(sk_X509_value(k->certs, i), k->c->upstream_pin)) {
                pinned = sk_X509_value(k->certs, i);
            }
        }
        if (pinned == NULL) {
            return "none of its certificates has the SHA-256 fingerprint "
                   "SCEPUpstreamCAFingerprint names";
        }
        X509_STORE_add_cert(k->trust, pinned);
    }
    else {
        for (i = 0; i < sk_X509_num(anchors); i++) {
            X509_STORE_add_cert(k->trust, sk_X509_value(anchors, i));
        }
    }
    /* The anchor may be an issuing CA under a root nobody here holds. */
    X509_STORE_set_flags(k->trust, X509_V_FLAG_PARTIAL_CHAIN);

    /* An RA encryption certificate if there is one (RFC 8894 2.2), else
     * the CA itself. */
    for (i = 0; i < sk_X509_num(k->certs) && !k->recipient; i++) {
        X509 *x = sk_X509_value(k->certs, i);
        if (X509_check_ca(x) == 0
            && (X509_get_key_usage(x) & KU_KEY_ENCIPHERMENT)
            && trusted(k, x, NULL)) {
            k->recipient = x;
        }
    }
    for (i = 0; i < sk_X509_num(k->certs) && !k->ca; i++) {
        X509 *x = sk_X509_value(k->certs, i);
        if (X509_check_ca(x) > 0 && trusted(k, x, NULL)
            && (k->recipient == NULL
                || X509_check_issued(x, k->recipient) == X509_V_OK)) {
            k->ca = x;
        }
    }
    if (k->ca == NULL) {
        return k->c->upstream_pin
                   ? "no CA certificate among them chains to the one "
                     "SCEPUpstreamCAFingerprint names"
                   : "no CA certificate among them chains to this "
                     "location's SCEPCACertificateFile (set "
                     "SCEPUpstreamCAFingerprint if the upstream is another "
                     "CA)";
    }
    if (k->recipient == NULL) {
        k->recipient = k->ca;
    }
    return NULL;
}

/* The upstream's certificates for this call: cached, else fetched. */
static apr_status_t upstream_ready(call_t *k)
{
    request_rec *r = k->r;
    upstream_t *u = k->u;
    const unsigned char *der = NULL;
    apr_size_t len = 0;
    unsigned int caps = 0;
    const char *why;
    apr_status_t rv;

    cache_lock(u);
    if (u->fetched && apr_time_now() - u->fetched < UPSTREAM_CACHE_TTL) {
        der = apr_pmemdup(r->pool, u->cacert, u->cacert_len);
        len = u->cacert_len;
        caps = u->caps;
    }
    cache_unlock(u);
    if (der == NULL) {
        rv = fetch_ca(k, &der, &len, &caps);
        if (rv != APR_SUCCESS) {
            return rv;
        }
        if (u->child_pool) {
            apr_pool_t *np;
            cache_lock(u);
            if (apr_pool_create(&np, u->child_pool) == APR_SUCCESS) {
                /* Readers copy under the lock: the old pool can go. */
                if (u->cache_pool) {
                    apr_pool_destroy(u->cache_pool);
                }
                u->cache_pool = np;
                u->cacert = apr_pmemdup(np, der, len);
                u->cacert_len = len;
                u->caps = caps;
                u->fetched = apr_time_now();
            }
            cache_unlock(u);
        }
    }
    k->caps = caps;
    k->certs = parse_cacert(r->pool, der, len);
    why = k->certs ? check_upstream(k)
                   : "its GetCACert reply holds no certificate";
    if (why) {
        ap_log_rerror(
            APLOG_MARK, APLOG_ERR, 0, r,
            SCEPLOGNO(00205) "transaction %s: upstream %s refused, nothing "
                             "delivered: %s (NDES event %d)",
            k->transid, u->url, why, k->event);
        cache_forget(u);
        return SCEP_UPSTREAM_NOT_DELIVERED;
    }
    return APR_SUCCESS;
}

/* ------------------------------------------------------------------ */
/* one PKIOperation upstream                                           */

static const char *url_escape_b64(apr_pool_t *p, const unsigned char *der,
                                  apr_size_t len)
{
    char *b64 = apr_palloc(p, (apr_size_t)apr_base64_encode_len((int)len));
    char *out, *o;
    const char *s;

    apr_base64_encode(b64, (const char *)der, (int)len);
    o = out = apr_palloc(p, strlen(b64) * 3 + 1);
    for (s = b64; *s; s++) {
        if (*s == '+' || *s == '/' || *s == '=') {
            o += apr_snprintf(o, 4, "%%%02X", (unsigned char)*s);
        }
        else {
            *o++ = *s;
        }
    }
    *o = '\0';
    return out;
}

/*
 * Send a request (PKCSReq or CertPoll) and read the CertRep: signed by
 * one of the upstream's certificates, for our transaction and nonce,
 * its envelope opened with the RA key it is encrypted to.
 */
static apr_status_t exchange(call_t *k, scep_msgtype_e type,
                             const unsigned char *data, apr_size_t dlen,
                             scep_msg_t **out)
{
    request_rec *r = k->r;
    const scep_dir_conf_t *c = k->c;
    scep_signer_t signer = {k->ra.sign_cert, k->ra.sign_key};
    const EVP_CIPHER *cipher;
    const EVP_MD *md;
    unsigned char nonce[16], *der;
    apr_size_t len;
    scep_http_limits_t lim = limits(k);
    scep_http_reply_t rep;
    scep_msg_t *m;
    scep_err_e err;
    int post, i, from_upstream = 0;
    const char *what = scep_msgtype_name(type);
    apr_status_t rv;

    /* The upstream's capabilities choose; single DES only when this
     * location allows it (SCEPAllowDES). */
    if (k->caps & (CAP_AES | CAP_STANDARD)) {
        cipher = EVP_aes_128_cbc();
    }
    else if ((k->caps & CAP_DES3) && scep_conf_legacy(c)) {
        cipher = EVP_des_ede3_cbc();
    }
    else if (c->allow_des == 1) {
        cipher = EVP_des_cbc();
    }
    else {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, SCEPLOGNO(00206)
                      "transaction %s: upstream %s offers neither AES nor "
                      "DES3 (with SCEPLegacyAlgorithms On); single DES "
                      "needs SCEPAllowDES On; nothing delivered (NDES event "
                      "%d)",
                      k->transid, k->u->url, k->event);
        return SCEP_UPSTREAM_NOT_DELIVERED;
    }
    md = (k->caps & (CAP_SHA256 | CAP_STANDARD)) ? EVP_sha256()
         : (k->caps & CAP_SHA512)                ? EVP_sha512()
         : scep_conf_legacy(c)                   ? EVP_sha1()
                                                 : EVP_sha256();
    post = (k->caps & (CAP_POST | CAP_STANDARD)) != 0;

    err = scep_msg_request(r->pool, type, k->transid, data, dlen, k->recipient,
                           cipher, &signer, md, nonce, &der, &len);
    if (err != SCEP_OK) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, SCEPLOGNO(00207)
                      "transaction %s: cannot build the %s for upstream %s: "
                      "%s %s",
                      k->transid, what, k->u->url, scep_msg_strerror(err),
                      scep_msg_ossl_errors(r->pool));
        return APR_EGENERAL;
    }
    ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, SCEPLOGNO(00208)
                  "transaction %s: %s to upstream %s (%s, %s, %s, encrypted "
                  "to %s)",
                  k->transid, what, k->u->url, post ? "POST" : "GET",
                  OBJ_nid2sn(EVP_CIPHER_get_nid(cipher)),
                  OBJ_nid2sn(EVP_MD_get_type(md)),
                  scep_ra_subject(r->pool, k->recipient));
    rv = post ? scep_http_exchange(r->pool, k->u->url,
                                   "operation=PKIOperation", der, len,
                                   "application/x-pki-message", &lim, &rep)
              : scep_http_exchange(
                  r->pool, k->u->url,
                  apr_pstrcat(r->pool,
                              "operation="
                              "PKIOperation&message=",
                              url_escape_b64(r->pool, der, len), NULL),
                  NULL, 0, NULL, &lim, &rep);
    if (rv != APR_SUCCESS) {
        cache_forget(k->u);
        if (!rep.sent) {
            ap_log_rerror(APLOG_MARK, APLOG_ERR, rv, r, SCEPLOGNO(00209)
                          "transaction %s: %s not delivered: upstream %s: %s "
                          "(NDES event %d)",
                          k->transid, what, k->u->url, rep.error, k->event);
            return SCEP_UPSTREAM_NOT_DELIVERED;
        }
        ap_log_rerror(
            APLOG_MARK, APLOG_ERR, rv, r,
            SCEPLOGNO(00210) "transaction %s: %s maybe delivered, no answer: "
                             "upstream %s: %s (NDES event %d)",
            k->transid, what, k->u->url, rep.error, k->event);
        return SCEP_UPSTREAM_MAYBE_DELIVERED;
    }
    if (rep.status != 200
        || strncasecmp(rep.content_type, "application/x-pki-message", 25)) {
        cache_forget(k->u);
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, SCEPLOGNO(00211)
                      "transaction %s: %s maybe delivered, not answered: "
                      "upstream %s sent HTTP %d, Content-Type '%s', "
                      "%" APR_SIZE_T_FMT " bytes (NDES event %d)",
                      k->transid, what, k->u->url, rep.status,
                      rep.content_type, rep.len, k->event);
        return SCEP_UPSTREAM_MAYBE_DELIVERED;
    }
    err = scep_msg_parse(r->pool, rep.body, rep.len, &k->opts, &m);
    if (err == SCEP_OK) {
        for (i = 0; i < sk_X509_num(k->certs); i++) {
            if (!X509_cmp(m->signer, sk_X509_value(k->certs, i))) {
                from_upstream = 1;
            }
        }
    }
    if (err != SCEP_OK || m->type != SCEP_MT_CERTREP || !m->has_status
        || m->transid.len != strlen(k->transid)
        || memcmp(m->transid.data, k->transid, m->transid.len)
        || m->recipient_nonce.len != sizeof(nonce)
        || memcmp(m->recipient_nonce.data, nonce, sizeof(nonce))
        || !from_upstream || !trusted(k, m->signer, NULL)) {
        cache_forget(k->u);
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, SCEPLOGNO(00212)
                      "transaction %s: %s maybe delivered, the answer is "
                      "not a CertRep from upstream %s for it: %s (NDES "
                      "event %d)",
                      k->transid, what, k->u->url,
                      err != SCEP_OK               ? scep_msg_strerror(err)
                      : m->type != SCEP_MT_CERTREP ? "not a CertRep"
                      : !m->has_status             ? "no pkiStatus"
                      : m->recipient_nonce.len != sizeof(nonce)
                      || memcmp(m->recipient_nonce.data, nonce, sizeof(nonce))
                      ? (m->transid.len == strlen(k->transid)
                      && !memcmp(m->transid.data, k->transid,
                      m->transid.len)
                      ? "recipientNonce is not our senderNonce"
                      : "another transactionID")
                      : !from_upstream ? "signed by a certificate its "
                      "GetCACert did not give"
                      : "its signer does not chain to the "
                      "upstream CA",
                      k->event);
        return SCEP_UPSTREAM_MAYBE_DELIVERED;
    }
    if (m->status == SCEP_STATUS_SUCCESS) {
        /* RFC 8894 3.3.2: encrypted to the certificate that signed the
         * request, the RA signing certificate; some CAs take another of
         * ours. */
        err = scep_msg_decrypt(r->pool, m, k->ra.sign_key, k->ra.sign_cert,
                               &k->opts);
        if (err == SCEP_E_RECIPIENT && k->ra.enc_cert != k->ra.sign_cert) {
            err = scep_msg_decrypt(r->pool, m, k->ra.enc_key, k->ra.enc_cert,
                                   &k->opts);
        }
        if (err != SCEP_OK) {
            ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, SCEPLOGNO(00213)
                          "transaction %s: %s maybe delivered: the "
                          "SUCCESS of upstream %s cannot be opened: %s%s %s "
                          "(NDES event %d)",
                          k->transid, what, k->u->url, scep_msg_strerror(err),
                          err == SCEP_E_CIPHER && m->cipher_nid == NID_des_cbc
                          ? " (single DES: SCEPAllowDES On accepts it)"
                          : "",
                          scep_msg_ossl_errors(r->pool), k->event);
            return SCEP_UPSTREAM_MAYBE_DELIVERED;
        }
    }
    *out = m;
    return APR_SUCCESS;
}

/* ------------------------------------------------------------------ */
/* the journal                                                         */

static const char *journal_path(call_t *k, EVP_PKEY *key)
{
    apr_pool_t *p = k->r->pool;
    const char *kid = key ? scep_msg_key_transid(p, key) : NULL;
    const char *both;
    unsigned char md[32];
    unsigned int n = 0, i;
    char hex[65];

    if (kid == NULL) {
        return NULL;
    }
    /* Transaction IDs are the devices' choice: hashed, never a path. */
    both = apr_pstrcat(p, k->transid, "\n", kid, NULL);
    if (!EVP_Digest(both, strlen(both), md, &n, EVP_sha256(), NULL)) {
        return NULL;
    }
    for (i = 0; i < n; i++) {
        apr_snprintf(hex + 2 * i, 3, "%02x", md[i]);
    }
    return apr_pstrcat(p, k->u->journal, "/", hex, ".txn", NULL);
}

static void journal_read(call_t *k, const char *path, journal_t *j)
{
    apr_pool_t *p = k->r->pool;
    apr_file_t *f;
    apr_finfo_t fi;
    char *buf, line[64], name[16];
    apr_size_t n;
    BIO *bio;
    apr_int64_t since = 0;
    X509 *x;
    int i;

    memset(j, 0, sizeof(*j));
    if (apr_file_open(&f, path, APR_FOPEN_READ | APR_FOPEN_BINARY, 0, p)
        != APR_SUCCESS) {
        return;
    }
    if (apr_file_info_get(&fi, APR_FINFO_SIZE, f) != APR_SUCCESS
        || fi.size > JOURNAL_MAX) {
        apr_file_close(f);
        j->state = J_SENT; /* there but unreadable: assume the worst */
        return;
    }
    n = (apr_size_t)fi.size;
    buf = apr_palloc(p, n + 1);
    if (apr_file_read_full(f, buf, n, &n) != APR_SUCCESS) {
        n = 0;
    }
    apr_file_close(f);
    buf[n] = '\0';
    /* Until its writer has finished, a claim may be empty: in flight. */
    j->state = J_SENT;
    j->since = apr_time_now();
    bio = own_BIO(p, BIO_new_mem_buf(buf, (int)n));
    if (bio == NULL || BIO_gets(bio, line, sizeof(line)) <= 0
        || strcmp(line, "mod_scep upstream journal 1\n")
        || BIO_gets(bio, line, sizeof(line)) <= 0
        || sscanf(line, "state %15s", name) != 1
        || BIO_gets(bio, line, sizeof(line)) <= 0
        || sscanf(line, "since %" APR_INT64_T_FMT, &since) != 1) {
        return;
    }
    for (i = J_SENT; i <= J_ISSUED; i++) {
        if (!strcmp(name, jstate_names[i])) {
            j->state = (jstate_e)i;
        }
    }
    j->since = (apr_time_t)since;
    j->csr = own_X509_REQ(p, PEM_read_bio_X509_REQ(bio, NULL, NULL, NULL));
    j->certs = sk_X509_new_null();
    if (j->certs) {
        apr_pool_cleanup_register(p, j->certs, free_x509_stack,
                                  apr_pool_cleanup_null);
        while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
            if (!sk_X509_push(j->certs, x)) {
                X509_free(x);
            }
        }
    }
    ERR_clear_error(); /* the end of the PEM blocks */
    if (j->state == J_ISSUED && sk_X509_num(j->certs) == 0) {
        j->state = J_SENT;
    }
}

/* Write the journal entry: exclusive claims a new transaction (APR_EEXIST
 * when another request has it), otherwise it replaces the entry. */
static apr_status_t journal_write(call_t *k, const char *path, journal_t *j,
                                  int exclusive)
{
    apr_pool_t *p = k->r->pool;
    BIO *bio = own_BIO(p, BIO_new(BIO_s_mem()));
    const char *tmp = apr_pstrcat(p, path, ".XXXXXX", NULL);
    char *data, *tmpname = apr_pstrdup(p, tmp);
    long n;
    apr_size_t len;
    apr_file_t *f;
    apr_status_t rv;
    int i;

    j->since = apr_time_now();
    if (bio == NULL
        || BIO_printf(
               bio,
               "mod_scep upstream journal 1\nstate %s\nsince %" APR_INT64_T_FMT
               "\n",
               jstate_names[j->state], (apr_int64_t)j->since)
               <= 0
        || (j->csr && !PEM_write_bio_X509_REQ(bio, j->csr))) {
        return APR_ENOMEM;
    }
    for (i = 0; j->certs && i < sk_X509_num(j->certs); i++) {
        if (!PEM_write_bio_X509(bio, sk_X509_value(j->certs, i))) {
            return APR_ENOMEM;
        }
    }
    n = BIO_get_mem_data(bio, &data);
    len = (apr_size_t)n;
    if (exclusive) {
        rv = apr_file_open(&f, path,
                           APR_FOPEN_WRITE | APR_FOPEN_CREATE | APR_FOPEN_EXCL
                               | APR_FOPEN_BINARY,
                           APR_FPROT_UREAD | APR_FPROT_UWRITE, p);
        if (rv == APR_SUCCESS) {
            rv = apr_file_write_full(f, data, len, NULL);
            apr_file_close(f);
        }
        return rv;
    }
    /* Replaced whole (rename), so a reader never sees half an entry. */
    rv = apr_file_mktemp(&f, tmpname,
                         APR_FOPEN_WRITE | APR_FOPEN_CREATE | APR_FOPEN_EXCL
                             | APR_FOPEN_BINARY,
                         p);
    if (rv == APR_SUCCESS) {
        rv = apr_file_write_full(f, data, len, NULL);
        apr_file_close(f);
        if (rv == APR_SUCCESS) {
            rv = apr_file_rename(tmpname, path, p);
        }
        if (rv != APR_SUCCESS) {
            apr_file_remove(tmpname, p);
        }
    }
    return rv;
}

static void journal_note(call_t *k, const char *path, journal_t *j)
{
    apr_status_t rv = journal_write(k, path, j, 0);

    if (rv != APR_SUCCESS) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, rv, k->r, SCEPLOGNO(00214)
                      "transaction %s: cannot write its journal entry %s "
                      "(state %s)",
                      k->transid, path, jstate_names[j->state]);
    }
}

static void journal_drop(call_t *k, const char *path)
{
    apr_file_remove(path, k->r->pool);
}

/* Entries nobody asks about any more go after the longer of the
 * retentions, swept at most once an hour per child. */
static void journal_purge(call_t *k)
{
    upstream_t *u = k->u;
    apr_pool_t *p = k->r->pool;
    apr_time_t now = apr_time_now(), keep;
    apr_finfo_t fi;
    apr_dir_t *d;
    apr_status_t rv;

    cache_lock(u);
    if (now - u->purged < apr_time_from_sec(3600)) {
        cache_unlock(u);
        return;
    }
    u->purged = now;
    cache_unlock(u);
    keep = scep_conf_pending_retention(k->c);
    if (scep_conf_issued_retention(k->c) > keep) {
        keep = scep_conf_issued_retention(k->c);
    }
    keep = apr_time_from_sec(keep);
    if (apr_dir_open(&d, u->journal, p) != APR_SUCCESS) {
        return;
    }
    while ((rv = apr_dir_read(
                &fi, APR_FINFO_NAME | APR_FINFO_MTIME | APR_FINFO_TYPE, d))
               == APR_SUCCESS
           || rv == APR_INCOMPLETE) {
        apr_size_t n = fi.name ? strlen(fi.name) : 0;
        if ((fi.valid & APR_FINFO_MTIME) && fi.filetype == APR_REG && n > 4
            && !strcmp(fi.name + n - 4, ".txn") && now - fi.mtime > keep) {
            apr_file_remove(apr_pstrcat(p, u->journal, "/", fi.name, NULL), p);
        }
    }
    apr_dir_close(d);
}

/* Too old to answer from: SCEPIssuedRetention for a certificate, else
 * SCEPPendingRetention. */
static int journal_expired(call_t *k, const journal_t *j)
{
    apr_time_t keep = apr_time_from_sec(
        j->state == J_ISSUED ? scep_conf_issued_retention(k->c)
                             : scep_conf_pending_retention(k->c));

    return j->state != J_NONE && apr_time_now() - j->since > keep;
}

/* ------------------------------------------------------------------ */
/* results                                                             */

static void result_issued(apr_pool_t *p, scep_submit_result_t *res,
                          STACK_OF(X509) * certs)
{
    memset(res, 0, sizeof(*res));
    res->status = SCEP_SUBMIT_ISSUED;
    res->certs = sk_X509_dup(certs);
    if (res->certs) {
        apr_pool_cleanup_register(p, res->certs, free_stack_only,
                                  apr_pool_cleanup_null);
    }
}

static void result_refused(scep_submit_result_t *res, int fail_info,
                           const char *why)
{
    memset(res, 0, sizeof(*res));
    res->status = SCEP_SUBMIT_REJECTED;
    res->fail_info = fail_info;
    res->reason = why;
}

/* What the upstream answered, as our result; the journal follows. */
static apr_status_t relay(call_t *k, const char *path, journal_t *j,
                          scep_msg_t *m, scep_submit_result_t *res)
{
    request_rec *r = k->r;
    STACK_OF(X509) * certs;
    X509 *leaf = NULL;
    EVP_PKEY *want = j->csr ? X509_REQ_get0_pubkey(j->csr) : NULL;
    int i;

    if (m->status == SCEP_STATUS_PENDING) {
        memset(res, 0, sizeof(*res));
        res->status = SCEP_SUBMIT_PENDING;
        res->request_id = apr_pstrcat(r->pool, "upstream:", k->transid, NULL);
        j->state = J_PENDING;
        journal_note(k, path, j);
        ap_log_rerror(
            APLOG_MARK, APLOG_INFO, 0, r,
            SCEPLOGNO(00215) "transaction %s: upstream %s answered PENDING",
            k->transid, k->u->url);
        return APR_SUCCESS;
    }
    if (m->status == SCEP_STATUS_FAILURE) {
        journal_drop(k, path);
        result_refused(res, m->failinfo,
                       apr_psprintf(r->pool,
                                    "upstream %s answered FAILURE "
                                    "%s",
                                    k->u->url,
                                    scep_failinfo_name(m->failinfo)));
        return APR_SUCCESS;
    }
    /* SUCCESS: the certificate for the key requested, chaining to the
     * upstream CA; then that CA's chain. */
    for (i = 0; want && i < sk_X509_num(m->certs) && !leaf; i++) {
        X509 *x = sk_X509_value(m->certs, i);
        if (EVP_PKEY_eq(X509_get0_pubkey(x), want) == 1) {
            leaf = x;
        }
    }
    if (leaf == NULL || !trusted(k, leaf, m->certs)) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, SCEPLOGNO(00216)
                      "transaction %s: upstream %s answered SUCCESS with %s; "
                      "the device gets nothing (NDES event %d)",
                      k->transid, k->u->url,
                      leaf ? "a certificate that does not chain "
                      "to the upstream CA"
                      : "no certificate for the requested "
                      "key",
                      k->event);
        return SCEP_UPSTREAM_MAYBE_DELIVERED;
    }
    certs = sk_X509_new_null();
    if (certs == NULL) {
        return APR_ENOMEM;
    }
    apr_pool_cleanup_register(r->pool, certs, free_stack_only,
                              apr_pool_cleanup_null);
    sk_X509_push(certs, leaf);
    for (i = 0; i < sk_X509_num(k->certs); i++) {
        X509 *x = sk_X509_value(k->certs, i);
        if (X509_check_ca(x) > 0) {
            sk_X509_push(certs, x);
        }
    }
    j->state = J_ISSUED;
    j->certs = certs;
    journal_note(k, path, j);
    result_issued(r->pool, res, certs);
    ap_log_rerror(
        APLOG_MARK, APLOG_INFO, 0, r,
        SCEPLOGNO(00217) "transaction %s: upstream %s issued serial %s (%s)",
        k->transid, k->u->url, scep_ca_serial_hex(r->pool, leaf),
        scep_ra_subject(r->pool, leaf));
    return APR_SUCCESS;
}

/*
 * The upstream has (or may have) this transaction: ask it with CertPoll
 * (RFC 8894 3.3.3).  When it answers that it knows no such request
 * (badCertId), resend the PKCSReq with the same transactionID (RFC 8894
 * 5.2): a CA that has it answers as before, one that has not takes it
 * now; mod_scep's own CA binds polls to the device's key, which only the
 * device holds, and answers an RA's poll so.
 */
static apr_status_t poll_upstream(call_t *k, const char *path, journal_t *j,
                                  X509_NAME *subject,
                                  scep_submit_result_t *res)
{
    request_rec *r = k->r;
    unsigned char *ias, *csr = NULL;
    apr_size_t ias_len;
    scep_msg_t *m;
    apr_status_t rv;
    int n;

    /* Whatever becomes of this call, the PKCSReq may be upstream: any
     * fault here is "maybe delivered" for the transaction. */
    rv = upstream_ready(k);
    if (rv != APR_SUCCESS) {
        return SCEP_UPSTREAM_MAYBE_DELIVERED;
    }
    if (scep_msg_issuer_and_subject(r->pool, X509_get_subject_name(k->ca),
                                    subject, &ias, &ias_len)
        != SCEP_OK) {
        return APR_EGENERAL;
    }
    rv = exchange(k, SCEP_MT_CERTPOLL, ias, ias_len, &m);
    if (rv != APR_SUCCESS) {
        return SCEP_UPSTREAM_MAYBE_DELIVERED;
    }
    if (m->status == SCEP_STATUS_FAILURE && m->failinfo == SCEP_FAIL_BADCERTID
        && j->csr && (n = i2d_X509_REQ(j->csr, &csr)) > 0) {
        unsigned char *der = apr_pmemdup(r->pool, csr, (apr_size_t)n);
        OPENSSL_free(csr);
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, SCEPLOGNO(00218)
                      "transaction %s: upstream %s knows no request for "
                      "this CertPoll (badCertId); sending the PKCSReq again "
                      "with the same transactionID (RFC 8894 5.2)",
                      k->transid, k->u->url);
        rv = exchange(k, SCEP_MT_PKCSREQ, der, (apr_size_t)n, &m);
        if (rv != APR_SUCCESS) {
            return SCEP_UPSTREAM_MAYBE_DELIVERED;
        }
    }
    else if (m->status == SCEP_STATUS_FAILURE && j->state == J_SENT) {
        /* It never answered the PKCSReq: a refused poll may only mean it
         * does not do polls.  Keep the transaction; an operator decides. */
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r, SCEPLOGNO(00219)
                      "transaction %s: upstream %s answered the CertPoll "
                      "with FAILURE %s and never answered the PKCSReq sent "
                      "%s: it may have it; not sending it again (journal "
                      "%s) (NDES event %d)",
                      k->transid, k->u->url, scep_failinfo_name(m->failinfo),
                      ap_ht_time(r->pool, j->since, "%Y-%m-%d %H:%M:%S GMT",
                                 1),
                      path, k->event);
        return SCEP_UPSTREAM_MAYBE_DELIVERED;
    }
    return relay(k, path, j, m, res);
}

/* ------------------------------------------------------------------ */
/* the provider                                                        */

extern module AP_MODULE_DECLARE_DATA scep_module;

static apr_status_t call_init(call_t *k, void *instance, request_rec *r,
                              const char *transid, int event)
{
    memset(k, 0, sizeof(*k));
    k->r = r;
    k->u = instance;
    k->c = ap_get_module_config(r->per_dir_config, &scep_module);
    k->transid = transid;
    k->event = event;
    if (k->u == NULL || k->c == NULL || k->c->ca == NULL
        || !scep_conf_ra(k->c, &k->ra) || !k->ra.sign_key) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, SCEPLOGNO(00220)
                      "transaction %s: provider scep needs the RA's signing "
                      "key and certificate at %s (NDES event %d)",
                      transid, r->uri, event);
        return APR_EINVAL;
    }
    /* Replies as this location accepts requests: single DES only behind
     * SCEPAllowDES (micromdm's scepserver answers with nothing else). */
    k->opts.allow_des = k->c->allow_des == 1;
    k->opts.allow_legacy = scep_conf_legacy(k->c);
    k->opts.max_size = UPSTREAM_MAX_REPLY;
    return APR_SUCCESS;
}

static apr_status_t scep_submit(void *instance, request_rec *r,
                                const scep_submit_request_t *req,
                                scep_submit_result_t *res)
{
    call_t k;
    journal_t j;
    const char *path;
    X509_REQ *csr = req->csr_parsed;
    const unsigned char *in = req->csr;
    scep_msg_t *m;
    apr_status_t rv;
    int tries;

    memset(res, 0, sizeof(*res));
    rv = call_init(&k, instance, r, req->transaction_id, 31);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    journal_purge(&k);
    if (csr == NULL) {
        csr =
            own_X509_REQ(r->pool, d2i_X509_REQ(NULL, &in, (long)req->csr_len));
    }
    path = csr ? journal_path(&k, X509_REQ_get0_pubkey(csr)) : NULL;
    if (path == NULL) {
        return APR_EINVAL;
    }
    journal_read(&k, path, &j);
    if (journal_expired(&k, &j)) {
        journal_drop(&k, path);
        memset(&j, 0, sizeof(j));
    }
    for (tries = 0;; tries++) {
        if (j.state == J_ISSUED) {
            ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, SCEPLOGNO(00221)
                          "transaction %s: issued upstream before; sending "
                          "the same certificate",
                          k.transid);
            result_issued(r->pool, res, j.certs);
            return APR_SUCCESS;
        }
        if (j.state != J_NONE) {
            ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, SCEPLOGNO(00222)
                          "transaction %s: upstream %s has it, or may have "
                          "it (%s since %s): asking it with CertPoll, not "
                          "sending the request again",
                          k.transid, k.u->url, jstate_names[j.state],
                          ap_ht_time(r->pool, j.since,
                                     "%Y-%m-%d %H:%M:%S GMT", 1));
            j.csr = j.csr ? j.csr : csr;
            return poll_upstream(&k, path, &j, X509_REQ_get_subject_name(csr),
                                 res);
        }
        if (req->lookup_only) {
            result_refused(res, SCEP_FAIL_BADCERTID,
                           "no earlier request with this transaction and "
                           "key went upstream");
            return APR_SUCCESS;
        }
        /* Claim the transaction before anything leaves: a concurrent
         * resend finds the claim and polls instead. */
        j.state = J_SENT;
        j.csr = csr;
        j.certs = NULL;
        rv = journal_write(&k, path, &j, 1);
        if (rv == APR_SUCCESS) {
            break;
        }
        if (!APR_STATUS_IS_EEXIST(rv) || tries == 3) {
            ap_log_rerror(APLOG_MARK, APLOG_ERR, rv, r, SCEPLOGNO(00223)
                          "transaction %s: cannot write the journal entry "
                          "%s, so nothing is sent upstream (provider scep's "
                          "journal directory) (NDES event 31)",
                          k.transid, path);
            return rv;
        }
        journal_read(&k, path, &j);
    }

    rv = upstream_ready(&k);
    if (rv == APR_SUCCESS) {
        rv = exchange(&k, SCEP_MT_PKCSREQ, req->csr, req->csr_len, &m);
    }
    if (rv == SCEP_UPSTREAM_MAYBE_DELIVERED) {
        return rv; /* the claim stays: the next attempt polls first */
    }
    if (rv != APR_SUCCESS) {
        journal_drop(&k, path);
        return rv;
    }
    return relay(&k, path, &j, m, res);
}

/* A device's CertPoll: answered from the journal when the certificate
 * came already, else relayed as the RA's CertPoll. */
static apr_status_t scep_poll(void *instance, request_rec *r,
                              const char *transaction_id, X509_NAME *subject,
                              X509 *requester, scep_submit_result_t *res)
{
    call_t k;
    journal_t j;
    const char *path;
    apr_status_t rv;

    memset(res, 0, sizeof(*res));
    rv = call_init(&k, instance, r, transaction_id, 26);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    path = requester ? journal_path(&k, X509_get0_pubkey(requester)) : NULL;
    if (path == NULL) {
        return APR_EINVAL;
    }
    journal_read(&k, path, &j);
    if (j.state == J_NONE || journal_expired(&k, &j)) {
        result_refused(res, SCEP_FAIL_BADCERTID,
                       "no request of this transaction and key went "
                       "upstream (or it is older than SCEPPendingRetention "
                       "/ SCEPIssuedRetention)");
        return APR_SUCCESS;
    }
    if (j.csr && subject
        && X509_NAME_cmp(X509_REQ_get_subject_name(j.csr), subject)) {
        result_refused(res, SCEP_FAIL_BADCERTID,
                       "the poll names another subject");
        return APR_SUCCESS;
    }
    if (j.state == J_ISSUED) {
        result_issued(r->pool, res, j.certs);
        return APR_SUCCESS;
    }
    return poll_upstream(
        &k, path, &j, j.csr ? X509_REQ_get_subject_name(j.csr) : subject, res);
}

const scep_submit_provider_t scep_submit_scep = {
    "scep",    scep_create, scep_init, scep_child_init, scep_submit,
    scep_poll, NULL, /* get_cert: GetCert is not relayed */
    NULL,            /* get_crl: nor GetCRL */
    NULL, /* cert_status: the upstream cannot be asked; renewal refused */
    0};
