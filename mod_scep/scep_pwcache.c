/* Licensed under the Apache License, Version 2.0; see LICENSE. */

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <apr_file_io.h>
#include <apr_general.h>
#include <apr_strings.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "scep_pwcache.h"

#define PW_MAGIC 0x53435057u   /* "SCPW" */
#define PW_VERSION 2u          /* 1: slots only, every operation a scan */
#define PW_KEY_LEN 32
#define PW_FILE_TAG "mod_scep-passwords-v1"
#define PW_NONE 0xffffffffu
#define PW_REALMS 64           /* services whose live passwords are counted */
#define PW_ISSUE_TRIES 8       /* draws before a duplicate means a bad RNG */

/*
 * Layout (no pointers: the table lives in shared memory that other
 * processes may map at another address):
 *
 *   header | slots[max] | heap[max] | index[mask + 1]
 *
 * index: open addressing with linear probing over slot numbers + 1 (0 is
 * empty), at most half full, keyed by the first bytes of the stored HMAC.
 * The HMAC key is secret, so clients cannot aim passwords at one bucket.
 * It holds every slot that holds a password, expired ones included, so
 * verify can tell "expired" from "unknown" until the slot is reused.
 *
 * heap: a binary min-heap of the slots not yet seen expired (LIVE and
 * SPENT), by expiry, so issue reclaims expired slots without a scan.
 *
 * Slot states and where they are kept:
 *   FREE   never issued, or expired and unreserved: the FREE list
 *   LIVE   issued, unexpired, not spent: the heap; counted for its realm
 *   SPENT  both uses spent, unexpired: the heap and the SPENT list
 *   HELD   expired while a reservation held: the HELD list, until the
 *          reservation is settled or lapses
 * Issue takes FREE first, then a HELD slot whose reservation lapsed, then
 * the slot spent longest ago.
 */
enum { PW_FREE, PW_LIVE, PW_SPENT, PW_HELD, PW_OUT };
enum { L_FREE, L_SPENT, L_HELD, L_COUNT };

typedef struct {
    unsigned char hash[SCEP_PW_HASH_LEN];  /* HMAC-SHA256(key, password) */
    unsigned char realm[SCEP_PW_REALM_LEN];
    apr_time_t created;
    apr_time_t expires;
    apr_time_t reserved_until;  /* when unsettled reservations lapse */
    apr_uint32_t generation;    /* changes whenever the slot is reissued */
    unsigned int used;          /* KeyUsage bits spent */
    unsigned int reserved;      /* KeyUsage bits reserved by verify */
    int issued;                 /* the slot holds a password (is indexed) */
    apr_uint32_t state;         /* PW_FREE ... */
    apr_uint32_t prev, next;    /* neighbours in the state's list */
    apr_uint32_t heap_pos;      /* place in the heap, or PW_NONE */
    char admin[SCEP_PW_ADMIN_LEN];
} pw_slot_t;

typedef struct {
    apr_uint32_t head, tail;
} pw_list_t;

typedef struct {
    unsigned char realm[SCEP_PW_REALM_LEN];
    apr_uint32_t live;          /* LIVE slots of the realm */
} pw_realm_t;

struct scep_pwcache_t {
    /* The first five fields are laid out as in version 1. */
    apr_uint32_t magic;
    apr_uint32_t version;
    apr_uint32_t max;
    apr_uint32_t reserved0;
    unsigned char key[PW_KEY_LEN];
    apr_uint32_t mask;          /* the index has mask + 1 entries */
    apr_uint32_t heap_len;
    apr_uint32_t nrealms;       /* entries of realms[] in use */
    apr_uint32_t untracked;     /* LIVE slots of realms without an entry */
    pw_list_t lists[L_COUNT];
    pw_realm_t realms[PW_REALMS];
};

/* Version 1, read once to carry its passwords over a graceful restart
 * that loads a newer module. */
typedef struct {
    unsigned char hash[SCEP_PW_HASH_LEN];
    unsigned char realm[SCEP_PW_REALM_LEN];
    apr_time_t created;
    apr_time_t expires;
    apr_time_t reserved_until;
    apr_uint32_t generation;
    unsigned int used;
    unsigned int reserved;
    int issued;
    char admin[SCEP_PW_ADMIN_LEN];
} pw_slot_v1_t;

