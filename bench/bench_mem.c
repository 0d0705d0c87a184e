/*
 * bench_mem.c - memory: does RSS stay flat over a million calls, and how many
 * bytes does one call in flight hold at its peak?
 *
 *   bench_mem rss      --base URL [--checkpoints 10000,100000,1000000]
 *   bench_mem inflight --base URL [--n 32] [--latency-ms 300]
 *
 * Heap bytes are counted exactly: this program replaces malloc and friends
 * with thin wrappers over glibc's own (__libc_malloc...) that add up
 * malloc_usable_size of every live block and keep a high-water mark. Every
 * library in the process (llmux, libcurl, cJSON, OpenSSL) allocates through
 * them. RSS comes from /proc/self/status (VmRSS).
 *
 * rss:      sequential calls through one gateway, 9 of 10 to the one-target
 *           alias and 1 of 10 to the fallback alias (both exchanges), with
 *           VmRSS and live heap bytes recorded at each checkpoint.
 * inflight: the deployment "slow" holds every answer for --latency-ms. The
 *           peak live heap of one call (the high-water mark minus what was
 *           live before it), and of N concurrent calls divided by N, for
 *           llmux and for the floor; "cold" is the first round (connections
 *           are opened inside the calls), "warm" the second (reused).
 */
#define _GNU_SOURCE
#include "bench_common.h"
#include "floor.h"
#include "llmux.h"

#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>

/* ------------------------------------------------------- heap accounting */

extern void *__libc_malloc(size_t);
extern void __libc_free(void *);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);

static atomic_long g_live, g_hwm;

static inline void account(long delta)
{
    long now = atomic_fetch_add_explicit(&g_live, delta, memory_order_relaxed) + delta;
    if (delta > 0) {
        long h = atomic_load_explicit(&g_hwm, memory_order_relaxed);
        while (now > h && !atomic_compare_exchange_weak_explicit(&g_hwm, &h, now,
                                                                 memory_order_relaxed,
                                                                 memory_order_relaxed)) {
        }
    }
}

void *malloc(size_t n)
{
    void *p = __libc_malloc(n);
    if (p)
        account((long)malloc_usable_size(p));
    return p;
}

void free(void *p)
{
    if (!p)
        return;
    account(-(long)malloc_usable_size(p));
    __libc_free(p);
}

void *calloc(size_t a, size_t b)
{
    void *p = __libc_calloc(a, b);
    if (p)
        account((long)malloc_usable_size(p));
    return p;
}

void *realloc(void *p, size_t n)
{
    long old = p ? (long)malloc_usable_size(p) : 0;
    void *q = __libc_realloc(p, n);
    if (q)
        account((long)malloc_usable_size(q) - old);
    else if (p && n == 0)
        account(-old);
    return q;
}

void *memalign(size_t al, size_t n)
{
    void *p = __libc_memalign(al, n);
    if (p)
        account((long)malloc_usable_size(p));
    return p;
}

void *aligned_alloc(size_t al, size_t n) { return memalign(al, n); }

int posix_memalign(void **out, size_t al, size_t n)
{
    void *p = memalign(al, n);
    if (!p)
        return 12; /* ENOMEM */
    *out = p;
    return 0;
}

void *valloc(size_t n) { return memalign((size_t)sysconf(_SC_PAGESIZE), n); }

void *pvalloc(size_t n)
{
    size_t pg = (size_t)sysconf(_SC_PAGESIZE);
    return memalign(pg, (n + pg - 1) / pg * pg);
}

/* --------------------------------------------------------------- calls */

static char g_base[256], g_url_slow[320];
static llmux *g_gw;
static atomic_long g_errors;
static const char *g_placement = "";

static void llmux_call(const char *alias)
{
    char content[512];
    char *body = floor_build_request(alias, BENCH_SYSTEM, BENCH_USER);
    llmux_result *res = NULL;
    int st = llmux_chat(g_gw, body, NULL, &res);
    free(body);
    if (st != LLMUX_OK) {
        if (atomic_fetch_add(&g_errors, 1) < 5)
            fprintf(stderr, "bench_mem: llmux_chat(%s): %s: %s\n", alias, llmux_strerror(st),
                    res ? llmux_result_error(res) : "");
    } else {
        const char *json = llmux_result_json(res);
        floor_parse_response(json, strlen(json), content, sizeof content);
    }
    llmux_result_free(res);
}

/* ----------------------------------------------------------------- rss */

