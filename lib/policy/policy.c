/*
 * Gateway keys: the table (config "keys" plus llmux_key_add), lookup by
 * SHA-256 with constant-time comparison, and the admission of a call against
 * its key's aliases, limits and budgets, its team's and the global ones.
 */
#include <cjson/cJSON.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "policy/internal.h"

static double mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int64_t wall_s(void)
{
    return (int64_t)time(NULL);
}

/* SHA-256 with the algorithm fetched once at open: EVP_sha256() (and the
 * one-shot SHA256()) fetch it on every call, about 0.5 us each. */
static int sha256(const lx_policy *p, const char *s, size_t n, unsigned char md[32])
{
    unsigned int len = 0;
    return EVP_Digest(s, n, md, &len, p->sha256, NULL) && len == 32 ? 0 : -1;
}

static int unhex(const char *s, unsigned char out[32])
{
    if (!s || strlen(s) != 64)
        return -1;
    for (int i = 0; i < 64; i++) {
        char c = s[i];
        int v = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : -1;
        if (v < 0)
            return -1;
        out[i / 2] = (unsigned char)(i % 2 ? out[i / 2] | v : v << 4);
    }
    return 0;
}

/* "2027-01-01T00:00:00Z" -> unix seconds, -1 when not that shape. */
static int64_t parse_time(const char *s)
{
    struct tm tm = {0};
    char z = 0, end = 0;
    if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%c%c", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
               &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &z, &end) != 7 ||
        z != 'Z' || strlen(s) != 20 || tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1 ||
        tm.tm_mday > 31 || tm.tm_hour > 23 || tm.tm_min > 59 || tm.tm_sec > 60)
        return -1;
    return llmux__utc_seconds(tm.tm_year, tm.tm_mon, tm.tm_mday, tm.tm_hour, tm.tm_min,
                              tm.tm_sec);
}

static lx_scope *find_team(lx_policy *p, const char *name)
{
    for (size_t i = 0; i < p->n_teams; i++)
        if (strcmp(p->teams[i].name, name) == 0)
            return &p->teams[i];
    return NULL;
}

static void key_free(lx_pkey *k)
{
    if (!k)
        return;
    OPENSSL_cleanse(k->sha, sizeof k->sha);
    llmux__scope_free(&k->s);
    free(k->team_name);
    for (size_t i = 0; i < k->n_models; i++)
        free(k->models[i]);
    free(k->models);
    free(k);
}

static const char *const KEY_KEYS[] = {"sha256", "key", "team", "models", "direct",
                                       "expires", "budgets", "limits", NULL};

