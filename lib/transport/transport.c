#include "transport/transport.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct pooled {
    CURL *h;
    pthread_t owner; /* the thread that used it last */
    char errbuf[CURL_ERROR_SIZE];
} pooled;

struct lx_transport {
    pthread_mutex_t mu;
    pooled **idle;
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

int llmux__transport_new(lx_transport **out, const lx_config *cfg, lx_err *err)
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
    t->max_idle = (size_t)cfg->max_connections;
    t->http2 = cfg->http2;
    t->compression = cfg->compression;
    t->idle = calloc(t->max_idle, sizeof *t->idle);
    t->share = curl_share_init();
    if (!t->idle || !t->share) {
        llmux__transport_free(t);
        return llmux__err(err, LLMUX_ERR_NO_MEMORY, "out of memory");
    }
    curl_share_setopt(t->share, CURLSHOPT_LOCKFUNC, share_lock);
    curl_share_setopt(t->share, CURLSHOPT_UNLOCKFUNC, share_unlock);
    curl_share_setopt(t->share, CURLSHOPT_USERDATA, t);
    curl_share_setopt(t->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
    *out = t;
    return LLMUX_OK;
}

static void pooled_free(pooled *p)
{
    if (!p)
        return;
    curl_easy_cleanup(p->h);
    free(p);
}

void llmux__transport_free(lx_transport *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->n_idle; i++)
        pooled_free(t->idle[i]);
    free(t->idle);
    if (t->share)
        curl_share_cleanup(t->share);
    for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
        pthread_mutex_destroy(&t->share_mu[i]);
    pthread_mutex_destroy(&t->mu);
    free(t);
}

/* A thread gets back the handle it used last when it is idle: its
 * connections then stay with one thread (and one CPU's caches and wake-ups)
 * instead of migrating between threads on every call, which the benchmarks
 * measured at several microseconds a call. Otherwise the most recently
 * returned handle, whose connections are the likeliest to be alive. */
static pooled *acquire(lx_transport *t)
{
    pooled *p = NULL;
    pthread_t self = pthread_self();
    pthread_mutex_lock(&t->mu);
    if (t->n_idle) {
        size_t i = t->n_idle;
        while (i-- > 0 && !pthread_equal(t->idle[i]->owner, self))
            ;
        if (i == (size_t)-1)
            i = t->n_idle - 1;
        p = t->idle[i];
        t->idle[i] = t->idle[--t->n_idle];
    }
    pthread_mutex_unlock(&t->mu);
    if (p) {
        p->owner = self;
        return p;
    }
    p = calloc(1, sizeof *p);
    if (!p || !(p->h = curl_easy_init())) {
        free(p);
        return NULL;
    }
    p->owner = self;
    CURL *h = p->h;
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_SHARE, t->share);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, p->errbuf);
    curl_easy_setopt(h, CURLOPT_HTTP_VERSION,
                     t->http2 ? (long)CURL_HTTP_VERSION_2TLS : (long)CURL_HTTP_VERSION_1_1);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(h, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
    if (t->compression)
        curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, "");
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
#else
    curl_easy_setopt(h, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    curl_easy_setopt(h, CURLOPT_POST, 1L);
    return p;
}

static void release(lx_transport *t, pooled *p, int keep)
{
    if (keep) {
        pthread_mutex_lock(&t->mu);
        if (t->n_idle < t->max_idle) {
            t->idle[t->n_idle++] = p;
            p = NULL;
        }
        pthread_mutex_unlock(&t->mu);
    }
    pooled_free(p);
}

typedef struct xfer {
    CURL *h;
    lx_http_response *resp;
    lx_body_cb on_body;
    void *ctx;
    int streaming; /* decided at the first body byte: 2xx with on_body */
    int decided;
    int too_big;
} xfer;

