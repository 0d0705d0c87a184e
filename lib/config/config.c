/*
 * Config parsing and validation. Every error names the JSON path of the value
 * at fault, e.g. `models.smart.targets[1].provider`.
 */
#include "config/config.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/hash.h"
#include "providers/provider.h"
#include "wire/json_check.h"

#define DEFAULT_TIMEOUT_MS 60000L
#define DEFAULT_CONNECT_TIMEOUT_MS 10000L
#define DEFAULT_MAX_CONNECTIONS 64L
#define DEFAULT_MAX_RESPONSE_BYTES (32L * 1024 * 1024)
#define MAX_TIMEOUT_MS (24L * 3600 * 1000)
#define MAX_NAME_LEN 128
#define PATH_MAX_LEN 256

/* ------------------------------------------------------------------ helpers */

static char *dupstr(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = malloc(n);
    if (p)
        memcpy(p, s, n);
    return p;
}

static int is_plain_name(const char *s)
{
    for (; *s; s++)
        if (!(isalnum((unsigned char)*s) || *s == '_' || *s == '-'))
            return 0;
    return 1;
}

/* path + "." + key (or ["key"] for keys that are not plain names). */
static void path_child(char *out, const char *path, const char *key)
{
    if (is_plain_name(key) && *key)
        snprintf(out, PATH_MAX_LEN, "%.120s%s%.120s", path, *path ? "." : "", key);
    else
        snprintf(out, PATH_MAX_LEN, "%.120s[\"%.100s\"]", path, key);
}

static void path_index(char *out, const char *path, int i)
{
    snprintf(out, PATH_MAX_LEN, "%.200s[%d]", path, i);
}

static const char *json_kind(const cJSON *v)
{
    if (cJSON_IsString(v)) return "a string";
    if (cJSON_IsNumber(v)) return "a number";
    if (cJSON_IsBool(v)) return "a boolean";
    if (cJSON_IsNull(v)) return "null";
    if (cJSON_IsArray(v)) return "an array";
    if (cJSON_IsObject(v)) return "an object";
    return "an invalid value";
}

static int cfg_err(lx_err *err, const char *path, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
static int cfg_err(lx_err *err, const char *path, const char *fmt, ...)
{
    char detail[LLMUX_ERRMSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    return llmux__err(err, LLMUX_ERR_CONFIG, "%s: %s", *path ? path : "config", detail);
}


/* Check an object: must be an object, no duplicate keys, no keys outside
 * `allowed` (NULL-terminated; NULL list = any key). Linear: the keys seen go
 * into an open-addressing set (a config may hold many thousand aliases). */
static int check_object(const cJSON *obj, const char *path, const char *const *allowed,
                        lx_err *err)
{
    if (!cJSON_IsObject(obj))
        return cfg_err(err, path, "expected an object, got %s", json_kind(obj));
    size_t n = 0, slots = 16;
    for (const cJSON *it = obj->child; it; it = it->next)
        n++;
    while (slots < 2 * n) /* at least twice the keys: probes stay short */
        slots *= 2;
    const char **seen = calloc(slots, sizeof *seen);
    if (!seen)
        return llmux__err(err, LLMUX_ERR_NO_MEMORY, "out of memory");
    int rc = LLMUX_OK;
    for (const cJSON *it = obj->child; it && !rc; it = it->next) {
        char p[PATH_MAX_LEN];
        size_t h = llmux__hash(it->string, strlen(it->string)) & (slots - 1);
        while (seen[h] && strcmp(seen[h], it->string) != 0)
            h = (h + 1) & (slots - 1);
        if (seen[h]) {
            path_child(p, path, it->string);
            rc = cfg_err(err, p, "duplicate key");
            break;
        }
        seen[h] = it->string;
        if (!allowed)
            continue;
        path_child(p, path, it->string);
        int ok = 0;
        for (const char *const *a = allowed; *a; a++)
            if (strcmp(*a, it->string) == 0)
                ok = 1;
        if (!ok) {
            char list[256] = "";
            for (const char *const *a = allowed; *a; a++) {
                strncat(list, *a, sizeof list - strlen(list) - 1);
                if (a[1])
                    strncat(list, ", ", sizeof list - strlen(list) - 1);
            }
            rc = cfg_err(err, p, "unknown key (expected one of: %s)", list);
        }
    }
    free(seen);
    return rc;
}

/* Optional string member; *out stays NULL when absent. */
static int get_string(const cJSON *obj, const char *key, const char *path, int required,
                      const char **out, lx_err *err)
{
    char p[PATH_MAX_LEN];
    path_child(p, path, key);
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    *out = NULL;
    if (!v) {
        if (required)
            return cfg_err(err, p, "required");
        return LLMUX_OK;
    }
    if (!cJSON_IsString(v))
        return cfg_err(err, p, "expected a string, got %s", json_kind(v));
    if (!v->valuestring[0])
        return cfg_err(err, p, "must not be empty");
    *out = v->valuestring;
    return LLMUX_OK;
}

static int get_long(const cJSON *obj, const char *key, const char *path, long min, long max,
                    long *out, lx_err *err)
{
    char p[PATH_MAX_LEN];
    path_child(p, path, key);
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v)
        return LLMUX_OK;
    if (!cJSON_IsNumber(v))
        return cfg_err(err, p, "expected a whole number, got %s", json_kind(v));
    double d = v->valuedouble;
    /* the range first: converting 1e34 (or 1e999, read as infinity) to an
     * integer is undefined; min and max are far inside long's range */
    if (!(d >= (double)min && d <= (double)max)) {
        char range[96];
        snprintf(range, sizeof range, "%ld to %ld", min, max);
        return cfg_err(err, p, "out of range (expected %s)", range);
    }
    if (d != (double)(long)d)
        return cfg_err(err, p, "expected a whole number");
    *out = (long)d;
    return LLMUX_OK;
}

static int get_bool(const cJSON *obj, const char *key, const char *path, int *out, lx_err *err)
{
    char p[PATH_MAX_LEN];
    path_child(p, path, key);
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v)
        return LLMUX_OK;
    if (!cJSON_IsBool(v))
        return cfg_err(err, p, "expected true or false, got %s", json_kind(v));
    *out = cJSON_IsTrue(v);
    return LLMUX_OK;
}

static int valid_env_name(const char *s)
{
    if (!(isupper((unsigned char)*s) || islower((unsigned char)*s) || *s == '_'))
        return 0;
    for (; *s; s++)
        if (!(isalnum((unsigned char)*s) || *s == '_'))
            return 0;
    return 1;
}

static int valid_header_name(const char *s)
{
    if (!*s)
        return 0;
    for (; *s; s++)
        if (!(isalnum((unsigned char)*s) || strchr("!#$%&'*+-.^_`|~", *s)))
            return 0;
    return 1;
}

static int has_ctl(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 && *s != '\t')
            return 1;
    return 0;
}

/* ---------------------------------------------------------------- providers */

static const char *const PROVIDER_KEYS[] = {"type", "base_url", "api_key_env", "headers",
                                            "timeout_ms", "connect_timeout_ms", NULL};
#define MAX_PROVIDER_KEYS 48

/* The common provider keys plus the adapter's own, NULL-terminated, in out. */
static void provider_keys(const lx_provider_ops *ops, const char **out)
{
    size_t n = 0;
    for (const char *const *k = PROVIDER_KEYS; *k; k++)
        out[n++] = *k;
    for (const char *const *k = ops->config_keys; k && *k && n + 1 < MAX_PROVIDER_KEYS; k++)
        out[n++] = *k;
    out[n] = NULL;
}

static int reader_fail(lx_err *err, const char *path, const char *key, const char *message)
{
    char p[PATH_MAX_LEN];
    if (key)
        path_child(p, path, key);
    else
        snprintf(p, sizeof p, "%s", path);
    return cfg_err(err, p, "%s", message);
}

static const lx_cfg_reader READER = {get_string, get_long, get_bool, reader_fail};

