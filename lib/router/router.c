#include "router/router.h"

#include "prices/prices.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *dupstr(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = malloc(n);
    if (p)
        memcpy(p, s, n);
    return p;
}

const char *llmux__strategy_name(lx_strategy s)
{
    static const char *const names[] = {"ordered", "weighted", "round_robin", "least_latency",
                                        "least_busy", "lowest_cost"};
    return (size_t)s < sizeof names / sizeof names[0] ? names[s] : "ordered";
}

static int unknown_model(const lx_config *cfg, const char *model, lx_err *err)
{
    /* name what is configured, so a typo is easy to spot */
    char known[200] = "";
    size_t used = 0;
    for (size_t i = 0; i < cfg->n_aliases && used + 1 < sizeof known; i++) {
        int n = snprintf(known + used, sizeof known - used, "%s%s", i ? ", " : "",
                         cfg->aliases[i].name);
        if (n < 0 || (size_t)n >= sizeof known - used) {
            snprintf(known + (sizeof known - 5), 5, "...");
            break;
        }
        used += (size_t)n;
    }
    err->http_status = 404;
    return llmux__err(err, LLMUX_ERR_UNKNOWN_MODEL,
                      "model \"%.100s\" is not a configured alias (configured: %s)%s", model,
                      known[0] ? known : "none",
                      cfg->allow_direct ? "; direct routes are written provider/model" : "");
}

static int flag_ok(int want, int have)
{
    return want < 0 || (want != 0) == (have != 0);
}

static int str_ok(const char *want, const char *have)
{
    return !want || (have && strcmp(want, have) == 0);
}

static int rule_matches(const lx_rule *r, const lx_route_input *in)
{
    if (!str_ok(r->task, in->task) || !str_ok(r->workflow, in->workflow) ||
        !str_ok(r->key, in->key_id) || !str_ok(r->team, in->team) ||
        !flag_ok(r->stream, in->stream))
        return 0;
    if (!r->needs_features)
        return 1;
    const lx_request_features *f = llmux__request_features(in->request);
    return flag_ok(r->has_tools, f->tools) && flag_ok(r->has_images, f->images) &&
           flag_ok(r->json_schema, f->json_schema) &&
           (r->min_prompt_tokens < 0 || f->est_prompt_tokens >= r->min_prompt_tokens) &&
           (r->max_prompt_tokens < 0 || f->est_prompt_tokens <= r->max_prompt_tokens);
}

/* Output tokens a call is expected to ask for when it does not say (cost estimates). */
#define DEFAULT_OUTPUT_ESTIMATE 500

/* 0 when the capability table says this target cannot serve the request (and
 * why); 1 when it can or the table does not know the model. */
static int capable(const lx_config *cfg, const lx_route_input *in, const lx_provider_cfg *p,
                   const char *model, char *why, size_t cap)
{
    const lx_price *pr = llmux__price_find(cfg->prices, p->name, p->type, model);
    if (!pr)
        return 1;
    const lx_request_features *f = llmux__request_features(in->request);
    const char *src = llmux__price_source(pr);
    if (f->tools && pr->caps && !(pr->caps & LX_CAP_TOOLS)) {
        snprintf(why, cap, "no tool calling (per %s)", src);
        return 0;
    }
    if (f->images && pr->caps && !(pr->caps & LX_CAP_VISION)) {
        snprintf(why, cap, "no image input (per %s)", src);
        return 0;
    }
    if (f->json_schema && pr->caps && !(pr->caps & LX_CAP_JSON_SCHEMA)) {
        snprintf(why, cap, "no json_schema output (per %s)", src);
        return 0;
    }
    int64_t out = f->max_output_tokens >= 0 ? f->max_output_tokens : 0;
    if (pr->context_window > 0 && f->est_prompt_tokens + out > pr->context_window) {
        snprintf(why, cap,
                 "about %lld prompt tokens + %lld output exceed its context window of %lld "
                 "(per %s)",
                 (long long)f->est_prompt_tokens, (long long)out, (long long)pr->context_window,
                 src);
        return 0;
    }
    if (pr->max_output > 0 && f->max_output_tokens > pr->max_output) {
        snprintf(why, cap, "asks for %lld output tokens, more than its maximum of %lld (per %s)",
                 (long long)f->max_output_tokens, (long long)pr->max_output, src);
        return 0;
    }
    return 1;
}

