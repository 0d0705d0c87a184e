/*
 * The public chat calls: the input is the request JSON for llmux_chat, or
 * (when its first byte is odd) for llmux_chat_stream, against a gateway
 * whose provider refuses connections (a loopback socket bound but not
 * listening), so each call validates, routes, builds the provider request,
 * fails to connect and reports. Every result must be well formed.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fuzz.h"
#include "llmux.h"

static llmux *gw;

static void open_gateway(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t alen = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &alen) != 0)
        fuzz_fail("cannot bind a loopback socket");
    /* fd stays open (bound, never listening) for the life of the process */
    setenv(FUZZ_KEY_ENV, FUZZ_KEY, 1);
    char cfg[512], err[256];
    snprintf(cfg, sizeof cfg,
             "{\"providers\":{\"p\":{\"type\":\"openai\",\"base_url\":\"http://127.0.0.1:%d/v1\","
             "\"api_key_env\":\"" FUZZ_KEY_ENV "\"}},\"models\":{\"m\":{\"targets\":["
             "{\"provider\":\"p\",\"model\":\"gpt-x\"},{\"provider\":\"p\",\"model\":\"gpt-y\"}]}},"
             "\"routing\":{\"allow_direct\":true},\"defaults\":{\"timeout_ms\":2000}}",
             ntohs(a.sin_port));
    if (llmux_open(&gw, cfg, err, sizeof err) != LLMUX_OK)
        fuzz_fail("the fuzz gateway does not open: %s", err);
}

static int on_chunk(const char *json, size_t len, void *payload)
{
    fuzz_fail("a chunk arrived from a provider that refuses connections: %.*s", (int)len, json);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!gw)
        open_gateway();
    if (!size)
        return 0;
    int stream = data[0] & 1;
    char *req = fuzz_cstr(data + 1, size - 1);
    llmux_result *res = NULL;
    int rc = stream ? llmux_chat_stream(gw, req, NULL, on_chunk, NULL, &res)
                    : llmux_chat(gw, req, NULL, &res);
    if (!res)
        fuzz_fail("no result (status %d)", rc);
    if (rc != llmux_result_status(res))
        fuzz_fail("returned %d, result says %d", rc, llmux_result_status(res));
    if (rc == LLMUX_OK)
        fuzz_fail("a call to a provider that refuses connections succeeded");
    const char *json = llmux_result_json(res), *trace = llmux_result_trace_json(res);
    fuzz_check_json("the result", json);
    fuzz_check_json("the trace", trace);
    fuzz_check_no_key("the result", json, strlen(json), data, size);
    fuzz_check_no_key("the trace", trace, strlen(trace), data, size);
    const char *e = llmux_result_error(res);
    fuzz_check_no_key("the error", e, strlen(e), data, size);
    (void)llmux_result_provider(res);
    (void)llmux_result_model(res);
    (void)llmux_strerror(rc);
    llmux_result_free(res);
    free(req);
    return 0;
}
