#include "engine/engine.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/assemble.h"
#include "engine/result.h"
#include "gateway.h"
#include "request/validate.h"
#include "router/router.h"

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* Replace every occurrence of secret in s (in place) with '*'. Adapters mask
 * the key in provider text before they cut it; this is the second line. */
static void redact(char *s, const char *secret)
{
    if (!s || !secret)
        return;
    size_t n = strlen(secret);
    if (n < 4)
        return;
    for (char *p = strstr(s, secret); p; p = strstr(p + n, secret))
        memset(p, '*', n);
}

/* --------------------------------------------------------------- streaming */

typedef struct stream_ctx {
    llmux_chunk_cb on_chunk;
    void *payload;
    const lx_provider_ops *ops;
    void *decoder;
    lx_assembler assembler;
    int forward_usage; /* the caller asked for stream_options.include_usage */
    int ended;         /* the decoder saw the stream's end marker */
    size_t delivered;  /* chunks handed to the caller */
    double first_at;   /* now_ms() when the first one was, 0 = none yet */
    int status;        /* first error inside the stream */
    lx_err err;
} stream_ctx;

static int on_stream_chunk(void *ctx, const char *json, size_t len, cJSON *chunk)
{
    stream_ctx *s = ctx;
    int rc = llmux__assembler_add(&s->assembler, chunk, &s->err);
    if (rc) {
        s->status = rc;
        return 1;
    }
    if (!s->forward_usage && llmux__chunk_is_usage_only(chunk))
        return 0;
    if (!s->delivered++)
        s->first_at = now_ms();
    if (s->on_chunk(json, len, s->payload)) {
        s->status = LLMUX_ERR_CANCELLED;
        llmux__err(&s->err, LLMUX_ERR_CANCELLED, "the chunk callback asked to stop");
        return 1;
    }
    return 0;
}

static int on_stream_body(void *ctx, const char *data, size_t len)
{
    stream_ctx *s = ctx;
    int rc = s->ops->stream_feed(s->decoder, data, len, on_stream_chunk, s, &s->err);
    if (rc == LX_STREAM_END) {
        s->ended = 1;
        return LX_BODY_DONE;
    }
    if (rc) {
        if (!s->status)
            s->status = rc;
        return LX_BODY_ABORT;
    }
    return 0;
}

static int wants_usage(const cJSON *req)
{
    if (!req)
        return 0;
    const cJSON *so = cJSON_GetObjectItemCaseSensitive(req, "stream_options");
    return cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(so, "include_usage"));
}

/* ------------------------------------------------------------------ attempts */

typedef struct call {
    llmux *gw;
    lx_config *cfg;
    llmux_result *res;
    lx_request request;
    double start, deadline; /* now_ms() values */
    llmux_chunk_cb on_chunk;
    void *payload;
    llmux_cancel *cancel;
    int forward_usage;
    size_t delivered;
    int deadline_hit; /* an attempt ran out of the call's own time */
    lx_call_info info;
    char key_id[21];
} call;

static char *dup_or_null(const char *s)
{
    return s && *s ? strdup(s) : NULL;
}

/* One attempt against one target. Returns the attempt's status; on success
 * the result holds the answer. */
