/* anthropic.h - the Anthropic Messages API of llmux-sim:
 * POST /{deployment}/v1/messages (docs/simulator.md, "Anthropic"). */
#ifndef LLMUX_SIM_ANTHROPIC_H
#define LLMUX_SIM_ANTHROPIC_H

#include <stddef.h>

#include "sim.h"

/* The path suffix this API family answers on. */
#define ANTHROPIC_SUFFIX "/v1/messages"

/* Answers one Messages request to deployment dep; SIM_KEEP or SIM_CLOSE. */
int sim_anthropic(sim_conn *c, const sim_request *r, const char *dep, size_t dep_len);

#endif
