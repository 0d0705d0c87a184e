/*
 * A target's own request parameters (config "params"), merged into the
 * caller's request for that target only: every member of the caller's text is
 * kept byte for byte except those the params replace, and the params are
 * added. The result is a new request; the caller's stays as it was for the
 * other attempts.
 */
#include "request/params.h"

#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "request/validate.h"

#define MAX_MEMBERS 4096

int llmux__request_with_params(const lx_request *base, const char *params, lx_request *out,
                               char **text, lx_err *err)
{
    *text = NULL;
    size_t plen = strlen(params);
    lx_json_member *pm = malloc(64 * sizeof *pm);
    lx_json_member *bm = malloc(MAX_MEMBERS * sizeof *bm);
    int np = pm ? llmux__json_members(params, plen, pm, 64) : -1;
    int nb = bm ? llmux__json_members(base->raw, base->raw_len, bm, MAX_MEMBERS) : -1;
    int rc = LLMUX_OK;
    lx_buf b = LX_BUF_INIT;
    if (!pm || !bm) {
        rc = llmux__err(err, LLMUX_ERR_NO_MEMORY, "out of memory");
        goto done;
    }
    if (np < 0 || nb < 0) { /* the config checked the params, validation the request */
        rc = llmux__err(err, LLMUX_ERR_INTERNAL, "a target's params could not be merged");
        goto done;
    }
    int bad = llmux__buf_reserve(&b, base->raw_len + plen + 2) || llmux__buf_puts(&b, "{");
    int first = 1;
    for (int i = 0; i < nb && !bad; i++) {
        int replaced = 0;
        for (int k = 0; k < np && !replaced; k++) {
            char key[256];
            size_t kl = pm[k].key_len < sizeof key - 1 ? pm[k].key_len : sizeof key - 1;
            memcpy(key, pm[k].key, kl); /* config keys are plain (printed by cJSON) */
            key[kl] = '\0';
            replaced = llmux__json_key_equals(base->raw, &bm[i], key);
        }
        if (replaced)
            continue;
        bad = (!first && llmux__buf_puts(&b, ",")) ||
              llmux__buf_append(&b, base->raw + bm[i].start, bm[i].end - bm[i].start);
        first = 0;
    }
    for (int k = 0; k < np && !bad; k++) {
        bad = (!first && llmux__buf_puts(&b, ",")) ||
              llmux__buf_append(&b, params + pm[k].start, pm[k].end - pm[k].start);
        first = 0;
    }
    if (bad || llmux__buf_puts(&b, "}")) {
        rc = llmux__err(err, LLMUX_ERR_NO_MEMORY, "out of memory");
        goto done;
    }
    *text = llmux__buf_steal(&b);
    out->has_features = 0;
    rc = llmux__request_init(out, *text, strlen(*text), err);
    if (rc) {
        free(*text);
        *text = NULL;
    }
done:
    llmux__buf_free(&b);
    free(pm);
    free(bm);
    return rc;
}
