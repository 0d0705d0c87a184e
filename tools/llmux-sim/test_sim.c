/* test_sim.c - tests llmux-sim over real HTTP (libcurl and raw sockets).
 *
 * usage: test_sim PATH-TO-llmux-sim     (or LLMUX_SIM=PATH test_sim)
 * LLMUX_SIM_WRAPPER="valgrind --leak-check=full --error-exitcode=99" runs the
 * simulator under that command; the last test checks that it exits with 0. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <netinet/tcp.h>

#include "http.h"

static const char *sim_path;
static pid_t sim_pid = -1;
static int sim_port;
static char tmpdir[256];
static char port_file[320];
static CURL *shared; /* one handle reused across requests: keep-alive */

/* ------------------------------------------------------------------ helpers */

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

typedef struct resp {
    CURLcode rc;
    long status;
    char *body;
    size_t len;
    char *headers;
    size_t hlen;
    long num_connects;
    double secs;
} resp;

/* Limits for http(), for answers that never end: 0 = none (60 s, unbounded). */
static long http_timeout_ms;
static size_t http_max_bytes;

static size_t grow_cb(char *p, size_t sz, size_t n, void *ud)
{
    char **bufp = ((char ***)ud)[0];
    size_t *lenp = ((size_t **)ud)[1];
    size_t add = sz * n;
    if (http_max_bytes && *lenp + add > http_max_bytes)
        return 0; /* stop the transfer: CURLE_WRITE_ERROR */
    char *nb = realloc(*bufp, *lenp + add + 1);
    if (!nb)
        return 0;
    memcpy(nb + *lenp, p, add);
    *lenp += add;
    nb[*lenp] = '\0';
    *bufp = nb;
    return add;
}

static void resp_free(resp *r)
{
    free(r->body);
    free(r->headers);
    memset(r, 0, sizeof *r);
}

/* One HTTP request. h NULL: a fresh handle (and connection). hdrs: NULL-terminated. */
static resp http(CURL *h, const char *method, const char *path, const char *body, size_t body_len,
                 const char *const *hdrs)
{
    resp r;
    memset(&r, 0, sizeof r);
    int own = h == NULL;
    if (own)
        h = curl_easy_init();
    else
        curl_easy_reset(h);
    char url[1024];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", sim_port, path);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    if (body) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
    } else if (strcmp(method, "GET") == 0) {
        curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    }
    struct curl_slist *sl = NULL;
    if (body)
        sl = curl_slist_append(sl, "Content-Type: application/json");
    for (size_t i = 0; hdrs && hdrs[i]; i++)
        sl = curl_slist_append(sl, hdrs[i]);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, sl);
    void *bctx[2] = {&r.body, &r.len};
    void *hctx[2] = {&r.headers, &r.hlen};
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, grow_cb);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, bctx);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, grow_cb);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, hctx);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 60L);
    if (http_timeout_ms)
        curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, http_timeout_ms);
    double t0 = now_s();
    r.rc = curl_easy_perform(h);
    r.secs = now_s() - t0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r.status);
    curl_easy_getinfo(h, CURLINFO_NUM_CONNECTS, &r.num_connects);
    curl_slist_free_all(sl);
    if (own)
        curl_easy_cleanup(h);
    if (!r.body)
        r.body = calloc(1, 1);
    if (!r.headers)
        r.headers = calloc(1, 1);
    return r;
}

static resp post(const char *path, const char *body)
{
    return http(shared, "POST", path, body, strlen(body), NULL);
}

/* The value of the last response's header `name`, copied to out ("" if absent). */
static const char *header(const resp *r, const char *name, char *out, size_t outlen)
{
    out[0] = '\0';
    size_t nl = strlen(name);
    const char *p = r->headers;
    while (p && *p) {
        const char *eol = strchr(p, '\n');
        size_t ll = eol ? (size_t)(eol - p) : strlen(p);
        if (ll > nl && strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
            const char *v = p + nl + 1;
            while (*v == ' ')
                v++;
            size_t vl = (size_t)(p + ll - v);
            while (vl && (v[vl - 1] == '\r' || v[vl - 1] == ' '))
                vl--;
            snprintf(out, outlen, "%.*s", (int)vl, v);
        }
        p = eol ? eol + 1 : NULL;
    }
    return out;
}

static void put_settings(const char *dep, const char *json, long want_status)
{
    char path[256];
    snprintf(path, sizeof path, "/_sim/deployments/%s", dep);
    resp r = http(shared, "PUT", path, json, strlen(json), NULL);
    assert_int_equal(r.rc, CURLE_OK);
    if (r.status != want_status)
        fprintf(stderr, "PUT %s %s -> %ld %s\n", dep, json, r.status, r.body);
    assert_int_equal(r.status, want_status);
    resp_free(&r);
}

static cJSON *get_state(const char *dep)
{
    char path[256];
    snprintf(path, sizeof path, "/_sim/deployments/%s", dep);
    resp r = http(shared, "GET", path, NULL, 0, NULL);
    assert_int_equal(r.status, 200);
    cJSON *j = cJSON_Parse(r.body);
    assert_non_null(j);
    resp_free(&r);
    return j;
}

static double num(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    assert_true(cJSON_IsNumber(v));
    return v->valuedouble;
}

static const char *str(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    if (!cJSON_IsString(v))
        fprintf(stderr, "field %s is not a string\n", k);
    assert_true(cJSON_IsString(v));
    return v->valuestring;
}

static char *chat_req(const char *text, const char *extra)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "model", "sim-model");
    cJSON *msgs = cJSON_AddArrayToObject(o, "messages");
    cJSON *sys = cJSON_CreateObject();
    cJSON_AddStringToObject(sys, "role", "system");
    cJSON_AddStringToObject(sys, "content", "be brief");
    cJSON_AddItemToArray(msgs, sys);
    cJSON *u = cJSON_CreateObject();
    cJSON_AddStringToObject(u, "role", "user");
    cJSON_AddStringToObject(u, "content", text);
    cJSON_AddItemToArray(msgs, u);
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (extra && *extra) { /* splice extra members: {...,EXTRA} */
        size_t n = strlen(s) + strlen(extra) + 2;
        char *t = malloc(n);
        snprintf(t, n, "%.*s,%s}", (int)strlen(s) - 1, s, extra);
        free(s);
        s = t;
    }
    return s;
}

static resp chat(const char *dep, const char *text, const char *extra)
{
    char path[256];
    snprintf(path, sizeof path, "/%s/v1/chat/completions", dep);
    char *b = chat_req(text, extra);
    resp r = http(shared, "POST", path, b, strlen(b), NULL);
    free(b);
    return r;
}

/* A chat request on a fresh connection, so that libcurl cannot silently retry a
 * request whose reused connection was dropped. */
static resp chat_fresh(const char *dep, const char *text, const char *extra)
{
    char path[256];
    snprintf(path, sizeof path, "/%s/v1/chat/completions", dep);
    char *b = chat_req(text, extra);
    resp r = http(NULL, "POST", path, b, strlen(b), NULL);
    free(b);
    return r;
}

static void expect_ok_answer(const resp *r, const char *content)
{
    assert_int_equal(r->rc, CURLE_OK);
    assert_int_equal(r->status, 200);
    cJSON *j = cJSON_Parse(r->body);
    assert_non_null(j);
    const cJSON *msg =
        cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(j, "choices"), 0), "message");
    assert_string_equal(str(msg, "content"), content);
    cJSON_Delete(j);
}

/* Splits an event stream into the data payloads; returns their count. */
static int sse_events(const char *body, char ev[][4096], int max)
{
    int n = 0;
    const char *p = body;
    while (*p && n < max) {
        const char *end = strstr(p, "\n\n");
        if (!end)
            break;
        assert_true(strncmp(p, "data: ", 6) == 0);
        snprintf(ev[n], 4096, "%.*s", (int)(end - p - 6), p + 6);
        n++;
        p = end + 2;
    }
    return n;
}

static int connect_sim(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)sim_port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    return fd;
}

/* Sends raw bytes, then reads until the server closes (or 10 s pass). */
static size_t raw_exchange(const void *data, size_t len, char *out, size_t cap)
{
    int fd = connect_sim();
    size_t off = 0;
    while (off < len) {
        ssize_t n = send(fd, (const char *)data + off, len - off, MSG_NOSIGNAL);
        if (n <= 0)
            break; /* the server may close early on garbage: fine */
        off += (size_t)n;
    }
    shutdown(fd, SHUT_WR); /* so a server waiting for more bytes sees the end */
    size_t got = 0;
    double end = now_s() + 10;
    while (got + 1 < cap && now_s() < end) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 200) <= 0)
            continue;
        ssize_t n = recv(fd, out + got, cap - 1 - got, 0);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    out[got] = '\0';
    close(fd);
    return got;
}

static int raw_status(const char *resp_text)
{
    int st = 0;
    if (sscanf(resp_text, "HTTP/1.1 %d", &st) != 1)
        return -1;
    return st;
}

static void assert_alive(void)
{
    resp r = chat_fresh("alive", "still there", NULL);
    expect_ok_answer(&r, "[alive] still there");
    resp_free(&r);
}

/* ------------------------------------------------------------ start / stop */

static int start_sim(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/test_sim.XXXXXX");
    if (!mkdtemp(tmpdir))
        return -1;
    snprintf(port_file, sizeof port_file, "%s/port", tmpdir);
    char *argv[32];
    int argc = 0;
    char *wrapper = getenv("LLMUX_SIM_WRAPPER") ? strdup(getenv("LLMUX_SIM_WRAPPER")) : NULL;
    for (char *tok = wrapper ? strtok(wrapper, " ") : NULL; tok && argc < 20; tok = strtok(NULL, " "))
        argv[argc++] = tok;
    argv[argc++] = (char *)sim_path;
    argv[argc++] = "--port";
    argv[argc++] = "0";
    argv[argc++] = "--port-file";
    argv[argc++] = port_file;
    argv[argc++] = "--quiet";
    argv[argc] = NULL;
    sim_pid = fork();
    if (sim_pid < 0)
        return -1;
    if (sim_pid == 0) {
        int dn = open("/dev/null", O_WRONLY);
        if (dn >= 0)
            dup2(dn, 1);
        execvp(argv[0], argv);
        _exit(127);
    }
    free(wrapper);
    double end = now_s() + 60;
    while (now_s() < end) {
        FILE *f = fopen(port_file, "r");
        if (f) {
            int ok = fscanf(f, "%d", &sim_port) == 1;
            fclose(f);
            if (ok && sim_port > 0)
                break;
        }
        int st;
        if (waitpid(sim_pid, &st, WNOHANG) == sim_pid) {
            sim_pid = -1;
            return -1;
        }
        sleep_ms(10);
    }
    if (sim_port <= 0)
        return -1;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    shared = curl_easy_init();
    return shared ? 0 : -1;
}

