/* Licensed under the Apache License, Version 2.0; see LICENSE. */

/*
 * Unit tests of the embedded CA's certificate factory (scep_ca.h): what a
 * request asks for (KeyUsage, challengePassword), certificates issued
 * with every built-in template checked field by field and against
 * OpenSSL's chain verification, what a request may not decide refused
 * with a reason, and the hex helpers.
 */

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <apr_general.h>
#include <apr_hash.h>
#include <apr_pools.h>
#include <apr_strings.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "scep_ca.h"
#include "testpki.h"
#include "tap.h"

static apr_pool_t *root;
static const testpki_t *pki;

/* The SubjectAltName every issuing test asks for: one of each kind. */
#define SAN_ALL "subjectAltName=DNS:device1.example.com," \
                "IP:192.0.2.17,IP:2001:db8::17," \
                "email:device1@example.com," \
                "otherName:1.3.6.1.4.1.311.20.2.3;UTF8:device1@example.com," \
                "URI:https://example.com/devices/1"
#define SAN_ALL_COUNT 6

#define SID_URI "tag:microsoft.com,2022-09-14:sid:" \
                "S-1-5-21-1004336348-1177238915-682003330-512"

/* The SID extension as Windows writes it: an otherName 1.3.6.1.4.1.311.
 * 25.2.1 holding the SID as an OCTET STRING, wrapped in a SEQUENCE. */
#define SID_EXT_DER "DER:303EA03C060A2B060104018237190201A02E042C" \
    "532D312D352D32312D313030343333363334382D313137373233383931352D" \
    "3638323030333333302D353132"

/* An OID nobody knows. */
#define ODD_OID "1.3.6.1.4.1.55555.7.1"

/* ------------------------------------------------------------------ */
/* Helpers                                                             */

static X509_REQ *csr_exts(apr_pool_t *p, EVP_PKEY *key, const char *subject,
                          const char *const *exts)
{
    testpki_csrspec_t spec;
    X509_REQ *req;

    memset(&spec, 0, sizeof(spec));
    spec.subject = subject;
    spec.key = key;
    spec.exts = exts;
    req = testpki_csr_spec(p, &spec);
    if (req == NULL) {
        bail_out("cannot make a request for %s", subject);
    }
    return req;
}

/* Does s contain word, ignoring case? */
static int contains_nocase(const char *s, const char *word)
{
    size_t n = strlen(word), i;

    for (; *s; s++) {
        for (i = 0; i < n && s[i]
                    && tolower((unsigned char)s[i])
                       == tolower((unsigned char)word[i]); i++) {
        }
        if (i == n) {
            return 1;
        }
    }
    return 0;
}

/*
 * "subjectAltName=DER:..." for URIs (the openssl.cnf syntax cannot hold
 * the comma of a SID URI), each one a URI unless prefixed "DNS:".
 */
static const char *san_der(apr_pool_t *p, const char *first, ...)
{
    GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();
    unsigned char *der = NULL;
    const char *s, *out = NULL;
    va_list ap;
    int n;

    va_start(ap, first);
    for (s = first; gens && s; s = va_arg(ap, const char *)) {
        int dns = strncmp(s, "DNS:", 4) == 0;
        GENERAL_NAME *gn = a2i_GENERAL_NAME(NULL, NULL, NULL,
                                            dns ? GEN_DNS : GEN_URI,
                                            dns ? s + 4 : s, 0);
        if (gn == NULL || !sk_GENERAL_NAME_push(gens, gn)) {
            GENERAL_NAME_free(gn);
            GENERAL_NAMES_free(gens);
            gens = NULL;
        }
    }
    va_end(ap);
    if (gens && (n = i2d_GENERAL_NAMES(gens, &der)) > 0) {
        out = apr_pstrcat(p, "subjectAltName=DER:",
                          testpki_hex(p, der, (apr_size_t)n), NULL);
    }
    OPENSSL_free(der);
    GENERAL_NAMES_free(gens);
    if (out == NULL) {
        bail_out("cannot encode a subjectAltName");
    }
    return out;
}

/* Seconds from now to t (negative: in the past). */
static long long secs_from_now(const ASN1_TIME *t)
{
    int days = 0, secs = 0;

    if (t == NULL || !ASN1_TIME_diff(&days, &secs, NULL, t)) {
        return -999999999LL;
    }
    return (long long)days * 86400 + secs;
}

static unsigned int ku_bits(X509 *x)
{
    uint32_t ku = X509_get_key_usage(x);

    return ku == UINT32_MAX ? 0 : (unsigned int)ku;
}

/* Is extension nid there, and critical?  -1: absent. */
static int ext_critical(X509 *x, int nid)
{
    int i = X509_get_ext_by_NID(x, nid, -1);

    if (i < 0) {
        return -1;
    }
    return X509_EXTENSION_get_critical(X509_get_ext(x, i)) ? 1 : 0;
}

/* The names of a request's subjectAltName, or NULL. */
static GENERAL_NAMES *req_san(X509_REQ *req)
{
    STACK_OF(X509_EXTENSION) *exts = X509_REQ_get_extensions(req);
    GENERAL_NAMES *gens = NULL;

    if (exts) {
        gens = X509V3_get_d2i(exts, NID_subject_alt_name, NULL, NULL);
        sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    }
    return gens;
}