/* Add a target: a candidate, or a skip with the reason (health, capability). */
static int consider(lx_route *r, const lx_route_input *in, const lx_config *cfg,
                    const lx_provider_cfg *p, const char *model, long index, long weight,
                    const char *params, int check)
{
    char why[200];
    if ((check && !capable(cfg, in, p, model, why, sizeof why)) ||
        (index >= 0 && in->health &&
         !llmux__health_usable(in->health, (size_t)index, in->now_ms, why, sizeof why))) {
        if (!r->skipped && !(r->skipped = calloc(r->n_listed, sizeof *r->skipped)))
            return -1; /* made on the first skip: most calls skip nothing */
        lx_skip *s = &r->skipped[r->n_skipped];
        s->target.provider = p;
        s->target.model = model;
        s->target.index = index;
        s->target.weight = weight;
        s->target.params = params;
        s->target.probe = 0;
        if (!(s->reason = dupstr(why)))
            return -1;
        r->n_skipped++;
        return 0;
    }
    lx_candidate *c = &r->candidates[r->n_candidates++];
    c->provider = p;
    c->model = model;
    c->index = index;
    c->weight = weight;
    c->params = params;
    /* a target whose cooldown ended was handed to this call as its probe */
    c->probe = index >= 0 && in->health &&
               atomic_load(&in->health->t[index].cooldown_until) != 0;
    return 0;
}

static void move_to_front(lx_candidate *c, size_t k)
{
    lx_candidate pick = c[k];
    memmove(c + 1, c, k * sizeof *c);
    c[0] = pick;
}

/* A candidate's expected cost in femto-dollars, or INT64_MAX when its price is
 * unknown (an unpriced target is never the cheapest). */
static int64_t expected_cost(const lx_config *cfg, const lx_route_input *in, const lx_candidate *c)
{
    const lx_price *pr = llmux__price_find(cfg->prices, c->provider->name, c->provider->type,
                                           c->model);
    if (!pr || pr->input < 0 || pr->output < 0)
        return INT64_MAX;
    const lx_request_features *f = llmux__request_features(in->request);
    int64_t out = f->max_output_tokens >= 0 ? f->max_output_tokens : DEFAULT_OUTPUT_ESTIMATE;
    double cost = (double)f->est_prompt_tokens * (double)pr->input + (double)out * (double)pr->output;
    return cost < 9e18 ? (int64_t)cost : INT64_MAX - 1;
}

/* Order the candidates by the alias's strategy. Stable: ties keep config order. */
static void apply_strategy(const lx_config *cfg, const lx_route_input *in, const lx_alias *a,
                           lx_route *r, lx_health *h)
{
    lx_candidate *c = r->candidates;
    size_t n = r->n_candidates;
    if (n < 2)
        return;
    if (a->strategy == LX_STRATEGY_LOWEST_COST) {
        /* the cheapest expected cost first, the others in config order */
        size_t best = 0;
        int64_t best_cost = INT64_MAX;
        for (size_t i = 0; i < n; i++) {
            int64_t k = expected_cost(cfg, in, &c[i]);
            if (k < best_cost) {
                best = i;
                best_cost = k;
            }
        }
        move_to_front(c, best);
        return;
    }
    if (!h)
        return;
    switch (a->strategy) {
    case LX_STRATEGY_ORDERED:
    case LX_STRATEGY_LOWEST_COST:
        return;
    case LX_STRATEGY_WEIGHTED: {
        /* the first target drawn by weight; the others keep their order as fallbacks */
        uint64_t total = 0;
        for (size_t i = 0; i < n; i++)
            total += (uint64_t)c[i].weight;
        if (!total)
            return;
        uint64_t x = llmux__health_random(h, total);
        size_t k = 0;
        while (k + 1 < n && x >= (uint64_t)c[k].weight) {
            x -= (uint64_t)c[k].weight;
            k++;
        }
        move_to_front(c, k);
        return;
    }
    case LX_STRATEGY_ROUND_ROBIN: {
        size_t k = atomic_fetch_add_explicit(&h->rr[a->index], 1, memory_order_relaxed) % n;
        lx_candidate tmp[LX_ROUTE_INLINE];
        for (size_t i = 0; i < n; i++)
            tmp[i] = c[(k + i) % n];
        memcpy(c, tmp, n * sizeof *c);
        return;
    }
    case LX_STRATEGY_LEAST_LATENCY:
    case LX_STRATEGY_LEAST_BUSY: {
        /* the best target first, the others in config order as fallbacks: one pass.
         * A target never measured counts as fastest, so every target gets measured. */
        size_t best = 0;
        long long best_key = 0;
        for (size_t i = 0; i < n; i++) {
            const lx_target_health *th = &h->t[c[i].index];
            long long k = a->strategy == LX_STRATEGY_LEAST_BUSY
                              ? atomic_load_explicit(&th->in_flight, memory_order_relaxed)
                              : atomic_load_explicit(&th->ewma_us, memory_order_relaxed);
            if (i == 0 || k < best_key) {
                best = i;
                best_key = k;
            }
        }
        move_to_front(c, best);
        return;
    }
    }
}

