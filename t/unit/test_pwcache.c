/* Licensed under the Apache License, Version 2.0; see LICENSE. */

/* The challenge-password table without httpd: issue, NDES use
 * accounting, reservations, expiry and reclaim, persistence; its index
 * (many passwords, colliding buckets, reuse, full tables, many services),
 * a random run against a model of the rules, and a table of the
 * previous layout carried over. */

#include <sys/stat.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <apr_general.h>
#include <apr_strings.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

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

/* ---- the index ---- */

#define PW_BUF (2 * SCEP_PW_MAX_BYTES + 1)

static void check_table(scep_pwcache_t *c, const char *when)
{
    const char *why = scep_pwcache_check(c);

    ok(why == NULL, "consistent %s%s%s", when, why ? ": " : "",
       why ? why : "");
}

static void test_index_many(apr_pool_t *p)
{
    enum { N = 5000 };
    scep_pwcache_t *c = new_table(p, N);
    char(*pw)[PW_BUF] = apr_palloc(p, N * sizeof(*pw));
    char extra[PW_BUF], admin[SCEP_PW_ADMIN_LEN], want[32];
    apr_time_t now = apr_time_from_sec(5000000), exp;
    scep_pw_ticket_t t;
    int i, issued = 0, verified = 0, named = 0, spent = 0, gone = 0;

    for (i = 0; i < N; i++) {
        apr_snprintf(want, sizeof(want), "admin-%d", i);
        /* Expiries in no particular order: the heap sorts them. */
        issued += scep_pwcache_issue(c, realm_a, N, 8,
                                     MIN(60 + (i * 7919) % 600), want, now,
                                     pw[i], &exp) == SCEP_PW_OK;
    }
    is_int(issued, N, "%d passwords issued", N);
    is_int(scep_pwcache_issue(c, realm_a, N + 1, 8, MIN(60), "x", now, extra,
                              &exp),
           SCEP_PW_FULL, "the table is full");
    check_table(c, "with the table full");
    for (i = N - 1; i >= 0; i--) {
        apr_snprintf(want, sizeof(want), "admin-%d", i);
        if (scep_pwcache_verify(c, realm_a, pw[i], strlen(pw[i]),
                                SCEP_KU_GENERAL, now, &t, admin)
            == SCEP_PW_OK) {
            verified++;
            named += strcmp(admin, want) == 0;
            spent += scep_pwcache_commit(c, &t, now) == SCEP_PW_OK;
        }
    }
    is_int(verified, N, "each of them verifies");
    is_int(named, N, "each names its own administrator");
    is_int(spent, N, "each is spent");
    is_int(verify(c, realm_a, "0123456789ABCDEF", SCEP_KU_GENERAL, now, &t),
           SCEP_PW_UNKNOWN, "a password never issued is unknown");
    is_int(scep_pwcache_live(c, realm_a, now), 0, "none is live");
    check_table(c, "with every password spent");
    for (i = 0, issued = 0; i < N; i++) {
        issued += scep_pwcache_issue(c, realm_a, N, 8, MIN(60), "y", now,
                                     extra, &exp) == SCEP_PW_OK;
    }
    is_int(issued, N, "spent slots are issued again");
    for (i = 0; i < N; i++) {
        gone += verify(c, realm_a, pw[i], SCEP_KU_SIGNATURE, now, &t)
                == SCEP_PW_UNKNOWN;
    }
    is_int(gone, N, "the spent passwords they held are gone");
    check_table(c, "after reuse");
}

static void hmac(const unsigned char key[32], const char *pw,
                 unsigned char out[SCEP_PW_HASH_LEN])
{
    unsigned int n = 0;

    HMAC(EVP_sha256(), key, 32, (const unsigned char *)pw, strlen(pw), out,
         &n);
}

static void put_hex(FILE *f, const unsigned char *b, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        fprintf(f, "%02x", b[i]);
    }
}

static void put_line(FILE *f, const unsigned char *hash,
                     const unsigned char *realm, apr_time_t created,
                     apr_time_t expires, unsigned int used)
{
    put_hex(f, hash, SCEP_PW_HASH_LEN);
    fputc(' ', f);
    put_hex(f, realm, SCEP_PW_REALM_LEN);
    fprintf(f, " %" APR_TIME_T_FMT " %" APR_TIME_T_FMT " %u -\n", created,
            expires, used);
}