static int stop_sim(void **state)
{
    (void)state;
    if (sim_pid > 0) {
        kill(sim_pid, SIGKILL);
        waitpid(sim_pid, NULL, 0);
        sim_pid = -1;
    }
    curl_easy_cleanup(shared);
    curl_global_cleanup();
    unlink(port_file);
    rmdir(tmpdir);
    return 0;
}

/* -------------------------------------------------------------------- tests */

static void test_normal_answer(void **state)
{
    (void)state;
    resp r = chat("t-normal", "hello  big world", NULL);
    assert_int_equal(r.rc, CURLE_OK);
    assert_int_equal(r.status, 200);
    char v[256];
    assert_string_equal(header(&r, "Content-Type", v, sizeof v), "application/json");
    assert_int_equal(atol(header(&r, "Content-Length", v, sizeof v)), (long)r.len);
    cJSON *j = cJSON_Parse(r.body);
    assert_non_null(j);
    assert_string_equal(str(j, "id"), "chatcmpl-sim-t-normal-1");
    assert_string_equal(str(j, "object"), "chat.completion");
    assert_string_equal(str(j, "model"), "sim-model");
    double created = num(j, "created");
    assert_true(created > (double)time(NULL) - 60 && created <= (double)time(NULL) + 1);
    const cJSON *c0 = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "choices"), 0);
    assert_non_null(c0);
    assert_string_equal(str(c0, "finish_reason"), "stop");
    const cJSON *msg = cJSON_GetObjectItem(c0, "message");
    assert_string_equal(str(msg, "role"), "assistant");
    assert_string_equal(str(msg, "content"), "[t-normal] hello  big world");
    const cJSON *u = cJSON_GetObjectItem(j, "usage");
    /* "be brief" (8) + "hello  big world" (16) = 24 bytes -> 6 tokens */
    assert_int_equal((long)num(u, "prompt_tokens"), 6);
    assert_int_equal((long)num(u, "completion_tokens"), 4);
    assert_int_equal((long)num(u, "total_tokens"), 10);
    cJSON_Delete(j);
    resp_free(&r);

    /* n counts the deployment's requests; odd byte counts round up */
    r = chat("t-normal", "abc", NULL);
    j = cJSON_Parse(r.body);
    assert_string_equal(str(j, "id"), "chatcmpl-sim-t-normal-2");
    assert_int_equal((long)num(cJSON_GetObjectItem(j, "usage"), "prompt_tokens"), 3); /* 11 bytes */
    cJSON_Delete(j);
    resp_free(&r);

    /* the default deployment, and a query string */
    const char *b = "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}";
    r = post("/v1/chat/completions?api-version=1", b);
    expect_ok_answer(&r, "[default] hi");
    resp_free(&r);

    /* array content: text parts joined by a space; the last user message wins */
    b = "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"first\"},"
        "{\"role\":\"assistant\",\"content\":null},"
        "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"one\"},"
        "{\"type\":\"image_url\",\"image_url\":{\"url\":\"x\"}},{\"type\":\"text\",\"text\":\"two\"}]}]}";
    r = post("/t.arr_1/v1/chat/completions", b);
    expect_ok_answer(&r, "[t.arr_1] one two");
    j = cJSON_Parse(r.body);
    assert_int_equal((long)num(cJSON_GetObjectItem(j, "usage"), "prompt_tokens"), 3); /* 11 bytes */
    cJSON_Delete(j);
    resp_free(&r);

    /* text cut to 200 bytes (on a UTF-8 boundary) */
    char big[1200];
    memset(big, 'x', 1000);
    big[1000] = '\0';
    r = chat("t-cut", big, NULL);
    j = cJSON_Parse(r.body);
    const char *content = str(cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(j, "choices"), 0), "message"), "content");
    assert_int_equal(strlen(content), strlen("[t-cut] ") + 200);
    cJSON_Delete(j);
    resp_free(&r);
    memset(big, 'y', 199);
    strcpy(big + 199, "\xc3\xa9zz"); /* é straddles byte 200 */
    r = chat("t-cut", big, NULL);
    j = cJSON_Parse(r.body);
    content = str(cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(j, "choices"), 0), "message"), "content");
    assert_int_equal(strlen(content), strlen("[t-cut] ") + 199);
    cJSON_Delete(j);
    resp_free(&r);

    /* no user message at all */
    b = "{\"model\":\"m\",\"messages\":[{\"role\":\"system\",\"content\":\"sys\"}]}";
    r = post("/t-nouser/v1/chat/completions", b);
    expect_ok_answer(&r, "[t-nouser] ");
    resp_free(&r);
}

static void expect_400(const char *body, const char *param)
{
    resp r = post("/t-400/v1/chat/completions", body);
    assert_int_equal(r.rc, CURLE_OK);
    if (r.status != 400)
        fprintf(stderr, "body %s -> %ld %s\n", body, r.status, r.body);
    assert_int_equal(r.status, 400);
    cJSON *j = cJSON_Parse(r.body);
    assert_non_null(j);
    const cJSON *e = cJSON_GetObjectItem(j, "error");
    assert_string_equal(str(e, "type"), "invalid_request_error");
    assert_true(strlen(str(e, "message")) > 0);
    const cJSON *p = cJSON_GetObjectItem(e, "param");
    if (param)
        assert_string_equal(str(e, "param"), param);
    else
        assert_true(cJSON_IsNull(p));
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(e, "code")));
    cJSON_Delete(j);
    resp_free(&r);
}

static void test_validation(void **state)
{
    (void)state;
    expect_400("not json", NULL);
    expect_400("", NULL);
    expect_400("[1,2]", NULL);
    expect_400("{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", "model");
    expect_400("{\"model\":7,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", "model");
    expect_400("{\"model\":\"m\"}", "messages");
    expect_400("{\"model\":\"m\",\"messages\":[]}", "messages");
    expect_400("{\"model\":\"m\",\"messages\":{}}", "messages");
    expect_400("{\"model\":\"m\",\"messages\":[{\"content\":\"x\"}]}", "messages");
    expect_400("{\"model\":\"m\",\"messages\":[{\"role\":\"wizard\",\"content\":\"x\"}]}",
               "messages");
    expect_400("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"},7]}",
               "messages");
    expect_400("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
               "\"tool_choice\":\"required\"}",
               "tool_choice");
    /* a deeply nested body does not crash the parser */
    size_t depth = 5000;
    char *deep = malloc(depth * 2 + 1);
    memset(deep, '[', depth);
    memset(deep + depth, ']', depth);
    deep[depth * 2] = '\0';
    expect_400(deep, NULL);
    free(deep);

    /* unknown paths and methods */
    resp r = post("/t-x/v1/embeddings", "{}");
    assert_int_equal(r.status, 404);
    resp_free(&r);
    r = post("/bad name/v1/chat/completions", "{}");
    assert_int_equal(r.rc, CURLE_URL_MALFORMAT == r.rc ? r.rc : CURLE_OK);
    resp_free(&r);
    char longname[200];
    memset(longname, 'a', 65);
    snprintf(longname + 65, sizeof longname - 65, "/v1/chat/completions");
    char path[256];
    snprintf(path, sizeof path, "/%s", longname);
    r = post(path, "{}");
    assert_int_equal(r.status, 404);
    resp_free(&r);
    r = http(shared, "GET", "/t-x/v1/chat/completions", NULL, 0, NULL);
    assert_int_equal(r.status, 405);
    char v[64];
    assert_string_equal(header(&r, "Allow", v, sizeof v), "POST");
    resp_free(&r);
}

static void test_tool_calls(void **state)
{
    (void)state;
    const char *tools = "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"lookup\"}},"
                        "{\"type\":\"function\",\"function\":{\"name\":\"save\"}}]";
    char extra[512];
    snprintf(extra, sizeof extra, "%s,\"tool_choice\":\"required\"", tools);
    resp r = chat("t-tools", "find \"it\"", extra);
    assert_int_equal(r.status, 200);
    cJSON *j = cJSON_Parse(r.body);
    const cJSON *c0 = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "choices"), 0);
    assert_string_equal(str(c0, "finish_reason"), "tool_calls");
    const cJSON *msg = cJSON_GetObjectItem(c0, "message");
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(msg, "content")));
    const cJSON *tc = cJSON_GetArrayItem(cJSON_GetObjectItem(msg, "tool_calls"), 0);
    assert_string_equal(str(tc, "id"), "call_sim_1");
    assert_string_equal(str(tc, "type"), "function");
    const cJSON *fn = cJSON_GetObjectItem(tc, "function");
    assert_string_equal(str(fn, "name"), "lookup");
    cJSON *args = cJSON_Parse(str(fn, "arguments"));
    assert_non_null(args);
    assert_string_equal(str(args, "echo"), "find \"it\"");
    cJSON_Delete(args);
    assert_int_equal((long)num(cJSON_GetObjectItem(j, "usage"), "completion_tokens"), 8);
    cJSON_Delete(j);
    resp_free(&r);

    snprintf(extra, sizeof extra, "%s,\"tool_choice\":{\"type\":\"function\",\"function\":{\"name\":\"save\"}}", tools);
    r = chat("t-tools", "keep", extra);
    j = cJSON_Parse(r.body);
    c0 = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "choices"), 0);
    tc = cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetObjectItem(c0, "message"), "tool_calls"), 0);
    assert_string_equal(str(tc, "id"), "call_sim_2");
    assert_string_equal(str(cJSON_GetObjectItem(tc, "function"), "name"), "save");
    cJSON_Delete(j);
    resp_free(&r);

    /* tools without a forcing tool_choice: a text answer */
    snprintf(extra, sizeof extra, "%s,\"tool_choice\":\"auto\"", tools);
    r = chat("t-tools", "plain", extra);
    expect_ok_answer(&r, "[t-tools] plain");
    resp_free(&r);

    /* a function that is not among the tools */
    snprintf(extra, sizeof extra, "%s,\"tool_choice\":{\"type\":\"function\",\"function\":{\"name\":\"nope\"}}", tools);
    r = chat("t-tools", "x", extra);
    assert_int_equal(r.status, 400);
    resp_free(&r);
}

