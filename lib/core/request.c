#include "core/request.h"

#include <cjson/cJSON.h>

struct cJSON *llmux__request_tree(lx_request *r, lx_err *err)
{
    if (!r->tree && !(r->tree = cJSON_ParseWithLength(r->raw, r->raw_len)))
        llmux__err(err, LLMUX_ERR_NO_MEMORY, "out of memory");
    return r->tree;
}

void llmux__request_free(lx_request *r)
{
    cJSON_Delete(r->tree);
    r->tree = NULL;
}
