/*
 * bench_journal.c - the ledger journal's cost (docs/ledger.md).
 *
 *   bench_journal store [--dir DIR] [--secs 1.0] [--threads 1,4]
 *       settles per second into the journal store alone (no HTTP), under each
 *       fsync policy, and into the in-memory store for reference
 *   bench_journal call --base http://127.0.0.1:PORT [--dir DIR] [--reps 5] [--block 2000]
 *       one caller, llmux_chat against llmux-sim: the gateway without a journal
 *       and with one (fsync never, interval, every_call), in alternating
 *       blocks; the ratio of each to the plain gateway's time per call
 *
 * Start the simulator first: build/bin/llmux-sim --port 0 --port-file /tmp/p
 * The journal files go to --dir (default /tmp), on the disk that is measured.
 */
#define _GNU_SOURCE
#include "bench_common.h"

#include <pthread.h>
#include <unistd.h>

#include "ledger/journal.h"
#include "ledger/store.h"
#include "llmux.h"

static const char *const POLICY[] = {"every_call", "interval", "never"};

/* ------------------------------------------------------------- store only */

typedef struct worker {
    const lx_store_ops *ops;
    void *st;
    double until;
    long n;
} worker;

static void *settle_loop(void *arg)
{
    worker *w = arg;
    lx_charge c = {"key-0123456789abcdef", "support", "draft", "gpt-4o-mini", "openai", 1,
                   {812, 96, 0, 0, -1, 0, 0}, 179400, 0};
    while (bench_now() < w->until) {
        for (int i = 0; i < 64; i++) {
            lx_reservation r;
            lx_err err = {0, 0, "", ""};
            memset(&r, 0, sizeof r);
            if (w->ops->reserve(w->st, &c, &r, &err) || w->ops->settle(w->st, &r, &c, &err)) {
                fprintf(stderr, "bench_journal: %s\n", err.msg);
                return NULL;
            }
            w->n++;
        }
    }
    return NULL;
}

static double settles_per_sec(const lx_store_ops *ops, void *st, int threads, double secs)
{
    worker w[64];
    pthread_t t[64];
    double t0 = bench_now();
    for (int i = 0; i < threads; i++) {
        w[i] = (worker){ops, st, t0 + secs, 0};
        pthread_create(&t[i], NULL, settle_loop, &w[i]);
    }
    long n = 0;
    for (int i = 0; i < threads; i++) {
        pthread_join(t[i], NULL);
        n += w[i].n;
    }
    return (double)n / (bench_now() - t0);
}

static int cmd_store(int argc, char **argv)
{
    const char *dir = bench_arg(argc, argv, "--dir", "/tmp");
    double secs = bench_arg_double(argc, argv, "--secs", 1.0);
    const char *list = bench_arg(argc, argv, "--threads", "1,4");
    printf("| store | threads | settles/s | µs/settle | fsyncs |\n|---|---|---|---|---|\n");
    for (const char *p = list; *p;) {
        int threads = atoi(p);
        if (threads < 1 || threads > 64)
            threads = 1;
        void *mem = NULL;
        llmux__memory_store_new(&mem, 0);
        double rate = settles_per_sec(&llmux__memory_store_ops, mem, threads, secs);
        llmux__memory_store_ops.free(mem);
        printf("| memory | %d | %.0f | %.2f | - |\n", threads, rate, 1e6 / rate);
        for (int pol = 0; pol < 3; pol++) {
            char path[512];
            snprintf(path, sizeof path, "%s/bench-journal-%d.journal", dir, (int)getpid());
            unlink(path);
            lx_journal_options o = {path, pol, 1000, 1LL << 40, 0};
            lx_journal *j = NULL;
            lx_err err = {0, 0, "", ""};
            if (llmux__journal_open(&j, &o, &err)) {
                fprintf(stderr, "bench_journal: %s\n", err.msg);
                return 1;
            }
            rate = settles_per_sec(&llmux__journal_store_ops, j, threads, secs);
            lx_journal_stats s;
            llmux__journal_stats(j, &s);
            llmux__journal_store_ops.free(j);
            unlink(path);
            printf("| journal, fsync %s | %d | %.0f | %.2f | %lld |\n", POLICY[pol], threads, rate,
                   1e6 / rate, (long long)s.fsyncs);
        }
        p = strchr(p, ',');
        p = p ? p + 1 : "";
    }
    return 0;
}