static int parse_headers(lx_provider_cfg *p, const cJSON *h, const char *path, lx_err *err)
{
    int rc = check_object(h, path, NULL, err);
    if (rc)
        return rc;
    int n = cJSON_GetArraySize(h);
    p->extra_headers = calloc((size_t)n + 1, sizeof *p->extra_headers);
    if (!p->extra_headers)
        return llmux__err(err, LLMUX_ERR_NO_MEMORY, "out of memory");
    for (const cJSON *it = h->child; it; it = it->next) {
        char hp[PATH_MAX_LEN];
        path_child(hp, path, it->string);
        if (!valid_header_name(it->string))
            return cfg_err(err, hp, "not a valid HTTP header name");
        if (!cJSON_IsString(it))
            return cfg_err(err, hp, "expected a string, got %s", json_kind(it));
        if (has_ctl(it->valuestring))
            return cfg_err(err, hp, "header values must not contain control characters");
        const char *reserved[] = {"authorization", "content-type", "content-length", "host",
                                  "transfer-encoding", NULL};
        for (const char **r = reserved; *r; r++) {
            char lower[MAX_NAME_LEN + 1];
            size_t i = 0;
            for (; it->string[i] && i < MAX_NAME_LEN; i++)
                lower[i] = (char)tolower((unsigned char)it->string[i]);
            lower[i] = '\0';
            if (strcmp(lower, *r) == 0)
                return cfg_err(err, hp,
                               "llmux sets this header itself (credentials come from api_key_env)");
        }
        size_t len = strlen(it->string) + strlen(it->valuestring) + 3;
        char *line = malloc(len);
        if (!line)
            return llmux__err(err, LLMUX_ERR_NO_MEMORY, "out of memory");
        snprintf(line, len, "%s: %s", it->string, it->valuestring);
        p->extra_headers[p->n_extra_headers++] = line;
    }
    return LLMUX_OK;
}

/* A base URL: http(s), a host, no query; stored without trailing slashes. */
static int check_base_url(lx_provider_cfg *p, const char *s, const char *up, lx_err *err)
{
    if (strncmp(s, "http://", 7) != 0 && strncmp(s, "https://", 8) != 0)
        return cfg_err(err, up, "must start with http:// or https:// (got \"%.80s\")", s);
    if (has_ctl(s) || strchr(s, ' '))
        return cfg_err(err, up, "must not contain spaces or control characters");
    const char *host = strstr(s, "://") + 3;
    if (!*host || *host == '/')
        return cfg_err(err, up, "has no host (got \"%.80s\")", s);
    if (strchr(s, '?') || strchr(s, '#'))
        return cfg_err(err, up, "must not contain a query or fragment");
    if (!(p->base_url = dupstr(s)))
        return llmux__err(err, LLMUX_ERR_NO_MEMORY, "out of memory");
    size_t ul = strlen(p->base_url);
    while (ul > 0 && p->base_url[ul - 1] == '/')
        p->base_url[--ul] = '\0';
    static const char endpoint[] = "/chat/completions";
    size_t el = sizeof endpoint - 1;
    if (ul > el && strcmp(p->base_url + ul - el, endpoint) == 0) {
        /* a copy-paste of the whole endpoint would be called as .../chat/completions/chat/completions */
        int keep = (int)(ul - el);
        while (keep > 0 && p->base_url[keep - 1] == '/')
            keep--;
        return cfg_err(err, up, "ends in /chat/completions, which llmux appends itself; write \"%.*s\"",
                       keep < 200 ? keep : 200, p->base_url);
    }
    return LLMUX_OK;
}

/* Something the config allows but that will not work as it reads (an unset
 * key variable): kept for llmux_warnings_json, and an error in strict mode. */