/* One key from its JSON object. runtime: "key" (plaintext) is accepted too. */
static int key_parse(lx_policy *p, const char *id, const cJSON *o, const char *path, int runtime,
                     lx_pkey **out, lx_err *err)
{
    char q[320];
    if (!cJSON_IsObject(o))
        return llmux__err(err, LLMUX_ERR_CONFIG, "%s: must be an object", path);
    const cJSON *m;
    cJSON_ArrayForEach(m, o) {
        int known = 0;
        for (const char *const *k = KEY_KEYS; *k; k++)
            known |= strcmp(m->string, *k) == 0 && (runtime || strcmp(*k, "key"));
        if (!known)
            return llmux__err(err, LLMUX_ERR_CONFIG,
                              "%s.%.64s: unknown key (known: sha256, team, models, direct, "
                              "expires, budgets, limits%s)",
                              path, m->string, runtime ? ", key" : "");
    }
    lx_pkey *k = calloc(1, sizeof *k);
    if (!k || !(k->s.name = strdup(id))) {
        free(k);
        return llmux__err(err, LLMUX_ERR_NO_MEMORY, "out of memory");
    }
    k->s.kind = "key";
    int rc = LLMUX_OK;
    const cJSON *sha = cJSON_GetObjectItemCaseSensitive(o, "sha256");
    const cJSON *plain = runtime ? cJSON_GetObjectItemCaseSensitive(o, "key") : NULL;
    if (!!sha == !!plain)
        rc = llmux__err(err, LLMUX_ERR_CONFIG, "%s: %s", path,
                        runtime ? "give exactly one of \"sha256\" and \"key\""
                                : "sha256: required, the key's SHA-256 as 64 hex digits");
    else if (sha && (!cJSON_IsString(sha) || unhex(sha->valuestring, k->sha)))
        rc = llmux__err(err, LLMUX_ERR_CONFIG, "%s.sha256: 64 hex digits (SHA-256 of the key)",
                        path);
    else if (plain && (!cJSON_IsString(plain) || strlen(plain->valuestring) < 8 ||
                       sha256(p, plain->valuestring, strlen(plain->valuestring), k->sha)))
        rc = llmux__err(err, LLMUX_ERR_CONFIG, "%s.key: a string of at least 8 characters",
                        path);
    const cJSON *team = cJSON_GetObjectItemCaseSensitive(o, "team");
    if (!rc && team) {
        if (!cJSON_IsString(team) || !*team->valuestring)
            rc = llmux__err(err, LLMUX_ERR_CONFIG, "%s.team: a team name", path);
        else if (!(k->team_name = strdup(team->valuestring)))
            rc = llmux__err(err, LLMUX_ERR_NO_MEMORY, "out of memory");
        else
            k->team = find_team(p, k->team_name);
    }
    const cJSON *models = cJSON_GetObjectItemCaseSensitive(o, "models");
    k->direct = !models;
    if (!rc && models) {
        int n = cJSON_IsArray(models) ? cJSON_GetArraySize(models) : -1;
        if (n < 0)
            rc = llmux__err(err, LLMUX_ERR_CONFIG, "%s.models: an array of alias names", path);
        else if (n && !(k->models = calloc((size_t)n, sizeof *k->models)))
            rc = llmux__err(err, LLMUX_ERR_NO_MEMORY, "out of memory");
        const cJSON *a;
        int i = 0;
        cJSON_ArrayForEach(a, models) {
            if (rc)
                break;
            if (!cJSON_IsString(a) || !llmux__config_find_alias(p->cfg, a->valuestring))
                rc = llmux__err(err, LLMUX_ERR_CONFIG, "%s.models[%d]: no alias named \"%.80s\"",
                                path, i, cJSON_IsString(a) ? a->valuestring : "?");
            else if (!(k->models[k->n_models] = strdup(a->valuestring)))
                rc = llmux__err(err, LLMUX_ERR_NO_MEMORY, "out of memory");
            else
                k->n_models++;
            i++;
        }
    }
    const cJSON *direct = cJSON_GetObjectItemCaseSensitive(o, "direct");
    if (!rc && direct) {
        if (!cJSON_IsBool(direct))
            rc = llmux__err(err, LLMUX_ERR_CONFIG, "%s.direct: true or false", path);
        else
            k->direct = cJSON_IsTrue(direct);
    }
    const cJSON *exp = cJSON_GetObjectItemCaseSensitive(o, "expires");
    if (!rc && exp &&
        (!cJSON_IsString(exp) || (k->expires = parse_time(exp->valuestring)) <= 0))
        rc = llmux__err(err, LLMUX_ERR_CONFIG,
                        "%s.expires: a UTC time like \"2027-01-01T00:00:00Z\"", path);
    if (!rc) {
        snprintf(q, sizeof q, "%.300s.budgets", path);
        rc = llmux__budgets_parse(&k->s, cJSON_GetObjectItemCaseSensitive(o, "budgets"), q, err);
    }
    if (!rc) {
        snprintf(q, sizeof q, "%.300s.limits", path);
        rc = llmux__limits_parse(&k->s, cJSON_GetObjectItemCaseSensitive(o, "limits"), q, err);
    }
    if (rc) {
        key_free(k);
        return rc;
    }
    *out = k;
    return LLMUX_OK;
}

static int valid_id(const char *id)
{
    size_t n = strlen(id);
    if (!n || n > 64)
        return 0;
    for (const char *c = id; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
              *c == '-' || *c == '_' || *c == '.'))
            return 0;
    return 1;
}

static lx_pkey *find_key_id(lx_policy *p, const char *id)
{
    for (size_t i = 0; i < p->n_keys; i++)
        if (strcmp(p->keys[i]->s.name, id) == 0)
            return p->keys[i];
    return NULL;
}

/* The digest index: open addressing on the digest's first 8 bytes (slots
 * hold key index + 1). Which slot a presented key probes depends only on its
 * own digest, and each candidate is confirmed with CRYPTO_memcmp. */
