/*
 * bench_core.c - llmux against the floor (floor.c), in one process, in
 * alternating blocks, so that noise on a shared machine hits both alike.
 *
 *   bench_core seq  --base http://127.0.0.1:PORT [--reps 15] [--block 3000]
 *   bench_core tput --base ... [--threads 1,2,4,8,32] [--reps 5] [--secs 1.0]
 *   common: [--placement TEXT] [--floor-only] [--sim-pid PID]
 *   seq --only floor_one|llmux_one|floor_fb|llmux_fb|llmux_anth runs one variant alone
 *   (no warm-up, no rows), for perf or callgrind; tput --only floor|llmux likewise.
 *
 * seq:  one caller. Per repetition four blocks of --block calls each:
 *       floor_one  floor: build request JSON, POST to /a, parse the response
 *       llmux_one  the same request JSON built the same way, llmux_chat with the
 *                  one-target alias, the result JSON parsed the same way
 *       floor_fb   floor: POST to /bad (503 every time, error body parsed),
 *                  then the floor_one exchange with /a
 *       llmux_fb   llmux_chat with the two-target alias whose first target is
 *                  /bad: both exchanges on every call
 *       The order of floor and llmux flips every repetition. Then one block of
 *       llmux_gemini  llmux_chat with an alias whose target is a gemini
 *                  provider (the simulator's generateContent at /a): the
 *                  translation both ways on top of llmux_one
 *       and one of llmux_anth: llmux_one's call through the Anthropic adapter
 *                  (the same deployment, its Messages API).
 * tput: T threads for --secs seconds, calls counted; floor threads each own a
 *       floor client, llmux threads share one gateway. Alternating blocks.
 *
 * Output: JSON lines (see bench_common.h), progress on stderr.
 */
#define _GNU_SOURCE
#include "bench_common.h"
#include "floor.h"

#ifndef BENCH_NO_LLMUX
#include "llmux.h"
#endif

#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>

static char g_base[256];
static char g_url_a[320], g_url_bad[320];
static const char *g_placement = "";
static int g_floor_only;
static atomic_long g_errors;
static char g_expect[64];
static int g_sim_pid; /* for the simulator's CPU time, 0 = unknown */

/* CPU microseconds per call of one block: this process, and the simulator. */
typedef struct cpu_mark {
    double self, sim;
} cpu_mark;

static cpu_mark cpu_now(void)
{
    cpu_mark m = {bench_cpu_self(), bench_cpu_of(g_sim_pid)};
    return m;
}

static void cpu_per_call(cpu_mark a, long calls, double *self_us, double *sim_us)
{
    cpu_mark b = cpu_now();
    *self_us = (b.self - a.self) * 1e6 / (double)calls;
    *sim_us = (a.sim >= 0 && b.sim >= 0) ? (b.sim - a.sim) * 1e6 / (double)calls : -1;
}

#ifndef BENCH_NO_LLMUX
static llmux *g_gw;
static llmux *g_gw_log; /* the same config with the file log on */
static char g_log_path[300];
static llmux *g_gw_all; /* every policy feature on at once (llmux_one_all) */
static char g_all_log[300], g_all_journal[300];
#define BENCH_KEY "llmux-bench-gateway-key"
#endif

/* ------------------------------------------------------------ one call each */

static int check_content(const char *content)
{
    if (strncmp(content, g_expect, strlen(g_expect)) != 0) {
        if (atomic_fetch_add(&g_errors, 1) < 5)
            fprintf(stderr, "bench: unexpected answer: %.120s\n", content);
        return -1;
    }
    return 0;
}

static void floor_one(floor_client *c)
{
    char content[512];
    int st = floor_chat(c, g_url_a, "m", BENCH_SYSTEM, BENCH_USER, content, sizeof content);
    if (st != 200) {
        if (atomic_fetch_add(&g_errors, 1) < 5)
            fprintf(stderr, "bench: floor call failed: %d\n", st);
        return;
    }
    check_content(content);
}