/* Passwords whose HMACs share all but the last byte land in one bucket
 * whatever the bucket function reads: a table loaded from a file with a
 * known key forces a long probe run, then reuse cuts holes into it. */
static void test_index_collisions(apr_pool_t *p)
{
    enum { CAP = 32, FAKES = 20 };
    static const unsigned char realm_c[SCEP_PW_REALM_LEN] = "realm-C-------";
    unsigned char key[32], h[SCEP_PW_HASH_LEN], fake[SCEP_PW_HASH_LEN];
    char dir[] = "/tmp/scep-pwindex-XXXXXX", pw[PW_BUF];
    char admin[SCEP_PW_ADMIN_LEN];
    apr_time_t now = apr_time_from_sec(6000000), exp;
    scep_pwcache_t *c = new_table(p, CAP);
    scep_pw_ticket_t t;
    const char *path;
    int i, issued = 0;
    FILE *f;

    for (i = 0; i < 32; i++) {
        key[i] = (unsigned char)(i * 37 + 1);
    }
    hmac(key, "C0FFEE0000000001", h);
    ok(mkdtemp(dir) != NULL, "temporary directory");
    path = apr_pstrcat(p, dir, "/passwords", NULL);
    f = fopen(path, "w");
    ok(f != NULL, "password file written");
    if (f == NULL) {
        return;
    }
    fputs("mod_scep-passwords-v1 ", f);
    put_hex(f, key, sizeof(key));
    fputc('\n', f);
    for (i = 0; i < FAKES; i++) {
        memcpy(fake, h, sizeof(fake));
        fake[SCEP_PW_HASH_LEN - 1] ^= (unsigned char)(i + 1);
        put_line(f, fake, realm_a, now, now + MIN(1), 0);
        if (i == FAKES / 2) {
            /* The real one in the middle of the run, and the same hash
             * for another service right behind it. */
            put_line(f, h, realm_a, now, now + MIN(60), 0);
            put_line(f, h, realm_b, now, now + MIN(60), SCEP_KU_SIGNATURE);
        }
    }
    fclose(f);
    is_int(scep_pwcache_load(c, path, now, p), APR_SUCCESS,
           "%d passwords of one bucket loaded", FAKES + 2);
    unlink(path);
    rmdir(dir);
    check_table(c, "with one long probe run");
    is_int(verify(c, realm_a, "C0FFEE0000000001", SCEP_KU_GENERAL, now, &t),
           SCEP_PW_OK, "found amid its bucket's neighbours");
    scep_pwcache_release(c, &t);
    is_int(verify(c, realm_b, "c0ffee0000000001", SCEP_KU_SIGNATURE, now,
                  &t),
           SCEP_PW_USED, "the same password of another service is its own");
    is_int(verify(c, realm_b, "C0FFEE0000000001", SCEP_KU_ENCRYPTION, now,
                  &t),
           SCEP_PW_OK, "... and keeps its own accounting");
    is_int(verify(c, realm_a, "C0FFEE0000000002", SCEP_KU_GENERAL, now, &t),
           SCEP_PW_UNKNOWN, "a neighbour never issued is unknown");
    is_int(scep_pwcache_live(c, NULL, now), FAKES + 2, "all of them live");

    /* Past the fakes' expiry every free slot is used, the expired ones
     * last: each reuse takes an entry out of the run. */
    now += MIN(2);
    for (i = 0; i < CAP - 2; i++) {
        issued += scep_pwcache_issue(c, realm_c, CAP, 8, MIN(60), "c", now,
                                     pw, &exp) == SCEP_PW_OK;
    }
    is_int(issued, CAP - 2, "the expired slots are issued again");
    is_int(scep_pwcache_issue(c, realm_c, CAP, 8, MIN(60), "c", now, pw,
                              &exp),
           SCEP_PW_FULL, "then the table is full");
    check_table(c, "after the run lost its middle");
    is_int(scep_pwcache_verify(c, realm_a, "C0FFEE0000000001", 16,
                               SCEP_KU_GENERAL, now, &t, admin),
           SCEP_PW_OK, "the password is still found");
    is_int(verify(c, realm_b, "C0FFEE0000000001", SCEP_KU_ENCRYPTION, now,
                  &t),
           SCEP_PW_BUSY, "and so is its twin of the other service");
}

