/*
 * Top-level members of a JSON object text, as byte spans, so an adapter can
 * rewrite one member (the model) and pass every other byte through without
 * re-serialising the document. The text must already be valid JSON (the
 * engine parsed it); anything unexpected makes the scan give up, and callers
 * then fall back to printing their cJSON tree.
 */
#ifndef LLMUX_WIRE_JSON_MEMBERS_H
#define LLMUX_WIRE_JSON_MEMBERS_H

#include <stddef.h>
#include <string.h>

/* The one nesting limit of every JSON scanner here (as cJSON's): the check
 * refuses deeper text, so the member scan never meets it on checked text. */
#define LLMUX_JSON_MAX_DEPTH 1000

typedef struct lx_json_member {
    const char *key; /* points into the text, after the opening quote */
    size_t key_len;  /* raw bytes between the quotes (escapes not decoded) */
    size_t start;    /* offset of the key's opening quote */
    size_t value;    /* offset of the value's first byte */
    size_t end;      /* offset just past the value */
    int key_escaped; /* the key contains a backslash escape */
} lx_json_member;

/* Fills up to max members; returns their number, or -1 when the text is not a
 * JSON object this scanner understands or has more than max members. */
int llmux__json_members(const char *json, size_t len, lx_json_member *out, int max);

/* 1 when the member's key is exactly key (n bytes) and was written without
 * escapes. */
static inline int llmux__json_key_is(const lx_json_member *m, const char *key, size_t n)
{
    return !m->key_escaped && m->key_len == n && memcmp(m->key, key, n) == 0;
}

/* 1 when the member's key, with its escapes decoded ("mod\u0065l"), is
 * exactly key (a NUL-terminated, unescaped string). s is the text the member
 * was scanned from. */
int llmux__json_key_equals(const char *s, const lx_json_member *m, const char *key);

/* Decode the JSON string escape at s[0] ('\\' ...) into out (up to 4 UTF-8
 * bytes); returns the number of escape bytes consumed (0 when invalid) and
 * sets *n_out. */
size_t llmux__json_unescape_one(const char *s, size_t len, char out[4], size_t *n_out);

/* The members of the object starting at or after offset i (whitespace
 * skipped); *end is set past its closing brace. Offsets in out are relative
 * to s. -1 as for llmux__json_members. */
int llmux__json_members_at(const char *s, size_t i, size_t len, lx_json_member *out, int max,
                           size_t *end);

#endif
