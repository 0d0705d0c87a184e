/* The provider types llmux knows: the one list of API families. */
#include <stdio.h>
#include <string.h>

#include "providers/provider.h"

#define MAX_TYPES 16

typedef struct entry {
    const char *type;
    const lx_provider_ops *ops; /* NULL: a known family this build does not include yet */
} entry;

static entry types[MAX_TYPES] = {
    {"openai", &llmux__openai_ops},
    {"azure", &llmux__azure_ops},
    {"anthropic", &llmux__anthropic_ops},
    {"gemini", &llmux__gemini_ops},
    {"bedrock", &llmux__bedrock_ops},
};

const lx_provider_ops *llmux__provider_ops_find(const char *type, int *known)
{
    *known = 0;
    for (size_t i = 0; i < MAX_TYPES && types[i].type; i++)
        if (strcmp(types[i].type, type) == 0) {
            *known = types[i].ops == NULL;
            return types[i].ops;
        }
    return NULL;
}

int llmux__provider_register(const lx_provider_ops *ops)
{
    size_t i = 0;
    for (; i < MAX_TYPES && types[i].type; i++)
        if (strcmp(types[i].type, ops->type) == 0) {
            if (types[i].ops)
                return -1;
            types[i].ops = ops; /* a planned family, now provided */
            return 0;
        }
    if (i == MAX_TYPES)
        return -1;
    types[i].type = ops->type;
    types[i].ops = ops;
    return 0;
}

void llmux__provider_types(char *out, size_t cap, int available_only)
{
    size_t used = 0;
    if (cap)
        out[0] = '\0';
    for (size_t i = 0; i < MAX_TYPES && types[i].type; i++) {
        if (available_only && !types[i].ops)
            continue;
        int n = snprintf(out + used, cap - used, "%s%s", used ? ", " : "", types[i].type);
        if (n < 0 || (size_t)n >= cap - used)
            return;
        used += (size_t)n;
    }
}
