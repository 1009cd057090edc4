/* Licensed under the Apache License, Version 2.0; see LICENSE. */

/*
 * SCEP message codec (RFC 8894 section 3).  CMS is used for everything
 * that signs, verifies or encrypts; PKCS7 structures only where CMS would
 * lose something SCEP needs: a degenerate certs-only SignedData keeps its
 * certificates in the order given (CMS encodes them as a sorted SET) and
 * the EnvelopedData's content cipher and recipients are readable.
 */

#include <string.h>
#include <limits.h>

#include <apr_strings.h>

#include <openssl/asn1t.h>
#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/pkcs7.h>
#include <openssl/provider.h>
#include <openssl/rand.h>

#include "scep_msg.h"
#include "scep_pool.h"

#define SCEP_NONCE_LEN 16
#define SCEP_TRANSID_MAX 256

/* RFC 8894 3.2.1: the id-attributes arc 2.16.840.1.113733.1.9 */
static int nid_message_type = NID_undef;
static int nid_pki_status = NID_undef;
static int nid_fail_info = NID_undef;
static int nid_sender_nonce = NID_undef;
static int nid_recipient_nonce = NID_undef;
static int nid_transaction_id = NID_undef;

/* IssuerAndSubject (RFC 8894 3.3.3), which OpenSSL does not know. */
typedef struct {
    X509_NAME *issuer;
    X509_NAME *subject;
} SCEP_ISSUER_AND_SUBJECT;

DECLARE_ASN1_FUNCTIONS(SCEP_ISSUER_AND_SUBJECT)
ASN1_SEQUENCE(SCEP_ISSUER_AND_SUBJECT) = {
    ASN1_SIMPLE(SCEP_ISSUER_AND_SUBJECT, issuer, X509_NAME),
    ASN1_SIMPLE(SCEP_ISSUER_AND_SUBJECT, subject, X509_NAME)
} ASN1_SEQUENCE_END(SCEP_ISSUER_AND_SUBJECT)
IMPLEMENT_ASN1_FUNCTIONS(SCEP_ISSUER_AND_SUBJECT)

scep_err_e scep_msg_init(void)
{
    static const struct {
        const char *oid;
        const char *name;
        int *nid;
    } attrs[] = {
        { "2.16.840.1.113733.1.9.2", "scepMessageType", &nid_message_type },
        { "2.16.840.1.113733.1.9.3", "scepPkiStatus", &nid_pki_status },
        { "2.16.840.1.113733.1.9.4", "scepFailInfo", &nid_fail_info },
        { "2.16.840.1.113733.1.9.5", "scepSenderNonce", &nid_sender_nonce },
        { "2.16.840.1.113733.1.9.6", "scepRecipientNonce",
          &nid_recipient_nonce },
        { "2.16.840.1.113733.1.9.7", "scepTransactionID",
          &nid_transaction_id },
    };
    size_t i;

    for (i = 0; i < sizeof(attrs) / sizeof(attrs[0]); i++) {
        int nid = OBJ_txt2nid(attrs[i].oid);
        if (nid == NID_undef) {
            nid = OBJ_create(attrs[i].oid, attrs[i].name, attrs[i].name);
        }
        if (nid == NID_undef) {
            return SCEP_E_NOMEM;
        }
        *attrs[i].nid = nid;
    }
    return SCEP_OK;
}

int scep_msg_enable_des(void)
{
    /* Loading "legacy" alone would hide the default provider. */
    static OSSL_PROVIDER *legacy, *deflt;

    if (!deflt) {
        deflt = OSSL_PROVIDER_load(NULL, "default");
    }
    if (!legacy) {
        legacy = OSSL_PROVIDER_load(NULL, "legacy");
    }
    return legacy != NULL && deflt != NULL;
}

const char *scep_msg_strerror(scep_err_e err)
{
    switch (err) {
    case SCEP_OK: return "no error";
    case SCEP_E_NOMEM: return "out of memory";
    case SCEP_E_EMPTY: return "empty message";
    case SCEP_E_TOO_LARGE: return "message larger than the configured limit";
    case SCEP_E_ASN1: return "not a CMS ContentInfo (bad or truncated ASN.1)";
    case SCEP_E_NOT_SIGNED: return "content type is not signedData";
    case SCEP_E_ECONTENT_TYPE: return "signed content type is not data";
    case SCEP_E_SIGNER_COUNT: return "not exactly one signer";
    case SCEP_E_NO_SIGNER_CERT: return "signer certificate missing";
    case SCEP_E_DIGEST: return "digest algorithm not allowed";
    case SCEP_E_SIGNATURE: return "signature does not verify";
    case SCEP_E_NO_ATTRS: return "no signed attributes";
    case SCEP_E_MSGTYPE: return "messageType missing or invalid";
    case SCEP_E_TRANSID: return "transactionID missing or invalid";
    case SCEP_E_SENDER_NONCE: return "senderNonce missing or invalid";
    case SCEP_E_RECIPIENT_NONCE: return "recipientNonce missing or invalid";
    case SCEP_E_PKISTATUS: return "pkiStatus missing or invalid";
    case SCEP_E_FAILINFO: return "failInfo missing or invalid";
    case SCEP_E_NO_CONTENT: return "message carries no pkcsPKIEnvelope";
    case SCEP_E_UNEXPECTED_CONTENT: return "reply carries unexpected content";
    case SCEP_E_NOT_ENVELOPED: return "signed content is not envelopedData";
    case SCEP_E_CIPHER: return "content encryption algorithm not allowed";
    case SCEP_E_RECIPIENT: return "not encrypted to the RA certificate";
    case SCEP_E_DECRYPT: return "decryption failed";
    case SCEP_E_INNER: return "messageData does not decode";
    case SCEP_E_CSR_SIGNATURE: return "PKCS#10 signature does not verify";
    case SCEP_E_BUILD: return "building the message failed";
    case SCEP_E_ARG: return "invalid argument";
    }
    return "unknown error";
}