static int attempt(call *c, const lx_candidate *t, lx_attempt *a)
{
    const lx_provider_cfg *p = t->provider;
    lx_err err = {0, 0, "", ""};
    lx_http_request hreq;
    lx_exchange x;
    stream_ctx *sc = NULL;
    int status;

    llmux__http_request_init(&hreq);
    llmux__exchange_init(&x, &hreq);
    if (llmux__cancel_fired(c->cancel)) {
        status = llmux__err(&err, LLMUX_ERR_CANCELLED, "the call was cancelled");
        goto done;
    }
    if (p->api_key_env && !p->api_key) {
        status = llmux__err(&err, LLMUX_ERR_AUTH,
                            "the environment variable %s (providers.%s.api_key_env) is not set",
                            p->api_key_env, p->name);
        goto done;
    }
    double left = c->deadline - now_ms();
    if (left < 1) {
        c->deadline_hit = 1;
        status = llmux__err(&err, LLMUX_ERR_TIMEOUT,
                            "the call's deadline passed before this target was tried");
        goto done;
    }
    long timeout = (long)left;
    int bounded_by_call = 1; /* a timeout now means the call's time is up */
    if (p->timeout_ms > 0 && p->timeout_ms < timeout) {
        timeout = p->timeout_ms;
        bounded_by_call = 0;
    }

    status = p->ops->build_request(p, t->model, &c->request, c->on_chunk != NULL, &hreq, &err);
    if (status)
        goto done;

    if (c->on_chunk) {
        sc = calloc(1, sizeof *sc);
        if (!sc || !(sc->decoder = p->ops->stream_new(p))) {
            status = llmux__err(&err, LLMUX_ERR_NO_MEMORY, "out of memory");
            goto done;
        }
        sc->on_chunk = c->on_chunk;
        sc->payload = c->payload;
        sc->ops = p->ops;
        sc->forward_usage = c->forward_usage;
        llmux__assembler_init(&sc->assembler, c->cfg->max_response_bytes);
    }
    x.timeout_ms = timeout;
    x.connect_timeout_ms = p->connect_timeout_ms;
    x.max_body = c->cfg->max_response_bytes;
    x.on_body = sc ? on_stream_body : NULL;
    x.ctx = sc;
    double w0 = now_ms();
    status = llmux__transport_run(c->gw->transport, &x, 1, 0, c->cancel);
    a->wait_ms = now_ms() - w0;
    if (status)
        err = x.err;
    a->http_status = (int)x.resp.status;
    a->retry_after_ms = x.resp.retry_after_ms;
    if (x.detail[0])
        a->detail = strdup(x.detail);
    if (status == LLMUX_ERR_TIMEOUT && bounded_by_call)
        c->deadline_hit = 1;
    if (sc) {
        c->delivered += sc->delivered;
        c->res->chunks += sc->delivered;
        if (sc->first_at > 0 && c->res->ttft_ms < 0)
            c->res->ttft_ms = sc->first_at - c->start;
        if (sc->status) { /* the decoder or the caller stopped the stream */
            c->res->usage = sc->assembler.u; /* what it saw is still accounted */
            status = sc->status;
            err = sc->err;
            goto done;
        }
    }
    if (status)
        goto done;
    if (x.resp.status < 200 || x.resp.status > 299) {
        status = p->ops->classify_error(p, &x.resp, &err);
        goto done;
    }
    if (sc) {
        status = sc->ended ? LLMUX_OK : p->ops->stream_finish(sc->decoder, &err);
        c->res->usage = sc->assembler.u; /* partial streams still account what they saw */
        if (status)
            goto done;
        char *json = llmux__assembler_finish(&sc->assembler);
        if (!json) {
            status = llmux__err(&err, LLMUX_ERR_NO_MEMORY, "out of memory");
            goto done;
        }
        c->res->json = json;
    } else {
        lx_usage u = LX_USAGE_UNKNOWN;
        status = p->ops->parse_response(p, &x.resp.body, &c->res->json, &u, &err);
        c->res->usage = u;
    }
done:
    a->status = status;
    if (status) {
        char msg[LLMUX_ERRMSG_MAX + 160];
        snprintf(msg, sizeof msg, "provider \"%s\" (model %s): %s", p->name, t->model, err.msg);
        redact(msg, p->api_key);
        a->error = strdup(msg);
        a->provider_code = dup_or_null(err.provider_code);
        redact(a->provider_code, p->api_key);
        if (!a->http_status)
            a->http_status = err.http_status;
    }
    if (sc) {
        p->ops->stream_free(sc->decoder);
        llmux__assembler_free(&sc->assembler);
        free(sc);
    }
    llmux__exchange_free(&x);
    llmux__http_request_free(&hreq);
    return status;
}

/*
 * Which attempt names a failed call. An error that stopped the call (a bad
 * request, a cancel) names it. When every target failed in a way that let the
 * call move on, the last throttled attempt names it if there was one (the
 * whole call can succeed later; its retry_after is the one to honour), else
 * the last attempt that was more than "cannot serve".
 */
static size_t telling_attempt(const llmux_result *res)
{
    size_t last = res->n_attempts - 1;
    int st = res->attempts[last].status;
    if (st != LX_CANNOT_SERVE && !llmux__status_falls_back(st))
        return last;
    for (size_t i = res->n_attempts; i-- > 0;)
        if (res->attempts[i].status == LLMUX_ERR_RATE_LIMIT)
            return i;
    for (size_t i = res->n_attempts; i-- > 0;)
        if (res->attempts[i].status != LX_CANNOT_SERVE)
            return i;
    return last;
}

