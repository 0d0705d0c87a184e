#include <stdlib.h>
#include <string.h>

#include "providers/provider.h"

const lx_provider_ops *llmux__provider_ops_find(const char *type, int *known)
{
    static const char *const planned[] = {"azure", "anthropic", "gemini", "bedrock", NULL};
    *known = 0;
    if (strcmp(type, "openai") == 0)
        return &llmux__openai_ops;
    for (const char *const *p = planned; *p; p++)
        if (strcmp(type, *p) == 0)
            *known = 1;
    return NULL;
}

void llmux__http_request_free(lx_http_request *req)
{
    if (!req)
        return;
    free(req->body);
    req->body = NULL;
    req->body_len = 0;
}
