/* main.c - llmux-sim: command line, loopback listener, signals, port file. */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "faults.h"
#include "server.h"

static const char usage[] =
    "usage: llmux-sim [--host 127.0.0.1] [--port N] [--port-file PATH] [--quiet]\n"
    "\n"
    "A fake OpenAI-compatible provider on loopback with scripted faults.\n"
    "  --host ADDR       loopback address to bind (127.0.0.0/8, ::1 or localhost)\n"
    "  --port N          port to listen on; 0 (the default) picks a free one\n"
    "  --port-file PATH  write the port number to PATH once listening\n"
    "  --quiet           no messages on stderr (the listening line is still printed)\n"
    "See docs/simulator.md.\n";

static int quiet;

static void on_stop_signal(int sig)
{
    (void)sig;
    sim_server_request_stop();
}

static int is_loopback(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        static const unsigned char v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        const unsigned char *a = in6->sin6_addr.s6_addr;
        if (memcmp(a, v4mapped, 12) == 0)
            return a[12] == 127;
        return memcmp(&in6->sin6_addr, &in6addr_loopback, sizeof in6addr_loopback) == 0;
    }
    return 0;
}

static int parse_port(const char *s, int *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < 0 || v > 65535)
        return -1;
    *out = (int)v;
    return 0;
}

static int write_port_file(const char *path, int port)
{
    size_t n = strlen(path) + 32;
    char *tmp = malloc(n);
    if (!tmp)
        return -1;
    snprintf(tmp, n, "%s.tmp.%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "w");
    int rc = -1;
    if (f) {
        int ok = fprintf(f, "%d\n", port) > 0;
        ok &= fclose(f) == 0;
        if (ok && rename(tmp, path) == 0)
            rc = 0;
        else
            remove(tmp);
    }
    free(tmp);
    return rc;
}

/* Binds a listening socket on host:port; prints why not and returns -1. */
static int listen_on(const char *host, int port, char *shown, size_t shown_len, int *bound_port)
{
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    char portstr[16];
    snprintf(portstr, sizeof portstr, "%d", port);
    int gai = getaddrinfo(host, portstr, &hints, &res);
    if (gai != 0) {
        fprintf(stderr, "llmux-sim: cannot resolve --host %s: %s\n", host, gai_strerror(gai));
        return -1;
    }
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        if (!is_loopback(ai->ai_addr)) {
            fprintf(stderr,
                    "llmux-sim: refusing --host %s: it binds only to loopback addresses "
                    "(127.0.0.0/8 or ::1)\n",
                    host);
            freeaddrinfo(res);
            return -1;
        }
    }
    int fd = -1;
    for (struct addrinfo *ai = res; ai && fd < 0; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
        if (fd < 0)
            continue;
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, SOMAXCONN) < 0) {
            fprintf(stderr, "llmux-sim: cannot listen on %s port %d: %s\n", host, port,
                    strerror(errno));
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(res);
    if (fd < 0)
        return -1;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    char addr[INET6_ADDRSTRLEN] = "?";
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) < 0) {
        close(fd);
        return -1;
    }
    if (ss.ss_family == AF_INET) {
        struct sockaddr_in *in = (struct sockaddr_in *)&ss;
        inet_ntop(AF_INET, &in->sin_addr, addr, sizeof addr);
        *bound_port = ntohs(in->sin_port);
        snprintf(shown, shown_len, "%s:%d", addr, *bound_port);
    } else {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
        inet_ntop(AF_INET6, &in6->sin6_addr, addr, sizeof addr);
        *bound_port = ntohs(in6->sin6_port);
        snprintf(shown, shown_len, "[%s]:%d", addr, *bound_port);
    }
    return fd;
}

int main(int argc, char **argv)
{
    const char *host = "127.0.0.1";
    const char *port_file = NULL;
    int port = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            fputs(usage, stdout);
            return 0;
        } else if (strcmp(a, "--quiet") == 0) {
            quiet = 1;
        } else if ((strcmp(a, "--host") == 0 || strcmp(a, "--port") == 0 ||
                    strcmp(a, "--port-file") == 0) &&
                   i + 1 < argc) {
            const char *v = argv[++i];
            if (strcmp(a, "--host") == 0) {
                host = v;
            } else if (strcmp(a, "--port-file") == 0) {
                port_file = v;
            } else if (parse_port(v, &port) < 0) {
                fprintf(stderr, "llmux-sim: --port must be a number from 0 to 65535\n");
                return 2;
            }
        } else {
            fprintf(stderr, "llmux-sim: unknown or incomplete option '%s'\n%s", a, usage);
            return 2;
        }
    }

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);

    char shown[INET6_ADDRSTRLEN + 16];
    int bound = 0;
    int lfd = listen_on(host, port, shown, sizeof shown, &bound);
    if (lfd < 0)
        return 1;
    if (sim_server_init() < 0) {
        fprintf(stderr, "llmux-sim: pipe: %s\n", strerror(errno));
        close(lfd);
        return 1;
    }
    sim_registry_init();
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    printf("llmux-sim listening on %s\n", shown);
    fflush(stdout);
    if (port_file && write_port_file(port_file, bound) < 0) {
        fprintf(stderr, "llmux-sim: cannot write --port-file %s: %s\n", port_file,
                strerror(errno));
        close(lfd);
        sim_server_free();
        return 1;
    }

    sim_server_run(lfd);
    close(lfd);
    sim_registry_free();
    sim_server_free();
    if (!quiet)
        fprintf(stderr, "llmux-sim: stopped\n");
    return 0;
}
