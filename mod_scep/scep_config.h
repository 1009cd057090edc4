/* Licensed under the Apache License, Version 2.0; see LICENSE. */

#ifndef SCEP_CONFIG_H
#define SCEP_CONFIG_H

#include <httpd.h>
#include <http_config.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "mod_scep.h"
#include "scep_ca.h"
#include "scep_ra.h"

#define SCEP_UNSET (-1)
#define SCEP_DEFAULT_MAX_REQUEST 65536
#define SCEP_DEFAULT_PASSWORD_MAX 5          /* NDES PasswordMax */
#define SCEP_DEFAULT_PASSWORD_VALIDITY 3600  /* seconds: NDES's 60 minutes */
#define SCEP_DEFAULT_PASSWORD_LENGTH 8       /* bytes, NDES */
#define SCEP_DEFAULT_PENDING_RETENTION (7 * 86400) /* NDES RefreshPeriod */
#define SCEP_DEFAULT_ISSUED_RETENTION (20 * 60)    /* NDES CacheRequest */

/* The RA certificates a store gives for one CA, picked at startup. */
typedef struct {
    STACK_OF(X509) *ca;                /* the CA chain picked for */
    const scep_ra_cred_t *sign;
    const scep_ra_cred_t *encrypt;
} scep_store_pick_t;

/* Certificates read from a SCEPRACertificateStore. */
typedef struct {
    const char *dir;
    apr_array_header_t *creds;         /* scep_ra_cred_t */
    apr_array_header_t *picks;         /* scep_store_pick_t, one per CA */
} scep_store_t;

/* A certificate file as configured, loaded at configuration time. */
typedef struct {
    const char *file;
    STACK_OF(X509) *certs;             /* first: the certificate itself */
    unsigned char realm[SCEP_REALM_LEN]; /* id of the first certificate */
} scep_certfile_t;

typedef struct {
    const char *file;
    EVP_PKEY *key;
} scep_keyfile_t;

/* Per-directory (and per-server default) configuration. */
typedef struct scep_dir_conf_t {
    scep_certfile_t *ca;               /* SCEPCACertificateFile: CA, chain */
    scep_certfile_t *next_ca;          /* SCEPNextCACertificateFile */
    scep_certfile_t *ra_sign_cert;     /* SCEPRASigningCertificateFile */
    scep_keyfile_t *ra_sign_key;       /* SCEPRASigningKeyFile */
    scep_certfile_t *ra_enc_cert;      /* SCEPRAEncryptionCertificateFile */
    scep_keyfile_t *ra_enc_key;        /* SCEPRAEncryptionKeyFile */
    scep_store_t *store;               /* SCEPRACertificateStore */
    apr_off_t max_request;             /* SCEPMaxRequestSize, bytes */
    int legacy;                        /* SCEPLegacyAlgorithms: DES3, SHA-1 */
    int allow_des;                     /* SCEPAllowDES: single DES */
    const EVP_MD *hash;                /* SCEPHashAlgorithm: reply default */
    const scep_challenge_provider_t *challenge; /* SCEPChallengeProvider */
    int password_max;                  /* SCEPPasswordMax */
    int password_validity;             /* SCEPPasswordValidity, seconds */
    int password_length;               /* SCEPPasswordLength, bytes */
    int enforce_password;              /* SCEPEnforcePassword */
    const char *single_password_file;  /* SCEPSinglePasswordFile */
    int admin_allow_http;              /* SCEPAdminAllowHTTP */
    int admin_utf8;                    /* SCEPAdminEncoding UTF-8 */
    const scep_submit_provider_t *submit; /* SCEPProvider (default local) */
    void *submit_instance;             /* what its create() made */
    scep_keyfile_t *localca_key;       /* SCEPLocalCAKeyFile */
    scep_certfile_t *localca_cert;     /* SCEPLocalCACertificateFile */
    const char *localca_db;            /* SCEPLocalCADatabase driver:params */
    const char *spool_dir;             /* SCEPSpoolDir */
    const char *crl_url;               /* SCEPLocalCACRLURL */
    const char *template_sig;          /* SCEPSignatureTemplate */
    const char *template_enc;          /* SCEPEncryptionTemplate */
    const char *template_general;      /* SCEPGeneralPurposeTemplate */
    int renewal_name_match;            /* SCEPRenewalSubjectNameMatch */
    int crl_days;                      /* SCEPLocalCACRLValidity, days */
    int approval;                      /* SCEPLocalCAApproval: 1 manual */
    apr_array_header_t *approval_templates; /* its templates; NULL: all */
    int pending_retention;             /* SCEPPendingRetention, seconds */
    int issued_retention;              /* SCEPIssuedRetention, seconds */
    int renewal_window;                /* SCEPRenewalWindow: 0 off, else */
    int renewal_window_pct;            /*  percent of life, or seconds */
    int renewal_revoke_old;            /* SCEPRenewalRevokeOld */
    const unsigned char *upstream_pin; /* SCEPUpstreamCAFingerprint: SHA-256 */
    int upstream_timeout;              /* SCEPUpstreamTimeout, seconds */
} scep_dir_conf_t;

