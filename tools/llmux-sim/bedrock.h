/* bedrock.h - the AWS Bedrock Converse API of llmux-sim:
 * POST /{deployment}/model/{modelId}/converse and /converse-stream, SigV4
 * verified with a test secret, answers and streams (AWS event-stream framing
 * with CRCs), Bedrock's error shapes on demand (docs/simulator.md). */
#ifndef LLMUX_SIM_BEDROCK_H
#define LLMUX_SIM_BEDROCK_H

#include "sim.h"

/* The secret key the simulator verifies SigV4 signatures with (any access key id). */
#define SIM_BEDROCK_SECRET "llmux-sim-bedrock-secret"

/* 1 when the request's path is a Bedrock Converse path. */
int sim_bedrock_match(const sim_request *r);
/* Answers it; SIM_KEEP or SIM_CLOSE. */
int sim_bedrock_handle(sim_conn *c, const sim_request *r);

#endif
