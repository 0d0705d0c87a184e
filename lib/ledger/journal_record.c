/*
 * Journal records: encoding, checked parsing, CSV, and UTC times. The parser
 * reads only the flat objects the encoder writes (strings, integers, true,
 * false, null), so the ledger needs no JSON library; the CRC is checked first.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/crc32.h"
#include "ledger/journal.h"

/* ------------------------------------------------------------------ times */

static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

static int digits(const char **s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++, (*s)++) {
        if (**s < '0' || **s > '9')
            return -1;
        v = v * 10 + (**s - '0');
    }
    *out = v;
    return 0;
}

int64_t llmux__utc_parse(const char *s)
{
    int y, mo, d, h = 0, mi = 0, sec = 0, ms = 0;
    if (!s || digits(&s, 4, &y) || *s++ != '-' || digits(&s, 2, &mo) || *s++ != '-' ||
        digits(&s, 2, &d))
        return -1;
    static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] ||
        (mo == 2 && d == 29 && (y % 4 || (y % 100 == 0 && y % 400))))
        return -1;
    if (*s) {
        if ((*s != 'T' && *s != 't') || (s++, digits(&s, 2, &h)) || *s++ != ':' ||
            digits(&s, 2, &mi))
            return -1;
        if (*s == ':') {
            s++;
            if (digits(&s, 2, &sec))
                return -1;
            if (*s == '.') {
                s++;
                int n = 0;
                for (; *s >= '0' && *s <= '9'; s++, n++)
                    if (n < 3)
                        ms = ms * 10 + (*s - '0');
                if (!n)
                    return -1;
                for (; n < 3; n++)
                    ms *= 10;
            }
        }
        if ((*s != 'Z' && *s != 'z') || s[1] || h > 23 || mi > 59 || sec > 60)
            return -1;
    }
    return ((days_from_civil(y, mo, d) * 24 + h) * 60 + mi) * 60000LL + sec * 1000LL + ms;
}

void llmux__utc_format(int64_t ms, char out[32])
{
    int64_t days = ms >= 0 ? ms / 86400000 : -((-ms + 86399999) / 86400000);
    int64_t rem = ms - days * 86400000;
    int64_t y;
    int m, d;
    civil_from_days(days, &y, &m, &d);
    if (y >= 0 && y <= 9999) { /* the common case, without printf (on every settle) */
        int v[7] = {(int)y, m, d, (int)(rem / 3600000), (int)(rem / 60000 % 60),
                    (int)(rem / 1000 % 60), (int)(rem % 1000)};
        static const int width[7] = {4, 2, 2, 2, 2, 2, 3};
        static const char after[7] = {'-', '-', 'T', ':', ':', '.', 'Z'};
        char *o = out;
        for (int i = 0; i < 7; i++) {
            for (int k = width[i] - 1, x = v[i]; k >= 0; k--, x /= 10)
                o[k] = (char)('0' + x % 10);
            o += width[i];
            *o++ = after[i];
        }
        *o = '\0';
        return;
    }
    char tmp[96];
    snprintf(tmp, sizeof tmp, "%04" PRId64 "-%02d-%02dT%02d:%02d:%02d.%03dZ", y, m, d,
             (int)(rem / 3600000), (int)(rem / 60000 % 60), (int)(rem / 1000 % 60),
             (int)(rem % 1000));
    tmp[31] = '\0'; /* years past 9999 are cut, never met */
    memcpy(out, tmp, 32);
}

/* --------------------------------------------------------------- encoding */

static int str_or_null(lx_buf *b, const char *s)
{
    return s ? llmux__buf_json_string(b, s) : llmux__buf_puts(b, "null");
}

static int put_field(lx_buf *b, const char *name, int64_t v)
{
    return llmux__buf_puts(b, name) || llmux__buf_int(b, (long long)v);
}

