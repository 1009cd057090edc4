/* Licensed under the Apache License, Version 2.0; see LICENSE. */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <apr_file_io.h>
#include <apr_strings.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "scep_pwcache.h"

#define PW_MAGIC 0x53435057u   /* "SCPW" */
#define PW_VERSION 1u
#define PW_KEY_LEN 32
#define PW_FILE_TAG "mod_scep-passwords-v1"

/* No pointers: the table lives in shared memory that other processes may
 * map at another address. */
typedef struct {
    unsigned char hash[SCEP_PW_HASH_LEN];  /* HMAC-SHA256(key, password) */
    unsigned char realm[SCEP_PW_REALM_LEN];
    apr_time_t created;
    apr_time_t expires;
    apr_time_t reserved_until;  /* when unsettled reservations lapse */
    apr_uint32_t generation;    /* changes whenever the slot is reissued */
    unsigned int used;          /* KeyUsage bits spent */
    unsigned int reserved;      /* KeyUsage bits reserved by verify */
    int issued;                 /* the slot holds a password */
    char admin[SCEP_PW_ADMIN_LEN];
} pw_slot_t;

struct scep_pwcache_t {
    apr_uint32_t magic;
    apr_uint32_t version;
    apr_uint32_t max;
    apr_uint32_t reserved0;
    unsigned char key[PW_KEY_LEN];
    pw_slot_t slots[1];
};

apr_size_t scep_pwcache_size(apr_uint32_t max)
{
    if (max == 0) {
        max = 1;
    }
    return sizeof(scep_pwcache_t) + (apr_size_t)(max - 1) * sizeof(pw_slot_t);
}

scep_pwcache_t *scep_pwcache_create(void *mem, apr_uint32_t max)
{
    scep_pwcache_t *c = mem;

    memset(c, 0, scep_pwcache_size(max));
    if (RAND_bytes(c->key, sizeof(c->key)) != 1) {
        return NULL;
    }
    c->max = max ? max : 1;
    c->version = PW_VERSION;
    c->magic = PW_MAGIC;
    return c;
}

scep_pwcache_t *scep_pwcache_attach(void *mem)
{
    scep_pwcache_t *c = mem;

    return (c && c->magic == PW_MAGIC && c->version == PW_VERSION) ? c : NULL;
}

apr_uint32_t scep_pwcache_capacity(const scep_pwcache_t *c)
{
    return c->max;
}

static int slot_live(const pw_slot_t *s, apr_time_t now)
{
    return s->issued && s->expires > now;
}

static int slot_spent(const pw_slot_t *s)
{
    return (s->used & SCEP_KU_GENERAL) == SCEP_KU_GENERAL;
}

static void settle_lapsed(pw_slot_t *s, apr_time_t now)
{
    if (s->reserved && s->reserved_until <= now) {
        s->reserved = 0;  /* its worker never came back */
    }
}

static void free_slot(pw_slot_t *s)
{
    apr_uint32_t gen = s->generation + 1;

    memset(s, 0, sizeof(*s));
    s->generation = gen;
}

static int hash_password(const scep_pwcache_t *c, const char *pw,
                         apr_size_t len, unsigned char out[SCEP_PW_HASH_LEN])
{
    /* Hex is shown in upper case; accept what a person types. */
    char norm[2 * SCEP_PW_MAX_BYTES + 1];
    unsigned int outlen = 0;
    apr_size_t i;

    if (len == 0 || len > sizeof(norm) - 1) {
        return 0;
    }
    for (i = 0; i < len; i++) {
        norm[i] = (pw[i] >= 'a' && pw[i] <= 'z') ? (char)(pw[i] - 32) : pw[i];
    }
    return HMAC(EVP_sha256(), c->key, sizeof(c->key),
                (const unsigned char *)norm, len, out, &outlen) != NULL
           && outlen == SCEP_PW_HASH_LEN;
}

apr_uint32_t scep_pwcache_live(const scep_pwcache_t *c,
                               const unsigned char *realm, apr_time_t now)
{
    apr_uint32_t i, n = 0;

    for (i = 0; i < c->max; i++) {
        const pw_slot_t *s = &c->slots[i];
        if (slot_live(s, now) && !slot_spent(s)
            && (!realm || !memcmp(s->realm, realm, SCEP_PW_REALM_LEN))) {
            n++;
        }
    }
    return n;
}

