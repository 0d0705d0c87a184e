/* The file sink: JSON lines appended to one file, rotated by size and age,
 * rotated files removed by age and total size. Used by the writer thread only. */
#ifndef LLMUX_LOG_FILE_H
#define LLMUX_LOG_FILE_H

#include <stdio.h>

#include "core/error.h"

typedef struct lx_log_file {
    char *path;
    FILE *f;
    long size;       /* bytes in the current file */
    long long opened; /* monotonic seconds when it was opened */
    long max_bytes, max_age_s, retain_s, retain_bytes;
    unsigned long seq; /* rotations so far: keeps rotated names apart and ordered */
} lx_log_file;

int llmux__log_file_open(lx_log_file *lf, const char *path, long max_bytes, long max_age_s,
                         long retain_s, long retain_bytes, lx_err *err);
/* Append one record (with its newline), rotating first when due. 0 or -1. */
int llmux__log_file_write(lx_log_file *lf, const char *rec, size_t len);
void llmux__log_file_flush(lx_log_file *lf);
void llmux__log_file_close(lx_log_file *lf);

#endif
