/*
 * fuzz_response.c - libFuzzer target: upstream responses, heads and bodies,
 * through the real src/upstream.c (libcurl) and src/tunnel.c, as gfproxy
 * forwards them, and what the client then receives.
 *
 * The input is the byte stream an upstream sends. A thread plays that
 * upstream on a loopback socket: it reads the request head, sends the
 * input, and shuts its side for writing (so no input makes libcurl wait).
 * The request comes from a socketpair through http_read_head(), exactly as
 * in proxy.c; upstream_forward() or tunnel_forward() answers it into that
 * socketpair, and the fuzzer reads the other end and checks it:
 *
 *   - every head the client gets passes the response-head checks of
 *     http.c, has no hop-by-hop field but those gfproxy adds itself, no
 *     Content-Length on a 1xx or 204, never two lengths or a length with
 *     chunked;
 *   - a body is framed as its head says (Content-Length or chunks), is
 *     absent after HEAD, 1xx, 204 and 304, and nothing follows the final
 *     response but a close; a body cut short ends the connection;
 *   - a 101 reaches the client only for the WebSocket handshake asked for;
 *   - after a response that keeps the connection, no kept upstream socket
 *     has unread input (response queue poisoning).
 *
 * The first byte is not part of the stream: it picks GET or HEAD, HTTP/1.0
 * or 1.1, TE: trailers, and a WebSocket upgrade (the tunnel path).
 */
#include <errno.h>
#include <pthread.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "config.h"
#include "conn.h"
#include "http.h"
#include "route.h"
#include "tunnel.h"
#include "upstream.h"

#define FUZZ_MAX_OUTPUT     (512 * 1024)
#define FUZZ_KEY            "dGhlIHNhbXBsZSBub25jZQ=="
#define FUZZ_ACCEPT         "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="

static struct config fuzz_cfg;
static int fuzz_listen_fd = -1;

struct fuzz_upstream {
	const uint8_t  *data;
	size_t          size;
};

static void
fuzz_fail(const char *what, const char *out, size_t len)
{
	fprintf(stderr, "fuzz_response: broken invariant: %s\n--- client got:\n%.*s\n---\n", what,
	    (int)(len > 2000 ? 2000 : len), out);
	abort();
}

