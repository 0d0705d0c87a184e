#include "transport/transport.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Keep at most this much of a non-2xx answer's header block. */
#define MAX_ERROR_HEADERS (64 * 1024)
/* After a stream's end marker, how long the server may take to end the body
 * (the last chunk of a chunked answer) before llmux stops reading; a body
 * that ends in time keeps its connection for the next call. */
#define END_GRACE_MS 25
/* A Retry-After beyond a day is treated as a day. */
#define MAX_RETRY_AFTER_MS (24L * 3600 * 1000)

typedef struct session {
    CURLM *multi;             /* owns the connection cache of its easy handles */
    CURL *easy[LX_MAX_PARALLEL];
    size_t n_easy;
    pthread_t owner;          /* the thread that used it last */
    char errbuf[LX_MAX_PARALLEL][CURL_ERROR_SIZE];
} session;

struct lx_transport {
    pthread_mutex_t mu;
    session **idle;
    size_t n_idle;
    size_t max_idle;
    CURLSH *share;
    pthread_mutex_t share_mu[CURL_LOCK_DATA_LAST];
    int http2;
    int compression;
};

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_rc = CURLE_OK;

static void global_init(void)
{
    global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static void share_lock(CURL *h, curl_lock_data data, curl_lock_access access, void *user)
{
    lx_transport *t = user;
    pthread_mutex_lock(&t->share_mu[data]);
}

static void share_unlock(CURL *h, curl_lock_data data, void *user)
{
    lx_transport *t = user;
    pthread_mutex_unlock(&t->share_mu[data]);
}

int llmux__transport_new(lx_transport **out, const lx_transport_options *o, lx_err *err)
{
    *out = NULL;
    pthread_once(&global_once, global_init);
    if (global_rc != CURLE_OK)
        return llmux__err(err, LLMUX_ERR_INTERNAL, "libcurl initialisation failed: %s",
                          curl_easy_strerror(global_rc));
    lx_transport *t = calloc(1, sizeof *t);
    if (!t)
        return llmux__err(err, LLMUX_ERR_NO_MEMORY, "out of memory");
    pthread_mutex_init(&t->mu, NULL);
    for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
        pthread_mutex_init(&t->share_mu[i], NULL);
    t->max_idle = o->max_connections > 0 ? (size_t)o->max_connections : 1;
    t->http2 = o->http2;
    t->compression = o->compression;
    t->idle = calloc(t->max_idle, sizeof *t->idle);
    t->share = curl_share_init();
    if (!t->idle || !t->share) {
        llmux__transport_free(t);
        return llmux__err(err, LLMUX_ERR_NO_MEMORY, "out of memory");
    }
    if (curl_share_setopt(t->share, CURLSHOPT_LOCKFUNC, share_lock) != CURLSHE_OK ||
        curl_share_setopt(t->share, CURLSHOPT_UNLOCKFUNC, share_unlock) != CURLSHE_OK ||
        curl_share_setopt(t->share, CURLSHOPT_USERDATA, t) != CURLSHE_OK ||
        curl_share_setopt(t->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION) != CURLSHE_OK) {
        llmux__transport_free(t);
        return llmux__err(err, LLMUX_ERR_INTERNAL, "libcurl refused to share TLS sessions");
    }
    *out = t;
    return LLMUX_OK;
}

static void session_free(session *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n_easy; i++)
        curl_easy_cleanup(s->easy[i]);
    if (s->multi)
        curl_multi_cleanup(s->multi);
    free(s);
}

void llmux__transport_free(lx_transport *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->n_idle; i++)
        session_free(t->idle[i]);
    free(t->idle);
    if (t->share)
        curl_share_cleanup(t->share);
    for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
        pthread_mutex_destroy(&t->share_mu[i]);
    pthread_mutex_destroy(&t->mu);
    free(t);
}

/* The options every transfer of an easy handle shares. Each result is
 * checked: a libcurl that refused TLS verification or the protocol
 * restriction must not be used. 0, or -1. */
