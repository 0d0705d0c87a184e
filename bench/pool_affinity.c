/*
 * pool_affinity.c - an experiment, not part of the report: does handing
 * libcurl easy handles (and so connections) from thread to thread through a
 * shared pool cost throughput against a thread-per-connection server such as
 * llmux-sim, compared with one handle per thread (the floor) and with a pool
 * that gives each thread back the handle it used last?
 *
 *   bench_pool_affinity URL THREADS [REPS] [WORK_US]
 *
 * No JSON work: a fixed body is POSTed, the answer discarded, so only the
 * transport's handle placement differs between the three modes; WORK_US
 * (default 5) microseconds of busy work between giving a handle back and
 * taking the next one stand for the caller's and the gateway's JSON work,
 * during which another thread may take the handle just returned. Prints
 * calls/s and CPU microseconds per call of this process for each mode, modes
 * alternating, REPS times.
 */
#define _GNU_SOURCE
#include <curl/curl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum { OWN, LIFO, AFFINE, NMODES };
static const char *const MODE_NAME[NMODES] = {"one handle per thread", "shared LIFO pool",
                                              "pool, own handle first"};

static const char BODY[] =
    "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"Summarise why an HTTP client "
    "should reuse its connections.\"}],\"max_tokens\":64}";

static const char *g_url;
static int g_mode;
static atomic_int g_stop;
static atomic_long g_total;
static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static CURL *g_pool[256];
static int g_npool;
static struct curl_slist *g_headers;
static double g_work_us = 5;

static size_t sink(char *p, size_t s, size_t n, void *u) { return s * n; }

static CURL *make(void)
{
    CURL *h = curl_easy_init();
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, g_headers);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, sink);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_URL, g_url);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, BODY);
    return h;
}

typedef struct worker {
    pthread_t th;
    CURL *own; /* OWN: this thread's handle; AFFINE: the one it used last */
} worker;

static CURL *take(worker *w)
{
    if (g_mode == OWN)
        return w->own ? w->own : (w->own = make());
    CURL *h = NULL;
    pthread_mutex_lock(&g_mu);
    if (g_mode == AFFINE && w->own) {
        for (int i = 0; i < g_npool; i++)
            if (g_pool[i] == w->own) {
                g_pool[i] = g_pool[--g_npool];
                h = w->own;
                break;
            }
    }
    if (!h && g_npool)
        h = g_pool[--g_npool];
    pthread_mutex_unlock(&g_mu);
    if (!h)
        h = make();
    w->own = h;
    return h;
}

static void give_back(CURL *h)
{
    if (g_mode == OWN)
        return;
    pthread_mutex_lock(&g_mu);
    g_pool[g_npool++] = h;
    pthread_mutex_unlock(&g_mu);
}

static double mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec * 1e-3;
}

static void *run(void *arg)
{
    worker *w = arg;
    long n = 0;
    while (!atomic_load(&g_stop)) {
        CURL *h = take(w);
        curl_easy_perform(h);
        give_back(h);
        for (double until = mono_us() + g_work_us; mono_us() < until;) {
        }
        n++;
    }
    atomic_fetch_add(&g_total, n);
    return NULL;
}

static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: bench_pool_affinity URL THREADS [REPS] [WORK_US]\n");
        return 2;
    }
    g_url = argv[1];
    int threads = atoi(argv[2]);
    int reps = argc > 3 ? atoi(argv[3]) : 3;
    if (argc > 4)
        g_work_us = atof(argv[4]);
    if (threads < 1 || threads > 64)
        return 2;
    curl_global_init(CURL_GLOBAL_ALL);
    g_headers = curl_slist_append(NULL, "Content-Type: application/json");
    worker ws[NMODES][64];
    memset(ws, 0, sizeof ws);
    for (int r = 0; r < reps; r++) {
        for (g_mode = 0; g_mode < NMODES; g_mode++) {
            atomic_store(&g_stop, 0);
            atomic_store(&g_total, 0);
            double c0 = cpu_now();
            for (int i = 0; i < threads; i++)
                pthread_create(&ws[g_mode][i].th, NULL, run, &ws[g_mode][i]);
            usleep(1000000);
            atomic_store(&g_stop, 1);
            for (int i = 0; i < threads; i++)
                pthread_join(ws[g_mode][i].th, NULL);
            long n = atomic_load(&g_total);
            printf("%-24s %2d threads: %6ld calls/s, %5.1f us CPU/call\n", MODE_NAME[g_mode],
                   threads, n, (cpu_now() - c0) * 1e6 / (double)(n ? n : 1));
            fflush(stdout);
            /* the pool's handles stay pooled for the next repetition */
        }
    }
    return 0;
}
