/* Licensed under the Apache License, Version 2.0; see LICENSE. */

/*
 * Unit tests of the GetCACaps body (scep_caps.h): the exact text for
 * every combination of switches, and the rules clients parse it by.
 */

#include <stdio.h>
#include <string.h>

#include <apr_general.h>
#include <apr_pools.h>
#include <apr_strings.h>

#include "scep_caps.h"
#include "tap.h"

/* Every keyword RFC 8894 Table 7 defines, exact case. */
static const char *const known[] = {
    "AES", "DES3", "GetNextCACert", "POSTPKIOperation", "Renewal",
    "SHA-1", "SHA-256", "SHA-512", "SCEPStandard",
    /* not in Table 7, but clients read it (strongSwan 5.9.8) */
    "SHA-384",
};

static int known_keyword(const char *s, size_t len)
{
    size_t i;

    for (i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
        if (strlen(known[i]) == len && memcmp(known[i], s, len) == 0) {
            return 1;
        }
    }
    return 0;
}

/* The line rules every client depends on. */
static void check_shape(const char *text, const char *what)
{
    const char *s, *nl;
    int lines_ok = 1;

    ok(text && strlen(text) < 1024, "%s: below certmonger's 1 KiB", what);
    if (text == NULL) {
        return;
    }
    ok(strstr(text, "\n\n") == NULL && text[0] != '\n',
       "%s: no blank line", what);
    ok(strchr(text, '\r') == NULL, "%s: LF only", what);
    ok(*text && text[strlen(text) - 1] == '\n', "%s: LF-terminated", what);
    for (s = text; *s; s = nl + 1) {
        nl = strchr(s, '\n');
        if (nl == NULL) {
            break;
        }
        if (!known_keyword(s, (size_t)(nl - s))) {
            diag("    unknown keyword '%.*s'", (int)(nl - s), s);
            lines_ok = 0;
        }
    }
    ok(lines_ok, "%s: every line is a known keyword", what);
    ok(strstr(text, "\nSHA-384\n") != NULL,
       "%s: SHA-384 listed (strongSwan needs it for AES and POST)", what);
}

int main(void)
{
    apr_pool_t *p;
    int i;
    static const struct {
        int legacy, next_ca, renewal;
        const char *text;
    } cases[] = {
        { 0, 0, 0,
          "AES\nPOSTPKIOperation\nSHA-256\nSHA-384\nSHA-512\n"
          "SCEPStandard\n" },
        { 1, 0, 0,
          "AES\nDES3\nPOSTPKIOperation\nSHA-1\nSHA-256\nSHA-384\n"
          "SHA-512\nSCEPStandard\n" },
        { 0, 1, 0,
          "AES\nGetNextCACert\nPOSTPKIOperation\nSHA-256\nSHA-384\n"
          "SHA-512\nSCEPStandard\n" },
        { 0, 0, 1,
          "AES\nPOSTPKIOperation\nRenewal\nSHA-256\nSHA-384\nSHA-512\n"
          "SCEPStandard\n" },
        { 1, 1, 0,
          "AES\nDES3\nGetNextCACert\nPOSTPKIOperation\nSHA-1\nSHA-256\n"
          "SHA-384\nSHA-512\nSCEPStandard\n" },
        { 1, 0, 1,
          "AES\nDES3\nPOSTPKIOperation\nRenewal\nSHA-1\nSHA-256\n"
          "SHA-384\nSHA-512\nSCEPStandard\n" },
        { 0, 1, 1,
          "AES\nGetNextCACert\nPOSTPKIOperation\nRenewal\nSHA-256\n"
          "SHA-384\nSHA-512\nSCEPStandard\n" },
        { 1, 1, 1,
          "AES\nDES3\nGetNextCACert\nPOSTPKIOperation\nRenewal\nSHA-1\n"
          "SHA-256\nSHA-384\nSHA-512\nSCEPStandard\n" },
    };

    apr_initialize();
    apr_pool_create(&p, NULL);

    for (i = 0; i < (int)(sizeof(cases) / sizeof(cases[0])); i++) {
        scep_caps_t caps;
        const char *what, *text;

        caps.legacy = cases[i].legacy;
        caps.next_ca = cases[i].next_ca;
        caps.renewal = cases[i].renewal;
        what = apr_psprintf(p, "legacy=%d next_ca=%d renewal=%d",
                            caps.legacy, caps.next_ca, caps.renewal);
        text = scep_caps_text(p, &caps);
        is_str(text, cases[i].text, "%s: exact text", what);
        check_shape(text, what);
        ok(text && (strstr(text, "DES3\n") != NULL) == !!caps.legacy
           && (strstr(text, "SHA-1\n") != NULL) == !!caps.legacy,
           "%s: DES3 and SHA-1 only with legacy", what);
        ok(text && (strstr(text, "GetNextCACert\n") != NULL)
                   == !!caps.next_ca,
           "%s: GetNextCACert only with a rollover CA", what);
        ok(text && (strstr(text, "Renewal\n") != NULL) == !!caps.renewal,
           "%s: Renewal only when served", what);
    }

    apr_pool_destroy(p);
    apr_terminate();
    return done_testing();
}