static int warn(lx_config *cfg, const char *path, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
static int warn(lx_config *cfg, const char *path, const char *fmt, ...)
{
    char detail[LLMUX_ERRMSG_MAX], line[LLMUX_ERRMSG_MAX + PATH_MAX_LEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    snprintf(line, sizeof line, "%s: %s", path, detail);
    char **w = realloc(cfg->warnings, (cfg->n_warnings + 1) * sizeof *w);
    if (!w)
        return LLMUX_ERR_NO_MEMORY;
    cfg->warnings = w;
    if (!(w[cfg->n_warnings] = dupstr(line)))
        return LLMUX_ERR_NO_MEMORY;
    cfg->n_warnings++;
    return LLMUX_OK;
}

/* Fallback safety: a backup target that cannot do what its alias's first
 * target does (tools, images, json_schema, a context window as long) would
 * turn a fallback into a failure, or a silently worse answer. A warning
 * (llmux_warnings_json), an error in strict mode. Targets whose model the
 * capability table does not know are not judged. */
static int check_fallback_safety(lx_config *cfg)
{
    static const struct {
        unsigned cap;
        const char *what;
    } caps[] = {{LX_CAP_TOOLS, "tool calling"},
                {LX_CAP_VISION, "image input"},
                {LX_CAP_JSON_SCHEMA, "json_schema output"}};
    for (size_t i = 0; i < cfg->n_aliases; i++) {
        const lx_alias *a = &cfg->aliases[i];
        if (a->n_targets < 2)
            continue;
        const lx_target *t0 = &a->targets[0];
        const lx_price *p0 = llmux__price_find(cfg->prices, t0->provider->name,
                                               t0->provider->type, t0->model);
        if (!p0)
            continue;
        for (size_t k = 1; k < a->n_targets; k++) {
            const lx_target *tk = &a->targets[k];
            const lx_price *pk = llmux__price_find(cfg->prices, tk->provider->name,
                                                   tk->provider->type, tk->model);
            if (!pk)
                continue;
            char ap[PATH_MAX_LEN], tp[PATH_MAX_LEN], ip[PATH_MAX_LEN];
            path_child(ap, "models", a->name);
            path_child(tp, ap, "targets");
            path_index(ip, tp, (int)k);
            for (size_t c = 0; c < sizeof caps / sizeof caps[0]; c++)
                if ((p0->caps & caps[c].cap) && pk->caps && !(pk->caps & caps[c].cap) &&
                    warn(cfg, ip, "%s (%s) has no %s, which the first target %s has: a call "
                                  "that needs it cannot fall back here",
                         tk->model, tk->provider->name, caps[c].what, t0->model))
                    return LLMUX_ERR_NO_MEMORY;
            if (p0->context_window > 0 && pk->context_window > 0 &&
                pk->context_window < p0->context_window &&
                warn(cfg, ip, "%s (%s) has a context window of %lld tokens, shorter than the "
                              "first target %s's %lld: a long prompt cannot fall back here",
                     tk->model, tk->provider->name, (long long)pk->context_window, t0->model,
                     (long long)p0->context_window))
                return LLMUX_ERR_NO_MEMORY;
        }
    }
    return LLMUX_OK;
}

static int parse_provider(lx_config *cfg, lx_provider_cfg *p, const cJSON *obj,
                          const char *path, lx_err *err)
{
    const char *s;
    int rc;
    if (cJSON_IsObject(obj) && cJSON_GetObjectItemCaseSensitive(obj, "api_key")) {
        char kp[PATH_MAX_LEN];
        path_child(kp, path, "api_key");
        return cfg_err(err, kp,
                       "keys are never written in the config; name an environment variable "
                       "with \"api_key_env\" instead");
    }
    if (!cJSON_IsObject(obj))
        return check_object(obj, path, NULL, err);

    /* the type first: the adapter it names decides which other keys are valid */
    char tp[PATH_MAX_LEN];
    path_child(tp, path, "type");
    if ((rc = get_string(obj, "type", path, 1, &s, err)))
        return rc;
    int known = 0;
    p->ops = llmux__provider_ops_find(s, &known);
    char types[160];
    if (!p->ops && known) {
        llmux__provider_types(types, sizeof types, 1);
        return cfg_err(err, tp,
                       "provider type \"%.40s\" is not supported by this build yet "
                       "(supported: %s)",
                       s, types);
    }
    if (!p->ops) {
        llmux__provider_types(types, sizeof types, 0);
        return cfg_err(err, tp, "unknown provider type \"%.40s\" (expected one of: %s)", s,
                       types);
    }
    const char *keys[MAX_PROVIDER_KEYS];
    provider_keys(p->ops, keys);
    if ((rc = check_object(obj, path, keys, err)))
        return rc;
    if (!(p->type = dupstr(s)))
        return llmux__err(err, LLMUX_ERR_NO_MEMORY, "out of memory");

    char up[PATH_MAX_LEN];
    path_child(up, path, "base_url");
    if ((rc = get_string(obj, "base_url", path, 0, &s, err)))
        return rc;
    if (!s)
        s = p->ops->default_base_url;
    if (s && (rc = check_base_url(p, s, up, err)))
        return rc;

    char ep[PATH_MAX_LEN];
    path_child(ep, path, "api_key_env");
    if ((rc = get_string(obj, "api_key_env", path, 0, &s, err)))
        return rc;
    if (s) {
        if (!valid_env_name(s)) /* not quoted: it may be a key pasted here by mistake */
            return cfg_err(err, ep,
                           "not an environment variable name (letters, digits and _, not starting "
                           "with a digit); if it is a key, put it in an environment variable and "
                           "name that variable here");
        if (!(p->api_key_env = dupstr(s)))
            return llmux__err(err, LLMUX_ERR_NO_MEMORY, "out of memory");
        const char *val = getenv(s);
        if (val && *val) {
            if (has_ctl(val))
                return cfg_err(err, ep,
                               "the environment variable %s holds control characters, which "
                               "cannot be sent in an HTTP header",
                               s);
            if (!(p->api_key = dupstr(val)))
                return llmux__err(err, LLMUX_ERR_NO_MEMORY, "out of memory");
        } else if ((rc = warn(cfg, ep,
                              val ? "the environment variable %s is empty: calls to this provider "
                                    "fail (auth) and fall back to the next target"
                                  : "the environment variable %s is not set: calls to this "
                                    "provider fail (auth) and fall back to the next target",
                              s))) {
            return llmux__err(err, rc, "out of memory");
        }
    }

    const cJSON *h = cJSON_GetObjectItemCaseSensitive(obj, "headers");
    if (h) {
        char hp[PATH_MAX_LEN];
        path_child(hp, path, "headers");
        if ((rc = parse_headers(p, h, hp, err)))
            return rc;
    }
    p->timeout_ms = 0;
    p->connect_timeout_ms = cfg->connect_timeout_ms;
    if ((rc = get_long(obj, "timeout_ms", path, 1, MAX_TIMEOUT_MS, &p->timeout_ms, err)))
        return rc;
    if ((rc = get_long(obj, "connect_timeout_ms", path, 1, MAX_TIMEOUT_MS,
                       &p->connect_timeout_ms, err)))
        return rc;
    p->max_response_bytes = cfg->max_response_bytes;
    if ((rc = p->ops->configure(p, obj, path, &READER, err)))
        return rc;
    if (!p->base_url)
        return cfg_err(err, up, "required for provider type \"%s\"", p->type);
    return LLMUX_OK;
}

/* ------------------------------------------------------------------- models */

static const char *const ALIAS_KEYS[] = {"targets", "strategy", "on_context_window",
                                         "on_content_filter", "hedge_after_ms", NULL};
static const char *const TARGET_KEYS[] = {"provider", "model", "weight", "params", NULL};
/* members a target's params may not set: the call itself decides them */
static const char *const PARAMS_RESERVED[] = {"model", "messages", "stream", "stream_options",
                                              NULL};

static int parse_params(lx_target *t, const cJSON *params, const char *path, lx_err *err)
{
    int rc = check_object(params, path, NULL, err);
    if (rc)
        return rc;
    for (const cJSON *it = params->child; it; it = it->next)
        for (const char *const *r = PARAMS_RESERVED; *r; r++)
            if (strcmp(it->string, *r) == 0) {
                char kp[PATH_MAX_LEN];
                path_child(kp, path, it->string);
                return cfg_err(err, kp, "a target's params cannot set \"%s\": the call decides it",
                               *r);
            }
    if (!params->child)
        return LLMUX_OK;
    if (!(t->params = cJSON_PrintUnformatted(params)))
        return llmux__err(err, LLMUX_ERR_NO_MEMORY, "out of memory");
    return LLMUX_OK;
}
static const char *const STRATEGIES[] = {"ordered", "weighted", "round_robin", "least_latency",
                                         "least_busy", "lowest_cost", NULL};

static int parse_alias(lx_config *cfg, lx_alias *a, const cJSON *obj, const char *path,
                       lx_err *err)
{
    int rc = check_object(obj, path, ALIAS_KEYS, err);
    if (rc)
        return rc;
    const char *strategy;
    if ((rc = get_string(obj, "strategy", path, 0, &strategy, err)) ||
        (rc = get_long(obj, "hedge_after_ms", path, 1, MAX_TIMEOUT_MS, &a->hedge_after_ms, err)))
        return rc;
    if (strategy) {
        char sp[PATH_MAX_LEN];
        path_child(sp, path, "strategy");
        size_t k = 0;
        while (STRATEGIES[k] && strcmp(STRATEGIES[k], strategy) != 0)
            k++;
        if (!STRATEGIES[k])
            return cfg_err(err, sp, "unknown strategy \"%.40s\" (expected one of: ordered, "
                                    "weighted, round_robin, least_latency, least_busy, "
                                    "lowest_cost)", strategy);
        a->strategy = (lx_strategy)k;
    }
    char tp[PATH_MAX_LEN];
    path_child(tp, path, "targets");
    const cJSON *targets = cJSON_GetObjectItemCaseSensitive(obj, "targets");
    if (!targets)
        return cfg_err(err, tp, "required");
    if (!cJSON_IsArray(targets))
        return cfg_err(err, tp, "expected an array, got %s", json_kind(targets));
    int n = cJSON_GetArraySize(targets);
    if (n == 0)
        return cfg_err(err, tp, "must list at least one target");
    if (n > 32)
        return cfg_err(err, tp, "at most 32 targets");
    a->targets = calloc((size_t)n, sizeof *a->targets);
    if (!a->targets)
        return llmux__err(err, LLMUX_ERR_NO_MEMORY, "out of memory");
    int i = 0;
    for (const cJSON *t = targets->child; t; t = t->next, i++) {
        char ip[PATH_MAX_LEN], pp[PATH_MAX_LEN];
        path_index(ip, tp, i);
        if ((rc = check_object(t, ip, TARGET_KEYS, err)))
            return rc;
        const char *prov, *model;
        if ((rc = get_string(t, "provider", ip, 1, &prov, err)) ||
            (rc = get_string(t, "model", ip, 1, &model, err)))
            return rc;
        path_child(pp, ip, "provider");
        lx_provider_cfg *p = llmux__config_find_provider(cfg, prov, strlen(prov));
        if (!p)
            return cfg_err(err, pp, "no provider named \"%.80s\" in \"providers\"", prov);
        a->targets[i].provider = p;
        a->n_targets++; /* from here on, whatever it holds is freed with the config */
        a->targets[i].weight = 1;
        if ((rc = get_long(t, "weight", ip, 0, 1000000, &a->targets[i].weight, err)))
            return rc;
        a->targets[i].index = cfg->n_targets_total++;
        const cJSON *params = cJSON_GetObjectItemCaseSensitive(t, "params");
        if (params) {
            char pp2[PATH_MAX_LEN];
            path_child(pp2, ip, "params");
            if ((rc = parse_params(&a->targets[i], params, pp2, err)))
                return rc;
        }
        if (!(a->targets[i].model = dupstr(model)))
            return llmux__err(err, LLMUX_ERR_NO_MEMORY, "out of memory");
    }
    return LLMUX_OK;
}

static int build_alias_index(lx_config *cfg)
{
    size_t slots = 8;
    while (slots < cfg->n_aliases * 2)
        slots *= 2;
    cfg->alias_slots = calloc(slots, sizeof *cfg->alias_slots);
    if (!cfg->alias_slots)
        return -1;
    cfg->alias_mask = slots - 1;
    for (size_t i = 0; i < cfg->n_aliases; i++) {
        const char *name = cfg->aliases[i].name;
        size_t s = llmux__hash(name, strlen(name)) & cfg->alias_mask;
        while (cfg->alias_slots[s])
            s = (s + 1) & cfg->alias_mask;
        cfg->alias_slots[s] = (unsigned)i + 1;
    }
    return 0;
}

const lx_alias *llmux__config_find_alias(const lx_config *cfg, const char *name)
{
    size_t n = strlen(name);
    size_t s = llmux__hash(name, n) & cfg->alias_mask;
    for (unsigned idx; (idx = cfg->alias_slots[s]) != 0; s = (s + 1) & cfg->alias_mask) {
        const lx_alias *a = &cfg->aliases[idx - 1];
        if (strcmp(a->name, name) == 0)
            return a;
    }
    return NULL;
}

lx_provider_cfg *llmux__config_find_provider(const lx_config *cfg, const char *name,
                                                size_t name_len)
{
    for (size_t i = 0; i < cfg->n_providers; i++) {
        lx_provider_cfg *p = &cfg->providers[i];
        if (strlen(p->name) == name_len && memcmp(p->name, name, name_len) == 0)
            return p;
    }
    return NULL;
}


/* ------------------------------------------------------------------- prices */

/* A price entry's members: USD per million tokens, each into an lx_price field. */
typedef struct price_member {
    const char *key;
    size_t offset;
} price_member;

static const price_member PRICE_MEMBERS[] = {
    {"input_mtok", offsetof(lx_price, input)},
    {"output_mtok", offsetof(lx_price, output)},
    {"cache_read_mtok", offsetof(lx_price, cache_read)},
    {"cache_write_mtok", offsetof(lx_price, cache_write)},
    {"cache_write_1h_mtok", offsetof(lx_price, cache_write_1h)},
    {"input_above_mtok", offsetof(lx_price, input_hi)},
    {"output_above_mtok", offsetof(lx_price, output_hi)},
    {"cache_read_above_mtok", offsetof(lx_price, cache_read_hi)},
    {"cache_write_above_mtok", offsetof(lx_price, cache_write_hi)},
    {"cache_write_1h_above_mtok", offsetof(lx_price, cache_write_1h_hi)},
};
#define N_PRICE_MEMBERS (sizeof PRICE_MEMBERS / sizeof PRICE_MEMBERS[0])
static const char *const PRICE_KEYS[] = {
    "input_mtok", "output_mtok", "cache_read_mtok", "cache_write_mtok", "cache_write_1h_mtok",
    "above_tokens", "input_above_mtok", "output_above_mtok", "cache_read_above_mtok",
    "cache_write_above_mtok", "cache_write_1h_above_mtok", NULL};

static const lx_price NO_PRICE = {NULL, -1, -1, -1, -1, -1, 0, -1, -1, -1, -1, -1, 0, 0, 0, NULL};

static int parse_price(const cJSON *obj, const char *path, lx_price *p, lx_err *err)
{
    int rc = check_object(obj, path, PRICE_KEYS, err);
    if (rc)
        return rc;
    *p = NO_PRICE;
    p->source = "config";
    for (size_t i = 0; i < N_PRICE_MEMBERS; i++) {
        char mp[PATH_MAX_LEN];
        path_child(mp, path, PRICE_MEMBERS[i].key);
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, PRICE_MEMBERS[i].key);
        if (!v) {
            if (i < 2)
                return cfg_err(err, mp, "required (USD per million tokens)");
            continue;
        }
        if (!cJSON_IsNumber(v))
            return cfg_err(err, mp, "expected a number (USD per million tokens), got %s",
                           json_kind(v));
        int64_t f = llmux__price_from_mtok(v->valuedouble);
        if (f < 0)
            return cfg_err(err, mp, "out of range (expected 0 to 1000000 USD per million tokens)");
        *(int64_t *)((char *)p + PRICE_MEMBERS[i].offset) = f;
    }
    long above = 0;
    if ((rc = get_long(obj, "above_tokens", path, 1, 1000000000L, &above, err)))
        return rc;
    p->tier_tokens = above;
    int has_hi = p->input_hi >= 0 || p->output_hi >= 0 || p->cache_read_hi >= 0 ||
                 p->cache_write_hi >= 0 || p->cache_write_1h_hi >= 0;
    if (has_hi != (above > 0)) {
        char ap[PATH_MAX_LEN];
        path_child(ap, path, "above_tokens");
        return cfg_err(err, ap, above ? "needs at least one *_above_mtok price"
                                      : "required with *_above_mtok prices (the prompt size "
                                        "above which they apply)");
    }
    return LLMUX_OK;
}

/* A LiteLLM field (USD per token) into *out; absent or not a number: unchanged. */
static int litellm_field(const cJSON *e, const char *key, const char *path, int64_t *out,
                         lx_err *err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(e, key);
    if (!v || cJSON_IsNull(v))
        return LLMUX_OK;
    char p[PATH_MAX_LEN];
    path_child(p, path, key);
    if (!cJSON_IsNumber(v))
        return cfg_err(err, p, "expected a number (USD per token), got %s", json_kind(v));
    if ((*out = llmux__price_from_token(v->valuedouble)) < 0)
        return cfg_err(err, p, "out of range (expected 0 to 1 USD per token)");
    return LLMUX_OK;
}

static int64_t whole_tokens(const cJSON *v)
{
    if (!cJSON_IsNumber(v) || !(v->valuedouble >= 0 && v->valuedouble <= 1e15))
        return 0;
    int64_t n = (int64_t)v->valuedouble;
    return (double)n == v->valuedouble ? n : 0;
}

/* One LiteLLM entry. Entries without an input and an output price (images,
 * embeddings) are not chat prices, and "sample_spec" documents the format:
 * left out. */
static int parse_litellm_entry(lx_config *cfg, const cJSON *e, const char *path, lx_err *err)
{
    if (!cJSON_IsObject(e) || strcmp(e->string, "sample_spec") == 0 || !cJSON_GetObjectItemCaseSensitive(e, "input_cost_per_token") ||
        !cJSON_GetObjectItemCaseSensitive(e, "output_cost_per_token"))
        return LLMUX_OK;
    lx_price p = NO_PRICE;
    p.source = cfg->price_file_source;
    long tier = 0;
    for (const cJSON *it = e->child; it; it = it->next) {
        const char *k = it->string, *tail = "k_tokens";
        if (strncmp(k, "input_cost_per_token_above_", 27) == 0 && isdigit((unsigned char)k[27])) {
            char *end;
            long t = strtol(k + 27, &end, 10);
            if (strcmp(end, tail) == 0 && t > 0 && t < 1000000 && (!tier || t < tier))
                tier = t;
        }
    }
    int rc;
    if ((rc = litellm_field(e, "input_cost_per_token", path, &p.input, err)) ||
        (rc = litellm_field(e, "output_cost_per_token", path, &p.output, err)) ||
        (rc = litellm_field(e, "cache_read_input_token_cost", path, &p.cache_read, err)) ||
        (rc = litellm_field(e, "cache_creation_input_token_cost", path, &p.cache_write, err)) ||
        (rc = litellm_field(e, "cache_creation_input_token_cost_above_1hr", path,
                            &p.cache_write_1h, err)))
        return rc;
    if (tier) {
        static const char *const names[] = {"input_cost_per_token", "output_cost_per_token",
                                            "cache_read_input_token_cost",
                                            "cache_creation_input_token_cost",
                                            "cache_creation_input_token_cost_above_1hr"};
        int64_t *hi[] = {&p.input_hi, &p.output_hi, &p.cache_read_hi, &p.cache_write_hi,
                         &p.cache_write_1h_hi};
        for (size_t i = 0; i < 5; i++) {
            char key[96];
            snprintf(key, sizeof key, "%s_above_%ldk_tokens", names[i], tier);
            if ((rc = litellm_field(e, key, path, hi[i], err)))
                return rc;
        }
        p.tier_tokens = tier * 1000;
    }
    /* informational: a value that is not a whole number of tokens counts as not given */
    const cJSON *mi = cJSON_GetObjectItemCaseSensitive(e, "max_input_tokens");
    const cJSON *mo = cJSON_GetObjectItemCaseSensitive(e, "max_output_tokens");
    p.context_window = whole_tokens(mi);
    p.max_output = whole_tokens(mo);
    static const struct { const char *key; unsigned cap; } caps[] = {
        {"supports_function_calling", LX_CAP_TOOLS}, {"supports_vision", LX_CAP_VISION},
        {"supports_response_schema", LX_CAP_JSON_SCHEMA}, {"supports_reasoning", LX_CAP_REASONING}};
    for (size_t i = 0; i < 4; i++)
        if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(e, caps[i].key)))
            p.caps |= caps[i].cap;
    if (llmux__price_table_put(cfg->prices, e->string, &p))
        return llmux__err(err, LLMUX_ERR_NO_MEMORY, "out of memory");
    return LLMUX_OK;
}

