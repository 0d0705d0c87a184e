/*
 * Looking at routing without calling anyone: the dry run (what the router
 * would decide for a request) and the health table.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/buf.h"
#include "gateway.h"
#include "ledger/ledger.h"
#include "request/validate.h"
#include "router/router.h"

static double mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int error_json(int status, const char *message, char **out)
{
    lx_buf b = LX_BUF_INIT;
    int bad = llmux__buf_puts(&b, "{\"error\":{\"message\":") ||
              llmux__buf_json_string(&b, message) || llmux__buf_puts(&b, ",\"code\":") ||
              llmux__buf_json_string(&b, llmux__status_class(status)) ||
              llmux__buf_printf(&b, ",\"llmux_status\":%d}}", status);
    if (bad) {
        llmux__buf_free(&b);
        return LLMUX_ERR_NO_MEMORY;
    }
    *out = llmux__buf_steal(&b);
    return status;
}

static int candidate_json(lx_buf *b, const lx_candidate *c, const char *reason)
{
    return llmux__buf_puts(b, "{\"provider\":") || llmux__buf_json_string(b, c->provider->name) ||
           llmux__buf_puts(b, ",\"model\":") || llmux__buf_json_string(b, c->model) ||
           (reason && (llmux__buf_puts(b, ",\"reason\":") || llmux__buf_json_string(b, reason))) ||
           llmux__buf_puts(b, "}");
}

int llmux_route_json(llmux *gw, const char *request_json, const llmux_call_options *opts,
                     char **out)
{
    if (!out)
        return LLMUX_ERR_INVALID_ARGUMENT;
    *out = NULL;
    if (!gw || !request_json)
        return error_json(LLMUX_ERR_INVALID_ARGUMENT, !gw ? "gw is NULL" : "request_json is NULL",
                          out);
    if (opts && (opts->version == 0 || opts->version > LLMUX_CALL_OPTIONS_VERSION))
        return error_json(LLMUX_ERR_INVALID_ARGUMENT,
                          "opts->version is not one this library knows", out);
    lx_err err = {0};
    lx_request req;
    req.has_features = 0;
    int rc = llmux__request_init(&req, request_json, strlen(request_json), &err);
    if (rc)
        return error_json(rc, err.msg, out);
    /* the key as a call would see it: a known key's id and team */
    char key_id[21];
    lx_pkey *pkey = NULL;
    lx_err auth_err;
    llmux__policy_auth(gw->policy, opts ? opts->key : NULL, &pkey, &auth_err);
    if (opts && opts->key && !pkey)
        llmux__key_fingerprint(opts->key, key_id);
    lx_route_input in = {req.model, &req, opts ? opts->task : NULL, opts ? opts->workflow : NULL,
                         pkey                  ? llmux__policy_key_id(pkey)
                         : opts && opts->key ? key_id
                                             : NULL,
                         0, mono_ms(), gw->health, 0, llmux__policy_key_team(pkey)};
    lx_route route;
    rc = llmux__route(gw->cfg, &in, &route, &err);
    if (rc) {
        llmux__route_free(&route);
        llmux__request_free(&req);
        return error_json(rc, err.msg, out);
    }
    llmux__route_release(&route, gw->health, 0); /* a dry run probes nothing */
    lx_buf b = LX_BUF_INIT;
    int bad = llmux__buf_puts(&b, "{\"model\":") || llmux__buf_json_string(&b, req.model) ||
              llmux__buf_puts(&b, ",\"route\":") || llmux__buf_json_string(&b, route.kind) ||
              llmux__buf_puts(&b, ",\"alias\":") ||
              (route.alias ? llmux__buf_json_string(&b, route.alias) : llmux__buf_puts(&b, "null")) ||
              (route.rule >= 0 ? llmux__buf_printf(&b, ",\"rule\":%ld", route.rule)
                               : llmux__buf_puts(&b, ",\"rule\":null")) ||
              llmux__buf_puts(&b, ",\"strategy\":") || llmux__buf_json_string(&b, route.strategy) ||
              llmux__buf_puts(&b, ",\"candidates\":[");
    for (size_t i = 0; !bad && i < route.n_candidates; i++)
        bad = (i && llmux__buf_puts(&b, ",")) || candidate_json(&b, &route.candidates[i], NULL);
    bad = bad || llmux__buf_puts(&b, "],\"skipped\":[");
    for (size_t i = 0; !bad && i < route.n_skipped; i++)
        bad = (i && llmux__buf_puts(&b, ",")) ||
              candidate_json(&b, &route.skipped[i].target, route.skipped[i].reason);
    bad = bad || llmux__buf_puts(&b, "]}");
    llmux__route_free(&route);
    llmux__request_free(&req);
    if (bad) {
        llmux__buf_free(&b);
        return LLMUX_ERR_NO_MEMORY;
    }
    *out = llmux__buf_steal(&b);
    return LLMUX_OK;
}

int llmux_health_json(llmux *gw, char **out)
{
    if (!out)
        return LLMUX_ERR_INVALID_ARGUMENT;
    *out = NULL;
    if (!gw)
        return LLMUX_ERR_INVALID_ARGUMENT;
    double now = mono_ms();
    lx_buf b = LX_BUF_INIT;
    int bad = llmux__buf_puts(&b, "[");
    int first = 1;
    for (size_t ai = 0; !bad && ai < gw->cfg->n_aliases; ai++) {
        const lx_alias *a = &gw->cfg->aliases[ai];
        for (size_t t = 0; !bad && t < a->n_targets; t++) {
            const lx_target_health *h = &gw->health->t[a->targets[t].index];
            long long until = atomic_load(&h->cooldown_until);
            long long ewma = atomic_load(&h->ewma_us);
            double left = until ? (double)until - now : 0;
            const char *state = !until ? "ok" : left > 0 ? "cooldown"
                                : atomic_load(&h->probing) ? "probing" : "half_open";
            bad = (!first && llmux__buf_puts(&b, ",")) ||
                  llmux__buf_puts(&b, "{\"alias\":") || llmux__buf_json_string(&b, a->name) ||
                  llmux__buf_puts(&b, ",\"provider\":") ||
                  llmux__buf_json_string(&b, a->targets[t].provider->name) ||
                  llmux__buf_puts(&b, ",\"model\":") ||
                  llmux__buf_json_string(&b, a->targets[t].model) ||
                  llmux__buf_puts(&b, ",\"state\":") || llmux__buf_json_string(&b, state) ||
                  llmux__buf_printf(&b,
                                    ",\"in_flight\":%d,\"failures\":%d,\"cooldown_ms_left\":%.0f,"
                                    "\"latency_ms\":",
                                    atomic_load(&h->in_flight), atomic_load(&h->failures),
                                    left > 0 ? left : 0.0) ||
                  (ewma ? llmux__buf_printf(&b, "%.3f}", (double)ewma / 1000.0)
                        : llmux__buf_puts(&b, "null}"));
            first = 0;
        }
    }
    if (bad || llmux__buf_puts(&b, "]")) {
        llmux__buf_free(&b);
        return LLMUX_ERR_NO_MEMORY;
    }
    *out = llmux__buf_steal(&b);
    return LLMUX_OK;
}
