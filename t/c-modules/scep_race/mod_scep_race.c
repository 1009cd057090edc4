/* Licensed under the Apache License, Version 2.0; see LICENSE. */

/*
 * TEST ONLY: mod_scep_race, built and loaded by the Apache::Test suite
 * (t/TEST builds t/c-modules/NAME/mod_NAME.c with apxs).  Never load it
 * in a real server: it spends challenge passwords for anyone who asks.
 *
 * It drives the challenge provider of its location the way an enrollment
 * does (verify, then commit once "the CA" accepted, then notify), through
 * the optional function scep_challenge_for_request of mod_scep.h, so the
 * tests can check one-time use under concurrent requests served by
 * several processes (t/41-race.t) and across restarts (t/42-restart.t).
 * The location must use the same CA (SCEPCACertificateFile) as the admin
 * page that issued the password: passwords are bound to their CA.
 *
 *   SetHandler scep-race
 *
 *   GET ...?pw=PASSWORD&ku=KEYUSAGE[&fail=1][&sleep=MS]
 *     ku    decimal KeyUsage (first octet): 160 signature and encryption,
 *           128 signature, 32 encryption; -1 (or absent) for none
 *     sleep milliseconds to hold the reservation between verify and
 *           commit, so that concurrent requests overlap
 *     fail  verify, then notify(committed=0) without commit, as when the
 *           CA refuses the request: the password must stay usable
 *   answers (text/plain, one line, then pid=PID gen=GENERATION):
 *     200 COMMITTED admin=NAME  verify OK, commit OK, notify(1)
 *     200 RELEASED admin=NAME   fail=1: verify OK, notify(0)
 *     409 REJECT|USED|ERROR     verify refused; notify(0)
 *     409 COMMIT-REJECT|COMMIT-USED|COMMIT-ERROR
 *                               verify OK but commit refused; notify(0)
 *   GET ...?info=1
 *     200 INFO                  which process and generation answered
 *   500 NOFUNCTION / NOPROVIDER when mod_scep is missing or the location
 *     has no CA.
 */

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <apr_optional.h>
#include <apr_strings.h>
#include <apr_tables.h>
#include <apr_time.h>

#include <httpd.h>
#include <http_config.h>
#include <http_log.h>
#include <http_protocol.h>
#include <http_request.h>
#include <ap_mpm.h>
#include <util_script.h>

#include "../../../mod_scep/mod_scep.h"

module AP_MODULE_DECLARE_DATA scep_race_module;

static APR_OPTIONAL_FN_TYPE(scep_challenge_for_request) *challenge_for;

static const char *status_word(scep_challenge_status_e st)
{
    switch (st) {
    case SCEP_CHALLENGE_OK: return "OK";
    case SCEP_CHALLENGE_REJECT: return "REJECT";
    case SCEP_CHALLENGE_USED: return "USED";
    case SCEP_CHALLENGE_FULL: return "FULL";
    case SCEP_CHALLENGE_ERROR: return "ERROR";
    }
    return "ERROR";
}

static int answer(request_rec *r, int status, const char *text)
{
    int gen = 0;

    ap_mpm_query(AP_MPMQ_GENERATION, &gen);
    r->status = status;
    ap_set_content_type(r, "text/plain");
    apr_table_setn(r->headers_out, "Cache-Control", "no-store");
    ap_rprintf(r, "%s pid=%ld gen=%d\n", text, (long)getpid(), gen);
    return OK;
}

static int race_handler(request_rec *r)
{
    const scep_challenge_provider_t *prov;
    const scep_challenge_service_t *svc = NULL;
    const char *pw, *ku_arg, *sleep_arg, *admin = NULL;
    apr_table_t *args = NULL;
    void *token = NULL;
    scep_challenge_status_e st;
    int ku, fail;

    if (!r->handler || strcmp(r->handler, "scep-race") != 0) {
        return DECLINED;
    }
    ap_args_to_table(r, &args);
    if (apr_table_get(args, "info")) {
        return answer(r, HTTP_OK, "INFO");
    }
    if (challenge_for == NULL) {
        return answer(r, HTTP_INTERNAL_SERVER_ERROR, "NOFUNCTION");
    }
    prov = challenge_for(r, &svc);
    if (prov == NULL || svc == NULL) {
        return answer(r, HTTP_INTERNAL_SERVER_ERROR, "NOPROVIDER");
    }
    pw = apr_table_get(args, "pw");
    if (pw == NULL) {
        return answer(r, HTTP_BAD_REQUEST, "NOPASSWORD");
    }
    ku_arg = apr_table_get(args, "ku");
    ku = ku_arg ? atoi(ku_arg) : -1;
    fail = apr_table_get(args, "fail") != NULL;
    sleep_arg = apr_table_get(args, "sleep");

    st = prov->verify(r, svc, pw, strlen(pw), ku, &token, &admin);
    if (st != SCEP_CHALLENGE_OK) {
        prov->notify(r, token, 0);
        return answer(r, HTTP_CONFLICT, status_word(st));
    }
    if (sleep_arg) {
        apr_sleep(apr_time_from_msec(atoi(sleep_arg)));
    }
    if (fail) {
        /* The CA refused the request: the use goes back. */
        prov->notify(r, token, 0);
        return answer(r, HTTP_OK, apr_pstrcat(r->pool, "RELEASED admin=",
                                               admin ? admin : "-", NULL));
    }
    st = prov->commit(r, token);
    if (st != SCEP_CHALLENGE_OK) {
        prov->notify(r, token, 0);
        return answer(r, HTTP_CONFLICT,
                      apr_pstrcat(r->pool, "COMMIT-", status_word(st), NULL));
    }
    prov->notify(r, token, 1);
    return answer(r, HTTP_OK, apr_pstrcat(r->pool, "COMMITTED admin=",
                                           admin ? admin : "-", NULL));
}

static void race_optional_fns(void)
{
    challenge_for = APR_RETRIEVE_OPTIONAL_FN(scep_challenge_for_request);
}

static void race_register_hooks(apr_pool_t *p)
{
    ap_hook_optional_fn_retrieve(race_optional_fns, NULL, NULL,
                                 APR_HOOK_MIDDLE);
    ap_hook_handler(race_handler, NULL, NULL, APR_HOOK_MIDDLE);
}

AP_DECLARE_MODULE(scep_race) = {
    STANDARD20_MODULE_STUFF,
    NULL, NULL, NULL, NULL, NULL,
    race_register_hooks
};
