/* faults.c - the deployment registry, settings parsing and fault scheduling. */
#include "faults.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct sim_fault {
    sim_fault_type type;
    long count;        /* uses left; -1 = forever; 0 = used up */
    int status;
    long ms;
    char *retry_after; /* NULL when not set */
    char *body;        /* serialized JSON, NULL when not set */
    sim_hostile_kind kind;
    long bytes, offset;
} sim_fault;

typedef struct sim_settings {
    char *require_key; /* NULL when not set */
    long latency_ms;
    sim_fault *faults;
    size_t nfaults;
} sim_settings;

typedef struct sim_deployment {
    struct sim_deployment *next;
    size_t name_len;
    char name[SIM_NAME_MAX + 1];
    sim_settings s;
    size_t first_fault; /* faults before this index are used up */
    unsigned long requests;
    unsigned long faults_applied;
    int has_last;
    int last_has_auth;
    int last_body_truncated;
    size_t last_body_bytes; /* as received, before the cap */
    sim_buf last_path, last_auth, last_body;
} sim_deployment;

enum { BUCKETS = 2048 };

static struct {
    pthread_mutex_t lock;
    sim_deployment *buckets[BUCKETS];
    size_t count;
} reg = {.lock = PTHREAD_MUTEX_INITIALIZER};

static const struct {
    const char *name;
    sim_fault_type type;
} fault_names[] = {
    {"status", SIM_FAULT_STATUS},
    {"latency", SIM_FAULT_LATENCY},
    {"drop", SIM_FAULT_DROP},
    {"drop_mid_body", SIM_FAULT_DROP_MID_BODY},
    {"malformed", SIM_FAULT_MALFORMED},
    {"stream_drop", SIM_FAULT_STREAM_DROP},
    {"slow_stream", SIM_FAULT_SLOW_STREAM},
    {"hostile", SIM_FAULT_HOSTILE},
};

static const struct {
    const char *name;
    sim_hostile_kind kind;
    long bytes; /* default size or depth */
    long ms;    /* default delay */
    int status; /* default status */
} hostile_kinds[] = {
    {"huge_body", SIM_HOSTILE_HUGE_BODY, 40L * 1024 * 1024, 0, 200},
    {"endless_body", SIM_HOSTILE_ENDLESS_BODY, 0, 0, 200},
    {"drip", SIM_HOSTILE_DRIP, 0, 1, 200},
    {"bad_chunked", SIM_HOSTILE_BAD_CHUNKED, 0, 0, 200},
    {"invalid_utf8", SIM_HOSTILE_INVALID_UTF8, 0, 0, 200},
    {"deep_json", SIM_HOSTILE_DEEP_JSON, 100000, 0, 200},
    {"absurd_usage", SIM_HOSTILE_ABSURD_USAGE, 0, 0, 200},
    {"echo_key", SIM_HOSTILE_ECHO_KEY, 0, 0, 401},
    {"done_hang", SIM_HOSTILE_DONE_HANG, 0, 0, 200},
    {"error_200", SIM_HOSTILE_ERROR_200, 0, 0, 200},
    {"json_for_stream", SIM_HOSTILE_JSON_FOR_STREAM, 0, 0, 200},
};
#define HOSTILE_KINDS_TEXT                                                                     \
    "huge_body, endless_body, drip, bad_chunked, invalid_utf8, deep_json, absurd_usage, "      \
    "echo_key, done_hang, error_200 or json_for_stream"

static const char *hostile_kind_name(sim_hostile_kind k)
{
    for (size_t i = 0; i < sizeof hostile_kinds / sizeof hostile_kinds[0]; i++)
        if (hostile_kinds[i].kind == k)
            return hostile_kinds[i].name;
    return "none";
}

static const char *fault_type_name(sim_fault_type t)
{
    for (size_t i = 0; i < sizeof fault_names / sizeof fault_names[0]; i++)
        if (fault_names[i].type == t)
            return fault_names[i].name;
    return "none";
}

int sim_name_valid(const char *name, size_t len)
{
    if (len == 0 || len > SIM_NAME_MAX)
        return 0;
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '-'))
            return 0;
    }
    return 1;
}

