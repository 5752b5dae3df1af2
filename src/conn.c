/*
 * conn.c - getting the connection from socket activation or inetd, peer
 * address, and reading and writing it with a deadline on every wait.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>

#include "conn.h"
#include "tls.h"

int64_t
conn_now_usec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void
conn_peer(struct conn *c)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	const char *addr = getenv("REMOTE_ADDR"), *port = getenv("REMOTE_PORT");

	/* systemd sets these for Accept=yes instances; trust only what fits. */
	if (addr != NULL && *addr != '\0' && strlen(addr) < sizeof(c->peer_addr)) {
		snprintf(c->peer_addr, sizeof(c->peer_addr), "%s", addr);
		snprintf(c->peer_port, sizeof(c->peer_port), "%s",
		    port != NULL && strlen(port) < sizeof(c->peer_port) ? port : "0");
		return;
	}
	snprintf(c->peer_addr, sizeof(c->peer_addr), "unknown");
	snprintf(c->peer_port, sizeof(c->peer_port), "0");
	if (getpeername(c->fd, (struct sockaddr *)&ss, &sl) < 0)
		return;
	if (ss.ss_family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
		inet_ntop(AF_INET, &sin->sin_addr, c->peer_addr, sizeof(c->peer_addr));
		snprintf(c->peer_port, sizeof(c->peer_port), "%u", ntohs(sin->sin_port));
	} else if (ss.ss_family == AF_INET6) {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
		if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr))
			inet_ntop(AF_INET, &sin6->sin6_addr.s6_addr[12], c->peer_addr,
			    sizeof(c->peer_addr));
		else
			inet_ntop(AF_INET6, &sin6->sin6_addr, c->peer_addr,
			    sizeof(c->peer_addr));
		snprintf(c->peer_port, sizeof(c->peer_port), "%u", ntohs(sin6->sin6_port));
	} else if (ss.ss_family == AF_UNIX)
		snprintf(c->peer_addr, sizeof(c->peer_addr), "unix");
}

/*
 * The connection is fd 3 when systemd passes it (Accept=yes with the default
 * StandardInput=null), otherwise stdin (StandardInput=socket, inetd). Either
 * way it must be a connected stream socket: a listening socket or a terminal
 * would leave us serving nobody.
 */
int
conn_open(struct conn *c, const char **ret_why)
{
	int n, fd, r;

	memset(c, 0, offsetof(struct conn, buf));
	signal(SIGPIPE, SIG_IGN);

	n = sd_listen_fds(1);
	if (n < 0) {
		*ret_why = "cannot read LISTEN_FDS";
		return EXIT_NOCONN;
	}
	if (n > 1) {
		*ret_why = "expected one connection, systemd passed several fds (use Accept=yes)";
		return EXIT_NOCONN;
	}
	fd = n == 1 ? SD_LISTEN_FDS_START : STDIN_FILENO;

	r = sd_is_socket(fd, AF_UNSPEC, SOCK_STREAM, -1);
	if (r <= 0) {
		*ret_why = n == 1 ? "fd 3 is not a stream socket" :
		    "stdin is not a stream socket (run under systemd socket activation or inetd)";
		return EXIT_NOCONN;
	}
	if (sd_is_socket(fd, AF_UNSPEC, SOCK_STREAM, 1) > 0) {
		*ret_why = "got a listening socket, not a connection (use Accept=yes or inetd nowait)";
		return EXIT_NOCONN;
	}
	/* Every wait goes through poll() with a deadline. */
	if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0) {
		*ret_why = "cannot make the connection non-blocking";
		return EXIT_OSERR;
	}
	/* Heads and bodies go out in separate writes: do not let Nagle hold them. */
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &(int){ 1 }, sizeof(int));
	c->fd = fd;
	c->send_timeout_usec = CONN_SEND_TIMEOUT_MS * 1000LL;
	conn_peer(c);
	return 0;
}

