/* Licensed under the Apache License, Version 2.0; see LICENSE. */

#ifndef SCEP_LOG_H
#define SCEP_LOG_H

/*
 * httpd's AH numbers belong to httpd: every log call site of ours has its
 * own SCEP number, never reused, listed in docs/errors.md with the NDES
 * event it corresponds to.
 */
#define SCEPLOGNO(n) "SCEP" #n ": "

#endif /* SCEP_LOG_H */