void sim_error_json(sim_buf *out, const char *message, const char *type, const char *param,
                    const char *code)
{
    sim_buf_puts(out, "{\"error\":{\"message\":");
    sim_buf_json_str(out, message, strlen(message));
    sim_buf_puts(out, ",\"type\":");
    sim_buf_json_str(out, type, strlen(type));
    sim_buf_puts(out, ",\"param\":");
    if (param)
        sim_buf_json_str(out, param, strlen(param));
    else
        sim_buf_puts(out, "null");
    sim_buf_puts(out, ",\"code\":");
    if (code)
        sim_buf_json_str(out, code, strlen(code));
    else
        sim_buf_puts(out, "null");
    sim_buf_puts(out, "}}");
}

/* ------------------------------------------------------------------ settings */

static void settings_free(sim_settings *s)
{
    for (size_t i = 0; i < s->nfaults; i++) {
        free(s->faults[i].retry_after);
        free(s->faults[i].body);
    }
    free(s->faults);
    free(s->require_key);
    memset(s, 0, sizeof *s);
}

static char *xstrdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = malloc(n);
    if (p)
        memcpy(p, s, n);
    return p;
}

/* An integer-valued JSON number within [lo, hi]. */
static int json_int(const cJSON *v, long lo, long hi, long *out)
{
    if (!cJSON_IsNumber(v))
        return 0;
    double d = v->valuedouble;
    if (!isfinite(d) || d != floor(d) || d < (double)lo || d > (double)hi)
        return 0;
    *out = (long)d;
    return 1;
}

typedef struct parse_err {
    char msg[256];
    char param[64];
} parse_err;

static int fail(parse_err *e, const char *field, const char *what)
{
    snprintf(e->param, sizeof e->param, "%s", field);
    snprintf(e->msg, sizeof e->msg, "%s: %s", field, what);
    return -1;
}

