/*
 * Rate limits: a token bucket per scope for requests per minute and one for
 * tokens per minute, each refilled continuously (per_min / 60 s) up to
 * per_min. A call takes one request and its prompt estimate; at settle the
 * tpm bucket is corrected to what the call really used (it may go below zero:
 * the next calls wait for the debt). Under the policy's mutex.
 */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "policy/internal.h"

int llmux__limits_parse(lx_scope *s, const cJSON *obj, const char *path, lx_err *err)
{
    if (!obj)
        return LLMUX_OK;
    if (!cJSON_IsObject(obj))
        return llmux__err(err, LLMUX_ERR_CONFIG, "%s: must be an object {\"rpm\", \"tpm\"}", path);
    const cJSON *m;
    cJSON_ArrayForEach(m, obj) {
        lx_bucket *b = strcmp(m->string, "rpm") == 0   ? &s->rpm
                       : strcmp(m->string, "tpm") == 0 ? &s->tpm
                                                       : NULL;
        if (!b)
            return llmux__err(err, LLMUX_ERR_CONFIG, "%s.%.64s: unknown key (known: rpm, tpm)",
                              path, m->string);
        if (!cJSON_IsNumber(m) || m->valuedouble < 1 || m->valuedouble > 1e12 ||
            m->valuedouble != (double)(long long)m->valuedouble)
            return llmux__err(err, LLMUX_ERR_CONFIG, "%s.%s: a whole number from 1 to 1e12",
                              path, m->string);
        b->per_min = (long)m->valuedouble;
        b->level = (double)b->per_min;
        b->last_ms = -1;
    }
    return LLMUX_OK;
}

/* no libm: the library links none */
static double dmin(double a, double b)
{
    return a < b ? a : b;
}

static void refill(lx_bucket *b, double now_ms)
{
    if (b->last_ms >= 0 && now_ms > b->last_ms)
        b->level = dmin((double)b->per_min,
                        b->level + (now_ms - b->last_ms) * (double)b->per_min / 60000.0);
    b->last_ms = now_ms;
}

/* ms until b holds `need`, 0 when it does. */
static long wait_ms(const lx_bucket *b, double need)
{
    if (b->level >= need)
        return 0;
    double ms = (need - b->level) * 60000.0 / (double)b->per_min;
    long w = (long)ms;
    return (double)w < ms ? w + 1 : w;
}

int llmux__limit_check(lx_scope *s, double now_ms, int64_t tokens, long *retry_after_ms,
                       lx_err *err)
{
    long wait = 0;
    const char *which = NULL;
    long per_min = 0;
    if (s->rpm.per_min) {
        refill(&s->rpm, now_ms);
        if ((wait = wait_ms(&s->rpm, 1.0)) > 0) {
            which = "rpm";
            per_min = s->rpm.per_min;
        }
    }
    if (!which && s->tpm.per_min) {
        refill(&s->tpm, now_ms);
        /* a call asking for more than a whole minute's tokens waits for a full bucket */
        double need = dmin((double)(tokens > 0 ? tokens : 0), (double)s->tpm.per_min);
        if ((wait = wait_ms(&s->tpm, need)) > 0) {
            which = "tpm";
            per_min = s->tpm.per_min;
        }
    }
    if (!which)
        return LLMUX_OK;
    *retry_after_ms = wait;
    return llmux__err(err, LLMUX_ERR_RATE_LIMIT,
                      "rate limit: %s%s%.64s%s is over its %s limit of %ld; retry after %ld ms",
                      s->kind, s->name ? " \"" : "", s->name ? s->name : "", s->name ? "\"" : "",
                      which, per_min, wait);
}

void llmux__limit_take(lx_scope *s, int64_t tokens)
{
    if (s->rpm.per_min)
        s->rpm.level -= 1.0;
    if (s->tpm.per_min)
        s->tpm.level -= (double)(tokens > 0 ? tokens : 0);
}

void llmux__limit_adjust(lx_scope *s, int64_t tokens)
{
    if (s->tpm.per_min)
        s->tpm.level -= (double)tokens;
}

void llmux__scope_free(lx_scope *s)
{
    free(s->name);
    free(s->budgets);
}
