#include "fuzz.h"

#include <cjson/cJSON.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "engine/assemble.h"
#include "providers/provider.h"

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

/* ------------------------------------------------------------ stream check */

/* A chunk or completion printed without "created": adapters that translate
 * stamp it with the clock, which may tick between two runs. */
static char *without_created(const cJSON *o)
{
    cJSON *dup = cJSON_Duplicate(o, 1);
    if (!dup)
        abort();
    cJSON_DeleteItemFromObjectCaseSensitive(dup, "created");
    char *text = cJSON_PrintUnformatted(dup);
    cJSON_Delete(dup);
    if (!text)
        abort();
    return text;
}

static char *completion_without_created(const char *json)
{
    cJSON *o = cJSON_Parse(json);
    if (!o)
        fuzz_fail("the assembled completion does not parse");
    char *text = without_created(o);
    cJSON_Delete(o);
    return text;
}

typedef struct stream_run {
    lx_assembler assembler;
    lx_err err;
    size_t chunks;
    unsigned long hash; /* of every chunk's text, in order */
} stream_run;

static int stream_sink(void *ctx, const char *json, size_t len, cJSON *chunk)
{
    stream_run *r = ctx;
    if (!chunk || !json || json[len] != '\0')
        fuzz_fail("a chunk without its JSON or not NUL-terminated");
    r->chunks++;
    char *text = without_created(chunk);
    for (const char *c = text; *c; c++)
        r->hash = r->hash * 31 + (unsigned char)*c;
    free(text);
    return llmux__assembler_add(&r->assembler, chunk, &r->err) != LLMUX_OK;
}

/* Feeds data in fragments (max_frag 0: whole); returns the status and, on
 * success, the assembled JSON in *out. */
static int stream_feed(lx_provider_cfg *p, const uint8_t *data, size_t size, size_t max_frag,
                       fuzz_rng *rng, stream_run *r, size_t limit, char **out)
{
    void *dec = p->ops->stream_new(p);
    if (!dec)
        abort();
    llmux__assembler_init(&r->assembler, limit);
    int rc = LLMUX_OK;
    size_t off = 0;
    while (rc == LLMUX_OK && off < size) {
        size_t n = max_frag ? 1 + fuzz_rng_below(rng, max_frag) : size;
        if (n > size - off)
            n = size - off;
        rc = p->ops->stream_feed(dec, (const char *)data + off, n, stream_sink, r, &r->err);
        if (rc == LX_STREAM_END) { /* the end marker: the rest of the body is not read */
            rc = LLMUX_OK;
            break;
        }
        if (rc == LLMUX_ERR_CANCELLED && r->err.status)
            rc = r->err.status; /* the assembler refused a chunk */
        off += n;
    }
    if (rc == LLMUX_OK)
        rc = p->ops->stream_finish(dec, &r->err);
    *out = NULL;
    if (rc == LLMUX_OK) {
        char *json = llmux__assembler_finish(&r->assembler);
        if (!json)
            abort();
        fuzz_check_json("the assembled completion", json);
        *out = completion_without_created(json);
        free(json);
    }
    llmux__assembler_free(&r->assembler);
    p->ops->stream_free(dec);
    return rc;
}

void fuzz_check_stream(lx_provider_cfg *p, const uint8_t *data, size_t size, size_t limit)
{
    fuzz_rng rng;
    fuzz_rng_seed(&rng, data, size);
    size_t max_frag = 1 + fuzz_rng_below(&rng, 16);

    stream_run whole = {0};
    char *a = NULL;
    int ra = stream_feed(p, data, size, 0, &rng, &whole, limit, &a);
    fuzz_check_no_key("an error", whole.err.msg, strlen(whole.err.msg), data, size);
    const size_t frags[2] = {1, max_frag};
    for (int k = 0; k < 2; k++) {
        stream_run cut = {0};
        char *b = NULL;
        int rb = stream_feed(p, data, size, frags[k], &rng, &cut, limit, &b);
        if (ra != rb)
            fuzz_fail("whole input ends %d (%s), in fragments of at most %zu bytes %d (%s)", ra,
                      whole.err.msg, frags[k], rb, cut.err.msg);
        if (whole.chunks != cut.chunks || whole.hash != cut.hash)
            fuzz_fail("whole input gave %zu chunks, fragments of at most %zu bytes %zu (or "
                      "other ones)", whole.chunks, frags[k], cut.chunks);
        if (ra == LLMUX_OK && strcmp(a, b) != 0)
            fuzz_fail("assembled differently:\n%s\n%s", a, b);
        free(b);
    }
    free(a);
}
