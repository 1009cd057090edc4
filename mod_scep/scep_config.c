/* Licensed under the Apache License, Version 2.0; see LICENSE. */

#include <stdint.h>
#include <stdlib.h>

#include <apr_lib.h>
#include <apr_strings.h>

#include <httpd.h>
#include <http_config.h>
#include <http_log.h>
#include <ap_provider.h>

#include <openssl/evp.h>
#include <openssl/x509v3.h>

#include "scep_ca_scep.h"
#include "scep_challenge.h"
#include "scep_config.h"
#include "scep_log.h"
#include "scep_msg.h"
#include "scep_pwcache.h"

APLOG_USE_MODULE(scep);

/* An RA or CA certificate expiring within this time warns at startup. */
#define SCEP_EXPIRY_WARNING (30L * 86400L)

void *scep_config_create_dir(apr_pool_t *p, char *dir)
{
    scep_dir_conf_t *c = apr_pcalloc(p, sizeof(*c));

    c->max_request = SCEP_UNSET;
    c->legacy = SCEP_UNSET;
    c->allow_des = SCEP_UNSET;
    c->password_max = SCEP_UNSET;
    c->password_validity = SCEP_UNSET;
    c->password_length = SCEP_UNSET;
    c->enforce_password = SCEP_UNSET;
    c->admin_allow_http = SCEP_UNSET;
    c->admin_utf8 = SCEP_UNSET;
    c->renewal_name_match = SCEP_UNSET;
    c->crl_days = SCEP_UNSET;
    c->approval = SCEP_UNSET;
    c->pending_retention = SCEP_UNSET;
    c->issued_retention = SCEP_UNSET;
    c->renewal_window = SCEP_UNSET;
    c->renewal_revoke_old = SCEP_UNSET;
    c->upstream_timeout = SCEP_UNSET;
    return c;
}

#define MERGE_PTR(f) c->f = add->f ? add->f : base->f
#define MERGE_VAL(f) c->f = (add->f != SCEP_UNSET) ? add->f : base->f

void *scep_config_merge_dir(apr_pool_t *p, void *basev, void *addv)
{
    scep_dir_conf_t *base = basev, *add = addv;
    scep_dir_conf_t *c = apr_pcalloc(p, sizeof(*c));

    MERGE_PTR(ca);
    MERGE_PTR(next_ca);
    MERGE_PTR(ra_sign_cert);
    MERGE_PTR(ra_sign_key);
    MERGE_PTR(ra_enc_cert);
    MERGE_PTR(ra_enc_key);
    MERGE_PTR(store);
    MERGE_PTR(hash);
    MERGE_VAL(max_request);
    MERGE_VAL(legacy);
    MERGE_VAL(allow_des);
    MERGE_PTR(challenge);
    MERGE_VAL(password_max);
    MERGE_VAL(password_validity);
    MERGE_VAL(password_length);
    MERGE_VAL(enforce_password);
    MERGE_PTR(single_password_file);
    MERGE_VAL(admin_allow_http);
    MERGE_VAL(admin_utf8);
    if (add->submit) {
        c->submit = add->submit;
        c->submit_instance = add->submit_instance;
    }
    else {
        c->submit = base->submit;
        c->submit_instance = base->submit_instance;
    }
    MERGE_PTR(localca_key);
    MERGE_PTR(localca_cert);
    MERGE_PTR(localca_db);
    MERGE_PTR(spool_dir);
    MERGE_PTR(crl_url);
    MERGE_PTR(template_sig);
    MERGE_PTR(template_enc);
    MERGE_PTR(template_general);
    MERGE_VAL(renewal_name_match);
    MERGE_VAL(crl_days);
    if (add->approval != SCEP_UNSET) {
        c->approval = add->approval;
        c->approval_templates = add->approval_templates;
    }
    else {
        c->approval = base->approval;
        c->approval_templates = base->approval_templates;
    }
    MERGE_VAL(pending_retention);
    MERGE_VAL(issued_retention);
    if (add->renewal_window != SCEP_UNSET) {
        c->renewal_window = add->renewal_window;
        c->renewal_window_pct = add->renewal_window_pct;
    }
    else {
        c->renewal_window = base->renewal_window;
        c->renewal_window_pct = base->renewal_window_pct;
    }
    MERGE_VAL(renewal_revoke_old);
    MERGE_PTR(upstream_pin);
    MERGE_VAL(upstream_timeout);
    return c;
}

apr_off_t scep_conf_max_request(const scep_dir_conf_t *c)
{
    return c->max_request == SCEP_UNSET ? SCEP_DEFAULT_MAX_REQUEST
                                        : c->max_request;
}

int scep_conf_legacy(const scep_dir_conf_t *c)
{
    return c->legacy != 0;  /* on unless switched off, as NDES */
}

const EVP_MD *scep_conf_hash(const scep_dir_conf_t *c)
{
    return c->hash ? c->hash : EVP_sha256();
}

#define OR_DEFAULT(v, d) ((v) == SCEP_UNSET ? (d) : (v))

const scep_challenge_provider_t *scep_conf_challenge(
    const scep_dir_conf_t *c, scep_challenge_service_t *svc)
{
    const scep_challenge_provider_t *prov = c->challenge;

    if (prov == NULL) {
        prov = ap_lookup_provider(SCEP_CHALLENGE_PROVIDER_GROUP, "cache",
                                  SCEP_CHALLENGE_PROVIDER_VERSION);
    }
    memset(svc, 0, sizeof(*svc));
    if (c->ca) {
        memcpy(svc->realm, c->ca->realm, sizeof(svc->realm));
    }
    svc->max = (apr_uint32_t)OR_DEFAULT(c->password_max,
                                        SCEP_DEFAULT_PASSWORD_MAX);
    svc->validity = apr_time_from_sec((apr_time_t)OR_DEFAULT(
                        c->password_validity, SCEP_DEFAULT_PASSWORD_VALIDITY));
    svc->length = (apr_size_t)OR_DEFAULT(c->password_length,
                                         SCEP_DEFAULT_PASSWORD_LENGTH);
    svc->enforce = c->enforce_password != 0;
    return prov;
}