static void floor_fb(floor_client *c)
{
    char content[512];
    int st = floor_chat(c, g_url_bad, "m", BENCH_SYSTEM, BENCH_USER, content, sizeof content);
    if (st != 503) {
        if (atomic_fetch_add(&g_errors, 1) < 5)
            fprintf(stderr, "bench: floor call to /bad gave %d, expected 503\n", st);
    }
    floor_one(c);
}

#ifndef BENCH_NO_LLMUX
static void llmux_call_opts(llmux *gw, const char *alias, const llmux_call_options *opts)
{
    char content[512];
    char *body = floor_build_request(alias, BENCH_SYSTEM, BENCH_USER);
    llmux_result *res = NULL;
    int st = llmux_chat(gw, body, opts, &res);
    free(body);
    if (st != LLMUX_OK) {
        if (atomic_fetch_add(&g_errors, 1) < 5)
            fprintf(stderr, "bench: llmux_chat(%s) failed: %s: %s\n", alias, llmux_strerror(st),
                    res ? llmux_result_error(res) : "(no result)");
        llmux_result_free(res);
        return;
    }
    const char *json = llmux_result_json(res);
    if (floor_parse_response(json, strlen(json), content, sizeof content) != 0)
        content[0] = '\0';
    check_content(content);
    llmux_result_free(res);
}

static void llmux_call_on(llmux *gw, const char *alias)
{
    llmux_call_opts(gw, alias, NULL);
}

static void llmux_call(const char *alias)
{
    llmux_call_on(g_gw, alias);
}

/* llmux_one_all: the one-target call with a configured gateway key (SHA-256
 * lookup, team, allowed aliases, rpm/tpm limits, budgets of the key, its team
 * and the gateway), a task and workflow matched by a rule, a price, the
 * capability check, the cooldown breaker, the call log to a file and the
 * ledger journal (fsync interval): every policy feature on at once. */
static void llmux_call_all(void)
{
    llmux_call_options o;
    llmux_call_options_init(&o, LLMUX_CALL_OPTIONS_VERSION);
    o.key = BENCH_KEY;
    o.task = "bench";
    o.workflow = "bench-flow";
    llmux_call_opts(g_gw_all, "one", &o);
}
#endif

/* ---------------------------------------------------------------- seq mode */

/* llmux_one_log: llmux_one on a gateway writing the call log to a file; its
 * baseline is llmux_one, so the ratio is what the log adds */
enum { V_FLOOR_ONE, V_LLMUX_ONE, V_FLOOR_FB, V_LLMUX_FB, V_LLMUX_LOG, V_LLMUX_GEM, V_LLMUX_ANTH,
       V_LLMUX_ALL, V_COUNT };
static const char *const V_NAME[V_COUNT] = {"floor_one", "llmux_one", "floor_fb", "llmux_fb",
                                            "llmux_one_log", "llmux_gemini", "llmux_anth",
                                            "llmux_one_all"};
/* llmux_gemini and llmux_anth: the translating adapters, against llmux_one;
 * llmux_one_all against the floor, like llmux_one */
static const int V_BASE[V_COUNT] = {-1, V_FLOOR_ONE, -1, V_FLOOR_FB, V_LLMUX_ONE, V_LLMUX_ONE,
                                    V_LLMUX_ONE, V_FLOOR_ONE};

static double g_cpu_self_us, g_cpu_sim_us; /* of the last block */