static int parse_fault(const cJSON *f, size_t idx, sim_fault *out, parse_err *e)
{
    char field[64];
    snprintf(field, sizeof field, "faults[%zu]", idx);
    if (!cJSON_IsObject(f))
        return fail(e, field, "must be an object");
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(f, "type");
    snprintf(field, sizeof field, "faults[%zu].type", idx);
    if (!cJSON_IsString(type))
        return fail(e, field, "must be a string (status, latency, drop, drop_mid_body, "
                              "malformed, stream_drop, slow_stream or hostile)");
    out->type = SIM_FAULT_NONE;
    for (size_t i = 0; i < sizeof fault_names / sizeof fault_names[0]; i++)
        if (strcmp(type->valuestring, fault_names[i].name) == 0)
            out->type = fault_names[i].type;
    if (out->type == SIM_FAULT_NONE)
        return fail(e, field, "unknown fault type (status, latency, drop, drop_mid_body, "
                              "malformed, stream_drop, slow_stream or hostile)");
    out->count = 1;
    int has_status = 0, has_ms = 0;
    if (out->type == SIM_FAULT_HOSTILE) {
        const cJSON *kind = cJSON_GetObjectItemCaseSensitive(f, "kind");
        snprintf(field, sizeof field, "faults[%zu].kind", idx);
        for (size_t i = 0; cJSON_IsString(kind) && i < sizeof hostile_kinds / sizeof hostile_kinds[0];
             i++)
            if (strcmp(kind->valuestring, hostile_kinds[i].name) == 0) {
                out->kind = hostile_kinds[i].kind;
                out->bytes = hostile_kinds[i].bytes;
                out->ms = hostile_kinds[i].ms;
                out->status = hostile_kinds[i].status;
            }
        if (!out->kind)
            return fail(e, field, "is required for a hostile fault, one of " HOSTILE_KINDS_TEXT);
        has_status = has_ms = 1;
    }
    for (const cJSON *it = f->child; it; it = it->next) {
        const char *k = it->string;
        snprintf(field, sizeof field, "faults[%zu].%.32s", idx, k);
        if (strcmp(k, "type") == 0) {
            continue;
        } else if (strcmp(k, "count") == 0) {
            long c;
            if (!json_int(it, -1, 1000000000L, &c) || c == 0)
                return fail(e, field, "must be a positive integer or -1 (forever)");
            out->count = c;
        } else if (strcmp(k, "kind") == 0 && out->type == SIM_FAULT_HOSTILE) {
            continue;
        } else if ((strcmp(k, "bytes") == 0 && out->kind == SIM_HOSTILE_HUGE_BODY) ||
                   (strcmp(k, "depth") == 0 && out->kind == SIM_HOSTILE_DEEP_JSON)) {
            if (!json_int(it, 1, SIM_HOSTILE_BYTES_MAX, &out->bytes))
                return fail(e, field, "must be an integer from 1 to 1073741824");
        } else if (strcmp(k, "offset") == 0 && out->kind == SIM_HOSTILE_ECHO_KEY) {
            if (!json_int(it, 0, SIM_HOSTILE_OFFSET_MAX, &out->offset))
                return fail(e, field, "must be an integer from 0 to 65536");
        } else if (strcmp(k, "status") == 0 && out->kind == SIM_HOSTILE_ECHO_KEY) {
            long st;
            if (!json_int(it, 200, 599, &st))
                return fail(e, field, "must be an integer HTTP status from 200 to 599");
            out->status = (int)st;
        } else if (strcmp(k, "ms") == 0 && out->kind == SIM_HOSTILE_DRIP) {
            if (!json_int(it, 0, SIM_MS_MAX, &out->ms))
                return fail(e, field, "must be an integer from 0 to 600000");
        } else if (strcmp(k, "status") == 0 && out->type == SIM_FAULT_STATUS) {
            long st;
            if (!json_int(it, 200, 599, &st))
                return fail(e, field, "must be an integer HTTP status from 200 to 599");
            out->status = (int)st;
            has_status = 1;
        } else if (strcmp(k, "retry_after") == 0 && out->type == SIM_FAULT_STATUS) {
            char tmp[SIM_RETRY_AFTER_MAX + 1];
            long secs;
            if (cJSON_IsString(it)) {
                size_t n = strlen(it->valuestring);
                if (n == 0 || n > SIM_RETRY_AFTER_MAX)
                    return fail(e, field, "must be a non-empty string of at most 64 bytes");
                for (size_t i = 0; i < n; i++) {
                    unsigned char c = (unsigned char)it->valuestring[i];
                    if (c < 0x20 || c >= 0x7f)
                        return fail(e, field, "must be printable ASCII");
                }
                snprintf(tmp, sizeof tmp, "%s", it->valuestring);
            } else if (json_int(it, 0, 1000000000L, &secs)) {
                snprintf(tmp, sizeof tmp, "%ld", secs);
            } else {
                return fail(e, field, "must be a string (or a non-negative integer)");
            }
            free(out->retry_after);
            out->retry_after = xstrdup(tmp);
            if (!out->retry_after)
                return fail(e, field, "out of memory");
        } else if (strcmp(k, "body") == 0 && out->type == SIM_FAULT_STATUS) {
            char *s = cJSON_PrintUnformatted(it);
            if (!s)
                return fail(e, field, "out of memory");
            if (strlen(s) > SIM_FAULT_BODY_MAX) {
                cJSON_free(s);
                return fail(e, field, "must serialize to at most 65536 bytes");
            }
            free(out->body);
            out->body = xstrdup(s);
            cJSON_free(s);
            if (!out->body)
                return fail(e, field, "out of memory");
        } else if (strcmp(k, "ms") == 0 &&
                   (out->type == SIM_FAULT_LATENCY || out->type == SIM_FAULT_SLOW_STREAM)) {
            if (!json_int(it, 0, SIM_MS_MAX, &out->ms))
                return fail(e, field, "must be an integer from 0 to 600000");
            has_ms = 1;
        } else {
            return fail(e, field, "unknown field for this fault type");
        }
    }
    if (out->type == SIM_FAULT_STATUS && !has_status) {
        snprintf(field, sizeof field, "faults[%zu].status", idx);
        return fail(e, field, "is required for a status fault");
    }
    if ((out->type == SIM_FAULT_LATENCY || out->type == SIM_FAULT_SLOW_STREAM) && !has_ms) {
        snprintf(field, sizeof field, "faults[%zu].ms", idx);
        return fail(e, field, "is required for this fault type");
    }
    return 0;
}