typedef struct {
    apr_uint32_t magic;
    apr_uint32_t version;
    apr_uint32_t max;
    apr_uint32_t reserved0;
    unsigned char key[PW_KEY_LEN];
    pw_slot_v1_t slots[1];
} pw_table_v1_t;

#define HEADER_SIZE APR_ALIGN_DEFAULT(sizeof(scep_pwcache_t))

static apr_uint32_t capacity_of(apr_uint32_t max)
{
    if (max == 0) {
        return 1;
    }
    return max > SCEP_PW_CAPACITY_MAX ? SCEP_PW_CAPACITY_MAX : max;
}

/* Index entries: a power of two, at least twice the slots. */
static apr_size_t index_len(apr_uint32_t max)
{
    apr_size_t n = 2;

    while (n < 2 * (apr_size_t)max) {
        n <<= 1;
    }
    return n;
}

static pw_slot_t *slots(const scep_pwcache_t *c)
{
    return (pw_slot_t *)((char *)c + HEADER_SIZE);
}

static apr_uint32_t *heap(const scep_pwcache_t *c)
{
    return (apr_uint32_t *)(slots(c) + c->max);
}

static apr_uint32_t *index_of(const scep_pwcache_t *c)
{
    return heap(c) + c->max;
}

apr_size_t scep_pwcache_size(apr_uint32_t max)
{
    max = capacity_of(max);
    return HEADER_SIZE + (apr_size_t)max * sizeof(pw_slot_t)
           + (apr_size_t)max * sizeof(apr_uint32_t)
           + index_len(max) * sizeof(apr_uint32_t);
}

/* ---- lists ---- */

static void list_append(scep_pwcache_t *c, int l, apr_uint32_t i)
{
    pw_slot_t *s = slots(c);
    pw_list_t *list = &c->lists[l];

    s[i].next = PW_NONE;
    s[i].prev = list->tail;
    if (list->tail == PW_NONE) {
        list->head = i;
    }
    else {
        s[list->tail].next = i;
    }
    list->tail = i;
}

static void list_remove(scep_pwcache_t *c, int l, apr_uint32_t i)
{
    pw_slot_t *s = slots(c);
    pw_list_t *list = &c->lists[l];

    if (s[i].prev == PW_NONE) {
        list->head = s[i].next;
    }
    else {
        s[s[i].prev].next = s[i].next;
    }
    if (s[i].next == PW_NONE) {
        list->tail = s[i].prev;
    }
    else {
        s[s[i].next].prev = s[i].prev;
    }
    s[i].prev = s[i].next = PW_NONE;
}

static int list_of(apr_uint32_t state)
{
    switch (state) {
    case PW_FREE: return L_FREE;
    case PW_SPENT: return L_SPENT;
    case PW_HELD: return L_HELD;
    }
    return -1;
}

/* ---- the expiry heap ---- */

static int heap_less(const scep_pwcache_t *c, apr_uint32_t a, apr_uint32_t b)
{
    return slots(c)[a].expires < slots(c)[b].expires;
}

static void heap_set(scep_pwcache_t *c, apr_uint32_t pos, apr_uint32_t i)
{
    heap(c)[pos] = i;
    slots(c)[i].heap_pos = pos;
}

static void heap_up(scep_pwcache_t *c, apr_uint32_t pos)
{
    apr_uint32_t *h = heap(c), i = h[pos];

    while (pos > 0 && heap_less(c, i, h[(pos - 1) / 2])) {
        heap_set(c, pos, h[(pos - 1) / 2]);
        pos = (pos - 1) / 2;
    }
    heap_set(c, pos, i);
}

static void heap_down(scep_pwcache_t *c, apr_uint32_t pos)
{
    apr_uint32_t *h = heap(c), i = h[pos];

    for (;;) {
        apr_uint32_t child = 2 * pos + 1;
        if (child >= c->heap_len) {
            break;
        }
        if (child + 1 < c->heap_len && heap_less(c, h[child + 1], h[child])) {
            child++;
        }
        if (!heap_less(c, h[child], i)) {
            break;
        }
        heap_set(c, pos, h[child]);
        pos = child;
    }
    heap_set(c, pos, i);
}

