/*
 * tcpcrypt.h - session IDs of tcpcrypt connections for applications (libtcpcrypt).
 *
 * tcpcryptd encrypts TCP connections transparently (RFC 8547 TCP-ENO, RFC 8548 tcpcrypt).
 * Applications that authenticate their peer can bind that authentication to the connection's
 * session ID (RFC 8547 section 5.1): sign it, or compare it out of band. These functions ask
 * tcpcryptd, over its control socket, for the session ID of a connected socket.
 *
 * Link with -ltcpcrypt. All functions are thread-safe. On failure they return -1 and set errno:
 *
 *   ENOTCONN      the socket is not connected
 *   ENOBUFS       the buffer is too small; *len is set to the size needed
 *   ENOENT        the connection is not encrypted (plain-TCP fallback) or unknown to tcpcryptd
 *   EAGAIN        the tcpcrypt handshake has not finished yet; try again shortly
 *   ECONNREFUSED  tcpcryptd cannot be reached (no control socket)
 *   EACCES        the control socket exists but this process may not open it (root-only)
 *   ETIMEDOUT     tcpcryptd did not answer in time
 *   EPROTO        tcpcryptd answered something unexpected
 *   EINVAL        a NULL len, an empty control path, or fd is not a TCP socket
 *   EBADF, ENOTSOCK  as from getsockname(2)
 *   EIO           an internal error in the library
 */
#ifndef TCPCRYPT_H
#define TCPCRYPT_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Length of a tcpcrypt session ID in bytes: the TEP byte and 32 bytes (RFC 8548 section 3.4). */
#define TCPCRYPT_SESSID_MAX 33

/*
 * Writes the session ID of the connected TCP socket fd to buf.
 *
 * On entry *len is the size of buf; on success *len is set to the length of the session ID
 * (TCPCRYPT_SESSID_MAX) and 0 is returned. If buf is NULL or *len is too small, fails with
 * ENOBUFS and sets *len to TCPCRYPT_SESSID_MAX. Fails with ENOENT when the connection has no
 * session ID: RFC 8547 requires an error, never a made-up ID, in that case.
 */
int tcpcrypt_getsessid(int fd, unsigned char *buf, size_t *len);

/*
 * Returns this host's ENO role on the connected TCP socket fd: 'A' or 'B' (RFC 8547 section
 * 4.3), or -1 with errno set as for tcpcrypt_getsessid. Bind the role into what you sign so
 * that the two ends sign different messages.
 */
int tcpcrypt_getrole(int fd);

/*
 * Chooses the control socket of the tcpcryptd to ask, for the whole process. NULL restores the
 * default: the environment variable TCPCRYPT_CONTROL if set, else /run/tcpcryptd.sock.
 * Returns 0, or -1 with errno EINVAL for an empty path.
 */
int tcpcrypt_set_control_path(const char *path);

/*
 * A static description of an errno value set by the functions above, in tcpcrypt's terms.
 * Never NULL; do not free it.
 */
const char *tcpcrypt_strerror(int err);

#ifdef __cplusplus
}
#endif

#endif /* TCPCRYPT_H */