static double run_block(int v, floor_client *fc, long n)
{
    cpu_mark cm = cpu_now();
    double t0 = bench_now();
    for (long i = 0; i < n; i++) {
        switch (v) {
        case V_FLOOR_ONE: floor_one(fc); break;
        case V_FLOOR_FB: floor_fb(fc); break;
#ifndef BENCH_NO_LLMUX
        case V_LLMUX_ONE: llmux_call("one"); break;
        case V_LLMUX_FB: llmux_call("fb"); break;
        case V_LLMUX_LOG: llmux_call_on(g_gw_log, "one"); break;
        case V_LLMUX_GEM: llmux_call("gem"); break;
        case V_LLMUX_ANTH: llmux_call("anth"); break;
        case V_LLMUX_ALL: llmux_call_all(); break;
#endif
        default: break;
        }
    }
    double us = (bench_now() - t0) * 1e6 / (double)n;
    cpu_per_call(cm, n, &g_cpu_self_us, &g_cpu_sim_us);
    return us;
}

static int cmd_seq(int argc, char **argv)
{
    long reps = bench_arg_long(argc, argv, "--reps", 15);
    long block = bench_arg_long(argc, argv, "--block", 3000);
    double *samples[V_COUNT], *cpu_self[V_COUNT], *cpu_sim[V_COUNT];
    for (int v = 0; v < V_COUNT; v++) {
        samples[v] = calloc((size_t)reps, sizeof(double));
        cpu_self[v] = calloc((size_t)reps, sizeof(double));
        cpu_sim[v] = calloc((size_t)reps, sizeof(double));
    }
    floor_client *fc = floor_client_new();
    int nv = g_floor_only ? 1 : 2; /* floor and llmux, or floor alone */
    /* --only NAME: run just that variant (for profilers: perf, callgrind) */
    const char *only = bench_arg(argc, argv, "--only", NULL);
    if (only) {
        for (int v = 0; v < V_COUNT; v++) {
            if (strcmp(only, V_NAME[v]) != 0)
                continue;
            for (long r = 0; r < reps; r++)
                fprintf(stderr, "%s: %.1f us/call\n", only, run_block(v, fc, block));
            floor_client_free(fc);
            return 0;
        }
        fprintf(stderr, "bench_core: --only: no variant %s\n", only);
        return 2;
    }

    /* Warm up: connections open, caches and branch predictors primed. */
    long warm = block / 5 > 200 ? block / 5 : 200;
    for (int v = 0; v < V_COUNT; v++)
        if (!(g_floor_only && V_BASE[v] >= 0))
            run_block(v, fc, warm);

    /* Does the fallback really make both exchanges on every call? */
    long fb_calls = 0, bad_before = bench_sim_requests(g_base, "bad");

    for (long r = 0; r < reps; r++) {
        /* the logged gateway's block next to llmux_one's, before it or after */
        if (!g_floor_only && r % 2 == 0) {
            samples[V_LLMUX_LOG][r] = run_block(V_LLMUX_LOG, fc, block);
            cpu_self[V_LLMUX_LOG][r] = g_cpu_self_us;
            cpu_sim[V_LLMUX_LOG][r] = g_cpu_sim_us;
        }
        for (int pair = 0; pair < 2; pair++) {
            int base_v = pair == 0 ? V_FLOOR_ONE : V_FLOOR_FB;
            for (int k = 0; k < nv; k++) {
                /* flip the order every repetition */
                int which = (r % 2 == 0) ? k : nv - 1 - k;
                int v = base_v + which;
                samples[v][r] = run_block(v, fc, block);
                cpu_self[v][r] = g_cpu_self_us;
                cpu_sim[v][r] = g_cpu_sim_us;
                if (v == V_LLMUX_FB || v == V_FLOOR_FB)
                    fb_calls += block;
            }
            if (!g_floor_only && r % 2 == 1 && pair == 0) {
                samples[V_LLMUX_LOG][r] = run_block(V_LLMUX_LOG, fc, block);
                cpu_self[V_LLMUX_LOG][r] = g_cpu_self_us;
                cpu_sim[V_LLMUX_LOG][r] = g_cpu_sim_us;
            }
        }
        if (!g_floor_only) {
            /* next to the floor's block of this repetition, before or after the others */
            samples[V_LLMUX_ALL][r] = run_block(V_LLMUX_ALL, fc, block);
            cpu_self[V_LLMUX_ALL][r] = g_cpu_self_us;
            cpu_sim[V_LLMUX_ALL][r] = g_cpu_sim_us;
            samples[V_LLMUX_GEM][r] = run_block(V_LLMUX_GEM, fc, block);
            cpu_self[V_LLMUX_GEM][r] = g_cpu_self_us;
            cpu_sim[V_LLMUX_GEM][r] = g_cpu_sim_us;
            samples[V_LLMUX_ANTH][r] = run_block(V_LLMUX_ANTH, fc, block);
            cpu_self[V_LLMUX_ANTH][r] = g_cpu_self_us;
            cpu_sim[V_LLMUX_ANTH][r] = g_cpu_sim_us;
        }
        fprintf(stderr, "seq rep %ld/%ld: floor_one %.1f us", r + 1, reps, samples[0][r]);
        if (!g_floor_only)
            fprintf(stderr, ", llmux_one %.1f us", samples[V_LLMUX_ONE][r]);
        fprintf(stderr, ", floor_fb %.1f us", samples[V_FLOOR_FB][r]);
        if (!g_floor_only)
            fprintf(stderr, ", llmux_fb %.1f us, llmux_one_log %.1f us, llmux_one_all %.1f us",
                    samples[V_LLMUX_FB][r], samples[V_LLMUX_LOG][r], samples[V_LLMUX_ALL][r]);
        fprintf(stderr, "\n");
    }
    long bad_after = bench_sim_requests(g_base, "bad");

    bench_row row;
    for (int v = 0; v < V_COUNT; v++) {
        int is_llmux = V_BASE[v] >= 0;
        if (g_floor_only && is_llmux)
            continue;
        bench_row_begin(&row, "seq", V_NAME[v], "us/call");
        if (is_llmux)
            bench_row_str(&row, "baseline", V_NAME[V_BASE[v]]);
        bench_row_str(&row, "placement", g_placement);
        bench_row_num(&row, "block", (double)block);
        bench_row_samples(&row, samples[v], (int)reps);
        bench_row_array(&row, "cpu_client_us", cpu_self[v], (int)reps);
        bench_row_array(&row, "cpu_sim_us", cpu_sim[v], (int)reps);
        bench_row_end(&row);
    }
    if (bad_before >= 0 && bad_after >= 0 && fb_calls > 0) {
        bench_row_begin(&row, "check", "bad_exchanges_per_fallback_call", "ratio");
        double per = (double)(bad_after - bad_before) / (double)fb_calls;
        bench_row_samples(&row, &per, 1);
        bench_row_end(&row);
    }
    floor_client_free(fc);
    for (int v = 0; v < V_COUNT; v++) {
        free(samples[v]);
        free(cpu_self[v]);
        free(cpu_sim[v]);
    }
    return 0;
}

