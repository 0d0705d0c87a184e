#include "engine/engine.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/assemble.h"
#include "engine/result.h"
#include "gateway.h"
#include "request/params.h"
#include "request/validate.h"
#include "router/router.h"
#include "wire/json_members.h"

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

/* ---------------------------------------------------------------------- cost */

static int64_t quarter_up(size_t bytes)
{
    return (int64_t)((bytes + 3) / 4);
}

/* The prompt's tokens, estimated: a quarter of the bytes of its messages and
 * tools as the caller wrote them (JSON included: an over-estimate). */
static int64_t estimate_prompt(const lx_request *r)
{
    lx_json_member m;
    size_t bytes = 0;
    if (llmux__request_member(r, "messages", &m))
        bytes += m.end - m.value;
    if (llmux__request_member(r, "tools", &m))
        bytes += m.end - m.value;
    return quarter_up(bytes ? bytes : r->raw_len);
}

/* The answer's tokens, estimated: a quarter of the text streamed so far. */
static int64_t estimate_completion(const lx_assembler *a)
{
    size_t bytes = 0;
    for (size_t i = 0; i < LLMUX_ASM_MAX_CHOICES; i++) {
        const lx_asm_choice *ch = &a->choices[i];
        if (!ch->used)
            continue;
        bytes += ch->content.len + ch->refusal.len;
        for (size_t t = 0; t < ch->n_tools; t++)
            bytes += ch->tools[t].args.len + (ch->tools[t].name ? strlen(ch->tools[t].name) : 0);
    }
    return quarter_up(bytes);
}

/* What a billed attempt cost: estimated tokens where the provider sent none. */
static void charge_attempt(const lx_request *req, lx_attempt *a, const lx_usage *u,
                           const lx_assembler *as)
{
    a->billed = 1;
    a->usage = *u;
    if (as && (a->usage.prompt_tokens < 0 || a->usage.completion_tokens < 0)) {
        a->estimated = 1;
        if (a->usage.prompt_tokens < 0)
            a->usage.prompt_tokens = estimate_prompt(req);
        if (a->usage.completion_tokens < 0)
            a->usage.completion_tokens = estimate_completion(as);
    }
    a->cost_nusd = a->price ? llmux__price_cost(a->price, &a->usage, &a->cost_flags) : -1;
}

/* The call's cost: the sum over its billed attempts, unknown when one of them
 * is; a call nothing was billed for costs 0. */
static void settle_cost(llmux_result *res)
{
    int64_t sum = 0;
    for (size_t i = 0; i < res->n_attempts; i++) {
        const lx_attempt *a = &res->attempts[i];
        if (!a->billed)
            continue;
        res->cost_estimated |= a->estimated;
        if (a->cost_nusd < 0 || sum < 0)
            sum = -1;
        else
            sum = llmux__sat_add(sum, a->cost_nusd);
    }
    res->cost_nusd = sum;
    res->cost_usd = sum < 0 ? -1.0 : (double)sum / 1e9;
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
    int oom;          /* an attempt record could not be allocated */
    lx_call_info info;
    char key_id[21];
    const char *plain_key;   /* the caller's gateway key (borrowed) */
    lx_admission admission;  /* what the policy holds for the call */
} call;

static char *dup_or_null(const char *s)
{
    return s && *s ? strdup(s) : NULL;
}

/* Everything an attempt needs before the exchange: the call still wanted,
 * the key, time left, and the provider's request. LLMUX_OK, or the attempt's
 * failure with err set. */
