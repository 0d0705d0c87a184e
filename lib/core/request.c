#include "core/request.h"

#include <cjson/cJSON.h>

struct cJSON *llmux__request_tree(llmux_request *r, llmux_err *err)
{
    if (!r->tree && !(r->tree = cJSON_ParseWithLength(r->raw, r->raw_len)))
        llmux__err(err, LLMUX_ERR_NO_MEMORY, "out of memory");
    return r->tree;
}

void llmux__request_free(llmux_request *r)
{
    cJSON_Delete(r->tree);
    r->tree = NULL;
}
