/* Licensed under the Apache License, Version 2.0; see LICENSE. */

/*
 * scepbench: a load generator for SCEP servers (bench/run drives it).
 *
 * It speaks HTTP/1.1 with keep-alive over plain sockets, one thread per
 * connection, and builds and reads SCEP messages with the project's own
 * codec (mod_scep/scep_msg.c), so any server is measured with the same
 * client.  Every message is built before the clock starts and every reply
 * is checked after it stops: the timed phase only sends and receives, and
 * the client leaves the CPU to the server it measures.
 *
 *   scepbench keygen -n K -o KEYS.pem [-t THREADS]
 *       K RSA-2048 device keys (requests take them in turn).
 *
 *   scepbench cacert -u SCEP-URL -o DIR
 *       GetCACert: DIR/getcacert.der (the reply as sent), DIR/ca.pem,
 *       DIR/ra-enc.pem, DIR/ra-sign.pem (the CA itself without an RA).
 *
 *   scepbench get -u URL [-n N | -d SECONDS] [-c C]
 *       GETs one URL (GetCACert, GetCACaps, a static file) and checks
 *       that every answer is 200 with the same length.
 *
 *   scepbench admin -u ADMIN-URL -a USER:PASSWORD -n N [-c C] [-o FILE]
 *       N challenge passwords from the admin page's JSON (201 each),
 *       one per line to FILE.
 *
 *   scepbench enroll -u SCEP-URL -k KEYS.pem -n N [-c C]
 *                    (-P PASSWORDS | -p CHALLENGE) [options]
 *       GetCACert, then N PKCSReq (plus --warmup W before the clock),
 *       each with its own transactionID, subject and challenge; then
 *       checks that every reply is a CertRep signed by the RA, for this
 *       transaction and nonce, SUCCESS, and that its certificate holds
 *       the request's key, is issued by the CA and has a serial no other
 *       reply has.
 *
 * Every mode ends with one line "RESULT key=value ..." on stdout, which
 * bench/run reads; progress goes to stderr.  Exit status 0 when the run
 * had no failure, 1 when some request failed, 2 on a usage or setup error.
 */

#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <dirent.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/types.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <time.h>
#include <unistd.h>

#include <apr_general.h>
#include <apr_pools.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/pkcs7.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "scep_msg.h"

#define IO_TIMEOUT_SEC 120
#define MAX_HEADER 65536

static const char *prog = "scepbench";

static void die(const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "%s: ", prog);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    ERR_print_errors_fp(stderr);
    exit(2);
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);

    if (p == NULL) {
        die("out of memory");
    }
    return p;
}

static void *xcalloc(size_t n, size_t m)
{
    void *p = calloc(n ? n : 1, m ? m : 1);

    if (p == NULL) {
        die("out of memory");
    }
    return p;
}

static void *xrealloc(void *p, size_t n)
{
    p = realloc(p, n ? n : 1);
    if (p == NULL) {
        die("out of memory");
    }
    return p;
}

static char *xstrdup(const char *s)
{
    size_t n = strlen(s) + 1;

    return memcpy(xmalloc(n), s, n);
}

