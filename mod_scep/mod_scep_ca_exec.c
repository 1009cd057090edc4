/* Licensed under the Apache License, Version 2.0; see LICENSE. */

/*
 * mod_scep_ca_exec: the submission provider "exec", a module of its own.
 *
 *   SCEPProvider exec /path/to/command [arguments]
 *
 * The RA runs the command (no shell) for every request it hands the CA,
 * with the request in files named in the environment and the details in
 * SCEP_* variables; the command answers with its exit status and stdout.
 * docs/providers.md describes the protocol; in short:
 *
 *   exit 0    issued (or found): stdout holds PEM certificates, leaf first
 *             (get_crl: a PEM CRL; cert_status: "good" or "revoked")
 *   exit 75   pending (EX_TEMPFAIL): stdout holds the CA's request id
 *   exit 77   rejected / not found (EX_NOPERM): stdout holds the reason
 *   other     a CA fault, as are a signal, a timeout, too much output or
 *             output that is not what the exit status promised
 *
 * It is built against mod_scep.h alone and uses no symbol of mod_scep.so,
 * so it doubles as the proof that the provider API serves third parties.
 * The pending requests' ids live in a spool of small files, one per
 * transaction, so that polls after a restart still find them.
 */

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <apr_file_info.h>
#include <apr_file_io.h>
#include <apr_lib.h>
#include <apr_poll.h>
#include <apr_strings.h>
#include <apr_thread_proc.h>

#include <httpd.h>
#include <http_config.h>
#include <http_log.h>
#include <ap_provider.h>
#include <unixd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "mod_scep.h"

/* Our own log tags (mod_scep's scep_log.h is not an installed header). */
#define SCEPLOGNO(n) "SCEP" #n ": "

#ifndef SCEP_STATE_DIR
#define SCEP_STATE_DIR "/var/lib/mod_scep"
#endif

/* The exit codes of the protocol (sysexits.h names, for their meaning). */
#define EXEC_PENDING 75   /* EX_TEMPFAIL: try again later */
#define EXEC_REJECTED 77  /* EX_NOPERM: refused */

/* RFC 8894 failInfo values. */
#define FAIL_BADALG 0
#define FAIL_BADMESSAGECHECK 1
#define FAIL_BADREQUEST 2
#define FAIL_BADTIME 3
#define FAIL_BADCERTID 4

/* Bounds on what a command may print: certificates fit easily; anything
 * bigger is a command gone wrong, not a CA answer. */
#define EXEC_MAX_STDOUT (1024 * 1024)
#define EXEC_MAX_STDERR (64 * 1024)
/* The part of stderr or of a reason that goes to the log. */
#define EXEC_LOG_CHARS 1024
#define EXEC_MAX_REQUEST_ID 256

#define EXEC_DEFAULT_TIMEOUT apr_time_from_sec(30)

/* The only variable the command inherits besides its SCEP_* ones. */
#define EXEC_PATH "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:" \
                  "/sbin:/bin"

module AP_MODULE_DECLARE_DATA scep_ca_exec_module;

APLOG_USE_MODULE(scep_ca_exec);

typedef struct {
    apr_interval_time_t timeout;  /* SCEPExecTimeout; -1: unset */
} exec_dir_conf_t;

typedef struct {
    const char *spool;            /* SCEPExecSpoolDir; NULL: unset */
} exec_srv_conf_t;

/* One SCEPProvider exec line. */
typedef struct {
    const char *path;             /* the command, an absolute path */
    const char **argv;            /* path, then the arguments; NULL ends */
    const char *id;               /* SHA-256 (hex) of the command line:
                                     its records in the spool */
} exec_inst_t;

/* One run of the command. */
typedef struct {
    request_rec *r;
    const exec_inst_t *inst;
    const char *op;               /* SCEP_OPERATION */
    const char *transaction_id;   /* for the log, or NULL */
    apr_array_header_t *env;      /* "NAME=value" */
    const char *workdir;          /* its own directory, removed after */
    void *workdir_cleanup;        /* the cleanup that removes it */
    const char *stdin_file;       /* or NULL: /dev/null */
    int code;                     /* exit status, when it exited */
    char *out;                    /* stdout, NUL-terminated */
    apr_size_t outlen;
    char *err;                    /* stderr (the first EXEC_MAX_STDERR) */
    apr_size_t errlen;
} exec_call_t;

/* OpenSSL objects freed with the pool they were made for. */
static apr_status_t free_x509_stack(void *sk)
{
    sk_X509_pop_free(sk, X509_free);
    return APR_SUCCESS;
}

static apr_status_t free_x509_crl(void *crl)
{
    X509_CRL_free(crl);
    return APR_SUCCESS;
}

/* ------------------------------------------------------------------ */
/* Configuration                                                       */

static void *exec_create_dir(apr_pool_t *p, char *dir)
{
    exec_dir_conf_t *c = apr_pcalloc(p, sizeof(*c));

    c->timeout = -1;
    return c;
}

static void *exec_merge_dir(apr_pool_t *p, void *basev, void *addv)
{
    exec_dir_conf_t *base = basev, *add = addv;
    exec_dir_conf_t *c = apr_pcalloc(p, sizeof(*c));

    c->timeout = add->timeout >= 0 ? add->timeout : base->timeout;
    return c;
}

static void *exec_create_srv(apr_pool_t *p, server_rec *s)
{
    return apr_pcalloc(p, sizeof(exec_srv_conf_t));
}

static void *exec_merge_srv(apr_pool_t *p, void *basev, void *addv)
{
    exec_srv_conf_t *base = basev, *add = addv;
    exec_srv_conf_t *c = apr_pcalloc(p, sizeof(*c));

    c->spool = add->spool ? add->spool : base->spool;
    return c;
}

static const char *spool_dir(apr_pool_t *p, server_rec *s)
{
    exec_srv_conf_t *c = ap_get_module_config(s->module_config,
                                              &scep_ca_exec_module);

    return c->spool ? c->spool : apr_pstrcat(p, SCEP_STATE_DIR, "/exec",
                                             NULL);
}

static const char *scep_cmd_SCEPExecTimeout(cmd_parms *cmd, void *dc,
                                            const char *arg)
{
    exec_dir_conf_t *c = dc;
    apr_interval_time_t t;

    if (ap_timeout_parameter_parse(arg, &t, "s") != APR_SUCCESS
        || t <= 0 || t > apr_time_from_sec(3600)) {
        return "SCEPExecTimeout must be a time from 1ms to 3600s "
               "(seconds unless it ends in ms, s, mi or h)";
    }
    c->timeout = t;
    return NULL;
}

