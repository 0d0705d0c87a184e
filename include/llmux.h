/*
 * llmux.h - an OpenAI-compatible LLM gateway inside your process.
 *
 * This header is the specification of the library: every sentence in it is a
 * promise. Hand llmux an OpenAI Chat Completions request; it resolves the
 * requested model through the configured aliases, sends the request to a
 * provider, falls back to the next target when one fails, and hands back an
 * OpenAI `chat.completion` plus a trace of every attempt and why it was made.
 *
 * Conventions
 *  - Functions that can fail return an int status: LLMUX_OK (0) or a negative
 *    llmux_status value. Status values are stable and only ever appended.
 *  - A function that creates an object takes its output first
 *    (llmux_open(&gw, ...), llmux_cancel_new(&c)); a call made on a gateway
 *    takes the gateway first and its output last (llmux_chat(gw, ..., &res)).
 *    Whatever a call hands back through `**out` belongs to the caller and is
 *    released with the matching free function; every free function accepts
 *    NULL.
 *  - Input strings are copied: the caller may free them once the call returns.
 *  - Strings returned by accessors are borrowed: they live until their owner
 *    (the llmux_result) is freed. They are never NULL.
 *  - One `llmux *` may be shared by any number of threads at once. A single
 *    `llmux_result` must not be used from two threads at the same time.
 *  - No variadic functions and no macros are needed to use the API, so ctypes
 *    and cgo bindings can call everything directly.
 *
 * Minimal example
 *
 *     llmux *gw; char err[256];
 *     if (llmux_open_file(&gw, "llmux.json", err, sizeof err) != LLMUX_OK) {
 *         fprintf(stderr, "llmux: %s\n", err); return 1;
 *     }
 *     llmux_result *res;
 *     llmux_chat(gw, "{\"model\":\"smart\",\"messages\":"
 *                    "[{\"role\":\"user\",\"content\":\"hi\"}]}", NULL, &res);
 *     if (llmux_result_status(res) == LLMUX_OK)
 *         printf("%s answered: %s\n", llmux_result_model(res), llmux_result_json(res));
 *     else
 *         fprintf(stderr, "failed: %s\n", llmux_result_error(res));
 *     llmux_result_free(res);
 *     llmux_close(gw);
 */
#ifndef LLMUX_H
#define LLMUX_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32) && defined(LLMUX_BUILDING_SHARED)
#define LLMUX_API __declspec(dllexport)
#elif defined(__GNUC__) && __GNUC__ >= 4
#define LLMUX_API __attribute__((visibility("default")))
#else
#define LLMUX_API
#endif

#define LLMUX_VERSION_MAJOR 0
#define LLMUX_VERSION_MINOR 1
#define LLMUX_VERSION_PATCH 0
#define LLMUX_VERSION_STRING "0.1.0"

/* ------------------------------------------------------------------------ */
/* Status codes                                                              */
/* ------------------------------------------------------------------------ */

/*
 * Every failure has a class. The class decides what the attempt loop does
 * (retry the next target or give up) and which exception a binding raises.
 * Values are stable: they are only ever appended, never renumbered.
 */