static double now_sec(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu_self_sec(void)
{
    struct rusage ru;

    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6
           + (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

/* The q-quantile (0..1) of n sorted values, nearest rank. */
static double quantile(const double *v, size_t n, double q)
{
    size_t i;

    if (n == 0) {
        return 0;
    }
    i = (size_t)(q * (double)n + 0.999999);
    if (i == 0) {
        i = 1;
    }
    if (i > n) {
        i = n;
    }
    return v[i - 1];
}

/* ---- options ---- */

typedef struct {
    const char *mode;
    const char *url;
    const char *out;
    const char *keys;
    const char *passwords;
    const char *challenge;
    const char *auth;
    const char *label;
    const char *serials_out;
    const char *cipher;
    const char *digest;
    long n;
    long warmup;
    int conc;
    int threads;
    double duration;
    int use_get;
    pid_t rss_pid;
    int progress;
} opts_t;

static opts_t o;

/* ---- URL ---- */

typedef struct {
    char host[256];
    char port[16];
    char path[4096]; /* with the query, if any */
    struct addrinfo *ai;
} url_t;

static void parse_url(const char *s, url_t *u)
{
    const char *h, *slash, *colon;
    size_t n;
    int rv;

    memset(u, 0, sizeof(*u));
    if (strncmp(s, "http://", 7) != 0) {
        die("only http:// URLs: %s", s);
    }
    h = s + 7;
    slash = strchr(h, '/');
    if (slash == NULL) {
        slash = h + strlen(h);
    }
    colon = memchr(h, ':', (size_t)(slash - h));
    n = (size_t)((colon ? colon : slash) - h);
    if (n == 0 || n >= sizeof(u->host)) {
        die("bad host in %s", s);
    }
    memcpy(u->host, h, n);
    if (colon) {
        n = (size_t)(slash - colon - 1);
        if (n == 0 || n >= sizeof(u->port)) {
            die("bad port in %s", s);
        }
        memcpy(u->port, colon + 1, n);
    }
    else {
        strcpy(u->port, "80");
    }
    snprintf(u->path, sizeof(u->path), "%s", *slash ? slash : "/");
    {
        struct addrinfo hints;
        memset(&hints, 0, sizeof(hints));
        hints.ai_family = AF_UNSPEC;
        hints.ai_socktype = SOCK_STREAM;
        rv = getaddrinfo(u->host, u->port, &hints, &u->ai);
        if (rv != 0) {
            die("%s: %s", u->host, gai_strerror(rv));
        }
    }
}

/* ---- a minimal HTTP/1.1 keep-alive client ---- */

typedef struct {
    const url_t *url;
    int fd;
    char *buf;
    size_t cap, len, pos;
    long connects;
} conn_t;

typedef struct {
    int status;
    char ctype[128];
    unsigned char *body;
    size_t body_len, body_cap;
    int close;
} resp_t;

static void conn_init(conn_t *c, const url_t *u)
{
    memset(c, 0, sizeof(*c));
    c->url = u;
    c->fd = -1;
    c->cap = 16384;
    c->buf = xmalloc(c->cap);
}

static void conn_close(conn_t *c)
{
    if (c->fd >= 0) {
        close(c->fd);
    }
    c->fd = -1;
    c->len = c->pos = 0;
}

static int conn_open(conn_t *c)
{
    struct addrinfo *a;
    struct timeval tv = { IO_TIMEOUT_SEC, 0 };
    int one = 1;

    conn_close(c);
    for (a = c->url->ai; a; a = a->ai_next) {
        int fd = socket(a->ai_family, a->ai_socktype, a->ai_protocol);
        if (fd < 0) {
            continue;
        }
        if (connect(fd, a->ai_addr, a->ai_addrlen) == 0) {
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
            setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
            c->fd = fd;
            c->connects++;
            return 0;
        }
        close(fd);
    }
    return -1;
}

static int send_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
        if (k < 0) {
            if (errno == EINTR) {
                continue;
            }
            return -1;
        }
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

/* Read more bytes; 1 read, 0 EOF, -1 error. */
static int conn_fill(conn_t *c)
{
    ssize_t k;

    if (c->pos > 0 && c->pos == c->len) {
        c->pos = c->len = 0;
    }
    if (c->cap - c->len < 4096) {
        if (c->pos > 0) {
            memmove(c->buf, c->buf + c->pos, c->len - c->pos);
            c->len -= c->pos;
            c->pos = 0;
        }
        if (c->cap - c->len < 4096) {
            c->cap *= 2;
            c->buf = xrealloc(c->buf, c->cap);
        }
    }
    for (;;) {
        k = recv(c->fd, c->buf + c->len, c->cap - c->len, 0);
        if (k < 0 && errno == EINTR) {
            continue;
        }
        break;
    }
    if (k < 0) {
        return -1;
    }
    if (k == 0) {
        return 0;
    }
    c->len += (size_t)k;
    return 1;
}

/* The next CRLF-terminated line (NUL-terminated in place, without CRLF). */
static char *conn_line(conn_t *c, int *eof)
{
    size_t scan = c->pos;

    *eof = 0;
    for (;;) {
        char *lf = memchr(c->buf + scan, '\n', c->len - scan);
        if (lf) {
            char *line = c->buf + c->pos;
            size_t end = (size_t)(lf - c->buf);
            c->pos = end + 1;
            if (end > 0 && c->buf[end - 1] == '\r') {
                end--;
            }
            c->buf[end] = '\0';
            return line;
        }
        if (c->len - c->pos > MAX_HEADER) {
            return NULL;
        }
        scan = c->len - c->pos;
        {
            size_t off = scan;
            int r = conn_fill(c);
            if (r <= 0) {
                *eof = (r == 0);
                return NULL;
            }
            scan = c->pos + off; /* conn_fill may have moved the data */
        }
    }
}

static void body_append(resp_t *r, const char *p, size_t n)
{
    if (r->body_len + n > r->body_cap) {
        r->body_cap = (r->body_len + n) * 2 + 1024;
        r->body = xrealloc(r->body, r->body_cap);
    }
    memcpy(r->body + r->body_len, p, n);
    r->body_len += n;
}

/* Take exactly n body bytes. */
static int conn_body(conn_t *c, resp_t *r, size_t n)
{
    while (n > 0) {
        size_t have = c->len - c->pos;
        if (have == 0) {
            if (conn_fill(c) <= 0) {
                return -1;
            }
            continue;
        }
        if (have > n) {
            have = n;
        }
        body_append(r, c->buf + c->pos, have);
        c->pos += have;
        n -= have;
    }
    return 0;
}

enum { RESP_OK = 0, RESP_ERR = -1, RESP_NOTHING = -2 };

static int read_response(conn_t *c, resp_t *r)
{
    long long clen = -1;
    int chunked = 0, eof, first = 1;
    char *line;

    r->status = 0;
    r->ctype[0] = '\0';
    r->body_len = 0;
    r->close = 0;
    for (;;) {
        line = conn_line(c, &eof);
        if (line == NULL) {
            return (first && eof && c->len == c->pos) ? RESP_NOTHING
                                                      : RESP_ERR;
        }
        if (first) {
            if (strncmp(line, "HTTP/1.", 7) != 0 || strlen(line) < 12) {
                return RESP_ERR;
            }
            r->status = atoi(line + 9);
            if (line[7] == '0') {
                r->close = 1;
            }
            first = 0;
            continue;
        }
        if (*line == '\0') {
            break;
        }
        if (!strncasecmp(line, "Content-Length:", 15)) {
            clen = atoll(line + 15);
        }
        else if (!strncasecmp(line, "Transfer-Encoding:", 18)
                 && strcasestr(line + 18, "chunked")) {
            chunked = 1;
        }
        else if (!strncasecmp(line, "Connection:", 11)) {
            if (strcasestr(line + 11, "close")) {
                r->close = 1;
            }
            else if (strcasestr(line + 11, "keep-alive")) {
                r->close = 0;
            }
        }
        else if (!strncasecmp(line, "Content-Type:", 13)) {
            const char *v = line + 13;
            while (*v == ' ' || *v == '\t') {
                v++;
            }
            snprintf(r->ctype, sizeof(r->ctype), "%s", v);
        }
    }
    if (r->status == 204 || r->status == 304 || (r->status >= 100
                                                 && r->status < 200)) {
        return RESP_OK;
    }
    if (chunked) {
        for (;;) {
            long long n;
            line = conn_line(c, &eof);
            if (line == NULL) {
                return RESP_ERR;
            }
            n = strtoll(line, NULL, 16);
            if (n < 0) {
                return RESP_ERR;
            }
            if (n == 0) {
                do {
                    line = conn_line(c, &eof);
                    if (line == NULL) {
                        return RESP_ERR;
                    }
                } while (*line);
                return RESP_OK;
            }
            if (conn_body(c, r, (size_t)n) != 0) {
                return RESP_ERR;
            }
            line = conn_line(c, &eof);
            if (line == NULL || *line) {
                return RESP_ERR;
            }
        }
    }
    if (clen >= 0) {
        return conn_body(c, r, (size_t)clen) == 0 ? RESP_OK : RESP_ERR;
    }
    /* Until the server closes. */
    for (;;) {
        int k;
        if (c->len > c->pos) {
            body_append(r, c->buf + c->pos, c->len - c->pos);
            c->pos = c->len;
        }
        k = conn_fill(c);
        if (k == 0) {
            r->close = 1;
            return RESP_OK;
        }
        if (k < 0) {
            return RESP_ERR;
        }
    }
}

/*
 * One request and its answer on a kept-alive connection, reconnecting
 * when needed.  A request is sent again only when the server closed an
 * idle connection without answering a byte.
 */
static int http_exchange(conn_t *c, const char *req, size_t reqlen,
                         resp_t *r)
{
    int attempt;

    for (attempt = 0; attempt < 2; attempt++) {
        int reused = c->fd >= 0, rv;
        if (c->fd < 0 && conn_open(c) != 0) {
            return -1;
        }
        if (send_all(c->fd, req, reqlen) != 0) {
            conn_close(c);
            if (reused) {
                continue;
            }
            return -1;
        }
        rv = read_response(c, r);
        if (rv == RESP_OK) {
            if (r->close) {
                conn_close(c);
            }
            return 0;
        }
        conn_close(c);
        if (!(rv == RESP_NOTHING && reused)) {
            return -1;
        }
    }
    return -1;
}

static char *http_get_request(const url_t *u, const char *path,
                              const char *extra, size_t *len)
{
    size_t n = strlen(path) + strlen(u->host) + (extra ? strlen(extra) : 0)
               + 128;
    char *s = xmalloc(n);

    *len = (size_t)snprintf(s, n,
                            "GET %s HTTP/1.1\r\nHost: %s:%s\r\n%s"
                            "User-Agent: scepbench\r\n\r\n",
                            path, u->host, u->port, extra ? extra : "");
    return s;
}

/* ---- server processes: RSS and CPU from /proc ---- */

typedef struct {
    long rss_kb;
    double cpu_sec;
    int nproc;
} proc_sample_t;

/* CPU seconds the whole machine spent busy (all processes). */
static double machine_busy_sec(void)
{
    unsigned long long v[8] = { 0 };
    FILE *f = fopen("/proc/stat", "r");
    int n;

    if (f == NULL) {
        return 0;
    }
    n = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0],
               &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]);
    fclose(f);
    if (n < 4) {
        return 0;
    }
    /* user nice system [idle iowait] irq softirq steal */
    return (double)(v[0] + v[1] + v[2] + v[5] + v[6] + v[7])
           / (double)sysconf(_SC_CLK_TCK);
}

/* Proportional set size of root and its children: shared pages counted
 * once in all (RSS counts them in every process). */
static long proc_pss_kb(pid_t root)
{
    DIR *d = opendir("/proc");
    struct dirent *e;
    long total = 0;

    if (root <= 0 || d == NULL) {
        if (d) {
            closedir(d);
        }
        return 0;
    }
    while ((e = readdir(d)) != NULL) {
        char path[64], line[256];
        long pid, ppid = -1, pss;
        FILE *f;

        if (e->d_name[0] < '1' || e->d_name[0] > '9') {
            continue;
        }
        pid = atol(e->d_name);
        snprintf(path, sizeof(path), "/proc/%ld/status", pid);
        f = fopen(path, "r");
        if (f == NULL) {
            continue;
        }
        while (fgets(line, sizeof(line), f)) {
            if (sscanf(line, "PPid: %ld", &ppid) == 1) {
                break;
            }
        }
        fclose(f);
        if (pid != root && ppid != root) {
            continue;
        }
        snprintf(path, sizeof(path), "/proc/%ld/smaps_rollup", pid);
        f = fopen(path, "r");
        if (f == NULL) {
            continue;
        }
        while (fgets(line, sizeof(line), f)) {
            if (sscanf(line, "Pss: %ld", &pss) == 1) {
                total += pss;
                break;
            }
        }
        fclose(f);
    }
    closedir(d);
    return total;
}