/* A slot to issue into: never used, expired, or spent (oldest first). */
static pw_slot_t *free_slot_for_issue(scep_pwcache_t *c, apr_time_t now)
{
    pw_slot_t *spent = NULL;
    apr_uint32_t i;

    for (i = 0; i < c->max; i++) {
        pw_slot_t *s = &c->slots[i];
        settle_lapsed(s, now);
        if (!s->issued || s->expires <= now) {
            if (s->reserved == 0) {
                return s;
            }
        }
        else if (slot_spent(s) && s->reserved == 0
                 && (!spent || s->created < spent->created)) {
            spent = s;
        }
    }
    return spent;
}

scep_pw_status_e scep_pwcache_issue(scep_pwcache_t *c,
                                    const unsigned char *realm,
                                    apr_uint32_t max, apr_size_t len,
                                    apr_interval_time_t validity,
                                    const char *admin, apr_time_t now,
                                    char *out, apr_time_t *expires)
{
    static const char hex[] = "0123456789ABCDEF";
    unsigned char rnd[SCEP_PW_MAX_BYTES];
    pw_slot_t *s;
    apr_size_t i;

    if (len == 0 || len > SCEP_PW_MAX_BYTES || validity <= 0) {
        return SCEP_PW_BADARG;
    }
    if (scep_pwcache_live(c, realm, now) >= max) {
        return SCEP_PW_FULL;
    }
    s = free_slot_for_issue(c, now);
    if (s == NULL) {
        return SCEP_PW_FULL;
    }
    if (RAND_bytes(rnd, (int)len) != 1) {
        return SCEP_PW_RANDOM;
    }
    for (i = 0; i < len; i++) {
        out[2 * i] = hex[rnd[i] >> 4];
        out[2 * i + 1] = hex[rnd[i] & 15];
    }
    out[2 * len] = '\0';
    OPENSSL_cleanse(rnd, sizeof(rnd));
    free_slot(s);
    if (!hash_password(c, out, 2 * len, s->hash)) {
        return SCEP_PW_RANDOM;
    }
    memcpy(s->realm, realm, SCEP_PW_REALM_LEN);
    s->created = now;
    s->expires = now + validity;
    apr_cpystrn(s->admin, admin ? admin : "", sizeof(s->admin));
    s->issued = 1;
    *expires = s->expires;
    return SCEP_PW_OK;
}

unsigned int scep_pwcache_ku_bits(int ku)
{
    unsigned int bits = ku < 0 ? 0 : ((unsigned int)ku & SCEP_KU_GENERAL);

    /* No KeyUsage, or neither bit: the general-purpose use (NDES). */
    return bits ? bits : SCEP_KU_GENERAL;
}

scep_pw_status_e scep_pwcache_verify(scep_pwcache_t *c,
                                     const unsigned char *realm,
                                     const char *password, apr_size_t pwlen,
                                     unsigned int bits, apr_time_t now,
                                     scep_pw_ticket_t *t,
                                     char admin[SCEP_PW_ADMIN_LEN])
{
    unsigned char h[SCEP_PW_HASH_LEN];
    apr_uint32_t i, found = c->max;
    pw_slot_t *s;

    if (password == NULL || bits == 0 || (bits & ~SCEP_KU_GENERAL)) {
        return SCEP_PW_BADARG;
    }
    if (!hash_password(c, password, pwlen, h)) {
        return SCEP_PW_UNKNOWN;
    }
    /* Look at every slot, whatever matches, in constant time per slot. */
    for (i = 0; i < c->max; i++) {
        const pw_slot_t *x = &c->slots[i];
        int match = (CRYPTO_memcmp(x->hash, h, sizeof(h)) == 0)
                    & (CRYPTO_memcmp(x->realm, realm, SCEP_PW_REALM_LEN) == 0)
                    & (x->issued != 0);
        if (match) {
            found = i;
        }
    }
    if (found == c->max) {
        return SCEP_PW_UNKNOWN;
    }
    s = &c->slots[found];
    if (s->expires <= now) {
        return SCEP_PW_EXPIRED;
    }
    settle_lapsed(s, now);
    if (s->used & bits) {
        return SCEP_PW_USED;
    }
    if (s->reserved & bits) {
        return SCEP_PW_BUSY;
    }
    s->reserved |= bits;
    s->reserved_until = now + SCEP_PW_RESERVATION;
    t->slot = found;
    t->generation = s->generation;
    t->bits = bits;
    if (admin) {
        memcpy(admin, s->admin, SCEP_PW_ADMIN_LEN);
        admin[SCEP_PW_ADMIN_LEN - 1] = '\0';
    }
    return SCEP_PW_OK;
}

