/* Licensed under the Apache License, Version 2.0; see LICENSE. */

/*
 * libFuzzer target for the HTTP transport decoding (scep_transport.h):
 * every input is taken as the raw message= value of a GET and as a POST
 * body, and whatever either decodes is handed to scep_msg_parse, as the
 * server does with a PKIOperation.
 *
 * Then the input is taken as the message itself: it is base64-encoded in
 * one of the spellings clients use (chosen by the input's length) and
 * must decode back to exactly the input, through the query decoder and,
 * for the spellings a body may have, the body decoder.  A mismatch
 * aborts.
 *
 * No RA key is needed: nothing is decrypted.  The seeds are the DER
 * messages mkseeds writes and t/fuzz/corpus-transport/.
 */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <apr_general.h>
#include <apr_pools.h>

#include <openssl/err.h>

#include "scep_msg.h"
#include "scep_transport.h"

static apr_pool_t *root;
static const scep_msg_opts_t opts = { 1, 1, 65536 };

static const char b64chars[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* How a client may spell base64 in a query or body. */
enum {
    SPELL_PLAIN,        /* padded, no breaks (body too) */
    SPELL_SSCEP,        /* %2B %2F %3D */
    SPELL_STRONGSWAN,   /* %0A every 64, escapes (upper or lower case) */
    SPELL_MACOS,        /* only '=' escaped */
    SPELL_SPACE,        /* ' ' for '+' (a proxy decoded it) */
    SPELL_UNPADDED,     /* no '=' (body too) */
    SPELL_URL,          /* base64url, unpadded (body too) */
    SPELL_CRLF,         /* raw CRLF every 64 and at the end (body too) */
    SPELL_COUNT
};

static void die(const char *what)
{
    fprintf(stderr, "fuzz_transport: %s\n", what);
    abort();
}

static char *put(char *o, const char *s)
{
    size_t n = strlen(s);

    memcpy(o, s, n);
    return o + n;
}

/* Encode n bytes of d in spelling how; returns the length written to o,
 * which holds at least (n + 2) / 3 * 4 * 3 + (n / 16 + 2) * 3 bytes. */
static size_t encode(char *o, const uint8_t *d, size_t n, int how,
                     int lower)
{
    char *start = o;
    size_t i, col = 0;

    for (i = 0; i < n; i += 3) {
        unsigned long v = (unsigned long)d[i] << 16;
        int k, chars = n - i >= 3 ? 4 : (int)(n - i) + 1;
        if (i + 1 < n) {
            v |= (unsigned long)d[i + 1] << 8;
        }
        if (i + 2 < n) {
            v |= d[i + 2];
        }
        for (k = 0; k < 4; k++) {
            char c = k < chars ? b64chars[(v >> (18 - 6 * k)) & 63] : '=';

            if (col > 0 && col % 64 == 0) {
                if (how == SPELL_STRONGSWAN) {
                    o = put(o, "%0A");
                }
                else if (how == SPELL_CRLF) {
                    o = put(o, "\r\n");
                }
            }
            col++;
            if (c == '=' && (how == SPELL_UNPADDED || how == SPELL_URL)) {
                continue;
            }
            switch (how) {
            case SPELL_SSCEP:
            case SPELL_STRONGSWAN:
                if (c == '+') {
                    o = put(o, lower ? "%2b" : "%2B");
                    continue;
                }
                if (c == '/') {
                    o = put(o, lower ? "%2f" : "%2F");
                    continue;
                }
                /* fall through */
            case SPELL_MACOS:
                if (c == '=') {
                    o = put(o, lower ? "%3d" : "%3D");
                    continue;
                }
                break;
            case SPELL_SPACE:
                if (c == '+') {
                    c = ' ';
                }
                break;
            case SPELL_URL:
                c = c == '+' ? '-' : c == '/' ? '_' : c;
                break;
            }
            *o++ = c;
        }
    }
    if (how == SPELL_CRLF) {
        o = put(o, "\r\n");
    }
    return (size_t)(o - start);
}

static void parse(apr_pool_t *p, const unsigned char *der, apr_size_t len)
{
    scep_msg_t *msg = NULL;
    scep_err_e rv = scep_msg_parse(p, der, len, &opts, &msg);

    if (scep_msg_strerror(rv) == NULL) {
        die("no text for an error code");
    }
    scep_msg_ossl_errors(p);
}

/* The input as an encoded message: must decode to exactly itself. */
static void round_trip(apr_pool_t *p, const uint8_t *data, size_t size)
{
    int how = (int)(size % SPELL_COUNT);
    int lower = (int)((size / SPELL_COUNT) & 1);
    size_t cap = (size + 2) / 3 * 4 * 3 + (size / 16 + 2) * 3;
    char *text = malloc(cap);
    size_t n;
    unsigned char *q = NULL;
    const unsigned char *b = NULL;
    apr_size_t qlen = 0, blen = 0;

    if (text == NULL) {
        die("out of memory");
    }
    n = encode(text, data, size, how, lower);
    if (n > cap) {
        die("encoder overflow");
    }
    if (!scep_transport_query_message(p, text, n, &q, &qlen)) {
        die("query: a valid encoding refused");
    }
    if (qlen != size || memcmp(q, data, size) != 0) {
        die("query: decodes to other bytes");
    }
    /* a body is not percent-decoded; one starting with '0' is DER */
    if ((how == SPELL_PLAIN || how == SPELL_UNPADDED || how == SPELL_URL
         || how == SPELL_CRLF) && text[0] != 0x30) {
        if (!scep_transport_body(p, (const unsigned char *)text, n, &b,
                                 &blen)) {
            die("body: a valid encoding refused");
        }
        if (blen != size || memcmp(b, data, size) != 0) {
            die("body: decodes to other bytes");
        }
    }
    free(text);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    apr_initialize();
    if (apr_pool_create(&root, NULL) != APR_SUCCESS) {
        die("apr_pool_create");
    }
    if (scep_msg_init() != SCEP_OK) {
        die("scep_msg_init");
    }
    scep_msg_enable_des();
    ERR_clear_error();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    apr_pool_t *p;
    unsigned char *q = NULL;
    const unsigned char *b = NULL;
    apr_size_t qlen = 0, blen = 0;

    if (apr_pool_create(&p, root) != APR_SUCCESS) {
        abort();
    }

    /* the input as the raw query value */
    if (scep_transport_query_message(p, (const char *)data, size, &q,
                                     &qlen)) {
        if (q == NULL || qlen == 0 || qlen > size / 4 * 3 + 3) {
            die("query: impossible output length");
        }
        parse(p, q, qlen);
    }

    /* the input as a POST body */
    if (scep_transport_body(p, data, size, &b, &blen)) {
        if (b == NULL || blen == 0 || blen > size) {
            die("body: impossible output length");
        }
        if (data[0] == 0x30 && (blen != size || memcmp(b, data, size))) {
            die("body: DER not passed through");
        }
        parse(p, b, blen);
    }
    else if (size > 0 && data[0] == 0x30) {
        die("body: DER refused");
    }

    /* the input as the message a client encodes */
    if (size > 0) {
        round_trip(p, data, size);
    }

    apr_pool_destroy(p);
    ERR_clear_error();
    return 0;
}