typedef enum llmux_status {
    LLMUX_OK = 0,
    LLMUX_ERR_INVALID_ARGUMENT = -1, /* NULL where a value is required, bad option version */
    LLMUX_ERR_NO_MEMORY = -2,        /* an allocation failed */
    LLMUX_ERR_CONFIG = -3,           /* the config is invalid; the message names the JSON path */
    LLMUX_ERR_IO = -4,               /* a file could not be read */
    LLMUX_ERR_BAD_REQUEST = -5,      /* the request JSON is invalid (HTTP 400), or a provider said so */
    LLMUX_ERR_UNKNOWN_MODEL = -6,    /* the requested model is no configured alias (HTTP 404) */
    LLMUX_ERR_AUTH = -7,             /* a provider rejected the credentials, or none were set (401);
                                        or the gateway key is unknown, revoked, expired or
                                        missing under require_key */
    LLMUX_ERR_PERMISSION = -8,       /* not allowed: a provider's 403, or a gateway key's limits */
    LLMUX_ERR_NOT_FOUND = -9,        /* the provider does not know the model or path (404) */
    LLMUX_ERR_RATE_LIMIT = -10,      /* the provider throttled the call (429), or a gateway
                                        key's or team's rpm/tpm limit did (retry-after in
                                        llmux_result_retry_after_ms) */
    LLMUX_ERR_CONTEXT_WINDOW = -11,  /* the prompt does not fit the model's context window */
    LLMUX_ERR_CONTENT_FILTER = -12,  /* the provider refused the content */
    LLMUX_ERR_PROVIDER = -13,        /* the provider failed (5xx, 529, other unexpected status) */
    LLMUX_ERR_CONNECT = -14,         /* could not connect, or the connection dropped */
    LLMUX_ERR_TIMEOUT = -15,         /* the call or an attempt ran out of time */
    LLMUX_ERR_BAD_RESPONSE = -16,    /* the provider's response could not be understood */
    LLMUX_ERR_BUDGET = -17,          /* a key's, team's or the global budget would be
                                        exceeded (the message names it, its period and what
                                        is left), or a budgeted call's model has no price */
    LLMUX_ERR_UNSUPPORTED = -18,     /* the feature is not available for this provider or build */
    LLMUX_ERR_CANCELLED = -19,       /* the chunk callback asked to stop, or llmux_cancel_trigger */
    LLMUX_ERR_INTERNAL = -20,        /* a bug in llmux: please report it */
    LLMUX_ERR_LIMIT = -21,           /* a documented capacity limit of llmux was reached
                                        (e.g. ledger.max_rows distinct keys); the message
                                        names the setting */
    LLMUX_ERR_QUOTA = -22            /* the provider account's quota or credit is used up
                                        (OpenAI's insufficient_quota, Anthropic's billing
                                        errors): never retried on that provider; the next
                                        target is tried */
} llmux_status;

/* A static, human-readable name for a status ("ok", "rate limited", ...).
 * Unknown values give "unknown status". Thread-safe. */
LLMUX_API const char *llmux_strerror(int status);

/* The library's version, "MAJOR.MINOR.PATCH". Static string. */
LLMUX_API const char *llmux_version(void);

/* ------------------------------------------------------------------------ */
/* The gateway                                                               */
/* ------------------------------------------------------------------------ */

typedef struct llmux llmux;
typedef struct llmux_result llmux_result;

/*
 * Open a gateway from a JSON config (see docs/config.md). The config is
 * validated whole: unknown keys and bad values fail with LLMUX_ERR_CONFIG and a
 * message naming the JSON path, e.g. `models.smart.targets[1].provider: no
 * provider named "anthropc"`. Provider API keys are read from the environment
 * variables the config names (`api_key_env`) during this call.
 *
 * On failure *out is set to NULL and, when errbuf is not NULL, a message of at
 * most errlen-1 bytes (always NUL-terminated) is written to it.
 * Thread-safe; may be called from any thread.
 */
LLMUX_API int llmux_open(llmux **out, const char *config_json, char *errbuf, size_t errlen);

/* Like llmux_open, reading the config from a file. LLMUX_ERR_IO if it cannot
 * be read. */
LLMUX_API int llmux_open_file(llmux **out, const char *path, char *errbuf, size_t errlen);

/* Close the gateway and release everything it holds. Calls still running on
 * other threads must have returned first. NULL is a no-op. */
LLMUX_API void llmux_close(llmux *gw);

/* ------------------------------------------------------------------------ */
/* Calls                                                                     */
/* ------------------------------------------------------------------------ */

#define LLMUX_CALL_OPTIONS_VERSION 2

/*
 * Cancellation. Create one llmux_cancel per call you may want to stop, hand
 * it to the call in llmux_call_options.cancel, and call llmux_cancel_trigger
 * from any thread: the call stops within milliseconds, also while it waits on
 * a slow provider, and ends with LLMUX_ERR_CANCELLED (its trace records the
 * attempt that was cut short; no further target is tried). Triggering before
 * the call starts makes it end at once; triggering after it returned does
 * nothing. A cancel that has fired stays fired: use a new one per call.
 * Free it only after the call it was given to has returned.
 */
typedef struct llmux_cancel llmux_cancel;

