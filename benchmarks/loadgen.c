/*
 * loadgen: a closed-loop TCP load generator for the reactor benchmarks.
 *
 * One thread, one epoll set, loopback (127.0.0.0/8) only.  Two modes:
 *
 *   echo   N connections, each with exactly one M-byte message in flight:
 *          send M bytes, wait until M bytes came back, check every byte
 *          against what was sent, send the next message.  Optionally K idle
 *          connections are opened first and held open, untouched, for the
 *          whole run.
 *   churn  N concurrent slots, each doing, over and over: connect, read the
 *          greeting (--expect, 18 bytes "You are connected!" by default),
 *          check it, send one message (--message), close.
 *
 * Timeline: connect, warm-up (--warmup s), measured window (--duration s),
 * drain (no new requests; wait for the ones in flight, bounded by
 * --timeout), close.  Only requests completed inside the window count
 * towards the rate and the latency percentiles; every byte of every request
 * (warm-up and drain included) is verified.
 *
 * With --server-pid the generator also reads the server's CPU time
 * (utime+stime from /proc/PID/stat) at the start and the end of the window,
 * its resident memory (VmRSS) before and after the idle connections, and
 * its open descriptors (/proc/PID/fd) to know when it has accepted them.
 * It always reads its own CPU time and the machine's busy time (/proc/stat)
 * over the window, to show whether it, or something else, was the limit.
 *
 * --sources N spreads the client's connections over the source addresses
 * 127.0.0.1 .. 127.0.0.N (for churn: fewer TIME_WAIT entries per address
 * pair keeps the kernel's local-port search short).
 *
 * --tls 1 (only in a build with OpenSSL: cc -DHAVE_OPENSSL ... -lssl -lcrypto)
 * runs TLS over every connection.  It verifies nothing about the server
 * (no certificate check, no host name: a load generator, not a client to
 * trust), but checks every echoed byte as the plain mode does, and never
 * resumes a session (no session cache, no tickets kept), so every handshake
 * is a full one.
 *   echo   each connection does its handshake first; the idle ones then do
 *          one 16-byte echo, checked, so the server has finished its side
 *          of the handshake before its memory is read; then as above.
 *   churn  each slot, over and over: connect, full handshake, send
 *          --message, read it back and check it, send close_notify, wait
 *          for the server's (or its EOF), close.  One request is one such
 *          connection; its latency runs from connect() to the end.
 *
 * Output: one JSON object on stdout.  Exit status 0 if the run happened
 * (errors are reported in the JSON), 2 for bad arguments or no connection.
 *
 * Every loop is bounded: in count or by a deadline on the monotonic clock.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#ifdef HAVE_OPENSSL
#include <openssl/err.h>
#include <openssl/ssl.h>
#endif

#define PATTERN_SPAN 4096   /* distinct message offsets into the pattern */
#define SCRATCH 65536
#define MAX_EVENTS 1024
#define CONNECT_BATCH 64    /* below every server's listen backlog (100) */

/* -- options -------------------------------------------------------------- */

static struct {
    const char *host;
    const char *unix_path;   /* --unix: a Unix stream socket instead of TCP */
    int port;
    int churn;
    int conns;
    size_t size;
    double warmup, duration, timeout, settle;
    int idle;
    int server_pid;
    int cpu;
    const char *message;
    const char *expect;
    int sources;
    int tls;
} opt = {"127.0.0.1", NULL, 0, 0, 50, 1024, 0.5, 3.0, 5.0, 0.3, 0, 0, -1,
         "benchmark message\n", "You are connected!", 1, 0};

/* -- results ---------------------------------------------------------------- */

static struct {
    uint64_t requests;          /* completed inside the window */
    uint64_t total_requests;    /* completed at any time */
    uint64_t bytes_verified;    /* received and equal to what was sent */
    uint64_t mismatches;        /* requests with at least one wrong byte */
    uint64_t unexpected_bytes;  /* bytes nobody asked for */
    uint64_t timeouts;
    uint64_t connect_errors;
    uint64_t conns_lost;        /* closed or reset by the peer mid-request */
    uint64_t errors;            /* all of the above that are failures */
    int idle_open, idle_accepted, idle_closed_by_server;
    long rss_before_kb, rss_idle_kb;
    long fds_before;
    long long cpu_ticks0, cpu_ticks1;
    double window_s;
    double client_cpu0, client_cpu1;
    long long busy0, busy1;     /* busy jiffies of the whole machine */
    const char *fatal;
    uint64_t tls_handshakes;    /* completed */
    uint64_t tls_resumed;       /* handshakes that resumed a session: must stay 0 */
    uint64_t tls_failures;      /* handshakes or records that failed (also in errors) */
    uint64_t tls_unclean;       /* churn: the server closed without close_notify */
} res = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, -1, -1, -1, -1, -1, 0.0, 0.0, -1.0, -1, -1, NULL,
         0, 0, 0, 0};

static char tls_version[32], tls_cipher[64], tls_group[32], tls_error[256];

static int n_inflight, n_alive;     /* echo mode: connections in each state */


static uint64_t *lat;           /* latencies (ns) of requests in the window */
static size_t lat_len, lat_cap;

static void record_latency(uint64_t ns) {
    if (lat_len == lat_cap) {
        size_t cap = lat_cap ? lat_cap * 2 : 65536;
        if (cap > ((size_t)1 << 27)) return;     /* 128M samples: enough */
        uint64_t *p = realloc(lat, cap * sizeof *p);
        if (!p) return;
        lat = p;
        lat_cap = cap;
    }
    lat[lat_len++] = ns;
}

/* -- small helpers ------------------------------------------------------- */

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t secs(double s) { return (uint64_t)(s * 1e9); }

static void sleep_ns(uint64_t ns) {
    struct timespec ts = {(time_t)(ns / 1000000000ull), (long)(ns % 1000000000ull)};
    nanosleep(&ts, NULL);
}

static void die(const char *msg) {
    fprintf(stderr, "loadgen: %s\n", msg);
    exit(2);
}

static struct sockaddr_storage server_addr;
static socklen_t server_len;
static int server_family = AF_INET;

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

/* A non-blocking TCP socket.  With --sources N > 1, successive sockets are
   bound to the loopback source addresses 127.0.0.1 .. 127.0.0.N in turn
   (the port is still chosen by connect()), so that the TIME_WAIT entries
   that connection churn leaves behind are spread over N address pairs and
   the kernel's search for a free local port stays short. */
