/* The public entry points: open, close, call, spend, the call log and metrics. */
#include "llmux.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "core/buf.h"
#include "core/error.h"
#include "engine/engine.h"
#include "engine/ledger_observer.h"
#include "gateway.h"

#define MAX_CONFIG_BYTES (16L * 1024 * 1024)
#define METRICS_MAX_SERIES 10000

const char *llmux_version(void)
{
    return LLMUX_VERSION_STRING;
}

static void copy_err(char *errbuf, size_t errlen, const char *msg)
{
    if (errbuf && errlen) {
        snprintf(errbuf, errlen, "%s", msg);
    }
}

/* Budgets keep counting across restarts: the journal's spend in their
 * current periods, counted in at open. */
static int seed_budget(void *policy, const lx_jrec *r)
{
    llmux__policy_seed(policy, r->key, r->team, r->t_ms, r->cost_nusd);
    return 0;
}

typedef struct seed_key_ctx {
    lx_policy *policy;
    const char *id;
} seed_key_ctx;

static int seed_key_budget(void *ctx, const lx_jrec *r)
{
    const seed_key_ctx *k = ctx;
    if (r->key && strcmp(r->key, k->id) == 0)
        llmux__policy_seed_key(k->policy, k->id, r->t_ms, r->cost_nusd);
    return 0;
}

int llmux_open(llmux **out, const char *config_json, char *errbuf, size_t errlen)
{
    lx_err err = {0};
    copy_err(errbuf, errlen, "");
    if (!out) {
        copy_err(errbuf, errlen, "out is NULL");
        return LLMUX_ERR_INVALID_ARGUMENT;
    }
    *out = NULL;
    if (!config_json) {
        copy_err(errbuf, errlen, "config_json is NULL");
        return LLMUX_ERR_INVALID_ARGUMENT;
    }
    llmux *gw = calloc(1, sizeof *gw);
    if (!gw) {
        copy_err(errbuf, errlen, "out of memory");
        return LLMUX_ERR_NO_MEMORY;
    }
    int rc = llmux__config_parse(&gw->cfg, config_json, strlen(config_json), &err);
    if (!rc)
    {
        lx_transport_options o = {gw->cfg->max_connections, gw->cfg->http2, gw->cfg->compression};
        rc = llmux__transport_new(&gw->transport, &o, &err);
    }
    if (!rc && gw->cfg->ledger_journal) {
        lx_journal_options jo = {gw->cfg->ledger_journal, gw->cfg->ledger_fsync,
                                 gw->cfg->ledger_fsync_interval_ms, gw->cfg->ledger_compact_bytes,
                                 gw->cfg->ledger_max_rows};
        rc = llmux__ledger_open_journal(&gw->ledger, &jo, &err);
    } else if (!rc && llmux__ledger_new(&gw->ledger, gw->cfg->ledger_max_rows)) {
        rc = llmux__err(&err, LLMUX_ERR_NO_MEMORY, "out of memory");
    }
    if (!rc)
        rc = llmux__policy_new(&gw->policy, gw->cfg, &err);
    if (!rc && gw->ledger->journal && llmux__policy_budgeted(gw->policy))
        rc = llmux__journal_each(gw->ledger->journal, seed_budget, gw->policy, &err);
    if (!rc && llmux__health_new(&gw->health, gw->cfg->n_targets_total, gw->cfg->n_aliases))
        rc = llmux__err(&err, LLMUX_ERR_NO_MEMORY, "out of memory");
    if (!rc) {
        gw->health->trip_after = (int)gw->cfg->cooldown_after;
        gw->health->cooldown_ms = gw->cfg->cooldown_ms;
        gw->health->max_cooldown_ms = gw->cfg->cooldown_max_ms;
    }
    if (!rc)
        gw->observers[gw->n_observers++] = llmux__ledger_observer(gw->ledger);
    if (!rc) {
        const lx_log_cfg *lc = &gw->cfg->log;
        lx_log_options lo = {lc->file, lc->max_bytes, lc->max_age_s, lc->retain_s,
                             lc->retain_bytes, lc->otlp_url, lc->otlp_batch, lc->otlp_timeout_ms,
                             lc->otlp_interval_ms, lc->queue};
        rc = llmux__log_new(&gw->log, &lo, &err);
    }
    if (!rc && (llmux__metrics_new(&gw->metrics, METRICS_MAX_SERIES) ||
                !(gw->log_observer = llmux__log_observer_new(gw->cfg, gw->log, gw->metrics))))
        rc = llmux__err(&err, LLMUX_ERR_NO_MEMORY, "out of memory");
    if (!rc)
        gw->observers[gw->n_observers++] = llmux__log_observer(gw->log_observer);
    if (rc) {
        copy_err(errbuf, errlen, err.msg);
        llmux_close(gw);
        return rc;
    }
    *out = gw;
    return LLMUX_OK;
}

