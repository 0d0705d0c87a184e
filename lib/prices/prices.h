/*
 * Prices and the cost of a call (docs/cost.md).
 *
 * A price is integer femto-dollars (1e-15 USD) per token, which is the same
 * number as nano-dollars per million tokens: 0.0375 USD/Mtok is 37500000, so
 * every published price is exact. A call's cost is integer nano-dollars,
 * rounded once, half up, from the exact femto-dollar sum of its parts, so the
 * sum of the results' costs is the ledger's total to the nano-dollar.
 *
 * Lookup (llmux__price_find): the config's and the price file's entries first
 * ("provider-name/model" before the bare "model"), then the built-in table of
 * the provider type's family. Bedrock ids lose their cross-region prefix
 * ("us.", "eu.", "global.", ...); Azure ids fall back to OpenAI's table.
 * This layer knows only core/: it works from lx_usage, the provider type and
 * the model id.
 */
#ifndef LLMUX_PRICES_H
#define LLMUX_PRICES_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "core/usage.h"

enum { LX_PF_OPENAI, LX_PF_ANTHROPIC, LX_PF_GEMINI, LX_PF_BEDROCK, LX_PF_AZURE, LX_PF_COUNT };

#define LX_CAP_TOOLS 1u
#define LX_CAP_VISION 2u
#define LX_CAP_JSON_SCHEMA 4u
#define LX_CAP_REASONING 8u

typedef struct lx_price {
    const char *model;  /* the table's key */
    /* femto-dollars per token; -1 = not given (see llmux__price_cost) */
    int64_t input, output, cache_read, cache_write, cache_write_1h;
    /* long context: when prompt_tokens > tier_tokens (0 = no tier), every
     * token of the call is priced at the _hi prices (each -1 = the base price) */
    int64_t tier_tokens;
    int64_t input_hi, output_hi, cache_read_hi, cache_write_hi, cache_write_1h_hi;
    int64_t context_window, max_output; /* tokens; 0 = not given */
    unsigned caps;                      /* LX_CAP_* */
    const char *source; /* where the entry comes from; NULL = the built-in table */
} lx_price;

extern const char llmux__prices_builtin_source[];
extern const lx_price llmux__prices_builtin[];
extern const size_t llmux__prices_family_start[LX_PF_COUNT + 1];

/* The family of a provider type ("openai", "azure", ...), or -1. */
int llmux__price_family(const char *provider_type);
/* The source of p for traces: its own, or the built-in table's with its date. */
const char *llmux__price_source(const lx_price *p);

/* Prices from the config and a price file: an owned hash table of entries
 * keyed by "model" or "provider-name/model". */
typedef struct lx_price_table lx_price_table;
lx_price_table *llmux__price_table_new(void);
/* Add or replace key's entry (copied; p->source is borrowed and must outlive
 * the table). LLMUX_OK or LLMUX_ERR_NO_MEMORY. */
int llmux__price_table_put(lx_price_table *t, const char *key, const lx_price *p);
size_t llmux__price_table_size(const lx_price_table *t);
void llmux__price_table_free(lx_price_table *t);

/* The price of model at a provider (name and type), or NULL when none is
 * known. t may be NULL. */
const lx_price *llmux__price_find(const lx_price_table *t, const char *provider_name,
                                  const char *provider_type, const char *model);

#define LX_COST_MISMATCH 1u /* cache reads and writes exceed prompt_tokens */
#define LX_COST_TIER 2u     /* the long-context prices applied */

/* The cost of usage u at price p in nano-dollars (saturating at INT64_MAX),
 * or -1 when u lacks prompt or completion tokens. *flags gets LX_COST_*. */
int64_t llmux__price_cost(const lx_price *p, const lx_usage *u, unsigned *flags);

/* A USD-per-million-tokens decimal as femto-dollars per token: -1 when it is
 * negative, not finite, or above 1e6 USD/Mtok. */
int64_t llmux__price_from_mtok(double usd_per_mtok);
/* A USD-per-token decimal (LiteLLM's unit) as femto-dollars per token. */
int64_t llmux__price_from_token(double usd_per_token);

#endif