/* Does the EKU of x hold exactly the list (names or OIDs, commas)? */
static int eku_is(X509 *x, const char *list, const char *what)
{
    EXTENDED_KEY_USAGE *eku = X509_get_ext_d2i(x, NID_ext_key_usage, NULL,
                                               NULL);
    char *copy, *tok, *last = NULL;
    int i = 0, same = 1;
    apr_pool_t *p;

    if (list == NULL || *list == '\0') {
        EXTENDED_KEY_USAGE_free(eku);
        return eku == NULL;
    }
    if (eku == NULL) {
        return 0;
    }
    apr_pool_create(&p, root);
    copy = apr_pstrdup(p, list);
    for (tok = apr_strtok(copy, ",", &last); tok;
         tok = apr_strtok(NULL, ",", &last), i++) {
        ASN1_OBJECT *want = OBJ_txt2obj(tok, 0);
        if (want == NULL || i >= sk_ASN1_OBJECT_num(eku)
            || OBJ_cmp(want, sk_ASN1_OBJECT_value(eku, i)) != 0) {
            diag("    %s: EKU %d is not %s", what, i, tok);
            same = 0;
        }
        ASN1_OBJECT_free(want);
    }
    if (i != sk_ASN1_OBJECT_num(eku)) {
        diag("    %s: %d EKU OIDs, expected %d", what,
             sk_ASN1_OBJECT_num(eku), i);
        same = 0;
    }
    sk_ASN1_OBJECT_pop_free(eku, ASN1_OBJECT_free);
    apr_pool_destroy(p);
    return same;
}

/* Chain verification against a store holding only ca. */
static int chain_ok(X509 *x, X509 *ca, unsigned long flags, int purpose)
{
    X509_STORE *store = X509_STORE_new();
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    int rv = 0;

    if (store && ctx && X509_STORE_add_cert(store, ca)
        && X509_STORE_CTX_init(ctx, store, x, NULL)) {
        if (flags) {
            X509_STORE_CTX_set_flags(ctx, flags);
        }
        if (purpose) {
            X509_STORE_CTX_set_purpose(ctx, purpose);
        }
        rv = X509_verify_cert(ctx) == 1;
        if (!rv) {
            diag("    X509_verify_cert: %s", X509_verify_cert_error_string(
                     X509_STORE_CTX_get_error(ctx)));
        }
    }
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(store);
    ERR_clear_error();
    return rv;
}

/* What an issued certificate must look like. */
typedef struct {
    X509 *ca;
    EVP_PKEY *ca_key;
    X509_REQ *csr;
    EVP_PKEY *key;          /* the request's key */
    int days;
    unsigned int ku;        /* expected KU_* bits */
    const char *eku;        /* expected EKU list, NULL: none */
    int nsan;               /* names expected in the SAN (all of the
                             * request's), 0: no SAN */
} expect_t;

/* Every check of an issued certificate, with what in each name. */
static void check_issued(X509 *x, const expect_t *e, const char *what)
{
    BIGNUM *bn;
    BASIC_CONSTRAINTS *bc;
    GENERAL_NAMES *got, *want;
    const ASN1_OCTET_STRING *ski, *aki, *ca_ski;
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    long long t;
    int crit = -1, i, nexts;

    ok(X509_verify(x, e->ca_key) == 1, "%s: signed by the CA key", what);
    ERR_clear_error();
    is_int(X509_get_version(x), 2, "%s: version 3", what);
    ok(X509_NAME_cmp(X509_get_issuer_name(x),
                     X509_get_subject_name(e->ca)) == 0,
       "%s: issuer is the CA's subject", what);
    ok(X509_NAME_cmp(X509_get_subject_name(x),
                     X509_REQ_get_subject_name(e->csr)) == 0,
       "%s: subject is the request's", what);
    ok(EVP_PKEY_eq(X509_get0_pubkey(x), e->key) == 1,
       "%s: public key is the request's", what);

    bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
    ok(bn && !BN_is_negative(bn) && !BN_is_zero(bn),
       "%s: serial positive", what);
    if (!ok(bn && BN_num_bits(bn) >= 64, "%s: serial >= 64 bits", what)) {
        diag("    %d bits", bn ? BN_num_bits(bn) : -1);
    }
    ok(ASN1_STRING_length(X509_get0_serialNumber(x)) <= 20,
       "%s: serial at most 20 octets", what);
    BN_free(bn);

    t = secs_from_now(X509_get0_notBefore(x));
    if (!ok(t >= -660 && t <= -540, "%s: notBefore 10 minutes back",
            what)) {
        diag("    notBefore is %lld s from now", t);
    }
    t = secs_from_now(X509_get0_notAfter(x));
    if (!ok(t >= (long long)e->days * 86400 - 120
            && t <= (long long)e->days * 86400 + 60,
            "%s: notAfter %d days on", what, e->days)) {
        diag("    notAfter is %lld s from now", t);
    }

    bc = X509_get_ext_d2i(x, NID_basic_constraints, &crit, NULL);
    ok(bc && !bc->ca && bc->pathlen == NULL && crit == 1,
       "%s: basicConstraints critical CA:FALSE", what);
    BASIC_CONSTRAINTS_free(bc);

    is_int(ext_critical(x, NID_key_usage), 1, "%s: KeyUsage critical",
           what);
    if (!is_int(ku_bits(x), e->ku, "%s: KeyUsage bits", what)) {
        diag("    (KU_* bits of openssl/x509v3.h)");
    }

    ok(eku_is(x, e->eku, what), "%s: EKU %s", what,
       e->eku ? e->eku : "absent");
    if (e->eku) {
        is_int(ext_critical(x, NID_ext_key_usage), 0,
               "%s: EKU not critical", what);
    }

    ski = X509_get0_subject_key_id(x);
    ok(ski && X509_pubkey_digest(x, EVP_sha1(), md, &mdlen)
       && (unsigned int)ASN1_STRING_length(ski) == mdlen
       && memcmp(ASN1_STRING_get0_data(ski), md, mdlen) == 0,
       "%s: SKI the SHA-1 of the key", what);
    aki = X509_get0_authority_key_id(x);
    ca_ski = X509_get0_subject_key_id(e->ca);
    ok(aki && ca_ski && ASN1_OCTET_STRING_cmp(aki, ca_ski) == 0,
       "%s: AKI the CA's SKI", what);

    got = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    want = req_san(e->csr);
    if (e->nsan == 0) {
        ok(got == NULL, "%s: no subjectAltName", what);
    }
    else {
        int same = got && want
                   && sk_GENERAL_NAME_num(got) == e->nsan
                   && sk_GENERAL_NAME_num(want) == e->nsan;
        for (i = 0; same && i < e->nsan; i++) {
            if (GENERAL_NAME_cmp(sk_GENERAL_NAME_value(got, i),
                                 sk_GENERAL_NAME_value(want, i)) != 0) {
                diag("    %s: SAN name %d differs", what, i);
                same = 0;
            }
        }
        if (!ok(same, "%s: subjectAltName copied (%d names)", what,
                e->nsan)) {
            diag("    got %d names", got ? sk_GENERAL_NAME_num(got) : -1);
        }
    }
    GENERAL_NAMES_free(got);
    GENERAL_NAMES_free(want);

    /* BC, KU, SKI, AKI, and EKU and SAN when expected: nothing else */
    nexts = 4 + (e->eku ? 1 : 0) + (e->nsan ? 1 : 0);
    is_int(X509_get_ext_count(x), nexts, "%s: %d extensions, no more",
           what, nexts);

    ok(chain_ok(x, e->ca, 0, 0), "%s: X509_verify_cert", what);
    ok(chain_ok(x, e->ca, X509_V_FLAG_X509_STRICT, 0),
       "%s: X509_verify_cert, X509_STRICT", what);
}