static int parse_settings(const char *json, size_t len, sim_settings *s, parse_err *e)
{
    memset(s, 0, sizeof *s);
    size_t i = 0;
    while (i < len && (json[i] == ' ' || json[i] == '\t' || json[i] == '\r' || json[i] == '\n'))
        i++;
    if (i == len)
        return 0; /* an empty body means all defaults */
    cJSON *root = cJSON_ParseWithLength(json, len);
    int rc = -1;
    if (!root) {
        snprintf(e->msg, sizeof e->msg, "the settings are not valid JSON");
        e->param[0] = '\0';
        return -1;
    }
    if (!cJSON_IsObject(root)) {
        fail(e, "settings", "must be a JSON object");
        goto done;
    }
    for (const cJSON *it = root->child; it; it = it->next) {
        const char *k = it->string;
        if (strcmp(k, "require_key") == 0) {
            if (cJSON_IsNull(it))
                continue;
            if (!cJSON_IsString(it) || it->valuestring[0] == '\0' ||
                strlen(it->valuestring) > 4096) {
                fail(e, "require_key", "must be a non-empty string (or null)");
                goto done;
            }
            free(s->require_key);
            s->require_key = xstrdup(it->valuestring);
            if (!s->require_key) {
                fail(e, "require_key", "out of memory");
                goto done;
            }
        } else if (strcmp(k, "latency_ms") == 0) {
            if (!json_int(it, 0, SIM_MS_MAX, &s->latency_ms)) {
                fail(e, "latency_ms", "must be an integer from 0 to 600000");
                goto done;
            }
        } else if (strcmp(k, "faults") == 0) {
            if (!cJSON_IsArray(it)) {
                fail(e, "faults", "must be an array");
                goto done;
            }
            int n = cJSON_GetArraySize(it);
            if (n > SIM_FAULTS_MAX) {
                fail(e, "faults", "at most 64 faults");
                goto done;
            }
            if (s->faults) { /* a duplicated key: the last one wins */
                for (size_t j = 0; j < s->nfaults; j++) {
                    free(s->faults[j].retry_after);
                    free(s->faults[j].body);
                }
                free(s->faults);
                s->faults = NULL;
                s->nfaults = 0;
            }
            if (n > 0) {
                s->faults = calloc((size_t)n, sizeof *s->faults);
                if (!s->faults) {
                    fail(e, "faults", "out of memory");
                    goto done;
                }
            }
            size_t idx = 0;
            for (const cJSON *f = it->child; f && idx < (size_t)n; f = f->next, idx++) {
                s->nfaults = idx + 1; /* so settings_free sees what was parsed */
                if (parse_fault(f, idx, &s->faults[idx], e) < 0)
                    goto done;
            }
        } else {
            char field[64];
            snprintf(field, sizeof field, "%.60s", k);
            fail(e, field, "unknown field (require_key, latency_ms, faults)");
            goto done;
        }
    }
    rc = 0;
done:
    cJSON_Delete(root);
    if (rc < 0)
        settings_free(s);
    return rc;
}

/* ------------------------------------------------------------------ registry */

static size_t hash_name(const char *s, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 16777619u;
    }
    return h % BUCKETS;
}

static sim_deployment **find_slot(const char *name, size_t len)
{
    sim_deployment **pp = &reg.buckets[hash_name(name, len)];
    while (*pp && !((*pp)->name_len == len && memcmp((*pp)->name, name, len) == 0))
        pp = &(*pp)->next;
    return pp;
}

static void deployment_free(sim_deployment *d)
{
    settings_free(&d->s);
    sim_buf_free(&d->last_path);
    sim_buf_free(&d->last_auth);
    sim_buf_free(&d->last_body);
    free(d);
}

/* Finds or creates; NULL when the cap is reached or memory ran out. */
static sim_deployment *obtain(const char *name, size_t len)
{
    sim_deployment **pp = find_slot(name, len);
    if (*pp)
        return *pp;
    if (reg.count >= SIM_DEPLOYMENTS_MAX)
        return NULL;
    sim_deployment *d = calloc(1, sizeof *d);
    if (!d)
        return NULL;
    memcpy(d->name, name, len);
    d->name[len] = '\0';
    d->name_len = len;
    sim_buf_init(&d->last_path, SIM_LAST_FIELD_MAX);
    sim_buf_init(&d->last_auth, SIM_LAST_FIELD_MAX);
    sim_buf_init(&d->last_body, SIM_LAST_BODY_MAX);
    *pp = d;
    reg.count++;
    return d;
}

void sim_registry_init(void)
{
    pthread_mutex_lock(&reg.lock);
    memset(reg.buckets, 0, sizeof reg.buckets);
    reg.count = 0;
    pthread_mutex_unlock(&reg.lock);
}

static void free_all_locked(void)
{
    for (size_t i = 0; i < BUCKETS; i++) {
        sim_deployment *d = reg.buckets[i];
        while (d) {
            sim_deployment *next = d->next;
            deployment_free(d);
            d = next;
        }
        reg.buckets[i] = NULL;
    }
    reg.count = 0;
}

void sim_registry_free(void)
{
    pthread_mutex_lock(&reg.lock);
    free_all_locked();
    pthread_mutex_unlock(&reg.lock);
}

