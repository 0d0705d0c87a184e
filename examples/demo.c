/*
 * llmux demo: send a few requests through an alias with two targets and show,
 * for each, the answer, which provider and model answered, and the trace of
 * every attempt.
 *
 *     llmux-demo CONFIG.json [ALIAS]
 *
 * tools/demo.sh starts the bundled simulator, makes the first target fail and
 * runs this program; no API keys are needed.
 */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llmux.h"

static void print_answer(const llmux_result *res)
{
    cJSON *doc = cJSON_Parse(llmux_result_json(res));
    const cJSON *choices = cJSON_GetObjectItemCaseSensitive(doc, "choices");
    const cJSON *msg = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(choices, 0), "message");
    const cJSON *content = cJSON_GetObjectItemCaseSensitive(msg, "content");
    printf("  answer:   %s\n", cJSON_IsString(content) ? content->valuestring : "(no text)");
    cJSON_Delete(doc);
}

static void print_trace(const llmux_result *res)
{
    cJSON *trace = cJSON_Parse(llmux_result_trace_json(res));
    const cJSON *reason = cJSON_GetObjectItemCaseSensitive(trace, "reason");
    printf("  why:      %s\n", cJSON_IsString(reason) ? reason->valuestring : "?");
    const cJSON *a;
    int i = 1;
    cJSON_ArrayForEach(a, cJSON_GetObjectItemCaseSensitive(trace, "attempts"))
    {
        const cJSON *err = cJSON_GetObjectItemCaseSensitive(a, "error");
        printf("  attempt %d: %-8s %-14s -> %-8s HTTP %3d  %6.2f ms  %s%s%s\n", i++,
               cJSON_GetObjectItemCaseSensitive(a, "provider")->valuestring,
               cJSON_GetObjectItemCaseSensitive(a, "model")->valuestring,
               cJSON_GetObjectItemCaseSensitive(a, "outcome")->valuestring,
               cJSON_GetObjectItemCaseSensitive(a, "http_status")->valueint,
               cJSON_GetObjectItemCaseSensitive(a, "latency_ms")->valuedouble,
               cJSON_GetObjectItemCaseSensitive(a, "action")->valuestring,
               cJSON_IsString(err) ? ": " : "", cJSON_IsString(err) ? err->valuestring : "");
    }
    cJSON_Delete(trace);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s CONFIG.json [ALIAS]\n", argv[0]);
        return 2;
    }
    const char *alias = argc > 2 ? argv[2] : "smart";
    char err[512];
    llmux *gw;
    if (llmux_open_file(&gw, argv[1], err, sizeof err) != LLMUX_OK) {
        fprintf(stderr, "llmux: %s\n", err);
        return 1;
    }
    printf("llmux %s, alias \"%s\"\n\n", llmux_version(), alias);

    static const char *const questions[] = {
        "What is the capital of France?",
        "Summarise the plot of Hamlet in one line.",
        "Classify this ticket: my invoice is wrong.",
    };
    static const char *const tasks[] = {"answer", "summarise", "classify"};
    int failures = 0;
    for (size_t q = 0; q < sizeof questions / sizeof questions[0]; q++) {
        cJSON *req = cJSON_CreateObject();
        cJSON_AddStringToObject(req, "model", alias);
        cJSON *msgs = cJSON_AddArrayToObject(req, "messages");
        cJSON *m = cJSON_CreateObject();
        cJSON_AddStringToObject(m, "role", "user");
        cJSON_AddStringToObject(m, "content", questions[q]);
        cJSON_AddItemToArray(msgs, m);
        char *body = cJSON_PrintUnformatted(req);
        cJSON_Delete(req);

        llmux_call_options opts;
        llmux_call_options_init(&opts, LLMUX_CALL_OPTIONS_VERSION);
        opts.workflow = "demo";
        opts.task = tasks[q];
        llmux_result *res = NULL;
        int rc = llmux_chat(gw, body, &opts, &res);
        free(body);

        printf("Q%zu: %s\n", q + 1, questions[q]);
        if (rc == LLMUX_OK) {
            print_answer(res);
            printf("  answered: provider %s, model %s, %ld+%ld tokens\n",
                   llmux_result_provider(res), llmux_result_model(res),
                   llmux_result_prompt_tokens(res), llmux_result_completion_tokens(res));
        } else {
            failures++;
            printf("  failed:   %s (%s)\n", llmux_result_error(res), llmux_strerror(rc));
        }
        print_trace(res);
        printf("\n");
        llmux_result_free(res);
    }

    char *spend = NULL;
    if (llmux_spend_json(gw, "provider", &spend) == LLMUX_OK)
        printf("spend by provider: %s\n", spend);
    llmux_free(spend);
    llmux_close(gw);
    return failures ? 1 : 0;
}
