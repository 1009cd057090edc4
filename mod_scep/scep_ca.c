/* Licensed under the Apache License, Version 2.0; see LICENSE. */

#include <string.h>
#include <strings.h>

#include <apr_strings.h>

#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "scep_ca.h"

/* Microsoft's SID extension (KB5014754) and SID URIs in SANs. */
#define OID_MS_SID_EXT "1.3.6.1.4.1.311.25.2"
#define OID_MS_SID_OTHERNAME "1.3.6.1.4.1.311.25.2.1"
#define SID_URI_PREFIX "tag:microsoft.com,2022-09-14:sid:"

const scep_template_t scep_ca_builtin_templates[] = {
    /* NDES's default for all three kinds: IPsec (offline request). */
    { "IPSECIntermediateOffline", 365,
      KU_DIGITAL_SIGNATURE | KU_KEY_ENCIPHERMENT, "1.3.6.1.5.5.8.2.2" },
    { "Router", 365, KU_DIGITAL_SIGNATURE | KU_KEY_ENCIPHERMENT,
      "clientAuth,serverAuth,1.3.6.1.5.5.8.2.2" },
    { "Machine", 365, KU_DIGITAL_SIGNATURE | KU_KEY_ENCIPHERMENT,
      "clientAuth,serverAuth" },
    { "User", 365, KU_DIGITAL_SIGNATURE | KU_KEY_ENCIPHERMENT,
      "clientAuth,emailProtection" },
    { "Signature", 365, KU_DIGITAL_SIGNATURE, "clientAuth" },
    { "Encryption", 365, KU_KEY_ENCIPHERMENT, "emailProtection" },
    { NULL, 0, 0, NULL }
};

static apr_status_t free_x509(void *d)
{
    X509_free(d);
    return APR_SUCCESS;
}

int scep_ca_request_key_usage(X509_REQ *csr)
{
    STACK_OF(X509_EXTENSION) *exts = X509_REQ_get_extensions(csr);
    ASN1_BIT_STRING *ku = NULL;
    int v = -1;

    if (exts) {
        ku = X509V3_get_d2i(exts, NID_key_usage, NULL, NULL);
        sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    }
    if (ku) {
        v = ku->length > 0 ? ku->data[0] : 0;
        ASN1_BIT_STRING_free(ku);
    }
    return v;
}

const char *scep_ca_request_challenge(apr_pool_t *p, X509_REQ *csr,
                                      apr_size_t *len)
{
    int idx = X509_REQ_get_attr_by_NID(csr, NID_pkcs9_challengePassword, -1);
    X509_ATTRIBUTE *attr;
    ASN1_TYPE *t;

    if (idx < 0 || (attr = X509_REQ_get_attr(csr, idx)) == NULL
        || (t = X509_ATTRIBUTE_get0_type(attr, 0)) == NULL) {
        return NULL;
    }
    switch (t->type) {
    case V_ASN1_PRINTABLESTRING:
    case V_ASN1_UTF8STRING:
    case V_ASN1_IA5STRING:
    case V_ASN1_T61STRING:
        break;
    default:
        return NULL;
    }
    *len = (apr_size_t)ASN1_STRING_length(t->value.asn1_string);
    return apr_pstrmemdup(p, (const char *)ASN1_STRING_get0_data(
                                 t->value.asn1_string), *len);
}

/* Extensions a request may carry; anything else critical is refused. */
static int known_extension(int nid)
{
    switch (nid) {
    case NID_key_usage:
    case NID_ext_key_usage:
    case NID_subject_alt_name:
    case NID_basic_constraints:
    case NID_subject_key_identifier:
        return 1;
    }
    return 0;
}

/* Copy the SAN names we accept; refuse SID URIs. */
static const char *copy_san(X509 *x, GENERAL_NAMES *req)
{
    GENERAL_NAMES *out = sk_GENERAL_NAME_new_null();
    ASN1_OBJECT *sid_other = OBJ_txt2obj(OID_MS_SID_OTHERNAME, 1);
    const char *why = NULL;
    int i;

    for (i = 0; out && i < sk_GENERAL_NAME_num(req); i++) {
        GENERAL_NAME *gn = sk_GENERAL_NAME_value(req, i);
        switch (gn->type) {
        case GEN_URI: {
            const ASN1_IA5STRING *u = gn->d.uniformResourceIdentifier;
            size_t n = strlen(SID_URI_PREFIX);
            if ((size_t)u->length >= n
                && !strncasecmp((const char *)u->data, SID_URI_PREFIX, n)) {
                why = "a SID URI in subjectAltName";
            }
            break;
        }
        case GEN_OTHERNAME:
            if (sid_other && OBJ_cmp(gn->d.otherName->type_id, sid_other) == 0) {
                why = "a SID otherName in subjectAltName";
            }
            break;
        case GEN_DNS:
        case GEN_IPADD:
        case GEN_EMAIL:
            break;
        default:
            continue;  /* not copied */
        }
        if (why) {
            break;
        }
        sk_GENERAL_NAME_push(out, GENERAL_NAME_dup(gn));
    }
    if (!why && out && sk_GENERAL_NAME_num(out) > 0
        && !X509_add1_ext_i2d(x, NID_subject_alt_name, out, 0,
                              X509V3_ADD_DEFAULT)) {
        why = "cannot set subjectAltName";
    }
    GENERAL_NAMES_free(out);
    ASN1_OBJECT_free(sid_other);
    return why;
}