static void proc_sample(pid_t root, proc_sample_t *s)
{
    static long page_kb, hz;
    DIR *d;
    struct dirent *e;

    memset(s, 0, sizeof(*s));
    if (root <= 0) {
        return;
    }
    if (!page_kb) {
        page_kb = sysconf(_SC_PAGESIZE) / 1024;
        hz = sysconf(_SC_CLK_TCK);
    }
    d = opendir("/proc");
    if (d == NULL) {
        return;
    }
    while ((e = readdir(d)) != NULL) {
        char path[64], buf[1024], *p;
        long pid, ppid, rss;
        unsigned long long ut, st;
        FILE *f;
        size_t n;

        if (e->d_name[0] < '1' || e->d_name[0] > '9') {
            continue;
        }
        pid = atol(e->d_name);
        snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
        f = fopen(path, "r");
        if (f == NULL) {
            continue;
        }
        n = fread(buf, 1, sizeof(buf) - 1, f);
        fclose(f);
        buf[n] = '\0';
        p = strrchr(buf, ')');
        if (p == NULL) {
            continue;
        }
        /* After the name: state ppid ... utime(14) stime(15) ...
         * rss(24), numbered from pid = 1. */
        if (sscanf(p + 2,
                   "%*c %ld %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu "
                   "%*d %*d %*d %*d %*d %*d %*u %*u %ld",
                   &ppid, &ut, &st, &rss) != 4) {
            continue;
        }
        if (pid != root && ppid != root) {
            continue;
        }
        s->rss_kb += rss * page_kb;
        s->cpu_sec += (double)(ut + st) / (double)hz;
        s->nproc++;
    }
    closedir(d);
}

/* ---- load phases ---- */

typedef struct job_s job_t;
typedef struct phase_s phase_t;

/* What a phase does with request i on connection c. */
typedef void (*job_fn)(conn_t *c, long i, void *ctx, phase_t *ph);

struct phase_s {
    atomic_long next;
    atomic_long done;
    atomic_long failed;
    long end;
    double stop_at; /* 0: run to end */
    job_fn fn;
    void *ctx;
    conn_t *conns;
};

typedef struct {
    phase_t *ph;
    int idx;
} worker_arg_t;

static void *phase_worker(void *arg)
{
    worker_arg_t *w = arg;
    phase_t *ph = w->ph;

    for (;;) {
        long i = atomic_fetch_add(&ph->next, 1);
        if (i >= ph->end) {
            break;
        }
        if (ph->stop_at > 0 && now_sec() >= ph->stop_at) {
            break;
        }
        ph->fn(&ph->conns[w->idx], i, ph->ctx, ph);
        atomic_fetch_add(&ph->done, 1);
    }
    return NULL;
}

typedef struct {
    long rss_before_kb, rss_10_kb, rss_50_kb, rss_end_kb, rss_peak_kb;
    long rss_trace_kb[10]; /* when 10%, 20%, ... 100% were done */
    long pss_end_kb;
    double busy_sec; /* the whole machine */
    double srv_cpu_sec;
    int nproc;
} monitor_result_t;

typedef struct {
    phase_t *ph;
    long total;
    const char *what;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stop;
    monitor_result_t res;
} monitor_t;

static void *monitor_thread(void *arg)
{
    monitor_t *m = arg;
    double start = now_sec(), last_print = start;
    long last_done = 0;
    proc_sample_t s;

    for (;;) {
        struct timespec ts;
        long done;
        int stop;

        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 200 * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_mutex_lock(&m->mu);
        if (!m->stop) {
            pthread_cond_timedwait(&m->cv, &m->mu, &ts);
        }
        stop = m->stop;
        pthread_mutex_unlock(&m->mu);
        if (stop) {
            break;
        }
        done = atomic_load(&m->ph->done);
        if (o.rss_pid > 0) {
            proc_sample(o.rss_pid, &s);
            if (s.rss_kb > m->res.rss_peak_kb) {
                m->res.rss_peak_kb = s.rss_kb;
            }
            if (!m->res.rss_10_kb && m->total > 0
                && done * 10 >= m->total) {
                m->res.rss_10_kb = s.rss_kb;
            }
            if (!m->res.rss_50_kb && m->total > 0
                && done * 2 >= m->total) {
                m->res.rss_50_kb = s.rss_kb;
            }
            if (m->total > 0) {
                long k = done * 10 / m->total; /* tenths done */
                if (k >= 1 && k <= 10 && !m->res.rss_trace_kb[k - 1]) {
                    m->res.rss_trace_kb[k - 1] = s.rss_kb;
                }
            }
        }
        if (o.progress && now_sec() - last_print >= 2.0) {
            double t = now_sec();
            fprintf(stderr, "   %s: %ld/%ld, %.0f/s now, %ld failed%s",
                    m->what, done, m->total,
                    (double)(done - last_done) / (t - last_print),
                    atomic_load(&m->ph->failed),
                    o.rss_pid > 0 ? "" : "\n");
            if (o.rss_pid > 0) {
                fprintf(stderr, ", server RSS %ld MB\n", s.rss_kb / 1024);
            }
            last_print = t;
            last_done = done;
        }
    }
    return NULL;
}

/*
 * Run fn over [first, end) with o.conc connections (kept open across
 * phases in conns); returns the wall time.  With mon, the server's RSS
 * is followed and progress printed.
 */
static double run_phase(conn_t *conns, long first, long end, double secs,
                        job_fn fn, void *ctx, const char *what,
                        monitor_result_t *mres, long *done_out,
                        long *failed_out)
{
    phase_t ph;
    pthread_t *th = xcalloc((size_t)o.conc, sizeof(*th));
    worker_arg_t *wa = xcalloc((size_t)o.conc, sizeof(*wa));
    pthread_t mth;
    monitor_t mon;
    proc_sample_t s0, s1;
    double t0, t1, busy0, busy1;
    int i;

    memset(&ph, 0, sizeof(ph));
    atomic_init(&ph.next, first);
    atomic_init(&ph.done, 0);
    atomic_init(&ph.failed, 0);
    ph.end = end;
    ph.fn = fn;
    ph.ctx = ctx;
    ph.conns = conns;
    memset(&mon, 0, sizeof(mon));
    mon.ph = &ph;
    mon.total = end - first;
    mon.what = what;
    pthread_mutex_init(&mon.mu, NULL);
    pthread_cond_init(&mon.cv, NULL);

    busy0 = machine_busy_sec();
    proc_sample(o.rss_pid, &s0);
    mon.res.rss_before_kb = mon.res.rss_peak_kb = s0.rss_kb;
    if (pthread_create(&mth, NULL, monitor_thread, &mon) != 0) {
        die("cannot start a thread");
    }
    t0 = now_sec();
    if (secs > 0) {
        ph.stop_at = t0 + secs;
    }
    for (i = 0; i < o.conc; i++) {
        wa[i].ph = &ph;
        wa[i].idx = i;
        if (pthread_create(&th[i], NULL, phase_worker, &wa[i]) != 0) {
            die("cannot start a thread");
        }
    }
    for (i = 0; i < o.conc; i++) {
        pthread_join(th[i], NULL);
    }
    t1 = now_sec();
    pthread_mutex_lock(&mon.mu);
    mon.stop = 1;
    pthread_cond_signal(&mon.cv);
    pthread_mutex_unlock(&mon.mu);
    pthread_join(mth, NULL);
    proc_sample(o.rss_pid, &s1);
    busy1 = machine_busy_sec();
    if (mres) {
        *mres = mon.res;
        mres->busy_sec = busy1 - busy0;
        mres->rss_end_kb = s1.rss_kb;
        mres->rss_trace_kb[9] = s1.rss_kb;
        if (s1.rss_kb > mres->rss_peak_kb) {
            mres->rss_peak_kb = s1.rss_kb;
        }
        mres->srv_cpu_sec = s1.cpu_sec - s0.cpu_sec;
        mres->pss_end_kb = proc_pss_kb(o.rss_pid);
        mres->nproc = s1.nproc;
    }
    if (done_out) {
        *done_out = atomic_load(&ph.done);
    }
    if (failed_out) {
        *failed_out = atomic_load(&ph.failed);
    }
    free(th);
    free(wa);
    return t1 - t0;
}

