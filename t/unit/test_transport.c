/* Licensed under the Apache License, Version 2.0; see LICENSE. */

/*
 * Unit tests of the HTTP transport decoding (scep_transport.h): the
 * message= value of a GET as every known client spells it, and POST
 * bodies in DER or base64.  Every input is copied into a heap buffer of
 * exactly its length (no terminating NUL), so that AddressSanitizer or
 * valgrind catch a read past the end.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <apr_general.h>
#include <apr_pools.h>
#include <apr_strings.h>

#include "scep_transport.h"
#include "tap.h"

static apr_pool_t *root;

static const char b64chars[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* ------------------------------------------------------------------ */
/* Helpers                                                             */

/* Standard base64 with '=' padding, no line breaks; NUL-terminated. */
static char *b64(apr_pool_t *p, const unsigned char *d, apr_size_t n)
{
    char *s = apr_palloc(p, (n + 2) / 3 * 4 + 1);
    apr_size_t i, o = 0;

    for (i = 0; i + 2 < n; i += 3) {
        unsigned long v = ((unsigned long)d[i] << 16)
                          | ((unsigned long)d[i + 1] << 8) | d[i + 2];
        s[o++] = b64chars[(v >> 18) & 63];
        s[o++] = b64chars[(v >> 12) & 63];
        s[o++] = b64chars[(v >> 6) & 63];
        s[o++] = b64chars[v & 63];
    }
    if (n - i == 1) {
        unsigned long v = (unsigned long)d[i] << 16;
        s[o++] = b64chars[(v >> 18) & 63];
        s[o++] = b64chars[(v >> 12) & 63];
        s[o++] = '=';
        s[o++] = '=';
    }
    else if (n - i == 2) {
        unsigned long v = ((unsigned long)d[i] << 16)
                          | ((unsigned long)d[i + 1] << 8);
        s[o++] = b64chars[(v >> 18) & 63];
        s[o++] = b64chars[(v >> 12) & 63];
        s[o++] = b64chars[(v >> 6) & 63];
        s[o++] = '=';
    }
    s[o] = '\0';
    return s;
}

/*
 * Rewrite s character by character: each character found in from is
 * replaced by the string at the same index of to; every width characters
 * of s (0: never) brk is inserted.
 */
static char *rewrite(apr_pool_t *p, const char *s, const char *from,
                     const char *const *to, apr_size_t width,
                     const char *brk)
{
    apr_size_t n = strlen(s), i, o = 0, cap = n * 3 + 1;
    char *r;

    if (width && brk) {
        cap += (n / width + 1) * strlen(brk);
    }
    r = apr_palloc(p, cap);
    for (i = 0; i < n; i++) {
        const char *f = from ? strchr(from, s[i]) : NULL;
        if (width && brk && i > 0 && i % width == 0) {
            memcpy(r + o, brk, strlen(brk));
            o += strlen(brk);
        }
        if (f && s[i]) {
            const char *t = to[f - from];
            memcpy(r + o, t, strlen(t));
            o += strlen(t);
        }
        else {
            r[o++] = s[i];
        }
    }
    r[o] = '\0';
    return r;
}

/* Drop trailing '=' characters, at most n. */
static char *strip_pad(apr_pool_t *p, const char *s, int n)
{
    char *r = apr_pstrdup(p, s);
    size_t len = strlen(r);

    while (n-- > 0 && len > 0 && r[len - 1] == '=') {
        r[--len] = '\0';
    }
    return r;
}

/* A blob that looks like DER: a SEQUENCE header, then varied bytes. */
static unsigned char *make_blob(apr_pool_t *p, apr_size_t n,
                                unsigned int seed)
{
    unsigned char *b = apr_palloc(p, n);
    unsigned long x = seed * 2654435761u + 1;
    apr_size_t i;

    for (i = 0; i < n; i++) {
        x = x * 1103515245u + 12345u;
        b[i] = (unsigned char)(x >> 16);
    }
    if (n >= 4) {
        b[0] = 0x30;
        b[1] = 0x82;
        b[2] = (unsigned char)((n - 4) >> 8);
        b[3] = (unsigned char)(n - 4);
    }
    return b;
}

