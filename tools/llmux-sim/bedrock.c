/* bedrock.c - Bedrock's Converse and ConverseStream in llmux-sim.
 *
 * The signature check is written here from the SigV4 specification, apart
 * from llmux's signer, so the two can disagree: the canonical request is
 * rebuilt from the request as it arrived (method, the path re-encoded, the
 * signed headers' values from the raw head, the body's SHA-256). */
#include "bedrock.h"

#include <cjson/cJSON.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "faults.h"
#include "server.h"

enum { TEXT_MAX = 200, SIG_HEADERS_MAX = 16 };

typedef struct route {
    const char *dep;
    size_t dep_len;
    int stream;
} route;

/* /{dep}/model/{id}/converse[-stream] */
static int parse_route(const sim_request *r, route *out)
{
    const char *p = r->path, *end = p + r->path_len;
    if (r->path_len < 2 || p[0] != '/')
        return 0;
    const char *slash = memchr(p + 1, '/', (size_t)(end - p - 1));
    if (!slash || (size_t)(end - slash) < 7 || memcmp(slash, "/model/", 7) != 0)
        return 0;
    out->dep = p + 1;
    out->dep_len = (size_t)(slash - p - 1);
    const char *id = slash + 7, *last = end;
    while (last > id && last[-1] != '/')
        last--;
    if (last <= id + 1) /* no model id segment */
        return 0;
    size_t tail = (size_t)(end - last);
    if (memchr(id, '/', (size_t)(last - 1 - id)))
        return 0; /* the model id is one segment: its '/' arrive as %2F */
    if (tail == 8 && memcmp(last, "converse", 8) == 0)
        out->stream = 0;
    else if (tail == 15 && memcmp(last, "converse-stream", 15) == 0)
        out->stream = 1;
    else
        return 0;
    return sim_name_valid(out->dep, out->dep_len);
}

int sim_bedrock_match(const sim_request *r)
{
    route rt;
    return parse_route(r, &rt);
}

/* ------------------------------------------------------------------ SigV4 */

static void hex(const unsigned char *d, size_t n, char *out)
{
    static const char x[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = x[d[i] >> 4];
        out[2 * i + 1] = x[d[i] & 15];
    }
    out[2 * n] = '\0';
}

static void sha256_hex(const void *d, size_t n, char out[65])
{
    unsigned char md[32];
    unsigned int len = 0;
    EVP_Digest(d, n, md, &len, EVP_sha256(), NULL);
    hex(md, 32, out);
}

static void mac(const void *key, size_t kn, const void *msg, size_t mn, unsigned char out[32])
{
    unsigned char tmp[32];
    unsigned int len = 0;
    HMAC(EVP_sha256(), key, (int)kn, msg, mn, tmp, &len);
    memcpy(out, tmp, 32);
}

/* The value of header name in the raw head, trimmed, inner space runs as one. */
static int head_value(const sim_request *r, const char *name, size_t nl, sim_buf *out)
{
    const char *p = r->head, *end = r->head + r->head_len;
    const char *line = memchr(p, '\n', (size_t)(end - p)); /* skip the request line */
    while (line && line + 1 < end) {
        p = line + 1;
        line = memchr(p, '\n', (size_t)(end - p));
        const char *eol = line ? line : end;
        const char *colon = memchr(p, ':', (size_t)(eol - p));
        if (!colon || (size_t)(colon - p) != nl || strncasecmp(p, name, nl) != 0)
            continue;
        const char *v = colon + 1, *ve = eol;
        while (v < ve && (*v == ' ' || *v == '\t'))
            v++;
        while (ve > v && (ve[-1] == '\r' || ve[-1] == ' ' || ve[-1] == '\t'))
            ve--;
        int space = 0;
        for (; v < ve; v++) {
            if (*v == ' ' || *v == '\t') {
                space = 1;
                continue;
            }
            if (space)
                sim_buf_append(out, " ", 1);
            space = 0;
            sim_buf_append(out, v, 1);
        }
        return 0;
    }
    return -1;
}

/* 0 when the Authorization header is a valid SigV4 signature with the test
 * secret and service "bedrock"; else -1 with the AWS error name and message. */