static void test_index_expiry_reuse(apr_pool_t *p)
{
    enum { CAP = 50, ROUNDS = 30 };
    scep_pwcache_t *c = new_table(p, CAP);
    char pw[2][CAP][PW_BUF];
    apr_time_t now = apr_time_from_sec(7000000), exp;
    scep_pw_ticket_t t;
    int r, i, issued = 0, fresh = 0, expired = 0, gone = 0;

    for (r = 0; r < ROUNDS; r++, now += MIN(2)) {
        char(*cur)[PW_BUF] = pw[r % 2], (*prev)[PW_BUF] = pw[(r + 1) % 2];
        for (i = 0; r > 0 && i < CAP; i++) {
            expired += verify(c, realm_a, prev[i], SCEP_KU_GENERAL, now, &t)
                       == SCEP_PW_EXPIRED;
        }
        for (i = 0; i < CAP; i++) {
            issued += scep_pwcache_issue(c, realm_a, CAP, 8, MIN(1), "r",
                                         now, cur[i], &exp) == SCEP_PW_OK;
        }
        for (i = 0; r > 0 && i < CAP; i++) {
            gone += verify(c, realm_a, prev[i], SCEP_KU_GENERAL, now, &t)
                    == SCEP_PW_UNKNOWN;
        }
        for (i = 0; i < CAP; i++) {
            if (verify(c, realm_a, cur[i], SCEP_KU_SIGNATURE, now, &t)
                == SCEP_PW_OK) {
                fresh++;
                scep_pwcache_release(c, &t);
            }
        }
    }
    is_int(issued, ROUNDS * CAP, "every round fills the table anew");
    is_int(fresh, ROUNDS * CAP, "every new password verifies");
    is_int(expired, (ROUNDS - 1) * CAP,
           "the last round's are expired until their slots are reused");
    is_int(gone, (ROUNDS - 1) * CAP, "then unknown");
    check_table(c, "after many rounds of expiry");
}

static void test_index_full_and_reservations(apr_pool_t *p)
{
    scep_pwcache_t *c = new_table(p, 3);
    char a[PW_BUF], b[PW_BUF], x[PW_BUF], y[PW_BUF];
    apr_time_t now = apr_time_from_sec(8000000), exp;
    scep_pw_ticket_t ta, tb, tx;

    scep_pwcache_issue(c, realm_a, 10, 8, MIN(1), "a", now, a, &exp);
    scep_pwcache_issue(c, realm_a, 10, 8, MIN(1), "b", now, b, &exp);
    scep_pwcache_issue(c, realm_a, 10, 8, MIN(1), "x", now, x, &exp);
    is_int(scep_pwcache_issue(c, realm_a, 10, 8, MIN(1), "y", now, y, &exp),
           SCEP_PW_FULL, "three slots, three live passwords: full");
    verify(c, realm_a, a, SCEP_KU_GENERAL, now, &ta);
    verify(c, realm_a, b, SCEP_KU_GENERAL, now, &tb);
    scep_pwcache_commit(c, &tb, now);
    is_int(scep_pwcache_issue(c, realm_a, 10, 8, MIN(1), "y", now, y, &exp),
           SCEP_PW_OK, "a spent password's slot is reused");
    is_int(verify(c, realm_a, b, SCEP_KU_GENERAL, now, &tb), SCEP_PW_UNKNOWN,
           "the spent password is gone");
    is_int(scep_pwcache_commit(c, &tb, now), SCEP_PW_UNKNOWN,
           "its old ticket spends nothing");
    check_table(c, "after reusing a spent slot");

    /* All expire; a's reservation still holds, so its slot is kept. */
    now += MIN(1);
    is_int(scep_pwcache_issue(c, realm_a, 10, 8, MIN(1), "1", now, b, &exp),
           SCEP_PW_OK, "expired slot reused (1)");
    is_int(scep_pwcache_issue(c, realm_a, 10, 8, MIN(1), "2", now, y, &exp),
           SCEP_PW_OK, "expired slot reused (2)");
    is_int(scep_pwcache_issue(c, realm_a, 10, 8, MIN(1), "3", now, x, &exp),
           SCEP_PW_FULL, "a slot reserved by a request in flight is kept");
    is_int(verify(c, realm_a, a, SCEP_KU_GENERAL, now, &tx),
           SCEP_PW_EXPIRED, "its password is expired");
    check_table(c, "with an expired slot held");
    is_int(scep_pwcache_commit(c, &ta, now), SCEP_PW_OK,
           "the request in flight still spends its use");
    is_int(scep_pwcache_issue(c, realm_a, 10, 8, MIN(1), "3", now, x, &exp),
           SCEP_PW_OK, "then the slot is free");
    check_table(c, "after the held slot was settled");

    /* A reservation nobody settles: kept until it lapses. */
    now += MIN(1);
    scep_pwcache_issue(c, realm_a, 10, 8, MIN(1), "4", now, a, &exp);
    is_int(verify(c, realm_a, a, SCEP_KU_SIGNATURE, now, &tx), SCEP_PW_OK,
           "reserved by a request that never comes back");
    now += MIN(1);
    is_int(scep_pwcache_issue(c, realm_a, 10, 8, MIN(10), "5", now, b, &exp),
           SCEP_PW_OK, "expired slot reused (3)");
    is_int(scep_pwcache_issue(c, realm_a, 10, 8, MIN(10), "6", now, x, &exp),
           SCEP_PW_OK, "expired slot reused (4)");
    is_int(scep_pwcache_issue(c, realm_a, 10, 8, MIN(10), "7", now, y, &exp),
           SCEP_PW_FULL, "held while the reservation holds");
    check_table(c, "with a reservation outstanding");
    now = now - MIN(1) + SCEP_PW_RESERVATION;
    is_int(scep_pwcache_issue(c, realm_a, 10, 8, MIN(10), "7", now, y, &exp),
           SCEP_PW_OK, "reused once the reservation lapsed");
    is_int(scep_pwcache_commit(c, &tx, now), SCEP_PW_UNKNOWN,
           "the lapsed ticket spends nothing");
    is_int(verify(c, realm_a, b, SCEP_KU_GENERAL, now, &tx), SCEP_PW_OK,
           "the live passwords were left alone");
    check_table(c, "after a lapsed reservation");
}

