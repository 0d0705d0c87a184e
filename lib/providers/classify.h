/* Error classification shared by the adapters. */
#ifndef LLMUX_PROVIDERS_CLASSIFY_H
#define LLMUX_PROVIDERS_CLASSIFY_H

#include <stddef.h>

#include "core/text.h"
#include "core/usage.h"

struct cJSON;

/* The llmux_status for an HTTP error status, before any body-specific
 * refinement (context window, content filter). */
int llmux__status_for_http(long http_status);
/* 1 when a provider's error message says the prompt does not fit the context
 * window (case-insensitive match over the phrases providers use). */
int llmux__is_context_overflow(const char *message);

/* Text from a provider's answer, made safe to show: the provider's key
 * (secret, may be NULL) is masked wherever it occurs in the whole input, and
 * so is any run of 8 or more of its leading bytes (a key the provider itself
 * cut short), before the text is sanitised and cut to cap-1 bytes. */
void llmux__provider_text(char *out, size_t cap, const char *in, size_t len, const char *secret);
/* More tokens than any call can have: a provider reporting more is wrong. */
#define LLMUX_MAX_TOKENS 1e15
/* A token count a provider reported, or -1 (unknown) when it is negative,
 * not a whole number or absurd (above LLMUX_MAX_TOKENS, 1e999). */
long llmux__token_count(double d);

/* Usage from an OpenAI-shaped `usage` object (a response's or a stream
 * chunk's), into u: prompt and completion tokens, cached, cache-write and
 * 1-hour cache-write tokens (prompt_tokens_details: cached_tokens,
 * cache_write_tokens, cache_write_1h_tokens — the last two are how an adapter
 * whose provider bills cache writes reports them, docs/cost.md), reasoning
 * tokens (completion_tokens_details).
 * A count that is present but absurd stays -1 and sets u->absurd. */
void llmux__usage_from_openai(const struct cJSON *usage, lx_usage *u);

#endif
