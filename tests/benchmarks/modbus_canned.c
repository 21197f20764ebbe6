/*
 * A canned Modbus TCP responder: the fastest this machine can answer the benchmark's
 * exchange (FC3 reads over a few connections), to measure softplc's server against.
 *
 * One thread, epoll, non-blocking sockets, no parsing beyond what delimiting needs:
 * each complete MBAP frame gets an FC3 answer with as many registers as it asks for,
 * all holding the same value. It is not a Modbus server (it answers every function as
 * FC3) and must never be used as one.
 *
 * Built by tests/benchmarks/test_modbus_bench.py with gcc at benchmark time (never
 * committed as a binary). Usage: modbus_canned SECONDS. It listens on 127.0.0.1 on a
 * free port, prints "port=N" and runs for SECONDS.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONN 64
#define BUF 4096

struct conn {
    int fd;
    size_t have;
    unsigned char in[BUF];
};

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* Answers every whole frame in c->in; returns -1 when the connection must close. */
static int serve(struct conn *c) {
    unsigned char out[BUF];
    size_t used = 0, olen = 0;
    while (c->have - used >= 7) {
        unsigned char *f = c->in + used;
        size_t len = ((size_t)f[4] << 8) | f[5];
        if (len < 2 || len > 254)
            return -1;
        if (c->have - used < 6 + len)
            break;
        unsigned count = len >= 6 ? (((unsigned)f[10] << 8) | f[11]) : 1;
        if (count > 125)
            count = 125;
        unsigned char *o = out + olen;
        if (olen + 9 + 2 * count > sizeof out)
            break;
        o[0] = f[0];
        o[1] = f[1];
        o[2] = 0;
        o[3] = 0;
        o[4] = (unsigned char)((3 + 2 * count) >> 8);
        o[5] = (unsigned char)(3 + 2 * count);
        o[6] = f[6];
        o[7] = 3;
        o[8] = (unsigned char)(2 * count);
        for (unsigned i = 0; i < count; i++) {
            o[9 + 2 * i] = 0x12;
            o[10 + 2 * i] = 0x34;
        }
        olen += 9 + 2 * count;
        used += 6 + len;
    }
    memmove(c->in, c->in + used, c->have - used);
    c->have -= used;
    size_t sent = 0;
    while (sent < olen) {
        ssize_t n = write(c->fd, out + sent, olen - sent);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1; /* the load client reads every answer: a full buffer is an error */
        }
        sent += (size_t)n;
    }
    return 0;
}

int main(int argc, char **argv) {
    double seconds = argc > 1 ? atof(argv[1]) : 10.0;
    int ls = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    socklen_t alen = sizeof a;
    if (ls < 0 || bind(ls, (struct sockaddr *)&a, sizeof a) < 0 || listen(ls, 64) < 0 ||
        getsockname(ls, (struct sockaddr *)&a, &alen) < 0) {
        perror("modbus_canned: listen");
        return 1;
    }
    printf("port=%d\n", ntohs(a.sin_port));
    fflush(stdout);
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    epoll_ctl(ep, EPOLL_CTL_ADD, ls, &ev);
    static struct conn conns[MAX_CONN];
    double end = now_s() + seconds;
    struct epoll_event evs[MAX_CONN];
    while (now_s() < end) {
        int n = epoll_wait(ep, evs, MAX_CONN, 100);
        for (int i = 0; i < n; i++) {
            struct conn *c = evs[i].data.ptr;
            if (c == NULL) {
                int fd = accept4(ls, NULL, NULL, SOCK_NONBLOCK);
                if (fd < 0)
                    continue;
                int one = 1;
                setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                struct conn *slot = NULL;
                for (int k = 0; k < MAX_CONN; k++)
                    if (conns[k].fd == 0) {
                        slot = &conns[k];
                        break;
                    }
                if (slot == NULL) {
                    close(fd);
                    continue;
                }
                slot->fd = fd;
                slot->have = 0;
                struct epoll_event cev = {.events = EPOLLIN, .data.ptr = slot};
                epoll_ctl(ep, EPOLL_CTL_ADD, fd, &cev);
                continue;
            }
            ssize_t got = read(c->fd, c->in + c->have, BUF - c->have);
            if (got <= 0) {
                if (got < 0 && (errno == EAGAIN || errno == EINTR))
                    continue;
                close(c->fd);
                c->fd = 0;
                continue;
            }
            c->have += (size_t)got;
            if (serve(c) < 0) {
                close(c->fd);
                c->fd = 0;
            }
        }
    }
    return 0;
}
