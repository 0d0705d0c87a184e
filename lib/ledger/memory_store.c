/*
 * The in-memory ledger store: exact per-value totals in one hash table per
 * dimension, for the gateway's lifetime. Memory is bounded by max_rows per
 * dimension, enforced at reserve: a call that would add a row past the limit
 * is refused, never merged into another row.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/hash.h"
#include "ledger/store.h"

/* key, workflow and task rows are made at reserve; the others at settle */
enum { DIM_KEY, DIM_WORKFLOW, DIM_TASK, DIM_MODEL, DIM_PROVIDER, DIM_TEAM, DIM_ALIAS, N_DIMS };
static const char *const DIM_NAMES[N_DIMS] = {"key",      "workflow", "task", "model",
                                              "provider", "team",     "alias"};

typedef struct row {
    char *group;
    int64_t calls, errors, prompt_tokens, completion_tokens, cached_tokens;
    int64_t cache_write_tokens, reasoning_tokens;
    int64_t cost_nusd, priced_calls, unpriced_calls, estimated_calls;
} row;

typedef struct dim {
    row *rows;
    size_t n, cap;
    size_t *slots; /* open addressing: row index + 1 */
    size_t mask;
} dim;

typedef struct memory_store {
    pthread_mutex_t mu;
    dim dims[N_DIMS];
    row total;
    size_t max_rows;
    uint64_t next_id;
} memory_store;

int llmux__memory_store_new(void **out, long max_rows)
{
    memory_store *m = calloc(1, sizeof *m);
    if (!m)
        return LLMUX_ERR_NO_MEMORY;
    pthread_mutex_init(&m->mu, NULL);
    m->max_rows = max_rows > 0 ? (size_t)max_rows : (size_t)LX_LEDGER_DEFAULT_MAX_ROWS;
    *out = m;
    return LLMUX_OK;
}

static void memory_free(void *st)
{
    memory_store *m = st;
    if (!m)
        return;
    for (int d = 0; d < N_DIMS; d++) {
        for (size_t i = 0; i < m->dims[d].n; i++)
            free(m->dims[d].rows[i].group);
        free(m->dims[d].rows);
        free(m->dims[d].slots);
    }
    pthread_mutex_destroy(&m->mu);
    free(m);
}

static int grow(dim *d)
{
    size_t slots = d->slots ? (d->mask + 1) * 2 : 16;
    size_t *s = calloc(slots, sizeof *s);
    if (!s)
        return -1;
    for (size_t i = 0; i < d->n; i++) {
        const char *g = d->rows[i].group;
        size_t k = llmux__hash(g, strlen(g)) & (slots - 1);
        while (s[k])
            k = (k + 1) & (slots - 1);
        s[k] = i + 1;
    }
    free(d->slots);
    d->slots = s;
    d->mask = slots - 1;
    return 0;
}

/* The index of value's row, or -1 when there is none. */
static long find_row(const dim *d, const char *value, size_t h)
{
    if (!d->slots)
        return -1;
    for (size_t k = h & d->mask; d->slots[k]; k = (k + 1) & d->mask)
        if (strcmp(d->rows[d->slots[k] - 1].group, value) == 0)
            return (long)(d->slots[k] - 1);
    return -1;
}

/* The index of value's row, created on first use: -1 out of memory, -2 at
 * the row limit (when limit is non-zero). */
static long row_for(dim *d, const char *value, size_t limit)
{
    size_t h = llmux__hash(value, strlen(value));
    long i = find_row(d, value, h);
    if (i >= 0)
        return i;
    if (limit && d->n >= limit)
        return -2;
    if ((!d->slots || (d->n + 1) * 2 > d->mask + 1) && grow(d))
        return -1;
    if (d->n == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 8;
        row *r = realloc(d->rows, cap * sizeof *r);
        if (!r)
            return -1;
        d->rows = r;
        d->cap = cap;
    }
    char *g = strdup(value);
    if (!g)
        return -1;
    row *r = &d->rows[d->n];
    memset(r, 0, sizeof *r);
    r->group = g;
    size_t k = h & d->mask;
    while (d->slots[k])
        k = (k + 1) & d->mask;
    d->slots[k] = ++d->n;
    return (long)(d->n - 1);
}

