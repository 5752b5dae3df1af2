/*
 * fuzz_conn.h - for the libFuzzer targets that read a client: a connection
 * whose client has sent the input and shut its side, set up as conn_open()
 * leaves one (non-blocking, every wait through poll()), so the reader sees
 * the data and then EOF, never a wait. Close both ends of sv afterwards.
 */
#ifndef GFPROXY_FUZZ_CONN_H
#define GFPROXY_FUZZ_CONN_H

#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "conn.h"

static inline void
fuzz_conn(struct conn *c, int sv[2], const uint8_t *data, size_t size, const char *peer_port)
{
	int big = 1 << 20;
	ssize_t w;

	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
		abort();
	setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &big, sizeof(big));
	setsockopt(sv[0], SOL_SOCKET, SO_RCVBUF, &big, sizeof(big));
	setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &big, sizeof(big));
	setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &big, sizeof(big));
	if (size > 0 && ((w = write(sv[0], data, size)) < 0 || (size_t)w != size))
		abort();
	shutdown(sv[0], SHUT_WR);
	fcntl(sv[1], F_SETFL, fcntl(sv[1], F_GETFL) | O_NONBLOCK);

	memset(c, 0, offsetof(struct conn, buf));
	c->fd = sv[1];
	snprintf(c->peer_addr, sizeof(c->peer_addr), "fuzz");
	snprintf(c->peer_port, sizeof(c->peer_port), "%s", peer_port);
}

#endif