static void check_stream(const char *dep, const char *text, const char *extra, int usage,
                         const char *want_content, int tool)
{
    resp r = chat(dep, text, extra);
    assert_int_equal(r.rc, CURLE_OK);
    assert_int_equal(r.status, 200);
    char v[128];
    assert_string_equal(header(&r, "Content-Type", v, sizeof v), "text/event-stream");
    assert_string_equal(header(&r, "Transfer-Encoding", v, sizeof v), "chunked");
    static char ev[64][4096];
    int n = sse_events(r.body, ev, 64);
    assert_true(n >= 4);
    assert_string_equal(ev[n - 1], "[DONE]");
    char id[128] = "";
    char content[1024] = "";
    char args[1024] = "";
    int saw_usage = 0, saw_finish = 0;
    for (int i = 0; i < n - 1; i++) {
        cJSON *j = cJSON_Parse(ev[i]);
        assert_non_null(j);
        assert_string_equal(str(j, "object"), "chat.completion.chunk");
        if (i == 0)
            snprintf(id, sizeof id, "%s", str(j, "id"));
        assert_string_equal(str(j, "id"), id);
        const cJSON *choices = cJSON_GetObjectItem(j, "choices");
        if (cJSON_GetArraySize(choices) == 0) {
            const cJSON *u = cJSON_GetObjectItem(j, "usage");
            assert_non_null(u);
            assert_int_equal((long)num(u, "total_tokens"),
                             (long)(num(u, "prompt_tokens") + num(u, "completion_tokens")));
            saw_usage = 1;
            assert_int_equal(i, n - 2);
            cJSON_Delete(j);
            continue;
        }
        const cJSON *c0 = cJSON_GetArrayItem(choices, 0);
        const cJSON *delta = cJSON_GetObjectItem(c0, "delta");
        const cJSON *fr = cJSON_GetObjectItem(c0, "finish_reason");
        if (i == 0) {
            assert_string_equal(str(delta, "role"), "assistant");
            assert_string_equal(str(delta, "content"), "");
        } else if (cJSON_IsString(fr)) {
            assert_string_equal(fr->valuestring, tool ? "tool_calls" : "stop");
            assert_null(delta->child);
            saw_finish = 1;
        } else if (tool) {
            const cJSON *tc = cJSON_GetArrayItem(cJSON_GetObjectItem(delta, "tool_calls"), 0);
            const cJSON *fn = cJSON_GetObjectItem(tc, "function");
            if (i == 1) {
                assert_string_equal(str(tc, "id"), "call_sim_1");
                assert_string_equal(str(fn, "name"), "lookup");
                assert_string_equal(str(fn, "arguments"), "");
            }
            strcat(args, str(fn, "arguments"));
        } else {
            const char *w = str(delta, "content");
            assert_true(strlen(w) > 0);
            /* one word, with the whitespace that follows it */
            size_t k = strcspn(w, " ");
            assert_true(w[k + strspn(w + k, " ")] == '\0');
            strcat(content, w);
        }
        cJSON_Delete(j);
    }
    assert_true(saw_finish);
    assert_int_equal(saw_usage, usage);
    if (tool) {
        cJSON *a = cJSON_Parse(args);
        assert_non_null(a);
        assert_string_equal(str(a, "echo"), text);
        cJSON_Delete(a);
    } else {
        assert_string_equal(content, want_content);
    }
    resp_free(&r);
}

static void test_streaming(void **state)
{
    (void)state;
    check_stream("t-stream", "the quick brown fox", "\"stream\":true", 0,
                 "[t-stream] the quick brown fox", 0);
    check_stream("t-stream", "with usage", "\"stream\":true,\"stream_options\":{\"include_usage\":true}",
                 1, "[t-stream] with usage", 0);
    check_stream("t-stream-tool", "look \"up\" é", "\"stream\":true,\"tools\":[{\"type\":\"function\","
                 "\"function\":{\"name\":\"lookup\"}}],\"tool_choice\":\"required\"",
                 0, NULL, 1);
    /* the connection is still usable after a stream */
    resp r = chat("t-stream", "after", NULL);
    expect_ok_answer(&r, "[t-stream] after");
    assert_int_equal(r.num_connects, 0);
    resp_free(&r);
}

static void test_require_key(void **state)
{
    (void)state;
    put_settings("t-key", "{\"require_key\":\"sk-test-1\"}", 200);
    char *b = chat_req("secret", NULL);
    resp r = http(shared, "POST", "/t-key/v1/chat/completions", b, strlen(b), NULL);
    assert_int_equal(r.status, 401);
    cJSON *j = cJSON_Parse(r.body);
    assert_non_null(cJSON_GetObjectItem(j, "error"));
    cJSON_Delete(j);
    resp_free(&r);
    const char *wrong[] = {"Authorization: Bearer sk-test-2", NULL};
    r = http(shared, "POST", "/t-key/v1/chat/completions", b, strlen(b), wrong);
    assert_int_equal(r.status, 401);
    resp_free(&r);
    const char *right[] = {"Authorization: Bearer sk-test-1", NULL};
    r = http(shared, "POST", "/t-key/v1/chat/completions", b, strlen(b), right);
    expect_ok_answer(&r, "[t-key] secret");
    resp_free(&r);
    free(b);
    j = get_state("t-key");
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(j, "require_key")));
    assert_int_equal((long)num(j, "requests"), 3);
    const cJSON *lr = cJSON_GetObjectItem(j, "last_request");
    assert_string_equal(str(lr, "authorization"), "Bearer sk-test-1");
    assert_string_equal(str(lr, "path"), "/t-key/v1/chat/completions");
    assert_string_equal(str(cJSON_GetObjectItem(lr, "body"), "model"), "sim-model");
    cJSON_Delete(j);
}

static void test_fault_status(void **state)
{
    (void)state;
    put_settings("t-status",
                 "{\"faults\":[{\"type\":\"status\",\"status\":429,\"retry_after\":\"1\"},"
                 "{\"type\":\"status\",\"status\":503,\"retry_after\":2},"
                 "{\"type\":\"status\",\"status\":400,\"body\":{\"error\":{\"message\":\"custom\","
                 "\"type\":\"invalid_request_error\",\"param\":null,\"code\":\"context_length_exceeded\"}}},"
                 "{\"type\":\"status\",\"status\":500}]}",
                 200);
    char v[64];
    resp r = chat("t-status", "a", NULL);
    assert_int_equal(r.status, 429);
    assert_string_equal(header(&r, "Retry-After", v, sizeof v), "1");
    cJSON *j = cJSON_Parse(r.body);
    const cJSON *e = cJSON_GetObjectItem(j, "error");
    assert_string_equal(str(e, "code"), "rate_limit_exceeded");
    cJSON_Delete(j);
    resp_free(&r);
    r = chat("t-status", "a", NULL);
    assert_int_equal(r.status, 503);
    assert_string_equal(header(&r, "Retry-After", v, sizeof v), "2");
    resp_free(&r);
    r = chat("t-status", "a", NULL);
    assert_int_equal(r.status, 400);
    assert_string_equal(header(&r, "Retry-After", v, sizeof v), "");
    j = cJSON_Parse(r.body);
    assert_string_equal(str(cJSON_GetObjectItem(j, "error"), "code"), "context_length_exceeded");
    cJSON_Delete(j);
    resp_free(&r);
    r = chat("t-status", "a", NULL);
    assert_int_equal(r.status, 500);
    j = cJSON_Parse(r.body);
    assert_string_equal(str(cJSON_GetObjectItem(j, "error"), "type"), "server_error");
    cJSON_Delete(j);
    resp_free(&r);
    r = chat("t-status", "fine", NULL);
    expect_ok_answer(&r, "[t-status] fine");
    assert_int_equal(r.num_connects, 0); /* error answers keep the connection */
    resp_free(&r);
    /* a streaming request gets a status fault as a plain JSON error */
    put_settings("t-status", "{\"faults\":[{\"type\":\"status\",\"status\":502}]}", 200);
    r = chat("t-status", "s", "\"stream\":true");
    assert_int_equal(r.status, 502);
    resp_free(&r);
}

static void test_fault_latency(void **state)
{
    (void)state;
    put_settings("t-lat", "{\"faults\":[{\"type\":\"latency\",\"ms\":300}]}", 200);
    resp r = chat("t-lat", "slow", NULL);
    expect_ok_answer(&r, "[t-lat] slow");
    assert_true(r.secs >= 0.29);
    resp_free(&r);
    r = chat("t-lat", "fast", NULL);
    expect_ok_answer(&r, "[t-lat] fast");
    resp_free(&r);
    put_settings("t-lat", "{\"latency_ms\":150}", 200);
    for (int i = 0; i < 2; i++) {
        r = chat("t-lat", "each", NULL);
        expect_ok_answer(&r, "[t-lat] each");
        assert_true(r.secs >= 0.14);
        resp_free(&r);
    }
    cJSON *j = get_state("t-lat");
    assert_int_equal((long)num(j, "latency_ms"), 150);
    cJSON_Delete(j);
}