/* Issue, expecting success; NULL (and a failed test) otherwise. */
static X509 *issue_ok(apr_pool_t *p, X509 *ca, EVP_PKEY *ca_key,
                      X509_REQ *csr, const scep_template_t *t,
                      const char *what)
{
    X509 *x = NULL;
    const char *why = scep_ca_issue(p, ca, ca_key, EVP_sha256(), csr, t,
                                    &x);
    const char *check = scep_ca_check(p, csr);

    ok(check == NULL, "%s: scep_ca_check finds nothing to refuse", what);
    if (!ok(why == NULL && x != NULL, "%s: issued", what)) {
        diag("    refused: %s", why ? why : "(no reason)");
        testpki_diag_ossl(what);
        return NULL;
    }
    return x;
}

/* Issue, expecting a refusal whose reason mentions word. */
static void issue_refused(apr_pool_t *p, X509_REQ *csr,
                          const scep_template_t *t, const char *word,
                          const char *what)
{
    X509 *x = NULL;
    const char *why = scep_ca_issue(p, pki->ca_cert, pki->ca_key,
                                    EVP_sha256(), csr, t, &x);

    ok(why != NULL && *why, "%s: refused with a reason", what);
    ok(x == NULL, "%s: no certificate", what);
    if (why) {
        diag("    reason: %s", why);
    }
    ok(why && contains_nocase(why, word), "%s: reason names %s", what,
       word);
    why = scep_ca_check(p, csr);
    ok(why && contains_nocase(why, word),
       "%s: scep_ca_check refuses it too, naming %s", what, word);
    ERR_clear_error();
}

/* ------------------------------------------------------------------ */
/* What a request asks for                                             */

static void test_request_key_usage(void)
{
    apr_pool_t *p;
    EVP_PKEY *key = testpki_rsa_key(4);
    static const char *const ds[] = {
        "keyUsage=critical,digitalSignature", NULL
    };
    static const char *const ke[] = {
        "keyUsage=critical,keyEncipherment", NULL
    };
    static const char *const both[] = {
        "keyUsage=critical,digitalSignature,keyEncipherment", NULL
    };
    static const char *const noncrit[] = {
        "keyUsage=digitalSignature,keyEncipherment", NULL
    };
    static const char *const others[] = {
        "subjectAltName=DNS:ku.example.com",
        "extendedKeyUsage=clientAuth", NULL
    };

    apr_pool_create(&p, root);
    is_int(scep_ca_request_key_usage(csr_exts(p, key, "/CN=ku ds", ds)),
           0x80, "request KU digitalSignature: 0x80");
    is_int(scep_ca_request_key_usage(csr_exts(p, key, "/CN=ku ke", ke)),
           0x20, "request KU keyEncipherment: 0x20");
    is_int(scep_ca_request_key_usage(csr_exts(p, key, "/CN=ku both",
                                              both)),
           0xa0, "request KU both: 0xa0");
    is_int(scep_ca_request_key_usage(csr_exts(p, key, "/CN=ku nc",
                                              noncrit)),
           0xa0, "request KU both, not critical: 0xa0");
    is_int(scep_ca_request_key_usage(csr_exts(p, key, "/CN=ku none",
                                              NULL)),
           -1, "request without extensions: -1");
    is_int(scep_ca_request_key_usage(csr_exts(p, key, "/CN=ku others",
                                              others)),
           -1, "request with extensions but no KU: -1");
    is_int(scep_ca_request_key_usage(testpki_csr(p, key, "/CN=ku pw",
                                                 "secret")),
           -1, "request with only a challengePassword: -1");
    ERR_clear_error();
    apr_pool_destroy(p);
}