const char *scep_msg_ossl_errors(apr_pool_t *p)
{
    const char *all = "";
    unsigned long e;
    char buf[256];

    while ((e = ERR_get_error()) != 0) {
        ERR_error_string_n(e, buf, sizeof(buf));
        all = *all ? apr_pstrcat(p, all, "; ", buf, NULL)
                   : apr_pstrdup(p, buf);
    }
    return all;
}

const char *scep_msgtype_name(scep_msgtype_e t)
{
    switch (t) {
    case SCEP_MT_CERTREP: return "CertRep";
    case SCEP_MT_RENEWALREQ: return "RenewalReq";
    case SCEP_MT_PKCSREQ: return "PKCSReq";
    case SCEP_MT_CERTPOLL: return "CertPoll";
    case SCEP_MT_GETCERT: return "GetCert";
    case SCEP_MT_GETCRL: return "GetCRL";
    case SCEP_MT_NONE: break;
    }
    return "none";
}

const char *scep_failinfo_name(scep_failinfo_e f)
{
    switch (f) {
    case SCEP_FAIL_BADALG: return "badAlg";
    case SCEP_FAIL_BADMESSAGECHECK: return "badMessageCheck";
    case SCEP_FAIL_BADREQUEST: return "badRequest";
    case SCEP_FAIL_BADTIME: return "badTime";
    case SCEP_FAIL_BADCERTID: return "badCertId";
    }
    return "unknown";
}

/* ---- pool ownership of OpenSSL objects ---- */

SCEP_POOL_FREE(CMS_ContentInfo, CMS_ContentInfo_free)
SCEP_POOL_FREE(PKCS7, PKCS7_free)
SCEP_POOL_FREE(X509, X509_free)
SCEP_POOL_FREE(X509_REQ, X509_REQ_free)
SCEP_POOL_FREE(X509_NAME, X509_NAME_free)
SCEP_POOL_FREE(ASN1_INTEGER, ASN1_INTEGER_free)
SCEP_POOL_FREE(BIO, BIO_free)

static apr_status_t free_x509_stack(void *d)
{
    sk_X509_pop_free((STACK_OF(X509) *)d, X509_free);
    return APR_SUCCESS;
}

static apr_status_t free_crl_stack(void *d)
{
    sk_X509_CRL_pop_free((STACK_OF(X509_CRL) *)d, X509_CRL_free);
    return APR_SUCCESS;
}

static BIO *pool_mem_bio(apr_pool_t *p)
{
    return own_BIO(p, BIO_new(BIO_s_mem()));
}

static BIO *pool_buf_bio(apr_pool_t *p, const unsigned char *d, apr_size_t n)
{
    return own_BIO(p, BIO_new_mem_buf(n ? d : (const unsigned char *)"",
                                      (int)n));
}

/* Copy a memory BIO's bytes into the pool. */
static scep_bytes_t bio_bytes(apr_pool_t *p, BIO *b)
{
    scep_bytes_t out = { NULL, 0 };
    char *data;
    long n = BIO_get_mem_data(b, &data);

    if (n > 0) {
        out.data = apr_pmemdup(p, data, (apr_size_t)n);
        out.len = (apr_size_t)n;
    }
    return out;
}

static scep_err_e cms_der(apr_pool_t *p, CMS_ContentInfo *cms,
                          unsigned char **out, apr_size_t *outlen)
{
    unsigned char *q;
    int n = i2d_CMS_ContentInfo(cms, NULL);

    if (n <= 0) {
        return SCEP_E_BUILD;
    }
    *out = q = apr_palloc(p, (apr_size_t)n);
    if (i2d_CMS_ContentInfo(cms, &q) != n) {
        return SCEP_E_BUILD;
    }
    *outlen = (apr_size_t)n;
    return SCEP_OK;
}

/* ---- reading ---- */

static int digest_allowed(int nid, const scep_msg_opts_t *opts)
{
    switch (nid) {
    case NID_sha256:
    case NID_sha384:
    case NID_sha512:
    case NID_sha224:
        return 1;
    case NID_sha1:
        return opts->allow_legacy;
    default:
        return 0;  /* MD5 never */
    }
}

static int cipher_allowed(int nid, const scep_msg_opts_t *opts)
{
    switch (nid) {
    case NID_aes_128_cbc:
    case NID_aes_192_cbc:
    case NID_aes_256_cbc:
        return 1;
    case NID_des_ede3_cbc:
        return opts->allow_legacy;
    case NID_des_cbc:
        return opts->allow_des;
    default:
        return 0;
    }
}

typedef enum { ATTR_OK, ATTR_MISSING, ATTR_BAD } attr_result_e;

/*
 * One signed attribute with exactly one value of an accepted string type,
 * copied length-delimited (a NUL is appended only as a convenience).
 */