static int
conn_wait(int fd, short events, int64_t deadline_usec)
{
	struct pollfd pfd = { .fd = fd, .events = events };
	int64_t left;
	int r;

	for (;;) {
		left = deadline_usec - conn_now_usec();
		if (left <= 0)
			return -ETIMEDOUT;
		r = poll(&pfd, 1, (int)((left + 999) / 1000));
		if (r > 0)
			return 0;
		if (r == 0)
			return -ETIMEDOUT;
		if (errno != EINTR)
			return -errno;
	}
}

/*
 * The TLS handshake on the connection, within TLS_HANDSHAKE_TIMEOUT_MS; from
 * then on every read and write goes through t. On failure, t says why
 * (tls_fault_why()).
 */
int
conn_start_tls(struct conn *c, struct tls *t)
{
	int64_t deadline = conn_now_usec() + TLS_HANDSHAKE_TIMEOUT_MS * 1000LL;
	short events = 0;
	int r;

	/* Bytes already read (after a balancer's PROXY header) are the handshake's. */
	if (tls_attach(t, c->fd, c->buf + c->off, conn_pending(c)) < 0) {
		tls_abort(t, TLS_FAULT_SYSTEM, "TLS: cannot attach the connection");
		return -1;
	}
	c->off = c->len = 0;
	while ((r = tls_accept(t, &events)) == 0) {
		if ((r = conn_wait(c->fd, events, deadline)) < 0) {
			tls_abort(t, r == -ETIMEDOUT ? TLS_FAULT_PEER : TLS_FAULT_SYSTEM,
			    r == -ETIMEDOUT ? "TLS handshake not done within its timeout" :
			    "TLS handshake: poll failed");
			return -1;
		}
	}
	if (r < 0)
		return -1;
	c->tls = t;
	return 0;
}

/*
 * One read without waiting: bytes read, 0 at EOF, or a negative errno
 * (-EAGAIN: wait for *ret_events).
 */
static ssize_t
conn_recv(struct conn *c, void *buf, size_t len, short *ret_events)
{
	ssize_t n;

	*ret_events = POLLIN;
	if (c->tls != NULL)
		return tls_read(c->tls, buf, len, ret_events);
	while ((n = read(c->fd, buf, len)) < 0 && errno == EINTR)
		;
	return n >= 0 ? n : errno == EWOULDBLOCK ? -EAGAIN : -errno;
}

/* conn_recv() for a caller that polls the fd itself (a tunnel). */
ssize_t
conn_read(struct conn *c, void *buf, size_t len)
{
	short events;

	return conn_recv(c, buf, len, &events);
}

/*
 * Read more client bytes into the buffer, waiting until deadline_usec at
 * the latest. Returns bytes read, 0 at EOF, or a negative errno (-ETIMEDOUT,
 * -ENOBUFS when the buffer is full of unconsumed bytes).
 */
ssize_t
conn_fill(struct conn *c, int64_t deadline_usec)
{
	ssize_t n, more;
	short events;
	int r;

	if (c->off > 0) {
		memmove(c->buf, c->buf + c->off, c->len - c->off);
		c->len -= c->off;
		c->off = 0;
	}
	if (c->len == sizeof(c->buf))
		return -ENOBUFS;
	/*
	 * Right after an answer the client is usually still reading it, so a
	 * read would only fail with EAGAIN: wait first. Otherwise (a new
	 * connection, a body under way) the bytes are usually there: read first,
	 * and always when asked not to wait (a deadline of 0).
	 */
	if (c->answered && deadline_usec > 0 && tls_pending(c->tls) == 0) {
		c->answered = false;
		if ((r = conn_wait(c->fd, POLLIN, deadline_usec)) < 0)
			return r;
	}
	for (;;) {
		n = conn_recv(c, c->buf + c->len, sizeof(c->buf) - c->len, &events);
		if (n >= 0) {
			c->len += (size_t)n;
			/*
			 * Take what TLS has decrypted already: callers poll the
			 * socket, which would not wake for it.
			 */
			while (n > 0 && c->len < sizeof(c->buf) && tls_pending(c->tls) > 0 &&
			    (more = conn_recv(c, c->buf + c->len, sizeof(c->buf) - c->len,
			    &events)) > 0) {
				c->len += (size_t)more;
				n += more;
			}
			return n;
		}
		if (n != -EAGAIN)
			return n;
		if ((r = conn_wait(c->fd, events, deadline_usec)) < 0)
			return r;
	}
}