static int cmd_rss(int argc, char **argv)
{
    const char *list = bench_arg(argc, argv, "--checkpoints", "10000,1000000");
    long cps[16];
    int ncp = 0;
    char tmp[256];
    snprintf(tmp, sizeof tmp, "%s", list);
    for (char *save = NULL, *t = strtok_r(tmp, ",", &save); t && ncp < 16;
         t = strtok_r(NULL, ",", &save))
        cps[ncp++] = strtol(t, NULL, 10);

    double rss[16], heap[16], at[16];
    long done = 0;
    double t0 = bench_now();
    for (int k = 0; k < ncp; k++) {
        for (; done < cps[k]; done++)
            llmux_call(done % 10 == 9 ? "fb" : "one");
        rss[k] = (double)bench_rss_kb();
        heap[k] = (double)atomic_load(&g_live);
        at[k] = (double)cps[k];
        fprintf(stderr, "rss after %ld calls: %.0f KiB RSS, %.0f heap bytes live (%.1f s)\n",
                cps[k], rss[k], heap[k], bench_now() - t0);
    }
    bench_row row;
    bench_row_begin(&row, "mem", "llmux_rss_kb", "KiB");
    bench_row_str(&row, "placement", g_placement);
    bench_row_str(&row, "mix", "90% one-target, 10% fallback");
    bench_row_samples(&row, rss, ncp);
    bench_row_end(&row);
    bench_row_begin(&row, "mem", "llmux_heap_bytes", "bytes");
    bench_row_samples(&row, heap, ncp);
    bench_row_end(&row);
    bench_row_begin(&row, "mem", "checkpoints", "calls");
    bench_row_samples(&row, at, ncp);
    bench_row_end(&row);
    return 0;
}

/* ------------------------------------------------------------ inflight */

typedef struct infl {
    pthread_t th;
    pthread_barrier_t *bar;
    int use_llmux;
    floor_client *fc; /* NULL: create inside the call (cold floor) */
    int created;
} infl;

static void *infl_main(void *arg)
{
    infl *w = arg;
    pthread_barrier_wait(w->bar);
    if (w->use_llmux) {
        llmux_call("slow");
    } else {
        if (!w->fc) {
            w->fc = floor_client_new();
            w->created = 1;
        }
        char content[512];
        int st = floor_chat(w->fc, g_url_slow, "m", BENCH_SYSTEM, BENCH_USER, content,
                            sizeof content);
        if (st != 200)
            atomic_fetch_add(&g_errors, 1);
    }
    pthread_barrier_wait(w->bar);
    return NULL;
}

/* Peak live heap above the starting level, per call, for n concurrent calls.
 * Also the RSS delta sampled while the calls wait for their answers. */
static double infl_round(int n, int use_llmux, floor_client **fcs, long latency_ms,
                         double *rss_per_call, double *elapsed)
{
    pthread_barrier_t bar;
    pthread_barrier_init(&bar, NULL, (unsigned)n + 1);
    infl *ws = calloc((size_t)n, sizeof *ws);
    for (int i = 0; i < n; i++) {
        ws[i].bar = &bar;
        ws[i].use_llmux = use_llmux;
        ws[i].fc = fcs ? fcs[i] : NULL;
        pthread_create(&ws[i].th, NULL, infl_main, &ws[i]);
    }
    usleep(20000); /* let every thread reach the barrier */
    long rss0 = bench_rss_kb();
    long base = atomic_load(&g_live);
    atomic_store(&g_hwm, base);
    double t0 = bench_now();
    pthread_barrier_wait(&bar); /* go */
    usleep((useconds_t)(latency_ms * 1000 / 2));
    long rss1 = bench_rss_kb();
    pthread_barrier_wait(&bar); /* all done (their results freed) */
    *elapsed = bench_now() - t0;
    long peak = atomic_load(&g_hwm) - base;
    for (int i = 0; i < n; i++) {
        pthread_join(ws[i].th, NULL);
        if (fcs)
            fcs[i] = ws[i].fc;
        else if (ws[i].created)
            floor_client_free(ws[i].fc);
    }
    free(ws);
    pthread_barrier_destroy(&bar);
    *rss_per_call = (double)(rss1 - rss0) * 1024.0 / n;
    return (double)peak / n;
}

static void emit(const char *name, const char *unit, double v, const char *note, int n)
{
    bench_row row;
    bench_row_begin(&row, "inflight", name, unit);
    bench_row_str(&row, "note", note);
    bench_row_num(&row, "n", n);
    bench_row_str(&row, "placement", g_placement);
    bench_row_samples(&row, &v, 1);
    bench_row_end(&row);
}

