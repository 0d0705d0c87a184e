/*
 * The Anthropic adapter's stream decoder (named SSE events to OpenAI chunks)
 * and the stream assembler, as the engine drives them: fed whole, one byte
 * at a time and in random fragments, every run must end the same way with the
 * same chunks and the same assembled chat.completion, and no error may quote
 * the key (fuzz_stream_three_ways in fuzz_common.c).
 */
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "fuzz.h"
#include "providers/provider.h"

#define ASSEMBLY_LIMIT (64u * 1024)

static lx_config *cfg;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!cfg) {
        setenv(FUZZ_KEY_ENV, FUZZ_KEY, 1);
        const char *json = "{\"providers\":{\"a\":{\"type\":\"anthropic\",\"base_url\":"
                           "\"http://127.0.0.1:1\",\"api_key_env\":\"" FUZZ_KEY_ENV "\"}},"
                           "\"models\":{\"m\":{\"targets\":[{\"provider\":\"a\",\"model\":\"c\"}]}}}";
        lx_err err = {0};
        if (llmux__config_parse(&cfg, json, strlen(json), &err) != LLMUX_OK)
            fuzz_fail("config: %s", err.msg);
        cfg->providers[0].max_response_bytes = ASSEMBLY_LIMIT;
    }
    fuzz_stream_three_ways(&cfg->providers[0], data, size);
    return 0;
}