static const char *check_request(X509_REQ *csr, GENERAL_NAMES **san)
{
    STACK_OF(X509_EXTENSION) *exts = X509_REQ_get_extensions(csr);
    ASN1_OBJECT *sid = OBJ_txt2obj(OID_MS_SID_EXT, 1);
    const char *why = NULL;
    int i;

    for (i = 0; !why && i < sk_X509_EXTENSION_num(exts); i++) {
        X509_EXTENSION *e = sk_X509_EXTENSION_value(exts, i);
        ASN1_OBJECT *o = X509_EXTENSION_get_object(e);
        int nid = OBJ_obj2nid(o);
        if (sid && OBJ_cmp(o, sid) == 0) {
            why = "the Microsoft SID extension";
        }
        else if (nid == NID_basic_constraints) {
            BASIC_CONSTRAINTS *bc = X509V3_EXT_d2i(e);
            if (bc == NULL || bc->ca) {
                why = "basicConstraints CA:TRUE";
            }
            BASIC_CONSTRAINTS_free(bc);
        }
        else if (nid == NID_subject_alt_name && *san == NULL) {
            *san = X509V3_EXT_d2i(e);
            if (*san == NULL) {
                why = "an unreadable subjectAltName";
            }
        }
        else if (X509_EXTENSION_get_critical(e) && !known_extension(nid)) {
            why = "an unknown critical extension";
        }
    }
    ASN1_OBJECT_free(sid);
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    return why;
}

static int add_ext(X509 *x, X509 *ca, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509_EXTENSION *e;
    int ok;

    X509V3_set_ctx(&ctx, ca, x, NULL, NULL, 0);
    e = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    if (e == NULL) {
        return 0;
    }
    ok = X509_add_ext(x, e, -1);
    X509_EXTENSION_free(e);
    return ok;
}

static const char *ku_text(apr_pool_t *p, unsigned int ku)
{
    const char *s = "critical";

    if (ku & KU_DIGITAL_SIGNATURE) {
        s = apr_pstrcat(p, s, ",digitalSignature", NULL);
    }
    if (ku & KU_NON_REPUDIATION) {
        s = apr_pstrcat(p, s, ",nonRepudiation", NULL);
    }
    if (ku & KU_KEY_ENCIPHERMENT) {
        s = apr_pstrcat(p, s, ",keyEncipherment", NULL);
    }
    if (ku & KU_DATA_ENCIPHERMENT) {
        s = apr_pstrcat(p, s, ",dataEncipherment", NULL);
    }
    if (ku & KU_KEY_AGREEMENT) {
        s = apr_pstrcat(p, s, ",keyAgreement", NULL);
    }
    return s;
}

static int random_serial(X509 *x)
{
    unsigned char b[16];
    BIGNUM *bn;
    int ok;

    do {
        if (RAND_bytes(b, sizeof(b)) != 1) {
            return 0;
        }
        b[0] &= 0x7f;  /* positive, 127 random bits */
    } while (b[0] == 0 && b[1] == 0);
    bn = BN_bin2bn(b, sizeof(b), NULL);
    ok = bn && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) != NULL;
    BN_free(bn);
    return ok;
}

/*
 * The certificate's key is the request's.  X509_set_pubkey given the
 * request's decoded key runs it through OpenSSL 3's encoder and decodes
 * the result again (about 160 us, a tenth of an enrollment's CPU).  For
 * RSA, a key object read straight from the request's key bits (an
 * RSAPublicKey) is encoded without either (2 us).  Other keys take the
 * long way.
 */
