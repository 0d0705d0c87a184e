#include "router/router.h"

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

/* Add a target: a candidate, or a skip with the health check's reason. */
static int consider(lx_route *r, const lx_route_input *in, const lx_provider_cfg *p,
                    const char *model, size_t cap)
{
    char why[160];
    if (in->health && !in->health->usable(in->health, p, model, in->now_ms, why, sizeof why)) {
        lx_skip *s = &r->skipped[r->n_skipped];
        s->target.provider = p;
        s->target.model = model;
        if (!(s->reason = dupstr(why)))
            return -1;
        r->n_skipped++;
        return 0;
    }
    if (r->n_candidates == cap)
        return -1;
    r->candidates[r->n_candidates].provider = p;
    r->candidates[r->n_candidates].model = model;
    r->n_candidates++;
    return 0;
}

int llmux__route(const lx_config *cfg, const lx_route_input *in, lx_route *out, lx_err *err)
{
    /* field by field: the inline candidate array needs no zeroing */
    out->kind = NULL;
    out->n_listed = out->n_candidates = out->n_skipped = 0;
    out->candidates = out->inline_candidates;
    out->skipped = NULL;
    out->direct_model = NULL;
    const lx_alias *a = llmux__config_find_alias(cfg, in->model);
    const lx_provider_cfg *direct = NULL;
    const char *slash = strchr(in->model, '/');
    if (!a) {
        if (!cfg->allow_direct || !slash || !slash[1] ||
            !(direct = llmux__config_find_provider(cfg, in->model, (size_t)(slash - in->model))))
            return unknown_model(cfg, in->model, err);
    }
    size_t n = a ? a->n_targets : 1;
    out->kind = a ? "alias" : "direct";
    out->n_listed = n;
    if (n > LX_ROUTE_INLINE && !(out->candidates = malloc(n * sizeof *out->candidates)))
        goto oom;
    if (in->health && !(out->skipped = calloc(n, sizeof *out->skipped)))
        goto oom;
    if (a) {
        for (size_t i = 0; i < n; i++)
            if (consider(out, in, a->targets[i].provider, a->targets[i].model, n))
                goto oom;
    } else {
        if (!(out->direct_model = dupstr(slash + 1)) ||
            consider(out, in, direct, out->direct_model, 1))
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
        return llmux__err(err, LLMUX_ERR_UNSUPPORTED, "no target of \"%.100s\" can be tried now (%s)",
                          in->model, why);
    }
    return LLMUX_OK;
oom:
    return llmux__err(err, LLMUX_ERR_NO_MEMORY, "out of memory");
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
