/*
 * The SSE decoder and the stream assembler, through the OpenAI adapter's
 * stream decoder as the engine drives them. The input is fed three times:
 * whole, one byte at a time, and cut into random fragments (seeded by the
 * input); every run must end the same way with the same assembled
 * chat.completion (fuzz_check_stream in fuzz_common.c).
 */
#include "config/config.h"
#include "fuzz.h"
#include "providers/provider.h"

#define ASSEMBLY_LIMIT (64u * 1024)

static lx_config *cfg;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!cfg)
        cfg = fuzz_config("http://127.0.0.1:1/v1");
    fuzz_check_stream(&cfg->providers[0], data, size, ASSEMBLY_LIMIT);
    return 0;
}
