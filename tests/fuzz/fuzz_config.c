/* The config parser through the public API: llmux_open on the input. */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "llmux.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    setenv(FUZZ_KEY_ENV, FUZZ_KEY, 1);
    char *json = fuzz_cstr(data, size);
    char err[256];
    memset(err, 'x', sizeof err);
    llmux *gw = NULL;
    int rc = llmux_open(&gw, json, err, sizeof err);
    if (rc == LLMUX_OK) {
        if (!gw)
            fuzz_fail("llmux_open returned OK without a gateway");
        llmux_close(gw);
    } else {
        if (gw)
            fuzz_fail("llmux_open failed (%d) but set *out", rc);
        if (!memchr(err, '\0', sizeof err))
            fuzz_fail("the error message is not NUL-terminated");
        fuzz_check_no_key("a config error", err, strlen(err), data, size);
    }
    free(json);
    return 0;
}
