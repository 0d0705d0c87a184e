/* http.c - sans-I/O HTTP/1.1 request head parser and chunked body decoder. */
#include "http.h"

#include <string.h>
#include <strings.h>

/* RFC 9110 tchar: ALPHA / DIGIT / "!#$%&'*+-.^_`|~" */
static const unsigned char tchar[256] = {
    ['0'] = 1, ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1, ['5'] = 1, ['6'] = 1, ['7'] = 1,
    ['8'] = 1, ['9'] = 1,
    ['a'] = 1, ['b'] = 1, ['c'] = 1, ['d'] = 1, ['e'] = 1, ['f'] = 1, ['g'] = 1, ['h'] = 1,
    ['i'] = 1, ['j'] = 1, ['k'] = 1, ['l'] = 1, ['m'] = 1, ['n'] = 1, ['o'] = 1, ['p'] = 1,
    ['q'] = 1, ['r'] = 1, ['s'] = 1, ['t'] = 1, ['u'] = 1, ['v'] = 1, ['w'] = 1, ['x'] = 1,
    ['y'] = 1, ['z'] = 1,
    ['A'] = 1, ['B'] = 1, ['C'] = 1, ['D'] = 1, ['E'] = 1, ['F'] = 1, ['G'] = 1, ['H'] = 1,
    ['I'] = 1, ['J'] = 1, ['K'] = 1, ['L'] = 1, ['M'] = 1, ['N'] = 1, ['O'] = 1, ['P'] = 1,
    ['Q'] = 1, ['R'] = 1, ['S'] = 1, ['T'] = 1, ['U'] = 1, ['V'] = 1, ['W'] = 1, ['X'] = 1,
    ['Y'] = 1, ['Z'] = 1,
    ['!'] = 1, ['#'] = 1, ['$'] = 1, ['%'] = 1, ['&'] = 1, ['\''] = 1, ['*'] = 1, ['+'] = 1,
    ['-'] = 1, ['.'] = 1, ['^'] = 1, ['_'] = 1, ['`'] = 1, ['|'] = 1, ['~'] = 1,
};

static inline int is_tchar(unsigned char c)
{
    return tchar[c];
}

static int span_ieq(const char *buf, size_t off, size_t len, const char *lit)
{
    size_t n = strlen(lit);
    return len == n && strncasecmp(buf + off, lit, n) == 0;
}

/* Looks for the empty line that ends the head; returns the head length or 0. */
static size_t find_head_end(const char *buf, size_t len, size_t from)
{
    size_t i = from;
    for (;; i++) {
        const char *nl = i < len ? memchr(buf + i, '\n', len - i) : NULL;
        if (!nl)
            return 0;
        i = (size_t)(nl - buf);
        if (i + 1 < len && buf[i + 1] == '\n')
            return i + 2;
        if (i + 2 < len && buf[i + 1] == '\r' && buf[i + 2] == '\n')
            return i + 3;
    }
}

/* Calls fn for each comma-separated element of a header value (trimmed). */
static int list_has(const char *v, size_t n, const char *token)
{
    size_t i = 0;
    while (i < n) {
        while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
            i++;
        size_t s = i;
        while (i < n && v[i] != ',')
            i++;
        size_t e = i;
        while (e > s && (v[e - 1] == ' ' || v[e - 1] == '\t'))
            e--;
        if (e > s && span_ieq(v, s, e - s, token))
            return 1;
    }
    return 0;
}

static long parse_content_length(const char *v, size_t n, int64_t *out)
{
    if (n == 0 || n > 18)
        return -400;
    int64_t x = 0;
    for (size_t i = 0; i < n; i++) {
        if (v[i] < '0' || v[i] > '9')
            return -400;
        x = x * 10 + (v[i] - '0');
    }
    if (*out >= 0 && *out != x)
        return -400; /* conflicting duplicates */
    *out = x;
    return 0;
}

/* Transfer-Encoding: only "chunked" (possibly listed more than once is an
 * error too) is understood. */
static long parse_transfer_encoding(const char *v, size_t n, int *chunked)
{
    size_t i = 0;
    int seen = 0;
    while (i < n) {
        while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
            i++;
        size_t s = i;
        while (i < n && v[i] != ',')
            i++;
        size_t e = i;
        while (e > s && (v[e - 1] == ' ' || v[e - 1] == '\t'))
            e--;
        if (e == s)
            continue;
        if (!span_ieq(v, s, e - s, "chunked"))
            return -501;
        if (seen || *chunked)
            return -400;
        seen = 1;
    }
    if (!seen)
        return -400;
    *chunked = 1;
    return 0;
}

