/* sim_load.c - a small load generator for llmux-sim (the figures in
 * docs/simulator.md). Each thread reuses one libcurl easy handle (one
 * keep-alive connection), POSTs a small chat request and parses the JSON answer.
 *
 *   llmux-sim-load URL [THREADS [SECONDS]]
 *   llmux-sim-load http://127.0.0.1:PORT/bench/v1/chat/completions 8 5
 */
#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *url;
static double seconds = 5;
static const char body[] =
    "{\"model\":\"gpt-4o-mini\",\"messages\":[{\"role\":\"system\",\"content\":\"You are terse.\"},"
    "{\"role\":\"user\",\"content\":\"Say hello to the benchmark in a few words.\"}]}";

typedef struct worker {
    pthread_t tid;
    long ok, failed;
    char *buf;
    size_t len, cap;
} worker;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static size_t on_data(char *p, size_t sz, size_t n, void *ud)
{
    worker *w = ud;
    size_t add = sz * n;
    if (w->len + add + 1 > w->cap) {
        size_t cap = (w->len + add + 1) * 2;
        char *nb = realloc(w->buf, cap);
        if (!nb)
            return 0;
        w->buf = nb;
        w->cap = cap;
    }
    memcpy(w->buf + w->len, p, add);
    w->len += add;
    w->buf[w->len] = '\0';
    return add;
}

static void *run(void *arg)
{
    worker *w = arg;
    CURL *h = curl_easy_init();
    struct curl_slist *hdrs = curl_slist_append(NULL, "Content-Type: application/json");
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)(sizeof body - 1));
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, w);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    double end = now_s() + seconds;
    while (now_s() < end) {
        w->len = 0;
        long status = 0;
        CURLcode rc = curl_easy_perform(h);
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
        cJSON *j = rc == CURLE_OK ? cJSON_ParseWithLength(w->buf, w->len) : NULL;
        if (status == 200 && cJSON_GetObjectItemCaseSensitive(j, "choices"))
            w->ok++;
        else
            w->failed++;
        cJSON_Delete(j);
    }
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(h);
    free(w->buf);
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: llmux-sim-load URL [THREADS [SECONDS]]\n");
        return 2;
    }
    url = argv[1];
    int threads = argc > 2 ? atoi(argv[2]) : 1;
    if (argc > 3)
        seconds = atof(argv[3]);
    if (threads < 1 || threads > 1024 || seconds <= 0) {
        fprintf(stderr, "llmux-sim-load: bad THREADS or SECONDS\n");
        return 2;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    worker *w = calloc((size_t)threads, sizeof *w);
    if (!w)
        return 1;
    double t0 = now_s();
    for (int i = 0; i < threads; i++)
        pthread_create(&w[i].tid, NULL, run, &w[i]);
    long ok = 0, failed = 0;
    for (int i = 0; i < threads; i++) {
        pthread_join(w[i].tid, NULL);
        ok += w[i].ok;
        failed += w[i].failed;
    }
    double dt = now_s() - t0;
    printf("threads=%d seconds=%.2f ok=%ld failed=%ld req/s=%.0f mean_us=%.1f\n", threads, dt, ok,
           failed, (double)ok / dt, ok ? dt * 1e6 * threads / (double)ok : 0.0);
    free(w);
    curl_global_cleanup();
    return failed ? 1 : 0;
}