/* Run the query decoder on an exact-size heap copy of len bytes of s. */
static int query(apr_pool_t *p, const char *s, apr_size_t len,
                 unsigned char **out, apr_size_t *outlen)
{
    /* empty: a pointer just past a 1-byte block, where nothing may be
     * read either */
    char *buf = malloc(len ? len : 1);
    char *raw = len ? buf : buf + 1;
    int rv;

    if (buf == NULL) {
        bail_out("out of memory");
    }
    memcpy(raw, s, len);
    *out = NULL;
    *outlen = 0;
    rv = scep_transport_query_message(p, raw, len, out, outlen);
    free(buf);
    return rv;
}

/* The query value s must decode to exactly blob. */
static void query_is(const char *s, const unsigned char *blob,
                     apr_size_t n, const char *what)
{
    apr_pool_t *p;
    unsigned char *out;
    apr_size_t outlen;
    int rv;

    apr_pool_create(&p, root);
    rv = query(p, s, strlen(s), &out, &outlen);
    ok(rv == 1, "query %s: accepted", what);
    if (rv == 1 && out != NULL) {
        is_int(outlen, n, "query %s: length", what);
        ok(outlen == n && memcmp(out, blob, n) == 0, "query %s: bytes",
           what);
    }
    else {
        skip(2, "not decoded");
    }
    apr_pool_destroy(p);
}

/* The query value (len bytes of s) must be refused. */
static void query_refused(const char *s, apr_size_t len, const char *what)
{
    apr_pool_t *p;
    unsigned char *out;
    apr_size_t outlen;
    int rv;

    apr_pool_create(&p, root);
    rv = query(p, s, len, &out, &outlen);
    if (!ok(rv == 0, "query %s: refused", what)) {
        diag("    decoded to %lu bytes", (unsigned long)outlen);
    }
    apr_pool_destroy(p);
}

/* Run the body decoder on an exact-size heap copy. */
static int body(apr_pool_t *p, const unsigned char *b, apr_size_t len,
                const unsigned char **out, apr_size_t *outlen,
                unsigned char **copy)
{
    /* empty: just past a 1-byte block, as in query() */
    unsigned char *buf = malloc(len ? len : 1);

    if (buf == NULL) {
        bail_out("out of memory");
    }
    memcpy(len ? buf : buf + 1, b, len);
    *copy = buf;  /* freed by the caller */
    *out = NULL;
    *outlen = 0;
    return scep_transport_body(p, len ? buf : buf + 1, len, out, outlen);
}

static void body_is(const unsigned char *b, apr_size_t len,
                    const unsigned char *blob, apr_size_t n,
                    const char *what)
{
    apr_pool_t *p;
    const unsigned char *out;
    apr_size_t outlen;
    unsigned char *copy;
    int rv;

    apr_pool_create(&p, root);
    rv = body(p, b, len, &out, &outlen, &copy);
    ok(rv == 1, "body %s: accepted", what);
    if (rv == 1 && out != NULL) {
        is_int(outlen, n, "body %s: length", what);
        ok(outlen == n && memcmp(out, blob, n) == 0, "body %s: bytes",
           what);
    }
    else {
        skip(2, "not decoded");
    }
    free(copy);
    apr_pool_destroy(p);
}

static void body_refused(const unsigned char *b, apr_size_t len,
                         const char *what)
{
    apr_pool_t *p;
    const unsigned char *out;
    apr_size_t outlen;
    unsigned char *copy;
    int rv;

    apr_pool_create(&p, root);
    rv = body(p, b, len, &out, &outlen, &copy);
    if (!ok(rv == 0, "body %s: refused", what)) {
        diag("    decoded to %lu bytes", (unsigned long)outlen);
    }
    free(copy);
    apr_pool_destroy(p);
}

/* ------------------------------------------------------------------ */
/* GET message= values                                                 */

static const char *const sscep_to[] = { "%2B", "%2F", "%3D" };
static const char *const sscep_lower_to[] = { "%2b", "%2f", "%3d" };
static const char *const macos_to[] = { "%3D" };
static const char *const space_to[] = { " " };
static const char *const url_to[] = { "-", "_" };