static int easy_setup(lx_transport *t, CURL *h, char *errbuf)
{
    int bad = 0;
    bad |= curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L) != CURLE_OK;
    bad |= curl_easy_setopt(h, CURLOPT_SHARE, t->share) != CURLE_OK;
    bad |= curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf) != CURLE_OK;
    bad |= curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L) != CURLE_OK;
    bad |= curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L) != CURLE_OK;
    bad |= curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L) != CURLE_OK;
#if LIBCURL_VERSION_NUM >= 0x075500
    bad |= curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https") != CURLE_OK;
#else
    bad |= curl_easy_setopt(h, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS)) !=
           CURLE_OK;
#endif
    if (bad)
        return -1;
    /* performance and politeness, not safety: a libcurl without them still works */
    if (curl_easy_setopt(h, CURLOPT_HTTP_VERSION,
                         t->http2 ? (long)CURL_HTTP_VERSION_2TLS : (long)CURL_HTTP_VERSION_1_1) !=
        CURLE_OK)
        curl_easy_setopt(h, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    curl_easy_setopt(h, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
    if (t->compression)
        curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, "");
    return 0;
}

/* Make sure s has n easy handles. 0, -1 out of memory, -2 libcurl refused an option. */
static int session_grow(lx_transport *t, session *s, size_t n)
{
    while (s->n_easy < n) {
        CURL *h = curl_easy_init();
        if (!h)
            return -1;
        if (easy_setup(t, h, s->errbuf[s->n_easy])) {
            curl_easy_cleanup(h);
            return -2;
        }
        s->easy[s->n_easy++] = h;
    }
    return 0;
}

/* A thread gets back the session it used last when it is idle: its
 * connections then stay with one thread (and one CPU's caches and wake-ups)
 * instead of migrating between threads on every call, which the benchmarks
 * measured at several microseconds a call. Otherwise the most recently
 * returned session, whose connections are the likeliest to be alive. */
static session *acquire(lx_transport *t)
{
    session *s = NULL;
    pthread_t self = pthread_self();
    pthread_mutex_lock(&t->mu);
    if (t->n_idle) {
        size_t i = t->n_idle;
        while (i-- > 0 && !pthread_equal(t->idle[i]->owner, self))
            ;
        if (i == (size_t)-1)
            i = t->n_idle - 1;
        s = t->idle[i];
        t->idle[i] = t->idle[--t->n_idle];
    }
    pthread_mutex_unlock(&t->mu);
    if (s) {
        s->owner = self;
        return s;
    }
    s = calloc(1, sizeof *s);
    if (!s || !(s->multi = curl_multi_init())) {
        free(s);
        return NULL;
    }
    s->owner = self;
    return s;
}

static void release(lx_transport *t, session *s)
{
    pthread_mutex_lock(&t->mu);
    if (t->n_idle < t->max_idle) {
        t->idle[t->n_idle++] = s;
        s = NULL;
    }
    pthread_mutex_unlock(&t->mu);
    session_free(s);
}

/* ---------------------------------------------------------------- one transfer */

typedef struct xfer {
    lx_exchange *x;
    CURL *h;
    char *errbuf;
    struct curl_slist nodes[LX_HTTP_MAX_HEADERS]; /* the request's headers, no copies */
    long hdr_status; /* from the last status line seen */
    int streaming;   /* decided at the first body byte: 2xx with on_body */
    int decided;
    int too_big;
    int active;      /* added to the multi handle and not yet ended */
    double ended_at; /* when on_body said the body is complete; 0 = not yet */
} xfer;

static double mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static size_t on_write(char *data, size_t size, size_t n, void *user)
{
    xfer *xf = user;
    lx_exchange *x = xf->x;
    size_t len = size * n;
    if (!xf->decided) {
        long code = 0;
        curl_easy_getinfo(xf->h, CURLINFO_RESPONSE_CODE, &code);
        xf->streaming = x->on_body && code >= 200 && code < 300;
        xf->decided = 1;
    }
    if (xf->streaming) {
        if (x->resp.finished_early)
            return len; /* past the end marker: not ours */
        int rc = x->on_body(x->ctx, data, len);
        if (rc == LX_BODY_DONE) {
            x->resp.finished_early = 1;
            xf->ended_at = mono_ms();
            return len;
        }
        if (rc) {
            x->resp.aborted = 1;
            return CURL_WRITEFUNC_ERROR;
        }
        return len;
    }
    int rc = llmux__buf_append(&x->resp.body, data, len);
    if (rc == -2)
        xf->too_big = 1;
    return rc ? CURL_WRITEFUNC_ERROR : len;
}