int llmux__jrec_line(lx_buf *b, const lx_jrec *r)
{
    char when[32];
    llmux__utc_format(r->t_ms, when);
    size_t start = b->len;
    /* the CRC's place, filled in once the JSON is written */
    int bad = llmux__buf_puts(b, r->summary ? "00000000 {\"type\":\"summary\",\"t\":"
                                            : "00000000 {\"type\":\"call\",\"t\":") ||
              llmux__buf_int(b, (long long)r->t_ms) || llmux__buf_puts(b, ",\"time\":\"") ||
              llmux__buf_puts(b, when) || llmux__buf_puts(b, "\",\"key\":") ||
              str_or_null(b, r->key) || llmux__buf_puts(b, ",\"workflow\":") ||
              str_or_null(b, r->workflow) || llmux__buf_puts(b, ",\"task\":") ||
              str_or_null(b, r->task) || llmux__buf_puts(b, ",\"model\":") ||
              str_or_null(b, r->model) || llmux__buf_puts(b, ",\"provider\":") ||
              str_or_null(b, r->provider) || llmux__buf_puts(b, ",\"team\":") ||
              str_or_null(b, r->team) || llmux__buf_puts(b, ",\"alias\":") ||
              str_or_null(b, r->alias) ||
              llmux__buf_puts(b, r->ok ? ",\"ok\":true" : ",\"ok\":false") ||
              llmux__buf_puts(b, r->estimated ? ",\"estimated\":true" : ",\"estimated\":false") ||
              put_field(b, ",\"calls\":", r->calls) ||
              put_field(b, ",\"prompt_tokens\":", r->prompt_tokens) ||
              put_field(b, ",\"completion_tokens\":", r->completion_tokens) ||
              put_field(b, ",\"cached_tokens\":", r->cached_tokens) ||
              put_field(b, ",\"cache_write_tokens\":", r->cache_write_tokens) ||
              put_field(b, ",\"reasoning_tokens\":", r->reasoning_tokens) ||
              (r->cost_nusd >= 0 ? put_field(b, ",\"cost_nusd\":", r->cost_nusd)
                                 : llmux__buf_puts(b, ",\"cost_nusd\":null")) ||
              llmux__buf_puts(b, "}\n");
    if (bad)
        return -1;
    uint32_t crc = llmux__crc32(0, b->data + start + 9, b->len - start - 10);
    for (int i = 7; i >= 0; i--, crc >>= 4)
        b->data[start + i] = "0123456789abcdef"[crc & 15];
    return 0;
}

/* ---------------------------------------------------------------- parsing */

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static long hex4(const char *p, const char *end)
{
    if (end - p < 4)
        return -1;
    long v = 0;
    for (int i = 0; i < 4; i++) {
        int h = hexval(p[i]);
        if (h < 0)
            return -1;
        v = v * 16 + h;
    }
    return v;
}

/* A JSON string at *p, unescaped in place; *out points at it, NUL-terminated. */
static int parse_string(char **p, char *end, const char **out)
{
    char *s = *p, *w;
    if (s >= end || *s != '"')
        return -1;
    w = ++s;
    *out = w;
    while (s < end && *s != '"') {
        unsigned char c = (unsigned char)*s;
        if (c < 0x20)
            return -1;
        if (c != '\\') {
            *w++ = *s++;
            continue;
        }
        if (++s >= end)
            return -1;
        char e = *s++;
        switch (e) {
        case '"': case '\\': case '/': *w++ = e; break;
        case 'b': *w++ = '\b'; break;
        case 'f': *w++ = '\f'; break;
        case 'n': *w++ = '\n'; break;
        case 'r': *w++ = '\r'; break;
        case 't': *w++ = '\t'; break;
        case 'u': {
            long u = hex4(s, end);
            if (u < 0)
                return -1;
            s += 4;
            if (u >= 0xDC00 && u <= 0xDFFF)
                return -1;
            if (u >= 0xD800 && u <= 0xDBFF) {
                long lo = end - s >= 6 && s[0] == '\\' && s[1] == 'u' ? hex4(s + 2, end) : -1;
                if (lo < 0xDC00 || lo > 0xDFFF)
                    return -1;
                s += 6;
                u = 0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00);
            }
            if (u == 0)
                return -1; /* the ledger's strings are C strings */
            if (u < 0x80) {
                *w++ = (char)u;
            } else if (u < 0x800) {
                *w++ = (char)(0xC0 | (u >> 6));
                *w++ = (char)(0x80 | (u & 0x3F));
            } else if (u < 0x10000) {
                *w++ = (char)(0xE0 | (u >> 12));
                *w++ = (char)(0x80 | ((u >> 6) & 0x3F));
                *w++ = (char)(0x80 | (u & 0x3F));
            } else {
                *w++ = (char)(0xF0 | (u >> 18));
                *w++ = (char)(0x80 | ((u >> 12) & 0x3F));
                *w++ = (char)(0x80 | ((u >> 6) & 0x3F));
                *w++ = (char)(0x80 | (u & 0x3F));
            }
            break;
        }
        default:
            return -1;
        }
    }
    if (s >= end)
        return -1;
    *w = '\0'; /* w <= s: the closing quote's place or before */
    *p = s + 1;
    return 0;
}

