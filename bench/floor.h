/*
 * floor.h - the benchmark floor: the least a C program can do to get a chat
 * completion from an OpenAI-compatible server with libcurl and cJSON.
 *
 * One reused easy handle per thread (so the connection stays open), the
 * request JSON built with cJSON, POSTed, the response JSON parsed with cJSON
 * and the answer's content pulled out. Whatever llmux costs is measured
 * against this.
 */
#ifndef LLMUX_BENCH_FLOOR_H
#define LLMUX_BENCH_FLOOR_H

#include <stddef.h>

typedef struct floor_client floor_client;

/* One per thread. NULL on out-of-memory. */
floor_client *floor_client_new(void);
void floor_client_free(floor_client *c);

/*
 * POST `body` to `url`. On return the response body is in *resp (borrowed
 * until the next call on c) and the HTTP status in *http_status.
 * Returns 0, or -1 if the transfer itself failed.
 */
int floor_post(floor_client *c, const char *url, const char *body, size_t len, const char **resp,
               size_t *resp_len, long *http_status);

/*
 * One whole floor call: build {"model":model,"messages":[system,user],
 * "max_tokens":64} with cJSON, POST it to url, parse the response with cJSON
 * and copy choices[0].message.content into content (NUL-terminated, cut to
 * cap-1 bytes). For an error answer the error message is parsed instead.
 * Returns the HTTP status (200 on success), or -1 when the transfer failed.
 */
int floor_chat(floor_client *c, const char *url, const char *model, const char *system_text,
               const char *user_text, char *content, size_t cap);

/* Build the same request JSON that floor_chat sends (malloc'd, free()). */
char *floor_build_request(const char *model, const char *system_text, const char *user_text);

/* Pull choices[0].message.content (or error.message) out of a response.
 * Returns 0 if the JSON parsed and had one of the two. */
int floor_parse_response(const char *json, size_t len, char *content, size_t cap);

#endif