static size_t slot_of(const unsigned char md[32], size_t mask)
{
    uint64_t h;
    memcpy(&h, md, sizeof h);
    return (size_t)h & mask;
}

/* Rebuild the index for n keys (under the write lock, or at open). */
static int index_build(lx_policy *p, size_t n)
{
    size_t cap = 16;
    while (cap < 2 * n)
        cap *= 2;
    size_t *slots = calloc(cap, sizeof *slots);
    if (!slots)
        return -1;
    for (size_t i = 0; i < p->n_keys; i++) {
        size_t k = slot_of(p->keys[i]->sha, cap - 1);
        while (slots[k])
            k = (k + 1) & (cap - 1);
        slots[k] = i + 1;
    }
    free(p->slots);
    p->slots = slots;
    p->slot_mask = cap - 1;
    return 0;
}

static lx_pkey *find_key_sha(const lx_policy *p, const unsigned char md[32])
{
    if (!p->slots)
        return NULL;
    for (size_t k = slot_of(md, p->slot_mask); p->slots[k]; k = (k + 1) & p->slot_mask)
        if (CRYPTO_memcmp(p->keys[p->slots[k] - 1]->sha, md, 32) == 0)
            return p->keys[p->slots[k] - 1];
    return NULL;
}

/* Under the write lock (or at open). */
static int key_insert(lx_policy *p, lx_pkey *k, lx_err *err)
{
    if (find_key_id(p, k->s.name))
        return llmux__err(err, LLMUX_ERR_INVALID_ARGUMENT, "a key with id \"%s\" already exists",
                          k->s.name);
    const lx_pkey *same = find_key_sha(p, k->sha);
    if (same)
        return llmux__err(err, LLMUX_ERR_INVALID_ARGUMENT,
                          "key \"%s\" has the same secret as key \"%s\"", k->s.name,
                          same->s.name);
    if (p->n_keys == p->cap_keys) {
        size_t cap = p->cap_keys ? p->cap_keys * 2 : 8;
        lx_pkey **a = realloc(p->keys, cap * sizeof *a);
        if (!a)
            return llmux__err(err, LLMUX_ERR_NO_MEMORY, "out of memory");
        p->keys = a;
        p->cap_keys = cap;
    }
    p->keys[p->n_keys++] = k;
    if (!p->slots || p->n_keys * 2 > p->slot_mask + 1) {
        if (index_build(p, p->n_keys)) { /* places every key, k too */
            p->n_keys--;
            return llmux__err(err, LLMUX_ERR_NO_MEMORY, "out of memory");
        }
    } else {
        size_t i = slot_of(k->sha, p->slot_mask);
        while (p->slots[i])
            i = (i + 1) & p->slot_mask;
        p->slots[i] = p->n_keys;
    }
    return LLMUX_OK;
}

static int parse_section(const char *text, cJSON **out, lx_err *err)
{
    *out = NULL;
    if (text && !(*out = cJSON_Parse(text)))
        return llmux__err(err, LLMUX_ERR_NO_MEMORY, "out of memory");
    return LLMUX_OK;
}