long http_parse_head(const char *buf, size_t len, http_request *req)
{
    size_t p = 0;
    /* RFC 9112 2.2: ignore empty lines before the request line */
    while (p < len && (buf[p] == '\r' || buf[p] == '\n')) {
        if (p >= 16)
            return -400;
        p++;
    }
    size_t head_len = find_head_end(buf, len, p);
    if (head_len == 0)
        return len >= HTTP_HEAD_MAX ? -431 : 0;
    if (head_len > HTTP_HEAD_MAX)
        return -431;

    memset(req, 0, sizeof *req);
    req->content_length = -1;
    req->head_len = head_len;

    /* request line: method SP target SP HTTP/1.x */
    size_t s = p;
    while (p < head_len && is_tchar((unsigned char)buf[p]))
        p++;
    if (p == s || p - s > 32 || buf[p] != ' ')
        return -400;
    req->method.off = s;
    req->method.len = p - s;
    p++;
    s = p;
    while (p < head_len && (unsigned char)buf[p] > 0x20 && (unsigned char)buf[p] < 0x7f)
        p++;
    if (p == s || buf[p] != ' ')
        return -400;
    if (p - s > HTTP_TARGET_MAX)
        return -414;
    req->target.off = s;
    req->target.len = p - s;
    p++;
    if (head_len - p < 9 || memcmp(buf + p, "HTTP/", 5) != 0)
        return -400;
    char major = buf[p + 5], dot = buf[p + 6], minor = buf[p + 7];
    if (major < '0' || major > '9' || dot != '.' || minor < '0' || minor > '9')
        return -400;
    if (major != '1' || (minor != '0' && minor != '1'))
        return -505;
    req->minor_version = minor - '0';
    p += 8;
    if (buf[p] == '\r')
        p++;
    if (buf[p] != '\n')
        return -400;
    p++;

    int conn_close = 0, conn_keep = 0;
    /* header fields */
    for (;;) {
        if (buf[p] == '\n') {
            p++;
            break;
        }
        if (buf[p] == '\r' && buf[p + 1] == '\n') {
            p += 2;
            break;
        }
        if (buf[p] == ' ' || buf[p] == '\t')
            return -400; /* obsolete line folding */
        size_t ns = p;
        while (is_tchar((unsigned char)buf[p]))
            p++;
        if (p == ns || buf[p] != ':')
            return -400;
        size_t nl = p - ns;
        p++;
        while (buf[p] == ' ' || buf[p] == '\t')
            p++;
        size_t vs = p;
        for (;;) {
            unsigned char c = (unsigned char)buf[p];
            if (c == '\n' || (c == '\r' && buf[p + 1] == '\n'))
                break;
            if ((c < 0x20 && c != '\t') || c == 0x7f)
                return -400;
            p++;
        }
        size_t ve = p;
        while (ve > vs && (buf[ve - 1] == ' ' || buf[ve - 1] == '\t'))
            ve--;
        p += buf[p] == '\r' ? 2 : 1;
        const char *v = buf + vs;
        size_t vl = ve - vs;
        long rc = 0;
        switch (nl) {
        case 6:
            if (span_ieq(buf, ns, nl, "expect")) {
                if (!span_ieq(v, 0, vl, "100-continue"))
                    return -417;
                req->expect_continue = 1;
            }
            break;
        case 7:
            if (span_ieq(buf, ns, nl, "api-key")) {
                req->api_key = (http_span){vs, vl};
                req->has_api_key = 1;
            }
            break;
        case 10:
            if (span_ieq(buf, ns, nl, "connection")) {
                conn_close |= list_has(v, vl, "close");
                conn_keep |= list_has(v, vl, "keep-alive");
            }
            break;
        case 13:
            if (span_ieq(buf, ns, nl, "authorization")) {
                req->authorization.off = vs;
                req->authorization.len = vl;
                req->has_authorization = 1;
            }
            break;
        case 14:
            if (span_ieq(buf, ns, nl, "content-length"))
                rc = parse_content_length(v, vl, &req->content_length);
            else if (span_ieq(buf, ns, nl, "x-goog-api-key")) {
                req->goog_key.off = vs;
                req->goog_key.len = vl;
                req->has_goog_key = 1;
            }
            break;
        case 17:
            if (span_ieq(buf, ns, nl, "transfer-encoding"))
                rc = parse_transfer_encoding(v, vl, &req->chunked);
            break;
        default:
            break;
        }
        if (rc < 0)
            return rc;
    }
    if (p != head_len)
        return -400;
    if (req->chunked && req->content_length >= 0)
        return -400; /* RFC 9112 6.3: a request smuggling risk; refuse */
    if (req->chunked && req->minor_version == 0)
        return -400;
    if (req->minor_version == 1)
        req->keep_alive = !conn_close;
    else
        req->keep_alive = conn_keep && !conn_close;
    return (long)head_len;
}