static int verify_sigv4(const sim_request *r, const char *auth, size_t auth_len,
                        const char **type, char *msg, size_t cap)
{
    char a[2048];
    *type = "IncompleteSignatureException";
    if (auth_len >= sizeof a) {
        snprintf(msg, cap, "Authorization header too long");
        return -1;
    }
    memcpy(a, auth, auth_len);
    a[auth_len] = '\0';
    char *cred = strstr(a, "Credential="), *sh = strstr(a, "SignedHeaders="),
         *sig = strstr(a, "Signature=");
    if (strncmp(a, "AWS4-HMAC-SHA256 ", 17) != 0 || !cred || !sh || !sig) {
        snprintf(msg, cap, "Authorization header requires Credential, SignedHeaders and Signature");
        return -1;
    }
    cred += 11;
    sh += 14;
    sig += 10;
    cred[strcspn(cred, ",")] = '\0';
    sh[strcspn(sh, ",")] = '\0';
    sig[strcspn(sig, ", ")] = '\0';
    /* Credential=AK/DATE/REGION/SERVICE/aws4_request */
    char *parts[5];
    int np = 0;
    for (char *s = cred; np < 5; np++) {
        parts[np] = s;
        char *sl = strchr(s, '/');
        if (!sl) {
            np++;
            break;
        }
        *sl = '\0';
        s = sl + 1;
    }
    if (np != 5 || strcmp(parts[4], "aws4_request") != 0 || strlen(parts[1]) != 8) {
        snprintf(msg, cap, "Credential should be scoped to a valid region and date");
        return -1;
    }
    if (strcmp(parts[3], "bedrock") != 0) {
        *type = "InvalidSignatureException";
        snprintf(msg, cap, "Credential should be scoped to correct service: 'bedrock'.");
        return -1;
    }
    sim_buf creq, sts, val;
    sim_buf_init(&creq, 1 << 20);
    sim_buf_init(&sts, 4096);
    sim_buf_init(&val, 1 << 16);
    char date[32] = "", body_hash[65], creq_hash[65];
    int rc = -1;
    sim_buf_append(&creq, r->method, r->method_len);
    sim_buf_append(&creq, "\n", 1);
    /* the path as received, encoded again ('/' kept) */
    static const char up[] = "0123456789ABCDEF";
    for (size_t i = 0; i < r->path_len; i++) {
        unsigned char ch = (unsigned char)r->path[i];
        if ((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
            strchr("-_.~/", ch)) {
            sim_buf_append(&creq, &r->path[i], 1);
        } else {
            char e[3] = {'%', up[ch >> 4], up[ch & 15]};
            sim_buf_append(&creq, e, 3);
        }
    }
    sim_buf_puts(&creq, "\n\n"); /* no query on Converse paths */
    for (char *h = sh; *h;) {
        size_t n = strcspn(h, ";");
        sim_buf_reset(&val);
        if (head_value(r, h, n, &val) < 0) {
            *type = "InvalidSignatureException";
            snprintf(msg, cap, "a signed header is missing from the request: %.*s", (int)n, h);
            goto done;
        }
        sim_buf_append(&creq, h, n);
        sim_buf_append(&creq, ":", 1);
        sim_buf_append(&creq, val.data ? val.data : "", val.len);
        sim_buf_append(&creq, "\n", 1);
        if (n == 10 && strncmp(h, "x-amz-date", 10) == 0)
            snprintf(date, sizeof date, "%s", val.data ? val.data : "");
        h += n + (h[n] == ';');
    }
    if (strlen(date) != 16 || strncmp(date, parts[1], 8) != 0 || !strstr(sh, "host")) {
        snprintf(msg, cap, "host and x-amz-date must be signed, and the date match the credential");
        goto done;
    }
    sha256_hex(r->body, r->body_len, body_hash);
    sim_buf_printf(&creq, "\n%s\n%s", sh, body_hash);
    sha256_hex(creq.data, creq.len, creq_hash);
    sim_buf_printf(&sts, "AWS4-HMAC-SHA256\n%s\n%s/%s/%s/aws4_request\n%s", date, parts[1], parts[2],
                   parts[3], creq_hash);
    unsigned char k[32];
    char secret[64];
    snprintf(secret, sizeof secret, "AWS4%s", SIM_BEDROCK_SECRET);
    mac(secret, strlen(secret), parts[1], 8, k);
    mac(k, 32, parts[2], strlen(parts[2]), k);
    mac(k, 32, parts[3], strlen(parts[3]), k);
    mac(k, 32, "aws4_request", 12, k);
    mac(k, 32, sts.data, sts.len, k);
    char want[65];
    hex(k, 32, want);
    if (!sim_buf_ok(&creq) || !sim_buf_ok(&sts) || strcmp(want, sig) != 0) {
        *type = "InvalidSignatureException";
        snprintf(msg, cap,
                 "The request signature we calculated does not match the signature you provided. "
                 "Check your AWS Secret Access Key and signing method.");
        goto done;
    }
    rc = 0;
done:
    sim_buf_free(&creq);
    sim_buf_free(&sts);
    sim_buf_free(&val);
    return rc;
}

/* -------------------------------------------------------------- answers */

static int respond_aws_error(sim_conn *c, int status, const char *type, const char *body_json,
                             const char *message, int keep)
{
    char extra[160];
    snprintf(extra, sizeof extra, "x-amzn-ErrorType: %s:http://internal.amazon.com/coral/com.amazon.bedrock/\r\n",
             type);
    sim_buf_reset(&c->out);
    if (body_json) {
        sim_buf_puts(&c->out, body_json);
    } else {
        sim_buf_puts(&c->out, "{\"message\":");
        sim_buf_json_str(&c->out, message, strlen(message));
        sim_buf_puts(&c->out, "}");
    }
    sim_respond(c, status, "application/json", c->out.data, c->out.len, keep, extra);
    return keep ? SIM_KEEP : SIM_CLOSE;
}

static const char *error_type_for(int status, int stream)
{
    switch (status) {
    case 400: return stream ? "validationException" : "ValidationException";
    case 403: return stream ? "accessDeniedException" : "AccessDeniedException";
    case 404: return stream ? "resourceNotFoundException" : "ResourceNotFoundException";
    case 408: return stream ? "modelTimeoutException" : "ModelTimeoutException";
    case 424: return stream ? "modelStreamErrorException" : "ModelErrorException";
    case 429: return stream ? "throttlingException" : "ThrottlingException";
    case 503: return stream ? "serviceUnavailableException" : "ServiceUnavailableException";
    default: return stream ? "internalServerException" : "InternalServerException";
    }
}

typedef struct answer {
    char text[TEXT_MAX + 8];
    size_t text_len;
    char content[TEXT_MAX + 160];
    const char *tool; /* forced tool name, or NULL */
    int json;         /* outputConfig json_schema */
    long input_tokens, output_tokens;
} answer;

static const char *block_text(const cJSON *b)
{
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(b, "text");
    return cJSON_IsString(t) ? t->valuestring : NULL;
}

/* Checks the Converse request as Bedrock does; 0, or -1 with a message. */
static int check_request(const cJSON *req, answer *a, char *msg, size_t cap)
{
    const cJSON *messages = cJSON_GetObjectItemCaseSensitive(req, "messages");
    const cJSON *tc = cJSON_GetObjectItemCaseSensitive(req, "toolConfig");
    size_t bytes = 0;
    int i = 0, tool_blocks = 0;
    const char *prev = NULL;
    if (!cJSON_IsObject(req) || !cJSON_IsArray(messages) || !messages->child) {
        snprintf(msg, cap, "1 validation error detected: Value at 'messages' failed to satisfy "
                           "constraint: Member must not be null or empty");
        return -1;
    }
    const cJSON *m, *b;
    cJSON_ArrayForEach(b, cJSON_GetObjectItemCaseSensitive(req, "system")) if (block_text(b))
        bytes += strlen(block_text(b));
    cJSON_ArrayForEach(m, messages)
    {
        const cJSON *role = cJSON_GetObjectItemCaseSensitive(m, "role");
        const cJSON *content = cJSON_GetObjectItemCaseSensitive(m, "content");
        const char *r = cJSON_IsString(role) ? role->valuestring : "";
        if ((strcmp(r, "user") != 0 && strcmp(r, "assistant") != 0) || !cJSON_IsArray(content)) {
            snprintf(msg, cap, "messages.%d: role must be user or assistant, content an array", i);
            return -1;
        }
        if ((i == 0 && strcmp(r, "user") != 0) || (prev && strcmp(prev, r) == 0)) {
            snprintf(msg, cap, "A conversation must start with a user message and alternate "
                               "between user and assistant roles.");
            return -1;
        }
        prev = r;
        int is_user = strcmp(r, "user") == 0;
        if (is_user)
            a->text_len = 0;
        int first = 1;
        cJSON_ArrayForEach(b, content)
        {
            const char *t = block_text(b);
            if (cJSON_GetObjectItemCaseSensitive(b, "toolUse") ||
                cJSON_GetObjectItemCaseSensitive(b, "toolResult"))
                tool_blocks = 1;
            if (!t)
                continue;
            if (!*t) {
                snprintf(msg, cap, "The text field in the ContentBlock object at messages.%d is "
                                   "blank. Add text to the text field, and try again.", i);
                return -1;
            }
            bytes += strlen(t);
            if (is_user) {
                size_t n = strlen(t), room = TEXT_MAX + 4 - a->text_len;
                if (!first && room)
                    a->text[a->text_len++] = ' ', room--;
                n = n < room ? n : room;
                memcpy(a->text + a->text_len, t, n);
                a->text_len += n;
                first = 0;
            }
        }
        i++;
    }
    if (tool_blocks && !cJSON_IsObject(tc)) {
        snprintf(msg, cap, "The toolConfig field must be defined when using toolUse and toolResult "
                           "content blocks.");
        return -1;
    }
    a->text_len = sim_utf8_prefix(a->text, a->text_len, TEXT_MAX);
    a->input_tokens = (long)((bytes + 3) / 4);
    const cJSON *choice = cJSON_GetObjectItemCaseSensitive(tc, "toolChoice");
    const cJSON *named = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(choice, "tool"), "name");
    const cJSON *first_tool = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(tc, "tools"), 0),
                                         "toolSpec"),
        "name");
    if (cJSON_IsString(named))
        a->tool = named->valuestring;
    else if (cJSON_GetObjectItemCaseSensitive(choice, "any") && cJSON_IsString(first_tool))
        a->tool = first_tool->valuestring;
    const cJSON *tf = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(req, "outputConfig"), "textFormat");
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(tf, "type");
    a->json = cJSON_IsString(type) && strcmp(type->valuestring, "json_schema") == 0;
    return 0;
}