const scep_submit_provider_t *scep_conf_submit(const scep_dir_conf_t *c)
{
    return c->submit ? c->submit
                     : ap_lookup_provider(SCEP_SUBMIT_PROVIDER_GROUP, "local",
                                          SCEP_SUBMIT_PROVIDER_VERSION);
}

/* Templates defined with SCEPTemplate; reset with each configuration. */
static apr_array_header_t *custom_templates;

const scep_template_t *scep_conf_template(const scep_dir_conf_t *c, int ku)
{
    const char *name;
    int bits = ku < 0 ? 0 : (ku & 0xa0);

    /* NDES: signature only, encryption only, or both (or none). */
    name = bits == 0x80   ? c->template_sig
           : bits == 0x20 ? c->template_enc
                          : c->template_general;
    return scep_conf_template_named(name ? name
                                         : scep_ca_builtin_templates[0].name);
}

const scep_template_t *scep_conf_template_named(const char *name)
{
    int i;

    for (i = 0; custom_templates && i < custom_templates->nelts; i++) {
        const scep_template_t *t =
            &APR_ARRAY_IDX(custom_templates, i, scep_template_t);
        if (!strcmp(t->name, name)) {
            return t;
        }
    }
    for (i = 0; scep_ca_builtin_templates[i].name; i++) {
        if (!strcmp(scep_ca_builtin_templates[i].name, name)) {
            return &scep_ca_builtin_templates[i];
        }
    }
    return NULL;
}

const scep_template_t *scep_conf_issuing(apr_pool_t *p,
                                         const scep_dir_conf_t *c,
                                         const scep_template_t *t)
{
    scep_template_t *copy;

    if (t == NULL || c->crl_url == NULL) {
        return t;
    }
    copy = apr_pmemdup(p, t, sizeof(*t));
    copy->crl_url = c->crl_url;
    return copy;
}

int scep_conf_needs_approval(const scep_dir_conf_t *c, const char *tmpl)
{
    int i;

    if (c->approval != 1) {
        return 0;
    }
    for (i = 0; c->approval_templates && i < c->approval_templates->nelts;
         i++) {
        if (!strcmp(APR_ARRAY_IDX(c->approval_templates, i, const char *),
                    tmpl)) {
            return 1;
        }
    }
    return c->approval_templates == NULL;
}

#ifndef SCEP_STATE_DIR
#define SCEP_STATE_DIR "/var/lib/mod_scep"
#endif

const char *scep_conf_spool_dir(const scep_dir_conf_t *c)
{
    return c->spool_dir ? c->spool_dir : SCEP_STATE_DIR "/spool";
}

apr_time_t scep_conf_pending_retention(const scep_dir_conf_t *c)
{
    return OR_DEFAULT(c->pending_retention, SCEP_DEFAULT_PENDING_RETENTION);
}

apr_time_t scep_conf_issued_retention(const scep_dir_conf_t *c)
{
    return OR_DEFAULT(c->issued_retention, SCEP_DEFAULT_ISSUED_RETENTION);
}

int scep_conf_has_directives(const scep_dir_conf_t *c)
{
    return scep_conf_is_set(c) || c->hash || c->challenge
           || c->single_password_file || c->template_sig || c->template_enc
           || c->template_general || c->localca_db || c->spool_dir
           || c->crl_url
           || c->max_request != SCEP_UNSET || c->legacy != SCEP_UNSET
           || c->allow_des != SCEP_UNSET || c->password_max != SCEP_UNSET
           || c->password_validity != SCEP_UNSET
           || c->password_length != SCEP_UNSET
           || c->enforce_password != SCEP_UNSET
           || c->admin_allow_http != SCEP_UNSET
           || c->admin_utf8 != SCEP_UNSET
           || c->renewal_name_match != SCEP_UNSET
           || c->crl_days != SCEP_UNSET || c->approval != SCEP_UNSET
           || c->pending_retention != SCEP_UNSET
           || c->issued_retention != SCEP_UNSET
           || c->renewal_window != SCEP_UNSET
           || c->renewal_revoke_old != SCEP_UNSET || c->upstream_pin
           || c->upstream_timeout != SCEP_UNSET;
}

int scep_conf_is_set(const scep_dir_conf_t *c)
{
    return c->ca || c->next_ca || c->ra_sign_cert || c->ra_sign_key
           || c->ra_enc_cert || c->ra_enc_key || c->store || c->localca_key
           || c->localca_cert || c->submit;
}

static const scep_store_pick_t *store_pick(const scep_dir_conf_t *c)
{
    int i;

    for (i = 0; c->store && c->ca && i < c->store->picks->nelts; i++) {
        const scep_store_pick_t *pk =
            &APR_ARRAY_IDX(c->store->picks, i, scep_store_pick_t);
        if (pk->ca == c->ca->certs) {
            return pk;
        }
    }
    return NULL;
}

int scep_conf_ra(const scep_dir_conf_t *c, scep_ra_ids_t *ids)
{
    const scep_store_pick_t *pk = store_pick(c);

    memset(ids, 0, sizeof(*ids));
    if (c->ra_sign_cert && c->ra_sign_key) {
        ids->sign_cert = sk_X509_value(c->ra_sign_cert->certs, 0);
        ids->sign_key = c->ra_sign_key->key;
    }
    else if (pk && pk->sign) {
        ids->sign_cert = pk->sign->cert;
        ids->sign_key = pk->sign->key;
    }
    if (c->ra_enc_cert && c->ra_enc_key) {
        ids->enc_cert = sk_X509_value(c->ra_enc_cert->certs, 0);
        ids->enc_key = c->ra_enc_key->key;
    }
    else if (pk && pk->encrypt) {
        ids->enc_cert = pk->encrypt->cert;
        ids->enc_key = pk->encrypt->key;
    }
    /* One certificate may hold both roles (checked at startup). */
    if (!ids->enc_cert) {
        ids->enc_cert = ids->sign_cert;
        ids->enc_key = ids->sign_key;
    }
    if (!ids->sign_cert) {
        ids->sign_cert = ids->enc_cert;
        ids->sign_key = ids->enc_key;
    }
    return ids->sign_cert != NULL;
}