int llmux__route(const lx_config *cfg, const lx_route_input *in, lx_route *out, lx_err *err)
{
    /* field by field: the inline candidate array needs no zeroing */
    out->kind = NULL;
    out->alias = NULL;
    out->rule = -1;
    out->strategy = "ordered";
    out->n_listed = out->n_candidates = out->n_skipped = 0;
    out->candidates = out->inline_candidates;
    out->skipped = NULL;
    out->direct_model = NULL;

    const lx_alias *a = NULL;
    if (cfg->model_wins || in->skip_rules)
        a = llmux__config_find_alias(cfg, in->model);
    for (size_t i = 0; !a && !in->skip_rules && i < cfg->n_rules; i++)
        if (rule_matches(&cfg->rules[i], in)) {
            a = cfg->rules[i].use;
            out->rule = (long)i;
        }
    if (!a)
        a = llmux__config_find_alias(cfg, in->model);
    const lx_provider_cfg *direct = NULL;
    const char *slash = strchr(in->model, '/');
    if (!a) {
        if (!cfg->allow_direct || !slash || !slash[1] ||
            !(direct = llmux__config_find_provider(cfg, in->model, (size_t)(slash - in->model))))
            return unknown_model(cfg, in->model, err);
    }
    size_t n = a ? a->n_targets : 1;
    out->kind = a ? "alias" : "direct";
    out->alias = a ? a->name : NULL;
    out->strategy = a ? llmux__strategy_name(a->strategy) : "ordered";
    out->n_listed = n;
    if (n > LX_ROUTE_INLINE && !(out->candidates = malloc(n * sizeof *out->candidates)))
        goto oom;
    /* cost-based choices never pick a model unfit for the request */
    int check = cfg->check_capabilities || (a && a->strategy == LX_STRATEGY_LOWEST_COST);
    if (a) {
        for (size_t i = 0; i < n; i++)
            if (consider(out, in, cfg, a->targets[i].provider, a->targets[i].model,
                         (long)a->targets[i].index, a->targets[i].weight,
                         a->targets[i].params, check))
                goto oom;
        apply_strategy(cfg, in, a, out, in->health);
    } else {
        if (!(out->direct_model = dupstr(slash + 1)) ||
            consider(out, in, cfg, direct, out->direct_model, -1, 1, NULL, cfg->check_capabilities))
            goto oom;
    }
    if (out->n_candidates == 0) {
        char why[300] = "";
        size_t used = 0;
        for (size_t i = 0; i < out->n_skipped && used + 1 < sizeof why; i++) {
            int k = snprintf(why + used, sizeof why - used, "%s%s/%s: %s", i ? "; " : "",
                             out->skipped[i].target.provider->name, out->skipped[i].target.model,
                             out->skipped[i].reason);
            if (k < 0)
                break;
            used += (size_t)k < sizeof why - used ? (size_t)k : sizeof why - used - 1;
        }
        err->http_status = 503;
        return llmux__err(err, LLMUX_ERR_UNSUPPORTED,
                          "no target of \"%.100s\" can be tried now (%s)",
                          a ? a->name : in->model, why);
    }
    return LLMUX_OK;
oom:
    return llmux__err(err, LLMUX_ERR_NO_MEMORY, "out of memory");
}

void llmux__route_release(lx_route *r, lx_health *h, size_t tried)
{
    if (!h)
        return;
    for (size_t i = tried; i < r->n_candidates; i++)
        if (r->candidates[i].probe)
            llmux__health_unprobe(h, (size_t)r->candidates[i].index);
}

void llmux__route_free(lx_route *r)
{
    if (!r)
        return;
    if (r->candidates != r->inline_candidates)
        free(r->candidates);
    for (size_t i = 0; i < r->n_skipped; i++)
        free(r->skipped[i].reason);
    free(r->skipped);
    free(r->direct_model);
    r->skipped = NULL;
    r->direct_model = NULL;
    r->n_skipped = r->n_candidates = 0;
    r->candidates = r->inline_candidates;
}