static void notify_attempt(call *c, const lx_attempt *a)
{
    for (size_t i = 0; i < c->gw->n_observers; i++)
        if (c->gw->observers[i].on_attempt)
            c->gw->observers[i].on_attempt(c->gw->observers[i].state, &c->info, a);
}

static int finish_failure(call *c, int last)
{
    llmux_result *res = c->res;
    size_t k = telling_attempt(res);
    const lx_attempt *a = &res->attempts[k];
    int status = a->status == LX_CANNOT_SERVE ? LLMUX_ERR_UNSUPPORTED : a->status;
    res->error_attempt = k;
    res->provider = a->provider->name;
    res->model = a->model;
    char msg[LLMUX_ERRMSG_MAX + 256];
    if (res->n_attempts == 1)
        snprintf(msg, sizeof msg, "%s", a->error ? a->error : llmux_strerror(status));
    else if (a->status == LX_CANNOT_SERVE)
        snprintf(msg, sizeof msg, "no target of \"%.60s\" can serve this request; %s",
                 res->requested_model, a->error ? a->error : "");
    else
        snprintf(msg, sizeof msg, "all %zu attempts for \"%.60s\" failed; %s: %s",
                 res->n_attempts, res->requested_model,
                 k == res->n_attempts - 1 ? "last" : "the one that decides", a->error ? a->error : "");
    (void)last;
    return llmux__result_fail(res, status, a->http_status, msg);
}

static void copy_skips(llmux_result *res, const lx_route *route)
{
    if (!route->n_skipped || !(res->skipped = calloc(route->n_skipped, sizeof *res->skipped)))
        return;
    for (size_t i = 0; i < route->n_skipped; i++) {
        res->skipped[i].provider = route->skipped[i].target.provider;
        res->skipped[i].model = route->skipped[i].target.model;
        res->skipped[i].reason = strdup(route->skipped[i].reason);
        if (!res->skipped[i].reason)
            break;
        res->n_skipped++;
    }
}

static int run(call *c, const char *request_json, lx_route *route)
{
    llmux_result *res = c->res;
    lx_err err = {0, 0, "", ""};
    /* every call is accounted, also one refused below: reserve first */
    lx_charge expected = {c->info.key_id, res->workflow, res->task, NULL, NULL,
                          0, LX_USAGE_UNKNOWN, -1};
    int status = llmux__ledger_reserve(c->gw->ledger, &expected, c->info.reservation, &err);
    if (status)
        return llmux__result_fail(res, status, err.http_status, err.msg);
    status = llmux__request_init(&c->request, request_json, strlen(request_json), &err);
    if (status)
        return llmux__result_fail(res, status, err.http_status, err.msg);
    if (!(res->requested_model = strdup(c->request.model)))
        return llmux__result_fail(res, LLMUX_ERR_NO_MEMORY, 0, "out of memory");
    c->request.features.stream = c->on_chunk != NULL;
    if (c->on_chunk) {
        const cJSON *tree = llmux__request_tree(&c->request, &err);
        if (!tree)
            return llmux__result_fail(res, LLMUX_ERR_NO_MEMORY, 0, "out of memory");
        c->forward_usage = wants_usage(tree);
    }

    lx_route_input in = {res->requested_model, &c->request, res->task, res->workflow,
                         c->info.key_id, c->on_chunk != NULL, c->start, NULL};
    status = llmux__route(c->cfg, &in, route, &err);
    copy_skips(res, route);
    if (status)
        return llmux__result_fail(res, status, err.http_status, err.msg);
    res->route = route->kind;
    res->n_targets = route->n_listed;
    res->direct_model = route->direct_model; /* the result keeps the name its attempts borrow */
    route->direct_model = NULL;

    int last = LLMUX_OK;
    for (size_t i = 0; i < route->n_candidates; i++) {
        const lx_candidate *t = &route->candidates[i];
        lx_attempt *a = llmux__result_add_attempt(res);
        if (!a)
            return llmux__result_fail(res, LLMUX_ERR_NO_MEMORY, 0, "out of memory");
        a->provider = t->provider;
        a->model = t->model;
        double t0 = now_ms();
        last = attempt(c, t, a);
        a->latency_ms = now_ms() - t0;
        res->provider = t->provider->name;
        res->model = t->model;
        res->http_status = a->http_status;
        if (last == LLMUX_OK) {
            a->action = "answered";
            notify_attempt(c, a);
            break;
        }
        /* once the caller has seen chunks, another target would repeat them;
         * once the call's own time is up, no other target can answer */
        int more = i + 1 < route->n_candidates && llmux__status_falls_back(last) &&
                   c->delivered == 0 && !c->deadline_hit;
        a->action = more ? "fallback" : "stop";
        notify_attempt(c, a);
        if (!more)
            break;
    }
    if (last == LLMUX_OK)
        res->status = LLMUX_OK;
    else if (finish_failure(c, last) == LLMUX_ERR_NO_MEMORY && !res->json)
        return LLMUX_ERR_NO_MEMORY;
    return res->status;
}

