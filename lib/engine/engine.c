#include "engine/engine.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/result.h"
#include "engine/assemble.h"
#include "engine/request.h"
#include "gateway.h"
#include "router/router.h"

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* Replace every occurrence of secret in s (in place) with '*'. Provider error
 * bodies sometimes echo the key they were sent. */
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
    size_t delivered;  /* chunks handed to the caller */
    int status;        /* first error inside the stream */
    int done;          /* the decoder saw the stream's end: stopping is success */
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
    s->delivered++;
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
    if (rc == LX_STREAM_DONE) {
        s->done = 1; /* stop the transfer: a server may keep it open after [DONE] */
        return 1;
    }
    if (rc) {
        if (!s->status)
            s->status = rc;
        return 1;
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
    double deadline; /* now_ms() value */
    llmux_chunk_cb on_chunk;
    void *payload;
    int forward_usage;
    size_t delivered;
    int deadline_hit; /* an attempt ran out of the call's own time */
} call;

/* One attempt against one target. Returns the attempt's status; on success
 * the result holds the answer. */
static int attempt(call *c, const lx_target *t, lx_attempt *a)
{
    const lx_provider_cfg *p = t->provider;
    lx_err err = {0, 0, ""};
    lx_http_request hreq = {0};
    lx_http_response hresp = {0};
    stream_ctx *sc = NULL;
    int status;

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
        if (!sc || !(sc->decoder = p->ops->stream_new(p, c->cfg))) {
            status = llmux__err(&err, LLMUX_ERR_NO_MEMORY, "out of memory");
            goto done;
        }
        sc->on_chunk = c->on_chunk;
        sc->payload = c->payload;
        sc->ops = p->ops;
        sc->forward_usage = c->forward_usage;
        llmux__assembler_init(&sc->assembler, c->cfg->max_response_bytes);
    }
    status = llmux__transport_post(c->gw->transport, &hreq, timeout, p->connect_timeout_ms,
                                   c->cfg->max_response_bytes, sc ? on_stream_body : NULL, sc,
                                   &hresp, &err);
    a->http_status = (int)hresp.status;
    a->retry_after_ms = hresp.retry_after_ms;
    if (status == LLMUX_ERR_TIMEOUT && bounded_by_call)
        c->deadline_hit = 1;
    if (sc) {
        c->delivered += sc->delivered;
        c->res->chunks += sc->delivered;
        if (sc->status) { /* the decoder or the caller stopped the stream */
            status = sc->status;
            err = sc->err;
            goto done;
        }
        if (sc->done && status == LLMUX_ERR_CANCELLED)
            status = LLMUX_OK; /* stopped at the stream's end, not by a failure */
    }
    if (status)
        goto done;
    if (hresp.status < 200 || hresp.status > 299) {
        status = p->ops->classify_error(p, hresp.status, hresp.body.data, hresp.body.len, &err);
        goto done;
    }
    if (sc) {
        status = p->ops->stream_finish(sc->decoder, &err);
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
        status = p->ops->parse_response(p, &hresp.body, &c->res->json, &u, &err);
        if (status)
            goto done;
        c->res->usage = u;
    }
done:
    a->status = status;
    if (status) {
        char msg[LLMUX_ERRMSG_MAX + 160];
        snprintf(msg, sizeof msg, "provider \"%s\" (model %s): %s", p->name, t->model, err.msg);
        redact(msg, p->api_key);
        a->error = strdup(msg);
        if (!a->http_status)
            a->http_status = err.http_status;
    }
    if (sc) {
        p->ops->stream_free(sc->decoder);
        llmux__assembler_free(&sc->assembler);
        free(sc);
    }
    llmux__http_request_free(&hreq);
    llmux__http_response_free(&hresp);
    return status;
}

static int run(call *c, const char *request_json)
{
    llmux_result *res = c->res;
    lx_err err = {0, 0, ""};
    int status = llmux__request_init(&c->request, request_json, strlen(request_json), &err);
    if (status)
        return llmux__result_fail(res, status, err.http_status, err.msg);
    if (!(res->requested_model = strdup(c->request.model)))
        return llmux__result_fail(res, LLMUX_ERR_NO_MEMORY, 0, "out of memory");
    if (c->on_chunk) {
        const cJSON *tree = llmux__request_tree(&c->request, &err);
        if (!tree)
            return llmux__result_fail(res, LLMUX_ERR_NO_MEMORY, 0, "out of memory");
        c->forward_usage = wants_usage(tree);
    }

    lx_route route;
    status = llmux__route(c->cfg, res->requested_model, &route, &err);
    if (status)
        return llmux__result_fail(res, status, err.http_status, err.msg);
    res->route = route.kind;
    res->n_targets = route.n_targets;

    int last = LLMUX_OK;
    for (size_t i = 0; i < route.n_targets; i++) {
        const lx_target *t = &route.targets[i];
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
            break;
        }
        /* once the caller has seen chunks, another target would repeat them;
         * once the call's own time is up, no other target can answer */
        int more = i + 1 < route.n_targets && llmux__status_falls_back(last) &&
                   c->delivered == 0 && !c->deadline_hit;
        a->action = more ? "fallback" : "stop";
        if (!more)
            break;
    }
    if (last == LLMUX_OK) {
        res->status = LLMUX_OK;
    } else {
        const lx_attempt *a = &res->attempts[res->n_attempts - 1];
        char msg[LLMUX_ERRMSG_MAX + 256];
        if (res->n_attempts > 1)
            snprintf(msg, sizeof msg, "all %zu attempts for \"%.60s\" failed; last: %s",
                     res->n_attempts, res->requested_model, a->error ? a->error : "");
        else
            snprintf(msg, sizeof msg, "%s", a->error ? a->error : llmux_strerror(last));
        if (llmux__result_fail(res, last, a->http_status, msg) == LLMUX_ERR_NO_MEMORY)
            return LLMUX_ERR_NO_MEMORY;
    }
    if (route.kind[0] == 'd') {
        /* the direct model name points into requested_model: keep it in the result */
        res->direct_model = strdup(route.direct.model);
        for (size_t i = 0; i < res->n_attempts; i++)
            res->attempts[i].model = res->direct_model ? res->direct_model : "";
        res->model = res->direct_model ? res->direct_model : "";
    }
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
    c.gw = gw;
    c.cfg = cfg;
    c.res = res;
    c.deadline = t0 + (double)timeout;
    c.on_chunk = on_chunk;
    c.payload = payload;
    c.forward_usage = 0;
    c.delivered = 0;
    c.deadline_hit = 0;
    int status = run(&c, request_json);
    llmux__request_free(&c.request);
    res->total_ms = now_ms() - t0;
    if (status == LLMUX_ERR_NO_MEMORY && !res->json) {
        llmux_result_free(res);
        *out = NULL;
        return LLMUX_ERR_NO_MEMORY;
    }
    lx_ledger_entry e = {
        opts ? opts->key : NULL, res->workflow, res->task,
        res->status == LLMUX_OK ? res->model : NULL,
        res->status == LLMUX_OK ? res->provider : NULL,
        res->status == LLMUX_OK, res->usage.prompt_tokens, res->usage.completion_tokens,
        res->cost_usd,
    };
    llmux__ledger_record(gw->ledger, &e);
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