static int prepare(call *c, const lx_candidate *t, lx_attempt *a, lx_http_request *hreq,
                   lx_exchange *x, int *bounded_by_call, lx_err *err)
{
    const lx_provider_cfg *p = t->provider;
    llmux__http_request_init(hreq);
    llmux__exchange_init(x, hreq);
    if (llmux__cancel_fired(c->cancel))
        return llmux__err(err, LLMUX_ERR_CANCELLED, "the call was cancelled");
    a->price = llmux__price_find(c->cfg->prices, p->name, p->type, t->model);
    if (!a->price && c->cfg->require_prices)
        return llmux__err(err, LX_CANNOT_SERVE,
                          "no price is known for model \"%.80s\" at provider \"%s\", and "
                          "require_prices is set",
                          t->model, p->name);
    if (p->api_key_env && !p->api_key)
        return llmux__err(err, LLMUX_ERR_AUTH,
                          "the environment variable %s (providers.%s.api_key_env) is not set",
                          p->api_key_env, p->name);
    double left = c->deadline - now_ms();
    if (left < 1) {
        c->deadline_hit = 1;
        return llmux__err(err, LLMUX_ERR_TIMEOUT,
                          "the call's deadline passed before this target was tried");
    }
    long timeout = (long)left;
    *bounded_by_call = 1; /* a timeout now means the call's time is up */
    if (p->timeout_ms > 0 && p->timeout_ms < timeout) {
        timeout = p->timeout_ms;
        *bounded_by_call = 0;
    }
    x->timeout_ms = timeout;
    x->connect_timeout_ms = p->connect_timeout_ms;
    x->max_body = c->cfg->max_response_bytes;
    if (!t->params)
        return p->ops->build_request(p, t->model, &c->request, c->on_chunk != NULL, hreq, err);
    /* this target's own params: a request of its own, the caller's left as it was */
    lx_request merged;
    char *text = NULL;
    int rc = llmux__request_with_params(&c->request, t->params, &merged, &text, err);
    if (rc == LLMUX_OK) {
        merged.features.stream = c->request.features.stream;
        rc = p->ops->build_request(p, t->model, &merged, c->on_chunk != NULL, hreq, err);
        llmux__request_free(&merged);
        free(text);
    } else if (rc == LLMUX_ERR_BAD_REQUEST) {
        rc = llmux__err(err, LX_CANNOT_SERVE, "the target's params make the request invalid: %s",
                        err->msg);
    }
    return rc;
}

/* What the exchange says about the attempt, before its body is read. */
static void note_exchange(call *c, const lx_exchange *x, lx_attempt *a, int status,
                          int bounded_by_call)
{
    a->http_status = (int)x->resp.status;
    a->retry_after_ms = x->resp.retry_after_ms;
    if (x->detail[0])
        a->detail = strdup(x->detail);
    if (status == LLMUX_ERR_TIMEOUT && bounded_by_call)
        c->deadline_hit = 1;
}

/* The attempt's end: its status and, on failure, its words in the trace. */
static int settle_attempt(const lx_candidate *t, lx_attempt *a, int status, const lx_err *err)
{
    const lx_provider_cfg *p = t->provider;
    a->status = status;
    if (status && err->has_retry_after && a->retry_after_ms < 0)
        a->retry_after_ms = err->retry_after_ms; /* from the body, when no header said */
    if (status) {
        char msg[LLMUX_ERRMSG_MAX + 160];
        snprintf(msg, sizeof msg, "provider \"%s\" (model %s): %s", p->name, t->model, err->msg);
        redact(msg, p->api_key);
        a->error = strdup(msg);
        a->provider_code = dup_or_null(err->provider_code);
        redact(a->provider_code, p->api_key);
        if (!a->http_status)
            a->http_status = err->http_status;
    }
    return status;
}

/* Whether any "model" key in the text is followed by an empty string, spaces
 * allowed: a cheap filter before the exact parse below. */
static int maybe_empty_model(const char *s)
{
    while ((s = strstr(s, "\"model\"")) != NULL) {
        s += 7;
        while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r' || *s == ':')
            s++;
        if (s[0] == '"' && s[1] == '"')
            return 1;
    }
    return 0;
}

/* An answer whose top-level "model" is empty (an API that does not name the
 * model in its answer, like Bedrock's Converse) gets the target's model id:
 * the caller always learns which model answered. Out of memory leaves it. */
