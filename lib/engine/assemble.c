#include "engine/assemble.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "providers/classify.h"

void llmux__assembler_init(lx_assembler *a, size_t limit)
{
    memset(a, 0, sizeof *a);
    a->limit = limit;
    lx_usage unknown = LX_USAGE_UNKNOWN;
    a->u = unknown;
}

/* Take n more bytes out of the call's budget: 0, or -2 when it is spent. */
static int spend(lx_assembler *a, size_t n)
{
    if (n > a->limit - a->used)
        return -2;
    a->used += n;
    return 0;
}

/* 0, -1 out of memory, -2 over the budget. */
static int keep_string(lx_assembler *a, char **slot, const cJSON *v)
{
    if (!cJSON_IsString(v) || !v->valuestring[0])
        return 0;
    if (*slot && strcmp(*slot, v->valuestring) == 0)
        return 0;
    size_t n = strlen(v->valuestring);
    if (spend(a, n))
        return -2;
    char *s = malloc(n + 1);
    if (!s)
        return -1;
    memcpy(s, v->valuestring, n + 1);
    free(*slot);
    *slot = s;
    return 0;
}

static int append_text(lx_assembler *a, lx_buf *b, const cJSON *v)
{
    if (!cJSON_IsString(v))
        return 0;
    size_t n = strlen(v->valuestring);
    if (spend(a, n))
        return -2;
    return llmux__buf_append(b, v->valuestring, n);
}

/* A delta's thinking blocks, kept whole (a signature must go back as it
 * came). 0, -1 out of memory, -2 over the budget. */
static int keep_blocks(lx_assembler *a, lx_asm_choice *c, const cJSON *blocks)
{
    for (const cJSON *b = cJSON_IsArray(blocks) ? blocks->child : NULL; b; b = b->next) {
        char *text = cJSON_PrintUnformatted(b);
        size_t n = text ? strlen(text) : 0;
        free(text);
        if (!text)
            return -1;
        if (spend(a, n))
            return -2;
        if (!c->thinking_blocks && !(c->thinking_blocks = cJSON_CreateArray()))
            return -1;
        cJSON *dup = cJSON_Duplicate(b, 1);
        if (!dup || !cJSON_AddItemToArray(c->thinking_blocks, dup)) {
            cJSON_Delete(dup);
            return -1;
        }
    }
    return 0;
}

/* The error for a non-zero keep_string / append_text result. */
static int kept_error(const lx_assembler *a, int rc, lx_err *err)
{
    if (rc == -2)
        return llmux__err(err, LLMUX_ERR_BAD_RESPONSE,
                          "stream: the assembled answer exceeds %zu bytes "
                          "(transport.max_response_bytes)",
                          a->limit);
    return llmux__err(err, LLMUX_ERR_NO_MEMORY, "out of memory");
}

static int add_tool_delta(lx_assembler *a, lx_asm_choice *c, const cJSON *tc, lx_err *err)
{
    const cJSON *idx = cJSON_GetObjectItemCaseSensitive(tc, "index");
    int i = cJSON_IsNumber(idx) ? idx->valueint : (int)c->n_tools;
    if (i < 0 || i >= LLMUX_ASM_MAX_TOOLS)
        return llmux__err(err, LLMUX_ERR_BAD_RESPONSE, "stream: tool call index %d out of range",
                          i);
    if ((size_t)i >= c->n_tools) {
        lx_asm_tool *t = realloc(c->tools, ((size_t)i + 1) * sizeof *t);
        if (!t)
            return llmux__err(err, LLMUX_ERR_NO_MEMORY, "out of memory");
        memset(t + c->n_tools, 0, ((size_t)i + 1 - c->n_tools) * sizeof *t);
        c->tools = t;
        c->n_tools = (size_t)i + 1;
    }
    lx_asm_tool *t = &c->tools[i];
    const cJSON *fn = cJSON_GetObjectItemCaseSensitive(tc, "function");
    int rc;
    if ((rc = keep_string(a, &t->id, cJSON_GetObjectItemCaseSensitive(tc, "id"))) ||
        (rc = keep_string(a, &t->type, cJSON_GetObjectItemCaseSensitive(tc, "type"))) ||
        (cJSON_IsObject(fn) &&
         ((rc = keep_string(a, &t->name, cJSON_GetObjectItemCaseSensitive(fn, "name"))) ||
          (rc = append_text(a, &t->args, cJSON_GetObjectItemCaseSensitive(fn, "arguments"))))))
        return kept_error(a, rc, err);
    return LLMUX_OK;
}