static void warn_expiry(apr_pool_t *p, server_rec *s, X509 *cert,
                        const char *what, const char *file, int event)
{
    long left = scep_ra_seconds_left(cert);

    if (left < SCEP_EXPIRY_WARNING) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s, SCEPLOGNO(00003)
                     "%s certificate %s (%s) %s in %ld days%s", what, file,
                     scep_ra_subject(p, cert),
                     left < 0 ? "expired" : "expires",
                     (left < 0 ? -left : left) / 86400L,
                     event ? apr_psprintf(p, " (NDES event %d)", event) : "");
    }
}

static const char *check_role(apr_pool_t *p, X509 *cert, EVP_PKEY *key,
                              scep_ra_role_e role, const char *file)
{
    const char *why = scep_ra_check(p, cert, key, role);

    return why ? apr_psprintf(p, "%s: %s", file, why) : NULL;
}

/* A store serves every CA it is used with; pick once per CA. */
static const char *pick_from_store(apr_pool_t *p, scep_dir_conf_t *c)
{
    scep_store_t *st = c->store;
    scep_store_pick_t *pk;
    const char *why = NULL;

    if (store_pick(c)) {
        return NULL;
    }
    pk = apr_array_push(st->picks);
    pk->ca = c->ca->certs;
    pk->sign = scep_ra_store_pick(p, st->creds, c->ca->certs, SCEP_RA_SIGN,
                                  &why);
    if (!pk->sign && !c->ra_sign_cert) {
        return apr_psprintf(p, "%s (for CA %s): %s", st->dir, c->ca->file,
                            why);
    }
    pk->encrypt = scep_ra_store_pick(p, st->creds, c->ca->certs,
                                     SCEP_RA_ENCRYPT, &why);
    if (!pk->encrypt && !c->ra_enc_cert) {
        return apr_psprintf(p, "%s (for CA %s): %s", st->dir, c->ca->file,
                            why);
    }
    return NULL;
}

const char *scep_conf_check(apr_pool_t *p, server_rec *s, scep_dir_conf_t *c)
{
    scep_ra_ids_t ids;
    const char *why;

    if (!scep_conf_is_set(c)) {
        return NULL;
    }
    if (!c->ca) {
        return "SCEP certificates are configured but SCEPCACertificateFile "
               "is not";
    }
    if (!c->ra_sign_cert != !c->ra_sign_key) {
        return "SCEPRASigningCertificateFile and SCEPRASigningKeyFile go "
               "together";
    }
    if (!c->ra_enc_cert != !c->ra_enc_key) {
        return "SCEPRAEncryptionCertificateFile and SCEPRAEncryptionKeyFile "
               "go together";
    }
    if (c->store && (why = pick_from_store(p, c)) != NULL) {
        return why;
    }
    {
        static const int kinds[] = { 0x80, 0x20, 0xa0 };
        int i;
        for (i = 0; i < 3; i++) {
            if (!scep_conf_template(c, kinds[i])) {
                return apr_psprintf(p, "unknown certificate template in "
                                    "SCEP%sTemplate (define it with "
                                    "SCEPTemplate)",
                                    i == 0 ? "Signature"
                                    : i == 1 ? "Encryption"
                                             : "GeneralPurpose");
            }
        }
        for (i = 0; c->approval_templates
                    && i < c->approval_templates->nelts; i++) {
            const char *name =
                APR_ARRAY_IDX(c->approval_templates, i, const char *);
            if (!scep_conf_template_named(name)) {
                return apr_psprintf(p, "SCEPLocalCAApproval names an "
                                    "unknown template %s", name);
            }
        }
    }
    warn_expiry(p, s, sk_X509_value(c->ca->certs, 0), "CA", c->ca->file, 0);
    if (!scep_conf_ra(c, &ids)) {
        if (c->next_ca) {
            return "SCEPNextCACertificateFile needs an RA signing "
                   "certificate: GetNextCACert is signed by the RA";
        }
        return NULL;  /* CA-only: GetCACert answers the CA certificate */
    }
    if (c->ra_sign_cert
        && (why = check_role(p, ids.sign_cert, ids.sign_key, SCEP_RA_SIGN,
                             c->ra_sign_cert->file)) != NULL) {
        return why;
    }
    if (c->ra_enc_cert
        && (why = check_role(p, ids.enc_cert, ids.enc_key, SCEP_RA_ENCRYPT,
                             c->ra_enc_cert->file)) != NULL) {
        return why;
    }
    /* A single configured certificate must then hold the other role too. */
    if (!c->ra_enc_cert && c->ra_sign_cert && !c->store
        && (why = check_role(p, ids.enc_cert, ids.enc_key, SCEP_RA_ENCRYPT,
                             c->ra_sign_cert->file)) != NULL) {
        return apr_pstrcat(p, why, " (no SCEPRAEncryptionCertificateFile "
                           "is configured, so it must also encrypt)", NULL);
    }
    if (!c->ra_sign_cert && c->ra_enc_cert && !c->store
        && (why = check_role(p, ids.sign_cert, ids.sign_key, SCEP_RA_SIGN,
                             c->ra_enc_cert->file)) != NULL) {
        return apr_pstrcat(p, why, " (no SCEPRASigningCertificateFile "
                           "is configured, so it must also sign)", NULL);
    }
    warn_expiry(p, s, ids.sign_cert, "RA signing",
                c->ra_sign_cert ? c->ra_sign_cert->file : c->store->dir, 34);
    if (ids.enc_cert != ids.sign_cert) {
        warn_expiry(p, s, ids.enc_cert, "RA encryption",
                    c->ra_enc_cert ? c->ra_enc_cert->file : c->store->dir,
                    35);
    }
    return NULL;
}