/* ---- keys ---- */

typedef struct {
    EVP_PKEY **keys;
    long n;
    atomic_long next;
} keygen_t;

static void *keygen_worker(void *arg)
{
    keygen_t *k = arg;

    for (;;) {
        long i = atomic_fetch_add(&k->next, 1);
        if (i >= k->n) {
            break;
        }
        k->keys[i] = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
        if (k->keys[i] == NULL) {
            die("RSA key generation failed");
        }
    }
    return NULL;
}

static int mode_keygen(void)
{
    keygen_t k;
    pthread_t *th;
    FILE *f;
    long i;
    double t0 = now_sec();

    if (o.n <= 0 || !o.out) {
        die("keygen needs -n and -o");
    }
    k.keys = xcalloc((size_t)o.n, sizeof(*k.keys));
    k.n = o.n;
    atomic_init(&k.next, 0);
    th = xcalloc((size_t)o.threads, sizeof(*th));
    for (i = 0; i < o.threads; i++) {
        pthread_create(&th[i], NULL, keygen_worker, &k);
    }
    for (i = 0; i < o.threads; i++) {
        pthread_join(th[i], NULL);
    }
    f = fopen(o.out, "w");
    if (f == NULL) {
        die("%s: %s", o.out, strerror(errno));
    }
    for (i = 0; i < o.n; i++) {
        if (!PEM_write_PrivateKey(f, k.keys[i], NULL, NULL, 0, NULL, NULL)) {
            die("cannot write %s", o.out);
        }
        EVP_PKEY_free(k.keys[i]);
    }
    fclose(f);
    printf("RESULT mode=keygen n=%ld seconds=%.2f\n", o.n, now_sec() - t0);
    return 0;
}

static EVP_PKEY **load_keys(const char *file, long *n)
{
    FILE *f = fopen(file, "r");
    EVP_PKEY **keys = NULL, *k;
    long cap = 0;

    if (f == NULL) {
        die("%s: %s", file, strerror(errno));
    }
    *n = 0;
    while ((k = PEM_read_PrivateKey(f, NULL, NULL, NULL)) != NULL) {
        if (*n == cap) {
            cap = cap ? cap * 2 : 256;
            keys = xrealloc(keys, (size_t)cap * sizeof(*keys));
        }
        keys[(*n)++] = k;
    }
    ERR_clear_error();
    fclose(f);
    if (*n == 0) {
        die("%s: no private keys", file);
    }
    return keys;
}

/* A self-signed certificate for a device key: the signer of its requests
 * and the recipient of the replies (RFC 8894 2.3). */
static X509 *device_cert(EVP_PKEY *key, long i)
{
    X509 *x = X509_new();
    X509_NAME *nm = X509_NAME_new();
    char cn[64];

    snprintf(cn, sizeof(cn), "scepbench device key %ld", i);
    if (x == NULL || nm == NULL || !X509_set_version(x, 2)
        || !ASN1_INTEGER_set(X509_get_serialNumber(x), i + 1)
        || !X509_NAME_add_entry_by_txt(nm, "CN", MBSTRING_ASC,
                                       (const unsigned char *)cn, -1, -1, 0)
        || !X509_set_subject_name(x, nm) || !X509_set_issuer_name(x, nm)
        || !X509_gmtime_adj(X509_getm_notBefore(x), -3600)
        || !X509_gmtime_adj(X509_getm_notAfter(x), 7 * 86400)
        || !X509_set_pubkey(x, key) || !X509_sign(x, key, EVP_sha256())) {
        die("cannot make a device certificate");
    }
    X509_NAME_free(nm);
    return x;
}

/* ---- GetCACert ---- */

typedef struct {
    X509 *ca;
    X509 *ra_enc;
    X509 *ra_sign;
    STACK_OF(X509) *all;
    unsigned char *raw;
    size_t raw_len;
    char ctype[128];
} cacerts_t;

static int has_ku(X509 *x, uint32_t bit)
{
    uint32_t ku = X509_get_key_usage(x);

    return ku == UINT32_MAX || (ku & bit);
}

static void fetch_cacert(const char *scep_url, cacerts_t *cc)
{
    url_t u;
    conn_t c;
    resp_t r;
    char *path, *req;
    size_t reqlen;
    const unsigned char *in;
    int i;

    memset(cc, 0, sizeof(*cc));
    memset(&r, 0, sizeof(r));
    parse_url(scep_url, &u);
    path = xmalloc(strlen(u.path) + 32);
    sprintf(path, "%s%soperation=GetCACert", u.path,
            strchr(u.path, '?') ? "&" : "?");
    req = http_get_request(&u, path, NULL, &reqlen);
    conn_init(&c, &u);
    if (http_exchange(&c, req, reqlen, &r) != 0) {
        die("GetCACert: no answer from %s", scep_url);
    }
    conn_close(&c);
    if (r.status != 200) {
        die("GetCACert: HTTP %d from %s", r.status, scep_url);
    }
    cc->raw = r.body;
    cc->raw_len = r.body_len;
    snprintf(cc->ctype, sizeof(cc->ctype), "%s", r.ctype);
    cc->all = sk_X509_new_null();
    in = r.body;
    if (strstr(r.ctype, "x-x509-ca-ra-cert")) {
        PKCS7 *p7 = d2i_PKCS7(NULL, &in, (long)r.body_len);
        STACK_OF(X509) *certs;
        if (p7 == NULL || !PKCS7_type_is_signed(p7)) {
            die("GetCACert: not a certs-only PKCS#7");
        }
        certs = p7->d.sign->cert;
        for (i = 0; i < sk_X509_num(certs); i++) {
            X509 *x = sk_X509_value(certs, i);
            X509_up_ref(x);
            sk_X509_push(cc->all, x);
        }
        PKCS7_free(p7);
    }
    else {
        X509 *x = d2i_X509(NULL, &in, (long)r.body_len);
        if (x == NULL) {
            die("GetCACert: not a certificate (%s)", r.ctype);
        }
        sk_X509_push(cc->all, x);
    }
    for (i = 0; i < sk_X509_num(cc->all); i++) {
        X509 *x = sk_X509_value(cc->all, i);
        if (X509_check_ca(x) > 0) {
            if (cc->ca == NULL) {
                cc->ca = x;
            }
        }
        else {
            if (cc->ra_enc == NULL && has_ku(x, KU_KEY_ENCIPHERMENT)) {
                cc->ra_enc = x;
            }
            if (cc->ra_sign == NULL && has_ku(x, KU_DIGITAL_SIGNATURE)) {
                cc->ra_sign = x;
            }
        }
    }
    if (cc->ca == NULL) {
        cc->ca = sk_X509_value(cc->all, 0);
    }
    /* Without RA certificates the CA answers itself. */
    if (cc->ra_enc == NULL) {
        cc->ra_enc = cc->ca;
    }
    if (cc->ra_sign == NULL) {
        cc->ra_sign = cc->ca;
    }
    free(req);
    free(path);
    free(c.buf);
}

static void write_pem(const char *dir, const char *name, X509 *x)
{
    char path[4096];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    f = fopen(path, "w");
    if (f == NULL || !PEM_write_X509(f, x)) {
        die("cannot write %s", path);
    }
    fclose(f);
}

static int mode_cacert(void)
{
    cacerts_t cc;
    char path[4096];
    FILE *f;

    if (!o.url || !o.out) {
        die("cacert needs -u and -o");
    }
    fetch_cacert(o.url, &cc);
    snprintf(path, sizeof(path), "%s/getcacert.der", o.out);
    f = fopen(path, "wb");
    if (f == NULL || fwrite(cc.raw, 1, cc.raw_len, f) != cc.raw_len) {
        die("cannot write %s", path);
    }
    fclose(f);
    write_pem(o.out, "ca.pem", cc.ca);
    write_pem(o.out, "ra-enc.pem", cc.ra_enc);
    write_pem(o.out, "ra-sign.pem", cc.ra_sign);
    printf("RESULT mode=cacert bytes=%zu certs=%d type=%s ra=%s\n",
           cc.raw_len, sk_X509_num(cc.all), cc.ctype,
           cc.ra_enc == cc.ca ? "none" : "yes");
    return 0;
}