/* More services than the table counts by name: the rest are counted by
 * scanning, with the same result. */
static void test_index_realms(apr_pool_t *p)
{
    enum { REALMS = 100 };
    scep_pwcache_t *c = new_table(p, 3 * REALMS);
    apr_time_t now = apr_time_from_sec(9000000), exp;
    unsigned char realm[SCEP_PW_REALM_LEN];
    char pw[PW_BUF], keep[PW_BUF];
    scep_pw_ticket_t t;
    int i, j, issued = 0, full = 0, live = 0;

    memset(realm, 'r', sizeof(realm));
    for (i = 0; i < REALMS; i++) {
        realm[0] = (unsigned char)i;
        for (j = 0; j < 3; j++) {
            scep_pw_status_e st = scep_pwcache_issue(
                c, realm, 2, 8, MIN(1 + i % 3), "m", now,
                i == 70 && j == 0 ? keep : pw, &exp);
            issued += st == SCEP_PW_OK;
            full += st == SCEP_PW_FULL;
        }
    }
    is_int(issued, 2 * REALMS, "each of %d services gets its maximum",
           REALMS);
    is_int(full, REALMS, "and no more");
    check_table(c, "with more services than counted by name");
    realm[0] = 70;
    verify(c, realm, keep, SCEP_KU_GENERAL, now, &t);
    scep_pwcache_commit(c, &t, now);
    is_int(scep_pwcache_issue(c, realm, 2, 8, MIN(2), "m", now, pw, &exp),
           SCEP_PW_OK, "a spent password frees its service's place");
    is_int(scep_pwcache_issue(c, realm, 2, 8, MIN(2), "m", now, pw, &exp),
           SCEP_PW_FULL, "one place only");
    now += MIN(1);
    for (i = 0; i < REALMS; i++) {
        realm[0] = (unsigned char)i;
        live += scep_pwcache_live(c, realm, now) == (i % 3 ? 2u : 0u);
    }
    is_int(live, REALMS, "expiry is counted per service");
    for (i = 0, issued = 0; i < REALMS; i++) {
        realm[0] = (unsigned char)i;
        for (j = 0; j < 2; j++) {
            issued += scep_pwcache_issue(c, realm, 2, 8, MIN(1), "m", now, pw,
                                         &exp) == SCEP_PW_OK;
        }
    }
    is_int(issued, (REALMS + 2) / 3 * 2,
           "services whose passwords expired issue again, the others not");
    check_table(c, "after expiry of many services");

    /* A service counted by scanning that later gets its name counted
     * starts from the passwords it has. */
    c = new_table(p, 100);
    for (i = 0; i <= 64; i++) {
        realm[0] = (unsigned char)i;
        scep_pwcache_issue(c, realm, 3, 8, i ? MIN(60) : MIN(1), "m", now,
                           pw, &exp);
    }
    scep_pwcache_issue(c, realm, 3, 8, MIN(60), "m", now, pw, &exp);
    now += MIN(1);
    is_int(scep_pwcache_issue(c, realm, 3, 8, MIN(60), "m", now, pw, &exp),
           SCEP_PW_OK, "the 65th service issues its third password");
    check_table(c, "when the 65th service takes the first one's place");
    is_int(scep_pwcache_issue(c, realm, 3, 8, MIN(60), "m", now, pw, &exp),
           SCEP_PW_FULL, "and then has its maximum");
}

