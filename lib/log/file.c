#include "log/file.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

static long long mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec;
}

typedef struct rotated {
    char *name;
    long long size;
    time_t mtime;
} rotated;

static int by_name_desc(const void *a, const void *b)
{
    return strcmp(((const rotated *)b)->name, ((const rotated *)a)->name);
}

/* Remove rotated files ("<base>.<UTC time>-<seq>") older than retain_s, and
 * the oldest beyond retain_bytes in total. The current file is never removed. */
static void retention(lx_log_file *lf)
{
    if (!lf->retain_s && !lf->retain_bytes)
        return;
    const char *slash = strrchr(lf->path, '/');
    char dir[4096];
    const char *base = slash ? slash + 1 : lf->path;
    if (slash)
        snprintf(dir, sizeof dir, "%.*s", (int)(slash - lf->path) ? (int)(slash - lf->path) : 1,
                 lf->path);
    else
        snprintf(dir, sizeof dir, ".");
    DIR *d = opendir(dir);
    if (!d)
        return;
    size_t blen = strlen(base), n = 0, cap = 0;
    rotated *v = NULL;
    for (struct dirent *e; (e = readdir(d));) {
        /* base, a dot, then 8 digits of a date: our rotated names only */
        if (strncmp(e->d_name, base, blen) != 0 || e->d_name[blen] != '.' ||
            strspn(e->d_name + blen + 1, "0123456789") < 8)
            continue;
        char full[8192];
        struct stat st;
        snprintf(full, sizeof full, "%s/%s", dir, e->d_name);
        if (stat(full, &st) != 0 || !S_ISREG(st.st_mode))
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            rotated *p = realloc(v, cap * sizeof *v);
            if (!p)
                break;
            v = p;
        }
        if (!(v[n].name = strdup(full)))
            break;
        v[n].size = (long long)st.st_size;
        v[n].mtime = st.st_mtime;
        n++;
    }
    closedir(d);
    qsort(v, n, sizeof *v, by_name_desc); /* newest first */
    time_t now = time(NULL);
    long long total = 0;
    for (size_t i = 0; i < n; i++) {
        total += v[i].size;
        if ((lf->retain_s && now - v[i].mtime > lf->retain_s) ||
            (lf->retain_bytes && total > lf->retain_bytes))
            remove(v[i].name);
        free(v[i].name);
    }
    free(v);
}

static int reopen(lx_log_file *lf)
{
    /* owner-only: the log may hold prompts (content "full") */
    int fd = open(lf->path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0)
        return -1;
    lf->f = fdopen(fd, "a");
    if (!lf->f) {
        close(fd);
        return -1;
    }
    struct stat st;
    lf->size = fstat(fileno(lf->f), &st) == 0 ? (long)st.st_size : 0;
    lf->opened = mono_s();
    return 0;
}

int llmux__log_file_open(lx_log_file *lf, const char *path, long max_bytes, long max_age_s,
                         long retain_s, long retain_bytes, lx_err *err)
{
    memset(lf, 0, sizeof *lf);
    lf->max_bytes = max_bytes;
    lf->max_age_s = max_age_s;
    lf->retain_s = retain_s;
    lf->retain_bytes = retain_bytes;
    if (!(lf->path = strdup(path)))
        return llmux__err(err, LLMUX_ERR_NO_MEMORY, "out of memory");
    if (reopen(lf)) {
        int e = errno;
        free(lf->path);
        lf->path = NULL;
        return llmux__err(err, LLMUX_ERR_CONFIG, "log.file.path: cannot open %.300s: %s", path,
                          strerror(e));
    }
    retention(lf);
    return LLMUX_OK;
}

static void rotate(lx_log_file *lf)
{
    char name[8192], when[32];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(when, sizeof when, "%Y%m%dT%H%M%SZ", &tm);
    fclose(lf->f);
    lf->f = NULL;
    snprintf(name, sizeof name, "%s.%s-%06lu", lf->path, when, ++lf->seq % 1000000);
    rename(lf->path, name);
    reopen(lf);
    retention(lf);
}

int llmux__log_file_write(lx_log_file *lf, const char *rec, size_t len)
{
    if (lf->f && lf->size > 0 &&
        ((lf->max_bytes && lf->size + (long)len > lf->max_bytes) ||
         (lf->max_age_s && mono_s() - lf->opened >= lf->max_age_s)))
        rotate(lf);
    if (!lf->f && reopen(lf)) /* the directory may come back */
        return -1;
    if (fwrite(rec, 1, len, lf->f) != len)
        return -1;
    lf->size += (long)len;
    return 0;
}

void llmux__log_file_flush(lx_log_file *lf)
{
    if (lf->f)
        fflush(lf->f);
}

void llmux__log_file_close(lx_log_file *lf)
{
    if (lf->f)
        fclose(lf->f);
    free(lf->path);
    memset(lf, 0, sizeof *lf);
}