static const char *scep_cmd_SCEPExecSpoolDir(cmd_parms *cmd, void *dc,
                                             const char *arg)
{
    exec_srv_conf_t *c = ap_get_module_config(cmd->server->module_config,
                                              &scep_ca_exec_module);

    c->spool = ap_server_root_relative(cmd->pool, arg);
    if (c->spool == NULL) {
        return apr_pstrcat(cmd->pool, "SCEPExecSpoolDir: bad path ", arg,
                           NULL);
    }
    return NULL;
}

static const command_rec exec_cmds[] = {
    AP_INIT_TAKE1("SCEPExecTimeout", scep_cmd_SCEPExecTimeout, NULL,
                  RSRC_CONF | ACCESS_CONF,
                  "how long the exec provider's command may run before its "
                  "process group is killed (default 30 seconds)"),
    AP_INIT_TAKE1("SCEPExecSpoolDir", scep_cmd_SCEPExecSpoolDir, NULL,
                  RSRC_CONF,
                  "directory of the exec provider's pending requests and "
                  "work files (default STATEDIR/exec)"),
    { NULL }
};

/* ------------------------------------------------------------------ */
/* Small helpers                                                       */

static const char *sha256_hex(apr_pool_t *p, const void *data,
                              apr_size_t len)
{
    unsigned char md[32];
    char *hex = apr_palloc(p, 65);
    int i;

    if (!EVP_Digest(data, len, md, NULL, EVP_sha256(), NULL)) {
        return NULL;
    }
    for (i = 0; i < 32; i++) {
        apr_snprintf(hex + 2 * i, 3, "%02x", md[i]);
    }
    return hex;
}

/* SHA-256 of a key's SubjectPublicKeyInfo as OpenSSL encodes it, so two
 * encodings of one key get one id. */
static const char *key_hash(apr_pool_t *p, EVP_PKEY *key)
{
    unsigned char *der = NULL;
    const char *h;
    int n;

    if (key == NULL || (n = i2d_PUBKEY(key, &der)) <= 0) {
        return NULL;
    }
    h = sha256_hex(p, der, (apr_size_t)n);
    OPENSSL_free(der);
    return h;
}

/* Printable for the log: control characters become spaces, and only the
 * first EXEC_LOG_CHARS characters are kept. */
static const char *for_log(apr_pool_t *p, const char *s, apr_size_t len)
{
    char *out;
    apr_size_t i;

    if (len > EXEC_LOG_CHARS) {
        len = EXEC_LOG_CHARS;
    }
    out = apr_pstrmemdup(p, s, len);
    for (i = 0; i < len; i++) {
        if (apr_iscntrl(out[i])) {
            out[i] = ' ';
        }
    }
    return out;
}

static const char *name_text(apr_pool_t *p, X509_NAME *name)
{
    BIO *b = BIO_new(BIO_s_mem());
    const char *s = "";
    char *data;
    long n;

    /* RFC 2253, UTF-8 kept as it is, control characters escaped. */
    if (b && name
        && X509_NAME_print_ex(b, name, 0,
                              XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB) >= 0
        && (n = BIO_get_mem_data(b, &data)) >= 0) {
        s = apr_pstrmemdup(p, data, (apr_size_t)n);
    }
    BIO_free(b);
    return s;
}

/* Upper-case hex without separators, as openssl's index.txt has it. */
static const char *serial_text(apr_pool_t *p, const ASN1_INTEGER *serial)
{
    BIGNUM *bn = ASN1_INTEGER_to_BN(serial, NULL);
    char *hex = bn ? BN_bn2hex(bn) : NULL;
    const char *s = hex ? apr_pstrdup(p, hex) : NULL;

    OPENSSL_free(hex);
    BN_free(bn);
    return s;
}

static const char *pem_of_der(apr_pool_t *p, const char *label,
                              const unsigned char *der, apr_size_t len)
{
    BIO *b = BIO_new(BIO_s_mem());
    const char *s = NULL;
    char *data;
    long n;

    if (b && PEM_write_bio(b, label, "", der, (long)len) > 0
        && (n = BIO_get_mem_data(b, &data)) > 0) {
        s = apr_pstrmemdup(p, data, (apr_size_t)n);
    }
    BIO_free(b);
    return s;
}

static const char *pem_of_cert(apr_pool_t *p, X509 *x)
{
    unsigned char *der = NULL;
    const char *s;
    int n = i2d_X509(x, &der);

    s = n > 0 ? pem_of_der(p, "CERTIFICATE", der, (apr_size_t)n) : NULL;
    OPENSSL_free(der);
    return s;
}

/* The request's KeyUsage as names, "" when it has none. */
static const char *key_usage_text(apr_pool_t *p, X509_REQ *csr)
{
    static const char *const names[] = {
        "digitalSignature", "nonRepudiation", "keyEncipherment",
        "dataEncipherment", "keyAgreement", "keyCertSign", "cRLSign",
        "encipherOnly", "decipherOnly"
    };
    STACK_OF(X509_EXTENSION) *exts = csr ? X509_REQ_get_extensions(csr)
                                         : NULL;
    ASN1_BIT_STRING *ku = exts ? X509V3_get_d2i(exts, NID_key_usage, NULL,
                                                NULL)
                               : NULL;
    const char *s = "";
    int i;

    for (i = 0; ku && i < (int)(sizeof(names) / sizeof(names[0])); i++) {
        if (ASN1_BIT_STRING_get_bit(ku, i)) {
            s = *s ? apr_pstrcat(p, s, ",", names[i], NULL) : names[i];
        }
    }
    ASN1_BIT_STRING_free(ku);
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    return s;
}

/* ------------------------------------------------------------------ */
/* Provider instance and startup                                       */

static const char *exec_create(void **instance, apr_pool_t *p,
                               server_rec *s, int argc, char *const argv[])
{
    exec_inst_t *inst;
    const char *line;
    int i;

    if (argc < 1) {
        return "SCEPProvider exec needs a command: SCEPProvider exec "
               "/path/to/command [arguments]";
    }
    if (!ap_os_is_path_absolute(p, argv[0])) {
        return apr_psprintf(p, "SCEPProvider exec: %s is not an absolute "
                            "path (the command runs without a shell and "
                            "without a PATH search)", argv[0]);
    }
    inst = apr_pcalloc(p, sizeof(*inst));
    inst->path = apr_pstrdup(p, argv[0]);
    inst->argv = apr_pcalloc(p, (argc + 1) * sizeof(char *));
    line = "";
    for (i = 0; i < argc; i++) {
        inst->argv[i] = apr_pstrdup(p, argv[i]);
        /* NUL-separated, so "a b" and "a" "b" differ. */
        line = apr_pstrcat(p, line, argv[i], "\x1f", NULL);
    }
    inst->id = sha256_hex(p, line, strlen(line));
    *instance = inst;
    return NULL;
}