static void test_fault_drop(void **state)
{
    (void)state;
    put_settings("t-drop", "{\"faults\":[{\"type\":\"drop\"}]}", 200);
    resp r = chat_fresh("t-drop", "x", NULL);
    assert_int_equal(r.rc, CURLE_GOT_NOTHING);
    resp_free(&r);
    r = chat_fresh("t-drop", "after", NULL);
    expect_ok_answer(&r, "[t-drop] after");
    resp_free(&r);
    cJSON *j = get_state("t-drop");
    assert_int_equal((long)num(j, "requests"), 2);
    assert_int_equal((long)num(j, "faults_applied"), 1);
    cJSON_Delete(j);
}

static void test_fault_drop_mid_body(void **state)
{
    (void)state;
    put_settings("t-dmb", "{\"faults\":[{\"type\":\"drop_mid_body\"}]}", 200);
    resp r = chat_fresh("t-dmb", "cut me off please", NULL);
    assert_int_equal(r.rc, CURLE_PARTIAL_FILE);
    assert_int_equal(r.status, 200);
    char v[64];
    long cl = atol(header(&r, "Content-Length", v, sizeof v));
    assert_true(cl > 0);
    assert_int_equal((long)r.len, cl / 2);
    assert_null(cJSON_Parse(r.body));
    resp_free(&r);
    r = chat_fresh("t-dmb", "whole", NULL);
    expect_ok_answer(&r, "[t-dmb] whole");
    resp_free(&r);
}

static void test_fault_malformed(void **state)
{
    (void)state;
    put_settings("t-mal", "{\"faults\":[{\"type\":\"malformed\"}]}", 200);
    resp r = chat("t-mal", "x", NULL);
    assert_int_equal(r.rc, CURLE_OK);
    assert_int_equal(r.status, 200);
    char v[64];
    assert_string_equal(header(&r, "Content-Type", v, sizeof v), "application/json");
    assert_true(strncmp(r.body, "{\"id\": \"chatcmpl-broken\"", 24) == 0);
    cJSON *j = cJSON_Parse(r.body);
    assert_null(j);
    resp_free(&r);
    r = chat("t-mal", "ok", NULL);
    expect_ok_answer(&r, "[t-mal] ok");
    assert_int_equal(r.num_connects, 0);
    resp_free(&r);
}

static void test_fault_stream_drop(void **state)
{
    (void)state;
    put_settings("t-sdrop", "{\"faults\":[{\"type\":\"stream_drop\"}]}", 200);
    resp r = chat_fresh("t-sdrop", "one two three four five", "\"stream\":true");
    assert_int_not_equal(r.rc, CURLE_OK);
    assert_int_equal(r.status, 200);
    static char ev[16][4096];
    int n = sse_events(r.body, ev, 16);
    assert_int_equal(n, 2);
    assert_null(strstr(r.body, "[DONE]"));
    cJSON *j = cJSON_Parse(ev[1]);
    assert_non_null(j);
    cJSON_Delete(j);
    resp_free(&r);
    check_stream("t-sdrop", "complete now", "\"stream\":true", 0, "[t-sdrop] complete now", 0);
}

static void test_fault_slow_stream(void **state)
{
    (void)state;
    put_settings("t-slow", "{\"faults\":[{\"type\":\"slow_stream\",\"ms\":50}]}", 200);
    resp r = chat("t-slow", "a b c d", "\"stream\":true");
    assert_int_equal(r.rc, CURLE_OK);
    static char ev[16][4096];
    int n = sse_events(r.body, ev, 16);
    /* role, 5 words, finish, [DONE]: 8 events, 7 pauses */
    assert_int_equal(n, 8);
    assert_string_equal(ev[n - 1], "[DONE]");
    assert_true(r.secs >= 0.049 * (n - 1));
    resp_free(&r);
    r = chat("t-slow", "a b c d", "\"stream\":true");
    assert_true(r.secs < 0.3);
    resp_free(&r);
}

/* ------------------------------------------------------------ hostile faults */

static resp chat_key(const char *dep, const char *extra, const char *auth)
{
    char path[256];
    snprintf(path, sizeof path, "/%s/v1/chat/completions", dep);
    char *b = chat_req("hostile", extra);
    const char *hdrs[] = {auth, NULL};
    resp r = http(NULL, "POST", path, b, strlen(b), auth ? hdrs : NULL);
    free(b);
    return r;
}

#define HOSTILE(kind, rest) "{\"faults\":[{\"type\":\"hostile\",\"kind\":\"" kind "\"" rest "}]}"
#define STREAM "\"stream\":true"
#define H_ID "\"id\":\"chatcmpl-sim-hostile\","
#define H_MODEL "\"model\":\"sim-hostile\","
#define H_JSON(content, usage)                                                                 \
    "{" H_ID "\"object\":\"chat.completion\",\"created\":0," H_MODEL                           \
    "\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"" content       \
    "\"},\"finish_reason\":\"stop\"}],\"usage\":" usage "}"
#define H_STREAM(content, usage)                                                               \
    "data: {" H_ID "\"object\":\"chat.completion.chunk\",\"created\":0," H_MODEL               \
    "\"choices\":[{\"index\":0,\"delta\":{\"content\":\"" content                              \
    "\"},\"finish_reason\":null}]}\n\n"                                                        \
    "data: {" H_ID "\"object\":\"chat.completion.chunk\",\"created\":0," H_MODEL               \
    "\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n"                 \
    "data: {" H_ID "\"object\":\"chat.completion.chunk\",\"created\":0," H_MODEL               \
    "\"choices\":[],\"usage\":" usage "}\n\ndata: [DONE]\n\n"
#define H_USAGE "{\"prompt_tokens\":3,\"completion_tokens\":2,\"total_tokens\":5}"
#define H_ABSURD "{\"prompt_tokens\":1e999,\"completion_tokens\":1e19,\"total_tokens\":-5}"
#define H_BAD_UTF8 "bad \xff\xfe overlong \xc0\x80 surrogate \xed\xa0\x80 cut \xe2\x82"

static void expect_body(const char *dep, const char *extra, CURLcode rc, long status,
                        const char *ctype, const char *body)
{
    resp r = chat_key(dep, extra, NULL);
    assert_int_equal(r.rc, rc);
    assert_int_equal(r.status, status);
    char v[128];
    if (ctype)
        assert_string_equal(header(&r, "Content-Type", v, sizeof v), ctype);
    assert_int_equal(r.len, strlen(body));
    assert_memory_equal(r.body, body, r.len);
    resp_free(&r);
}

static void test_hostile_content(void **state)
{
    (void)state;
    /* usage numbers no integer type holds, in the answer and in the stream */
    put_settings("h-usage", HOSTILE("absurd_usage", ",\"count\":2"), 200);
    expect_body("h-usage", NULL, CURLE_OK, 200, "application/json", H_JSON("absurd", H_ABSURD));
    expect_body("h-usage", STREAM, CURLE_OK, 200, "text/event-stream",
                H_STREAM("absurd", H_ABSURD));
    /* raw invalid UTF-8 in the content */
    put_settings("h-utf8", HOSTILE("invalid_utf8", ",\"count\":2"), 200);
    expect_body("h-utf8", NULL, CURLE_OK, 200, NULL, H_JSON(H_BAD_UTF8, H_USAGE));
    expect_body("h-utf8", STREAM, CURLE_OK, 200, NULL, H_STREAM(H_BAD_UTF8, H_USAGE));
    /* arrays nested `depth` deep, as a body and as an event */
    put_settings("h-deep", HOSTILE("deep_json", ",\"depth\":5,\"count\":2"), 200);
    expect_body("h-deep", NULL, CURLE_OK, 200, NULL, "{\"choices\":[[[[[]]]]]}");
    expect_body("h-deep", STREAM, CURLE_OK, 200, NULL,
                "data: {\"choices\":[[[[[]]]]]}\n\ndata: [DONE]\n\n");
    /* 200 carrying an error object */
    put_settings("h-e200", HOSTILE("error_200", ",\"count\":2"), 200);
#define H_ERR                                                                                  \
    "{\"error\":{\"message\":\"The server had an error (simulated, with status 200)\","         \
    "\"type\":\"server_error\",\"param\":null,\"code\":null}}"
    expect_body("h-e200", NULL, CURLE_OK, 200, "application/json", H_ERR);
    expect_body("h-e200", STREAM, CURLE_OK, 200, "text/event-stream",
                "data: " H_ERR "\n\ndata: [DONE]\n\n");
    /* a stream request answered with plain JSON; a plain request is answered alike */
    put_settings("h-plain", HOSTILE("json_for_stream", ",\"count\":2"), 200);
    expect_body("h-plain", STREAM, CURLE_OK, 200, "application/json",
                H_JSON("plain json", H_USAGE));
    expect_body("h-plain", NULL, CURLE_OK, 200, "application/json",
                H_JSON("plain json", H_USAGE));
    /* Retry-After values no integer type holds, with the status fault */
    put_settings("h-retry", "{\"faults\":[{\"type\":\"status\",\"status\":429,\"retry_after\":"
                            "\"99999999999999999999\"},{\"type\":\"status\",\"status\":503,"
                            "\"retry_after\":\"1e999\"}]}",
                 200);
    const char *want[] = {"99999999999999999999", "1e999"};
    for (int i = 0; i < 2; i++) {
        resp r = chat_key("h-retry", NULL, NULL);
        char v[64];
        assert_string_equal(header(&r, "Retry-After", v, sizeof v), want[i]);
        resp_free(&r);
    }
    assert_alive();
}

