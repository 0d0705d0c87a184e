/*
 * The journal store: the in-memory store's totals, made durable by an
 * append-only journal (docs/ledger.md). Every settled call is written with
 * one write(2) to an O_APPEND file before settle returns, so a killed process
 * loses nothing it acknowledged; the fsync policy decides what an OS crash or
 * a power cut may lose: every_call syncs before settle returns (concurrent
 * callers share one fdatasync), interval syncs from a background thread every
 * fsync_interval_ms, never leaves it to the kernel.
 *
 * Locks: sync_mu (one fdatasync at a time, and compaction) before mu (the
 * file, its size and the counters).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ledger/journal.h"

#define MAX_WARNINGS 16

struct lx_journal {
    void *mem; /* the in-memory store: the totals */
    long max_rows;
    char *path;
    int fd;
    int policy;
    long interval_ms;
    int64_t compact_bytes, next_compact;

    pthread_mutex_t mu;
    int64_t size;     /* bytes of the file */
    int64_t appended; /* bytes ever appended (a sequence number across compactions) */
    int64_t fsyncs, compactions, write_errors;
    int last_errno;
    char *warnings[MAX_WARNINGS];
    size_t n_warnings;

    pthread_mutex_t sync_mu;
    int64_t synced; /* appended bytes known to be on disk; under sync_mu, read under mu too */

    pthread_t flusher;
    int have_flusher, stop;
    pthread_mutex_t flush_mu;
    pthread_cond_t flush_cv;
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void add_warning(lx_journal *j, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
static void add_warning(lx_journal *j, const char *fmt, ...)
{
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (j->n_warnings < MAX_WARNINGS) {
        char *w = strdup(line);
        if (w)
            j->warnings[j->n_warnings++] = w;
    }
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* The whole file [0, size) into a NUL-terminated buffer. */
static int read_file(int fd, int64_t size, char **out)
{
    char *data = malloc((size_t)size + 1);
    if (!data)
        return LLMUX_ERR_NO_MEMORY;
    int64_t got = 0;
    while (got < size) {
        ssize_t n = pread(fd, data + got, (size_t)(size - got), got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            free(data);
            return LLMUX_ERR_IO;
        }
        got += n;
    }
    data[size] = '\0';
    *out = data;
    return LLMUX_OK;
}

/* Calls fn for each good record of data[0, len); *good_end gets the end of the
 * last good record, *skipped the bad lines before it. Lines are cut in place. */
typedef int (*record_fn)(void *ctx, const lx_jrec *r);

static int scan(char *data, size_t len, record_fn fn, void *ctx, size_t *good_end,
                size_t *skipped)
{
    size_t pos = 0, bad = 0;
    *good_end = 0;
    while (pos < len) {
        char *nl = memchr(data + pos, '\n', len - pos);
        if (!nl)
            break; /* torn: no newline */
        size_t n = (size_t)(nl - (data + pos));
        *nl = '\0';
        lx_jrec r;
        if (llmux__jrec_parse(data + pos, n, &r) == 0) {
            int rc = fn(ctx, &r);
            if (rc)
                return rc;
            *skipped = bad;
            *good_end = pos + n + 1;
        } else {
            bad++;
        }
        pos += n + 1;
    }
    if (*good_end == 0)
        *skipped = 0;
    return LLMUX_OK;
}

/* ------------------------------------------------------------- the store */

static int settle_into(void *mem, const lx_jrec *r, lx_err *err)
{
    lx_charge c = {r->key,  r->workflow, r->task,      r->model, r->provider, r->ok,
                   LX_USAGE_UNKNOWN, r->cost_nusd, r->estimated, r->team, r->alias};
    c.usage.prompt_tokens = r->prompt_tokens;
    c.usage.completion_tokens = r->completion_tokens;
    c.usage.cached_tokens = r->cached_tokens;
    c.usage.cache_write_tokens = r->cache_write_tokens;
    c.usage.reasoning_tokens = r->reasoning_tokens;
    lx_reservation res;
    memset(&res, 0, sizeof res);
    int rc = llmux__memory_store_ops.reserve(mem, &c, &res, err);
    return rc ? rc : llmux__memory_store_settle_n(mem, &res, &c, r->calls, err);
}

typedef struct replay_ctx {
    lx_journal *j;
    int64_t records, refused;
    lx_err err;
} replay_ctx;

static int replay_one(void *ctx, const lx_jrec *r)
{
    replay_ctx *c = ctx;
    c->records++;
    int rc = settle_into(c->j->mem, r, &c->err);
    if (rc == LLMUX_ERR_NO_MEMORY)
        return rc;
    if (rc)
        c->refused++;
    return LLMUX_OK;
}

static int sync_fd(lx_journal *j, int fd)
{
    if (fdatasync(fd) == 0)
        return 0;
    pthread_mutex_lock(&j->mu);
    j->write_errors++;
    j->last_errno = errno;
    pthread_mutex_unlock(&j->mu);
    return -1;
}

/* Make every byte appended so far durable; concurrent callers share one fdatasync. */
static void sync_upto(lx_journal *j, int64_t upto)
{
    pthread_mutex_lock(&j->sync_mu);
    if (j->synced < upto) {
        pthread_mutex_lock(&j->mu);
        int64_t target = j->appended;
        int fd = j->fd;
        pthread_mutex_unlock(&j->mu);
        if (sync_fd(j, fd) == 0) {
            pthread_mutex_lock(&j->mu);
            j->synced = target;
            j->fsyncs++;
            pthread_mutex_unlock(&j->mu);
        }
    }
    pthread_mutex_unlock(&j->sync_mu);
}

static void *flusher_main(void *arg)
{
    lx_journal *j = arg;
    pthread_mutex_lock(&j->flush_mu);
    while (!j->stop) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_sec += j->interval_ms / 1000;
        ts.tv_nsec += (j->interval_ms % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&j->flush_cv, &j->flush_mu, &ts);
        if (j->stop)
            break;
        pthread_mutex_unlock(&j->flush_mu);
        pthread_mutex_lock(&j->mu);
        int64_t upto = j->appended;
        pthread_mutex_unlock(&j->mu);
        sync_upto(j, upto);
        pthread_mutex_lock(&j->flush_mu);
    }
    pthread_mutex_unlock(&j->flush_mu);
    return NULL;
}

static void journal_free(void *st)
{
    lx_journal *j = st;
    if (!j)
        return;
    if (j->have_flusher) {
        pthread_mutex_lock(&j->flush_mu);
        j->stop = 1;
        pthread_cond_signal(&j->flush_cv);
        pthread_mutex_unlock(&j->flush_mu);
        pthread_join(j->flusher, NULL);
    }
    if (j->fd >= 0) {
        if (j->policy != LX_FSYNC_NEVER)
            fdatasync(j->fd);
        close(j->fd); /* releases the lock */
    }
    if (j->mem)
        llmux__memory_store_ops.free(j->mem);
    for (size_t i = 0; i < j->n_warnings; i++)
        free(j->warnings[i]);
    pthread_mutex_destroy(&j->mu);
    pthread_mutex_destroy(&j->sync_mu);
    pthread_mutex_destroy(&j->flush_mu);
    pthread_cond_destroy(&j->flush_cv);
    free(j->path);
    free(j);
}

static int fsync_dir(const char *path)
{
    char *copy = strdup(path);
    if (!copy)
        return -1;
    int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    free(copy);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

int llmux__journal_open(lx_journal **out, const lx_journal_options *o, lx_err *err)
{
    lx_journal *j = calloc(1, sizeof *j);
    if (!j)
        return llmux__err(err, LLMUX_ERR_NO_MEMORY, "out of memory");
    j->fd = -1;
    pthread_mutex_init(&j->mu, NULL);
    pthread_mutex_init(&j->sync_mu, NULL);
    pthread_mutex_init(&j->flush_mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC); /* the interval ignores wall-clock steps */
    pthread_cond_init(&j->flush_cv, &ca);
    pthread_condattr_destroy(&ca);
    j->policy = o->fsync;
    j->interval_ms = o->fsync_interval_ms > 0 ? o->fsync_interval_ms : 1000;
    j->compact_bytes = o->compact_bytes > 0 ? o->compact_bytes : 64LL * 1024 * 1024;
    j->next_compact = j->compact_bytes;
    j->max_rows = o->max_rows;
    int rc = LLMUX_OK;
    char *data = NULL;
    if (!(j->path = strdup(o->path)) || llmux__memory_store_new(&j->mem, o->max_rows)) {
        rc = llmux__err(err, LLMUX_ERR_NO_MEMORY, "out of memory");
        goto fail;
    }
    j->fd = open(o->path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (j->fd < 0) {
        rc = llmux__err(err, LLMUX_ERR_IO, "ledger.journal: %.300s: %s", o->path, strerror(errno));
        goto fail;
    }
    if (flock(j->fd, LOCK_EX | LOCK_NB)) {
        rc = llmux__err(err, LLMUX_ERR_IO,
                        "ledger.journal: %.300s: %s", o->path,
                        errno == EWOULDBLOCK ? "in use by another gateway (locked)" : strerror(errno));
        goto fail;
    }
    struct stat sb;
    if (fstat(j->fd, &sb)) {
        rc = llmux__err(err, LLMUX_ERR_IO, "ledger.journal: %.300s: %s", o->path, strerror(errno));
        goto fail;
    }
    if ((rc = read_file(j->fd, sb.st_size, &data))) {
        llmux__err(err, rc, "ledger.journal: %.300s: %s", o->path,
                   rc == LLMUX_ERR_IO ? "read error" : "out of memory");
        goto fail;
    }
    replay_ctx ctx = {j, 0, 0, {0}};
    size_t good_end = 0, skipped = 0;
    if ((rc = scan(data, (size_t)sb.st_size, replay_one, &ctx, &good_end, &skipped))) {
        llmux__err(err, rc, "out of memory (replaying the ledger journal)");
        goto fail;
    }
    if (good_end < (size_t)sb.st_size) {
        if (ftruncate(j->fd, (off_t)good_end) || fdatasync(j->fd)) {
            rc = llmux__err(err, LLMUX_ERR_IO, "ledger.journal: %.300s: cannot truncate: %s",
                            o->path, strerror(errno));
            goto fail;
        }
        add_warning(j,
                    "ledger.journal: %.300s: dropped a torn or corrupt tail of %lld bytes at "
                    "offset %zu (%lld records before it were replayed)",
                    o->path, (long long)(sb.st_size - (off_t)good_end), good_end,
                    (long long)ctx.records);
    }
    if (skipped)
        add_warning(j, "ledger.journal: %.300s: skipped %zu corrupt records among good ones",
                    o->path, skipped);
    if (ctx.refused)
        add_warning(j,
                    "ledger.journal: %.300s: %lld records were past ledger.max_rows and are "
                    "missing from the totals (%s)",
                    o->path, (long long)ctx.refused, ctx.err.msg);
    free(data);
    data = NULL;
    j->size = (int64_t)good_end;
    if (j->policy == LX_FSYNC_INTERVAL) {
        if (pthread_create(&j->flusher, NULL, flusher_main, j)) {
            rc = llmux__err(err, LLMUX_ERR_NO_MEMORY, "cannot start the journal's fsync thread");
            goto fail;
        }
        j->have_flusher = 1;
    }
    if (j->size > j->next_compact && (rc = llmux__journal_compact(j, err)))
        goto fail;
    *out = j;
    return LLMUX_OK;
fail:
    free(data);
    journal_free(j);
    return rc;
}

static int journal_reserve(void *st, const lx_charge *c, lx_reservation *r, lx_err *err)
{
    lx_journal *j = st;
    return llmux__memory_store_ops.reserve(j->mem, c, r, err);
}

static int64_t nonneg(int64_t v)
{
    return v > 0 ? v : 0;
}

static int journal_settle(void *st, lx_reservation *res, const lx_charge *c, lx_err *err)
{
    lx_journal *j = st;
    int rc = llmux__memory_store_ops.settle(j->mem, res, c, err);
    lx_jrec r = {0,
                 now_ms(),
                 c->key_id,
                 c->workflow,
                 c->task,
                 c->model && *c->model ? c->model : NULL,
                 c->provider && *c->provider ? c->provider : NULL,
                 c->ok,
                 c->estimated,
                 c->team,
                 c->alias,
                 1,
                 nonneg(c->usage.prompt_tokens),
                 nonneg(c->usage.completion_tokens),
                 nonneg(c->usage.cached_tokens),
                 nonneg(c->usage.cache_write_tokens),
                 nonneg(c->usage.reasoning_tokens),
                 c->cost_nusd >= 0 ? c->cost_nusd : -1};
    lx_buf b = LX_BUF_INIT;
    if (llmux__jrec_line(&b, &r)) {
        llmux__buf_free(&b);
        return llmux__err(err, LLMUX_ERR_NO_MEMORY, "out of memory (ledger journal)");
    }
    pthread_mutex_lock(&j->mu);
    int64_t upto = 0;
    int compact = 0;
    if (write_all(j->fd, b.data, b.len)) {
        j->write_errors++;
        j->last_errno = errno;
        /* a partial write leaves a torn line: cut it so later records stay readable */
        if (ftruncate(j->fd, (off_t)j->size))
            j->last_errno = errno;
        rc = llmux__err(err, LLMUX_ERR_IO, "ledger.journal: write failed: %s",
                        strerror(j->last_errno));
    } else {
        j->size += (int64_t)b.len;
        j->appended += (int64_t)b.len;
        upto = j->appended;
        compact = j->size > j->next_compact;
    }
    pthread_mutex_unlock(&j->mu);
    llmux__buf_free(&b);
    if (upto && j->policy == LX_FSYNC_EVERY_CALL)
        sync_upto(j, upto);
    if (compact) {
        lx_err cerr = {0};
        llmux__journal_compact(j, &cerr);
    }
    return rc;
}

static int journal_report_all(void *st, const char *group_by, char **out, lx_err *err)
{
    lx_journal *j = st;
    return llmux__memory_store_ops.report(j->mem, group_by, out, err);
}

const lx_store_ops llmux__journal_store_ops = {
    .name = "journal",
    .reserve = journal_reserve,
    .settle = journal_settle,
    .report = journal_report_all,
    .free = journal_free,
};

/* ----------------------------------------------------- reading it back */

/* A copy of the file as it stands: whole records only. */
static int snapshot(lx_journal *j, char **data, int64_t *len, lx_err *err)
{
    pthread_mutex_lock(&j->mu);
    *len = j->size;
    int rc = read_file(j->fd, j->size, data);
    pthread_mutex_unlock(&j->mu);
    if (rc)
        return llmux__err(err, rc, rc == LLMUX_ERR_IO ? "ledger.journal: read error"
                                                      : "out of memory");
    return LLMUX_OK;
}

int llmux__journal_each(lx_journal *j, int (*fn)(void *ctx, const lx_jrec *r), void *ctx,
                        lx_err *err)
{
    char *data = NULL;
    int64_t len;
    int rc = snapshot(j, &data, &len, err);
    if (rc)
        return rc;
    size_t good_end, skipped;
    rc = scan(data, (size_t)len, fn, ctx, &good_end, &skipped);
    free(data);
    return rc ? llmux__err(err, rc, "ledger.journal: reading it back failed") : LLMUX_OK;
}

typedef struct filter_ctx {
    int64_t since, until;
    void *mem;
    lx_buf *out;
    int csv;
    lx_err *err;
} filter_ctx;

static int in_period(const filter_ctx *f, const lx_jrec *r)
{
    return (f->since == LX_JREC_NONE || r->t_ms >= f->since) &&
           (f->until == LX_JREC_NONE || r->t_ms < f->until);
}

static int report_one(void *ctx, const lx_jrec *r)
{
    filter_ctx *f = ctx;
    if (!in_period(f, r))
        return LLMUX_OK;
    int rc = settle_into(f->mem, r, f->err);
    return rc == LLMUX_ERR_NO_MEMORY ? rc : LLMUX_OK;
}

int llmux__journal_report(lx_journal *j, const char *group_by, int64_t since, int64_t until,
                          char **out, lx_err *err)
{
    char *data = NULL;
    int64_t len;
    void *mem = NULL;
    int rc = snapshot(j, &data, &len, err);
    if (rc)
        return rc;
    if (llmux__memory_store_new(&mem, j->max_rows)) {
        free(data);
        return llmux__err(err, LLMUX_ERR_NO_MEMORY, "out of memory");
    }
    /* check group_by before the work */
    char *probe = NULL;
    rc = llmux__memory_store_ops.report(mem, group_by, &probe, err);
    free(probe);
    filter_ctx f = {since, until, mem, NULL, 0, err};
    size_t good_end, skipped;
    if (!rc && (rc = scan(data, (size_t)len, report_one, &f, &good_end, &skipped)))
        llmux__err(err, rc, "out of memory");
    if (!rc)
        rc = llmux__memory_store_ops.report(mem, group_by, out, err);
    llmux__memory_store_ops.free(mem);
    free(data);
    return rc;
}

static int export_one(void *ctx, const lx_jrec *r)
{
    filter_ctx *f = ctx;
    if (!in_period(f, r))
        return LLMUX_OK;
    if (f->csv)
        return llmux__jrec_csv(f->out, r) ? LLMUX_ERR_NO_MEMORY : LLMUX_OK;
    /* the record as written: re-encoded, it is the same JSON */
    size_t start = f->out->len;
    if (llmux__jrec_line(f->out, r))
        return LLMUX_ERR_NO_MEMORY;
    memmove(f->out->data + start, f->out->data + start + 9, f->out->len - start - 9);
    f->out->len -= 9;
    f->out->data[f->out->len] = '\0';
    return LLMUX_OK;
}

int llmux__journal_export(lx_journal *j, const char *format, int64_t since, int64_t until,
                          char **out, lx_err *err)
{
    int csv = format && strcmp(format, "csv") == 0;
    if (!format || (!csv && strcmp(format, "jsonl")))
        return llmux__err(err, LLMUX_ERR_INVALID_ARGUMENT,
                          "format \"%.32s\" is not one of: jsonl, csv", format ? format : "(null)");
    char *data = NULL;
    int64_t len;
    int rc = snapshot(j, &data, &len, err);
    if (rc)
        return rc;
    lx_buf b = LX_BUF_INIT;
    filter_ctx f = {since, until, NULL, &b, csv, err};
    size_t good_end, skipped;
    if ((csv && llmux__jrec_csv_header(&b)) ||
        scan(data, (size_t)len, export_one, &f, &good_end, &skipped)) {
        free(data);
        llmux__buf_free(&b);
        return llmux__err(err, LLMUX_ERR_NO_MEMORY, "out of memory");
    }
    free(data);
    *out = llmux__buf_steal(&b);
    if (!*out)
        return llmux__err(err, LLMUX_ERR_NO_MEMORY, "out of memory");
    return LLMUX_OK;
}

/* ------------------------------------------------------------ compaction */

/* Summary records by (UTC day, ok, estimated, priced, key, workflow, task,
 * model, team, alias, provider): the fields that make calls alike. The records are
 * sorted on them and runs of equal ones are summed. */
typedef struct records {
    lx_jrec *v;
    size_t n, cap;
} records;

static int64_t day_of(int64_t ms)
{
    return (ms >= 0 ? ms / 86400000 : -((-ms + 86399999) / 86400000)) * 86400000;
}

static int collect(void *ctx, const lx_jrec *r)
{
    records *rs = ctx;
    if (rs->n == rs->cap) {
        size_t cap = rs->cap ? rs->cap * 2 : 256;
        lx_jrec *v = realloc(rs->v, cap * sizeof *v);
        if (!v)
            return LLMUX_ERR_NO_MEMORY;
        rs->v = v;
        rs->cap = cap;
    }
    lx_jrec *s = &rs->v[rs->n++];
    *s = *r;
    s->summary = 1;
    s->t_ms = day_of(r->t_ms);
    return LLMUX_OK;
}

static int cmp_str(const char *a, const char *b)
{
    return a && b ? strcmp(a, b) : (a != NULL) - (b != NULL);
}

static int alike(const void *x, const void *y)
{
    const lx_jrec *a = x, *b = y;
    int c;
    if (a->t_ms != b->t_ms)
        return a->t_ms < b->t_ms ? -1 : 1;
    if ((c = (a->ok - b->ok) * 4 + (a->estimated - b->estimated) * 2 +
             ((a->cost_nusd >= 0) - (b->cost_nusd >= 0))))
        return c;
    if ((c = cmp_str(a->key, b->key)) || (c = cmp_str(a->workflow, b->workflow)) ||
        (c = cmp_str(a->task, b->task)) || (c = cmp_str(a->model, b->model)) ||
        (c = cmp_str(a->team, b->team)) || (c = cmp_str(a->alias, b->alias)))
        return c;
    return cmp_str(a->provider, b->provider);
}

static void add_into(lx_jrec *s, const lx_jrec *r)
{
    s->calls = llmux__sat_add(s->calls, r->calls);
    s->prompt_tokens = llmux__sat_add(s->prompt_tokens, r->prompt_tokens);
    s->completion_tokens = llmux__sat_add(s->completion_tokens, r->completion_tokens);
    s->cached_tokens = llmux__sat_add(s->cached_tokens, r->cached_tokens);
    s->cache_write_tokens = llmux__sat_add(s->cache_write_tokens, r->cache_write_tokens);
    s->reasoning_tokens = llmux__sat_add(s->reasoning_tokens, r->reasoning_tokens);
    if (s->cost_nusd >= 0)
        s->cost_nusd = llmux__sat_add(s->cost_nusd, r->cost_nusd);
}

int llmux__journal_compact(lx_journal *j, lx_err *err)
{
    pthread_mutex_lock(&j->sync_mu);
    pthread_mutex_lock(&j->mu);
    records rs = {NULL, 0, 0};
    lx_buf out = LX_BUF_INIT;
    char *data = NULL, *tmp = NULL;
    int fd = -1, rc = read_file(j->fd, j->size, &data);
    size_t good_end, skipped;
    if (rc) {
        llmux__err(err, rc, "ledger.journal: %s", rc == LLMUX_ERR_IO ? "read error" : "out of memory");
        goto done;
    }
    if ((rc = scan(data, (size_t)j->size, collect, &rs, &good_end, &skipped))) {
        llmux__err(err, rc, "out of memory (compacting the ledger journal)");
        goto done;
    }
    qsort(rs.v, rs.n, sizeof *rs.v, alike);
    for (size_t i = 0; i < rs.n;) {
        lx_jrec sum = rs.v[i];
        for (i++; i < rs.n && alike(&sum, &rs.v[i]) == 0; i++)
            add_into(&sum, &rs.v[i]);
        if (llmux__jrec_line(&out, &sum)) {
            rc = llmux__err(err, LLMUX_ERR_NO_MEMORY, "out of memory (compacting the journal)");
            goto done;
        }
    }
    size_t plen = strlen(j->path);
    if (!(tmp = malloc(plen + 16))) {
        rc = llmux__err(err, LLMUX_ERR_NO_MEMORY, "out of memory");
        goto done;
    }
    snprintf(tmp, plen + 16, "%s.compact", j->path);
    fd = open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0 || write_all(fd, out.data ? out.data : "", out.len) || fdatasync(fd) ||
        flock(fd, LOCK_EX | LOCK_NB) || rename(tmp, j->path)) {
        rc = llmux__err(err, LLMUX_ERR_IO, "ledger.journal: compaction failed: %s",
                        strerror(errno));
        if (fd >= 0) {
            close(fd);
            fd = -1;
        }
        unlink(tmp);
        goto done;
    }
    fsync_dir(j->path);
    close(j->fd);
    j->fd = fd;
    fd = -1;
    j->size = (int64_t)out.len;
    j->synced = j->appended; /* everything is in the new file, synced */
    j->compactions++;
    /* summaries that still fill the threshold would compact on every call */
    j->next_compact = j->size * 2 > j->compact_bytes ? j->size * 2 : j->compact_bytes;
done:
    pthread_mutex_unlock(&j->mu);
    pthread_mutex_unlock(&j->sync_mu);
    free(rs.v);
    llmux__buf_free(&out);
    free(data);
    free(tmp);
    return rc;
}

int llmux__journal_warnings(lx_journal *j, lx_buf *b, int *first)
{
    pthread_mutex_lock(&j->mu);
    int bad = 0;
    for (size_t i = 0; !bad && i < j->n_warnings; i++) {
        bad = (!*first && llmux__buf_puts(b, ",")) || llmux__buf_json_string(b, j->warnings[i]);
        *first = 0;
    }
    if (!bad && j->write_errors) {
        char line[512];
        snprintf(line, sizeof line,
                 "ledger.journal: %.300s: %lld writes or fsyncs failed since open (last: %s); "
                 "the totals in memory have those calls, the file may not",
                 j->path, (long long)j->write_errors, strerror(j->last_errno));
        bad = (!*first && llmux__buf_puts(b, ",")) || llmux__buf_json_string(b, line);
        *first = 0;
    }
    pthread_mutex_unlock(&j->mu);
    return bad ? LLMUX_ERR_NO_MEMORY : LLMUX_OK;
}

void llmux__journal_stats(lx_journal *j, lx_journal_stats *s)
{
    pthread_mutex_lock(&j->mu);
    s->appended = j->appended;
    s->synced = j->synced;
    s->fsyncs = j->fsyncs;
    s->compactions = j->compactions;
    s->size = j->size;
    pthread_mutex_unlock(&j->mu);
}