#define MAX_PRICE_FILE_BYTES (64L * 1024 * 1024)

/* "price_file": a JSON file in LiteLLM's model_prices_and_context_window format. */
static int parse_price_file(lx_config *cfg, const char *file, lx_err *err)
{
    FILE *f = fopen(file, "rb");
    if (!f)
        return cfg_err(err, "price_file", "cannot open \"%.160s\"", file);
    char *text = NULL;
    size_t len = 0, cap = 0;
    int rc = LLMUX_OK;
    for (;;) {
        if (len == cap) {
            cap = cap ? cap * 2 : 65536;
            char *t = realloc(text, cap);
            if (!t) {
                rc = llmux__err(err, LLMUX_ERR_NO_MEMORY, "out of memory");
                break;
            }
            text = t;
        }
        size_t got = fread(text + len, 1, cap - len, f);
        len += got;
        if (len > (size_t)MAX_PRICE_FILE_BYTES) {
            rc = cfg_err(err, "price_file", "\"%.160s\" is larger than 64 MiB", file);
            break;
        }
        if (got == 0) {
            if (ferror(f))
                rc = cfg_err(err, "price_file", "cannot read \"%.160s\"", file);
            break;
        }
    }
    fclose(f);
    size_t off = 0;
    cJSON *root = NULL;
    if (!rc && llmux__json_check(text, len, &off) != LLMUX_JSON_OK)
        rc = cfg_err(err, "price_file", "\"%.160s\" is not valid JSON (error at byte %zu)", file,
                     off);
    if (!rc && !(root = cJSON_ParseWithLength(text, len)))
        rc = llmux__err(err, LLMUX_ERR_NO_MEMORY, "out of memory");
    free(text);
    if (!rc && !cJSON_IsObject(root))
        rc = cfg_err(err, "price_file", "\"%.160s\" holds %s, not an object of models", file,
                     json_kind(root));
    if (!rc) {
        size_t n = strlen(file) + 12;
        if (!(cfg->price_file_source = malloc(n)))
            rc = llmux__err(err, LLMUX_ERR_NO_MEMORY, "out of memory");
        else
            snprintf(cfg->price_file_source, n, "price_file %s", file);
    }
    for (const cJSON *e = root ? root->child : NULL; e && !rc; e = e->next) {
        char p[PATH_MAX_LEN], ep[PATH_MAX_LEN];
        snprintf(p, sizeof p, "price_file(%.100s)", file);
        path_child(ep, p, e->string);
        rc = parse_litellm_entry(cfg, e, ep, err);
    }
    cJSON_Delete(root);
    return rc;
}