static void fill_model(char **json, const char *model)
{
    if (!maybe_empty_model(*json)) /* the common case, in one fast pass */
        return;
    lx_json_member m[64];
    size_t len = strlen(*json);
    int n = llmux__json_members(*json, len, m, 64);
    for (int i = 0; i < n; i++) {
        if (!llmux__json_key_is(&m[i], "model", 5))
            continue;
        if (m[i].end - m[i].value != 2 || memcmp(*json + m[i].value, "\"\"", 2) != 0)
            return; /* named already */
        lx_buf b = LX_BUF_INIT;
        if (llmux__buf_append(&b, *json, m[i].value) || llmux__buf_json_string(&b, model) ||
            llmux__buf_append(&b, *json + m[i].end, len - m[i].end)) {
            llmux__buf_free(&b);
            return;
        }
        free(*json);
        *json = llmux__buf_steal(&b);
        return;
    }
}

/* One attempt against one target. Returns the attempt's status; on success
 * the result holds the answer. */
static int attempt(call *c, const lx_candidate *t, lx_attempt *a)
{
    const lx_provider_cfg *p = t->provider;
    lx_err err = {0};
    lx_http_request hreq;
    lx_exchange x;
    stream_ctx *sc = NULL;
    int bounded_by_call = 0;
    int status = prepare(c, t, a, &hreq, &x, &bounded_by_call, &err);
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
        sc->assembler.model = strdup(t->model); /* a chunk that names the model replaces it */
    }
    x.on_body = sc ? on_stream_body : NULL;
    x.ctx = sc;
    double w0 = now_ms();
    status = llmux__transport_run(c->gw->transport, &x, 1, 0, c->cancel);
    a->wait_ms = now_ms() - w0;
    if (status)
        err = x.err;
    note_exchange(c, &x, a, status, bounded_by_call);
    if (sc) {
        c->delivered += sc->delivered;
        c->res->chunks += sc->delivered;
        /* a stream that sent usage or chunks is billed, however it ended; one
         * that failed before either (an error event, a cut) is not */
        if (sc->delivered || sc->assembler.u.prompt_tokens >= 0 ||
            sc->assembler.u.completion_tokens >= 0)
            charge_attempt(&c->request, a, &sc->assembler.u, &sc->assembler);
        /* what it saw is still accounted, however the stream ended */
        c->res->usage = a->billed ? a->usage : sc->assembler.u;
        if (sc->first_at > 0 && c->res->ttft_ms < 0)
            c->res->ttft_ms = sc->first_at - c->start;
        if (sc->status) { /* the decoder or the caller stopped the stream */
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
        if (status == LLMUX_OK && c->res->json)
            fill_model(&c->res->json, t->model);
        c->res->usage = u;
        if (status == LLMUX_OK)
            charge_attempt(&c->request, a, &u, NULL);
    }
done:
    settle_attempt(t, a, status, &err);
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
 * A hedged pair (plain calls): t[0] at once, t[1] if t[0] has not answered
 * after hedge_ms; the first 2xx answer wins and ends the other. Each is an
 * attempt in the trace. Returns the index of the answer (0 or 1), or -1 when
 * neither answered; st[] holds each attempt's status.
 */
static int attempt_hedged(call *c, const lx_candidate *t, lx_attempt *a[2], long hedge_ms,
                          int st[2])
{
    lx_err err[2] = {{0}, {0}};
    lx_http_request hreq[2];
    lx_exchange x[2];
    int bounded[2] = {0, 0};
    int winner = -1;
    for (int k = 0; k < 2; k++)
        st[k] = prepare(c, &t[k], a[k], &hreq[k], &x[k], &bounded[k], &err[k]);
    x[1].start_after_ms = hedge_ms;
    if (!st[0] && !st[1]) {
        llmux__transport_run(c->gw->transport, x, 2, 1, c->cancel);
    } else if (!st[0] || !st[1]) { /* one could not even be sent: the other alone */
        int k = st[0] ? 1 : 0;
        x[k].start_after_ms = 0;
        llmux__transport_run(c->gw->transport, &x[k], 1, 0, c->cancel);
    }
    for (int k = 0; k < 2; k++) {
        if (st[k])
            continue; /* prepare failed: err[k] says why */
        st[k] = x[k].status;
        if (st[k])
            err[k] = x[k].err;
        note_exchange(c, &x[k], a[k], st[k], bounded[k]);
        const lx_provider_cfg *p = t[k].provider;
        if (!st[k] && (x[k].resp.status < 200 || x[k].resp.status > 299))
            st[k] = p->ops->classify_error(p, &x[k].resp, &err[k]);
        else if (!st[k] && winner < 0) {
            lx_usage u = LX_USAGE_UNKNOWN;
            st[k] = p->ops->parse_response(p, &x[k].resp.body, &c->res->json, &u, &err[k]);
            if (!st[k] && c->res->json)
                fill_model(&c->res->json, t[k].model);
            c->res->usage = u;
            if (!st[k]) {
                winner = k;
                charge_attempt(&c->request, a[k], &u, NULL);
            }
        }
    }
    for (int k = 0; k < 2; k++) {
        /* the loser was sent and ended: the provider may bill its prompt; charge an
         * estimate of it (marked estimated) rather than nothing */
        if (winner >= 0 && k != winner && x[k].status == LLMUX_ERR_CANCELLED &&
            !strstr(x[k].err.msg, "never sent")) {
            lx_usage u = LX_USAGE_UNKNOWN;
            u.completion_tokens = 0;
            a[k]->estimated = 1;
            u.prompt_tokens = estimate_prompt(&c->request);
            charge_attempt(&c->request, a[k], &u, NULL);
            a[k]->estimated = 1;
        }
    }
    for (int k = 0; k < 2; k++) {
        settle_attempt(&t[k], a[k], st[k], &err[k]);
        llmux__exchange_free(&x[k]);
        llmux__http_request_free(&hreq[k]);
    }
    return winner;
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

/* Wait ms before retrying, in small steps, so a cancel or the deadline ends
 * the wait at once. 0 when the wait ran to its end. */
static int backoff_wait(call *c, long ms)
{
    double until = now_ms() + (double)ms;
    for (;;) {
        if (llmux__cancel_fired(c->cancel))
            return -1;
        double left = until - now_ms();
        if (left <= 0)
            return 0;
        long step = left < 5 ? (long)left + 1 : 5;
        struct timespec ts = {0, step * 1000000L};
        nanosleep(&ts, NULL);
    }
}

/* How long to wait before retrying after attempt a (failed with status, the
 * retry-th retry); -1 when the same target is not to be tried again. */
static long retry_delay(const call *c, const lx_attempt *a, int status, long retry)
{
    const lx_retry *rt = &c->cfg->retry;
    if (retry >= rt->max_retries || status >= 0 || status < -31 ||
        !(rt->on & (1u << -status)) || c->delivered || c->deadline_hit)
        return -1;
    long wait;
    if (a->retry_after_ms >= 0) {
        if (a->retry_after_ms > rt->retry_after_cap_ms)
            return -1; /* longer than we wait: another target, or the caller, later */
        wait = a->retry_after_ms;
    } else {
        long cap = rt->backoff_ms;
        for (long k = 0; k < retry && cap < rt->max_backoff_ms; k++)
            cap *= 2;
        if (cap > rt->max_backoff_ms)
            cap = rt->max_backoff_ms;
        /* full jitter: spread retries of many calls over the whole window */
        wait = c->gw->health ? (long)llmux__health_random(c->gw->health, (uint64_t)cap + 1) : cap;
    }
    if ((double)wait >= c->deadline - now_ms())
        return -1; /* the call's own time would run out waiting */
    return wait;
}

/* Try a route's candidates in order, retrying one as routing.retry says.
 * The status of the last attempt. */
static int try_route(call *c, lx_route *route)
{
    llmux_result *res = c->res;
    int last = LLMUX_OK;
    size_t tried = 0;
    long retry = 0;
    const lx_alias *al = route->alias ? llmux__config_find_alias(c->cfg, route->alias) : NULL;
    long hedge = al && !c->on_chunk ? al->hedge_after_ms : 0;
    for (size_t i = 0; i < route->n_candidates;) {
        const lx_candidate *t = &route->candidates[i];
        if (hedge > 0 && retry == 0 && i + 1 < route->n_candidates) {
            size_t k0 = res->n_attempts;
            if (!llmux__result_add_attempt(res) || !llmux__result_add_attempt(res)) {
                c->oom = 1;
                last = LLMUX_ERR_NO_MEMORY;
                break;
            }
            lx_attempt *pair[2] = {&res->attempts[k0], &res->attempts[k0 + 1]};
            int st[2];
            for (int k = 0; k < 2; k++) {
                pair[k]->provider = t[k].provider;
                pair[k]->model = t[k].model;
                if (t[k].index >= 0)
                    llmux__health_begin(c->gw->health, (size_t)t[k].index);
            }
            double t0 = now_ms();
            int won = attempt_hedged(c, t, pair, hedge, st);
            double took = now_ms() - t0;
            tried = i + 2;
            for (int k = 0; k < 2; k++) {
                pair[k]->latency_ms = took; /* the pair ran together: wall time of both */
                if (t[k].index >= 0)
                    llmux__health_end(c->gw->health, (size_t)t[k].index, st[k],
                                      pair[k]->latency_ms, pair[k]->retry_after_ms, now_ms());
            }
            if (won >= 0) {
                pair[won]->action = "answered";
                /* the other: ended or never sent because of the answer, or failed first */
                pair[1 - won]->action = st[1 - won] == LLMUX_ERR_CANCELLED ? "hedged" : "fallback";
                res->provider = t[won].provider->name;
                res->model = t[won].model;
                res->http_status = pair[won]->http_status;
                notify_attempt(c, pair[0]);
                notify_attempt(c, pair[1]);
                last = LLMUX_OK;
                break;
            }
            last = st[1] != LLMUX_ERR_CANCELLED ? st[1] : st[0];
            res->provider = t[1].provider->name;
            res->model = t[1].model;
            res->http_status = pair[1]->http_status;
            int more = i + 2 < route->n_candidates && llmux__status_falls_back(st[0]) &&
                       llmux__status_falls_back(st[1]) && !c->deadline_hit;
            pair[0]->action = llmux__status_falls_back(st[0]) ? "fallback" : "stop";
            pair[1]->action = more ? "fallback" : "stop";
            notify_attempt(c, pair[0]);
            notify_attempt(c, pair[1]);
            if (!more)
                break;
            i += 2;
            continue;
        }
        lx_attempt *a = llmux__result_add_attempt(res);
        if (!a) {
            c->oom = 1;
            last = LLMUX_ERR_NO_MEMORY;
            break;
        }
        a->provider = t->provider;
        a->model = t->model;
        double t0 = now_ms();
        if (t->index >= 0)
            llmux__health_begin(c->gw->health, (size_t)t->index);
        last = attempt(c, t, a);
        a->latency_ms = now_ms() - t0;
        if (t->index >= 0)
            llmux__health_end(c->gw->health, (size_t)t->index, last, a->latency_ms,
                              a->retry_after_ms, now_ms());
        tried = i + 1;
        res->provider = t->provider->name;
        res->model = t->model;
        res->http_status = a->http_status;
        if (last == LLMUX_OK) {
            a->action = "answered";
            notify_attempt(c, a);
            break;
        }
        long wait = retry_delay(c, a, last, retry);
        if (wait >= 0) {
            a->action = "retry";
            a->backoff_ms = wait;
            notify_attempt(c, a);
            if (backoff_wait(c, wait)) {
                last = LLMUX_ERR_CANCELLED;
                lx_attempt *b = llmux__result_add_attempt(res);
                if (b) { /* the cancel, in the trace where it happened */
                    b->provider = t->provider;
                    b->model = t->model;
                    b->status = LLMUX_ERR_CANCELLED;
                    b->error = strdup("the call was cancelled while waiting to retry");
                    b->action = "stop";
                }
                break;
            }
            retry++;
            continue; /* the same target again */
        }
        /* once the caller has seen chunks, another target would repeat them;
         * once the call's own time is up, no other target can answer */
        int more = i + 1 < route->n_candidates && llmux__status_falls_back(last) &&
                   c->delivered == 0 && !c->deadline_hit;
        a->action = more ? "fallback" : "stop";
        notify_attempt(c, a);
        if (!more)
            break;
        i++;
        retry = 0;
    }
    llmux__route_release(route, c->gw->health, tried);
    return last;
}

/* What the call may cost at most: the prompt at one token per byte of its
 * messages plus the output it may ask for, at the dearest candidate's price
 * (every fallback is covered). docs/keys-and-budgets.md. */
static void demand(call *c, const lx_route *route, lx_demand *d)
{
    const lx_request_features *f = llmux__request_features(&c->request);
    d->alias = route->alias;
    d->est_tokens = f->est_prompt_tokens;
    d->max_cost_nusd = 0;
    d->unpriced = NULL;
    for (size_t i = 0; i < route->n_candidates; i++) {
        const lx_candidate *t = &route->candidates[i];
        const lx_price *p =
            llmux__price_find(c->cfg->prices, t->provider->name, t->provider->type, t->model);
        if (!p) {
            d->max_cost_nusd = -1;
            d->unpriced = t->model;
            return;
        }
        int64_t out = f->max_output_tokens >= 0 ? f->max_output_tokens
                      : p->max_output > 0       ? p->max_output
                      : p->context_window > 0   ? p->context_window
                                                : 32768;
        lx_usage u = {f->est_prompt_tokens * 4, out, 0, 0, -1, 0, -1, 0};
        unsigned flags;
        int64_t cost = llmux__price_cost(p, &u, &flags);
        if (cost > d->max_cost_nusd)
            d->max_cost_nusd = cost;
    }
}

static int run(call *c, const char *request_json, lx_route *route)
{
    llmux_result *res = c->res;
    lx_err err = {0};
    /* the gateway key first: a known key's id is the ledger's key */
    lx_err auth_err = {0};
    lx_pkey *key = NULL;
    int auth = llmux__policy_auth(c->gw->policy, c->plain_key, &key, &auth_err);
    if (key) {
        c->info.key_id = llmux__policy_key_id(key);
        c->info.team = llmux__policy_key_team(key);
    } else if (c->plain_key && auth) {
        c->info.key_id = "(unknown key)"; /* one row, however many are tried */
    } else if (c->plain_key) {
        llmux__key_fingerprint(c->plain_key, c->key_id);
        c->info.key_id = c->key_id;
    }
    if ((c->info.key_id && !(res->key_id = strdup(c->info.key_id))) ||
        (c->info.team && !(res->team = strdup(c->info.team))))
        return llmux__result_fail(res, LLMUX_ERR_NO_MEMORY, 0, "out of memory");
    /* every call is accounted, also one refused below: reserve first */
    lx_charge expected = {c->info.key_id, res->workflow, res->task, NULL, NULL,
                          0, LX_USAGE_UNKNOWN, -1, 0, c->info.team, NULL};
    int status = llmux__ledger_reserve(c->gw->ledger, &expected, c->info.reservation, &err);
    if (status)
        return llmux__result_fail(res, status, err.http_status, err.msg);
    if (auth)
        return llmux__result_fail(res, auth, 401, auth_err.msg);
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
                         c->info.key_id, c->on_chunk != NULL, c->start, c->gw->health, 0,
                         c->info.team};
    status = llmux__route(c->cfg, &in, route, &err);
    copy_skips(res, route);
    res->rule = route->rule;
    res->strategy = route->strategy;
    res->alias = route->alias;
    if (status)
        return llmux__result_fail(res, status, err.http_status, err.msg);
    res->route = route->kind;
    res->n_targets = route->n_listed;
    res->direct_model = route->direct_model; /* the result keeps the name its attempts borrow */
    route->direct_model = NULL;
    /* the key's aliases, rate limits and budgets, before any provider */
    if (key || !llmux__policy_idle(c->gw->policy)) {
        lx_demand d;
        demand(c, route, &d);
        status = llmux__policy_admit(c->gw->policy, key, &d, &c->admission, &res->retry_after_ms,
                                     &err);
        if (status)
            return llmux__result_fail(res, status, status == LLMUX_ERR_RATE_LIMIT ? 429 : 403,
                                      err.msg);
    }

    int last = try_route(c, route);
    if (c->oom)
        return llmux__result_fail(res, LLMUX_ERR_NO_MEMORY, 0, "out of memory");
    /* a stop another alias is configured to take: once, no loops */
    const lx_alias *from = llmux__config_find_alias(c->cfg, route->alias ? route->alias : "");
    const lx_alias *to = !from ? NULL
                         : last == LLMUX_ERR_CONTEXT_WINDOW ? from->on_context_window
                         : last == LLMUX_ERR_CONTENT_FILTER ? from->on_content_filter
                                                             : NULL;
    if (to && c->delivered == 0 && !c->deadline_hit && !llmux__cancel_fired(c->cancel)) {
        lx_route second;
        lx_route_input in2 = in;
        in2.model = to->name;
        in2.skip_rules = 1;
        res->alias_fallback = to->name;
        res->attempts[res->n_attempts - 1].action = "alias_fallback";
        status = llmux__route(c->cfg, &in2, &second, &err);
        if (status == LLMUX_OK && (key || !llmux__policy_idle(c->gw->policy))) {
            lx_demand d;
            demand(c, &second, &d); /* the new alias, re-reserved at its prices */
            status = llmux__policy_extend(c->gw->policy, key, &d, &c->admission, &err);
        }
        if (status == LLMUX_OK) {
            res->n_targets += second.n_listed;
            last = try_route(c, &second);
        }
        if (c->oom) {
            llmux__route_free(&second);
            return llmux__result_fail(res, LLMUX_ERR_NO_MEMORY, 0, "out of memory");
        }
        llmux__route_free(&second);
        if (status)
            return llmux__result_fail(res, status, err.http_status, err.msg);
    }
    settle_cost(res);
    if (last == LLMUX_OK)
        res->status = LLMUX_OK;
    else if (finish_failure(c, last) == LLMUX_ERR_NO_MEMORY && !res->json)
        return LLMUX_ERR_NO_MEMORY;
    return res->status;
}

/* The call's cost for its budgets: -1 when a billed attempt has no known cost
 * (the budget then keeps what it held). */
static int64_t spent(const llmux_result *res)
{
    if (res->cost_nusd >= 0)
        return res->cost_nusd;
    for (size_t i = 0; i < res->n_attempts; i++)
        if (res->attempts[i].billed)
            return -1;
    return 0;
}

static int64_t used_tokens(const llmux_result *res)
{
    int64_t n = 0;
    for (size_t i = 0; i < res->n_attempts; i++) {
        const lx_attempt *a = &res->attempts[i];
        if (a->billed && a->usage.prompt_tokens > 0)
            n += a->usage.prompt_tokens;
        if (a->billed && a->usage.completion_tokens > 0)
            n += a->usage.completion_tokens;
    }
    return n;
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
    c.oom = 0;
    c.request.has_features = 0;
    c.request.tree = NULL; /* freed at the end even when the call stops before validation */
    c.info.res = res;
    c.info.key_id = NULL;
    c.info.team = NULL;
    c.info.reservation = &reservation;
    c.info.request_json = request_json;
    c.plain_key = opts ? opts->key : NULL;
    c.admission.active = 0;
    int status = run(&c, request_json, &route);
    llmux__request_free(&c.request);
    llmux__route_free(&route);
    res->total_ms = now_ms() - t0;
    if (c.admission.active)
        llmux__policy_settle(gw->policy, &c.admission, spent(res), used_tokens(res));
    if (status == LLMUX_ERR_NO_MEMORY && !res->json) {
        lx_charge none = {c.info.key_id, NULL, NULL, NULL, NULL, 0, LX_USAGE_UNKNOWN, -1, 0,
                          c.info.team, NULL};
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
