/* Licensed under the Apache License, Version 2.0; see LICENSE. */

/*
 * mod_scep: a SCEP registration authority (RFC 8894) that behaves like
 * Microsoft's NDES.  This file is glue: the module record and its hooks.
 */

#include <httpd.h>
#include <http_config.h>
#include <http_core.h>
#include <http_log.h>
#include <http_protocol.h>
#include <http_request.h>
#include <ap_provider.h>
#include <mpm_common.h>
#include <unixd.h>

#include <unistd.h>

#include <apr_dbd.h>
#include <apr_hash.h>
#include <apr_file_info.h>
#include <apr_strings.h>

#include "mod_scep.h"
#include "scep_admin.h"
#include "scep_ca_local.h"
#include "scep_ca_scep.h"
#include "scep_challenge.h"
#include "scep_config.h"
#include "scep_log.h"
#include "scep_msg.h"
#include "scep_ops.h"
#include "scep_requests.h"

module AP_MODULE_DECLARE_DATA scep_module;

static int scep_pre_config(apr_pool_t *pconf, apr_pool_t *plog,
                           apr_pool_t *ptemp)
{
    /* Before any directive: SCEP attribute OIDs for the codec. */
    if (scep_msg_init() != SCEP_OK) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, 0, NULL, SCEPLOGNO(00009)
                     "cannot register the SCEP attribute OIDs");
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    scep_config_pre_config();
    apr_dbd_init(pconf);  /* the local CA's database drivers */
    if (scep_challenge_pre_config(pconf) != APR_SUCCESS) {
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    return OK;
}

/* What startup learns while it walks the configurations. */
typedef struct {
    apr_pool_t *pconf;
    apr_hash_t *realms;     /* realm -> largest SCEPPasswordMax */
} startup_t;

/* The submission provider instances in use, for init and child_init. */
typedef struct {
    const scep_submit_provider_t *prov;
    void *instance;
} submit_use_t;

static apr_array_header_t *submit_uses;

static void note_submit_use(apr_pool_t *p, const scep_dir_conf_t *c)
{
    const scep_submit_provider_t *prov = scep_conf_submit(c);
    submit_use_t *u;
    int i;

    for (i = 0; i < submit_uses->nelts; i++) {
        u = &APR_ARRAY_IDX(submit_uses, i, submit_use_t);
        if (u->prov == prov && u->instance == c->submit_instance) {
            return;
        }
    }
    u = apr_array_push(submit_uses);
    u->prov = prov;
    u->instance = c->submit_instance;
}

/* The RA's spool: created at startup, the children's only (they write
 * it, and it holds devices' requests). */
static const char *make_spool_dir(apr_pool_t *p, const char *dir)
{
    apr_status_t rv = apr_dir_make_recursive(dir, APR_FPROT_UREAD
                                                 | APR_FPROT_UWRITE
                                                 | APR_FPROT_UEXECUTE, p);

    if (rv != APR_SUCCESS) {
        return apr_psprintf(p, "cannot create the spool directory %s "
                            "(SCEPSpoolDir): %pm", dir, &rv);
    }
    if (geteuid() == 0 && chown(dir, ap_unixd_config.user_id, -1) != 0) {
        return apr_psprintf(p, "cannot give the spool directory %s to the "
                            "httpd user", dir);
    }
    return NULL;
}

