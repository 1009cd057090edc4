/* Licensed under the Apache License, Version 2.0; see LICENSE. */

#ifndef SCEP_OPS_H
#define SCEP_OPS_H

#include <httpd.h>

/* The device endpoint (SetHandler scep): RFC 8894 section 4. */
int scep_ops_handle(request_rec *r);

/* The raw (still percent-encoded) value of a query parameter. */
const char *scep_ops_query_param(request_rec *r, const char *name,
                                 apr_size_t *rawlen);

struct scep_dir_conf_t;
/* PKIOperation (scep_pkiop.c). */
int scep_pkiop_handle(request_rec *r, const struct scep_dir_conf_t *c);

#endif /* SCEP_OPS_H */