/* LLMUX_OK, LLMUX_ERR_INVALID_ARGUMENT (out NULL) or LLMUX_ERR_NO_MEMORY. */
LLMUX_API int llmux_cancel_new(llmux_cancel **out);
/* Thread-safe and async-signal-unsafe; NULL is a no-op. */
LLMUX_API void llmux_cancel_trigger(llmux_cancel *c);
/* 1 once triggered, else 0 (NULL: 0). */
LLMUX_API int llmux_cancel_fired(const llmux_cancel *c);
/* NULL is a no-op. */
LLMUX_API void llmux_cancel_free(llmux_cancel *c);

/*
 * Per-call options. Initialise with llmux_call_options_init (or the
 * LLMUX_CALL_OPTIONS_INIT macro from C); fields are only ever appended.
 * Strings are borrowed for the duration of the call only.
 */
typedef struct llmux_call_options {
    unsigned int version; /* LLMUX_CALL_OPTIONS_VERSION */
    const char *key;      /* the caller's gateway key; NULL = anonymous if allowed */
    const char *workflow; /* attribution, e.g. "support-bot"; recorded in the trace */
    const char *task;     /* routing input, e.g. "classify", "draft"; recorded in the trace */
    long timeout_ms;      /* whole call, all attempts; 0 = the config's default */
    /* version 2 */
    llmux_cancel *cancel; /* NULL = the call cannot be cancelled */
} llmux_call_options;

#define LLMUX_CALL_OPTIONS_INIT {LLMUX_CALL_OPTIONS_VERSION, NULL, NULL, NULL, 0, NULL}

/* Fill *opts with defaults. LLMUX_ERR_INVALID_ARGUMENT if opts is NULL or the
 * version is not one this library knows. */
LLMUX_API int llmux_call_options_init(llmux_call_options *opts, unsigned int version);

/*
 * Send one OpenAI Chat Completions request (a JSON object with at least
 * "model" and "messages") through the gateway.
 *
 * `model` names an alias from the config's "models" (or, with
 * routing.allow_direct, "provider/model"). The alias's targets are tried in
 * order: a connection failure, a timeout, HTTP 408/409/429/5xx/529, an
 * unreadable response, a missing or rejected key (401/403) or a 404 moves on
 * to the next target; an error that another target would repeat (a bad
 * request, a context-window overflow, a content-filter refusal) stops at once.
 * The call's deadline (opts->timeout_ms, else the config's) covers every
 * attempt. Request bytes are forwarded as given, with the target's model id
 * in place of the alias.
 * Every attempt is recorded in the trace. A "stream" member in the request is
 * ignored here: use llmux_chat_stream to stream.
 *
 * On return *out holds a result, also when the call failed (then its JSON is
 * an OpenAI-style error object: {"error":{"message","type","param","code"}}).
 * Only when even that cannot be allocated is *out NULL and
 * LLMUX_ERR_NO_MEMORY returned. The return value equals
 * llmux_result_status(*out). opts may be NULL for defaults.
 * Thread-safe: any number of threads may call this on one gateway.
 */
LLMUX_API int llmux_chat(llmux *gw, const char *request_json, const llmux_call_options *opts,
                         llmux_result **out);

/*
 * Called once per streamed chunk with an OpenAI `chat.completion.chunk` JSON
 * object (NUL-terminated; len excludes the NUL). The string is borrowed for
 * the duration of the callback. Return 0 to continue, non-zero to stop the
 * transfer: the call then ends with LLMUX_ERR_CANCELLED.
 * Called on the thread that called llmux_chat_stream.
 */
typedef int (*llmux_chunk_cb)(const char *chunk_json, size_t len, void *payload);

/*
 * Like llmux_chat, but streamed: the request is sent with "stream": true and
 * each chunk is handed to on_chunk as it arrives. Fallback to the next target
 * happens only before the first chunk was delivered. When the stream ends, *out
 * holds the assembled chat.completion (content, tool calls, finish reason and
 * usage, as if the call had not been streamed) and the trace. If this function
 * fails before sending anything (bad arguments), on_chunk is never called.
 */
LLMUX_API int llmux_chat_stream(llmux *gw, const char *request_json, const llmux_call_options *opts,
                                llmux_chunk_cb on_chunk, void *payload, llmux_result **out);

/* ------------------------------------------------------------------------ */
/* Results                                                                   */
/* ------------------------------------------------------------------------ */

