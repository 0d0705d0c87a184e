/*
 * bench_common.h - small helpers shared by the C benchmark programs: clocks,
 * the simulator's control API, /proc readings and the JSON-lines output that
 * bench/report.py turns into docs/benchmarks.md.
 *
 * Every program prints one JSON object per line on stdout (a "row") and its
 * progress on stderr. A row:
 *   {"suite":"seq","name":"llmux_one","unit":"us/call","baseline":"floor_one",
 *    "placement":"...","samples":[...], ...extra fields...}
 * samples are one number per repetition, in the order they ran, so a row and
 * its baseline can be paired repetition by repetition.
 */
#ifndef LLMUX_BENCH_COMMON_H
#define LLMUX_BENCH_COMMON_H

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static inline double bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static inline long bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long)ts.tv_sec * 1000000000L + ts.tv_nsec;
}

/* CPU time in seconds used so far by this process (all threads). */
static inline double bench_cpu_self(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* CPU time in seconds used so far by another process (the simulator), or -1
 * when pid is 0 or its clock cannot be read. */
static inline double bench_cpu_of(int pid)
{
    clockid_t clk;
    struct timespec ts;
    if (pid <= 0 || clock_getcpuclockid((pid_t)pid, &clk) != 0 || clock_gettime(clk, &ts) != 0)
        return -1;
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* VmRSS of this process in KiB, or -1. */
static inline long bench_rss_kb(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return -1;
    char line[256];
    long kb = -1;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "VmRSS:", 6) == 0) {
            kb = strtol(line + 6, NULL, 10);
            break;
        }
    }
    fclose(f);
    return kb;
}

/* ---------------------------------------------------------------- output */

typedef struct bench_row {
    char buf[1 << 16];
    size_t len;
    int nsamples;
} bench_row;

static inline void bench_row_add(bench_row *r, const char *fmt, const char *s)
{
    int n = snprintf(r->buf + r->len, sizeof r->buf - r->len, fmt, s);
    if (n > 0 && (size_t)n < sizeof r->buf - r->len)
        r->len += (size_t)n;
}

/* Start a row; add fields with bench_row_str/num, then samples, then end. */
static inline void bench_row_begin(bench_row *r, const char *suite, const char *name,
                                   const char *unit)
{
    r->len = 0;
    r->nsamples = 0;
    bench_row_add(r, "{\"suite\":\"%s\"", suite);
    bench_row_add(r, ",\"name\":\"%s\"", name);
    bench_row_add(r, ",\"unit\":\"%s\"", unit);
}

/* Values are written as given: keep them free of quotes and backslashes. */
static inline void bench_row_str(bench_row *r, const char *key, const char *val)
{
    bench_row_add(r, ",\"%s\":", key);
    bench_row_add(r, "\"%s\"", val);
}

static inline void bench_row_num(bench_row *r, const char *key, double val)
{
    char num[64];
    snprintf(num, sizeof num, "%.6g", val);
    bench_row_add(r, ",\"%s\":", key);
    bench_row_add(r, "%s", num);
}

/* A named array of numbers, e.g. per-repetition CPU figures beside samples. */
static inline void bench_row_array(bench_row *r, const char *key, const double *v, int n)
{
    bench_row_add(r, ",\"%s\":[", key);
    for (int i = 0; i < n; i++) {
        char num[64];
        snprintf(num, sizeof num, "%s%.6g", i ? "," : "", v[i]);
        bench_row_add(r, "%s", num);
    }
    bench_row_add(r, "%s", "]");
}

static inline void bench_row_samples(bench_row *r, const double *v, int n)
{
    bench_row_add(r, "%s", ",\"samples\":[");
    for (int i = 0; i < n; i++) {
        char num[64];
        snprintf(num, sizeof num, "%s%.6g", i ? "," : "", v[i]);
        bench_row_add(r, "%s", num);
    }
    bench_row_add(r, "%s", "]");
}

static inline void bench_row_end(bench_row *r)
{
    bench_row_add(r, "%s", "}\n");
    fwrite(r->buf, 1, r->len, stdout);
    fflush(stdout);
}

/* ---------------------------------------------------- simulator control */