/* A directory the children can write, made as root at startup. */
static apr_status_t make_spool_dir(apr_pool_t *p, server_rec *s,
                                   const char *dir)
{
    apr_status_t rv = apr_dir_make_recursive(dir, APR_FPROT_UREAD
                                                      | APR_FPROT_UWRITE
                                                      | APR_FPROT_UEXECUTE,
                                             p);

    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, rv, s, SCEPLOGNO(02001)
                     "exec provider: cannot create the spool directory %s",
                     dir);
        return rv;
    }
    if (geteuid() == 0 && chown(dir, ap_unixd_config.user_id, -1) != 0) {
        rv = errno;
        ap_log_error(APLOG_MARK, APLOG_EMERG, rv, s, SCEPLOGNO(02020)
                     "exec provider: cannot give the spool directory %s to "
                     "the httpd user", dir);
        return rv;
    }
    return APR_SUCCESS;
}

static apr_status_t exec_init(void *instance, apr_pool_t *pconf,
                              apr_pool_t *ptemp, server_rec *s)
{
    exec_inst_t *inst = instance;
    server_rec *v;
    apr_status_t rv;

    if (access(inst->path, X_OK) != 0) {
        rv = errno;
        ap_log_error(APLOG_MARK, APLOG_EMERG, rv, s, SCEPLOGNO(02000)
                     "exec provider: cannot run %s", inst->path);
        return rv;
    }
    /* Every virtual host's spool: the instance does not know which
     * hosts use it. */
    for (v = s; v; v = v->next) {
        const char *dir = spool_dir(ptemp, v);
        if ((rv = make_spool_dir(ptemp, s, dir)) != APR_SUCCESS
            || (rv = make_spool_dir(ptemp, s,
                                    apr_pstrcat(ptemp, dir, "/pending",
                                                NULL))) != APR_SUCCESS
            || (rv = make_spool_dir(ptemp, s,
                                    apr_pstrcat(ptemp, dir, "/runs", NULL)))
                   != APR_SUCCESS) {
            return rv;
        }
    }
    return APR_SUCCESS;
}

/* ------------------------------------------------------------------ */
/* Running the command                                                 */

static void set_env(exec_call_t *call, const char *name, const char *value)
{
    APR_ARRAY_PUSH(call->env, const char *) =
        apr_pstrcat(call->r->pool, name, "=", value ? value : "", NULL);
}

/* Remove a work directory and whatever the command left in it. */
static void remove_tree(apr_pool_t *p, const char *dir)
{
    apr_dir_t *d;
    apr_finfo_t fi;

    if (apr_dir_open(&d, dir, p) == APR_SUCCESS) {
        while (apr_dir_read(&fi, APR_FINFO_NAME | APR_FINFO_TYPE, d)
               == APR_SUCCESS) {
            const char *path;
            if (!strcmp(fi.name, ".") || !strcmp(fi.name, "..")) {
                continue;
            }
            path = apr_pstrcat(p, dir, "/", fi.name, NULL);
            if (fi.filetype == APR_DIR) {
                remove_tree(p, path);
            }
            else {
                apr_file_remove(path, p);
            }
        }
        apr_dir_close(d);
    }
    apr_dir_remove(dir, p);
}

typedef struct {
    apr_pool_t *pool;
    const char *dir;
} workdir_t;

static apr_status_t workdir_cleanup(void *data)
{
    workdir_t *w = data;

    remove_tree(w->pool, w->dir);
    return APR_SUCCESS;
}

/* A fresh private directory under the spool for one run, removed with
 * the request. */
static apr_status_t make_workdir(exec_call_t *call)
{
    request_rec *r = call->r;
    unsigned char rnd[12];
    char hex[25];
    workdir_t *w;
    apr_status_t rv;
    int i;

    if ((rv = apr_generate_random_bytes(rnd, sizeof(rnd))) != APR_SUCCESS) {
        return rv;
    }
    for (i = 0; i < (int)sizeof(rnd); i++) {
        apr_snprintf(hex + 2 * i, 3, "%02x", rnd[i]);
    }
    call->workdir = apr_pstrcat(r->pool, spool_dir(r->pool, r->server),
                                "/runs/", hex, NULL);
    rv = apr_dir_make(call->workdir, APR_FPROT_UREAD | APR_FPROT_UWRITE
                                         | APR_FPROT_UEXECUTE, r->pool);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    w = apr_palloc(r->pool, sizeof(*w));
    w->pool = r->pool;
    w->dir = call->workdir;
    apr_pool_cleanup_register(r->pool, w, workdir_cleanup,
                              apr_pool_cleanup_null);
    call->workdir_cleanup = w;
    return APR_SUCCESS;
}

/* Write a file of the work directory; its path, or NULL. */
static const char *work_file(exec_call_t *call, const char *name,
                             const char *data)
{
    const char *path = apr_pstrcat(call->r->pool, call->workdir, "/", name,
                                   NULL);
    apr_file_t *f;
    apr_size_t len = strlen(data);

    if (apr_file_open(&f, path,
                      APR_FOPEN_WRITE | APR_FOPEN_CREATE | APR_FOPEN_EXCL,
                      APR_FPROT_UREAD | APR_FPROT_UWRITE, call->r->pool)
        != APR_SUCCESS) {
        return NULL;
    }
    if (apr_file_write_full(f, data, len, NULL) != APR_SUCCESS) {
        apr_file_close(f);
        return NULL;
    }
    return apr_file_close(f) == APR_SUCCESS ? path : NULL;
}

/* A call with the variables every operation has. */
static apr_status_t new_call(exec_call_t *call, request_rec *r,
                             const exec_inst_t *inst, const char *op,
                             const char *transaction_id)
{
    apr_status_t rv;

    memset(call, 0, sizeof(*call));
    call->r = r;
    call->inst = inst;
    call->op = op;
    call->transaction_id = transaction_id;
    call->env = apr_array_make(r->pool, 24, sizeof(const char *));
    APR_ARRAY_PUSH(call->env, const char *) = EXEC_PATH;
    set_env(call, "SCEP_OPERATION", op);
    set_env(call, "SCEP_CLIENT_IP", r->useragent_ip);
    set_env(call, "SCEP_URI", r->uri);
    if (transaction_id) {
        set_env(call, "SCEP_TRANSACTION_ID", transaction_id);
        /* A safe file name for the transaction: the ID is the device's. */
        set_env(call, "SCEP_TRANSACTION_HASH",
                sha256_hex(r->pool, transaction_id, strlen(transaction_id)));
    }
    rv = make_workdir(call);
    if (rv != APR_SUCCESS) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, rv, r, SCEPLOGNO(02002)
                      "exec provider: cannot make a work directory under "
                      "%s (NDES event 31)", spool_dir(r->pool, r->server));
        return rv;
    }
    set_env(call, "SCEP_WORK_DIR", call->workdir);
    return APR_SUCCESS;
}

