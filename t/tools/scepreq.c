/* Licensed under the Apache License, Version 2.0; see LICENSE. */

/*
 * TEST ONLY: scepreq, a minimal SCEP client for the Apache::Test suite
 * (t/50-enroll.t and friends compile it with "cc ... -lcrypto").  It uses
 * OpenSSL's CMS API only and shares no code with mod_scep, so that the
 * module is checked against an independent implementation.
 *
 *   scepreq req --key KEY.pem --csr CSR.der --ra-enc RA-ENC.pem
 *               --transid ID --out MSG.der --state STATE
 *               [--cipher aes128|aes192|aes256|des3|des]
 *               [--digest sha256|sha384|sha512|sha224|sha1]
 *               [--msgtype N] [--signer-out CERT.pem] [--no-nonce]
 *               [--signer-cert CERT.pem [--signer-key KEY.pem]]
 *               [--content DATA.der]
 *     Builds a pkiMessage: the PKCS#10 (DER) in an EnvelopedData to the
 *     RA encryption certificate, in a SignedData signed with KEY under a
 *     fresh self-signed certificate (named as the request), with the
 *     signed attributes messageType (default 19, PKCSReq), transactionID
 *     and senderNonce.  STATE receives what "rep" needs: the senderNonce
 *     and the signer.
 *     --signer-cert: sign under this certificate instead (a renewal
 *     signed by the current certificate), with --signer-key (default
 *     KEY); "rep" then needs that key.  --content: envelope this
 *     messageData instead of a PKCS#10 (CertPoll, GetCert, GetCRL; see
 *     "ias" and "iasubj"); --csr is then optional and only names the
 *     self-signed certificate.
 *
 *   scepreq ias --ca CA.pem (--serial HEX | --serial-from CERT.pem)
 *               --out DATA.der
 *     Writes an IssuerAndSerialNumber (GetCert, GetCRL): the issuer is
 *     the subject of CA.pem.
 *
 *   scepreq iasubj --ca CA.pem --subject-from FILE --out DATA.der
 *     Writes an IssuerAndSubject (CertPoll, RFC 8894 3.3.3): SEQUENCE
 *     { issuer Name, subject Name }, the issuer the subject of CA.pem,
 *     the subject that of FILE (a certificate or a PKCS#10, PEM or DER).
 *
 *   scepreq rep --in REPLY.der --key KEY.pem --state STATE
 *               --ra-sign RA-SIGN.pem [--out CERTS.pem] [--crl-out CRLS.pem]
 *     Checks a CertRep: signature, signer, attributes; for SUCCESS opens
 *     the envelope with KEY and writes its certificates (PEM, in order)
 *     and its CRLs (PEM, GetCRL).
 *     Prints one "name=value" per line:
 *       verified=1|0  signer_is_ra=1|0  messageType=N  pkiStatus=N
 *       failInfo=N|-  transactionID=...  recipientNonce_ok=1|0
 *       senderNonce_len=N  digest=NAME  sigalg=NAME  contentType_attr=1|0
 *       cipher=NAME  certs=N  crls=N  (cipher, certs, crls: SUCCESS only)
 *     Exit status 0 when the reply could be read (whatever its status).
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/pkcs7.h>
#include <openssl/provider.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#define NONCE_LEN 16

static int nid_msgtype, nid_status, nid_failinfo, nid_snonce, nid_rnonce,
    nid_transid;

static void die(const char *what)
{
    fprintf(stderr, "scepreq: %s\n", what);
    ERR_print_errors_fp(stderr);
    exit(2);
}

static void init_oids(void)
{
    static const struct { const char *oid, *name; int *nid; } a[] = {
        { "2.16.840.1.113733.1.9.2", "scepMessageType", &nid_msgtype },
        { "2.16.840.1.113733.1.9.3", "scepPkiStatus", &nid_status },
        { "2.16.840.1.113733.1.9.4", "scepFailInfo", &nid_failinfo },
        { "2.16.840.1.113733.1.9.5", "scepSenderNonce", &nid_snonce },
        { "2.16.840.1.113733.1.9.6", "scepRecipientNonce", &nid_rnonce },
        { "2.16.840.1.113733.1.9.7", "scepTransactionID", &nid_transid },
    };
    size_t i;

    for (i = 0; i < sizeof(a) / sizeof(a[0]); i++) {
        int nid = OBJ_txt2nid(a[i].oid);
        if (nid == NID_undef) {
            nid = OBJ_create(a[i].oid, a[i].name, a[i].name);
        }
        if (nid == NID_undef) {
            die("cannot register the SCEP OIDs");
        }
        *a[i].nid = nid;
    }
}

static unsigned char *read_file(const char *file, long *len)
{
    FILE *f = fopen(file, "rb");
    unsigned char *buf;
    long n;

    if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0
        || fseek(f, 0, SEEK_SET) != 0) {
        fprintf(stderr, "scepreq: cannot read %s\n", file);
        exit(2);
    }
    buf = malloc((size_t)n + 1);
    if (buf == NULL || fread(buf, 1, (size_t)n, f) != (size_t)n) {
        fprintf(stderr, "scepreq: cannot read %s\n", file);
        exit(2);
    }
    fclose(f);
    *len = n;
    return buf;
}

static void write_file(const char *file, const unsigned char *d, long n)
{
    FILE *f = fopen(file, "wb");

    if (f == NULL || fwrite(d, 1, (size_t)n, f) != (size_t)n
        || fclose(f) != 0) {
        fprintf(stderr, "scepreq: cannot write %s\n", file);
        exit(2);
    }
}

static EVP_PKEY *read_key(const char *file)
{
    BIO *b = BIO_new_file(file, "r");
    EVP_PKEY *k = b ? PEM_read_bio_PrivateKey(b, NULL, NULL, NULL) : NULL;

    BIO_free(b);
    if (k == NULL) {
        die("cannot read the private key");
    }
    return k;
}

static X509 *read_cert(const char *file)
{
    BIO *b = BIO_new_file(file, "r");
    X509 *x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;

    BIO_free(b);
    if (x == NULL) {
        fprintf(stderr, "scepreq: cannot read a certificate from %s\n", file);
        die("read_cert");
    }
    return x;
}

/* A PKCS#10 from a DER or PEM file, and its DER. */
static X509_REQ *read_csr(const char *file, unsigned char **der, int *derlen)
{
    long n;
    unsigned char *data = read_file(file, &n);
    const unsigned char *p = data;
    X509_REQ *req = d2i_X509_REQ(NULL, &p, n);

    if (req == NULL) {
        BIO *b = BIO_new_mem_buf(data, (int)n);
        req = PEM_read_bio_X509_REQ(b, NULL, NULL, NULL);
        BIO_free(b);
    }
    free(data);
    if (req == NULL) {
        die("cannot read the certificate request");
    }
    *der = NULL;
    *derlen = i2d_X509_REQ(req, der);
    if (*derlen <= 0) {
        die("cannot encode the certificate request");
    }
    return req;
}

