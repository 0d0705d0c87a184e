/* One gateway shared by 8 threads x 200 calls, half of them through an alias
 * whose first target fails every time. Run under ASan/UBSan by the test
 * command. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <cmocka.h>

#include "llmux.h"
#include "sim_harness.h"

#define THREADS 8
#define CALLS 200

static sim SIM;

typedef struct worker {
    llmux *gw;
    int id;
    int ok, wrong;
} worker;

static void *run(void *arg)
{
    worker *w = arg;
    for (int i = 0; i < CALLS; i++) {
        const char *model = (i % 2) ? "fb" : "one";
        char req[256];
        snprintf(req, sizeof req,
                 "{\"model\":\"%s\",\"messages\":[{\"role\":\"user\",\"content\":\"t%d c%d\"}]}",
                 model, w->id, i);
        llmux_call_options o;
        llmux_call_options_init(&o, LLMUX_CALL_OPTIONS_VERSION);
        char task[16];
        snprintf(task, sizeof task, "task%d", w->id);
        o.task = task;
        llmux_result *r = NULL;
        if (llmux_chat(w->gw, req, &o, &r) == LLMUX_OK) {
            /* each answer is the one to this thread's own question */
            char want[64];
            snprintf(want, sizeof want, "] t%d c%d\"", w->id, i);
            if (strstr(llmux_result_json(r), want) && strcmp(llmux_result_provider(r), "good") == 0)
                w->ok++;
            else
                w->wrong++;
        } else {
            w->wrong++;
        }
        if (i % 50 == 0)
            (void)llmux_result_trace_json(r);
        llmux_result_free(r);
    }
    return NULL;
}

static void test_eight_threads_share_one_gateway(void **state)
{
    assert_int_equal(sim_set(&SIM, "bad", "{\"faults\":[{\"type\":\"status\",\"status\":503,\"count\":-1}]}"), 200);
    const char *deps[] = {"good", "bad", NULL};
    char *cfg = sim_config(&SIM, deps,
                           "{\"one\":{\"targets\":[{\"provider\":\"good\",\"model\":\"g\"}]},"
                           "\"fb\":{\"targets\":[{\"provider\":\"bad\",\"model\":\"b\"},"
                           "{\"provider\":\"good\",\"model\":\"g\"}]}}",
                           NULL);
    llmux *gw;
    char err[256];
    assert_int_equal(llmux_open(&gw, cfg, err, sizeof err), LLMUX_OK);
    free(cfg);
    pthread_t th[THREADS];
    worker w[THREADS];
    for (int i = 0; i < THREADS; i++) {
        w[i] = (worker){gw, i, 0, 0};
        assert_int_equal(pthread_create(&th[i], NULL, run, &w[i]), 0);
    }
    int ok = 0;
    for (int i = 0; i < THREADS; i++) {
        pthread_join(th[i], NULL);
        ok += w[i].ok;
        assert_int_equal(w[i].wrong, 0);
    }
    assert_int_equal(ok, THREADS * CALLS);

    char *report = NULL;
    assert_int_equal(llmux_spend_json(gw, "task", &report), LLMUX_OK);
    cJSON *j = cJSON_Parse(report);
    assert_int_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "total"), "calls")->valueint,
                     THREADS * CALLS);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(j, "rows")), THREADS);
    cJSON_Delete(j);
    llmux_free(report);
    llmux_close(gw);
}

static int setup(void **state)
{
    return sim_start(&SIM);
}

static int teardown(void **state)
{
    sim_stop(&SIM);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_eight_threads_share_one_gateway),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
