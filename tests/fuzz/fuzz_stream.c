/*
 * The SSE decoder and the stream assembler, through the OpenAI adapter's
 * stream decoder as the engine drives them. The input is fed three times:
 * whole, one byte at a time, and cut into random fragments (seeded by the
 * input); every run must end the same way with the same assembled
 * chat.completion.
 */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "engine/assemble.h"
#include "fuzz.h"
#include "providers/provider.h"

#define ASSEMBLY_LIMIT (64u * 1024)

static lx_config *cfg;

typedef struct run {
    lx_assembler assembler;
    lx_err err;
    size_t chunks;
} run;

static int sink(void *ctx, const char *json, size_t len, cJSON *chunk)
{
    run *r = ctx;
    if (!chunk || !json || json[len] != '\0')
        fuzz_fail("a chunk without its JSON or not NUL-terminated");
    r->chunks++;
    return llmux__assembler_add(&r->assembler, chunk, &r->err) != LLMUX_OK;
}

/* Feeds data in fragments (max_frag 0: whole); returns the status and, on
 * success, the assembled JSON in *out. */
static int feed(const uint8_t *data, size_t size, size_t max_frag, fuzz_rng *rng, run *r,
                char **out)
{
    const lx_provider_ops *ops = &llmux__openai_ops;
    void *dec = ops->stream_new(&cfg->providers[0]);
    if (!dec)
        abort();
    llmux__assembler_init(&r->assembler, ASSEMBLY_LIMIT);
    int rc = LLMUX_OK;
    size_t off = 0;
    while (rc == LLMUX_OK && off < size) {
        size_t n = max_frag ? 1 + fuzz_rng_below(rng, max_frag) : size;
        if (n > size - off)
            n = size - off;
        rc = ops->stream_feed(dec, (const char *)data + off, n, sink, r, &r->err);
        if (rc == LX_STREAM_END) { /* [DONE]: the rest of the body is not read */
            rc = LLMUX_OK;
            break;
        }
        if (rc == LLMUX_ERR_CANCELLED && r->err.status)
            rc = r->err.status; /* the assembler refused a chunk */
        off += n;
    }
    if (rc == LLMUX_OK)
        rc = ops->stream_finish(dec, &r->err);
    *out = NULL;
    if (rc == LLMUX_OK) {
        if (!(*out = llmux__assembler_finish(&r->assembler)))
            abort();
        fuzz_check_json("the assembled completion", *out);
    }
    llmux__assembler_free(&r->assembler);
    ops->stream_free(dec);
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!cfg)
        cfg = fuzz_config("http://127.0.0.1:1/v1");
    fuzz_rng rng;
    fuzz_rng_seed(&rng, data, size);
    size_t max_frag = 1 + fuzz_rng_below(&rng, 16);

    run whole = {0};
    char *a = NULL;
    int ra = feed(data, size, 0, &rng, &whole, &a);
    const size_t frags[2] = {1, max_frag};
    for (int k = 0; k < 2; k++) {
        run cut = {0};
        char *b = NULL;
        int rb = feed(data, size, frags[k], &rng, &cut, &b);
        if (ra != rb)
            fuzz_fail("whole input ends %d (%s), in fragments of at most %zu bytes %d (%s)", ra,
                      whole.err.msg, frags[k], rb, cut.err.msg);
        if (whole.chunks != cut.chunks)
            fuzz_fail("whole input gave %zu chunks, fragments of at most %zu bytes %zu",
                      whole.chunks, frags[k], cut.chunks);
        if (ra == LLMUX_OK && strcmp(a, b) != 0)
            fuzz_fail("assembled differently:\n%s\n%s", a, b);
        free(b);
    }
    free(a);
    return 0;
}