/* The self-signed certificate a device signs its request with. */
static X509 *self_signed(EVP_PKEY *key, X509_REQ *req, const EVP_MD *md)
{
    X509 *x = X509_new();
    X509_NAME *name = req ? X509_REQ_get_subject_name(req) : NULL;
    X509_NAME *fallback = NULL;
    ASN1_INTEGER *serial = ASN1_INTEGER_new();
    unsigned char rnd[8];
    BIGNUM *bn;

    if (x == NULL || serial == NULL || RAND_bytes(rnd, sizeof(rnd)) != 1) {
        die("self_signed");
    }
    rnd[0] &= 0x7f;
    bn = BN_bin2bn(rnd, sizeof(rnd), NULL);
    BN_to_ASN1_INTEGER(bn, serial);
    BN_free(bn);
    if (name == NULL || X509_NAME_entry_count(name) == 0) {
        fallback = X509_NAME_new();
        X509_NAME_add_entry_by_txt(fallback, "CN", MBSTRING_ASC,
                                   (const unsigned char *)"scepreq signer",
                                   -1, -1, 0);
        name = fallback;
    }
    if (!X509_set_version(x, 2) || !X509_set_serialNumber(x, serial)
        || !X509_set_subject_name(x, name) || !X509_set_issuer_name(x, name)
        || !X509_gmtime_adj(X509_getm_notBefore(x), -3600)
        || !X509_gmtime_adj(X509_getm_notAfter(x), 86400)
        || !X509_set_pubkey(x, key) || !X509_sign(x, key, md)) {
        die("cannot make the signer certificate");
    }
    ASN1_INTEGER_free(serial);
    X509_NAME_free(fallback);
    return x;
}