static attr_result_e signed_attr(apr_pool_t *p, CMS_SignerInfo *si, int nid,
                                 int octets, scep_bytes_t *out, int *type)
{
    int idx = CMS_signed_get_attr_by_NID(si, nid, -1);
    X509_ATTRIBUTE *attr;
    ASN1_TYPE *val;
    const ASN1_STRING *s;
    unsigned char *copy;

    if (idx < 0) {
        return ATTR_MISSING;
    }
    if (CMS_signed_get_attr_by_NID(si, nid, idx) >= 0) {
        return ATTR_BAD;  /* the same attribute twice */
    }
    attr = CMS_signed_get_attr(si, idx);
    if (X509_ATTRIBUTE_count(attr) != 1
        || (val = X509_ATTRIBUTE_get0_type(attr, 0)) == NULL) {
        return ATTR_BAD;
    }
    if (octets) {
        if (val->type != V_ASN1_OCTET_STRING) {
            return ATTR_BAD;
        }
    }
    else if (val->type != V_ASN1_PRINTABLESTRING
             && val->type != V_ASN1_UTF8STRING
             && val->type != V_ASN1_IA5STRING) {
        return ATTR_BAD;
    }
    s = val->value.asn1_string;
    copy = apr_palloc(p, (apr_size_t)ASN1_STRING_length(s) + 1);
    memcpy(copy, ASN1_STRING_get0_data(s), (size_t)ASN1_STRING_length(s));
    copy[ASN1_STRING_length(s)] = '\0';
    out->data = copy;
    out->len = (apr_size_t)ASN1_STRING_length(s);
    if (type) {
        *type = val->type;
    }
    return ATTR_OK;
}

/* A small decimal number in a string attribute; -1 if not one. */
static int attr_number(const scep_bytes_t *b)
{
    int v = 0;
    apr_size_t i;

    if (b->len == 0 || b->len > 3) {
        return -1;
    }
    for (i = 0; i < b->len; i++) {
        if (b->data[i] < '0' || b->data[i] > '9') {
            return -1;
        }
        v = v * 10 + (b->data[i] - '0');
    }
    return v;
}

static int known_msgtype(int v)
{
    return v == SCEP_MT_CERTREP || v == SCEP_MT_RENEWALREQ
           || v == SCEP_MT_PKCSREQ || v == SCEP_MT_CERTPOLL
           || v == SCEP_MT_GETCERT || v == SCEP_MT_GETCRL;
}

static int transid_valid(const scep_bytes_t *t)
{
    apr_size_t i;

    if (t->len == 0 || t->len > SCEP_TRANSID_MAX) {
        return 0;
    }
    for (i = 0; i < t->len; i++) {
        if (t->data[i] < 0x20 || t->data[i] == 0x7f) {
            return 0;  /* no NUL or control characters reach the log */
        }
    }
    return 1;
}

/* Read the SCEP attributes; the first problem found is returned. */
static scep_err_e read_attrs(apr_pool_t *p, CMS_SignerInfo *si, scep_msg_t *m)
{
    scep_bytes_t b;
    int v;

    if (CMS_signed_get_attr_count(si) <= 0) {
        return SCEP_E_NO_ATTRS;
    }
    if (signed_attr(p, si, nid_message_type, 0, &b, NULL) != ATTR_OK
        || (v = attr_number(&b)) < 0 || !known_msgtype(v)) {
        return SCEP_E_MSGTYPE;
    }
    m->type = (scep_msgtype_e)v;

    if (signed_attr(p, si, nid_transaction_id, 0, &m->transid,
                    &m->transid_type) != ATTR_OK
        || !transid_valid(&m->transid)) {
        m->transid.len = 0;
        return SCEP_E_TRANSID;
    }

    switch (signed_attr(p, si, nid_sender_nonce, 1, &m->sender_nonce, NULL)) {
    case ATTR_OK:
        if (m->sender_nonce.len != SCEP_NONCE_LEN) {
            m->sender_nonce.len = 0;
            return SCEP_E_SENDER_NONCE;
        }
        break;
    case ATTR_MISSING:
        /* RFC 8894 3.3.2: replies need not carry one. */
        if (m->type != SCEP_MT_CERTREP) {
            return SCEP_E_SENDER_NONCE;
        }
        break;
    case ATTR_BAD:
        return SCEP_E_SENDER_NONCE;
    }

    if (m->type != SCEP_MT_CERTREP) {
        return SCEP_OK;
    }
    if (signed_attr(p, si, nid_recipient_nonce, 1, &m->recipient_nonce,
                    NULL)
            != ATTR_OK
        || m->recipient_nonce.len != SCEP_NONCE_LEN) {
        m->recipient_nonce.len = 0;
        return SCEP_E_RECIPIENT_NONCE;
    }
    if (signed_attr(p, si, nid_pki_status, 0, &b, NULL) != ATTR_OK
        || ((v = attr_number(&b)) != SCEP_STATUS_SUCCESS
            && v != SCEP_STATUS_FAILURE && v != SCEP_STATUS_PENDING)) {
        return SCEP_E_PKISTATUS;
    }
    m->has_status = 1;
    m->status = (scep_pkistatus_e)v;
    if (m->status == SCEP_STATUS_FAILURE) {
        if (signed_attr(p, si, nid_fail_info, 0, &b, NULL) != ATTR_OK
            || (v = attr_number(&b)) < SCEP_FAIL_BADALG
            || v > SCEP_FAIL_BADCERTID) {
            return SCEP_E_FAILINFO;
        }
        m->has_failinfo = 1;
        m->failinfo = (scep_failinfo_e)v;
    }
    return SCEP_OK;
}