static int header_is(const char *line, size_t len, const char *name, size_t name_len)
{
    if (len <= name_len || line[name_len] != ':')
        return 0;
    for (size_t i = 0; i < name_len; i++) {
        char c = line[i];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c + 32);
        if (c != name[i])
            return 0;
    }
    return 1;
}

/* A Retry-After value: delay-seconds (or, for retry-after-ms, milliseconds;
 * fractions allowed) or an HTTP-date. Absurd values are clamped to a day;
 * anything unreadable is ignored. */
static void read_retry_after(lx_http_response *resp, const char *v, size_t vlen, int ms)
{
    char value[64];
    if (!vlen || vlen >= sizeof value)
        return;
    memcpy(value, v, vlen);
    value[vlen] = '\0';
    size_t digits = strspn(value, "0123456789.");
    if (digits == vlen && value[0] != '.') {
        double d = strtod(value, NULL) * (ms ? 1.0 : 1000.0);
        long val = d >= 0 && d < (double)MAX_RETRY_AFTER_MS ? (long)d : MAX_RETRY_AFTER_MS;
        if (ms || resp->retry_after_ms < 0)
            resp->retry_after_ms = val;
    } else if (!ms) {
        time_t when = curl_getdate(value, NULL);
        if (when > 0 && resp->retry_after_ms < 0) {
            double diff = difftime(when, time(NULL)) * 1000.0;
            resp->retry_after_ms = diff <= 0 ? 0
                                   : diff < (double)MAX_RETRY_AFTER_MS ? (long)diff
                                                                        : MAX_RETRY_AFTER_MS;
        }
    }
}

static size_t on_header(char *line, size_t size, size_t n, void *user)
{
    xfer *xf = user;
    lx_http_response *resp = &xf->x->resp;
    size_t len = size * n;
    if (len >= 12 && memcmp(line, "HTTP/", 5) == 0) {
        /* a new header block (after a 100 Continue, say): start over */
        const char *sp = memchr(line, ' ', len);
        xf->hdr_status = sp ? strtol(sp + 1, NULL, 10) : 0;
        llmux__buf_clear(&resp->headers);
        resp->retry_after_ms = -1;
        return len;
    }
    if (xf->hdr_status < 200 || xf->hdr_status > 299) {
        resp->headers.limit = MAX_ERROR_HEADERS;
        llmux__buf_append(&resp->headers, line, len); /* over the cap: kept short */
    }
    if (len < 12 || (line[0] != 'r' && line[0] != 'R'))
        return len;
    const char *v = NULL;
    int ms = 0;
    if (header_is(line, len, "retry-after-ms", 14)) {
        v = line + 15;
        ms = 1;
    } else if (header_is(line, len, "retry-after", 11)) {
        v = line + 12;
    }
    if (!v)
        return len;
    while (v < line + len && (*v == ' ' || *v == '\t'))
        v++;
    size_t vlen = (size_t)(line + len - v);
    while (vlen && (v[vlen - 1] == '\r' || v[vlen - 1] == '\n' || v[vlen - 1] == ' '))
        vlen--;
    read_retry_after(resp, v, vlen, ms);
    return len;
}

