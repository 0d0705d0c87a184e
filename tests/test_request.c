/* Validation of incoming requests: each malformed request gets its own error
 * naming the field; valid ones pass. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <cmocka.h>

#include "request/request.h"
#include "request/validate.h"
#include "llmux.h"

static void test_valid_requests(void **state)
{
    const char *ok[] = {
        "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}",
        "{\"model\":\"m\",\"messages\":[{\"role\":\"system\",\"content\":\"s\"},"
        "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"hi\"}]},"
        "{\"role\":\"assistant\",\"tool_calls\":[{\"id\":\"c\",\"type\":\"function\","
        "\"function\":{\"name\":\"f\",\"arguments\":\"{}\"}}]},"
        "{\"role\":\"tool\",\"tool_call_id\":\"c\",\"content\":\"42\"}],\"stream\":false,"
        "\"temperature\":0.2,\"tools\":[]}",
        "  {\"messages\":[{\"role\":\"developer\",\"content\":null}],\"model\":\"m\"}  ",
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        cJSON *req = NULL;
        const char *model = NULL;
        lx_err err = {0};
        int rc = llmux__request_parse(ok[i], strlen(ok[i]), &req, &model, &err);
        if (rc)
            fail_msg("case %zu: %s", i, err.msg);
        assert_string_equal(model, "m");
        cJSON_Delete(req);
    }
}

static void test_invalid_requests(void **state)
{
    static const struct {
        const char *json, *message;
    } bad[] = {
        {"", "request: not valid JSON (error at byte 0)"},
        {"{\"model\":", "request: not valid JSON (error at byte 9)"},
        {"{} x", "request: not valid JSON (error at byte 3)"},
        {"[1]", "request: expected a JSON object"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
         "request.model: required, a non-empty string"},
        {"{\"model\":\"\",\"messages\":[]}", "request.model: required, a non-empty string"},
        {"{\"model\":3,\"messages\":[]}", "request.model: required, a non-empty string"},
        {"{\"model\":\"m\"}", "request.messages: required, a non-empty array"},
        {"{\"model\":\"m\",\"messages\":[]}", "request.messages: required, a non-empty array"},
        {"{\"model\":\"m\",\"messages\":\"hi\"}", "request.messages: required, a non-empty array"},
        {"{\"model\":\"m\",\"messages\":[\"hi\"]}", "request.messages[0]: expected an object"},
        {"{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"a\"},{\"content\":\"b\"}]}",
         "request.messages[1].role: required, one of system, developer, user, assistant, tool"},
        {"{\"model\":\"m\",\"messages\":[{\"role\":\"robot\",\"content\":\"b\"}]}",
         "request.messages[0].role: required, one of system, developer, user, assistant, tool"},
        {"{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":5}]}",
         "request.messages[0].content: expected a string or an array"},
        {"{\"model\":\"m\",\"messages\":[{\"role\":\"user\"}]}",
         "request.messages[0].content: required"},
        {"{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"stream\":\"yes\"}",
         "request.stream: expected true or false"},
        /* a second key would be forwarded while the first one is routed */
        {"{\"model\":\"cheap\",\"model\":\"o1-pro\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
         "request: duplicate key \"model\" (each top-level key may appear once)"},
        {"{\"model\":\"cheap\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"mod\\u0065l\":\"o1\"}",
         "request: duplicate key \"model\" (each top-level key may appear once)"},
        {"{\"n\":1,\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"n\":2}",
         "request: duplicate key \"n\" (each top-level key may appear once)"},
        {"{\"t\\u00e9\":1,\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"t\xc3\xa9\":2}",
         "request: duplicate key \"t\xc3\xa9\" (each top-level key may appear once)"},
        /* what cJSON would take: control bytes, raw control characters, leading
         * zeros, invalid UTF-8 */
        {"{\x01\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
         "request: not valid JSON (error at byte 1)"},
        {"{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"a\x7f\tb\"}]}",
         "request: not valid JSON (error at byte 53)"},
        {"{\"model\":\"m\",\"n\":01,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
         "request: not valid JSON (error at byte 18)"},
        {"{\"model\":\"m\xff\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
         "request: not valid UTF-8 (error at byte 11)"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cJSON *req = (cJSON *)1;
        const char *model = NULL;
        lx_err err = {0};
        int rc = llmux__request_parse(bad[i].json, strlen(bad[i].json), &req, &model, &err);
        if (rc != LLMUX_ERR_BAD_REQUEST || strcmp(err.msg, bad[i].message) != 0)
            fail_msg("case %zu: %s\n want: %s\n  got: %d %s", i, bad[i].json, bad[i].message, rc,
                     err.msg);
        assert_int_equal(err.http_status, 400);
        assert_null(req);
        /* the text-only path refuses it with the same words */
        lx_request r;
        lx_err e2 = {0};
        assert_int_equal(llmux__request_init(&r, bad[i].json, strlen(bad[i].json), &e2),
                         LLMUX_ERR_BAD_REQUEST);
        assert_string_equal(e2.msg, bad[i].message);
        llmux__request_free(&r);
    }
}

static void test_truncations_of_valid_request_all_fail_cleanly(void **state)
{
    const char *full = "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"h\\u00e9\"}]}";
    for (size_t n = 0; n < strlen(full); n++) {
        cJSON *req = NULL;
        const char *model = NULL;
        lx_err err = {0};
        int rc = llmux__request_parse(full, n, &req, &model, &err);
        assert_int_equal(rc, LLMUX_ERR_BAD_REQUEST);
        assert_null(req);
    }
}

/* The text-only fast path accepts exactly what the tree path accepts, with
 * the same model, over valid requests and thousands of mutations. */