static int parse_int(char **p, char *end, int64_t *out)
{
    char *s = *p;
    int neg = s < end && *s == '-';
    s += neg;
    if (s >= end || *s < '0' || *s > '9' || (*s == '0' && s + 1 < end && s[1] >= '0' && s[1] <= '9'))
        return -1;
    int64_t v = 0;
    for (; s < end && *s >= '0' && *s <= '9'; s++)
        if (__builtin_mul_overflow(v, 10, &v) || __builtin_add_overflow(v, *s - '0', &v))
            return -1;
    *out = neg ? -v : v;
    *p = s;
    return 0;
}

static int literal(char **p, char *end, const char *word)
{
    size_t n = strlen(word);
    if ((size_t)(end - *p) < n || memcmp(*p, word, n))
        return -1;
    *p += n;
    return 0;
}

enum { V_STR, V_INT, V_TRUE, V_FALSE, V_NULL };

int llmux__jrec_parse(char *line, size_t len, lx_jrec *r)
{
    char *end = line + len;
    if (len < 11 || line[8] != ' ')
        return -1;
    uint32_t want = 0;
    for (int i = 0; i < 8; i++) {
        int h = hexval(line[i]);
        if (h < 0 || (line[i] >= 'A' && line[i] <= 'F'))
            return -1;
        want = want * 16 + (uint32_t)h;
    }
    if (llmux__crc32(0, line + 9, len - 9) != want)
        return -1;
    memset(r, 0, sizeof *r);
    r->cost_nusd = -1;
    int seen = 0;
    enum { HAVE_TYPE = 1, HAVE_T = 2, HAVE_CALLS = 4 };
    char *p = line + 9;
    if (*p++ != '{')
        return -1;
    for (int first = 1;; first = 0) {
        if (p < end && *p == '}' && first) {
            p++;
            break;
        }
        const char *name, *sv = NULL;
        int64_t iv = 0;
        int kind;
        if (parse_string(&p, end, &name) || p >= end || *p++ != ':' || p >= end)
            return -1;
        if (*p == '"')
            kind = parse_string(&p, end, &sv) ? -1 : V_STR;
        else if (*p == 't')
            kind = literal(&p, end, "true") ? -1 : V_TRUE;
        else if (*p == 'f')
            kind = literal(&p, end, "false") ? -1 : V_FALSE;
        else if (*p == 'n')
            kind = literal(&p, end, "null") ? -1 : V_NULL;
        else
            kind = parse_int(&p, end, &iv) ? -1 : V_INT;
        if (kind < 0)
            return -1;
        struct {
            const char *name;
            const char **s;
            int64_t *i;
        } const fields[] = {
            {"key", &r->key, NULL},
            {"workflow", &r->workflow, NULL},
            {"task", &r->task, NULL},
            {"model", &r->model, NULL},
            {"provider", &r->provider, NULL},
            {"team", &r->team, NULL},
            {"alias", &r->alias, NULL},
            {"calls", NULL, &r->calls},
            {"prompt_tokens", NULL, &r->prompt_tokens},
            {"completion_tokens", NULL, &r->completion_tokens},
            {"cached_tokens", NULL, &r->cached_tokens},
            {"cache_write_tokens", NULL, &r->cache_write_tokens},
            {"reasoning_tokens", NULL, &r->reasoning_tokens},
        };
        int known = 0;
        for (size_t f = 0; f < sizeof fields / sizeof fields[0]; f++) {
            if (strcmp(name, fields[f].name))
                continue;
            known = 1;
            if (fields[f].s && kind == V_STR)
                *fields[f].s = sv;
            else if (fields[f].s && kind == V_NULL)
                *fields[f].s = NULL;
            else if (fields[f].i && kind == V_INT && iv >= 0)
                *fields[f].i = iv;
            else
                return -1;
        }
        if (known) {
            seen |= strcmp(name, "calls") == 0 ? HAVE_CALLS : 0;
        } else if (strcmp(name, "type") == 0) {
            if (kind != V_STR || (strcmp(sv, "call") && strcmp(sv, "summary")))
                return -1;
            r->summary = sv[0] == 's';
            seen |= HAVE_TYPE;
        } else if (strcmp(name, "t") == 0) {
            if (kind != V_INT)
                return -1;
            r->t_ms = iv;
            seen |= HAVE_T;
        } else if (strcmp(name, "ok") == 0 || strcmp(name, "estimated") == 0) {
            if (kind != V_TRUE && kind != V_FALSE)
                return -1;
            *(name[0] == 'o' ? &r->ok : &r->estimated) = kind == V_TRUE;
        } else if (strcmp(name, "cost_nusd") == 0) {
            if (kind == V_INT && iv >= 0)
                r->cost_nusd = iv;
            else if (kind != V_NULL)
                return -1;
        } /* other members (time, and any a later version adds) are skipped */
        if (p >= end)
            return -1;
        if (*p == '}') {
            p++;
            break;
        }
        if (*p++ != ',')
            return -1;
    }
    if (p != end || seen != (HAVE_TYPE | HAVE_T | HAVE_CALLS) || r->calls < 1 ||
        (!r->summary && r->calls != 1))
        return -1;
    return 0;
}

