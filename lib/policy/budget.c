/*
 * Budgets: a USD limit per calendar period (UTC day, ISO week from Monday,
 * month) or for all time, with alert thresholds. Holds and spend are integer
 * nano-dollars; the caller (policy.c) takes the policy's mutex around every
 * function here, so a check and its hold are one step.
 */
#include <cjson/cJSON.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "policy/internal.h"

static const char *const PERIODS[] = {"day", "week", "month", "total"};

/* Days from 1970-01-01 to y-m-d (proleptic Gregorian; Howard Hinnant's
 * days_from_civil), so no timegm (not POSIX) is needed. */
static int64_t days_from_civil(int64_t y, int64_t m, int64_t d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

int64_t llmux__utc_seconds(int y, int mon, int d, int h, int mi, int s)
{
    return days_from_civil(y, mon, d) * 86400 + (int64_t)h * 3600 + (int64_t)mi * 60 + s;
}

int64_t llmux__period_start(int period, int64_t t)
{
    int64_t day = t >= 0 ? t / 86400 : (t - 86399) / 86400;
    switch (period) {
    case LX_PERIOD_DAY:
        return day * 86400;
    case LX_PERIOD_WEEK: {
        int64_t dow = ((day % 7) + 7 + 3) % 7; /* 1970-01-01 was a Thursday: Monday = 0 */
        return (day - dow) * 86400;
    }
    case LX_PERIOD_MONTH: {
        time_t tt = (time_t)t;
        struct tm tm;
        gmtime_r(&tt, &tm);
        return llmux__utc_seconds(tm.tm_year + 1900, tm.tm_mon + 1, 1, 0, 0, 0);
    }
    default:
        return 0;
    }
}

static int bad(lx_err *err, const char *path, const char *msg)
{
    return llmux__err(err, LLMUX_ERR_CONFIG, "%s: %s", path, msg);
}

int llmux__budgets_parse(lx_scope *s, const cJSON *arr, const char *path, lx_err *err)
{
    if (!arr)
        return LLMUX_OK;
    if (!cJSON_IsArray(arr))
        return bad(err, path, "must be an array of {\"usd\", \"period\", \"alert_at\"}");
    int n = cJSON_GetArraySize(arr);
    if (n > 16)
        return bad(err, path, "at most 16 budgets");
    if (n && !(s->budgets = calloc((size_t)n, sizeof *s->budgets)))
        return llmux__err(err, LLMUX_ERR_NO_MEMORY, "out of memory");
    int i = 0;
    const cJSON *b;
    cJSON_ArrayForEach(b, arr) {
        char p[300];
        snprintf(p, sizeof p, "%.260s[%d]", path, i++);
        lx_budget *bu = &s->budgets[s->n_budgets];
        if (!cJSON_IsObject(b))
            return bad(err, p, "must be an object");
        const cJSON *m;
        cJSON_ArrayForEach(m, b) {
            if (strcmp(m->string, "usd") && strcmp(m->string, "period") &&
                strcmp(m->string, "alert_at"))
                return llmux__err(err, LLMUX_ERR_CONFIG,
                                  "%s.%.64s: unknown key (known: usd, period, alert_at)", p,
                                  m->string);
        }
        const cJSON *usd = cJSON_GetObjectItemCaseSensitive(b, "usd");
        if (!cJSON_IsNumber(usd) || !(usd->valuedouble > 0) || usd->valuedouble > 1e9)
            return llmux__err(err, LLMUX_ERR_CONFIG,
                              "%s.usd: required, a number of dollars above 0 (at most 1e9)", p);
        bu->limit_nusd = (int64_t)(usd->valuedouble * 1e9 + 0.5);
        const cJSON *per = cJSON_GetObjectItemCaseSensitive(b, "period");
        bu->period = -1;
        for (int k = 0; k < 4 && cJSON_IsString(per); k++)
            if (strcmp(per->valuestring, PERIODS[k]) == 0)
                bu->period = k;
        if (bu->period < 0)
            return llmux__err(err, LLMUX_ERR_CONFIG,
                              "%s.period: required, one of day, week, month, total", p);
        const cJSON *al = cJSON_GetObjectItemCaseSensitive(b, "alert_at");
        if (al) {
            if (!cJSON_IsArray(al) || cJSON_GetArraySize(al) > LX_MAX_ALERTS)
                return llmux__err(err, LLMUX_ERR_CONFIG,
                                  "%s.alert_at: an array of at most %d fractions", p,
                                  LX_MAX_ALERTS);
            const cJSON *a;
            cJSON_ArrayForEach(a, al) {
                double v = cJSON_IsNumber(a) ? a->valuedouble : -1;
                if (!(v > 0 && v <= 1) ||
                    (bu->n_alerts && v <= bu->alert_at[bu->n_alerts - 1]))
                    return llmux__err(err, LLMUX_ERR_CONFIG,
                                      "%s.alert_at: fractions of the budget above 0, at most 1, "
                                      "ascending",
                                      p);
                bu->alert_at[bu->n_alerts++] = v;
            }
        }
        s->n_budgets++;
    }
    return LLMUX_OK;
}

/* Move b to the period holding now: a new period starts with nothing spent
 * and no alert fired (what is held stays held). */
static void roll(lx_budget *b, int64_t now)
{
    int64_t start = llmux__period_start(b->period, now);
    if (start != b->start) {
        b->start = start;
        b->spent_nusd = 0;
        b->fired = 0;
    }
}

static void usd(char *out, size_t n, int64_t nusd)
{
    if (nusd < 0)
        snprintf(out, n, "-%" PRId64 ".%06" PRId64, -nusd / 1000000000,
                 (-nusd % 1000000000) / 1000);
    else
        snprintf(out, n, "%" PRId64 ".%06" PRId64, nusd / 1000000000,
                 (nusd % 1000000000) / 1000);
}

int llmux__budget_check(lx_scope *s, int64_t now, int64_t need, lx_err *err)
{
    for (size_t i = 0; i < s->n_budgets; i++) {
        lx_budget *b = &s->budgets[i];
        roll(b, now);
        int64_t left = b->limit_nusd - b->spent_nusd - b->held_nusd;
        if (need > left) {
            char l[32], lim[32], nd[32];
            usd(l, sizeof l, left < 0 ? 0 : left);
            usd(lim, sizeof lim, b->limit_nusd);
            usd(nd, sizeof nd, need);
            return llmux__err(err, LLMUX_ERR_BUDGET,
                              "budget exceeded: %s%s%.64s%s %s budget of $%s has $%s left "
                              "(counting calls in flight); this call may cost up to $%s",
                              s->kind, s->name ? " \"" : "", s->name ? s->name : "",
                              s->name ? "\"" : "", PERIODS[b->period], lim, l, nd);
        }
    }
    return LLMUX_OK;
}

void llmux__budget_hold(lx_scope *s, int64_t need)
{
    for (size_t i = 0; i < s->n_budgets; i++)
        s->budgets[i].held_nusd += need;
}

static int alert_json(lx_buf *a, const lx_scope *s, const lx_budget *b, double at)
{
    char start[32] = "null";
    if (b->period != LX_PERIOD_TOTAL) {
        time_t t = (time_t)b->start;
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(start, sizeof start, "\"%Y-%m-%dT%H:%M:%SZ\"", &tm);
    }
    char lim[32], sp[32];
    usd(lim, sizeof lim, b->limit_nusd);
    usd(sp, sizeof sp, b->spent_nusd);
    return llmux__buf_printf(a, "{\"scope\":\"%s\",\"name\":", s->kind) ||
           (s->name ? llmux__buf_json_string(a, s->name) : llmux__buf_puts(a, "null")) ||
           llmux__buf_printf(a,
                             ",\"period\":\"%s\",\"period_start\":%s,\"threshold\":%g,"
                             "\"limit_usd\":%s,\"spent_usd\":%s,\"spent_nusd\":%" PRId64 "}\n",
                             PERIODS[b->period], start, at, lim, sp, b->spent_nusd);
}

void llmux__budget_settle(lx_scope *s, int64_t now, int64_t held, int64_t cost, lx_buf *alerts)
{
    for (size_t i = 0; i < s->n_budgets; i++) {
        lx_budget *b = &s->budgets[i];
        roll(b, now);
        b->held_nusd -= held;
        b->spent_nusd = llmux__sat_add(b->spent_nusd, cost);
        for (int k = 0; k < b->n_alerts; k++) {
            if (b->fired & (1u << k))
                continue;
            if ((double)b->spent_nusd >= b->alert_at[k] * (double)b->limit_nusd) {
                b->fired |= 1u << k;
                alert_json(alerts, s, b, b->alert_at[k]);
            }
        }
    }
}

void llmux__budget_seed(lx_scope *s, int64_t now, int64_t t, int64_t cost)
{
    for (size_t i = 0; i < s->n_budgets; i++) {
        lx_budget *b = &s->budgets[i];
        roll(b, now);
        if (llmux__period_start(b->period, t) != b->start)
            continue; /* an earlier period's spend */
        b->spent_nusd = llmux__sat_add(b->spent_nusd, cost);
        for (int k = 0; k < b->n_alerts; k++)
            if ((double)b->spent_nusd >= b->alert_at[k] * (double)b->limit_nusd)
                b->fired |= 1u << k;
    }
}

int llmux__budget_json(lx_buf *out, lx_scope *s, int64_t now)
{
    int e = 0;
    for (size_t i = 0; i < s->n_budgets && !e; i++) {
        lx_budget *b = &s->budgets[i];
        roll(b, now);
        char lim[32], sp[32], h[32];
        usd(lim, sizeof lim, b->limit_nusd);
        usd(sp, sizeof sp, b->spent_nusd);
        usd(h, sizeof h, b->held_nusd);
        e = (out->data[out->len - 1] != '[' && llmux__buf_puts(out, ",")) ||
            llmux__buf_printf(out, "{\"scope\":\"%s\",\"name\":", s->kind) ||
            (s->name ? llmux__buf_json_string(out, s->name) : llmux__buf_puts(out, "null")) ||
            llmux__buf_printf(out,
                              ",\"period\":\"%s\",\"limit_usd\":%s,\"spent_usd\":%s,"
                              "\"held_usd\":%s,\"spent_nusd\":%" PRId64 ",\"held_nusd\":%" PRId64
                              "}",
                              PERIODS[b->period], lim, sp, h, b->spent_nusd, b->held_nusd);
    }
    return e;
}