int llmux_open_file(llmux **out, const char *path, char *errbuf, size_t errlen)
{
    char msg[LLMUX_ERRMSG_MAX];
    copy_err(errbuf, errlen, "");
    if (!out || !path) {
        copy_err(errbuf, errlen, !out ? "out is NULL" : "path is NULL");
        return LLMUX_ERR_INVALID_ARGUMENT;
    }
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(msg, sizeof msg, "%.300s: %s", path, strerror(errno));
        copy_err(errbuf, errlen, msg);
        return LLMUX_ERR_IO;
    }
    char *data = NULL;
    size_t len = 0, cap = 0;
    int rc = LLMUX_OK;
    for (;;) {
        if (cap - len < 4096) {
            cap = cap ? cap * 2 : 16384;
            char *p = realloc(data, cap + 1);
            if (!p) {
                rc = LLMUX_ERR_NO_MEMORY;
                copy_err(errbuf, errlen, "out of memory");
                break;
            }
            data = p;
        }
        size_t n = fread(data + len, 1, cap - len, f);
        len += n;
        if (len > (size_t)MAX_CONFIG_BYTES) {
            snprintf(msg, sizeof msg, "%.300s: larger than 16 MiB, not a config", path);
            copy_err(errbuf, errlen, msg);
            rc = LLMUX_ERR_CONFIG;
            break;
        }
        if (n == 0) {
            if (ferror(f)) {
                snprintf(msg, sizeof msg, "%.300s: read error", path);
                copy_err(errbuf, errlen, msg);
                rc = LLMUX_ERR_IO;
            }
            break;
        }
    }
    fclose(f);
    if (rc == LLMUX_OK) {
        data[len] = '\0';
        if (memchr(data, '\0', len)) {
            snprintf(msg, sizeof msg, "%.300s: contains NUL bytes, not a JSON config", path);
            copy_err(errbuf, errlen, msg);
            rc = LLMUX_ERR_CONFIG;
        } else {
            rc = llmux_open(out, data, errbuf, errlen);
            if (rc && errbuf && errlen) {
                snprintf(msg, sizeof msg, "%.200s: %s", path, errbuf);
                copy_err(errbuf, errlen, msg);
            }
        }
    }
    free(data);
    return rc;
}

void llmux_close(llmux *gw)
{
    if (!gw)
        return;
    llmux__log_free(gw->log); /* writes what is queued first */
    llmux__log_observer_free(gw->log_observer);
    llmux__metrics_free(gw->metrics);
    llmux__transport_free(gw->transport);
    llmux__ledger_free(gw->ledger);
    llmux__policy_free(gw->policy);
    llmux__health_free(gw->health);
    llmux__config_unref(gw->cfg);
    free(gw);
}

int llmux_call_options_init(llmux_call_options *opts, unsigned int version)
{
    if (!opts || version == 0 || version > LLMUX_CALL_OPTIONS_VERSION)
        return LLMUX_ERR_INVALID_ARGUMENT;
    memset(opts, 0, sizeof *opts);
    opts->version = version;
    return LLMUX_OK;
}