/* In the child between fork and exec, so async-signal-safe calls only
 * (httpd may run threads): a process group of its own, so that a timeout
 * can kill everything the command started; the signal state of a fresh
 * process rather than httpd's (an ignored signal stays ignored across
 * exec); stdin, stdout and stderr; no other descriptor of httpd's. */
static void exec_child(const exec_call_t *call, const char *const *env,
                       int in, int out, int err, int maxfd)
{
    static const int sigs[] = {
        SIGPIPE, SIGCHLD, SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1,
        SIGUSR2, SIGALRM, SIGXFSZ, SIGWINCH
    };
    sigset_t none;
    int i;

    setpgid(0, 0);
    for (i = 0; i < (int)(sizeof(sigs) / sizeof(sigs[0])); i++) {
        signal(sigs[i], SIG_DFL);
    }
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    if (dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0) {
        _exit(126);
    }
#if defined(__GLIBC__) && (__GLIBC__ > 2 || __GLIBC_MINOR__ >= 34)
    if (close_range(3, ~0U, 0) != 0)
#endif
    {
        for (i = 3; i < maxfd; i++) {
            close(i);
        }
    }
    if (chdir(call->workdir) != 0) {
        _exit(126);
    }
    execve(call->inst->path, (char *const *)call->inst->argv,
           (char *const *)env);
    _exit(127);
}

/* Has the child exited?  It is not reaped, so its pid and process group
 * id stay reserved until we kill what is left of the group. */
static int child_exited(pid_t pid)
{
    siginfo_t si;

    memset(&si, 0, sizeof(si));
    if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) != 0) {
        return errno != EINTR;
    }
    return si.si_pid == pid;
}

/* Append what a pipe has to a buffer of at most max bytes (the rest is
 * read and counted, not kept).  1 at end of file. */
static int drain(apr_file_t *f, char *buf, apr_size_t max, apr_size_t *len,
                 apr_size_t *total)
{
    char chunk[8192];

    for (;;) {
        apr_size_t n = sizeof(chunk);
        apr_status_t rv = apr_file_read(f, chunk, &n);
        if (n > 0) {
            apr_size_t keep = *len < max ? max - *len : 0;
            if (keep > n) {
                keep = n;
            }
            memcpy(buf + *len, chunk, keep);
            *len += keep;
            *total += n;
        }
        if (APR_STATUS_IS_EAGAIN(rv)) {
            return 0;
        }
        if (rv != APR_SUCCESS) {
            return 1;  /* APR_EOF, or an error: nothing more comes */
        }
    }
}

/* Run the command; APR_SUCCESS when it exited by itself within the
 * timeout (call->code is then its status), an error (logged) when it
 * could not start, was killed or printed too much. */
static apr_status_t run(exec_call_t *call)
{
    request_rec *r = call->r;
    const exec_dir_conf_t *dc =
        ap_get_module_config(r->per_dir_config, &scep_ca_exec_module);
    apr_interval_time_t timeout = dc->timeout >= 0 ? dc->timeout
                                                   : EXEC_DEFAULT_TIMEOUT;
    apr_time_t deadline = apr_time_now() + timeout;
    apr_proc_t proc;
    int in, outp[2], errp[2], maxfd = (int)sysconf(_SC_OPEN_MAX);
    apr_pollfd_t pfd[2];
    apr_size_t outtotal = 0, errtotal = 0;
    apr_exit_why_e why;
    int open_pipes = 2, exited = 0, timed_out = 0, i;
    apr_status_t rv;
    const char **env;

    APR_ARRAY_PUSH(call->env, const char *) = NULL;
    env = (const char **)call->env->elts;
    call->out = apr_palloc(r->pool, EXEC_MAX_STDOUT + 1);
    call->err = apr_palloc(r->pool, EXEC_MAX_STDERR + 1);

    /* apr_proc_create cannot give the child a process group of its own
     * unless httpd runs as root (APR calls its child callbacks for root
     * only): fork and set the child up here. */
    in = open(call->stdin_file ? call->stdin_file : "/dev/null",
              O_RDONLY | O_CLOEXEC);
    if (in < 0 || pipe2(outp, O_CLOEXEC) != 0) {
        rv = errno;
    }
    else if (pipe2(errp, O_CLOEXEC) != 0) {
        rv = errno;
        close(outp[0]);
        close(outp[1]);
    }
    else {
        rv = apr_proc_fork(&proc, r->pool);
        if (rv == APR_INCHILD) {
            exec_child(call, env, in, outp[1], errp[1], maxfd);
        }
        rv = rv == APR_INPARENT ? APR_SUCCESS : rv;
        close(outp[1]);
        close(errp[1]);
        if (rv != APR_SUCCESS) {
            close(outp[0]);
            close(errp[0]);
        }
    }
    if (in >= 0) {
        close(in);
    }
    if (rv != APR_SUCCESS) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, rv, r, SCEPLOGNO(02003)
                      "exec provider: cannot run %s for %s of transaction "
                      "%s (NDES event 31)", call->inst->path, call->op,
                      call->transaction_id ? call->transaction_id : "-");
        return rv;
    }
    /* The child does this too; whoever comes first wins the race with
     * an early fork of the command. */
    setpgid(proc.pid, proc.pid);
    ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, SCEPLOGNO(02017)
                  "exec provider: %s for transaction %s: process %"
                  APR_PID_T_FMT, call->op,
                  call->transaction_id ? call->transaction_id : "-",
                  proc.pid);
    /* Our ends, read without blocking, closed with the request. */
    fcntl(outp[0], F_SETFL, fcntl(outp[0], F_GETFL) | O_NONBLOCK);
    fcntl(errp[0], F_SETFL, fcntl(errp[0], F_GETFL) | O_NONBLOCK);
    apr_os_pipe_put_ex(&proc.out, &outp[0], 1, r->pool);
    apr_os_pipe_put_ex(&proc.err, &errp[0], 1, r->pool);
    apr_file_pipe_timeout_set(proc.out, 0);
    apr_file_pipe_timeout_set(proc.err, 0);

    memset(pfd, 0, sizeof(pfd));
    pfd[0].desc_type = pfd[1].desc_type = APR_POLL_FILE;
    pfd[0].reqevents = pfd[1].reqevents = APR_POLLIN;
    pfd[0].desc.f = proc.out;
    pfd[1].desc.f = proc.err;
    pfd[0].p = pfd[1].p = r->pool;

    /* Read both pipes to their end, then wait for the exit. */
    while (open_pipes > 0) {
        apr_interval_time_t left = deadline - apr_time_now();
        apr_pollfd_t live[2];
        apr_int32_t n = 0, nlive = 0;
        if (left <= 0) {
            timed_out = 1;
            break;
        }
        for (i = 0; i < 2; i++) {
            if (pfd[i].desc.f) {
                live[nlive++] = pfd[i];
            }
        }
        rv = apr_poll(live, nlive, &n, left);
        if (APR_STATUS_IS_EINTR(rv) || APR_STATUS_IS_TIMEUP(rv)) {
            continue;
        }
        if (rv != APR_SUCCESS) {
            break;
        }
        for (i = 0; i < nlive; i++) {
            int eof;
            if (!live[i].rtnevents) {
                continue;
            }
            if (live[i].desc.f == proc.out) {
                eof = drain(proc.out, call->out, EXEC_MAX_STDOUT,
                            &call->outlen, &outtotal);
                if (eof) {
                    pfd[0].desc.f = NULL;
                }
            }
            else {
                eof = drain(proc.err, call->err, EXEC_MAX_STDERR,
                            &call->errlen, &errtotal);
                if (eof) {
                    pfd[1].desc.f = NULL;
                }
            }
            open_pipes -= eof;
        }
    }
    while (!timed_out && !(exited = child_exited(proc.pid))) {
        if (apr_time_now() >= deadline) {
            timed_out = 1;
            break;
        }
        apr_sleep(apr_time_from_msec(10));
    }
    /* The group dies with the command: anything it left running, or all
     * of it on a timeout.  The command is not reaped yet, so its id still
     * names this group and no other. */
    kill(-proc.pid, SIGKILL);
    rv = apr_proc_wait(&proc, &call->code, &why, APR_WAIT);
    apr_file_close(proc.out);
    apr_file_close(proc.err);
    /* Nothing of the run is needed any more (a request may run the
     * command twice: lookup, then submit). */
    apr_pool_cleanup_run(r->pool, call->workdir_cleanup, workdir_cleanup);
    call->out[call->outlen] = '\0';
    call->err[call->errlen] = '\0';

    if (call->errlen > 0) {
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, SCEPLOGNO(02010)
                      "exec provider: %s for transaction %s: stderr: %s",
                      call->op,
                      call->transaction_id ? call->transaction_id : "-",
                      for_log(r->pool, call->err, call->errlen));
    }
    if (timed_out) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, SCEPLOGNO(02004)
                      "exec provider: %s for transaction %s: %s ran longer "
                      "than %" APR_TIME_T_FMT " ms; its process group was "
                      "killed (NDES event 31)", call->op,
                      call->transaction_id ? call->transaction_id : "-",
                      call->inst->path, (apr_time_t)apr_time_as_msec(timeout));
        return APR_TIMEUP;
    }
    if (rv != APR_CHILD_DONE) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, rv, r, SCEPLOGNO(02019)
                      "exec provider: %s for transaction %s: the exit "
                      "status of %s is lost (NDES event 31)", call->op,
                      call->transaction_id ? call->transaction_id : "-",
                      call->inst->path);
        return APR_EGENERAL;
    }
    if (why != APR_PROC_EXIT) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, SCEPLOGNO(02005)
                      "exec provider: %s for transaction %s: %s died of "
                      "signal %d (NDES event 31)", call->op,
                      call->transaction_id ? call->transaction_id : "-",
                      call->inst->path, call->code);
        return APR_EGENERAL;
    }
    if (outtotal > EXEC_MAX_STDOUT) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, SCEPLOGNO(02006)
                      "exec provider: %s for transaction %s: %s printed %"
                      APR_SIZE_T_FMT " bytes, over the limit of %d "
                      "(NDES event 31)", call->op,
                      call->transaction_id ? call->transaction_id : "-",
                      call->inst->path, outtotal, EXEC_MAX_STDOUT);
        return APR_EGENERAL;
    }
    return APR_SUCCESS;
}