/* ---- directives ---- */

static const char *load_certfile(cmd_parms *cmd, const char *arg,
                                 scep_certfile_t **out)
{
    scep_certfile_t *cf = apr_pcalloc(cmd->pool, sizeof(*cf));
    const char *err;

    cf->file = ap_server_root_relative(cmd->pool, arg);
    if (!cf->file) {
        return apr_pstrcat(cmd->pool, cmd->cmd->name, ": invalid path ",
                           arg, NULL);
    }
    err = scep_ra_load_certs(cmd->pool, cf->file, &cf->certs);
    if (err) {
        return apr_psprintf(cmd->pool, SCEPLOGNO(00001) "%s %s (NDES event "
                            "10)", cmd->cmd->name, err);
    }
    {
        /* Passwords are bound to the CA they were issued for. */
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned int n = 0;
        if (!X509_digest(sk_X509_value(cf->certs, 0), EVP_sha256(), md, &n)) {
            return apr_pstrcat(cmd->pool, cmd->cmd->name, ": cannot hash ",
                               cf->file, NULL);
        }
        memcpy(cf->realm, md, sizeof(cf->realm));
    }
    *out = cf;
    return NULL;
}

static const char *load_keyfile(cmd_parms *cmd, const char *arg,
                                scep_keyfile_t **out)
{
    scep_keyfile_t *kf = apr_pcalloc(cmd->pool, sizeof(*kf));
    const char *err;

    kf->file = ap_server_root_relative(cmd->pool, arg);
    if (!kf->file) {
        return apr_pstrcat(cmd->pool, cmd->cmd->name, ": invalid path ",
                           arg, NULL);
    }
    err = scep_ra_load_key(cmd->pool, kf->file, &kf->key);
    if (err) {
        return apr_psprintf(cmd->pool, SCEPLOGNO(00004) "%s %s (NDES event "
                            "10)", cmd->cmd->name, err);
    }
    *out = kf;
    return NULL;
}

/* Certificate and key directives: cmd_data is the field's offset. */
static const char *scep_cmd_certfile(cmd_parms *cmd, void *dc,
                                     const char *arg)
{
    return load_certfile(cmd, arg,
                         (scep_certfile_t **)((char *)dc
                                              + (apr_size_t)cmd->info));
}

static const char *scep_cmd_keyfile(cmd_parms *cmd, void *dc, const char *arg)
{
    return load_keyfile(cmd, arg,
                        (scep_keyfile_t **)((char *)dc
                                            + (apr_size_t)cmd->info));
}

static const char *scep_cmd_SCEPRACertificateStore(cmd_parms *cmd, void *dc,
                                                   const char *arg)
{
    scep_store_t *st = apr_pcalloc(cmd->pool, sizeof(*st));
    const char *err;

    st->dir = ap_server_root_relative(cmd->pool, arg);
    if (!st->dir) {
        return apr_pstrcat(cmd->pool, "SCEPRACertificateStore: invalid path ",
                           arg, NULL);
    }
    st->picks = apr_array_make(cmd->pool, 1, sizeof(scep_store_pick_t));
    err = scep_ra_store_read(cmd->pool, st->dir, &st->creds);
    if (err) {
        return apr_psprintf(cmd->pool, SCEPLOGNO(00005) "SCEPRACertificate"
                            "Store %s (NDES event 10)", err);
    }
    ((scep_dir_conf_t *)dc)->store = st;
    return NULL;
}

static const char *scep_cmd_SCEPMaxRequestSize(cmd_parms *cmd, void *dc,
                                               const char *arg)
{
    apr_off_t n;
    char *end;

    if (apr_strtoff(&n, arg, &end, 10) != APR_SUCCESS || *end || n < 1024
        || n > 16 * 1024 * 1024) {
        return "SCEPMaxRequestSize must be a number of bytes between 1024 "
               "and 16777216";
    }
    ((scep_dir_conf_t *)dc)->max_request = n;
    return NULL;
}

static const char *scep_cmd_SCEPAllowDES(cmd_parms *cmd, void *dc, int on)
{
    /* OpenSSL 3 keeps single DES in its legacy provider. */
    if (on && !scep_msg_enable_des()) {
        return "SCEPAllowDES On: OpenSSL's legacy provider cannot be loaded";
    }
    ((scep_dir_conf_t *)dc)->allow_des = on;
    return NULL;
}

static const char *scep_cmd_SCEPHashAlgorithm(cmd_parms *cmd, void *dc,
                                              const char *arg)
{
    static const struct {
        const char *name;
        const EVP_MD *(*md)(void);
    } hashes[] = {
        { "SHA256", EVP_sha256 }, { "SHA384", EVP_sha384 },
        { "SHA512", EVP_sha512 }, { "SHA1", EVP_sha1 },
    };
    size_t i;

    for (i = 0; i < sizeof(hashes) / sizeof(hashes[0]); i++) {
        if (!ap_cstr_casecmp(arg, hashes[i].name)) {
            ((scep_dir_conf_t *)dc)->hash = hashes[i].md();
            return NULL;
        }
    }
    return "SCEPHashAlgorithm must be SHA256, SHA384, SHA512 or SHA1";
}