static int cmd_inflight(int argc, char **argv)
{
    int n = (int)bench_arg_long(argc, argv, "--n", 32);
    long lat = bench_arg_long(argc, argv, "--latency-ms", 300);
    char settings[128];
    snprintf(settings, sizeof settings, "{\"latency_ms\":%ld}", lat);
    if (bench_sim_put(g_base, "slow", settings) != 0)
        return 1;

    double rss_pc, el;
    /* one call at a time: the exact peak of one call, connection already open */
    llmux_call("slow");
    double one = infl_round(1, 1, NULL, lat, &rss_pc, &el);
    emit("llmux_peak_one_call", "bytes", one, "one call, connection reused", 1);

    floor_client *fcs[1] = {floor_client_new()};
    {
        char c[256];
        floor_chat(fcs[0], g_url_slow, "m", BENCH_SYSTEM, BENCH_USER, c, sizeof c);
    }
    double fone = infl_round(1, 0, fcs, lat, &rss_pc, &el);
    emit("floor_peak_one_call", "bytes", fone, "one call, connection reused", 1);
    floor_client_free(fcs[0]);

    double cold = infl_round(n, 1, NULL, lat, &rss_pc, &el);
    fprintf(stderr, "inflight llmux cold: %.0f B/call heap, %.0f B/call RSS, %.2f s\n", cold,
            rss_pc, el);
    emit("llmux_peak_per_call_cold", "bytes", cold,
         "N concurrent calls, first round: the pool opens its connections", n);
    emit("llmux_rss_per_call_cold", "bytes", rss_pc, "RSS delta mid-wait / N, first round", n);
    if (el > 3.0 * (double)lat / 1000.0)
        fprintf(stderr, "inflight: the %d calls took %.2f s: the simulator did not hold them all "
                        "at once, so the per-call figure is low\n", n, el);
    double warm = infl_round(n, 1, NULL, lat, &rss_pc, &el);
    emit("llmux_peak_per_call_warm", "bytes", warm, "N concurrent calls, connections reused", n);
    emit("llmux_rss_per_call_warm", "bytes", rss_pc, "RSS delta mid-wait / N, second round", n);

    floor_client **many = calloc((size_t)n, sizeof *many);
    double fcold = infl_round(n, 0, many, lat, &rss_pc, &el);
    emit("floor_peak_per_call_cold", "bytes", fcold,
         "N concurrent calls, each creates its easy handle and connection", n);
    double fwarm = infl_round(n, 0, many, lat, &rss_pc, &el);
    emit("floor_peak_per_call_warm", "bytes", fwarm, "N concurrent calls, handles reused", n);
    for (int i = 0; i < n; i++)
        floor_client_free(many[i]);
    free(many);
    fprintf(stderr, "inflight: llmux one %.0f B, cold %.0f B/call, warm %.0f B/call; floor one "
                    "%.0f B, cold %.0f, warm %.0f\n",
            one, cold, warm, fone, fcold, fwarm);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: bench_mem rss|inflight --base URL [options]\n");
        return 2;
    }
    snprintf(g_base, sizeof g_base, "%s", bench_arg(argc, argv, "--base", "http://127.0.0.1:8080"));
    snprintf(g_url_slow, sizeof g_url_slow, "%s/slow/v1/chat/completions", g_base);
    g_placement = bench_arg(argc, argv, "--placement", "");
    curl_global_init(CURL_GLOBAL_ALL);
    if (bench_sim_put(g_base, "a", "{}") != 0 ||
        bench_sim_put(g_base, "bad",
                      "{\"faults\":[{\"type\":\"status\",\"status\":503,\"count\":-1}]}") != 0)
        return 1;
    char cfg[4096], err[512];
    bench_config(cfg, sizeof cfg, g_base);
    if (llmux_open(&g_gw, cfg, err, sizeof err) != LLMUX_OK) {
        fprintf(stderr, "bench_mem: llmux_open: %s\n", err);
        return 1;
    }
    /* warm-up, so the first checkpoint is not the ramp */
    for (int i = 0; i < 100; i++)
        llmux_call(i % 10 == 9 ? "fb" : "one");

    int rc = 2;
    if (strcmp(argv[1], "rss") == 0)
        rc = cmd_rss(argc, argv);
    else if (strcmp(argv[1], "inflight") == 0)
        rc = cmd_inflight(argc, argv);
    llmux_close(g_gw);
    curl_global_cleanup();
    long e = atomic_load(&g_errors);
    if (e) {
        fprintf(stderr, "bench_mem: %ld calls failed\n", e);
        return rc ? rc : 3;
    }
    return rc;
}