static void test_query_spellings(void)
{
    apr_pool_t *p;
    /* lengths 3k, 3k+1 and 3k+2: no, two and one '=' of padding */
    static const apr_size_t lens[] = { 300, 301, 302 };
    size_t k;

    apr_pool_create(&p, root);
    for (k = 0; k < sizeof(lens) / sizeof(lens[0]); k++) {
        apr_size_t n = lens[k];
        unsigned char *blob = make_blob(p, n, (unsigned int)k + 1);
        char *s = b64(p, blob, n);
        const char *what;
        int npad = (int)((3 - n % 3) % 3);

        /* the fixture must exercise what the spellings change */
        ok(strchr(s, '+') && strchr(s, '/'),
           "fixture %lu bytes: base64 has '+' and '/'", (unsigned long)n);
        is_int(strlen(s) - strlen(strip_pad(p, s, 2)), npad,
               "fixture %lu bytes: %d '=' of padding", (unsigned long)n,
               npad);

        what = apr_psprintf(p, "[%lu] plain base64", (unsigned long)n);
        query_is(s, blob, n, what);

        what = apr_psprintf(p, "[%lu] strongSwan %%0A every 64",
                            (unsigned long)n);
        query_is(rewrite(p, s, NULL, NULL, 64, "%0A"), blob, n, what);

        what = apr_psprintf(p, "[%lu] strongSwan %%0A and escapes",
                            (unsigned long)n);
        query_is(rewrite(p, s, "+/=", sscep_to, 64, "%0A"), blob, n, what);

        what = apr_psprintf(p, "[%lu] sscep %%2B %%2F %%3D",
                            (unsigned long)n);
        query_is(rewrite(p, s, "+/=", sscep_to, 0, NULL), blob, n, what);

        what = apr_psprintf(p, "[%lu] lower-case escapes %%2b %%2f %%3d",
                            (unsigned long)n);
        query_is(rewrite(p, s, "+/=", sscep_lower_to, 0, NULL), blob, n,
                 what);

        what = apr_psprintf(p, "[%lu] macOS only '=' escaped",
                            (unsigned long)n);
        query_is(rewrite(p, s, "=", macos_to, 0, NULL), blob, n, what);

        what = apr_psprintf(p, "[%lu] raw '+' and '/'", (unsigned long)n);
        query_is(s, blob, n, what);

        what = apr_psprintf(p, "[%lu] space for '+'", (unsigned long)n);
        query_is(rewrite(p, s, "+", space_to, 0, NULL), blob, n, what);

        what = apr_psprintf(p, "[%lu] %%20 for '+'", (unsigned long)n);
        {
            static const char *const pct20[] = { "%20" };
            query_is(rewrite(p, s, "+", pct20, 0, NULL), blob, n, what);
        }

        if (npad >= 1) {
            what = apr_psprintf(p, "[%lu] one '=' missing",
                                (unsigned long)n);
            query_is(strip_pad(p, s, 1), blob, n, what);
        }
        if (npad == 2) {
            what = apr_psprintf(p, "[%lu] two '=' missing",
                                (unsigned long)n);
            query_is(strip_pad(p, s, 2), blob, n, what);
        }

        what = apr_psprintf(p, "[%lu] base64url, padded",
                            (unsigned long)n);
        query_is(rewrite(p, s, "+/", url_to, 0, NULL), blob, n, what);

        what = apr_psprintf(p, "[%lu] base64url, unpadded",
                            (unsigned long)n);
        query_is(strip_pad(p, rewrite(p, s, "+/", url_to, 0, NULL), 2),
                 blob, n, what);

        what = apr_psprintf(p, "[%lu] raw CRLF every 64", (unsigned long)n);
        query_is(rewrite(p, s, NULL, NULL, 64, "\r\n"), blob, n, what);

        what = apr_psprintf(p, "[%lu] raw LF every 76 and a final LF",
                            (unsigned long)n);
        query_is(apr_pstrcat(p, rewrite(p, s, NULL, NULL, 76, "\n"), "\n",
                             NULL), blob, n, what);

        what = apr_psprintf(p, "[%lu] raw tab and CR inside",
                            (unsigned long)n);
        query_is(rewrite(p, s, NULL, NULL, 17, "\t\r"), blob, n, what);

        what = apr_psprintf(p, "[%lu] %%0D%%0A every 64", (unsigned long)n);
        query_is(rewrite(p, s, NULL, NULL, 64, "%0D%0A"), blob, n, what);
    }
    apr_pool_destroy(p);
}

