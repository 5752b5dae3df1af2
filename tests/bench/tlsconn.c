/*
 * tlsconn - new connections per second, one request each, the same client
 * for plain TCP and TLS, so that only the server's cost differs:
 *
 *   tlsconn MODE PORT SECONDS WORKERS [PATH]
 *
 * MODE plain: connect, send a GET of PATH (/bench by default) with
 * "Connection: close", read to EOF.
 * MODE full: the same over TLS, a full handshake every time.
 * MODE resumed: the same over TLS, resuming the session (ticket) the
 * previous connection of the worker got.
 * WORKERS processes run side by side; prints connections per second, and
 * how many of the TLS connections resumed. A connection that fails, or whose
 * answer is not a 200, is an error.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/ssl.h>

#define TLSCONN_REQUEST_MAX 1024 /* bytes of the request, PATH included */

static char request[TLSCONN_REQUEST_MAX];
static size_t request_len;
static const char ok_status[] = "HTTP/1.1 200 ";

/* The answer's first bytes, kept until the status can be told. */
struct answer {
	char   head[sizeof(ok_status) - 1];
	size_t got;
};

static void
answer_take(struct answer *a, const char *buf, size_t n)
{
	size_t k = sizeof(a->head) - a->got;

	if (k > n)
		k = n;
	memcpy(a->head + a->got, buf, k);
	a->got += k;
}

static int
answer_ok(const struct answer *a)
{
	return a->got == sizeof(a->head) && memcmp(a->head, ok_status, a->got) == 0;
}

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int
dial(int port)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &(int){ 1 }, sizeof(int));
	return fd;
}

/* One connection and its request; 1 if it resumed a session. */
static int
one(const char *mode, int port, SSL_CTX *ctx, SSL_SESSION **sess)
{
	char buf[16384];
	struct answer a = { .got = 0 };
	int fd = dial(port), resumed = 0;
	ssize_t n;
	SSL *ssl;

	if (fd < 0)
		return -1;
	if (strcmp(mode, "plain") == 0) {
		if (write(fd, request, request_len) < 0)
			resumed = -1;
		while (resumed == 0 && (n = read(fd, buf, sizeof(buf))) > 0)
			answer_take(&a, buf, (size_t)n);
		close(fd);
		return answer_ok(&a) ? resumed : -1;
	}
	ssl = SSL_new(ctx);
	SSL_set_fd(ssl, fd);
	SSL_set_tlsext_host_name(ssl, "bench.test");
	if (*sess != NULL && strcmp(mode, "resumed") == 0)
		SSL_set_session(ssl, *sess);
	if (SSL_connect(ssl) != 1 || SSL_write(ssl, request, (int)request_len) <= 0) {
		SSL_free(ssl);
		close(fd);
		return -1;
	}
	while ((n = SSL_read(ssl, buf, sizeof(buf))) > 0)
		answer_take(&a, buf, (size_t)n);
	resumed = answer_ok(&a) ? SSL_session_reused(ssl) : -1;
	if (strcmp(mode, "resumed") == 0) {
		/* The ticket comes after the handshake: the one this connection got. */
		SSL_SESSION_free(*sess);
		*sess = SSL_get1_session(ssl);
	}
	/* Without a close_notify of its own, OpenSSL would mark the session spent. */
	SSL_shutdown(ssl);
	SSL_free(ssl);
	close(fd);
	return resumed;
}

int
main(int argc, char **argv)
{
	int port, workers, i, p[2], status;
	double seconds, end;
	long total = 0, resumed = 0, errors = 0;

	int len;

	if (argc != 5 && argc != 6) {
		fprintf(stderr, "usage: tlsconn plain|full|resumed PORT SECONDS WORKERS [PATH]\n");
		return 64;
	}
	len = snprintf(request, sizeof(request),
	    "GET %s HTTP/1.1\r\nHost: bench.test\r\nConnection: close\r\n\r\n",
	    argc == 6 ? argv[5] : "/bench");
	if (len < 0 || (size_t)len >= sizeof(request)) {
		fprintf(stderr, "tlsconn: PATH too long\n");
		return 64;
	}
	request_len = (size_t)len;
	port = atoi(argv[2]);
	seconds = atof(argv[3]);
	workers = atoi(argv[4]);
	if (pipe(p) < 0)
		return 71;
	for (i = 0; i < workers; i++) {
		if (fork() != 0)
			continue;
		SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
		SSL_SESSION *sess = NULL;
		long count[3] = { 0, 0, 0 };
		int r;

		SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT);
		end = now() + seconds;
		while (now() < end) {
			r = one(argv[1], port, ctx, &sess);
			if (r < 0)
				count[2]++;
			else {
				count[0]++;
				count[1] += r;
			}
		}
		if (write(p[1], count, sizeof(count)) != sizeof(count))
			_exit(1);
		_exit(0);
	}
	close(p[1]);
	for (i = 0; i < workers; i++) {
		long count[3];
		if (read(p[0], count, sizeof(count)) != sizeof(count))
			break;
		total += count[0];
		resumed += count[1];
		errors += count[2];
	}
	while (wait(&status) > 0)
		;
	printf("%.1f conn/s, %ld connections, %ld resumed, %ld errors\n",
	    total / seconds, total, resumed, errors);
	return 0;
}