static X509 *find_signer_cert(apr_pool_t *p, CMS_ContentInfo *cms,
                              CMS_SignerInfo *si)
{
    STACK_OF(X509) *certs = CMS_get1_certs(cms);
    X509 *found = NULL;
    int i;

    for (i = 0; i < sk_X509_num(certs); i++) {
        X509 *x = sk_X509_value(certs, i);
        if (CMS_SignerInfo_cert_cmp(si, x) == 0) {
            X509_up_ref(x);
            found = own_X509(p, x);
            break;
        }
    }
    sk_X509_pop_free(certs, X509_free);
    return found;
}

scep_err_e scep_msg_parse(apr_pool_t *p, const unsigned char *der,
                          apr_size_t len, const scep_msg_opts_t *opts,
                          scep_msg_t **msg)
{
    scep_msg_t *m = apr_pcalloc(p, sizeof(*m));
    const unsigned char *in = der;
    CMS_ContentInfo *cms;
    STACK_OF(CMS_SignerInfo) *sis;
    CMS_SignerInfo *si;
    X509_ALGOR *digest_alg;
    ASN1_OCTET_STRING **content;
    STACK_OF(X509) *signers;
    BIO *out, *detached = NULL;
    scep_err_e attr_err;
    int detached_content, ok;

    m->cipher_nid = NID_undef;
    m->digest_nid = NID_undef;
    *msg = m;
    if (der == NULL || len == 0) {
        return SCEP_E_EMPTY;
    }
    if ((opts->max_size && len > opts->max_size) || len > LONG_MAX) {
        return SCEP_E_TOO_LARGE;
    }
    /* d2i reads BER too: indefinite lengths, chunked OCTET STRINGs. */
    cms = own_CMS_ContentInfo(p, d2i_CMS_ContentInfo(NULL, &in, (long)len));
    if (cms == NULL) {
        return SCEP_E_ASN1;
    }
    if (OBJ_obj2nid(CMS_get0_type(cms)) != NID_pkcs7_signed) {
        return SCEP_E_NOT_SIGNED;
    }
    if (OBJ_obj2nid(CMS_get0_eContentType(cms)) != NID_pkcs7_data) {
        return SCEP_E_ECONTENT_TYPE;
    }
    sis = CMS_get0_SignerInfos(cms);
    if (sk_CMS_SignerInfo_num(sis) != 1) {
        return SCEP_E_SIGNER_COUNT;
    }
    si = sk_CMS_SignerInfo_value(sis, 0);
    m->signer = find_signer_cert(p, cms, si);
    if (m->signer == NULL) {
        return SCEP_E_NO_SIGNER_CERT;
    }
    CMS_SignerInfo_get0_algs(si, NULL, NULL, &digest_alg, NULL);
    m->digest_nid = OBJ_obj2nid(digest_alg->algorithm);
    if (!digest_allowed(m->digest_nid, opts)) {
        /* Readable enough to address a FAILURE badAlg, which must then
         * not be signed with the digest refused here. */
        read_attrs(p, si, m);
        m->digest_nid = NID_undef;
        return SCEP_E_DIGEST;
    }

    /* Read before verifying so that even a FAILURE can be addressed. */
    attr_err = read_attrs(p, si, m);

    content = CMS_get0_content(cms);
    detached_content = (content == NULL || *content == NULL);
    if (detached_content) {
        /* FAILURE and PENDING replies sign no content (RFC 8894 3.2). */
        detached = pool_buf_bio(p, NULL, 0);
    }
    out = pool_mem_bio(p);
    if (out == NULL || (detached_content && detached == NULL)) {
        return SCEP_E_NOMEM;
    }
    /* Initial enrolment signers are self-signed: check the signature only. */
    signers = sk_X509_new_null();
    if (signers == NULL || !sk_X509_push(signers, m->signer)) {
        sk_X509_free(signers);
        return SCEP_E_NOMEM;
    }
    ok = CMS_verify(cms, signers, NULL, detached, out,
                    CMS_NO_SIGNER_CERT_VERIFY | CMS_NOINTERN | CMS_BINARY);
    sk_X509_free(signers);
    if (ok != 1) {
        return SCEP_E_SIGNATURE;
    }
    if (attr_err != SCEP_OK) {
        return attr_err;
    }
    m->envelope = bio_bytes(p, out);

    if (m->type == SCEP_MT_CERTREP) {
        if (m->status == SCEP_STATUS_SUCCESS && m->envelope.len == 0) {
            return SCEP_E_NO_CONTENT;
        }
        if (m->status != SCEP_STATUS_SUCCESS && m->envelope.len != 0) {
            return SCEP_E_UNEXPECTED_CONTENT;
        }
    }
    else if (m->envelope.len == 0) {
        return SCEP_E_NO_CONTENT;
    }
    return SCEP_OK;
}

/*
 * Just enough of EnvelopedData (RFC 5652 6.1) to read the content cipher,
 * which OpenSSL 3.0's CMS API does not expose; the recipients are left as
 * opaque values and matched through the CMS API.
 */
typedef struct {
    ASN1_OBJECT *type;
    X509_ALGOR *cipher;
    ASN1_OCTET_STRING *data;
} SCEP_ENC_INFO;

typedef struct {
    ASN1_INTEGER *version;
    STACK_OF(ASN1_TYPE) *originator;
    STACK_OF(ASN1_TYPE) *recipients;
    SCEP_ENC_INFO *enc;
    STACK_OF(ASN1_TYPE) *attrs;
} SCEP_ENVELOPED;