static void test_hostile_echo_key(void **state)
{
    (void)state;
    put_settings("h-key", HOSTILE("echo_key", ",\"offset\":3,\"count\":2"), 200);
    resp r = chat_key("h-key", NULL, "Authorization: Bearer sk-echo-SECRET-1");
    assert_int_equal(r.status, 401);
    assert_string_equal(r.body, "{\"error\":{\"message\":\"xxxsk-echo-SECRET-1 is not a valid "
                                "API key.\",\"type\":\"invalid_request_error\",\"param\":null,"
                                "\"code\":\"invalid_api_key\"}}");
    resp_free(&r);
    r = chat_key("h-key", NULL, NULL); /* no key: nothing to echo */
    assert_string_equal(r.body, "{\"error\":{\"message\":\"xxx is not a valid API key.\","
                                "\"type\":\"invalid_request_error\",\"param\":null,"
                                "\"code\":\"invalid_api_key\"}}");
    resp_free(&r);
    /* the key straddling llmux's 512-byte message cap, with a 500 */
    put_settings("h-key", HOSTILE("echo_key", ",\"offset\":500,\"status\":500"), 200);
    r = chat_key("h-key", NULL, "Authorization: Bearer sk-echo-SECRET-2");
    assert_int_equal(r.status, 500);
    const char *m = strstr(r.body, "sk-echo-SECRET-2");
    assert_non_null(m);
    assert_int_equal(m - strstr(r.body, "xxx"), 500);
    resp_free(&r);
    cJSON *st = get_state("h-key");
    assert_int_equal((int)num(st, "faults_applied"), 1);
    cJSON_Delete(st);
}

static void test_hostile_transfer(void **state)
{
    (void)state;
    /* huge_body: exactly `bytes` bytes of valid JSON */
    put_settings("h-huge", HOSTILE("huge_body", ",\"bytes\":300000,\"count\":2"), 200);
    resp r = chat_key("h-huge", NULL, NULL);
    assert_int_equal(r.rc, CURLE_OK);
    assert_int_equal(r.len, 300000);
    cJSON *j = cJSON_Parse(r.body);
    assert_non_null(j);
    cJSON_Delete(j);
    resp_free(&r);
    r = chat_key("h-huge", STREAM, NULL);
    assert_int_equal(r.len, 300000);
    static char ev[8][4096];
    assert_int_equal(sse_events(r.body, ev, 8), 4); /* the huge one is cut, but counted */
    assert_non_null(strstr(r.body, "data: [DONE]\n\n"));
    resp_free(&r);

    /* endless_body: still sending after 256 KiB (the client stops there) */
    put_settings("h-endless", HOSTILE("endless_body", ",\"count\":2"), 200);
    http_max_bytes = 256u << 10;
    r = chat_key("h-endless", NULL, NULL);
    assert_int_equal(r.rc, CURLE_WRITE_ERROR);
    assert_true(strncmp(r.body, "{" H_ID, 27) == 0);
    resp_free(&r);
    r = chat_key("h-endless", STREAM, NULL);
    assert_int_equal(r.rc, CURLE_WRITE_ERROR);
    assert_null(strstr(r.body, "[DONE]"));
    resp_free(&r);
    http_max_bytes = 0;

    /* drip: the whole answer, a byte every ms */
    put_settings("h-drip", HOSTILE("drip", ",\"ms\":1"), 200);
    r = chat_key("h-drip", NULL, NULL);
    assert_int_equal(r.rc, CURLE_OK);
    assert_string_equal(r.body, H_JSON("drip", H_USAGE));
    assert_true(r.secs >= 0.001 * (double)(r.len - 1));
    resp_free(&r);

    /* bad_chunked: half the answer in a good chunk, then a size line that is not hex */
    put_settings("h-chunk", HOSTILE("bad_chunked", ""), 200);
    r = chat_key("h-chunk", NULL, NULL);
    assert_int_equal(r.rc, CURLE_RECV_ERROR);
    assert_int_equal(r.len, strlen(H_JSON("chunk", H_USAGE)) / 2);
    assert_memory_equal(r.body, H_JSON("chunk", H_USAGE), r.len);
    resp_free(&r);

    /* done_hang: data: [DONE], then the connection stays open */
    put_settings("h-hang", HOSTILE("done_hang", ""), 200);
    http_timeout_ms = 700;
    r = chat_key("h-hang", STREAM, NULL);
    http_timeout_ms = 0;
    assert_int_equal(r.rc, CURLE_OPERATION_TIMEDOUT);
    assert_string_equal(r.body, H_STREAM("hang", H_USAGE));
    resp_free(&r);
    assert_alive();
}

static void test_hostile_settings(void **state)
{
    (void)state;
    static const struct {
        const char *json, *param;
    } bad[] = {
        {HOSTILE("nope", ""), "faults[0].kind"},
        {"{\"faults\":[{\"type\":\"hostile\"}]}", "faults[0].kind"},
        {HOSTILE("drip", ",\"bytes\":3"), "faults[0].bytes"},
        {HOSTILE("huge_body", ",\"bytes\":0"), "faults[0].bytes"},
        {HOSTILE("deep_json", ",\"depth\":1073741825"), "faults[0].depth"},
        {HOSTILE("echo_key", ",\"offset\":65537"), "faults[0].offset"},
        {HOSTILE("echo_key", ",\"status\":99"), "faults[0].status"},
        {HOSTILE("absurd_usage", ",\"ms\":1"), "faults[0].ms"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        resp r = http(shared, "PUT", "/_sim/deployments/h-set", bad[i].json, strlen(bad[i].json),
                      NULL);
        assert_int_equal(r.status, 400);
        cJSON *j = cJSON_Parse(r.body);
        assert_string_equal(str(cJSON_GetObjectItemCaseSensitive(j, "error"), "param"),
                            bad[i].param);
        cJSON_Delete(j);
        resp_free(&r);
    }
    put_settings("h-set", "{\"faults\":[{\"type\":\"hostile\",\"kind\":\"huge_body\"},"
                          "{\"type\":\"hostile\",\"kind\":\"drip\",\"count\":-1}]}",
                 200);
    cJSON *st = get_state("h-set");
    char *s = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(st, "faults_left"));
    assert_string_equal(s, "[{\"type\":\"hostile\",\"kind\":\"huge_body\",\"bytes\":41943040,"
                           "\"count\":1},{\"type\":\"hostile\",\"kind\":\"drip\",\"ms\":1,"
                           "\"count\":-1}]");
    free(s);
    cJSON_Delete(st);
}

static void test_fault_cross(void **state)
{
    (void)state;
    static char ev[16][4096];
    /* a key failure takes no fault */
    put_settings("t-cross", "{\"require_key\":\"k1\",\"faults\":[{\"type\":\"status\",\"status\":429}]}",
                 200);
    char *b = chat_req("x", NULL);
    resp r = http(shared, "POST", "/t-cross/v1/chat/completions", b, strlen(b), NULL);
    assert_int_equal(r.status, 401);
    resp_free(&r);
    const char *key[] = {"Authorization: Bearer k1", NULL};
    r = http(shared, "POST", "/t-cross/v1/chat/completions", b, strlen(b), key);
    assert_int_equal(r.status, 429);
    resp_free(&r);
    free(b);

    /* faults come before validation */
    put_settings("t-cross", "{\"faults\":[{\"type\":\"status\",\"status\":503}]}", 200);
    r = post("/t-cross/v1/chat/completions", "not json");
    assert_int_equal(r.status, 503);
    resp_free(&r);

    /* malformed on a stream: one broken event, then [DONE] */
    put_settings("t-cross", "{\"faults\":[{\"type\":\"malformed\"}]}", 200);
    r = chat("t-cross", "x", "\"stream\":true");
    assert_int_equal(r.rc, CURLE_OK);
    assert_int_equal(r.status, 200);
    int n = sse_events(r.body, ev, 16);
    assert_int_equal(n, 2);
    assert_null(cJSON_Parse(ev[0]));
    assert_string_equal(ev[1], "[DONE]");
    resp_free(&r);

    /* drop_mid_body on a stream acts as stream_drop */
    put_settings("t-cross", "{\"faults\":[{\"type\":\"drop_mid_body\"}]}", 200);
    r = chat_fresh("t-cross", "a b c", "\"stream\":true");
    assert_int_not_equal(r.rc, CURLE_OK);
    assert_int_equal(sse_events(r.body, ev, 16), 2);
    resp_free(&r);

    /* stream_drop on a plain request acts as drop_mid_body */
    put_settings("t-cross", "{\"faults\":[{\"type\":\"stream_drop\"}]}", 200);
    r = chat_fresh("t-cross", "a b c", NULL);
    assert_int_equal(r.rc, CURLE_PARTIAL_FILE);
    resp_free(&r);

    /* slow_stream on a plain request acts as latency */
    put_settings("t-cross", "{\"faults\":[{\"type\":\"slow_stream\",\"ms\":200}]}", 200);
    r = chat("t-cross", "late", NULL);
    expect_ok_answer(&r, "[t-cross] late");
    assert_true(r.secs >= 0.19);
    resp_free(&r);

    /* an HTTP/1.0 client gets the stream unchunked, then the connection closes */
    static char out[65536];
    const char *body = "{\"model\":\"m\",\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"old\"}]}";
    char req[512];
    int len = snprintf(req, sizeof req,
                       "POST /t-cross/v1/chat/completions HTTP/1.0\r\nContent-Length: %zu\r\n\r\n%s",
                       strlen(body), body);
    raw_exchange(req, (size_t)len, out, sizeof out);
    assert_int_equal(raw_status(out), 200);
    assert_null(strstr(out, "Transfer-Encoding"));
    char *bodystart = strstr(out, "\r\n\r\n");
    assert_non_null(bodystart);
    n = sse_events(bodystart + 4, ev, 16);
    assert_int_equal(n, 5); /* role, "[t-cross] ", "old", finish, [DONE] */
    assert_string_equal(ev[4], "[DONE]");
}

