/* Licensed under the Apache License, Version 2.0; see LICENSE. */

/*
 * Unit tests of the SCEP message codec (scep_msg.h): round trips of every
 * message type, cipher and digest as a client and the server would run
 * them, and malformed messages built field by field with OpenSSL's CMS
 * API, each expected to fail with its own scep_err_e.
 */

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <apr_general.h>
#include <apr_pools.h>
#include <apr_strings.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/pkcs7.h>
#include <openssl/provider.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "scep_msg.h"
#include "testpki.h"
#include "tap.h"

#define NONCE_LEN 16

static apr_pool_t *root;
static const testpki_t *pki;
static scep_signer_t ra_signer;
static scep_signer_t client_signer;
static int have_des;

/* SCEP attribute OIDs, made by the test itself (not by scep_msg_init) */
static ASN1_OBJECT *oid_msgtype;
static ASN1_OBJECT *oid_status;
static ASN1_OBJECT *oid_failinfo;
static ASN1_OBJECT *oid_snonce;
static ASN1_OBJECT *oid_rnonce;
static ASN1_OBJECT *oid_transid;

static const unsigned char nonce_a[NONCE_LEN] = {
    0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef,
    0xfe, 0xdc, 0xba, 0x98, 0x76, 0x54, 0x32, 0x10
};
static const unsigned char nonce_b[NONCE_LEN] = {
    0xa5, 0xa5, 0x5a, 0x5a, 0x00, 0x11, 0x22, 0x33,
    0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb
};

/* ------------------------------------------------------------------ */
/* Helpers                                                             */

static const char *const err_names[] = {
    [SCEP_OK] = "SCEP_OK",
    [SCEP_E_NOMEM] = "SCEP_E_NOMEM",
    [SCEP_E_EMPTY] = "SCEP_E_EMPTY",
    [SCEP_E_TOO_LARGE] = "SCEP_E_TOO_LARGE",
    [SCEP_E_ASN1] = "SCEP_E_ASN1",
    [SCEP_E_NOT_SIGNED] = "SCEP_E_NOT_SIGNED",
    [SCEP_E_ECONTENT_TYPE] = "SCEP_E_ECONTENT_TYPE",
    [SCEP_E_SIGNER_COUNT] = "SCEP_E_SIGNER_COUNT",
    [SCEP_E_NO_SIGNER_CERT] = "SCEP_E_NO_SIGNER_CERT",
    [SCEP_E_DIGEST] = "SCEP_E_DIGEST",
    [SCEP_E_SIGNATURE] = "SCEP_E_SIGNATURE",
    [SCEP_E_NO_ATTRS] = "SCEP_E_NO_ATTRS",
    [SCEP_E_MSGTYPE] = "SCEP_E_MSGTYPE",
    [SCEP_E_TRANSID] = "SCEP_E_TRANSID",
    [SCEP_E_SENDER_NONCE] = "SCEP_E_SENDER_NONCE",
    [SCEP_E_RECIPIENT_NONCE] = "SCEP_E_RECIPIENT_NONCE",
    [SCEP_E_PKISTATUS] = "SCEP_E_PKISTATUS",
    [SCEP_E_FAILINFO] = "SCEP_E_FAILINFO",
    [SCEP_E_NO_CONTENT] = "SCEP_E_NO_CONTENT",
    [SCEP_E_UNEXPECTED_CONTENT] = "SCEP_E_UNEXPECTED_CONTENT",
    [SCEP_E_NOT_ENVELOPED] = "SCEP_E_NOT_ENVELOPED",
    [SCEP_E_CIPHER] = "SCEP_E_CIPHER",
    [SCEP_E_RECIPIENT] = "SCEP_E_RECIPIENT",
    [SCEP_E_DECRYPT] = "SCEP_E_DECRYPT",
    [SCEP_E_INNER] = "SCEP_E_INNER",
    [SCEP_E_CSR_SIGNATURE] = "SCEP_E_CSR_SIGNATURE",
    [SCEP_E_BUILD] = "SCEP_E_BUILD",
    [SCEP_E_ARG] = "SCEP_E_ARG",
};

#define N_ERRS ((int)(sizeof(err_names) / sizeof(err_names[0])))

static const char *errname(scep_err_e e)
{
    if ((int)e >= 0 && (int)e < N_ERRS && err_names[e]) {
        return err_names[e];
    }
    return "(unknown scep_err_e)";
}

/* Drain OpenSSL's queue: each test starts clean. */
static void drain_ossl(int show)
{
    if (show) {
        testpki_diag_ossl("openssl");
    }
    ERR_clear_error();
}

static int is_err_(scep_err_e got, scep_err_e exp, int line,
                   const char *fmt, ...)
{
    char name[400];
    va_list ap;
    int pass = (got == exp);

    va_start(ap, fmt);
    vsnprintf(name, sizeof(name), fmt, ap);
    va_end(ap);
    tap_ok_(pass, __FILE__, line, "%s", name);
    if (!pass) {
        diag("         got: %s (%d)\n    expected: %s (%d)", errname(got),
             (int)got, errname(exp), (int)exp);
    }
    drain_ossl(!pass);
    return pass;
}

#define is_err(got, exp, ...) is_err_((got), (exp), __LINE__, __VA_ARGS__)

static int bytes_eq(scep_bytes_t b, const void *data, apr_size_t len)
{
    return b.data != NULL && b.len == len && memcmp(b.data, data, len) == 0;
}

static int name_eq(X509_NAME *a, X509_NAME *b)
{
    return a != NULL && b != NULL && X509_NAME_cmp(a, b) == 0;
}

/* Same DER encoding. */
static int crl_eq(X509_CRL *a, X509_CRL *b)
{
    unsigned char *da = NULL, *db = NULL;
    int na = i2d_X509_CRL(a, &da), nb = i2d_X509_CRL(b, &db);
    int eq = na > 0 && na == nb && memcmp(da, db, (size_t)na) == 0;

    OPENSSL_free(da);
    OPENSSL_free(db);
    return eq;
}

static unsigned char *bio_to_pool(apr_pool_t *p, BIO *b, apr_size_t *len)
{
    char *data;
    long n = BIO_get_mem_data(b, &data);

    if (n <= 0) {
        *len = 0;
        return NULL;
    }
    *len = (apr_size_t)n;
    return apr_pmemdup(p, data, (apr_size_t)n);
}

static unsigned char *cms_to_der(apr_pool_t *p, CMS_ContentInfo *cms,
                                 apr_size_t *len)
{
    unsigned char *der = NULL, *copy;
    int n = i2d_CMS_ContentInfo(cms, &der);

    if (n <= 0) {
        testpki_diag_ossl("i2d_CMS_ContentInfo");
        return NULL;
    }
    copy = apr_pmemdup(p, der, (apr_size_t)n);
    OPENSSL_free(der);
    *len = (apr_size_t)n;
    return copy;
}

static apr_status_t free_cms(void *d)
{
    CMS_ContentInfo_free(d);
    return APR_SUCCESS;
}

/* d2i a CMS ContentInfo into pool-owned memory. */
static CMS_ContentInfo *der_to_cms(apr_pool_t *p, const unsigned char *der,
                                   apr_size_t len)
{
    const unsigned char *q = der;
    CMS_ContentInfo *cms = d2i_CMS_ContentInfo(NULL, &q, (long)len);

    if (cms) {
        apr_pool_cleanup_register(p, cms, free_cms, apr_pool_cleanup_null);
    }
    return cms;
}

/* A CSR as the client sends it, DER in pool memory. */
static unsigned char *csr_der(apr_pool_t *p, EVP_PKEY *key,
                              const char *subject, apr_size_t *len)
{
    X509_REQ *req = testpki_csr(p, key, subject, "s3cr3t-challenge");

    return req ? testpki_req_der(p, req, len) : NULL;
}

#define ENV_STREAM 0x01  /* BER as OpenSSL streams it */
#define ENV_TAMPER 0x02  /* corrupt the CBC padding (see below) */
#define ENV_KEYID  0x04  /* recipient by subjectKeyIdentifier */
#define ENV_OAEP   0x08  /* RSAES-OAEP key transport */

/* A pkcsPKIEnvelope of data to the recipients. */
static unsigned char *envelope_ex(apr_pool_t *p, const unsigned char *data,
                                  apr_size_t len, STACK_OF(X509) *to_sk,
                                  const EVP_CIPHER *cipher, int mode,
                                  apr_size_t *outlen)
{
    BIO *in = BIO_new_mem_buf(len ? (const void *)data : "", (int)len);
    BIO *out = NULL;
    CMS_ContentInfo *cms = NULL;
    unsigned char *der = NULL;
    int stream = (mode & ENV_STREAM) != 0;
    unsigned int flags = CMS_BINARY | (stream ? CMS_STREAM : 0)
                         | ((mode & ENV_KEYID) ? CMS_USE_KEYID : 0);
    int i;

    if (to_sk == NULL || in == NULL) {
        goto out;
    }
    if (mode & ENV_OAEP) {
        cms = CMS_encrypt(NULL, in, cipher, flags | CMS_PARTIAL);
        for (i = 0; cms && i < sk_X509_num(to_sk); i++) {
            CMS_RecipientInfo *ri =
                CMS_add1_recipient_cert(cms, sk_X509_value(to_sk, i),
                                        flags | CMS_KEY_PARAM);
            EVP_PKEY_CTX *pctx = ri ? CMS_RecipientInfo_get0_pkey_ctx(ri)
                                    : NULL;

            if (pctx == NULL
                || EVP_PKEY_CTX_set_rsa_padding(pctx,
                                                RSA_PKCS1_OAEP_PADDING)
                   <= 0) {
                CMS_ContentInfo_free(cms);
                cms = NULL;
            }
        }
        if (cms && !CMS_final(cms, in, NULL, flags)) {
            CMS_ContentInfo_free(cms);
            cms = NULL;
        }
    }
    else {
        cms = CMS_encrypt(to_sk, in, cipher, flags);
    }
    if (cms == NULL) {
        testpki_diag_ossl("CMS_encrypt");
        goto out;
    }
    if (stream) {
        out = BIO_new(BIO_s_mem());
        if (out == NULL || !i2d_CMS_bio_stream(out, cms, in, flags)) {
            testpki_diag_ossl("i2d_CMS_bio_stream");
            goto out;
        }
        der = bio_to_pool(p, out, outlen);
    }
    else {
        if (mode & ENV_TAMPER) {
            /* In CBC the last plaintext byte (the padding length, 1..16)
             * is the last byte of the previous ciphertext block XOR
             * D(last block): flipping it there always makes the padding
             * invalid, whatever the key. */
            ASN1_OCTET_STRING **pos = CMS_get0_content(cms);

            if (pos && *pos && (*pos)->length >= 32) {
                (*pos)->data[(*pos)->length - 17] ^= 0x5a;
            }
        }
        der = cms_to_der(p, cms, outlen);
    }
out:
    BIO_free(in);
    BIO_free(out);
    CMS_ContentInfo_free(cms);
    return der;
}

static unsigned char *envelope(apr_pool_t *p, const unsigned char *data,
                               apr_size_t len, X509 *to,
                               const EVP_CIPHER *cipher, int stream,
                               int tamper, apr_size_t *outlen)
{
    return envelope_ex(p, data, len, testpki_stack(p, to, NULL), cipher,
                       (stream ? ENV_STREAM : 0) | (tamper ? ENV_TAMPER : 0),
                       outlen);
}

/* ------------------------------------------------------------------ */
/* A pkiMessage built field by field                                   */

