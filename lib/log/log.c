#include "log/log.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log/file.h"
#include "log/otlp.h"

typedef struct entry {
    lx_log_call *call; /* an owned copy */
} entry;

#define BATCH 64
#define LINGER_S 0.02 /* how long an idle writer waits for more before it sleeps */

struct lx_log {
    pthread_mutex_t mu;
    pthread_cond_t wake, done_cv;
    entry *ring;
    size_t cap, head, count;
    int stop, running;
    pthread_t thread;
    uint64_t submitted, done, dropped_queue, records, dropped_file;
    uint64_t exported, dropped_otlp; /* copied from the exporter by the writer */
    uint64_t flush_asked, flush_done;
    int sleeping; /* the writer waits for a signal: a submit must wake it */
    int lingered; /* the writer already waited LINGER_S with nothing to do */
    double otlp_interval_s, otlp_due; /* the writer's: when the pending export is due */
    /* sinks: the file and the exporter belong to the writer thread */
    int has_file, has_otlp;
    lx_log_file file;
    lx_otlp otlp;
    pthread_mutex_t cb_mu; /* held while the callback runs, and to change it */
    lx_log_cb cb;
    void *cb_user;
    lx_buf lines; /* the writer's: the records of the entry being delivered */
    int active; /* atomic: some sink is there */
};

static double mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void deliver(lx_log *l, entry *e)
{
    uint64_t recs = 0, file_drops = 0;
    llmux__buf_clear(&l->lines);
    if (llmux__log_record_json(e->call, &l->lines)) {
        pthread_mutex_lock(&l->mu);
        l->dropped_file += 1 + (e->call->with_attempts ? e->call->n_attempts : 0);
        pthread_mutex_unlock(&l->mu);
        return;
    }
    char *lines = l->lines.data;
    size_t len = l->lines.len;
    int64_t t_ns = e->call->time_unix_ns;
    /* the file and the exporter first: the callback lock is never held
     * across an export */
    for (char *p = lines, *end = lines + len; p < end;) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
        recs++;
        if (l->has_file && llmux__log_file_write(&l->file, p, nl ? n + 1 : n))
            file_drops++;
        if (l->has_otlp) {
            if (!l->otlp.pending)
                l->otlp_due = mono() + l->otlp_interval_s;
            llmux__otlp_add(&l->otlp, p, n, t_ns);
        }
        p += n + 1;
    }
    pthread_mutex_lock(&l->cb_mu);
    lx_log_cb cb = l->cb;
    void *user = l->cb_user;
    for (char *p = lines, *end = lines + len; cb && p < end;) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
        char keep = p[n];
        p[n] = '\0'; /* the callback sees one record, NUL-terminated */
        cb(p, n, user);
        p[n] = keep;
        p += n + 1;
    }
    pthread_mutex_unlock(&l->cb_mu);
    pthread_mutex_lock(&l->mu);
    l->records += recs;
    l->dropped_file += file_drops;
    pthread_mutex_unlock(&l->mu);
}

static void wait_until(pthread_cond_t *cv, pthread_mutex_t *mu, double due_mono)
{
    double left = due_mono - mono();
    if (left <= 0)
        return;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    double t = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9 + left;
    ts.tv_sec = (time_t)t;
    ts.tv_nsec = (long)((t - (double)ts.tv_sec) * 1e9);
    pthread_cond_timedwait(cv, mu, &ts);
}

/* The writer: delivers entries in batches; exports to the collector when a
 * batch is full, when the oldest pending record has waited the interval, on a
 * flush and at close. */
