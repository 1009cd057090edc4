/* Licensed under the Apache License, Version 2.0; see LICENSE. */

/**
 * @file mod_scep.h
 * @brief Public interface of mod_scep for other httpd modules.
 *
 * Challenge providers decide which challenge passwords exist and which
 * requests they admit.  They are httpd providers: register one with
 *
 *   ap_register_provider(p, SCEP_CHALLENGE_PROVIDER_GROUP, "name",
 *                        SCEP_CHALLENGE_PROVIDER_VERSION, &my_provider);
 *
 * and select it per location with `SCEPChallengeProvider name`.  The shape
 * follows NDES's policy-module interface: generate a challenge for an
 * administrator; verify a request's challenge (without spending it);
 * commit once the CA has accepted the request; be notified of the end.
 */
#ifndef MOD_SCEP_H
#define MOD_SCEP_H

#include <httpd.h>
#include <apr_optional.h>
#include <apr_time.h>
#include <openssl/x509.h>

/** Version of this header's interface. */
#define MOD_SCEP_VERSION "0.3.0"

/** Handler name of the device endpoint (SetHandler scep). */
#define SCEP_HANDLER "scep"

/** Handler name of the administrator page (SetHandler scep-admin). */
#define SCEP_ADMIN_HANDLER "scep-admin"

/** Handler name of the approval page (SetHandler scep-requests). */
#define SCEP_REQUESTS_HANDLER "scep-requests"

/** Handler name of the embedded CA's CRL file (SetHandler scep-crl). */
#define SCEP_CRL_HANDLER "scep-crl"

#define SCEP_CHALLENGE_PROVIDER_GROUP "scep_challenge"
#define SCEP_CHALLENGE_PROVIDER_VERSION "1"

/** Length of a service's realm id. */
#define SCEP_REALM_LEN 16

/** What a provider answers. */
typedef enum {
    SCEP_CHALLENGE_OK = 0,   /**< issued / accepted / committed */
    SCEP_CHALLENGE_REJECT,   /**< verify: wrong, expired or spent password */
    SCEP_CHALLENGE_USED,     /**< verify: this KeyUsage's use is spent
                                  (NDES event 43) */
    SCEP_CHALLENGE_FULL,     /**< generate: no room (NDES cache full) */
    SCEP_CHALLENGE_ERROR     /**< an internal failure, logged */
} scep_challenge_status_e;

/** The SCEP service a challenge belongs to, from the location's config. */
typedef struct {
    /** Passwords of one service (CA) are not valid at another. */
    unsigned char realm[SCEP_REALM_LEN];
    apr_uint32_t max;                 /**< SCEPPasswordMax */
    apr_interval_time_t validity;     /**< SCEPPasswordValidity */
    apr_size_t length;                /**< SCEPPasswordLength, in bytes */
    int enforce;                      /**< SCEPEnforcePassword */
} scep_challenge_service_t;

/** A challenge provider. */
typedef struct scep_challenge_provider_t {
    /** Provider name, as given to SCEPChallengeProvider. */
    const char *name;

    /**
     * Startup, in the parent, on every configuration load (also after
     * a graceful restart).  capacity is the sum of SCEPPasswordMax over
     * the services using this provider.
     */
    apr_status_t (*init)(apr_pool_t *pconf, apr_pool_t *ptemp,
                         server_rec *s, apr_uint32_t capacity);

    /** In each child process, before it serves requests. */
    apr_status_t (*child_init)(apr_pool_t *p, server_rec *s);

    /**
     * Issue a challenge for the administrator r->user (authenticated by
     * httpd).  On SCEP_CHALLENGE_OK *challenge (from r->pool) and
     * *expires (0: never) are set.
     */
    scep_challenge_status_e (*generate)(request_rec *r,
                                        const scep_challenge_service_t *svc,
                                        const char **challenge,
                                        apr_time_t *expires);

    /**
     * Check a request's challenge for its KeyUsage (key_usage < 0: the
     * request has none) and reserve its use, so that concurrent requests
     * cannot both pass.  *token carries the reservation to commit and
     * notify; *admin (may be NULL) is the administrator the challenge
     * was issued to.
     */
    scep_challenge_status_e (*verify)(request_rec *r,
                                      const scep_challenge_service_t *svc,
                                      const char *challenge, apr_size_t len,
                                      int key_usage, void **token,
                                      const char **admin);

    /** The CA accepted the request (issued or pending): spend the use. */
    scep_challenge_status_e (*commit)(request_rec *r, void *token);

    /**
     * The request is over.  A reservation not committed is given back,
     * so a failed request never spends a password.
     */
    void (*notify)(request_rec *r, void *token, int committed);
} scep_challenge_provider_t;

/**
 * The challenge provider and service in effect for a request, for
 * modules that check challenges themselves.  NULL provider when none.
 */
APR_DECLARE_OPTIONAL_FN(const scep_challenge_provider_t *,
                        scep_challenge_for_request,
                        (request_rec *r,
                         const scep_challenge_service_t **svc));

/* ------------------------------------------------------------------ */
/* Submission providers: how the RA hands a request to a CA.           */

#define SCEP_SUBMIT_PROVIDER_GROUP "scep_submit"
#define SCEP_SUBMIT_PROVIDER_VERSION "1"