/* The challengePassword attribute's ASN.1 string type in req. */
static int challenge_type(X509_REQ *req)
{
    int idx = X509_REQ_get_attr_by_NID(req, NID_pkcs9_challengePassword,
                                       -1);
    ASN1_TYPE *t = idx >= 0 ? X509_ATTRIBUTE_get0_type(
                                  X509_REQ_get_attr(req, idx), 0)
                            : NULL;

    return t ? t->type : -1;
}

static void challenge_is(X509_REQ *req, int type, const char *pw,
                         apr_size_t pwlen, const char *what)
{
    apr_pool_t *p;
    apr_size_t len = 12345;
    const char *got;

    apr_pool_create(&p, root);
    is_int(challenge_type(req), type, "%s: attribute type as meant", what);
    got = scep_ca_request_challenge(p, req, &len);
    ok(got != NULL, "%s: found", what);
    is_int(len, pwlen, "%s: length", what);
    ok(got && len == pwlen && memcmp(got, pw, pwlen) == 0, "%s: bytes",
       what);
    apr_pool_destroy(p);
}

static void test_request_challenge(void)
{
    apr_pool_t *p;
    EVP_PKEY *key = testpki_rsa_key(4);
    testpki_csrspec_t spec;
    static const char utf8[] = "p\xc3\xa4ssw\xc3\xb6rd \xe2\x82\xac";
    static const char nul[] = "ab\0cd";
    static const char *const exts[] = {
        "keyUsage=critical,digitalSignature", SAN_ALL, NULL
    };
    apr_size_t len = 0;

    apr_pool_create(&p, root);
    memset(&spec, 0, sizeof(spec));
    spec.subject = "/CN=challenge";
    spec.key = key;

    spec.challenge = "Secret-123";
    spec.challenge_type = V_ASN1_PRINTABLESTRING;
    challenge_is(testpki_csr_spec(p, &spec), V_ASN1_PRINTABLESTRING,
                 "Secret-123", 10, "challenge PrintableString");

    spec.challenge = utf8;
    spec.challenge_type = V_ASN1_UTF8STRING;
    challenge_is(testpki_csr_spec(p, &spec), V_ASN1_UTF8STRING, utf8,
                 strlen(utf8), "challenge UTF8String");

    spec.challenge = nul;
    spec.challenge_len = 5;
    challenge_is(testpki_csr_spec(p, &spec), V_ASN1_UTF8STRING, nul, 5,
                 "challenge UTF8String with a NUL inside");
    spec.challenge_len = 0;

    spec.challenge = "a@b";  /* not printable: IA5String */
    spec.challenge_type = V_ASN1_IA5STRING;
    challenge_is(testpki_csr_spec(p, &spec), V_ASN1_IA5STRING, "a@b", 3,
                 "challenge IA5String");

    spec.challenge = "sscep";
    spec.challenge_type = V_ASN1_PRINTABLESTRING;
    spec.exts = exts;
    challenge_is(testpki_csr_spec(p, &spec), V_ASN1_PRINTABLESTRING,
                 "sscep", 5, "challenge beside extensions");

    ok(scep_ca_request_challenge(p, testpki_csr(p, key, "/CN=none", NULL),
                                 &len) == NULL,
       "no challengePassword: NULL");
    ok(scep_ca_request_challenge(p, csr_exts(p, key, "/CN=none", exts),
                                 &len) == NULL,
       "extensions but no challengePassword: NULL");
    ERR_clear_error();
    apr_pool_destroy(p);
}

/* ------------------------------------------------------------------ */
/* Issuing                                                             */

static void test_issue_templates(void)
{
    apr_pool_t *p;
    EVP_PKEY *key = testpki_rsa_key(5);
    static const char *const exts[] = {
        "keyUsage=critical,digitalSignature", SAN_ALL, NULL
    };
    const scep_template_t *t;
    X509_REQ *csr;
    int n = 0;

    apr_pool_create(&p, root);
    csr = csr_exts(p, key, "/O=mod_scep test/OU=devices/CN=device1", exts);
    ok(scep_ca_builtin_templates[0].name != NULL,
       "there are built-in templates");
    for (t = scep_ca_builtin_templates; t->name; t++, n++) {
        const char *what = apr_psprintf(p, "template %s", t->name);
        expect_t e;
        X509 *x;

        ok(t->key_usage != 0, "%s: has a KeyUsage", what);
        ok(t->validity_days > 0, "%s: has a validity", what);
        x = issue_ok(p, pki->ca_cert, pki->ca_key, csr, t, what);
        if (x == NULL) {
            continue;
        }
        memset(&e, 0, sizeof(e));
        e.ca = pki->ca_cert;
        e.ca_key = pki->ca_key;
        e.csr = csr;
        e.key = key;
        e.days = t->validity_days;
        e.ku = t->key_usage;
        e.eku = t->eku;
        e.nsan = SAN_ALL_COUNT;
        check_issued(x, &e, what);
    }
    is_str(scep_ca_builtin_templates[0].name, "IPSECIntermediateOffline",
           "NDES's default template first");
    ok(n >= 6, "%d built-in templates", n);
    ERR_clear_error();
    apr_pool_destroy(p);
}