static void test_query_small(void)
{
    static const unsigned char one[] = { 0x30 };
    static const unsigned char two[] = { 0x30, 0x80 };
    static const unsigned char three[] = { 0x30, 0x03, 0x02 };
    static const unsigned char ff[] = { 0xfb, 0xff, 0xbf };

    query_is("MA==", one, 1, "one byte padded");
    query_is("MA", one, 1, "one byte unpadded");
    query_is("MA%3D%3D", one, 1, "one byte escaped padding");
    query_is("MIA=", two, 2, "two bytes padded");
    query_is("MIA", two, 2, "two bytes unpadded");
    query_is("MAMC", three, 3, "three bytes");
    /* 0xfb 0xff 0xbf is "+/+/" in base64 */
    query_is("+/+/", ff, 3, "all of '+' and '/'");
    query_is("-_-_", ff, 3, "all of '-' and '_'");
    query_is(" / /", ff, 3, "spaces for '+'");
    query_is("%2B%2F%2b%2f", ff, 3, "all escaped");
}

static void test_query_refused(void)
{
    apr_pool_t *p;
    apr_size_t n = 300, big;
    unsigned char *blob;
    char *s, *huge;

    apr_pool_create(&p, root);
    blob = make_blob(p, n, 7);
    s = b64(p, blob, n);

    query_refused("", 0, "empty");
    query_refused("=", 1, "only '='");
    query_refused("====", 4, "only padding");
    query_refused("\r\n", 2, "only a line break");
    query_refused("%0A", 3, "only an escaped line break");
    query_refused("%", 1, "a lone '%'");
    query_refused("%4", 2, "a lone '%4'");
    query_refused(apr_pstrcat(p, s, "%", NULL), strlen(s) + 1,
                  "'%' at the end");
    query_refused(apr_pstrcat(p, s, "%4", NULL), strlen(s) + 2,
                  "'%4' truncated escape at the end");
    query_refused(apr_pstrcat(p, strip_pad(p, s, 2), "%3", NULL),
                  strlen(strip_pad(p, s, 2)) + 2,
                  "'%3' truncated '=' escape at the end");
    query_refused("MA%", 3, "'%' right after data");
    query_refused("MA%ZZ", 5, "'%' with no hex digits");
    query_refused("MA%3G", 5, "'%' with one hex digit");
    query_refused("%00MAMC", 7, "an escaped NUL");
    query_refused("MA\0MC", 5, "a raw NUL inside");
    query_refused("MA*C", 4, "'*' inside");
    query_refused("MAM!", 4, "'!' at the end");
    query_refused("!MAMC", 5, "'!' at the start");
    query_refused(apr_pstrcat(p, "MAMC", "%2A", NULL), 7,
                  "an escaped '*'");
    query_refused("MA.C", 4, "'.' inside");
    query_refused("MA==MAMC", 8, "data after padding");
    query_refused("MA%3D%3DMAMC", 12, "data after escaped padding");
    query_refused("MA=C", 4, "data after one '='");
    query_refused("MA===", 5, "three '='");
    query_refused("M", 1, "one character");
    query_refused("MAMCM", 5, "five characters (a lone trailing one)");
    query_refused("MAMCM=", 6, "a lone trailing character padded");
    query_refused("MAMCM===", 8, "a lone trailing character, three '='");

    /* huge: nothing in the decoder limits the size, so the only refusal
     * it can make is of what is not base64 */
    big = (apr_size_t)16 * 1024 * 1024;
    huge = malloc(big);
    if (huge == NULL) {
        bail_out("out of memory");
    }
    memset(huge, 'A', big);
    huge[big - 1] = '!';
    query_refused(huge, big, "16 MiB ending in '!'");
    memset(huge, 'A', big);
    huge[big / 2] = '*';
    query_refused(huge, big, "16 MiB with '*' in the middle");
    memset(huge, 'A', big);
    query_refused(huge, big - 3, "16 MiB - 3 (a lone trailing char)");
    memset(huge, '=', big);
    huge[0] = 'M';
    huge[1] = 'A';
    query_refused(huge, big, "16 MiB of '=' after data");
    free(huge);

    apr_pool_destroy(p);
}

