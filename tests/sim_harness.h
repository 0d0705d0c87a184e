/* Start and script the provider simulator from a test. */
#ifndef LLMUX_TESTS_SIM_HARNESS_H
#define LLMUX_TESTS_SIM_HARNESS_H

#include <sys/types.h>

typedef struct sim {
    pid_t pid;
    int port;
    char url[64]; /* http://127.0.0.1:PORT */
    char dir[64];
} sim;

/* Start llmux-sim (path from $LLMUX_SIM) on a free port; 0 on success. */
int sim_start(sim *s);
void sim_stop(sim *s);
/* PUT /_sim/deployments/NAME with a JSON settings body; returns the HTTP status. */
int sim_set(const sim *s, const char *deployment, const char *settings_json);
/* GET /_sim/deployments/NAME; returns a malloc'd body or NULL. */
char *sim_get(const sim *s, const char *deployment);
/* A config JSON with one provider per deployment name (provider name =
 * deployment), and the given models object text. malloc'd. */
char *sim_config(const sim *s, const char *const *deployments, const char *models_json,
                 const char *extra_top_level);

#endif