static void copy_capped(sim_buf *b, const char *p, size_t n)
{
    sim_buf_reset(b);
    if (n > b->max)
        n = b->max;
    sim_buf_append(b, p, n);
}

int sim_registry_request(const char *name, size_t name_len, const char *path, size_t path_len,
                         const char *auth, size_t auth_len, int has_auth, const char *body,
                         size_t body_len, sim_ticket *t, sim_buf *fault_body)
{
    t->fault = SIM_FAULT_NONE;
    t->retry_after[0] = '\0';
    t->has_body = 0;
    pthread_mutex_lock(&reg.lock);
    sim_deployment *d = obtain(name, name_len);
    if (!d) {
        pthread_mutex_unlock(&reg.lock);
        return -1;
    }
    t->n = ++d->requests;
    t->latency_ms = d->s.latency_ms;

    d->has_last = 1;
    copy_capped(&d->last_path, path, path_len);
    d->last_has_auth = has_auth;
    copy_capped(&d->last_auth, has_auth ? auth : "", has_auth ? auth_len : 0);
    d->last_body_truncated = body_len > d->last_body.max;
    d->last_body_bytes = body_len;
    copy_capped(&d->last_body, body, body_len);

    t->auth_ok = 1;
    if (d->s.require_key) {
        size_t kl = strlen(d->s.require_key);
        /* "api-key: K" is how an Azure route records its api-key header */
        size_t pl = auth_len > 9 && memcmp(auth, "api-key: ", 9) == 0 ? 9 : 7;
        t->auth_ok = has_auth && auth_len == kl + pl &&
                     (pl == 9 || memcmp(auth, "Bearer ", 7) == 0) &&
                     memcmp(auth + pl, d->s.require_key, kl) == 0;
    }
    if (t->auth_ok) {
        while (d->first_fault < d->s.nfaults && d->s.faults[d->first_fault].count == 0)
            d->first_fault++;
        if (d->first_fault < d->s.nfaults) {
            sim_fault *f = &d->s.faults[d->first_fault];
            if (f->count > 0)
                f->count--;
            d->faults_applied++;
            t->fault = f->type;
            t->status = f->status;
            t->ms = f->ms;
            t->kind = f->kind;
            t->bytes = f->bytes;
            t->offset = f->offset;
            if (f->retry_after)
                snprintf(t->retry_after, sizeof t->retry_after, "%s", f->retry_after);
            if (f->body) {
                sim_buf_reset(fault_body);
                sim_buf_puts(fault_body, f->body);
                t->has_body = sim_buf_ok(fault_body);
            }
        }
    }
    pthread_mutex_unlock(&reg.lock);
    return 0;
}

/* ----------------------------------------------------------------- control */

static int emit(sim_buf *out, cJSON *obj)
{
    char *s = obj ? cJSON_PrintUnformatted(obj) : NULL;
    cJSON_Delete(obj);
    if (!s) {
        sim_error_json(out, "out of memory", "server_error", NULL, NULL);
        return 500;
    }
    sim_buf_puts(out, s);
    cJSON_free(s);
    return 200;
}

static cJSON *fault_json(const sim_fault *f)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "type", fault_type_name(f->type));
    if (f->type == SIM_FAULT_STATUS) {
        cJSON_AddNumberToObject(o, "status", f->status);
        if (f->retry_after)
            cJSON_AddStringToObject(o, "retry_after", f->retry_after);
        if (f->body) {
            cJSON *b = cJSON_Parse(f->body);
            if (b)
                cJSON_AddItemToObject(o, "body", b);
        }
    }
    if (f->type == SIM_FAULT_LATENCY || f->type == SIM_FAULT_SLOW_STREAM)
        cJSON_AddNumberToObject(o, "ms", (double)f->ms);
    if (f->type == SIM_FAULT_HOSTILE) {
        cJSON_AddStringToObject(o, "kind", hostile_kind_name(f->kind));
        if (f->kind == SIM_HOSTILE_HUGE_BODY || f->kind == SIM_HOSTILE_DEEP_JSON)
            cJSON_AddNumberToObject(o, f->kind == SIM_HOSTILE_HUGE_BODY ? "bytes" : "depth",
                                    (double)f->bytes);
        if (f->kind == SIM_HOSTILE_DRIP)
            cJSON_AddNumberToObject(o, "ms", (double)f->ms);
        if (f->kind == SIM_HOSTILE_ECHO_KEY) {
            cJSON_AddNumberToObject(o, "status", f->status);
            cJSON_AddNumberToObject(o, "offset", (double)f->offset);
        }
    }
    cJSON_AddNumberToObject(o, "count", (double)f->count);
    return o;
}