int
conn_writev(struct conn *c, struct iovec *iov, int iovcnt)
{
	int64_t deadline = conn_now_usec() + c->send_timeout_usec;
	short events = POLLOUT;
	ssize_t n;
	int r;

	c->lost_why[0] = '\0';
	while (iovcnt > 0) {
		if (iov->iov_len == 0) {
			iov++, iovcnt--;
			continue;
		}
		if (c->tls != NULL)
			n = tls_writev(c->tls, iov, iovcnt, &events);
		else if ((n = writev(c->fd, iov, iovcnt)) < 0)
			n = errno == EWOULDBLOCK ? -EAGAIN : -errno;
		if (n < 0) {
			if (n == -EINTR)
				continue;
			if (n != -EAGAIN)
				return (int)n;
			if ((r = conn_wait(c->fd, events, deadline)) == -ETIMEDOUT)
				snprintf(c->lost_why, sizeof(c->lost_why),
				    "client read nothing for %lld ms (send-timeout)",
				    (long long)(c->send_timeout_usec / 1000));
			if (r < 0)
				return r;
			continue;
		}
		/* A write that made progress restarts the clock. */
		deadline = conn_now_usec() + c->send_timeout_usec;
		c->answered = true;
		while (iovcnt > 0 && (size_t)n >= iov->iov_len) {
			n -= (ssize_t)iov->iov_len;
			iov++, iovcnt--;
		}
		if (iovcnt > 0) {
			iov->iov_base = (char *)iov->iov_base + n;
			iov->iov_len -= (size_t)n;
		}
	}
	return 0;
}

int
conn_write(struct conn *c, const void *data, size_t len)
{
	struct iovec iov = { .iov_base = (void *)data, .iov_len = len };

	return conn_writev(c, &iov, 1);
}

/*
 * Why the last write to the client failed, for the log: a client that left,
 * or one still connected that stopped reading for send-timeout.
 */
const char *
conn_lost_why(const struct conn *c)
{
	return c->lost_why[0] != '\0' ? c->lost_why : "client went away";
}

/* Tell the client we are done writing, so it sees EOF even if it pipelines. */
void
conn_shutdown(struct conn *c)
{
	if (c->tls != NULL)
		tls_shutdown(c->tls);
	shutdown(c->fd, SHUT_WR);
}

/* Has the client sent bytes not read yet, in our buffer or the kernel's? */
bool
conn_has_input(const struct conn *c)
{
	char byte;

	return conn_pending(c) > 0 || tls_pending(c->tls) > 0 || recv(c->fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT) > 0;
}

/*
 * Close after our last response while the client may still be sending (a
 * body we did not read, pipelined requests): closing with unread bytes would
 * reset the connection and could destroy that response before the client
 * read it. So stop writing, then read and discard until the client closes
 * too, as nginx's lingering close does: until it is silent for
 * CONN_LINGER_IDLE_MS, and for CONN_LINGER_MAX_MS at most.
 */
void
conn_linger(struct conn *c)
{
	int64_t now = conn_now_usec(), end = now + CONN_LINGER_MAX_MS * 1000LL, deadline;

	conn_shutdown(c);
	do {
		c->off = c->len;
		deadline = now + CONN_LINGER_IDLE_MS * 1000LL;
		if (deadline > end)
			deadline = end;
	} while (conn_fill(c, deadline) > 0 && (now = conn_now_usec()) < end);
}