typedef struct {
    ASN1_OBJECT *type;
    SCEP_ENVELOPED *env;
} SCEP_ENV_CONTENT;

DECLARE_ASN1_FUNCTIONS(SCEP_ENV_CONTENT)
ASN1_SEQUENCE(SCEP_ENC_INFO) = {
    ASN1_SIMPLE(SCEP_ENC_INFO, type, ASN1_OBJECT),
    ASN1_SIMPLE(SCEP_ENC_INFO, cipher, X509_ALGOR),
    ASN1_IMP_OPT(SCEP_ENC_INFO, data, ASN1_OCTET_STRING, 0)
} ASN1_SEQUENCE_END(SCEP_ENC_INFO)
ASN1_SEQUENCE(SCEP_ENVELOPED) = {
    ASN1_SIMPLE(SCEP_ENVELOPED, version, ASN1_INTEGER),
    ASN1_IMP_SEQUENCE_OF_OPT(SCEP_ENVELOPED, originator, ASN1_ANY, 0),
    ASN1_SET_OF(SCEP_ENVELOPED, recipients, ASN1_ANY),
    ASN1_SIMPLE(SCEP_ENVELOPED, enc, SCEP_ENC_INFO),
    ASN1_IMP_SET_OF_OPT(SCEP_ENVELOPED, attrs, ASN1_ANY, 1)
} ASN1_SEQUENCE_END(SCEP_ENVELOPED)
ASN1_SEQUENCE(SCEP_ENV_CONTENT) = {
    ASN1_SIMPLE(SCEP_ENV_CONTENT, type, ASN1_OBJECT),
    ASN1_EXP(SCEP_ENV_CONTENT, env, SCEP_ENVELOPED, 0)
} ASN1_SEQUENCE_END(SCEP_ENV_CONTENT)
IMPLEMENT_ASN1_FUNCTIONS(SCEP_ENV_CONTENT)

static int envelope_cipher(const scep_bytes_t *env)
{
    const unsigned char *in = env->data;
    SCEP_ENV_CONTENT *ci = d2i_SCEP_ENV_CONTENT(NULL, &in, (long)env->len);
    int nid = NID_undef;

    if (ci && OBJ_obj2nid(ci->type) == NID_pkcs7_enveloped) {
        nid = OBJ_obj2nid(ci->env->enc->cipher->algorithm);
    }
    SCEP_ENV_CONTENT_free(ci);
    return nid;
}

/* Is one of the key-transport recipients our certificate (by issuer and
 * serial, or by subjectKeyIdentifier)? */
static int is_recipient(CMS_ContentInfo *env, X509 *cert)
{
    STACK_OF(CMS_RecipientInfo) *ris = CMS_get0_RecipientInfos(env);
    int i;

    for (i = 0; i < sk_CMS_RecipientInfo_num(ris); i++) {
        CMS_RecipientInfo *ri = sk_CMS_RecipientInfo_value(ris, i);
        if (CMS_RecipientInfo_type(ri) == CMS_RECIPINFO_TRANS
            && CMS_RecipientInfo_ktri_cert_cmp(ri, cert) == 0) {
            return 1;
        }
    }
    return 0;
}

static scep_err_e open_envelope(apr_pool_t *p, CMS_ContentInfo *env,
                                EVP_PKEY *key, X509 *cert,
                                scep_bytes_t *data)
{
    BIO *out = pool_mem_bio(p);

    if (out == NULL) {
        return SCEP_E_NOMEM;
    }
    /* Passing the certificate keeps the decryption to our recipient. */
    if (CMS_decrypt(env, key, cert, NULL, out, CMS_BINARY) != 1) {
        return SCEP_E_DECRYPT;
    }
    *data = bio_bytes(p, out);
    return SCEP_OK;
}

static CMS_ContentInfo *parse_envelope(apr_pool_t *p,
                                       const unsigned char *der,
                                       apr_size_t len)
{
    const unsigned char *in = der;
    CMS_ContentInfo *env =
        own_CMS_ContentInfo(p, d2i_CMS_ContentInfo(NULL, &in, (long)len));

    if (env == NULL
        || OBJ_obj2nid(CMS_get0_type(env)) != NID_pkcs7_enveloped) {
        return NULL;
    }
    return env;
}

static scep_err_e decode_certs_only(apr_pool_t *p, scep_msg_t *m)
{
    const unsigned char *in = m->data.data;
    CMS_ContentInfo *cms =
        own_CMS_ContentInfo(p, d2i_CMS_ContentInfo(NULL, &in,
                                                   (long)m->data.len));

    if (cms == NULL || OBJ_obj2nid(CMS_get0_type(cms)) != NID_pkcs7_signed) {
        return SCEP_E_INNER;
    }
    m->certs = CMS_get1_certs(cms);
    m->crls = CMS_get1_crls(cms);
    if (m->certs) {
        apr_pool_cleanup_register(p, m->certs, free_x509_stack,
                                  apr_pool_cleanup_null);
    }
    if (m->crls) {
        apr_pool_cleanup_register(p, m->crls, free_crl_stack,
                                  apr_pool_cleanup_null);
    }
    return (m->certs || m->crls) ? SCEP_OK : SCEP_E_INNER;
}