/* The state of d, or of a deployment with default settings when d is NULL. */
static cJSON *state_json(const char *name, const sim_deployment *d)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", name);
    cJSON_AddNumberToObject(o, "requests", d ? (double)d->requests : 0);
    cJSON_AddNumberToObject(o, "faults_applied", d ? (double)d->faults_applied : 0);
    cJSON *left = cJSON_AddArrayToObject(o, "faults_left");
    if (d)
        for (size_t i = d->first_fault; i < d->s.nfaults; i++)
            if (d->s.faults[i].count != 0)
                cJSON_AddItemToArray(left, fault_json(&d->s.faults[i]));
    cJSON_AddNumberToObject(o, "latency_ms", d ? (double)d->s.latency_ms : 0);
    cJSON_AddBoolToObject(o, "require_key", d && d->s.require_key);
    if (!d || !d->has_last) {
        cJSON_AddNullToObject(o, "last_request");
        return o;
    }
    cJSON *lr = cJSON_AddObjectToObject(o, "last_request");
    cJSON_AddStringToObject(lr, "path", d->last_path.data ? d->last_path.data : "");
    if (d->last_has_auth)
        cJSON_AddStringToObject(lr, "authorization", d->last_auth.data ? d->last_auth.data : "");
    else
        cJSON_AddNullToObject(lr, "authorization");
    cJSON *body = NULL;
    if (!d->last_body_truncated && d->last_body.len)
        body = cJSON_ParseWithLength(d->last_body.data, d->last_body.len);
    if (body)
        cJSON_AddItemToObject(lr, "body", body);
    else
        cJSON_AddNullToObject(lr, "body");
    cJSON_AddNumberToObject(lr, "body_bytes", (double)d->last_body_bytes);
    if (d->last_body_truncated)
        cJSON_AddTrueToObject(lr, "body_truncated");
    return o;
}

int sim_registry_put(const char *name, size_t name_len, const char *json, size_t json_len,
                     sim_buf *out)
{
    sim_settings s;
    parse_err e;
    if (parse_settings(json, json_len, &s, &e) < 0) {
        sim_error_json(out, e.msg, "invalid_request_error", e.param[0] ? e.param : NULL, NULL);
        return 400;
    }
    pthread_mutex_lock(&reg.lock);
    sim_deployment *d = obtain(name, name_len);
    if (!d) {
        pthread_mutex_unlock(&reg.lock);
        settings_free(&s);
        sim_error_json(out, "too many deployments (at most 1024); DELETE some or POST /_sim/reset",
                       "server_error", NULL, NULL);
        return 503;
    }
    settings_free(&d->s);
    d->s = s;
    d->first_fault = 0;
    d->requests = 0;
    d->faults_applied = 0;
    d->has_last = 0;
    d->last_has_auth = 0;
    d->last_body_truncated = 0;
    sim_buf_reset(&d->last_path);
    sim_buf_reset(&d->last_auth);
    sim_buf_reset(&d->last_body);
    cJSON *st = state_json(d->name, d);
    pthread_mutex_unlock(&reg.lock);
    return emit(out, st);
}

int sim_registry_get(const char *name, size_t name_len, sim_buf *out)
{
    char nm[SIM_NAME_MAX + 1];
    memcpy(nm, name, name_len);
    nm[name_len] = '\0';
    pthread_mutex_lock(&reg.lock);
    sim_deployment **pp = find_slot(name, name_len);
    cJSON *st = state_json(nm, *pp);
    pthread_mutex_unlock(&reg.lock);
    return emit(out, st);
}

int sim_registry_delete(const char *name, size_t name_len, sim_buf *out)
{
    pthread_mutex_lock(&reg.lock);
    sim_deployment **pp = find_slot(name, name_len);
    sim_deployment *d = *pp;
    if (d) {
        *pp = d->next;
        reg.count--;
    }
    pthread_mutex_unlock(&reg.lock);
    if (d)
        deployment_free(d);
    sim_buf_puts(out, "{\"ok\":true}");
    return 200;
}

int sim_registry_reset(sim_buf *out)
{
    sim_registry_free();
    sim_buf_puts(out, "{\"ok\":true}");
    return 200;
}