/* -------------------------------------------------------------------- CSV */

int llmux__jrec_csv_header(lx_buf *b)
{
    return llmux__buf_puts(b, "type,time,key,workflow,task,model,provider,team,alias,ok,estimated,calls,"
                              "prompt_tokens,completion_tokens,cached_tokens,cache_write_tokens,"
                              "reasoning_tokens,cost_nusd\r\n");
}

/* A field, quoted when it holds a comma, quote, CR or LF, or could be read as
 * a spreadsheet formula (a leading = + - @ gets a ' inside the quotes). */
static int csv_field(lx_buf *b, const char *s)
{
    if (!s)
        return llmux__buf_puts(b, ",");
    int formula = strchr("=+-@\t\r", s[0]) && s[0];
    if (!formula && !strpbrk(s, ",\"\r\n"))
        return llmux__buf_puts(b, s) || llmux__buf_puts(b, ",");
    if (llmux__buf_puts(b, formula ? "\"'" : "\""))
        return -1;
    for (const char *p = s; *p; p++)
        if ((*p == '"' && llmux__buf_puts(b, "\"")) || llmux__buf_append(b, p, 1))
            return -1;
    return llmux__buf_puts(b, "\",");
}

int llmux__jrec_csv(lx_buf *b, const lx_jrec *r)
{
    char when[32];
    llmux__utc_format(r->t_ms, when);
    int bad = llmux__buf_printf(b, "%s,%s,", r->summary ? "summary" : "call", when) ||
              csv_field(b, r->key) || csv_field(b, r->workflow) || csv_field(b, r->task) ||
              csv_field(b, r->model) || csv_field(b, r->provider) || csv_field(b, r->team) ||
              csv_field(b, r->alias) ||
              llmux__buf_printf(b,
                                "%s,%s,%" PRId64 ",%" PRId64 ",%" PRId64 ",%" PRId64 ",%" PRId64
                                ",%" PRId64 ",",
                                r->ok ? "true" : "false", r->estimated ? "true" : "false",
                                r->calls, r->prompt_tokens, r->completion_tokens, r->cached_tokens,
                                r->cache_write_tokens, r->reasoning_tokens);
    if (!bad && r->cost_nusd >= 0)
        bad = llmux__buf_printf(b, "%" PRId64, r->cost_nusd);
    return bad || llmux__buf_puts(b, "\r\n");
}