/* LLMUX_OK or the call's error status. NULL gives LLMUX_ERR_INVALID_ARGUMENT. */
LLMUX_API int llmux_result_status(const llmux_result *r);

/* The OpenAI chat.completion JSON on success; an OpenAI-style error object
 * {"error":{"message","type","param","code"}} on failure. */
LLMUX_API const char *llmux_result_json(const llmux_result *r);

/* The error message on failure; "" on success. Never contains API keys. */
LLMUX_API const char *llmux_result_error(const llmux_result *r);

/* The provider name from the config that answered (or failed last); "" if no
 * provider was tried. */
LLMUX_API const char *llmux_result_provider(const llmux_result *r);

/* The provider's model id that answered (or failed last); "" if none. */
LLMUX_API const char *llmux_result_model(const llmux_result *r);

/* The cost of the call in US dollars: the exact integer nano-dollar cost of
 * every attempt the provider billed, / 1e9 (docs/cost.md). Negative only when
 * it is unknown: a model without a known price, or a call that never reached
 * a target. */
LLMUX_API double llmux_result_cost_usd(const llmux_result *r);

/*
 * A JSON object recording what the gateway did and why:
 *   {"model":"smart","route":"alias","targets":2,"reason":"...",
 *    "workflow":..,"task":..,"stream":false,
 *    "attempts":[{"provider","model","outcome","status","http_status",
 *                 "retry_after_ms"?,"latency_ms","error","action"}...],
 *    "status":"ok","provider":"...","provider_model":"...",
 *    "usage":{...},"cost_usd":0.000012345,"cost_nusd":12345,"cost_estimated":false,
 *    "price":{"entry":..,"source":..,"long_context":false},"chunks":0,"total_ms":1.23}
 * Built on first call; see docs/trace.md for every field.
 */
LLMUX_API const char *llmux_result_trace_json(const llmux_result *r);

/* The HTTP status of the provider's last answer (200 on success), or the status
 * llmux itself assigns to a failure that never reached a provider (400 for a
 * bad request, 404 for an unknown model); 0 when there was none. */
LLMUX_API int llmux_result_http_status(const llmux_result *r);

/* Token usage of the call as reported by the provider; -1 when unknown. */
LLMUX_API long llmux_result_prompt_tokens(const llmux_result *r);
LLMUX_API long llmux_result_completion_tokens(const llmux_result *r);

/* When a gateway rate limit refused the call (LLMUX_ERR_RATE_LIMIT before any
 * provider): the milliseconds until it would be admitted; -1 otherwise. Also
 * the trace's top-level "retry_after_ms". */
LLMUX_API long llmux_result_retry_after_ms(const llmux_result *r);

/* Release a result. NULL is a no-op. */
LLMUX_API void llmux_result_free(llmux_result *r);

/* ------------------------------------------------------------------------ */
/* Spend                                                                     */
/* ------------------------------------------------------------------------ */

/*
 * A report of what the gateway has handled since it was opened, grouped by
 * one of "key", "workflow", "task", "model", "provider", "team", "alias"
 * (NULL or "" = one total row):
 *   {"group_by":"task","rows":[{"group":"draft","calls":3,"errors":0,
 *     "prompt_tokens":..,"completion_tokens":..,"cached_tokens":..,
 *     "cache_write_tokens":..,"reasoning_tokens":..,"cost_usd":..,"cost_nusd":..,
 *     "priced_calls":..,"estimated_calls":..,
 *     "unpriced_calls":3}], "total":{...}}
 * cost_usd (an exact decimal) and cost_nusd (integer nano-dollars) sum the
 * calls whose price is known, null when none was; unpriced_calls counts the
 * others. Calls without a workflow or task, and failed calls grouped by
 * model or provider, and calls without a team or alias, count under
 * "(none)"; calls without a key under "(anonymous)"; a configured gateway key
 * appears by its id, any other key only as "key-" and a SHA-256 prefix. *out is allocated by llmux and released with llmux_free.
 * LLMUX_ERR_INVALID_ARGUMENT (and *out NULL) for any other group_by.
 * Thread-safe.
 */
LLMUX_API int llmux_spend_json(llmux *gw, const char *group_by, char **out);