static void test_count_semantics(void **state)
{
    (void)state;
    put_settings("t-count", "{\"faults\":[{\"type\":\"status\",\"status\":500,\"count\":2},"
                            "{\"type\":\"status\",\"status\":429}]}",
                 200);
    cJSON *j = get_state("t-count");
    const cJSON *left = cJSON_GetObjectItem(j, "faults_left");
    assert_int_equal(cJSON_GetArraySize(left), 2);
    assert_int_equal((long)num(cJSON_GetArrayItem(left, 0), "count"), 2);
    cJSON_Delete(j);
    long want[] = {500, 500, 429, 200, 200};
    for (int i = 0; i < 5; i++) {
        resp r = chat("t-count", "c", NULL);
        assert_int_equal(r.status, want[i]);
        resp_free(&r);
        if (i == 0) {
            j = get_state("t-count");
            left = cJSON_GetObjectItem(j, "faults_left");
            assert_int_equal(cJSON_GetArraySize(left), 2);
            assert_int_equal((long)num(cJSON_GetArrayItem(left, 0), "count"), 1);
            assert_int_equal((long)num(j, "faults_applied"), 1);
            cJSON_Delete(j);
        }
    }
    j = get_state("t-count");
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(j, "faults_left")), 0);
    assert_int_equal((long)num(j, "faults_applied"), 3);
    assert_int_equal((long)num(j, "requests"), 5);
    cJSON_Delete(j);

    /* count 1 is the default; -1 is forever and hides later faults */
    put_settings("t-count", "{\"faults\":[{\"type\":\"status\",\"status\":503},"
                            "{\"type\":\"status\",\"status\":500,\"count\":-1},"
                            "{\"type\":\"status\",\"status\":429}]}",
                 200);
    resp r = chat("t-count", "c", NULL);
    assert_int_equal(r.status, 503);
    resp_free(&r);
    for (int i = 0; i < 5; i++) {
        r = chat("t-count", "c", NULL);
        assert_int_equal(r.status, 500);
        resp_free(&r);
    }
    j = get_state("t-count");
    left = cJSON_GetObjectItem(j, "faults_left");
    assert_int_equal(cJSON_GetArraySize(left), 2);
    assert_int_equal((long)num(cJSON_GetArrayItem(left, 0), "count"), -1);
    cJSON_Delete(j);
    /* PUT resets the counters */
    put_settings("t-count", "{}", 200);
    j = get_state("t-count");
    assert_int_equal((long)num(j, "requests"), 0);
    assert_int_equal((long)num(j, "faults_applied"), 0);
    cJSON_Delete(j);
    r = chat("t-count", "c", NULL);
    j = cJSON_Parse(r.body);
    assert_string_equal(str(j, "id"), "chatcmpl-sim-t-count-1");
    cJSON_Delete(j);
    resp_free(&r);
}

static void test_control_api(void **state)
{
    (void)state;
    const char *settings = "{\"latency_ms\":0,\"faults\":[{\"type\":\"drop\",\"count\":3}]}";
    resp r = http(shared, "PUT", "/_sim/deployments/t-ctl", settings, strlen(settings), NULL);
    assert_int_equal(r.status, 200);
    cJSON *j = cJSON_Parse(r.body);
    assert_string_equal(str(j, "name"), "t-ctl");
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(j, "faults_left")), 1);
    assert_true(cJSON_IsFalse(cJSON_GetObjectItem(j, "require_key")));
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(j, "last_request")));
    cJSON_Delete(j);
    resp_free(&r);

    /* DELETE forgets: back to defaults */
    r = http(shared, "DELETE", "/_sim/deployments/t-ctl", NULL, 0, NULL);
    assert_int_equal(r.status, 200);
    resp_free(&r);
    j = get_state("t-ctl");
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(j, "faults_left")), 0);
    cJSON_Delete(j);
    r = chat("t-ctl", "back", NULL);
    expect_ok_answer(&r, "[t-ctl] back");
    resp_free(&r);

    /* reset forgets every deployment */
    put_settings("t-ctl", "{\"faults\":[{\"type\":\"status\",\"status\":500,\"count\":-1}]}", 200);
    put_settings("t-ctl2", "{\"faults\":[{\"type\":\"status\",\"status\":500,\"count\":-1}]}", 200);
    r = http(shared, "POST", "/_sim/reset", "", 0, NULL);
    assert_int_equal(r.status, 200);
    resp_free(&r);
    r = chat("t-ctl", "a", NULL);
    expect_ok_answer(&r, "[t-ctl] a");
    resp_free(&r);
    r = chat("t-ctl2", "b", NULL);
    expect_ok_answer(&r, "[t-ctl2] b");
    resp_free(&r);

    /* bad settings: 400 naming the field, and the old settings stay */
    put_settings("t-ctl", "{\"faults\":[{\"type\":\"status\",\"status\":500}]}", 200);
    static const struct {
        const char *json, *param;
    } bad[] = {
        {"not json", NULL},
        {"[]", "settings"},
        {"{\"latency\":5}", "latency"},
        {"{\"latency_ms\":-1}", "latency_ms"},
        {"{\"latency_ms\":1.5}", "latency_ms"},
        {"{\"require_key\":5}", "require_key"},
        {"{\"faults\":{}}", "faults"},
        {"{\"faults\":[5]}", "faults[0]"},
        {"{\"faults\":[{}]}", "faults[0].type"},
        {"{\"faults\":[{\"type\":\"explode\"}]}", "faults[0].type"},
        {"{\"faults\":[{\"type\":\"drop\"},{\"type\":\"status\"}]}", "faults[1].status"},
        {"{\"faults\":[{\"type\":\"status\",\"status\":99}]}", "faults[0].status"},
        {"{\"faults\":[{\"type\":\"status\",\"status\":429,\"retry_after\":[]}]}",
         "faults[0].retry_after"},
        {"{\"faults\":[{\"type\":\"status\",\"status\":429,\"retry_after\":\"1\\r\\nX: y\"}]}",
         "faults[0].retry_after"},
        {"{\"faults\":[{\"type\":\"drop\",\"count\":0}]}", "faults[0].count"},
        {"{\"faults\":[{\"type\":\"drop\",\"count\":-2}]}", "faults[0].count"},
        {"{\"faults\":[{\"type\":\"drop\",\"count\":\"1\"}]}", "faults[0].count"},
        {"{\"faults\":[{\"type\":\"drop\",\"ms\":5}]}", "faults[0].ms"},
        {"{\"faults\":[{\"type\":\"latency\"}]}", "faults[0].ms"},
        {"{\"faults\":[{\"type\":\"slow_stream\",\"ms\":-5}]}", "faults[0].ms"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        r = http(shared, "PUT", "/_sim/deployments/t-ctl", bad[i].json, strlen(bad[i].json), NULL);
        if (r.status != 400)
            fprintf(stderr, "settings %s -> %ld\n", bad[i].json, r.status);
        assert_int_equal(r.status, 400);
        j = cJSON_Parse(r.body);
        const cJSON *e = cJSON_GetObjectItem(j, "error");
        assert_non_null(e);
        if (bad[i].param) {
            assert_string_equal(str(e, "param"), bad[i].param);
            assert_non_null(strstr(str(e, "message"), bad[i].param));
        }
        cJSON_Delete(j);
        resp_free(&r);
    }
    r = chat("t-ctl", "a", NULL);
    assert_int_equal(r.status, 500);
    resp_free(&r);

    /* names, methods, paths */
    r = http(shared, "GET", "/_sim/deployments/bad!name", NULL, 0, NULL);
    assert_int_equal(r.status, 400);
    resp_free(&r);
    r = http(shared, "POST", "/_sim/deployments/t-ctl", "{}", 2, NULL);
    assert_int_equal(r.status, 405);
    resp_free(&r);
    r = http(shared, "GET", "/_sim/reset", NULL, 0, NULL);
    assert_int_equal(r.status, 405);
    resp_free(&r);
    r = http(shared, "GET", "/_sim/nothing", NULL, 0, NULL);
    assert_int_equal(r.status, 404);
    resp_free(&r);
    /* an empty PUT body means defaults */
    r = http(shared, "PUT", "/_sim/deployments/t-ctl", "", 0, NULL);
    assert_int_equal(r.status, 200);
    resp_free(&r);
    r = chat("t-ctl", "a", NULL);
    assert_int_equal(r.status, 200);
    resp_free(&r);
}

static void test_keep_alive(void **state)
{
    (void)state;
    CURL *h = curl_easy_init();
    char *b = chat_req("ka", NULL);
    for (int i = 0; i < 5; i++) {
        resp r = http(h, "POST", "/t-ka/v1/chat/completions", b, strlen(b), NULL);
        expect_ok_answer(&r, "[t-ka] ka");
        assert_int_equal(r.num_connects, i == 0 ? 1 : 0);
        resp_free(&r);
    }
    const char *closeh[] = {"Connection: close", NULL};
    resp r = http(h, "POST", "/t-ka/v1/chat/completions", b, strlen(b), closeh);
    expect_ok_answer(&r, "[t-ka] ka");
    assert_int_equal(r.num_connects, 0);
    char v[64];
    assert_string_equal(header(&r, "Connection", v, sizeof v), "close");
    resp_free(&r);
    r = http(h, "POST", "/t-ka/v1/chat/completions", b, strlen(b), NULL);
    expect_ok_answer(&r, "[t-ka] ka");
    assert_int_equal(r.num_connects, 1);
    resp_free(&r);
    free(b);
    curl_easy_cleanup(h);
}

