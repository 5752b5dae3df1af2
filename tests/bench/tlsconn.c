/*
 * tlsconn - new connections per second, one request each, the same client
 * for plain TCP and TLS, so that only the server's cost differs:
 *
 *   tlsconn MODE PORT SECONDS WORKERS
 *
 * MODE plain: connect, send a GET with "Connection: close", read to EOF.
 * MODE full: the same over TLS, a full handshake every time.
 * MODE resumed: the same over TLS, resuming the session (ticket) the
 * previous connection of the worker got.
 * WORKERS processes run side by side; prints connections per second, and
 * how many of the TLS connections resumed.
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

static const char request[] = "GET /bench HTTP/1.1\r\nHost: bench.test\r\nConnection: close\r\n\r\n";

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
	int fd = dial(port), resumed = 0;
	SSL *ssl;

	if (fd < 0)
		return -1;
	if (strcmp(mode, "plain") == 0) {
		if (write(fd, request, sizeof(request) - 1) < 0)
			resumed = -1;
		while (resumed == 0 && read(fd, buf, sizeof(buf)) > 0)
			;
		close(fd);
		return resumed;
	}
	ssl = SSL_new(ctx);
	SSL_set_fd(ssl, fd);
	SSL_set_tlsext_host_name(ssl, "bench.test");
	if (*sess != NULL && strcmp(mode, "resumed") == 0)
		SSL_set_session(ssl, *sess);
	if (SSL_connect(ssl) != 1 || SSL_write(ssl, request, sizeof(request) - 1) <= 0) {
		SSL_free(ssl);
		close(fd);
		return -1;
	}
	while (SSL_read(ssl, buf, sizeof(buf)) > 0)
		;
	resumed = SSL_session_reused(ssl);
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

	if (argc != 5) {
		fprintf(stderr, "usage: tlsconn plain|full|resumed PORT SECONDS WORKERS\n");
		return 64;
	}
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