/* The answer's text: "[dep] text", or {"echo":"text"} for json_schema output. */
static void render_text(answer *a, const route *rt, sim_buf *tmp)
{
    sim_buf_reset(tmp);
    if (a->json) {
        sim_buf_puts(tmp, "{\"echo\":");
        sim_buf_json_str(tmp, a->text, a->text_len);
        sim_buf_puts(tmp, "}");
        cJSON *s = cJSON_ParseWithLength(tmp->data, tmp->len);
        snprintf(a->content, sizeof a->content, "%s", s ? tmp->data : "{}");
        cJSON_Delete(s);
    } else {
        snprintf(a->content, sizeof a->content, "[%.*s] %.*s", (int)rt->dep_len, rt->dep,
                 (int)a->text_len, a->text);
    }
    long words = 0;
    for (const char *p = a->content; *p; p++)
        if (*p != ' ' && (p == a->content || p[-1] == ' '))
            words++;
    a->output_tokens = a->tool ? 8 : words;
}

static cJSON *usage_json(const answer *a)
{
    cJSON *u = cJSON_CreateObject();
    cJSON_AddNumberToObject(u, "inputTokens", (double)a->input_tokens);
    cJSON_AddNumberToObject(u, "outputTokens", (double)a->output_tokens);
    cJSON_AddNumberToObject(u, "totalTokens", (double)(a->input_tokens + a->output_tokens));
    cJSON_AddNumberToObject(u, "cacheReadInputTokens", 0);
    cJSON_AddNumberToObject(u, "cacheWriteInputTokens", 0);
    return u;
}