/* --------------------------------------------------------------- tput mode */

typedef struct tput_shared {
    atomic_int go;   /* 0 wait, 1 run */
    atomic_int stop; /* 1 when time is up */
    atomic_int ready;
    int use_llmux;
    const char *alias;
} tput_shared;

typedef struct tput_worker {
    pthread_t th;
    tput_shared *sh;
    floor_client *fc;
    long calls;
} tput_worker;

static void *tput_main(void *arg)
{
    tput_worker *w = arg;
    tput_shared *sh = w->sh;
    atomic_fetch_add(&sh->ready, 1);
    while (!atomic_load_explicit(&sh->go, memory_order_acquire))
        sched_yield();
    long n = 0;
    while (!atomic_load_explicit(&sh->stop, memory_order_relaxed)) {
#ifndef BENCH_NO_LLMUX
        if (sh->use_llmux)
            llmux_call(sh->alias);
        else
#endif
            floor_one(w->fc);
        n++;
    }
    w->calls = n;
    return NULL;
}

/* Calls per second of `threads` threads running for `secs`; the CPU
 * microseconds per call (this process, the simulator) in *self_us, *sim_us. */
static double tput_block(tput_worker *ws, int threads, int use_llmux, double secs,
                         double *self_us, double *sim_us)
{
    tput_shared sh = {0};
    sh.use_llmux = use_llmux;
    sh.alias = "one";
    for (int i = 0; i < threads; i++) {
        ws[i].sh = &sh;
        ws[i].calls = 0;
        pthread_create(&ws[i].th, NULL, tput_main, &ws[i]);
    }
    while (atomic_load(&sh.ready) < threads)
        usleep(100);
    cpu_mark cm = cpu_now();
    double t0 = bench_now();
    atomic_store_explicit(&sh.go, 1, memory_order_release);
    usleep((useconds_t)(secs * 1e6));
    atomic_store(&sh.stop, 1);
    long total = 0;
    for (int i = 0; i < threads; i++) {
        pthread_join(ws[i].th, NULL);
        total += ws[i].calls;
    }
    double el = bench_now() - t0;
    cpu_per_call(cm, total > 0 ? total : 1, self_us, sim_us);
    return (double)total / el;
}

