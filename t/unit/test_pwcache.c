/* Licensed under the Apache License, Version 2.0; see LICENSE. */

/* The challenge-password table without httpd: issue, NDES use
 * accounting, reservations, expiry and reclaim, persistence. */

#include <sys/stat.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <apr_general.h>
#include <apr_strings.h>

#include "tap.h"
#include "scep_pwcache.h"

static const unsigned char realm_a[SCEP_PW_REALM_LEN] = "realm-A-------";
static const unsigned char realm_b[SCEP_PW_REALM_LEN] = "realm-B-------";
#define MIN(m) apr_time_from_sec(60 * (m))

static scep_pwcache_t *new_table(apr_pool_t *p, apr_uint32_t max)
{
    return scep_pwcache_create(apr_pcalloc(p, scep_pwcache_size(max)), max);
}

static scep_pw_status_e verify(scep_pwcache_t *c, const unsigned char *realm,
                               const char *pw, unsigned int bits,
                               apr_time_t now, scep_pw_ticket_t *t)
{
    return scep_pwcache_verify(c, realm, pw, strlen(pw), bits, now, t, NULL);
}

static void test_issue(apr_pool_t *p)
{
    scep_pwcache_t *c = new_table(p, 4);
    char pw[2 * SCEP_PW_MAX_BYTES + 1], pw2[sizeof(pw)];
    apr_time_t now = apr_time_from_sec(1000000), exp;
    size_t i;
    int hex = 1;

    ok(c != NULL, "table created");
    is_int(scep_pwcache_issue(c, realm_a, 5, 8, MIN(60), "alice", now, pw,
                              &exp), SCEP_PW_OK, "issue");
    is_int((int)strlen(pw), 16, "8 bytes show as 16 characters");
    for (i = 0; pw[i]; i++) {
        hex &= (pw[i] >= '0' && pw[i] <= '9') || (pw[i] >= 'A' && pw[i] <= 'F');
    }
    ok(hex, "upper-case hex: %s", pw);
    ok(exp == now + MIN(60), "expires after the validity");
    scep_pwcache_issue(c, realm_a, 5, 8, MIN(60), "alice", now, pw2, &exp);
    ok(strcmp(pw, pw2) != 0, "two passwords differ");
    is_int(scep_pwcache_issue(c, realm_a, 5, 0, MIN(60), "a", now, pw2, &exp),
           SCEP_PW_BADARG, "length 0 refused");
    is_int(scep_pwcache_issue(c, realm_a, 5, SCEP_PW_MAX_BYTES + 1, MIN(60),
                              "a", now, pw2, &exp),
           SCEP_PW_BADARG, "length over the bound refused");
    {
        /* The table holds no clear text. */
        const char *mem = (const char *)c;
        int found = 0;
        for (i = 0; i + 16 <= scep_pwcache_size(4); i++) {
            found |= memcmp(mem + i, pw, 16) == 0;
        }
        ok(!found, "the password is not stored in clear");
    }
}