static scep_err_e decode_message_data(apr_pool_t *p, scep_msg_t *m)
{
    const unsigned char *in = m->data.data;
    const unsigned char *end = m->data.data + m->data.len;
    long n = (long)m->data.len;

    switch (m->type) {
    case SCEP_MT_PKCSREQ:
    case SCEP_MT_RENEWALREQ: {
        EVP_PKEY *pub;
        m->csr = own_X509_REQ(p, d2i_X509_REQ(NULL, &in, n));
        if (m->csr == NULL || in != end) {
            return SCEP_E_INNER;
        }
        pub = X509_REQ_get0_pubkey(m->csr);
        if (pub == NULL || X509_REQ_verify(m->csr, pub) != 1) {
            return SCEP_E_CSR_SIGNATURE;
        }
        return SCEP_OK;
    }
    case SCEP_MT_GETCERT:
    case SCEP_MT_GETCRL: {
        PKCS7_ISSUER_AND_SERIAL *ias =
            d2i_PKCS7_ISSUER_AND_SERIAL(NULL, &in, n);
        scep_err_e rv = SCEP_E_INNER;
        if (ias && in == end) {
            m->issuer = own_X509_NAME(p, X509_NAME_dup(ias->issuer));
            m->serial = own_ASN1_INTEGER(p, ASN1_INTEGER_dup(ias->serial));
            rv = (m->issuer && m->serial) ? SCEP_OK : SCEP_E_NOMEM;
        }
        PKCS7_ISSUER_AND_SERIAL_free(ias);
        return rv;
    }
    case SCEP_MT_CERTPOLL: {
        SCEP_ISSUER_AND_SUBJECT *ias =
            d2i_SCEP_ISSUER_AND_SUBJECT(NULL, &in, n);
        scep_err_e rv = SCEP_E_INNER;
        if (ias && in == end) {
            m->issuer = own_X509_NAME(p, X509_NAME_dup(ias->issuer));
            m->subject = own_X509_NAME(p, X509_NAME_dup(ias->subject));
            rv = (m->issuer && m->subject) ? SCEP_OK : SCEP_E_NOMEM;
        }
        SCEP_ISSUER_AND_SUBJECT_free(ias);
        return rv;
    }
    case SCEP_MT_CERTREP:
        return decode_certs_only(p, m);
    case SCEP_MT_NONE:
        break;
    }
    return SCEP_E_INNER;
}

scep_err_e scep_msg_open_envelope(apr_pool_t *p, const unsigned char *der,
                                  apr_size_t len, EVP_PKEY *key, X509 *cert,
                                  scep_bytes_t *data)
{
    CMS_ContentInfo *env = parse_envelope(p, der, len);

    return env ? open_envelope(p, env, key, cert, data)
               : SCEP_E_NOT_ENVELOPED;
}

scep_err_e scep_msg_decrypt(apr_pool_t *p, scep_msg_t *m, EVP_PKEY *key,
                            X509 *cert, const scep_msg_opts_t *opts)
{
    CMS_ContentInfo *env;
    scep_err_e rv;

    if (m == NULL || key == NULL || cert == NULL) {
        return SCEP_E_ARG;
    }
    if (m->envelope.len == 0) {
        return SCEP_E_NO_CONTENT;
    }
    env = parse_envelope(p, m->envelope.data, m->envelope.len);
    if (env == NULL) {
        return SCEP_E_NOT_ENVELOPED;
    }
    m->cipher_nid = envelope_cipher(&m->envelope);
    if (!cipher_allowed(m->cipher_nid, opts)) {
        return SCEP_E_CIPHER;
    }
    if (!is_recipient(env, cert)) {
        return SCEP_E_RECIPIENT;
    }
    rv = open_envelope(p, env, key, cert, &m->data);
    if (rv != SCEP_OK) {
        return rv;
    }
    if (m->data.len == 0) {
        return SCEP_E_INNER;
    }
    return decode_message_data(p, m);
}

/* ---- building ---- */

scep_err_e scep_msg_certs_only(apr_pool_t *p, STACK_OF(X509) *certs,
                               X509_CRL *crl, unsigned char **out,
                               apr_size_t *outlen)
{
    PKCS7 *p7 = own_PKCS7(p, PKCS7_new());
    unsigned char *q;
    int i, n;

    if (p7 == NULL || !PKCS7_set_type(p7, NID_pkcs7_signed)
        || !PKCS7_content_new(p7, NID_pkcs7_data)) {
        return SCEP_E_BUILD;
    }
    /* RFC 8894 3.4: the content is omitted, not an empty OCTET STRING. */
    ASN1_OCTET_STRING_free(p7->d.sign->contents->d.data);
    p7->d.sign->contents->d.data = NULL;
    for (i = 0; i < sk_X509_num(certs); i++) {
        if (!PKCS7_add_certificate(p7, sk_X509_value(certs, i))) {
            return SCEP_E_BUILD;
        }
    }
    if (crl && !PKCS7_add_crl(p7, crl)) {
        return SCEP_E_BUILD;
    }
    n = i2d_PKCS7(p7, NULL);
    if (n <= 0) {
        return SCEP_E_BUILD;
    }
    *out = q = apr_palloc(p, (apr_size_t)n);
    if (i2d_PKCS7(p7, &q) != n) {
        return SCEP_E_BUILD;
    }
    *outlen = (apr_size_t)n;
    return SCEP_OK;
}

/* A SignedData by cert/key over data (NULL: no content) with attributes. */
typedef struct {
    int nid;
    int type;
    const unsigned char *data;
    apr_size_t len;
} attr_t;

