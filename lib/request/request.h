/*
 * The caller's request: its text, the spans of its top-level members, and
 * its cJSON tree, built only when some step needs it (a stream's options, an
 * adapter that translates). The OpenAI-compatible hot path validates and
 * forwards the text without ever building the tree.
 *
 * After validation the request is read-only for the rest of the call: every
 * attempt, whatever its adapter, sees the same request. The tree and the
 * features are computed on first use and cached (logically const).
 */
#ifndef LLMUX_REQUEST_REQUEST_H
#define LLMUX_REQUEST_REQUEST_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "wire/json_members.h"

struct cJSON;

#define LLMUX_REQUEST_MEMBERS 32

/* What routing may look at, read off the request. */
typedef struct lx_request_features {
    int tools;       /* a non-empty "tools" (or "functions") array */
    int images;      /* an image_url content part anywhere in the messages */
    int json_schema; /* response_format asks for json_schema */
    int json_object; /* response_format asks for json_object */
    int stream;      /* the call streams (set by the engine, not by "stream" in the body) */
    int64_t est_prompt_tokens; /* an estimate: the messages' bytes / 4 */
    int64_t max_output_tokens; /* max_completion_tokens or max_tokens; -1 = not asked */
} lx_request_features;

typedef struct lx_request {
    const char *raw;    /* the caller's text (borrowed for the call) */
    size_t raw_len;
    struct cJSON *tree; /* NULL until llmux__request_tree */
    const char *model;  /* the requested model: in model_buf or in the tree */
    char model_buf[128];
    /* the top-level members of raw, when validation recorded them (-1: not) */
    int n_members;
    lx_json_member members[LLMUX_REQUEST_MEMBERS];
    int has_features;
    lx_request_features features;
} lx_request;

/* The parsed request (built on first use, owned by r; never modify it). NULL
 * only when out of memory (err set): the text was validated before. */
const struct cJSON *llmux__request_tree(const lx_request *r, lx_err *err);
/* The request's features (computed on first use). */
const lx_request_features *llmux__request_features(const lx_request *r);
/* The span of top-level member key (unescaped key match), or NULL. Works
 * whether or not validation recorded the members. */
int llmux__request_member(const lx_request *r, const char *key, lx_json_member *out);
void llmux__request_free(lx_request *r);

#endif
