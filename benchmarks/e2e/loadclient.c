/* A small WebSocket load client for the end-to-end benchmark.
 *
 *   loadclient HOST PORT CONNECTIONS IN_FLIGHT SIZE SECONDS [WARMUP_SECONDS [deflate]]
 *
 * One thread, epoll, non-blocking sockets, TCP_NODELAY.  Each connection does
 * the opening handshake, then keeps IN_FLIGHT masked binary messages of SIZE
 * bytes outstanding: every reply is checked byte for byte against what was
 * sent, its round-trip time recorded, and a new message sent.  Prints one
 * JSON line: messages/s, p50/p99 latency in microseconds, client CPU seconds.
 * Built by benchmarks/e2e/run.py on first use (cc -O2 ... -lz).
 *
 * "deflate" (RFC 7692 permessage-deflate, as a browser uses it): the request
 * offers "permessage-deflate; client_max_window_bits" as Chrome does, and a
 * 101 without the extension is an error (exit 5), so that a compressed
 * scenario never measures plain traffic.  Messages are TEXT: JSON-looking
 * feed updates of exactly SIZE bytes (DPAT of them, each a little different,
 * made here deterministically).  They go out compressed as one raw DEFLATE
 * stream per connection, with context takeover unless the server answered
 * client_no_context_takeover, in the window it allowed (15 unless it said
 * client_max_window_bits=N), the 00 00 ff ff tail stripped (§7.2.1), RSV1
 * set, masked.  As in the plain mode, the frames are built once: one
 * compressor (level 6, memLevel 8: Chrome's settings) runs over the first
 * WARM + DPAT messages of the stream, where WARM messages fill the window;
 * from there the plain text repeats with period DPAT, so the window before
 * message n equals the window before message n - DPAT, and the frame built
 * for it is what a compressor could have sent there (every reference stays
 * within the window).  Every reply must be a compressed TEXT frame (RSV1: a
 * server that sends it plain fails the run); it is inflated by the
 * connection's own inflater (context kept unless server_no_context_takeover)
 * and checked byte for byte.  The JSON line adds the server's answer and the
 * compressed payload bytes per message each way.
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
#include <zlib.h>

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
    /* deflate mode only */
    struct dstream *ds;     /* the frames this connection sends */
    z_stream inflater;      /* the server's replies */
    int server_nct;         /* server_no_context_takeover: reset after each reply */
    unsigned char *plain;   /* one inflated reply, SIZE + 1 bytes */
} conn_t;

static size_t SIZE;
static int INFLIGHT;
static double *lat;
static size_t nlat, caplat;
static long long done_msgs;
static int measuring;
static int DEFLATE;

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

/* The frame at c->in + pos: 1 with its payload and header lengths if it is
 * all in, else 0. */
static inline int frame_at(const conn_t *c, size_t pos, size_t *len, size_t *hl) {
    if (c->in_len - pos < 2) return 0;
    const unsigned char *h = c->in + pos;
    *len = h[1] & 127;
    *hl = 2;
    if (*len == 126) { if (c->in_len - pos < 4) return 0; *len = (h[2] << 8) | h[3]; *hl = 4; }
    else if (*len == 127) { if (c->in_len - pos < 10) return 0; *len = 0; for (int i = 0; i < 8; i++) *len = (*len << 8) | h[2 + i]; *hl = 10; }
    return c->in_len - pos >= *hl + *len;
}

/* The oldest message in flight came back intact: its round trip recorded. */
static inline void reply_done(conn_t *c) {
    double rtt = now() - c->sent_at[c->head];
    c->head = (c->head + 1) % INFLIGHT;
    c->count--;
    c->seq++;
    if (measuring) {
        done_msgs++;
        if (nlat == caplat) { caplat = caplat ? caplat * 2 : 1 << 20; lat = realloc(lat, caplat * sizeof(double)); }
        lat[nlat++] = rtt;
    }
}

/* ---- permessage-deflate mode ---- */

#define DPAT 64            /* distinct texts; the plain text repeats with this period */
static unsigned char *texts[DPAT];
static const unsigned char TAIL[4] = {0x00, 0x00, 0xff, 0xff};
static char answer[256];   /* the first connection's Sec-WebSocket-Extensions answer */
static long long sent_bytes, reply_bytes;   /* compressed payload bytes while measuring */