static int parse_prices(lx_config *cfg, const cJSON *root, lx_err *err)
{
    const cJSON *pr = cJSON_GetObjectItemCaseSensitive(root, "prices");
    const char *file = NULL;
    int rc = get_string(root, "price_file", "", 0, &file, err);
    if (rc)
        return rc;
    if ((rc = get_bool(root, "require_prices", "", &cfg->require_prices, err)))
        return rc;
    if (pr && (rc = check_object(pr, "prices", NULL, err)))
        return rc;
    if (!pr && !file)
        return LLMUX_OK;
    if (!(cfg->prices = llmux__price_table_new()))
        return llmux__err(err, LLMUX_ERR_NO_MEMORY, "out of memory");
    if (file && (rc = parse_price_file(cfg, file, err)))
        return rc;
    /* the config's own entries after the file's: they win */
    for (const cJSON *it = pr ? pr->child : NULL; it; it = it->next) {
        char p[PATH_MAX_LEN];
        path_child(p, "prices", it->string);
        const char *slash = strchr(it->string, '/');
        if (!*it->string || slash == it->string || (slash && !slash[1]))
            return cfg_err(err, p, "expected a model id or \"provider-name/model id\"");
        lx_price price;
        if ((rc = parse_price(it, p, &price, err)))
            return rc;
        if (llmux__price_table_put(cfg->prices, it->string, &price))
            return llmux__err(err, LLMUX_ERR_NO_MEMORY, "out of memory");
    }
    return LLMUX_OK;
}

/* --------------------------------------------------------------- top level */

static const char *const TOP_KEYS[] = {"providers", "models", "defaults", "routing", "transport",
                                       "ledger", "strict", "rules", "prices", "price_file",
                                       "require_prices", "log", "keys", "teams", "budgets",
                                       "require_key", NULL};
static const char *const LEDGER_KEYS[] = {"max_rows", "journal", "fsync", "fsync_interval_ms",
                                           "compact_bytes", NULL};
static const char *const LOG_KEYS[] = {"file", "otlp", "queue", "attempts", "content",
                                       "content_by_key", "content_by_team", NULL};
static const char *const LOG_FILE_KEYS[] = {"path", "max_bytes", "max_age_seconds",
                                            "retain_seconds", "retain_bytes", NULL};
static const char *const LOG_OTLP_KEYS[] = {"url", "batch", "timeout_ms", "interval_ms", NULL};

/* ledger.journal and its policy (docs/ledger.md). */
static int parse_journal(lx_config *cfg, const cJSON *lg, lx_err *err)
{
    static const char *const POLICIES[] = {"every_call", "interval", "never"};
    const char *path = NULL, *fsync = NULL;
    int rc;
    if ((rc = get_string(lg, "journal", "ledger", 0, &path, err)) ||
        (rc = get_string(lg, "fsync", "ledger", 0, &fsync, err)) ||
        (rc = get_long(lg, "fsync_interval_ms", "ledger", 1, 60000, &cfg->ledger_fsync_interval_ms,
                       err)) ||
        (rc = get_long(lg, "compact_bytes", "ledger", 4096, 1L << 40, &cfg->ledger_compact_bytes,
                       err)))
        return rc;
    if (fsync) {
        cfg->ledger_fsync = -1;
        for (int i = 0; i < 3; i++)
            if (strcmp(fsync, POLICIES[i]) == 0)
                cfg->ledger_fsync = i;
        if (cfg->ledger_fsync < 0)
            return cfg_err(err, "ledger.fsync", "\"%.64s\" is not one of: every_call, interval, never",
                           fsync);
    }
    if (!path && (fsync || cJSON_GetObjectItemCaseSensitive(lg, "fsync_interval_ms") ||
                  cJSON_GetObjectItemCaseSensitive(lg, "compact_bytes")))
        return cfg_err(err, "ledger.journal", "required by the journal's other settings");
    if (path && !(cfg->ledger_journal = dupstr(path)))
        return LLMUX_ERR_NO_MEMORY;
    return LLMUX_OK;
}
static const char *const DEFAULTS_KEYS[] = {"timeout_ms", "connect_timeout_ms", NULL};
static const char *const ROUTING_KEYS[] = {"allow_direct", "requested_model_wins", "cooldown",
                                            "retry", "check_capabilities", NULL};
static const char *const COOLDOWN_KEYS[] = {"after_failures", "ms", "max_ms", NULL};
static const char *const RETRY_KEYS[] = {"max_retries", "backoff_ms", "max_backoff_ms",
                                         "retry_after_cap_ms", "on", NULL};
/* the classes a retry of the same target may help; never bad_request, auth and the like */
static const struct {
    const char *name;
    int status;
} RETRYABLE[] = {{"rate_limit", LLMUX_ERR_RATE_LIMIT}, {"provider", LLMUX_ERR_PROVIDER},
                 {"timeout", LLMUX_ERR_TIMEOUT},       {"connect", LLMUX_ERR_CONNECT},
                 {"bad_response", LLMUX_ERR_BAD_RESPONSE}};