/* An exit status outside the protocol: a CA fault. */
static apr_status_t bad_exit(exec_call_t *call)
{
    ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, call->r, SCEPLOGNO(02007)
                  "exec provider: %s for transaction %s: %s exited with "
                  "status %d (NDES event 31): %s", call->op,
                  call->transaction_id ? call->transaction_id : "-",
                  call->inst->path, call->code,
                  for_log(call->r->pool, call->out, call->outlen));
    return APR_EGENERAL;
}

/* Output that is not what the exit status promised: a CA fault. */
static apr_status_t bad_output(exec_call_t *call, const char *what)
{
    ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, call->r, SCEPLOGNO(02008)
                  "exec provider: %s for transaction %s: %s exited with "
                  "status %d but %s (NDES event 31)", call->op,
                  call->transaction_id ? call->transaction_id : "-",
                  call->inst->path, call->code, what);
    return APR_EGENERAL;
}

/* ------------------------------------------------------------------ */
/* Reading the answers                                                 */

/* Every PEM certificate of stdout, in order; NULL when there is none or
 * a block does not parse. */
static STACK_OF(X509) *stdout_certs(exec_call_t *call)
{
    STACK_OF(X509) *certs = sk_X509_new_null();
    BIO *b = BIO_new_mem_buf(call->out, (int)call->outlen);
    const char *begin = "-----BEGIN CERTIFICATE-----";
    int blocks = 0;
    const char *s;
    X509 *x;

    if (certs == NULL || b == NULL) {
        sk_X509_free(certs);
        BIO_free(b);
        return NULL;
    }
    apr_pool_cleanup_register(call->r->pool, certs, free_x509_stack,
                              apr_pool_cleanup_null);
    for (s = call->out; (s = strstr(s, begin)) != NULL; s += strlen(begin)) {
        blocks++;
    }
    while ((x = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL) {
        if (!sk_X509_push(certs, x)) {
            X509_free(x);
            break;
        }
    }
    ERR_clear_error();
    BIO_free(b);
    /* A block that does not parse is garbage, not something to skip. */
    return (blocks > 0 && sk_X509_num(certs) == blocks) ? certs : NULL;
}

/* The first line of stdout, trimmed. */
static const char *first_line(exec_call_t *call)
{
    const char *s = call->out, *e;

    while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n') {
        s++;
    }
    for (e = s; *e && *e != '\n' && *e != '\r'; e++) {
    }
    while (e > s && (e[-1] == ' ' || e[-1] == '\t')) {
        e--;
    }
    return apr_pstrmemdup(call->r->pool, s, (apr_size_t)(e - s));
}

