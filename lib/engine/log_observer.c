#include "engine/log_observer.h"

#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>


#define MAX_LOGGED_ATTEMPTS 16

struct lx_log_observer {
    const lx_config *cfg;
    lx_log *log;
    lx_metrics *metrics;
    unsigned long long id_base; /* random per gateway: ids from two gateways differ */
    unsigned long long seq;     /* atomic */
};

lx_log_observer *llmux__log_observer_new(const lx_config *cfg, lx_log *log, lx_metrics *m)
{
    lx_log_observer *o = calloc(1, sizeof *o);
    if (!o)
        return NULL;
    o->cfg = cfg;
    o->log = log;
    o->metrics = m;
    if (RAND_bytes((unsigned char *)&o->id_base, sizeof o->id_base) != 1)
        o->id_base = (unsigned long long)time(NULL) * 2654435761u ^ (unsigned long long)(size_t)o;
    return o;
}

void llmux__log_observer_free(lx_log_observer *o)
{
    free(o);
}

/* The call's content policy: the log's, or a stricter one for its key or
 * its key's team. */
static int policy_for(const lx_config *cfg, const char *key_id, const char *team)
{
    int p = cfg->log.content;
    for (size_t i = 0; key_id && i < cfg->log.n_content_keys; i++)
        if (strcmp(cfg->log.content_keys[i], key_id) == 0 && cfg->log.content_key_policy[i] < p)
            p = cfg->log.content_key_policy[i];
    for (size_t i = 0; team && i < cfg->log.n_content_teams; i++)
        if (strcmp(cfg->log.content_teams[i], team) == 0 && cfg->log.content_team_policy[i] < p)
            p = cfg->log.content_team_policy[i];
    return p;
}

void llmux__log_call_fill(const lx_config *cfg, const lx_call_info *call, const char *call_id,
                          lx_log_attempt *atts, size_t n_atts, lx_log_call *rec)
{
    const llmux_result *res = call->res;
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    double waited = 0;
    size_t n = res->n_attempts < n_atts ? res->n_attempts : n_atts;
    for (size_t i = 0; i < res->n_attempts; i++)
        waited += res->attempts[i].wait_ms;
    for (size_t i = 0; i < n; i++) {
        const lx_attempt *a = &res->attempts[i];
        atts[i].provider = a->provider ? a->provider->name : NULL;
        atts[i].model = a->model;
        atts[i].status = a->status;
        atts[i].http_status = a->http_status;
        atts[i].latency_ms = a->latency_ms;
        atts[i].action = a->action;
        atts[i].error = a->error;
    }
    memset(rec, 0, sizeof *rec);
    rec->time_unix_ns = (int64_t)now.tv_sec * 1000000000 + now.tv_nsec -
                        (int64_t)(res->total_ms * 1e6);
    rec->call_id = call_id;
    rec->key_id = call->key_id;
    rec->team = NULL; /* gateway keys and teams come with issue 20 */
    rec->workflow = res->workflow;
    rec->task = res->task;
    rec->alias = res->requested_model;
    rec->route = res->route;
    rec->routed_alias = res->alias;
    rec->rule = res->rule;
    rec->strategy = res->strategy;
    rec->provider = res->provider;
    rec->model = res->model;
    rec->status = res->status;
    rec->http_status = res->http_status;
    rec->error = res->status ? res->error : NULL;
    rec->latency_ms = res->total_ms;
    rec->ttft_ms = res->ttft_ms;
    rec->overhead_ms = res->total_ms > waited ? res->total_ms - waited : 0;
    rec->usage = res->usage;
    rec->cost_nusd = res->cost_nusd;
    rec->streamed = res->streamed;
    rec->chunks = res->chunks;
    rec->attempts = atts;
    rec->n_attempts = n;
    rec->with_attempts = cfg->log.attempts;
    rec->content = policy_for(cfg, call->key_id, call->team);
    rec->request = call->request_json;
    rec->request_len = call->request_json ? strlen(call->request_json) : 0;
    rec->response = res->json;
    rec->response_len = res->json ? strlen(res->json) : 0;
}

static void on_call(void *state, const lx_call_info *call)
{
    lx_log_observer *o = state;
    lx_log_attempt atts[MAX_LOGGED_ATTEMPTS];
    lx_log_call rec;
    char id[33] = "";
    llmux__log_call_fill(o->cfg, call, id, atts, MAX_LOGGED_ATTEMPTS, &rec);
    llmux__metrics_observe(o->metrics, &rec); /* metrics need no call id */
    if (!o->log || !llmux__log_active(o->log))
        return;
    unsigned long long seq = __atomic_add_fetch(&o->seq, 1, __ATOMIC_RELAXED);
    snprintf(id, sizeof id, "%016llx%016llx", o->id_base, seq);
    llmux__log_submit(o->log, &rec); /* copied; the writer thread formats it */
}

lx_observer llmux__log_observer(lx_log_observer *o)
{
    lx_observer ob = {"log", o, NULL, on_call};
    return ob;
}
