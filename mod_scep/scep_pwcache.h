/* Licensed under the Apache License, Version 2.0; see LICENSE. */

/**
 * @file scep_pwcache.h
 * @brief One-time challenge passwords in a fixed table (NDES's password
 * cache), laid out in memory the caller provides: APR shared memory in
 * httpd, plain memory in the unit tests.  No httpd types.
 *
 * The caller serialises every call with its lock (a global mutex in
 * httpd).  Passwords are kept only as HMAC-SHA256 under a random key of
 * the table, and compared in constant time.  A hash index on the HMAC,
 * an expiry heap and per-state lists, all inside the same fixed memory,
 * make issue, verify, commit and release take O(log max) time.
 *
 * Use accounting follows NDES: a password serves one request whose
 * KeyUsage is signature+encryption (0xa0, or no KeyUsage), or one
 * signature (0x80) request and one encryption (0x20) request.  A request
 * first reserves its use (verify), and the use is spent only when the CA
 * has accepted the request (commit) or given back (release); a
 * reservation a crashed worker never settled lapses.
 */
#ifndef SCEP_PWCACHE_H
#define SCEP_PWCACHE_H

#include <apr.h>
#include <apr_pools.h>
#include <apr_time.h>

#define SCEP_PW_HASH_LEN 32
#define SCEP_PW_REALM_LEN 16
#define SCEP_PW_ADMIN_LEN 64
#define SCEP_PW_MAX_BYTES 32       /* SCEPPasswordLength upper bound */
#define SCEP_PW_CAPACITY_MAX (1u << 24) /* larger tables are cut to this */

/* KeyUsage bits that decide the use (X.509 KeyUsage, first octet). */
#define SCEP_KU_SIGNATURE 0x80
#define SCEP_KU_ENCRYPTION 0x20
#define SCEP_KU_GENERAL (SCEP_KU_SIGNATURE | SCEP_KU_ENCRYPTION)

/** How long a reservation holds without commit or release. */
#define SCEP_PW_RESERVATION (apr_time_from_sec(300))

typedef struct scep_pwcache_t scep_pwcache_t;

typedef enum {
    SCEP_PW_OK = 0,
    SCEP_PW_FULL,        /* no free slot for the realm (NDES: cache full) */
    SCEP_PW_UNKNOWN,     /* no such password (wrong, or never issued) */
    SCEP_PW_EXPIRED,     /* it was issued but has expired */
    SCEP_PW_USED,        /* its use for this KeyUsage is spent (event 43) */
    SCEP_PW_BUSY,        /* that use is reserved by a request in flight */
    SCEP_PW_BADARG,
    SCEP_PW_RANDOM       /* the CSPRNG failed */
} scep_pw_status_e;

/** A reservation made by verify, settled by commit or release. */
typedef struct {
    apr_uint32_t slot;
    apr_uint32_t generation;   /* the slot's generation when reserved */
    unsigned int bits;         /* the KeyUsage bits reserved */
} scep_pw_ticket_t;

/** Bytes of memory a table of max passwords needs. */
apr_size_t scep_pwcache_size(apr_uint32_t max);

/** Lay out an empty table in mem (size from scep_pwcache_size) with a
 * fresh random key; NULL on CSPRNG failure. */
scep_pwcache_t *scep_pwcache_create(void *mem, apr_uint32_t max);

/** Attach to a table laid out before (by this or another process); NULL
 * if mem does not hold one. */
scep_pwcache_t *scep_pwcache_attach(void *mem);

apr_uint32_t scep_pwcache_capacity(const scep_pwcache_t *c);

/** Copy the live passwords of a table laid out before, by this or an
 * older version of the module, into a new one (graceful restart with a
 * new size or a new module); returns how many did not fit. */
apr_uint32_t scep_pwcache_copy(scep_pwcache_t *to, const void *from,
                               apr_time_t now);

/**
 * Issue a password for realm (an opaque id of the SCEP service): len bytes
 * of randomness shown as 2*len uppercase hex characters in out (at least
 * 2*len+1 bytes), valid until now+validity.  At most max live passwords
 * per realm; expired ones are reclaimed first.
 */
scep_pw_status_e scep_pwcache_issue(scep_pwcache_t *c,
                                    const unsigned char *realm,
                                    apr_uint32_t max, apr_size_t len,
                                    apr_interval_time_t validity,
                                    const char *admin, apr_time_t now,
                                    char *out, apr_time_t *expires);

/** The KeyUsage bits a request's KeyUsage uses (no KeyUsage: ku < 0). */
unsigned int scep_pwcache_ku_bits(int ku);

/**
 * Check a password for a request of KeyUsage bits and reserve that use.
 * On SCEP_PW_OK *t is the reservation and *admin (if not NULL) the
 * administrator the password was issued to.
 */
scep_pw_status_e scep_pwcache_verify(scep_pwcache_t *c,
                                     const unsigned char *realm,
                                     const char *password, apr_size_t pwlen,
                                     unsigned int bits, apr_time_t now,
                                     scep_pw_ticket_t *t,
                                     char admin[SCEP_PW_ADMIN_LEN]);

/** Spend a reserved use (the CA accepted the request). */
scep_pw_status_e scep_pwcache_commit(scep_pwcache_t *c,
                                     const scep_pw_ticket_t *t,
                                     apr_time_t now);

/** Give a reserved use back (the request failed). */
void scep_pwcache_release(scep_pwcache_t *c, const scep_pw_ticket_t *t);

/** Live (unexpired) passwords of a realm, or of all realms if NULL. */
apr_uint32_t scep_pwcache_live(const scep_pwcache_t *c,
                               const unsigned char *realm, apr_time_t now);

/**
 * Persistence (SCEPPasswordPersistFile): the key and the live slots,
 * hashes only, written to a new file then renamed over path (mode 0600);
 * loading merges them into an empty table.
 */
apr_status_t scep_pwcache_save(const scep_pwcache_t *c, const char *path,
                               apr_time_t now, apr_pool_t *p);
apr_status_t scep_pwcache_load(scep_pwcache_t *c, const char *path,
                               apr_time_t now, apr_pool_t *p);

const char *scep_pwcache_status_str(scep_pw_status_e s);

/** For tests: NULL if the index, heap, lists and counts agree with the
 * slots, else what is wrong.  Takes O(max) time. */
const char *scep_pwcache_check(const scep_pwcache_t *c);

#endif /* SCEP_PWCACHE_H */
