/* Licensed under the Apache License, Version 2.0; see LICENSE. */

/*
 * Seed generator for fuzz_msg: makes a fresh test PKI (t/unit/testpki.c),
 * writes the RA certificate and key to OUTDIR/ra.pem for the fuzz target
 * (SCEP_FUZZ_RA) and valid SCEP messages enveloped to that RA to
 * OUTDIR/corpus/.  Nothing it writes is meant to be kept.
 *
 *   mkseeds OUTDIR
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <apr_general.h>
#include <apr_pools.h>
#include <apr_strings.h>

#include <openssl/err.h>

#include "scep_msg.h"
#include "testpki.h"

static apr_pool_t *pool;
static const testpki_t *pki;
static const char *outdir;
static int failures;

static void put(const char *name, const unsigned char *d, apr_size_t n)
{
    if (d == NULL || n == 0
        || testpki_write_file(pool, outdir, name, d, n) == NULL) {
        fprintf(stderr, "mkseeds: cannot make %s\n", name);
        ERR_print_errors_fp(stderr);
        failures++;
    }
}

/* Re-encode the outer layers of a DER pkiMessage as BER: indefinite
 * lengths down to the eContent, which becomes a constructed OCTET STRING
 * of 100-byte pieces (as Windows and Intune send it). */
static void ber_spine(unsigned char **o, apr_size_t *olen,
                      const unsigned char *in, apr_size_t len, int depth)
{
    apr_size_t pos = 0;

    while (pos + 2 <= len) {
        unsigned char tag = in[pos];
        apr_size_t hdr = 2, clen = in[pos + 1], i, n, off;

        if (clen & 0x80) {
            n = clen & 0x7f;
            if (n == 0 || n > 4 || pos + 2 + n > len) {
                return;
            }
            for (clen = 0, i = 0; i < n; i++) {
                clen = (clen << 8) | in[pos + 2 + i];
            }
            hdr += n;
        }
        if (clen > len - pos - hdr) {
            return;
        }
        if (depth < 6 && (tag & 0x20)
            && !(depth == 3 && (tag == 0xa0 || tag == 0xa1
                                || tag == 0x31))) {
            (*o)[(*olen)++] = tag;
            (*o)[(*olen)++] = 0x80;
            ber_spine(o, olen, in + pos + hdr, clen, depth + 1);
            (*o)[(*olen)++] = 0;
            (*o)[(*olen)++] = 0;
        }
        else if (depth < 6 && tag == 0x04 && clen > 100) {
            (*o)[(*olen)++] = 0x24;
            (*o)[(*olen)++] = 0x80;
            for (off = 0; off < clen; off += n) {
                n = clen - off < 100 ? clen - off : 100;
                (*o)[(*olen)++] = 0x04;
                (*o)[(*olen)++] = (unsigned char)n;
                memcpy(*o + *olen, in + pos + hdr + off, n);
                *olen += n;
            }
            (*o)[(*olen)++] = 0;
            (*o)[(*olen)++] = 0;
        }
        else {
            memcpy(*o + *olen, in + pos, hdr + clen);
            *olen += hdr + clen;
        }
        pos += hdr + clen;
    }
}

static void request(const char *name, scep_msgtype_e type,
                    const unsigned char *data, apr_size_t len, X509 *to,
                    const EVP_CIPHER *cipher, const scep_signer_t *signer,
                    const EVP_MD *md, scep_msg_t **parsed)
{
    unsigned char *der = NULL;
    apr_size_t dlen = 0;

    if (scep_msg_request(pool, type, name, data, len, to, cipher, signer,
                         md, NULL, &der, &dlen) != SCEP_OK) {
        der = NULL;
    }
    put(apr_pstrcat(pool, name, ".der", NULL), der, dlen);
    if (der && parsed) {
        scep_msg_opts_t o = { 1, 1, 0 };

        if (scep_msg_parse(pool, der, dlen, &o, parsed) != SCEP_OK
            || scep_msg_decrypt(pool, *parsed, pki->ra_key, pki->ra_cert,
                                &o) != SCEP_OK) {
            *parsed = NULL;
        }
    }
    if (der && strcmp(name, "pkcsreq-aes128-sha256") == 0) {
        /* a BER twin: at most 3 bytes more per 100 and 4 per level */
        unsigned char *ber = apr_palloc(pool, dlen * 2 + 256);
        apr_size_t blen = 0;

        ber_spine(&ber, &blen, der, dlen, 0);
        put("pkcsreq-ber.der", ber, blen);
    }
}