static void rejected(exec_call_t *call, scep_submit_result_t *res,
                     int default_fail)
{
    static const char *const names[] = {
        "badAlg", "badMessageCheck", "badRequest", "badTime", "badCertId"
    };
    const char *reason = first_line(call);
    int i;

    memset(res, 0, sizeof(*res));
    res->status = SCEP_SUBMIT_REJECTED;
    res->fail_info = default_fail;
    /* "badTime: why" picks the failInfo. */
    for (i = 0; i < (int)(sizeof(names) / sizeof(names[0])); i++) {
        apr_size_t n = strlen(names[i]);
        if (!strncmp(reason, names[i], n)
            && (reason[n] == ':' || reason[n] == ' ' || reason[n] == '\0')) {
            res->fail_info = i;
            reason += n;
            while (*reason == ':' || *reason == ' ') {
                reason++;
            }
            break;
        }
    }
    res->reason = apr_psprintf(call->r->pool, "%s (exec: %s)",
                               *reason ? for_log(call->r->pool, reason,
                                                 strlen(reason))
                                       : "no reason given",
                               call->op);
}

/* Exit 0 of enroll, renew, lookup or poll: certificates for this key. */
static apr_status_t issued(exec_call_t *call, EVP_PKEY *key,
                           const char *key_id, scep_submit_result_t *res)
{
    STACK_OF(X509) *certs = stdout_certs(call);
    X509 *leaf;

    if (certs == NULL) {
        return bad_output(call, "stdout holds no PEM certificate");
    }
    leaf = sk_X509_value(certs, 0);
    if ((key && EVP_PKEY_eq(X509_get0_pubkey(leaf), key) != 1)
        || (!key && (key_id == NULL
                     || strcmp(key_hash(call->r->pool,
                                        X509_get0_pubkey(leaf)),
                               key_id) != 0))) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, call->r, SCEPLOGNO(02009)
                      "exec provider: %s for transaction %s: the "
                      "certificate %s answered (serial %s, %s) is not for "
                      "the request's key; it is not sent (NDES event 31)",
                      call->op,
                      call->transaction_id ? call->transaction_id : "-",
                      call->inst->path,
                      serial_text(call->r->pool,
                                  X509_get0_serialNumber(leaf)),
                      name_text(call->r->pool, X509_get_subject_name(leaf)));
        return APR_EGENERAL;
    }
    memset(res, 0, sizeof(*res));
    res->status = SCEP_SUBMIT_ISSUED;
    res->certs = certs;
    return APR_SUCCESS;
}

/* ------------------------------------------------------------------ */
/* The spool of pending requests: transaction -> the CA's request id   */

typedef struct {
    const char *request_id;
    const char *key;       /* key_hash of the request */
    const char *renews;    /* serial of the certificate a renewal renews */
} pending_t;

static const char *pending_path(request_rec *r, const exec_inst_t *inst,
                                const char *transaction_id)
{
    const char *name = apr_pstrcat(r->pool, inst->id, ":", transaction_id,
                                   NULL);

    return apr_pstrcat(r->pool, spool_dir(r->pool, r->server), "/pending/",
                       sha256_hex(r->pool, name, strlen(name)), NULL);
}

/* A request id is printed back into the environment and the log. */
static int request_id_ok(const char *id)
{
    apr_size_t n = strlen(id);
    apr_size_t i;

    if (n == 0 || n > EXEC_MAX_REQUEST_ID) {
        return 0;
    }
    for (i = 0; i < n; i++) {
        if (!apr_isprint(id[i])) {
            return 0;
        }
    }
    return 1;
}

/* Written aside and renamed, so a reader never sees half a record. */
static apr_status_t pending_write(request_rec *r, const char *path,
                                  const pending_t *rec,
                                  const char *transaction_id)
{
    char *tmp = apr_pstrcat(r->pool, path, ".XXXXXX", NULL);
    const char *text = apr_psprintf(r->pool,
                                    "request_id=%s\nkey=%s\nrenews=%s\n"
                                    "transaction_id=%s\ncreated=%"
                                    APR_TIME_T_FMT "\n",
                                    rec->request_id, rec->key,
                                    rec->renews ? rec->renews : "",
                                    for_log(r->pool, transaction_id,
                                            strlen(transaction_id)),
                                    apr_time_sec(apr_time_now()));
    apr_file_t *f;
    apr_status_t rv;

    rv = apr_file_mktemp(&f, tmp, APR_FOPEN_CREATE | APR_FOPEN_WRITE
                                      | APR_FOPEN_EXCL, r->pool);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    rv = apr_file_write_full(f, text, strlen(text), NULL);
    if (rv == APR_SUCCESS) {
        rv = apr_file_sync(f);
    }
    apr_file_close(f);
    if (rv == APR_SUCCESS) {
        rv = apr_file_rename(tmp, path, r->pool);
    }
    if (rv != APR_SUCCESS) {
        apr_file_remove(tmp, r->pool);
    }
    return rv;
}

/* The record of a transaction; NULL when there is none. */
static pending_t *pending_read(request_rec *r, const char *path)
{
    apr_file_t *f;
    char buf[2048];
    apr_size_t n = sizeof(buf) - 1;
    pending_t *rec;
    char *line, *state;
    apr_status_t rv;

    rv = apr_file_open(&f, path, APR_FOPEN_READ, APR_OS_DEFAULT, r->pool);
    if (rv != APR_SUCCESS) {
        if (!APR_STATUS_IS_ENOENT(rv)) {
            ap_log_rerror(APLOG_MARK, APLOG_ERR, rv, r, SCEPLOGNO(02018)
                          "exec provider: cannot read %s", path);
        }
        return NULL;
    }
    rv = apr_file_read_full(f, buf, n, &n);
    apr_file_close(f);
    if (rv != APR_SUCCESS && !APR_STATUS_IS_EOF(rv)) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, rv, r, SCEPLOGNO(02022)
                      "exec provider: cannot read %s", path);
        return NULL;
    }
    buf[n] = '\0';
    rec = apr_pcalloc(r->pool, sizeof(*rec));
    for (line = apr_strtok(buf, "\n", &state); line;
         line = apr_strtok(NULL, "\n", &state)) {
        if (!strncmp(line, "request_id=", 11)) {
            rec->request_id = apr_pstrdup(r->pool, line + 11);
        }
        else if (!strncmp(line, "key=", 4)) {
            rec->key = apr_pstrdup(r->pool, line + 4);
        }
        else if (!strncmp(line, "renews=", 7)) {
            rec->renews = apr_pstrdup(r->pool, line + 7);
        }
    }
    if (rec->request_id == NULL || rec->key == NULL) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, SCEPLOGNO(02023)
                      "exec provider: %s is not a pending record; ignored",
                      path);
        return NULL;
    }
    return rec;
}