/* A provider by name, or an error listing the registered ones. */
static const char *find_provider(cmd_parms *cmd, const char *group,
                                 const char *version, const char *name,
                                 const void **prov)
{
    apr_array_header_t *names;
    const char *list = "";
    int i;

    *prov = ap_lookup_provider(group, name, version);
    if (*prov) {
        return NULL;
    }
    names = ap_list_provider_names(cmd->pool, group, version);
    for (i = 0; i < names->nelts; i++) {
        list = apr_pstrcat(cmd->pool, list, i ? ", " : "",
                           APR_ARRAY_IDX(names, i, ap_list_provider_names_t)
                               .provider_name, NULL);
    }
    return apr_psprintf(cmd->pool, "%s: unknown provider '%s' (known: %s)",
                        cmd->cmd->name, name, list);
}

static const char *scep_cmd_SCEPChallengeProvider(cmd_parms *cmd, void *dc,
                                                  const char *arg)
{
    return find_provider(cmd, SCEP_CHALLENGE_PROVIDER_GROUP,
                         SCEP_CHALLENGE_PROVIDER_VERSION, arg,
                         (const void **)&((scep_dir_conf_t *)dc)->challenge);
}

/* An integer directive within bounds. */
static const char *set_int(cmd_parms *cmd, int *field, const char *arg,
                           long lo, long hi)
{
    char *end;
    long v = strtol(arg, &end, 10);

    if (*arg == '\0' || *end || v < lo || v > hi) {
        return apr_psprintf(cmd->pool, "%s must be a number from %ld to %ld",
                            cmd->cmd->name, lo, hi);
    }
    *field = (int)v;
    return NULL;
}

static const char *scep_cmd_SCEPPasswordMax(cmd_parms *cmd, void *dc,
                                            const char *arg)
{
    return set_int(cmd, &((scep_dir_conf_t *)dc)->password_max, arg, 1,
                   100000);
}

static const char *scep_cmd_SCEPPasswordValidity(cmd_parms *cmd, void *dc,
                                                 const char *arg)
{
    scep_dir_conf_t *c = dc;
    apr_size_t n = strlen(arg);
    const char *err;

    /* Minutes as NDES counts them; "30s" for seconds (tests, kiosks). */
    if (n > 1 && arg[n - 1] == 's') {
        err = set_int(cmd, &c->password_validity,
                      apr_pstrmemdup(cmd->pool, arg, n - 1), 5, 604800);
        return err ? "SCEPPasswordValidity must be minutes (1 to 10080) or "
                     "seconds with an s (5s to 604800s)" : NULL;
    }
    err = set_int(cmd, &c->password_validity, arg, 1, 10080);
    if (err) {
        return "SCEPPasswordValidity must be minutes (1 to 10080) or "
               "seconds with an s (5s to 604800s)";
    }
    c->password_validity *= 60;
    return NULL;
}

static const char *scep_cmd_SCEPPasswordLength(cmd_parms *cmd, void *dc,
                                               const char *arg)
{
    return set_int(cmd, &((scep_dir_conf_t *)dc)->password_length, arg, 4,
                   SCEP_PW_MAX_BYTES);
}

static const char *scep_cmd_SCEPSinglePasswordFile(cmd_parms *cmd, void *dc,
                                                   const char *arg)
{
    const char *path = ap_server_root_relative(cmd->pool, arg);

    if (!path) {
        return apr_pstrcat(cmd->pool, "SCEPSinglePasswordFile: invalid "
                           "path ", arg, NULL);
    }
    ((scep_dir_conf_t *)dc)->single_password_file = path;
    return NULL;
}

static const char *scep_cmd_SCEPLocalCACRLValidity(cmd_parms *cmd, void *dc,
                                                   const char *arg)
{
    return set_int(cmd, &((scep_dir_conf_t *)dc)->crl_days, arg, 1, 3650);
}

/* A duration: a number in the directive's unit, or with s, m, h or d. */
static const char *set_duration(cmd_parms *cmd, int *field, const char *arg,
                                long unit, const char *unit_name, long lo,
                                long hi)
{
    char *end;
    long v = strtol(arg, &end, 10);

    if (*end && !end[1]) {
        unit = *end == 's' ? 1 : *end == 'm' ? 60 : *end == 'h' ? 3600
               : *end == 'd' ? 86400 : 0;
        end++;
    }
    if (!apr_isdigit(*arg) || *end || unit == 0 || v > hi / unit
        || v * unit < lo) {
        return apr_psprintf(cmd->pool, "%s must be a duration from %lds to "
                            "%ldd: a number of %s, or one with s, m, h or d",
                            cmd->cmd->name, lo, hi / 86400, unit_name);
    }
    *field = (int)(v * unit);
    return NULL;
}

static const char *scep_cmd_retention(cmd_parms *cmd, void *dc,
                                      const char *arg)
{
    scep_dir_conf_t *c = dc;
    long unit = (long)(intptr_t)cmd->cmd->cmd_data;

    return set_duration(cmd, unit == 86400 ? &c->pending_retention
                                           : &c->issued_retention,
                        arg, unit, unit == 86400 ? "days" : "minutes", 1,
                        3650L * 86400);
}

/* "auto", or "manual" for every template or the templates named. */
static const char *scep_cmd_SCEPLocalCAApproval(cmd_parms *cmd, void *dc,
                                                int argc, char *const argv[])
{
    scep_dir_conf_t *c = dc;
    int i;

    if (argc < 1 || (ap_cstr_casecmp(argv[0], "auto")
                     && ap_cstr_casecmp(argv[0], "manual"))
        || (argc > 1 && !ap_cstr_casecmp(argv[0], "auto"))) {
        return "SCEPLocalCAApproval must be auto, or manual followed by "
               "the templates it applies to (none: all)";
    }
    c->approval = !ap_cstr_casecmp(argv[0], "manual");
    c->approval_templates = NULL;
    if (argc > 1) {
        c->approval_templates = apr_array_make(cmd->pool, argc - 1,
                                               sizeof(const char *));
        for (i = 1; i < argc; i++) {
            APR_ARRAY_PUSH(c->approval_templates, const char *) = argv[i];
        }
    }
    return NULL;
}