static uint32_t rnd(uint32_t *s) {  /* xorshift32 */
    uint32_t x = *s;
    x ^= x << 13; x ^= x >> 17; x ^= x << 5;
    return *s = x;
}

/* Text k: a JSON feed update of exactly n bytes, an array of records with
 * ids, names, prices and timestamps; the numbers vary from text to text. */
static void make_text(unsigned char *out, size_t n, uint32_t k) {
    static const char *names[] = {"alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi",
                                  "ivan", "judy", "mallory", "niaj", "olivia", "peggy", "rupert", "sybil"};
    static const char *symbols[] = {"BTC-USD", "ETH-USD", "SOL-USD", "ADA-EUR", "XRP-EUR", "DOT-USD"};
    char rec[256], *p = (char *)out;
    uint32_t s = 0x9e3779b9u ^ (k * 2654435761u + 1);
    unsigned long long ts = 1735732800000ULL + k * 250ULL;  /* ms since the epoch */
    size_t pos = (size_t)snprintf(rec, sizeof rec, "{\"type\":\"trades\",\"seq\":%u,\"items\":[", 1000 + k);
    if (pos + 2 > n) {  /* too small for JSON: plain letters */
        for (size_t i = 0; i < n; i++) out[i] = (unsigned char)('a' + (k + i) % 26);
        return;
    }
    memcpy(p, rec, pos);
    for (uint32_t i = 0;; i++) {
        uint32_t r1 = rnd(&s), r2 = rnd(&s), r3 = rnd(&s);
        int m = snprintf(rec, sizeof rec,
            "%s{\"id\":%u,\"user\":\"%s\",\"symbol\":\"%s\",\"side\":\"%s\",\"price\":%u.%02u,"
            "\"qty\":%u,\"ts\":%llu}",
            i ? "," : "", 48000000u + k * 40u + i, names[r1 % 16], symbols[r2 % 6],
            (r3 & 1) ? "buy" : "sell", 100 + r1 % 90000, r2 % 100, 1 + r3 % 500, ts + r3 % 1000);
        if (pos + (size_t)m + 2 > n) break;
        memcpy(p + pos, rec, (size_t)m);
        pos += (size_t)m;
    }
    while (pos + 2 < n) p[pos++] = ' ';  /* JSON whitespace up to the exact size */
    p[pos++] = ']';
    p[pos++] = '}';
}

/* The frames one set of negotiated client parameters needs: frame k carries
 * text k % DPAT; message n is sent as frame n below WARM + DPAT, else as frame
 * WARM + (n - WARM) % DPAT (see the top of the file). */
typedef struct dstream {
    int bits, nct;          /* client window bits, client_no_context_takeover */
    size_t warm, n;
    unsigned char **frames;
    size_t *lens, *payload_lens;
} dstream_t;
static dstream_t dstreams[4];
static int ndstreams;