static void test_serials(void)
{
    apr_pool_t *p;
    apr_hash_t *seen;
    X509_REQ *csr;
    int i, distinct = 1, issued = 0, minbits = 1000;

    apr_pool_create(&p, root);
    seen = apr_hash_make(p);
    csr = testpki_csr(p, testpki_rsa_key(5), "/CN=serials", NULL);
    for (i = 0; i < 50; i++) {
        X509 *x = NULL;
        const char *hex;
        BIGNUM *bn;

        if (scep_ca_issue(p, pki->ca_cert, pki->ca_key, EVP_sha256(), csr,
                          &scep_ca_builtin_templates[0], &x) != NULL
            || x == NULL) {
            continue;
        }
        issued++;
        bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
        if (bn && !BN_is_negative(bn) && BN_num_bits(bn) < minbits) {
            minbits = BN_num_bits(bn);
        }
        if (bn == NULL || BN_is_negative(bn)) {
            minbits = -1;
        }
        BN_free(bn);
        hex = scep_ca_serial_hex(p, x);
        if (apr_hash_get(seen, hex, APR_HASH_KEY_STRING)) {
            diag("    serial %s twice", hex);
            distinct = 0;
        }
        apr_hash_set(seen, hex, APR_HASH_KEY_STRING, hex);
    }
    is_int(issued, 50, "50 certificates issued from one request");
    ok(distinct && apr_hash_count(seen) == 50, "50 different serials");
    if (!ok(minbits >= 64, "every serial positive, >= 64 bits")) {
        diag("    smallest: %d bits", minbits);
    }
    ERR_clear_error();
    apr_pool_destroy(p);
}

/* A template without KeyUsage takes the request's. */
static void test_template_ku_from_request(void)
{
    apr_pool_t *p;
    EVP_PKEY *key = testpki_rsa_key(6);
    static const scep_template_t t = { "FromRequest", 30, 0, NULL };
    static const char *const ds[] = {
        "keyUsage=critical,digitalSignature", NULL
    };
    static const char *const ke[] = {
        "keyUsage=critical,keyEncipherment", NULL
    };
    static const char *const ka[] = {
        "keyUsage=critical,digitalSignature,keyAgreement", NULL
    };
    static const char *const casign[] = {
        "keyUsage=critical,digitalSignature,keyCertSign,cRLSign", NULL
    };
    static const char *const only_casign[] = {
        "keyUsage=critical,keyCertSign", NULL
    };
    static const char *const eku[] = {
        "extendedKeyUsage=codeSigning,OCSPSigning", NULL
    };
    static const struct {
        const char *const *exts;
        unsigned int ku;
        const char *what;
    } cases[] = {
        { ds, KU_DIGITAL_SIGNATURE, "request KU digitalSignature" },
        { ke, KU_KEY_ENCIPHERMENT, "request KU keyEncipherment" },
        { ka, KU_DIGITAL_SIGNATURE | KU_KEY_AGREEMENT,
          "request KU digitalSignature,keyAgreement" },
        { casign, KU_DIGITAL_SIGNATURE,
          "request KU with keyCertSign,cRLSign (not granted)" },
    };
    size_t i;
    X509 *x;
    X509_REQ *csr;
    expect_t e;

    apr_pool_create(&p, root);
    memset(&e, 0, sizeof(e));
    e.ca = pki->ca_cert;
    e.ca_key = pki->ca_key;
    e.key = key;
    e.days = 30;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *what = apr_psprintf(p, "KU 0 template, %s",
                                        cases[i].what);
        csr = csr_exts(p, key, "/CN=ku from request", cases[i].exts);
        x = issue_ok(p, pki->ca_cert, pki->ca_key, csr, &t, what);
        if (x) {
            e.csr = csr;
            e.ku = cases[i].ku;
            check_issued(x, &e, what);
        }
    }

    /* no KU asked for: the usual pair (scep_ca.c's fallback) */
    csr = csr_exts(p, key, "/CN=ku from request", NULL);
    x = issue_ok(p, pki->ca_cert, pki->ca_key, csr, &t,
                 "KU 0 template, request without KU");
    if (x) {
        ok(ku_bits(x) == (KU_DIGITAL_SIGNATURE | KU_KEY_ENCIPHERMENT),
           "KU 0 template, request without KU: digitalSignature,"
           "keyEncipherment");
        is_int(ext_critical(x, NID_key_usage), 1,
               "KU 0 template, request without KU: KU critical");
    }

    /* a KU of nothing the factory grants: never keyCertSign, never an
     * empty KeyUsage; refused or the usual pair */
    csr = csr_exts(p, key, "/CN=ku only certsign", only_casign);
    x = NULL;
    {
        const char *why = scep_ca_issue(p, pki->ca_cert, pki->ca_key,
                                        EVP_sha256(), csr, &t, &x);
        if (!ok(why ? x == NULL
                    : x && ku_bits(x) != 0
                      && !(ku_bits(x) & (KU_KEY_CERT_SIGN | KU_CRL_SIGN)),
                "KU 0 template, request KU keyCertSign only: refused, or "
                "issued with a KeyUsage without it")) {
            diag("    issued with KeyUsage bits 0x%x (extension %s)",
                 x ? ku_bits(x) : 0,
                 x && ext_critical(x, NID_key_usage) >= 0 ? "present"
                                                          : "absent");
        }
        if (!ok(why == NULL || contains_nocase(why, "KeyUsage"),
                "KU 0 template, request KU keyCertSign only: a refusal "
                "names KeyUsage")) {
            diag("    reason: %s", why);
        }
        ERR_clear_error();
    }

    /* the request's EKU is not copied: the template decides */
    csr = csr_exts(p, key, "/CN=eku asked", eku);
    x = issue_ok(p, pki->ca_cert, pki->ca_key, csr,
                 &scep_ca_builtin_templates[2], "request EKU codeSigning");
    if (x) {
        ok(eku_is(x, scep_ca_builtin_templates[2].eku, "request EKU"),
           "request EKU codeSigning: the template's EKU instead");
    }
    ERR_clear_error();
    apr_pool_destroy(p);
}