static void test_accounting(apr_pool_t *p)
{
    scep_pwcache_t *c = new_table(p, 4);
    char pw[2 * SCEP_PW_MAX_BYTES + 1], admin[SCEP_PW_ADMIN_LEN];
    apr_time_t now = apr_time_from_sec(2000000), exp;
    scep_pw_ticket_t t1, t2;

    scep_pwcache_issue(c, realm_a, 5, 8, MIN(60), "alice", now, pw, &exp);
    is_int(scep_pwcache_ku_bits(-1), SCEP_KU_GENERAL, "no KeyUsage: general");
    is_int(scep_pwcache_ku_bits(0xa0), SCEP_KU_GENERAL, "0xa0: general");
    is_int(scep_pwcache_ku_bits(0x80), SCEP_KU_SIGNATURE, "0x80: signature");
    is_int(scep_pwcache_ku_bits(0x20), SCEP_KU_ENCRYPTION, "0x20: encryption");
    is_int(scep_pwcache_ku_bits(0x08), SCEP_KU_GENERAL,
           "neither bit: general");

    is_int(verify(c, realm_a, "0000000000000000", SCEP_KU_GENERAL, now, &t1),
           SCEP_PW_UNKNOWN, "a wrong password is unknown");
    is_int(verify(c, realm_b, pw, SCEP_KU_GENERAL, now, &t1),
           SCEP_PW_UNKNOWN, "a password of another service is unknown");

    /* One signature use and one encryption use. */
    is_int(scep_pwcache_verify(c, realm_a, pw, strlen(pw), SCEP_KU_SIGNATURE,
                               now, &t1, admin),
           SCEP_PW_OK, "signature use reserved");
    is_str(admin, "alice", "verify names the administrator");
    is_int(verify(c, realm_a, pw, SCEP_KU_SIGNATURE, now, &t2), SCEP_PW_BUSY,
           "the same use while reserved is busy");
    is_int(verify(c, realm_a, pw, SCEP_KU_GENERAL, now, &t2), SCEP_PW_BUSY,
           "a general use while the signature use is reserved is busy");
    is_int(scep_pwcache_commit(c, &t1, now), SCEP_PW_OK, "signature spent");
    is_int(verify(c, realm_a, pw, SCEP_KU_SIGNATURE, now, &t2), SCEP_PW_USED,
           "a second signature request is refused (NDES event 43)");
    {
        char lower[sizeof(pw)];
        size_t i;
        for (i = 0; i <= strlen(pw); i++) {
            lower[i] = (pw[i] >= 'A' && pw[i] <= 'F') ? pw[i] + 32 : pw[i];
        }
        is_int(verify(c, realm_a, lower, SCEP_KU_ENCRYPTION, now, &t2),
               SCEP_PW_OK, "encryption use reserved (typed in lower case)");
    }
    scep_pwcache_release(c, &t2);
    is_int(verify(c, realm_a, pw, SCEP_KU_ENCRYPTION, now, &t2), SCEP_PW_OK,
           "a released use can be reserved again");
    is_int(scep_pwcache_commit(c, &t2, now), SCEP_PW_OK, "encryption spent");
    is_int(verify(c, realm_a, pw, SCEP_KU_ENCRYPTION, now, &t2),
           SCEP_PW_USED, "the password is spent");
    is_int(scep_pwcache_live(c, realm_a, now), 0,
           "a spent password no longer counts");

    /* The general use takes both. */
    scep_pwcache_issue(c, realm_a, 5, 8, MIN(60), "bob", now, pw, &exp);
    is_int(verify(c, realm_a, pw, SCEP_KU_GENERAL, now, &t1), SCEP_PW_OK,
           "general use reserved");
    is_int(scep_pwcache_commit(c, &t1, now), SCEP_PW_OK, "general use spent");
    is_int(verify(c, realm_a, pw, SCEP_KU_SIGNATURE, now, &t2), SCEP_PW_USED,
           "after a general use nothing is left");

    /* A reservation its worker never settled lapses. */
    scep_pwcache_issue(c, realm_a, 5, 8, MIN(60), "carol", now, pw, &exp);
    verify(c, realm_a, pw, SCEP_KU_GENERAL, now, &t1);
    is_int(verify(c, realm_a, pw, SCEP_KU_GENERAL,
                  now + SCEP_PW_RESERVATION + 1, &t2),
           SCEP_PW_OK, "a lapsed reservation frees the use");
    is_int(scep_pwcache_commit(c, &t2, now + SCEP_PW_RESERVATION + 2),
           SCEP_PW_OK, "the new reservation commits");
    is_int(scep_pwcache_commit(c, &t1, now + SCEP_PW_RESERVATION + 3),
           SCEP_PW_USED, "the lapsed one cannot spend it again");
}