static dstream_t *dstream_for(int bits, int nct) {
    for (int i = 0; i < ndstreams; i++)
        if (dstreams[i].bits == bits && dstreams[i].nct == nct) return &dstreams[i];
    if (ndstreams == 4) { fprintf(stderr, "too many different permessage-deflate answers\n"); exit(5); }
    dstream_t *d = &dstreams[ndstreams++];
    d->bits = bits;
    d->nct = nct;
    d->warm = nct ? 0 : ((size_t)1 << bits) / SIZE + 1;
    d->n = d->warm + DPAT;
    d->frames = calloc(d->n, sizeof *d->frames);
    d->lens = calloc(d->n, sizeof *d->lens);
    d->payload_lens = calloc(d->n, sizeof *d->payload_lens);
    z_stream z = {0};
    if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -bits, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
        fprintf(stderr, "deflateInit2 failed (window bits %d)\n", bits);
        exit(5);
    }
    size_t cap = deflateBound(&z, SIZE) + 64;
    unsigned char *buf = malloc(cap);
    for (size_t k = 0; k < d->n; k++) {
        z.next_in = texts[k % DPAT];
        z.avail_in = (uInt)SIZE;
        z.next_out = buf;
        z.avail_out = (uInt)cap;
        if (deflate(&z, Z_SYNC_FLUSH) != Z_OK || z.avail_in != 0 || z.avail_out == 0) {
            fprintf(stderr, "deflate failed\n");
            exit(5);
        }
        size_t len = cap - z.avail_out;
        if (len >= 4 && memcmp(buf + len - 4, TAIL, 4) == 0) len -= 4;  /* §7.2.1 */
        if (len == 0) buf[len++] = 0;                                     /* §7.2.3.6 */
        if (nct) deflateReset(&z);
        size_t hl = len < 126 ? 2 : (len < 65536 ? 4 : 10);
        unsigned char *p = d->frames[k] = malloc(hl + 4 + len);
        p[0] = 0xc1;  /* FIN, RSV1, TEXT */
        if (len < 126) p[1] = 0x80 | (unsigned char)len;
        else if (len < 65536) { p[1] = 0x80 | 126; p[2] = len >> 8; p[3] = len & 255; }
        else { p[1] = 0x80 | 127; for (int i = 0; i < 8; i++) p[2 + i] = (unsigned char)((uint64_t)len >> (56 - 8 * i)); }
        unsigned char key[4] = {0x12, 0x34, 0x56, (unsigned char)(0x78 + k)};
        memcpy(p + hl, key, 4);
        for (size_t i = 0; i < len; i++) p[hl + 4 + i] = buf[i] ^ key[i & 3];
        d->lens[k] = hl + 4 + len;
        d->payload_lens[k] = len;
    }
    deflateEnd(&z);
    free(buf);
    return d;
}

static void build_texts(void) {
    for (uint32_t k = 0; k < DPAT; k++) {
        texts[k] = malloc(SIZE + 1);
        make_text(texts[k], SIZE, k);
    }
}

static void queue_deflate(conn_t *c) {
    dstream_t *d = c->ds;
    size_t n = c->next_seq, k = n < d->n ? n : d->warm + (n - d->warm) % DPAT;
    out_reserve(c, d->lens[k]);
    memcpy(c->out + c->out_len, d->frames[k], d->lens[k]);
    c->out_len += d->lens[k];
    if (measuring) sent_bytes += d->payload_lens[k];
    c->sent_at[(c->head + c->count) % INFLIGHT] = now();
    c->count++;
    c->next_seq++;
}

/* Window bits from "N" or "\"N\"" (RFC 7692 §7.1.2), or -1. */
static int parse_bits(const char *v, size_t n) {
    if (n >= 2 && v[0] == '"' && v[n - 1] == '"') { v++; n -= 2; }
    if (n == 0 || n > 2) return -1;
    int b = 0;
    for (size_t i = 0; i < n; i++) {
        if (v[i] < '0' || v[i] > '9') return -1;
        b = b * 10 + (v[i] - '0');
    }
    return b >= 8 && b <= 15 ? b : -1;
}

/* The server's 101 (head, len bytes): find its permessage-deflate answer,
 * set the connection up for it.  -1 (with a message) if it did not accept
 * the extension or answered something this client cannot honour. */