/* What a request may carry and still be issued. */
static void test_accepted(void)
{
    apr_pool_t *p;
    EVP_PKEY *key = testpki_rsa_key(6);
    const scep_template_t *t = &scep_ca_builtin_templates[2];
    static const char *const odd[] = {
        ODD_OID "=DER:0500", SAN_ALL, NULL
    };
    static const char *const bc_false[] = {
        "basicConstraints=critical,CA:FALSE", NULL
    };
    static const char *const known_crit[] = {
        "keyUsage=critical,digitalSignature",
        "extendedKeyUsage=critical,clientAuth",
        "subjectAltName=critical,DNS:crit.example.com", NULL
    };
    const char *near_sid[2];
    X509_REQ *csr;
    X509 *x;
    ASN1_OBJECT *o;
    expect_t e;

    apr_pool_create(&p, root);
    memset(&e, 0, sizeof(e));
    e.ca = pki->ca_cert;
    e.ca_key = pki->ca_key;
    e.key = key;
    e.days = t->validity_days;
    e.ku = t->key_usage;
    e.eku = t->eku;

    csr = csr_exts(p, key, "/CN=odd extension", odd);
    x = issue_ok(p, pki->ca_cert, pki->ca_key, csr, t,
                 "unknown non-critical extension");
    if (x) {
        o = OBJ_txt2obj(ODD_OID, 1);
        ok(o && X509_get_ext_by_OBJ(x, o, -1) < 0,
           "unknown non-critical extension: not copied");
        ASN1_OBJECT_free(o);
        e.csr = csr;
        e.nsan = SAN_ALL_COUNT;
        check_issued(x, &e, "unknown non-critical extension");
    }

    csr = csr_exts(p, key, "/CN=bc false", bc_false);
    x = issue_ok(p, pki->ca_cert, pki->ca_key, csr, t,
                 "basicConstraints CA:FALSE asked for");
    if (x) {
        e.csr = csr;
        e.nsan = 0;
        check_issued(x, &e, "basicConstraints CA:FALSE asked for");
    }

    csr = csr_exts(p, key, "/CN=known critical", known_crit);
    x = issue_ok(p, pki->ca_cert, pki->ca_key, csr, t,
                 "known extensions marked critical");
    if (x) {
        e.csr = csr;
        e.nsan = 1;
        check_issued(x, &e, "known extensions marked critical");
    }

    near_sid[0] = san_der(p, "tag:microsoft.com,2022-09-14:side:x",
                          "https://example.com/" SID_URI, NULL);
    near_sid[1] = NULL;
    csr = csr_exts(p, key, "/CN=near sid", near_sid);
    x = issue_ok(p, pki->ca_cert, pki->ca_key, csr, t,
                 "URIs that only look like a SID URI");
    if (x) {
        e.csr = csr;
        e.nsan = 2;
        check_issued(x, &e, "URIs that only look like a SID URI");
    }

    ERR_clear_error();
    apr_pool_destroy(p);
}

/* What a request may not decide. */
static void test_refused(void)
{
    apr_pool_t *p;
    EVP_PKEY *key = testpki_rsa_key(6);
    const scep_template_t *t;
    static const char *const bc_true[] = {
        "basicConstraints=critical,CA:TRUE", NULL
    };
    static const char *const bc_true_nc[] = {
        "basicConstraints=CA:TRUE,pathlen:0", NULL
    };
    static const char *const sid_ext[] = {
        "1.3.6.1.4.1.311.25.2=" SID_EXT_DER, NULL
    };
    static const char *const sid_ext_crit[] = {
        "1.3.6.1.4.1.311.25.2=critical," SID_EXT_DER, NULL
    };
    const char *sid_uri[2] = { NULL, NULL };
    const char *sid_uri_last[2] = { NULL, NULL };
    const char *sid_uri_upper[2] = { NULL, NULL };
    static const char *const odd_crit[] = {
        ODD_OID "=critical,DER:0500", NULL
    };
    static const char *const odd_crit_among[] = {
        "keyUsage=critical,digitalSignature", SAN_ALL,
        ODD_OID "=critical,DER:0C0474657374", NULL
    };
    /* a known extension a request has no say in, critical */
    static const char *const crl_dp_crit[] = {
        "crlDistributionPoints=critical,URI:http://example.com/x.crl", NULL
    };

    apr_pool_create(&p, root);
    sid_uri[0] = san_der(p, SID_URI, NULL);
    sid_uri_last[0] = san_der(p, "DNS:a.example.com",
                              "https://example.com/", SID_URI, NULL);
    sid_uri_upper[0] = san_der(p, "DNS:a.example.com",
                               "TAG:MICROSOFT.COM,2022-09-14:SID:"
                               "S-1-5-21-1-2-3-500", NULL);
    for (t = scep_ca_builtin_templates; t->name; t++) {
        const char *what = apr_psprintf(p, "%s: CA:TRUE", t->name);
        issue_refused(p, csr_exts(p, key, "/CN=wants ca", bc_true), t, "CA",
                      what);
    }
    t = &scep_ca_builtin_templates[0];
    issue_refused(p, csr_exts(p, key, "/CN=wants ca", bc_true_nc), t, "CA",
                  "CA:TRUE not critical, pathlen 0");
    issue_refused(p, csr_exts(p, key, "/CN=sid", sid_ext), t, "SID",
                  "SID extension");
    issue_refused(p, csr_exts(p, key, "/CN=sid", sid_ext_crit), t, "SID",
                  "SID extension, critical");
    issue_refused(p, csr_exts(p, key, "/CN=sid", sid_uri), t, "SID",
                  "SID URI in the SAN");
    issue_refused(p, csr_exts(p, key, "/CN=sid", sid_uri_last), t, "SID",
                  "SID URI after other names");
    issue_refused(p, csr_exts(p, key, "/CN=sid", sid_uri_upper), t, "SID",
                  "SID URI in upper case");
    issue_refused(p, csr_exts(p, key, "/CN=odd", odd_crit), t, "critical",
                  "unknown critical extension");
    issue_refused(p, csr_exts(p, key, "/CN=odd", odd_crit_among), t,
                  "critical", "unknown critical extension among known ones");
    issue_refused(p, csr_exts(p, key, "/CN=odd", crl_dp_crit), t,
                  "critical", "critical crlDistributionPoints");
    apr_pool_destroy(p);
}