/** The CA's answer. */
typedef enum {
    SCEP_SUBMIT_ISSUED = 0,  /**< certs holds the certificate, leaf first */
    SCEP_SUBMIT_PENDING,     /**< held for approval; request_id says which */
    SCEP_SUBMIT_REJECTED     /**< fail_info and reason say why */
} scep_submit_status_e;

/** What the RA hands the CA. */
typedef struct {
    /** The device's PKCS#10, DER. */
    const unsigned char *csr;
    apr_size_t csr_len;
    /** The same, parsed and checked (owned by the RA; do not free). */
    X509_REQ *csr_parsed;
    /** The same PKCS#10 in a CMS SignedData signed by the RA signing key
     *  with SCEPHashAlgorithm: what an enrollment agent sends a CA. */
    const unsigned char *ra_request;
    apr_size_t ra_request_len;
    /** The template the request's KeyUsage picked. */
    const char *template_name;
    /** The SCEP transactionID (printable). */
    const char *transaction_id;
    /** The administrator who issued the challenge, or NULL. */
    const char *requester;
    /** The device's address. */
    const char *client_ip;
    /** The signer of a renewal request, NULL for an initial enrollment. */
    X509 *renewal_signer;
    /** Only answer what an identical earlier request (same transaction
     *  and key) got; REJECTED with badCertId when there was none.  The RA
     *  asks this when a resent request's one-time password is spent. */
    int lookup_only;
    /** The RA submitted this transaction before and the provider failed
     *  (an error return): the CA may have got it.  The request comes
     *  again from the RA's spool, at the device's poll; a provider whose
     *  CA can tell should look the transaction up before submitting. */
    int retry;
    /** The certificate that signed the device's pkiMessage: the device's
     *  own (self-signed), the one a renewal renews, or an RA's in front
     *  of this one.  Its later polls are signed by it. */
    X509 *requester_cert;
} scep_submit_request_t;

/** The CA's answer in detail. */
typedef struct {
    scep_submit_status_e status;
    STACK_OF(X509) *certs;       /**< ISSUED: the certificate, then chain */
    const char *request_id;      /**< PENDING: the CA's id of the request */
    int fail_info;               /**< REJECTED: RFC 8894 failInfo */
    const char *reason;          /**< REJECTED: for the log, not the client */
} scep_submit_result_t;

/** What a CA knows of a certificate (renewal). */
typedef enum {
    SCEP_CERT_GOOD = 0,      /**< issued by this CA, not revoked */
    SCEP_CERT_REVOKED,       /**< revoked */
    SCEP_CERT_UNKNOWN        /**< not known: renewal then fails closed */
} scep_cert_status_e;

/**
 * A submission provider.  Functions return APR_SUCCESS with *res filled,
 * or an error when the CA could not be asked (the device then gets
 * PENDING or FAILURE as the RA decides; the error is logged).
 * Idempotency is the provider's: a request resent with the same
 * transactionID and key must get the same answer, never a second
 * certificate.
 */
typedef struct scep_submit_provider_t {
    /** Name, as given to SCEPProvider. */
    const char *name;

    /** Configuration time: make an instance from SCEPProvider's further
     *  arguments.  Return an error text, or NULL. */
    const char *(*create)(void **instance, apr_pool_t *p, server_rec *s,
                          int argc, char *const argv[]);

    /** Startup in the parent (every configuration load). */
    apr_status_t (*init)(void *instance, apr_pool_t *pconf,
                         apr_pool_t *ptemp, server_rec *s);

    /** In each child, before requests. */
    apr_status_t (*child_init)(void *instance, apr_pool_t *p, server_rec *s);

    /** Submit a certificate request. */
    apr_status_t (*submit)(void *instance, request_rec *r,
                           const scep_submit_request_t *req,
                           scep_submit_result_t *res);

    /** A device polls its request (CertPoll): transaction ID, the
     *  subject it asked for and the certificate that signs the poll
     *  (polls are bound to the requester: the request's key, or for a
     *  renewal the certificate renewed); may be NULL. */
    apr_status_t (*poll)(void *instance, request_rec *r,
                         const char *transaction_id, X509_NAME *subject,
                         X509 *requester, scep_submit_result_t *res);

    /** GetCert: a certificate by issuer and serial; may be NULL. */
    apr_status_t (*get_cert)(void *instance, request_rec *r,
                             X509_NAME *issuer, const ASN1_INTEGER *serial,
                             scep_submit_result_t *res);

    /** GetCRL: the CRL for a certificate's issuer; may be NULL. */
    apr_status_t (*get_crl)(void *instance, request_rec *r,
                            X509_NAME *issuer, const ASN1_INTEGER *serial,
                            X509_CRL **crl);

    /** Renewal: the status of the certificate that signed the request.
     *  NULL means the provider cannot tell, and renewal is refused. */
    scep_cert_status_e (*cert_status)(void *instance, request_rec *r,
                                      X509 *cert);

    /** SCEP_SUBMIT_* flags. */
    unsigned int flags;
} scep_submit_provider_t;

/** The provider does not use scep_submit_request_t.ra_request, so the RA
 *  saves the signature (an embedded CA trusts the RA in-process). */
#define SCEP_SUBMIT_NO_RA_REQUEST 0x1

#endif /* MOD_SCEP_H */
