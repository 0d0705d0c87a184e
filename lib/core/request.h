/*
 * The caller's request: its text, and its cJSON tree built only when some
 * step needs it (a stream, an adapter that translates). The OpenAI-compatible
 * hot path validates and forwards the text without ever building the tree.
 */
#ifndef LLMUX_CORE_REQUEST_H
#define LLMUX_CORE_REQUEST_H

#include <stddef.h>

#include "core/error.h"
#include "wire/json_members.h"

struct cJSON;

#define LLMUX_REQUEST_MEMBERS 32

typedef struct lx_request {
    const char *raw;    /* the caller's text (borrowed for the call) */
    size_t raw_len;
    struct cJSON *tree; /* NULL until llmux__request_tree */
    const char *model;  /* the requested model: in model_buf or in the tree */
    char model_buf[128];
    /* the top-level members of raw, when validation recorded them (-1: not) */
    int n_members;
    lx_json_member members[LLMUX_REQUEST_MEMBERS];
} lx_request;

/* The parsed request (built on first use, owned by r). NULL only when out of
 * memory (err set): the text was validated before. */
struct cJSON *llmux__request_tree(lx_request *r, lx_err *err);
void llmux__request_free(lx_request *r);

#endif