static void test_http_framing(void **state)
{
    (void)state;
    static char out[65536];
    const char *body = "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"chunky\"}]}";
    char req[2048];
    /* a chunked request body, split in odd places, with an extension and a trailer */
    size_t bl = strlen(body);
    int n = snprintf(req, sizeof req,
                     "POST /t-raw/v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
                     "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
                     "%zx;ext=1\r\n%.*s\r\n%zx\r\n%s\r\n0\r\nX-Trailer: t\r\n\r\n",
                     (size_t)10, 10, body, bl - 10, body + 10);
    raw_exchange(req, (size_t)n, out, sizeof out);
    assert_int_equal(raw_status(out), 200);
    assert_non_null(strstr(out, "[t-raw] chunky"));
    assert_non_null(strstr(out, "Connection: close"));

    /* two pipelined requests in one write; then HTTP/1.0 */
    n = snprintf(req, sizeof req,
                 "POST /t-raw/v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: %zu\r\n\r\n%s"
                 "POST /t-raw/v1/chat/completions HTTP/1.0\r\nContent-Length: %zu\r\n\r\n%s",
                 bl, body, bl, body);
    raw_exchange(req, (size_t)n, out, sizeof out);
    char *second = strstr(out + 1, "HTTP/1.1 200");
    assert_int_equal(raw_status(out), 200);
    assert_non_null(second);
    assert_non_null(strstr(second, "Connection: close"));

    /* Expect: 100-continue from libcurl with a large body */
    size_t big = 300 * 1024;
    char *text = malloc(big + 1);
    memset(text, 'z', big);
    text[big] = '\0';
    char *b = chat_req(text, NULL);
    const char *expect[] = {"Expect: 100-continue", NULL};
    resp r = http(shared, "POST", "/t-expect/v1/chat/completions", b, strlen(b), expect);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.headers, "100 Continue"));
    resp_free(&r);
    free(b);
    free(text);

    /* a chunked request body from libcurl itself */
    CURL *h = curl_easy_init();
    struct curl_slist *sl = curl_slist_append(NULL, "Transfer-Encoding: chunked");
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/t-expect/v1/chat/completions", sim_port);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, sl);
    char *rb = NULL;
    size_t rl = 0;
    void *ctx[2] = {&rb, &rl};
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, grow_cb);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, ctx);
    assert_int_equal(curl_easy_perform(h), CURLE_OK);
    long st = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &st);
    assert_int_equal(st, 200);
    assert_non_null(strstr(rb, "[t-expect] chunky"));
    free(rb);
    curl_slist_free_all(sl);
    curl_easy_cleanup(h);

    /* a body of 8 MiB + 1 is refused with 413 */
    size_t over = 8 * 1024 * 1024 + 1;
    char *huge = malloc(over);
    memset(huge, ' ', over);
    r = http(NULL, "POST", "/t-big/v1/chat/completions", huge, over, NULL);
    assert_int_equal(r.status, 413);
    resp_free(&r);
    /* exactly 8 MiB is accepted (a JSON object padded with spaces) */
    size_t at = 8 * 1024 * 1024;
    memcpy(huge, body, bl);
    r = http(NULL, "POST", "/t-big/v1/chat/completions", huge, at, NULL);
    assert_int_equal(r.status, 200);
    resp_free(&r);
    free(huge);
    cJSON *j = get_state("t-big");
    assert_int_equal((long)num(cJSON_GetObjectItem(j, "last_request"), "body_bytes"), (long)at);
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "last_request"), "body")));
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "last_request"), "body_truncated")));
    cJSON_Delete(j);

    /* a 7 MiB model name is echoed; in every event of a stream it would pass the
     * 64 MiB output cap: 500, not a crash */
    size_t ml = 7 * 1024 * 1024;
    char *mb = malloc(ml + 256);
    memcpy(mb, "{\"model\":\"", 10);
    memset(mb + 10, 'm', ml);
    strcpy(mb + 10 + ml, "\",\"messages\":[{\"role\":\"user\",\"content\":\"a b c d e f g h\"}]}");
    r = http(NULL, "POST", "/t-big/v1/chat/completions", mb, strlen(mb), NULL);
    assert_int_equal(r.status, 200);
    assert_true(r.len > ml);
    resp_free(&r);
    strcpy(mb + 10 + ml, "\",\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"a b c d e f g h\"}]}");
    r = http(NULL, "POST", "/t-big/v1/chat/completions", mb, strlen(mb), NULL);
    assert_int_equal(r.status, 500);
    resp_free(&r);
    free(mb);
}

