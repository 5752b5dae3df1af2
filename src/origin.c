/*
 * origin.c - a program that answers requests itself rather than forwarding
 * them: it takes its connection, confines itself, then reads each request
 * in order, answers it and logs it once, until the client closes or idles
 * out. What it answers is the GoFrame example's: "user info from server
 * backend" for /user/1, "response from server backend" for anything else,
 * whatever the method. gfproxy-backend is exactly that (backend.c); the
 * test peer (tests/peer) hands its handler in first and passes what it
 * does not serve on to the same answers.
 *
 * The response writer frames a body by its length, or chunked when the
 * length is not known in advance (by closing the connection for HTTP/1.0,
 * which has no chunked coding), and holds the head back until the first
 * piece of the body can go with it.
 */
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "journal.h"
#include "origin.h"
#include "sandbox.h"
#ifdef GFPROXY_ESCAPE_PROBE
#include "escape.h"
#endif

#define ORIGIN_BODY_USER        "user info from server backend"
#define ORIGIN_BODY_DEFAULT     "response from server backend"

/*
 * Prepare the response head. length < 0 means the length is not known:
 * chunked for HTTP/1.1, delimited by closing the connection for HTTP/1.0.
 * The head leaves with the first piece of the body: written alone, Nagle's
 * algorithm would hold a small body back until the client's delayed ACK,
 * some 40 ms per request.
 */
int
origin_head(struct origin *o, int status, const char *type, int64_t length)
{
	char date[32], framing[64];
	const char *connection = "";
	int n;

	o->status = status;
	o->no_body = http_body_forbidden(o->req.method, status);
	o->chunked = false;
	if (status == 204 || status == 304) {
		type = NULL;    /* there is no content to have a type */
		framing[0] = '\0';
	} else if (length >= 0)
		snprintf(framing, sizeof(framing), "Content-Length: %" PRId64 "\r\n", length);
	else if (o->req.version >= 11) {
		snprintf(framing, sizeof(framing), "Transfer-Encoding: chunked\r\n");
		o->chunked = !o->no_body;
	} else {
		framing[0] = '\0';
		if (!o->no_body)
			o->keep_alive = false;
	}
	if (!o->keep_alive)
		connection = "Connection: close\r\n";
	else if (o->req.version < 11)
		connection = "Connection: keep-alive\r\n";

	http_date(date);
	n = snprintf(o->head, sizeof(o->head),
	    "HTTP/1.1 %d %s\r\n"
	    "Date: %s\r\n"
	    "%s%s%s%s"
	    "%s%s"
	    "\r\n", status, http_reason(status), date,
	    type != NULL ? "Content-Type: " : "", type != NULL ? type : "",
	    type != NULL ? "\r\n" : "", framing, connection,
	    o->fields != NULL ? o->fields : "");
	if (n < 0 || (size_t)n >= sizeof(o->head))
		return -ENOBUFS;
	o->head_len = (size_t)n;
	return 0;
}

/* Send a piece of the body in the framing origin_head() chose, after the head. */
int
origin_body(struct origin *o, const void *data, size_t len)
{
	char size[24];
	struct iovec iov[4];
	int n = 0, r;

	if (o->no_body)
		len = 0;
	if (o->head_len > 0)
		iov[n++] = (struct iovec){ o->head, o->head_len };
	if (len > 0 && o->chunked)
		iov[n++] = (struct iovec){ size, (size_t)snprintf(size, sizeof(size), "%zx\r\n",
		    len) };
	if (len > 0)
		iov[n++] = (struct iovec){ (void *)data, len };
	if (len > 0 && o->chunked)
		iov[n++] = (struct iovec){ "\r\n", 2 };
	if (n == 0)
		return 0;
	o->head_len = 0;
	if ((r = conn_writev(&o->conn, iov, n)) == 0)
		o->sent += len;
	return r;
}

/* Write the head if no body went with it. */
int
origin_flush(struct origin *o)
{
	return origin_body(o, NULL, 0);
}

/*
 * End the body. trailers, CRLF-terminated lines or "", go only where the
 * framing has room for them: after the last chunk.
 */