/* ---- get ---- */

typedef struct {
    char *req;
    size_t reqlen;
    double *lat;
    atomic_long bytes;
    atomic_long bad_len;
    long expect_len;
} get_ctx_t;

static void get_job(conn_t *c, long i, void *vctx, phase_t *ph)
{
    get_ctx_t *g = vctx;
    resp_t r;
    double t0 = now_sec();
    int rv;

    memset(&r, 0, sizeof(r));
    rv = http_exchange(c, g->req, g->reqlen, &r);
    g->lat[i] = now_sec() - t0;
    if (rv != 0 || r.status != 200) {
        atomic_fetch_add(&ph->failed, 1);
    }
    else if ((long)r.body_len != g->expect_len) {
        atomic_fetch_add(&g->bad_len, 1);
        atomic_fetch_add(&ph->failed, 1);
    }
    atomic_fetch_add(&g->bytes, (long)r.body_len);
    free(r.body);
}

static int mode_get(void)
{
    url_t u;
    conn_t *conns, probe;
    resp_t r;
    get_ctx_t g;
    long n, done = 0, failed = 0, i;
    double secs, *sorted;
    double cpu0, cpu1;
    monitor_result_t mr;

    if (!o.url) {
        die("get needs -u");
    }
    parse_url(o.url, &u);
    memset(&g, 0, sizeof(g));
    g.req = http_get_request(&u, u.path, NULL, &g.reqlen);
    /* One request first: the length every answer must have. */
    memset(&r, 0, sizeof(r));
    conn_init(&probe, &u);
    if (http_exchange(&probe, g.req, g.reqlen, &r) != 0 || r.status != 200) {
        die("GET %s: %s %d", o.url, r.status ? "HTTP" : "no answer",
            r.status);
    }
    conn_close(&probe);
    g.expect_len = (long)r.body_len;
    free(r.body);
    /* With a duration: room for 200,000 answers a second. */
    n = o.n > 0 ? o.n : (long)(o.duration * 200000) + 1000;
    if (o.n <= 0 && o.duration <= 0) {
        die("get needs -n or -d");
    }
    g.lat = xcalloc((size_t)n, sizeof(double));
    atomic_init(&g.bytes, 0);
    atomic_init(&g.bad_len, 0);
    conns = xcalloc((size_t)o.conc, sizeof(*conns));
    for (i = 0; i < o.conc; i++) {
        conn_init(&conns[i], &u);
    }
    cpu0 = cpu_self_sec();
    secs = run_phase(conns, 0, n, o.duration, get_job, &g,
                     o.label ? o.label : "get", &mr, &done, &failed);
    cpu1 = cpu_self_sec();
    /* With a duration the answered requests need not be the first. */
    sorted = xmalloc((size_t)n * sizeof(double));
    for (i = 0, done = 0; i < n; i++) {
        if (g.lat[i] > 0) {
            sorted[done++] = g.lat[i];
        }
    }
    qsort(sorted, (size_t)done, sizeof(double), cmp_double);
    printf("RESULT mode=get label=%s n=%ld c=%d ok=%ld fail=%ld "
           "bad_len=%ld bytes=%ld seconds=%.3f rate=%.1f p50_ms=%.3f "
           "p90_ms=%.3f p99_ms=%.3f srv_cpu=%.2f cli_cpu=%.2f "
           "rss_kb=%ld other_cpu=%.2f\n",
           o.label ? o.label : "-", done, o.conc, done - failed, failed,
           atomic_load(&g.bad_len), g.expect_len, secs,
           (double)(done - failed) / secs, quantile(sorted, done, .5) * 1e3,
           quantile(sorted, done, .9) * 1e3,
           quantile(sorted, done, .99) * 1e3, mr.srv_cpu_sec / secs,
           (cpu1 - cpu0) / secs, mr.rss_end_kb,
           (mr.busy_sec - mr.srv_cpu_sec - (cpu1 - cpu0)) / secs);
    return failed ? 1 : 0;
}

/* ---- admin: challenge passwords ---- */

typedef struct {
    char *req;
    size_t reqlen;
    double *lat;
    char **pw;
    atomic_long full;
} admin_ctx_t;

static void admin_job(conn_t *c, long i, void *vctx, phase_t *ph)
{
    admin_ctx_t *a = vctx;
    resp_t r;
    double t0 = now_sec();
    int rv;

    memset(&r, 0, sizeof(r));
    rv = http_exchange(c, a->req, a->reqlen, &r);
    a->lat[i] = now_sec() - t0;
    if (rv == 0 && r.status == 201) {
        const char *key = "\"password\":\"";
        char *p, *q;
        body_append(&r, "", 1);
        p = strstr((char *)r.body, key);
        if (p) {
            p += strlen(key);
            q = strchr(p, '"');
            if (q && q > p) {
                *q = '\0';
                a->pw[i] = xstrdup(p);
            }
        }
    }
    else if (rv == 0 && r.status == 503) {
        atomic_fetch_add(&a->full, 1);
    }
    if (a->pw[i] == NULL) {
        atomic_fetch_add(&ph->failed, 1);
    }
    free(r.body);
}

static char *base64(const unsigned char *in, size_t n)
{
    char *out = xmalloc(4 * ((n + 2) / 3) + 1);

    EVP_EncodeBlock((unsigned char *)out, in, (int)n);
    return out;
}

static int mode_admin(void)
{
    url_t u;
    conn_t *conns;
    admin_ctx_t a;
    char *auth, *hdr;
    long done = 0, failed = 0, i;
    double secs, *sorted, cpu0, cpu1;
    monitor_result_t mr;
    FILE *f = NULL;

    if (!o.url || !o.auth || o.n <= 0) {
        die("admin needs -u, -a and -n");
    }
    parse_url(o.url, &u);
    auth = base64((const unsigned char *)o.auth, strlen(o.auth));
    hdr = xmalloc(strlen(auth) + 64);
    sprintf(hdr, "Authorization: Basic %s\r\nAccept: application/json\r\n",
            auth);
    memset(&a, 0, sizeof(a));
    a.req = http_get_request(&u, u.path, hdr, &a.reqlen);
    a.lat = xcalloc((size_t)o.n, sizeof(double));
    a.pw = xcalloc((size_t)o.n, sizeof(char *));
    atomic_init(&a.full, 0);
    conns = xcalloc((size_t)o.conc, sizeof(*conns));
    for (i = 0; i < o.conc; i++) {
        conn_init(&conns[i], &u);
    }
    cpu0 = cpu_self_sec();
    secs = run_phase(conns, 0, o.n, 0, admin_job, &a,
                     o.label ? o.label : "admin", &mr, &done, &failed);
    cpu1 = cpu_self_sec();
    if (o.out) {
        f = fopen(o.out, "w");
        if (f == NULL) {
            die("%s: %s", o.out, strerror(errno));
        }
        for (i = 0; i < o.n; i++) {
            if (a.pw[i]) {
                fprintf(f, "%s\n", a.pw[i]);
            }
        }
        fclose(f);
    }
    sorted = xmalloc((size_t)done * sizeof(double));
    memcpy(sorted, a.lat, (size_t)done * sizeof(double));
    qsort(sorted, (size_t)done, sizeof(double), cmp_double);
    printf("RESULT mode=admin label=%s n=%ld c=%d ok=%ld fail=%ld "
           "cache_full=%ld seconds=%.3f rate=%.1f p50_ms=%.3f p90_ms=%.3f "
           "p99_ms=%.3f srv_cpu=%.2f cli_cpu=%.2f rss_kb=%ld "
           "other_cpu=%.2f\n",
           o.label ? o.label : "-", done, o.conc, done - failed, failed,
           atomic_load(&a.full), secs, (double)(done - failed) / secs,
           quantile(sorted, done, .5) * 1e3, quantile(sorted, done, .9) * 1e3,
           quantile(sorted, done, .99) * 1e3, mr.srv_cpu_sec / secs,
           (cpu1 - cpu0) / secs, mr.rss_end_kb,
           (mr.busy_sec - mr.srv_cpu_sec - (cpu1 - cpu0)) / secs);
    return failed ? 1 : 0;
}