static int cmd_tput(int argc, char **argv)
{
    const char *list = bench_arg(argc, argv, "--threads", "1,2,4,8,32");
    long reps = bench_arg_long(argc, argv, "--reps", 5);
    double secs = bench_arg_double(argc, argv, "--secs", 1.0);
    const char *only = bench_arg(argc, argv, "--only", NULL); /* floor|llmux, for profilers */
    char tmp[128];
    snprintf(tmp, sizeof tmp, "%s", list);
    for (char *save = NULL, *tok = strtok_r(tmp, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        int threads = atoi(tok);
        if (threads <= 0)
            continue;
        tput_worker *ws = calloc((size_t)threads, sizeof *ws);
        for (int i = 0; i < threads; i++)
            ws[i].fc = floor_client_new();
        if (only) {
            int use = strcmp(only, "llmux") == 0 && !g_floor_only;
            double a, b;
            for (long r = 0; r < reps; r++) {
                double v = tput_block(ws, threads, use, secs, &a, &b);
                fprintf(stderr, "%s %d threads: %.0f calls/s, %.1f us CPU/call (sim %.1f)\n",
                        use ? "llmux" : "floor", threads, v, a, b);
            }
            for (int i = 0; i < threads; i++)
                floor_client_free(ws[i].fc);
            free(ws);
            continue;
        }
        double *fl = calloc((size_t)reps * 6, sizeof(double));
        double *lx = fl + reps, *fl_self = fl + 2 * reps, *fl_sim = fl + 3 * reps;
        double *lx_self = fl + 4 * reps, *lx_sim = fl + 5 * reps;
        double ignore1, ignore2;
        /* warm-up: every thread's connection, and the gateway's pool */
        tput_block(ws, threads, 0, secs / 4, &ignore1, &ignore2);
        if (!g_floor_only)
            tput_block(ws, threads, 1, secs / 4, &ignore1, &ignore2);
        for (long r = 0; r < reps; r++) {
            int llmux_first = !g_floor_only && (r % 2 == 1);
            if (llmux_first)
                lx[r] = tput_block(ws, threads, 1, secs, &lx_self[r], &lx_sim[r]);
            fl[r] = tput_block(ws, threads, 0, secs, &fl_self[r], &fl_sim[r]);
            if (!g_floor_only && !llmux_first)
                lx[r] = tput_block(ws, threads, 1, secs, &lx_self[r], &lx_sim[r]);
            fprintf(stderr, "tput %d threads rep %ld/%ld: floor %.0f/s", threads, r + 1, reps,
                    fl[r]);
            if (!g_floor_only)
                fprintf(stderr, ", llmux %.0f/s", lx[r]);
            fprintf(stderr, "\n");
        }
        bench_row row;
        char name[64];
        snprintf(name, sizeof name, "floor_t%d", threads);
        bench_row_begin(&row, "tput", name, "calls/s");
        bench_row_num(&row, "threads", threads);
        bench_row_str(&row, "placement", g_placement);
        bench_row_num(&row, "secs", secs);
        bench_row_samples(&row, fl, (int)reps);
        bench_row_array(&row, "cpu_client_us", fl_self, (int)reps);
        bench_row_array(&row, "cpu_sim_us", fl_sim, (int)reps);
        bench_row_end(&row);
        if (!g_floor_only) {
            char bname[64];
            snprintf(bname, sizeof bname, "%s", name);
            snprintf(name, sizeof name, "llmux_t%d", threads);
            bench_row_begin(&row, "tput", name, "calls/s");
            bench_row_str(&row, "baseline", bname);
            bench_row_num(&row, "threads", threads);
            bench_row_str(&row, "placement", g_placement);
            bench_row_num(&row, "secs", secs);
            bench_row_samples(&row, lx, (int)reps);
            bench_row_array(&row, "cpu_client_us", lx_self, (int)reps);
            bench_row_array(&row, "cpu_sim_us", lx_sim, (int)reps);
            bench_row_end(&row);
        }
        for (int i = 0; i < threads; i++)
            floor_client_free(ws[i].fc);
        free(ws);
        free(fl);
    }
    return 0;
}

/* -------------------------------------------------------------------- main */

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: bench_core seq|tput --base http://127.0.0.1:PORT [options]\n");
        return 2;
    }
    snprintf(g_base, sizeof g_base, "%s", bench_arg(argc, argv, "--base", "http://127.0.0.1:8080"));
    snprintf(g_url_a, sizeof g_url_a, "%s/a/v1/chat/completions", g_base);
    snprintf(g_url_bad, sizeof g_url_bad, "%s/bad/v1/chat/completions", g_base);
    snprintf(g_expect, sizeof g_expect, "[a] %.20s", BENCH_USER);
    g_placement = bench_arg(argc, argv, "--placement", "");
    g_sim_pid = (int)bench_arg_long(argc, argv, "--sim-pid", 0);
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--floor-only") == 0)
            g_floor_only = 1;