static void heap_push(scep_pwcache_t *c, apr_uint32_t i)
{
    heap_set(c, c->heap_len++, i);
    heap_up(c, c->heap_len - 1);
}

static void heap_remove(scep_pwcache_t *c, apr_uint32_t i)
{
    apr_uint32_t pos = slots(c)[i].heap_pos;
    apr_uint32_t last = heap(c)[--c->heap_len];

    slots(c)[i].heap_pos = PW_NONE;
    if (last != i) {
        heap_set(c, pos, last);
        heap_up(c, pos);
        heap_down(c, slots(c)[last].heap_pos);
    }
}

/* ---- the index ---- */

static apr_uint32_t bucket(const scep_pwcache_t *c,
                           const unsigned char *hash)
{
    apr_uint32_t b;

    memcpy(&b, hash, sizeof(b));
    return b & c->mask;
}

static void index_insert(scep_pwcache_t *c, apr_uint32_t i)
{
    apr_uint32_t *x = index_of(c);
    apr_uint32_t b = bucket(c, slots(c)[i].hash);

    while (x[b] != 0) {
        b = (b + 1) & c->mask;
    }
    x[b] = i + 1;
}

static void index_remove(scep_pwcache_t *c, apr_uint32_t i)
{
    apr_uint32_t *x = index_of(c);
    apr_uint32_t hole = bucket(c, slots(c)[i].hash), j;

    while (x[hole] != i + 1) {
        if (x[hole] == 0) {
            return;  /* not indexed */
        }
        hole = (hole + 1) & c->mask;
    }
    /* Close the gap: move back each later entry of the run that the hole
     * would otherwise cut off from its bucket (no tombstones, so probe
     * runs never grow with churn). */
    x[hole] = 0;
    for (j = (hole + 1) & c->mask; x[j] != 0; j = (j + 1) & c->mask) {
        apr_uint32_t home = bucket(c, slots(c)[x[j] - 1].hash);
        if (((j - home) & c->mask) >= ((j - hole) & c->mask)) {
            x[hole] = x[j];
            x[j] = 0;
            hole = j;
        }
    }
}

/* The slot holding hash for realm, or PW_NONE.  Every entry on the probe
 * path is compared in full and in constant time; the path's length
 * depends only on the keyed HMAC. */
static apr_uint32_t index_find(const scep_pwcache_t *c,
                               const unsigned char *hash,
                               const unsigned char *realm)
{
    const apr_uint32_t *x = index_of(c);
    apr_uint32_t b;

    for (b = bucket(c, hash); x[b] != 0; b = (b + 1) & c->mask) {
        const pw_slot_t *s = &slots(c)[x[b] - 1];
        int match = (CRYPTO_memcmp(s->hash, hash, SCEP_PW_HASH_LEN) == 0)
                    & (CRYPTO_memcmp(s->realm, realm, SCEP_PW_REALM_LEN)
                       == 0);
        if (match) {
            return x[b] - 1;
        }
    }
    return PW_NONE;
}

/* Whether a slot other than except holds hash, in any realm. */
static int index_has(const scep_pwcache_t *c, const unsigned char *hash,
                     apr_uint32_t except)
{
    const apr_uint32_t *x = index_of(c);
    apr_uint32_t b;

    for (b = bucket(c, hash); x[b] != 0; b = (b + 1) & c->mask) {
        if (x[b] - 1 != except
            && CRYPTO_memcmp(slots(c)[x[b] - 1].hash, hash,
                             SCEP_PW_HASH_LEN) == 0) {
            return 1;
        }
    }
    return 0;
}

/* ---- live passwords per realm ---- */

static int slot_live(const pw_slot_t *s, apr_time_t now)
{
    return s->issued && s->expires > now;
}

static int slot_spent(const pw_slot_t *s)
{
    return (s->used & SCEP_KU_GENERAL) == SCEP_KU_GENERAL;
}

static apr_uint32_t scan_live(const scep_pwcache_t *c,
                              const unsigned char *realm)
{
    apr_uint32_t i, n = 0;

    for (i = 0; i < c->max; i++) {
        const pw_slot_t *s = &slots(c)[i];
        n += s->state == PW_LIVE
             && !memcmp(s->realm, realm, SCEP_PW_REALM_LEN);
    }
    return n;
}