static const EVP_CIPHER *cipher_by_name(const char *name)
{
    const char *ossl = !strcmp(name, "aes128") ? "AES-128-CBC"
                       : !strcmp(name, "aes192") ? "AES-192-CBC"
                       : !strcmp(name, "aes256") ? "AES-256-CBC"
                       : !strcmp(name, "des3") ? "DES-EDE3-CBC"
                       : !strcmp(name, "des") ? "DES-CBC"
                       : NULL;
    const EVP_CIPHER *c = ossl ? EVP_get_cipherbyname(ossl) : NULL;

    if (c == NULL) {
        die("unknown or unavailable cipher");
    }
    return c;
}

static void hex_out(FILE *f, const unsigned char *d, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        fprintf(f, "%02x", d[i]);
    }
}

static size_t hex_in(const char *s, unsigned char *out, size_t max)
{
    size_t n = 0;
    unsigned int v;

    while (n < max && sscanf(s + 2 * n, "%2x", &v) == 1) {
        out[n++] = (unsigned char)v;
    }
    return n;
}

static const char *arg(int argc, char **argv, const char *name,
                       const char *dflt)
{
    int i;

    for (i = 2; i < argc; i++) {
        if (!strcmp(argv[i], name)) {
            if (i + 1 < argc && strncmp(argv[i + 1], "--", 2)) {
                return argv[i + 1];
            }
            return "";  /* a flag */
        }
    }
    if (dflt == NULL) {
        fprintf(stderr, "scepreq: %s is required\n", name);
        exit(2);
    }
    return dflt;
}

