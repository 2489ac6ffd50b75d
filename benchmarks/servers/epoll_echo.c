/*
 * epoll_echo: the physical floor for the echo benchmarks.  The least a
 * server can do per request on Linux: one thread, level-triggered epoll,
 * one read() and one write() per readiness event, no logging, no timers.
 *
 *     epoll_echo [--host 127.0.0.1] [--port 0] [--backlog 100]
 *
 * Prints "Socket port N" first, like every benchmark server.  A write the
 * kernel does not take whole is kept and finished on EPOLLOUT, with reading
 * paused meanwhile, so every byte is echoed whatever the peer does.
 * SIGTERM/SIGINT end it (default action).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#define BUF 65536
#define MAX_EVENTS 1024

typedef struct {
    char *pending;      /* bytes read but not yet written back */
    size_t len, off;
} conn_t;

static conn_t *conns;   /* indexed by descriptor */
static size_t nconns;
static int ep;
static char buf[BUF];

static void drop(int fd) {
    if ((size_t)fd < nconns) {
        free(conns[fd].pending);
        conns[fd].pending = NULL;
        conns[fd].len = conns[fd].off = 0;
    }
    close(fd);   /* also leaves the epoll set */
}

static void watch(int fd, int op, unsigned events) {
    struct epoll_event ev = {.events = events, .data.fd = fd};
    epoll_ctl(ep, op, fd, &ev);
}

/* Write what is pending; 1 if all of it went, 0 if some is left, -1 on error. */
static int flush_pending(int fd) {
    conn_t *c = &conns[fd];
    while (c->off < c->len) {
        ssize_t n = write(fd, c->pending + c->off, c->len - c->off);
        if (n > 0) c->off += (size_t)n;
        else if (n < 0 && errno == EINTR) continue;
        else if (n < 0 && errno == EAGAIN) return 0;
        else return -1;
    }
    free(c->pending);
    c->pending = NULL;
    c->len = c->off = 0;
    return 1;
}

static void on_readable(int fd) {
    if (conns[fd].pending) {   /* only EPOLLOUT was asked for: an error or hang-up */
        drop(fd);
        return;
    }
    ssize_t n = read(fd, buf, BUF);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
        drop(fd);
        return;
    }
    if (n < 0) return;
    ssize_t w = write(fd, buf, (size_t)n);
    if (w == n) return;
    if (w < 0) {
        if (errno != EAGAIN && errno != EINTR) { drop(fd); return; }
        w = 0;
    }
    conn_t *c = &conns[fd];           /* keep the rest; stop reading */
    c->len = (size_t)(n - w);
    c->off = 0;
    c->pending = malloc(c->len);
    if (!c->pending) { drop(fd); return; }
    memcpy(c->pending, buf + w, c->len);
    watch(fd, EPOLL_CTL_MOD, EPOLLOUT);
}

static void on_writable(int fd) {
    int r = flush_pending(fd);
    if (r < 0) drop(fd);
    else if (r > 0) watch(fd, EPOLL_CTL_MOD, EPOLLIN);
}

int main(int argc, char **argv) {
    const char *host = "127.0.0.1";
    int port = 0, backlog = 100;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--host")) host = argv[i + 1];
        else if (!strcmp(argv[i], "--port")) port = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--backlog")) backlog = atoi(argv[i + 1]);
        else { fprintf(stderr, "epoll_echo: unknown option %s\n", argv[i]); return 2; }
    }
    if (argc % 2 == 0) { fprintf(stderr, "epoll_echo: options take a value\n"); return 2; }
    signal(SIGPIPE, SIG_IGN);
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    getrlimit(RLIMIT_NOFILE, &rl);
    nconns = rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > 1048576 ? 1048576 : rl.rlim_cur;
    conns = calloc(nconns, sizeof *conns);
    if (!conns) { perror("calloc"); return 1; }

    int ls = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((unsigned short)port)};
    if (inet_pton(AF_INET, host, &addr.sin_addr) != 1) {
        fprintf(stderr, "epoll_echo: bad IPv4 address %s\n", host);
        return 2;
    }
    if (bind(ls, (struct sockaddr *)&addr, sizeof addr) < 0 || listen(ls, backlog) < 0) {
        perror("epoll_echo: bind/listen");
        return 1;
    }
    socklen_t alen = sizeof addr;
    getsockname(ls, (struct sockaddr *)&addr, &alen);
    printf("Socket port %d\n", ntohs(addr.sin_port));
    fflush(stdout);

    ep = epoll_create1(EPOLL_CLOEXEC);
    watch(ls, EPOLL_CTL_ADD, EPOLLIN);
    struct epoll_event evs[MAX_EVENTS];
    for (;;) {
        int k = epoll_wait(ep, evs, MAX_EVENTS, -1);
        if (k < 0 && errno != EINTR) { perror("epoll_wait"); return 1; }
        for (int i = 0; i < k; i++) {
            int fd = evs[i].data.fd;
            if (fd == ls) {
                for (int j = 0; j < 64; j++) {   /* a bounded batch per event */
                    int c = accept4(ls, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                    if (c < 0) break;
                    if ((size_t)c >= nconns) { close(c); continue; }
                    setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    watch(c, EPOLL_CTL_ADD, EPOLLIN);
                }
            } else if (evs[i].events & EPOLLOUT) {
                on_writable(fd);
            } else if (evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
                on_readable(fd);
            }
        }
    }
}
