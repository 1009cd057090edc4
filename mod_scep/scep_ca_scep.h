/* Licensed under the Apache License, Version 2.0; see LICENSE. */

/**
 * @file scep_ca_scep.h
 * @brief Submission provider "scep": the RA forwards requests to an
 * upstream SCEP server (another NDES, EJBCA, Dogtag, micromdm's
 * scepserver, another mod_scep) and relays its answers.
 *
 * Errors it returns (besides APR_SUCCESS with a result):
 *   SCEP_UPSTREAM_NOT_DELIVERED  the upstream certainly did not get the
 *                                request (no address, connection refused,
 *                                connect timeout, its certificates were
 *                                refused); submitting again is safe.
 *   SCEP_UPSTREAM_MAYBE_DELIVERED the request was sent but no usable
 *                                answer came (timeout, reset, HTTP error,
 *                                not a CertRep, bad signature): the
 *                                upstream may have acted.  The provider
 *                                remembers the transaction; asked again,
 *                                it polls the upstream before anything
 *                                else and never sends a second PKCSReq
 *                                unless the upstream says it does not
 *                                know the transaction.
 *   anything else                a local problem (no RA key, its journal
 *                                directory unwritable); nothing was sent.
 */
#ifndef SCEP_CA_SCEP_H
#define SCEP_CA_SCEP_H

#include <http_config.h>
#include "mod_scep.h"

#define SCEP_UPSTREAM_NOT_DELIVERED APR_ECONNREFUSED
#define SCEP_UPSTREAM_MAYBE_DELIVERED APR_TIMEUP

/** Default SCEPUpstreamTimeout, seconds. */
#define SCEP_UPSTREAM_DEFAULT_TIMEOUT 30

extern const scep_submit_provider_t scep_submit_scep;

/* Directive handlers; the table is scep_config.c's. */
const char *scep_cmd_SCEPUpstreamCAFingerprint(cmd_parms *cmd, void *dc,
                                               const char *arg);
const char *scep_cmd_SCEPUpstreamTimeout(cmd_parms *cmd, void *dc,
                                         const char *arg);

#endif /* SCEP_CA_SCEP_H */