#ifdef BENCH_NO_LLMUX
    g_floor_only = 1;
#endif
    curl_global_init(CURL_GLOBAL_ALL);

    if (bench_sim_put(g_base, "a", "{}") != 0 ||
        bench_sim_put(g_base, "bad",
                      "{\"faults\":[{\"type\":\"status\",\"status\":503,\"count\":-1}]}") != 0) {
        fprintf(stderr, "bench: cannot script the simulator at %s\n", g_base);
        return 1;
    }

#ifndef BENCH_NO_LLMUX
    if (!g_floor_only) {
        char cfg[4096], err[512];
        bench_config(cfg, sizeof cfg, g_base);
        if (llmux_open(&g_gw, cfg, err, sizeof err) != LLMUX_OK) {
            fprintf(stderr, "bench: llmux_open: %s\n", err);
            return 1;
        }
        /* the same config with the call log written to a file (rotated at
         * 64 MiB, two rotated files kept) */
        char logged[4600];
        snprintf(g_log_path, sizeof g_log_path, "/tmp/llmux-bench-log-%ld.jsonl", (long)getpid());
        snprintf(logged, sizeof logged,
                 "%.*s,\"log\":{\"file\":{\"path\":\"%s\",\"max_bytes\":67108864,"
                 "\"retain_bytes\":134217728}}}",
                 (int)strlen(cfg) - 1, cfg, g_log_path);
        if (llmux_open(&g_gw_log, logged, err, sizeof err) != LLMUX_OK) {
            fprintf(stderr, "bench: llmux_open (file log): %s\n", err);
            return 1;
        }
        /* every policy feature at once (budgets far above what the run spends,
         * limits far above its rate: checked on every call, never refusing) */
        char all[8192];
        snprintf(g_all_log, sizeof g_all_log, "/tmp/llmux-bench-all-%ld.jsonl", (long)getpid());
        snprintf(g_all_journal, sizeof g_all_journal, "/tmp/llmux-bench-all-%ld.journal",
                 (long)getpid());
        unlink(g_all_journal);
        snprintf(all, sizeof all,
                 "%.*s,\"log\":{\"file\":{\"path\":\"%s\",\"max_bytes\":67108864,"
                 "\"retain_bytes\":134217728}},"
                 "\"ledger\":{\"journal\":\"%s\",\"fsync\":\"interval\"},"
                 "\"prices\":{\"m\":{\"input_mtok\":0.15,\"output_mtok\":0.6,"
                 "\"cache_read_mtok\":0.075}},"
                 "\"routing\":{\"check_capabilities\":true,\"cooldown\":{}},"
                 "\"rules\":[{\"when\":{\"task\":\"classify\"},\"use\":\"fb\"},"
                 "{\"when\":{\"task\":\"bench\",\"team\":\"bench-team\"},\"use\":\"one\"}],"
                 "\"teams\":{\"bench-team\":{\"budgets\":[{\"usd\":1000000,\"period\":\"day\"}],"
                 "\"limits\":{\"rpm\":100000000}}},"
                 "\"budgets\":[{\"usd\":1000000,\"period\":\"total\"}],"
                 "\"require_key\":true}",
                 (int)strlen(cfg) - 1, cfg, g_all_log, g_all_journal);
        if (llmux_open(&g_gw_all, all, err, sizeof err) != LLMUX_OK) {
            fprintf(stderr, "bench: llmux_open (every policy feature): %s\n", err);
            return 1;
        }
        /* the key as the config would hold it (by SHA-256), added at run time */
        if (llmux_key_add(g_gw_all, "bench",
                          "{\"key\":\"" BENCH_KEY "\",\"team\":\"bench-team\","
                          "\"models\":[\"one\",\"fb\"],"
                          "\"budgets\":[{\"usd\":1000000,\"period\":\"month\"}],"
                          "\"limits\":{\"rpm\":100000000,\"tpm\":1000000000}}",
                          err, sizeof err) != LLMUX_OK) {
            fprintf(stderr, "bench: llmux_key_add: %s\n", err);
            return 1;
        }
    }
