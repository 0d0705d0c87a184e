/*
 * Shared glue for the fuzz targets (docs/fuzzing.md). Each target is one
 * LLVMFuzzerTestOneInput in its own file; built with clang it links libFuzzer,
 * built with any other compiler it links replay_main.c and runs each file
 * named on the command line once.
 */
#ifndef LLMUX_FUZZ_H
#define LLMUX_FUZZ_H

#include <stddef.h>
#include <stdint.h>

struct lx_config;
struct lx_provider_cfg;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The key the fuzzed configs read from the environment; it must never show
 * up in an error, a result or a trace. */
#define FUZZ_KEY "sk-fuzz-SECRET-0123456789abcdef"
#define FUZZ_KEY_ENV "LLMUX_FUZZ_KEY"

/* Print what went wrong and abort, so the fuzzer records the input. */
_Noreturn void fuzz_fail(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;

/* A NUL-terminated malloc'd copy of the input (aborts on out of memory). */
char *fuzz_cstr(const uint8_t *data, size_t size);

/* A config with one OpenAI provider "p" (key FUZZ_KEY) at base_url and the
 * alias "m" -> p/gpt-x; allow_direct on. Aborts if it does not parse. */
struct lx_config *fuzz_config(const char *base_url);

/* Aborts when text (of len bytes) contains FUZZ_KEY, unless the input
 * (data, size) holds the key itself: llmux may quote the caller's own text. */
void fuzz_check_no_key(const char *what, const char *text, size_t len, const uint8_t *data,
                       size_t size);

/* Aborts unless text is one valid JSON value. */
void fuzz_check_json(const char *what, const char *text);

/* A small deterministic generator (xorshift) for fragment sizes. */
typedef struct fuzz_rng {
    uint64_t s;
} fuzz_rng;
void fuzz_rng_seed(fuzz_rng *r, const uint8_t *data, size_t size);
size_t fuzz_rng_below(fuzz_rng *r, size_t n);

struct lx_provider_cfg;
/* Feeds the input to p's stream decoder (and the assembler) whole, one byte at
 * a time and in random fragments seeded by the input; aborts unless every run
 * ends with the same status, the same number of chunks and the same assembled
 * chat.completion ("created" aside), or if an error quotes the key. */
void fuzz_stream_three_ways(const struct lx_provider_cfg *p, const uint8_t *data, size_t size);

#endif
