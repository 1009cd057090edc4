/* Licensed under the Apache License, Version 2.0; see LICENSE. */

/**
 * @file tap.h
 * @brief A tiny header-only TAP (Test Anything Protocol) producer.
 *
 * Output is what automake's tap-driver.sh reads: "ok N - name" or
 * "not ok N - name", diagnostics as "# ..." lines, the plan "1..N" first
 * (plan()) or last (done_testing()).  done_testing() returns the exit
 * status: 0 when every test passed and the plan was met, 1 otherwise.
 *
 *   int main(void) {
 *       ok(1 + 1 == 2, "addition");
 *       is_int(strlen("ab"), 2, "strlen");
 *       is_str(name, "SCEP", "name");
 *       return done_testing();
 *   }
 *
 * todo_start("reason") ... todo_end() marks known failures (TODO
 * directive: XFAIL for tap-driver.sh, not counted by done_testing()).
 *
 * Include it in one translation unit of a test program (the counters are
 * static).
 */
#ifndef TAP_H
#define TAP_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int tap_run_ = 0;      /* tests run */
static int tap_failed_ = 0;   /* tests failed */
static int tap_planned_ = -1; /* plan announced with plan(), -1 if none */
static const char *tap_todo_ = NULL; /* reason while inside todo_start() */

/* Keep test names on one line: a newline would break the TAP stream. */
static inline void tap_print_name_(const char *fmt, va_list ap)
{
    char buf[512];
    size_t i;

    vsnprintf(buf, sizeof(buf), fmt, ap);
    for (i = 0; buf[i]; i++) {
        if (buf[i] == '\n' || buf[i] == '\r') {
            buf[i] = ' ';
        }
        /* '#' in a name would start a directive */
        else if (buf[i] == '#') {
            buf[i] = '_';
        }
    }
    fputs(buf, stdout);
}

/** Print a diagnostic line ("# ..."); newlines start new "# " lines. */
static inline void diag(const char *fmt, ...)
{
    char buf[2048];
    const char *s, *nl;
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    fflush(stdout);
    for (s = buf; ; s = nl + 1) {
        nl = strchr(s, '\n');
        if (nl) {
            printf("# %.*s\n", (int)(nl - s), s);
        }
        else {
            if (*s) {
                printf("# %s\n", s);
            }
            break;
        }
    }
    fflush(stdout);
}

/** Announce the number of tests up front (optional). */
static inline void plan(int n)
{
    tap_planned_ = n;
    printf("1..%d\n", n);
    fflush(stdout);
}

/* One result line; a failure inside todo_start() is not counted. */
static inline void tap_result_(int pass, const char *file, int line,
                               const char *fmt, va_list ap)
{
    tap_run_++;
    printf("%sok %d - ", pass ? "" : "not ", tap_run_);
    tap_print_name_(fmt, ap);
    if (tap_todo_) {
        printf(" # TODO %s", tap_todo_);
    }
    printf("\n");
    fflush(stdout);
    if (!pass) {
        if (!tap_todo_) {
            tap_failed_++;
        }
        diag("  Failed %stest at %s line %d.", tap_todo_ ? "(TODO) " : "",
             file, line);
    }
}

/**
 * Results until todo_end() are known failures: reported as "# TODO"
 * (XFAIL for tap-driver.sh, XPASS when they pass) and not counted as
 * failures.
 */
static inline void todo_start(const char *reason)
{
    tap_todo_ = reason;
}

static inline void todo_end(void)
{
    tap_todo_ = NULL;
}

static inline int tap_ok_(int pass, const char *file, int line,
                          const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    tap_result_(pass, file, line, fmt, ap);
    va_end(ap);
    return pass;
}

static inline int tap_is_int_(long long got, long long expected,
                              const char *file, int line,
                              const char *fmt, ...)
{
    va_list ap;
    int pass = (got == expected);

    va_start(ap, fmt);
    tap_result_(pass, file, line, fmt, ap);
    va_end(ap);
    if (!pass) {
        diag("         got: %lld\n    expected: %lld", got, expected);
    }
    return pass;
}

static inline int tap_is_str_(const char *got, const char *expected,
                              const char *file, int line,
                              const char *fmt, ...)
{
    va_list ap;
    int pass;

    if (got == NULL || expected == NULL) {
        pass = (got == expected);
    }
    else {
        pass = (strcmp(got, expected) == 0);
    }
    va_start(ap, fmt);
    tap_result_(pass, file, line, fmt, ap);
    va_end(ap);
    if (!pass) {
        if (got) {
            diag("         got: '%s'", got);
        }
        else {
            diag("         got: NULL");
        }
        if (expected) {
            diag("    expected: '%s'", expected);
        }
        else {
            diag("    expected: NULL");
        }
    }
    return pass;
}

/** ok(cond, "name %d", ...): pass when cond is true; returns cond. */
#define ok(cond, ...) tap_ok_(!!(cond), __FILE__, __LINE__, __VA_ARGS__)

/** is_int(got, expected, "name", ...): integer equality. */
#define is_int(got, expected, ...) \
    tap_is_int_((long long)(got), (long long)(expected), __FILE__, \
                __LINE__, __VA_ARGS__)

/** is_str(got, expected, "name", ...): string equality (NULL == NULL). */
#define is_str(got, expected, ...) \
    tap_is_str_((got), (expected), __FILE__, __LINE__, __VA_ARGS__)

/** Skip n tests with a reason. */
static inline void skip(int n, const char *reason)
{
    while (n-- > 0) {
        tap_run_++;
        printf("ok %d # SKIP %s\n", tap_run_, reason);
    }
    fflush(stdout);
}

/** Stop the whole run: tap-driver.sh reports it as an ERROR. */
static inline void bail_out(const char *fmt, ...)
{
    va_list ap;

    printf("Bail out! ");
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    fflush(stdout);
    exit(255);
}

/** Number of failures so far. */
static inline int tap_failures(void)
{
    return tap_failed_;
}

/**
 * Print the plan (unless plan() was called) and a summary; return the
 * exit status for main().
 */
static inline int done_testing(void)
{
    if (tap_planned_ < 0) {
        printf("1..%d\n", tap_run_);
    }
    else if (tap_planned_ != tap_run_) {
        diag("Looks like you planned %d tests but ran %d.", tap_planned_,
             tap_run_);
        return 1;
    }
    if (tap_run_ == 0) {
        diag("No tests run!");
        return 1;
    }
    if (tap_failed_) {
        diag("Looks like you failed %d test%s of %d.", tap_failed_,
             tap_failed_ == 1 ? "" : "s", tap_run_);
    }
    fflush(stdout);
    return tap_failed_ ? 1 : 0;
}

#endif /* TAP_H */