static int build(lx_policy *p, const lx_config *cfg, lx_err *err)
{
    cJSON *keys = NULL, *teams = NULL, *budgets = NULL;
    int rc = parse_section(cfg->keys_json, &keys, err);
    if (!rc)
        rc = parse_section(cfg->teams_json, &teams, err);
    if (!rc)
        rc = parse_section(cfg->budgets_json, &budgets, err);
    if (!rc && teams) {
        if (!cJSON_IsObject(teams))
            rc = llmux__err(err, LLMUX_ERR_CONFIG, "teams: must be an object of teams by name");
        int n = cJSON_GetArraySize(teams);
        if (!rc && n && !(p->teams = calloc((size_t)n, sizeof *p->teams)))
            rc = llmux__err(err, LLMUX_ERR_NO_MEMORY, "out of memory");
        const cJSON *t;
        cJSON_ArrayForEach(t, teams) {
            if (rc)
                break;
            char path[300];
            snprintf(path, sizeof path, "teams.%.200s", t->string);
            lx_scope *s = &p->teams[p->n_teams];
            s->kind = "team";
            if (!cJSON_IsObject(t)) {
                rc = llmux__err(err, LLMUX_ERR_CONFIG, "%s: must be an object", path);
                break;
            }
            const cJSON *m;
            cJSON_ArrayForEach(m, t) {
                if (!rc && strcmp(m->string, "budgets") && strcmp(m->string, "limits"))
                    rc = llmux__err(err, LLMUX_ERR_CONFIG,
                                    "%s.%.64s: unknown key (known: budgets, limits)", path,
                                    m->string);
            }
            if (rc || !(s->name = strdup(t->string))) {
                rc = rc ? rc : llmux__err(err, LLMUX_ERR_NO_MEMORY, "out of memory");
                break;
            }
            p->n_teams++;
            char q[320];
            snprintf(q, sizeof q, "%s.budgets", path);
            rc = llmux__budgets_parse(s, cJSON_GetObjectItemCaseSensitive(t, "budgets"), q, err);
            snprintf(q, sizeof q, "%s.limits", path);
            if (!rc)
                rc = llmux__limits_parse(s, cJSON_GetObjectItemCaseSensitive(t, "limits"), q, err);
        }
    }
    if (!rc)
        rc = llmux__budgets_parse(&p->global, budgets, "budgets", err);
    if (!rc && keys) {
        if (!cJSON_IsObject(keys))
            rc = llmux__err(err, LLMUX_ERR_CONFIG, "keys: must be an object of keys by id");
        const cJSON *k;
        cJSON_ArrayForEach(k, keys) {
            if (rc)
                break;
            char path[300];
            snprintf(path, sizeof path, "keys.%.200s", k->string);
            lx_pkey *key = NULL;
            if (!valid_id(k->string))
                rc = llmux__err(err, LLMUX_ERR_CONFIG,
                                "%s: a key id is 1-64 letters, digits, '-', '_' or '.'", path);
            else if (!(rc = key_parse(p, k->string, k, path, 0, &key, err)) &&
                     (rc = key_insert(p, key, err))) {
                key_free(key);
                char msg[sizeof err->msg];
                memcpy(msg, err->msg, sizeof msg);
                if (rc == LLMUX_ERR_INVALID_ARGUMENT)
                    rc = llmux__err(err, LLMUX_ERR_CONFIG, "%s: %.200s", path, msg);
            }
        }
    }
    cJSON_Delete(keys);
    cJSON_Delete(teams);
    cJSON_Delete(budgets);
    return rc;
}

int llmux__policy_new(lx_policy **out, const lx_config *cfg, lx_err *err)
{
    lx_policy *p = calloc(1, sizeof *p);
    if (!p)
        return llmux__err(err, LLMUX_ERR_NO_MEMORY, "out of memory");
    pthread_rwlock_init(&p->keys_lock, NULL);
    pthread_mutex_init(&p->mu, NULL);
    p->cfg = cfg;
    p->global.kind = "global";
    if (!(p->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL))) {
        llmux__policy_free(p);
        return llmux__err(err, LLMUX_ERR_INTERNAL, "OpenSSL has no SHA-256");
    }
    p->require_key = cfg->require_key;
    int rc = build(p, cfg, err);
    if (rc) {
        llmux__policy_free(p);
        return rc;
    }
    *out = p;
    return LLMUX_OK;
}

void llmux__policy_free(lx_policy *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->n_keys; i++)
        key_free(p->keys[i]);
    free(p->keys);
    free(p->slots);
    for (size_t i = 0; i < p->n_teams; i++)
        llmux__scope_free(&p->teams[i]);
    free(p->teams);
    llmux__scope_free(&p->global);
    EVP_MD_free(p->sha256);
    pthread_rwlock_destroy(&p->keys_lock);
    pthread_mutex_destroy(&p->mu);
    free(p);
}

int llmux__policy_idle(const lx_policy *p)
{
    return !p->require_key && !p->global.n_budgets;
}