/* The upstream: one connection, the request head in, the input out. */
static void *
fuzz_upstream_thread(void *arg)
{
	const struct fuzz_upstream *up = arg;
	struct pollfd pfd = { .events = POLLIN };
	char buf[4096];
	size_t have = 0;
	ssize_t n;
	int fd;

	pfd.fd = fuzz_listen_fd;
	if (poll(&pfd, 1, 3000) <= 0 || (fd = accept(fuzz_listen_fd, NULL, NULL)) < 0)
		return NULL;
	pfd.fd = fd;
	/* The head, which gfproxy sends at once. */
	while (have < sizeof(buf) - 1 && poll(&pfd, 1, 2000) > 0) {
		if ((n = read(fd, buf + have, sizeof(buf) - 1 - have)) <= 0)
			break;
		have += (size_t)n;
		buf[have] = '\0';
		if (strstr(buf, "\r\n\r\n") != NULL)
			break;
	}
	if (up->size > 0)
		(void)send(fd, up->data, up->size, MSG_NOSIGNAL);
	shutdown(fd, SHUT_WR);
	/* Until gfproxy closes: what a tunnel relays, or a body libcurl sends. */
	while (poll(&pfd, 1, 2000) > 0 && read(fd, buf, sizeof(buf)) > 0)
		;
	close(fd);
	return NULL;
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	static char url[64];
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t slen = sizeof(sin);
	struct config_overrides o = { 0 };

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((fuzz_listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
	    bind(fuzz_listen_fd, (struct sockaddr *)&sin, sizeof(sin)) < 0 ||
	    listen(fuzz_listen_fd, 8) < 0 ||
	    getsockname(fuzz_listen_fd, (struct sockaddr *)&sin, &slen) < 0) {
		perror("fuzz_response: listen");
		abort();
	}
	snprintf(url, sizeof(url), "http://127.0.0.1:%u", ntohs(sin.sin_port));
	o.upstream = url;
	o.prefix = "/proxy";
	o.timeout_ms = 2000;
	if (config_load(&fuzz_cfg, "/nonexistent/gfproxy-fuzz.conf", false, &o) != 0 ||
	    fuzz_cfg.nroutes == 0) {
		fprintf(stderr, "fuzz_response: configuration refused\n");
		abort();
	}
	return 0;
}

/* One line of the client's stream, without its CRLF; NULL when none is whole. */
static const char *
fuzz_line(const char *out, size_t len, size_t *pos, size_t *ret_len)
{
	const char *p = out + *pos, *nl;

	if ((nl = memmem(p, len - *pos, "\r\n", 2)) == NULL)
		return NULL;
	*ret_len = (size_t)(nl - p);
	*pos += *ret_len + 2;
	return p;
}

static bool
fuzz_field_is(const char *line, size_t name_len, const char *name)
{
	return strlen(name) == name_len && strncasecmp(line, name, name_len) == 0;
}

/* Check the client's whole stream: heads, their fields, the body's framing. */
static void
fuzz_check_client(const char *out, size_t len, bool head_req, bool http10, bool ws,
    const uint8_t *in, size_t in_len)
{
	struct http_status_line sl;
	const char *line, *why, *v;
	size_t pos = 0, n, name_len, chunk;
	long long cl;
	int ncl;
	bool chunked, upgrade, closes;
	char *end;

	for (;;) {
		if (pos == len)
			return;     /* nothing, or a cut: the connection ended */
		if ((line = fuzz_line(out, len, &pos, &n)) == NULL)
			fuzz_fail("a head cut short or not CRLF-terminated", out, len);
		if (http_check_status_line(line, n, &sl, &why) < 0 || n < 12 ||
		    strncmp(line, "HTTP/1.1 ", 9) != 0)
			fuzz_fail("a status line the client cannot trust", out, len);
		cl = -1;
		ncl = 0;
		chunked = upgrade = closes = false;
		while ((line = fuzz_line(out, len, &pos, &n)) != NULL && n > 0) {
			if (http_check_response_field(line, n, &name_len, &why) < 0)
				fuzz_fail(why, out, len);
			v = line + name_len + 1;
			while (*v == ' ' || *v == '\t')
				v++;
			if (fuzz_field_is(line, name_len, "Content-Length")) {
				ncl++;
				cl = strtoll(v, &end, 10);
			} else if (fuzz_field_is(line, name_len, "Transfer-Encoding")) {
				if (strncmp(v, "chunked\r\n", 9) != 0)
					fuzz_fail("Transfer-Encoding other than gfproxy's chunked", out, len);
				chunked = true;
			} else if (fuzz_field_is(line, name_len, "Connection")) {
				closes = strncmp(v, "close\r\n", 7) == 0;
				if (!closes && strncmp(v, "keep-alive\r\n", 12) != 0 &&
				    strncmp(v, "Upgrade\r\n", 9) != 0)
					fuzz_fail("a Connection field gfproxy did not write", out, len);
			} else if (fuzz_field_is(line, name_len, "Upgrade")) {
				upgrade = true;
			} else if (http_is_hop_by_hop(line, name_len)) {
				fuzz_fail("a hop-by-hop field relayed", out, len);
			}
		}
		if (line == NULL)
			fuzz_fail("a head cut short", out, len);
		if (ncl > 1 || (ncl == 1 && chunked))
			fuzz_fail("two lengths, or a length with chunked", out, len);
		if (ncl > 0 && (sl.status < 200 || sl.status == 204))
			fuzz_fail("Content-Length on a 1xx or 204", out, len);
		if (upgrade && sl.status != 101)
			fuzz_fail("Upgrade on a response other than 101", out, len);
		if (sl.status == 101) {
			if (!ws || !upgrade || memmem(in, in_len, FUZZ_ACCEPT, strlen(FUZZ_ACCEPT)) == NULL)
				fuzz_fail("a 101 that is not the WebSocket handshake asked for", out, len);
			return;     /* the tunnel's bytes follow, as they came */
		}
		if (sl.status < 200) {
			if (chunked)
				fuzz_fail("chunked on a 1xx", out, len);
			continue;
		}
		/* The final response: its body, then nothing but the close. */
		if (head_req || sl.status == 204 || sl.status == 304) {
			if (chunked)
				fuzz_fail("a chunked body announced where none may be", out, len);
		} else if (chunked) {
			do {
				if ((line = fuzz_line(out, len, &pos, &n)) == NULL)
					return;     /* cut: never the last chunk, so never complete */
				chunk = strtoul(line, &end, 16);
				if (end == line || end != line + n)
					fuzz_fail("a chunk size line gfproxy did not write", out, len);
				if (chunk == 0)
					break;
				if (len - pos < chunk + 2)
					return;     /* cut mid-chunk */
				pos += chunk;
				if (memcmp(out + pos, "\r\n", 2) != 0)
					fuzz_fail("chunk data not followed by CRLF", out, len);
				pos += 2;
			} while (true);
			/* Trailers, then the blank line. */
			while ((line = fuzz_line(out, len, &pos, &n)) != NULL && n > 0)
				if (http_check_response_field(line, n, &name_len, &why) < 0)
					fuzz_fail("a trailer the client cannot trust", out, len);
			if (line == NULL)
				return;
		} else if (ncl == 1) {
			if (len - pos < (size_t)cl)
				return;     /* cut short: the connection ended */
			pos += (size_t)cl;
		} else {
			if (!http10 && !closes)
				fuzz_fail("a body without framing on a kept connection", out, len);
			return;     /* delimited by the close */
		}
		if (pos != len)
			fuzz_fail("bytes after the final response", out, len);
		return;
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct conn conn;
	static struct http_server h;
	static struct http_request req;
	static char out[FUZZ_MAX_OUTPUT];
	struct fuzz_upstream up;
	struct upstream u;
	struct reply_result res;
	pthread_t thread;
	char request[512];
	size_t len = 0, i;
	ssize_t n;
	bool head_req, http10, ws;
	int sv[2], flags;
	char byte;

	if (size < 1)
		return 0;
	flags = data[0];
	head_req = flags & 1;
	http10 = flags & 2;
	ws = flags & 8;
	if (ws)
		head_req = http10 = false;
	up.data = data + 1;
	up.size = size - 1;

	snprintf(request, sizeof(request), "%s /proxy/x HTTP/1.%c\r\nHost: f\r\n%s%s\r\n",
	    head_req ? "HEAD" : "GET", http10 ? '0' : '1', flags & 4 ? "TE: trailers\r\n" : "",
	    ws ? "Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: " FUZZ_KEY
	    "\r\nSec-WebSocket-Version: 13\r\n" : "");
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		abort();
	if (send(sv[0], request, strlen(request), 0) < 0)
		abort();
	/* The client sends nothing more: a tunnel ends when the upstream closes. */
	shutdown(sv[0], SHUT_WR);

	memset(&conn, 0, sizeof(conn));
	conn.fd = sv[1];
	strcpy(conn.peer_addr, "127.0.0.1");
	strcpy(conn.peer_port, "1");
	http_server_init(&h, &conn, fuzz_cfg.max_body);
	if (http_read_head(&h, &req) != 1)
		abort();
	if (pthread_create(&thread, NULL, fuzz_upstream_thread, &up) != 0)
		abort();
	if (upstream_init(&u, &fuzz_cfg) < 0)
		abort();
	if (tunnel_wanted(&req))
		tunnel_forward(&u, &h, &req, fuzz_cfg.routes[0], &res);
	else
		upstream_forward(&u, &h, &req, fuzz_cfg.routes[0], &res);
	/*
	 * A kept upstream connection must have nothing unread on it. (Its end
	 * may be on the way: the upstream's close races with the check.)
	 */
	for (i = 0; res.keep_alive && i < u.nsocks; i++)
		if (recv(u.socks[i], &byte, 1, MSG_PEEK | MSG_DONTWAIT) > 0)
			fuzz_fail("a kept upstream connection with unread input", "", 0);
	upstream_free(&u);
	close(sv[1]);
	pthread_join(thread, NULL);

	while (len < sizeof(out) && (n = read(sv[0], out + len, sizeof(out) - len)) > 0)
		len += (size_t)n;
	close(sv[0]);
	fuzz_check_client(out, len, head_req, http10, ws, up.data, up.size);
	return 0;
}
