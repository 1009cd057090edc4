/* Licensed under the Apache License, Version 2.0; see LICENSE. */

/**
 * @file scep_msg.h
 * @brief SCEP message codec (RFC 8894): pkiMessage parse and build.
 *
 * Pure OpenSSL and APR: no httpd types, so it can be unit-tested and
 * fuzzed on its own.  Every OpenSSL object handed out is owned by the
 * pool it was created in (freed by a pool cleanup).
 */
#ifndef SCEP_MSG_H
#define SCEP_MSG_H

#include <apr_pools.h>
#include <openssl/x509.h>
#include <openssl/evp.h>

/** RFC 8894 3.2.1.2 messageType */
typedef enum {
    SCEP_MT_NONE       = 0,
    SCEP_MT_CERTREP    = 3,
    SCEP_MT_RENEWALREQ = 17,
    SCEP_MT_PKCSREQ    = 19,
    SCEP_MT_CERTPOLL   = 20,  /* GetCertInitial */
    SCEP_MT_GETCERT    = 21,
    SCEP_MT_GETCRL     = 22
} scep_msgtype_e;

/** RFC 8894 3.2.1.3 pkiStatus */
typedef enum {
    SCEP_STATUS_SUCCESS = 0,
    SCEP_STATUS_FAILURE = 2,
    SCEP_STATUS_PENDING = 3
} scep_pkistatus_e;

/** RFC 8894 3.2.1.4 failInfo */
typedef enum {
    SCEP_FAIL_BADALG          = 0,
    SCEP_FAIL_BADMESSAGECHECK = 1,
    SCEP_FAIL_BADREQUEST      = 2,
    SCEP_FAIL_BADTIME         = 3,
    SCEP_FAIL_BADCERTID       = 4
} scep_failinfo_e;

/** Distinct result of every codec step, for the log (never for the client). */
typedef enum {
    SCEP_OK = 0,
    SCEP_E_NOMEM,            /* allocation failed */
    SCEP_E_EMPTY,            /* no input */
    SCEP_E_TOO_LARGE,        /* input above the configured limit */
    SCEP_E_ASN1,             /* not a CMS ContentInfo */
    SCEP_E_NOT_SIGNED,       /* outer content type is not signedData */
    SCEP_E_ECONTENT_TYPE,    /* eContentType is not data */
    SCEP_E_SIGNER_COUNT,     /* not exactly one SignerInfo */
    SCEP_E_NO_SIGNER_CERT,   /* signer certificate not in the message */
    SCEP_E_DIGEST,           /* digest algorithm not allowed (MD5, or SHA-1 off) */
    SCEP_E_SIGNATURE,        /* signature does not verify */
    SCEP_E_NO_ATTRS,         /* SignerInfo without signed attributes */
    SCEP_E_MSGTYPE,          /* messageType missing, malformed or unknown */
    SCEP_E_TRANSID,          /* transactionID missing or malformed */
    SCEP_E_SENDER_NONCE,     /* senderNonce missing or not 16 bytes */
    SCEP_E_RECIPIENT_NONCE,  /* recipientNonce missing or malformed (replies) */
    SCEP_E_PKISTATUS,        /* pkiStatus missing or unknown (replies) */
    SCEP_E_FAILINFO,         /* failInfo missing or unknown on FAILURE */
    SCEP_E_NO_CONTENT,       /* a message that must carry data has none */
    SCEP_E_UNEXPECTED_CONTENT, /* FAILURE/PENDING reply with content */
    SCEP_E_NOT_ENVELOPED,    /* signed content is not envelopedData */
    SCEP_E_CIPHER,           /* content cipher unknown or not allowed */
    SCEP_E_RECIPIENT,        /* not encrypted to our certificate */
    SCEP_E_DECRYPT,          /* key transport or content decryption failed */
    SCEP_E_INNER,            /* messageData does not decode for its type */
    SCEP_E_CSR_SIGNATURE,    /* PKCS#10 self-signature invalid */
    SCEP_E_BUILD,            /* building a message failed */
    SCEP_E_ARG               /* bad argument */
} scep_err_e;

/** A length-delimited byte string (ASN.1 strings are not NUL-terminated). */
typedef struct {
    const unsigned char *data;
    apr_size_t len;
} scep_bytes_t;

/** What the reader accepts. */
typedef struct {
    int allow_des;       /* single DES content encryption (legacy switch) */
    int allow_legacy;    /* DES3 and SHA-1 (on by default, as NDES) */
    apr_size_t max_size; /* 0: no limit */
} scep_msg_opts_t;

/** A parsed pkiMessage. */
typedef struct {
    scep_msgtype_e type;
    scep_bytes_t transid;          /* PrintableString content */
    int transid_type;              /* its ASN.1 string type, echoed back */
    scep_bytes_t sender_nonce;     /* 16 bytes */
    scep_bytes_t recipient_nonce;  /* replies only; len 0 if absent */
    int has_status;                /* replies: pkiStatus present */
    scep_pkistatus_e status;
    int has_failinfo;
    scep_failinfo_e failinfo;

    X509 *signer;                  /* the SignerInfo's certificate */
    int digest_nid;                /* SignerInfo digest algorithm */
    int cipher_nid;                /* pkcsPKIEnvelope cipher, NID_undef before decrypt */

    scep_bytes_t envelope;         /* DER of the pkcsPKIEnvelope, len 0 if none */
    scep_bytes_t data;             /* decrypted messageData */

    /* decoded messageData (after scep_msg_decrypt) */
    X509_REQ *csr;                 /* PKCSReq, RenewalReq */
    X509_NAME *issuer;             /* GetCert/GetCRL (IssuerAndSerial), CertPoll */
    ASN1_INTEGER *serial;          /* GetCert/GetCRL */
    X509_NAME *subject;            /* CertPoll (IssuerAndSubject) */
    STACK_OF(X509) *certs;         /* CertRep SUCCESS */
    STACK_OF(X509_CRL) *crls;      /* CertRep SUCCESS to GetCRL */
} scep_msg_t;

