/* gemini.h - the Gemini API family of llmux-sim (generateContent). */
#ifndef LLMUX_SIM_GEMINI_H
#define LLMUX_SIM_GEMINI_H

#include <stddef.h>

#include "sim.h"

/* POST /{deployment}/v1beta/models/{model}:generateContent, or
 * :streamGenerateContent (stream = 1). */
int sim_gemini_handle(sim_conn *c, const sim_request *r, const char *dep, size_t dep_len,
                      const char *model, size_t model_len, int stream);

#endif
