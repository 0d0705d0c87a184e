/* hostile.h - the "hostile" fault of llmux-sim: a provider that attacks its
 * client (docs/simulator.md, "The hostile provider"). */
#ifndef LLMUX_SIM_HOSTILE_H
#define LLMUX_SIM_HOSTILE_H

#include "faults.h"
#include "sim.h"

/* Answers r as the ticket's hostile kind says; SIM_KEEP or SIM_CLOSE. */
int sim_hostile(sim_conn *c, const sim_request *r, const sim_ticket *t, int wants_stream);

#endif
