/* The fan-out load client: one publisher, many subscribers, one thread.
 *
 *   fanclient HOST PORT SUBSCRIBERS SIZE WINDOW SECONDS WARMUP
 *
 * Opens SUBSCRIBERS WebSocket connections to ws://HOST:PORT/sub and one to
 * /pub (the servers in servers.py subscribe /sub connections to one topic
 * and publish every message /pub sends to it), waits until the servers had
 * time to subscribe, then publishes binary messages of SIZE bytes as fast as
 * the window allows: at most WINDOW messages not yet received by every
 * subscriber (a message lost on the way counts as done after one second).
 * Each message carries its send time (CLOCK_MONOTONIC) and sequence number;
 * each delivery's delay from publish to receipt goes to a histogram.
 * Prints "measuring" when the measured SECONDS start (after WARMUP) and
 * "done" when they end, then one JSON line: deliveries per second, p50 and
 * p99 delay in microseconds, messages published, lost, client CPU seconds.
 * Built by benchmarks/fanout/run.py on first use (cc -O2).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define RING 65536            /* sequence numbers tracked at once */
#define HIST_US 2000000       /* delay histogram: 1 us buckets up to 2 s */
#define BUF (256 * 1024)

typedef struct {
    int fd;
    unsigned char *in;
    size_t len;
} sub_t;

static long SUBS;
static size_t SIZE;
static long WINDOW;
static uint32_t *counts;      /* deliveries per sequence number (mod RING) */
static uint64_t *sent_ns;     /* publish time per sequence number (mod RING) */
static uint64_t *hist;
static uint64_t hist_over, delivered, lost;
static uint64_t next_seq, oldest;  /* published: [oldest, next_seq) not yet complete */
static int measuring;

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void die(const char *what) { perror(what); exit(2); }

static int open_ws(const char *host, int port, const char *path) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) die("socket");
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, host, &a.sin_addr) != 1) die("inet_pton");
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) die("connect");
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    char req[512];
    int n = snprintf(req, sizeof req,
                     "GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
                     path, host, port);
    if (write(fd, req, (size_t)n) != n) die("write");
    /* The 101 head, byte by byte: nothing after it may be taken here. */
    char head[2048];
    size_t h = 0;
    while (h < sizeof head - 1) {
        ssize_t r = read(fd, head + h, 1);
        if (r <= 0) die("handshake");
        h++;
        if (h >= 4 && memcmp(head + h - 4, "\r\n\r\n", 4) == 0) break;
    }
    head[h] = 0;
    if (strncmp(head, "HTTP/1.1 101", 12) != 0) {
        fprintf(stderr, "no upgrade: %s\n", head);
        exit(2);
    }
    return fd;
}

/* A message was received: count it; retire what every subscriber has. */
static void delivered_one(const unsigned char *p, size_t n, uint64_t t) {
    if (n < 16) return;
    uint64_t ts, seq;
    memcpy(&ts, p, 8);
    memcpy(&seq, p + 8, 8);
    if (seq < oldest || seq >= next_seq) return;  /* retired as lost already */
    counts[seq % RING]++;
    if (measuring) {
        uint64_t us = (t - ts) / 1000;
        if (us < HIST_US) hist[us]++; else hist_over++;
        delivered++;
    }
}

static void retire(uint64_t t) {
    while (oldest < next_seq) {
        size_t i = oldest % RING;
        if (counts[i] >= (uint32_t)SUBS) {
        } else if (t - sent_ns[i] > 1000000000ull) {
            if (measuring) lost++;
        } else {
            break;
        }
        counts[i] = 0;
        oldest++;
    }
}

/* Parse what a subscriber's buffer holds: unmasked server frames. */
static void parse(sub_t *s, uint64_t t) {
    size_t off = 0;
    while (s->len - off >= 2) {
        unsigned char *f = s->in + off;
        size_t hl = 2, plen = f[1] & 127;
        if (plen == 126) {
            if (s->len - off < 4) break;
            plen = ((size_t)f[2] << 8) | f[3];
            hl = 4;
        } else if (plen == 127) {
            if (s->len - off < 10) break;
            plen = 0;
            for (int k = 2; k < 10; k++) plen = (plen << 8) | f[k];
            hl = 10;
        }
        if (s->len - off < hl + plen) break;
        if ((f[0] & 15) == 2) delivered_one(f + hl, plen, t);
        off += hl + plen;
    }
    if (off) {
        memmove(s->in, s->in + off, s->len - off);
        s->len -= off;
    }
}

