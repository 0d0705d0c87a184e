/* azure.h - Azure OpenAI's routes, auth and answer shapes in llmux-sim
 * (docs/simulator.md, "Azure OpenAI"). */
#ifndef LLMUX_SIM_AZURE_H
#define LLMUX_SIM_AZURE_H

#include <stddef.h>

#include "buf.h"
#include "chat.h"
#include "sim.h"

enum { SIM_AZURE_AUTH_MAX = 8192 };

/* 0 when r is not an Azure route. Otherwise 1 with the simulator deployment
 * in *dep and, in *az, the request as the deployment records it (the path
 * with its query; "api-key: K" as its authorization when the api-key header
 * came, written into auth_buf); or 2 when the route was answered already
 * (a missing or wrong api-version). *keep is the connection's fate then;
 * *dep is set only with 1. */
int sim_azure_route(sim_conn *c, const sim_request *r, sim_request *az, char *auth_buf,
                    const char **dep, size_t *dep_len, int *keep);

/* The Azure shapes of the answers: a chat.completion with
 * prompt_filter_results and content_filter_results, the stream with its
 * prompt-filter chunk (empty choices, empty id and model) and an annotation
 * chunk without a delta, and Azure's error body for a status. */
void sim_azure_render_json(sim_buf *out, sim_buf *scratch, const chat_answer *a);
size_t sim_azure_render_stream(sim_buf *out, sim_buf *scratch, const chat_answer *a, int chunked,
                               size_t *ends, size_t max_events);
void sim_azure_error_body(sim_buf *out, int status);

#endif