static int do_req(int argc, char **argv)
{
    EVP_PKEY *key = read_key(arg(argc, argv, "--signer-key",
                                 arg(argc, argv, "--key", NULL)));
    X509 *ra = read_cert(arg(argc, argv, "--ra-enc", NULL));
    const char *transid = arg(argc, argv, "--transid", NULL);
    const char *msgtype = arg(argc, argv, "--msgtype", "19");
    const char *md_name = arg(argc, argv, "--digest", "sha256");
    const char *signer_out = arg(argc, argv, "--signer-out", "-");
    const char *signer_cert = arg(argc, argv, "--signer-cert", "-");
    const char *content = arg(argc, argv, "--content", "-");
    const char *csr_file = arg(argc, argv, "--csr",
                               strcmp(content, "-") ? "-" : NULL);
    int no_nonce = *arg(argc, argv, "--no-nonce", "-") == '\0';
    const EVP_CIPHER *cipher = cipher_by_name(arg(argc, argv, "--cipher",
                                                  "aes128"));
    const EVP_MD *md = EVP_get_digestbyname(md_name);
    STACK_OF(X509) *recips = sk_X509_new_null();
    unsigned char *csr_der = NULL, *env_der = NULL, *msg_der = NULL;
    unsigned char nonce[NONCE_LEN];
    int csr_len = 0, env_len, msg_len;
    X509_REQ *csr = strcmp(csr_file, "-")
                        ? read_csr(csr_file, &csr_der, &csr_len)
                        : NULL;
    CMS_ContentInfo *env, *cms;
    CMS_SignerInfo *si;
    X509 *signer;
    BIO *in;
    FILE *st;

    if (md == NULL) {
        die("unknown digest");
    }
    if (strcmp(content, "-")) {
        /* Other messageData than the PKCS#10 (CertPoll, GetCert...). */
        long n;
        OPENSSL_free(csr_der);
        csr_der = read_file(content, &n);
        csr_len = (int)n;
    }
    if (strcmp(signer_cert, "-")) {
        signer = read_cert(signer_cert);
        if (X509_check_private_key(signer, key) != 1) {
            die("the signer key does not belong to --signer-cert");
        }
    }
    else {
        signer = self_signed(key, csr, md);
    }

    /* pkcsPKIEnvelope: the PKCS#10 encrypted to the RA. */
    sk_X509_push(recips, ra);
    in = BIO_new_mem_buf(csr_der, csr_len);
    env = CMS_encrypt(recips, in, cipher, CMS_BINARY);
    BIO_free(in);
    if (env == NULL || (env_len = i2d_CMS_ContentInfo(env, &env_der)) <= 0) {
        die("cannot encrypt the request");
    }

    /* The pkiMessage: SignedData over it with the SCEP attributes. */
    cms = CMS_sign(NULL, NULL, NULL, NULL, CMS_PARTIAL | CMS_BINARY);
    if (cms == NULL) {
        die("CMS_sign");
    }
    si = CMS_add1_signer(cms, signer, key, md, CMS_NOSMIMECAP);
    if (si == NULL) {
        die("CMS_add1_signer");
    }
    if (RAND_bytes(nonce, sizeof(nonce)) != 1) {
        die("RAND_bytes");
    }
    if (!CMS_signed_add1_attr_by_NID(si, nid_msgtype, V_ASN1_PRINTABLESTRING,
                                     msgtype, (int)strlen(msgtype))
        || !CMS_signed_add1_attr_by_NID(si, nid_transid,
                                        V_ASN1_PRINTABLESTRING, transid,
                                        (int)strlen(transid))
        || (!no_nonce
            && !CMS_signed_add1_attr_by_NID(si, nid_snonce,
                                            V_ASN1_OCTET_STRING, nonce,
                                            NONCE_LEN))) {
        die("cannot add the signed attributes");
    }
    in = BIO_new_mem_buf(env_der, env_len);
    if (!CMS_final(cms, in, NULL, CMS_BINARY)) {
        die("CMS_final");
    }
    BIO_free(in);
    if ((msg_len = i2d_CMS_ContentInfo(cms, &msg_der)) <= 0) {
        die("cannot encode the message");
    }
    write_file(arg(argc, argv, "--out", NULL), msg_der, msg_len);

    st = fopen(arg(argc, argv, "--state", NULL), "w");
    if (st == NULL) {
        die("cannot write the state file");
    }
    fputs("nonce=", st);
    hex_out(st, nonce, NONCE_LEN);
    fprintf(st, "\ntransid=%s\n", transid);
    PEM_write_X509(st, signer);
    fclose(st);
    if (strcmp(signer_out, "-")) {
        FILE *f = fopen(signer_out, "w");
        if (f == NULL || !PEM_write_X509(f, signer) || fclose(f) != 0) {
            die("cannot write the signer certificate");
        }
    }

    OPENSSL_free(msg_der);
    OPENSSL_free(env_der);
    if (strcmp(content, "-")) {
        free(csr_der);
    }
    else {
        OPENSSL_free(csr_der);
    }
    CMS_ContentInfo_free(cms);
    CMS_ContentInfo_free(env);
    sk_X509_free(recips);
    X509_free(ra);
    X509_free(signer);
    X509_REQ_free(csr);
    EVP_PKEY_free(key);
    return 0;
}

/* A certificate or a PKCS#10, PEM or DER: its subject (a copy). */
static X509_NAME *subject_of(const char *file)
{
    long n;
    unsigned char *data = read_file(file, &n);
    const unsigned char *p = data;
    X509_NAME *name = NULL;
    X509 *x = d2i_X509(NULL, &p, n);
    X509_REQ *req = NULL;
    BIO *b;

    if (x == NULL) {
        p = data;
        req = d2i_X509_REQ(NULL, &p, n);
    }
    if (x == NULL && req == NULL) {
        b = BIO_new_mem_buf(data, (int)n);
        x = PEM_read_bio_X509(b, NULL, NULL, NULL);
        BIO_free(b);
    }
    if (x == NULL && req == NULL) {
        b = BIO_new_mem_buf(data, (int)n);
        req = PEM_read_bio_X509_REQ(b, NULL, NULL, NULL);
        BIO_free(b);
    }
    if (x) {
        name = X509_NAME_dup(X509_get_subject_name(x));
    }
    else if (req) {
        name = X509_NAME_dup(X509_REQ_get_subject_name(req));
    }
    X509_free(x);
    X509_REQ_free(req);
    free(data);
    if (name == NULL) {
        fprintf(stderr, "scepreq: no certificate or request in %s\n", file);
        die("subject_of");
    }
    return name;
}

