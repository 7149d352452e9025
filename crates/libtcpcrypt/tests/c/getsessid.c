/*
 * Exercises libtcpcrypt from C, as an application would.
 *
 * Usage: getsessid CONTROL_PATH ENCRYPTED_PORT PLAIN_PORT PENDING_PORT UNKNOWN_PORT
 *
 * The test harness (tests/c_api.rs) runs a fake tcpcryptd at CONTROL_PATH and TCP listeners on
 * 127.0.0.1 at the four ports. For a connection to ENCRYPTED_PORT the fake daemon reports role
 * A and the session ID 0x23, local port (big-endian), remote port (big-endian), then the bytes
 * 0xa5, 0xa6, ...; this program computes the same from its own getsockname/getpeername, so a
 * match proves the library asked about exactly this socket's 4-tuple.
 */
#define _POSIX_C_SOURCE 200809L

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tcpcrypt.h"

static int failures = 0;
static int checks = 0;

#define CHECK(cond)                                                                     \
    do {                                                                                \
        checks++;                                                                       \
        if (!(cond)) {                                                                  \
            fprintf(stderr, "%s:%d: check failed: %s (errno %d: %s)\n", __FILE__,       \
                    __LINE__, #cond, errno, tcpcrypt_strerror(errno));                  \
            failures++;                                                                 \
        }                                                                               \
    } while (0)

/* Expects tcpcrypt_getsessid(fd) to fail with errno `want`. */
#define CHECK_FAILS(fd, want)                                                           \
    do {                                                                                \
        unsigned char b_[TCPCRYPT_SESSID_MAX];                                          \
        size_t l_ = sizeof b_;                                                          \
        errno = 0;                                                                      \
        CHECK(tcpcrypt_getsessid((fd), b_, &l_) == -1);                                 \
        CHECK(errno == (want));                                                         \
    } while (0)

static int connect_to(int type, unsigned short port) {
    struct sockaddr_in sin;
    int fd = socket(AF_INET, type, 0);
    if (fd < 0) {
        perror("socket");
        exit(2);
    }
    memset(&sin, 0, sizeof sin);
    sin.sin_family = AF_INET;
    sin.sin_port = htons(port);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sin, sizeof sin) != 0) {
        perror("connect");
        exit(2);
    }
    return fd;
}

static unsigned short port_of(int fd, int peer) {
    struct sockaddr_in sin;
    socklen_t len = sizeof sin;
    int rc = peer ? getpeername(fd, (struct sockaddr *)&sin, &len)
                  : getsockname(fd, (struct sockaddr *)&sin, &len);
    if (rc != 0) {
        perror("getsockname");
        exit(2);
    }
    return ntohs(sin.sin_port);
}

int main(int argc, char **argv) {
    unsigned char buf[64];
    unsigned char want[TCPCRYPT_SESSID_MAX];
    size_t len;
    unsigned short lport, rport;
    int i, enc, plain, pending, unknown, unconnected, udp;

    if (argc != 6) {
        fprintf(stderr, "usage: %s CONTROL ENC PLAIN PENDING UNKNOWN\n", argv[0]);
        return 2;
    }
    CHECK(tcpcrypt_set_control_path(argv[1]) == 0);

    /* An encrypted connection: the ID for exactly this 4-tuple, and role A. */
    enc = connect_to(SOCK_STREAM, (unsigned short)atoi(argv[2]));
    lport = port_of(enc, 0);
    rport = port_of(enc, 1);
    want[0] = 0x23;
    want[1] = (unsigned char)(lport >> 8);
    want[2] = (unsigned char)(lport & 0xff);
    want[3] = (unsigned char)(rport >> 8);
    want[4] = (unsigned char)(rport & 0xff);
    for (i = 5; i < TCPCRYPT_SESSID_MAX; i++)
        want[i] = (unsigned char)(0xa0 + i);
    memset(buf, 0, sizeof buf);
    len = sizeof buf;
    CHECK(tcpcrypt_getsessid(enc, buf, &len) == 0);
    CHECK(len == TCPCRYPT_SESSID_MAX);
    CHECK(memcmp(buf, want, TCPCRYPT_SESSID_MAX) == 0);
    CHECK(buf[TCPCRYPT_SESSID_MAX] == 0); /* nothing written past the ID */
    CHECK(tcpcrypt_getrole(enc) == 'A');

    /* A buffer of exactly the size works; a smaller one or none reports the size needed. */
    len = TCPCRYPT_SESSID_MAX;
    CHECK(tcpcrypt_getsessid(enc, buf, &len) == 0);
    len = TCPCRYPT_SESSID_MAX - 1;
    errno = 0;
    CHECK(tcpcrypt_getsessid(enc, buf, &len) == -1);
    CHECK(errno == ENOBUFS);
    CHECK(len == TCPCRYPT_SESSID_MAX);
    len = 0;
    errno = 0;
    CHECK(tcpcrypt_getsessid(enc, NULL, &len) == -1);
    CHECK(errno == ENOBUFS);
    CHECK(len == TCPCRYPT_SESSID_MAX);
    errno = 0;
    CHECK(tcpcrypt_getsessid(enc, buf, NULL) == -1);
    CHECK(errno == EINVAL);

    /* No session ID: fallback, handshake in progress, unknown connection. */
    plain = connect_to(SOCK_STREAM, (unsigned short)atoi(argv[3]));
    CHECK_FAILS(plain, ENOENT);
    errno = 0;
    CHECK(tcpcrypt_getrole(plain) == -1);
    CHECK(errno == ENOENT);
    pending = connect_to(SOCK_STREAM, (unsigned short)atoi(argv[4]));
    CHECK_FAILS(pending, EAGAIN);
    unknown = connect_to(SOCK_STREAM, (unsigned short)atoi(argv[5]));
    CHECK_FAILS(unknown, ENOENT);

    /* Sockets that cannot have one. */
    unconnected = socket(AF_INET, SOCK_STREAM, 0);
    CHECK_FAILS(unconnected, ENOTCONN);
    udp = connect_to(SOCK_DGRAM, 9);
    CHECK_FAILS(udp, EINVAL);
    CHECK_FAILS(-1, EBADF);
    CHECK_FAILS(STDIN_FILENO, ENOTSOCK);

    /* No daemon at the chosen path. */
    CHECK(tcpcrypt_set_control_path("/nonexistent/tcpcryptd.sock") == 0);
    CHECK_FAILS(enc, ECONNREFUSED);
    errno = 0;
    CHECK(tcpcrypt_getrole(enc) == -1);
    CHECK(errno == ECONNREFUSED);

    /* NULL restores the default, which honours TCPCRYPT_CONTROL. */
    CHECK(setenv("TCPCRYPT_CONTROL", argv[1], 1) == 0);
    CHECK(tcpcrypt_set_control_path(NULL) == 0);
    CHECK(tcpcrypt_getrole(enc) == 'A');
    errno = 0;
    CHECK(tcpcrypt_set_control_path("") == -1);
    CHECK(errno == EINVAL);

    CHECK(strstr(tcpcrypt_strerror(ENOENT), "not encrypted") != NULL);
    CHECK(strstr(tcpcrypt_strerror(EAGAIN), "handshake") != NULL);
    CHECK(tcpcrypt_strerror(-12345) != NULL);

    close(enc);
    close(plain);
    close(pending);
    close(unknown);
    close(unconnected);
    close(udp);
    printf("%d checks, %d failed\n", checks, failures);
    return failures == 0 ? 0 : 1;
}
