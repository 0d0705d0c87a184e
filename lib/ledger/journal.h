/*
 * The ledger's journal (docs/ledger.md): an append-only file of one line per
 * settled call, each "<crc32 as 8 hex digits> <json>\n", the CRC over the JSON
 * bytes. Compaction rewrites it as summary records (calls alike, per UTC day).
 * The journal store wraps the in-memory store: it replays the file on open,
 * then settles every call into memory and appends it to the file.
 */
#ifndef LLMUX_LEDGER_JOURNAL_H
#define LLMUX_LEDGER_JOURNAL_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/error.h"
#include "ledger/store.h"

enum { LX_FSYNC_EVERY_CALL, LX_FSYNC_INTERVAL, LX_FSYNC_NEVER };

/* One journal record: a call (calls = 1) or a summary of calls alike. */
typedef struct lx_jrec {
    int summary;
    int64_t t_ms; /* the call's settle time, ms since the epoch (UTC); a summary: its day's start */
    const char *key, *workflow, *task, *model, *provider; /* NULL = none */
    int ok, estimated;
    const char *team, *alias; /* NULL = none (and in records written before keys had teams) */
    int64_t calls;
    int64_t prompt_tokens, completion_tokens, cached_tokens, cache_write_tokens,
        reasoning_tokens;
    int64_t cost_nusd; /* -1 = unpriced */
} lx_jrec;

#define LX_JREC_NONE -1 /* no time bound */

/* Append r as a journal line (CRC, space, JSON, newline). 0 or -1 (memory). */
int llmux__jrec_line(lx_buf *b, const lx_jrec *r);
/* Check and parse one line (without its '\n', NUL-terminated, modified in place:
 * strings point into it). 0, or -1 when the CRC or the JSON is wrong. */
int llmux__jrec_parse(char *line, size_t len, lx_jrec *r);
/* The CSV header and one row (RFC 4180 quoting). */
int llmux__jrec_csv_header(lx_buf *b);
int llmux__jrec_csv(lx_buf *b, const lx_jrec *r);
/* "YYYY-MM-DD", "YYYY-MM-DDTHH:MM[:SS[.fff...]]Z" (UTC) -> ms since the epoch; -1 if malformed. */
int64_t llmux__utc_parse(const char *s);
/* ms since the epoch -> "YYYY-MM-DDTHH:MM:SS.mmmZ" (25 bytes with the NUL). */
void llmux__utc_format(int64_t ms, char out[32]);

typedef struct lx_journal_options {
    const char *path;
    int fsync;             /* LX_FSYNC_* */
    long fsync_interval_ms;
    int64_t compact_bytes; /* compact past this size */
    long max_rows;
} lx_journal_options;

typedef struct lx_journal lx_journal;

/* Open (create) the journal, take an exclusive lock on it, replay it into a
 * new in-memory store, truncating a torn or corrupt tail (a warning). */
int llmux__journal_open(lx_journal **out, const lx_journal_options *o, lx_err *err);
extern const lx_store_ops llmux__journal_store_ops;
/* Warnings as JSON strings appended to b, each preceded by a comma when
 * *first is 0 (then cleared). */
int llmux__journal_warnings(lx_journal *j, lx_buf *b, int *first);
/* The spend report over records with since <= t < until (LX_JREC_NONE = open). */
int llmux__journal_report(lx_journal *j, const char *group_by, int64_t since, int64_t until,
                          char **out, lx_err *err);
/* The records with since <= t < until as JSON lines ("jsonl") or CSV ("csv"). */
int llmux__journal_export(lx_journal *j, const char *format, int64_t since, int64_t until,
                          char **out, lx_err *err);
/* Every whole record in the journal as it stands, in order, to fn (a
 * non-zero return stops the walk and is returned). */
int llmux__journal_each(lx_journal *j, int (*fn)(void *ctx, const lx_jrec *r), void *ctx,
                        lx_err *err);
/* Rewrite the journal as summary records now (atomically). */
int llmux__journal_compact(lx_journal *j, lx_err *err);

/* For tests and the benchmark: bytes appended, bytes known on disk, fsyncs. */
typedef struct lx_journal_stats {
    int64_t appended, synced, fsyncs, compactions, size;
} lx_journal_stats;
void llmux__journal_stats(lx_journal *j, lx_journal_stats *s);

#endif