static void test_fast_path_agrees_with_tree_path(void **state)
{
    const char *bases[] = {
        "{\"model\":\"gpt\",\"messages\":[{\"role\":\"system\",\"content\":\"be brief\"},"
        "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"hi\"}]},"
        "{\"role\":\"assistant\",\"tool_calls\":[]},{\"role\":\"tool\",\"content\":null}],"
        "\"stream\":false,\"n\":1}",
        "{\"messages\":[{\"content\":\"x\",\"role\":\"developer\"}],\"model\":\"a/b\"}",
        /* duplicates, and one letter away from more ("modal", "m") */
        "{\"model\":\"gpt\",\"n\":1,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
        "\"modal\":\"o1\",\"m\":2,\"n\":2}",
        "{\"model\":\"gpt\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"model\":\"o1\"}",
    };
    const char alphabet[] = "{}[]\",:\\ 0nultrefasymdvop";
    unsigned seed = 99;
    int fast_used = 0, duplicates = 0;
    for (size_t b = 0; b < sizeof bases / sizeof bases[0]; b++) {
        size_t len = strlen(bases[b]);
        char *buf = malloc(len + 1);
        for (int round = 0; round < 6000; round++) {
            memcpy(buf, bases[b], len + 1);
            for (int e = 0; e < round % 3; e++) {
                seed = seed * 1103515245u + 12345u;
                size_t at = (seed >> 8) % len;
                seed = seed * 1103515245u + 12345u;
                buf[at] = alphabet[(seed >> 8) % (sizeof alphabet - 1)];
            }
            lx_request r;
            lx_err e1 = {0}, e2 = {0};
            int rc_fast = llmux__request_init(&r, buf, len, &e1);
            cJSON *tree = NULL;
            const char *model = NULL;
            int rc_tree = llmux__request_parse(buf, len, &tree, &model, &e2);
            if (rc_fast != rc_tree)
                fail_msg("disagree on %s: fast %d (%s), tree %d (%s)", buf, rc_fast, e1.msg, rc_tree,
                         e2.msg);
            if (rc_fast == LLMUX_OK) {
                assert_string_equal(r.model, model);
                fast_used += r.tree == NULL;
            } else {
                assert_string_equal(e1.msg, e2.msg);
                duplicates += strncmp(e1.msg, "request: duplicate key", 22) == 0;
            }
            cJSON_Delete(tree);
            llmux__request_free(&r);
        }
        free(buf);
    }
    assert_true(fast_used > 1000); /* the fast path really ran */
    assert_true(duplicates > 5000); /* and duplicates were refused on both */
}

/* The features read from the top-level members (no tree) are the ones the
 * tree gives, on requests with and without tools, images, response formats,
 * output limits of every shape and \\u escapes, and on valid mutations. */
static void features_of(const char *json, int tree_only, lx_request_features *out, int *used_tree)
{
    lx_request r;
    lx_err e = {0};
    assert_int_equal(llmux__request_init(&r, json, strlen(json), &e), LLMUX_OK);
    if (tree_only)
        r.n_members = -1;
    r.has_features = 0;
    *out = *llmux__request_features(&r);
    *used_tree = r.tree != NULL;
    llmux__request_free(&r);
}

static void test_features_without_the_tree_agree(void **state)
{
    static const char *const REQS[] = {
        "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}",
        "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"max_tokens\":16}",
        "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"max_tokens\":16,"
        "\"max_completion_tokens\":99}",
        "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"max_completion_tokens\":null,"
        "\"max_tokens\":7}",
        "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"max_tokens\":-3}",
        "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"max_tokens\":1e13}",
        "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"max_tokens\":12.7}",
        "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"tools\":[]}",
        "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"tools\":[ ]}",
        "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"tools\":[{\"type\":"
        "\"function\",\"function\":{\"name\":\"f\"}}]}",
        "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"functions\":[{\"name\":\"f\"}]}",
        "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"tools\":null}",
        "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\","
        "\"image_url\":{\"url\":\"data:image/png;base64,AA\"}}]}]}",
        "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image\\u005furl\","
        "\"image_url\":{\"url\":\"x\"}}]}]}",
        "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"what is an image_url?\"}]}",
        "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"response_format\":"
        "{\"type\":\"json_schema\",\"json_schema\":{\"name\":\"x\",\"schema\":{}}}}",
        "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"response_format\":"
        "{\"type\":\"json_object\"}}",
    };
    int from_members = 0;
    for (size_t i = 0; i < sizeof REQS / sizeof REQS[0]; i++) {
        lx_request_features a, b;
        int tree_a, tree_b;
        features_of(REQS[i], 0, &a, &tree_a);
        features_of(REQS[i], 1, &b, &tree_b);
        assert_true(tree_b);
        from_members += !tree_a;
        if (a.tools != b.tools || a.images != b.images || a.json_schema != b.json_schema ||
            a.json_object != b.json_object || a.max_output_tokens != b.max_output_tokens ||
            a.est_prompt_tokens != b.est_prompt_tokens)
            fail_msg("features differ on %s: tools %d/%d images %d/%d schema %d/%d object %d/%d "
                     "max_out %lld/%lld",
                     REQS[i], a.tools, b.tools, a.images, b.images, a.json_schema, b.json_schema,
                     a.json_object, b.json_object, (long long)a.max_output_tokens,
                     (long long)b.max_output_tokens);
    }
    assert_true(from_members >= 10); /* the plain ones really skipped the tree */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_requests),
        cmocka_unit_test(test_invalid_requests),
        cmocka_unit_test(test_truncations_of_valid_request_all_fail_cleanly),
        cmocka_unit_test(test_fast_path_agrees_with_tree_path),
        cmocka_unit_test(test_features_without_the_tree_agree),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