static int deflate_open(conn_t *c, const char *head, size_t len) {
    const char *val = NULL, *p = head, *end = head + len;
    static const char NAME[] = "sec-websocket-extensions:";
    while (p < end) {
        const char *eol = memmem(p, end - p, "\r\n", 2);
        if (!eol) eol = end;
        if ((size_t)(eol - p) > sizeof NAME - 1 && strncasecmp(p, NAME, sizeof NAME - 1) == 0) {
            if (val) { fprintf(stderr, "more than one Sec-WebSocket-Extensions header in the 101\n"); return -1; }
            val = p + sizeof NAME - 1;
            size_t vlen = eol - val;
            char buf[256];
            if (vlen >= sizeof buf) { fprintf(stderr, "Sec-WebSocket-Extensions answer too long\n"); return -1; }
            memcpy(buf, val, vlen);
            buf[vlen] = 0;
            if (!answer[0]) {
                char *b = buf;
                while (*b == ' ' || *b == '\t') b++;
                snprintf(answer, sizeof answer, "%s", b);
            }
            int client_bits = 15, server_bits = 15, cnct = 0, snct = 0, first = 1;
            char *save = NULL;
            for (char *item = strtok_r(buf, ";", &save); item; item = strtok_r(NULL, ";", &save), first = 0) {
                while (*item == ' ' || *item == '\t') item++;
                size_t n = strlen(item);
                while (n && (item[n - 1] == ' ' || item[n - 1] == '\t')) item[--n] = 0;
                char *eq = strchr(item, '=');
                size_t klen = eq ? (size_t)(eq - item) : n;
                while (klen && item[klen - 1] == ' ') klen--;
                const char *v = eq ? eq + 1 : NULL;
                while (v && *v == ' ') v++;
                int bits = v ? parse_bits(v, strlen(v)) : -1;
                if (first) {
                    if (n != 18 || strncasecmp(item, "permessage-deflate", 18) != 0) {
                        fprintf(stderr, "server answered an extension that was not offered: %s\n", answer);
                        return -1;
                    }
                } else if (klen == 26 && !eq && strncasecmp(item, "server_no_context_takeover", 26) == 0) snct = 1;
                else if (klen == 26 && !eq && strncasecmp(item, "client_no_context_takeover", 26) == 0) cnct = 1;
                else if (klen == 22 && bits > 0 && strncasecmp(item, "server_max_window_bits", 22) == 0) server_bits = bits;
                else if (klen == 22 && bits > 0 && strncasecmp(item, "client_max_window_bits", 22) == 0) client_bits = bits;
                else { fprintf(stderr, "invalid permessage-deflate answer: %s\n", answer); return -1; }
            }
            if (strchr(answer, ',')) { fprintf(stderr, "more than one extension in the answer: %s\n", answer); return -1; }
            if (client_bits == 8) {
                fprintf(stderr, "client_max_window_bits=8: zlib cannot compress with a 256-byte window\n");
                return -1;
            }
            c->ds = dstream_for(client_bits, cnct);
            c->server_nct = snct;
            if (inflateInit2(&c->inflater, -server_bits) != Z_OK) { fprintf(stderr, "inflateInit2 failed\n"); return -1; }
        }
        p = eol + 2;
    }
    if (!val) {
        fprintf(stderr, "server did not accept permessage-deflate (no Sec-WebSocket-Extensions in its 101)\n");
        return -1;
    }
    c->plain = malloc(SIZE + 1);
    return 0;
}

/* Inflate one compressed reply into c->plain (with the tail, §7.2.2): the
 * inflated length, or -1. */
static long inflate_reply(conn_t *c, unsigned char *data, size_t len) {
    z_stream *z = &c->inflater;
    z->next_out = c->plain;
    z->avail_out = (uInt)(SIZE + 1);
    for (int part = 0; part < 2; part++) {
        z->next_in = part ? (unsigned char *)TAIL : data;
        z->avail_in = part ? 4 : (uInt)len;
        while (z->avail_in) {
            int rc = inflate(z, Z_SYNC_FLUSH);
            if (rc == Z_STREAM_END) {  /* a BFINAL block ended the server's stream (§7.2.3.4) */
                inflateReset(z);
                if (part) break;       /* the tail after a final block: nothing to inflate */
                continue;
            }
            if (rc != Z_OK) {
                fprintf(stderr, "inflate failed (%d): %s\n", rc, z->msg ? z->msg : "");
                return -1;
            }
            if (z->avail_out == 0) return (long)SIZE + 1;  /* longer than sent */
        }
    }
    if (c->server_nct) inflateReset(z);
    return (long)(SIZE + 1 - z->avail_out);
}

/* Check the frame at h (header hl bytes, payload len) as the reply to the
 * oldest message in flight, in deflate mode; 0, or -1 (with a message). */
static int check_deflate(conn_t *c, unsigned char *h, size_t hl, size_t len) {
    int op = h[0] & 15;
    if (op != 1 || !(h[0] & 0x80) || (h[1] & 0x80) || c->count == 0) {
        fprintf(stderr, "unexpected frame op=%d fin=%d len=%zu\n", op, h[0] >> 7, len);
        return -1;
    }
    if (!(h[0] & 0x40)) { fprintf(stderr, "uncompressed reply (RSV1 clear) in deflate mode\n"); return -1; }
    long n = inflate_reply(c, h + hl, len);
    if (n < 0) return -1;
    if ((size_t)n != SIZE || memcmp(texts[c->seq % DPAT], c->plain, SIZE) != 0) {
        fprintf(stderr, "payload mismatch (inflated %ld bytes, sent %zu)\n", n, SIZE);
        return -1;
    }
    if (measuring) reply_bytes += len;
    return 0;
}