/* ------------------------------------------------------------------ */
/* The hex helpers                                                     */

/* Upper-case hex of the serial's content octets, as expected. */
static const char *serial_expected(apr_pool_t *p, X509 *x)
{
    const ASN1_INTEGER *s = X509_get0_serialNumber(x);
    const unsigned char *d = ASN1_STRING_get0_data(s);
    int n = ASN1_STRING_length(s), i;
    char *hex = apr_palloc(p, 2 * (apr_size_t)n + 1);

    /* leading zero octets (none in DER) do not count */
    while (n > 1 && d[0] == 0) {
        d++;
        n--;
    }
    for (i = 0; i < n; i++) {
        apr_snprintf(hex + 2 * i, 3, "%02X", d[i]);
    }
    hex[2 * n] = '\0';
    return hex;
}

/* A CRL distribution point the caller sets (SCEPLocalCACRLURL). */
static void test_crl_url(void)
{
    apr_pool_t *p;
    scep_template_t t = scep_ca_builtin_templates[0];
    X509 *x;
    STACK_OF(DIST_POINT) *dps;
    const char *uri = "http://pki.example.com/crl/ca.crl";

    apr_pool_create(&p, root);
    t.crl_url = uri;
    x = issue_ok(p, pki->ca_cert, pki->ca_key,
                 testpki_csr(p, testpki_rsa_key(4), "/CN=cdp", NULL), &t,
                 "template with a CRL URL");
    dps = x ? X509_get_ext_d2i(x, NID_crl_distribution_points, NULL, NULL)
            : NULL;
    ok(dps && sk_DIST_POINT_num(dps) == 1, "CRL URL: one distribution point");
    if (dps && sk_DIST_POINT_num(dps) == 1) {
        DIST_POINT *dp = sk_DIST_POINT_value(dps, 0);
        GENERAL_NAME *gn = dp->distpoint && dp->distpoint->type == 0
                               ? sk_GENERAL_NAME_value(
                                     dp->distpoint->name.fullname, 0)
                               : NULL;
        ok(gn && gn->type == GEN_URI
               && (size_t)gn->d.uniformResourceIdentifier->length
                      == strlen(uri)
               && !memcmp(gn->d.uniformResourceIdentifier->data, uri,
                          strlen(uri)),
           "CRL URL: the URI, as given");
    }
    sk_DIST_POINT_pop_free(dps, DIST_POINT_free);
    t.crl_url = NULL;
    x = issue_ok(p, pki->ca_cert, pki->ca_key,
                 testpki_csr(p, testpki_rsa_key(4), "/CN=no cdp", NULL), &t,
                 "template without a CRL URL");
    ok(x && X509_get_ext_by_NID(x, NID_crl_distribution_points, -1) < 0,
       "no CRL URL: no distribution point");
    apr_pool_destroy(p);
}

static void test_hex(void)
{
    apr_pool_t *p;
    testpki_certspec_t spec;
    X509 *x;
    X509_REQ *csr;
    const char *h;
    size_t i;
    int upper;

    apr_pool_create(&p, root);
    is_str(scep_ca_sha256_hex(p, "abc", 3),
           "BA7816BF8F01CFEA414140DE5DAE2223"
           "B00361A396177A9CB410FF61F20015AD", "sha256_hex(\"abc\")");
    is_str(scep_ca_sha256_hex(p, "", 0),
           "E3B0C44298FC1C149AFBF4C8996FB924"
           "27AE41E4649B934CA495991B7852B855", "sha256_hex(\"\")");
    is_str(scep_ca_sha256_hex(p, "a\0b", 3),
           "59B271AE1BBCB1D31D41929817F4B16F"
           "B439EB4F31520B5AD1D5CE98920A7138",
           "sha256_hex(\"a\\0b\"): length-delimited");

    memset(&spec, 0, sizeof(spec));
    spec.subject = "/CN=serial";
    spec.key = testpki_rsa_key(4);
    spec.serial = 0x0123456789ABCDEFL;
    x = testpki_cert(p, &spec);
    is_str(x ? scep_ca_serial_hex(p, x) : NULL, "0123456789ABCDEF",
           "serial_hex 0x0123456789ABCDEF");
    spec.serial = 0x7EDCBA9876543210L;
    x = testpki_cert(p, &spec);
    is_str(x ? scep_ca_serial_hex(p, x) : NULL, "7EDCBA9876543210",
           "serial_hex 0x7EDCBA9876543210");
    spec.serial = 0xABCDL;
    x = testpki_cert(p, &spec);
    is_str(x ? scep_ca_serial_hex(p, x) : NULL, "ABCD",
           "serial_hex 0xABCD (high bit set: a sign octet in DER)");
    spec.serial = 1;
    x = testpki_cert(p, &spec);
    is_str(x ? scep_ca_serial_hex(p, x) : NULL, "01", "serial_hex 1");

    csr = testpki_csr(p, testpki_rsa_key(5), "/CN=serial hex", NULL);
    for (i = 0; i < 5; i++) {
        x = NULL;
        if (scep_ca_issue(p, pki->ca_cert, pki->ca_key, EVP_sha256(), csr,
                          &scep_ca_builtin_templates[0], &x) != NULL) {
            x = NULL;
        }
        h = x ? scep_ca_serial_hex(p, x) : NULL;
        is_str(h, x ? serial_expected(p, x) : "(not issued)",
               "serial_hex of issued certificate %d", (int)i + 1);
        upper = h != NULL;
        for (; h && *h; h++) {
            if (!isxdigit((unsigned char)*h) || islower((unsigned char)*h)) {
                upper = 0;
            }
        }
        ok(upper, "serial_hex of issued certificate %d: upper-case hex",
           (int)i + 1);
    }
    ERR_clear_error();
    apr_pool_destroy(p);
}