static void *writer(void *arg)
{
    lx_log *l = arg;
    entry batch[BATCH];
    pthread_mutex_lock(&l->mu);
    for (;;) {
        if (!l->count) {
            if (l->has_otlp && l->otlp.pending &&
                (l->stop || l->flush_asked != l->flush_done || mono() >= l->otlp_due)) {
                pthread_mutex_unlock(&l->mu);
                llmux__otlp_send(&l->otlp);
                pthread_mutex_lock(&l->mu);
                l->exported = l->otlp.exported;
                l->dropped_otlp = l->otlp.dropped;
                continue;
            }
            if (l->flush_asked != l->flush_done) {
                l->flush_done = l->flush_asked;
                pthread_cond_broadcast(&l->done_cv);
                continue;
            }
            if (l->stop)
                break;
            double due = l->has_otlp && l->otlp.pending ? l->otlp_due : 0;
            if (!l->lingered) {
                /* linger: under load the next records come soon, and a call
                 * that finds the writer lingering does not wake it (no
                 * syscall on the calling thread) */
                double until = mono() + LINGER_S;
                wait_until(&l->wake, &l->mu, due && due < until ? due : until);
                l->lingered = 1;
                continue;
            }
            l->sleeping = 1;
            if (due)
                wait_until(&l->wake, &l->mu, due);
            else
                pthread_cond_wait(&l->wake, &l->mu);
            l->sleeping = 0;
            continue;
        }
        l->lingered = 0;
        size_t n = 0;
        while (l->count && n < BATCH) {
            batch[n++] = l->ring[l->head];
            l->head = (l->head + 1) % l->cap;
            l->count--;
        }
        pthread_mutex_unlock(&l->mu);
        for (size_t i = 0; i < n; i++) {
            deliver(l, &batch[i]);
            free(batch[i].call);
        }
        if (l->has_file)
            llmux__log_file_flush(&l->file);
        pthread_mutex_lock(&l->mu);
        l->exported = l->otlp.exported;
        l->dropped_otlp = l->otlp.dropped;
        l->done += n;
        pthread_cond_broadcast(&l->done_cv);
    }
    pthread_mutex_unlock(&l->mu);
    return NULL;
}

/* with mu held */
static int start_writer(lx_log *l)
{
    if (l->running)
        return 0;
    if (pthread_create(&l->thread, NULL, writer, l))
        return -1;
    l->running = 1;
    return 0;
}

int llmux__log_new(lx_log **out, const lx_log_options *o, lx_err *err)
{
    *out = NULL;
    lx_log *l = calloc(1, sizeof *l);
    if (!l)
        return llmux__err(err, LLMUX_ERR_NO_MEMORY, "out of memory");
    l->cap = o->queue > 0 ? (size_t)o->queue : 4096;
    if (!(l->ring = calloc(l->cap, sizeof *l->ring))) {
        free(l);
        return llmux__err(err, LLMUX_ERR_NO_MEMORY, "out of memory");
    }
    pthread_mutex_init(&l->mu, NULL);
    pthread_mutex_init(&l->cb_mu, NULL);
    pthread_cond_init(&l->wake, NULL);
    pthread_cond_init(&l->done_cv, NULL);
    int rc = LLMUX_OK;
    if (o->file) {
        rc = llmux__log_file_open(&l->file, o->file, o->max_bytes, o->max_age_s, o->retain_s,
                                  o->retain_bytes, err);
        l->has_file = rc == LLMUX_OK;
    }
    if (!rc && o->otlp_url) {
        l->has_otlp = 1;
        l->otlp_interval_s = (o->otlp_interval_ms > 0 ? (double)o->otlp_interval_ms : 1000.0) / 1e3;
        if (llmux__otlp_init(&l->otlp, o->otlp_url, o->otlp_timeout_ms,
                             o->otlp_batch > 0 ? o->otlp_batch : 512))
            rc = llmux__err(err, LLMUX_ERR_NO_MEMORY, "out of memory");
    }
    if (!rc && (l->has_file || l->has_otlp)) {
        l->active = 1;
        if (start_writer(l))
            rc = llmux__err(err, LLMUX_ERR_NO_MEMORY, "cannot start the log writer thread");
    }
    if (rc) {
        llmux__log_free(l);
        return rc;
    }
    *out = l;
    return LLMUX_OK;
}