int
origin_end(struct origin *o, const char *trailers)
{
	struct iovec iov[3] = {
		{ "0\r\n", 3 },
		{ (void *)trailers, strlen(trailers) },
		{ "\r\n", 2 },
	};
	int r;

	if ((r = origin_flush(o)) < 0)
		return r;
	if (!o->chunked)
		return 0;
	return conn_writev(&o->conn, iov, 3);
}

/* A complete response with a body known in advance. */
int
origin_reply(struct origin *o, int status, const char *type, const char *body, size_t len)
{
	int r;

	if (status == 204 || status == 304)
		len = 0;
	if ((r = origin_head(o, status, type, (int64_t)len)) < 0)
		return r;
	if ((r = origin_body(o, body, len)) < 0)
		return r;
	return origin_flush(o);
}

/* A complete plain-text response, formatted, cut to ORIGIN_SMALL_BODY. */
int
origin_replyf(struct origin *o, int status, const char *fmt, ...)
{
	char body[ORIGIN_SMALL_BODY];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(body, sizeof(body), fmt, ap);
	va_end(ap);
	if (n < 0)
		return -EINVAL;
	if ((size_t)n >= sizeof(body))
		n = (int)sizeof(body) - 1;
	return origin_reply(o, status, ORIGIN_TYPE_TEXT, body, (size_t)n);
}

/*
 * Read the whole request body, passing each piece to each (when not NULL);
 * a 100 Continue the request expects goes out first (http_read_body). On
 * failure the request has been answered with its own status, and the
 * connection must close.
 */
int
origin_read_body(struct origin *o, void (*each)(void *arg, const char *data, size_t len),
    void *arg)
{
	ssize_t n;

	while ((n = http_read_body(&o->http, o->buf, sizeof(o->buf))) > 0) {
		o->received += (uint64_t)n;
		if (each != NULL)
			each(arg, o->buf, (size_t)n);
	}
	if (n == 0)
		return 0;
	o->status = o->http.status;
	o->why = o->http.why;
	o->keep_alive = false;
	(void)http_error(&o->conn, o->status, o->why);
	return -EPROTO;
}

/* Paths compare byte for byte, unlike header names. */
static bool
origin_path_is(const char *path, size_t path_len, const char *want)
{
	return strlen(want) == path_len && memcmp(path, want, path_len) == 0;
}

/* The example's answers, for any method. */
static int
origin_example(struct origin *o, const char *path, size_t path_len)
{
	int r;

	if ((r = origin_read_body(o, NULL, NULL)) < 0)
		return r;
	if (origin_path_is(path, path_len, "/user/1") || origin_path_is(path, path_len, "/user/1/"))
		return origin_reply(o, 200, ORIGIN_TYPE_TEXT, ORIGIN_BODY_USER,
		    sizeof(ORIGIN_BODY_USER) - 1);
	return origin_reply(o, 200, ORIGIN_TYPE_TEXT, ORIGIN_BODY_DEFAULT,
	    sizeof(ORIGIN_BODY_DEFAULT) - 1);
}

/* The path of the target: no query or fragment, no scheme and authority. */
static void
origin_path(const char *target, const char **ret_path, size_t *ret_len)
{
	const char *p = target;

	if (strncasecmp(p, "http://", 7) == 0 || strncasecmp(p, "https://", 8) == 0) {
		p = strstr(p, "//") + 2;
		p += strcspn(p, "/?#");
		if (*p != '/') {
			*ret_path = "/";
			*ret_len = 1;
			return;
		}
	}
	*ret_path = p;
	*ret_len = strcspn(p, "?#");
}

/*
 * One entry per request, answered or refused, with the fields
 * gfproxy-backend(8) lists and the priority gfproxy(8) gives its own.
 */