typedef struct {
    const char *msgtype;          /* NULL: omitted */
    int msgtype_asn1;             /* 0: PrintableString */
    const char *msgtype2;         /* a second value in the same attribute */
    const char *msgtype_dup;      /* a second messageType attribute */
    const char *transid;          /* NULL: omitted */
    int transid_asn1;             /* 0: PrintableString */
    const unsigned char *nonce;   /* NULL: omitted */
    int nonce_len;
    int nonce_asn1;               /* 0: OCTET STRING */
    const char *status;           /* pkiStatus, NULL: omitted */
    const char *failinfo;         /* NULL: omitted */
    const unsigned char *rnonce;  /* recipientNonce, NULL: omitted */
    int rnonce_len;
    const unsigned char *content; /* eContent; NULL: absent (detached) */
    apr_size_t content_len;
    const char *econtent_oid;     /* NULL: data */
    const EVP_MD *md;             /* NULL: SHA-256 */
    X509 *cert;                   /* NULL: the client's */
    EVP_PKEY *key;
    int noattr;                   /* no signed attributes */
    int nocerts;                  /* signer certificate left out */
    int second_signer;            /* another SignerInfo (other_cert) */
    int keyid;                    /* signer by subjectKeyIdentifier */
    X509 *extra_cert;             /* added to the certificates */
    int pss;                      /* RSASSA-PSS signature */
    int stream;                   /* BER: OpenSSL's streaming encoder */
    int tamper_sig;               /* flip a signature bit */
    int tamper_content;           /* flip an eContent bit after signing */
} msgspec_t;

static int add_attr(CMS_SignerInfo *si, ASN1_OBJECT *obj, int type,
                    const void *bytes, int len)
{
    if (!CMS_signed_add1_attr_by_OBJ(si, obj, type, bytes, len)) {
        testpki_diag_ossl("CMS_signed_add1_attr_by_OBJ");
        return 0;
    }
    return 1;
}

/* The SCEP attributes of spec on one SignerInfo. */
static int add_scep_attrs(CMS_SignerInfo *si, const msgspec_t *s)
{
    if (s->msgtype) {
        int type = s->msgtype_asn1 ? s->msgtype_asn1
                                   : V_ASN1_PRINTABLESTRING;

        if (s->msgtype2) {
            /* one attribute holding two values */
            X509_ATTRIBUTE *a = X509_ATTRIBUTE_create_by_OBJ(
                NULL, oid_msgtype, type, s->msgtype, (int)strlen(s->msgtype));
            int ok = a != NULL
                && X509_ATTRIBUTE_set1_data(a, type, s->msgtype2,
                                            (int)strlen(s->msgtype2))
                && CMS_signed_add1_attr(si, a);

            X509_ATTRIBUTE_free(a);
            if (!ok) {
                testpki_diag_ossl("two-valued attribute");
                return 0;
            }
        }
        else if (!add_attr(si, oid_msgtype, type, s->msgtype,
                           (int)strlen(s->msgtype))) {
            return 0;
        }
    }
    if (s->msgtype_dup
        && !add_attr(si, oid_msgtype, V_ASN1_PRINTABLESTRING,
                     s->msgtype_dup, (int)strlen(s->msgtype_dup))) {
        return 0;
    }
    if (s->transid
        && !add_attr(si, oid_transid,
                     s->transid_asn1 ? s->transid_asn1
                                     : V_ASN1_PRINTABLESTRING,
                     s->transid, (int)strlen(s->transid))) {
        return 0;
    }
    if (s->nonce
        && !add_attr(si, oid_snonce,
                     s->nonce_asn1 ? s->nonce_asn1 : V_ASN1_OCTET_STRING,
                     s->nonce, s->nonce_len)) {
        return 0;
    }
    if (s->status
        && !add_attr(si, oid_status, V_ASN1_PRINTABLESTRING, s->status,
                     (int)strlen(s->status))) {
        return 0;
    }
    if (s->failinfo
        && !add_attr(si, oid_failinfo, V_ASN1_PRINTABLESTRING, s->failinfo,
                     (int)strlen(s->failinfo))) {
        return 0;
    }
    if (s->rnonce
        && !add_attr(si, oid_rnonce, V_ASN1_OCTET_STRING, s->rnonce,
                     s->rnonce_len)) {
        return 0;
    }
    return 1;
}

static CMS_SignerInfo *add_signer(CMS_ContentInfo *cms, X509 *cert,
                                  EVP_PKEY *key, const msgspec_t *s)
{
    unsigned int flags = CMS_PARTIAL | CMS_NOSMIMECAP | CMS_BINARY;
    CMS_SignerInfo *si;

    if (s->noattr) {
        flags |= CMS_NOATTR;
    }
    if (s->nocerts) {
        flags |= CMS_NOCERTS;
    }
    if (s->pss) {
        flags |= CMS_KEY_PARAM;
    }
    if (s->keyid) {
        flags |= CMS_USE_KEYID;
    }
    si = CMS_add1_signer(cms, cert, key, s->md ? s->md : EVP_sha256(),
                         flags);
    if (si == NULL) {
        testpki_diag_ossl("CMS_add1_signer");
        return NULL;
    }
    if (s->pss) {
        EVP_PKEY_CTX *pctx = CMS_SignerInfo_get0_pkey_ctx(si);

        if (pctx == NULL
            || EVP_PKEY_CTX_set_rsa_padding(pctx,
                                            RSA_PKCS1_PSS_PADDING) <= 0
            || EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx,
                                                RSA_PSS_SALTLEN_DIGEST)
               <= 0) {
            testpki_diag_ossl("RSA-PSS");
            return NULL;
        }
    }
    if (!s->noattr && !add_scep_attrs(si, s)) {
        return NULL;
    }
    return si;
}

/* Build the pkiMessage described by s; DER (or BER) in pool memory. */
static unsigned char *build(apr_pool_t *p, const msgspec_t *s,
                            apr_size_t *len)
{
    unsigned int flags = CMS_PARTIAL | CMS_BINARY;
    CMS_ContentInfo *cms = NULL;
    ASN1_OBJECT *ectype = NULL;
    BIO *in = NULL, *out = NULL;
    unsigned char *der = NULL;
    X509 *cert = s->cert ? s->cert : pki->client_cert;
    EVP_PKEY *key = s->key ? s->key : pki->client_key;

    if (s->content == NULL) {
        flags |= CMS_DETACHED;
    }
    if (s->stream) {
        flags |= CMS_STREAM;
    }
    in = BIO_new_mem_buf(s->content ? (const void *)s->content : "",
                         (int)(s->content ? s->content_len : 0));
    cms = CMS_sign(NULL, NULL, NULL, NULL, flags);
    if (in == NULL || cms == NULL) {
        testpki_diag_ossl("CMS_sign");
        goto out;
    }
    if (s->econtent_oid) {
        ectype = OBJ_txt2obj(s->econtent_oid, 1);
        if (ectype == NULL || !CMS_set1_eContentType(cms, ectype)) {
            testpki_diag_ossl("CMS_set1_eContentType");
            goto out;
        }
    }
    if (add_signer(cms, cert, key, s) == NULL) {
        goto out;
    }
    if (s->second_signer
        && add_signer(cms, pki->other_cert, pki->other_key, s) == NULL) {
        goto out;
    }
    if (s->extra_cert && !CMS_add1_cert(cms, s->extra_cert)) {
        testpki_diag_ossl("CMS_add1_cert");
        goto out;
    }
    if (s->stream) {
        out = BIO_new(BIO_s_mem());
        if (out == NULL || !i2d_CMS_bio_stream(out, cms, in, flags)) {
            testpki_diag_ossl("i2d_CMS_bio_stream");
            goto out;
        }
        der = bio_to_pool(p, out, len);
        goto out;
    }
    if (!CMS_final(cms, in, NULL, flags)) {
        testpki_diag_ossl("CMS_final");
        goto out;
    }
    if (s->tamper_sig) {
        CMS_SignerInfo *si = sk_CMS_SignerInfo_value(
            CMS_get0_SignerInfos(cms), 0);
        ASN1_OCTET_STRING *sig = CMS_SignerInfo_get0_signature(si);

        sig->data[sig->length / 2] ^= 0x01;
    }
    if (s->tamper_content) {
        ASN1_OCTET_STRING **pos = CMS_get0_content(cms);

        if (pos && *pos && (*pos)->length > 0) {
            (*pos)->data[(*pos)->length / 2] ^= 0x01;
        }
    }
    der = cms_to_der(p, cms, len);
out:
    ASN1_OBJECT_free(ectype);
    BIO_free(in);
    BIO_free(out);
    CMS_ContentInfo_free(cms);
    drain_ossl(der == NULL);
    return der;
}

/* A valid PKCSReq spec: "19", transactionID, nonce, CSR enveloped to the
 * RA with AES-128, signed by the client with SHA-256. */
static void spec_pkcsreq(apr_pool_t *p, msgspec_t *s)
{
    apr_size_t csrlen, envlen;
    unsigned char *csr = csr_der(p, pki->client_key,
                                 "/O=mod_scep test/CN=malformed", &csrlen);

    memset(s, 0, sizeof(*s));
    s->msgtype = "19";
    s->transid = "MALFORMED-TEST-1";
    s->nonce = nonce_a;
    s->nonce_len = NONCE_LEN;
    s->content = envelope(p, csr, csrlen, pki->ra_cert, EVP_aes_128_cbc(),
                          0, 0, &envlen);
    s->content_len = envlen;
}

/* A CertRep as the RA would sign it, to the client's request nonce_a. */
static void spec_certrep(msgspec_t *s, const char *status)
{
    memset(s, 0, sizeof(*s));
    s->msgtype = "3";
    s->transid = "MALFORMED-TEST-1";
    s->nonce = nonce_b;
    s->nonce_len = NONCE_LEN;
    s->status = status;
    s->rnonce = nonce_a;
    s->rnonce_len = NONCE_LEN;
    s->cert = pki->ra_cert;
    s->key = pki->ra_key;
}

static const scep_msg_opts_t opts_default = { 0, 1, 0 };

/*
 * Read a message as its recipient does: parse, then decrypt unless it is
 * a CertRep without content by design (PENDING, FAILURE).
 */
static scep_err_e read_msg(apr_pool_t *p, const unsigned char *der,
                           apr_size_t len, const scep_msg_opts_t *o,
                           EVP_PKEY *key, X509 *cert, scep_msg_t **msg)
{
    scep_err_e rv;

    *msg = NULL;
    rv = scep_msg_parse(p, der, len, o, msg);
    if (rv != SCEP_OK) {
        return rv;
    }
    if (*msg == NULL) {
        diag("scep_msg_parse returned SCEP_OK with *msg NULL");
        return SCEP_E_ARG;
    }
    if ((*msg)->type == SCEP_MT_CERTREP && (*msg)->has_status
        && (*msg)->status != SCEP_STATUS_SUCCESS) {
        return rv;
    }
    return scep_msg_decrypt(p, *msg, key, cert, o);
}

/* As the server (RA key), with the default options. */
static scep_err_e server_read(apr_pool_t *p, const unsigned char *der,
                              apr_size_t len, scep_msg_t **msg)
{
    return read_msg(p, der, len, &opts_default, pki->ra_key, pki->ra_cert,
                    msg);
}

/* As the client (its own key). */
static scep_err_e client_read(apr_pool_t *p, const unsigned char *der,
                              apr_size_t len, const scep_msg_opts_t *o,
                              scep_msg_t **msg)
{
    return read_msg(p, der, len, o ? o : &opts_default, pki->client_key,
                    pki->client_cert, msg);
}