static int xfer_setup(xfer *xf, lx_exchange *x, CURL *h, char *errbuf)
{
    const lx_http_request *req = x->req;
    xf->x = x;
    xf->h = h;
    xf->errbuf = errbuf;
    xf->hdr_status = 0;
    xf->streaming = xf->decided = xf->too_big = xf->active = 0;
    xf->ended_at = 0;
    errbuf[0] = '\0';
    size_t nh = req->n_headers < LX_HTTP_MAX_HEADERS ? req->n_headers : LX_HTTP_MAX_HEADERS;
    for (size_t i = 0; i < nh; i++) {
        xf->nodes[i].data = (char *)req->headers[i].line; /* libcurl only reads the list */
        xf->nodes[i].next = i + 1 < nh ? &xf->nodes[i + 1] : NULL;
    }
    int bad = 0;
    bad |= curl_easy_setopt(h, CURLOPT_URL, req->url) != CURLE_OK;
    bad |= curl_easy_setopt(h, CURLOPT_HTTPHEADER, nh ? xf->nodes : NULL) != CURLE_OK;
    if (!req->method || strcmp(req->method, "POST") == 0) {
        bad |= curl_easy_setopt(h, CURLOPT_POST, 1L) != CURLE_OK;
        bad |= curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, NULL) != CURLE_OK;
        bad |= curl_easy_setopt(h, CURLOPT_POSTFIELDS, req->body ? req->body : "") != CURLE_OK;
        bad |= curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len) !=
               CURLE_OK;
    } else {
        bad |= curl_easy_setopt(h, CURLOPT_HTTPGET, 1L) != CURLE_OK;
        bad |= curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST,
                                strcmp(req->method, "GET") ? req->method : NULL) != CURLE_OK;
    }
    bad |= curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_write) != CURLE_OK;
    bad |= curl_easy_setopt(h, CURLOPT_WRITEDATA, xf) != CURLE_OK;
    bad |= curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header) != CURLE_OK;
    bad |= curl_easy_setopt(h, CURLOPT_HEADERDATA, xf) != CURLE_OK;
    bad |= curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, x->timeout_ms > 0 ? x->timeout_ms : 0L) !=
           CURLE_OK;
    bad |= curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
                            x->connect_timeout_ms > 0 ? x->connect_timeout_ms : 0L) != CURLE_OK;
    bad |= curl_easy_setopt(h, CURLOPT_PRIVATE, xf) != CURLE_OK;
    x->resp.body.limit = x->max_body;
    return bad ? -1 : 0;
}

/* nothing of this call may outlive it in the pooled handle */
static void xfer_reset(CURL *h)
{
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, NULL);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, NULL);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, NULL);
    curl_easy_setopt(h, CURLOPT_PRIVATE, NULL);
}

/* llmux's own words for a failed exchange; libcurl's go to x->detail. */
static void word_failure(xfer *xf, CURLcode rc)
{
    lx_exchange *x = xf->x;
    snprintf(x->detail, sizeof x->detail, "%s", xf->errbuf[0] ? xf->errbuf : curl_easy_strerror(rc));
    curl_off_t got = 0;
    curl_easy_getinfo(xf->h, CURLINFO_SIZE_DOWNLOAD_T, &got);
    long code = 0;
    curl_easy_getinfo(xf->h, CURLINFO_RESPONSE_CODE, &code);
    if (x->resp.aborted) {
        llmux__err(&x->err, LLMUX_ERR_CANCELLED, "the transfer was stopped");
        return;
    }
    if (xf->too_big) {
        llmux__err(&x->err, LLMUX_ERR_BAD_RESPONSE,
                   "the response body exceeds the limit of %zu bytes (transport.max_response_bytes)",
                   x->max_body);
        return;
    }
    switch (rc) {
    case CURLE_OPERATION_TIMEDOUT:
        if (!code)
            llmux__err(&x->err, LLMUX_ERR_TIMEOUT, "no answer from the provider within %ld ms",
                       x->timeout_ms);
        else
            llmux__err(&x->err, LLMUX_ERR_TIMEOUT,
                       "the provider's answer did not complete within %ld ms", x->timeout_ms);
        break;
    case CURLE_OUT_OF_MEMORY:
        llmux__err(&x->err, LLMUX_ERR_NO_MEMORY, "out of memory (libcurl)");
        break;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
        llmux__err(&x->err, LLMUX_ERR_CONNECT, "could not resolve the provider's host name");
        break;
    case CURLE_COULDNT_CONNECT:
        llmux__err(&x->err, LLMUX_ERR_CONNECT, "could not connect to the provider");
        break;
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CACERT_BADFILE:
        llmux__err(&x->err, LLMUX_ERR_CONNECT,
                   "the TLS handshake with the provider failed (certificate not verified?)");
        break;
    case CURLE_GOT_NOTHING:
        llmux__err(&x->err, LLMUX_ERR_CONNECT,
                   "the provider closed the connection without answering");
        break;
    default:
        if (code || got)
            llmux__err(&x->err, LLMUX_ERR_CONNECT,
                       "the connection broke before the provider's answer was complete "
                       "(after %lld body bytes)",
                       (long long)got);
        else
            llmux__err(&x->err, LLMUX_ERR_CONNECT, "the HTTP exchange with the provider failed");
        break;
    }
}

