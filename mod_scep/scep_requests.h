/* Licensed under the Apache License, Version 2.0; see LICENSE. */

#ifndef SCEP_REQUESTS_H
#define SCEP_REQUESTS_H

#include <httpd.h>

/* In the parent at every start: the secret of the CSRF tokens. */
apr_status_t scep_requests_init(void);

/* SetHandler scep-requests: approve, reject, revoke. */
int scep_requests_handle(request_rec *r);

/* SetHandler scep-crl: the embedded CA's CRL as a file. */
int scep_crl_handle(request_rec *r);

#endif /* SCEP_REQUESTS_H */