/* Build s and expect reading it (as the server) to fail with exp. */
static void expect_server(apr_pool_t *p, const msgspec_t *s, scep_err_e exp,
                          const char *name)
{
    apr_size_t len = 0;
    unsigned char *der = build(p, s, &len);
    scep_msg_t *msg;

    if (der == NULL) {
        ok(0, "%s: could not build the test message", name);
        return;
    }
    is_err(server_read(p, der, len, &msg), exp, "%s", name);
}

/* Build s (a reply) and expect the client to fail with exp. */
static void expect_client(apr_pool_t *p, const msgspec_t *s,
                          scep_err_e exp, const char *name)
{
    apr_size_t len = 0;
    unsigned char *der = build(p, s, &len);
    scep_msg_t *msg;

    if (der == NULL) {
        ok(0, "%s: could not build the test message", name);
        return;
    }
    is_err(client_read(p, der, len, NULL, &msg), exp, "%s", name);
}

/* ------------------------------------------------------------------ */
/* A minimal DER walker and a DER -> BER converter                     */

typedef struct {
    unsigned char tag;
    const unsigned char *content;
    apr_size_t len;      /* content length */
    apr_size_t total;    /* header + content */
} tlv_t;

/* Read one definite-length TLV (single-byte tags); 0 if malformed. */
static int tlv_get(const unsigned char *d, apr_size_t avail, tlv_t *t)
{
    apr_size_t hdr = 2, len, i, n;

    if (avail < 2) {
        return 0;
    }
    t->tag = d[0];
    if ((d[0] & 0x1f) == 0x1f) {
        return 0;
    }
    if (d[1] < 0x80) {
        len = d[1];
    }
    else {
        n = d[1] & 0x7f;
        if (n == 0 || n > 4 || avail < 2 + n) {
            return 0;
        }
        for (len = 0, i = 0; i < n; i++) {
            len = (len << 8) | d[2 + i];
        }
        hdr += n;
    }
    if (len > avail - hdr) {
        return 0;
    }
    t->content = d + hdr;
    t->len = len;
    t->total = hdr + len;
    return 1;
}

/* The idx-th child TLV of a constructed TLV. */
static int tlv_child(const tlv_t *parent, int idx, tlv_t *child)
{
    const unsigned char *d = parent->content;
    apr_size_t left = parent->len;

    for (;;) {
        if (!tlv_get(d, left, child)) {
            return 0;
        }
        if (idx-- == 0) {
            return 1;
        }
        d += child->total;
        left -= child->total;
    }
}

static int tlv_count(const tlv_t *parent)
{
    tlv_t c;
    int n = 0;

    while (tlv_child(parent, n, &c)) {
        n++;
    }
    return n;
}

typedef struct {
    unsigned char *data;
    apr_size_t len, cap;
} buf_t;

static void buf_put(buf_t *b, const void *d, apr_size_t n)
{
    if (b->len + n > b->cap) {
        b->cap = (b->len + n) * 2 + 64;
        b->data = realloc(b->data, b->cap);
        if (b->data == NULL) {
            bail_out("out of memory");
        }
    }
    memcpy(b->data + b->len, d, n);
    b->len += n;
}

static void buf_byte(buf_t *b, unsigned char c)
{
    buf_put(b, &c, 1);
}

static void buf_len(buf_t *b, apr_size_t n)
{
    if (n < 0x80) {
        buf_byte(b, (unsigned char)n);
    }
    else if (n < 0x100) {
        buf_byte(b, 0x81);
        buf_byte(b, (unsigned char)n);
    }
    else {
        buf_byte(b, 0x82);
        buf_byte(b, (unsigned char)(n >> 8));
        buf_byte(b, (unsigned char)n);
    }
}

/*
 * Re-encode DER the way streaming encoders (Windows, Intune, OpenSSL's
 * CMS_STREAM) write BER: constructed TLVs above maxdepth get indefinite
 * lengths, OCTET STRINGs longer than chunk become constructed strings of
 * chunk-sized pieces.  The certificates ([0] inside SignedData, depth 3)
 * and the SignerInfos (SET at depth 3) are copied as they are.
 */
static void ber_conv(buf_t *out, const unsigned char *in, apr_size_t len,
                     int depth, int maxdepth, apr_size_t chunk)
{
    apr_size_t pos = 0, off, n;
    tlv_t t;

    while (pos < len && tlv_get(in + pos, len - pos, &t)) {
        int keep = depth >= maxdepth
            || (depth == 3 && (t.tag == 0xa0 || t.tag == 0xa1
                               || t.tag == 0x31));

        if (!keep && (t.tag & 0x20)) {
            buf_byte(out, t.tag);
            buf_byte(out, 0x80);
            ber_conv(out, t.content, t.len, depth + 1, maxdepth, chunk);
            buf_byte(out, 0);
            buf_byte(out, 0);
        }
        else if (!keep && t.tag == 0x04 && t.len > chunk) {
            buf_byte(out, 0x24);
            buf_byte(out, 0x80);
            for (off = 0; off < t.len; off += n) {
                n = t.len - off < chunk ? t.len - off : chunk;
                buf_byte(out, 0x04);
                buf_len(out, n);
                buf_put(out, t.content + off, n);
            }
            buf_byte(out, 0);
            buf_byte(out, 0);
        }
        else {
            buf_put(out, in + pos, t.total);
        }
        pos += t.total;
    }
}

static unsigned char *to_ber(apr_pool_t *p, const unsigned char *der,
                             apr_size_t len, apr_size_t chunk,
                             apr_size_t *outlen)
{
    buf_t b = { NULL, 0, 0 };
    unsigned char *copy;

    ber_conv(&b, der, len, 0, 6, chunk);
    copy = apr_pmemdup(p, b.data, b.len);
    *outlen = b.len;
    free(b.data);
    return copy;
}

/* ------------------------------------------------------------------ */
/* Round trips                                                         */

typedef struct {
    const char *name;
    const EVP_CIPHER *(*cipher)(void);
    int des;                      /* needs allow_des */
} cipher_case_t;

typedef struct {
    const char *name;
    const EVP_MD *(*md)(void);
} digest_case_t;

static const cipher_case_t ciphers[] = {
    { "AES-128-CBC", EVP_aes_128_cbc, 0 },
    { "AES-192-CBC", EVP_aes_192_cbc, 0 },
    { "AES-256-CBC", EVP_aes_256_cbc, 0 },
    { "DES-EDE3-CBC", EVP_des_ede3_cbc, 0 },
    { "DES-CBC", EVP_des_cbc, 1 },
};

static const digest_case_t digests[] = {
    { "SHA-1", EVP_sha1 },
    { "SHA-256", EVP_sha256 },
    { "SHA-384", EVP_sha384 },
    { "SHA-512", EVP_sha512 },
};

/* The CertRep SignerInfo: signed attributes CMS requires, and the
 * signature algorithm strongSwan expects (rsaEncryption). */
static void check_reply_signerinfo(apr_pool_t *p, const unsigned char *der,
                                   apr_size_t len, const char *what)
{
    CMS_ContentInfo *cms = der_to_cms(p, der, len);
    STACK_OF(CMS_SignerInfo) *sis = cms ? CMS_get0_SignerInfos(cms) : NULL;
    CMS_SignerInfo *si;
    X509_ALGOR *dig = NULL, *sig = NULL;
    const ASN1_OBJECT *obj = NULL;

    if (!ok(sis && sk_CMS_SignerInfo_num(sis) == 1,
            "%s: reply has one SignerInfo", what)) {
        return;
    }
    si = sk_CMS_SignerInfo_value(sis, 0);
    ok(CMS_signed_get_attr_by_NID(si, NID_pkcs9_contentType, -1) >= 0,
       "%s: reply has the contentType attribute", what);
    ok(CMS_signed_get_attr_by_NID(si, NID_pkcs9_messageDigest, -1) >= 0,
       "%s: reply has the messageDigest attribute", what);
    CMS_SignerInfo_get0_algs(si, NULL, NULL, &dig, &sig);
    if (sig) {
        X509_ALGOR_get0(&obj, NULL, NULL, sig);
    }
    is_int(obj ? OBJ_obj2nid(obj) : NID_undef, NID_rsaEncryption,
           "%s: reply signature algorithm is rsaEncryption", what);
}

/* One PKCSReq -> CertRep SUCCESS exchange with cipher c and digest d. */
static void roundtrip(const cipher_case_t *c, const digest_case_t *d)
{
    apr_pool_t *p;
    scep_msg_opts_t o = opts_default;
    const EVP_CIPHER *cipher = c->cipher();
    const EVP_MD *md = d->md();
    const char *what = apr_psprintf(root, "%s/%s", c->name, d->name);
    const char *subject, *transid;
    unsigned char nonce[NONCE_LEN];
    unsigned char *csr, *req, *rep;
    apr_size_t csrlen, reqlen, replen;
    scep_msg_t *msg = NULL, *reply = NULL;
    X509 *issued;
    testpki_certspec_t spec;
    scep_err_e rv;

    apr_pool_create(&p, root);
    o.allow_des = c->des;
    subject = apr_psprintf(p, "/O=mod_scep test/CN=client %s %s", c->name,
                           d->name);
    transid = apr_psprintf(p, "TRANSID-%s-%s", c->name, d->name);
    csr = csr_der(p, pki->client_key, subject, &csrlen);
    memset(nonce, 0, sizeof(nonce));

    rv = scep_msg_request(p, SCEP_MT_PKCSREQ, transid, csr, csrlen,
                          pki->ra_cert, cipher, &client_signer, md, nonce,
                          &req, &reqlen);
    if (!is_err(rv, SCEP_OK, "%s: scep_msg_request PKCSReq", what)) {
        apr_pool_destroy(p);
        return;
    }

    /* the server */
    rv = scep_msg_parse(p, req, reqlen, &o, &msg);
    if (!is_err(rv, SCEP_OK, "%s: server parses the request", what)
        || msg == NULL) {
        apr_pool_destroy(p);
        return;
    }
    is_int(msg->type, SCEP_MT_PKCSREQ, "%s: messageType PKCSReq", what);
    ok(bytes_eq(msg->transid, transid, strlen(transid)),
       "%s: transactionID", what);
    ok(bytes_eq(msg->sender_nonce, nonce, NONCE_LEN),
       "%s: senderNonce is the nonce_out of scep_msg_request", what);
    is_int(msg->digest_nid, EVP_MD_get_type(md), "%s: digest_nid", what);
    ok(msg->signer && X509_cmp(msg->signer, pki->client_cert) == 0,
       "%s: signer is the client certificate", what);
    ok(!msg->has_status, "%s: no pkiStatus in a request", what);
    ok(msg->envelope.len > 0, "%s: envelope located", what);

    rv = scep_msg_decrypt(p, msg, pki->ra_key, pki->ra_cert, &o);
    if (!is_err(rv, SCEP_OK, "%s: server decrypts", what)) {
        apr_pool_destroy(p);
        return;
    }
    is_int(msg->cipher_nid, EVP_CIPHER_get_nid(cipher), "%s: cipher_nid",
           what);
    ok(bytes_eq(msg->data, csr, csrlen), "%s: messageData is the CSR DER",
       what);
    ok(msg->csr && name_eq(X509_REQ_get_subject_name(msg->csr),
                           testpki_name(p, subject)),
       "%s: CSR subject", what);

    /* the server answers with the issued certificate and the CA */
    memset(&spec, 0, sizeof(spec));
    spec.subject = subject;
    spec.key = pki->client_key;
    spec.issuer = pki->ca_cert;
    spec.issuer_key = pki->ca_key;
    spec.ku = KU_DIGITAL_SIGNATURE | KU_KEY_ENCIPHERMENT;
    issued = testpki_cert(p, &spec);
    rv = scep_msg_certrep(p, msg, SCEP_STATUS_SUCCESS, 0,
                          testpki_stack(p, issued, pki->ca_cert, NULL), NULL,
                          &ra_signer, EVP_sha256(), &rep, &replen);
    if (!is_err(rv, SCEP_OK, "%s: scep_msg_certrep SUCCESS", what)) {
        apr_pool_destroy(p);
        return;
    }

    /* the client */
    rv = scep_msg_parse(p, rep, replen, &o, &reply);
    if (!is_err(rv, SCEP_OK, "%s: client parses the CertRep", what)
        || reply == NULL) {
        apr_pool_destroy(p);
        return;
    }
    is_int(reply->type, SCEP_MT_CERTREP, "%s: messageType CertRep", what);
    ok(reply->has_status && reply->status == SCEP_STATUS_SUCCESS,
       "%s: pkiStatus SUCCESS", what);
    ok(!reply->has_failinfo, "%s: no failInfo", what);
    ok(bytes_eq(reply->transid, transid, strlen(transid)),
       "%s: reply transactionID", what);
    ok(bytes_eq(reply->recipient_nonce, nonce, NONCE_LEN),
       "%s: recipientNonce == request senderNonce", what);
    ok(reply->sender_nonce.len == NONCE_LEN
       && !bytes_eq(reply->sender_nonce, nonce, NONCE_LEN),
       "%s: fresh 16-byte senderNonce", what);
    is_int(reply->digest_nid, EVP_MD_get_type(md),
           "%s: reply digest is the request's", what);
    ok(reply->signer && X509_cmp(reply->signer, pki->ra_cert) == 0,
       "%s: reply signed by the RA", what);
    rv = scep_msg_decrypt(p, reply, pki->client_key, pki->client_cert, &o);
    if (is_err(rv, SCEP_OK, "%s: client decrypts the CertRep", what)) {
        is_int(reply->cipher_nid, EVP_CIPHER_get_nid(cipher),
               "%s: reply cipher is the request's", what);
        ok(reply->certs && sk_X509_num(reply->certs) >= 1
           && X509_cmp(sk_X509_value(reply->certs, 0), issued) == 0,
           "%s: issued certificate first in the reply", what);
    }
    if (c == &ciphers[0] && d == &digests[1]) {
        check_reply_signerinfo(p, rep, replen, what);
    }
    apr_pool_destroy(p);
}