static pw_realm_t *realm_find(const scep_pwcache_t *c,
                              const unsigned char *realm)
{
    apr_uint32_t i;

    for (i = 0; i < c->nrealms; i++) {
        if (!memcmp(c->realms[i].realm, realm, SCEP_PW_REALM_LEN)) {
            return (pw_realm_t *)&c->realms[i];
        }
    }
    return NULL;
}

/* The realm's entry, made if need be; NULL when more than PW_REALMS
 * realms hold live passwords (they are then counted by a scan). */
static pw_realm_t *realm_get(scep_pwcache_t *c, const unsigned char *realm)
{
    pw_realm_t *e = realm_find(c, realm);
    apr_uint32_t i;

    if (e) {
        return e;
    }
    if (c->nrealms < PW_REALMS) {
        e = &c->realms[c->nrealms++];
    }
    else {
        /* A realm without live passwords gives up its place. */
        for (i = 0; i < PW_REALMS && e == NULL; i++) {
            if (c->realms[i].live == 0) {
                e = &c->realms[i];
            }
        }
        if (e == NULL) {
            c->untracked = 1;
            return NULL;
        }
    }
    memcpy(e->realm, realm, SCEP_PW_REALM_LEN);
    e->live = c->untracked ? scan_live(c, realm) : 0;
    return e;
}

static apr_uint32_t realm_live(scep_pwcache_t *c, const unsigned char *realm)
{
    pw_realm_t *e = realm_find(c, realm);

    if (e) {
        return e->live;
    }
    return c->untracked ? scan_live(c, realm) : 0;
}

/* ---- slot states ---- */

static int in_heap(apr_uint32_t state)
{
    return state == PW_LIVE || state == PW_SPENT;
}

/* Move slot i to state, keeping lists, heap and realm counts. */
static void set_state(scep_pwcache_t *c, apr_uint32_t i, apr_uint32_t state)
{
    pw_slot_t *s = &slots(c)[i];
    apr_uint32_t old = s->state;
    pw_realm_t *e;

    if (old == state) {
        return;
    }
    if (list_of(old) >= 0) {
        list_remove(c, list_of(old), i);
    }
    if (in_heap(old) && !in_heap(state)) {
        heap_remove(c, i);
    }
    if (old == PW_LIVE && (e = realm_find(c, s->realm)) != NULL) {
        e->live--;
    }
    if (state == PW_LIVE && (e = realm_get(c, s->realm)) != NULL) {
        e->live++;  /* counted before the state changes: see realm_get */
    }
    s->state = state;
    if (!in_heap(old) && in_heap(state)) {
        heap_push(c, i);
    }
    if (list_of(state) >= 0) {
        list_append(c, list_of(state), i);
    }
}

static void settle_lapsed(pw_slot_t *s, apr_time_t now)
{
    if (s->reserved && s->reserved_until <= now) {
        s->reserved = 0;  /* its worker never came back */
    }
}

/* Slots whose expiry has come leave the heap: FREE, or HELD while a
 * reservation on them holds. */
static void expire_due(scep_pwcache_t *c, apr_time_t now)
{
    while (c->heap_len > 0 && slots(c)[heap(c)[0]].expires <= now) {
        apr_uint32_t i = heap(c)[0];
        settle_lapsed(&slots(c)[i], now);
        set_state(c, i, slots(c)[i].reserved ? PW_HELD : PW_FREE);
    }
}

/* A HELD slot whose reservation was settled goes free. */
static void settled(scep_pwcache_t *c, apr_uint32_t i)
{
    if (slots(c)[i].state == PW_HELD && slots(c)[i].reserved == 0) {
        set_state(c, i, PW_FREE);
    }
}

/* Empty slot i, out of every list, for new contents; its generation
 * changes so that tickets of the old password lapse. */
static void clear_slot(scep_pwcache_t *c, apr_uint32_t i)
{
    pw_slot_t *s = &slots(c)[i];
    apr_uint32_t gen = s->generation + 1;

    set_state(c, i, PW_OUT);
    if (s->issued) {
        index_remove(c, i);
    }
    memset(s, 0, sizeof(*s));
    s->generation = gen;
    s->state = PW_OUT;
    s->prev = s->next = s->heap_pos = PW_NONE;
}