/* ---- enroll ---- */

enum {
    F_NONE = 0,
    F_HTTP,      /* no answer, or not 200 */
    F_PARSE,     /* not a signed pkiMessage */
    F_NOT_REP,   /* not a CertRep */
    F_SIGNER,    /* not signed by the RA */
    F_TRANSID,   /* another transaction */
    F_NONCE,     /* recipientNonce is not our senderNonce */
    F_STATUS,    /* FAILURE or PENDING */
    F_DECRYPT,   /* cannot open the envelope */
    F_KEY,       /* no certificate for the request's key */
    F_ISSUER,    /* the certificate is not signed by the CA */
    F_SUBJECT,   /* the certificate's subject is not the request's */
    F_DUP,       /* the serial of another certificate */
    F_COUNT
};

static const char *const fail_names[F_COUNT] = {
    "none",      "http",   "parse",   "not_certrep", "signer",
    "transid",   "nonce",  "status",  "decrypt",     "key",
    "issuer",    "subject", "dup_serial"
};

struct job_s {
    char *http;
    size_t http_len;
    char transid[64];
    unsigned char nonce[16];
    long key;
    int status;
    unsigned char *reply;
    size_t reply_len;
    double latency;
    int fail;
    int failinfo; /* when the status was FAILURE */
    char *serial;
};

typedef struct {
    job_t *jobs;
    long njobs;
    EVP_PKEY **keys;
    X509 **dev_certs;
    long nkeys;
    cacerts_t cc;
    char **passwords;
    long npasswords;
    const EVP_CIPHER *cipher;
    const EVP_MD *md;
    url_t url;
    char *post_path;
    char run_id[16];
    atomic_long next;
    atomic_int reply_cipher;
    atomic_int reply_digest;
} enroll_ctx_t;

static char **load_lines(const char *file, long *n)
{
    FILE *f = fopen(file, "r");
    char line[1024], **v = NULL;
    long cap = 0;

    if (f == NULL) {
        die("%s: %s", file, strerror(errno));
    }
    *n = 0;
    while (fgets(line, sizeof(line), f)) {
        line[strcspn(line, "\r\n")] = '\0';
        if (!*line) {
            continue;
        }
        if (*n == cap) {
            cap = cap ? cap * 2 : 1024;
            v = xrealloc(v, (size_t)cap * sizeof(*v));
        }
        v[(*n)++] = xstrdup(line);
    }
    fclose(f);
    return v;
}

static char *url_escape_b64(const char *s)
{
    char *out = xmalloc(strlen(s) * 3 + 1), *q = out;

    for (; *s; s++) {
        if (*s == '+' || *s == '/' || *s == '=') {
            q += sprintf(q, "%%%02X", (unsigned char)*s);
        }
        else {
            *q++ = *s;
        }
    }
    *q = '\0';
    return out;
}

static void build_one(enroll_ctx_t *e, apr_pool_t *p, long i)
{
    job_t *j = &e->jobs[i];
    EVP_PKEY *key;
    X509_REQ *rq = X509_REQ_new();
    X509_NAME *nm = X509_NAME_new();
    STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
    X509_EXTENSION *ku;
    scep_signer_t signer;
    unsigned char *csr = NULL, *msg;
    apr_size_t msglen;
    const char *pw;
    scep_err_e err;
    int n;

    j->key = i % e->nkeys;
    key = e->keys[j->key];
    snprintf(j->transid, sizeof(j->transid), "scepbench-%s-%ld", e->run_id,
             i);
    pw = e->passwords ? e->passwords[i] : o.challenge;
    ku = X509V3_EXT_conf_nid(NULL, NULL, NID_key_usage,
                             "critical,digitalSignature,keyEncipherment");
    if (rq == NULL || nm == NULL || exts == NULL || ku == NULL
        || !X509_REQ_set_version(rq, 0)
        || !X509_NAME_add_entry_by_txt(nm, "O", MBSTRING_ASC,
                                       (const unsigned char *)"scepbench",
                                       -1, -1, 0)
        || !X509_NAME_add_entry_by_txt(nm, "CN", MBSTRING_ASC,
                                       (const unsigned char *)j->transid, -1,
                                       -1, 0)
        || !X509_REQ_set_subject_name(rq, nm) || !X509_REQ_set_pubkey(rq, key)
        || (pw && !X509_REQ_add1_attr_by_NID(rq,
                                             NID_pkcs9_challengePassword,
                                             MBSTRING_ASC,
                                             (const unsigned char *)pw, -1))
        || !sk_X509_EXTENSION_push(exts, ku)
        || !X509_REQ_add_extensions(rq, exts)
        || !X509_REQ_sign(rq, key, EVP_sha256())
        || (n = i2d_X509_REQ(rq, &csr)) <= 0) {
        die("cannot build request %ld", i);
    }
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    X509_NAME_free(nm);
    X509_REQ_free(rq);
    signer.cert = e->dev_certs[j->key];
    signer.key = key;
    err = scep_msg_request(p, SCEP_MT_PKCSREQ, j->transid, csr,
                           (apr_size_t)n, e->cc.ra_enc, e->cipher, &signer,
                           e->md, j->nonce, &msg, &msglen);
    OPENSSL_free(csr);
    if (err != SCEP_OK) {
        die("request %ld: %s", i, scep_msg_strerror(err));
    }
    if (!o.use_get) {
        size_t cap = msglen + strlen(e->post_path) + 256;
        j->http = xmalloc(cap);
        n = snprintf(j->http, cap,
                     "POST %s HTTP/1.1\r\nHost: %s:%s\r\n"
                     "User-Agent: scepbench\r\n"
                     "Content-Type: application/x-pki-message\r\n"
                     "Content-Length: %zu\r\n\r\n",
                     e->post_path, e->url.host, e->url.port,
                     (size_t)msglen);
        memcpy(j->http + n, msg, msglen);
        j->http_len = (size_t)n + msglen;
    }
    else {
        char *b64 = base64(msg, msglen), *esc = url_escape_b64(b64);
        size_t cap = strlen(esc) + strlen(e->url.path) + 256;
        j->http = xmalloc(cap);
        j->http_len = (size_t)snprintf(
            j->http, cap,
            "GET %s%soperation=PKIOperation&message=%s HTTP/1.1\r\n"
            "Host: %s:%s\r\nUser-Agent: scepbench\r\n\r\n",
            e->url.path, strchr(e->url.path, '?') ? "&" : "?", esc,
            e->url.host, e->url.port);
        free(b64);
        free(esc);
    }
}

static void *build_worker(void *arg)
{
    enroll_ctx_t *e = arg;
    apr_pool_t *p;

    apr_pool_create(&p, NULL);
    for (;;) {
        long i = atomic_fetch_add(&e->next, 1);
        if (i >= e->njobs) {
            break;
        }
        build_one(e, p, i);
        apr_pool_clear(p);
    }
    apr_pool_destroy(p);
    return NULL;
}

static void enroll_job(conn_t *c, long i, void *vctx, phase_t *ph)
{
    enroll_ctx_t *e = vctx;
    job_t *j = &e->jobs[i];
    resp_t r;
    double t0 = now_sec();
    int rv;

    memset(&r, 0, sizeof(r));
    rv = http_exchange(c, j->http, j->http_len, &r);
    j->latency = now_sec() - t0;
    j->status = rv == 0 ? r.status : 0;
    if (rv != 0 || r.status != 200) {
        free(r.body);
        j->fail = F_HTTP;
        atomic_fetch_add(&ph->failed, 1);
        return;
    }
    j->reply = r.body;
    j->reply_len = r.body_len;
}