static void test_roundtrips(void)
{
    size_t i, j;

    for (i = 0; i < sizeof(ciphers) / sizeof(ciphers[0]); i++) {
        if (ciphers[i].des && !have_des) {
            skip(1, "single DES: scep_msg_enable_des() failed");
            continue;
        }
        for (j = 0; j < sizeof(digests) / sizeof(digests[0]); j++) {
            roundtrip(&ciphers[i], &digests[j]);
        }
    }
}

/* A request with cipher/md read with options o: expect exp. */
static void policy_case(const EVP_CIPHER *cipher, const EVP_MD *md,
                        const scep_msg_opts_t *o, scep_err_e exp,
                        const char *name)
{
    apr_pool_t *p;
    unsigned char *csr, *req;
    apr_size_t csrlen, reqlen;
    scep_msg_t *msg;
    scep_err_e rv;

    apr_pool_create(&p, root);
    csr = csr_der(p, pki->client_key, "/CN=policy", &csrlen);
    rv = scep_msg_request(p, SCEP_MT_PKCSREQ, "POLICY", csr, csrlen,
                          pki->ra_cert, cipher, &client_signer, md, NULL,
                          &req, &reqlen);
    if (is_err(rv, SCEP_OK, "%s: build", name)) {
        rv = read_msg(p, req, reqlen, o, pki->ra_key, pki->ra_cert, &msg);
        is_err(rv, exp, "%s", name);
    }
    apr_pool_destroy(p);
}

static void test_policy(void)
{
    scep_msg_opts_t strict = { 0, 0, 0 };
    scep_msg_opts_t des_on = { 1, 1, 0 };
    scep_msg_opts_t des_off = { 0, 1, 0 };

    policy_case(EVP_aes_128_cbc(), EVP_sha1(), &strict, SCEP_E_DIGEST,
                "SHA-1 refused when allow_legacy=0");
    policy_case(EVP_des_ede3_cbc(), EVP_sha256(), &strict, SCEP_E_CIPHER,
                "DES3 refused when allow_legacy=0");
    policy_case(EVP_aes_256_cbc(), EVP_sha512(), &strict, SCEP_OK,
                "AES-256/SHA-512 accepted when allow_legacy=0");
    policy_case(EVP_aes_128_cbc(), EVP_md5(), &des_on, SCEP_E_DIGEST,
                "MD5 refused even with every legacy switch on");
    policy_case(EVP_camellia_128_cbc(), EVP_sha256(), &des_off,
                SCEP_E_CIPHER, "Camellia content cipher refused");
    if (have_des) {
        policy_case(EVP_des_cbc(), EVP_sha256(), &des_off, SCEP_E_CIPHER,
                    "single DES refused when allow_des=0");
        policy_case(EVP_des_cbc(), EVP_sha1(), &des_on, SCEP_OK,
                    "single DES accepted when allow_des=1");
    }
    else {
        skip(4, "single DES: scep_msg_enable_des() failed");
    }
}

/* CertRep PENDING and FAILURE to a real request. */
static void test_pending_failure(void)
{
    apr_pool_t *p;
    unsigned char nonce[NONCE_LEN];
    unsigned char *csr, *req, *rep;
    apr_size_t csrlen, reqlen, replen;
    scep_msg_t *msg, *reply;
    scep_err_e rv;
    int f;

    apr_pool_create(&p, root);
    csr = csr_der(p, pki->client_key, "/CN=pending", &csrlen);
    rv = scep_msg_request(p, SCEP_MT_PKCSREQ, "PENDING-1", csr, csrlen,
                          pki->ra_cert, EVP_aes_256_cbc(), &client_signer,
                          EVP_sha384(), nonce, &req, &reqlen);
    if (!is_err(rv, SCEP_OK, "PENDING: request")
        || !is_err(server_read(p, req, reqlen, &msg), SCEP_OK,
                   "PENDING: server reads the request")) {
        apr_pool_destroy(p);
        return;
    }

    rv = scep_msg_certrep(p, msg, SCEP_STATUS_PENDING, 0, NULL, NULL,
                          &ra_signer, EVP_sha256(), &rep, &replen);
    if (is_err(rv, SCEP_OK, "PENDING: scep_msg_certrep")) {
        rv = scep_msg_parse(p, rep, replen, &opts_default, &reply);
        if (is_err(rv, SCEP_OK, "PENDING: client parses") && reply) {
            is_int(reply->type, SCEP_MT_CERTREP, "PENDING: CertRep");
            ok(reply->has_status && reply->status == SCEP_STATUS_PENDING,
               "PENDING: pkiStatus PENDING");
            ok(!reply->has_failinfo, "PENDING: no failInfo");
            is_int(reply->envelope.len, 0, "PENDING: no envelope");
            ok(bytes_eq(reply->recipient_nonce, nonce, NONCE_LEN),
               "PENDING: recipientNonce");
            ok(bytes_eq(reply->transid, "PENDING-1", 9),
               "PENDING: transactionID");
            is_int(reply->digest_nid, NID_sha384,
                   "PENDING: digest is the request's");
        }
    }

    for (f = SCEP_FAIL_BADALG; f <= SCEP_FAIL_BADCERTID; f++) {
        const char *fname = scep_failinfo_name((scep_failinfo_e)f);

        rv = scep_msg_certrep(p, msg, SCEP_STATUS_FAILURE,
                              (scep_failinfo_e)f, NULL, NULL, &ra_signer,
                              EVP_sha256(), &rep, &replen);
        if (!is_err(rv, SCEP_OK, "FAILURE %s: scep_msg_certrep", fname)) {
            continue;
        }
        rv = scep_msg_parse(p, rep, replen, &opts_default, &reply);
        if (is_err(rv, SCEP_OK, "FAILURE %s: client parses", fname)
            && reply) {
            ok(reply->has_status && reply->status == SCEP_STATUS_FAILURE,
               "FAILURE %s: pkiStatus FAILURE", fname);
            ok(reply->has_failinfo && (int)reply->failinfo == f,
               "FAILURE %s: failInfo %d", fname, f);
            is_int(reply->envelope.len, 0, "FAILURE %s: no envelope",
                   fname);
            ok(bytes_eq(reply->recipient_nonce, nonce, NONCE_LEN),
               "FAILURE %s: recipientNonce", fname);
        }
    }

    /* arguments the builder must refuse */
    ok(scep_msg_certrep(p, msg, SCEP_STATUS_SUCCESS, 0, NULL, NULL,
                        &ra_signer, EVP_sha256(), &rep, &replen) != SCEP_OK,
       "SUCCESS without certificates or CRL is refused");
    drain_ossl(0);
    ok(scep_msg_certrep(p, NULL, SCEP_STATUS_PENDING, 0, NULL, NULL,
                        &ra_signer, EVP_sha256(), &rep, &replen) != SCEP_OK,
       "PENDING without a request is refused");
    drain_ossl(0);
    rv = scep_msg_certrep(p, NULL, SCEP_STATUS_FAILURE,
                          SCEP_FAIL_BADMESSAGECHECK, NULL, NULL, &ra_signer,
                          EVP_sha256(), &rep, &replen);
    if (is_err(rv, SCEP_OK, "FAILURE without a request builds")) {
        ok(der_to_cms(p, rep, replen) != NULL,
           "FAILURE without a request is a CMS message");
    }
    apr_pool_destroy(p);
}