static int set_pubkey(X509 *x, X509_REQ *csr)
{
    EVP_PKEY *key = X509_REQ_get0_pubkey(csr), *rsa;
    const unsigned char *bits, *end;
    ASN1_OBJECT *alg;
    int len, ok;

    if (key == NULL) {
        return 0;  /* unreadable (the RA checked the request with it) */
    }
    if (EVP_PKEY_get_base_id(key) == EVP_PKEY_RSA
        && X509_PUBKEY_get0_param(&alg, &bits, &len, NULL,
                                  X509_REQ_get_X509_PUBKEY(csr))
        && OBJ_obj2nid(alg) == NID_rsaEncryption && len > 0) {
        end = bits + len;
        rsa = d2i_PublicKey(EVP_PKEY_RSA, NULL, &bits, len);
        if (rsa && bits == end) {
            ok = X509_set_pubkey(x, rsa);
            EVP_PKEY_free(rsa);
            return ok;
        }
        EVP_PKEY_free(rsa);
        ERR_clear_error();
    }
    return X509_set_pubkey(x, key);
}

const char *scep_ca_check(apr_pool_t *p, X509_REQ *csr)
{
    GENERAL_NAMES *san = NULL;
    const char *why = check_request(csr, &san);

    if (!why && san) {
        /* The names are checked as they are copied. */
        X509 *x = X509_new();
        why = x ? copy_san(x, san) : "a certificate (out of memory)";
        X509_free(x);
    }
    GENERAL_NAMES_free(san);
    return why ? apr_pstrcat(p, "the request asks for ", why, NULL) : NULL;
}

const char *scep_ca_issue(apr_pool_t *p, X509 *ca_cert, EVP_PKEY *ca_key,
                          const EVP_MD *md, X509_REQ *csr,
                          const scep_template_t *t, X509 **out)
{
    GENERAL_NAMES *san = NULL;
    const char *why;
    unsigned int ku = t->key_usage;
    X509 *x;

    why = check_request(csr, &san);
    if (why) {
        GENERAL_NAMES_free(san);
        return apr_pstrcat(p, "the request asks for ", why, NULL);
    }
    x = X509_new();
    apr_pool_cleanup_register(p, x, free_x509, apr_pool_cleanup_null);
    if (!x || !X509_set_version(x, 2) || !random_serial(x)
        || !X509_set_issuer_name(x, X509_get_subject_name(ca_cert))
        || !X509_set_subject_name(x, X509_REQ_get_subject_name(csr))
        || !set_pubkey(x, csr)
        || !X509_time_adj_ex(X509_getm_notBefore(x), 0, -600, NULL)
        || !X509_time_adj_ex(X509_getm_notAfter(x), t->validity_days, 0,
                             NULL)) {
        GENERAL_NAMES_free(san);
        return "cannot build the certificate";
    }
    if (san) {
        why = copy_san(x, san);
        GENERAL_NAMES_free(san);
        if (why) {
            return apr_pstrcat(p, "the request asks for ", why, NULL);
        }
    }
    if (ku == 0) {
        /* The request's end-entity bits; never keyCertSign or cRLSign. */
        int req = scep_ca_request_key_usage(csr);
        ku = req > 0 ? (unsigned int)req & 0xf8 : 0;
        if (ku == 0) {
            ku = KU_DIGITAL_SIGNATURE | KU_KEY_ENCIPHERMENT;
        }
    }
    if (!add_ext(x, ca_cert, NID_basic_constraints, "critical,CA:FALSE")
        || !add_ext(x, ca_cert, NID_key_usage, ku_text(p, ku))
        || (t->eku && *t->eku
            && !add_ext(x, ca_cert, NID_ext_key_usage, t->eku))
        || !add_ext(x, ca_cert, NID_subject_key_identifier, "hash")
        || !add_ext(x, ca_cert, NID_authority_key_identifier,
                    "keyid,issuer")
        || (t->crl_url
            && !add_ext(x, ca_cert, NID_crl_distribution_points,
                        apr_pstrcat(p, "URI:", t->crl_url, NULL)))) {
        ERR_clear_error();
        return "cannot set the certificate's extensions";
    }
    if (!X509_sign(x, ca_key, md)) {
        ERR_clear_error();
        return "the CA key cannot sign";
    }
    *out = x;
    return NULL;
}

const char *scep_ca_sha256_hex(apr_pool_t *p, const void *data,
                               apr_size_t len)
{
    unsigned char md[32];
    unsigned int n = 0, i;
    char *hex;

    if (!EVP_Digest(data, len, md, &n, EVP_sha256(), NULL)) {
        return NULL;
    }
    hex = apr_palloc(p, 2 * n + 1);
    for (i = 0; i < n; i++) {
        apr_snprintf(hex + 2 * i, 3, "%02X", md[i]);
    }
    return hex;
}

const char *scep_ca_serial_hex(apr_pool_t *p, X509 *x)
{
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
    char *hex = bn ? BN_bn2hex(bn) : NULL;
    const char *out = apr_pstrdup(p, hex ? hex : "?");

    OPENSSL_free(hex);
    BN_free(bn);
    return out;
}
