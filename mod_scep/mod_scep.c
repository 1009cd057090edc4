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

#include <apr_strings.h>

#include "mod_scep.h"
#include "scep_config.h"
#include "scep_log.h"
#include "scep_msg.h"
#include "scep_ops.h"

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
    return OK;
}

/* Check one effective configuration; a bad one stops httpd. */
static int check_conf(apr_pool_t *p, server_rec *s, scep_dir_conf_t *c,
                      const char *where)
{
    const char *why = scep_conf_check(p, s, c);

    if (why) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s, SCEPLOGNO(00002)
                     "unusable SCEP credentials in %s: %s (NDES event 10)",
                     where, why);
        return 0;
    }
    return 1;
}

/* Check the configurations sections can produce: each server's defaults,
 * and each <Location>/<Directory> merged onto them. */
static int check_sections(apr_pool_t *p, server_rec *s,
                          apr_array_header_t *sections,
                          scep_dir_conf_t *base)
{
    int i;

    for (i = 0; sections && i < sections->nelts; i++) {
        ap_conf_vector_t *sec = APR_ARRAY_IDX(sections, i, ap_conf_vector_t *);
        core_dir_config *core = ap_get_core_module_config(sec);
        scep_dir_conf_t *own = ap_get_module_config(sec, &scep_module);
        scep_dir_conf_t *eff;

        if (own == NULL || !scep_conf_is_set(own)) {
            continue;
        }
        eff = scep_config_merge_dir(p, base, own);
        if (!check_conf(p, s, eff, apr_psprintf(p, "<%s> section for %s",
                                                core->r ? "regex" : "path",
                                                core->d ? core->d : "?"))) {
            return 0;
        }
    }
    return 1;
}

static int scep_post_config(apr_pool_t *pconf, apr_pool_t *plog,
                            apr_pool_t *ptemp, server_rec *main_s)
{
    server_rec *s;

    if (ap_state_query(AP_SQ_MAIN_STATE) == AP_SQ_MS_CREATE_PRE_CONFIG) {
        return OK;
    }
    for (s = main_s; s; s = s->next) {
        core_server_config *core =
            ap_get_core_module_config(s->module_config);
        scep_dir_conf_t *base =
            ap_get_module_config(s->lookup_defaults, &scep_module);
        const char *name = apr_psprintf(ptemp, "server %s:%u",
                                        s->server_hostname
                                            ? s->server_hostname : "*",
                                        s->port);

        if (!check_conf(pconf, s, base, name)
            || !check_sections(pconf, s, core->sec_url, base)
            || !check_sections(pconf, s, core->sec_dir, base)) {
            return HTTP_INTERNAL_SERVER_ERROR;
        }
    }
    return OK;
}

static int scep_handler(request_rec *r)
{
    if (!r->handler || strcmp(r->handler, SCEP_HANDLER)) {
        return DECLINED;
    }
    return scep_ops_handle(r);
}

static void scep_register_hooks(apr_pool_t *p)
{
    ap_hook_pre_config(scep_pre_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_post_config(scep_post_config, NULL, NULL, APR_HOOK_MIDDLE);
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
