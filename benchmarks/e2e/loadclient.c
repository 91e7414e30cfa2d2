/* A small WebSocket load client for the end-to-end benchmark.
 *
 *   loadclient HOST PORT CONNECTIONS IN_FLIGHT SIZE SECONDS [WARMUP_SECONDS]
 *
 * One thread, epoll, non-blocking sockets, TCP_NODELAY.  Each connection does
 * the opening handshake, then keeps IN_FLIGHT masked binary messages of SIZE
 * bytes outstanding: every reply is checked byte for byte against what was
 * sent, its round-trip time recorded, and a new message sent.  Prints one
 * JSON line: messages/s, p50/p99 latency in microseconds, client CPU seconds.
 * Built by benchmarks/e2e/run.py on first use (cc -O2).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
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

typedef struct {
    int fd;
    int open;               /* handshake done */
    unsigned char *in;      /* receive buffer */
    size_t in_len, in_cap;
    unsigned char *out;     /* pending output */
    size_t out_len, out_off, out_cap;
    double *sent_at;        /* FIFO of send times, IN_FLIGHT slots */
    size_t head, count;
    uint32_t seq;           /* payload pattern seed of the oldest in flight */
    uint32_t next_seq;
} conn_t;

static size_t SIZE;
static int INFLIGHT;
static double *lat;
static size_t nlat, caplat;
static long long done_msgs;
static int measuring;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void die(const char *msg) { perror(msg); exit(2); }

static void fill_payload(unsigned char *p, size_t n, uint32_t seq) {
    for (size_t i = 0; i < n; i++) p[i] = (unsigned char)(seq * 131u + i * 7u);
}

static void out_reserve(conn_t *c, size_t more) {
    if (c->out_len + more > c->out_cap) {
        c->out_cap = (c->out_len + more) * 2;
        c->out = realloc(c->out, c->out_cap);
        if (!c->out) die("realloc");
    }
}

/* Messages cycle through NPAT payload patterns; the frames (masked) and the
 * expected replies are built once, so that sending is one memcpy and
 * checking one memcmp: the client stays cheaper than any server. */
#define NPAT 16
static unsigned char *frames[NPAT], *payloads[NPAT];
static size_t frame_len;

static void build_patterns(void) {
    size_t hl = SIZE < 126 ? 2 : (SIZE < 65536 ? 4 : 10);
    frame_len = hl + 4 + SIZE;
    for (int k = 0; k < NPAT; k++) {
        unsigned char *p = frames[k] = malloc(frame_len);
        payloads[k] = malloc(SIZE + 1);
        fill_payload(payloads[k], SIZE, (uint32_t)k);
        p[0] = 0x82;
        if (SIZE < 126) p[1] = 0x80 | (unsigned char)SIZE;
        else if (SIZE < 65536) { p[1] = 0x80 | 126; p[2] = SIZE >> 8; p[3] = SIZE & 255; }
        else { p[1] = 0x80 | 127; for (int i = 0; i < 8; i++) p[2 + i] = (unsigned char)((uint64_t)SIZE >> (56 - 8 * i)); }
        unsigned char key[4] = {0x12, 0x34, 0x56, (unsigned char)(0x78 + k)};
        memcpy(p + hl, key, 4);
        for (size_t i = 0; i < SIZE; i++) p[hl + 4 + i] = payloads[k][i] ^ key[i & 3];
    }
}

static void queue_message(conn_t *c) {
    out_reserve(c, frame_len);
    memcpy(c->out + c->out_len, frames[c->next_seq % NPAT], frame_len);
    c->out_len += frame_len;
    c->sent_at[(c->head + c->count) % INFLIGHT] = now();
    c->count++;
    c->next_seq++;
}

static void flush_out(conn_t *c) {
    while (c->out_off < c->out_len) {
        ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
        if (n < 0) { if (errno == EAGAIN) return; die("send"); }
        c->out_off += n;
    }
    c->out_off = c->out_len = 0;
}