int llmux__chunk_is_usage_only(const cJSON *chunk)
{
    const cJSON *choices = cJSON_GetObjectItemCaseSensitive(chunk, "choices");
    const cJSON *usage = cJSON_GetObjectItemCaseSensitive(chunk, "usage");
    return cJSON_IsObject(usage) && (!choices || (cJSON_IsArray(choices) && !choices->child));
}

int llmux__assembler_add(lx_assembler *a, const cJSON *chunk, lx_err *err)
{
    int rc;
    if ((rc = keep_string(a, &a->id, cJSON_GetObjectItemCaseSensitive(chunk, "id"))) ||
        (rc = keep_string(a, &a->model, cJSON_GetObjectItemCaseSensitive(chunk, "model"))) ||
        (rc = keep_string(a, &a->system_fingerprint,
                          cJSON_GetObjectItemCaseSensitive(chunk, "system_fingerprint"))))
        return kept_error(a, rc, err);
    const cJSON *created = cJSON_GetObjectItemCaseSensitive(chunk, "created");
    if (cJSON_IsNumber(created))
        a->created = created->valuedouble;
    const cJSON *usage = cJSON_GetObjectItemCaseSensitive(chunk, "usage");
    if (cJSON_IsObject(usage)) {
        cJSON *dup = cJSON_Duplicate(usage, 1);
        if (!dup)
            return llmux__err(err, LLMUX_ERR_NO_MEMORY, "out of memory");
        cJSON_Delete(a->usage);
        a->usage = dup;
        lx_usage fresh = LX_USAGE_UNKNOWN; /* usage in a stream is cumulative: the last counts */
        llmux__usage_from_openai(usage, &fresh);
        /* a stream's parts are not checked against a total: a translated
         * stream's total_tokens is llmux's own sum */
        fresh.total_tokens = -1;
        a->u = fresh;
    }
    const cJSON *choices = cJSON_GetObjectItemCaseSensitive(chunk, "choices");
    if (choices && !cJSON_IsArray(choices) && !cJSON_IsNull(choices))
        return llmux__err(err, LLMUX_ERR_BAD_RESPONSE, "stream: \"choices\" is not an array");
    for (const cJSON *ch = choices ? choices->child : NULL; ch; ch = ch->next) {
        if (!cJSON_IsObject(ch))
            return llmux__err(err, LLMUX_ERR_BAD_RESPONSE, "stream: a choice is not an object");
        const cJSON *idx = cJSON_GetObjectItemCaseSensitive(ch, "index");
        int i = cJSON_IsNumber(idx) ? idx->valueint : 0;
        if (i < 0 || i >= LLMUX_ASM_MAX_CHOICES)
            return llmux__err(err, LLMUX_ERR_BAD_RESPONSE, "stream: choice index %d out of range",
                              i);
        lx_asm_choice *c = &a->choices[i];
        c->used = 1;
        const cJSON *fr = cJSON_GetObjectItemCaseSensitive(ch, "finish_reason");
        if ((rc = keep_string(a, &c->finish_reason, fr)))
            return kept_error(a, rc, err);
        const cJSON *delta = cJSON_GetObjectItemCaseSensitive(ch, "delta");
        if (!cJSON_IsObject(delta))
            continue; /* Azure sends annotation chunks without a delta */
        if ((rc = append_text(a, &c->content, cJSON_GetObjectItemCaseSensitive(delta, "content"))) ||
            (rc = append_text(a, &c->refusal, cJSON_GetObjectItemCaseSensitive(delta, "refusal"))) ||
            (rc = append_text(a, &c->reasoning,
                              cJSON_GetObjectItemCaseSensitive(delta, "reasoning_content"))) ||
            (rc = keep_blocks(a, c, cJSON_GetObjectItemCaseSensitive(delta, "thinking_blocks"))))
            return kept_error(a, rc, err);
        const cJSON *tcs = cJSON_GetObjectItemCaseSensitive(delta, "tool_calls");
        for (const cJSON *tc = cJSON_IsArray(tcs) ? tcs->child : NULL; tc; tc = tc->next) {
            if ((rc = add_tool_delta(a, c, tc, err)))
                return rc;
        }
    }
    return LLMUX_OK;
}

static int attach(cJSON *obj, const char *key, cJSON *item);