static pw_slot_t *ticket_slot(scep_pwcache_t *c, const scep_pw_ticket_t *t)
{
    if (t->slot >= c->max || c->slots[t->slot].generation != t->generation
        || !c->slots[t->slot].issued) {
        return NULL;
    }
    return &c->slots[t->slot];
}

scep_pw_status_e scep_pwcache_commit(scep_pwcache_t *c,
                                     const scep_pw_ticket_t *t,
                                     apr_time_t now)
{
    pw_slot_t *s = ticket_slot(c, t);

    if (s == NULL) {
        return SCEP_PW_UNKNOWN;  /* reissued meanwhile: never spend twice */
    }
    if ((s->reserved & t->bits) != t->bits) {
        /* The reservation lapsed; spend only if nobody else did. */
        if (s->used & t->bits) {
            return SCEP_PW_USED;
        }
        if (s->reserved & t->bits) {
            return SCEP_PW_BUSY;
        }
    }
    s->reserved &= ~t->bits;
    s->used |= t->bits;
    return SCEP_PW_OK;
}

void scep_pwcache_release(scep_pwcache_t *c, const scep_pw_ticket_t *t)
{
    pw_slot_t *s = ticket_slot(c, t);

    if (s) {
        s->reserved &= ~t->bits;
    }
}

apr_uint32_t scep_pwcache_copy(scep_pwcache_t *to, const scep_pwcache_t *from,
                               apr_time_t now)
{
    apr_uint32_t i, j = 0, lost = 0;

    memcpy(to->key, from->key, sizeof(to->key));
    for (i = 0; i < from->max; i++) {
        const pw_slot_t *s = &from->slots[i];
        if (!slot_live(s, now) || slot_spent(s)) {
            continue;
        }
        if (j < to->max) {
            to->slots[j] = *s;
            j++;
        }
        else {
            lost++;
        }
    }
    return lost;
}

/* ---- persistence ---- */

static void to_hex(char *out, const unsigned char *in, apr_size_t n)
{
    static const char hex[] = "0123456789abcdef";
    apr_size_t i;

    for (i = 0; i < n; i++) {
        out[2 * i] = hex[in[i] >> 4];
        out[2 * i + 1] = hex[in[i] & 15];
    }
    out[2 * n] = '\0';
}

static int from_hex(unsigned char *out, apr_size_t n, const char *in)
{
    apr_size_t i;

    if (strlen(in) != 2 * n) {
        return 0;
    }
    for (i = 0; i < n; i++) {
        unsigned int v;
        if (sscanf(in + 2 * i, "%2x", &v) != 1) {
            return 0;
        }
        out[i] = (unsigned char)v;
    }
    return 1;
}

apr_status_t scep_pwcache_save(const scep_pwcache_t *c, const char *path,
                               apr_time_t now, apr_pool_t *p)
{
    const char *tmp = apr_psprintf(p, "%s.tmp.%" APR_PID_T_FMT, path,
                                   getpid());
    char key[2 * PW_KEY_LEN + 1];
    apr_file_t *f;
    apr_status_t rv;
    apr_uint32_t i;

    rv = apr_file_open(&f, tmp,
                       APR_FOPEN_WRITE | APR_FOPEN_CREATE | APR_FOPEN_TRUNCATE
                           | APR_FOPEN_BUFFERED,
                       APR_FPROT_UREAD | APR_FPROT_UWRITE, p);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    to_hex(key, c->key, sizeof(c->key));
    rv = apr_file_printf(f, "%s %s\n", PW_FILE_TAG, key) > 0 ? APR_SUCCESS
                                                              : APR_EGENERAL;
    for (i = 0; rv == APR_SUCCESS && i < c->max; i++) {
        const pw_slot_t *s = &c->slots[i];
        char h[2 * SCEP_PW_HASH_LEN + 1], r[2 * SCEP_PW_REALM_LEN + 1];
        char a[2 * SCEP_PW_ADMIN_LEN + 1];
        if (!slot_live(s, now) || slot_spent(s)) {
            continue;
        }
        to_hex(h, s->hash, sizeof(s->hash));
        to_hex(r, s->realm, sizeof(s->realm));
        to_hex(a, (const unsigned char *)s->admin, strlen(s->admin));
        if (apr_file_printf(f, "%s %s %" APR_TIME_T_FMT " %" APR_TIME_T_FMT
                            " %u %s\n", h, r, s->created, s->expires,
                            s->used, *a ? a : "-") <= 0) {
            rv = APR_EGENERAL;
        }
    }
    if (rv == APR_SUCCESS) {
        rv = apr_file_flush(f);
    }
    if (rv == APR_SUCCESS) {
        rv = apr_file_sync(f);
    }
    if (apr_file_close(f) != APR_SUCCESS && rv == APR_SUCCESS) {
        rv = APR_EGENERAL;
    }
    if (rv == APR_SUCCESS) {
        rv = apr_file_rename(tmp, path, p);
    }
    if (rv != APR_SUCCESS) {
        apr_file_remove(tmp, p);
    }
    return rv;
}