/* Short passwords: equal ones are not issued twice (a slot each would
 * answer to it). */
static void test_index_short(apr_pool_t *p)
{
    enum { N = 100 };
    scep_pwcache_t *c = new_table(p, 256);
    char(*pw)[PW_BUF] = apr_palloc(p, N * sizeof(*pw));
    apr_time_t now = apr_time_from_sec(9500000), exp;
    scep_pw_ticket_t t;
    int i, j, n = 0, tries = 0, dup = 0, okd = 0;

    for (tries = 0; n < N && tries < 1000; tries++) {
        n += scep_pwcache_issue(c, realm_a, 256, 1, MIN(1), "s", now, pw[n],
                                &exp) == SCEP_PW_OK;
    }
    is_int(n, N, "%d one-byte passwords issued", N);
    for (i = 0; i < n; i++) {
        for (j = i + 1; j < n; j++) {
            dup += strcmp(pw[i], pw[j]) == 0;
        }
        okd += verify(c, realm_a, pw[i], SCEP_KU_GENERAL, now, &t)
               == SCEP_PW_OK;
    }
    is_int(dup, 0, "no two are equal");
    is_int(okd, N, "each verifies once");

    /* Seen expired, a password stays expired if the clock steps back:
     * its slot may be reused at any time. */
    is_int(scep_pwcache_issue(c, realm_a, 256, 8, MIN(1), "s", now + MIN(1),
                              pw[0], &exp),
           SCEP_PW_OK, "issued after the others expired");
    is_int(verify(c, realm_a, pw[1], SCEP_KU_GENERAL, now, &t),
           SCEP_PW_EXPIRED, "an expired password stays expired");
    check_table(c, "with short passwords");
}

/* ---- a random run against a model of the rules ---- */

#define M_CAP 48
#define M_MAX 8000

typedef struct {
    char pw[PW_BUF];
    char admin[16];
    int realm;
    apr_time_t expires;
    unsigned int used, reserved;
    apr_time_t reserved_until;
    int gone;                  /* the table answered: reused */
    int ticketed;
    scep_pw_ticket_t t;
} mpw_t;

/* What a slot may be reused for: expired with no reservation holding,
 * or spent. */
static int m_reusable(const mpw_t *m, apr_time_t now)
{
    return (m->expires <= now && (!m->reserved || m->reserved_until <= now))
           || m->used == SCEP_KU_GENERAL;
}

static int m_live(const mpw_t *m, apr_time_t now)
{
    return !m->gone && m->expires > now && m->used != SCEP_KU_GENERAL;
}

