/* server.c - accept loop, one thread per connection, request framing, stop. */
#include "server.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "http.h"
#include "sim.h"

enum {
    READ_CHUNK = 16 * 1024,
    IN_MAX = HTTP_HEAD_MAX + HTTP_BODY_MAX + 2 * READ_CHUNK,
    OUT_MAX = 64 * 1024 * 1024,
    LINGER_MS = 1000,
    LINGER_BYTES = 1024 * 1024,
};

typedef struct conn_node {
    sim_conn c;
    pthread_t tid;
    int done;               /* the thread has finished (guarded by srv.lock) */
    struct conn_node *next;
} conn_node;

static struct {
    pthread_mutex_t lock;
    conn_node *head;
    size_t live;
    size_t finished;        /* nodes done but not joined yet */
    int stop_pipe[2];
    atomic_int stopping;
} srv = {.lock = PTHREAD_MUTEX_INITIALIZER, .stop_pipe = {-1, -1}};

/* ------------------------------------------------------------------ helpers */

int sim_conn_send2(sim_conn *c, const void *a, size_t an, const void *b, size_t bn)
{
    struct iovec iov[2] = {{(void *)a, an}, {(void *)b, bn}};
    int idx = 0, cnt = 2;
    if (an == 0) {
        idx = 1;
        cnt = 1;
    }
    if (bn == 0)
        cnt--;
    while (cnt > 0) {
        struct msghdr m;
        memset(&m, 0, sizeof m);
        m.msg_iov = iov + idx;
        m.msg_iovlen = (size_t)cnt;
        ssize_t n = sendmsg(c->fd, &m, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        size_t left = (size_t)n;
        while (cnt > 0 && left >= iov[idx].iov_len) {
            left -= iov[idx].iov_len;
            idx++;
            cnt--;
        }
        if (cnt > 0) {
            iov[idx].iov_base = (char *)iov[idx].iov_base + left;
            iov[idx].iov_len -= left;
        }
    }
    return 0;
}

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int sim_sleep_ms(long ms)
{
    long long end = now_ms() + ms;
    for (;;) {
        if (atomic_load(&srv.stopping))
            return -1;
        long long left = end - now_ms();
        if (left <= 0)
            return 0;
        struct pollfd p = {srv.stop_pipe[0], POLLIN, 0};
        int r = poll(&p, 1, (int)(left > 1000000 ? 1000000 : left));
        if (r > 0)
            return -1; /* the stop pipe became readable */
        if (r < 0 && errno != EINTR)
            return -1;
    }
}

void sim_server_request_stop(void)
{
    int saved = errno;
    char b = 1;
    if (srv.stop_pipe[1] >= 0) {
        ssize_t r = write(srv.stop_pipe[1], &b, 1);
        (void)r;
    }
    errno = saved;
}

/* Reads more bytes into c->in. >0 bytes read, 0 end of stream, -1 error. */
static ssize_t read_more(sim_conn *c, size_t want)
{
    if (want < READ_CHUNK)
        want = READ_CHUNK;
    if (c->in.len + want > IN_MAX)
        want = IN_MAX > c->in.len ? IN_MAX - c->in.len : 0;
    if (want == 0 || sim_buf_reserve(&c->in, want) < 0)
        return -1;
    for (;;) {
        ssize_t n = recv(c->fd, c->in.data + c->in.len, c->in.cap - c->in.len - 1, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n > 0) {
            c->in.len += (size_t)n;
            c->in.data[c->in.len] = '\0';
        }
        return n;
    }
}

/* After an error answer: stop sending, and read what the client still sends for a
 * moment, so that closing does not reset the connection before it reads the answer. */
static void lingering_close(sim_conn *c)
{
    shutdown(c->fd, SHUT_WR);
    long long end = now_ms() + LINGER_MS;
    size_t total = 0;
    char tmp[4096];
    while (total < LINGER_BYTES && !atomic_load(&srv.stopping)) {
        long long left = end - now_ms();
        if (left <= 0)
            break;
        struct pollfd p = {c->fd, POLLIN, 0};
        int r = poll(&p, 1, (int)left);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        ssize_t n = recv(c->fd, tmp, sizeof tmp, 0);
        if (n <= 0)
            break;
        total += (size_t)n;
    }
}

static const char continue_100[] = "HTTP/1.1 100 Continue\r\n\r\n";

/* Serves requests on one connection until it closes. */
static void conn_serve(sim_conn *c)
{
    for (;;) {
        http_request hr;
        long h;
        while ((h = http_parse_head(c->in.data ? c->in.data : "", c->in.len, &hr)) == 0)
            if (read_more(c, READ_CHUNK) <= 0)
                return;
        if (h < 0) {
            sim_respond_http_error(c, (int)-h);
            lingering_close(c);
            return;
        }
        const size_t hl = (size_t)h;
        const char *body;
        size_t body_len, req_end;
        int expect = hr.expect_continue && hr.minor_version >= 1;
        if (hr.chunked) {
            http_chunked ch;
            memset(&ch, 0, sizeof ch);
            sim_buf_reset(&c->body);
            size_t pos = hl;
            if (expect && c->in.len == hl &&
                sim_conn_send2(c, continue_100, sizeof continue_100 - 1, NULL, 0) < 0)
                return;
            for (;;) {
                size_t used = 0;
                int rc = http_chunked_feed(&ch, c->in.data + pos, c->in.len - pos, &used, &c->body,
                                           HTTP_BODY_MAX);
                pos += used;
                if (rc < 0) {
                    sim_respond_http_error(c, -rc);
                    lingering_close(c);
                    return;
                }
                if (rc == 1)
                    break;
                /* drop the raw chunk bytes already decoded; keep the head */
                memmove(c->in.data + hl, c->in.data + pos, c->in.len - pos);
                c->in.len -= pos - hl;
                pos = hl;
                if (read_more(c, READ_CHUNK) <= 0)
                    return;
            }
            body = c->body.data ? c->body.data : "";
            body_len = c->body.len;
            req_end = pos;
        } else {
            if (hr.content_length > HTTP_BODY_MAX) {
                sim_respond_http_error(c, 413);
                lingering_close(c);
                return;
            }
            size_t cl = hr.content_length > 0 ? (size_t)hr.content_length : 0;
            req_end = hl + cl;
            if (expect && cl > 0 && c->in.len < req_end &&
                sim_conn_send2(c, continue_100, sizeof continue_100 - 1, NULL, 0) < 0)
                return;
            while (c->in.len < req_end)
                if (read_more(c, req_end - c->in.len) <= 0)
                    return;
            body = c->in.data + hl;
            body_len = cl;
        }

        const char *target = c->in.data + hr.target.off;
        size_t tlen = hr.target.len;
        /* absolute-form: skip scheme and authority */
        if (tlen > 7 && (memcmp(target, "http://", 7) == 0 || memcmp(target, "https://", 8) == 0)) {
            const char *s = memchr(target + 8, '/', tlen - 8);
            size_t skip = s ? (size_t)(s - target) : tlen;
            target += skip;
            tlen -= skip;
        }
        const char *q = memchr(target, '?', tlen);
        sim_request r = {
            .method = c->in.data + hr.method.off,
            .method_len = hr.method.len,
            .path = target,
            .path_len = q ? (size_t)(q - target) : tlen,
            .auth = c->in.data + hr.authorization.off,
            .auth_len = hr.authorization.len,
            .has_auth = hr.has_authorization,
            .head = c->in.data,
            .head_len = hl,
            .body = body,
            .body_len = body_len,
            .minor_version = hr.minor_version,
            .keep_alive = hr.keep_alive && !atomic_load(&srv.stopping),
        };
        if (sim_handle(c, &r) != SIM_KEEP) {
            shutdown(c->fd, SHUT_WR);
            return;
        }
        sim_buf_consume(&c->in, req_end);
        /* do not keep a huge buffer for an idle connection */
        if (c->in.cap > 4 * READ_CHUNK && c->in.len < READ_CHUNK) {
            sim_buf tmp;
            sim_buf_init(&tmp, IN_MAX);
            if (sim_buf_append(&tmp, c->in.data, c->in.len) == 0) {
                sim_buf_free(&c->in);
                c->in = tmp;
            } else {
                sim_buf_free(&tmp);
            }
        }
    }
}

static void conn_buffers_init(sim_conn *c)
{
    sim_buf_init(&c->in, IN_MAX);
    sim_buf_init(&c->body, HTTP_BODY_MAX);
    sim_buf_init(&c->out, OUT_MAX);
    sim_buf_init(&c->scratch, OUT_MAX);
    sim_buf_init(&c->aux, OUT_MAX);
}

static void conn_buffers_free(sim_conn *c)
{
    sim_buf_free(&c->in);
    sim_buf_free(&c->body);
    sim_buf_free(&c->out);
    sim_buf_free(&c->scratch);
    sim_buf_free(&c->aux);
}

static void *conn_thread(void *arg)
{
    conn_node *node = arg;
    conn_serve(&node->c);
    conn_buffers_free(&node->c);
    pthread_mutex_lock(&srv.lock);
    close(node->c.fd);
    node->c.fd = -1;
    node->done = 1;
    srv.finished++;
    pthread_mutex_unlock(&srv.lock);
    return NULL;
}

/* Joins finished threads (all of them when `all`, after shutting their sockets). */
static void reap(int all)
{
    pthread_mutex_lock(&srv.lock);
    if (all)
        for (conn_node *n = srv.head; n; n = n->next)
            if (n->c.fd >= 0)
                shutdown(n->c.fd, SHUT_RDWR);
    if (!all && srv.finished == 0) {
        pthread_mutex_unlock(&srv.lock);
        return;
    }
    conn_node *joinable = NULL;
    for (conn_node **pp = &srv.head; *pp;) {
        conn_node *n = *pp;
        if (n->done || all) {
            *pp = n->next;
            n->next = joinable;
            joinable = n;
            if (n->done)
                srv.finished--;
            srv.live--;
        } else {
            pp = &n->next;
        }
    }
    pthread_mutex_unlock(&srv.lock);
    while (joinable) {
        conn_node *next = joinable->next;
        pthread_join(joinable->tid, NULL);
        free(joinable);
        joinable = next;
    }
}

static void refuse(int fd)
{
    static const char body[] = "{\"error\":{\"message\":\"too many connections\","
                               "\"type\":\"server_error\",\"param\":null,\"code\":null}}";
    char msg[512];
    int n = snprintf(msg, sizeof msg,
                     "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                     "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
                     sizeof body - 1, body);
    ssize_t r = send(fd, msg, (size_t)n, MSG_NOSIGNAL);
    (void)r;
    close(fd);
}

static void start_conn(int fd, const pthread_attr_t *attr)
{
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    pthread_mutex_lock(&srv.lock);
    size_t live = srv.live;
    pthread_mutex_unlock(&srv.lock);
    if (live >= SIM_CONNS_MAX) {
        refuse(fd);
        return;
    }
    conn_node *n = calloc(1, sizeof *n);
    if (!n) {
        close(fd);
        return;
    }
    n->c.fd = fd;
    conn_buffers_init(&n->c);
    /* hold the list lock so the thread cannot finish before it is listed */
    pthread_mutex_lock(&srv.lock);
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old); /* signals go to the main thread */
    int rc = pthread_create(&n->tid, attr, conn_thread, n);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        pthread_mutex_unlock(&srv.lock);
        close(fd);
        free(n);
        return;
    }
    n->next = srv.head;
    srv.head = n;
    srv.live++;
    pthread_mutex_unlock(&srv.lock);
}

