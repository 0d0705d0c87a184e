/*
 * The AWS event-stream decoder and the Bedrock adapter's ConverseStream
 * decoder into the stream assembler, as the engine drives them. The input is
 * fed whole, one byte at a time and in random fragments (seeded by the
 * input); every run must end the same way with the same chunks and the same
 * assembled chat.completion, which is valid JSON. The first byte picks
 * whether the input is framed as it is, or each 2-byte-length-prefixed piece
 * of it is wrapped into a correctly framed event (so the fuzzer reaches the
 * JSON handling behind the CRCs).
 */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "engine/assemble.h"
#include "fuzz.h"
#include "providers/provider.h"
#include "wire/eventstream.h"

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
    fuzz_check_json("a chunk", json);
    r->chunks++;
    return llmux__assembler_add(&r->assembler, chunk, &r->err) != LLMUX_OK;
}

static int feed(const char *data, size_t size, size_t max_frag, fuzz_rng *rng, run *r, char **out)
{
    const lx_provider_ops *ops = cfg->providers[0].ops;
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
        rc = ops->stream_feed(dec, data + off, n, sink, r, &r->err);
        if (rc == LX_STREAM_END) {
            rc = LLMUX_OK;
            break;
        }
        if (rc == LLMUX_ERR_CANCELLED && r->err.status)
            rc = r->err.status;
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

/* Pieces "len_hi len_lo type_len type payload..." as framed events. */
static void frame_pieces(const uint8_t *d, size_t n, lx_buf *out)
{
    static const char *const types[] = {"messageStart", "contentBlockStart", "contentBlockDelta",
                                        "contentBlockStop", "messageStop", "metadata"};
    while (n >= 3) {
        size_t len = (size_t)d[0] << 8 | d[1];
        const char *type = types[d[2] % 6];
        d += 3;
        n -= 3;
        if (len > n)
            len = n;
        const char *names[] = {":message-type", ":event-type", ":content-type"};
        const char *values[] = {"event", type, "application/json"};
        if (llmux__es_encode(out, names, values, 3, d, len))
            abort();
        d += len;
        n -= len;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!cfg) {
        setenv("LLMUX_FUZZ_AWS_AK", "AKIDFUZZ", 1);
        setenv("LLMUX_FUZZ_AWS_SK", FUZZ_KEY, 1);
        const char *json =
            "{\"providers\":{\"b\":{\"type\":\"bedrock\",\"region\":\"us-east-1\","
            "\"access_key_id_env\":\"LLMUX_FUZZ_AWS_AK\",\"secret_access_key_env\":\"LLMUX_FUZZ_AWS_SK\"}},"
            "\"models\":{\"m\":{\"targets\":[{\"provider\":\"b\",\"model\":\"x\"}]}}}";
        lx_err err = {0};
        if (llmux__config_parse(&cfg, json, strlen(json), &err) != LLMUX_OK)
            fuzz_fail("config: %s", err.msg);
    }
    if (!size)
        return 0;
    lx_buf framed = LX_BUF_INIT;
    const char *in = (const char *)data + 1;
    size_t n = size - 1;
    if (data[0] & 1) {
        frame_pieces(data + 1, size - 1, &framed);
        in = framed.data ? framed.data : "";
        n = framed.len;
    }
    fuzz_rng rng;
    fuzz_rng_seed(&rng, data, size);
    size_t max_frag = 1 + fuzz_rng_below(&rng, 16);
    run whole = {0};
    char *a = NULL;
    int ra = feed(in, n, 0, &rng, &whole, &a);
    if (ra != LLMUX_OK)
        fuzz_check_no_key("an error", whole.err.msg, strlen(whole.err.msg), data, size);
    const size_t frags[2] = {1, max_frag};
    for (int k = 0; k < 2; k++) {
        run cut = {0};
        char *b = NULL;
        int rb = feed(in, n, frags[k], &rng, &cut, &b);
        if (ra != rb)
            fuzz_fail("whole input ends %d (%s), in fragments of at most %zu bytes %d (%s)", ra,
                      whole.err.msg, frags[k], rb, cut.err.msg);
        if (whole.chunks != cut.chunks)
            fuzz_fail("whole input gave %zu chunks, fragments of at most %zu bytes %zu",
                      whole.chunks, frags[k], cut.chunks);
        if (ra == LLMUX_OK && strcmp(a, b) != 0) {
            /* ids are random per decoder: compare without them */
            cJSON *x = cJSON_Parse(a), *y = cJSON_Parse(b);
            cJSON_DeleteItemFromObject(x, "id");
            cJSON_DeleteItemFromObject(y, "id");
            cJSON_DeleteItemFromObject(x, "created");
            cJSON_DeleteItemFromObject(y, "created");
            if (!cJSON_Compare(x, y, 1))
                fuzz_fail("assembled differently:\n%s\n%s", a, b);
            cJSON_Delete(x);
            cJSON_Delete(y);
        }
        free(b);
    }
    free(a);
    llmux__buf_free(&framed);
    return 0;
}