int llmux__engine_call(llmux *gw, const char *request_json, const llmux_call_options *opts,
                       llmux_chunk_cb on_chunk, void *payload, llmux_result **out)
{
    if (!out)
        return LLMUX_ERR_INVALID_ARGUMENT;
    double t0 = now_ms();
    lx_config *cfg = gw ? gw->cfg : NULL;
    llmux_result *res = llmux__result_new(cfg);
    *out = res;
    if (!res)
        return LLMUX_ERR_NO_MEMORY;
    res->streamed = on_chunk != NULL;
    if (!gw)
        return llmux__result_fail(res, LLMUX_ERR_INVALID_ARGUMENT, 0, "gw is NULL");
    if (!request_json)
        return llmux__result_fail(res, LLMUX_ERR_INVALID_ARGUMENT, 400, "request_json is NULL");
    if (opts && (opts->version == 0 || opts->version > LLMUX_CALL_OPTIONS_VERSION))
        return llmux__result_fail(res, LLMUX_ERR_INVALID_ARGUMENT, 0,
                                  "opts->version is not one this library knows; initialise the "
                                  "options with llmux_call_options_init");
    if (opts && opts->timeout_ms < 0)
        return llmux__result_fail(res, LLMUX_ERR_INVALID_ARGUMENT, 0, "opts->timeout_ms is negative");
    if (opts && ((opts->workflow && !(res->workflow = strdup(opts->workflow))) ||
                 (opts->task && !(res->task = strdup(opts->task)))))
        return llmux__result_fail(res, LLMUX_ERR_NO_MEMORY, 0, "out of memory");

    long timeout = opts && opts->timeout_ms > 0 ? opts->timeout_ms : cfg->timeout_ms;
    /* fields one by one: the request's member array (1.5 KB) is filled by
     * validation, and zeroing it would cost every call */
    call c;
    lx_reservation reservation = {0};
    lx_route route;
    route.candidates = route.inline_candidates;
    route.n_skipped = 0;
    route.skipped = NULL;
    route.direct_model = NULL;
    c.gw = gw;
    c.cfg = cfg;
    c.res = res;
    c.start = t0;
    c.deadline = t0 + (double)timeout;
    c.on_chunk = on_chunk;
    c.payload = payload;
    c.cancel = opts && opts->version >= 2 ? opts->cancel : NULL;
    c.forward_usage = 0;
    c.delivered = 0;
    c.deadline_hit = 0;
    c.request.has_features = 0;
    c.request.tree = NULL; /* freed at the end even when the call stops before validation */
    c.info.res = res;
    c.info.key_id = NULL;
    c.info.reservation = &reservation;
    c.info.request_json = request_json;
    if (opts && opts->key) {
        llmux__key_fingerprint(opts->key, c.key_id);
        c.info.key_id = c.key_id;
    }
    int status = run(&c, request_json, &route);
    llmux__request_free(&c.request);
    llmux__route_free(&route);
    res->total_ms = now_ms() - t0;
    if (status == LLMUX_ERR_NO_MEMORY && !res->json) {
        lx_charge none = {c.info.key_id, NULL, NULL, NULL, NULL, 0, LX_USAGE_UNKNOWN, -1};
        lx_err err;
        llmux__ledger_settle(gw->ledger, &reservation, &none, &err);
        llmux_result_free(res);
        *out = NULL;
        return LLMUX_ERR_NO_MEMORY;
    }
    for (size_t i = 0; i < gw->n_observers; i++)
        if (gw->observers[i].on_call)
            gw->observers[i].on_call(gw->observers[i].state, &c.info);
    return res->status;
}

int llmux__engine_reject(llmux *gw, int status, const char *message, llmux_result **out)
{
    if (!out)
        return LLMUX_ERR_INVALID_ARGUMENT;
    *out = llmux__result_new(gw ? gw->cfg : NULL);
    if (!*out)
        return LLMUX_ERR_NO_MEMORY;
    return llmux__result_fail(*out, status, 0, message);
}
