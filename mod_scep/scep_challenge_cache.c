/* Licensed under the Apache License, Version 2.0; see LICENSE. */

/*
 * Challenge provider "cache": NDES's one-time password cache in APR
 * shared memory, seen by every process and thread of every MPM, under a
 * global mutex.  The table logic is scep_pwcache.c; this is the httpd
 * side: shared memory and mutex that survive a graceful restart, the
 * optional persist file, audit lines.
 */

#include <apr_global_mutex.h>
#include <apr_shm.h>
#include <apr_strings.h>

#include <httpd.h>
#include <http_config.h>
#include <http_log.h>
#include <util_mutex.h>

#include "mod_scep.h"
#include "scep_challenge.h"
#include "scep_log.h"
#include "scep_pwcache.h"

APLOG_USE_MODULE(scep);

/* Kept in the process pool, which outlives configuration reloads (the
 * module itself is unloaded and loaded again on every restart). */
#define SCEP_PWCACHE_KEY "mod_scep-pwcache"

typedef struct {
    apr_shm_t *shm;
    apr_global_mutex_t *mutex;
    apr_uint32_t capacity;
} cache_state_t;

static cache_state_t *state;       /* this generation's view */
static const char *persist_file;   /* SCEPPasswordPersistFile */

apr_status_t scep_challenge_pre_config(apr_pool_t *pconf)
{
    persist_file = NULL;
    return ap_mutex_register(pconf, SCEP_PWCACHE_MUTEX, NULL,
                             APR_LOCK_DEFAULT, 0);
}

const char *scep_challenge_set_persist_file(cmd_parms *cmd, void *dc,
                                            const char *arg)
{
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);

    if (err) {
        return err;
    }
    persist_file = ap_server_root_relative(cmd->pool, arg);
    if (!persist_file) {
        return apr_pstrcat(cmd->pool, "SCEPPasswordPersistFile: invalid "
                           "path ", arg, NULL);
    }
    return NULL;
}

static scep_pwcache_t *table(void)
{
    return scep_pwcache_attach(apr_shm_baseaddr_get(state->shm));
}

static apr_status_t cache_init(apr_pool_t *pconf, apr_pool_t *ptemp,
                               server_rec *s, apr_uint32_t capacity)
{
    apr_pool_t *pproc = s->process->pool;
    cache_state_t *st = NULL;
    apr_shm_t *old = NULL;
    apr_status_t rv;

    apr_pool_userdata_get((void **)&st, SCEP_PWCACHE_KEY, pproc);
    if (st == NULL) {
        st = apr_pcalloc(pproc, sizeof(*st));
        /* One mutex for the life of the parent: children of the old and
         * the new generation share the table across a graceful restart. */
        rv = ap_global_mutex_create(&st->mutex, NULL, SCEP_PWCACHE_MUTEX,
                                    NULL, s, pproc, 0);
        if (rv != APR_SUCCESS) {
            return rv;
        }
        apr_pool_userdata_set(st, SCEP_PWCACHE_KEY, apr_pool_cleanup_null,
                              pproc);
    }
    state = st;
    if (st->shm && st->capacity == capacity
        && scep_pwcache_attach(apr_shm_baseaddr_get(st->shm))) {
        return APR_SUCCESS;  /* graceful restart: same table */
    }
    /* Otherwise a new size, or a table laid out by an older module: the
     * new table takes over its passwords. */
    old = st->shm;
    rv = apr_shm_create(&st->shm, scep_pwcache_size(capacity), NULL, pproc);
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, rv, s, SCEPLOGNO(00030)
                     "cannot create shared memory for %u challenge "
                     "passwords", capacity);
        st->shm = old;
        return rv;
    }
    if (!scep_pwcache_create(apr_shm_baseaddr_get(st->shm), capacity)) {
        return APR_EGENERAL;
    }
    st->capacity = capacity;
    if (old) {
        apr_uint32_t lost;
        apr_global_mutex_lock(st->mutex);
        lost = scep_pwcache_copy(table(), apr_shm_baseaddr_get(old),
                                 apr_time_now());
        apr_global_mutex_unlock(st->mutex);
        apr_shm_destroy(old);
        if (lost) {
            ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s, SCEPLOGNO(00031)
                         "password cache shrunk to %u: %u outstanding "
                         "passwords dropped", capacity, lost);
        }
    }
    else if (persist_file) {
        rv = scep_pwcache_load(table(), persist_file, apr_time_now(), ptemp);
        if (rv != APR_SUCCESS) {
            ap_log_error(APLOG_MARK, APLOG_WARNING, rv, s, SCEPLOGNO(00032)
                         "cannot load the saved passwords from %s; "
                         "starting with none", persist_file);
        }
        else {
            ap_log_error(APLOG_MARK, APLOG_INFO, 0, s, SCEPLOGNO(00033)
                         "%u outstanding passwords restored from %s",
                         scep_pwcache_live(table(), NULL, apr_time_now()),
                         persist_file);
        }
    }
    return APR_SUCCESS;
}

