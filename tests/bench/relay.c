/*
 * relay.c - the floor for gfproxy's keep-alive figures: the least a program
 * systemd starts per connection can do to proxy the benchmark's requests.
 * It finds its connection as gfproxy does, opens one upstream connection,
 * and for each request head moves it upstream with the /proxy prefix cut,
 * reads back an answer framed by Content-Length and writes it out whole,
 * then logs a line to stderr. Blocking reads, no poll, no HTTP library: not
 * a proxy (no body, no chunks, no checks), only a measure of what the
 * process-per-connection design itself costs.
 *
 * relay PORT: upstream 127.0.0.1:PORT. Exits at EOF or on anything it does
 * not expect.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>

#define RELAY_MAX_HEAD 8192
#define RELAY_PREFIX   "/proxy"

/* Read into buf until it holds a whole head; returns its length with the body bytes read. */
static ssize_t
read_head(int fd, char *buf, size_t size, size_t *ret_head)
{
	size_t len = 0;
	ssize_t n;
	char *end;

	for (;;) {
		n = read(fd, buf + len, size - len);
		if (n <= 0)
			return -1;
		len += (size_t)n;
		if ((end = memmem(buf, len, "\r\n\r\n", 4)) != NULL) {
			*ret_head = (size_t)(end + 4 - buf);
			return (ssize_t)len;
		}
		if (len == size)
			return -1;
	}
}

static long
content_length(const char *head, size_t len)
{
	const char *p = head, *end = head + len, *eol;

	while (p < end && (eol = memmem(p, (size_t)(end - p), "\r\n", 2)) != NULL) {
		if ((size_t)(eol - p) > 15 && strncasecmp(p, "Content-Length:", 15) == 0)
			return strtol(p + 15, NULL, 10);
		p = eol + 2;
	}
	return 0;
}

int
main(int argc, char **argv)
{
	static char req[RELAY_MAX_HEAD], resp[RELAY_MAX_HEAD];
	struct sockaddr_in sa = { .sin_family = AF_INET };
	size_t head, plen = strlen(RELAY_PREFIX), off;
	ssize_t n, got;
	long want;
	char *target, line[256];
	int fd, up, one = 1;

	if (argc != 2)
		return 64;
	fd = sd_listen_fds(1) == 1 ? SD_LISTEN_FDS_START : STDIN_FILENO;
	if (sd_is_socket(fd, AF_UNSPEC, SOCK_STREAM, -1) <= 0)
		return 66;
	sa.sin_port = htons((uint16_t)atoi(argv[1]));
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((up = socket(AF_INET, SOCK_STREAM, 0)) < 0 ||
	    connect(up, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return 69;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(up, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	for (;;) {
		if ((got = read_head(fd, req, sizeof(req), &head)) < 0 || (size_t)got != head)
			return 0;
		/* "GET /proxy/user/1 HTTP/1.1": cut the prefix out of the target. */
		if ((target = memchr(req, ' ', head)) == NULL ||
		    (size_t)(req + head - target) <= plen + 2 ||
		    memcmp(target + 1, RELAY_PREFIX "/", plen + 1) != 0)
			return 65;
		off = (size_t)(target + 1 - req);
		memmove(req + off, req + off + plen, head - off - plen);
		head -= plen;
		if (send(up, req, head, MSG_NOSIGNAL) != (ssize_t)head)
			return 74;
		if ((got = read_head(up, resp, sizeof(resp), &off)) < 0)
			return 74;
		want = (long)off + content_length(resp, off);
		if (want > (long)sizeof(resp))
			return 74;
		while (got < want) {
			if ((n = read(up, resp + got, (size_t)(want - got))) <= 0)
				return 74;
			got += n;
		}
		if (write(fd, resp, (size_t)got) != got)
			return 0;
		target = memchr(req, '\r', head);
		n = snprintf(line, sizeof(line), "%.*s -> %zd bytes\n",
		    (int)(target - req), req, got);
		if (n >= (ssize_t)sizeof(line))
			n = sizeof(line) - 1;
		(void)!write(STDERR_FILENO, line, (size_t)n);
	}
}