static int parse_retry(lx_config *cfg, const cJSON *r, lx_err *err)
{
    const char *path = "routing.retry";
    int rc = check_object(r, path, RETRY_KEYS, err);
    if (rc || (rc = get_long(r, "max_retries", path, 0, 10, &cfg->retry.max_retries, err)) ||
        (rc = get_long(r, "backoff_ms", path, 1, MAX_TIMEOUT_MS, &cfg->retry.backoff_ms, err)) ||
        (rc = get_long(r, "max_backoff_ms", path, 1, MAX_TIMEOUT_MS, &cfg->retry.max_backoff_ms,
                       err)) ||
        (rc = get_long(r, "retry_after_cap_ms", path, 0, MAX_TIMEOUT_MS,
                       &cfg->retry.retry_after_cap_ms, err)))
        return rc;
    const cJSON *on = cJSON_GetObjectItemCaseSensitive(r, "on");
    if (!on)
        return LLMUX_OK;
    char op[PATH_MAX_LEN];
    path_child(op, path, "on");
    if (!cJSON_IsArray(on))
        return cfg_err(err, op, "expected an array of error classes, got %s", json_kind(on));
    cfg->retry.on = 0;
    int i = 0;
    for (const cJSON *it = on->child; it; it = it->next, i++) {
        char ip[PATH_MAX_LEN];
        path_index(ip, op, i);
        size_t k = 0, n = sizeof RETRYABLE / sizeof RETRYABLE[0];
        while (k < n && !(cJSON_IsString(it) && strcmp(it->valuestring, RETRYABLE[k].name) == 0))
            k++;
        if (k == n)
            return cfg_err(err, ip, "not a class a retry can help (expected one of: rate_limit, "
                                    "provider, timeout, connect, bad_response)");
        cfg->retry.on |= 1u << -RETRYABLE[k].status;
    }
    return LLMUX_OK;
}

/* on_context_window / on_content_filter: resolved once every alias exists. */
static int alias_fallbacks(lx_config *cfg, const cJSON *models, lx_err *err)
{
    size_t i = 0;
    for (const cJSON *it = models->child; it; it = it->next, i++) {
        static const char *const keys[] = {"on_context_window", "on_content_filter"};
        for (int k = 0; k < 2; k++) {
            char ap[PATH_MAX_LEN], kp[PATH_MAX_LEN];
            path_child(ap, "models", it->string);
            const char *name;
            int rc = get_string(it, keys[k], ap, 0, &name, err);
            if (rc)
                return rc;
            if (!name)
                continue;
            path_child(kp, ap, keys[k]);
            const lx_alias *to = llmux__config_find_alias(cfg, name);
            if (!to)
                return cfg_err(err, kp, "no alias named \"%.80s\" in \"models\"", name);
            if (to == &cfg->aliases[i])
                return cfg_err(err, kp, "names the alias itself");
            if (k == 0)
                cfg->aliases[i].on_context_window = to;
            else
                cfg->aliases[i].on_content_filter = to;
        }
    }
    return LLMUX_OK;
}
static const char *const RULE_KEYS[] = {"when", "use", NULL};
static const char *const WHEN_KEYS[] = {"task", "workflow", "key", "team", "has_tools",
                                        "has_images", "json_schema", "stream",
                                        "min_prompt_tokens", "max_prompt_tokens", NULL};

/* One condition of a rule: a boolean given or not (-1). */
static int when_bool(const cJSON *w, const char *key, const char *path, int *out, lx_err *err)
{
    *out = -1;
    int v = 0, rc = LLMUX_OK;
    if (cJSON_GetObjectItemCaseSensitive(w, key) && !(rc = get_bool(w, key, path, &v, err)))
        *out = v;
    return rc;
}

static int dup_opt(const char *s, char **out)
{
    *out = NULL;
    return s && !(*out = dupstr(s)) ? -1 : 0;
}

static int parse_rule(lx_config *cfg, lx_rule *r, const cJSON *obj, const char *path,
                      lx_err *err)
{
    int rc = check_object(obj, path, RULE_KEYS, err);
    if (rc)
        return rc;
    char wp[PATH_MAX_LEN], up[PATH_MAX_LEN];
    path_child(wp, path, "when");
    path_child(up, path, "use");
    const cJSON *w = cJSON_GetObjectItemCaseSensitive(obj, "when");
    if (!w)
        return cfg_err(err, wp, "required (an empty object matches every call)");
    if ((rc = check_object(w, wp, WHEN_KEYS, err)))
        return rc;
    const char *task, *workflow, *key, *team, *use;
    if ((rc = get_string(w, "task", wp, 0, &task, err)) ||
        (rc = get_string(w, "workflow", wp, 0, &workflow, err)) ||
        (rc = get_string(w, "key", wp, 0, &key, err)) ||
        (rc = get_string(w, "team", wp, 0, &team, err)) ||
        (rc = when_bool(w, "has_tools", wp, &r->has_tools, err)) ||
        (rc = when_bool(w, "has_images", wp, &r->has_images, err)) ||
        (rc = when_bool(w, "json_schema", wp, &r->json_schema, err)) ||
        (rc = when_bool(w, "stream", wp, &r->stream, err)))
        return rc;
    r->min_prompt_tokens = r->max_prompt_tokens = -1;
    if ((rc = get_long(w, "min_prompt_tokens", wp, 0, 100000000L, &r->min_prompt_tokens, err)) ||
        (rc = get_long(w, "max_prompt_tokens", wp, 0, 100000000L, &r->max_prompt_tokens, err)))
        return rc;
    r->needs_features = r->has_tools >= 0 || r->has_images >= 0 || r->json_schema >= 0 ||
                        r->min_prompt_tokens >= 0 || r->max_prompt_tokens >= 0;
    if ((rc = get_string(obj, "use", path, 1, &use, err)))
        return rc;
    if (!(r->use = llmux__config_find_alias(cfg, use)))
        return cfg_err(err, up, "no alias named \"%.80s\" in \"models\"", use);
    if (dup_opt(task, &r->task) || dup_opt(workflow, &r->workflow) || dup_opt(key, &r->key) ||
        dup_opt(team, &r->team))
        return llmux__err(err, LLMUX_ERR_NO_MEMORY, "out of memory");
    return LLMUX_OK;
}
static const char *const TRANSPORT_KEYS[] = {"max_connections", "http2", "compression",
                                             "max_response_bytes", NULL};

static int check_name(const char *name, const char *path, const char *what, lx_err *err)
{
    if (!*name)
        return cfg_err(err, path, "%s names must not be empty", what);
    if (strlen(name) > MAX_NAME_LEN)
        return cfg_err(err, path, "%s names are at most 128 bytes", what);
    for (const char *s = name; *s; s++)
        if ((unsigned char)*s <= 0x20 || *s == '"' || *s == '\\')
            return cfg_err(err, path,
                           "%s names must not contain spaces, quotes, backslashes or control "
                           "characters",
                           what);
    return LLMUX_OK;
}

static int content_policy(const cJSON *v, const char *path, int *out, lx_err *err)
{
    static const char *const NAMES[] = {"off", "redacted", "full"};
    if (!cJSON_IsString(v))
        return cfg_err(err, path, "expected \"off\", \"redacted\" or \"full\", got %s",
                       json_kind(v));
    for (int i = 0; i < 3; i++)
        if (strcmp(v->valuestring, NAMES[i]) == 0) {
            *out = i;
            return LLMUX_OK;
        }
    return cfg_err(err, path, "expected \"off\", \"redacted\" or \"full\"");
}

/* log.content_by_key / log.content_by_team: names (a gateway key's id as
 * llmux.key_id logs it, or a team) with a stricter content policy. */
