/* Licensed under the Apache License, Version 2.0; see LICENSE. */

#ifndef SCEP_CHALLENGE_H
#define SCEP_CHALLENGE_H

#include <http_config.h>

#include "mod_scep.h"

extern const scep_challenge_provider_t scep_challenge_cache;
extern const scep_challenge_provider_t scep_challenge_single;

/* pre_config: the mutex type, so `Mutex scep-pwcache ...` works. */
apr_status_t scep_challenge_pre_config(apr_pool_t *pconf);

/* SCEPPasswordPersistFile (server-wide). */
const char *scep_challenge_set_persist_file(cmd_parms *cmd, void *dc,
                                            const char *arg);

/* The one-time password cache's mutex type, for the Mutex directive. */
#define SCEP_PWCACHE_MUTEX "scep-pwcache"

#endif /* SCEP_CHALLENGE_H */