static int new_socket(void) {
    static unsigned next;
    int fd = socket(server_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0 || opt.sources <= 1 || server_family != AF_INET) return fd;
    int one = 1;
    setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
    struct sockaddr_in src = {.sin_family = AF_INET};
    src.sin_addr.s_addr = htonl(0x7f000001u + next++ % (unsigned)opt.sources);
    if (bind(fd, (struct sockaddr *)&src, sizeof src) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static void set_nodelay(int fd) {
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

/* -- reading the server's /proc entries ------------------------------------ */

static long long server_cpu_ticks(void) {
    if (opt.server_pid <= 0) return -1;
    char path[64], buf[2048];
    snprintf(path, sizeof path, "/proc/%d/stat", opt.server_pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return -1;
    buf[n] = 0;
    char *p = strrchr(buf, ')');       /* the command name may hold spaces */
    if (!p) return -1;
    p += 2;                            /* field 3, the state */
    unsigned long long utime = 0, stime = 0;
    /* fields 3..15: state ppid pgrp session tty tpgid flags minflt cminflt
       majflt cmajflt utime stime */
    if (sscanf(p, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
               &utime, &stime) != 2)
        return -1;
    return (long long)(utime + stime);
}

static long server_rss_kb(void) {
    if (opt.server_pid <= 0) return -1;
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", opt.server_pid);
    FILE *f = fopen(path, "re");
    if (!f) return -1;
    long kb = -1;
    for (int i = 0; i < 200 && fgets(line, sizeof line, f); i++) {
        if (strncmp(line, "VmRSS:", 6) == 0) {
            kb = strtol(line + 6, NULL, 10);
            break;
        }
    }
    fclose(f);
    return kb;
}

static long server_fds(void) {
    if (opt.server_pid <= 0) return -1;
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/fd", opt.server_pid);
    DIR *d = opendir(path);
    if (!d) return -1;
    long n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.') n++;
    closedir(d);
    return n;
}

/* Wait until the server holds at least `want` descriptors (it has accepted
   what we connected); returns the last count seen. */
static long wait_server_fds(long want, uint64_t deadline) {
    long n = server_fds();
    while (n >= 0 && n < want && now_ns() < deadline) {
        sleep_ns(200000);
        n = server_fds();
    }
    return n;
}

static double client_cpu(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6
         + (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* Jiffies every CPU of the machine spent busy (not idle, not iowait), from
   the first line of /proc/stat: shows what else ran during the window. */
static long long machine_busy(void) {
    char buf[512];
    int fd = open("/proc/stat", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return -1;
    buf[n] = 0;
    unsigned long long v[8] = {0};
    if (sscanf(buf, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2],
               &v[3], &v[4], &v[5], &v[6], &v[7]) != 8)
        return -1;
    /* user nice system idle iowait irq softirq steal */
    return (long long)(v[0] + v[1] + v[2] + v[5] + v[6] + v[7]);
}

/* The measured window opens and closes here, in both modes. */
static void window_open(uint64_t *wstart) {
    res.busy0 = machine_busy();
    res.cpu_ticks0 = server_cpu_ticks();
    res.client_cpu0 = client_cpu();
    *wstart = now_ns();
}

static void window_close(uint64_t wstart) {
    res.cpu_ticks1 = server_cpu_ticks();
    res.client_cpu1 = client_cpu();
    res.busy1 = machine_busy();
    res.window_s = (double)(now_ns() - wstart) / 1e9;
}

/* -- the timeline: warm-up, window, drain (every mode) ------------------------ */

enum { WARMUP, WINDOW, DRAIN };
static int phase = WARMUP;

/* When each mode's loop moves on to the next phase, and when it next looks
   for requests that took longer than --timeout. */
typedef struct {
    uint64_t window_start;   /* the warm-up ends */
    uint64_t wstart;         /* the window opened */
    uint64_t drain_end;      /* the drain gives up on what is in flight */
    uint64_t next_scan;
    uint64_t timeout_ns;
} timeline_t;

/* The timeline of a run whose requests were started at t. */
static void timeline_begin(timeline_t *tl, uint64_t t) {
    tl->window_start = t + secs(opt.warmup);
    tl->wstart = 0;
    tl->drain_end = 0;
    tl->next_scan = t + 100000000ull;
    tl->timeout_ns = secs(opt.timeout);
    if (opt.warmup <= 0) {
        phase = WINDOW;
        window_open(&tl->wstart);
    }
}

/* Open the window once the warm-up is over; close it, and start the drain,
   once --duration has passed. */
static void timeline_step(timeline_t *tl, uint64_t t) {
    if (phase == WARMUP && t >= tl->window_start) {
        window_open(&tl->wstart);
        phase = WINDOW;
    } else if (phase == WINDOW && t >= tl->wstart + secs(opt.duration)) {
        window_close(tl->wstart);
        phase = DRAIN;
        tl->drain_end = t + tl->timeout_ns;
    }
}

/* Whether the timeout scan is due (every 100 ms); if so, the next one is
   100 ms from now. */
static int scan_due(timeline_t *tl, uint64_t t) {
    if (t < tl->next_scan) return 0;
    tl->next_scan = t + 100000000ull;
    return 1;
}

/* A request started at t0 is done: every one counts towards the total,
   only those done inside the window towards the rate and the latencies. */
static void request_done(uint64_t t0, uint64_t done) {
    res.total_requests++;
    if (phase == WINDOW) {
        res.requests++;
        record_latency(done - t0);
    }
}

/* -- opening connections ------------------------------------------------------ */

/* Open up to n connections in batches, waiting for each batch to be
   established (and, with --server-pid, accepted).  Fills fds[] with the
   connected descriptors and returns how many there are. */
static int open_connections(int *fds, int n, uint64_t deadline) {
    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0) die("epoll_create1 failed");
    int opened = 0;
    long base = server_fds();
    struct epoll_event evs[CONNECT_BATCH];
    while (opened < n && now_ns() < deadline) {
        int batch = n - opened < CONNECT_BATCH ? n - opened : CONNECT_BATCH;
        int pending = 0, started = 0;
        int bfd[CONNECT_BATCH];
        for (int i = 0; i < batch; i++) {
            int fd = new_socket();
            if (fd < 0) { res.connect_errors++; res.errors++; break; }
            if (connect(fd, (struct sockaddr *)&server_addr, server_len) < 0
                && errno != EINPROGRESS) {
                close(fd);
                res.connect_errors++;
                res.errors++;
                continue;
            }
            struct epoll_event ev = {.events = EPOLLOUT, .data.u32 = (uint32_t)started};
            epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
            bfd[started++] = fd;
            pending++;
        }
        if (started == 0) break;
        while (pending > 0 && now_ns() < deadline) {
            int k = epoll_wait(ep, evs, CONNECT_BATCH, 100);
            for (int i = 0; i < k; i++) {
                int j = (int)evs[i].data.u32;
                int fd = bfd[j], err = 0;
                socklen_t len = sizeof err;
                epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
                pending--;
                getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
                if (err) {
                    close(fd);
                    bfd[j] = -1;
                    res.connect_errors++;
                    res.errors++;
                } else {
                    fds[opened++] = fd;
                    bfd[j] = -1;
                }
            }
        }
        for (int j = 0; j < started; j++) {     /* still pending at the deadline */
            if (bfd[j] >= 0) {
                close(bfd[j]);
                res.connect_errors++;
                res.errors++;
            }
        }
        if (base >= 0) {
            long want = base + opened;
            if (wait_server_fds(want, deadline) < want) break;  /* not accepting */
        }
    }
    close(ep);
    return opened;
}

/* -- echo mode ------------------------------------------------------------------ */

typedef struct {
    int fd;
#ifdef HAVE_OPENSSL
    SSL *ssl;           /* --tls: the connection's TLS state, else NULL */
#endif
    int alive;
    int inflight;
    int want_out;
    int bad;            /* a byte of the current message came back wrong */
    uint32_t id, seq;
    size_t off, sent, got;
    uint64_t t0;
} conn_t;

static unsigned char *pattern;
static unsigned char scratch[SCRATCH];
static int ep_main;

static void make_pattern(size_t len) {
    pattern = malloc(len);
    if (!pattern) die("out of memory");
    uint64_t x = 0x9E3779B97F4A7C15ull;
    for (size_t i = 0; i < len; i++) {   /* xorshift64*: any byte value */
        x ^= x >> 12; x ^= x << 25; x ^= x >> 27;
        pattern[i] = (unsigned char)((x * 0x2545F4914F6CDD1Dull) >> 56);
    }
}

/* -- TLS (--tls 1; only with -DHAVE_OPENSSL) ------------------------------------ */

/* What an I/O call did, for both plain and TLS connections: > 0 bytes moved,
   0 end of stream (recv), or one of these. */
enum { IO_WANT_READ = -1, IO_WANT_WRITE = -2, IO_INTR = -3, IO_FAIL = -4 };

#ifdef HAVE_OPENSSL
static SSL_CTX *tls_ctx;

static void tls_init(void) {
    tls_ctx = SSL_CTX_new(TLS_client_method());
    if (!tls_ctx) die("SSL_CTX_new failed");
    /* Verify nothing: this is a load generator on loopback, not a client
       that trusts what it talks to. */
    SSL_CTX_set_verify(tls_ctx, SSL_VERIFY_NONE, NULL);
    /* Never resume: no session cache, and no session is ever offered
       again, so every handshake is a full one. */
    SSL_CTX_set_session_cache_mode(tls_ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_min_proto_version(tls_ctx, TLS1_2_VERSION);
    SSL_CTX_set_mode(tls_ctx, SSL_MODE_ENABLE_PARTIAL_WRITE
                              | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    /* Read whole socket buffers, not a record at a time: fewer system
       calls for the client (records read ahead are drained while
       SSL_has_pending()). */
    SSL_CTX_set_read_ahead(tls_ctx, 1);
}

/* Keep the first TLS failure's reason for the report; clear OpenSSL's
   error queue, so that the next SSL_get_error() speaks of its own call. */
static void tls_note_error(SSL *ssl, int ret, const char *what) {
    if (!tls_error[0]) {
        int err = SSL_get_error(ssl, ret);
        unsigned long code = ERR_peek_error();
        if (code) {
            char buf[200];
            ERR_error_string_n(code, buf, sizeof buf);
            snprintf(tls_error, sizeof tls_error, "%s: %s", what, buf);
        } else {
            snprintf(tls_error, sizeof tls_error, "%s: SSL_get_error %d, %s", what, err,
                     errno ? strerror(errno) : "end of stream");
        }
    }
    ERR_clear_error();
}

static void tls_note_session(SSL *ssl) {
    res.tls_handshakes++;
    if (SSL_session_reused(ssl)) res.tls_resumed++;
    if (!tls_version[0]) {
        snprintf(tls_version, sizeof tls_version, "%s", SSL_get_version(ssl));
        const char *name = SSL_get_cipher_name(ssl);
        snprintf(tls_cipher, sizeof tls_cipher, "%s", name ? name : "?");
#if OPENSSL_VERSION_NUMBER >= 0x30000000L
        int nid = SSL_get_negotiated_group(ssl);
        name = nid > 0 ? OBJ_nid2sn(nid) : NULL;
        snprintf(tls_group, sizeof tls_group, "%s", name ? name : "?");
#endif
    }
}

static SSL *tls_new(int fd) {
    SSL *ssl = SSL_new(tls_ctx);
    if (!ssl) die("SSL_new failed");
    SSL_set_fd(ssl, fd);
    SSL_set_connect_state(ssl);
    SSL_set_tlsext_host_name(ssl, "localhost");
    return ssl;
}

/* Map an SSL_read/SSL_write/SSL_do_handshake result to the IO_ codes. */
static int tls_result(SSL *ssl, int ret, const char *what) {
    if (ret > 0) return ret;
    int err = SSL_get_error(ssl, ret);
    switch (err) {
    case SSL_ERROR_WANT_READ: return IO_WANT_READ;
    case SSL_ERROR_WANT_WRITE: return IO_WANT_WRITE;
    case SSL_ERROR_ZERO_RETURN: return 0;            /* the peer's close_notify */
    case SSL_ERROR_SYSCALL:
        if (errno == EINTR) { ERR_clear_error(); return IO_INTR; }
        /* fall through */
    default:
        tls_note_error(ssl, ret, what);
        return IO_FAIL;
    }
}

static uint32_t io_events(int io) {
    return io == IO_WANT_WRITE ? EPOLLOUT : EPOLLIN;
}

/* Run the TLS handshake on n connected sockets at once and, with ping,
   one 16-byte echo on each, checked (so the server has finished its side
   too).  Those that fail or time out are closed and counted.  Compacts
   fds[] and ssls[] to the good ones and returns how many there are. */
static int tls_setup(int *fds, SSL **ssls, int n, int ping, uint64_t deadline) {
    enum { HANDSHAKE, PING_SEND, PING_RECV, READY, FAILED };
    int ep = epoll_create1(EPOLL_CLOEXEC);
    int *stage = calloc((size_t)n + 1, sizeof *stage);
    size_t *got = calloc((size_t)n + 1, sizeof *got);
    if (ep < 0 || !stage || !got) die("out of memory");
    const unsigned char *msg = pattern;      /* 16 bytes of the pattern */
    unsigned char buf[64];
    int left = n;
    struct epoll_event evs[MAX_EVENTS];
    for (int i = 0; i < n; i++) {
        set_nodelay(fds[i]);
        ssls[i] = tls_new(fds[i]);
        struct epoll_event ev = {.events = EPOLLOUT, .data.u32 = (uint32_t)i};
        epoll_ctl(ep, EPOLL_CTL_ADD, fds[i], &ev);
    }
    while (left > 0 && now_ns() < deadline) {
        int k = epoll_wait(ep, evs, MAX_EVENTS, 100);
        for (int e = 0; e < k; e++) {
            int i = (int)evs[e].data.u32, io = IO_FAIL;
            for (int guard = 0; guard < 8 && stage[i] < READY; guard++) {
                if (stage[i] == HANDSHAKE) {
                    io = tls_result(ssls[i], SSL_do_handshake(ssls[i]), "handshake");
                    if (io <= 0) break;
                    tls_note_session(ssls[i]);
                    stage[i] = ping ? PING_SEND : READY;
                } else if (stage[i] == PING_SEND) {
                    io = tls_result(ssls[i], SSL_write(ssls[i], msg, 16), "write");
                    if (io <= 0) break;
                    stage[i] = io == 16 ? PING_RECV : FAILED;
                } else {
                    io = tls_result(ssls[i], SSL_read(ssls[i], buf, sizeof buf), "read");
                    if (io <= 0) break;
                    if (got[i] + (size_t)io > 16 || memcmp(buf, msg + got[i], (size_t)io)) {
                        res.mismatches++;
                        stage[i] = FAILED;
                    } else if ((got[i] += (size_t)io) == 16) {
                        stage[i] = READY;
                    }
                }
            }
            if (stage[i] < READY && (io == IO_WANT_READ || io == IO_WANT_WRITE)) {
                struct epoll_event ev = {.events = io_events(io), .data.u32 = (uint32_t)i};
                epoll_ctl(ep, EPOLL_CTL_MOD, fds[i], &ev);
            } else if (stage[i] < READY && io != IO_INTR) {
                stage[i] = FAILED;
            }
            if (stage[i] >= READY) {
                epoll_ctl(ep, EPOLL_CTL_DEL, fds[i], NULL);
                left--;
                if (stage[i] == FAILED) { res.tls_failures++; res.errors++; }
            }
        }
    }
    int good = 0;
    for (int i = 0; i < n; i++) {
        if (stage[i] < READY) { res.timeouts++; res.errors++; }
        if (stage[i] != READY) {
            SSL_free(ssls[i]);
            close(fds[i]);
            continue;
        }
        fds[good] = fds[i];
        ssls[good++] = ssls[i];
    }
    close(ep);
    free(stage);
    free(got);
    return good;
}
#endif

/* Send and receive on an echo connection, plain or TLS. */
static ssize_t conn_send(conn_t *c, const void *buf, size_t len) {
#ifdef HAVE_OPENSSL
    if (c->ssl) return tls_result(c->ssl, SSL_write(c->ssl, buf, (int)len), "write");
#endif
    ssize_t n = send(c->fd, buf, len, MSG_NOSIGNAL);
    if (n >= 0) return n > 0 ? n : IO_FAIL;
    return errno == EAGAIN ? IO_WANT_WRITE : errno == EINTR ? IO_INTR : IO_FAIL;
}

static ssize_t conn_recv(conn_t *c, void *buf, size_t len) {
#ifdef HAVE_OPENSSL
    if (c->ssl) return tls_result(c->ssl, SSL_read(c->ssl, buf, (int)len), "read");
#endif
    ssize_t n = recv(c->fd, buf, len, 0);
    if (n >= 0) return n;
    return errno == EAGAIN ? IO_WANT_READ : errno == EINTR ? IO_INTR : IO_FAIL;
}

/* Whether a TLS connection holds bytes it read ahead from the socket: epoll
   will not say so, so they are read before waiting again. */
static int conn_pending(conn_t *c) {
#ifdef HAVE_OPENSSL
    if (c->ssl) return SSL_has_pending(c->ssl);
#endif
    (void)c;
    return 0;
}

static void set_out(conn_t *c, int on) {
    if (c->want_out == on) return;
    struct epoll_event ev = {.events = EPOLLIN | (on ? EPOLLOUT : 0), .data.u32 = c->id};
    epoll_ctl(ep_main, EPOLL_CTL_MOD, c->fd, &ev);
    c->want_out = on;
}

static void conn_fail(conn_t *c) {
    if (!c->alive) return;
    c->alive = 0;
    n_alive--;
    if (c->inflight) { res.conns_lost++; n_inflight--; }
    c->inflight = 0;
    res.errors++;
    epoll_ctl(ep_main, EPOLL_CTL_DEL, c->fd, NULL);
#ifdef HAVE_OPENSSL
    if (c->ssl) { SSL_free(c->ssl); c->ssl = NULL; }
#endif
    close(c->fd);
    c->fd = -1;
}

static void try_send(conn_t *c) {
    while (c->sent < opt.size) {
        ssize_t n = conn_send(c, pattern + c->off + c->sent, opt.size - c->sent);
        if (n > 0) {
            c->sent += (size_t)n;
        } else if (n == IO_WANT_WRITE) {
            set_out(c, 1);
            return;
        } else if (n == IO_WANT_READ) {   /* TLS: retried when readable */
            return;
        } else if (n != IO_INTR) {
            conn_fail(c);
            return;
        }
    }
    set_out(c, 0);
}

static void start_request(conn_t *c) {
    c->off = ((uint64_t)c->id * 2654435761u + (uint64_t)c->seq * 40503u) % PATTERN_SPAN;
    c->sent = c->got = 0;
    c->bad = 0;
    c->inflight = 1;
    n_inflight++;
    c->t0 = now_ns();
    try_send(c);
}

/* One read; returns whether to read again at once (TLS bytes read ahead). */
static int read_once(conn_t *c) {
    if (!c->inflight) {      /* nothing expected: anything is too much */
        ssize_t n = conn_recv(c, scratch, SCRATCH);
        if (n > 0) {
            res.unexpected_bytes += (uint64_t)n;
            res.errors++;
            return conn_pending(c);
        } else if (n == 0 || n == IO_FAIL) {
            conn_fail(c);
        } else if (n == IO_WANT_WRITE) {
            set_out(c, 1);
        }
        return 0;
    }
    size_t want = opt.size - c->got;
    if (want > SCRATCH) want = SCRATCH;
    ssize_t n = conn_recv(c, scratch, want);
    if (n < 0) {
        if (n == IO_FAIL) conn_fail(c);
        else if (n == IO_WANT_WRITE) set_out(c, 1);
        return 0;
    }
    if (n == 0) {
        conn_fail(c);
        return 0;
    }
    if (c->got + (size_t)n > c->sent) {
        /* More came back than was sent: not an echo. */
        res.unexpected_bytes += (uint64_t)n;
        c->bad = 1;
    } else if (memcmp(scratch, pattern + c->off + c->got, (size_t)n) != 0) {
        c->bad = 1;
    } else {
        res.bytes_verified += (uint64_t)n;
    }
    c->got += (size_t)n;
    if (c->got < opt.size) return conn_pending(c);
    request_done(c->t0, now_ns());
    if (c->bad) { res.mismatches++; res.errors++; }
    c->inflight = 0;
    n_inflight--;
    c->seq++;
    if (phase != DRAIN) start_request(c);
    return c->alive && conn_pending(c);
}

static void on_readable(conn_t *c) {
#ifdef HAVE_OPENSSL
    /* A TLS write that had to wait for the peer goes on first. */
    if (c->ssl && c->inflight && c->sent < opt.size) try_send(c);
#endif
    for (int i = 0; i < 64 && c->alive; i++)
        if (!read_once(c)) break;
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static double pct_us(double p) {
    if (lat_len == 0) return 0.0;
    size_t i = (size_t)(p / 100.0 * (double)(lat_len - 1) + 0.5);
    return (double)lat[i] / 1000.0;
}

static int *idle_fds;
#ifdef HAVE_OPENSSL
static SSL **idle_ssl;
#endif

static void run_echo(void) {
    uint64_t start = now_ns();
    uint64_t setup_deadline = start + secs(opt.timeout) + secs(30.0);
    res.rss_before_kb = server_rss_kb();
    res.fds_before = server_fds();
    if (opt.idle > 0) {
        idle_fds = calloc((size_t)opt.idle, sizeof *idle_fds);
        if (!idle_fds) die("out of memory");
        res.idle_open = open_connections(idle_fds, opt.idle, setup_deadline);
        long accepted = -1;
        if (res.fds_before >= 0)
            accepted = wait_server_fds(res.fds_before + res.idle_open,
                                       now_ns() + secs(opt.timeout));
#ifdef HAVE_OPENSSL
        if (opt.tls) {     /* handshake, and one echo each: the server is done */
            idle_ssl = calloc((size_t)opt.idle + 1, sizeof *idle_ssl);
            if (!idle_ssl) die("out of memory");
            res.idle_open = tls_setup(idle_fds, idle_ssl, res.idle_open, 1, setup_deadline);
        }
#endif
        if (res.fds_before >= 0) {
            res.idle_accepted = (int)(accepted - res.fds_before);
            sleep_ns(secs(opt.settle));   /* let it finish setting them up */
            res.rss_idle_kb = server_rss_kb();
        } else {
            res.idle_accepted = -1;
        }
    }
    int *fds = calloc((size_t)opt.conns, sizeof *fds);
    conn_t *conns = calloc((size_t)opt.conns, sizeof *conns);
    if (!fds || !conns) die("out of memory");
    int n = open_connections(fds, opt.conns, now_ns() + secs(opt.timeout) + secs(10.0));
#ifdef HAVE_OPENSSL
    SSL **ssls = calloc((size_t)opt.conns, sizeof *ssls);
    if (!ssls) die("out of memory");
    if (opt.tls && n > 0)
        n = tls_setup(fds, ssls, n, 0, now_ns() + secs(opt.timeout) + secs(10.0));
#endif
    if (n == 0) {
        res.fatal = "could not open any connection";
        return;
    }
    ep_main = epoll_create1(EPOLL_CLOEXEC);
    for (int i = 0; i < n; i++) {
        conn_t *c = &conns[i];
        c->fd = fds[i];
#ifdef HAVE_OPENSSL
        c->ssl = ssls[i];
#endif
        c->id = (uint32_t)i;
        c->alive = 1;
        n_alive++;
        set_nodelay(c->fd);
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
        epoll_ctl(ep_main, EPOLL_CTL_ADD, c->fd, &ev);
    }
    for (int i = 0; i < n; i++) start_request(&conns[i]);

    timeline_t tl;
    timeline_begin(&tl, now_ns());
    struct epoll_event evs[MAX_EVENTS];
    for (;;) {
        int k = epoll_wait(ep_main, evs, MAX_EVENTS, 20);
        for (int i = 0; i < k; i++) {
            conn_t *c = &conns[evs[i].data.u32];
            if (!c->alive) continue;
            if (evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) on_readable(c);
            if (c->alive && (evs[i].events & EPOLLOUT) && c->inflight) try_send(c);
#ifdef HAVE_OPENSSL
            /* TLS: a read that had to wait for writability goes on. */
            if (c->alive && c->ssl && (evs[i].events & EPOLLOUT)) {
                if (!c->inflight) set_out(c, 0);
                on_readable(c);
            }
#endif
        }
        uint64_t t = now_ns();
        timeline_step(&tl, t);
        if (phase == DRAIN && (n_inflight == 0 || t >= tl.drain_end)) break;
        if (n_alive == 0) {
            res.fatal = "every connection failed";
            if (phase == WINDOW) window_close(tl.wstart);
            break;
        }
        if (scan_due(&tl, t)) {
            for (int i = 0; i < n; i++) {
                conn_t *c = &conns[i];
                if (c->alive && c->inflight && t - c->t0 > tl.timeout_ns) {
                    res.timeouts++;
                    conn_fail(c);
                }
            }
        }
    }
    /* Anything still in flight after the drain deadline timed out. */
    for (int i = 0; i < n; i++) {
        conn_t *c = &conns[i];
        if (c->alive && c->inflight) { res.timeouts++; conn_fail(c); }
    }
    /* Were the idle connections kept open (no data, no EOF)? */
    for (int i = 0; i < res.idle_open; i++) {
        ssize_t r = recv(idle_fds[i], scratch, 1, MSG_DONTWAIT | MSG_PEEK);
        if (r == 0 || (r < 0 && errno != EAGAIN)) res.idle_closed_by_server++;
        else if (r > 0) { res.unexpected_bytes++; res.errors++; }
    }
    for (int i = 0; i < n; i++) {
        if (!conns[i].alive) continue;
#ifdef HAVE_OPENSSL
        if (conns[i].ssl) SSL_free(conns[i].ssl);
#endif
        close(conns[i].fd);
    }
    for (int i = 0; i < res.idle_open; i++) {
#ifdef HAVE_OPENSSL
        if (idle_ssl) SSL_free(idle_ssl[i]);
#endif
        close(idle_fds[i]);
    }
    close(ep_main);
    free(fds);
    free(conns);
#ifdef HAVE_OPENSSL
    free(ssls);
    free(idle_ssl);
#endif
}

/* -- churn mode ------------------------------------------------------------------ */

typedef struct {
    int fd;
    size_t got;
    uint64_t t0, retry_at;
    unsigned char buf[256];
#ifdef HAVE_OPENSSL
    SSL *ssl;           /* --tls */
    int stage;
    uint32_t events;
#endif
} slot_t;

static slot_t *slots;
static size_t expect_len, message_len;

static void slot_close(slot_t *s) {
#ifdef HAVE_OPENSSL
    if (s->ssl) { SSL_free(s->ssl); s->ssl = NULL; }
#endif
    if (s->fd >= 0) close(s->fd);   /* close() also leaves the epoll set */
    s->fd = -1;
}

static void slot_start(slot_t *s, uint32_t index, uint64_t t) {
    s->got = 0;
    s->t0 = t;
    s->fd = new_socket();
    if (s->fd < 0) {
        res.connect_errors++;
        res.errors++;
        s->retry_at = t + 1000000ull;
        return;
    }
    if (connect(s->fd, (struct sockaddr *)&server_addr, server_len) < 0
        && errno != EINPROGRESS) {
        res.connect_errors++;
        res.errors++;
        slot_close(s);
        s->retry_at = t + 1000000ull;   /* e.g. out of ports: back off 1 ms */
        return;
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = index};
    epoll_ctl(ep_main, EPOLL_CTL_ADD, s->fd, &ev);
}

/* Check what a churn slot read (the greeting, or for TLS the echoed
   message) against the `len` bytes it expected. */
static void check_reply(const slot_t *s, const char *want, size_t len) {
    if (s->got > len || memcmp(s->buf, want, len) != 0) {
        res.mismatches++;
        res.errors++;
    } else {
        res.bytes_verified += len;
    }
}

/* Close a slot that failed; the timeout scan starts it again 1 ms later. */
static void slot_retry_later(slot_t *s) {
    slot_close(s);
    s->retry_at = now_ns() + 1000000ull;
}

/* How a churn mode starts a slot's connection at t, and takes the slot on
   when epoll says its socket is ready. */
typedef void (*slot_start_fn)(slot_t *s, uint32_t index, uint64_t t);
typedef void (*slot_ready_fn)(slot_t *s, uint32_t index);

/* The loop of both churn modes (plain and TLS): start every slot, hand the
   ready ones on, move through the timeline and, every 100 ms (every turn
   in the drain), close the slots that timed out and start again those
   whose retry time has come.  What is still open at the end timed out. */
static void churn_loop(slot_start_fn start, slot_ready_fn ready) {
    slots = calloc((size_t)opt.conns, sizeof *slots);
    if (!slots) die("out of memory");
    ep_main = epoll_create1(EPOLL_CLOEXEC);
    uint64_t t = now_ns();
    for (int i = 0; i < opt.conns; i++) slots[i].fd = -1;
    for (int i = 0; i < opt.conns; i++) start(&slots[i], (uint32_t)i, t);
    timeline_t tl;
    timeline_begin(&tl, t);
    uint64_t hard_end = t + secs(opt.warmup + opt.duration + opt.timeout + 5.0);
    struct epoll_event evs[MAX_EVENTS];
    for (;;) {
        int k = epoll_wait(ep_main, evs, MAX_EVENTS, 10);
        for (int i = 0; i < k; i++) {
            uint32_t index = evs[i].data.u32;
            if (slots[index].fd >= 0) ready(&slots[index], index);
        }
        t = now_ns();
        timeline_step(&tl, t);
        if (scan_due(&tl, t) || phase == DRAIN) {
            int open = 0;
            for (int i = 0; i < opt.conns; i++) {
                slot_t *s = &slots[i];
                if (s->fd >= 0 && t - s->t0 > tl.timeout_ns) {
                    res.timeouts++;
                    res.errors++;
                    slot_close(s);
                    s->retry_at = t;
                }
                if (s->fd < 0 && phase != DRAIN && s->retry_at && t >= s->retry_at) {
                    s->retry_at = 0;
                    start(s, (uint32_t)i, t);
                }
                open += s->fd >= 0;
            }
            if (phase == DRAIN && (open == 0 || t >= tl.drain_end)) break;
        }
        if (t >= hard_end) break;
        if (res.errors > 100000) { res.fatal = "too many errors"; break; }
    }
    for (int i = 0; i < opt.conns; i++) {
        if (slots[i].fd >= 0) { res.timeouts++; res.errors++; slot_close(&slots[i]); }
    }
    if (phase == WINDOW) window_close(tl.wstart);
    close(ep_main);
    free(slots);
}

/* Plain churn: read the greeting, check it, send the message, close. */
static void churn_slot_ready(slot_t *s, uint32_t index) {
    ssize_t n = recv(s->fd, s->buf + s->got, expect_len - s->got + 16, 0);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
    if (n <= 0) {            /* refused, reset, or closed too early */
        if (n < 0 && errno == ECONNREFUSED) res.connect_errors++;
        else res.conns_lost++;
        res.errors++;
        slot_retry_later(s);
        return;
    }
    s->got += (size_t)n;
    if (s->got < expect_len) return;
    uint64_t done = now_ns();
    check_reply(s, opt.expect, expect_len);
    ssize_t w = send(s->fd, opt.message, message_len, MSG_NOSIGNAL);
    if (w != (ssize_t)message_len) { res.conns_lost++; res.errors++; }
    slot_close(s);
    request_done(s->t0, done);
    if (phase != DRAIN) slot_start(s, index, done);
}

static void run_churn(void) {
    expect_len = strlen(opt.expect);
    message_len = strlen(opt.message);
    if (expect_len == 0 || expect_len > 200) die("--expect must be 1..200 bytes");
    churn_loop(slot_start, churn_slot_ready);
}

#ifdef HAVE_OPENSSL
/* -- TLS handshake churn ------------------------------------------------------------ */

enum { ST_HANDSHAKE, ST_ECHO, ST_SHUTDOWN };

static void tls_slot_step(slot_t *s, uint32_t index);

static void tls_slot_start(slot_t *s, uint32_t index, uint64_t t) {
    slot_start(s, index, t);         /* connect; registered for EPOLLIN */
    if (s->fd < 0) return;
    set_nodelay(s->fd);              /* handshake flights go out at once */
    s->ssl = tls_new(s->fd);
    s->stage = ST_HANDSHAKE;
    s->events = EPOLLIN;
    tls_slot_step(s, index);         /* the ClientHello, or wait for the connect */
}

static void tls_slot_failed(slot_t *s, int io) {
    if (io == 0 || errno == ECONNRESET || errno == EPIPE) res.conns_lost++;
    else if (errno == ECONNREFUSED) res.connect_errors++;
    else res.tls_failures++;
    res.errors++;
    slot_retry_later(s);
}

/* Take a slot as far as it can go without waiting. */
static void tls_slot_step(slot_t *s, uint32_t index) {
    int io = IO_FAIL;
    for (int guard = 0; guard < 16; guard++) {
        errno = 0;
        if (s->stage == ST_HANDSHAKE) {
            io = tls_result(s->ssl, SSL_do_handshake(s->ssl), "handshake");
            if (io <= 0) break;
            tls_note_session(s->ssl);
            io = tls_result(s->ssl, SSL_write(s->ssl, opt.message, (int)message_len), "write");
            if (io != (int)message_len) {     /* 18 bytes into an empty socket buffer */
                tls_slot_failed(s, io);
                return;
            }
            s->stage = ST_ECHO;
        } else if (s->stage == ST_ECHO) {
            io = tls_result(s->ssl, SSL_read(s->ssl, s->buf + s->got,
                                             (int)(message_len - s->got + 16)), "read");
            if (io <= 0) break;
            s->got += (size_t)io;
            if (s->got < message_len) continue;
            check_reply(s, opt.message, message_len);
            SSL_shutdown(s->ssl);      /* our close_notify */
            ERR_clear_error();
            s->stage = ST_SHUTDOWN;
        } else {                       /* wait for the server's close_notify */
            int r = SSL_read(s->ssl, s->buf, sizeof s->buf);
            if (r > 0) {
                res.unexpected_bytes += (uint64_t)r;
                res.errors++;
                continue;
            }
            int err = SSL_get_error(s->ssl, r);
            if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
                io = err == SSL_ERROR_WANT_READ ? IO_WANT_READ : IO_WANT_WRITE;
                break;
            }
            if (err != SSL_ERROR_ZERO_RETURN) {   /* EOF or reset without close_notify */
                res.tls_unclean++;
                ERR_clear_error();
            }
            uint64_t done = now_ns();
            slot_close(s);
            request_done(s->t0, done);
            if (phase != DRAIN) tls_slot_start(s, index, done);
            return;
        }
    }
    if (io == IO_WANT_READ || io == IO_WANT_WRITE) {
        uint32_t events = io_events(io);
        if (events != s->events) {
            struct epoll_event ev = {.events = events, .data.u32 = index};
            epoll_ctl(ep_main, EPOLL_CTL_MOD, s->fd, &ev);
            s->events = events;
        }
    } else if (io != IO_INTR) {
        tls_slot_failed(s, io);
    }
}

static void run_tls_churn(void) {
    message_len = strlen(opt.message);
    if (message_len == 0 || message_len > 200) die("--message must be 1..200 bytes");
    churn_loop(tls_slot_start, tls_slot_step);
}
#endif

/* -- main ------------------------------------------------------------------------- */

static void usage(void) {
    fprintf(stderr,
            "usage: loadgen (--port P [--host 127.0.0.1] | --unix PATH) [--mode echo|churn]\n"
            "               [--conns N] [--size BYTES] [--warmup S] [--duration S]\n"
            "               [--idle K] [--server-pid PID] [--cpu N] [--timeout S]\n"
            "               [--settle S] [--message TEXT] [--expect TEXT] [--sources N]\n"
            "               [--tls 1]\n");
    exit(2);
}

static double num(const char *s) {
    char *end;
    double v = strtod(s, &end);
    if (*s == 0 || *end != 0 || !(v >= 0)) usage();
    return v;
}

static void json_string(const char *key, const char *s) {
    printf("\"%s\": \"", key);
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\') printf("\\%c", ch);
        else if (ch < 0x20) printf("\\u%04x", ch);
        else putchar(ch);
    }
    printf("\"");
}

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (i + 1 >= argc) usage();
        const char *v = argv[++i];
        if (!strcmp(a, "--host")) opt.host = v;
        else if (!strcmp(a, "--unix")) opt.unix_path = v;
        else if (!strcmp(a, "--port")) opt.port = (int)num(v);
        else if (!strcmp(a, "--mode")) {
            if (!strcmp(v, "churn")) opt.churn = 1;
            else if (strcmp(v, "echo")) usage();
        }
        else if (!strcmp(a, "--conns")) opt.conns = (int)num(v);
        else if (!strcmp(a, "--size")) opt.size = (size_t)num(v);
        else if (!strcmp(a, "--warmup")) opt.warmup = num(v);
        else if (!strcmp(a, "--duration")) opt.duration = num(v);
        else if (!strcmp(a, "--timeout")) opt.timeout = num(v);
        else if (!strcmp(a, "--settle")) opt.settle = num(v);
        else if (!strcmp(a, "--idle")) opt.idle = (int)num(v);
        else if (!strcmp(a, "--server-pid")) opt.server_pid = (int)num(v);
        else if (!strcmp(a, "--cpu")) opt.cpu = (int)num(v);
        else if (!strcmp(a, "--message")) opt.message = v;
        else if (!strcmp(a, "--expect")) opt.expect = v;
        else if (!strcmp(a, "--sources")) opt.sources = (int)num(v);
        else if (!strcmp(a, "--tls")) opt.tls = (int)num(v) != 0;
        else usage();
    }
    if (opt.unix_path) opt.port = 1;   /* not used */
    if (opt.port <= 0 || opt.port > 65535 || opt.conns < 1 || opt.conns > 100000
        || opt.size < 1 || opt.size > (64u << 20) || opt.duration <= 0 || opt.timeout <= 0
        || opt.idle < 0 || opt.idle > 1000000 || opt.sources < 1 || opt.sources > 254)
        usage();
    memset(&server_addr, 0, sizeof server_addr);
    if (opt.unix_path) {
        struct sockaddr_un *un = (struct sockaddr_un *)&server_addr;
        if (strlen(opt.unix_path) >= sizeof un->sun_path) die("--unix path too long");
        un->sun_family = AF_UNIX;
        strcpy(un->sun_path, opt.unix_path);
        server_family = AF_UNIX;
        server_len = sizeof *un;
        if (opt.churn) die("--unix is for --mode echo");
    } else {
        struct sockaddr_in *in = (struct sockaddr_in *)&server_addr;
        in->sin_family = AF_INET;
        in->sin_port = htons((uint16_t)opt.port);
        if (inet_pton(AF_INET, opt.host, &in->sin_addr) != 1)
            die("--host must be an IPv4 address");
        if ((ntohl(in->sin_addr.s_addr) >> 24) != 127)
            die("refusing a non-loopback address: loopback (127.0.0.0/8) only");
        server_len = sizeof *in;
    }

    if (opt.cpu >= 0) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(opt.cpu, &set);
        sched_setaffinity(0, sizeof set, &set);   /* best effort */
    }
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    getrlimit(RLIMIT_NOFILE, &rl);
    int idle_requested = opt.idle;
    if (rl.rlim_cur != RLIM_INFINITY
        && (rlim_t)(opt.idle + opt.conns + 32) > rl.rlim_cur) {
        long room = (long)rl.rlim_cur - opt.conns - 32;
        opt.idle = room > 0 ? (int)room : 0;     /* as many as we may */
    }
    signal(SIGPIPE, SIG_IGN);

    make_pattern(opt.size + PATTERN_SPAN);
    if (opt.tls) {
#ifdef HAVE_OPENSSL
        tls_init();
        if (opt.churn) run_tls_churn();
        else run_echo();
#else
        die("--tls: this load generator was built without OpenSSL "
            "(build with -DHAVE_OPENSSL ... -lssl -lcrypto; Debian: apt-get install libssl-dev)");
#endif
    } else if (opt.churn) {
        run_churn();
    } else {
        run_echo();
    }

    double rps = res.window_s > 0 ? (double)res.requests / res.window_s : 0.0;
    double mean = 0.0;
    for (size_t i = 0; i < lat_len; i++) mean += (double)lat[i];
    mean = lat_len ? mean / (double)lat_len / 1000.0 : 0.0;
    qsort(lat, lat_len, sizeof *lat, cmp_u64);
    long clk = sysconf(_SC_CLK_TCK);
    long long ticks = (res.cpu_ticks0 >= 0 && res.cpu_ticks1 >= 0)
                          ? res.cpu_ticks1 - res.cpu_ticks0 : -1;

    printf("{");
    json_string("mode", opt.churn ? "churn" : "echo");
    printf(", ");
    json_string("host", opt.host);
    printf(", \"port\": %d, \"conns\": %d, \"size\": %zu, \"sources\": %d", opt.port,
           opt.conns, opt.size, opt.sources);
    printf(", \"warmup_s\": %.3f, \"window_s\": %.6f", opt.warmup, res.window_s);
    printf(", \"requests\": %llu, \"total_requests\": %llu, \"rps\": %.1f",
           (unsigned long long)res.requests, (unsigned long long)res.total_requests, rps);
    printf(", \"latency_us\": {\"mean\": %.2f, \"p50\": %.2f, \"p90\": %.2f, \"p99\": %.2f, "
           "\"p999\": %.2f, \"max\": %.2f, \"samples\": %zu}",
           mean, pct_us(50), pct_us(90), pct_us(99), pct_us(99.9), pct_us(100), lat_len);
    printf(", \"errors\": %llu, \"mismatches\": %llu, \"unexpected_bytes\": %llu"
           ", \"timeouts\": %llu, \"connect_errors\": %llu, \"conns_lost\": %llu"
           ", \"bytes_verified\": %llu",
           (unsigned long long)res.errors, (unsigned long long)res.mismatches,
           (unsigned long long)res.unexpected_bytes, (unsigned long long)res.timeouts,
           (unsigned long long)res.connect_errors, (unsigned long long)res.conns_lost,
           (unsigned long long)res.bytes_verified);
    printf(", \"idle_requested\": %d, \"idle_open\": %d, \"idle_accepted\": %d"
           ", \"idle_closed_by_server\": %d",
           idle_requested, res.idle_open, res.idle_accepted, res.idle_closed_by_server);
    printf(", \"server_pid\": %d, \"clk_tck\": %ld, \"server_cpu_ticks\": %lld"
           ", \"server_cpu_s\": %.4f",
           opt.server_pid, clk, ticks, ticks >= 0 ? (double)ticks / (double)clk : -1.0);
    printf(", \"client_cpu_s\": %.4f",
           res.client_cpu1 >= 0 ? res.client_cpu1 - res.client_cpu0 : -1.0);
    printf(", \"machine_busy_s\": %.4f", res.busy0 >= 0 && res.busy1 >= 0
           ? (double)(res.busy1 - res.busy0) / (double)clk : -1.0);
    printf(", \"server_rss_kb_before_idle\": %ld, \"server_rss_kb_with_idle\": %ld"
           ", \"server_fds_before_idle\": %ld",
           res.rss_before_kb, res.rss_idle_kb, res.fds_before);
    printf(", \"tls\": %s, \"tls_handshakes\": %llu, \"tls_resumed\": %llu"
           ", \"tls_failures\": %llu, \"tls_unclean_closes\": %llu, ",
           opt.tls ? "true" : "false", (unsigned long long)res.tls_handshakes,
           (unsigned long long)res.tls_resumed, (unsigned long long)res.tls_failures,
           (unsigned long long)res.tls_unclean);
    json_string("tls_version", tls_version);
    printf(", ");
    json_string("tls_cipher", tls_cipher);
    printf(", ");
    json_string("tls_group", tls_group);
    printf(", ");
    json_string("tls_error", tls_error);
    printf(", \"fatal\": ");
    if (res.fatal) { printf("\""); printf("%s", res.fatal); printf("\""); }
    else printf("null");
    printf("}\n");
    fflush(stdout);
    free(lat);
    free(pattern);
    free(idle_fds);
    return 0;
}
