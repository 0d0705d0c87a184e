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

/* The members of the object starting at or after offset i (whitespace
 * skipped); *end is set past its closing brace. Offsets in out are relative
 * to s. -1 as for llmux__json_members. */
int llmux__json_members_at(const char *s, size_t i, size_t len, lx_json_member *out, int max,
                           size_t *end);

#endif
