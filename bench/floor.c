/* floor.c - see floor.h. Deliberately plain: this is the yardstick. */
#include "floor.h"

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>

struct floor_client {
    CURL *h;
    struct curl_slist *headers;
    char *buf;
    size_t len, cap;
};

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    floor_client *c = userdata;
    size_t n = size * nmemb;
    if (c->len + n + 1 > c->cap) {
        size_t cap = c->cap ? c->cap : 4096;
        while (cap < c->len + n + 1)
            cap *= 2;
        char *p = realloc(c->buf, cap);
        if (!p)
            return 0;
        c->buf = p;
        c->cap = cap;
    }
    memcpy(c->buf + c->len, ptr, n);
    c->len += n;
    c->buf[c->len] = '\0';
    return n;
}

floor_client *floor_client_new(void)
{
    floor_client *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->h = curl_easy_init();
    if (!c->h) {
        free(c);
        return NULL;
    }
    c->headers = curl_slist_append(NULL, "Content-Type: application/json");
    c->headers = curl_slist_append(c->headers, "Authorization: Bearer sk-bench");
    c->headers = curl_slist_append(c->headers, "Expect:");
    curl_easy_setopt(c->h, CURLOPT_HTTPHEADER, c->headers);
    curl_easy_setopt(c->h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c->h, CURLOPT_WRITEDATA, c);
    curl_easy_setopt(c->h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c->h, CURLOPT_TIMEOUT_MS, 30000L);
    return c;
}

void floor_client_free(floor_client *c)
{
    if (!c)
        return;
    curl_easy_cleanup(c->h);
    curl_slist_free_all(c->headers);
    free(c->buf);
    free(c);
}

int floor_post(floor_client *c, const char *url, const char *body, size_t len, const char **resp,
               size_t *resp_len, long *http_status)
{
    c->len = 0;
    if (c->buf)
        c->buf[0] = '\0';
    curl_easy_setopt(c->h, CURLOPT_URL, url);
    curl_easy_setopt(c->h, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c->h, CURLOPT_POSTFIELDSIZE, (long)len);
    CURLcode rc = curl_easy_perform(c->h);
    *http_status = 0;
    curl_easy_getinfo(c->h, CURLINFO_RESPONSE_CODE, http_status);
    *resp = c->buf ? c->buf : "";
    *resp_len = c->len;
    return rc == CURLE_OK ? 0 : -1;
}

char *floor_build_request(const char *model, const char *system_text, const char *user_text)
{
    cJSON *req = cJSON_CreateObject();
    cJSON_AddStringToObject(req, "model", model);
    cJSON *msgs = cJSON_AddArrayToObject(req, "messages");
    cJSON *m = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "role", "system");
    cJSON_AddStringToObject(m, "content", system_text);
    cJSON_AddItemToArray(msgs, m);
    m = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "role", "user");
    cJSON_AddStringToObject(m, "content", user_text);
    cJSON_AddItemToArray(msgs, m);
    cJSON_AddNumberToObject(req, "max_tokens", 64);
    char *s = cJSON_PrintUnformatted(req);
    cJSON_Delete(req);
    return s;
}

int floor_parse_response(const char *json, size_t len, char *content, size_t cap)
{
    int rc = -1;
    cJSON *root = cJSON_ParseWithLength(json, len);
    if (!root)
        return -1;
    const cJSON *s = NULL;
    const cJSON *choices = cJSON_GetObjectItemCaseSensitive(root, "choices");
    const cJSON *c0 = cJSON_GetArrayItem(choices, 0);
    if (c0) {
        const cJSON *msg = cJSON_GetObjectItemCaseSensitive(c0, "message");
        s = cJSON_GetObjectItemCaseSensitive(msg, "content");
    } else {
        const cJSON *err = cJSON_GetObjectItemCaseSensitive(root, "error");
        s = cJSON_GetObjectItemCaseSensitive(err, "message");
    }
    if (cJSON_IsString(s) && cap > 0) {
        size_t n = strlen(s->valuestring);
        if (n >= cap)
            n = cap - 1;
        memcpy(content, s->valuestring, n);
        content[n] = '\0';
        rc = 0;
    }
    cJSON_Delete(root);
    return rc;
}

int floor_chat(floor_client *c, const char *url, const char *model, const char *system_text,
               const char *user_text, char *content, size_t cap)
{
    char *body = floor_build_request(model, system_text, user_text);
    if (!body)
        return -1;
    const char *resp;
    size_t resp_len;
    long status;
    int rc = floor_post(c, url, body, strlen(body), &resp, &resp_len, &status);
    free(body);
    if (rc != 0)
        return -1;
    if (floor_parse_response(resp, resp_len, content, cap) != 0 && cap > 0)
        content[0] = '\0';
    return (int)status;
}