static size_t bench_sink(char *p, size_t s, size_t n, void *ud)
{
    char *buf = ud;
    size_t have = strlen(buf), add = s * n;
    if (have + add >= 8192)
        add = have < 8191 ? 8191 - have : 0;
    memcpy(buf + have, p, add);
    buf[have + add] = '\0';
    return s * n;
}

/* PUT /_sim/deployments/<name> with a JSON settings object. 0 on 2xx. */
static inline int bench_sim_put(const char *base, const char *name, const char *json)
{
    char url[512], out[8192] = "";
    snprintf(url, sizeof url, "%s/_sim/deployments/%s", base, name);
    CURL *h = curl_easy_init();
    struct curl_slist *hd = curl_slist_append(NULL, "Content-Type: application/json");
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, "PUT");
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, json);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hd);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, bench_sink);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, out);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 5000L);
    CURLcode rc = curl_easy_perform(h);
    long code = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
    curl_easy_cleanup(h);
    curl_slist_free_all(hd);
    if (rc != CURLE_OK || code / 100 != 2) {
        fprintf(stderr, "bench: PUT %s failed (curl %d, HTTP %ld): %s\n", url, (int)rc, code, out);
        return -1;
    }
    return 0;
}

/* The deployment's "requests" counter from GET /_sim/deployments/<name>, or -1. */
static inline long bench_sim_requests(const char *base, const char *name)
{
    char url[512], out[8192] = "";
    snprintf(url, sizeof url, "%s/_sim/deployments/%s", base, name);
    CURL *h = curl_easy_init();
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, bench_sink);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, out);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 5000L);
    CURLcode rc = curl_easy_perform(h);
    curl_easy_cleanup(h);
    if (rc != CURLE_OK)
        return -1;
    const char *p = strstr(out, "\"requests\":");
    return p ? strtol(p + 11, NULL, 10) : -1;
}

/* --------------------------------------------------------------- options */

static inline const char *bench_arg(int argc, char **argv, const char *name, const char *def)
{
    for (int i = 1; i + 1 < argc; i++)
        if (strcmp(argv[i], name) == 0)
            return argv[i + 1];
    return def;
}

static inline long bench_arg_long(int argc, char **argv, const char *name, long def)
{
    const char *v = bench_arg(argc, argv, name, NULL);
    return v ? strtol(v, NULL, 10) : def;
}

static inline double bench_arg_double(int argc, char **argv, const char *name, double def)
{
    const char *v = bench_arg(argc, argv, name, NULL);
    return v ? strtod(v, NULL) : def;
}

/* The request every benchmark sends: a system and a user message. */
#define BENCH_SYSTEM "You are a terse assistant. Answer in one short sentence."
#define BENCH_USER                                                                             \
    "Summarise why an HTTP client should reuse its connections when it talks to a model "     \
    "provider many times a second."

/* The llmux config used by every benchmark, for a simulator at `base`. */
static inline void bench_config(char *out, size_t cap, const char *base)
{
    snprintf(out, cap,
             "{\"providers\":{"
             "\"a\":{\"type\":\"openai\",\"base_url\":\"%s/a/v1\"},"
             "\"bad\":{\"type\":\"openai\",\"base_url\":\"%s/bad/v1\"},"
             "\"slow\":{\"type\":\"openai\",\"base_url\":\"%s/slow/v1\"},"
             "\"gem\":{\"type\":\"gemini\",\"base_url\":\"%s/a/v1beta\"},"
             "\"anth\":{\"type\":\"anthropic\",\"base_url\":\"%s/a\"}},"
             "\"models\":{"
             "\"one\":{\"targets\":[{\"provider\":\"a\",\"model\":\"m\"}]},"
             "\"fb\":{\"targets\":[{\"provider\":\"bad\",\"model\":\"m\"},"
             "{\"provider\":\"a\",\"model\":\"m\"}]},"
             "\"slow\":{\"targets\":[{\"provider\":\"slow\",\"model\":\"m\"}]},"
             "\"gem\":{\"targets\":[{\"provider\":\"gem\",\"model\":\"m\"}]},"
             "\"anth\":{\"targets\":[{\"provider\":\"anth\",\"model\":\"m\"}]}},"
             "\"defaults\":{\"timeout_ms\":30000}}",
             base, base, base, base, base);
}

#endif