/* Exit 75: PENDING, the request id recorded for the polls. */
static apr_status_t pending(exec_call_t *call, const char *key_id,
                            const char *renews, scep_submit_result_t *res)
{
    request_rec *r = call->r;
    pending_t rec;
    const char *path;
    apr_status_t rv;

    rec.request_id = first_line(call);
    if (!*rec.request_id) {
        /* No id of its own: the CA knows the request by transaction. */
        rec.request_id = call->transaction_id;
    }
    if (!request_id_ok(rec.request_id)) {
        return bad_output(call, "its request id is empty, longer than 256 "
                                "characters or not printable");
    }
    rec.key = key_id;
    rec.renews = renews;
    path = pending_path(r, call->inst, call->transaction_id);
    rv = pending_write(r, path, &rec, call->transaction_id);
    if (rv != APR_SUCCESS) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, rv, r, SCEPLOGNO(02012)
                      "exec provider: transaction %s is pending as request "
                      "%s, but %s cannot be written (NDES event 31)",
                      call->transaction_id, rec.request_id, path);
        return rv;
    }
    ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, SCEPLOGNO(02011)
                  "exec provider: transaction %s is pending as request %s",
                  call->transaction_id, rec.request_id);
    memset(res, 0, sizeof(*res));
    res->status = SCEP_SUBMIT_PENDING;
    res->request_id = rec.request_id;
    return APR_SUCCESS;
}

/* ------------------------------------------------------------------ */
/* The provider's functions                                            */

static apr_status_t exec_submit(void *instance, request_rec *r,
                                const scep_submit_request_t *req,
                                scep_submit_result_t *res)
{
    const exec_inst_t *inst = instance;
    const unsigned char *in = req->csr;
    X509_REQ *csr = req->csr_parsed;
    X509_REQ *own = NULL;
    EVP_PKEY *key;
    const char *key_id, *renews = NULL, *csr_pem, *ra_pem, *file;
    exec_call_t call;
    apr_status_t rv;

    memset(res, 0, sizeof(*res));
    if (csr == NULL) {
        csr = own = d2i_X509_REQ(NULL, &in, (long)req->csr_len);
    }
    key = csr ? X509_REQ_get0_pubkey(csr) : NULL;
    key_id = key_hash(r->pool, key);
    csr_pem = pem_of_der(r->pool, "CERTIFICATE REQUEST", req->csr,
                         req->csr_len);
    ra_pem = req->ra_request ? pem_of_der(r->pool, "PKCS7", req->ra_request,
                                          req->ra_request_len)
                             : NULL;
    if (key_id == NULL || csr_pem == NULL || req->ra_request == NULL
        || ra_pem == NULL) {
        X509_REQ_free(own);
        return APR_EINVAL;
    }
    if (req->renewal_signer) {
        renews = serial_text(r->pool,
                             X509_get0_serialNumber(req->renewal_signer));
    }
    rv = new_call(&call, r, inst,
                  req->lookup_only ? "lookup"
                                   : (req->renewal_signer ? "renew"
                                                          : "enroll"),
                  req->transaction_id);
    if (rv != APR_SUCCESS) {
        X509_REQ_free(own);
        return rv;
    }
    set_env(&call, "SCEP_TEMPLATE", req->template_name);
    set_env(&call, "SCEP_SUBJECT",
            name_text(r->pool, X509_REQ_get_subject_name(csr)));
    set_env(&call, "SCEP_KEY_USAGE", key_usage_text(r->pool, csr));
    set_env(&call, "SCEP_REQUESTER", req->requester);
    set_env(&call, "SCEP_KEY_ID", key_id);
    /* The RA sends it again after a fault: the CA may have it already. */
    set_env(&call, "SCEP_RETRY", req->retry ? "1" : "0");
    X509_REQ_free(own);
    call.stdin_file = file = work_file(&call, "request.csr", csr_pem);
    if (file) {
        set_env(&call, "SCEP_CSR_FILE", file);
        file = work_file(&call, "request.p7", ra_pem);
        set_env(&call, "SCEP_RA_REQUEST_FILE", file);
    }
    if (file && req->renewal_signer) {
        set_env(&call, "SCEP_RENEWAL_SIGNER", renews);
        file = work_file(&call, "renewal-signer.pem",
                         pem_of_cert(r->pool, req->renewal_signer));
        set_env(&call, "SCEP_RENEWAL_SIGNER_FILE", file);
    }
    if (file == NULL) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, SCEPLOGNO(02021)
                      "exec provider: cannot write the request to %s "
                      "(NDES event 31)", call.workdir);
        return APR_EGENERAL;
    }

    if ((rv = run(&call)) != APR_SUCCESS) {
        return rv;
    }
    switch (call.code) {
    case 0:
        return issued(&call, key, key_id, res);
    case EXEC_PENDING:
        return pending(&call, key_id, renews, res);
    case EXEC_REJECTED:
        rejected(&call, res, req->lookup_only ? FAIL_BADCERTID
                                              : FAIL_BADREQUEST);
        return APR_SUCCESS;
    default:
        return bad_exit(&call);
    }
}

static apr_status_t exec_poll(void *instance, request_rec *r,
                              const char *transaction_id, X509_NAME *subject,
                              X509 *requester, scep_submit_result_t *res)
{
    const exec_inst_t *inst = instance;
    const char *signer_key = requester ? key_hash(r->pool,
                                                  X509_get0_pubkey(requester))
                                       : NULL;
    const char *signer_serial =
        requester ? serial_text(r->pool, X509_get0_serialNumber(requester))
                  : NULL;
    pending_t *rec = pending_read(r, pending_path(r, inst, transaction_id));
    const char *key_id = signer_key;
    exec_call_t call;
    apr_status_t rv;

    memset(res, 0, sizeof(*res));
    if (rec) {
        /* Polls are bound to the requester: the request's key, or for a
         * renewal the certificate it renews. */
        if (!(signer_key && !strcmp(signer_key, rec->key))
            && !(rec->renews && *rec->renews && signer_serial
                 && !strcmp(signer_serial, rec->renews))) {
            ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, SCEPLOGNO(02014)
                          "exec provider: a poll for transaction %s signed "
                          "by another key than the request's", transaction_id);
            res->status = SCEP_SUBMIT_REJECTED;
            res->fail_info = FAIL_BADCERTID;
            res->reason = "the poll is signed by another key than the "
                          "request";
            return APR_SUCCESS;
        }
        key_id = rec->key;
    }
    if ((rv = new_call(&call, r, inst, "poll", transaction_id))
        != APR_SUCCESS) {
        return rv;
    }
    set_env(&call, "SCEP_REQUEST_ID", rec ? rec->request_id : "");
    set_env(&call, "SCEP_SUBJECT", name_text(r->pool, subject));
    set_env(&call, "SCEP_KEY_ID", key_id);
    if (rec && rec->renews && *rec->renews) {
        set_env(&call, "SCEP_RENEWAL_SIGNER", rec->renews);
    }
    if ((rv = run(&call)) != APR_SUCCESS) {
        return rv;
    }
    switch (call.code) {
    case 0:
        return issued(&call, NULL, key_id, res);
    case EXEC_PENDING:
        res->status = SCEP_SUBMIT_PENDING;
        res->request_id = rec ? rec->request_id : transaction_id;
        return APR_SUCCESS;
    case EXEC_REJECTED:
        rejected(&call, res, FAIL_BADCERTID);
        return APR_SUCCESS;
    default:
        return bad_exit(&call);
    }
}