static int subject_cn_is(X509 *x, const char *cn)
{
    X509_NAME *nm = X509_get_subject_name(x);
    int idx = X509_NAME_get_index_by_NID(nm, NID_commonName, -1);
    ASN1_STRING *s;

    if (idx < 0) {
        return 0;
    }
    s = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(nm, idx));
    return (size_t)ASN1_STRING_length(s) == strlen(cn)
           && !memcmp(ASN1_STRING_get0_data(s), cn, strlen(cn));
}

static int check_one(enroll_ctx_t *e, apr_pool_t *p, long i)
{
    job_t *j = &e->jobs[i];
    scep_msg_opts_t opts = { 1, 1, 0 };
    scep_msg_t *m;
    EVP_PKEY *key = e->keys[j->key];
    X509 *leaf = NULL;
    int k;

    if (j->fail) {
        return j->fail;
    }
    if (scep_msg_parse(p, j->reply, j->reply_len, &opts, &m) != SCEP_OK) {
        return F_PARSE;
    }
    if (m->type != SCEP_MT_CERTREP) {
        return F_NOT_REP;
    }
    if (X509_cmp(m->signer, e->cc.ra_sign) != 0) {
        return F_SIGNER;
    }
    if (m->transid.len != strlen(j->transid)
        || memcmp(m->transid.data, j->transid, m->transid.len)) {
        return F_TRANSID;
    }
    if (m->recipient_nonce.len != 16
        || memcmp(m->recipient_nonce.data, j->nonce, 16)) {
        return F_NONCE;
    }
    atomic_store(&e->reply_digest, m->digest_nid);
    if (m->status != SCEP_STATUS_SUCCESS) {
        j->failinfo = m->has_failinfo ? (int)m->failinfo : -1;
        return F_STATUS;
    }
    if (scep_msg_decrypt(p, m, key, e->dev_certs[j->key], &opts)
        != SCEP_OK) {
        return F_DECRYPT;
    }
    atomic_store(&e->reply_cipher, m->cipher_nid);
    for (k = 0; k < sk_X509_num(m->certs); k++) {
        X509 *x = sk_X509_value(m->certs, k);
        EVP_PKEY *pub = X509_get0_pubkey(x);
        if (pub && EVP_PKEY_eq(pub, key) == 1) {
            leaf = x;
            break;
        }
    }
    if (leaf == NULL) {
        return F_KEY;
    }
    if (X509_verify(leaf, X509_get0_pubkey(e->cc.ca)) != 1
        || X509_NAME_cmp(X509_get_issuer_name(leaf),
                         X509_get_subject_name(e->cc.ca)) != 0) {
        return F_ISSUER;
    }
    if (!subject_cn_is(leaf, j->transid)) {
        return F_SUBJECT;
    }
    {
        BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(leaf), NULL);
        char *hex = bn ? BN_bn2hex(bn) : NULL;
        j->serial = xstrdup(hex ? hex : "?");
        OPENSSL_free(hex);
        BN_free(bn);
    }
    return F_NONE;
}

static void *check_worker(void *arg)
{
    enroll_ctx_t *e = arg;
    apr_pool_t *p;

    apr_pool_create(&p, NULL);
    for (;;) {
        long i = atomic_fetch_add(&e->next, 1);
        if (i >= e->njobs) {
            break;
        }
        e->jobs[i].fail = check_one(e, p, i);
        ERR_clear_error();
        apr_pool_clear(p);
    }
    apr_pool_destroy(p);
    return NULL;
}

static void run_workers(enroll_ctx_t *e, void *(*fn)(void *))
{
    pthread_t *th = xcalloc((size_t)o.threads, sizeof(*th));
    int i;

    atomic_store(&e->next, 0);
    for (i = 0; i < o.threads; i++) {
        if (pthread_create(&th[i], NULL, fn, e) != 0) {
            die("cannot start a thread");
        }
    }
    for (i = 0; i < o.threads; i++) {
        pthread_join(th[i], NULL);
    }
    free(th);
}

static int cmp_serial(const void *a, const void *b)
{
    const job_t *x = *(job_t *const *)a, *y = *(job_t *const *)b;

    return strcmp(x->serial, y->serial);
}

static int mode_enroll(void)
{
    enroll_ctx_t e;
    conn_t *conns;
    long total, i, failed = 0, nfail[F_COUNT] = { 0 };
    long ok, dups = 0, wfail = 0;
    double t0, secs, *lat, cpu0, cpu1;
    job_t **by_serial;
    monitor_result_t mr;
    long nl = 0;
    int k;

    if (!o.url || !o.keys || o.n <= 0 || (!o.passwords && !o.challenge)) {
        die("enroll needs -u, -k, -n and -P or -p");
    }
    memset(&e, 0, sizeof(e));
    scep_msg_enable_des();
    parse_url(o.url, &e.url);
    e.post_path = xmalloc(strlen(e.url.path) + 32);
    sprintf(e.post_path, "%s%soperation=PKIOperation", e.url.path,
            strchr(e.url.path, '?') ? "&" : "?");
    {
        unsigned char rnd[4];
        RAND_bytes(rnd, sizeof(rnd));
        snprintf(e.run_id, sizeof(e.run_id), "%02x%02x%02x%02x", rnd[0],
                 rnd[1], rnd[2], rnd[3]);
    }
    e.cipher = EVP_get_cipherbyname(o.cipher);
    e.md = EVP_get_digestbyname(o.digest);
    if (e.cipher == NULL || e.md == NULL) {
        die("unknown cipher %s or digest %s", o.cipher, o.digest);
    }
    total = o.warmup + o.n;
    fetch_cacert(o.url, &e.cc);
    e.keys = load_keys(o.keys, &e.nkeys);
    e.dev_certs = xcalloc((size_t)e.nkeys, sizeof(X509 *));
    for (i = 0; i < e.nkeys; i++) {
        e.dev_certs[i] = device_cert(e.keys[i], i);
    }
    if (o.passwords) {
        e.passwords = load_lines(o.passwords, &e.npasswords);
        if (e.npasswords < total) {
            die("%s has %ld passwords; %ld needed", o.passwords,
                e.npasswords, total);
        }
    }
    e.jobs = xcalloc((size_t)total, sizeof(job_t));
    e.njobs = total;

    t0 = now_sec();
    run_workers(&e, build_worker);
    fprintf(stderr, "   built %ld PKCSReq (%s, %s, %ld device keys) in "
            "%.1f s\n", total, o.cipher, o.digest, e.nkeys, now_sec() - t0);

    conns = xcalloc((size_t)o.conc, sizeof(*conns));
    for (i = 0; i < o.conc; i++) {
        conn_init(&conns[i], &e.url);
    }
    if (o.warmup > 0) {
        /* Connections, server workers and caches, before the clock. */
        run_phase(conns, 0, o.warmup, 0, enroll_job, &e, "warm-up", NULL,
                  NULL, NULL);
    }
    cpu0 = cpu_self_sec();
    secs = run_phase(conns, o.warmup, total, 0, enroll_job, &e,
                     o.label ? o.label : "enroll", &mr, NULL, NULL);
    cpu1 = cpu_self_sec();
    for (i = 0; i < o.conc; i++) {
        conn_close(&conns[i]);
    }

    t0 = now_sec();
    run_workers(&e, check_worker);
    by_serial = xcalloc((size_t)total, sizeof(job_t *));
    for (i = 0; i < total; i++) {
        if (e.jobs[i].fail == F_NONE) {
            by_serial[nl++] = &e.jobs[i];
        }
    }
    qsort(by_serial, (size_t)nl, sizeof(job_t *), cmp_serial);
    for (i = 0; i < nl; i++) {
        int same_prev = i > 0
                        && !strcmp(by_serial[i]->serial,
                                   by_serial[i - 1]->serial);
        int same_next = i + 1 < nl
                        && !strcmp(by_serial[i]->serial,
                                   by_serial[i + 1]->serial);
        if (same_prev || same_next) {
            by_serial[i]->fail = F_DUP;
            dups++;
        }
    }
    fprintf(stderr, "   checked %ld replies in %.1f s\n", total,
            now_sec() - t0);
    if (o.serials_out) {
        FILE *f = fopen(o.serials_out, "a");
        if (f == NULL) {
            die("%s: %s", o.serials_out, strerror(errno));
        }
        for (i = 0; i < total; i++) {
            if (e.jobs[i].serial) {
                fprintf(f, "%s\n", e.jobs[i].serial);
            }
        }
        fclose(f);
    }

    lat = xmalloc((size_t)o.n * sizeof(double));
    for (i = o.warmup; i < total; i++) {
        lat[i - o.warmup] = e.jobs[i].latency;
        nfail[e.jobs[i].fail]++;
    }
    qsort(lat, (size_t)o.n, sizeof(double), cmp_double);
    ok = nfail[F_NONE];
    failed = o.n - ok;
    for (i = 0; i < o.warmup; i++) {
        if (e.jobs[i].fail) {
            wfail++;
        }
    }
    {
        long first_failinfo = -1;
        for (i = 0; i < total && first_failinfo < 0; i++) {
            if (e.jobs[i].fail == F_STATUS) {
                first_failinfo = e.jobs[i].failinfo;
            }
        }
        if (failed) {
            fprintf(stderr, "   failures:");
            for (k = 1; k < F_COUNT; k++) {
                if (nfail[k]) {
                    fprintf(stderr, " %s=%ld", fail_names[k], nfail[k]);
                }
            }
            if (first_failinfo >= 0) {
                fprintf(stderr, " (failInfo %s)",
                        scep_failinfo_name((scep_failinfo_e)first_failinfo));
            }
            fprintf(stderr, "\n");
        }
    }
    printf("RESULT mode=enroll label=%s n=%ld c=%d warmup=%ld ok=%ld "
           "fail=%ld dup_serials=%ld seconds=%.3f rate=%.1f rate_all=%.1f "
           "p50_ms=%.2f "
           "p90_ms=%.2f p99_ms=%.2f max_ms=%.2f rss_before_kb=%ld "
           "rss_10_kb=%ld rss_50_kb=%ld rss_end_kb=%ld rss_peak_kb=%ld "
           "pss_end_kb=%ld procs=%d srv_cpu=%.2f cli_cpu=%.2f method=%s cipher=%s "
           "digest=%s reply_cipher=%s reply_digest=%s keys=%ld "
           "warmup_fail=%ld other_cpu=%.2f",
           o.label ? o.label : "-", o.n, o.conc, o.warmup, ok, failed, dups,
           secs, (double)ok / secs, (double)o.n / secs,
           quantile(lat, o.n, .5) * 1e3,
           quantile(lat, o.n, .9) * 1e3, quantile(lat, o.n, .99) * 1e3,
           lat[o.n - 1] * 1e3, mr.rss_before_kb, mr.rss_10_kb, mr.rss_50_kb,
           mr.rss_end_kb, mr.rss_peak_kb, mr.pss_end_kb, mr.nproc, mr.srv_cpu_sec / secs,
           (cpu1 - cpu0) / secs, o.use_get ? "GET" : "POST", o.cipher,
           o.digest,
           atomic_load(&e.reply_cipher) != NID_undef
               ? OBJ_nid2sn(atomic_load(&e.reply_cipher))
               : "-",
           atomic_load(&e.reply_digest) != NID_undef
               ? OBJ_nid2sn(atomic_load(&e.reply_digest))
               : "-",
           e.nkeys, wfail,
           (mr.busy_sec - mr.srv_cpu_sec - (cpu1 - cpu0)) / secs);
    for (k = 1; k < F_COUNT; k++) {
        printf(" f_%s=%ld", fail_names[k], nfail[k]);
    }
    printf(" rss_trace_kb=");
    for (k = 0; k < 10; k++) {
        printf("%s%ld", k ? "," : "", mr.rss_trace_kb[k]);
    }
    printf("\n");
    return failed ? 1 : 0;
}

