#include "ledger/ledger.h"

#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"

enum { DIM_KEY, DIM_WORKFLOW, DIM_TASK, DIM_MODEL, DIM_PROVIDER, N_DIMS };
static const char *const DIM_NAMES[N_DIMS] = {"key", "workflow", "task", "model", "provider"};

typedef struct row {
    char *group;
    long calls, errors, prompt_tokens, completion_tokens, unpriced_calls;
    double cost_usd;
} row;

typedef struct dim {
    row *rows;
    size_t n, cap;
    size_t *slots; /* open addressing: row index + 1 */
    size_t mask;
    row other;     /* values past the row cap */
} dim;

struct lx_ledger {
    pthread_mutex_t mu;
    dim dims[N_DIMS];
    row total;
};

int llmux__ledger_new(lx_ledger **out)
{
    lx_ledger *l = calloc(1, sizeof *l);
    if (!l)
        return LLMUX_ERR_NO_MEMORY;
    pthread_mutex_init(&l->mu, NULL);
    *out = l;
    return LLMUX_OK;
}

void llmux__ledger_free(lx_ledger *l)
{
    if (!l)
        return;
    for (int d = 0; d < N_DIMS; d++) {
        for (size_t i = 0; i < l->dims[d].n; i++)
            free(l->dims[d].rows[i].group);
        free(l->dims[d].rows);
        free(l->dims[d].slots);
    }
    pthread_mutex_destroy(&l->mu);
    free(l);
}

void llmux__key_fingerprint(const char *key, char out[21])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    static const char hex[] = "0123456789abcdef";
    memcpy(out, "key-", 4);
    if (!EVP_Digest(key, strlen(key), md, &n, EVP_sha256(), NULL) || n < 8) {
        memcpy(out + 4, "unhashable", 11);
        return;
    }
    for (int i = 0; i < 8; i++) {
        out[4 + 2 * i] = hex[md[i] >> 4];
        out[5 + 2 * i] = hex[md[i] & 15];
    }
    out[20] = '\0';
}

static size_t hash(const char *s)
{
    size_t h = 1469598103934665603u;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211u;
    return h;
}

static int grow(dim *d)
{
    size_t slots = d->slots ? (d->mask + 1) * 2 : 16;
    size_t *s = calloc(slots, sizeof *s);
    if (!s)
        return -1;
    for (size_t i = 0; i < d->n; i++) {
        size_t k = hash(d->rows[i].group) & (slots - 1);
        while (s[k])
            k = (k + 1) & (slots - 1);
        s[k] = i + 1;
    }
    free(d->slots);
    d->slots = s;
    d->mask = slots - 1;
    return 0;
}

/* The row for value, created on first use; the "(other)" row when full or
 * out of memory, so nothing is ever left uncounted. */
static row *find_row(dim *d, const char *value)
{
    if (d->slots) {
        for (size_t k = hash(value) & d->mask; d->slots[k]; k = (k + 1) & d->mask)
            if (strcmp(d->rows[d->slots[k] - 1].group, value) == 0)
                return &d->rows[d->slots[k] - 1];
    }
    if (d->n >= LLMUX_LEDGER_MAX_ROWS)
        return &d->other;
    if ((!d->slots || (d->n + 1) * 2 > d->mask + 1) && grow(d))
        return &d->other;
    if (d->n == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 8;
        row *r = realloc(d->rows, cap * sizeof *r);
        if (!r)
            return &d->other;
        d->rows = r;
        d->cap = cap;
    }
    char *g = strdup(value);
    if (!g)
        return &d->other;
    row *r = &d->rows[d->n];
    memset(r, 0, sizeof *r);
    r->group = g;
    size_t k = hash(value) & d->mask;
    while (d->slots[k])
        k = (k + 1) & d->mask;
    d->slots[k] = ++d->n;
    return r;
}

static void add(row *r, const lx_ledger_entry *e)
{
    r->calls++;
    if (!e->ok)
        r->errors++;
    if (e->prompt_tokens > 0)
        r->prompt_tokens += e->prompt_tokens;
    if (e->completion_tokens > 0)
        r->completion_tokens += e->completion_tokens;
    if (e->cost_usd >= 0)
        r->cost_usd += e->cost_usd;
    else
        r->unpriced_calls++;
}

void llmux__ledger_record(lx_ledger *l, const lx_ledger_entry *e)
{
    char fp[21];
    const char *values[N_DIMS];
    if (e->key) {
        llmux__key_fingerprint(e->key, fp);
        values[DIM_KEY] = fp;
    } else {
        values[DIM_KEY] = "(anonymous)";
    }
    values[DIM_WORKFLOW] = e->workflow ? e->workflow : "(none)";
    values[DIM_TASK] = e->task ? e->task : "(none)";
    values[DIM_MODEL] = e->model && *e->model ? e->model : "(none)";
    values[DIM_PROVIDER] = e->provider && *e->provider ? e->provider : "(none)";
    pthread_mutex_lock(&l->mu);
    add(&l->total, e);
    for (int d = 0; d < N_DIMS; d++)
        add(find_row(&l->dims[d], values[d]), e);
    pthread_mutex_unlock(&l->mu);
}

static int row_json(lx_buf *b, const row *r, const char *group)
{
    return (group && (llmux__buf_puts(b, "{\"group\":") || llmux__buf_json_string(b, group) ||
                      llmux__buf_puts(b, ","))) ||
           (!group && llmux__buf_puts(b, "{")) ||
           llmux__buf_printf(b,
                             "\"calls\":%ld,\"errors\":%ld,\"prompt_tokens\":%ld,"
                             "\"completion_tokens\":%ld,\"cost_usd\":%.8f,\"unpriced_calls\":%ld}",
                             r->calls, r->errors, r->prompt_tokens, r->completion_tokens,
                             r->cost_usd, r->unpriced_calls);
}

int llmux__ledger_report(lx_ledger *l, const char *group_by, char **out, lx_err *err)
{
    int d = -1;
    if (group_by && *group_by) {
        for (int i = 0; i < N_DIMS; i++)
            if (strcmp(group_by, DIM_NAMES[i]) == 0)
                d = i;
        if (d < 0)
            return llmux__err(err, LLMUX_ERR_INVALID_ARGUMENT,
                              "group_by \"%.64s\" is not one of: key, workflow, task, model, "
                              "provider",
                              group_by);
    }
    lx_buf b = LX_BUF_INIT;
    pthread_mutex_lock(&l->mu);
    int bad = llmux__buf_puts(&b, "{\"group_by\":") ||
              (d >= 0 ? llmux__buf_json_string(&b, DIM_NAMES[d]) : llmux__buf_puts(&b, "null")) ||
              llmux__buf_puts(&b, ",\"rows\":[");
    if (d >= 0) {
        const dim *dm = &l->dims[d];
        for (size_t i = 0; !bad && i < dm->n; i++)
            bad = (i && llmux__buf_puts(&b, ",")) || row_json(&b, &dm->rows[i], dm->rows[i].group);
        if (!bad && dm->other.calls)
            bad = (dm->n && llmux__buf_puts(&b, ",")) || row_json(&b, &dm->other, "(other)");
    }
    if (!bad)
        bad = llmux__buf_puts(&b, "],\"total\":") || row_json(&b, &l->total, NULL) ||
              llmux__buf_puts(&b, "}");
    pthread_mutex_unlock(&l->mu);
    if (bad) {
        llmux__buf_free(&b);
        return llmux__err(err, LLMUX_ERR_NO_MEMORY, "out of memory");
    }
    *out = llmux__buf_steal(&b);
    return LLMUX_OK;
}