/* ------------------------------------------------------------------ */
/* A CA certificate without subjectKeyIdentifier                       */

static void test_ca_without_ski(void)
{
    apr_pool_t *p;
    testpki_certspec_t spec;
    X509 *ca, *x;
    X509_REQ *csr;
    int idx;

    apr_pool_create(&p, root);
    memset(&spec, 0, sizeof(spec));
    spec.subject = "/O=mod_scep test/CN=CA without SKI";
    spec.key = pki->ca_key;
    spec.serial = 0x5358;
    spec.ku = KU_KEY_CERT_SIGN | KU_CRL_SIGN;
    spec.ca = 1;
    ca = testpki_cert(p, &spec);
    idx = ca ? X509_get_ext_by_NID(ca, NID_subject_key_identifier, -1) : -1;
    if (idx < 0) {
        bail_out("cannot make the CA without SKI");
    }
    X509_EXTENSION_free(X509_delete_ext(ca, idx));
    if (!X509_sign(ca, pki->ca_key, EVP_sha256())) {
        bail_out("cannot re-sign the CA without SKI");
    }
    ok(X509_get0_subject_key_id(ca) == NULL, "CA without SKI: no SKI");

    csr = testpki_csr(p, testpki_rsa_key(7), "/CN=device of a CA without "
                      "SKI", NULL);
    x = issue_ok(p, ca, pki->ca_key, csr, &scep_ca_builtin_templates[0],
                 "CA without SKI");
    if (x) {
        ok(X509_verify(x, pki->ca_key) == 1,
           "CA without SKI: signed by the CA key");
        ok(chain_ok(x, ca, 0, 0), "CA without SKI: X509_verify_cert");
    }
    ERR_clear_error();
    apr_pool_destroy(p);
}

/* ------------------------------------------------------------------ */
/* An EC CA                                                            */

static void test_ec_ca(void)
{
    apr_pool_t *p;
    testpki_certspec_t spec;
    EVP_PKEY *ec_key = testpki_ec_key();
    EVP_PKEY *ec_req;
    static const char *const exts[] = { SAN_ALL, NULL };
    const scep_template_t *t = &scep_ca_builtin_templates[1];
    X509 *ca, *x;
    X509_REQ *csr;
    expect_t e;

    apr_pool_create(&p, root);
    memset(&spec, 0, sizeof(spec));
    spec.subject = "/O=mod_scep test/CN=mod_scep EC Test CA";
    spec.key = ec_key;
    spec.serial = 0x4543;
    spec.ku = KU_KEY_CERT_SIGN | KU_CRL_SIGN | KU_DIGITAL_SIGNATURE;
    spec.ca = 1;
    ca = testpki_cert(p, &spec);
    if (ca == NULL) {
        bail_out("cannot make the EC CA");
    }
    memset(&e, 0, sizeof(e));
    e.ca = ca;
    e.ca_key = ec_key;
    e.days = t->validity_days;
    e.ku = t->key_usage;
    e.eku = t->eku;
    e.nsan = SAN_ALL_COUNT;

    /* an RSA request */
    e.key = testpki_rsa_key(7);
    e.csr = csr = csr_exts(p, e.key, "/CN=rsa device of an EC CA", exts);
    x = issue_ok(p, ca, ec_key, csr, t, "EC CA, RSA request");
    if (x) {
        ok(X509_get_signature_nid(x) == NID_ecdsa_with_SHA256,
           "EC CA, RSA request: ecdsa-with-SHA256");
        check_issued(x, &e, "EC CA, RSA request");
    }

    /* an EC request */
    ec_req = testpki_keep_pkey(p, EVP_PKEY_Q_keygen(NULL, NULL, "EC",
                                                    "P-256"));
    if (ec_req == NULL) {
        bail_out("EC keygen");
    }
    e.key = ec_req;
    e.csr = csr = csr_exts(p, ec_req, "/CN=ec device of an EC CA", exts);
    x = issue_ok(p, ca, ec_key, csr, t, "EC CA, EC request");
    if (x) {
        check_issued(x, &e, "EC CA, EC request");
    }

    /* and an EC request to the RSA CA */
    e.ca = pki->ca_cert;
    e.ca_key = pki->ca_key;
    x = issue_ok(p, pki->ca_cert, pki->ca_key, csr, t, "RSA CA, EC request");
    if (x) {
        check_issued(x, &e, "RSA CA, EC request");
    }
    ERR_clear_error();
    apr_pool_destroy(p);
}

int main(void)
{
    int rc;

    apr_initialize();
    apr_pool_create(&root, NULL);
    pki = testpki_get();
    if (pki == NULL) {
        bail_out("cannot build the test PKI");
    }

    test_request_key_usage();
    test_request_challenge();
    test_issue_templates();
    test_serials();
    test_template_ku_from_request();
    test_accepted();
    test_refused();
    test_crl_url();
    test_hex();
    test_ca_without_ski();
    test_ec_ca();

    rc = done_testing();
    testpki_cleanup();
    apr_pool_destroy(root);
    apr_terminate();
    return rc;
}
