/*
 * An allocation-free JSON syntax check (RFC 8259), strings held to well-formed
 * UTF-8 and paired surrogate escapes. cJSON answers NULL both for bad syntax
 * and for a failed allocation, and accepts what RFC 8259 forbids (control
 * bytes as whitespace, raw control characters in strings, leading zeros,
 * invalid UTF-8): every text that reaches cJSON is checked here first. Gives
 * the exact byte where the text breaks.
 */
#ifndef LLMUX_WIRE_JSON_CHECK_H
#define LLMUX_WIRE_JSON_CHECK_H

#include <stddef.h>

#include "wire/json_members.h"


typedef enum {
    LLMUX_JSON_OK = 0,
    LLMUX_JSON_SYNTAX = -1, /* *err_off is the offending byte */
    LLMUX_JSON_DEPTH = -2,  /* nested deeper than LLMUX_JSON_MAX_DEPTH */
    LLMUX_JSON_UTF8 = -3    /* *err_off starts a byte sequence that is not UTF-8, or a
                               lone surrogate escape */
} lx_json_check_result;

int llmux__json_check(const char *s, size_t len, size_t *err_off);

/* The same check, also recording the top-level members of an object (as
 * llmux__json_members does) in one pass: *n_members is their number, or -1
 * when the document is not an object or has more than max members. */
int llmux__json_check_members(const char *s, size_t len, size_t *err_off, lx_json_member *m,
                              int max, int *n_members);

#endif
