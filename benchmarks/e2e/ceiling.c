/* The ceiling for the end-to-end benchmark: a WebSocket echo server in C with
 * no event-loop library and no Python, so that what it measures is the kernel
 * (loopback TCP, epoll, the context switches) and the load client alone.
 *
 *   ceiling PORT
 *
 * It is not a WebSocket server anyone should use: it answers any request with
 * 101 without checking it (the load client only checks the status line),
 * accepts only what the load client sends (masked, unfragmented binary frames
 * of up to 64 KiB) and closes the connection on anything else.  Every server
 * in run.py does at least this much work per message, on the same system
 * calls: one read per readable event (as libuv does), one write per read,
 * level-triggered epoll.  Prints "listening" once it accepts connections.
 * Built by benchmarks/e2e/run.py on first use (cc -O2).
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
#include <sys/socket.h>
#include <unistd.h>

#define BUF (256 * 1024)

typedef struct {
    int fd;
    int open;
    size_t len;
    unsigned char in[BUF];
    unsigned char out[BUF];
} conn_t;

static const char RESPONSE[] =
    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";

static void drop(int ep, conn_t *c) {
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    free(c);
}

/* Echo every whole frame in c->in with one write; -1 closes the connection.
 * The writes are small and the client keeps its receive buffer drained, so a
 * short write does not happen in the benchmark; treat one as an error. */
static int serve(conn_t *c) {
    size_t pos = 0, outlen = 0;
    if (!c->open) {
        unsigned char *end = memmem(c->in, c->len, "\r\n\r\n", 4);
        if (!end) return c->len < BUF ? 0 : -1;
        if (write(c->fd, RESPONSE, sizeof RESPONSE - 1) != (ssize_t)(sizeof RESPONSE - 1)) return -1;
        c->open = 1;
        pos = (size_t)(end + 4 - c->in);
    }
    while (c->len - pos >= 6) {
        const unsigned char *f = c->in + pos;
        size_t n = f[1] & 0x7f, hdr = 2;
        if (f[0] != 0x82 || !(f[1] & 0x80) || n == 127) return -1;
        if (n == 126) {
            if (c->len - pos < 8) break;
            n = (size_t)f[2] << 8 | f[3];
            hdr = 4;
        }
        if (c->len - pos < hdr + 4 + n) break;
        if (outlen + 4 + n > BUF) return -1;
        const unsigned char *key = f + hdr, *p = f + hdr + 4;
        unsigned char *o = c->out + outlen;
        o[0] = 0x82;
        if (n < 126) {
            o[1] = (unsigned char)n;
            o += 2;
        } else {
            o[1] = 126; o[2] = (unsigned char)(n >> 8); o[3] = (unsigned char)n;
            o += 4;
        }
        /* Unmask eight bytes at a time, as any real server does. */
        uint64_t k8;
        unsigned char kb[8] = {key[0], key[1], key[2], key[3], key[0], key[1], key[2], key[3]};
        memcpy(&k8, kb, 8);
        size_t i = 0;
        for (; i + 8 <= n; i += 8) {
            uint64_t w;
            memcpy(&w, p + i, 8);
            w ^= k8;
            memcpy(o + i, &w, 8);
        }
        for (; i < n; i++) o[i] = p[i] ^ key[i & 3];
        outlen = (size_t)(o + n - c->out);
        pos += hdr + 4 + n;
    }
    memmove(c->in, c->in + pos, c->len - pos);
    c->len -= pos;
    if (outlen && write(c->fd, c->out, outlen) != (ssize_t)outlen) return -1;
    return 0;
}

int main(int argc, char **argv) {
    if (argc != 2) { fprintf(stderr, "usage: ceiling PORT\n"); return 2; }
    int ls = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0), one = 1;
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[1]))};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(ls, (struct sockaddr *)&a, sizeof a) || listen(ls, 1024)) { perror("listen"); return 2; }
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL}, evs[256];
    epoll_ctl(ep, EPOLL_CTL_ADD, ls, &ev);
    printf("listening\n");
    fflush(stdout);
    for (;;) {
        int k = epoll_wait(ep, evs, 256, -1);
        for (int i = 0; i < k; i++) {
            conn_t *c = evs[i].data.ptr;
            if (c == NULL) {
                int fd = accept4(ls, NULL, NULL, SOCK_NONBLOCK);
                if (fd < 0) continue;
                setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                c = calloc(1, sizeof *c);
                if (!c) { close(fd); continue; }
                c->fd = fd;
                struct epoll_event cev = {.events = EPOLLIN, .data.ptr = c};
                epoll_ctl(ep, EPOLL_CTL_ADD, fd, &cev);
                continue;
            }
            ssize_t r = read(c->fd, c->in + c->len, BUF - c->len);
            if (r < 0 && errno == EAGAIN) continue;
            if (r <= 0) { drop(ep, c); continue; }
            c->len += (size_t)r;
            if (serve(c) < 0) drop(ep, c);
        }
    }
}