static void test_model(apr_pool_t *p)
{
    static const unsigned int max[3] = {30, 25, 12};
    static const unsigned int kus[3] = {SCEP_KU_SIGNATURE, SCEP_KU_ENCRYPTION,
                                        SCEP_KU_GENERAL};
    unsigned char realms[3][SCEP_PW_REALM_LEN];
    scep_pwcache_t *c = new_table(p, M_CAP);
    mpw_t *m = apr_pcalloc(p, M_MAX * sizeof(*m));
    apr_time_t now = apr_time_from_sec(10000000), exp;
    int n = 0, op, ops, bad = 0, seen[8] = {0}, full = 0, liveok = 1;
    const char *broken = NULL;
    char first[200] = "";

    srand(6);
    memset(realms, 0, sizeof(realms));
    for (op = 0; op < 3; op++) {
        realms[op][0] = (unsigned char)('x' + op);
    }
    for (op = 0; op < 40000 && n < M_MAX && !broken; op++) {
        int r = rand() % 100, k;
        scep_pw_status_e want, got;
        mpw_t *x;

        if (r < 20) {
            unsigned int reuse = 0, lv = 0;
            int i;
            k = rand() % 3;
            for (i = 0; i < n; i++) {
                reuse += !m[i].gone && !m_reusable(&m[i], now);
                lv += m[i].realm == k && m_live(&m[i], now);
            }
            want = (lv >= max[k] || reuse >= M_CAP) ? SCEP_PW_FULL
                                                     : SCEP_PW_OK;
            x = &m[n];
            apr_snprintf(x->admin, sizeof(x->admin), "adm%d", n);
            got = scep_pwcache_issue(c, realms[k], max[k], 8,
                                     MIN(1 + rand() % 10), x->admin, now,
                                     x->pw, &exp);
            full += got == SCEP_PW_FULL;
            if (got == SCEP_PW_OK) {
                x->realm = k;
                x->expires = exp;
                n++;
            }
        }
        else if (n == 0) {
            continue;
        }
        else if (r < 55) {
            char admin[SCEP_PW_ADMIN_LEN];
            scep_pw_ticket_t t;
            unsigned int bits = kus[rand() % 3];
            x = &m[n - 1 - rand() % (n < 40 ? n : 40)];
            if (x->gone) {
                want = SCEP_PW_UNKNOWN;
            }
            else if (x->expires <= now) {
                want = SCEP_PW_EXPIRED;
            }
            else {
                if (x->reserved && x->reserved_until <= now) {
                    x->reserved = 0;
                }
                want = (x->used & bits) ? SCEP_PW_USED
                       : (x->reserved & bits) ? SCEP_PW_BUSY
                                              : SCEP_PW_OK;
            }
            got = scep_pwcache_verify(c, realms[x->realm], x->pw,
                                      strlen(x->pw), bits, now, &t, admin);
            if (got == SCEP_PW_UNKNOWN && !x->gone && m_reusable(x, now)) {
                x->gone = 1;
                want = got;
            }
            if (got == SCEP_PW_OK && want == SCEP_PW_OK) {
                x->reserved |= bits;
                x->reserved_until = now + SCEP_PW_RESERVATION;
                x->ticketed = 1;
                x->t = t;
                if (strcmp(admin, x->admin) != 0) {
                    got = SCEP_PW_BADARG;  /* counted as a mismatch */
                }
            }
        }
        else if (r < 85) {
            int i = n - 1 - rand() % (n < 40 ? n : 40);
            unsigned int bits;
            x = &m[i];
            if (!x->ticketed) {
                continue;
            }
            bits = x->t.bits;
            x->ticketed = 0;
            if (r < 78) {
                if (x->gone) {
                    want = SCEP_PW_UNKNOWN;
                }
                else if ((x->reserved & bits) != bits && (x->used & bits)) {
                    want = SCEP_PW_USED;
                }
                else if ((x->reserved & bits) != bits
                         && (x->reserved & bits)) {
                    want = SCEP_PW_BUSY;
                }
                else {
                    want = SCEP_PW_OK;
                }
                got = scep_pwcache_commit(c, &x->t, now);
                if (got == SCEP_PW_UNKNOWN && !x->gone
                    && m_reusable(x, now)) {
                    x->gone = 1;
                    want = got;
                }
                if (got == SCEP_PW_OK && want == SCEP_PW_OK) {
                    x->reserved &= ~bits;
                    x->used |= bits;
                }
            }
            else {
                scep_pwcache_release(c, &x->t);
                x->reserved &= ~bits;
                want = got = SCEP_PW_OK;
            }
        }
        else {
            now += rand() % 30 == 0 ? MIN(6) : apr_time_from_sec(rand() % 30);
            continue;
        }
        seen[got]++;
        if (got != want) {
            if (!bad++) {
                apr_snprintf(first, sizeof(first),
                             "operation %d (%d): got %d, want %d", op, r, got,
                             want);
            }
        }
        if (op % 7 == 0) {
            broken = scep_pwcache_check(c);
        }
    }
    ops = op;
    for (op = 0; op < 3; op++) {
        unsigned int lv = 0;
        int i;
        for (i = 0; i < n; i++) {
            lv += m[i].realm == op && m_live(&m[i], now);
        }
        liveok &= scep_pwcache_live(c, realms[op], now) == lv;
    }
    ok(bad == 0, "%d operations as the model says%s%s", ops,
       bad ? "; first difference: " : "", first);
    if (bad) {
        diag("%d differences", bad);
    }
    ok(broken == NULL, "consistent throughout%s%s", broken ? ": " : "",
       broken ? broken : "");
    ok(liveok, "live counts per service as the model says");
    ok(n > 2000 && full > 100 && seen[SCEP_PW_USED] > 100
           && seen[SCEP_PW_BUSY] > 100 && seen[SCEP_PW_EXPIRED] > 100
           && seen[SCEP_PW_UNKNOWN] > 100,
       "every outcome was seen: %d issued, %d full, %d used, %d busy, "
       "%d expired, %d unknown", n, full, seen[SCEP_PW_USED],
       seen[SCEP_PW_BUSY], seen[SCEP_PW_EXPIRED], seen[SCEP_PW_UNKNOWN]);
}