/* The engine's call, counted in the in-flight gauge while it runs. */
static int counted_call(llmux *gw, const char *request_json, const llmux_call_options *opts,
                        llmux_chunk_cb on_chunk, void *payload, llmux_result **out)
{
    if (gw)
        llmux__metrics_in_flight(gw->metrics, 1);
    int rc = llmux__engine_call(gw, request_json, opts, on_chunk, payload, out);
    if (gw)
        llmux__metrics_in_flight(gw->metrics, -1);
    return rc;
}

int llmux_chat(llmux *gw, const char *request_json, const llmux_call_options *opts,
               llmux_result **out)
{
    return counted_call(gw, request_json, opts, NULL, NULL, out);
}

int llmux_chat_stream(llmux *gw, const char *request_json, const llmux_call_options *opts,
                      llmux_chunk_cb on_chunk, void *payload, llmux_result **out)
{
    if (!on_chunk)
        return llmux__engine_reject(gw, LLMUX_ERR_INVALID_ARGUMENT, "on_chunk is NULL", out);
    return counted_call(gw, request_json, opts, on_chunk, payload, out);
}

int llmux_spend_json(llmux *gw, const char *group_by, char **out)
{
    if (!out)
        return LLMUX_ERR_INVALID_ARGUMENT;
    *out = NULL;
    if (!gw)
        return LLMUX_ERR_INVALID_ARGUMENT;
    lx_err err = {0};
    return llmux__ledger_report(gw->ledger, group_by, out, &err);
}

int llmux_set_log_callback(llmux *gw, llmux_log_cb cb, void *user)
{
    if (!gw)
        return LLMUX_ERR_INVALID_ARGUMENT;
    return llmux__log_set_callback(gw->log, cb, user);
}

int llmux_log_flush(llmux *gw, long timeout_ms)
{
    if (!gw || timeout_ms < 0)
        return LLMUX_ERR_INVALID_ARGUMENT;
    return llmux__log_flush(gw->log, timeout_ms);
}

int llmux_metrics_text(llmux *gw, char **out)
{
    if (!out)
        return LLMUX_ERR_INVALID_ARGUMENT;
    *out = NULL;
    if (!gw)
        return LLMUX_ERR_INVALID_ARGUMENT;
    lx_log_stats st;
    llmux__log_stats(gw->log, &st);
    lx_buf b = LX_BUF_INIT;
    if (llmux__metrics_text(gw->metrics, &st, &b)) {
        llmux__buf_free(&b);
        return LLMUX_ERR_NO_MEMORY;
    }
    *out = llmux__buf_steal(&b);
    return *out ? LLMUX_OK : LLMUX_ERR_NO_MEMORY;
}

/* since/until as ms, LX_JREC_NONE for NULL; -1 when one is malformed. */
static int period(const char *since, const char *until, int64_t *from, int64_t *to)
{
    *from = since ? llmux__utc_parse(since) : LX_JREC_NONE;
    *to = until ? llmux__utc_parse(until) : LX_JREC_NONE;
    return (since && *from == -1) || (until && *to == -1) ? -1 : 0;
}

int llmux_spend_period_json(llmux *gw, const char *group_by, const char *since,
                            const char *until, char **out)
{
    if (!out)
        return LLMUX_ERR_INVALID_ARGUMENT;
    *out = NULL;
    int64_t from, to;
    if (!gw || period(since, until, &from, &to))
        return LLMUX_ERR_INVALID_ARGUMENT;
    if (!since && !until)
        return llmux_spend_json(gw, group_by, out);
    if (!gw->ledger->journal)
        return LLMUX_ERR_UNSUPPORTED;
    lx_err err = {0};
    return llmux__journal_report(gw->ledger->journal, group_by, from, to, out, &err);
}

int llmux_ledger_export(llmux *gw, const char *format, const char *since, const char *until,
                        char **out)
{
    if (!out)
        return LLMUX_ERR_INVALID_ARGUMENT;
    *out = NULL;
    int64_t from, to;
    if (!gw || period(since, until, &from, &to))
        return LLMUX_ERR_INVALID_ARGUMENT;
    if (!gw->ledger->journal)
        return LLMUX_ERR_UNSUPPORTED;
    lx_err err = {0};
    return llmux__journal_export(gw->ledger->journal, format, from, to, out, &err);
}