/* IssuerAndSerialNumber (GetCert, GetCRL). */
static int do_ias(int argc, char **argv)
{
    X509 *ca = read_cert(arg(argc, argv, "--ca", NULL));
    const char *hex = arg(argc, argv, "--serial", "-");
    PKCS7_ISSUER_AND_SERIAL *ias = PKCS7_ISSUER_AND_SERIAL_new();
    unsigned char *der = NULL;
    BIGNUM *bn = NULL;
    int n;

    if (ias == NULL
        || !X509_NAME_set(&ias->issuer, X509_get_subject_name(ca))) {
        die("ias");
    }
    ASN1_INTEGER_free(ias->serial);
    if (strcmp(hex, "-")) {
        if (!BN_hex2bn(&bn, hex)) {
            die("--serial: not a hex number");
        }
        ias->serial = BN_to_ASN1_INTEGER(bn, NULL);
        BN_free(bn);
    }
    else {
        X509 *x = read_cert(arg(argc, argv, "--serial-from", NULL));
        ias->serial = ASN1_INTEGER_dup(X509_get0_serialNumber(x));
        X509_free(x);
    }
    if (ias->serial == NULL
        || (n = i2d_PKCS7_ISSUER_AND_SERIAL(ias, &der)) <= 0) {
        die("cannot encode the IssuerAndSerialNumber");
    }
    write_file(arg(argc, argv, "--out", NULL), der, n);
    OPENSSL_free(der);
    PKCS7_ISSUER_AND_SERIAL_free(ias);
    X509_free(ca);
    return 0;
}

/* IssuerAndSubject (CertPoll): SEQUENCE { issuer Name, subject Name },
 * put together by hand (OpenSSL has no type for it). */
static int do_iasubj(int argc, char **argv)
{
    X509 *ca = read_cert(arg(argc, argv, "--ca", NULL));
    X509_NAME *subject = subject_of(arg(argc, argv, "--subject-from", NULL));
    unsigned char *a = NULL, *b = NULL, *out, *q;
    int alen = i2d_X509_NAME(X509_get_subject_name(ca), &a);
    int blen = i2d_X509_NAME(subject, &b);
    int body, hl, i;

    if (alen <= 0 || blen <= 0) {
        die("cannot encode the names");
    }
    body = alen + blen;
    hl = body < 0x80 ? 2 : body < 0x100 ? 3 : body < 0x10000 ? 4 : 5;
    out = q = malloc((size_t)(hl + body));
    if (out == NULL) {
        die("malloc");
    }
    *q++ = 0x30;
    if (hl == 2) {
        *q++ = (unsigned char)body;
    }
    else {
        *q++ = (unsigned char)(0x80 | (hl - 2));
        for (i = hl - 3; i >= 0; i--) {
            *q++ = (unsigned char)(body >> (8 * i));
        }
    }
    memcpy(q, a, (size_t)alen);
    memcpy(q + alen, b, (size_t)blen);
    write_file(arg(argc, argv, "--out", NULL), out, hl + body);
    free(out);
    OPENSSL_free(a);
    OPENSSL_free(b);
    X509_NAME_free(subject);
    X509_free(ca);
    return 0;
}

/* One string attribute's value, or NULL. */
static const ASN1_STRING *attr_string(CMS_SignerInfo *si, int nid, int type)
{
    int idx = CMS_signed_get_attr_by_NID(si, nid, -1);
    X509_ATTRIBUTE *a;
    ASN1_TYPE *t;

    if (idx < 0 || (a = CMS_signed_get_attr(si, idx)) == NULL
        || X509_ATTRIBUTE_count(a) != 1
        || (t = X509_ATTRIBUTE_get0_type(a, 0)) == NULL
        || (type >= 0 && t->type != type)) {
        return NULL;
    }
    return t->value.asn1_string;
}

static void print_string_attr(CMS_SignerInfo *si, const char *label, int nid)
{
    const ASN1_STRING *s = attr_string(si, nid, -1);

    if (s == NULL) {
        printf("%s=-\n", label);
    }
    else {
        printf("%s=%.*s\n", label, ASN1_STRING_length(s),
               (const char *)ASN1_STRING_get0_data(s));
    }
}