static scep_err_e sign(apr_pool_t *p, const unsigned char *data,
                       apr_size_t len, const scep_signer_t *signer,
                       const EVP_MD *md, const attr_t *attrs, int nattrs,
                       unsigned char **out, apr_size_t *outlen)
{
    const unsigned int flags = CMS_BINARY | CMS_NOSMIMECAP;
    CMS_ContentInfo *cms;
    CMS_SignerInfo *si;
    BIO *in;
    int i;

    if (signer == NULL || signer->cert == NULL || signer->key == NULL) {
        return SCEP_E_ARG;
    }
    cms = own_CMS_ContentInfo(p, CMS_sign(NULL, NULL, NULL, NULL,
                                          flags | CMS_PARTIAL));
    if (cms == NULL) {
        return SCEP_E_BUILD;
    }
    si = CMS_add1_signer(cms, signer->cert, signer->key, md, flags);
    if (si == NULL) {
        return SCEP_E_BUILD;
    }
    for (i = 0; i < nattrs; i++) {
        if (!CMS_signed_add1_attr_by_NID(si, attrs[i].nid, attrs[i].type,
                                         attrs[i].data, (int)attrs[i].len)) {
            return SCEP_E_BUILD;
        }
    }
    if (data == NULL && !CMS_set_detached(cms, 1)) {
        return SCEP_E_BUILD;
    }
    in = pool_buf_bio(p, data, data ? len : 0);
    if (in == NULL || !CMS_final(cms, in, NULL, flags)) {
        return SCEP_E_BUILD;
    }
    return cms_der(p, cms, out, outlen);
}

scep_err_e scep_msg_sign_data(apr_pool_t *p, const unsigned char *data,
                              apr_size_t len, X509 *cert, EVP_PKEY *key,
                              const EVP_MD *md, unsigned char **out,
                              apr_size_t *outlen)
{
    scep_signer_t signer = { cert, key };

    if (data == NULL) {
        return SCEP_E_ARG;
    }
    return sign(p, data, len, &signer, md ? md : EVP_sha256(), NULL, 0, out,
                outlen);
}

scep_err_e scep_msg_envelope(apr_pool_t *p, const unsigned char *data,
                             apr_size_t len, X509 *recipient,
                             const EVP_CIPHER *cipher, unsigned char **out,
                             apr_size_t *outlen)
{
    STACK_OF(X509) *rcpts = sk_X509_new_null();
    CMS_ContentInfo *cms = NULL;
    BIO *in = pool_buf_bio(p, data, len);

    if (rcpts && in && sk_X509_push(rcpts, recipient)) {
        cms = own_CMS_ContentInfo(p, CMS_encrypt(rcpts, in, cipher,
                                                 CMS_BINARY));
    }
    sk_X509_free(rcpts);
    if (cms == NULL) {
        return SCEP_E_BUILD;
    }
    return cms_der(p, cms, out, outlen);
}

static const char *small_number(apr_pool_t *p, int v)
{
    return apr_itoa(p, v);
}

static void add_string_attr(attr_t *a, int *n, int nid, int type,
                            const void *data, apr_size_t len)
{
    a[*n].nid = nid;
    a[*n].type = type;
    a[*n].data = data;
    a[*n].len = len;
    (*n)++;
}

scep_err_e scep_msg_certrep(apr_pool_t *p, const scep_msg_t *req,
                            scep_pkistatus_e status, scep_failinfo_e fail,
                            STACK_OF(X509) *certs, X509_CRL *crl,
                            const scep_signer_t *ra, const EVP_MD *default_md,
                            unsigned char **out, apr_size_t *outlen)
{
    unsigned char nonce[SCEP_NONCE_LEN];
    unsigned char *content = NULL;
    apr_size_t content_len = 0;
    const EVP_MD *md = NULL;
    const char *mt, *st, *fi;
    attr_t attrs[6];
    int n = 0;
    scep_err_e rv;

    if (req == NULL && status != SCEP_STATUS_FAILURE) {
        return SCEP_E_ARG;
    }
    if (req && req->digest_nid != NID_undef) {
        md = EVP_get_digestbynid(req->digest_nid);
    }
    if (md == NULL) {
        md = default_md ? default_md : EVP_sha256();
    }
    if (status == SCEP_STATUS_SUCCESS) {
        const EVP_CIPHER *cipher = NULL;
        unsigned char *inner;
        apr_size_t inner_len;

        if ((sk_X509_num(certs) <= 0 && crl == NULL) || req->signer == NULL) {
            return SCEP_E_ARG;
        }
        if (req->cipher_nid != NID_undef) {
            cipher = EVP_get_cipherbynid(req->cipher_nid);
        }
        if (cipher == NULL) {
            cipher = EVP_aes_128_cbc();
        }
        rv = scep_msg_certs_only(p, certs, crl, &inner, &inner_len);
        if (rv == SCEP_OK) {
            rv = scep_msg_envelope(p, inner, inner_len, req->signer, cipher, &content,
                          &content_len);
        }
        if (rv != SCEP_OK) {
            return rv;
        }
    }
    if (RAND_bytes(nonce, sizeof(nonce)) != 1) {
        return SCEP_E_BUILD;
    }
    mt = small_number(p, SCEP_MT_CERTREP);
    st = small_number(p, status);
    add_string_attr(attrs, &n, nid_message_type, V_ASN1_PRINTABLESTRING, mt,
                    strlen(mt));
    add_string_attr(attrs, &n, nid_pki_status, V_ASN1_PRINTABLESTRING, st,
                    strlen(st));
    if (status == SCEP_STATUS_FAILURE) {
        fi = small_number(p, fail);
        add_string_attr(attrs, &n, nid_fail_info, V_ASN1_PRINTABLESTRING, fi,
                        strlen(fi));
    }
    add_string_attr(attrs, &n, nid_sender_nonce, V_ASN1_OCTET_STRING, nonce,
                    sizeof(nonce));
    if (req && req->transid.len) {
        /* Echo it as it came: a UTF8String id is no PrintableString. */
        add_string_attr(attrs, &n, nid_transaction_id,
                        req->transid_type ? req->transid_type
                                          : V_ASN1_PRINTABLESTRING,
                        req->transid.data, req->transid.len);
    }
    if (req && req->sender_nonce.len) {
        add_string_attr(attrs, &n, nid_recipient_nonce, V_ASN1_OCTET_STRING,
                        req->sender_nonce.data, req->sender_nonce.len);
    }
    return sign(p, content, content_len, ra, md, attrs, n, out, outlen);
}