/* ---- main ---- */

static void usage(void)
{
    fprintf(stderr,
            "usage: scepbench keygen -n K -o KEYS.pem [-t THREADS]\n"
            "       scepbench cacert -u SCEP-URL -o DIR\n"
            "       scepbench get -u URL [-n N | -d SECONDS] [-c C]\n"
            "       scepbench admin -u ADMIN-URL -a USER:PASS -n N [-c C] "
            "[-o FILE]\n"
            "       scepbench enroll -u SCEP-URL -k KEYS.pem -n N [-c C]\n"
            "                 (-P PASSWORD-FILE | -p CHALLENGE) [--get]\n"
            "                 [-w WARMUP] [--cipher aes-128-cbc|des-ede3-cbc|"
            "des-cbc]\n"
            "                 [--digest sha256|sha1|...] [--rss-pid PID]\n"
            "                 [--serials-out FILE] [-t THREADS] [-l LABEL]\n"
            "common: -c connections (default 4), -t threads for building "
            "and checking\n"
            "        (default 2), -l label, -q no progress lines\n");
    exit(2);
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "url", required_argument, NULL, 'u' },
        { "out", required_argument, NULL, 'o' },
        { "keys", required_argument, NULL, 'k' },
        { "passwords", required_argument, NULL, 'P' },
        { "challenge", required_argument, NULL, 'p' },
        { "auth", required_argument, NULL, 'a' },
        { "label", required_argument, NULL, 'l' },
        { "requests", required_argument, NULL, 'n' },
        { "warmup", required_argument, NULL, 'w' },
        { "concurrency", required_argument, NULL, 'c' },
        { "threads", required_argument, NULL, 't' },
        { "duration", required_argument, NULL, 'd' },
        { "quiet", no_argument, NULL, 'q' },
        { "get", no_argument, NULL, 'G' },
        { "rss-pid", required_argument, NULL, 'R' },
        { "serials-out", required_argument, NULL, 'S' },
        { "cipher", required_argument, NULL, 'C' },
        { "digest", required_argument, NULL, 'D' },
        { NULL, 0, NULL, 0 }
    };
    int ch, rv;

    if (argc < 2 || argv[1][0] == '-') {
        usage();
    }
    o.mode = argv[1];
    o.conc = 4;
    o.threads = 2;
    o.cipher = "aes-128-cbc";
    o.digest = "sha256";
    o.progress = 1;
    optind = 2;
    while ((ch = getopt_long(argc, argv, "u:o:k:P:p:a:l:n:w:c:t:d:q",
                             longopts, NULL)) != -1) {
        switch (ch) {
        case 'u': o.url = optarg; break;
        case 'o': o.out = optarg; break;
        case 'k': o.keys = optarg; break;
        case 'P': o.passwords = optarg; break;
        case 'p': o.challenge = optarg; break;
        case 'a': o.auth = optarg; break;
        case 'l': o.label = optarg; break;
        case 'n': o.n = atol(optarg); break;
        case 'w': o.warmup = atol(optarg); break;
        case 'c': o.conc = atoi(optarg); break;
        case 't': o.threads = atoi(optarg); break;
        case 'd': o.duration = atof(optarg); break;
        case 'q': o.progress = 0; break;
        case 'G': o.use_get = 1; break;
        case 'R': o.rss_pid = (pid_t)atol(optarg); break;
        case 'S': o.serials_out = optarg; break;
        case 'C': o.cipher = optarg; break;
        case 'D': o.digest = optarg; break;
        default: usage();
        }
    }
    if (o.conc < 1 || o.threads < 1 || o.n < 0 || o.warmup < 0) {
        usage();
    }
    signal(SIGPIPE, SIG_IGN);
    apr_initialize();
    if (scep_msg_init() != SCEP_OK) {
        die("cannot register the SCEP OIDs");
    }
    if (!strcmp(o.mode, "keygen")) {
        rv = mode_keygen();
    }
    else if (!strcmp(o.mode, "cacert")) {
        rv = mode_cacert();
    }
    else if (!strcmp(o.mode, "get")) {
        rv = mode_get();
    }
    else if (!strcmp(o.mode, "admin")) {
        rv = mode_admin();
    }
    else if (!strcmp(o.mode, "enroll")) {
        rv = mode_enroll();
    }
    else {
        usage();
        rv = 2;
    }
    fflush(stdout);
    apr_terminate();
    return rv;
}
