/* The price table, lookup, and the cost of a call (prices.h, docs/cost.md). */
#include "prices/prices.h"

#include <stdlib.h>
#include <string.h>

#include "core/hash.h"

__extension__ typedef unsigned __int128 u128;

static const char *const FAMILIES[LX_PF_COUNT] = {"openai", "anthropic", "gemini", "bedrock",
                                                   "azure"};

int llmux__price_family(const char *provider_type)
{
    if (provider_type)
        for (int i = 0; i < LX_PF_COUNT; i++)
            if (strcmp(provider_type, FAMILIES[i]) == 0)
                return i;
    return -1;
}

const char *llmux__price_source(const lx_price *p)
{
    return p->source ? p->source : llmux__prices_builtin_source;
}

/* ------------------------------------------------------------ the overrides */

typedef struct slot {
    char *key;
    lx_price price;
} slot;

struct lx_price_table {
    slot *slots;
    size_t n, mask;
};

lx_price_table *llmux__price_table_new(void)
{
    lx_price_table *t = calloc(1, sizeof *t);
    if (t && !(t->slots = calloc(16, sizeof *t->slots))) {
        free(t);
        return NULL;
    }
    if (t)
        t->mask = 15;
    return t;
}

static slot *probe(const lx_price_table *t, const char *key, size_t len)
{
    size_t k = llmux__hash(key, len) & t->mask;
    while (t->slots[k].key && !(strncmp(t->slots[k].key, key, len) == 0 && !t->slots[k].key[len]))
        k = (k + 1) & t->mask;
    return &t->slots[k];
}

int llmux__price_table_put(lx_price_table *t, const char *key, const lx_price *p)
{
    if ((t->n + 1) * 2 > t->mask + 1) {
        size_t cap = (t->mask + 1) * 2;
        slot *s = calloc(cap, sizeof *s);
        if (!s)
            return LLMUX_ERR_NO_MEMORY;
        lx_price_table g = {s, t->n, cap - 1};
        for (size_t i = 0; i <= t->mask; i++)
            if (t->slots[i].key)
                *probe(&g, t->slots[i].key, strlen(t->slots[i].key)) = t->slots[i];
        free(t->slots);
        t->slots = s;
        t->mask = cap - 1;
    }
    slot *s = probe(t, key, strlen(key));
    if (!s->key) {
        if (!(s->key = strdup(key)))
            return LLMUX_ERR_NO_MEMORY;
        t->n++;
    }
    s->price = *p;
    s->price.model = s->key;
    return LLMUX_OK;
}

size_t llmux__price_table_size(const lx_price_table *t)
{
    return t ? t->n : 0;
}

void llmux__price_table_free(lx_price_table *t)
{
    if (!t)
        return;
    for (size_t i = 0; i <= t->mask; i++)
        free(t->slots[i].key);
    free(t->slots);
    free(t);
}

static const lx_price *table_get(const lx_price_table *t, const char *key, size_t len)
{
    if (!t || !t->n)
        return NULL;
    const slot *s = probe(t, key, len);
    return s->key ? &s->price : NULL;
}

/* --------------------------------------------------------------- the lookup */

