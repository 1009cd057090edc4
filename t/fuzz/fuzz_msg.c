/* Licensed under the Apache License, Version 2.0; see LICENSE. */

/*
 * libFuzzer target for the SCEP message codec: every input goes through
 * what the server does with a PKIOperation body: scep_msg_parse, then
 * scep_msg_decrypt with the RA key, then a CertRep built from whatever
 * was read (FAILURE when reading failed part-way, which is the path where
 * unverified fields reach the builder).
 *
 * The RA credentials come from the PEM file (certificate and key) named
 * by SCEP_FUZZ_RA, written by mkseeds next to seeds enveloped to it, so
 * that seeds reach the decryption and the decoders.  Without it a key is
 * generated and only the outer layers are exercised.
 */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <apr_general.h>
#include <apr_pools.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "scep_msg.h"

static apr_pool_t *root;
static scep_signer_t ra;
static STACK_OF(X509) *reply_certs;
static const scep_msg_opts_t opts = { 1, 1, 65536 };

static void die(const char *what)
{
    fprintf(stderr, "fuzz_msg: %s\n", what);
    ERR_print_errors_fp(stderr);
    exit(1);
}

static void load_ra(const char *file)
{
    BIO *b = BIO_new_file(file, "r");

    if (b == NULL) {
        die("cannot open SCEP_FUZZ_RA");
    }
    ra.cert = PEM_read_bio_X509(b, NULL, NULL, NULL);
    ra.key = PEM_read_bio_PrivateKey(b, NULL, NULL, (void *)"");
    BIO_free(b);
    if (ra.cert == NULL || ra.key == NULL) {
        die("SCEP_FUZZ_RA must hold a certificate then its key (PEM)");
    }
}

static void make_ra(void)
{
    X509_NAME *name;

    ra.key = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    ra.cert = X509_new();
    if (ra.key == NULL || ra.cert == NULL) {
        die("keygen");
    }
    name = X509_get_subject_name(ra.cert);
    if (!X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                    (const unsigned char *)"fuzz RA", -1,
                                    -1, 0)
        || !X509_set_issuer_name(ra.cert, name)
        || !ASN1_INTEGER_set(X509_get_serialNumber(ra.cert), 1)
        || !X509_gmtime_adj(X509_getm_notBefore(ra.cert), 0)
        || !X509_gmtime_adj(X509_getm_notAfter(ra.cert), 86400L)
        || !X509_set_pubkey(ra.cert, ra.key)
        || !X509_sign(ra.cert, ra.key, EVP_sha256())) {
        die("RA certificate");
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    const char *file = getenv("SCEP_FUZZ_RA");

    apr_initialize();
    if (apr_pool_create(&root, NULL) != APR_SUCCESS) {
        die("apr_pool_create");
    }
    if (scep_msg_init() != SCEP_OK) {
        die("scep_msg_init");
    }
    scep_msg_enable_des();
    if (file && *file) {
        load_ra(file);
    }
    else {
        make_ra();
    }
    reply_certs = sk_X509_new_null();
    if (reply_certs == NULL || !sk_X509_push(reply_certs, ra.cert)) {
        die("certificate stack");
    }
    ERR_clear_error();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    apr_pool_t *p;
    scep_msg_t *msg = NULL;
    scep_err_e rv;
    unsigned char *out = NULL;
    apr_size_t outlen = 0;

    if (apr_pool_create(&p, root) != APR_SUCCESS) {
        abort();
    }
    rv = scep_msg_parse(p, data, size, &opts, &msg);
    if (rv == SCEP_OK && msg != NULL) {
        rv = scep_msg_decrypt(p, msg, ra.key, ra.cert, &opts);
    }
    /* a strerror for every code, as the log does */
    if (scep_msg_strerror(rv) == NULL) {
        abort();
    }
    if (msg != NULL && msg->type != SCEP_MT_CERTREP
        && (msg->transid.len > 0 || msg->sender_nonce.len > 0)) {
        if (rv == SCEP_OK) {
            /* SUCCESS is enveloped to the (untrusted) signer's key */
            rv = scep_msg_certrep(p, msg, SCEP_STATUS_SUCCESS, 0,
                                  reply_certs, NULL, &ra, EVP_sha256(),
                                  &out, &outlen);
        }
        else {
            rv = scep_msg_certrep(p, msg, SCEP_STATUS_FAILURE,
                                  SCEP_FAIL_BADMESSAGECHECK, NULL, NULL,
                                  &ra, EVP_sha256(), &out, &outlen);
        }
        if (rv == SCEP_OK && (out == NULL || outlen == 0)) {
            abort();
        }
    }
    scep_msg_ossl_errors(p);
    apr_pool_destroy(p);
    ERR_clear_error();
    return 0;
}