static cJSON *build_choice(const lx_asm_choice *c, int index)
{
    cJSON *o = cJSON_CreateObject();
    cJSON *msg = o ? cJSON_AddObjectToObject(o, "message") : NULL;
    if (!msg)
        goto fail;
    cJSON_AddNumberToObject(o, "index", index);
    cJSON_AddStringToObject(msg, "role", "assistant");
    if (!c->n_tools || c->content.len)
        cJSON_AddStringToObject(msg, "content", c->content.data ? c->content.data : "");
    else
        cJSON_AddNullToObject(msg, "content");
    if (c->refusal.len)
        cJSON_AddStringToObject(msg, "refusal", c->refusal.data);
    if (c->reasoning.len)
        cJSON_AddStringToObject(msg, "reasoning_content", c->reasoning.data);
    if (c->thinking_blocks && attach(msg, "thinking_blocks", cJSON_Duplicate(c->thinking_blocks, 1)))
        goto fail;
    if (c->n_tools) {
        cJSON *arr = cJSON_AddArrayToObject(msg, "tool_calls");
        for (size_t t = 0; arr && t < c->n_tools; t++) {
            const lx_asm_tool *tool = &c->tools[t];
            cJSON *tc = cJSON_CreateObject();
            if (!tc || !cJSON_AddItemToArray(arr, tc)) {
                cJSON_Delete(tc);
                goto fail;
            }
            cJSON_AddStringToObject(tc, "id", tool->id ? tool->id : "");
            cJSON_AddStringToObject(tc, "type", tool->type ? tool->type : "function");
            cJSON *fn = cJSON_AddObjectToObject(tc, "function");
            if (!fn)
                goto fail;
            cJSON_AddStringToObject(fn, "name", tool->name ? tool->name : "");
            cJSON_AddStringToObject(fn, "arguments", tool->args.data ? tool->args.data : "");
        }
    }
    cJSON_AddNullToObject(o, "logprobs");
    if (c->finish_reason)
        cJSON_AddStringToObject(o, "finish_reason", c->finish_reason);
    else
        cJSON_AddNullToObject(o, "finish_reason");
    return o;
fail:
    cJSON_Delete(o);
    return NULL;
}

/* obj[key] = item, taking ownership of item even when it fails. */
static int attach(cJSON *obj, const char *key, cJSON *item)
{
    if (item && cJSON_AddItemToObject(obj, key, item))
        return 0;
    cJSON_Delete(item);
    return -1;
}

char *llmux__assembler_finish(lx_assembler *a)
{
    cJSON *o = cJSON_CreateObject();
    cJSON *choices = NULL;
    char *out = NULL;
    if (!o || !cJSON_AddStringToObject(o, "id", a->id ? a->id : "") ||
        !cJSON_AddStringToObject(o, "object", "chat.completion") ||
        !cJSON_AddNumberToObject(o, "created", a->created) ||
        !cJSON_AddStringToObject(o, "model", a->model ? a->model : "") ||
        (a->system_fingerprint &&
         !cJSON_AddStringToObject(o, "system_fingerprint", a->system_fingerprint)) ||
        attach(o, "choices", choices = cJSON_CreateArray()))
        goto done;
    for (int i = 0; i < LLMUX_ASM_MAX_CHOICES; i++) {
        if (!a->choices[i].used)
            continue;
        cJSON *c = build_choice(&a->choices[i], i);
        if (!c || !cJSON_AddItemToArray(choices, c)) {
            cJSON_Delete(c);
            goto done;
        }
    }
    if (a->usage) {
        if (!cJSON_AddItemToObject(o, "usage", a->usage))
            goto done; /* a->usage is still ours: freed with the assembler */
        a->usage = NULL;
    } else {
        cJSON_AddNullToObject(o, "usage");
    }
    out = cJSON_PrintUnformatted(o);
done:
    cJSON_Delete(o);
    return out;
}

void llmux__assembler_free(lx_assembler *a)
{
    free(a->id);
    free(a->model);
    free(a->system_fingerprint);
    cJSON_Delete(a->usage);
    for (int i = 0; i < LLMUX_ASM_MAX_CHOICES; i++) {
        lx_asm_choice *c = &a->choices[i];
        llmux__buf_free(&c->content);
        llmux__buf_free(&c->refusal);
        llmux__buf_free(&c->reasoning);
        cJSON_Delete(c->thinking_blocks);
        free(c->finish_reason);
        for (size_t t = 0; t < c->n_tools; t++) {
            free(c->tools[t].id);
            free(c->tools[t].type);
            free(c->tools[t].name);
            llmux__buf_free(&c->tools[t].args);
        }
        free(c->tools);
    }
    memset(a, 0, sizeof *a);
}
