/*
 * The Azure OpenAI stream decoder (providers/azure.c over the OpenAI one).
 * The input is fed whole, one byte at a time, and in random fragments; every
 * run must end with the same status and hand the sink the same chunks, each
 * in OpenAI's shape (a "choices" array whose choices all have an object
 * "delta", or, with empty choices, a "usage" object), and no error may quote
 * the provider's key.
 */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "core/buf.h"
#include "fuzz.h"
#include "providers/provider.h"

static lx_config *cfg;

typedef struct run {
    lx_buf chunks; /* every chunk's text, one a line */
    lx_err err;
} run;

static int sink(void *ctx, const char *json, size_t len, cJSON *chunk)
{
    run *r = ctx;
    const cJSON *choices = cJSON_GetObjectItemCaseSensitive(chunk, "choices");
    if (!cJSON_IsObject(chunk) || !json || json[len] != '\0')
        fuzz_fail("a chunk that is not an object, or its text not NUL-terminated");
    if (!cJSON_IsArray(choices) ? !cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(chunk, "usage"))
                                : !choices->child &&
                                      !cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(chunk, "usage")))
        fuzz_fail("a chunk without choices or usage reached the caller: %s", json);
    for (const cJSON *c = cJSON_IsArray(choices) ? choices->child : NULL; c; c = c->next)
        if (cJSON_IsObject(c) && !cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(c, "delta")))
            fuzz_fail("a choice without a delta reached the caller: %s", json);
    fuzz_check_json("a chunk", json);
    if (llmux__buf_append(&r->chunks, json, len) || llmux__buf_append(&r->chunks, "\n", 1))
        abort();
    return 0;
}

static int feed(const uint8_t *data, size_t size, size_t max_frag, fuzz_rng *rng, run *r)
{
    const lx_provider_cfg *p = &cfg->providers[0];
    void *dec = p->ops->stream_new(p);
    if (!dec)
        abort();
    int rc = LLMUX_OK;
    for (size_t off = 0, n; rc == LLMUX_OK && off < size; off += n) {
        n = max_frag ? 1 + fuzz_rng_below(rng, max_frag) : size;
        if (n > size - off)
            n = size - off;
        rc = p->ops->stream_feed(dec, (const char *)data + off, n, sink, r, &r->err);
    }
    if (rc == LX_STREAM_END)
        rc = LLMUX_OK;
    else if (rc == LLMUX_OK)
        rc = p->ops->stream_finish(dec, &r->err);
    p->ops->stream_free(dec);
    if (rc != LLMUX_OK)
        fuzz_check_no_key("a stream error", r->err.msg, strlen(r->err.msg), data, size);
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!cfg) {
        setenv(FUZZ_KEY_ENV, FUZZ_KEY, 1);
        static const char json[] =
            "{\"providers\":{\"p\":{\"type\":\"azure\",\"base_url\":\"http://127.0.0.1:1\","
            "\"api_version\":\"2024-10-21\",\"api_key_env\":\"" FUZZ_KEY_ENV "\"}},"
            "\"models\":{\"m\":{\"targets\":[{\"provider\":\"p\",\"model\":\"dep\"}]}}}";
        lx_err err = {0};
        if (llmux__config_parse(&cfg, json, sizeof json - 1, &err) != LLMUX_OK)
            fuzz_fail("the fuzz config does not parse: %s", err.msg);
    }
    fuzz_rng rng;
    fuzz_rng_seed(&rng, data, size);
    size_t max_frag = 1 + fuzz_rng_below(&rng, 16);
    run whole = {LX_BUF_INIT, {0}};
    int ra = feed(data, size, 0, &rng, &whole);
    const size_t frags[2] = {1, max_frag};
    for (int k = 0; k < 2; k++) {
        run cut = {LX_BUF_INIT, {0}};
        int rb = feed(data, size, frags[k], &rng, &cut);
        if (ra != rb)
            fuzz_fail("whole input ends %d (%s), in fragments of at most %zu bytes %d (%s)", ra,
                      whole.err.msg, frags[k], rb, cut.err.msg);
        if (whole.chunks.len != cut.chunks.len ||
            (whole.chunks.len && memcmp(whole.chunks.data, cut.chunks.data, whole.chunks.len)))
            fuzz_fail("whole input and fragments of at most %zu bytes gave different chunks",
                      frags[k]);
        llmux__buf_free(&cut.chunks);
    }
    llmux__buf_free(&whole.chunks);
    return 0;
}
