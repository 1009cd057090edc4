/* Licensed under the Apache License, Version 2.0; see LICENSE. */

#ifndef SCEP_CA_LOCAL_H
#define SCEP_CA_LOCAL_H

#include "scep_config.h"

extern const scep_submit_provider_t scep_submit_local;

/* The database of a local CA: SCEPLocalCADatabase, or SQLite in the
 * state directory named after the CA. */
const char *scep_ca_local_db(apr_pool_t *p, const scep_dir_conf_t *c);

/* Startup checks and schema; NULL when ready, else the reason. */
const char *scep_ca_local_startup(apr_pool_t *p, server_rec *s,
                                  const scep_dir_conf_t *c);

#endif /* SCEP_CA_LOCAL_H */
