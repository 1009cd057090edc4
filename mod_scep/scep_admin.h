/* Licensed under the Apache License, Version 2.0; see LICENSE. */

#ifndef SCEP_ADMIN_H
#define SCEP_ADMIN_H

#include <httpd.h>

/* The administrator page (SetHandler scep-admin). */
int scep_admin_handle(request_rec *r);

/* Does the client want JSON (Accept: application/json, ?format=json)? */
int scep_admin_wants_json(request_rec *r);

/* Send a JSON body with this status (the pages' JSON answers). */
int scep_admin_send_json(request_rec *r, int status, const char *body);

/* NDES's text when the administrator may not have passwords. */
#define SCEP_ADMIN_NO_PERMISSION \
    "You do not have sufficient permission to enroll with SCEP."

#endif /* SCEP_ADMIN_H */
