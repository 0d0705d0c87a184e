/*
 * The request path, differential: the fast text scan (llmux__request_init)
 * and the cJSON tree validation (llmux__request_parse) must agree on
 * accept/reject and on the model.
 */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "request/validate.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *json = fuzz_cstr(data, size);
    lx_request r;
    memset(&r, 0, sizeof r);
    lx_err fast_err = {0}, tree_err = {0};
    int fast = llmux__request_init(&r, json, size, &fast_err);
    cJSON *tree = NULL;
    const char *model = NULL;
    int slow = llmux__request_parse(json, size, &tree, &model, &tree_err);
    if ((fast == LLMUX_OK) != (slow == LLMUX_OK))
        fuzz_fail("request_init says %d (%s), request_parse says %d (%s)", fast, fast_err.msg,
                  slow, tree_err.msg);
    if (fast == LLMUX_OK) {
        if (!r.model || !model || strcmp(r.model, model) != 0)
            fuzz_fail("model differs: fast \"%s\", tree \"%s\"", r.model ? r.model : "(null)",
                      model ? model : "(null)");
    } else if (fast != slow || strcmp(fast_err.msg, tree_err.msg) != 0) {
        fuzz_fail("errors differ: fast %d \"%s\", tree %d \"%s\"", fast, fast_err.msg, slow,
                  tree_err.msg);
    }
    cJSON_Delete(tree);
    llmux__request_free(&r);
    free(json);
    return 0;
}