/** Register the SCEP attribute OIDs; call once before threads start. */
scep_err_e scep_msg_init(void);

/** Load OpenSSL's legacy provider (single DES); returns 0 on failure. */
int scep_msg_enable_des(void);

/** A short fixed text for an error code. */
const char *scep_msg_strerror(scep_err_e err);

/** Drain OpenSSL's error queue into one line for the log ("" if none). */
const char *scep_msg_ossl_errors(apr_pool_t *p);

const char *scep_msgtype_name(scep_msgtype_e t);
const char *scep_failinfo_name(scep_failinfo_e f);

/**
 * Parse a pkiMessage (DER or BER), verify its signature with the signer
 * certificate it carries (no path validation: initial enrolment signers
 * are self-signed) and read the SCEP signed attributes.  The envelope is
 * located but not decrypted.  On error *msg may still hold what was read
 * (transactionID, nonce, signer) so a FAILURE can be addressed.
 */
scep_err_e scep_msg_parse(apr_pool_t *p, const unsigned char *der,
                          apr_size_t len, const scep_msg_opts_t *opts,
                          scep_msg_t **msg);

/**
 * Decrypt the pkcsPKIEnvelope with our key and certificate and decode the
 * messageData for the message type (PKCS#10 with its self-signature
 * checked, IssuerAndSerialNumber, IssuerAndSubject, or a certs-only
 * SignedData for a CertRep).
 */
scep_err_e scep_msg_decrypt(apr_pool_t *p, scep_msg_t *msg,
                            EVP_PKEY *key, X509 *cert,
                            const scep_msg_opts_t *opts);

/** A degenerate certs-only SignedData (no eContent, no signers). */
scep_err_e scep_msg_certs_only(apr_pool_t *p, STACK_OF(X509) *certs,
                               X509_CRL *crl, unsigned char **out,
                               apr_size_t *outlen);

/** A plain SignedData over data (GetNextCACert). */
scep_err_e scep_msg_sign_data(apr_pool_t *p, const unsigned char *data,
                              apr_size_t len, X509 *cert, EVP_PKEY *key,
                              const EVP_MD *md, unsigned char **out,
                              apr_size_t *outlen);

/** Signing identity for building messages. */
typedef struct {
    X509 *cert;
    EVP_PKEY *key;
} scep_signer_t;

/**
 * Build a CertRep answering req.  SUCCESS needs certs (leaf first) or crl;
 * it is enveloped to req's signer with req's cipher (AES-128 when
 * unknown).  The digest is req's, or default_md when req is NULL or its
 * digest is unknown.  req may be NULL only with FAILURE (no transaction
 * then, which a client cannot match).
 */
scep_err_e scep_msg_certrep(apr_pool_t *p, const scep_msg_t *req,
                            scep_pkistatus_e status, scep_failinfo_e fail,
                            STACK_OF(X509) *certs, X509_CRL *crl,
                            const scep_signer_t *ra, const EVP_MD *default_md,
                            unsigned char **out, apr_size_t *outlen);

/**
 * Build a request as a client does: messageData enveloped to recipient
 * with cipher, signed by signer with md, with the given transactionID and
 * a fresh senderNonce (copied to *nonce_out if not NULL, 16 bytes).
 */
scep_err_e scep_msg_request(apr_pool_t *p, scep_msgtype_e type,
                            const char *transid, const unsigned char *data,
                            apr_size_t len, X509 *recipient,
                            const EVP_CIPHER *cipher,
                            const scep_signer_t *signer, const EVP_MD *md,
                            unsigned char *nonce_out,
                            unsigned char **out, apr_size_t *outlen);

/** IssuerAndSerialNumber DER (GetCert, GetCRL messageData). */
scep_err_e scep_msg_issuer_and_serial(apr_pool_t *p, X509_NAME *issuer,
                                      const ASN1_INTEGER *serial,
                                      unsigned char **out,
                                      apr_size_t *outlen);

/** IssuerAndSubject DER (CertPoll messageData). */
scep_err_e scep_msg_issuer_and_subject(apr_pool_t *p, X509_NAME *issuer,
                                       X509_NAME *subject,
                                       unsigned char **out,
                                       apr_size_t *outlen);

/** An EnvelopedData of data for recipient (RSA key transport). */
scep_err_e scep_msg_envelope(apr_pool_t *p, const unsigned char *data,
                             apr_size_t len, X509 *recipient,
                             const EVP_CIPHER *cipher, unsigned char **out,
                             apr_size_t *outlen);

/** Open an EnvelopedData made for cert with its key. */
scep_err_e scep_msg_open_envelope(apr_pool_t *p, const unsigned char *der,
                                  apr_size_t len, EVP_PKEY *key, X509 *cert,
                                  scep_bytes_t *data);

/** Hex SHA-256 of the key's SubjectPublicKeyInfo (a key-bound transactionID). */
const char *scep_msg_key_transid(apr_pool_t *p, EVP_PKEY *key);

#endif /* SCEP_MSG_H */