static size_t on_write(char *data, size_t size, size_t n, void *user)
{
    xfer *x = user;
    size_t len = size * n;
    if (!x->decided) {
        long code = 0;
        curl_easy_getinfo(x->h, CURLINFO_RESPONSE_CODE, &code);
        x->streaming = x->on_body && code >= 200 && code < 300;
        x->decided = 1;
    }
    if (x->streaming) {
        if (x->on_body(x->ctx, data, len)) {
            x->resp->aborted = 1;
            return CURL_WRITEFUNC_ERROR;
        }
        return len;
    }
    int rc = llmux__buf_append(&x->resp->body, data, len);
    if (rc == -2)
        x->too_big = 1;
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

static size_t on_header(char *line, size_t size, size_t n, void *user)
{
    xfer *x = user;
    size_t len = size * n;
    if (len < 12 || (line[0] != 'r' && line[0] != 'R'))
        return len;
    char value[64];
    const char *v = NULL;
    size_t vlen = 0;
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
    vlen = (size_t)(line + len - v);
    while (vlen && (v[vlen - 1] == '\r' || v[vlen - 1] == '\n' || v[vlen - 1] == ' '))
        vlen--;
    if (!vlen || vlen >= sizeof value)
        return len;
    memcpy(value, v, vlen);
    value[vlen] = '\0';
    char *end;
    double d = strtod(value, &end);
    if (end != value && *end == '\0' && d >= 0) {
        long val = (long)(ms ? d : d * 1000.0);
        if (ms || x->resp->retry_after_ms < 0)
            x->resp->retry_after_ms = val;
    } else if (!ms) {
        time_t when = curl_getdate(value, NULL);
        if (when > 0 && x->resp->retry_after_ms < 0) {
            double diff = difftime(when, time(NULL));
            x->resp->retry_after_ms = diff > 0 ? (long)(diff * 1000) : 0;
        }
    }
    return len;
}

static int curl_status(CURLcode rc)
{
    switch (rc) {
    case CURLE_OPERATION_TIMEDOUT: return LLMUX_ERR_TIMEOUT;
    case CURLE_OUT_OF_MEMORY: return LLMUX_ERR_NO_MEMORY;
    default: return LLMUX_ERR_CONNECT;
    }
}

int llmux__transport_post(lx_transport *t, const lx_http_request *req, long timeout_ms,
                          long connect_timeout_ms, size_t max_body, lx_body_cb on_body,
                          void *ctx, lx_http_response *resp, lx_err *err)
{
    resp->status = 0;
    resp->retry_after_ms = -1;
    resp->aborted = 0;
    resp->body.limit = max_body;
    pooled *p = acquire(t);
    if (!p)
        return llmux__err(err, LLMUX_ERR_NO_MEMORY, "out of memory (curl handle)");
    CURL *h = p->h;
    xfer x = {h, resp, on_body, ctx, 0, 0, 0};
    p->errbuf[0] = '\0';
    curl_easy_setopt(h, CURLOPT_URL, req->url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, req->headers);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, req->body);
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &x);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &x);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout_ms > 0 ? timeout_ms : 0L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, connect_timeout_ms > 0 ? connect_timeout_ms : 0L);

    CURLcode rc = curl_easy_perform(h);
    long code = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
    resp->status = code;
    /* nothing of this call may outlive it in the pooled handle */
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, NULL);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, NULL);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, NULL);

    int status = LLMUX_OK;
    if (rc != CURLE_OK) {
        if (resp->aborted)
            status = llmux__err(err, LLMUX_ERR_CANCELLED, "the transfer was stopped");
        else if (x.too_big)
            status = llmux__err(err, LLMUX_ERR_BAD_RESPONSE,
                                "the response body exceeds the limit of %zu bytes", max_body);
        else
            status = llmux__err(err, curl_status(rc), "%s", p->errbuf[0] ? p->errbuf
                                                                        : curl_easy_strerror(rc));
    }
    /* a handle whose transfer broke may hold a broken connection: libcurl
     * closes those itself, so the handle stays reusable */
    release(t, p, 1);
    return status;
}

void llmux__http_response_free(lx_http_response *resp)
{
    if (resp)
        llmux__buf_free(&resp->body);
}