enum {
    CH_SIZE,
    CH_EXT,
    CH_SIZE_LF,
    CH_DATA,
    CH_DATA_CR,
    CH_DATA_LF,
    CH_TRAILER_START,
    CH_TRAILER_LINE,
    CH_LAST_LF,
    CH_DONE,
};

enum { CH_LINE_MAX = 4096, CH_TRAILERS_MAX = HTTP_HEAD_MAX };

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int http_chunked_feed(http_chunked *c, const char *in, size_t len, size_t *consumed,
                      sim_buf *body, size_t max_body)
{
    size_t i = 0;
    int rc = 0;
    while (i < len && c->state != CH_DONE) {
        unsigned char ch = (unsigned char)in[i];
        switch (c->state) {
        case CH_SIZE: {
            int h = hexval(ch);
            if (h >= 0) {
                if (c->digits >= 15) {
                    rc = -413;
                    goto done;
                }
                c->size = c->size * 16 + (uint64_t)h;
                c->digits++;
                i++;
                break;
            }
            if (c->digits == 0) {
                rc = -400;
                goto done;
            }
            if (ch == ';' || ch == ' ' || ch == '\t') {
                c->state = CH_EXT;
                c->line = 0;
                i++;
                break;
            }
            if (ch == '\r') {
                c->state = CH_SIZE_LF;
                i++;
                break;
            }
            if (ch != '\n') {
                rc = -400;
                goto done;
            }
            /* bare LF ends the size line */
        }
            /* fall through */
        case CH_SIZE_LF:
            if (ch != '\n') {
                rc = -400;
                goto done;
            }
            i++;
        size_done:
            if (c->size == 0) {
                c->state = CH_TRAILER_START;
                c->line = 0;
            } else if (c->size > max_body || body->len > max_body - c->size) {
                rc = -413;
                goto done;
            } else {
                c->state = CH_DATA;
            }
            break;
        case CH_EXT:
            i++;
            if (ch == '\n')
                goto size_done;
            if (ch == '\r') {
                c->state = CH_SIZE_LF;
            } else if (++c->line > CH_LINE_MAX) {
                rc = -400;
                goto done;
            }
            break;
        case CH_DATA: {
            size_t n = len - i;
            if ((uint64_t)n > c->size)
                n = (size_t)c->size;
            if (sim_buf_append(body, in + i, n) < 0) {
                rc = -413;
                goto done;
            }
            i += n;
            c->size -= n;
            if (c->size == 0)
                c->state = CH_DATA_CR;
            break;
        }
        case CH_DATA_CR:
        case CH_DATA_LF:
            if (ch == '\r' && c->state == CH_DATA_CR) {
                c->state = CH_DATA_LF;
                i++;
                break;
            }
            if (ch != '\n') {
                rc = -400;
                goto done;
            }
            i++;
            c->state = CH_SIZE;
            c->size = 0;
            c->digits = 0;
            break;
        case CH_TRAILER_START:
            i++;
            if (ch == '\n')
                c->state = CH_DONE;
            else if (ch == '\r')
                c->state = CH_LAST_LF;
            else
                c->state = CH_TRAILER_LINE;
            if (++c->line > CH_TRAILERS_MAX) {
                rc = -431;
                goto done;
            }
            break;
        case CH_TRAILER_LINE:
            i++;
            if (ch == '\n')
                c->state = CH_TRAILER_START;
            if (++c->line > CH_TRAILERS_MAX) {
                rc = -431;
                goto done;
            }
            break;
        case CH_LAST_LF:
            if (ch != '\n') {
                rc = -400;
                goto done;
            }
            i++;
            c->state = CH_DONE;
            break;
        default:
            rc = -400;
            goto done;
        }
    }
    rc = c->state == CH_DONE;
done:
    *consumed = i;
    return rc;
}

const char *http_reason(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 402: return "Payment Required";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 417: return "Expectation Failed";
    case 422: return "Unprocessable Content";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    case 529: return "Site Overloaded";
    default: return "Unknown";
    }
}