static int content_by(const cJSON *lg, const char *member, char ***names, int **policies,
                      size_t *n_out, lx_err *err)
{
    char path[64];
    snprintf(path, sizeof path, "log.%s", member);
    const cJSON *k = cJSON_GetObjectItemCaseSensitive(lg, member);
    if (!k)
        return LLMUX_OK;
    int rc = check_object(k, path, NULL, err);
    if (rc)
        return rc;
    size_t n = (size_t)cJSON_GetArraySize(k);
    if (n && (!(*names = calloc(n, sizeof **names)) || !(*policies = calloc(n, sizeof **policies))))
        return llmux__err(err, LLMUX_ERR_NO_MEMORY, "out of memory");
    for (const cJSON *it = k->child; it; it = it->next) {
        char p[PATH_MAX_LEN];
        path_child(p, path, it->string);
        size_t len = strlen(it->string);
        if (len == 0 || len > 64 ||
            strspn(it->string, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.") !=
                len)
            return cfg_err(err, p,
                           "expected %s (1-64 letters, digits, '-', '_', '.')",
                           strcmp(member, "content_by_key") == 0
                               ? "a gateway key's id as llmux.key_id logs it: its id in \"keys\", "
                                 "or \"key-\" and 16 hex digits for a key the config does not "
                                 "declare"
                               : "a team's name");
        int pol = 0;
        if ((rc = content_policy(it, p, &pol, err)))
            return rc;
        if (!((*names)[*n_out] = dupstr(it->string)))
            return llmux__err(err, LLMUX_ERR_NO_MEMORY, "out of memory");
        (*policies)[(*n_out)++] = pol;
    }
    return LLMUX_OK;
}

static int parse_log(lx_log_cfg *lc, const cJSON *lg, lx_err *err)
{
    const long big = 1000000000000L;
    const char *s = NULL;
    int rc;
    if ((rc = check_object(lg, "log", LOG_KEYS, err)) ||
        (rc = get_long(lg, "queue", "log", 1, 10000000L, &lc->queue, err)) ||
        (rc = get_bool(lg, "attempts", "log", &lc->attempts, err)))
        return rc;
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(lg, "content");
    if (c && (rc = content_policy(c, "log.content", &lc->content, err)))
        return rc;
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(lg, "file");
    if (f && ((rc = check_object(f, "log.file", LOG_FILE_KEYS, err)) ||
              (rc = get_string(f, "path", "log.file", 1, &s, err)) ||
              (rc = get_long(f, "max_bytes", "log.file", 0, big, &lc->max_bytes, err)) ||
              (rc = get_long(f, "max_age_seconds", "log.file", 0, big, &lc->max_age_s, err)) ||
              (rc = get_long(f, "retain_seconds", "log.file", 0, big, &lc->retain_s, err)) ||
              (rc = get_long(f, "retain_bytes", "log.file", 0, big, &lc->retain_bytes, err))))
        return rc;
    if (f && !(lc->file = dupstr(s)))
        return llmux__err(err, LLMUX_ERR_NO_MEMORY, "out of memory");
    const cJSON *o = cJSON_GetObjectItemCaseSensitive(lg, "otlp");
    if (o && ((rc = check_object(o, "log.otlp", LOG_OTLP_KEYS, err)) ||
              (rc = get_string(o, "url", "log.otlp", 1, &s, err)) ||
              (rc = get_long(o, "batch", "log.otlp", 1, 100000L, &lc->otlp_batch, err)) ||
              (rc = get_long(o, "timeout_ms", "log.otlp", 1, MAX_TIMEOUT_MS, &lc->otlp_timeout_ms,
                             err)) ||
              (rc = get_long(o, "interval_ms", "log.otlp", 1, MAX_TIMEOUT_MS,
                             &lc->otlp_interval_ms, err))))
        return rc;
    if (o && strncmp(s, "http://", 7) != 0 && strncmp(s, "https://", 8) != 0)
        return cfg_err(err, "log.otlp.url", "expected an http:// or https:// URL");
    if (o && !(lc->otlp_url = dupstr(s)))
        return llmux__err(err, LLMUX_ERR_NO_MEMORY, "out of memory");
    if ((rc = content_by(lg, "content_by_key", &lc->content_keys, &lc->content_key_policy,
                         &lc->n_content_keys, err)))
        return rc;
    return content_by(lg, "content_by_team", &lc->content_teams, &lc->content_team_policy,
                      &lc->n_content_teams, err);
}

static int parse_root(lx_config *cfg, const cJSON *root, lx_err *err)
{
    int rc = check_object(root, "", TOP_KEYS, err);
    if (rc)
        return rc;

    if ((rc = get_bool(root, "strict", "", &cfg->strict, err)))
        return rc;
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(root, "defaults");
    if (d) {
        if ((rc = check_object(d, "defaults", DEFAULTS_KEYS, err)) ||
            (rc = get_long(d, "timeout_ms", "defaults", 1, MAX_TIMEOUT_MS, &cfg->timeout_ms,
                           err)) ||
            (rc = get_long(d, "connect_timeout_ms", "defaults", 1, MAX_TIMEOUT_MS,
                           &cfg->connect_timeout_ms, err)))
            return rc;
    }
    const cJSON *r = cJSON_GetObjectItemCaseSensitive(root, "routing");
    if (r) {
        if ((rc = check_object(r, "routing", ROUTING_KEYS, err)) ||
            (rc = get_bool(r, "allow_direct", "routing", &cfg->allow_direct, err)) ||
            (rc = get_bool(r, "requested_model_wins", "routing", &cfg->model_wins, err)) ||
            (rc = get_bool(r, "check_capabilities", "routing", &cfg->check_capabilities, err)))
            return rc;
        const cJSON *cd = cJSON_GetObjectItemCaseSensitive(r, "cooldown");
        if (cd && ((rc = check_object(cd, "routing.cooldown", COOLDOWN_KEYS, err)) ||
                   (rc = get_long(cd, "after_failures", "routing.cooldown", 1, 1000,
                                  &cfg->cooldown_after, err)) ||
                   (rc = get_long(cd, "ms", "routing.cooldown", 1, MAX_TIMEOUT_MS,
                                  &cfg->cooldown_ms, err)) ||
                   (rc = get_long(cd, "max_ms", "routing.cooldown", 1, MAX_TIMEOUT_MS,
                                  &cfg->cooldown_max_ms, err))))
            return rc;
        if (cd && !cfg->cooldown_after)
            cfg->cooldown_after = 3; /* an object means: on, with the defaults */
        const cJSON *rt = cJSON_GetObjectItemCaseSensitive(r, "retry");
        if (rt && (rc = parse_retry(cfg, rt, err)))
            return rc;
    }
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(root, "transport");
    if (t) {
        long mrb = (long)cfg->max_response_bytes;
        if ((rc = check_object(t, "transport", TRANSPORT_KEYS, err)) ||
            (rc = get_long(t, "max_connections", "transport", 1, 1024, &cfg->max_connections,
                           err)) ||
            (rc = get_bool(t, "http2", "transport", &cfg->http2, err)) ||
            (rc = get_bool(t, "compression", "transport", &cfg->compression, err)) ||
            (rc = get_long(t, "max_response_bytes", "transport", 1024, 1024L * 1024 * 1024, &mrb,
                           err)))
            return rc;
        cfg->max_response_bytes = (size_t)mrb;
    }

    const cJSON *lg = cJSON_GetObjectItemCaseSensitive(root, "ledger");
    if (lg && ((rc = check_object(lg, "ledger", LEDGER_KEYS, err)) ||
               (rc = get_long(lg, "max_rows", "ledger", 1, 1000000000L, &cfg->ledger_max_rows,
                              err)) ||
               (rc = parse_journal(cfg, lg, err))))
        return rc;
    const cJSON *logc = cJSON_GetObjectItemCaseSensitive(root, "log");
    if (logc && (rc = parse_log(&cfg->log, logc, err)))
        return rc;

    if ((rc = parse_prices(cfg, root, err)))
        return rc;

    /* gateway keys, teams and budgets: kept as text, checked by lib/policy at open */
    static const char *const POLICY_KEYS[] = {"keys", "teams", "budgets"};
    char **policy_text[] = {&cfg->keys_json, &cfg->teams_json, &cfg->budgets_json};
    for (int i = 0; i < 3; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, POLICY_KEYS[i]);
        if (v && !(*policy_text[i] = cJSON_PrintUnformatted(v)))
            return llmux__err(err, LLMUX_ERR_NO_MEMORY, "out of memory");
    }
    if ((rc = get_bool(root, "require_key", "", &cfg->require_key, err)))
        return rc;

    const cJSON *provs = cJSON_GetObjectItemCaseSensitive(root, "providers");
    if (!provs)
        return cfg_err(err, "providers", "required");
    if ((rc = check_object(provs, "providers", NULL, err)))
        return rc;
    int np = cJSON_GetArraySize(provs);
    if (np == 0)
        return cfg_err(err, "providers", "must define at least one provider");
    cfg->providers = calloc((size_t)np, sizeof *cfg->providers);
    if (!cfg->providers)
        return llmux__err(err, LLMUX_ERR_NO_MEMORY, "out of memory");
    for (const cJSON *it = provs->child; it; it = it->next) {
        char p[PATH_MAX_LEN];
        path_child(p, "providers", it->string);
        if ((rc = check_name(it->string, p, "provider", err)))
            return rc;
        if (strchr(it->string, '/'))
            return cfg_err(err, p, "provider names must not contain '/'");
        lx_provider_cfg *pc = &cfg->providers[cfg->n_providers++];
        if (!(pc->name = dupstr(it->string)))
            return llmux__err(err, LLMUX_ERR_NO_MEMORY, "out of memory");
        if ((rc = parse_provider(cfg, pc, it, p, err)))
            return rc;
    }

    const cJSON *models = cJSON_GetObjectItemCaseSensitive(root, "models");
    if (!models)
        return cfg_err(err, "models", "required");
    if ((rc = check_object(models, "models", NULL, err)))
        return rc;
    int nm = cJSON_GetArraySize(models);
    if (nm == 0 && !cfg->allow_direct)
        return cfg_err(err, "models",
                       "must define at least one alias (or set routing.allow_direct)");
    cfg->aliases = calloc((size_t)nm + 1, sizeof *cfg->aliases);
    if (!cfg->aliases)
        return llmux__err(err, LLMUX_ERR_NO_MEMORY, "out of memory");
    for (const cJSON *it = models->child; it; it = it->next) {
        char p[PATH_MAX_LEN];
        path_child(p, "models", it->string);
        if ((rc = check_name(it->string, p, "alias", err)))
            return rc;
        lx_alias *a = &cfg->aliases[cfg->n_aliases];
        a->index = cfg->n_aliases++;
        if (!(a->name = dupstr(it->string)))
            return llmux__err(err, LLMUX_ERR_NO_MEMORY, "out of memory");
        if ((rc = parse_alias(cfg, a, it, p, err)))
            return rc;
    }
    if (build_alias_index(cfg))
        return llmux__err(err, LLMUX_ERR_NO_MEMORY, "out of memory");
    if ((rc = alias_fallbacks(cfg, models, err)))
        return rc;
    if ((rc = check_fallback_safety(cfg)))
        return llmux__err(err, rc, "out of memory");
    const cJSON *rules = cJSON_GetObjectItemCaseSensitive(root, "rules");
    if (rules) {
        if (!cJSON_IsArray(rules))
            return cfg_err(err, "rules", "expected an array, got %s", json_kind(rules));
        int nr = cJSON_GetArraySize(rules);
        if (nr > 1000)
            return cfg_err(err, "rules", "at most 1000 rules");
        cfg->rules = calloc((size_t)nr + 1, sizeof *cfg->rules);
        if (!cfg->rules)
            return llmux__err(err, LLMUX_ERR_NO_MEMORY, "out of memory");
        int i = 0;
        for (const cJSON *it = rules->child; it; it = it->next, i++) {
            char rp[PATH_MAX_LEN];
            path_index(rp, "rules", i);
            lx_rule *rule = &cfg->rules[cfg->n_rules++];
            if ((rc = parse_rule(cfg, rule, it, rp, err)))
                return rc;
        }
    }
    if (cfg->strict && cfg->n_warnings)
        return llmux__err(err, LLMUX_ERR_CONFIG, "%s (refused: \"strict\" is true)",
                          cfg->warnings[0]);
    return LLMUX_OK;
}