/* "off", a percentage of the certificate's life still to run ("50%"),
 * or a duration before its notAfter ("30d"). */
static const char *scep_cmd_SCEPRenewalWindow(cmd_parms *cmd, void *dc,
                                              const char *arg)
{
    scep_dir_conf_t *c = dc;
    apr_size_t n = strlen(arg);

    c->renewal_window_pct = 0;
    if (!ap_cstr_casecmp(arg, "off")) {
        c->renewal_window = 0;
        return NULL;
    }
    if (n > 1 && arg[n - 1] == '%') {
        c->renewal_window_pct = 1;
        return set_int(cmd, &c->renewal_window,
                       apr_pstrmemdup(cmd->pool, arg, n - 1), 1, 99)
                   ? "SCEPRenewalWindow must be off, a percentage (1% to "
                     "99%) or a duration (e.g. 30d)"
                   : NULL;
    }
    return set_duration(cmd, &c->renewal_window, arg, 86400, "days", 60,
                        3650L * 86400);
}

static const char *scep_cmd_SCEPAdminEncoding(cmd_parms *cmd, void *dc,
                                              const char *arg)
{
    scep_dir_conf_t *c = dc;

    if (!ap_cstr_casecmp(arg, "UTF-16LE") || !ap_cstr_casecmp(arg, "UTF-16")) {
        c->admin_utf8 = 0;
    }
    else if (!ap_cstr_casecmp(arg, "UTF-8")) {
        c->admin_utf8 = 1;
    }
    else {
        return "SCEPAdminEncoding must be UTF-16LE or UTF-8";
    }
    return NULL;
}

static const char *scep_cmd_SCEPProvider(cmd_parms *cmd, void *dc, int argc,
                                         char *const argv[])
{
    scep_dir_conf_t *c = dc;
    const char *err;

    if (argc < 1) {
        return "SCEPProvider needs a provider name";
    }
    err = find_provider(cmd, SCEP_SUBMIT_PROVIDER_GROUP,
                        SCEP_SUBMIT_PROVIDER_VERSION, argv[0],
                        (const void **)&c->submit);
    if (err) {
        return err;
    }
    c->submit_instance = NULL;
    return c->submit->create
               ? c->submit->create(&c->submit_instance, cmd->pool,
                                   cmd->server, argc - 1, argv + 1)
               : NULL;
}

static const char *scep_cmd_SCEPLocalCADatabase(cmd_parms *cmd, void *dc,
                                                const char *arg)
{
    if (!strchr(arg, ':')) {
        return "SCEPLocalCADatabase must be driver:parameters, e.g. "
               "sqlite3:/var/lib/mod_scep/ca.db";
    }
    ((scep_dir_conf_t *)dc)->localca_db = arg;
    return NULL;
}

/* An http(s) or ldap URI, put as is into certificates. */
static const char *scep_cmd_SCEPLocalCACRLURL(cmd_parms *cmd, void *dc,
                                              const char *arg)
{
    if ((ap_cstr_casecmpn(arg, "http://", 7)
         && ap_cstr_casecmpn(arg, "https://", 8)
         && ap_cstr_casecmpn(arg, "ldap://", 7))
        || strpbrk(arg, ", \t\"") != NULL) {
        return "SCEPLocalCACRLURL must be an http://, https:// or ldap:// "
               "URL without spaces, quotes or commas";
    }
    ((scep_dir_conf_t *)dc)->crl_url = arg;
    return NULL;
}

static const char *scep_cmd_SCEPSpoolDir(cmd_parms *cmd, void *dc,
                                          const char *arg)
{
    const char *path = ap_server_root_relative(cmd->pool, arg);

    if (path == NULL) {
        return apr_pstrcat(cmd->pool, "SCEPSpoolDir: invalid path ", arg,
                           NULL);
    }
    ((scep_dir_conf_t *)dc)->spool_dir = path;
    return NULL;
}

static const char *scep_cmd_template_choice(cmd_parms *cmd, void *dc,
                                            const char *arg)
{
    scep_dir_conf_t *c = dc;
    const char *which = cmd->cmd->cmd_data;

    if (*which == 's') {
        c->template_sig = arg;
    }
    else if (*which == 'e') {
        c->template_enc = arg;
    }
    else {
        c->template_general = arg;
    }
    return NULL;
}

static const char *scep_cmd_SCEPTemplate(cmd_parms *cmd, void *dc, int argc,
                                         char *const argv[])
{
    scep_template_t *t;
    int i;

    if (argc < 1) {
        return "SCEPTemplate needs a name";
    }
    if (custom_templates == NULL) {
        custom_templates = apr_array_make(cmd->pool, 4,
                                          sizeof(scep_template_t));
    }
    t = apr_array_push(custom_templates);
    t->name = argv[0];
    t->validity_days = 365;
    t->key_usage = 0;
    t->eku = NULL;
    for (i = 1; i < argc; i++) {
        const char *v = strchr(argv[i], '=');
        if (v == NULL) {
            return apr_psprintf(cmd->pool, "SCEPTemplate %s: '%s' is not "
                                "key=value", argv[0], argv[i]);
        }
        v++;
        if (!strncmp(argv[i], "days=", 5)) {
            t->validity_days = atoi(v);
            if (t->validity_days < 1 || t->validity_days > 36500) {
                return "SCEPTemplate: days must be 1 to 36500";
            }
        }
        else if (!strncmp(argv[i], "keyusage=", 9)) {
            char *list = apr_pstrdup(cmd->pool, v), *tok, *last;
            for (tok = apr_strtok(list, ",", &last); tok;
                 tok = apr_strtok(NULL, ",", &last)) {
                if (!strcmp(tok, "digitalSignature")) {
                    t->key_usage |= KU_DIGITAL_SIGNATURE;
                }
                else if (!strcmp(tok, "nonRepudiation")) {
                    t->key_usage |= KU_NON_REPUDIATION;
                }
                else if (!strcmp(tok, "keyEncipherment")) {
                    t->key_usage |= KU_KEY_ENCIPHERMENT;
                }
                else if (!strcmp(tok, "dataEncipherment")) {
                    t->key_usage |= KU_DATA_ENCIPHERMENT;
                }
                else if (!strcmp(tok, "keyAgreement")) {
                    t->key_usage |= KU_KEY_AGREEMENT;
                }
                else {
                    return apr_psprintf(cmd->pool, "SCEPTemplate: unknown "
                                        "keyusage %s", tok);
                }
            }
        }
        else if (!strncmp(argv[i], "eku=", 4)) {
            t->eku = v;
        }
        else {
            return apr_psprintf(cmd->pool, "SCEPTemplate %s: unknown "
                                "setting '%s'", argv[0], argv[i]);
        }
    }
    return NULL;
}