/* A big message decodes whole (the size limit is the caller's). */
static void test_query_big(void)
{
    apr_pool_t *p;
    apr_size_t n = (apr_size_t)3 * 1024 * 1024 + 1;
    unsigned char *blob;
    char *s;

    apr_pool_create(&p, root);
    blob = make_blob(p, n, 99);
    s = b64(p, blob, n);
    query_is(rewrite(p, s, "+/=", sscep_to, 64, "%0A"), blob, n,
             "3 MiB strongSwan style");
    apr_pool_destroy(p);
}

/* ------------------------------------------------------------------ */
/* POST bodies                                                         */

static void test_body(void)
{
    apr_pool_t *p, *q;
    apr_size_t n = 301;
    unsigned char *blob, *copy;
    const unsigned char *out;
    apr_size_t outlen;
    char *s, *crlf;
    static const unsigned char ber[] = {
        0x30, 0x80, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01,
        0x07, 0x02, 0x00, 0x00
    };
    static const unsigned char garbage[] = {
        0x00, 0x01, 0x02, 0xff, 0xfe, 0x80, 0x7f, 0x41, 0x42, 0x43
    };
    int rv;

    apr_pool_create(&p, root);
    blob = make_blob(p, n, 3);

    /* DER: passed through unchanged */
    apr_pool_create(&q, p);
    rv = body(q, blob, n, &out, &outlen, &copy);
    ok(rv == 1, "body DER: accepted");
    is_int(outlen, n, "body DER: length unchanged");
    ok(rv == 1 && out && outlen == n && memcmp(out, blob, n) == 0,
       "body DER: bytes unchanged");
    if (rv == 1 && out != copy) {
        diag("    (a copy, not the same pointer: allowed)");
    }
    free(copy);
    apr_pool_destroy(q);

    body_is(ber, sizeof(ber), ber, sizeof(ber), "BER indefinite length");
    body_is((const unsigned char *)"\x30\x00", 2,
            (const unsigned char *)"\x30\x00", 2, "empty SEQUENCE");

    s = b64(p, blob, n);
    body_is((const unsigned char *)s, strlen(s), blob, n, "base64");
    crlf = apr_pstrcat(p, rewrite(p, s, NULL, NULL, 64, "\r\n"), "\r\n",
                       NULL);
    body_is((const unsigned char *)crlf, strlen(crlf), blob, n,
            "base64 with CRLF every 64 and at the end");
    crlf = apr_pstrcat(p, rewrite(p, s, NULL, NULL, 76, "\n"), "\n", NULL);
    body_is((const unsigned char *)crlf, strlen(crlf), blob, n,
            "base64 with LF every 76");
    crlf = strip_pad(p, s, 2);
    body_is((const unsigned char *)crlf, strlen(crlf), blob, n,
            "base64 unpadded");

    body_refused((const unsigned char *)"", 0, "empty");
    body_refused(garbage, sizeof(garbage), "binary garbage");
    body_refused((const unsigned char *)"GET / HTTP/1.0\r\n", 16,
                 "an HTTP request line");
    body_refused((const unsigned char *)"\r\n\r\n", 4, "only line breaks");
    body_refused((const unsigned char *)"====", 4, "only padding");
    body_refused((const unsigned char *)"MA==MA==", 8, "data after padding");
    body_refused((const unsigned char *)"MAMCM", 5,
                 "five base64 characters");
    body_refused((const unsigned char *)"message=MAMC", 12,
                 "a form-encoded body");
    body_refused((const unsigned char *)"MA%3D%3D", 8,
                 "percent escapes (not decoded in a body)");
    apr_pool_destroy(p);
}

int main(void)
{
    int rc;

    apr_initialize();
    apr_pool_create(&root, NULL);

    test_query_spellings();
    test_query_small();
    test_query_refused();
    test_query_big();
    test_body();

    rc = done_testing();
    apr_pool_destroy(root);
    apr_terminate();
    return rc;
}