/* Parse complete frames in c->in; returns 0, -1 on a bad reply, -2 if the
 * server did not accept permessage-deflate in deflate mode. */
static int consume(conn_t *c) {
    size_t pos = 0;
    if (!c->open) {
        unsigned char *end = memmem(c->in, c->in_len, "\r\n\r\n", 4);
        if (!end) return 0;
        if (memcmp(c->in, "HTTP/1.1 101", 12) != 0) { fprintf(stderr, "handshake refused\n"); return -1; }
        pos = end - c->in + 4;
        c->open = 1;
        if (DEFLATE && deflate_open(c, (const char *)c->in, pos) < 0) return -2;
        for (int i = 0; i < INFLIGHT; i++) DEFLATE ? queue_deflate(c) : queue_message(c);
    }
    for (;;) {
        size_t len, hl;
        if (!frame_at(c, pos, &len, &hl)) break;
        unsigned char *h = c->in + pos;
        int op = h[0] & 15;
        if (op == 9 || op == 10) { pos += hl + len; continue; } /* ping/pong: ignore */
        if (DEFLATE) {
            if (check_deflate(c, h, hl, len) < 0) return -1;
        } else {
            if (op != 2 || !(h[0] & 0x80) || len != SIZE || c->count == 0) {
                fprintf(stderr, "unexpected frame op=%d len=%zu\n", op, len);
                return -1;
            }
            if (memcmp(payloads[c->seq % NPAT], h + hl, SIZE) != 0) { fprintf(stderr, "payload mismatch\n"); return -1; }
        }
        reply_done(c);
        pos += hl + len;
        DEFLATE ? queue_deflate(c) : queue_message(c);
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
    if (argc < 7 || (argc > 8 && strcmp(argv[8], "deflate") != 0)) {
        fprintf(stderr, "usage: %s HOST PORT CONNS IN_FLIGHT SIZE SECONDS [WARMUP [deflate]]\n", argv[0]);
        return 2;
    }
    const char *host = argv[1];
    int port = atoi(argv[2]), nconn = atoi(argv[3]);
    INFLIGHT = atoi(argv[4]);
    SIZE = (size_t)atol(argv[5]);
    double seconds = atof(argv[6]), warmup = argc > 7 ? atof(argv[7]) : 1.0;
    DEFLATE = argc > 8;
    if (DEFLATE) build_texts();
    else build_patterns();
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
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n%s\r\n", host, port,
            DEFLATE ? "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n" : "");
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
                int rc = consume(c);
                if (rc < 0) return rc == -2 ? 5 : 4;
                if ((size_t)r < 65536) break;
            }
            flush_out(c);
        }
    }
    double elapsed = now() - t0, cpu = cpu_seconds() - cpu0;
    qsort(lat, nlat, sizeof(double), cmp);
    double p50 = nlat ? lat[nlat / 2] : 0, p99 = nlat ? lat[(size_t)(nlat * 0.99)] : 0;
    printf("{\"messages\": %lld, \"seconds\": %.3f, \"msgs_per_s\": %.0f, \"p50_us\": %.1f, \"p99_us\": %.1f, "
           "\"client_cpu_s\": %.3f", done_msgs, elapsed, done_msgs / elapsed, p50 * 1e6, p99 * 1e6, cpu);
    if (DEFLATE) {
        printf(", \"deflate\": \"");
        for (const char *a = answer; *a; a++) printf(*a == '"' || *a == '\\' ? "\\%c" : "%c", *a);
        printf("\", \"sent_bytes_per_msg\": %.1f, \"reply_bytes_per_msg\": %.1f",
               done_msgs ? (double)sent_bytes / done_msgs : 0.0, done_msgs ? (double)reply_bytes / done_msgs : 0.0);
    }
    printf("}\n");
    return 0;
}
