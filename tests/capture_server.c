#define _GNU_SOURCE /* memmem */
#include "capture_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Serve one connection until it closes; keep-alive requests in turn. */
static void serve(capture_server *s, int c)
{
    char *buf = malloc(1 << 22);
    size_t len = 0, cap = 1 << 22;
    for (;;) {
        char *end = NULL;
        while (!(end = len ? memmem(buf, len, "\r\n\r\n", 4) : NULL)) {
            struct pollfd p = {c, POLLIN, 0};
            if (s->stop || poll(&p, 1, 100) < 0)
                goto out;
            if (!(p.revents & POLLIN))
                continue;
            ssize_t r = recv(c, buf + len, cap - len, 0);
            if (r <= 0)
                goto out;
            len += (size_t)r;
        }
        size_t head = (size_t)(end - buf) + 4;
        size_t body_len = 0;
        for (char *h = buf; h < end; h = strstr(h, "\r\n") + 2)
            if (strncasecmp(h, "Content-Length:", 15) == 0)
                body_len = strtoul(h + 15, NULL, 10);
        while (len < head + body_len) {
            ssize_t r = recv(c, buf + len, cap - len, 0);
            if (r <= 0)
                goto out;
            len += (size_t)r;
        }
        pthread_mutex_lock(&s->mu);
        s->requests++;
        char *sp = memchr(buf, ' ', head), *sp2 = sp ? memchr(sp + 1, ' ', head) : NULL;
        snprintf(s->path, sizeof s->path, "%.*s", sp && sp2 ? (int)(sp2 - sp - 1) : 0, sp + 1);
        snprintf(s->headers, sizeof s->headers, "%.*s", (int)head, buf);
        free(s->raw_body);
        s->raw_body = malloc(body_len + 1);
        memcpy(s->raw_body, buf + head, body_len);
        s->raw_body[body_len] = '\0';
        s->raw_body_len = body_len;
        pthread_mutex_unlock(&s->mu);
        /* a test that sets a new reply cuts a pending delay short */
        for (int waited = 0;; waited += 10) {
            pthread_mutex_lock(&s->mu);
            int delay = s->delay_ms;
            pthread_mutex_unlock(&s->mu);
            if (waited >= delay || s->stop)
                break;
            sleep_ms(10);
        }
        pthread_mutex_lock(&s->mu);
        int status = s->status;
        const char *ct = s->content_type, *body = s->body;
        pthread_mutex_unlock(&s->mu);
        pthread_mutex_lock(&s->mu);
        int hold = s->hold_open;
        pthread_mutex_unlock(&s->mu);
        if (hold) {
            char hdr[256];
            int n = snprintf(hdr, sizeof hdr,
                             "HTTP/1.1 %d X\r\nContent-Type: %s\r\nTransfer-Encoding: chunked"
                             "\r\n\r\n%zx\r\n",
                             status, ct, strlen(body));
            if (write_all(c, hdr, (size_t)n) || write_all(c, body, strlen(body)) ||
                write_all(c, "\r\n", 2))
                goto out;
            while (!s->stop) { /* never the last chunk: only the client can end this */
                struct pollfd p = {c, POLLIN, 0};
                if (poll(&p, 1, 50) > 0) {
                    char tmp[64];
                    if (recv(c, tmp, sizeof tmp, 0) <= 0)
                        goto out;
                }
            }
            goto out;
        }
        char hdr[256];
        int n = snprintf(hdr, sizeof hdr,
                         "HTTP/1.1 %d X\r\nContent-Type: %s\r\nContent-Length: %zu\r\n\r\n",
                         status, ct, strlen(body));
        if (write_all(c, hdr, (size_t)n) || write_all(c, body, strlen(body)))
            goto out;
        memmove(buf, buf + head + body_len, len - head - body_len);
        len -= head + body_len;
    }
out:
    free(buf);
    close(c);
}

typedef struct conn {
    capture_server *s;
    int fd;
} conn;

static void *serve_thread(void *arg)
{
    conn *c = arg;
    serve(c->s, c->fd);
    atomic_fetch_sub(&c->s->active, 1);
    free(c);
    return NULL;
}

static void *loop(void *arg)
{
    capture_server *s = arg;
    while (!s->stop) {
        struct pollfd p = {s->fd, POLLIN, 0};
        if (poll(&p, 1, 50) <= 0)
            continue;
        int fd = accept(s->fd, NULL, NULL);
        conn *c = fd >= 0 ? malloc(sizeof *c) : NULL;
        if (!c) {
            if (fd >= 0)
                close(fd);
            continue;
        }
        c->s = s;
        c->fd = fd;
        pthread_t t;
        atomic_fetch_add(&s->active, 1);
        if (pthread_create(&t, NULL, serve_thread, c)) {
            atomic_fetch_sub(&s->active, 1);
            close(fd);
            free(c);
            continue;
        }
        pthread_detach(t);
    }
    return NULL;
}

int capture_start(capture_server *s)
{
    memset(s, 0, sizeof *s);
    s->status = 200;
    s->content_type = "application/json";
    s->body = "{\"id\":\"c1\",\"object\":\"chat.completion\",\"created\":1,\"model\":\"m\","
              "\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"ok\"},"
              "\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":3,"
              "\"completion_tokens\":1,\"total_tokens\":4}}";
    pthread_mutex_init(&s->mu, NULL);
    s->fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t al = sizeof a;
    if (s->fd < 0 || bind(s->fd, (struct sockaddr *)&a, sizeof a) || listen(s->fd, 16) ||
        getsockname(s->fd, (struct sockaddr *)&a, &al))
        return -1;
    s->port = ntohs(a.sin_port);
    snprintf(s->url, sizeof s->url, "http://127.0.0.1:%d", s->port);
    return pthread_create(&s->thread, NULL, loop, s) ? -1 : 0;
}

void capture_stop(capture_server *s)
{
    s->stop = 1;
    pthread_join(s->thread, NULL);
    while (atomic_load(&s->active) > 0)
        sleep_ms(5);
    close(s->fd);
    free(s->raw_body);
    pthread_mutex_destroy(&s->mu);
}

char *capture_body(capture_server *s)
{
    pthread_mutex_lock(&s->mu);
    char *b = s->raw_body ? strdup(s->raw_body) : NULL;
    pthread_mutex_unlock(&s->mu);
    return b;
}

int capture_has_header(capture_server *s, const char *line)
{
    pthread_mutex_lock(&s->mu);
    char want[512];
    snprintf(want, sizeof want, "\r\n%s\r\n", line);
    int found = strstr(s->headers, want) != NULL;
    pthread_mutex_unlock(&s->mu);
    return found;
}

void capture_reply(capture_server *s, int status, const char *content_type, const char *body,
                   int delay_ms)
{
    pthread_mutex_lock(&s->mu);
    s->status = status;
    s->content_type = content_type;
    s->body = body;
    s->delay_ms = delay_ms;
    pthread_mutex_unlock(&s->mu);
}

int capture_requests(capture_server *s)
{
    pthread_mutex_lock(&s->mu);
    int n = s->requests;
    pthread_mutex_unlock(&s->mu);
    return n;
}
