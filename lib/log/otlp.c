#include "log/otlp.h"

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static size_t discard(char *p, size_t size, size_t n, void *u)
{
    (void)p;
    (void)u;
    return size * n;
}

int llmux__otlp_init(lx_otlp *o, const char *url, long timeout_ms, long batch)
{
    memset(o, 0, sizeof *o);
    o->timeout_ms = timeout_ms;
    o->batch_max = (size_t)batch;
    if (!(o->url = strdup(url)) || !(o->curl = curl_easy_init()))
        return -1;
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    if (!h)
        return -1;
    o->headers = h;
    return 0;
}

/* One record as an OTLP LogRecord: the JSON members become attributes
 * (strings, int64 as decimal strings, doubles, booleans; nulls left out),
 * the event name is the body. */
static int log_record(lx_buf *b, const cJSON *rec, int64_t t_ns)
{
    const cJSON *ev = cJSON_GetObjectItemCaseSensitive(rec, "event.name");
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(rec, "error.type");
    int bad = llmux__buf_printf(b, "{\"timeUnixNano\":\"%lld\",\"severityNumber\":%d,"
                                   "\"severityText\":\"%s\",\"eventName\":",
                                (long long)t_ns, cJSON_IsString(st) ? 13 : 9,
                                cJSON_IsString(st) ? "WARN" : "INFO") ||
              llmux__buf_json_string(b, cJSON_IsString(ev) ? ev->valuestring : "llmux") ||
              llmux__buf_puts(b, ",\"body\":{\"stringValue\":") ||
              llmux__buf_json_string(b, cJSON_IsString(ev) ? ev->valuestring : "llmux") ||
              llmux__buf_puts(b, "},\"attributes\":[");
    int first = 1;
    for (const cJSON *m = rec->child; m && !bad; m = m->next) {
        if (cJSON_IsNull(m) || strcmp(m->string, "time") == 0)
            continue;
        bad = llmux__buf_puts(b, first ? "{\"key\":" : ",{\"key\":") ||
              llmux__buf_json_string(b, m->string) || llmux__buf_puts(b, ",\"value\":{");
        first = 0;
        if (bad)
            break;
        if (cJSON_IsString(m))
            bad = llmux__buf_puts(b, "\"stringValue\":") ||
                  llmux__buf_json_string(b, m->valuestring);
        else if (cJSON_IsBool(m))
            bad = llmux__buf_printf(b, "\"boolValue\":%s", cJSON_IsTrue(m) ? "true" : "false");
        else if (cJSON_IsNumber(m) && m->valuedouble > -9e15 && m->valuedouble < 9e15 &&
                 m->valuedouble == (double)(long long)m->valuedouble) /* no libm */
            bad = llmux__buf_printf(b, "\"intValue\":\"%lld\"", (long long)m->valuedouble);
        else
            bad = llmux__buf_printf(b, "\"doubleValue\":%.17g",
                                    cJSON_IsNumber(m) ? m->valuedouble : 0.0);
        bad = bad || llmux__buf_puts(b, "}}");
    }
    return bad || llmux__buf_puts(b, "]}");
}

void llmux__otlp_add(lx_otlp *o, const char *rec, size_t len, int64_t t_ns)
{
    cJSON *j = cJSON_ParseWithLength(rec, len);
    if (!j) {
        o->dropped++;
        return;
    }
    size_t mark = o->body.len;
    if ((o->pending && llmux__buf_puts(&o->body, ",")) || log_record(&o->body, j, t_ns)) {
        o->body.len = mark;
        if (o->body.data)
            o->body.data[mark] = '\0';
        o->dropped++;
    } else {
        o->pending++;
    }
    cJSON_Delete(j);
    if (o->pending >= o->batch_max)
        llmux__otlp_send(o);
}

void llmux__otlp_send(lx_otlp *o)
{
    if (!o->pending)
        return;
    size_t n = o->pending;
    o->pending = 0;
    lx_buf req = LX_BUF_INIT;
    double now = mono();
    int ok = 0;
    if (now >= o->backoff_until &&
        !llmux__buf_puts(&req, "{\"resourceLogs\":[{\"resource\":{\"attributes\":[{\"key\":"
                               "\"service.name\",\"value\":{\"stringValue\":\"llmux\"}}]},"
                               "\"scopeLogs\":[{\"scope\":{\"name\":\"llmux\"},\"logRecords\":[") &&
        !llmux__buf_append(&req, o->body.data, o->body.len) && !llmux__buf_puts(&req, "]}]}]}")) {
        CURL *c = o->curl;
        long code = 0;
        curl_easy_setopt(c, CURLOPT_URL, o->url);
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, (struct curl_slist *)o->headers);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, req.data);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req.len);
        curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, o->timeout_ms);
        curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, o->timeout_ms);
        curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
        if (curl_easy_perform(c) == CURLE_OK &&
            curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code) == CURLE_OK && code >= 200 &&
            code <= 299)
            ok = 1;
        if (ok) {
            o->backoff_s = 0;
        } else {
            o->backoff_s = o->backoff_s ? (o->backoff_s * 2 > 30 ? 30 : o->backoff_s * 2) : 1;
            o->backoff_until = now + o->backoff_s;
        }
    }
    llmux__buf_free(&req);
    llmux__buf_clear(&o->body);
    if (ok)
        o->exported += n;
    else
        o->dropped += n;
}

void llmux__otlp_free(lx_otlp *o)
{
    if (o->curl)
        curl_easy_cleanup(o->curl);
    curl_slist_free_all(o->headers);
    llmux__buf_free(&o->body);
    free(o->url);
    memset(o, 0, sizeof *o);
}
