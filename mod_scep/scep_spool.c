/* Licensed under the Apache License, Version 2.0; see LICENSE. */

/*
 * The RA's spool.  An entry is a file named after the transaction and
 * key: a header line "SCEPSPOOL 1 <since, microseconds> <attempts>" and
 * the pkiMessage.  It is written to a temporary file and renamed, so a
 * reader sees the old entry or the new one, never half of one.
 */

#include <stdio.h>
#include <stdlib.h>

#include <apr_file_io.h>
#include <apr_strings.h>

#include "scep_ca.h"
#include "scep_spool.h"

#define SPOOL_MAGIC "SCEPSPOOL 1 "

const char *scep_spool_name(apr_pool_t *p, const char *transid,
                            const char *keyid)
{
    const char *both = apr_pstrcat(p, transid, "\n", keyid, NULL);

    return scep_ca_sha256_hex(p, both, strlen(both));
}

static const char *entry_path(apr_pool_t *p, const char *dir,
                              const char *name)
{
    return apr_pstrcat(p, dir, "/", name, NULL);
}

apr_status_t scep_spool_put(apr_pool_t *p, const char *dir, const char *name,
                            const scep_spool_entry_t *e)
{
    char *tmp = apr_pstrcat(p, dir, "/.new-XXXXXX", NULL);
    const char *head = apr_psprintf(p, SPOOL_MAGIC "%" APR_TIME_T_FMT " %d\n",
                                    e->since, e->attempts);
    apr_file_t *f;
    apr_size_t n;
    apr_status_t rv;

    rv = apr_file_mktemp(&f, tmp, APR_FOPEN_CREATE | APR_FOPEN_WRITE
                                      | APR_FOPEN_EXCL, p);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    rv = apr_file_write_full(f, head, strlen(head), &n);
    if (rv == APR_SUCCESS) {
        rv = apr_file_write_full(f, e->der, e->len, &n);
    }
    if (rv == APR_SUCCESS) {
        rv = apr_file_sync(f);  /* kept across a crash, as promised */
    }
    apr_file_close(f);
    if (rv == APR_SUCCESS) {
        rv = apr_file_rename(tmp, entry_path(p, dir, name), p);
    }
    if (rv != APR_SUCCESS) {
        apr_file_remove(tmp, p);
    }
    return rv;
}

apr_status_t scep_spool_get(apr_pool_t *p, const char *dir, const char *name,
                            apr_size_t max, scep_spool_entry_t *e)
{
    apr_file_t *f;
    apr_finfo_t fi;
    apr_size_t n;
    char *buf, *nl, *end;
    apr_status_t rv;

    rv = apr_file_open(&f, entry_path(p, dir, name), APR_FOPEN_READ, 0, p);
    if (rv != APR_SUCCESS) {
        return APR_STATUS_IS_ENOENT(rv) ? APR_ENOENT : rv;
    }
    rv = apr_file_info_get(&fi, APR_FINFO_SIZE, f);
    if (rv == APR_SUCCESS
        && (fi.size <= 0 || (apr_size_t)fi.size > max + 80)) {
        rv = APR_EGENERAL;
    }
    if (rv == APR_SUCCESS) {
        n = (apr_size_t)fi.size;
        buf = apr_palloc(p, n + 1);
        rv = apr_file_read_full(f, buf, n, &n);
        buf[n] = '\0';
    }
    apr_file_close(f);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    nl = memchr(buf, '\n', n);
    if (nl == NULL || strncmp(buf, SPOOL_MAGIC, strlen(SPOOL_MAGIC))) {
        return APR_EGENERAL;
    }
    e->since = (apr_time_t)apr_strtoi64(buf + strlen(SPOOL_MAGIC), &end, 10);
    e->attempts = (int)strtol(end, &end, 10);
    if (end != nl || nl + 1 == buf + n) {
        return APR_EGENERAL;
    }
    e->der = (const unsigned char *)nl + 1;
    e->len = (apr_size_t)(buf + n - (nl + 1));
    return e->len <= max ? APR_SUCCESS : APR_EGENERAL;
}

apr_status_t scep_spool_drop(apr_pool_t *p, const char *dir,
                             const char *name)
{
    apr_status_t rv = apr_file_remove(entry_path(p, dir, name), p);

    return APR_STATUS_IS_ENOENT(rv) ? APR_SUCCESS : rv;
}

apr_status_t scep_spool_sweep(apr_pool_t *p, const char *dir,
                              apr_time_t before, apr_size_t max, int *removed)
{
    apr_dir_t *d;
    apr_finfo_t fi;
    apr_status_t rv;
    scep_spool_entry_t e;

    *removed = 0;
    rv = apr_dir_open(&d, dir, p);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    while (apr_dir_read(&fi, APR_FINFO_NAME | APR_FINFO_MTIME, d)
           == APR_SUCCESS) {
        int stale;
        if (!strcmp(fi.name, ".") || !strcmp(fi.name, "..")) {
            continue;
        }
        if (fi.name[0] == '.') {
            /* a temporary file some crash left */
            stale = fi.mtime < before;
        }
        else {
            stale = scep_spool_get(p, dir, fi.name, max, &e) != APR_SUCCESS
                    || e.since < before;
        }
        if (stale && apr_file_remove(entry_path(p, dir, fi.name), p)
                         == APR_SUCCESS) {
            (*removed)++;
        }
    }
    apr_dir_close(d);
    return APR_SUCCESS;
}