apr_status_t scep_pwcache_load(scep_pwcache_t *c, const char *path,
                               apr_time_t now, apr_pool_t *p)
{
    char line[512], tag[64], key[2 * PW_KEY_LEN + 2];
    apr_file_t *f;
    apr_status_t rv;
    apr_uint32_t j = 0;

    rv = apr_file_open(&f, path, APR_FOPEN_READ | APR_FOPEN_BUFFERED, 0, p);
    if (APR_STATUS_IS_ENOENT(rv)) {
        return APR_SUCCESS;  /* first start */
    }
    if (rv != APR_SUCCESS) {
        return rv;
    }
    if (apr_file_gets(line, sizeof(line), f) != APR_SUCCESS
        || sscanf(line, "%63s %65s", tag, key) != 2
        || strcmp(tag, PW_FILE_TAG) != 0
        || !from_hex(c->key, sizeof(c->key), key)) {
        apr_file_close(f);
        return APR_EINVAL;
    }
    while (apr_file_gets(line, sizeof(line), f) == APR_SUCCESS) {
        char h[2 * SCEP_PW_HASH_LEN + 2], r[2 * SCEP_PW_REALM_LEN + 2];
        char a[2 * SCEP_PW_ADMIN_LEN + 2];
        apr_int64_t created, expires;
        unsigned int used;
        pw_slot_t s;

        memset(&s, 0, sizeof(s));
        if (sscanf(line, "%65s %33s %" APR_INT64_T_FMT " %" APR_INT64_T_FMT
                   " %u %129s", h, r, &created, &expires, &used, a) != 6
            || !from_hex(s.hash, sizeof(s.hash), h)
            || !from_hex(s.realm, sizeof(s.realm), r)) {
            rv = APR_EINVAL;
            break;
        }
        if (strcmp(a, "-") != 0
            && (strlen(a) % 2 || strlen(a) / 2 >= SCEP_PW_ADMIN_LEN
                || !from_hex((unsigned char *)s.admin, strlen(a) / 2, a))) {
            rv = APR_EINVAL;
            break;
        }
        if ((apr_time_t)expires <= now || j >= c->max) {
            continue;
        }
        s.created = (apr_time_t)created;
        s.expires = (apr_time_t)expires;
        s.used = used & SCEP_KU_GENERAL;
        s.issued = 1;
        s.generation = c->slots[j].generation + 1;
        c->slots[j++] = s;
    }
    apr_file_close(f);
    return rv;
}

const char *scep_pwcache_status_str(scep_pw_status_e s)
{
    switch (s) {
    case SCEP_PW_OK: return "ok";
    case SCEP_PW_FULL: return "the password cache is full";
    case SCEP_PW_UNKNOWN: return "no such password";
    case SCEP_PW_EXPIRED: return "the password has expired";
    case SCEP_PW_USED: return "the password was already used for this "
                              "KeyUsage";
    case SCEP_PW_BUSY: return "the password is in use by a request in "
                              "progress";
    case SCEP_PW_BADARG: return "invalid argument";
    case SCEP_PW_RANDOM: return "the random generator failed";
    }
    return "unknown";
}