static apr_status_t cache_child_init(apr_pool_t *p, server_rec *s)
{
    if (state == NULL) {
        return APR_SUCCESS;
    }
    return apr_global_mutex_child_init(
        &state->mutex, apr_global_mutex_lockfile(state->mutex), p);
}

/* Called with the mutex held, after a change. */
static void save(request_rec *r)
{
    apr_status_t rv;

    if (!persist_file) {
        return;
    }
    rv = scep_pwcache_save(table(), persist_file, apr_time_now(), r->pool);
    if (rv != APR_SUCCESS) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, rv, r, SCEPLOGNO(00034)
                      "cannot save the passwords to %s", persist_file);
    }
}

static int lock(request_rec *r)
{
    apr_status_t rv;

    if (state == NULL || state->shm == NULL) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, SCEPLOGNO(00035)
                      "the password cache was not set up at startup");
        return 0;
    }
    rv = apr_global_mutex_lock(state->mutex);
    if (rv != APR_SUCCESS) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, rv, r, SCEPLOGNO(00036)
                      "cannot lock the password cache");
        return 0;
    }
    return 1;
}

static scep_challenge_status_e cache_generate(
    request_rec *r, const scep_challenge_service_t *svc,
    const char **challenge, apr_time_t *expires)
{
    char *pw = apr_palloc(r->pool, 2 * SCEP_PW_MAX_BYTES + 1);
    scep_pw_status_e st;

    if (!lock(r)) {
        return SCEP_CHALLENGE_ERROR;
    }
    st = scep_pwcache_issue(table(), svc->realm, svc->max, svc->length,
                            svc->validity, r->user, apr_time_now(), pw,
                            expires);
    if (st == SCEP_PW_OK) {
        save(r);
    }
    apr_global_mutex_unlock(state->mutex);
    switch (st) {
    case SCEP_PW_OK:
        *challenge = pw;
        return SCEP_CHALLENGE_OK;
    case SCEP_PW_FULL:
        return SCEP_CHALLENGE_FULL;
    default:
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, SCEPLOGNO(00037)
                      "cannot issue a password: %s",
                      scep_pwcache_status_str(st));
        return SCEP_CHALLENGE_ERROR;
    }
}

static scep_challenge_status_e cache_verify(
    request_rec *r, const scep_challenge_service_t *svc,
    const char *challenge, apr_size_t len, int key_usage, void **token,
    const char **admin)
{
    scep_pw_ticket_t *t = apr_pcalloc(r->pool, sizeof(*t));
    char who[SCEP_PW_ADMIN_LEN];
    scep_pw_status_e st;

    if (!lock(r)) {
        return SCEP_CHALLENGE_ERROR;
    }
    st = scep_pwcache_verify(table(), svc->realm, challenge, len,
                             scep_pwcache_ku_bits(key_usage), apr_time_now(),
                             t, who);
    apr_global_mutex_unlock(state->mutex);
    if (st == SCEP_PW_OK) {
        *token = t;
        if (admin) {
            *admin = apr_pstrdup(r->pool, who);
        }
        return SCEP_CHALLENGE_OK;
    }
    *token = NULL;
    ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, SCEPLOGNO(00038)
                  "challenge refused: %s", scep_pwcache_status_str(st));
    return st == SCEP_PW_USED ? SCEP_CHALLENGE_USED : SCEP_CHALLENGE_REJECT;
}

static scep_challenge_status_e cache_commit(request_rec *r, void *token)
{
    scep_pw_status_e st;

    if (token == NULL || !lock(r)) {
        return SCEP_CHALLENGE_ERROR;
    }
    st = scep_pwcache_commit(table(), token, apr_time_now());
    if (st == SCEP_PW_OK) {
        save(r);
    }
    apr_global_mutex_unlock(state->mutex);
    return st == SCEP_PW_OK ? SCEP_CHALLENGE_OK
           : st == SCEP_PW_USED ? SCEP_CHALLENGE_USED
                                : SCEP_CHALLENGE_REJECT;
}

static void cache_notify(request_rec *r, void *token, int committed)
{
    if (token == NULL || committed || !lock(r)) {
        return;
    }
    scep_pwcache_release(table(), token);
    apr_global_mutex_unlock(state->mutex);
}

const scep_challenge_provider_t scep_challenge_cache = {
    "cache",
    cache_init,
    cache_child_init,
    cache_generate,
    cache_verify,
    cache_commit,
    cache_notify
};