scep_err_e scep_msg_request(apr_pool_t *p, scep_msgtype_e type,
                            const char *transid, const unsigned char *data,
                            apr_size_t len, X509 *recipient,
                            const EVP_CIPHER *cipher,
                            const scep_signer_t *signer, const EVP_MD *md,
                            unsigned char *nonce_out, unsigned char **out,
                            apr_size_t *outlen)
{
    unsigned char nonce[SCEP_NONCE_LEN];
    unsigned char *content;
    apr_size_t content_len;
    const char *mt;
    attr_t attrs[3];
    int n = 0;
    scep_err_e rv;

    if (transid == NULL || data == NULL || recipient == NULL
        || !known_msgtype(type) || type == SCEP_MT_CERTREP) {
        return SCEP_E_ARG;
    }
    rv = scep_msg_envelope(p, data, len, recipient,
                  cipher ? cipher : EVP_aes_128_cbc(), &content,
                  &content_len);
    if (rv != SCEP_OK) {
        return rv;
    }
    if (RAND_bytes(nonce, sizeof(nonce)) != 1) {
        return SCEP_E_BUILD;
    }
    if (nonce_out) {
        memcpy(nonce_out, nonce, sizeof(nonce));
    }
    mt = small_number(p, type);
    add_string_attr(attrs, &n, nid_message_type, V_ASN1_PRINTABLESTRING, mt,
                    strlen(mt));
    add_string_attr(attrs, &n, nid_transaction_id, V_ASN1_PRINTABLESTRING,
                    transid, strlen(transid));
    add_string_attr(attrs, &n, nid_sender_nonce, V_ASN1_OCTET_STRING, nonce,
                    sizeof(nonce));
    return sign(p, content, content_len, signer, md ? md : EVP_sha256(),
                attrs, n, out, outlen);
}

scep_err_e scep_msg_issuer_and_serial(apr_pool_t *p, X509_NAME *issuer,
                                      const ASN1_INTEGER *serial,
                                      unsigned char **out,
                                      apr_size_t *outlen)
{
    PKCS7_ISSUER_AND_SERIAL *ias = PKCS7_ISSUER_AND_SERIAL_new();
    unsigned char *q;
    int n = -1;

    if (ias && X509_NAME_set(&ias->issuer, issuer)) {
        ASN1_INTEGER_free(ias->serial);
        ias->serial = ASN1_INTEGER_dup(serial);
        if (ias->serial && (n = i2d_PKCS7_ISSUER_AND_SERIAL(ias, NULL)) > 0) {
            *out = q = apr_palloc(p, (apr_size_t)n);
            n = i2d_PKCS7_ISSUER_AND_SERIAL(ias, &q);
        }
    }
    PKCS7_ISSUER_AND_SERIAL_free(ias);
    if (n <= 0) {
        return SCEP_E_BUILD;
    }
    *outlen = (apr_size_t)n;
    return SCEP_OK;
}

scep_err_e scep_msg_issuer_and_subject(apr_pool_t *p, X509_NAME *issuer,
                                       X509_NAME *subject,
                                       unsigned char **out,
                                       apr_size_t *outlen)
{
    SCEP_ISSUER_AND_SUBJECT *ias = SCEP_ISSUER_AND_SUBJECT_new();
    unsigned char *q;
    int n = -1;

    if (ias && X509_NAME_set(&ias->issuer, issuer)
        && X509_NAME_set(&ias->subject, subject)
        && (n = i2d_SCEP_ISSUER_AND_SUBJECT(ias, NULL)) > 0) {
        *out = q = apr_palloc(p, (apr_size_t)n);
        n = i2d_SCEP_ISSUER_AND_SUBJECT(ias, &q);
    }
    SCEP_ISSUER_AND_SUBJECT_free(ias);
    if (n <= 0) {
        return SCEP_E_BUILD;
    }
    *outlen = (apr_size_t)n;
    return SCEP_OK;
}

const char *scep_msg_key_transid(apr_pool_t *p, EVP_PKEY *key)
{
    unsigned char *spki = NULL;
    unsigned char md[32];
    unsigned int mdlen = 0;
    char *hex;
    int n = i2d_PUBKEY(key, &spki);
    unsigned int i;

    if (n <= 0) {
        return NULL;
    }
    if (!EVP_Digest(spki, (size_t)n, md, &mdlen, EVP_sha256(), NULL)) {
        OPENSSL_free(spki);
        return NULL;
    }
    OPENSSL_free(spki);
    hex = apr_palloc(p, mdlen * 2 + 1);
    for (i = 0; i < mdlen; i++) {
        apr_snprintf(hex + i * 2, 3, "%02X", md[i]);
    }
    return hex;
}