/*
 * The durable ledger (docs/ledger.md), with "ledger": {"journal": "<path>"} in
 * the config. since and until are UTC timestamps, "YYYY-MM-DD" or
 * "YYYY-MM-DDTHH:MM[:SS[.fff]]Z"; a record counts when since <= its time <
 * until; NULL leaves that side open. Records compacted into daily summaries
 * carry the start of their UTC day as their time.
 *
 * llmux_spend_period_json: llmux_spend_json's report (same group_by, same
 * shape) over the journal's records in the period. Both NULL is
 * llmux_spend_json itself (with or without a journal).
 *
 * llmux_ledger_export: the records in the period, format "jsonl" (one JSON
 * object a line, as docs/ledger.md shows) or "csv" (a header row, then one
 * row a record, CRLF line ends, RFC 4180 quoting).
 *
 * llmux_ledger_compact: rewrite the journal as daily summary records now
 * (it also happens by itself past ledger.compact_bytes).
 *
 * LLMUX_ERR_INVALID_ARGUMENT for a malformed timestamp, format or group_by;
 * LLMUX_ERR_UNSUPPORTED without a journal; LLMUX_ERR_IO if the file cannot
 * be read or written. *out is released with llmux_free. Thread-safe.
 */
LLMUX_API int llmux_spend_period_json(llmux *gw, const char *group_by, const char *since,
                                      const char *until, char **out);
LLMUX_API int llmux_ledger_export(llmux *gw, const char *format, const char *since,
                                  const char *until, char **out);
LLMUX_API int llmux_ledger_compact(llmux *gw);

/*
 * What the gateway found at open that it accepted but that will not work as
 * written, as a JSON array of strings, each "json.path: message", e.g.
 * ["providers.openai.api_key_env: the environment variable OPENAI_API_KEY is
 * not set: calls to this provider fail (auth) and fall back to the next
 * target"]. "[]" when there is nothing. With "strict": true in the config,
 * llmux_open refuses such a config instead (LLMUX_ERR_CONFIG, the first
 * warning as the message). *out is released with llmux_free. Thread-safe.
 */
LLMUX_API int llmux_warnings_json(llmux *gw, char **out);

/*
 * A dry run: what the router would decide for this request and these call
 * options, without calling any provider (docs/routing.md). *out receives
 *   {"model":..,"route":"alias"|"direct","alias":..,"rule":N|null,
 *    "strategy":..,"candidates":[{"provider","model"}...],
 *    "skipped":[{"provider","model","reason"}...]}
 * or, when the request cannot be routed, an error object
 * {"error":{"message","code","llmux_status"}} and that status is returned.
 * A weighted or round-robin choice is drawn as a call would draw it. *out is
 * released with llmux_free. Thread-safe.
 */
LLMUX_API int llmux_route_json(llmux *gw, const char *request_json,
                               const llmux_call_options *opts, char **out);

/*
 * The health of every target, as a JSON array (one entry per alias target):
 *   {"alias","provider","model","state":"ok"|"cooldown"|"half_open"|"probing",
 *    "in_flight":N,"failures":N,"cooldown_ms_left":N,"latency_ms":X|null}
 * (see routing.cooldown in docs/config.md). *out is released with
 * llmux_free. Thread-safe.
 */
LLMUX_API int llmux_health_json(llmux *gw, char **out);
/* ------------------------------------------------------------------------ */
/* The call log and metrics (docs/observability.md)                          */
/* ------------------------------------------------------------------------ */

/*
 * Called with one log record: a JSON object (NUL-terminated, no newline; len
 * excludes the NUL), borrowed for the duration of the callback. A call gives
 * one record per attempt (when log.attempts is true, the default) and then
 * one for the call; docs/observability.md names every field. Records never
 * hold provider keys, gateway keys or Authorization headers; the prompt and
 * answer appear only as the config's content policy allows.
 *
 * Called on the gateway's log writer thread, never on a thread that makes
 * calls: a slow callback delays no call (records it cannot keep up with are
 * dropped and counted in llmux_log_dropped_total{reason="queue_full"}).
 * Records arrive in the order the calls finished.
 */
typedef void (*llmux_log_cb)(const char *record_json, size_t len, void *user);