int llmux__policy_auth(lx_policy *p, const char *plaintext, lx_pkey **key, lx_err *err)
{
    *key = NULL;
    if (!plaintext)
        return p->require_key ? llmux__err(err, LLMUX_ERR_AUTH,
                                           "a gateway key is required (require_key) and the call "
                                           "has none")
                              : LLMUX_OK;
    unsigned char md[32];
    if (sha256(p, plaintext, strlen(plaintext), md))
        return llmux__err(err, LLMUX_ERR_INTERNAL, "SHA-256 failed");
    lx_pkey *found = NULL;
    pthread_rwlock_rdlock(&p->keys_lock);
    /* a gateway that knows no keys takes any key as a label, as before keys */
    int enforce = p->n_keys > 0 || p->require_key;
    found = find_key_sha(p, md);
    pthread_rwlock_unlock(&p->keys_lock);
    OPENSSL_cleanse(md, sizeof md);
    if (!found && !enforce)
        return LLMUX_OK;
    if (!found)
        return llmux__err(err, LLMUX_ERR_AUTH, "unknown gateway key");
    *key = found; /* also when refused: the ledger counts the refusal under its id */
    if (found->revoked)
        return llmux__err(err, LLMUX_ERR_AUTH, "gateway key \"%s\" is revoked", found->s.name);
    if (found->expires && wall_s() >= found->expires)
        return llmux__err(err, LLMUX_ERR_AUTH, "gateway key \"%s\" has expired", found->s.name);
    return LLMUX_OK;
}

const char *llmux__policy_key_id(const lx_pkey *k)
{
    return k ? k->s.name : NULL;
}

const char *llmux__policy_key_team(const lx_pkey *k)
{
    return k ? k->team_name : NULL;
}

static int permitted(const lx_pkey *k, const char *alias)
{
    if (!alias)
        return k->direct;
    if (!k->models)
        return 1;
    for (size_t i = 0; i < k->n_models; i++)
        if (strcmp(k->models[i], alias) == 0)
            return 1;
    return 0;
}

/* The scopes whose budgets and limits apply: the key's, its team's, global. */
static int scopes_of(lx_policy *p, lx_pkey *key, lx_scope *out[3])
{
    int n = 0;
    if (key) {
        out[n++] = &key->s;
        if (key->team)
            out[n++] = key->team;
    }
    out[n++] = &p->global;
    return n;
}

static int unpriced(const lx_demand *d, lx_err *err)
{
    return llmux__err(err, LLMUX_ERR_BUDGET,
                      "%.120s has no known price, and a budget applies to this call: add it to "
                      "\"prices\" (a budget cannot count what it cannot price)",
                      d->unpriced ? d->unpriced : "a target");
}

int llmux__policy_admit(lx_policy *p, lx_pkey *key, const lx_demand *d, lx_admission *adm,
                        long *retry_after_ms, lx_err *err)
{
    memset(adm, 0, sizeof *adm);
    if (key && !permitted(key, d->alias))
        return d->alias ? llmux__err(err, LLMUX_ERR_PERMISSION,
                                     "gateway key \"%s\" may not use the alias \"%.80s\"",
                                     key->s.name, d->alias)
                        : llmux__err(err, LLMUX_ERR_PERMISSION,
                                     "gateway key \"%s\" may not name provider/model directly",
                                     key->s.name);
    lx_scope *scopes[3];
    int n = scopes_of(p, key, scopes);
    int budgeted = 0, limited = 0;
    for (int i = 0; i < n; i++) {
        budgeted |= scopes[i]->n_budgets > 0;
        limited |= scopes[i]->rpm.per_min || scopes[i]->tpm.per_min;
    }
    if (!budgeted && !limited) {
        adm->key = key;
        return LLMUX_OK;
    }
    if (budgeted && d->max_cost_nusd < 0)
        return unpriced(d, err);
    int64_t need = budgeted ? d->max_cost_nusd : 0;
    int64_t now = wall_s();
    double now_ms = limited ? mono_ms() : 0;
    int rc = LLMUX_OK;
    pthread_mutex_lock(&p->mu);
    for (int i = 0; i < n && !rc; i++)
        if (scopes[i]->rpm.per_min || scopes[i]->tpm.per_min)
            rc = llmux__limit_check(scopes[i], now_ms, d->est_tokens, retry_after_ms, err);
    for (int i = 0; i < n && !rc; i++)
        rc = llmux__budget_check(scopes[i], now, need, err);
    if (!rc)
        for (int i = 0; i < n; i++) {
            llmux__limit_take(scopes[i], d->est_tokens);
            llmux__budget_hold(scopes[i], need);
        }
    pthread_mutex_unlock(&p->mu);
    if (rc)
        return rc;
    adm->key = key;
    adm->held_nusd = need;
    adm->held_tokens = d->est_tokens > 0 ? d->est_tokens : 0;
    adm->active = 1;
    return LLMUX_OK;
}