/* The RA identity in effect for a configuration. */
typedef struct {
    X509 *sign_cert;
    EVP_PKEY *sign_key;
    X509 *enc_cert;
    EVP_PKEY *enc_key;
} scep_ra_ids_t;

extern const command_rec scep_cmds[];

void *scep_config_create_dir(apr_pool_t *p, char *dir);
void scep_config_pre_config(void);
void *scep_config_merge_dir(apr_pool_t *p, void *basev, void *addv);

/* Effective values (defaults applied). */
apr_off_t scep_conf_max_request(const scep_dir_conf_t *c);
int scep_conf_legacy(const scep_dir_conf_t *c);
const EVP_MD *scep_conf_hash(const scep_dir_conf_t *c);

/* The challenge provider (default "cache") and the service it serves. */
const scep_challenge_provider_t *scep_conf_challenge(
    const scep_dir_conf_t *c, scep_challenge_service_t *svc);

/* The submission provider (default "local"). */
const scep_submit_provider_t *scep_conf_submit(const scep_dir_conf_t *c);

/* The template for a request's KeyUsage (ku < 0: none). */
const scep_template_t *scep_conf_template(const scep_dir_conf_t *c, int ku);

/* The template t as the local CA of c issues it (its CRL URL added). */
const scep_template_t *scep_conf_issuing(apr_pool_t *p,
                                         const scep_dir_conf_t *c,
                                         const scep_template_t *t);

/* A template by name (SCEPTemplate or built in), or NULL. */
const scep_template_t *scep_conf_template_named(const char *name);

/* Does the local CA hold requests of this template for approval? */
int scep_conf_needs_approval(const scep_dir_conf_t *c, const char *tmpl);

/* SCEPSpoolDir, or the default in the state directory. */
const char *scep_conf_spool_dir(const scep_dir_conf_t *c);

/* SCEPPendingRetention and SCEPIssuedRetention, seconds. */
apr_time_t scep_conf_pending_retention(const scep_dir_conf_t *c);
apr_time_t scep_conf_issued_retention(const scep_dir_conf_t *c);

/* Does this section set any SCEP directive at all? */
int scep_conf_has_directives(const scep_dir_conf_t *c);

/* Is any SCEP directive set in this configuration? */
int scep_conf_is_set(const scep_dir_conf_t *c);

/* The RA identity (explicit files first, then the store's picks); 0 if
 * the configuration has no RA. */
int scep_conf_ra(const scep_dir_conf_t *c, scep_ra_ids_t *ids);

/* Check a configuration at startup; NULL when usable, else the reason.
 * Fills the store's picks and logs expiry warnings for s. */
const char *scep_conf_check(apr_pool_t *p, server_rec *s,
                            scep_dir_conf_t *c);

#endif /* SCEP_CONFIG_H */