void scep_config_pre_config(void)
{
    custom_templates = NULL;
}

#define SCEP_ANYWHERE (RSRC_CONF | ACCESS_CONF)

const command_rec scep_cmds[] = {
    AP_INIT_TAKE1("SCEPCACertificateFile", scep_cmd_certfile,
                  (void *)APR_OFFSETOF(scep_dir_conf_t, ca), SCEP_ANYWHERE,
                  "PEM file with the CA certificate, then its chain"),
    AP_INIT_TAKE1("SCEPNextCACertificateFile", scep_cmd_certfile,
                  (void *)APR_OFFSETOF(scep_dir_conf_t, next_ca),
                  SCEP_ANYWHERE,
                  "PEM file with the rollover CA certificate served by "
                  "GetNextCACert"),
    AP_INIT_TAKE1("SCEPRASigningCertificateFile", scep_cmd_certfile,
                  (void *)APR_OFFSETOF(scep_dir_conf_t, ra_sign_cert),
                  SCEP_ANYWHERE,
                  "PEM file with the RA signing certificate"),
    AP_INIT_TAKE1("SCEPRASigningKeyFile", scep_cmd_keyfile,
                  (void *)APR_OFFSETOF(scep_dir_conf_t, ra_sign_key),
                  SCEP_ANYWHERE, "PEM file with the RA signing private key"),
    AP_INIT_TAKE1("SCEPRAEncryptionCertificateFile", scep_cmd_certfile,
                  (void *)APR_OFFSETOF(scep_dir_conf_t, ra_enc_cert),
                  SCEP_ANYWHERE, "PEM file with the RA encryption certificate"),
    AP_INIT_TAKE1("SCEPRAEncryptionKeyFile", scep_cmd_keyfile,
                  (void *)APR_OFFSETOF(scep_dir_conf_t, ra_enc_key),
                  SCEP_ANYWHERE,
                  "PEM file with the RA encryption private key"),
    AP_INIT_TAKE1("SCEPRACertificateStore", scep_cmd_SCEPRACertificateStore,
                  NULL, SCEP_ANYWHERE,
                  "directory of RA certificates and keys, picked by NDES's "
                  "rules"),
    AP_INIT_TAKE1("SCEPMaxRequestSize", scep_cmd_SCEPMaxRequestSize, NULL,
                  SCEP_ANYWHERE,
                  "largest SCEP message accepted, in bytes (default 65536)"),
    AP_INIT_FLAG("SCEPLegacyAlgorithms", ap_set_flag_slot,
                 (void *)APR_OFFSETOF(scep_dir_conf_t, legacy),
                 SCEP_ANYWHERE,
                 "accept and advertise DES3 and SHA-1 (default On)"),
    AP_INIT_FLAG("SCEPAllowDES", scep_cmd_SCEPAllowDES, NULL, SCEP_ANYWHERE,
                 "accept single-DES encrypted requests (default Off)"),
    AP_INIT_TAKE1("SCEPHashAlgorithm", scep_cmd_SCEPHashAlgorithm, NULL,
                  SCEP_ANYWHERE,
                  "digest for replies when the request's is unknown "
                  "(default SHA256)"),
    AP_INIT_TAKE1("SCEPChallengeProvider", scep_cmd_SCEPChallengeProvider,
                  NULL, SCEP_ANYWHERE,
                  "where challenge passwords come from: cache (default, "
                  "one-time passwords) or single (one master password)"),
    AP_INIT_TAKE1("SCEPPasswordMax", scep_cmd_SCEPPasswordMax, NULL,
                  SCEP_ANYWHERE,
                  "most outstanding one-time passwords (default 5)"),
    AP_INIT_TAKE1("SCEPPasswordValidity", scep_cmd_SCEPPasswordValidity, NULL,
                  SCEP_ANYWHERE,
                  "minutes (or seconds, with an s) a one-time password "
                  "stays valid (default 60)"),
    AP_INIT_TAKE1("SCEPPasswordLength", scep_cmd_SCEPPasswordLength, NULL,
                  SCEP_ANYWHERE,
                  "bytes of randomness in a password, shown as twice as "
                  "many hex characters (default 8)"),
    AP_INIT_FLAG("SCEPEnforcePassword", ap_set_flag_slot,
                 (void *)APR_OFFSETOF(scep_dir_conf_t, enforce_password),
                 SCEP_ANYWHERE,
                 "require a challenge password in requests (default On)"),
    AP_INIT_TAKE1("SCEPSinglePasswordFile", scep_cmd_SCEPSinglePasswordFile,
                  NULL, SCEP_ANYWHERE,
                  "file holding the single password, encrypted to the RA "
                  "encryption certificate (SCEPChallengeProvider single)"),
    AP_INIT_TAKE1("SCEPPasswordPersistFile", scep_challenge_set_persist_file,
                  NULL, RSRC_CONF,
                  "file where outstanding one-time passwords (hashes) are "
                  "kept across a full restart (server config only)"),
    AP_INIT_FLAG("SCEPAdminAllowHTTP", ap_set_flag_slot,
                 (void *)APR_OFFSETOF(scep_dir_conf_t, admin_allow_http),
                 SCEP_ANYWHERE,
                 "let the admin page hand out passwords over plain HTTP "
                 "(default Off)"),
    AP_INIT_TAKE_ARGV("SCEPProvider", scep_cmd_SCEPProvider, NULL,
                      SCEP_ANYWHERE,
                      "the CA requests go to: local (default) or a provider "
                      "module's name, then its arguments"),
    AP_INIT_TAKE1("SCEPLocalCAKeyFile", scep_cmd_keyfile,
                  (void *)APR_OFFSETOF(scep_dir_conf_t, localca_key),
                  SCEP_ANYWHERE, "PEM private key of the embedded CA"),
    AP_INIT_TAKE1("SCEPLocalCACertificateFile", scep_cmd_certfile,
                  (void *)APR_OFFSETOF(scep_dir_conf_t, localca_cert),
                  SCEP_ANYWHERE,
                  "the embedded CA's certificate, if not "
                  "SCEPCACertificateFile's first"),
    AP_INIT_TAKE1("SCEPLocalCADatabase", scep_cmd_SCEPLocalCADatabase, NULL,
                  SCEP_ANYWHERE,
                  "apr_dbd driver:parameters of the embedded CA's database "
                  "(default sqlite3 in the state directory)"),
    AP_INIT_TAKE1("SCEPLocalCACRLURL", scep_cmd_SCEPLocalCACRLURL, NULL,
                  SCEP_ANYWHERE,
                  "URL put in issued certificates as their CRL distribution "
                  "point (serve the CRL there with SetHandler scep-crl)"),
    AP_INIT_TAKE1("SCEPSpoolDir", scep_cmd_SCEPSpoolDir, NULL, RSRC_CONF,
                  "directory for requests the CA could not take yet "
                  "(default STATE_DIR/spool)"),
    AP_INIT_TAKE1("SCEPSignatureTemplate", scep_cmd_template_choice,
                  (void *)"s", SCEP_ANYWHERE,
                  "template for requests with KeyUsage digitalSignature only"),
    AP_INIT_TAKE1("SCEPEncryptionTemplate", scep_cmd_template_choice,
                  (void *)"e", SCEP_ANYWHERE,
                  "template for requests with KeyUsage keyEncipherment only"),
    AP_INIT_TAKE1("SCEPGeneralPurposeTemplate", scep_cmd_template_choice,
                  (void *)"g", SCEP_ANYWHERE,
                  "template for requests with both KeyUsages or none"),
    AP_INIT_TAKE_ARGV("SCEPTemplate", scep_cmd_SCEPTemplate, NULL, RSRC_CONF,
                      "define a template: name [days=N] [keyusage=a,b] "
                      "[eku=x,y]"),
    AP_INIT_TAKE1("SCEPLocalCACRLValidity", scep_cmd_SCEPLocalCACRLValidity,
                  NULL, SCEP_ANYWHERE,
                  "days until the nextUpdate of the local CA's CRL "
                  "(default 7)"),
    AP_INIT_FLAG("SCEPRenewalSubjectNameMatch", ap_set_flag_slot,
                 (void *)APR_OFFSETOF(scep_dir_conf_t, renewal_name_match),
                 SCEP_ANYWHERE,
                 "a renewal must keep the subject and subjectAltName of the "
                 "certificate it renews (default On)"),
    AP_INIT_TAKE_ARGV("SCEPLocalCAApproval", scep_cmd_SCEPLocalCAApproval,
                      NULL, SCEP_ANYWHERE,
                      "auto (default), or manual [template...]: hold "
                      "requests for an administrator's approval"),
    AP_INIT_TAKE1("SCEPPendingRetention", scep_cmd_retention,
                  (void *)(intptr_t)86400, SCEP_ANYWHERE,
                  "how long a request waits for approval (days, or with "
                  "s/m/h/d; default 7 days)"),
    AP_INIT_TAKE1("SCEPIssuedRetention", scep_cmd_retention,
                  (void *)(intptr_t)60, SCEP_ANYWHERE,
                  "how long a resent request or a poll gets its issued "
                  "certificate again (minutes, or with s/m/h/d; default "
                  "20 minutes)"),
    AP_INIT_TAKE1("SCEPRenewalWindow", scep_cmd_SCEPRenewalWindow, NULL,
                  SCEP_ANYWHERE,
                  "off (default), or when a renewal may come: N% of the "
                  "certificate's life left, or a duration before expiry"),
    AP_INIT_FLAG("SCEPRenewalRevokeOld", ap_set_flag_slot,
                 (void *)APR_OFFSETOF(scep_dir_conf_t, renewal_revoke_old),
                 SCEP_ANYWHERE,
                 "revoke (reason superseded) the certificate a renewal "
                 "replaces (default Off)"),
    AP_INIT_TAKE1("SCEPAdminEncoding", scep_cmd_SCEPAdminEncoding, NULL,
                  SCEP_ANYWHERE,
                  "encoding of the admin HTML page: UTF-16LE (default, as "
                  "NDES) or UTF-8"),
    AP_INIT_TAKE1("SCEPUpstreamCAFingerprint",
                  scep_cmd_SCEPUpstreamCAFingerprint, NULL, SCEP_ANYWHERE,
                  "provider scep: sha256:HEX of the upstream CA certificate "
                  "its certificates must chain to (default: this location's "
                  "SCEPCACertificateFile)"),
    AP_INIT_TAKE1("SCEPUpstreamTimeout", scep_cmd_SCEPUpstreamTimeout, NULL,
                  SCEP_ANYWHERE,
                  "provider scep: seconds one exchange with the upstream may "
                  "take (default 30)"),
    { NULL }
};