/* Parse complete frames in c->in; returns 0, or -1 on a bad reply. */
static int consume(conn_t *c) {
    size_t pos = 0;
    if (!c->open) {
        unsigned char *end = memmem(c->in, c->in_len, "\r\n\r\n", 4);
        if (!end) return 0;
        if (memcmp(c->in, "HTTP/1.1 101", 12) != 0) { fprintf(stderr, "handshake refused\n"); return -1; }
        pos = end - c->in + 4;
        c->open = 1;
        for (int i = 0; i < INFLIGHT; i++) queue_message(c);
    }
    for (;;) {
        if (c->in_len - pos < 2) break;
        unsigned char *h = c->in + pos;
        size_t len = h[1] & 127, hl = 2;
        if (len == 126) { if (c->in_len - pos < 4) break; len = (h[2] << 8) | h[3]; hl = 4; }
        else if (len == 127) { if (c->in_len - pos < 10) break; len = 0; for (int i = 0; i < 8; i++) len = (len << 8) | h[2 + i]; hl = 10; }
        if (c->in_len - pos < hl + len) break;
        int op = h[0] & 15;
        if (op == 9 || op == 10) { pos += hl + len; continue; } /* ping/pong: ignore */
        if (op != 2 || !(h[0] & 0x80) || len != SIZE || c->count == 0) {
            fprintf(stderr, "unexpected frame op=%d len=%zu\n", op, len);
            return -1;
        }
        if (memcmp(payloads[c->seq % NPAT], h + hl, SIZE) != 0) { fprintf(stderr, "payload mismatch\n"); return -1; }
        double rtt = now() - c->sent_at[c->head];
        c->head = (c->head + 1) % INFLIGHT;
        c->count--;
        c->seq++;
        if (measuring) {
            done_msgs++;
            if (nlat == caplat) { caplat = caplat ? caplat * 2 : 1 << 20; lat = realloc(lat, caplat * sizeof(double)); }
            lat[nlat++] = rtt;
        }
        pos += hl + len;
        queue_message(c);
    }
    memmove(c->in, c->in + pos, c->in_len - pos);
    c->in_len -= pos;
    return 0;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double cpu_seconds(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec * 1e-6 + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec * 1e-6;
}

int main(int argc, char **argv) {
    if (argc < 7) { fprintf(stderr, "usage: %s HOST PORT CONNS IN_FLIGHT SIZE SECONDS [WARMUP]\n", argv[0]); return 2; }
    const char *host = argv[1];
    int port = atoi(argv[2]), nconn = atoi(argv[3]);
    INFLIGHT = atoi(argv[4]);
    SIZE = (size_t)atol(argv[5]);
    double seconds = atof(argv[6]), warmup = argc > 7 ? atof(argv[7]) : 1.0;
    build_patterns();
    int ep = epoll_create1(0);
    conn_t *conns = calloc(nconn, sizeof(conn_t));
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
    inet_pton(AF_INET, host, &sa.sin_addr);
    for (int i = 0; i < nconn; i++) {
        conn_t *c = &conns[i];
        c->fd = socket(AF_INET, SOCK_STREAM, 0);
        if (connect(c->fd, (struct sockaddr *)&sa, sizeof sa) < 0) die("connect");
        int one = 1;
        setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        c->in_cap = SIZE * INFLIGHT + 65536;
        c->in = malloc(c->in_cap);
        c->sent_at = calloc(INFLIGHT, sizeof(double));
        char req[512];
        int n = snprintf(req, sizeof req,
            "GET / HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n", host, port);
        out_reserve(c, n);
        memcpy(c->out, req, n);
        c->out_len = n;
        flush_out(c);
        /* non-blocking after the handshake request is written */
        if (fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK) < 0) die("fcntl");
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
        epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
    }
    double start = now(), t0 = 0, cpu0 = 0;
    struct epoll_event evs[256];
    for (;;) {
        double t = now();
        if (!measuring && t - start >= warmup) { measuring = 1; t0 = t; cpu0 = cpu_seconds(); }
        if (measuring && t - t0 >= seconds) break;
        int n = epoll_wait(ep, evs, 256, 100);
        for (int i = 0; i < n; i++) {
            conn_t *c = evs[i].data.ptr;
            for (;;) {
                if (c->in_len == c->in_cap) { c->in_cap *= 2; c->in = realloc(c->in, c->in_cap); }
                ssize_t r = recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len, 0);
                if (r < 0) { if (errno == EAGAIN) break; die("recv"); }
                if (r == 0) { fprintf(stderr, "server closed the connection\n"); return 3; }
                c->in_len += r;
                if (consume(c) < 0) return 4;
                if ((size_t)r < 65536) break;
            }
            flush_out(c);
        }
    }
    double elapsed = now() - t0, cpu = cpu_seconds() - cpu0;
    qsort(lat, nlat, sizeof(double), cmp);
    double p50 = nlat ? lat[nlat / 2] : 0, p99 = nlat ? lat[(size_t)(nlat * 0.99)] : 0;
    printf("{\"messages\": %lld, \"seconds\": %.3f, \"msgs_per_s\": %.0f, \"p50_us\": %.1f, \"p99_us\": %.1f, "
           "\"client_cpu_s\": %.3f}\n", done_msgs, elapsed, done_msgs / elapsed, p50 * 1e6, p99 * 1e6, cpu);
    return 0;
}