static void
origin_log(struct origin *o)
{
	char target[4 * HTTP_MAX_REQUEST_LINE + 1], status[8], sent[24], received[24], usec[24];
	struct journal_field fields[] = {
		{ "REMOTE_ADDR", o->conn.peer_addr },
		{ "REMOTE_PORT", o->conn.peer_port },
		{ "HTTP_METHOD", o->req.method },
		{ "HTTP_TARGET", target },
		{ "HTTP_STATUS", status },
		{ "BYTES_SENT", sent },
		{ "BYTES_RECEIVED", received },
		{ "DURATION_USEC", usec },
		{ "SANDBOX", o->confinement },
		{ "ERROR", o->why },
	};
	size_t nfields = sizeof(fields) / sizeof(fields[0]) - (o->why == NULL);

	journal_escape(target, sizeof(target), o->req.target, o->req.target_len);
	snprintf(status, sizeof(status), "%d", o->status);
	snprintf(sent, sizeof(sent), "%" PRIu64, o->sent);
	snprintf(received, sizeof(received), "%" PRIu64, o->received);
	snprintf(usec, sizeof(usec), "%" PRId64, conn_now_usec() - o->start_usec);
	journal_log(o->status >= 500 ? LOG_ERR : o->status >= 400 ? LOG_WARNING : LOG_INFO,
	    fields, nfields, "%s %s %d %" PRIu64 "B%s%s", o->req.method, target, o->status,
	    o->sent, o->why != NULL ? ": " : "", o->why != NULL ? o->why : "");
}

/* Serve one request whose head has been read. Returns < 0 to end the connection. */
static int
origin_serve(struct origin *o, origin_handler *handler)
{
	const char *path;
	size_t path_len;
	int r;

	o->keep_alive = o->req.keep_alive && !o->http.closing;
	o->status = 0;
	o->why = NULL;
	o->fields = NULL;
	o->sent = 0;
	o->received = 0;
	o->head_len = 0;

	origin_path(o->req.target, &path, &path_len);
	r = handler != NULL ? handler(o, path, path_len) : ORIGIN_PASS;
	if (r == ORIGIN_PASS)
		r = origin_example(o, path, path_len);
	origin_log(o);
	if (r < 0)
		return r;
	return o->keep_alive ? 0 : -ECONNRESET;
}

/*
 * The program: read the command line (--help and --version, shown with
 * usage), take the connection, confine the process, then serve every
 * request on it with handler (NULL: the example's answers alone). Returns
 * the exit status.
 */
int
origin_main(struct origin *o, int argc, char *argv[], const char *name,
    void (*usage)(FILE *), origin_handler *handler)
{
	static const struct option longopts[] = {
		{ "help",           no_argument, NULL, 'h' },
		{ "version",        no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 }
	};
	const char *why = NULL;
	int ch, r;

	while ((ch = getopt_long(argc, argv, "hV", longopts, NULL)) != -1) {
		switch (ch) {
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("%s " GFPROXY_VERSION "\n", name);
			return 0;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "%s: unexpected argument: %s\n", name, argv[optind]);
		usage(stderr);
		return EXIT_USAGE;
	}

	journal_init(name);
	if ((r = conn_open(&o->conn, &why)) != 0) {
		journal_log(LOG_ERR, NULL, 0, "%s", why);
		return r;
	}
	/*
	 * Every write is a whole response or a piece a client is waiting for
	 * (an event, a chunk, the last chunk): none should wait for an ACK.
	 * Not a TCP socket (inetd over AF_UNIX): nothing to do.
	 */
	(void)setsockopt(o->conn.fd, IPPROTO_TCP, TCP_NODELAY, &(int){ 1 }, sizeof(int));
	/*
	 * It answers from memory on the socket it was handed: no file to read,
	 * no socket of its own but the journal's, no TCP port to reach.
	 */
	if ((o->confinement = sandbox_enter(&(struct sandbox_policy){ .inet = false })) == NULL) {
		(void)http_error(&o->conn, 503, "cannot confine the process");
		conn_linger(&o->conn);
		return EXIT_OSERR;
	}
	http_server_init(&o->http, &o->conn, HTTP_MAX_BODY_DEFAULT);
#ifdef GFPROXY_ESCAPE_PROBE
	/* A test build (tests/system/escape.c): confined as above, then it tries to get out. */
	if (http_read_head(&o->http, &o->req) > 0)
		escape_probe(o->conn.fd, o->req.target);
	return 0;
#endif

	for (;;) {
		r = http_read_head(&o->http, &o->req);
		if (r == 0)
			break;
		o->start_usec = conn_now_usec();
		if (r < 0) {
			o->status = o->http.status;
			o->why = o->http.why;
			o->sent = 0;
			o->received = 0;
			(void)http_error(&o->conn, o->status, o->why);
			origin_log(o);
			break;
		}
		if (origin_serve(o, handler) < 0)
			break;
	}
	conn_linger(&o->conn);
	return 0;
}