static void test_garbage(void **state)
{
    (void)state;
    static char out[65536];
    struct {
        const char *req;
        int status;
    } cases[] = {
        {"GARBAGE\r\n\r\n", 400},
        {"GET / HTTP/2.0\r\n\r\n", 505},
        {"GET / HTTP/1.1\r\nBad Header: x\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\n folded\r\n\r\n", 400},
        {"GET / FTP/1.1\r\n\r\n", 400},
        {"POST /a/v1/chat/completions HTTP/1.1\r\nContent-Length: 12x\r\n\r\n", 400},
        {"POST /a/v1/chat/completions HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", 400},
        {"POST /a/v1/chat/completions HTTP/1.1\r\nContent-Length: 99999999999\r\n\r\n", 413},
        {"POST /a/v1/chat/completions HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", 501},
        {"POST /a/v1/chat/completions HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n", 400},
        {"POST /a/v1/chat/completions HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400},
        {"POST /a/v1/chat/completions HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffff\r\n", 413},
        {"POST /a/v1/chat/completions HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX", 400},
        {"POST /a/v1/chat/completions HTTP/1.1\r\nExpect: magic\r\n\r\n", 417},
        {"GET /\x01 HTTP/1.1\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nX: a\x01b\r\n\r\n", 400},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        raw_exchange(cases[i].req, strlen(cases[i].req), out, sizeof out);
        if (raw_status(out) != cases[i].status)
            fprintf(stderr, "case %zu: got %.40s\n", i, out);
        assert_int_equal(raw_status(out), cases[i].status);
    }
    /* a NUL inside the request line */
    static const char nul[] = "GET /a\0b HTTP/1.1\r\n\r\n";
    raw_exchange(nul, sizeof nul - 1, out, sizeof out);
    assert_int_equal(raw_status(out), 400);

    /* oversized headers: 431 */
    size_t hsz = 70 * 1024;
    char *hdr = malloc(hsz + 128);
    int n = snprintf(hdr, 128, "GET / HTTP/1.1\r\nX-Big: ");
    memset(hdr + n, 'a', hsz);
    memcpy(hdr + n + hsz, "\r\n\r\n", 5);
    raw_exchange(hdr, (size_t)n + hsz + 4, out, sizeof out);
    assert_int_equal(raw_status(out), 431);
    /* a long request target: 414 */
    n = snprintf(hdr, 128, "GET /");
    memset(hdr + n, 'a', 9000);
    memcpy(hdr + n + 9000, " HTTP/1.1\r\n\r\n", 14);
    raw_exchange(hdr, (size_t)n + 9000 + 14, out, sizeof out);
    assert_int_equal(raw_status(out), 414);
    free(hdr);

    /* random bytes, with and without a plausible start */
    unsigned int seed = 12345;
    char junk[8192];
    for (int round = 0; round < 60; round++) {
        size_t len = 1 + (size_t)(rand_r(&seed) % (int)sizeof junk);
        for (size_t k = 0; k < len; k++)
            junk[k] = (char)(rand_r(&seed) & 0xff);
        if (round % 3 == 1)
            memcpy(junk, "POST /x/v1/chat/completions HTTP/1.1\r\n", len < 38 ? len : 38);
        if (round % 3 == 2 && len > 80) {
            const char *h = "POST /x/v1/chat/completions HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
            memcpy(junk, h, strlen(h));
        }
        raw_exchange(junk, len, out, sizeof out);
    }
    /* a client that connects and goes away; one that sends half a request */
    close(connect_sim());
    int fd = connect_sim();
    const char *half = "POST /x/v1/chat/completions HTTP/1.1\r\nContent-Length: 100\r\n\r\n{\"a";
    assert_true(send(fd, half, strlen(half), MSG_NOSIGNAL) > 0);
    close(fd);
    assert_alive();
}

typedef struct slow_arg {
    resp r;
} slow_arg;

static void *slow_thread(void *p)
{
    slow_arg *a = p;
    a->r = chat_fresh("t-conc-slow", "slow", NULL);
    return NULL;
}

static void test_concurrency(void **state)
{
    (void)state;
    /* a latency fault on one deployment does not hold up another */
    put_settings("t-conc-slow", "{\"latency_ms\":1000}", 200);
    slow_arg a;
    pthread_t t;
    double t0 = now_s();
    assert_int_equal(pthread_create(&t, NULL, slow_thread, &a), 0);
    sleep_ms(100);
    resp r = chat_fresh("t-conc-fast", "fast", NULL);
    expect_ok_answer(&r, "[t-conc-fast] fast");
    assert_true(now_s() - t0 < 0.8);
    resp_free(&r);
    pthread_join(t, NULL);
    expect_ok_answer(&a.r, "[t-conc-slow] slow");
    assert_true(a.r.secs >= 0.99);
    resp_free(&a.r);
}

static void test_deployment_cap(void **state)
{
    (void)state;
    resp r = http(shared, "POST", "/_sim/reset", "", 0, NULL);
    resp_free(&r);
    char path[128];
    for (int i = 0; i < 1024; i++) {
        snprintf(path, sizeof path, "/_sim/deployments/cap-%d", i);
        r = http(shared, "PUT", path, "", 0, NULL);
        assert_int_equal(r.status, 200);
        resp_free(&r);
    }
    r = http(shared, "PUT", "/_sim/deployments/cap-over", "", 0, NULL);
    assert_int_equal(r.status, 503);
    resp_free(&r);
    r = chat("cap-over", "x", NULL);
    assert_int_equal(r.status, 503);
    resp_free(&r);
    r = chat("cap-7", "known", NULL); /* existing ones still work */
    expect_ok_answer(&r, "[cap-7] known");
    resp_free(&r);
    r = http(shared, "DELETE", "/_sim/deployments/cap-0", NULL, 0, NULL);
    resp_free(&r);
    r = chat("cap-over", "x", NULL);
    expect_ok_answer(&r, "[cap-over] x");
    resp_free(&r);
    r = http(shared, "POST", "/_sim/reset", "", 0, NULL);
    assert_int_equal(r.status, 200);
    resp_free(&r);
}


/* ------------------------------------------------ the parser, without sockets */

static void test_parser_fragmented(void **state)
{
    (void)state;
    static const char *const reqs[] = {
        "POST /a/v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n"
        "Authorization:  Bearer k  \r\n\r\n{}",
        "\r\nGET /x?y=1 HTTP/1.0\nConnection: keep-alive\n\n",
        "PUT /_sim/reset HTTP/1.1\r\nTransfer-Encoding: chunked\r\nExpect: 100-Continue\r\n"
        "Connection: Close\r\n\r\n0\r\n\r\n",
    };
    for (size_t r = 0; r < sizeof reqs / sizeof reqs[0]; r++) {
        const char *q = reqs[r];
        size_t len = strlen(q);
        http_request whole;
        long hl = http_parse_head(q, len, &whole);
        assert_true(hl > 0);
        for (size_t k = 0; k < (size_t)hl; k++) {
            http_request part;
            assert_int_equal(http_parse_head(q, k, &part), 0);
        }
        switch (r) {
        case 0:
            assert_int_equal(whole.content_length, 2);
            assert_true(whole.keep_alive);
            assert_true(whole.has_authorization);
            assert_int_equal(whole.authorization.len, 8);
            assert_memory_equal(q + whole.authorization.off, "Bearer k", 8);
            assert_int_equal((size_t)hl, len - 2);
            break;
        case 1:
            assert_int_equal(whole.minor_version, 0);
            assert_true(whole.keep_alive);
            assert_memory_equal(q + whole.target.off, "/x?y=1", 6);
            assert_int_equal((size_t)hl, len);
            break;
        default:
            assert_true(whole.chunked);
            assert_true(whole.expect_continue);
            assert_false(whole.keep_alive);
            assert_memory_equal(q + whole.method.off, "PUT", 3);
        }
    }
    /* limits */
    size_t big = HTTP_HEAD_MAX + 10;
    char *b = malloc(big);
    memset(b, 'a', big);
    memcpy(b, "GET / HTTP/1.1\r\nX: ", 19);
    http_request hr;
    assert_int_equal(http_parse_head(b, big, &hr), -431);
    assert_int_equal(http_parse_head(b, HTTP_HEAD_MAX - 1, &hr), 0);
    memcpy(b + big - 4, "\r\n\r\n", 4);
    assert_int_equal(http_parse_head(b, big, &hr), -431);
    free(b);
}

static void test_parser_fuzz(void **state)
{
    (void)state;
    /* mutations of valid requests: never out of bounds, spans always inside */
    static const char *const seeds[] = {
        "POST /a/v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n"
        "Authorization: Bearer k\r\nConnection: keep-alive, close\r\n\r\n{}",
        "POST /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n"
        "4;x=y\r\nabcd\r\n0\r\nT: 1\r\n\r\n",
    };
    static const char alphabet[] = "\r\n :;0123456789abcdefABCDEF\t\x01\x7f\x80\xff-,";
    unsigned int seed = 777;
    char buf[512];
    for (int iter = 0; iter < 40000; iter++) {
        const char *s = seeds[iter % 2];
        size_t len = strlen(s);
        memcpy(buf, s, len);
        int muts = 1 + rand_r(&seed) % 4;
        for (int m = 0; m < muts; m++) {
            size_t pos = (size_t)rand_r(&seed) % len;
            char ch = alphabet[rand_r(&seed) % (int)(sizeof alphabet - 1)];
            switch (rand_r(&seed) % 3) {
            case 0: buf[pos] = ch; break;
            case 1: /* insert */
                if (len + 1 < sizeof buf) {
                    memmove(buf + pos + 1, buf + pos, len - pos);
                    buf[pos] = ch;
                    len++;
                }
                break;
            default: /* delete */
                memmove(buf + pos, buf + pos + 1, len - pos - 1);
                len--;
            }
        }
        size_t cut = (size_t)rand_r(&seed) % (len + 1);
        http_request hr;
        long h = http_parse_head(buf, cut, &hr);
        assert_true(h >= -505 && h <= (long)cut);
        if (h > 0) {
            assert_true(hr.method.off + hr.method.len <= (size_t)h);
            assert_true(hr.target.off + hr.target.len <= (size_t)h);
            assert_true(hr.authorization.off + hr.authorization.len <= (size_t)h);
            http_chunked ch;
            memset(&ch, 0, sizeof ch);
            sim_buf body;
            sim_buf_init(&body, 64);
            size_t used = 0;
            int rc = http_chunked_feed(&ch, buf + h, cut - (size_t)h, &used, &body, 64);
            assert_true(used <= cut - (size_t)h);
            assert_true(rc == 0 || rc == 1 || rc == -400 || rc == -413 || rc == -431);
            assert_true(body.len <= 64);
            sim_buf_free(&body);
        }
    }
}

static void test_chunked_decoder(void **state)
{
    (void)state;
    const char *enc = "5;name=value\r\nhello\r\n1\r\n \r\nA\nworld12345\n0\r\nTrailer: x\r\n\r\nNEXT";
    const char *want = "hello world12345";
    size_t len = strlen(enc);
    /* all at once, then byte by byte, then split at every position */
    for (size_t split = 0; split <= len; split++) {
        for (int bytewise = 0; bytewise < 2; bytewise++) {
            http_chunked ch;
            memset(&ch, 0, sizeof ch);
            sim_buf body;
            sim_buf_init(&body, 1024);
            size_t pos = 0;
            int rc = 0;
            while (pos < len && rc == 0) {
                size_t avail = bytewise ? 1 : (pos < split ? split - pos : len - pos);
                size_t used = 0;
                rc = http_chunked_feed(&ch, enc + pos, avail, &used, &body, 1024);
                pos += used;
                if (rc == 0)
                    assert_int_equal(used, avail);
            }
            assert_int_equal(rc, 1);
            assert_int_equal(len - pos, 4); /* "NEXT" belongs to the next request */
            assert_int_equal(body.len, strlen(want));
            assert_memory_equal(body.data, want, body.len);
            sim_buf_free(&body);
            if (bytewise && split > 0)
                break;
        }
    }
    /* limits and errors */
    static const struct {
        const char *in;
        int rc;
    } bad[] = {
        {"g\r\n", -400}, {"\r\n", -400}, {"5\r\nhelloX", -400}, {"1000000000000000\r\n", -413},
        {"11\r\n", -413}, /* 17 bytes, over the 16-byte cap below */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        http_chunked ch;
        memset(&ch, 0, sizeof ch);
        sim_buf body;
        sim_buf_init(&body, 16);
        size_t used;
        assert_int_equal(http_chunked_feed(&ch, bad[i].in, strlen(bad[i].in), &used, &body, 16),
                         bad[i].rc);
        sim_buf_free(&body);
    }
}

static void test_byte_at_a_time(void **state)
{
    (void)state;
    /* a request dribbled one byte per TCP segment */
    const char *body = "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"drip\"}]}";
    char req[512];
    int n = snprintf(req, sizeof req,
                     "POST /t-drip/v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
                     "Transfer-Encoding: chunked\r\n\r\n%zx\r\n%s\r\n0\r\n\r\n",
                     strlen(body), body);
    int fd = connect_sim();
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    for (int i = 0; i < n; i++) {
        assert_int_equal(send(fd, req + i, 1, MSG_NOSIGNAL), 1);
        if (i % 4 == 0)
            sleep_ms(1);
    }
    static char out[8192];
    size_t got = 0;
    double end = now_s() + 10;
    while (now_s() < end && !strstr(out, "[t-drip] drip")) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 100) <= 0)
            continue;
        ssize_t k = recv(fd, out + got, sizeof out - 1 - got, 0);
        if (k <= 0)
            break;
        got += (size_t)k;
        out[got] = '\0';
    }
    close(fd);
    assert_int_equal(raw_status(out), 200);
    assert_non_null(strstr(out, "[t-drip] drip"));
}

static void test_shutdown(void **state)
{
    (void)state;
    /* leave a connection idle and one sleeping in a latency fault: SIGTERM must
     * still stop the simulator promptly and cleanly */
    int idle = connect_sim();
    put_settings("t-stop", "{\"latency_ms\":600000}", 200);
    int sleeper = connect_sim();
    char *b = chat_req("zzz", NULL);
    char req[512];
    int n = snprintf(req, sizeof req,
                     "POST /t-stop/v1/chat/completions HTTP/1.1\r\nContent-Length: %zu\r\n\r\n%s",
                     strlen(b), b);
    free(b);
    assert_true(send(sleeper, req, (size_t)n, MSG_NOSIGNAL) == n);
    sleep_ms(200);
    assert_int_equal(kill(sim_pid, SIGTERM), 0);
    int st = 0;
    double end = now_s() + 60;
    pid_t w = 0;
    while (now_s() < end && (w = waitpid(sim_pid, &st, WNOHANG)) == 0)
        sleep_ms(10);
    assert_int_equal(w, sim_pid);
    sim_pid = -1;
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
    close(idle);
    close(sleeper);
}

int main(int argc, char **argv)
{
    sim_path = argc > 1 ? argv[1] : getenv("LLMUX_SIM");
    if (!sim_path) {
        fprintf(stderr, "usage: test_sim PATH-TO-llmux-sim (or set LLMUX_SIM)\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_normal_answer),
        cmocka_unit_test(test_validation),
        cmocka_unit_test(test_tool_calls),
        cmocka_unit_test(test_streaming),
        cmocka_unit_test(test_require_key),
        cmocka_unit_test(test_fault_status),
        cmocka_unit_test(test_fault_latency),
        cmocka_unit_test(test_fault_drop),
        cmocka_unit_test(test_fault_drop_mid_body),
        cmocka_unit_test(test_fault_malformed),
        cmocka_unit_test(test_fault_stream_drop),
        cmocka_unit_test(test_fault_slow_stream),
        cmocka_unit_test(test_hostile_content),
        cmocka_unit_test(test_hostile_echo_key),
        cmocka_unit_test(test_hostile_transfer),
        cmocka_unit_test(test_hostile_settings),
        cmocka_unit_test(test_fault_cross),
        cmocka_unit_test(test_count_semantics),
        cmocka_unit_test(test_control_api),
        cmocka_unit_test(test_keep_alive),
        cmocka_unit_test(test_http_framing),
        cmocka_unit_test(test_garbage),
        cmocka_unit_test(test_concurrency),
        cmocka_unit_test(test_deployment_cap),
        cmocka_unit_test(test_parser_fragmented),
        cmocka_unit_test(test_parser_fuzz),
        cmocka_unit_test(test_chunked_decoder),
        cmocka_unit_test(test_byte_at_a_time),
        cmocka_unit_test(test_shutdown),
    };
    return cmocka_run_group_tests_name("llmux-sim", tests, start_sim, stop_sim);
}
