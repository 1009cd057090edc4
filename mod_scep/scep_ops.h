/* Licensed under the Apache License, Version 2.0; see LICENSE. */

#ifndef SCEP_OPS_H
#define SCEP_OPS_H

#include <httpd.h>

/* The device endpoint (SetHandler scep): RFC 8894 section 4. */
int scep_ops_handle(request_rec *r);

#endif /* SCEP_OPS_H */