static void end_xfer(xfer *xf, CURLcode rc)
{
    lx_exchange *x = xf->x;
    long code = 0;
    curl_easy_getinfo(xf->h, CURLINFO_RESPONSE_CODE, &code);
    x->resp.status = code;
    xf->active = 0;
    if (rc == CURLE_OK || (rc == CURLE_WRITE_ERROR && x->resp.finished_early)) {
        x->status = LLMUX_OK;
        return;
    }
    word_failure(xf, rc);
    x->status = x->err.status;
}

static void wake(void *multi)
{
    curl_multi_wakeup(multi);
}

void llmux__exchange_init(lx_exchange *x, const lx_http_request *req)
{
    memset(x, 0, sizeof *x);
    x->req = req;
    x->resp.retry_after_ms = -1;
}

void llmux__exchange_free(lx_exchange *x)
{
    if (x)
        llmux__http_response_free(&x->resp);
}

int llmux__transport_run(lx_transport *t, lx_exchange *xs, size_t n, int first_wins,
                         llmux_cancel *cancel)
{
    if (n == 0 || n > LX_MAX_PARALLEL)
        return LLMUX_ERR_INVALID_ARGUMENT;
    for (size_t i = 0; i < n; i++) {
        xs[i].status = LLMUX_ERR_INTERNAL;
        xs[i].resp.status = 0;
        xs[i].resp.retry_after_ms = -1;
        xs[i].resp.aborted = xs[i].resp.finished_early = 0;
        xs[i].detail[0] = '\0';
    }
    session *s = acquire(t);
    int grow = s ? session_grow(t, s, n) : -1;
    if (grow) {
        for (size_t i = 0; i < n; i++)
            xs[i].status = grow == -1 ? llmux__err(&xs[i].err, LLMUX_ERR_NO_MEMORY,
                                                   "out of memory (curl handle)")
                                      : llmux__err(&xs[i].err, LLMUX_ERR_INTERNAL,
                                                   "libcurl refused a required option "
                                                   "(TLS verification or protocol limits)");
        if (s)
            release(t, s);
        return xs[0].status;
    }
    xfer xf[LX_MAX_PARALLEL];
    int pending[LX_MAX_PARALLEL]; /* set up, waiting for its start_after_ms */
    size_t active = 0, n_pending = 0;
    double started = mono_ms();
    for (size_t i = 0; i < n; i++) {
        xf[i].active = 0;
        pending[i] = 0;
        if (llmux__cancel_fired(cancel)) {
            xs[i].status = llmux__err(&xs[i].err, LLMUX_ERR_CANCELLED, "the call was cancelled");
            continue;
        }
        if (xfer_setup(&xf[i], &xs[i], s->easy[i], s->errbuf[i]) ||
            (xs[i].start_after_ms <= 0 && curl_multi_add_handle(s->multi, s->easy[i]) != CURLM_OK)) {
            xs[i].status = llmux__err(&xs[i].err, LLMUX_ERR_INTERNAL,
                                      "libcurl refused the request's options");
            continue;
        }
        if (xs[i].start_after_ms > 0) {
            pending[i] = 1;
            n_pending++;
            continue;
        }
        xf[i].active = 1;
        active++;
    }
    int watching = cancel && llmux__cancel_watch(cancel, wake, s->multi) == 0;
    int hurry = 0;
    while (active || n_pending) {
        /* start the hedges whose time has come */
        long until_next = -1;
        for (size_t i = 0; i < n; i++) {
            if (!pending[i])
                continue;
            double due = started + (double)xs[i].start_after_ms - mono_ms();
            if (due > 0) {
                if (until_next < 0 || (long)due + 1 < until_next)
                    until_next = (long)due + 1;
                continue;
            }
            pending[i] = 0;
            n_pending--;
            if (curl_multi_add_handle(s->multi, xf[i].h) != CURLM_OK) {
                xs[i].status = llmux__err(&xs[i].err, LLMUX_ERR_INTERNAL,
                                          "libcurl refused the request's options");
                continue;
            }
            xf[i].active = 1;
            active++;
        }
        int running = 0;
        if (curl_multi_perform(s->multi, &running) != CURLM_OK)
            break;
        CURLMsg *msg;
        int left;
        while ((msg = curl_multi_info_read(s->multi, &left))) {
            if (msg->msg != CURLMSG_DONE)
                continue;
            char *priv = NULL;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &priv);
            xfer *done = (xfer *)(void *)priv;
            if (!done || !done->active)
                continue;
            end_xfer(done, msg->data.result);
            curl_multi_remove_handle(s->multi, done->h);
            active--;
            long hs = done->x->resp.status;
            if (first_wins && (done->x->status != LLMUX_OK || hs >= 500 || hs == 429 || hs == 408))
                for (size_t i = 0; i < n; i++) /* it failed as another target may not: a waiting hedge goes now */
                    if (pending[i]) {
                        xs[i].start_after_ms = (long)(mono_ms() - started);
                        hurry = 1;
                    }
            if (first_wins && done->x->status == LLMUX_OK && done->x->resp.status >= 200 &&
                done->x->resp.status <= 299) {
                for (size_t i = 0; i < n; i++) {
                    if (xf[i].active) {
                        curl_multi_remove_handle(s->multi, xf[i].h);
                        xf[i].active = 0;
                        xs[i].status = llmux__err(&xs[i].err, LLMUX_ERR_CANCELLED,
                                                  "another attempt answered first");
                        active--;
                    } else if (pending[i]) {
                        pending[i] = 0;
                        n_pending--;
                        xs[i].status = llmux__err(&xs[i].err, LLMUX_ERR_CANCELLED,
                                                  "another attempt answered first (never sent)");
                    }
                }
            }
        }
        /* a stream that ended while its server keeps the body open: done */
        int wait = cancel && !watching ? 20 : 1000;
        for (size_t i = 0; i < n; i++) {
            if (!xf[i].active || !xf[i].ended_at)
                continue;
            if (mono_ms() - xf[i].ended_at >= END_GRACE_MS) {
                end_xfer(&xf[i], CURLE_OK);
                curl_multi_remove_handle(s->multi, xf[i].h);
                active--;
            } else {
                wait = END_GRACE_MS;
            }
        }
        if (!active && !n_pending)
            break;
        if (llmux__cancel_fired(cancel))
            break;
        if (hurry) { /* a hedge was brought forward: start it before waiting */
            hurry = 0;
            continue;
        }
        if (until_next >= 0 && until_next < wait)
            wait = (int)until_next;
        /* wake-ups come from the sockets, libcurl's own timers, or the cancel */
        if (curl_multi_poll(s->multi, NULL, 0, wait, NULL) != CURLM_OK)
            break;
    }
    for (size_t i = 0; i < n; i++) {
        if (pending[i]) { /* cancelled before its start */
            pending[i] = 0;
            xs[i].status = llmux__err(&xs[i].err, LLMUX_ERR_CANCELLED, "the call was cancelled");
        }
        if (xf[i].active) {
            curl_multi_remove_handle(s->multi, xf[i].h);
            xf[i].active = 0;
            xs[i].status = llmux__cancel_fired(cancel)
                               ? llmux__err(&xs[i].err, LLMUX_ERR_CANCELLED,
                                            "the call was cancelled")
                               : llmux__err(&xs[i].err, LLMUX_ERR_INTERNAL,
                                            "libcurl's multi interface failed");
        }
        xfer_reset(s->easy[i]);
    }
    if (watching)
        llmux__cancel_unwatch(cancel, wake, s->multi);
    /* a handle whose transfer broke may hold a broken connection: libcurl
     * closes those itself, so the session stays reusable */
    release(t, s);
    return n == 1 ? xs[0].status : LLMUX_OK;
}