static const char *dim_value(const lx_charge *c, int d)
{
    switch (d) {
    case DIM_KEY: return c->key_id ? c->key_id : "(anonymous)";
    case DIM_WORKFLOW: return c->workflow ? c->workflow : "(none)";
    case DIM_TASK: return c->task ? c->task : "(none)";
    case DIM_MODEL: return c->model && *c->model ? c->model : "(none)";
    case DIM_TEAM: return c->team && *c->team ? c->team : "(none)";
    case DIM_ALIAS: return c->alias && *c->alias ? c->alias : "(none)";
    default: return c->provider && *c->provider ? c->provider : "(none)";
    }
}

/* The caller-chosen dimensions (key, workflow, task) get their rows here,
 * under the limit, so a call is refused before it runs rather than merged
 * into another row after; model and provider rows are made at settle. */
static int memory_reserve(void *st, const lx_charge *c, lx_reservation *r, lx_err *err)
{
    memory_store *m = st;
    int rc = LLMUX_OK;
    pthread_mutex_lock(&m->mu);
    r->id = ++m->next_id;
    for (int d = 0; d < DIM_MODEL && rc == LLMUX_OK; d++) {
        long i = row_for(&m->dims[d], dim_value(c, d), m->max_rows);
        if (i == -1)
            rc = llmux__err(err, LLMUX_ERR_NO_MEMORY, "out of memory (ledger)");
        else if (i == -2)
            rc = llmux__err(err, LLMUX_ERR_LIMIT,
                            "the ledger already tracks %zu distinct %s values (ledger.max_rows); "
                            "raise the limit to account for more",
                            m->max_rows, DIM_NAMES[d]);
        else
            r->slots[d] = i;
    }
    pthread_mutex_unlock(&m->mu);
    return rc;
}

/* n calls alike (n = 1 but for a journal's summary record), their usage summed in c. */
static void add(row *r, const lx_charge *c, int64_t n)
{
    r->calls = llmux__sat_add(r->calls, n);
    if (!c->ok)
        r->errors = llmux__sat_add(r->errors, n);
    if (c->usage.prompt_tokens > 0)
        r->prompt_tokens = llmux__sat_add(r->prompt_tokens, c->usage.prompt_tokens);
    if (c->usage.completion_tokens > 0)
        r->completion_tokens = llmux__sat_add(r->completion_tokens, c->usage.completion_tokens);
    if (c->usage.cached_tokens > 0)
        r->cached_tokens = llmux__sat_add(r->cached_tokens, c->usage.cached_tokens);
    if (c->usage.cache_write_tokens > 0)
        r->cache_write_tokens = llmux__sat_add(r->cache_write_tokens, c->usage.cache_write_tokens);
    if (c->usage.reasoning_tokens > 0)
        r->reasoning_tokens = llmux__sat_add(r->reasoning_tokens, c->usage.reasoning_tokens);
    if (c->estimated)
        r->estimated_calls = llmux__sat_add(r->estimated_calls, n);
    if (c->cost_nusd >= 0) {
        r->cost_nusd = llmux__sat_add(r->cost_nusd, c->cost_nusd);
        r->priced_calls = llmux__sat_add(r->priced_calls, n);
    } else {
        r->unpriced_calls = llmux__sat_add(r->unpriced_calls, n);
    }
}

int llmux__memory_store_settle_n(void *st, lx_reservation *r, const lx_charge *c, int64_t n,
                                 lx_err *err)
{
    memory_store *m = st;
    int rc = LLMUX_OK;
    pthread_mutex_lock(&m->mu);
    add(&m->total, c, n);
    for (int d = 0; d < N_DIMS; d++) {
        long i = d < DIM_MODEL ? (long)r->slots[d] : row_for(&m->dims[d], dim_value(c, d), m->max_rows);
        if (i == -2) /* direct routes name models freely: past the limit they share one row */
            i = row_for(&m->dims[d], "(over ledger.max_rows)", 0);
        if (i < 0) {
            /* out of memory making a configured model's row: the total has the
             * call; say so rather than guess */
            rc = llmux__err(err, LLMUX_ERR_NO_MEMORY, "out of memory (ledger row for %s)",
                            DIM_NAMES[d]);
            continue;
        }
        add(&m->dims[d].rows[i], c, n);
    }
    pthread_mutex_unlock(&m->mu);
    return rc;
}