/* GetCert, GetCRL, CertPoll and RenewalReq, and their replies. */
static void test_other_types(void)
{
    apr_pool_t *p;
    unsigned char nonce[NONCE_LEN];
    unsigned char *data, *req, *rep, *csr;
    apr_size_t len, reqlen, replen, csrlen;
    scep_msg_t *msg = NULL, *reply;
    ASN1_INTEGER *serial;
    BIGNUM *bn = NULL;
    X509_NAME *subj;
    X509_CRL *crl;
    X509 *issued;
    testpki_certspec_t spec;
    scep_signer_t renewer;
    scep_err_e rv;
    int i;

    apr_pool_create(&p, root);

    /* a 20-byte serial number, as CAs issue them */
    serial = ASN1_INTEGER_new();
    BN_hex2bn(&bn, "7A3D5C1E9F00112233445566778899AABBCCDDEE");
    BN_to_ASN1_INTEGER(bn, serial);
    BN_free(bn);

    rv = scep_msg_issuer_and_serial(p, X509_get_subject_name(pki->ca_cert),
                                    serial, &data, &len);
    if (is_err(rv, SCEP_OK, "scep_msg_issuer_and_serial")) {
        const unsigned char *q = data;
        PKCS7_ISSUER_AND_SERIAL *ias =
            d2i_PKCS7_ISSUER_AND_SERIAL(NULL, &q, (long)len);

        ok(ias && q == data + len
           && name_eq(ias->issuer, X509_get_subject_name(pki->ca_cert))
           && ASN1_INTEGER_cmp(ias->serial, serial) == 0,
           "IssuerAndSerialNumber DER decodes to what was put in");
        PKCS7_ISSUER_AND_SERIAL_free(ias);

        for (i = 0; i < 2; i++) {
            scep_msgtype_e t = i ? SCEP_MT_GETCRL : SCEP_MT_GETCERT;
            const char *tn = i ? "GetCRL" : "GetCert";

            rv = scep_msg_request(p, t, "GET-1", data, len, pki->ra_cert,
                                  EVP_aes_128_cbc(), &client_signer,
                                  EVP_sha256(), nonce, &req, &reqlen);
            if (!is_err(rv, SCEP_OK, "%s: request", tn)) {
                continue;
            }
            rv = server_read(p, req, reqlen, &msg);
            if (is_err(rv, SCEP_OK, "%s: server reads", tn)) {
                is_int(msg->type, t, "%s: messageType", tn);
                ok(name_eq(msg->issuer,
                           X509_get_subject_name(pki->ca_cert)),
                   "%s: issuer decoded", tn);
                ok(msg->serial && ASN1_INTEGER_cmp(msg->serial, serial) == 0,
                   "%s: serial decoded", tn);
            }
        }
    }

    /* the reply to GetCRL carries a CRL */
    crl = testpki_crl(p, pki->ca_cert, pki->ca_key, 1234);
    if (msg && msg->type == SCEP_MT_GETCRL && crl) {
        rv = scep_msg_certrep(p, msg, SCEP_STATUS_SUCCESS, 0, NULL, crl,
                              &ra_signer, EVP_sha256(), &rep, &replen);
        if (is_err(rv, SCEP_OK, "GetCRL: CertRep with a CRL")) {
            rv = client_read(p, rep, replen, NULL, &reply);
            if (is_err(rv, SCEP_OK, "GetCRL: client reads the CRL reply")) {
                ok(reply->crls && sk_X509_CRL_num(reply->crls) == 1
                   && crl_eq(sk_X509_CRL_value(reply->crls, 0), crl),
                   "GetCRL: the CRL is in the reply");
            }
        }
    }
    ASN1_INTEGER_free(serial);

    /* CertPoll */
    subj = testpki_name(p, "/O=mod_scep test/CN=polling client");
    rv = scep_msg_issuer_and_subject(p, X509_get_subject_name(pki->ca_cert),
                                     subj, &data, &len);
    if (is_err(rv, SCEP_OK, "scep_msg_issuer_and_subject")) {
        rv = scep_msg_request(p, SCEP_MT_CERTPOLL, "POLL-1", data, len,
                              pki->ra_cert, EVP_aes_192_cbc(),
                              &client_signer, EVP_sha512(), nonce, &req,
                              &reqlen);
        if (is_err(rv, SCEP_OK, "CertPoll: request")) {
            rv = server_read(p, req, reqlen, &msg);
            if (is_err(rv, SCEP_OK, "CertPoll: server reads")) {
                is_int(msg->type, SCEP_MT_CERTPOLL, "CertPoll: messageType");
                ok(name_eq(msg->issuer,
                           X509_get_subject_name(pki->ca_cert)),
                   "CertPoll: issuer decoded");
                ok(name_eq(msg->subject, subj), "CertPoll: subject decoded");
            }
        }
    }

    /* RenewalReq signed with a certificate the CA issued */
    memset(&spec, 0, sizeof(spec));
    spec.subject = "/O=mod_scep test/CN=renewing client";
    spec.key = pki->client_key;
    spec.issuer = pki->ca_cert;
    spec.issuer_key = pki->ca_key;
    spec.ku = KU_DIGITAL_SIGNATURE | KU_KEY_ENCIPHERMENT;
    issued = testpki_cert(p, &spec);
    renewer.cert = issued;
    renewer.key = pki->client_key;
    csr = csr_der(p, pki->client_key, spec.subject, &csrlen);
    rv = scep_msg_request(p, SCEP_MT_RENEWALREQ, "RENEW-1", csr, csrlen,
                          pki->ra_cert, EVP_aes_128_cbc(), &renewer,
                          EVP_sha256(), nonce, &req, &reqlen);
    if (is_err(rv, SCEP_OK, "RenewalReq: request")) {
        rv = server_read(p, req, reqlen, &msg);
        if (is_err(rv, SCEP_OK, "RenewalReq: server reads")) {
            is_int(msg->type, SCEP_MT_RENEWALREQ, "RenewalReq: messageType");
            ok(msg->signer && X509_cmp(msg->signer, issued) == 0,
               "RenewalReq: signer is the old certificate");
            ok(msg->csr != NULL, "RenewalReq: CSR decoded");
            /* the reply goes to the old certificate's key */
            rv = scep_msg_certrep(p, msg, SCEP_STATUS_SUCCESS, 0,
                                  testpki_stack(p, issued, NULL), NULL,
                                  &ra_signer, EVP_sha256(), &rep, &replen);
            if (is_err(rv, SCEP_OK, "RenewalReq: CertRep")) {
                rv = read_msg(p, rep, replen, &opts_default,
                              pki->client_key, issued, &reply);
                is_err(rv, SCEP_OK,
                       "RenewalReq: reply decrypts with the old cert");
            }
        }
    }
    apr_pool_destroy(p);
}

/* RSA-PSS signed request (strongSwan --rsa-padding pss). */
static void test_pss(void)
{
    apr_pool_t *p;
    msgspec_t s;
    unsigned char *der, *rep;
    apr_size_t len, replen;
    scep_msg_t *msg;
    scep_err_e rv;

    apr_pool_create(&p, root);
    spec_pkcsreq(p, &s);
    s.pss = 1;
    der = build(p, &s, &len);
    if (!ok(der != NULL, "RSA-PSS: build")) {
        apr_pool_destroy(p);
        return;
    }
    {
        /* make sure the test really signed with PSS */
        CMS_ContentInfo *cms = der_to_cms(p, der, len);
        X509_ALGOR *sig = NULL;
        const ASN1_OBJECT *obj = NULL;

        if (cms) {
            CMS_SignerInfo_get0_algs(
                sk_CMS_SignerInfo_value(CMS_get0_SignerInfos(cms), 0), NULL,
                NULL, NULL, &sig);
            X509_ALGOR_get0(&obj, NULL, NULL, sig);
        }
        is_int(obj ? OBJ_obj2nid(obj) : 0, NID_rsassaPss,
               "RSA-PSS: test message is signed with RSASSA-PSS");
    }
    rv = server_read(p, der, len, &msg);
    if (is_err(rv, SCEP_OK, "RSA-PSS signer accepted")) {
        ok(msg->csr != NULL, "RSA-PSS: CSR decoded");
        rv = scep_msg_certrep(p, msg, SCEP_STATUS_PENDING, 0, NULL, NULL,
                              &ra_signer, EVP_sha256(), &rep, &replen);
        if (is_err(rv, SCEP_OK, "RSA-PSS: reply")) {
            check_reply_signerinfo(p, rep, replen, "RSA-PSS");
        }
    }
    apr_pool_destroy(p);
}

/* Valid variants real clients produce. */
static void test_variants(void)
{
    apr_pool_t *p;
    msgspec_t s;
    unsigned char *csr, *der;
    apr_size_t csrlen, envlen, len;
    scep_msg_t *msg;
    scep_err_e rv;
    EVP_PKEY *ec = testpki_ec_key();
    testpki_certspec_t cs;
    X509 *ec_cert;

    apr_pool_create(&p, root);
    csr = csr_der(p, pki->client_key, "/CN=variant", &csrlen);

    spec_pkcsreq(p, &s);
    s.keyid = 1;
    expect_server(p, &s, SCEP_OK, "signer identified by subjectKeyIdentifier");

    spec_pkcsreq(p, &s);
    s.content = envelope_ex(p, csr, csrlen,
                            testpki_stack(p, pki->ra_cert, NULL),
                            EVP_aes_128_cbc(), ENV_OAEP, &envlen);
    s.content_len = envlen;
    expect_server(p, &s, SCEP_OK, "RSAES-OAEP key transport");

    spec_pkcsreq(p, &s);
    s.content = envelope_ex(p, csr, csrlen,
                            testpki_stack(p, pki->other_cert, pki->ra_cert,
                                          NULL),
                            EVP_aes_128_cbc(), 0, &envlen);
    s.content_len = envlen;
    expect_server(p, &s, SCEP_OK, "envelope with two recipients, ours second");

    spec_pkcsreq(p, &s);
    s.content = envelope_ex(p, csr, csrlen,
                            testpki_stack(p, pki->ra_cert, NULL),
                            EVP_aes_128_cbc(), ENV_KEYID, &envlen);
    s.content_len = envlen;
    expect_server(p, &s, SCEP_OK,
                  "recipient identified by subjectKeyIdentifier");

    /* an ECDSA self-signed signer and an EC key in the CSR */
    memset(&cs, 0, sizeof(cs));
    cs.subject = "/CN=EC SIGNER";
    cs.key = ec;
    ec_cert = ec ? testpki_cert(p, &cs) : NULL;
    if (ec_cert) {
        scep_signer_t ecs;

        ecs.cert = ec_cert;
        ecs.key = ec;
        csr = csr_der(p, ec, "/CN=EC client", &csrlen);
        rv = scep_msg_request(p, SCEP_MT_PKCSREQ, "EC-1", csr, csrlen,
                              pki->ra_cert, EVP_aes_128_cbc(), &ecs,
                              EVP_sha256(), NULL, &der, &len);
        if (is_err(rv, SCEP_OK, "ECDSA signer: request")) {
            rv = server_read(p, der, len, &msg);
            if (is_err(rv, SCEP_OK, "ECDSA signer, EC CSR accepted")) {
                ok(msg->csr && EVP_PKEY_eq(X509_REQ_get0_pubkey(msg->csr),
                                           ec) == 1,
                   "ECDSA signer: the CSR carries the EC key");
            }
        }
    }
    apr_pool_destroy(p);
}

/* BER input. */
static void test_ber(void)
{
    apr_pool_t *p;
    msgspec_t s;
    unsigned char *csr, *der, *ber;
    apr_size_t csrlen, len, berlen, envlen;
    unsigned char nonce[NONCE_LEN];
    scep_msg_t *msg;
    scep_err_e rv;
    static const apr_size_t chunks[] = { 1000, 64, 1 };
    size_t i;

    apr_pool_create(&p, root);

    /* OpenSSL's streaming encoder: indefinite lengths throughout, the
     * envelope streamed too */
    memset(&s, 0, sizeof(s));
    csr = csr_der(p, pki->client_key, "/CN=ber client", &csrlen);
    s.msgtype = "19";
    s.transid = "BER-1";
    s.nonce = nonce_a;
    s.nonce_len = NONCE_LEN;
    s.content = envelope(p, csr, csrlen, pki->ra_cert, EVP_aes_128_cbc(), 1,
                         0, &envlen);
    s.content_len = envlen;
    s.stream = 1;
    ok(s.content && envlen > 2 && s.content[1] == 0x80,
       "BER: the streamed envelope has an indefinite length");
    der = build(p, &s, &len);
    if (ok(der && len > 2 && der[1] == 0x80,
           "BER: streamed message has an indefinite length")) {
        rv = server_read(p, der, len, &msg);
        if (is_err(rv, SCEP_OK, "BER: streamed message accepted")) {
            ok(msg->csr && name_eq(X509_REQ_get_subject_name(msg->csr),
                                   testpki_name(p, "/CN=ber client")),
               "BER: CSR decoded");
            ok(bytes_eq(msg->transid, "BER-1", 5), "BER: transactionID");
        }
    }

    /* Intune/Windows: eContent as a constructed OCTET STRING in chunks */
    rv = scep_msg_request(p, SCEP_MT_PKCSREQ, "BER-2", csr, csrlen,
                          pki->ra_cert, EVP_aes_256_cbc(), &client_signer,
                          EVP_sha256(), nonce, &der, &len);
    if (is_err(rv, SCEP_OK, "BER: DER request to convert")) {
        for (i = 0; i < sizeof(chunks) / sizeof(chunks[0]); i++) {
            ber = to_ber(p, der, len, chunks[i], &berlen);
            rv = server_read(p, ber, berlen, &msg);
            if (is_err(rv, SCEP_OK,
                       "BER: indefinite lengths, %d-byte OCTET STRING chunks",
                       (int)chunks[i])) {
                ok(bytes_eq(msg->sender_nonce, nonce, NONCE_LEN),
                   "BER (%d-byte chunks): senderNonce", (int)chunks[i]);
            }
        }
    }
    apr_pool_destroy(p);
}

