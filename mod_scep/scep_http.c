/* Licensed under the Apache License, Version 2.0; see LICENSE. */

/*
 * HTTP/1.0 with "Connection: close": the server then neither keeps the
 * connection nor chunks the reply, so the reply ends where the
 * connection does (or at Content-Length).  That keeps this client small
 * enough to read in one sitting; SCEP needs nothing more.
 */

#include <string.h>

#include <apr_lib.h>
#include <apr_network_io.h>
#include <apr_strings.h>
#include <apr_uri.h>

#include "scep_http.h"

/* Room for the status line and headers on top of the body limit. */
#define SCEP_HTTP_HEAD_MAX 16384

static apr_status_t fail(scep_http_reply_t *rep, apr_pool_t *p,
                         apr_status_t rv, const char *what)
{
    char buf[120];

    rep->error = rv == APR_SUCCESS
                     ? what
                     : apr_psprintf(p, "%s (%s)", what,
                                    apr_strerror(rv, buf, sizeof(buf)));
    return rv == APR_SUCCESS ? APR_EGENERAL : rv;
}

/* Time left until the deadline, at least 1 ms so that APR does not take
 * 0 for "non-blocking". */
static apr_interval_time_t left(apr_time_t deadline)
{
    apr_interval_time_t t = deadline - apr_time_now();

    return t > 1000 ? t : 1000;
}

static apr_status_t connect_any(apr_pool_t *p, apr_uri_t *u,
                                const scep_http_limits_t *lim,
                                apr_socket_t **out, scep_http_reply_t *rep)
{
    apr_sockaddr_t *sa;
    apr_status_t rv;

    rv = apr_sockaddr_info_get(&sa, u->hostname, APR_UNSPEC, u->port, 0, p);
    if (rv != APR_SUCCESS) {
        return fail(rep, p, rv,
                    apr_psprintf(p, "cannot resolve %s", u->hostname));
    }
    /* Each address in turn, as a browser does. */
    for (; sa; sa = sa->next) {
        apr_socket_t *s;
        rv = apr_socket_create(&s, sa->family, SOCK_STREAM, APR_PROTO_TCP, p);
        if (rv != APR_SUCCESS) {
            continue;
        }
        apr_socket_timeout_set(s, lim->connect_timeout);
        rv = apr_socket_connect(s, sa);
        if (rv == APR_SUCCESS) {
            *out = s;
            return APR_SUCCESS;
        }
        apr_socket_close(s);
    }
    return fail(rep, p, rv,
                apr_psprintf(p, "cannot connect to %s:%u", u->hostname,
                             (unsigned)u->port));
}

static apr_status_t send_all(apr_socket_t *s, const char *buf, apr_size_t len,
                             apr_time_t deadline)
{
    while (len > 0) {
        apr_size_t n = len;
        apr_status_t rv;
        if (apr_time_now() >= deadline) {
            return APR_TIMEUP;
        }
        apr_socket_timeout_set(s, left(deadline));
        rv = apr_socket_send(s, buf, &n);
        if (rv != APR_SUCCESS && n == 0) {
            return APR_STATUS_IS_TIMEUP(rv) ? APR_TIMEUP : rv;
        }
        buf += n;
        len -= n;
    }
    return APR_SUCCESS;
}

/* Read until the peer closes, at most max bytes. */
static apr_status_t recv_all(apr_pool_t *p, apr_socket_t *s, apr_size_t max,
                             apr_time_t deadline, char **out,
                             apr_size_t *outlen)
{
    apr_size_t cap = 8192, n = 0;
    char *buf = apr_palloc(p, cap + 1);

    for (;;) {
        apr_size_t got;
        apr_status_t rv;
        if (n == cap) {
            char *bigger;
            if (cap >= max) {
                return APR_ENOSPC;
            }
            cap = cap * 2 > max ? max : cap * 2;
            bigger = apr_palloc(p, cap + 1);
            memcpy(bigger, buf, n);
            buf = bigger;
        }
        if (apr_time_now() >= deadline) {
            return APR_TIMEUP;
        }
        apr_socket_timeout_set(s, left(deadline));
        got = cap - n;
        rv = apr_socket_recv(s, buf + n, &got);
        n += got;
        if (APR_STATUS_IS_EOF(rv)) {
            break;
        }
        if (rv != APR_SUCCESS) {
            return APR_STATUS_IS_TIMEUP(rv) ? APR_TIMEUP : rv;
        }
    }
    buf[n] = '\0';
    *out = buf;
    *outlen = n;
    return APR_SUCCESS;
}

/* The value of a header in the head (lines ending CRLF or LF), or NULL. */
static const char *header(apr_pool_t *p, const char *head, const char *name)
{
    apr_size_t nlen = strlen(name);
    const char *line = strchr(head, '\n');

    while (line && *++line) {
        const char *end = strchr(line, '\n');
        if (end == NULL) {
            end = line + strlen(line);
        }
        if ((apr_size_t)(end - line) > nlen && line[nlen] == ':'
            && !strncasecmp(line, name, nlen)) {
            const char *v = line + nlen + 1;
            while (v < end && (*v == ' ' || *v == '\t')) {
                v++;
            }
            while (end > v && apr_isspace(end[-1])) {
                end--;
            }
            return apr_pstrmemdup(p, v, (apr_size_t)(end - v));
        }
        line = *end ? end : NULL;
    }
    return NULL;
}