/* ------------------------------------------------------------- one caller */

static llmux *open_gw(const char *base, const char *dir, int pol)
{
    char cfg[8192], err[512];
    bench_config(cfg, sizeof cfg, base);
    size_t n = strlen(cfg);
    cfg[n - 1] = '\0'; /* reopen the top-level object */
    char extra[1024] = ",\"prices\":{\"m\":{\"input_mtok\":0.15,\"output_mtok\":0.6}}";
    if (pol >= 0)
        snprintf(extra + strlen(extra), sizeof extra - strlen(extra),
                 ",\"ledger\":{\"journal\":\"%s/bench-call-%d-%s.journal\",\"fsync\":\"%s\"}", dir,
                 (int)getpid(), POLICY[pol], POLICY[pol]);
    snprintf(cfg + n - 1, sizeof cfg - n + 1, "%s}", extra);
    llmux *gw = NULL;
    if (llmux_open(&gw, cfg, err, sizeof err) != LLMUX_OK) {
        fprintf(stderr, "bench_journal: llmux_open: %s\n", err);
        exit(1);
    }
    return gw;
}

static double block_us(llmux *gw, long calls)
{
    static const char req[] = "{\"model\":\"one\",\"messages\":[{\"role\":\"user\",\"content\":"
                              "\"Say something short.\"}]}";
    double t0 = bench_now();
    for (long i = 0; i < calls; i++) {
        llmux_result *r = NULL;
        if (llmux_chat(gw, req, NULL, &r) != LLMUX_OK) {
            fprintf(stderr, "bench_journal: call failed: %s\n", llmux_result_error(r));
            exit(1);
        }
        llmux_result_free(r);
    }
    return (bench_now() - t0) * 1e6 / (double)calls;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int cmd_call(int argc, char **argv)
{
    const char *base = bench_arg(argc, argv, "--base", "http://127.0.0.1:8080");
    const char *dir = bench_arg(argc, argv, "--dir", "/tmp");
    long reps = bench_arg_long(argc, argv, "--reps", 5);
    long block = bench_arg_long(argc, argv, "--block", 2000);
    if (reps > 64)
        reps = 64;
    curl_global_init(CURL_GLOBAL_ALL);
    if (bench_sim_put(base, "a", "{}") != 0) {
        fprintf(stderr, "bench_journal: cannot script the simulator at %s\n", base);
        return 1;
    }
    /* variants: -1 no journal, then never, interval, every_call */
    const int pols[] = {-1, LX_FSYNC_NEVER, LX_FSYNC_INTERVAL, LX_FSYNC_EVERY_CALL};
    const char *names[] = {"no journal", "journal, fsync never", "journal, fsync interval (1 s)",
                           "journal, fsync every_call"};
    llmux *gw[4];
    for (int v = 0; v < 4; v++) {
        gw[v] = open_gw(base, dir, pols[v]);
        block_us(gw[v], block / 4); /* warm up */
    }
    double us[4][64];
    for (long r = 0; r < reps; r++)
        for (int k = 0; k < 4; k++) {
            int v = r % 2 ? 3 - k : k; /* the order flips every repetition */
            us[v][r] = block_us(gw[v], block);
        }
    printf("| one caller | µs/call (median of %ld blocks of %ld) | ÷ no journal |\n|---|---|---|\n",
           reps, block);
    double med[4];
    for (int v = 0; v < 4; v++) {
        qsort(us[v], (size_t)reps, sizeof us[v][0], cmp_double);
        med[v] = us[v][reps / 2];
        printf("| %s | %.1f | %.3f |\n", names[v], med[v], med[v] / med[0]);
        llmux_close(gw[v]);
        if (pols[v] >= 0) {
            char path[512];
            snprintf(path, sizeof path, "%s/bench-call-%d-%s.journal", dir, (int)getpid(),
                     POLICY[pols[v]]);
            unlink(path);
        }
    }
    curl_global_cleanup();
    return 0;
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "store") == 0)
        return cmd_store(argc, argv);
    if (argc > 1 && strcmp(argv[1], "call") == 0)
        return cmd_call(argc, argv);
    fprintf(stderr, "usage: bench_journal store|call [options] (see bench/bench_journal.c)\n");
    return 2;
}