static void test_expiry_and_full(apr_pool_t *p)
{
    scep_pwcache_t *c = new_table(p, 3);
    char pw[3][2 * SCEP_PW_MAX_BYTES + 1], extra[2 * SCEP_PW_MAX_BYTES + 1];
    apr_time_t now = apr_time_from_sec(3000000), exp;
    scep_pw_ticket_t t;
    int i;

    for (i = 0; i < 2; i++) {
        is_int(scep_pwcache_issue(c, realm_a, 2, 8, MIN(1), "a", now, pw[i],
                                  &exp), SCEP_PW_OK, "issue %d", i + 1);
    }
    is_int(scep_pwcache_issue(c, realm_a, 2, 8, MIN(1), "a", now, extra, &exp),
           SCEP_PW_FULL, "the realm's maximum is reached: cache full");
    is_int(scep_pwcache_issue(c, realm_b, 2, 8, MIN(1), "a", now, pw[2], &exp),
           SCEP_PW_OK, "another realm has its own count");
    is_int(scep_pwcache_issue(c, realm_b, 5, 8, MIN(1), "a", now, extra, &exp),
           SCEP_PW_FULL, "no slot left in the table");
    is_int(verify(c, realm_a, pw[0], SCEP_KU_GENERAL, now + MIN(1), &t),
           SCEP_PW_EXPIRED, "an expired password is refused");
    is_int(scep_pwcache_issue(c, realm_a, 2, 8, MIN(1), "a", now + MIN(1),
                              extra, &exp),
           SCEP_PW_OK, "expired slots are reclaimed");
    is_int(scep_pwcache_live(c, NULL, now + MIN(1)), 1,
           "only the new password is live");
}

static void test_persist_and_copy(apr_pool_t *p)
{
    scep_pwcache_t *c = new_table(p, 4), *d = new_table(p, 4);
    scep_pwcache_t *small = new_table(p, 1);
    char pw[2 * SCEP_PW_MAX_BYTES + 1], pw2[sizeof(pw)];
    char dir[] = "/tmp/scep-pwcache-XXXXXX";
    apr_time_t now = apr_time_from_sec(4000000), exp;
    scep_pw_ticket_t t;
    const char *path;
    struct stat st;
    char buf[4096];
    FILE *f;
    size_t n;

    ok(mkdtemp(dir) != NULL, "temporary directory");
    path = apr_pstrcat(p, dir, "/passwords", NULL);
    scep_pwcache_issue(c, realm_a, 5, 8, MIN(60), "dave", now, pw, &exp);
    scep_pwcache_issue(c, realm_a, 5, 8, MIN(1), "erin", now, pw2, &exp);
    verify(c, realm_a, pw, SCEP_KU_SIGNATURE, now, &t);
    scep_pwcache_commit(c, &t, now);

    is_int(scep_pwcache_save(c, path, now, p), APR_SUCCESS, "saved");
    ok(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600, "mode 0600");
    f = fopen(path, "r");
    n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;
    if (f) {
        fclose(f);
    }
    buf[n] = '\0';
    ok(n > 0 && !strstr(buf, pw) && !strstr(buf, pw2),
       "the file holds hashes, not passwords");

    is_int(scep_pwcache_load(d, path, now + MIN(2), p), APR_SUCCESS,
           "loaded into a new table");
    is_int(verify(d, realm_a, pw, SCEP_KU_SIGNATURE, now + MIN(2), &t),
           SCEP_PW_USED, "the spent use stays spent after a restart");
    is_int(verify(d, realm_a, pw, SCEP_KU_ENCRYPTION, now + MIN(2), &t),
           SCEP_PW_OK, "the password works after a restart");
    is_int(verify(d, realm_a, pw2, SCEP_KU_GENERAL, now + MIN(2), &t),
           SCEP_PW_UNKNOWN, "a password expired on disk is not loaded");

    is_int(scep_pwcache_copy(small, c, now), 1,
           "copy into a smaller table reports what did not fit");
    is_int(scep_pwcache_live(small, realm_a, now), 1, "one was copied");

    f = fopen(path, "w");
    if (f) {
        fputs("not a password file\n", f);
        fclose(f);
    }
    is_int(scep_pwcache_load(new_table(p, 2), path, now, p), APR_EINVAL,
           "a damaged file is refused");
    unlink(path);
    is_int(scep_pwcache_load(new_table(p, 2), path, now, p), APR_SUCCESS,
           "no file: first start");
    rmdir(dir);
    ok(scep_pwcache_attach(c) == c, "attach finds the table");
    memset(buf, 0, sizeof(buf));
    ok(scep_pwcache_attach(buf) == NULL, "attach refuses other memory");
}

int main(void)
{
    apr_pool_t *p;

    apr_initialize();
    apr_pool_create(&p, NULL);
    test_issue(p);
    test_accounting(p);
    test_expiry_and_full(p);
    test_persist_and_copy(p);
    apr_pool_destroy(p);
    apr_terminate();
    return done_testing();
}