static int do_rep(int argc, char **argv)
{
    long len, slen;
    unsigned char *der = read_file(arg(argc, argv, "--in", NULL), &len);
    unsigned char *state = read_file(arg(argc, argv, "--state", NULL), &slen);
    EVP_PKEY *key = read_key(arg(argc, argv, "--key", NULL));
    X509 *ra = read_cert(arg(argc, argv, "--ra-sign", NULL));
    const char *out = arg(argc, argv, "--out", "-");
    const char *crl_out = arg(argc, argv, "--crl-out", "-");
    const unsigned char *p = der;
    CMS_ContentInfo *cms = d2i_CMS_ContentInfo(NULL, &p, len);
    STACK_OF(X509) *certs = sk_X509_new_null(), *signers;
    STACK_OF(CMS_SignerInfo) *sis;
    CMS_SignerInfo *si;
    X509_ALGOR *dig, *sig;
    X509 *signer = NULL;
    unsigned char nonce[NONCE_LEN];
    const ASN1_STRING *rn, *sn, *status;
    BIO *content = BIO_new(BIO_s_mem());
    char *nonce_hex, *pem;
    BIO *sb;
    int verified;

    state[slen] = '\0';
    nonce_hex = strstr((char *)state, "nonce=");
    if (nonce_hex == NULL
        || hex_in(nonce_hex + 6, nonce, NONCE_LEN) != NONCE_LEN) {
        die("no nonce in the state file");
    }
    pem = strstr((char *)state, "-----BEGIN CERTIFICATE-----");
    sb = pem ? BIO_new_mem_buf(pem, -1) : NULL;
    signer = sb ? PEM_read_bio_X509(sb, NULL, NULL, NULL) : NULL;
    BIO_free(sb);
    if (signer == NULL) {
        die("no signer certificate in the state file");
    }
    if (cms == NULL || OBJ_obj2nid(CMS_get0_type(cms)) != NID_pkcs7_signed) {
        die("the reply is not a CMS SignedData");
    }
    sk_X509_push(certs, ra);
    sis = CMS_get0_SignerInfos(cms);
    if (sk_CMS_SignerInfo_num(sis) != 1) {
        die("not exactly one SignerInfo");
    }
    si = sk_CMS_SignerInfo_value(sis, 0);
    {
        ASN1_OCTET_STRING **pos = CMS_get0_content(cms);
        if (pos && *pos) {
            /* Signature, messageDigest and content. */
            verified = CMS_verify(cms, certs, NULL, NULL, content,
                                  CMS_NO_SIGNER_CERT_VERIFY | CMS_BINARY)
                       == 1;
            signers = CMS_get0_signers(cms);
        }
        else {
            /* FAILURE and PENDING carry no content: the signature over
             * the signed attributes, by the RA signing certificate. */
            signers = NULL;
            verified = CMS_SignerInfo_cert_cmp(si, ra) == 0
                       && (CMS_SignerInfo_set1_signer_cert(si, ra), 1)
                       && CMS_SignerInfo_verify(si) == 1;
            if (verified) {
                signers = sk_X509_new_null();
                sk_X509_push(signers, ra);
            }
        }
    }
    printf("verified=%d\n", verified);
    printf("has_content=%d\n", CMS_get0_content(cms) != NULL
                                   && *CMS_get0_content(cms) != NULL);
    if (!verified) {
        ERR_print_errors_fp(stderr);
    }
    printf("signer_is_ra=%d\n", signers && sk_X509_num(signers) == 1
                                    && X509_cmp(sk_X509_value(signers, 0),
                                                ra) == 0);
    sk_X509_free(signers);
    CMS_SignerInfo_get0_algs(si, NULL, NULL, &dig, &sig);
    printf("digest=%s\n", OBJ_nid2sn(OBJ_obj2nid(dig->algorithm)));
    printf("sigalg=%s\n", OBJ_nid2sn(OBJ_obj2nid(sig->algorithm)));
    printf("contentType_attr=%d\n",
           CMS_signed_get_attr_by_NID(si, NID_pkcs9_contentType, -1) >= 0);
    print_string_attr(si, "messageType", nid_msgtype);
    print_string_attr(si, "pkiStatus", nid_status);
    print_string_attr(si, "failInfo", nid_failinfo);
    print_string_attr(si, "transactionID", nid_transid);
    rn = attr_string(si, nid_rnonce, V_ASN1_OCTET_STRING);
    sn = attr_string(si, nid_snonce, V_ASN1_OCTET_STRING);
    printf("recipientNonce_ok=%d\n",
           rn && ASN1_STRING_length(rn) == NONCE_LEN
               && !memcmp(ASN1_STRING_get0_data(rn), nonce, NONCE_LEN));
    printf("senderNonce_len=%d\n", sn ? ASN1_STRING_length(sn) : -1);
    printf("senderNonce_differs=%d\n",
           sn && (ASN1_STRING_length(sn) != NONCE_LEN
                  || memcmp(ASN1_STRING_get0_data(sn), nonce, NONCE_LEN)));

    status = attr_string(si, nid_status, -1);
    if (verified && status && ASN1_STRING_length(status) == 1
        && ASN1_STRING_get0_data(status)[0] == '0') {
        /* SUCCESS: the envelope holds a certs-only PKCS#7. */
        char *data;
        long n = BIO_get_mem_data(content, &data);
        const unsigned char *q = (const unsigned char *)data;
        PKCS7 *env7 = d2i_PKCS7(NULL, &q, n);
        CMS_ContentInfo *env;
        BIO *plain = BIO_new(BIO_s_mem());
        PKCS7 *p7;
        STACK_OF(X509) *issued = NULL;
        STACK_OF(X509_CRL) *crls = NULL;
        int i;

        if (env7 == NULL || !PKCS7_type_is_enveloped(env7)) {
            die("SUCCESS without an EnvelopedData");
        }
        printf("cipher=%s\n", OBJ_nid2sn(OBJ_obj2nid(
                                  env7->d.enveloped->enc_data->algorithm
                                      ->algorithm)));
        PKCS7_free(env7);
        q = (const unsigned char *)data;
        env = d2i_CMS_ContentInfo(NULL, &q, n);
        if (env == NULL
            || !CMS_decrypt(env, key, signer, NULL, plain, CMS_BINARY)) {
            die("cannot open the reply's envelope");
        }
        n = BIO_get_mem_data(plain, &data);
        q = (const unsigned char *)data;
        p7 = d2i_PKCS7(NULL, &q, n);
        if (p7 && PKCS7_type_is_signed(p7)) {
            issued = p7->d.sign->cert;
            crls = p7->d.sign->crl;
        }
        printf("certs=%d\n", issued ? sk_X509_num(issued) : 0);
        printf("crls=%d\n", crls ? sk_X509_CRL_num(crls) : 0);
        if (strcmp(crl_out, "-") && crls) {
            FILE *f = fopen(crl_out, "w");
            for (i = 0; f && i < sk_X509_CRL_num(crls); i++) {
                PEM_write_X509_CRL(f, sk_X509_CRL_value(crls, i));
            }
            if (f == NULL || fclose(f) != 0) {
                die("cannot write the CRLs");
            }
        }
        if (strcmp(out, "-") && issued) {
            FILE *f = fopen(out, "w");
            for (i = 0; f && i < sk_X509_num(issued); i++) {
                PEM_write_X509(f, sk_X509_value(issued, i));
            }
            if (f == NULL || fclose(f) != 0) {
                die("cannot write the certificates");
            }
        }
        PKCS7_free(p7);
        CMS_ContentInfo_free(env);
        BIO_free(plain);
    }
    BIO_free(content);
    CMS_ContentInfo_free(cms);
    sk_X509_free(certs);
    X509_free(ra);
    X509_free(signer);
    EVP_PKEY_free(key);
    free(der);
    free(state);
    return 0;
}

int main(int argc, char **argv)
{
    /* Single DES lives in OpenSSL 3's legacy provider. */
    OSSL_PROVIDER_load(NULL, "legacy");
    OSSL_PROVIDER_load(NULL, "default");
    init_oids();
    if (argc >= 2 && !strcmp(argv[1], "req")) {
        return do_req(argc, argv);
    }
    if (argc >= 2 && !strcmp(argv[1], "rep")) {
        return do_rep(argc, argv);
    }
    if (argc >= 2 && !strcmp(argv[1], "ias")) {
        return do_ias(argc, argv);
    }
    if (argc >= 2 && !strcmp(argv[1], "iasubj")) {
        return do_iasubj(argc, argv);
    }
    fprintf(stderr, "usage: scepreq req|rep|ias|iasubj OPTIONS (see the "
                    "source)\n");
    return 2;
}
