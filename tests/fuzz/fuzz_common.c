#include "fuzz.h"

#include <cjson/cJSON.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"

void fuzz_fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("FUZZ FAILURE: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    abort();
}

char *fuzz_cstr(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (!s)
        abort();
    if (size)
        memcpy(s, data, size);
    s[size] = '\0';
    return s;
}

struct lx_config *fuzz_config(const char *base_url)
{
    setenv(FUZZ_KEY_ENV, FUZZ_KEY, 1);
    char json[512];
    int n = snprintf(json, sizeof json,
                     "{\"providers\":{\"p\":{\"type\":\"openai\",\"base_url\":\"%s\","
                     "\"api_key_env\":\"" FUZZ_KEY_ENV "\"}},"
                     "\"models\":{\"m\":{\"targets\":[{\"provider\":\"p\",\"model\":\"gpt-x\"}]}},"
                     "\"routing\":{\"allow_direct\":true}}",
                     base_url);
    lx_config *cfg = NULL;
    lx_err err = {0};
    if (n < 0 || (size_t)n >= sizeof json ||
        llmux__config_parse(&cfg, json, (size_t)n, &err) != LLMUX_OK)
        fuzz_fail("the fuzz config does not parse: %s", err.msg);
    return cfg;
}

static int has_key(const void *text, size_t len)
{
    static const char key[] = FUZZ_KEY;
    const char *t = text;
    for (size_t i = 0; i + sizeof key - 1 <= len; i++)
        if (memcmp(t + i, key, sizeof key - 1) == 0)
            return 1;
    return 0;
}

void fuzz_check_no_key(const char *what, const char *text, size_t len, const uint8_t *data,
                       size_t size)
{
    if (has_key(text, len) && !has_key(data, size))
        fuzz_fail("the provider key appears in %s", what);
}

void fuzz_check_json(const char *what, const char *text)
{
    cJSON *j = cJSON_Parse(text);
    if (!j)
        fuzz_fail("%s is not valid JSON: %.300s", what, text);
    cJSON_Delete(j);
}

void fuzz_rng_seed(fuzz_rng *r, const uint8_t *data, size_t size)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a over the input */
    for (size_t i = 0; i < size; i++)
        h = (h ^ data[i]) * 1099511628211ull;
    r->s = h ? h : 1;
}

size_t fuzz_rng_below(fuzz_rng *r, size_t n)
{
    r->s ^= r->s << 13;
    r->s ^= r->s >> 7;
    r->s ^= r->s << 17;
    return n ? (size_t)(r->s % n) : 0;
}