static char *tool_input(const answer *a)
{
    cJSON *in = cJSON_CreateObject();
    char text[TEXT_MAX + 8];
    snprintf(text, sizeof text, "%.*s", (int)a->text_len, a->text);
    cJSON_AddStringToObject(in, "echo", text);
    char *s = cJSON_PrintUnformatted(in);
    cJSON_Delete(in);
    return s;
}

static int send_json_answer(sim_conn *c, const answer *a, unsigned long n, int keep)
{
    cJSON *o = cJSON_CreateObject(), *msg = cJSON_CreateObject(), *content = cJSON_CreateArray();
    cJSON_AddItemToObject(cJSON_AddObjectToObject(o, "output"), "message", msg);
    cJSON_AddStringToObject(msg, "role", "assistant");
    cJSON_AddItemToObject(msg, "content", content);
    cJSON *b = cJSON_CreateObject();
    cJSON_AddItemToArray(content, b);
    if (a->tool) {
        char id[48];
        snprintf(id, sizeof id, "tooluse_sim_%lu", n);
        char *input = tool_input(a);
        cJSON *tu = cJSON_AddObjectToObject(b, "toolUse");
        cJSON_AddStringToObject(tu, "toolUseId", id);
        cJSON_AddStringToObject(tu, "name", a->tool);
        cJSON_AddItemToObject(tu, "input", cJSON_Parse(input));
        free(input);
    } else {
        cJSON_AddStringToObject(b, "text", a->content);
    }
    cJSON_AddStringToObject(o, "stopReason", a->tool ? "tool_use" : "end_turn");
    cJSON_AddItemToObject(o, "usage", usage_json(a));
    cJSON_AddNumberToObject(cJSON_AddObjectToObject(o, "metrics"), "latencyMs", 1);
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    int rc = s ? sim_respond(c, 200, "application/json", s, strlen(s), keep, NULL) : -1;
    free(s);
    return rc == 0 && keep ? SIM_KEEP : SIM_CLOSE;
}