int main(int argc, char **argv) {
    if (argc != 8) {
        fprintf(stderr, "usage: fanclient HOST PORT SUBSCRIBERS SIZE WINDOW SECONDS WARMUP\n");
        return 2;
    }
    const char *host = argv[1];
    int port = atoi(argv[2]);
    SUBS = atol(argv[3]);
    SIZE = (size_t)atol(argv[4]);
    WINDOW = atol(argv[5]);
    double seconds = atof(argv[6]), warmup = atof(argv[7]);
    if (SIZE < 16 || SIZE > BUF / 2 || WINDOW < 1 || WINDOW > RING / 2) {
        fprintf(stderr, "bad arguments\n");
        return 2;
    }
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    counts = calloc(RING, sizeof *counts);
    sent_ns = calloc(RING, sizeof *sent_ns);
    hist = calloc(HIST_US, sizeof *hist);
    sub_t *subs = calloc((size_t)SUBS, sizeof *subs);
    if (!counts || !sent_ns || !hist || !subs) die("calloc");

    int ep = epoll_create1(0);
    for (long i = 0; i < SUBS; i++) {
        subs[i].fd = open_ws(host, port, "/sub");
        subs[i].in = malloc(BUF);
        if (!subs[i].in) die("malloc");
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &subs[i]};
        if (epoll_ctl(ep, EPOLL_CTL_ADD, subs[i].fd, &ev) < 0) die("epoll_ctl");
    }
    int pub = open_ws(host, port, "/pub");
    /* Time for every server to subscribe (through a broker too). */
    usleep(500000);

    /* The frame: binary, masked with a zero key (RFC 6455 §5.3 allows any key). */
    size_t hl = SIZE < 126 ? 2 : (SIZE < 65536 ? 4 : 10);
    size_t flen = hl + 4 + SIZE;
    unsigned char *frame = calloc(1, flen);
    frame[0] = 0x82;
    if (hl == 2) {
        frame[1] = 0x80 | (unsigned char)SIZE;
    } else if (hl == 4) {
        frame[1] = 0x80 | 126;
        frame[2] = (unsigned char)(SIZE >> 8);
        frame[3] = (unsigned char)SIZE;
    } else {
        frame[1] = 0x80 | 127;
        for (int k = 0; k < 8; k++) frame[2 + k] = (unsigned char)((uint64_t)SIZE >> (56 - 8 * k));
    }
    unsigned char *payload = frame + hl + 4;
    for (size_t k = 16; k < SIZE; k++) payload[k] = (unsigned char)(k * 7);
    unsigned char *out = malloc(flen * (size_t)WINDOW);
    size_t out_len = 0, out_off = 0;

    struct epoll_event evs[256];
    uint64_t start = now_ns();
    uint64_t t_measure = start + (uint64_t)(warmup * 1e9), t_end = t_measure + (uint64_t)(seconds * 1e9);
    uint64_t published = 0, measured_published = 0;
    struct rusage ru0 = {0}, ru1;
    for (;;) {
        uint64_t t = now_ns();
        if (!measuring && t >= t_measure) {
            measuring = 1;
            getrusage(RUSAGE_SELF, &ru0);
            printf("measuring\n");
            fflush(stdout);
        }
        if (t >= t_end) break;
        retire(t);
        /* Publish what the window allows, in one write. */
        if (out_off == out_len) {
            out_len = out_off = 0;
            while ((long)(next_seq - oldest) < WINDOW) {
                uint64_t seq = next_seq++;
                memcpy(payload, &t, 8);
                memcpy(payload + 8, &seq, 8);
                memcpy(out + out_len, frame, flen);
                out_len += flen;
                counts[seq % RING] = 0;
                sent_ns[seq % RING] = t;
                published++;
                if (measuring) measured_published++;
            }
        }
        while (out_off < out_len) {
            ssize_t w = send(pub, out + out_off, out_len - out_off, MSG_DONTWAIT | MSG_NOSIGNAL);
            if (w < 0) {
                if (errno == EAGAIN || errno == EWOULDBLOCK) break;
                die("send");
            }
            out_off += (size_t)w;
        }
        int n = epoll_wait(ep, evs, 256, 1);
        if (n < 0 && errno != EINTR) die("epoll_wait");
        t = now_ns();
        for (int i = 0; i < n; i++) {
            sub_t *s = evs[i].data.ptr;
            for (;;) {
                ssize_t r = recv(s->fd, s->in + s->len, BUF - s->len, MSG_DONTWAIT);
                if (r > 0) {
                    s->len += (size_t)r;
                    parse(s, t);
                    if (s->len == BUF) {
                        fprintf(stderr, "frame larger than the buffer\n");
                        return 2;
                    }
                    if ((size_t)r < BUF / 2) break;
                } else if (r == 0) {
                    fprintf(stderr, "a subscriber was disconnected\n");
                    return 3;
                } else {
                    if (errno != EAGAIN && errno != EWOULDBLOCK) die("recv");
                    break;
                }
            }
        }
    }
    getrusage(RUSAGE_SELF, &ru1);
    printf("done\n");
    uint64_t p50 = 0, p99 = 0, acc = 0, total = delivered;
    int have50 = 0;
    for (uint64_t us = 0; us < HIST_US && total; us++) {
        acc += hist[us];
        if (!have50 && acc * 2 >= total) { p50 = us; have50 = 1; }
        if (acc * 100 >= total * 99) { p99 = us; break; }
    }
    if (total && acc * 100 < total * 99) p99 = HIST_US;
    double cpu = (ru1.ru_utime.tv_sec - ru0.ru_utime.tv_sec) + (ru1.ru_utime.tv_usec - ru0.ru_utime.tv_usec) * 1e-6
               + (ru1.ru_stime.tv_sec - ru0.ru_stime.tv_sec) + (ru1.ru_stime.tv_usec - ru0.ru_stime.tv_usec) * 1e-6;
    printf("{\"delivered\": %llu, \"delivered_per_s\": %.0f, \"published\": %llu, \"lost\": %llu, "
           "\"p50_us\": %llu, \"p99_us\": %llu, \"client_cpu_s\": %.3f}\n",
           (unsigned long long)delivered, delivered / seconds, (unsigned long long)measured_published,
           (unsigned long long)lost, (unsigned long long)p50, (unsigned long long)p99, cpu);
    return 0;
}
