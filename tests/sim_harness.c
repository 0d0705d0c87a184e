#include "sim_harness.h"

#include <curl/curl.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/buf.h"

int sim_start(sim *s)
{
    memset(s, 0, sizeof *s);
    /* the simulator is on loopback: never send test traffic through a proxy */
    setenv("no_proxy", "127.0.0.1,localhost", 1);
    setenv("NO_PROXY", "127.0.0.1,localhost", 1);
    const char *bin = getenv("LLMUX_SIM");
    if (!bin || !*bin) {
        fprintf(stderr, "LLMUX_SIM is not set (path of the llmux-sim binary)\n");
        return -1;
    }
    snprintf(s->dir, sizeof s->dir, "/tmp/llmux-test-XXXXXX");
    if (!mkdtemp(s->dir))
        return -1;
    char portfile[128];
    snprintf(portfile, sizeof portfile, "%s/port", s->dir);
    s->pid = fork();
    if (s->pid < 0)
        return -1;
    if (s->pid == 0) {
        execl(bin, bin, "--port", "0", "--port-file", portfile, "--quiet", (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 500; i++) { /* up to 5 s */
        FILE *f = fopen(portfile, "r");
        if (f) {
            int ok = fscanf(f, "%d", &s->port) == 1;
            fclose(f);
            if (ok && s->port > 0) {
                snprintf(s->url, sizeof s->url, "http://127.0.0.1:%d", s->port);
                return 0;
            }
        }
        int st;
        if (waitpid(s->pid, &st, WNOHANG) == s->pid) {
            fprintf(stderr, "llmux-sim exited early\n");
            s->pid = 0;
            return -1;
        }
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    fprintf(stderr, "llmux-sim did not write its port file\n");
    sim_stop(s);
    return -1;
}

void sim_stop(sim *s)
{
    if (s->pid > 0) {
        /* ask politely, then insist: a hung simulator must not hang the test */
        kill(s->pid, SIGTERM);
        int st, i;
        for (i = 0; i < 300 && waitpid(s->pid, &st, WNOHANG) == 0; i++) {
            struct timespec ts = {0, 10 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
        if (i == 300) {
            fprintf(stderr, "llmux-sim ignored SIGTERM for 3 s; killing it\n");
            kill(s->pid, SIGKILL);
            waitpid(s->pid, &st, 0);
        }
        s->pid = 0;
    }
    if (s->dir[0]) {
        char portfile[128];
        snprintf(portfile, sizeof portfile, "%s/port", s->dir);
        unlink(portfile);
        rmdir(s->dir);
        s->dir[0] = '\0';
    }
}

static size_t collect(char *data, size_t size, size_t n, void *user)
{
    return llmux__buf_append(user, data, size * n) ? 0 : size * n;
}

static int control(const sim *s, const char *method, const char *deployment, const char *body,
                   char **out)
{
    CURL *h = curl_easy_init();
    if (!h)
        return -1;
    char url[256];
    snprintf(url, sizeof url, "%s/_sim/deployments/%s", s->url, deployment);
    lx_buf b = LX_BUF_INIT;
    struct curl_slist *hdrs = curl_slist_append(NULL, "Content-Type: application/json");
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    if (body)
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 5000L);
    long code = -1;
    if (curl_easy_perform(h) == CURLE_OK)
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(h);
    if (out)
        *out = llmux__buf_steal(&b);
    else
        llmux__buf_free(&b);
    return (int)code;
}

int sim_set(const sim *s, const char *deployment, const char *settings_json)
{
    return control(s, "PUT", deployment, settings_json, NULL);
}

char *sim_get(const sim *s, const char *deployment)
{
    char *out = NULL;
    if (control(s, "GET", deployment, NULL, &out) != 200) {
        free(out);
        return NULL;
    }
    return out;
}

char *sim_config(const sim *s, const char *const *deployments, const char *models_json,
                 const char *extra_top_level)
{
    lx_buf b = LX_BUF_INIT;
    llmux__buf_puts(&b, "{\"providers\":{");
    for (int i = 0; deployments[i]; i++)
        llmux__buf_printf(&b, "%s\"%s\":{\"type\":\"openai\",\"base_url\":\"%s/%s/v1\"}",
                          i ? "," : "", deployments[i], s->url, deployments[i]);
    llmux__buf_printf(&b, "},\"models\":%s%s%s}", models_json, extra_top_level ? "," : "",
                      extra_top_level ? extra_top_level : "");
    return llmux__buf_steal(&b);
}