/* ---- a table of the previous layout ---- */

/* Version 1 as mod_scep laid it out in shared memory: a graceful restart
 * into a newer module finds it. */
typedef struct {
    unsigned char hash[SCEP_PW_HASH_LEN];
    unsigned char realm[SCEP_PW_REALM_LEN];
    apr_time_t created, expires, reserved_until;
    apr_uint32_t generation;
    unsigned int used, reserved;
    int issued;
    char admin[SCEP_PW_ADMIN_LEN];
} v1_slot_t;

typedef struct {
    apr_uint32_t magic, version, max, reserved0;
    unsigned char key[32];
    v1_slot_t slots[3];
} v1_table_t;

static void test_migrate_v1(apr_pool_t *p)
{
    v1_table_t *v1 = apr_pcalloc(p, sizeof(*v1));
    scep_pwcache_t *c = new_table(p, 4);
    apr_time_t now = apr_time_from_sec(11000000);
    char admin[SCEP_PW_ADMIN_LEN];
    scep_pw_ticket_t t;
    int i;

    v1->magic = 0x53435057u;
    v1->version = 1;
    v1->max = 3;
    for (i = 0; i < 32; i++) {
        v1->key[i] = (unsigned char)(255 - i);
    }
    for (i = 0; i < 3; i++) {
        v1_slot_t *s = &v1->slots[i];
        hmac(v1->key, i == 0 ? "AAAA0000" : i == 1 ? "BBBB1111" : "CCCC2222",
             s->hash);
        memcpy(s->realm, realm_a, SCEP_PW_REALM_LEN);
        s->created = now - MIN(5);
        s->expires = i == 1 ? now - MIN(1) : now + MIN(60);
        s->used = i == 2 ? SCEP_KU_GENERAL : SCEP_KU_SIGNATURE;
        s->issued = 1;
        strcpy(s->admin, "frank");
    }
    is_int(scep_pwcache_copy(c, v1, now), 0, "a version 1 table copied");
    is_int(scep_pwcache_verify(c, realm_a, "aaaa0000", 8, SCEP_KU_ENCRYPTION,
                               now, &t, admin),
           SCEP_PW_OK, "its password verifies");
    is_str(admin, "frank", "with its administrator");
    is_int(verify(c, realm_a, "AAAA0000", SCEP_KU_SIGNATURE, now, &t),
           SCEP_PW_USED, "and its spent use stays spent");
    is_int(scep_pwcache_live(c, NULL, now), 1,
           "expired and spent ones are left behind");
    check_table(c, "after the copy");
    ok(scep_pwcache_attach(v1) == NULL,
       "attach refuses the old layout (the module makes a new table)");
    v1->version = 9;
    c = new_table(p, 4);
    is_int(scep_pwcache_copy(c, v1, now), 0, "an unknown layout is ignored");
    is_int(scep_pwcache_live(c, NULL, now), 0, "and gives nothing");
    ok(scep_pwcache_size(100000) < 100000 * 200,
       "100000 passwords take %lu bytes", (unsigned long)scep_pwcache_size(
                                              100000));
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
    test_index_many(p);
    test_index_collisions(p);
    test_index_expiry_reuse(p);
    test_index_full_and_reservations(p);
    test_index_realms(p);
    test_index_short(p);
    test_model(p);
    test_migrate_v1(p);
    apr_pool_destroy(p);
    apr_terminate();
    return done_testing();
}