#endif

    int rc = 2;
    if (strcmp(argv[1], "seq") == 0)
        rc = cmd_seq(argc, argv);
    else if (strcmp(argv[1], "tput") == 0)
        rc = cmd_tput(argc, argv);
    else
        fprintf(stderr, "bench_core: unknown mode %s\n", argv[1]);

#ifndef BENCH_NO_LLMUX
    llmux_close(g_gw);
    llmux_close(g_gw_log);
    llmux_close(g_gw_all);
    if (g_all_journal[0]) {
        unlink(g_all_journal);
        char cmd[700];
        snprintf(cmd, sizeof cmd, "rm -f '%s' '%s'.*", g_all_log, g_all_log);
        if (system(cmd) != 0)
            fprintf(stderr, "bench: could not remove %s\n", g_all_log);
    }
    if (g_log_path[0]) { /* the log and its rotated files */
        char cmd[700];
        snprintf(cmd, sizeof cmd, "rm -f '%s' '%s'.*", g_log_path, g_log_path);
        if (system(cmd) != 0)
            fprintf(stderr, "bench: could not remove %s\n", g_log_path);
    }
#endif
    long errors = atomic_load(&g_errors);
    if (errors) {
        fprintf(stderr, "bench_core: %ld calls failed or answered wrongly\n", errors);
        bench_row row;
        bench_row_begin(&row, "check", "errors", "calls");
        double e = (double)errors;
        bench_row_samples(&row, &e, 1);
        bench_row_end(&row);
        rc = rc ? rc : 3;
    }
    curl_global_cleanup();
    return rc;
}