/* scep_msg_certs_only and scep_msg_sign_data. */
static void test_certs_only_sign_data(void)
{
    apr_pool_t *p;
    unsigned char *out;
    apr_size_t outlen;
    scep_err_e rv;
    X509_CRL *crl;
    STACK_OF(X509) *certs;
    static const unsigned char payload[] = "GetNextCACert payload";

    apr_pool_create(&p, root);
    certs = testpki_stack(p, pki->ra_cert, pki->ca_cert, NULL);
    crl = testpki_crl(p, pki->ca_cert, pki->ca_key, 99);

    rv = scep_msg_certs_only(p, certs, NULL, &out, &outlen);
    if (is_err(rv, SCEP_OK, "scep_msg_certs_only(RA, CA)")) {
        const unsigned char *q = out;
        PKCS7 *p7 = d2i_PKCS7(NULL, &q, (long)outlen);
        tlv_t ci, c0, sd, encap;

        ok(p7 && PKCS7_type_is_signed(p7), "certs-only: PKCS7 signedData");
        if (p7 && PKCS7_type_is_signed(p7)) {
            STACK_OF(X509) *got = p7->d.sign->cert;

            ok(got && sk_X509_num(got) == 2
               && X509_cmp(sk_X509_value(got, 0), pki->ra_cert) == 0
               && X509_cmp(sk_X509_value(got, 1), pki->ca_cert) == 0,
               "certs-only: RA then CA certificate");
            is_int(sk_PKCS7_SIGNER_INFO_num(p7->d.sign->signer_info), 0,
                   "certs-only: no SignerInfo");
            ok(p7->d.sign->contents
               && PKCS7_type_is_data(p7->d.sign->contents)
               && p7->d.sign->contents->d.data == NULL,
               "certs-only: eContentType data, no eContent");
        }
        PKCS7_free(p7);
        /* the encapContentInfo must hold only the OID: no empty [0] */
        ok(tlv_get(out, outlen, &ci) && tlv_child(&ci, 1, &c0)
           && tlv_child(&c0, 0, &sd) && tlv_child(&sd, 2, &encap)
           && tlv_count(&encap) == 1,
           "certs-only: encapContentInfo has no [0] eContent at all");
        ok(der_to_cms(p, out, outlen) != NULL, "certs-only: d2i_CMS");
    }
    drain_ossl(0);

    rv = scep_msg_certs_only(p, certs, crl, &out, &outlen);
    if (is_err(rv, SCEP_OK, "scep_msg_certs_only(certs, CRL)")) {
        const unsigned char *q = out;
        PKCS7 *p7 = d2i_PKCS7(NULL, &q, (long)outlen);

        ok(p7 && PKCS7_type_is_signed(p7) && p7->d.sign->crl
           && sk_X509_CRL_num(p7->d.sign->crl) == 1
           && X509_CRL_cmp(sk_X509_CRL_value(p7->d.sign->crl, 0), crl) == 0,
           "certs-only: the CRL is in it");
        PKCS7_free(p7);
    }

    rv = scep_msg_sign_data(p, payload, sizeof(payload), pki->ra_cert,
                            pki->ra_key, EVP_sha256(), &out, &outlen);
    if (is_err(rv, SCEP_OK, "scep_msg_sign_data")) {
        CMS_ContentInfo *cms = der_to_cms(p, out, outlen);
        BIO *data = BIO_new(BIO_s_mem());
        char *got = NULL;
        long n = 0;
        int verified;

        ok(cms && OBJ_obj2nid(CMS_get0_type(cms)) == NID_pkcs7_signed,
           "sign_data: CMS signedData");
        verified = cms
            && CMS_verify(cms, NULL, NULL, NULL, data,
                          CMS_NO_SIGNER_CERT_VERIFY | CMS_BINARY) == 1;
        ok(verified, "sign_data: signature verifies");
        if (verified) {
            n = BIO_get_mem_data(data, &got);
        }
        ok(n == (long)sizeof(payload) && memcmp(got, payload, n) == 0,
           "sign_data: content is the data");
        if (cms) {
            STACK_OF(X509) *signers = CMS_get0_signers(cms);

            ok(signers && sk_X509_num(signers) == 1
               && X509_cmp(sk_X509_value(signers, 0), pki->ra_cert) == 0,
               "sign_data: one signer, the RA");
            sk_X509_free(signers);
        }
        BIO_free(data);
    }
    drain_ossl(0);
    apr_pool_destroy(p);
}

static void test_key_transid(void)
{
    apr_pool_t *p;
    const char *a, *b, *c;
    unsigned char *spki = NULL, md[32];
    unsigned int mdlen = 0;
    int n, i, hex = 1;

    apr_pool_create(&p, root);
    a = scep_msg_key_transid(p, pki->client_key);
    b = scep_msg_key_transid(p, pki->client_key);
    c = scep_msg_key_transid(p, pki->other_key);
    if (!ok(a && b && c, "scep_msg_key_transid returns strings")) {
        apr_pool_destroy(p);
        return;
    }
    is_int(strlen(a), 64, "key transactionID is 64 characters");
    for (i = 0; a[i]; i++) {
        if (!isxdigit((unsigned char)a[i])) {
            hex = 0;
        }
    }
    ok(hex, "key transactionID is hex");
    is_str(a, b, "key transactionID is stable for the same key");
    ok(strcmp(a, c) != 0, "another key gives another transactionID");
    n = i2d_PUBKEY(pki->client_key, &spki);
    if (n > 0 && EVP_Digest(spki, n, md, &mdlen, EVP_sha256(), NULL)) {
        ok(strcasecmp(a, testpki_hex(p, md, mdlen)) == 0,
           "key transactionID is SHA-256 of the SubjectPublicKeyInfo");
    }
    OPENSSL_free(spki);
    apr_pool_destroy(p);
}

static void test_names(void)
{
    apr_pool_t *p;
    int i, j, distinct = 1, nonempty = 1;
    const char *s;
    static const char *const failnames[] = {
        "badAlg", "badMessageCheck", "badRequest", "badTime", "badCertId"
    };

    for (i = 0; i <= SCEP_E_ARG; i++) {
        s = scep_msg_strerror((scep_err_e)i);
        if (s == NULL || *s == '\0') {
            nonempty = 0;
            diag("scep_msg_strerror(%s) is empty", errname(i));
            continue;
        }
        for (j = 0; j < i; j++) {
            const char *t = scep_msg_strerror((scep_err_e)j);

            if (t && strcmp(s, t) == 0) {
                distinct = 0;
                diag("%s and %s have the same text '%s'", errname(i),
                     errname(j), s);
            }
        }
    }
    ok(nonempty, "scep_msg_strerror has a text for every code");
    ok(distinct, "scep_msg_strerror texts are distinct");
    s = scep_msg_strerror((scep_err_e)999);
    ok(s != NULL, "scep_msg_strerror of an unknown code is not NULL");

    for (i = 0; i < 5; i++) {
        is_str(scep_failinfo_name((scep_failinfo_e)i), failnames[i],
               "scep_failinfo_name(%d)", i);
    }
    ok(scep_failinfo_name((scep_failinfo_e)77) != NULL,
       "scep_failinfo_name of an unknown value is not NULL");
    is_str(scep_msgtype_name(SCEP_MT_PKCSREQ), "PKCSReq",
           "scep_msgtype_name(PKCSReq)");
    is_str(scep_msgtype_name(SCEP_MT_CERTREP), "CertRep",
           "scep_msgtype_name(CertRep)");
    is_str(scep_msgtype_name(SCEP_MT_RENEWALREQ), "RenewalReq",
           "scep_msgtype_name(RenewalReq)");
    s = scep_msgtype_name(SCEP_MT_CERTPOLL);
    ok(s && (strcmp(s, "CertPoll") == 0 || strcmp(s, "GetCertInitial") == 0),
       "scep_msgtype_name(CertPoll)");
    is_str(scep_msgtype_name(SCEP_MT_GETCERT), "GetCert",
           "scep_msgtype_name(GetCert)");
    is_str(scep_msgtype_name(SCEP_MT_GETCRL), "GetCRL",
           "scep_msgtype_name(GetCRL)");
    ok(scep_msgtype_name((scep_msgtype_e)99) != NULL,
       "scep_msgtype_name of an unknown value is not NULL");

    apr_pool_create(&p, root);
    ERR_clear_error();
    ERR_raise(ERR_LIB_CMS, CMS_R_NO_CONTENT);
    s = scep_msg_ossl_errors(p);
    ok(s && *s, "scep_msg_ossl_errors reports a queued error");
    ok(ERR_peek_error() == 0, "scep_msg_ossl_errors drains the queue");
    s = scep_msg_ossl_errors(p);
    is_str(s, "", "scep_msg_ossl_errors is empty with nothing queued");
    apr_pool_destroy(p);
}

/* ------------------------------------------------------------------ */
/* Malformed input                                                     */