int llmux__policy_extend(lx_policy *p, lx_pkey *key, const lx_demand *d, lx_admission *adm,
                         lx_err *err)
{
    if (key && !permitted(key, d->alias))
        return llmux__err(err, LLMUX_ERR_PERMISSION,
                          "gateway key \"%s\" may not use the alias \"%.80s\" (an alias fallback)",
                          key->s.name, d->alias ? d->alias : "");
    lx_scope *scopes[3];
    int n = scopes_of(p, key, scopes);
    int budgeted = 0;
    for (int i = 0; i < n; i++)
        budgeted |= scopes[i]->n_budgets > 0;
    if (!budgeted)
        return LLMUX_OK;
    if (d->max_cost_nusd < 0)
        return unpriced(d, err);
    int64_t extra = d->max_cost_nusd - adm->held_nusd;
    if (extra <= 0)
        return LLMUX_OK;
    int64_t now = wall_s();
    int rc = LLMUX_OK;
    pthread_mutex_lock(&p->mu);
    for (int i = 0; i < n && !rc; i++)
        rc = llmux__budget_check(scopes[i], now, extra, err);
    if (!rc)
        for (int i = 0; i < n; i++)
            llmux__budget_hold(scopes[i], extra);
    pthread_mutex_unlock(&p->mu);
    if (!rc) {
        adm->held_nusd += extra;
        adm->key = key;
        adm->active = 1;
    }
    return rc;
}

void llmux__policy_settle(lx_policy *p, lx_admission *adm, int64_t cost_nusd, int64_t tokens)
{
    if (!adm->active)
        return;
    adm->active = 0;
    lx_scope *scopes[3];
    int n = scopes_of(p, adm->key, scopes);
    int64_t cost = cost_nusd >= 0 ? cost_nusd : adm->held_nusd;
    lx_buf alerts = LX_BUF_INIT;
    int64_t now = wall_s();
    pthread_mutex_lock(&p->mu);
    for (int i = 0; i < n; i++) {
        llmux__limit_adjust(scopes[i], tokens - adm->held_tokens);
        llmux__budget_settle(scopes[i], now, adm->held_nusd, cost, &alerts);
    }
    lx_alert_fn fn = p->alert;
    void *payload = p->alert_payload;
    pthread_mutex_unlock(&p->mu);
    if (fn && alerts.len) {
        /* one callback per line, outside the lock */
        for (char *line = alerts.data, *nl; line && *line; line = nl ? nl + 1 : NULL) {
            nl = strchr(line, '\n');
            if (nl)
                *nl = '\0';
            fn(line, payload);
        }
    }
    llmux__buf_free(&alerts);
}

int llmux__policy_budgeted(const lx_policy *p)
{
    if (p->global.n_budgets)
        return 1;
    for (size_t i = 0; i < p->n_teams; i++)
        if (p->teams[i].n_budgets)
            return 1;
    for (size_t i = 0; i < p->n_keys; i++)
        if (p->keys[i]->s.n_budgets)
            return 1;
    return 0;
}

void llmux__policy_seed(lx_policy *p, const char *key_id, const char *team, int64_t t_ms,
                        int64_t cost_nusd)
{
    if (cost_nusd <= 0)
        return;
    int64_t t = t_ms >= 0 ? t_ms / 1000 : -((-t_ms + 999) / 1000);
    pthread_rwlock_rdlock(&p->keys_lock);
    lx_pkey *key = key_id ? find_key_id(p, key_id) : NULL;
    lx_scope *scopes[3];
    int n = scopes_of(p, key, scopes);
    if (!key && team) { /* the team's budgets still count it */
        lx_scope *ts = find_team(p, team);
        if (ts) {
            scopes[n] = scopes[n - 1];
            scopes[n - 1] = ts;
            n++;
        }
    }
    int64_t now = wall_s();
    pthread_mutex_lock(&p->mu);
    for (int i = 0; i < n; i++)
        llmux__budget_seed(scopes[i], now, t, cost_nusd);
    pthread_mutex_unlock(&p->mu);
    pthread_rwlock_unlock(&p->keys_lock);
}