/* Enter the contents now in slot i (cleared, then filled). */
static void enter_slot(scep_pwcache_t *c, apr_uint32_t i)
{
    pw_slot_t *s = &slots(c)[i];

    s->issued = 1;
    index_insert(c, i);
    set_state(c, i, slot_spent(s) ? PW_SPENT : PW_LIVE);
}

/* ---- the table ---- */

scep_pwcache_t *scep_pwcache_create(void *mem, apr_uint32_t max)
{
    scep_pwcache_t *c = mem;
    apr_uint32_t i;
    int l;

    max = capacity_of(max);
    memset(c, 0, scep_pwcache_size(max));
    if (RAND_bytes(c->key, sizeof(c->key)) != 1) {
        return NULL;
    }
    c->max = max;
    c->mask = (apr_uint32_t)(index_len(max) - 1);
    for (l = 0; l < L_COUNT; l++) {
        c->lists[l].head = c->lists[l].tail = PW_NONE;
    }
    for (i = 0; i < max; i++) {
        pw_slot_t *s = &slots(c)[i];
        s->state = PW_OUT;
        s->heap_pos = PW_NONE;
        set_state(c, i, PW_FREE);
    }
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
        const pw_slot_t *s = &slots(c)[i];
        if (slot_live(s, now) && !slot_spent(s)
            && (!realm || !memcmp(s->realm, realm, SCEP_PW_REALM_LEN))) {
            n++;
        }
    }
    return n;
}

/* A slot to issue into: free, then expired with a lapsed reservation, then
 * spent (longest ago first); PW_NONE if every slot is taken. */
static apr_uint32_t slot_for_issue(scep_pwcache_t *c, apr_time_t now)
{
    apr_uint32_t i;

    if (c->lists[L_FREE].head != PW_NONE) {
        return c->lists[L_FREE].head;
    }
    /* Only as many as requests in flight when their password expired. */
    for (i = c->lists[L_HELD].head; i != PW_NONE; i = slots(c)[i].next) {
        settle_lapsed(&slots(c)[i], now);
        if (slots(c)[i].reserved == 0) {
            set_state(c, i, PW_FREE);
            return i;
        }
    }
    return c->lists[L_SPENT].head;
}