static int memory_settle(void *st, lx_reservation *r, const lx_charge *c, lx_err *err)
{
    return llmux__memory_store_settle_n(st, r, c, 1, err);
}

/* nano-dollars as a decimal USD amount, exactly. */
static int usd(lx_buf *b, int64_t nusd)
{
    return llmux__buf_printf(b, "%" PRId64 ".%09" PRId64, nusd / 1000000000, nusd % 1000000000);
}

static int row_json(lx_buf *b, const row *r, const char *group)
{
    int bad = group ? llmux__buf_puts(b, "{\"group\":") || llmux__buf_json_string(b, group) ||
                          llmux__buf_puts(b, ",")
                    : llmux__buf_puts(b, "{");
    bad = bad || llmux__buf_printf(b,
                                   "\"calls\":%" PRId64 ",\"errors\":%" PRId64
                                   ",\"prompt_tokens\":%" PRId64 ",\"completion_tokens\":%" PRId64
                                   ",\"cached_tokens\":%" PRId64
                                   ",\"cache_write_tokens\":%" PRId64
                                   ",\"reasoning_tokens\":%" PRId64 ",\"cost_usd\":",
                                   r->calls, r->errors, r->prompt_tokens, r->completion_tokens,
                                   r->cached_tokens, r->cache_write_tokens, r->reasoning_tokens);
    /* a sum over no priced call is unknown, not zero */
    bad = bad || (r->priced_calls ? usd(b, r->cost_nusd) : llmux__buf_puts(b, "null"));
    bad = bad || llmux__buf_puts(b, ",\"cost_nusd\":") ||
          (r->priced_calls ? llmux__buf_printf(b, "%" PRId64, r->cost_nusd)
                           : llmux__buf_puts(b, "null"));
    return bad || llmux__buf_printf(b,
                                    ",\"priced_calls\":%" PRId64 ",\"unpriced_calls\":%" PRId64
                                    ",\"estimated_calls\":%" PRId64 "}",
                                    r->priced_calls, r->unpriced_calls, r->estimated_calls);
}

static int memory_report(void *st, const char *group_by, char **out, lx_err *err)
{
    memory_store *m = st;
    int d = -1;
    if (group_by && *group_by) {
        for (int i = 0; i < N_DIMS; i++)
            if (strcmp(group_by, DIM_NAMES[i]) == 0)
                d = i;
        if (d < 0)
            return llmux__err(err, LLMUX_ERR_INVALID_ARGUMENT,
                              "group_by \"%.64s\" is not one of: key, workflow, task, model, "
                              "provider, team, alias",
                              group_by);
    }
    lx_buf b = LX_BUF_INIT;
    pthread_mutex_lock(&m->mu);
    int bad = llmux__buf_puts(&b, "{\"group_by\":") ||
              (d >= 0 ? llmux__buf_json_string(&b, DIM_NAMES[d]) : llmux__buf_puts(&b, "null")) ||
              llmux__buf_puts(&b, ",\"rows\":[");
    if (d >= 0) {
        const dim *dm = &m->dims[d];
        for (size_t i = 0; !bad && i < dm->n; i++) {
            if (!dm->rows[i].calls)
                continue; /* reserved by a call still running */
            bad = (b.data[b.len - 1] != '[' && llmux__buf_puts(&b, ",")) ||
                  row_json(&b, &dm->rows[i], dm->rows[i].group);
        }
    }
    if (!bad)
        bad = llmux__buf_puts(&b, "],\"total\":") || row_json(&b, &m->total, NULL) ||
              llmux__buf_puts(&b, "}");
    pthread_mutex_unlock(&m->mu);
    if (bad) {
        llmux__buf_free(&b);
        return llmux__err(err, LLMUX_ERR_NO_MEMORY, "out of memory");
    }
    *out = llmux__buf_steal(&b);
    return LLMUX_OK;
}

const lx_store_ops llmux__memory_store_ops = {
    .name = "memory",
    .reserve = memory_reserve,
    .settle = memory_settle,
    .report = memory_report,
    .free = memory_free,
};