int llmux__policy_key_budgeted(lx_policy *p, const char *id)
{
    pthread_rwlock_rdlock(&p->keys_lock);
    lx_pkey *key = find_key_id(p, id);
    int yes = key && key->s.n_budgets > 0;
    pthread_rwlock_unlock(&p->keys_lock);
    return yes;
}

void llmux__policy_seed_key(lx_policy *p, const char *key_id, int64_t t_ms, int64_t cost_nusd)
{
    if (cost_nusd <= 0 || !key_id)
        return;
    int64_t t = t_ms >= 0 ? t_ms / 1000 : -((-t_ms + 999) / 1000);
    pthread_rwlock_rdlock(&p->keys_lock);
    lx_pkey *key = find_key_id(p, key_id);
    if (key) {
        pthread_mutex_lock(&p->mu);
        llmux__budget_seed(&key->s, wall_s(), t, cost_nusd);
        pthread_mutex_unlock(&p->mu);
    }
    pthread_rwlock_unlock(&p->keys_lock);
}

void llmux__policy_set_alert(lx_policy *p, lx_alert_fn fn, void *payload)
{
    pthread_mutex_lock(&p->mu);
    p->alert = fn;
    p->alert_payload = payload;
    pthread_mutex_unlock(&p->mu);
}

/* --------------------------------------------------------- the runtime API */

int llmux__policy_key_add(lx_policy *p, const char *id, const char *spec_json, lx_err *err)
{
    if (!id || !valid_id(id))
        return llmux__err(err, LLMUX_ERR_INVALID_ARGUMENT,
                          "a key id is 1-64 letters, digits, '-', '_' or '.'");
    if (!spec_json)
        return llmux__err(err, LLMUX_ERR_INVALID_ARGUMENT, "spec_json is NULL");
    cJSON *o = cJSON_Parse(spec_json);
    if (!o)
        return llmux__err(err, LLMUX_ERR_INVALID_ARGUMENT, "spec_json is not a JSON object");
    lx_pkey *k = NULL;
    /* the team table is fixed at open: reading it needs no lock */
    int rc = key_parse(p, id, o, id, 1, &k, err);
    /* the plaintext, if any, is in the tree: wipe it before freeing */
    cJSON *plain = cJSON_GetObjectItemCaseSensitive(o, "key");
    if (cJSON_IsString(plain))
        OPENSSL_cleanse(plain->valuestring, strlen(plain->valuestring));
    cJSON_Delete(o);
    if (rc)
        return rc == LLMUX_ERR_CONFIG ? (err->status = LLMUX_ERR_INVALID_ARGUMENT) : rc;
    pthread_rwlock_wrlock(&p->keys_lock);
    rc = key_insert(p, k, err);
    pthread_rwlock_unlock(&p->keys_lock);
    if (rc)
        key_free(k);
    return rc;
}

int llmux__policy_key_rotate(lx_policy *p, const char *id, const char *secret, lx_err *err)
{
    unsigned char md[32];
    if (!id || !secret)
        return llmux__err(err, LLMUX_ERR_INVALID_ARGUMENT, "id and the new key are required");
    if (strlen(secret) < 8 || sha256(p, secret, strlen(secret), md))
        return llmux__err(err, LLMUX_ERR_INVALID_ARGUMENT,
                          "the new key must be at least 8 characters");
    int rc = LLMUX_OK;
    pthread_rwlock_wrlock(&p->keys_lock);
    lx_pkey *k = find_key_id(p, id);
    const lx_pkey *same = find_key_sha(p, md);
    unsigned char old[32];
    if (!k)
        rc = llmux__err(err, LLMUX_ERR_INVALID_ARGUMENT, "no key with id \"%.64s\"", id);
    else if (same && same != k)
        rc = llmux__err(err, LLMUX_ERR_INVALID_ARGUMENT, "the new secret is already key \"%s\"'s",
                        same->s.name);
    if (k && !rc) {
        memcpy(old, k->sha, 32);
        memcpy(k->sha, md, 32);
        if (index_build(p, p->n_keys)) { /* the digest moved: re-place every key */
            memcpy(k->sha, old, 32);
            rc = llmux__err(err, LLMUX_ERR_NO_MEMORY, "out of memory");
        }
        OPENSSL_cleanse(old, sizeof old);
    }
    pthread_rwlock_unlock(&p->keys_lock);
    OPENSSL_cleanse(md, sizeof md);
    return rc;
}