int main(int argc, char **argv)
{
    scep_signer_t client, renewer, ra;
    testpki_certspec_t spec;
    X509_REQ *req;
    X509 *issued;
    X509_CRL *crl;
    ASN1_INTEGER *serial;
    scep_msg_t *pkcsreq = NULL;
    unsigned char *csr, *ias, *iasubj, *der;
    apr_size_t csrlen, iaslen, iasubjlen, dlen;

    if (argc != 2) {
        fprintf(stderr, "usage: mkseeds OUTDIR\n");
        return 2;
    }
    apr_initialize();
    apr_pool_create(&pool, NULL);
    if (scep_msg_init() != SCEP_OK) {
        fprintf(stderr, "mkseeds: scep_msg_init failed\n");
        return 1;
    }
    scep_msg_enable_des();
    pki = testpki_get();
    if (pki == NULL) {
        fprintf(stderr, "mkseeds: cannot build the test PKI\n");
        return 1;
    }
    mkdir(argv[1], 0700);
    outdir = apr_pstrcat(pool, argv[1], "/corpus", NULL);
    mkdir(outdir, 0700);
    if (testpki_write_pem(pool, argv[1], "ra.pem", &pki->ra_cert, 1,
                          pki->ra_key) == NULL) {
        fprintf(stderr, "mkseeds: cannot write ra.pem\n");
        return 1;
    }

    client.cert = pki->client_cert;
    client.key = pki->client_key;
    ra.cert = pki->ra_cert;
    ra.key = pki->ra_key;
    req = testpki_csr(pool, pki->client_key, "/O=fuzz/CN=seed client",
                      "challenge");
    csr = req ? testpki_req_der(pool, req, &csrlen) : NULL;
    if (csr == NULL) {
        fprintf(stderr, "mkseeds: CSR\n");
        return 1;
    }

    request("pkcsreq-aes128-sha256", SCEP_MT_PKCSREQ, csr, csrlen,
            pki->ra_cert, EVP_aes_128_cbc(), &client, EVP_sha256(),
            &pkcsreq);
    request("pkcsreq-aes256-sha512", SCEP_MT_PKCSREQ, csr, csrlen,
            pki->ra_cert, EVP_aes_256_cbc(), &client, EVP_sha512(), NULL);
    request("pkcsreq-des3-sha1", SCEP_MT_PKCSREQ, csr, csrlen, pki->ra_cert,
            EVP_des_ede3_cbc(), &client, EVP_sha1(), NULL);
    request("pkcsreq-des-sha1", SCEP_MT_PKCSREQ, csr, csrlen, pki->ra_cert,
            EVP_des_cbc(), &client, EVP_sha1(), NULL);
    request("pkcsreq-other-recipient", SCEP_MT_PKCSREQ, csr, csrlen,
            pki->other_cert, EVP_aes_128_cbc(), &client, EVP_sha256(),
            NULL);

    memset(&spec, 0, sizeof(spec));
    spec.subject = "/O=fuzz/CN=seed client";
    spec.key = pki->client_key;
    spec.issuer = pki->ca_cert;
    spec.issuer_key = pki->ca_key;
    issued = testpki_cert(pool, &spec);
    renewer.cert = issued;
    renewer.key = pki->client_key;
    request("renewalreq-aes192-sha384", SCEP_MT_RENEWALREQ, csr, csrlen,
            pki->ra_cert, EVP_aes_192_cbc(), &renewer, EVP_sha384(), NULL);

    serial = ASN1_INTEGER_new();
    ASN1_INTEGER_set(serial, 4660);
    if (scep_msg_issuer_and_serial(pool, X509_get_subject_name(pki->ca_cert),
                                   serial, &ias, &iaslen) == SCEP_OK) {
        request("getcert", SCEP_MT_GETCERT, ias, iaslen, pki->ra_cert,
                EVP_aes_128_cbc(), &client, EVP_sha256(), NULL);
        request("getcrl", SCEP_MT_GETCRL, ias, iaslen, pki->ra_cert,
                EVP_aes_128_cbc(), &client, EVP_sha256(), NULL);
    }
    else {
        failures++;
    }
    ASN1_INTEGER_free(serial);
    if (scep_msg_issuer_and_subject(pool,
                                    X509_get_subject_name(pki->ca_cert),
                                    X509_get_subject_name(issued), &iasubj,
                                    &iasubjlen) == SCEP_OK) {
        request("certpoll", SCEP_MT_CERTPOLL, iasubj, iasubjlen,
                pki->ra_cert, EVP_aes_128_cbc(), &client, EVP_sha256(),
                NULL);
    }
    else {
        failures++;
    }

    /* replies (parsed by the server path too: a CertRep it must refuse) */
    if (pkcsreq) {
        STACK_OF(X509) *certs = testpki_stack(pool, issued, pki->ca_cert,
                                              NULL);

        if (scep_msg_certrep(pool, pkcsreq, SCEP_STATUS_SUCCESS, 0, certs,
                             NULL, &ra, EVP_sha256(), &der, &dlen)
            == SCEP_OK) {
            put("certrep-success.der", der, dlen);
        }
        if (scep_msg_certrep(pool, pkcsreq, SCEP_STATUS_PENDING, 0, NULL,
                             NULL, &ra, EVP_sha256(), &der, &dlen)
            == SCEP_OK) {
            put("certrep-pending.der", der, dlen);
        }
        if (scep_msg_certrep(pool, pkcsreq, SCEP_STATUS_FAILURE,
                             SCEP_FAIL_BADREQUEST, NULL, NULL, &ra,
                             EVP_sha256(), &der, &dlen) == SCEP_OK) {
            put("certrep-failure.der", der, dlen);
        }
        crl = testpki_crl(pool, pki->ca_cert, pki->ca_key, 4660);
        if (crl && scep_msg_certs_only(pool, certs, crl, &der, &dlen)
                   == SCEP_OK) {
            put("certs-only.der", der, dlen);
        }
    }
    else {
        fprintf(stderr, "mkseeds: the PKCSReq seed does not read back\n");
        failures++;
    }

    testpki_cleanup();
    apr_pool_destroy(pool);
    apr_terminate();
    if (failures) {
        fprintf(stderr, "mkseeds: %d seed(s) failed\n", failures);
        return 1;
    }
    return 0;
}
