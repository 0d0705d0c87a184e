/*
 * The response path: the OpenAI adapter's parse_response on the input as a
 * 2xx body, and its classify_error on the same bytes as an error body.
 * (Masking the key out of provider text is the engine's job, after the
 * adapter: fuzz_chat and the simulator's echo_key fault check that.)
 */
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "core/buf.h"
#include "fuzz.h"
#include "providers/provider.h"

static lx_config *cfg;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const long statuses[] = {400, 401, 403, 404, 408, 413, 429, 500, 503, 529};
    if (!cfg)
        cfg = fuzz_config("http://127.0.0.1:1/v1");
    lx_provider_cfg *p = &cfg->providers[0];

    lx_buf body = LX_BUF_INIT;
    if (size && llmux__buf_append(&body, data, size) != 0)
        abort();
    char *out = NULL;
    lx_usage usage = LX_USAGE_UNKNOWN;
    lx_err err = {0};
    int rc = llmux__openai_ops.parse_response(p, &body, &out, &usage, &err);
    if (rc == LLMUX_OK) {
        if (!out)
            fuzz_fail("parse_response OK without output");
        fuzz_check_json("an accepted response", out);
        if (usage.prompt_tokens < -1 || usage.completion_tokens < -1 || usage.cached_tokens < -1)
            fuzz_fail("negative usage: %lld %lld %lld", (long long)usage.prompt_tokens,
                      (long long)usage.completion_tokens, (long long)usage.cached_tokens);
    } else {
        if (out)
            fuzz_fail("parse_response failed (%d) but set its output", rc);
        if (!memchr(err.msg, '\0', sizeof err.msg))
            fuzz_fail("the error message is not NUL-terminated");
    }
    free(out);
    llmux__buf_free(&body);

    lx_err cerr = {0};
    long status = statuses[size ? data[0] % (sizeof statuses / sizeof statuses[0]) : 0];
    const char *text = size ? (const char *)data : "";
    lx_http_response resp = {0};
    resp.status = status;
    llmux__buf_append(&resp.body, text, size);
    rc = llmux__openai_ops.classify_error(p, &resp, &cerr);
    llmux__http_response_free(&resp);
    if (rc == LLMUX_OK)
        fuzz_fail("classify_error of HTTP %ld answered OK", status);
    if (!memchr(cerr.msg, '\0', sizeof cerr.msg))
        fuzz_fail("the classified error is not NUL-terminated");
    return 0;
}