/* ------------------------------------------------------- event stream */

static void be32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

static uint32_t crc32_ieee(uint32_t crc, const unsigned char *p, size_t n)
{
    crc = ~crc;
    while (n--) {
        crc ^= *p++;
        for (int k = 0; k < 8; k++)
            crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1)));
    }
    return ~crc;
}

/* One event-stream message (three string headers and a JSON payload) as
 * one HTTP chunk; corrupt: flip a payload bit after the CRCs are computed. */
static void frame(sim_buf *out, const char *mtype, const char *tkey, const char *tval,
                  const char *payload, int corrupt)
{
    const char *names[3] = {":message-type", tkey, ":content-type"};
    const char *vals[3] = {mtype, tval, "application/json"};
    unsigned char m[8192];
    size_t pl = strlen(payload), hl = 0;
    for (int i = 0; i < 3; i++)
        hl += 1 + strlen(names[i]) + 3 + strlen(vals[i]);
    size_t total = 12 + hl + pl + 4;
    if (total > sizeof m)
        return;
    be32(m, (uint32_t)total);
    be32(m + 4, (uint32_t)hl);
    be32(m + 8, crc32_ieee(0, m, 8));
    size_t o = 12;
    for (int i = 0; i < 3; i++) {
        size_t nl = strlen(names[i]), vl = strlen(vals[i]);
        m[o++] = (unsigned char)nl;
        memcpy(m + o, names[i], nl);
        o += nl;
        m[o++] = 7;
        m[o++] = (unsigned char)(vl >> 8);
        m[o++] = (unsigned char)vl;
        memcpy(m + o, vals[i], vl);
        o += vl;
    }
    memcpy(m + o, payload, pl);
    o += pl;
    be32(m + o, crc32_ieee(0, m, o));
    o += 4;
    if (corrupt)
        m[12 + hl] ^= 1;
    sim_buf_printf(out, "%zx\r\n", o);
    sim_buf_append(out, m, o);
    sim_buf_puts(out, "\r\n");
}