void llmux__log_free(lx_log *l)
{
    if (!l)
        return;
    pthread_mutex_lock(&l->mu);
    l->stop = 1;
    int running = l->running;
    pthread_cond_broadcast(&l->wake);
    pthread_mutex_unlock(&l->mu);
    if (running)
        pthread_join(l->thread, NULL);
    for (size_t i = 0; i < l->count; i++) /* only when the writer never ran */
        free(l->ring[(l->head + i) % l->cap].call);
    if (l->has_otlp || l->otlp.url)
        llmux__otlp_free(&l->otlp);
    if (l->has_file)
        llmux__log_file_close(&l->file);
    pthread_cond_destroy(&l->wake);
    pthread_cond_destroy(&l->done_cv);
    pthread_mutex_destroy(&l->mu);
    pthread_mutex_destroy(&l->cb_mu);
    llmux__buf_free(&l->lines);
    free(l->ring);
    free(l);
}

int llmux__log_active(lx_log *l)
{
    return __atomic_load_n(&l->active, __ATOMIC_RELAXED);
}

int llmux__log_set_callback(lx_log *l, lx_log_cb cb, void *user)
{
    pthread_mutex_lock(&l->mu);
    int on_writer = l->running && pthread_equal(l->thread, pthread_self());
    pthread_mutex_unlock(&l->mu);
    if (on_writer)
        return LLMUX_ERR_INVALID_ARGUMENT;
    pthread_mutex_lock(&l->cb_mu);
    l->cb = cb;
    l->cb_user = user;
    pthread_mutex_unlock(&l->cb_mu);
    pthread_mutex_lock(&l->mu);
    int rc = cb ? start_writer(l) : 0;
    __atomic_store_n(&l->active, l->has_file || l->has_otlp || (cb && !rc), __ATOMIC_RELAXED);
    pthread_mutex_unlock(&l->mu);
    return rc ? LLMUX_ERR_NO_MEMORY : LLMUX_OK;
}

int llmux__log_submit(lx_log *l, const lx_log_call *c)
{
    size_t n_records = 1 + (c->with_attempts ? c->n_attempts : 0);
    pthread_mutex_lock(&l->mu);
    int room = l->count < l->cap && !l->stop && l->running;
    pthread_mutex_unlock(&l->mu);
    lx_log_call *copy = room ? llmux__log_call_copy(c) : NULL;
    pthread_mutex_lock(&l->mu);
    if (!copy || l->count == l->cap || l->stop || !l->running) {
        l->dropped_queue += n_records;
        pthread_mutex_unlock(&l->mu);
        free(copy);
        return -1;
    }
    l->ring[(l->head + l->count) % l->cap].call = copy;
    l->count++;
    l->submitted++;
    if (l->sleeping || l->count >= l->cap / 2 + 1)
        pthread_cond_signal(&l->wake);
    pthread_mutex_unlock(&l->mu);
    return 0;
}

int llmux__log_flush(lx_log *l, long timeout_ms)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += timeout_ms / 1000;
    until.tv_nsec += (timeout_ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    int rc = LLMUX_OK;
    pthread_mutex_lock(&l->mu);
    if (l->running) {
        uint64_t target = l->submitted, ticket = ++l->flush_asked;
        pthread_cond_signal(&l->wake);
        while (l->done < target || l->flush_done < ticket)
            if (pthread_cond_timedwait(&l->done_cv, &l->mu, &until) == ETIMEDOUT) {
                rc = l->done < target || l->flush_done < ticket ? LLMUX_ERR_TIMEOUT : LLMUX_OK;
                break;
            }
    }
    pthread_mutex_unlock(&l->mu);
    return rc;
}

void llmux__log_stats(lx_log *l, lx_log_stats *s)
{
    pthread_mutex_lock(&l->mu);
    s->submitted = l->submitted;
    s->dropped_queue = l->dropped_queue;
    s->records = l->records;
    s->dropped_file = l->dropped_file;
    s->exported = l->exported;
    s->dropped_otlp = l->dropped_otlp;
    pthread_mutex_unlock(&l->mu);
}