apr_status_t scep_http_exchange(apr_pool_t *p, const char *url,
                                const char *query, const unsigned char *body,
                                apr_size_t len, const char *content_type,
                                const scep_http_limits_t *lim,
                                scep_http_reply_t *rep)
{
    apr_time_t deadline = apr_time_now() + lim->timeout;
    apr_socket_t *s = NULL;
    apr_uri_t u;
    apr_status_t rv;
    const char *req, *hostport, *cl, *te, *ct;
    char *raw, *sep;
    apr_size_t rawlen, headlen;
    apr_off_t clen = -1;

    memset(rep, 0, sizeof(*rep));
    rep->content_type = "";
    if (apr_uri_parse(p, url, &u) != APR_SUCCESS || !u.hostname) {
        return fail(rep, p, APR_EINVAL, apr_psprintf(p, "not a URL: %s", url));
    }
    if (!u.scheme || strcasecmp(u.scheme, "http")) {
        return fail(rep, p, APR_ENOTIMPL, "only http:// URLs are supported");
    }
    if (!u.port) {
        u.port = 80;
    }
    rv = connect_any(p, &u, lim, &s, rep);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    hostport = strchr(u.hostname, ':')
                   ? apr_psprintf(p, "[%s]:%u", u.hostname, (unsigned)u.port)
                   : apr_psprintf(p, "%s:%u", u.hostname, (unsigned)u.port);
    req = apr_pstrcat(
        p, body ? "POST " : "GET ", u.path ? u.path : "/", query ? "?" : "",
        query ? query : "", " HTTP/1.0\r\nHost: ", hostport,
        "\r\nUser-Agent: mod_scep\r\nAccept: */*\r\n"
        "Connection: close\r\n",
        body ? apr_psprintf(
            p,
            "Content-Type: %s\r\n"
            "Content-Length: %" APR_SIZE_T_FMT "\r\n",
            content_type ? content_type : "application/octet-stream", len)
             : "",
        "\r\n", NULL);
    /* From here on the upstream may act on what it got. */
    rep->sent = 1;
    rv = send_all(s, req, strlen(req), deadline);
    if (rv == APR_SUCCESS && body) {
        rv = send_all(s, (const char *)body, len, deadline);
    }
    if (rv != APR_SUCCESS) {
        apr_socket_close(s);
        return fail(rep, p, rv, "sending the request failed");
    }
    rv = recv_all(p, s, lim->max_body + SCEP_HTTP_HEAD_MAX, deadline, &raw,
                  &rawlen);
    apr_socket_close(s);
    if (rv == APR_ENOSPC) {
        fail(rep, p, APR_SUCCESS, "the reply is too large");
        return APR_ENOSPC;
    }
    if (rv != APR_SUCCESS) {
        return fail(rep, p, rv,
                    APR_STATUS_IS_TIMEUP(rv) ? "no complete reply in time"
                                             : "reading the reply failed");
    }
    if (rawlen < 12 || strncmp(raw, "HTTP/1.", 7) || raw[8] != ' '
        || !apr_isdigit(raw[9]) || !apr_isdigit(raw[10])
        || !apr_isdigit(raw[11])) {
        return fail(rep, p, APR_SUCCESS, "the reply is not HTTP");
    }
    rep->status =
        (raw[9] - '0') * 100 + (raw[10] - '0') * 10 + (raw[11] - '0');
    sep = strstr(raw, "\r\n\r\n");
    headlen = sep ? (apr_size_t)(sep - raw) + 4 : 0;
    if (sep == NULL && (sep = strstr(raw, "\n\n")) != NULL) {
        headlen = (apr_size_t)(sep - raw) + 2;
    }
    if (sep == NULL) {
        return fail(rep, p, APR_SUCCESS, "the reply's header does not end");
    }
    *sep = '\0';
    ct = header(p, raw, "Content-Type");
    cl = header(p, raw, "Content-Length");
    te = header(p, raw, "Transfer-Encoding");
    if (te && strcasecmp(te, "identity")) {
        /* Not to be sent to an HTTP/1.0 request (RFC 9112 6.1). */
        return fail(
            rep, p, APR_SUCCESS,
            apr_psprintf(p,
                         "the reply uses "
                         "Transfer-Encoding %s, which HTTP/1.0 does not know",
                         te));
    }
    rep->content_type = ct ? ct : "";
    rep->body = (const unsigned char *)raw + headlen;
    rep->len = rawlen - headlen;
    if (cl) {
        char *end;
        if (apr_strtoff(&clen, cl, &end, 10) != APR_SUCCESS || *end
            || clen < 0) {
            return fail(rep, p, APR_SUCCESS, "bad Content-Length");
        }
        if ((apr_off_t)rep->len < clen) {
            return fail(rep, p, APR_SUCCESS, "the reply was cut short");
        }
        rep->len = (apr_size_t)clen;
    }
    if (rep->len > lim->max_body) {
        fail(rep, p, APR_SUCCESS, "the reply is too large");
        return APR_ENOSPC;
    }
    return APR_SUCCESS;
}
