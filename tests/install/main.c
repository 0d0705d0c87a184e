/* Links against an installed llmux and opens a gateway. */
#include <llmux.h>
#include <stdio.h>
#include <string.h>

int main(void)
{
    llmux *gw;
    char err[256];
    int rc = llmux_open(&gw,
                        "{\"providers\":{\"p\":{\"type\":\"openai\",\"base_url\":\"http://127.0.0.1:9/v1\"}},"
                        "\"models\":{\"m\":{\"targets\":[{\"provider\":\"p\",\"model\":\"x\"}]}}}",
                        err, sizeof err);
    if (rc != LLMUX_OK || strcmp(llmux_version(), LLMUX_VERSION_STRING) != 0) {
        fprintf(stderr, "install check failed: %s\n", err);
        return 1;
    }
    llmux_close(gw);
    printf("llmux %s installed and usable\n", llmux_version());
    return 0;
}
