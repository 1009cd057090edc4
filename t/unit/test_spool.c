/* Licensed under the Apache License, Version 2.0; see LICENSE. */

/*
 * Unit tests of the RA's spool (scep_spool.h): entries come back as
 * written, replace each other, are gone when dropped, and a damaged or
 * oversized file is refused rather than half read.
 */

#include <stdio.h>
#include <string.h>

#include <apr_file_io.h>
#include <apr_general.h>
#include <apr_pools.h>
#include <apr_strings.h>

#include "scep_spool.h"
#include "tap.h"

static void write_file(apr_pool_t *p, const char *path, const char *data,
                       apr_size_t len)
{
    apr_file_t *f;
    apr_size_t n;

    if (apr_file_open(&f, path, APR_FOPEN_CREATE | APR_FOPEN_WRITE
                                    | APR_FOPEN_TRUNCATE,
                      APR_FPROT_OS_DEFAULT, p) == APR_SUCCESS) {
        apr_file_write_full(f, data, len, &n);
        apr_file_close(f);
    }
}

int main(void)
{
    apr_pool_t *p;
    char *dir;
    const char *name, *other;
    scep_spool_entry_t e, got;
    static const unsigned char msg[] = { 0x30, 0x03, 0x02, 0x01, 0x00,
                                         '\n', 0x00, 0xff };
    apr_dir_t *d;
    apr_finfo_t fi;
    int files = 0;

    apr_initialize();
    apr_pool_create(&p, NULL);
    dir = apr_pstrdup(p, "/tmp/scep-spool-test-XXXXXX");
    if (mkdtemp(dir) == NULL) {
        ok(0, "a temporary directory");
        return done_testing();
    }

    name = scep_spool_name(p, "T-1", "KEY");
    other = scep_spool_name(p, "T-1", "OTHERKEY");
    ok(strlen(name) == 64 && strspn(name, "0123456789ABCDEF") == 64,
       "the entry name is hex SHA-256");
    ok(strcmp(name, other) != 0, "another key, another entry");
    ok(strcmp(name, scep_spool_name(p, "T-1\nKEY", "")) != 0,
       "transaction and key cannot be shifted into each other");

    is_int(scep_spool_get(p, dir, name, 1024, &got), APR_ENOENT,
           "no entry: APR_ENOENT");

    e.since = apr_time_from_sec(1700000000);
    e.attempts = 1;
    e.der = msg;
    e.len = sizeof(msg);
    is_int(scep_spool_put(p, dir, name, &e), APR_SUCCESS, "put");
    memset(&got, 0, sizeof(got));
    is_int(scep_spool_get(p, dir, name, 1024, &got), APR_SUCCESS, "get");
    ok(got.since == e.since, "the time comes back");
    is_int(got.attempts, 1, "the attempts come back");
    ok(got.len == sizeof(msg) && memcmp(got.der, msg, sizeof(msg)) == 0,
       "the message comes back byte for byte (newlines and NULs in it)");

    e.attempts = 2;
    is_int(scep_spool_put(p, dir, name, &e), APR_SUCCESS, "put again");
    is_int(scep_spool_get(p, dir, name, 1024, &got), APR_SUCCESS,
           "get again");
    is_int(got.attempts, 2, "the later entry replaces the first");
    is_int(scep_spool_get(p, dir, name, 4, &got), APR_EGENERAL,
           "an entry larger than the limit is refused");

    if (apr_dir_open(&d, dir, p) == APR_SUCCESS) {
        while (apr_dir_read(&fi, APR_FINFO_NAME, d) == APR_SUCCESS) {
            if (fi.name[0] != '.' || (strcmp(fi.name, ".")
                                      && strcmp(fi.name, ".."))) {
                files++;
            }
        }
        apr_dir_close(d);
    }
    is_int(files, 1, "one file, no temporary file left behind");

    write_file(p, apr_pstrcat(p, dir, "/", other, NULL), "garbage", 7);
    is_int(scep_spool_get(p, dir, other, 1024, &got), APR_EGENERAL,
           "a file without the header is refused");
    write_file(p, apr_pstrcat(p, dir, "/", other, NULL),
               "SCEPSPOOL 1 12 x\n0", 18);
    is_int(scep_spool_get(p, dir, other, 1024, &got), APR_EGENERAL,
           "a damaged header is refused");
    write_file(p, apr_pstrcat(p, dir, "/", other, NULL),
               "SCEPSPOOL 1 12 1\n", 17);
    is_int(scep_spool_get(p, dir, other, 1024, &got), APR_EGENERAL,
           "an entry without a message is refused");

    {
        const char *old = scep_spool_name(p, "T-old", "KEY");
        int removed = -1;
        e.since = apr_time_from_sec(1000);
        scep_spool_put(p, dir, old, &e);
        e.since = apr_time_from_sec(1700000000);
        is_int(scep_spool_sweep(p, dir, apr_time_from_sec(1600000000), 1024,
                                &removed), APR_SUCCESS, "sweep");
        is_int(removed, 2, "sweep: the old entry and the damaged one go");
        is_int(scep_spool_get(p, dir, old, 1024, &got), APR_ENOENT,
               "sweep: the old entry is gone");
        is_int(scep_spool_get(p, dir, name, 1024, &got), APR_SUCCESS,
               "sweep: the recent entry stays");
    }

    is_int(scep_spool_drop(p, dir, name), APR_SUCCESS, "drop");
    is_int(scep_spool_get(p, dir, name, 1024, &got), APR_ENOENT,
           "dropped: gone");
    is_int(scep_spool_drop(p, dir, name), APR_SUCCESS,
           "dropping what is not there is no error");
    is_int(scep_spool_put(p, apr_pstrcat(p, dir, "/missing", NULL), name,
                          &e) != APR_SUCCESS, 1,
           "put into a missing directory fails");

    scep_spool_drop(p, dir, other);
    apr_dir_remove(dir, p);
    apr_pool_destroy(p);
    apr_terminate();
    return done_testing();
}