/* The variables of GetCert, GetCRL and certstatus. */
static apr_status_t cert_call(exec_call_t *call, request_rec *r,
                              const exec_inst_t *inst, const char *op,
                              X509_NAME *issuer, const ASN1_INTEGER *serial)
{
    const char *sn = serial ? serial_text(r->pool, serial) : "";
    apr_status_t rv = new_call(call, r, inst, op, NULL);

    if (rv == APR_SUCCESS) {
        set_env(call, "SCEP_ISSUER", name_text(r->pool, issuer));
        set_env(call, "SCEP_SERIAL", sn ? sn : "");
    }
    return rv;
}

static apr_status_t exec_get_cert(void *instance, request_rec *r,
                                  X509_NAME *issuer,
                                  const ASN1_INTEGER *serial,
                                  scep_submit_result_t *res)
{
    exec_call_t call;
    STACK_OF(X509) *certs;
    X509 *leaf;
    apr_status_t rv;

    memset(res, 0, sizeof(*res));
    if ((rv = cert_call(&call, r, instance, "getcert", issuer, serial))
            != APR_SUCCESS
        || (rv = run(&call)) != APR_SUCCESS) {
        return rv;
    }
    if (call.code == EXEC_REJECTED) {
        rejected(&call, res, FAIL_BADCERTID);
        return APR_SUCCESS;
    }
    if (call.code != 0) {
        return bad_exit(&call);
    }
    certs = stdout_certs(&call);
    if (certs == NULL) {
        return bad_output(&call, "stdout holds no PEM certificate");
    }
    leaf = sk_X509_value(certs, 0);
    if (ASN1_INTEGER_cmp(X509_get0_serialNumber(leaf), serial) != 0
        || X509_NAME_cmp(X509_get_issuer_name(leaf), issuer) != 0) {
        return bad_output(&call, "its certificate is not the one asked for");
    }
    /* GetCert answers that certificate alone. */
    res->status = SCEP_SUBMIT_ISSUED;
    res->certs = sk_X509_new_null();
    if (res->certs == NULL || !X509_up_ref(leaf)) {
        sk_X509_free(res->certs);
        res->certs = NULL;
        return APR_ENOMEM;
    }
    apr_pool_cleanup_register(r->pool, res->certs, free_x509_stack,
                              apr_pool_cleanup_null);
    sk_X509_push(res->certs, leaf);
    return APR_SUCCESS;
}

static apr_status_t exec_get_crl(void *instance, request_rec *r,
                                 X509_NAME *issuer,
                                 const ASN1_INTEGER *serial, X509_CRL **out)
{
    exec_call_t call;
    X509_CRL *crl;
    BIO *b;
    apr_status_t rv;

    if ((rv = cert_call(&call, r, instance, "getcrl", issuer, serial))
            != APR_SUCCESS
        || (rv = run(&call)) != APR_SUCCESS) {
        return rv;
    }
    if (call.code == EXEC_REJECTED) {
        return APR_NOTFOUND;  /* the RA answers badCertId */
    }
    if (call.code != 0) {
        return bad_exit(&call);
    }
    b = BIO_new_mem_buf(call.out, (int)call.outlen);
    crl = b ? PEM_read_bio_X509_CRL(b, NULL, NULL, NULL) : NULL;
    BIO_free(b);
    ERR_clear_error();
    if (crl == NULL) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, SCEPLOGNO(02015)
                      "exec provider: getcrl: %s exited with status 0 but "
                      "stdout holds no PEM CRL (NDES event 31)",
                      call.inst->path);
        return APR_EGENERAL;
    }
    apr_pool_cleanup_register(r->pool, crl, free_x509_crl,
                              apr_pool_cleanup_null);
    *out = crl;
    return APR_SUCCESS;
}

/* Renewal: "good" or "revoked" with exit 0; anything else, and a fault,
 * is UNKNOWN, so that the RA refuses the renewal (fail closed). */
static scep_cert_status_e exec_cert_status(void *instance, request_rec *r,
                                           X509 *cert)
{
    exec_call_t call;
    const char *answer, *file;

    if (cert_call(&call, r, instance, "certstatus",
                  X509_get_issuer_name(cert), X509_get0_serialNumber(cert))
        != APR_SUCCESS) {
        return SCEP_CERT_UNKNOWN;
    }
    set_env(&call, "SCEP_SUBJECT",
            name_text(r->pool, X509_get_subject_name(cert)));
    file = work_file(&call, "certificate.pem", pem_of_cert(r->pool, cert));
    if (file == NULL) {
        return SCEP_CERT_UNKNOWN;
    }
    set_env(&call, "SCEP_CERT_FILE", file);
    if (run(&call) != APR_SUCCESS) {
        return SCEP_CERT_UNKNOWN;
    }
    if (call.code == EXEC_REJECTED) {
        return SCEP_CERT_UNKNOWN;
    }
    if (call.code != 0) {
        bad_exit(&call);
        return SCEP_CERT_UNKNOWN;
    }
    answer = first_line(&call);
    if (!ap_cstr_casecmp(answer, "good")) {
        return SCEP_CERT_GOOD;
    }
    if (!ap_cstr_casecmp(answer, "revoked")) {
        return SCEP_CERT_REVOKED;
    }
    ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, SCEPLOGNO(02016)
                  "exec provider: certstatus of serial %s: %s answered "
                  "'%s', neither 'good' nor 'revoked'; the status is "
                  "unknown", serial_text(r->pool,
                                         X509_get0_serialNumber(cert)),
                  call.inst->path, for_log(r->pool, answer, strlen(answer)));
    return SCEP_CERT_UNKNOWN;
}

static const scep_submit_provider_t exec_provider = {
    "exec",
    exec_create,
    exec_init,
    NULL,
    exec_submit,
    exec_poll,
    exec_get_cert,
    exec_get_crl,
    exec_cert_status,
    0  /* it hands the command the RA-signed request */
};

static void exec_register_hooks(apr_pool_t *p)
{
    ap_register_provider(p, SCEP_SUBMIT_PROVIDER_GROUP, "exec",
                         SCEP_SUBMIT_PROVIDER_VERSION, &exec_provider);
}

module AP_MODULE_DECLARE_DATA scep_ca_exec_module = {
    STANDARD20_MODULE_STUFF,
    exec_create_dir,          /* per-directory config */
    exec_merge_dir,           /* merge per-directory */
    exec_create_srv,          /* per-server config */
    exec_merge_srv,           /* merge per-server */
    exec_cmds,                /* directives */
    exec_register_hooks
};