static void test_malformed_bytes(void)
{
    apr_pool_t *p;
    unsigned char *der;
    apr_size_t len;
    scep_msg_t *msg;
    scep_msg_opts_t o = opts_default;
    unsigned char garbage[200];
    unsigned char *csr, *reqder;
    apr_size_t csrlen, reqlen;
    msgspec_t s;
    unsigned int seed = 12345;
    size_t i;
    static const unsigned char huge1[] = {
        0x30, 0x84, 0xff, 0xff, 0xff, 0xff, 0x06, 0x09, 0x2a, 0x86, 0x48,
        0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02, 0xa0, 0x80
    };
    static const unsigned char huge2[] = {
        0x30, 0x88, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x06,
        0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02
    };
    static const unsigned char huge3[] = {
        /* ContentInfo fine, SignedData claims 2^31 bytes */
        0x30, 0x13, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01,
        0x07, 0x02, 0xa0, 0x06, 0x30, 0x84, 0x7f, 0xff, 0xff, 0xff
    };
    static const unsigned char unterminated[] = {
        0x30, 0x80, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01,
        0x07, 0x02, 0xa0, 0x80, 0x30, 0x80, 0x02, 0x01, 0x01
    };
    static const char text[] = "operation=PKIOperation&message=hello";

    apr_pool_create(&p, root);

    is_err(scep_msg_parse(p, (const unsigned char *)"", 0, &o, &msg),
           SCEP_E_EMPTY, "empty input");
    is_err(scep_msg_parse(p, NULL, 0, &o, &msg), SCEP_E_EMPTY,
           "NULL input");

    csr = csr_der(p, pki->client_key, "/CN=sizes", &csrlen);
    if (is_err(scep_msg_request(p, SCEP_MT_PKCSREQ, "SIZE-1", csr, csrlen,
                                pki->ra_cert, EVP_aes_128_cbc(),
                                &client_signer, EVP_sha256(), NULL, &reqder,
                                &reqlen),
               SCEP_OK, "valid request for the size tests")) {
        o.max_size = reqlen - 1;
        is_err(scep_msg_parse(p, reqder, reqlen, &o, &msg), SCEP_E_TOO_LARGE,
               "one byte over max_size");
        o.max_size = reqlen;
        is_err(scep_msg_parse(p, reqder, reqlen, &o, &msg), SCEP_OK,
               "exactly max_size is accepted");
        o.max_size = 0;

        {
            apr_size_t cuts[] = { 1, 2, 10, 100, reqlen / 2, reqlen - 1 };

            for (i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
                is_err(scep_msg_parse(p, reqder, cuts[i], &o, &msg),
                       SCEP_E_ASN1, "truncated to %d of %d bytes",
                       (int)cuts[i], (int)reqlen);
            }
        }
    }

    for (i = 0; i < sizeof(garbage); i++) {
        seed = seed * 1103515245u + 12345u;
        garbage[i] = (unsigned char)(seed >> 16);
    }
    garbage[0] = 0x5c;
    is_err(scep_msg_parse(p, garbage, sizeof(garbage), &o, &msg),
           SCEP_E_ASN1, "garbage bytes");
    garbage[0] = 0x30;
    garbage[1] = 0x81;
    garbage[2] = (unsigned char)(sizeof(garbage) - 3);
    is_err(scep_msg_parse(p, garbage, sizeof(garbage), &o, &msg),
           SCEP_E_ASN1, "a SEQUENCE of garbage");
    is_err(scep_msg_parse(p, (const unsigned char *)text, strlen(text), &o,
                          &msg),
           SCEP_E_ASN1, "text");
    is_err(scep_msg_parse(p, huge1, sizeof(huge1), &o, &msg), SCEP_E_ASN1,
           "length field 0x84 ff ff ff ff");
    is_err(scep_msg_parse(p, huge2, sizeof(huge2), &o, &msg), SCEP_E_ASN1,
           "8-byte length field");
    is_err(scep_msg_parse(p, huge3, sizeof(huge3), &o, &msg), SCEP_E_ASN1,
           "inner length 2^31 beyond the input");
    is_err(scep_msg_parse(p, unterminated, sizeof(unterminated), &o, &msg),
           SCEP_E_ASN1, "indefinite length without end-of-contents");

    /* a certificate is DER but not a ContentInfo */
    der = testpki_x509_der(p, pki->client_cert, &len);
    is_err(scep_msg_parse(p, der, len, &o, &msg), SCEP_E_ASN1,
           "a certificate instead of a ContentInfo");

    /* ContentInfo types other than signedData */
    der = envelope(p, csr, csrlen, pki->ra_cert, EVP_aes_128_cbc(), 0, 0,
                   &len);
    is_err(scep_msg_parse(p, der, len, &o, &msg), SCEP_E_NOT_SIGNED,
           "envelopedData at the top");
    {
        BIO *in = BIO_new_mem_buf(csr, (int)csrlen);
        CMS_ContentInfo *cms = CMS_data_create(in, CMS_BINARY);

        der = cms ? cms_to_der(p, cms, &len) : NULL;
        CMS_ContentInfo_free(cms);
        BIO_free(in);
        if (ok(der != NULL, "data ContentInfo built")) {
            is_err(scep_msg_parse(p, der, len, &o, &msg), SCEP_E_NOT_SIGNED,
                   "data ContentInfo at the top");
        }
    }

    /* the builder used below, unmodified */
    spec_pkcsreq(p, &s);
    der = build(p, &s, &len);
    if (ok(der != NULL, "control: hand-built PKCSReq built")) {
        is_err(scep_msg_parse(p, der, len, &o, &msg), SCEP_OK,
               "control: the hand-built PKCSReq parses");
    }
    apr_pool_destroy(p);
}

static void test_malformed_signed(void)
{
    apr_pool_t *p;
    msgspec_t s;
    unsigned char *csr, *der;
    apr_size_t csrlen, envlen, len;
    scep_msg_t *msg;
    scep_err_e rv;
    static const unsigned char nonce8[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };
    static const unsigned char nonce17[17] = { 1 };
    static const char int19[] = "\x13";  /* INTEGER 19's content */

    apr_pool_create(&p, root);

    /* the control: the same builder, nothing wrong */
    spec_pkcsreq(p, &s);
    der = build(p, &s, &len);
    rv = der ? server_read(p, der, len, &msg) : SCEP_E_BUILD;
    if (!is_err(rv, SCEP_OK, "control: hand-built PKCSReq is accepted")) {
        diag("the malformed-message tests below mean little until this "
             "passes");
    }
    else {
        ok(bytes_eq(msg->transid, "MALFORMED-TEST-1", 16)
           && bytes_eq(msg->sender_nonce, nonce_a, NONCE_LEN)
           && msg->csr != NULL,
           "control: fields read from the hand-built PKCSReq");
    }

    /* CMS structure */
    spec_pkcsreq(p, &s);
    s.econtent_oid = "1.2.840.113549.1.7.3";  /* envelopedData */
    expect_server(p, &s, SCEP_E_ECONTENT_TYPE,
                  "eContentType envelopedData instead of data");
    spec_pkcsreq(p, &s);
    s.econtent_oid = "1.2.840.113549.1.9.16.1.4";  /* id-ct-TSTInfo */
    expect_server(p, &s, SCEP_E_ECONTENT_TYPE, "eContentType TSTInfo");

    spec_pkcsreq(p, &s);
    s.second_signer = 1;
    expect_server(p, &s, SCEP_E_SIGNER_COUNT, "two SignerInfos");

    spec_pkcsreq(p, &s);
    s.nocerts = 1;
    expect_server(p, &s, SCEP_E_NO_SIGNER_CERT, "signer certificate missing");

    spec_pkcsreq(p, &s);
    s.md = EVP_md5();
    expect_server(p, &s, SCEP_E_DIGEST, "MD5 digest");

    spec_pkcsreq(p, &s);
    s.tamper_sig = 1;
    expect_server(p, &s, SCEP_E_SIGNATURE, "tampered signature");

    spec_pkcsreq(p, &s);
    s.tamper_content = 1;
    expect_server(p, &s, SCEP_E_SIGNATURE, "tampered signed content");

    {
        /* the certificate carried has the signer's issuer and serial
         * number but another key */
        testpki_certspec_t cs;
        X509 *real, *fake;

        memset(&cs, 0, sizeof(cs));
        cs.subject = TESTPKI_CLIENT_SUBJECT;
        cs.serial = 4242;
        cs.key = pki->client_key;
        real = testpki_cert(p, &cs);
        cs.key = pki->other_key;
        fake = testpki_cert(p, &cs);
        spec_pkcsreq(p, &s);
        s.cert = real;
        s.nocerts = 1;
        s.extra_cert = fake;
        expect_server(p, &s, SCEP_E_SIGNATURE,
                      "signer certificate swapped for one with another key");
    }

    spec_pkcsreq(p, &s);
    s.noattr = 1;
    expect_server(p, &s, SCEP_E_NO_ATTRS, "no signed attributes");

    /* messageType */
    spec_pkcsreq(p, &s);
    s.msgtype = NULL;
    expect_server(p, &s, SCEP_E_MSGTYPE, "messageType missing");
    spec_pkcsreq(p, &s);
    s.msgtype = "99";
    expect_server(p, &s, SCEP_E_MSGTYPE, "messageType 99");
    spec_pkcsreq(p, &s);
    s.msgtype = "0";
    expect_server(p, &s, SCEP_E_MSGTYPE, "messageType 0 (reserved)");
    spec_pkcsreq(p, &s);
    s.msgtype = "PKCSReq";
    expect_server(p, &s, SCEP_E_MSGTYPE, "messageType not numeric");
    spec_pkcsreq(p, &s);
    s.msgtype = "19x";
    expect_server(p, &s, SCEP_E_MSGTYPE, "messageType '19x'");
    spec_pkcsreq(p, &s);
    s.msgtype = "";
    expect_server(p, &s, SCEP_E_MSGTYPE, "messageType empty");
    spec_pkcsreq(p, &s);
    s.msgtype = "-19";
    expect_server(p, &s, SCEP_E_MSGTYPE, "messageType '-19'");
    spec_pkcsreq(p, &s);
    s.msgtype = "4294967315";  /* 2^32 + 19 */
    expect_server(p, &s, SCEP_E_MSGTYPE, "messageType 2^32+19");
    spec_pkcsreq(p, &s);
    s.msgtype = int19;
    s.msgtype_asn1 = V_ASN1_INTEGER;
    expect_server(p, &s, SCEP_E_MSGTYPE, "messageType as INTEGER");
    spec_pkcsreq(p, &s);
    s.msgtype2 = "3";
    expect_server(p, &s, SCEP_E_MSGTYPE, "messageType with two values");
    spec_pkcsreq(p, &s);
    s.msgtype_dup = "3";
    expect_server(p, &s, SCEP_E_MSGTYPE, "two messageType attributes");

    /* transactionID */
    spec_pkcsreq(p, &s);
    s.transid = NULL;
    expect_server(p, &s, SCEP_E_TRANSID, "transactionID missing");
    spec_pkcsreq(p, &s);
    s.transid_asn1 = V_ASN1_OCTET_STRING;
    expect_server(p, &s, SCEP_E_TRANSID, "transactionID as OCTET STRING");
    spec_pkcsreq(p, &s);
    s.transid = "";
    expect_server(p, &s, SCEP_E_TRANSID, "transactionID empty");

    /* senderNonce */
    spec_pkcsreq(p, &s);
    s.nonce = NULL;
    expect_server(p, &s, SCEP_E_SENDER_NONCE, "senderNonce missing");
    spec_pkcsreq(p, &s);
    s.nonce = nonce8;
    s.nonce_len = 8;
    expect_server(p, &s, SCEP_E_SENDER_NONCE, "senderNonce of 8 bytes");
    spec_pkcsreq(p, &s);
    s.nonce = nonce17;
    s.nonce_len = 17;
    expect_server(p, &s, SCEP_E_SENDER_NONCE, "senderNonce of 17 bytes");
    spec_pkcsreq(p, &s);
    s.nonce = (const unsigned char *)"0123456789abcdef";
    s.nonce_asn1 = V_ASN1_PRINTABLESTRING;
    expect_server(p, &s, SCEP_E_SENDER_NONCE,
                  "senderNonce as PrintableString");

    /* content */
    spec_pkcsreq(p, &s);
    s.content = NULL;
    expect_server(p, &s, SCEP_E_NO_CONTENT, "PKCSReq without eContent");
    spec_pkcsreq(p, &s);
    s.content = (const unsigned char *)"";
    s.content_len = 0;
    expect_server(p, &s, SCEP_E_NO_CONTENT, "PKCSReq with empty eContent");
    spec_pkcsreq(p, &s);
    s.msgtype = "21";
    s.content = NULL;
    expect_server(p, &s, SCEP_E_NO_CONTENT, "GetCert without eContent");

    csr = csr_der(p, pki->client_key, "/CN=inner", &csrlen);
    spec_pkcsreq(p, &s);
    s.content = csr;
    s.content_len = csrlen;
    expect_server(p, &s, SCEP_E_NOT_ENVELOPED,
                  "CSR signed without an envelope");
    spec_pkcsreq(p, &s);
    s.content = (const unsigned char *)"hello, world";
    s.content_len = 12;
    expect_server(p, &s, SCEP_E_NOT_ENVELOPED, "eContent is text");
    {
        msgspec_t inner;
        unsigned char *sd;
        apr_size_t sdlen;

        spec_pkcsreq(p, &inner);
        sd = build(p, &inner, &sdlen);
        spec_pkcsreq(p, &s);
        s.content = sd;
        s.content_len = sdlen;
        expect_server(p, &s, SCEP_E_NOT_ENVELOPED,
                      "eContent is a signedData, not envelopedData");
    }

    /* the envelope */
    spec_pkcsreq(p, &s);
    s.content = envelope(p, csr, csrlen, pki->other_cert, EVP_aes_128_cbc(),
                         0, 0, &envlen);
    s.content_len = envlen;
    der = build(p, &s, &len);
    msg = NULL;
    rv = der ? server_read(p, der, len, &msg) : SCEP_E_BUILD;
    is_err(rv, SCEP_E_RECIPIENT, "enveloped to another certificate");
    if (msg) {
        unsigned char *rep;
        apr_size_t replen;
        scep_msg_t *reply;

        /* what the server does then: FAILURE to the sender */
        ok(bytes_eq(msg->transid, "MALFORMED-TEST-1", 16)
           && bytes_eq(msg->sender_nonce, nonce_a, NONCE_LEN),
           "after a decrypt error the transaction is still known");
        rv = scep_msg_certrep(p, msg, SCEP_STATUS_FAILURE,
                              SCEP_FAIL_BADMESSAGECHECK, NULL, NULL,
                              &ra_signer, EVP_sha256(), &rep, &replen);
        if (is_err(rv, SCEP_OK, "FAILURE reply to an undecryptable request")) {
            rv = client_read(p, rep, replen, NULL, &reply);
            if (is_err(rv, SCEP_OK, "client reads that FAILURE")) {
                ok(reply->failinfo == SCEP_FAIL_BADMESSAGECHECK
                   && bytes_eq(reply->recipient_nonce, nonce_a, NONCE_LEN)
                   && bytes_eq(reply->transid, "MALFORMED-TEST-1", 16),
                   "that FAILURE is addressed to the transaction");
            }
        }
    }

    spec_pkcsreq(p, &s);
    s.content = envelope(p, csr, csrlen, pki->ra_cert, EVP_aes_128_cbc(), 0,
                         1, &envlen);
    s.content_len = envlen;
    der = build(p, &s, &len);
    rv = der ? server_read(p, der, len, &msg) : SCEP_E_BUILD;
    is_err(rv, SCEP_E_DECRYPT, "encrypted content with a broken padding");

    spec_pkcsreq(p, &s);
    s.content = envelope(p, csr, csrlen, pki->ra_cert,
                         EVP_camellia_256_cbc(), 0, 0, &envlen);
    s.content_len = envlen;
    expect_server(p, &s, SCEP_E_CIPHER, "envelope with Camellia-256");

    /* messageData */
    spec_pkcsreq(p, &s);
    s.content = envelope(p, (const unsigned char *)"not a CSR", 9,
                         pki->ra_cert, EVP_aes_128_cbc(), 0, 0, &envlen);
    s.content_len = envlen;
    expect_server(p, &s, SCEP_E_INNER, "messageData is not a CSR");
    {
        apr_size_t certlen;
        unsigned char *cert = testpki_x509_der(p, pki->client_cert,
                                               &certlen);

        spec_pkcsreq(p, &s);
        s.content = envelope(p, cert, certlen, pki->ra_cert,
                             EVP_aes_128_cbc(), 0, 0, &envlen);
        s.content_len = envlen;
        expect_server(p, &s, SCEP_E_INNER,
                      "messageData is a certificate, not a CSR");
    }
    {
        unsigned char *trail = apr_palloc(p, csrlen + 3);

        memcpy(trail, csr, csrlen);
        memcpy(trail + csrlen, "\x05\x00\x00", 3);
        spec_pkcsreq(p, &s);
        s.content = envelope(p, trail, csrlen + 3, pki->ra_cert,
                             EVP_aes_128_cbc(), 0, 0, &envlen);
        s.content_len = envlen;
        expect_server(p, &s, SCEP_E_INNER,
                      "messageData is a CSR followed by junk");
    }
    spec_pkcsreq(p, &s);
    s.msgtype = "21";
    s.content = envelope(p, csr, csrlen, pki->ra_cert, EVP_aes_128_cbc(), 0,
                         0, &envlen);
    s.content_len = envlen;
    expect_server(p, &s, SCEP_E_INNER,
                  "GetCert whose messageData is a CSR");
    spec_pkcsreq(p, &s);
    s.msgtype = "20";
    s.content = envelope(p, (const unsigned char *)"\x30\x00", 2,
                         pki->ra_cert, EVP_aes_128_cbc(), 0, 0, &envlen);
    s.content_len = envlen;
    expect_server(p, &s, SCEP_E_INNER,
                  "CertPoll whose messageData is an empty SEQUENCE");
    {
        unsigned char *bad = apr_pmemdup(p, csr, csrlen);

        bad[csrlen - 1] ^= 0x01;  /* the last signature byte */
        spec_pkcsreq(p, &s);
        s.content = envelope(p, bad, csrlen, pki->ra_cert,
                             EVP_aes_128_cbc(), 0, 0, &envlen);
        s.content_len = envlen;
        expect_server(p, &s, SCEP_E_CSR_SIGNATURE,
                      "CSR with a bad self-signature");
    }
    {
        /* a CSR for one key signed by another */
        X509_REQ *req = testpki_csr(p, pki->client_key, "/CN=mismatch",
                                    NULL);
        unsigned char *mis;
        apr_size_t mislen;

        X509_REQ_sign(req, pki->other_key, EVP_sha256());
        mis = testpki_req_der(p, req, &mislen);
        spec_pkcsreq(p, &s);
        s.content = envelope(p, mis, mislen, pki->ra_cert,
                             EVP_aes_128_cbc(), 0, 0, &envlen);
        s.content_len = envlen;
        expect_server(p, &s, SCEP_E_CSR_SIGNATURE,
                      "CSR signed with another key");
    }
    apr_pool_destroy(p);
}

