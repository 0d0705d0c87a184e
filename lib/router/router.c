#include "router/router.h"

#include <stdio.h>
#include <string.h>

int llmux__route(const lx_config *cfg, const char *model, lx_route *out, lx_err *err)
{
    const lx_alias *a = llmux__config_find_alias(cfg, model);
    if (a) {
        out->kind = "alias";
        out->targets = a->targets;
        out->n_targets = a->n_targets;
        return LLMUX_OK;
    }
    const char *slash = strchr(model, '/');
    if (cfg->allow_direct && slash && slash[1]) {
        lx_provider_cfg *p = llmux__config_find_provider(cfg, model, (size_t)(slash - model));
        if (p) {
            out->kind = "direct";
            out->direct.provider = p;
            out->direct.model = (char *)(slash + 1);
            out->targets = &out->direct;
            out->n_targets = 1;
            return LLMUX_OK;
        }
    }
    /* name what is configured, so a typo is easy to spot */
    char known[200] = "";
    size_t used = 0;
    for (size_t i = 0; i < cfg->n_aliases && used + 1 < sizeof known; i++) {
        int n = snprintf(known + used, sizeof known - used, "%s%s", i ? ", " : "",
                         cfg->aliases[i].name);
        if (n < 0 || (size_t)n >= sizeof known - used) {
            snprintf(known + (sizeof known - 5), 5, "...");
            break;
        }
        used += (size_t)n;
    }
    err->http_status = 404;
    return llmux__err(err, LLMUX_ERR_UNKNOWN_MODEL,
                      "model \"%.100s\" is not a configured alias (configured: %s)%s", model,
                      known[0] ? known : "none",
                      cfg->allow_direct ? "; direct routes are written provider/model" : "");
}