/* Check one effective configuration; a bad one stops httpd. */
static int check_conf(startup_t *st, server_rec *s, scep_dir_conf_t *c,
                      const char *where)
{
    const char *why = scep_conf_check(st->pconf, s, c);
    scep_challenge_service_t svc;
    apr_uint32_t *max;

    if (why) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s, SCEPLOGNO(00002)
                     "unusable SCEP credentials in %s: %s (NDES event 10)",
                     where, why);
        return 0;
    }
    if (c->ca == NULL) {
        return 1;
    }
    if (scep_conf_submit(c) == &scep_submit_local && c->localca_key
        && (why = scep_ca_local_startup(st->pconf, s, c)) != NULL) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s, SCEPLOGNO(00010)
                     "the local CA in %s cannot start: %s", where, why);
        return 0;
    }
    if ((why = make_spool_dir(st->pconf, scep_conf_spool_dir(c))) != NULL) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s, SCEPLOGNO(00129)
                     "%s: %s; when the CA cannot be asked, devices get "
                     "FAILURE instead of PENDING", where, why);
    }
    note_submit_use(st->pconf, c);
    scep_conf_challenge(c, &svc);
    if (!svc.enforce) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s, SCEPLOGNO(00006)
                     "SCEPEnforcePassword Off in %s: requests are accepted "
                     "without a challenge password", where);
    }
    max = apr_hash_get(st->realms, c->ca->realm, SCEP_REALM_LEN);
    if (max == NULL) {
        max = apr_pcalloc(st->pconf, sizeof(*max));
        apr_hash_set(st->realms, c->ca->realm, SCEP_REALM_LEN, max);
    }
    if (svc.max > *max) {
        *max = svc.max;
    }
    return 1;
}

/* Does section path outer enclose inner (as httpd matches them: a whole
 * path segment)? */
static int encloses(const char *outer, const char *inner)
{
    apr_size_t n = strlen(outer);

    return !strncmp(outer, inner, n)
           && (n == 0 || outer[n - 1] == '/' || inner[n] == '/'
               || inner[n] == '\0');
}

/* Each <Location>/<Directory> with SCEP directives, merged as a request
 * under it would see it: the server's defaults, then every earlier
 * section enclosing it, then itself.  (Regex sections are checked on
 * their own: which paths they enclose cannot be told.) */
static int check_sections(startup_t *st, server_rec *s,
                          apr_array_header_t *sections,
                          scep_dir_conf_t *base)
{
    int i, j;

    for (i = 0; sections && i < sections->nelts; i++) {
        ap_conf_vector_t *sec = APR_ARRAY_IDX(sections, i, ap_conf_vector_t *);
        core_dir_config *core = ap_get_core_module_config(sec);
        scep_dir_conf_t *own = ap_get_module_config(sec, &scep_module);
        scep_dir_conf_t *merged = base;

        if (own == NULL || !scep_conf_has_directives(own)) {
            continue;
        }
        for (j = 0; core->r == NULL && core->d && j < i; j++) {
            ap_conf_vector_t *o = APR_ARRAY_IDX(sections, j,
                                                ap_conf_vector_t *);
            core_dir_config *ocore = ap_get_core_module_config(o);
            scep_dir_conf_t *oown = ap_get_module_config(o, &scep_module);
            if (oown && ocore->r == NULL && ocore->d
                && encloses(ocore->d, core->d)) {
                merged = scep_config_merge_dir(st->pconf, merged, oown);
            }
        }
        if (!check_conf(st, s, scep_config_merge_dir(st->pconf, merged, own),
                        apr_psprintf(st->pconf, "the section for %s",
                                     core->d ? core->d : "?"))) {
            return 0;
        }
    }
    return 1;
}

/* The registered challenge providers, in registration order. */
static apr_array_header_t *challenge_providers(apr_pool_t *p)
{
    apr_array_header_t *names = ap_list_provider_names(
        p, SCEP_CHALLENGE_PROVIDER_GROUP, SCEP_CHALLENGE_PROVIDER_VERSION);
    apr_array_header_t *provs = apr_array_make(p, names->nelts,
                                               sizeof(void *));
    int i;

    for (i = 0; i < names->nelts; i++) {
        const void *prov = ap_lookup_provider(
            SCEP_CHALLENGE_PROVIDER_GROUP,
            APR_ARRAY_IDX(names, i, ap_list_provider_names_t).provider_name,
            SCEP_CHALLENGE_PROVIDER_VERSION);
        if (prov) {
            APR_ARRAY_PUSH(provs, const void *) = prov;
        }
    }
    return provs;
}

