/*
 * An allocation-free JSON syntax check (RFC 8259). cJSON answers NULL both
 * for bad syntax and for a failed allocation; this tells the two apart, and
 * gives the exact byte where the syntax breaks.
 */
#ifndef LLMUX_WIRE_JSON_CHECK_H
#define LLMUX_WIRE_JSON_CHECK_H

#include <stddef.h>

#define LLMUX_JSON_MAX_DEPTH 1000 /* as cJSON's nesting limit */

typedef enum {
    LLMUX_JSON_OK = 0,
    LLMUX_JSON_SYNTAX = -1, /* *err_off is the offending byte */
    LLMUX_JSON_DEPTH = -2   /* nested deeper than LLMUX_JSON_MAX_DEPTH */
} llmux_json_check_result;

int llmux__json_check(const char *s, size_t len, size_t *err_off);

#endif
