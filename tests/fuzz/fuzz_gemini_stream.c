/*
 * The Gemini adapter's stream decoder (alt=sse GenerateContentResponse events
 * to OpenAI chunks) and the assembler, as the engine drives them: fed whole,
 * one byte at a time and in random fragments, every run must end the same way,
 * with the same chunks and the same assembled chat.completion, and no error
 * may quote the provider's key (fuzz_stream_three_ways).
 */
#include <stdlib.h>

#include "config/config.h"
#include "fuzz.h"

static lx_config *cfg;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!cfg) {
        static const char json[] =
            "{\"providers\":{\"g\":{\"type\":\"gemini\",\"base_url\":\"http://127.0.0.1:1/v1beta\","
            "\"api_key_env\":\"" FUZZ_KEY_ENV "\"}},"
            "\"models\":{\"m\":{\"targets\":[{\"provider\":\"g\",\"model\":\"gemini-x\"}]}}}";
        lx_err err = {0};
        setenv(FUZZ_KEY_ENV, FUZZ_KEY, 1);
        if (llmux__config_parse(&cfg, json, sizeof json - 1, &err) != LLMUX_OK)
            fuzz_fail("config: %s", err.msg);
    }
    fuzz_stream_three_ways(&cfg->providers[0], data, size);
    return 0;
}