static const lx_price *builtin_get(int family, const char *model)
{
    size_t lo = llmux__prices_family_start[family], hi = llmux__prices_family_start[family + 1];
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(llmux__prices_builtin[mid].model, model);
        if (c == 0)
            return &llmux__prices_builtin[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* A Bedrock id without its cross-region inference prefix ("us.anthropic..."). */
static const char *bedrock_base(const char *model)
{
    static const char *const regions[] = {"us.", "eu.", "apac.", "global.", "jp.", "au.", "ca.",
                                          "us-gov.", NULL};
    if (strncmp(model, "bedrock/", 8) == 0)
        model += 8;
    for (const char *const *r = regions; *r; r++) {
        size_t n = strlen(*r);
        if (strncmp(model, *r, n) == 0)
            return model + n;
    }
    return model;
}

const lx_price *llmux__price_find(const lx_price_table *t, const char *provider_name,
                                  const char *provider_type, const char *model)
{
    const lx_price *p;
    if (!model)
        return NULL;
    if (t && t->n) {
        char key[320];
        size_t pn = provider_name ? strlen(provider_name) : 0, mn = strlen(model);
        if (pn && pn + 1 + mn < sizeof key) {
            memcpy(key, provider_name, pn);
            key[pn] = '/';
            memcpy(key + pn + 1, model, mn + 1);
            if ((p = table_get(t, key, pn + 1 + mn)))
                return p;
        }
        if ((p = table_get(t, model, mn)))
            return p;
    }
    int family = llmux__price_family(provider_type);
    if (family == LX_PF_BEDROCK) {
        const char *base = bedrock_base(model);
        if (base != model && (p = table_get(t, base, strlen(base))))
            return p;
        return builtin_get(family, base);
    }
    if (family == LX_PF_AZURE) {
        if (strncmp(model, "azure/", 6) == 0)
            model += 6;
        if ((p = builtin_get(family, model)))
            return p;
        return builtin_get(LX_PF_OPENAI, model);
    }
    if (family == LX_PF_GEMINI && strncmp(model, "models/", 7) == 0)
        model += 7; /* Google's resource name for a model */
    return family >= 0 ? builtin_get(family, model) : NULL;
}

/* ----------------------------------------------------------------- the cost */

int64_t llmux__price_cost(const lx_price *p, const lx_usage *u, unsigned *flags)
{
    *flags = 0;
    if (u->prompt_tokens < 0 || u->completion_tokens < 0)
        return -1;
    int hi = p->tier_tokens > 0 && u->prompt_tokens > p->tier_tokens;
    if (hi)
        *flags |= LX_COST_TIER;
    int64_t in = hi && p->input_hi >= 0 ? p->input_hi : p->input;
    int64_t out = hi && p->output_hi >= 0 ? p->output_hi : p->output;
    int64_t read = hi && p->cache_read_hi >= 0 ? p->cache_read_hi : p->cache_read;
    int64_t w5 = hi && p->cache_write_hi >= 0 ? p->cache_write_hi : p->cache_write;
    int64_t w1 = hi && p->cache_write_1h_hi >= 0 ? p->cache_write_1h_hi : p->cache_write_1h;
    /* a part the source does not price costs what an uncached input token costs;
     * a 1-hour write without its own price costs a 5-minute write */
    if (read < 0)
        read = in;
    if (w5 < 0)
        w5 = in;
    if (w1 < 0)
        w1 = w5;

    int64_t n_read = u->cached_tokens > 0 ? u->cached_tokens : 0;
    int64_t n_write = u->cache_write_tokens > 0 ? u->cache_write_tokens : 0;
    int64_t n_w1 = u->cache_write_1h_tokens > 0 ? u->cache_write_1h_tokens : 0;
    if (n_w1 > n_write) { /* the 1-hour writes are part of the writes */
        *flags |= LX_COST_MISMATCH;
        n_write = n_w1;
    }
    int64_t n_in = u->prompt_tokens - n_read - n_write;
    if (n_in < 0) { /* the parts exceed the total: price the parts, say so */
        *flags |= LX_COST_MISMATCH;
        n_in = 0;
    }
    /* tokens <= 1e15 and prices < 2^63: each product fits 113 bits, the sum 116 */
    u128 f = (u128)n_in * (uint64_t)in +
                          (u128)n_read * (uint64_t)read +
                          (u128)(n_write - n_w1) * (uint64_t)w5 +
                          (u128)n_w1 * (uint64_t)w1 +
                          (u128)u->completion_tokens * (uint64_t)out;
    u128 nano = (f + 500000) / 1000000; /* femto -> nano, half up */
    return nano > (u128)INT64_MAX ? INT64_MAX : (int64_t)nano;
}

int64_t llmux__price_from_mtok(double v)
{
    if (!(v >= 0 && v <= 1e6))
        return -1;
    return (int64_t)(v * 1e9 + 0.5);
}

int64_t llmux__price_from_token(double v)
{
    if (!(v >= 0 && v <= 1.0))
        return -1;
    return (int64_t)(v * 1e15 + 0.5);
}