static void event(sim_buf *out, const char *type, cJSON *payload, int corrupt)
{
    char *s = cJSON_PrintUnformatted(payload);
    frame(out, "event", ":event-type", type, s ? s : "{}", corrupt);
    free(s);
    cJSON_Delete(payload);
}

static cJSON *block_ev(int index)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "contentBlockIndex", index);
    return o;
}

/* The whole stream; ends[i] is the offset after message i. Returns the count. */
static size_t render_stream(sim_buf *out, const answer *a, unsigned long n, const char *exc_type,
                            const char *exc_body, int corrupt, size_t *ends, size_t max)
{
    size_t k = 0;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "role", "assistant");
    event(out, "messageStart", o, 0);
    ends[k++] = out->len;
    if (exc_type) {
        frame(out, "exception", ":exception-type", exc_type, exc_body, 0);
        ends[k++] = out->len;
        return k;
    }
    if (a->tool) {
        char id[48];
        snprintf(id, sizeof id, "tooluse_sim_%lu", n);
        o = block_ev(0);
        cJSON *tu = cJSON_AddObjectToObject(cJSON_AddObjectToObject(o, "start"), "toolUse");
        cJSON_AddStringToObject(tu, "toolUseId", id);
        cJSON_AddStringToObject(tu, "name", a->tool);
        event(out, "contentBlockStart", o, 0);
        ends[k++] = out->len;
        char *input = tool_input(a);
        size_t len = strlen(input), half = sim_utf8_prefix(input, len, len / 2);
        for (int part = 0; part < 2; part++) {
            char piece[TEXT_MAX * 2 + 64];
            snprintf(piece, sizeof piece, "%.*s", (int)(part ? len - half : half), input + (part ? half : 0));
            o = block_ev(0);
            cJSON_AddStringToObject(cJSON_AddObjectToObject(cJSON_AddObjectToObject(o, "delta"), "toolUse"),
                                    "input", piece);
            event(out, "contentBlockDelta", o, 0);
            ends[k++] = out->len;
        }
        free(input);
    } else {
        /* one delta per word, each with the spaces after it */
        const char *p = a->content;
        while (*p && k + 4 < max) {
            const char *q = p;
            while (*q && *q != ' ')
                q++;
            while (*q == ' ')
                q++;
            char word[TEXT_MAX + 160];
            snprintf(word, sizeof word, "%.*s", (int)(q - p), p);
            o = block_ev(0);
            cJSON_AddStringToObject(cJSON_AddObjectToObject(o, "delta"), "text", word);
            event(out, "contentBlockDelta", o, corrupt && k == 1);
            ends[k++] = out->len;
            p = q;
        }
    }
    event(out, "contentBlockStop", block_ev(0), 0);
    ends[k++] = out->len;
    o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "stopReason", a->tool ? "tool_use" : "end_turn");
    event(out, "messageStop", o, 0);
    ends[k++] = out->len;
    o = cJSON_CreateObject();
    cJSON_AddItemToObject(o, "usage", usage_json(a));
    cJSON_AddNumberToObject(cJSON_AddObjectToObject(o, "metrics"), "latencyMs", 1);
    event(out, "metadata", o, 0);
    ends[k++] = out->len;
    return k;
}

/* -------------------------------------------------------------- handler */

