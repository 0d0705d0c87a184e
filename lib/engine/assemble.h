/*
 * Builds the chat.completion a stream amounts to, from its OpenAI-shaped
 * chunks: content and refusal text, tool calls (arguments joined across
 * chunks by tool index), finish reasons and usage. Provider independent: every
 * adapter's stream decoder emits OpenAI chunks.
 */
#ifndef LLMUX_ENGINE_ASSEMBLE_H
#define LLMUX_ENGINE_ASSEMBLE_H

#include <stddef.h>

#include "core/buf.h"
#include "providers/provider.h"

struct cJSON;

typedef struct llmux_asm_tool {
    char *id, *type, *name;
    llmux_buf args;
} llmux_asm_tool;

typedef struct llmux_asm_choice {
    int used;
    llmux_buf content, refusal;
    char *finish_reason;
    llmux_asm_tool *tools;
    size_t n_tools;
} llmux_asm_choice;

#define LLMUX_ASM_MAX_CHOICES 16
#define LLMUX_ASM_MAX_TOOLS 128

typedef struct llmux_assembler {
    char *id, *model, *system_fingerprint;
    double created;
    llmux_asm_choice choices[LLMUX_ASM_MAX_CHOICES];
    struct cJSON *usage; /* the last usage object seen */
    llmux_usage u;
    size_t limit; /* cap on accumulated text per field */
} llmux_assembler;

void llmux__assembler_init(llmux_assembler *a, size_t limit);
/* Fold one chunk in. LLMUX_OK, or BAD_RESPONSE / NO_MEMORY with a message. */
int llmux__assembler_add(llmux_assembler *a, const struct cJSON *chunk, llmux_err *err);
/* 1 when the chunk carries usage and no choices (the include_usage chunk). */
int llmux__chunk_is_usage_only(const struct cJSON *chunk);
/* The assembled chat.completion JSON (malloc'd), or NULL on out of memory. */
char *llmux__assembler_finish(llmux_assembler *a);
void llmux__assembler_free(llmux_assembler *a);

#endif