static void config_free(lx_config *cfg)
{
    if (!cfg)
        return;
    for (size_t i = 0; i < cfg->n_warnings; i++)
        free(cfg->warnings[i]);
    free(cfg->warnings);
    free(cfg->ledger_journal);
    cJSON_free(cfg->keys_json);
    cJSON_free(cfg->teams_json);
    cJSON_free(cfg->budgets_json);
    for (size_t i = 0; i < cfg->n_rules; i++) {
        free(cfg->rules[i].task);
        free(cfg->rules[i].workflow);
        free(cfg->rules[i].key);
        free(cfg->rules[i].team);
    }
    free(cfg->rules);
    free(cfg->log.file);
    free(cfg->log.otlp_url);
    for (size_t i = 0; i < cfg->log.n_content_keys; i++)
        free(cfg->log.content_keys[i]);
    free(cfg->log.content_keys);
    free(cfg->log.content_key_policy);
    for (size_t i = 0; i < cfg->log.n_content_teams; i++)
        free(cfg->log.content_teams[i]);
    free(cfg->log.content_teams);
    free(cfg->log.content_team_policy);
    for (size_t i = 0; i < cfg->n_providers; i++) {
        lx_provider_cfg *p = &cfg->providers[i];
        if (p->ops && p->ops->release)
            p->ops->release(p);
        free(p->name);
        free(p->type);
        free(p->base_url);
        free(p->api_key_env);
        if (p->api_key) {
            /* wipe the secret before giving the memory back */
            volatile char *k = p->api_key;
            while (*k)
                *k++ = 0;
            free(p->api_key);
        }
        for (size_t h = 0; h < p->n_extra_headers; h++)
            free(p->extra_headers[h]);
        free(p->extra_headers);
    }
    free(cfg->providers);
    for (size_t i = 0; i < cfg->n_aliases; i++) {
        for (size_t t = 0; t < cfg->aliases[i].n_targets; t++) {
            free(cfg->aliases[i].targets[t].model);
            if (cfg->aliases[i].targets[t].params)
                cJSON_free(cfg->aliases[i].targets[t].params);
        }
        free(cfg->aliases[i].targets);
        free(cfg->aliases[i].name);
    }
    free(cfg->aliases);
    free(cfg->alias_slots);
    llmux__price_table_free(cfg->prices);
    free(cfg->price_file_source);
    free(cfg);
}

int llmux__config_parse(lx_config **out, const char *json, size_t len, lx_err *err)
{
    *out = NULL;
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(json, len, &end, 0);
    size_t off = 0;
    int syntax = llmux__json_check(json, len, &off);
    if (root && syntax != LLMUX_JSON_OK) { /* cJSON stopped at the end of the value */
        cJSON_Delete(root);
        root = NULL;
    }
    if (!root) {
        if (syntax == LLMUX_JSON_OK)
            return llmux__err(err, LLMUX_ERR_NO_MEMORY, "out of memory");
        if (syntax == LLMUX_JSON_DEPTH)
            return llmux__err(err, LLMUX_ERR_CONFIG, "config: nested more than %d levels deep",
                              LLMUX_JSON_MAX_DEPTH);
        size_t line = 1, col = 1;
        for (size_t i = 0; i < off && i < len; i++) {
            if (json[i] == '\n') {
                line++;
                col = 1;
            } else {
                col++;
            }
        }
        return llmux__err(err, LLMUX_ERR_CONFIG,
                          "config: not valid JSON (error at line %zu, column %zu)", line, col);
    }
    lx_config *cfg = calloc(1, sizeof *cfg);
    if (!cfg) {
        cJSON_Delete(root);
        return llmux__err(err, LLMUX_ERR_NO_MEMORY, "out of memory");
    }
    atomic_init(&cfg->refs, 1);
    cfg->timeout_ms = DEFAULT_TIMEOUT_MS;
    cfg->connect_timeout_ms = DEFAULT_CONNECT_TIMEOUT_MS;
    cfg->max_connections = DEFAULT_MAX_CONNECTIONS;
    cfg->http2 = 1;
    cfg->max_response_bytes = DEFAULT_MAX_RESPONSE_BYTES;
    cfg->ledger_max_rows = 1000000L;
    cfg->ledger_fsync_interval_ms = 1000;
    cfg->ledger_compact_bytes = 64L * 1024 * 1024;
    cfg->cooldown_ms = 5000;
    cfg->retry.backoff_ms = 200;
    cfg->retry.max_backoff_ms = 5000;
    cfg->retry.retry_after_cap_ms = 10000;
    cfg->retry.on = 1u << -LLMUX_ERR_RATE_LIMIT | 1u << -LLMUX_ERR_PROVIDER |
                    1u << -LLMUX_ERR_TIMEOUT | 1u << -LLMUX_ERR_CONNECT;
    cfg->cooldown_max_ms = 300000;
    cfg->log.queue = 4096;
    cfg->log.attempts = 1;
    cfg->log.otlp_batch = 512;
    cfg->log.otlp_timeout_ms = 2000;
    cfg->log.otlp_interval_ms = 1000;
    int rc = parse_root(cfg, root, err);
    cJSON_Delete(root);
    if (rc) {
        config_free(cfg);
        return rc;
    }
    *out = cfg;
    return LLMUX_OK;
}

void llmux__config_ref(lx_config *cfg)
{
    atomic_fetch_add_explicit(&cfg->refs, 1, memory_order_relaxed);
}

void llmux__config_unref(lx_config *cfg)
{
    if (cfg && atomic_fetch_sub_explicit(&cfg->refs, 1, memory_order_acq_rel) == 1)
        config_free(cfg);
}