int sim_bedrock_handle(sim_conn *c, const sim_request *r)
{
    route rt;
    parse_route(r, &rt);
    int keep = r->keep_alive;
    sim_ticket t;
    sim_buf_reset(&c->aux);
    if (!sim_name_valid(rt.dep, rt.dep_len) ||
        sim_registry_request(rt.dep, rt.dep_len, r->path, r->path_len, r->auth, r->auth_len,
                             r->has_auth, r->body, r->body_len, &t, &c->aux) < 0)
        return respond_aws_error(c, 503, "ServiceUnavailableException", NULL,
                                 "too many deployments", keep);
    if (t.latency_ms > 0 && sim_sleep_ms(t.latency_ms) < 0)
        return SIM_CLOSE;
    /* auth: a SigV4 signature with the test secret, or a bearer API key */
    char msg[512];
    const char *type = NULL;
    if (!r->has_auth)
        return respond_aws_error(c, 403, "MissingAuthenticationTokenException", NULL,
                                 "Missing Authentication Token", keep);
    if (r->auth_len > 7 && memcmp(r->auth, "Bearer ", 7) == 0) {
        if (!t.auth_ok)
            return respond_aws_error(c, 403, "UnrecognizedClientException", NULL,
                                     "The security token included in the request is invalid.", keep);
    } else if (verify_sigv4(r, r->auth, r->auth_len, &type, msg, sizeof msg) < 0) {
        return respond_aws_error(c, 403, type, NULL, msg, keep);
    }

    cJSON *req = cJSON_ParseWithLength(r->body, r->body_len);
    answer a;
    memset(&a, 0, sizeof a);
    int action = SIM_CLOSE, chunked = r->minor_version >= 1;
    const char *exc = NULL;
    char exc_body[1024] = "";
    switch (t.fault) {
    case SIM_FAULT_STATUS:
        if (!rt.stream || t.status == 403 || t.status == 404) {
            action = respond_aws_error(c, t.status, error_type_for(t.status, 0),
                                       t.has_body ? c->aux.data : NULL,
                                       "simulated error", keep);
            goto done;
        }
        /* a stream fails inside: messageStart, then the exception frame */
        exc = error_type_for(t.status, 1);
        snprintf(exc_body, sizeof exc_body, "%s",
                 t.has_body ? c->aux.data : "{\"message\":\"simulated error\"}");
        break;
    case SIM_FAULT_LATENCY:
    case SIM_FAULT_SLOW_STREAM:
        if (sim_sleep_ms(t.ms) < 0)
            goto done;
        break;
    case SIM_FAULT_DROP:
        goto done;
    default:
        break;
    }
    if (check_request(req, &a, msg, sizeof msg) < 0) {
        action = respond_aws_error(c, 400, "ValidationException", NULL, msg, keep);
        goto done;
    }
    render_text(&a, &rt, &c->scratch);
    if (!rt.stream) {
        if (t.fault == SIM_FAULT_MALFORMED) {
            static const char broken[] = "{\"output\":{\"message\":";
            sim_respond(c, 200, "application/json", broken, sizeof broken - 1, keep, NULL);
            action = keep ? SIM_KEEP : SIM_CLOSE;
            goto done;
        }
        action = send_json_answer(c, &a, t.n, keep);
        goto done;
    }
    size_t ends[256];
    sim_buf_reset(&c->out);
    size_t nev = render_stream(&c->out, &a, t.n, exc, exc_body, t.fault == SIM_FAULT_MALFORMED,
                               ends, 256);
    if (!chunked || !sim_buf_ok(&c->out))
        goto done; /* HTTP/1.0: not served as a stream here */
    static const char head[] = "HTTP/1.1 200 OK\r\nContent-Type: application/vnd.amazon.eventstream\r\n"
                               "x-amzn-RequestId: 00000000-0000-0000-0000-000000000000\r\n"
                               "Transfer-Encoding: chunked\r\n\r\n";
    if (t.fault == SIM_FAULT_STREAM_DROP || t.fault == SIM_FAULT_DROP_MID_BODY) {
        sim_conn_send2(c, head, sizeof head - 1, c->out.data, ends[nev > 2 ? 1 : 0]);
        goto done;
    }
    sim_buf_puts(&c->out, "0\r\n\r\n");
    if (t.fault == SIM_FAULT_SLOW_STREAM) {
        if (sim_conn_send2(c, head, sizeof head - 1, c->out.data, ends[0]) < 0)
            goto done;
        for (size_t i = 1; i < nev; i++) {
            size_t end = i + 1 == nev ? c->out.len : ends[i];
            if (sim_sleep_ms(t.ms) < 0 ||
                sim_conn_send2(c, c->out.data + ends[i - 1], end - ends[i - 1], NULL, 0) < 0)
                goto done;
        }
    } else if (sim_conn_send2(c, head, sizeof head - 1, c->out.data, c->out.len) < 0) {
        goto done;
    }
    action = keep ? SIM_KEEP : SIM_CLOSE;
done:
    cJSON_Delete(req);
    return action;
}