scep_pw_status_e scep_pwcache_issue(scep_pwcache_t *c,
                                    const unsigned char *realm,
                                    apr_uint32_t max, apr_size_t len,
                                    apr_interval_time_t validity,
                                    const char *admin, apr_time_t now,
                                    char *out, apr_time_t *expires)
{
    static const char hex[] = "0123456789ABCDEF";
    unsigned char rnd[SCEP_PW_MAX_BYTES], h[SCEP_PW_HASH_LEN];
    apr_uint32_t i;
    pw_slot_t *s;
    apr_size_t k;
    int tries;

    if (len == 0 || len > SCEP_PW_MAX_BYTES || validity <= 0) {
        return SCEP_PW_BADARG;
    }
    expire_due(c, now);
    if (realm_live(c, realm) >= max) {
        return SCEP_PW_FULL;
    }
    i = slot_for_issue(c, now);
    if (i == PW_NONE) {
        return SCEP_PW_FULL;
    }
    /* A password equal to one the table holds would make two slots
     * answer to it; with short passwords that can happen, so draw again. */
    for (tries = 0;; tries++) {
        if (tries == PW_ISSUE_TRIES || RAND_bytes(rnd, (int)len) != 1) {
            OPENSSL_cleanse(rnd, sizeof(rnd));
            return SCEP_PW_RANDOM;
        }
        for (k = 0; k < len; k++) {
            out[2 * k] = hex[rnd[k] >> 4];
            out[2 * k + 1] = hex[rnd[k] & 15];
        }
        out[2 * len] = '\0';
        if (!hash_password(c, out, 2 * len, h)) {
            OPENSSL_cleanse(rnd, sizeof(rnd));
            return SCEP_PW_RANDOM;
        }
        if (!index_has(c, h, i)) {
            break;
        }
    }
    OPENSSL_cleanse(rnd, sizeof(rnd));
    clear_slot(c, i);
    s = &slots(c)[i];
    memcpy(s->hash, h, sizeof(h));
    memcpy(s->realm, realm, SCEP_PW_REALM_LEN);
    s->created = now;
    s->expires = now + validity;
    apr_cpystrn(s->admin, admin ? admin : "", sizeof(s->admin));
    enter_slot(c, i);
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
    apr_uint32_t i;
    pw_slot_t *s;

    if (password == NULL || bits == 0 || (bits & ~SCEP_KU_GENERAL)) {
        return SCEP_PW_BADARG;
    }
    if (!hash_password(c, password, pwlen, h)) {
        return SCEP_PW_UNKNOWN;
    }
    i = index_find(c, h, realm);
    if (i == PW_NONE) {
        return SCEP_PW_UNKNOWN;
    }
    s = &slots(c)[i];
    /* FREE or HELD: seen expired by an earlier call. */
    if (s->expires <= now || s->state == PW_FREE || s->state == PW_HELD) {
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
    t->slot = i;
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
    pw_slot_t *s;

    if (t->slot >= c->max) {
        return NULL;
    }
    s = &slots(c)[t->slot];
    if (s->generation != t->generation || !s->issued) {
        return NULL;
    }
    return s;
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
    if (s->state == PW_LIVE && slot_spent(s)) {
        set_state(c, t->slot, PW_SPENT);
    }
    settled(c, t->slot);
    return SCEP_PW_OK;
}

void scep_pwcache_release(scep_pwcache_t *c, const scep_pw_ticket_t *t)
{
    pw_slot_t *s = ticket_slot(c, t);

    if (s) {
        s->reserved &= ~t->bits;
        settled(c, t->slot);
    }
}

/* Take a password of another table (or of a file) into a free slot;
 * 0 if none is left. */
static int adopt(scep_pwcache_t *c, const unsigned char *hash,
                 const unsigned char *realm, apr_time_t created,
                 apr_time_t expires, unsigned int used, unsigned int reserved,
                 apr_time_t reserved_until, const char *admin)
{
    apr_uint32_t i = c->lists[L_FREE].head;
    pw_slot_t *s;

    if (i == PW_NONE) {
        return 0;
    }
    clear_slot(c, i);
    s = &slots(c)[i];
    memcpy(s->hash, hash, SCEP_PW_HASH_LEN);
    memcpy(s->realm, realm, SCEP_PW_REALM_LEN);
    s->created = created;
    s->expires = expires;
    s->used = used & SCEP_KU_GENERAL;
    /* Reservations in flight stay blocked until they lapse: the worker
     * holding one settles it in the old table. */
    s->reserved = reserved & SCEP_KU_GENERAL & ~s->used;
    s->reserved_until = reserved_until;
    memcpy(s->admin, admin, SCEP_PW_ADMIN_LEN);
    s->admin[SCEP_PW_ADMIN_LEN - 1] = '\0';
    enter_slot(c, i);
    return 1;
}

apr_uint32_t scep_pwcache_copy(scep_pwcache_t *to, const void *from,
                               apr_time_t now)
{
    const scep_pwcache_t *f = from;
    apr_uint32_t i, lost = 0;

    if (f == NULL || f->magic != PW_MAGIC) {
        return 0;
    }
    memcpy(to->key, f->key, sizeof(to->key));
    if (f->version == 1) {
        const pw_table_v1_t *v1 = from;
        for (i = 0; i < v1->max; i++) {
            const pw_slot_v1_t *s = &v1->slots[i];
            if (!s->issued || s->expires <= now
                || (s->used & SCEP_KU_GENERAL) == SCEP_KU_GENERAL) {
                continue;
            }
            lost += !adopt(to, s->hash, s->realm, s->created, s->expires,
                           s->used, s->reserved, s->reserved_until,
                           s->admin);
        }
        return lost;
    }
    if (f->version != PW_VERSION) {
        return 0;
    }
    for (i = 0; i < f->max; i++) {
        const pw_slot_t *s = &slots(f)[i];
        if (!slot_live(s, now) || slot_spent(s)) {
            continue;
        }
        lost += !adopt(to, s->hash, s->realm, s->created, s->expires,
                       s->used, s->reserved, s->reserved_until, s->admin);
    }
    return lost;
}

/* For the unit tests: every structure agrees with the slots. */
const char *scep_pwcache_check(const scep_pwcache_t *c)
{
    const pw_slot_t *s = slots(c);
    const apr_uint32_t *x = index_of(c), *h = heap(c);
    apr_uint32_t i, n, in_lists[L_COUNT] = {0}, per_state[PW_OUT + 1] = {0};
    apr_uint32_t issued = 0, indexed = 0;
    int l;

    for (i = 0; i < c->max; i++) {
        if (s[i].state > PW_HELD) {
            return "a slot in no state";
        }
        per_state[s[i].state]++;
        issued += s[i].issued != 0;
        if (s[i].state != PW_FREE && !s[i].issued) {
            return "a LIVE, SPENT or HELD slot holds no password";
        }
        if ((s[i].state == PW_SPENT) != (s[i].issued && slot_spent(&s[i])
                                         && in_heap(s[i].state))) {
            return "SPENT does not match the used bits";
        }
        if (s[i].used & s[i].reserved) {
            return "a use both spent and reserved";
        }
        if (s[i].state == PW_HELD && s[i].reserved == 0) {
            return "a HELD slot without a reservation";
        }
        if (in_heap(s[i].state) != (s[i].heap_pos != PW_NONE)
            || (s[i].heap_pos != PW_NONE
                && (s[i].heap_pos >= c->heap_len || h[s[i].heap_pos] != i))) {
            return "heap positions disagree with the slots";
        }
    }
    if (c->heap_len != per_state[PW_LIVE] + per_state[PW_SPENT]) {
        return "the heap does not hold every LIVE and SPENT slot";
    }
    for (i = 1; i < c->heap_len; i++) {
        if (heap_less(c, h[i], h[(i - 1) / 2])) {
            return "the heap is out of order";
        }
    }
    for (l = 0; l < L_COUNT; l++) {
        apr_uint32_t prev = PW_NONE;
        for (i = c->lists[l].head; i != PW_NONE; i = s[i].next) {
            if (i >= c->max || list_of(s[i].state) != l || s[i].prev != prev
                || ++in_lists[l] > c->max) {
                return "a list is broken";
            }
            prev = i;
        }
        if (c->lists[l].tail != prev) {
            return "a list's tail is wrong";
        }
    }
    if (in_lists[L_FREE] != per_state[PW_FREE]
        || in_lists[L_SPENT] != per_state[PW_SPENT]
        || in_lists[L_HELD] != per_state[PW_HELD]) {
        return "a list misses slots of its state";
    }
    for (i = 0; i <= c->mask; i++) {
        apr_uint32_t b;
        if (x[i] == 0) {
            continue;
        }
        if (x[i] > c->max || !s[x[i] - 1].issued) {
            return "the index names a slot without a password";
        }
        indexed++;
        /* Reachable: no empty entry between its bucket and here. */
        for (b = bucket(c, s[x[i] - 1].hash); b != i;
             b = (b + 1) & c->mask) {
            if (x[b] == 0) {
                return "an index entry is cut off from its bucket";
            }
        }
    }
    if (indexed != issued) {
        return "the index does not hold every password exactly once";
    }
    for (i = 0; i < c->max; i++) {
        if (s[i].issued
            && index_find(c, s[i].hash, s[i].realm) == PW_NONE) {
            return "a password cannot be found";
        }
    }
    for (i = 0; i < c->nrealms; i++) {
        if (c->realms[i].live != scan_live(c, c->realms[i].realm)) {
            return "a realm's count is wrong";
        }
    }
    for (i = 0, n = 0; i < c->max; i++) {
        if (s[i].state == PW_LIVE && !realm_find(c, s[i].realm)) {
            n++;
        }
    }
    if (n && !c->untracked) {
        return "live passwords of a realm nobody counts";
    }
    return NULL;
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
        const pw_slot_t *s = &slots(c)[i];
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
        if ((apr_time_t)expires <= now) {
            continue;
        }
        /* What does not fit is dropped, as by a smaller table. */
        adopt(c, s.hash, s.realm, (apr_time_t)created, (apr_time_t)expires,
              used, 0, 0, s.admin);
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