static apr_status_t init_challenge_providers(apr_pool_t *pconf,
                                             apr_pool_t *ptemp,
                                             server_rec *s,
                                             apr_uint32_t capacity)
{
    apr_array_header_t *provs = challenge_providers(ptemp);
    int i;

    for (i = 0; i < provs->nelts; i++) {
        const scep_challenge_provider_t *prov =
            APR_ARRAY_IDX(provs, i, const scep_challenge_provider_t *);
        apr_status_t rv;
        if (prov->init
            && (rv = prov->init(pconf, ptemp, s, capacity)) != APR_SUCCESS) {
            ap_log_error(APLOG_MARK, APLOG_EMERG, rv, s, SCEPLOGNO(00007)
                         "challenge provider %s failed to start", prov->name);
            return rv;
        }
    }
    return APR_SUCCESS;
}

static int scep_post_config(apr_pool_t *pconf, apr_pool_t *plog,
                            apr_pool_t *ptemp, server_rec *main_s)
{
    startup_t st = { pconf, apr_hash_make(ptemp) };
    apr_uint32_t capacity = 0;
    apr_hash_index_t *hi;
    server_rec *s;
    int i;

    if (ap_state_query(AP_SQ_MAIN_STATE) == AP_SQ_MS_CREATE_PRE_CONFIG) {
        return OK;
    }
    if (scep_requests_init() != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, 0, main_s, SCEPLOGNO(00128)
                     "no random bytes for the approval page's tokens");
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    submit_uses = apr_array_make(pconf, 2, sizeof(submit_use_t));
    for (s = main_s; s; s = s->next) {
        core_server_config *core =
            ap_get_core_module_config(s->module_config);
        scep_dir_conf_t *base =
            ap_get_module_config(s->lookup_defaults, &scep_module);
        const char *name = apr_psprintf(ptemp, "server %s:%u",
                                        s->server_hostname
                                            ? s->server_hostname : "*",
                                        s->port);

        if (!check_conf(&st, s, base, name)
            || !check_sections(&st, s, core->sec_url, base)
            || !check_sections(&st, s, core->sec_dir, base)) {
            return HTTP_INTERNAL_SERVER_ERROR;
        }
    }
    /* One table for all services; each keeps to its own maximum. */
    for (hi = apr_hash_first(ptemp, st.realms); hi; hi = apr_hash_next(hi)) {
        capacity += *(apr_uint32_t *)apr_hash_this_val(hi);
    }
    if (init_challenge_providers(pconf, ptemp, main_s,
                                 capacity ? capacity : 1) != APR_SUCCESS) {
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    for (i = 0; i < submit_uses->nelts; i++) {
        submit_use_t *u = &APR_ARRAY_IDX(submit_uses, i, submit_use_t);
        apr_status_t rv;
        if (u->prov && u->prov->init
            && (rv = u->prov->init(u->instance, pconf, ptemp, main_s))
                   != APR_SUCCESS) {
            ap_log_error(APLOG_MARK, APLOG_EMERG, rv, main_s, SCEPLOGNO(00013)
                         "submission provider %s failed to start",
                         u->prov->name);
            return HTTP_INTERNAL_SERVER_ERROR;
        }
    }
    return OK;
}

static void scep_child_init(apr_pool_t *p, server_rec *s)
{
    apr_array_header_t *provs = challenge_providers(p);
    int i;

    for (i = 0; submit_uses && i < submit_uses->nelts; i++) {
        submit_use_t *u = &APR_ARRAY_IDX(submit_uses, i, submit_use_t);
        if (u->prov && u->prov->child_init
            && u->prov->child_init(u->instance, p, s) != APR_SUCCESS) {
            ap_log_error(APLOG_MARK, APLOG_CRIT, 0, s, SCEPLOGNO(00012)
                         "submission provider %s: child setup failed",
                         u->prov->name);
        }
    }
    for (i = 0; i < provs->nelts; i++) {
        const scep_challenge_provider_t *prov =
            APR_ARRAY_IDX(provs, i, const scep_challenge_provider_t *);
        apr_status_t rv;
        if (prov->child_init && (rv = prov->child_init(p, s)) != APR_SUCCESS) {
            ap_log_error(APLOG_MARK, APLOG_CRIT, rv, s, SCEPLOGNO(00008)
                         "challenge provider %s: child setup failed",
                         prov->name);
        }
    }
}

/* httpd refuses unauthorized administrators before our handler runs;
 * give its 403 the sentence NDES shows, which scrapers look for. */
static int scep_header_parser(request_rec *r)
{
    core_dir_config *core = ap_get_core_module_config(r->per_dir_config);
    const char *err = NULL, *handler;

    /* SetHandler is kept as an expression (httpd 2.4.26+). */
    if (core->expr_handler == NULL) {
        return DECLINED;
    }
    handler = ap_expr_str_exec(r, core->expr_handler, &err);
    if (!err && handler && !strcmp(handler, SCEP_ADMIN_HANDLER)) {
        ap_custom_response(r, HTTP_FORBIDDEN, SCEP_ADMIN_NO_PERMISSION);
    }
    return DECLINED;
}

static int scep_handler(request_rec *r)
{
    if (!r->handler) {
        return DECLINED;
    }
    if (!strcmp(r->handler, SCEP_HANDLER)) {
        return scep_ops_handle(r);
    }
    if (!strcmp(r->handler, SCEP_ADMIN_HANDLER)) {
        return scep_admin_handle(r);
    }
    if (!strcmp(r->handler, SCEP_REQUESTS_HANDLER)) {
        return scep_requests_handle(r);
    }
    if (!strcmp(r->handler, SCEP_CRL_HANDLER)) {
        return scep_crl_handle(r);
    }
    return DECLINED;
}

static const scep_challenge_provider_t *scep_challenge_for_request(
    request_rec *r, const scep_challenge_service_t **svc)
{
    const scep_dir_conf_t *c =
        ap_get_module_config(r->per_dir_config, &scep_module);
    scep_challenge_service_t *out = apr_palloc(r->pool, sizeof(*out));
    const scep_challenge_provider_t *prov = scep_conf_challenge(c, out);

    *svc = out;
    return c->ca ? prov : NULL;
}

static void scep_register_hooks(apr_pool_t *p)
{
    ap_register_provider(p, SCEP_CHALLENGE_PROVIDER_GROUP, "cache",
                         SCEP_CHALLENGE_PROVIDER_VERSION,
                         &scep_challenge_cache);
    ap_register_provider(p, SCEP_CHALLENGE_PROVIDER_GROUP, "single",
                         SCEP_CHALLENGE_PROVIDER_VERSION,
                         &scep_challenge_single);
    ap_register_provider(p, SCEP_SUBMIT_PROVIDER_GROUP, "local",
                         SCEP_SUBMIT_PROVIDER_VERSION, &scep_submit_local);
    ap_register_provider(p, SCEP_SUBMIT_PROVIDER_GROUP, "scep",
                         SCEP_SUBMIT_PROVIDER_VERSION, &scep_submit_scep);
    APR_REGISTER_OPTIONAL_FN(scep_challenge_for_request);
    ap_hook_pre_config(scep_pre_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_post_config(scep_post_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_child_init(scep_child_init, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_header_parser(scep_header_parser, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_handler(scep_handler, NULL, NULL, APR_HOOK_MIDDLE);
}

AP_DECLARE_MODULE(scep) = {
    STANDARD20_MODULE_STUFF,
    scep_config_create_dir,   /* per-directory config */
    scep_config_merge_dir,    /* merge per-directory */
    NULL,                     /* per-server config */
    NULL,                     /* merge per-server */
    scep_cmds,                /* directives */
    scep_register_hooks
};