/*
 * Set the log callback (cb NULL removes it); user is passed to every call of
 * it. When this returns, the previous callback is not running and will not
 * be called again. Records of calls that finished before the callback was set
 * are not replayed. May be called from any thread but the callback's own
 * (that gives LLMUX_ERR_INVALID_ARGUMENT). LLMUX_ERR_NO_MEMORY if the writer
 * thread cannot be started. Thread-safe.
 */
LLMUX_API int llmux_set_log_callback(llmux *gw, llmux_log_cb cb, void *user);

/*
 * Wait until every record of the calls that finished before this call has
 * gone through the sinks (file written and flushed, callback called, OTLP
 * export tried), at most timeout_ms. LLMUX_OK, or LLMUX_ERR_TIMEOUT.
 * llmux_close does the same without a limit. Thread-safe.
 */
LLMUX_API int llmux_log_flush(llmux *gw, long timeout_ms);

/*
 * The gateway's metrics in the Prometheus text exposition format (0.0.4):
 * calls, errors and attempts by provider, model and error class; tokens,
 * cost and unpriced calls by gateway key, team and model; histograms of call
 * latency, time to first token and llmux's own overhead; calls in flight; the
 * call log's own counters. docs/observability.md lists every metric. *out is
 * released with llmux_free. Thread-safe.
 */
LLMUX_API int llmux_metrics_text(llmux *gw, char **out);

/* ------------------------------------------------------------------------ */
/* Gateway keys, budgets, rate limits (docs/keys-and-budgets.md)             */
/* ------------------------------------------------------------------------ */

/*
 * Add a gateway key at run time. id: 1-64 letters, digits, '-', '_', '.'.
 * spec_json: the key's object as in the config's "keys" ("sha256", "team",
 * "models", "direct", "expires", "budgets", "limits"), where "key" (the
 * plaintext, at least 8 characters; hashed at once and wiped) may stand in
 * for "sha256". LLMUX_ERR_INVALID_ARGUMENT with a message in errbuf for a bad
 * spec, an id already used or a secret another key has. Thread-safe: calls
 * in flight are not disturbed. With a ledger journal, the key's budgets count
 * what the journal holds under its id in their current periods (reading it
 * may fail with LLMUX_ERR_IO or LLMUX_ERR_NO_MEMORY; the key is added then,
 * its budgets without that past spend).
 */
LLMUX_API int llmux_key_add(llmux *gw, const char *id, const char *spec_json, char *errbuf,
                            size_t errlen);
/* Give key `id` a new secret (plaintext, hashed at once); the old one stops
 * working at once; budgets, limits and the ledger's rows stay the key's. */
LLMUX_API int llmux_key_rotate(llmux *gw, const char *id, const char *new_key, char *errbuf,
                               size_t errlen);
/* Revoke key `id`: its calls fail with LLMUX_ERR_AUTH from now on (for good;
 * the id stays taken). LLMUX_ERR_INVALID_ARGUMENT for an unknown id. */
LLMUX_API int llmux_key_revoke(llmux *gw, const char *id);
/* The keys as a JSON array, by id only (never a hash or a key):
 *   [{"id","team","state":"active"|"revoked"|"expired","direct","models","expires"?}]
 * *out is released with llmux_free. */
LLMUX_API int llmux_keys_json(llmux *gw, char **out);
/* Every budget's state: [{"scope":"global"|"team"|"key","name","period",
 * "limit_usd","spent_usd","held_usd","spent_nusd","held_nusd"}], current
 * period. *out is released with llmux_free. */
LLMUX_API int llmux_budgets_json(llmux *gw, char **out);
/*
 * Called once per alert threshold per budget per period, when a settled call
 * takes spend to or past it, with {"scope","name","period","period_start",
 * "threshold","limit_usd","spent_usd","spent_nusd"} (borrowed for the call).
 * Called on the thread whose call settled, outside llmux's locks; it must be
 * thread-safe and must not block for long. NULL cb: no alerts.
 */
typedef void (*llmux_alert_cb)(const char *alert_json, void *payload);
LLMUX_API int llmux_set_alert_callback(llmux *gw, llmux_alert_cb cb, void *payload);

/* Release memory llmux handed to the caller (e.g. from llmux_spend_json).
 * NULL is a no-op. */
LLMUX_API void llmux_free(void *p);

#ifdef __cplusplus
}
#endif

#endif /* LLMUX_H */