int llmux_ledger_compact(llmux *gw)
{
    if (!gw)
        return LLMUX_ERR_INVALID_ARGUMENT;
    if (!gw->ledger->journal)
        return LLMUX_ERR_UNSUPPORTED;
    lx_err err = {0};
    return llmux__journal_compact(gw->ledger->journal, &err);
}

void llmux_free(void *p)
{
    free(p);
}

int llmux_warnings_json(llmux *gw, char **out)
{
    if (!out)
        return LLMUX_ERR_INVALID_ARGUMENT;
    *out = NULL;
    if (!gw)
        return LLMUX_ERR_INVALID_ARGUMENT;
    lx_buf b = LX_BUF_INIT;
    int bad = llmux__buf_puts(&b, "[");
    for (size_t i = 0; !bad && i < gw->cfg->n_warnings; i++)
        bad = (i && llmux__buf_puts(&b, ",")) || llmux__buf_json_string(&b, gw->cfg->warnings[i]);
    int first = gw->cfg->n_warnings == 0;
    if (!bad && gw->ledger->journal)
        bad = llmux__journal_warnings(gw->ledger->journal, &b, &first) != LLMUX_OK;
    if (bad || llmux__buf_puts(&b, "]")) {
        llmux__buf_free(&b);
        return LLMUX_ERR_NO_MEMORY;
    }
    *out = llmux__buf_steal(&b);
    return LLMUX_OK;
}

/* ------------------------------------------------------------ gateway keys */

int llmux_key_add(llmux *gw, const char *id, const char *spec_json, char *errbuf, size_t errlen)
{
    lx_err err = {0};
    copy_err(errbuf, errlen, "");
    int rc = gw ? llmux__policy_key_add(gw->policy, id, spec_json, &err)
                : llmux__err(&err, LLMUX_ERR_INVALID_ARGUMENT, "gw is NULL");
    if (!rc && gw->ledger->journal && llmux__policy_key_budgeted(gw->policy, id)) {
        /* its budgets count what it spent before a restart */
        seed_key_ctx k = {gw->policy, id};
        rc = llmux__journal_each(gw->ledger->journal, seed_key_budget, &k, &err);
    }
    copy_err(errbuf, errlen, err.msg);
    return rc;
}

int llmux_key_rotate(llmux *gw, const char *id, const char *new_key, char *errbuf, size_t errlen)
{
    lx_err err = {0};
    copy_err(errbuf, errlen, "");
    int rc = gw ? llmux__policy_key_rotate(gw->policy, id, new_key, &err)
                : llmux__err(&err, LLMUX_ERR_INVALID_ARGUMENT, "gw is NULL");
    copy_err(errbuf, errlen, err.msg);
    return rc;
}

int llmux_key_revoke(llmux *gw, const char *id)
{
    lx_err err = {0};
    return gw ? llmux__policy_key_revoke(gw->policy, id, &err) : LLMUX_ERR_INVALID_ARGUMENT;
}

int llmux_keys_json(llmux *gw, char **out)
{
    lx_err err = {0};
    if (!out)
        return LLMUX_ERR_INVALID_ARGUMENT;
    *out = NULL;
    return gw ? llmux__policy_keys_json(gw->policy, out, &err) : LLMUX_ERR_INVALID_ARGUMENT;
}

int llmux_budgets_json(llmux *gw, char **out)
{
    lx_err err = {0};
    if (!out)
        return LLMUX_ERR_INVALID_ARGUMENT;
    *out = NULL;
    return gw ? llmux__policy_budgets_json(gw->policy, out, &err) : LLMUX_ERR_INVALID_ARGUMENT;
}

int llmux_set_alert_callback(llmux *gw, llmux_alert_cb cb, void *payload)
{
    if (!gw)
        return LLMUX_ERR_INVALID_ARGUMENT;
    llmux__policy_set_alert(gw->policy, cb, payload);
    return LLMUX_OK;
}
