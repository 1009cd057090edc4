/* Licensed under the Apache License, Version 2.0; see LICENSE. */

#include <apr_strings.h>

#include "scep_transport.h"

static int hexval(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

static int b64val(unsigned char c)
{
    if (c >= 'A' && c <= 'Z') {
        return c - 'A';
    }
    if (c >= 'a' && c <= 'z') {
        return c - 'a' + 26;
    }
    if (c >= '0' && c <= '9') {
        return c - '0' + 52;
    }
    if (c == '+' || c == '-' || c == ' ') {  /* '-' base64url; ' ' a '+' */
        return 62;
    }
    if (c == '/' || c == '_') {
        return 63;
    }
    return -1;
}

static int is_space(unsigned char c)
{
    return c == '\r' || c == '\n' || c == '\t' || c == '\v' || c == '\f';
}

/* Decode base64 text, skipping line breaks; padding optional. */
static int decode_b64(apr_pool_t *p, const unsigned char *in, apr_size_t len,
                      unsigned char **out, apr_size_t *outlen)
{
    unsigned char *o = apr_palloc(p, len / 4 * 3 + 3);
    apr_size_t n = 0, i;
    unsigned int acc = 0;
    int bits = 0, pad = 0;

    for (i = 0; i < len; i++) {
        int v;
        if (is_space(in[i])) {
            continue;
        }
        if (in[i] == '=') {
            pad++;
            continue;
        }
        if (pad || (v = b64val(in[i])) < 0) {
            return 0;  /* data after padding, or not base64 */
        }
        acc = (acc << 6) | (unsigned int)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            o[n++] = (unsigned char)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    if (n == 0 || pad > 2 || bits >= 6) {
        return 0;  /* a lone trailing character is not base64 */
    }
    *out = o;
    *outlen = n;
    return 1;
}

int scep_transport_query_message(apr_pool_t *p, const char *raw,
                                 apr_size_t rawlen, unsigned char **out,
                                 apr_size_t *outlen)
{
    unsigned char *text = apr_palloc(p, rawlen + 1);
    apr_size_t i, n = 0;

    for (i = 0; i < rawlen; i++) {
        int hi, lo;
        if (raw[i] == '%' && i + 2 < rawlen
            && (hi = hexval(raw[i + 1])) >= 0
            && (lo = hexval(raw[i + 2])) >= 0) {
            text[n++] = (unsigned char)(hi * 16 + lo);
            i += 2;
        }
        else {
            text[n++] = (unsigned char)raw[i];
        }
    }
    return decode_b64(p, text, n, out, outlen);
}

int scep_transport_body(apr_pool_t *p, const unsigned char *body,
                        apr_size_t len, const unsigned char **out,
                        apr_size_t *outlen)
{
    unsigned char *dec;
    apr_size_t declen;

    /* A ContentInfo is a SEQUENCE: DER and BER start with 0x30. */
    if (len > 0 && body[0] == 0x30) {
        *out = body;
        *outlen = len;
        return 1;
    }
    if (!decode_b64(p, body, len, &dec, &declen)) {
        return 0;
    }
    *out = dec;
    *outlen = declen;
    return 1;
}
