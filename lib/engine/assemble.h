/*
 * Builds the chat.completion a stream amounts to, from its OpenAI-shaped
 * chunks: content, refusal and reasoning text, thinking blocks, tool calls
 * (arguments joined across chunks by tool index), finish reasons and usage. Provider independent: every
 * adapter's stream decoder emits OpenAI chunks.
 */
#ifndef LLMUX_ENGINE_ASSEMBLE_H
#define LLMUX_ENGINE_ASSEMBLE_H

#include <stddef.h>

#include "core/buf.h"
#include "providers/provider.h"

struct cJSON;

typedef struct lx_asm_tool {
    char *id, *type, *name;
    lx_buf args;
} lx_asm_tool;

typedef struct lx_asm_choice {
    int used;
    lx_buf content, refusal;
    lx_buf reasoning;              /* delta.reasoning_content, joined */
    struct cJSON *thinking_blocks; /* delta.thinking_blocks items, in order (Anthropic) */
    char *finish_reason;
    lx_asm_tool *tools;
    size_t n_tools;
} lx_asm_choice;

#define LLMUX_ASM_MAX_CHOICES 16
#define LLMUX_ASM_MAX_TOOLS 128

typedef struct lx_assembler {
    char *id, *model, *system_fingerprint;
    double created;
    lx_asm_choice choices[LLMUX_ASM_MAX_CHOICES];
    struct cJSON *usage; /* the last usage object seen */
    lx_usage u;
    size_t limit; /* the call's budget: all text kept, every field together */
    size_t used;  /* bytes of it kept so far */
} lx_assembler;

/* limit bounds everything the assembler keeps for the call, all choices and
 * tool calls together (transport.max_response_bytes). */
void llmux__assembler_init(lx_assembler *a, size_t limit);
/* Fold one chunk in. LLMUX_OK, or BAD_RESPONSE / NO_MEMORY with a message. */
int llmux__assembler_add(lx_assembler *a, const struct cJSON *chunk, lx_err *err);
/* 1 when the chunk carries usage and no choices (the include_usage chunk). */
int llmux__chunk_is_usage_only(const struct cJSON *chunk);
/* The assembled chat.completion JSON (malloc'd), or NULL on out of memory. */
char *llmux__assembler_finish(lx_assembler *a);
void llmux__assembler_free(lx_assembler *a);

#endif