int llmux__policy_key_revoke(lx_policy *p, const char *id, lx_err *err)
{
    if (!id)
        return llmux__err(err, LLMUX_ERR_INVALID_ARGUMENT, "id is NULL");
    pthread_rwlock_rdlock(&p->keys_lock);
    lx_pkey *k = find_key_id(p, id);
    if (k)
        k->revoked = 1;
    pthread_rwlock_unlock(&p->keys_lock);
    return k ? LLMUX_OK : llmux__err(err, LLMUX_ERR_INVALID_ARGUMENT, "no key with id \"%.64s\"", id);
}

int llmux__policy_keys_json(lx_policy *p, char **out, lx_err *err)
{
    lx_buf b = LX_BUF_INIT;
    int64_t now = wall_s();
    int e = llmux__buf_puts(&b, "[");
    pthread_rwlock_rdlock(&p->keys_lock);
    for (size_t i = 0; i < p->n_keys && !e; i++) {
        const lx_pkey *k = p->keys[i];
        const char *state = k->revoked                          ? "revoked"
                            : k->expires && now >= k->expires ? "expired"
                                                                : "active";
        e = (i && llmux__buf_puts(&b, ",")) || llmux__buf_puts(&b, "{\"id\":") ||
            llmux__buf_json_string(&b, k->s.name) || llmux__buf_puts(&b, ",\"team\":") ||
            (k->team_name ? llmux__buf_json_string(&b, k->team_name)
                          : llmux__buf_puts(&b, "null")) ||
            llmux__buf_printf(&b, ",\"state\":\"%s\",\"direct\":%s,\"models\":", state,
                              k->direct ? "true" : "false");
        if (!k->models)
            e = e || llmux__buf_puts(&b, "null");
        for (size_t j = 0; k->models && j < k->n_models && !e; j++)
            e = llmux__buf_puts(&b, j ? "," : "[") || llmux__buf_json_string(&b, k->models[j]);
        if (k->models)
            e = e || llmux__buf_puts(&b, k->n_models ? "]" : "[]");
        if (k->expires) {
            char t[32];
            time_t tt = (time_t)k->expires;
            struct tm tm;
            gmtime_r(&tt, &tm);
            strftime(t, sizeof t, "\"%Y-%m-%dT%H:%M:%SZ\"", &tm);
            e = e || llmux__buf_printf(&b, ",\"expires\":%s", t);
        }
        e = e || llmux__buf_puts(&b, "}");
    }
    pthread_rwlock_unlock(&p->keys_lock);
    if (e || llmux__buf_puts(&b, "]")) {
        llmux__buf_free(&b);
        return llmux__err(err, LLMUX_ERR_NO_MEMORY, "out of memory");
    }
    *out = llmux__buf_steal(&b);
    return LLMUX_OK;
}

int llmux__policy_budgets_json(lx_policy *p, char **out, lx_err *err)
{
    lx_buf b = LX_BUF_INIT;
    int64_t now = wall_s();
    int e = llmux__buf_puts(&b, "[");
    pthread_rwlock_rdlock(&p->keys_lock);
    pthread_mutex_lock(&p->mu);
    e = e || llmux__budget_json(&b, &p->global, now);
    for (size_t i = 0; i < p->n_teams && !e; i++)
        e = llmux__budget_json(&b, &p->teams[i], now);
    for (size_t i = 0; i < p->n_keys && !e; i++)
        e = llmux__budget_json(&b, &p->keys[i]->s, now);
    pthread_mutex_unlock(&p->mu);
    pthread_rwlock_unlock(&p->keys_lock);
    if (e || llmux__buf_puts(&b, "]")) {
        llmux__buf_free(&b);
        return llmux__err(err, LLMUX_ERR_NO_MEMORY, "out of memory");
    }
    *out = llmux__buf_steal(&b);
    return LLMUX_OK;
}