static void test_malformed_replies(void)
{
    apr_pool_t *p;
    msgspec_t s;
    static const unsigned char nonce8[8] = { 9, 9, 9, 9, 9, 9, 9, 9 };
    apr_size_t envlen, certslen;
    unsigned char *certs;

    apr_pool_create(&p, root);

    /* controls */
    spec_certrep(&s, "3");
    expect_client(p, &s, SCEP_OK, "control: hand-built PENDING accepted");
    spec_certrep(&s, "2");
    s.failinfo = "2";
    expect_client(p, &s, SCEP_OK, "control: hand-built FAILURE accepted");
    if (scep_msg_certs_only(p, testpki_stack(p, pki->client_cert, NULL),
                            NULL, &certs, &certslen) == SCEP_OK) {
        spec_certrep(&s, "0");
        s.content = envelope(p, certs, certslen, pki->client_cert,
                             EVP_aes_128_cbc(), 0, 0, &envlen);
        s.content_len = envlen;
        expect_client(p, &s, SCEP_OK, "control: hand-built SUCCESS accepted");
    }
    drain_ossl(0);

    spec_certrep(&s, NULL);
    expect_client(p, &s, SCEP_E_PKISTATUS, "CertRep without pkiStatus");
    spec_certrep(&s, "1");
    expect_client(p, &s, SCEP_E_PKISTATUS, "pkiStatus 1 (undefined)");
    spec_certrep(&s, "SUCCESS");
    expect_client(p, &s, SCEP_E_PKISTATUS, "pkiStatus not numeric");

    spec_certrep(&s, "2");
    expect_client(p, &s, SCEP_E_FAILINFO, "FAILURE without failInfo");
    spec_certrep(&s, "2");
    s.failinfo = "5";
    expect_client(p, &s, SCEP_E_FAILINFO, "failInfo 5 (undefined)");
    spec_certrep(&s, "2");
    s.failinfo = "badRequest";
    expect_client(p, &s, SCEP_E_FAILINFO, "failInfo not numeric");

    spec_certrep(&s, "3");
    s.rnonce = NULL;
    expect_client(p, &s, SCEP_E_RECIPIENT_NONCE,
                  "CertRep without recipientNonce");
    spec_certrep(&s, "3");
    s.rnonce = nonce8;
    s.rnonce_len = 8;
    expect_client(p, &s, SCEP_E_RECIPIENT_NONCE,
                  "recipientNonce of 8 bytes");

    spec_certrep(&s, "3");
    s.content = envelope(p, (const unsigned char *)"x", 1, pki->client_cert,
                         EVP_aes_128_cbc(), 0, 0, &envlen);
    s.content_len = envlen;
    expect_client(p, &s, SCEP_E_UNEXPECTED_CONTENT, "PENDING with content");
    spec_certrep(&s, "2");
    s.failinfo = "0";
    s.content = envelope(p, (const unsigned char *)"x", 1, pki->client_cert,
                         EVP_aes_128_cbc(), 0, 0, &envlen);
    s.content_len = envlen;
    expect_client(p, &s, SCEP_E_UNEXPECTED_CONTENT, "FAILURE with content");

    spec_certrep(&s, "0");
    expect_client(p, &s, SCEP_E_NO_CONTENT, "SUCCESS without content");
    spec_certrep(&s, "0");
    s.content = envelope(p, (const unsigned char *)"not certs", 9,
                         pki->client_cert, EVP_aes_128_cbc(), 0, 0,
                         &envlen);
    s.content_len = envlen;
    expect_client(p, &s, SCEP_E_INNER,
                  "SUCCESS whose messageData is not a certs-only SignedData");
    apr_pool_destroy(p);
}

/* ------------------------------------------------------------------ */

static int make_oids(void)
{
    oid_msgtype = OBJ_txt2obj("2.16.840.1.113733.1.9.2", 1);
    oid_status = OBJ_txt2obj("2.16.840.1.113733.1.9.3", 1);
    oid_failinfo = OBJ_txt2obj("2.16.840.1.113733.1.9.4", 1);
    oid_snonce = OBJ_txt2obj("2.16.840.1.113733.1.9.5", 1);
    oid_rnonce = OBJ_txt2obj("2.16.840.1.113733.1.9.6", 1);
    oid_transid = OBJ_txt2obj("2.16.840.1.113733.1.9.7", 1);
    return oid_msgtype && oid_status && oid_failinfo && oid_snonce
           && oid_rnonce && oid_transid;
}

static void free_oids(void)
{
    ASN1_OBJECT_free(oid_msgtype);
    ASN1_OBJECT_free(oid_status);
    ASN1_OBJECT_free(oid_failinfo);
    ASN1_OBJECT_free(oid_snonce);
    ASN1_OBJECT_free(oid_rnonce);
    ASN1_OBJECT_free(oid_transid);
}

int main(void)
{
    int rc;
    EVP_CIPHER *aes;

    apr_initialize();
    apr_pool_create(&root, NULL);

    /* as httpd would: init and the legacy switch before any crypto */
    is_err(scep_msg_init(), SCEP_OK, "scep_msg_init");
    is_err(scep_msg_init(), SCEP_OK, "scep_msg_init twice");
    have_des = scep_msg_enable_des();
    ok(have_des, "scep_msg_enable_des loads the legacy provider");
    aes = EVP_CIPHER_fetch(NULL, "AES-128-CBC", NULL);
    ok(aes != NULL, "default provider still there after "
       "scep_msg_enable_des");
    EVP_CIPHER_free(aes);
    drain_ossl(0);

    if (!make_oids()) {
        bail_out("cannot make the SCEP OIDs");
    }
    pki = testpki_get();
    if (pki == NULL) {
        testpki_diag_ossl("testpki");
        bail_out("cannot build the test PKI");
    }
    ra_signer.cert = pki->ra_cert;
    ra_signer.key = pki->ra_key;
    client_signer.cert = pki->client_cert;
    client_signer.key = pki->client_key;

    test_names();
    test_roundtrips();
    test_policy();
    test_pending_failure();
    test_other_types();
    test_pss();
    test_variants();
    test_ber();
    test_certs_only_sign_data();
    test_key_transid();
    test_malformed_bytes();
    test_malformed_signed();
    test_malformed_replies();

    rc = done_testing();
    free_oids();
    testpki_cleanup();
    apr_pool_destroy(root);
    apr_terminate();
    return rc;
}
