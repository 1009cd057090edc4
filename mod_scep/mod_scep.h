/* Licensed under the Apache License, Version 2.0; see LICENSE. */

/**
 * @file mod_scep.h
 * @brief Public interface of mod_scep for other httpd modules.
 *
 * The submission-provider ("scep_submit") and challenge-provider
 * ("scep_challenge") APIs will be declared here; until they are, only
 * the identifiers that other modules may already rely on are defined.
 */
#ifndef MOD_SCEP_H
#define MOD_SCEP_H

/** Version of this header's interface. */
#define MOD_SCEP_VERSION "0.1.0"

/** Handler name of the device endpoint (SetHandler scep). */
#define SCEP_HANDLER "scep"

/** Handler name of the administrator page (SetHandler scep-admin). */
#define SCEP_ADMIN_HANDLER "scep-admin"

#endif /* MOD_SCEP_H */