int sim_server_init(void)
{
    if (pipe(srv.stop_pipe) < 0)
        return -1;
    for (int i = 0; i < 2; i++)
        fcntl(srv.stop_pipe[i], F_SETFD, FD_CLOEXEC);
    fcntl(srv.stop_pipe[1], F_SETFL, O_NONBLOCK);
    atomic_store(&srv.stopping, 0);
    return 0;
}

int sim_server_run(int lfd)
{
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, SIM_THREAD_STACK);
    struct pollfd p[2] = {{lfd, POLLIN, 0}, {srv.stop_pipe[0], POLLIN, 0}};
    for (;;) {
        int r = poll(p, 2, 1000);
        if (r < 0 && errno != EINTR)
            break;
        if (r > 0 && p[1].revents)
            break;
        reap(0);
        if (r <= 0 || !(p[0].revents & POLLIN))
            continue;
        int fd = accept(lfd, NULL, NULL);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
                poll(NULL, 0, 10); /* let connections finish before trying again */
            continue;
        }
        start_conn(fd, &attr);
    }
    atomic_store(&srv.stopping, 1);
    reap(1);
    pthread_attr_destroy(&attr);
    return 0;
}

void sim_server_free(void)
{
    for (int i = 0; i < 2; i++) {
        if (srv.stop_pipe[i] >= 0)
            close(srv.stop_pipe[i]);
        srv.stop_pipe[i] = -1;
    }
}
