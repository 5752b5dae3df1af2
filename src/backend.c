/*
 * backend.c - gfproxy-backend, the sample backend behind gfproxy.
 *
 * Started by systemd (or inetd) once per TCP connection, it serves every
 * request on that connection in order and exits when the client closes or
 * idles out. By default it answers like the original GoFrame example, for
 * every method. With --test-endpoints it is also the controllable peer the
 * test suite needs: it echoes what it received, sends bodies of any size in
 * either framing, answers any status, waits, streams events, and breaks off
 * a response on purpose.
 *
 * Request bodies are always read (and so kept in step with pipelining) but
 * never held whole: they stream through one buffer, into a digest when the
 * endpoint reports one.
 */
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/sha.h>

#include "conn.h"
#include "http.h"
#include "journal.h"

#define BACKEND_NAME            "gfproxy-backend"

#define BACKEND_IO_CHUNK        (64 * 1024)   /* bytes per body read or write */
#define BACKEND_STREAM_CHUNK    (16 * 1024)   /* bytes per chunk of /stream */
#define BACKEND_PATTERN_PERIOD  256           /* the /bytes pattern repeats this often */
#define BACKEND_MAX_BYTES       ((uint64_t)1 << 50)  /* 1 PiB; /bytes and /stream */
#define BACKEND_MAX_DELAY_MS    600000        /* 10 min; longer /delay is cut to this */
#define BACKEND_SSE_EVENTS      10
#define BACKEND_SSE_INTERVAL_MS 100
#define BACKEND_CLOSE_PROMISED  1000          /* bytes /close announces */
#define BACKEND_CLOSE_SENT      100           /* bytes /close sends before closing */
#define BACKEND_LINGER_MS       2000          /* draining a client after our last reply */
#define BACKEND_MAX_HEAD        512           /* bytes of a response head */
#define BACKEND_SMALL_BODY      128           /* bytes of a fixed or formatted body */
/* Every string of a request lives in its arena; the echo adds a prefix per line. */
#define BACKEND_ECHO_MAX        (sizeof(((struct http_request *)0)->arena) + \
                                 (HTTP_MAX_HEADERS + HTTP_MAX_TRAILERS) * \
                                 sizeof("trailer: : \n") + 512)

#define BACKEND_TYPE_TEXT       "text/plain; charset=utf-8"
#define BACKEND_TYPE_SSE        "text/event-stream"
#define BACKEND_BODY_USER       "user info from server backend"
#define BACKEND_BODY_DEFAULT    "response from server backend"

/* One connection's state; there is only ever one per process. */
struct backend {
	struct conn          conn;
	struct http_server   http;
	struct http_request  req;
	EVP_MD_CTX          *md;
	bool                 test_endpoints;
	/* The response being sent. */
	bool                 keep_alive;
	bool                 chunked;       /* chunked framing, else length or close */
	bool                 no_body;       /* HEAD, 204, 304: head only */
	int                  status;
	uint64_t             sent;          /* body bytes written, for the log */
	char                 head[BACKEND_MAX_HEAD];
	size_t               head_len;      /* not yet written: goes with the body */
	/* The request body, as read. */
	uint64_t             body_len;
	char                 body_sha256[2 * SHA256_DIGEST_LENGTH + 1];
	char                 buf[BACKEND_IO_CHUNK];
	char                 echo[BACKEND_ECHO_MAX];
	/* Any window of up to BACKEND_IO_CHUNK bytes of the pattern, at any phase. */
	unsigned char        pattern[BACKEND_IO_CHUNK + BACKEND_PATTERN_PERIOD];
};

enum backend_match {
	BACKEND_EXACT,          /* the path and nothing else */
	BACKEND_ARG,            /* the prefix, then one argument */
};

struct backend_endpoint {
	const char          *path;
	enum backend_match   match;
	bool                 digest;        /* hash the request body for the handler */
	int                (*serve)(struct backend *, const char *arg, size_t arg_len);
};

static int backend_echo(struct backend *, const char *, size_t);
static int backend_bytes(struct backend *, const char *, size_t);
static int backend_stream(struct backend *, const char *, size_t);
static int backend_status(struct backend *, const char *, size_t);
static int backend_delay(struct backend *, const char *, size_t);
static int backend_sse(struct backend *, const char *, size_t);
static int backend_upload(struct backend *, const char *, size_t);
static int backend_close(struct backend *, const char *, size_t);

static const struct backend_endpoint backend_endpoints[] = {
	{ "/echo",    BACKEND_EXACT, true,  backend_echo },
	{ "/bytes/",  BACKEND_ARG,   false, backend_bytes },
	{ "/stream/", BACKEND_ARG,   false, backend_stream },
	{ "/status/", BACKEND_ARG,   false, backend_status },
	{ "/delay/",  BACKEND_ARG,   false, backend_delay },
	{ "/sse",     BACKEND_EXACT, false, backend_sse },
	{ "/upload",  BACKEND_EXACT, true,  backend_upload },
	{ "/close",   BACKEND_EXACT, false, backend_close },
};

static void
backend_usage(FILE *f)
{
	fprintf(f,
	    "usage: " BACKEND_NAME " [--test-endpoints]\n"
	    "       " BACKEND_NAME " -h | --help | -V | --version\n"
	    "\n"
	    "The sample HTTP/1.1 backend behind gfproxy. Started once per TCP connection\n"
	    "by systemd socket activation (Accept=yes) or inetd (nowait), it serves every\n"
	    "request on the connection, for any method:\n"
	    "  /user/1, /user/1/   200 \"" BACKEND_BODY_USER "\"\n"
	    "  anything else       200 \"" BACKEND_BODY_DEFAULT "\"\n"
	    "\n"
	    "  --test-endpoints    also serve the endpoints the test suite drives:\n"
	    "    /echo         the request as received: lines \"method: M\", \"target: T\"\n"
	    "                  (exactly as sent), \"version: HTTP/1.x\", one \"header: Name: value\"\n"
	    "                  per field in order, one \"trailer: Name: value\" per trailer,\n"
	    "                  \"body-length: N\" and \"body-sha256: HEX\" of the decoded body\n"
	    "    /bytes/N      N bytes with Content-Length; byte i is (i * 31 + 7) & 0xff\n"
	    "    /stream/N     the same N bytes chunked, in chunks of at most 16 KiB and at\n"
	    "                  least two when N >= 2 (read-until-close for HTTP/1.0)\n"
	    "    /status/CODE  that status (200-599), body \"CODE Reason\\n\" unless 204 or 304\n"
	    "    /delay/MS     200 after MS milliseconds (at most %d)\n"
	    "    /sse          text/event-stream, chunked: \"data: event N\\n\\n\" for N = 1..%d,\n"
	    "                  one every %d ms\n"
	    "    /upload       \"length: N\\nsha256: HEX\\n\" of the decoded request body\n"
	    "    /close        announces %d body bytes, sends %d, then closes\n"
	    "                  N up to 2^50; a malformed N, CODE or MS is answered 400, and\n"
	    "                  any other path gets the default answers\n"
	    "  -h, --help          show this help\n"
	    "  -V, --version       show the version\n"
	    "\n"
	    "Exit status: 0 after serving, %d bad usage, %d no connected stream socket on\n"
	    "fd 3 or stdin, %d a system call failed before serving.\n",
	    BACKEND_MAX_DELAY_MS, BACKEND_SSE_EVENTS, BACKEND_SSE_INTERVAL_MS,
	    BACKEND_CLOSE_PROMISED, BACKEND_CLOSE_SENT, EXIT_USAGE, EXIT_NOCONN, EXIT_OSERR);
}

/* The deterministic body of /bytes and /stream: byte i is (i * 31 + 7) & 0xff. */
static void
backend_pattern_init(struct backend *b)
{
	size_t i;

	for (i = 0; i < sizeof(b->pattern); i++)
		b->pattern[i] = (unsigned char)((i * 31 + 7) & 0xff);
}

/* The pattern from byte offset off on, valid for BACKEND_IO_CHUNK bytes. */
static const unsigned char *
backend_pattern_at(const struct backend *b, uint64_t off)
{
	return b->pattern + off % BACKEND_PATTERN_PERIOD;
}

static int
backend_parse_u64(const char *s, size_t len, uint64_t max, uint64_t *ret)
{
	uint64_t v = 0;
	size_t i;

	if (len == 0)
		return -EINVAL;
	for (i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -EINVAL;
		v = v * 10 + (uint64_t)(s[i] - '0');
		if (v > max)
			return -ERANGE;
	}
	*ret = v;
	return 0;
}

static void
backend_sleep_ms(unsigned int ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
		;
}

/*
 * Prepare the response head. length < 0 means the length is not known:
 * chunked for HTTP/1.1, delimited by closing the connection for HTTP/1.0,
 * which has no chunked coding. The head leaves with the first piece of the
 * body: written alone, Nagle's algorithm would hold a small body back until
 * the client's delayed ACK, some 40 ms per request.
 */
static int
backend_head(struct backend *b, int status, const char *type, int64_t length)
{
	char date[32], framing[64];
	const char *connection = "";
	int n;

	b->status = status;
	b->no_body = http_body_forbidden(b->req.method, status);
	b->chunked = false;
	if (status == 204 || status == 304) {
		type = NULL;    /* there is no content to have a type */
		framing[0] = '\0';
	} else if (length >= 0)
		snprintf(framing, sizeof(framing), "Content-Length: %" PRId64 "\r\n", length);
	else if (b->req.version >= 11) {
		snprintf(framing, sizeof(framing), "Transfer-Encoding: chunked\r\n");
		b->chunked = !b->no_body;
	} else {
		framing[0] = '\0';
		if (!b->no_body)
			b->keep_alive = false;
	}
	if (!b->keep_alive)
		connection = "Connection: close\r\n";
	else if (b->req.version < 11)
		connection = "Connection: keep-alive\r\n";

	http_date(date);
	n = snprintf(b->head, sizeof(b->head),
	    "HTTP/1.1 %d %s\r\n"
	    "Date: %s\r\n"
	    "%s%s%s%s"
	    "%s"
	    "\r\n", status, http_reason(status), date,
	    type != NULL ? "Content-Type: " : "", type != NULL ? type : "",
	    type != NULL ? "\r\n" : "", framing, connection);
	if (n < 0 || (size_t)n >= sizeof(b->head))
		return -ENOBUFS;
	b->head_len = (size_t)n;
	return 0;
}

/* Send a piece of the body in the framing backend_head() chose, after the head. */
static int
backend_body(struct backend *b, const void *data, size_t len)
{
	char size[24];
	struct iovec iov[4];
	int n = 0, r;

	if (b->no_body)
		len = 0;
	if (b->head_len > 0)
		iov[n++] = (struct iovec){ b->head, b->head_len };
	if (len > 0 && b->chunked)
		iov[n++] = (struct iovec){ size, (size_t)snprintf(size, sizeof(size), "%zx\r\n",
		    len) };
	if (len > 0)
		iov[n++] = (struct iovec){ (void *)data, len };
	if (len > 0 && b->chunked)
		iov[n++] = (struct iovec){ "\r\n", 2 };
	if (n == 0)
		return 0;
	b->head_len = 0;
	if ((r = conn_writev(&b->conn, iov, n)) == 0)
		b->sent += len;
	return r;
}

/* Write the head if no body went with it. */
static int
backend_flush(struct backend *b)
{
	return backend_body(b, NULL, 0);
}

static int
backend_body_end(struct backend *b)
{
	static const char last[] = "0\r\n\r\n";
	int r;

	if ((r = backend_flush(b)) < 0)
		return r;
	if (!b->chunked)
		return 0;
	return conn_write(&b->conn, last, sizeof(last) - 1);
}

/* A complete response with a body known in advance. */
static int
backend_reply(struct backend *b, int status, const char *type, const char *body,
    size_t len)
{
	int r;

	if (status == 204 || status == 304)
		len = 0;
	if ((r = backend_head(b, status, type, (int64_t)len)) < 0)
		return r;
	if ((r = backend_body(b, body, len)) < 0)
		return r;
	return backend_flush(b);
}

static int
backend_replyf(struct backend *b, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
backend_replyf(struct backend *b, int status, const char *fmt, ...)
{
	char body[BACKEND_SMALL_BODY];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(body, sizeof(body), fmt, ap);
	va_end(ap);
	if (n < 0)
		return -EINVAL;
	if ((size_t)n >= sizeof(body))
		n = (int)sizeof(body) - 1;
	return backend_reply(b, status, BACKEND_TYPE_TEXT, body, (size_t)n);
}

/* Write length bytes of the pattern in pieces of at most piece bytes. */
static int
backend_send_pattern(struct backend *b, uint64_t length, size_t piece)
{
	uint64_t off;
	size_t len;
	int r;

	if (b->no_body)
		return 0;
	for (off = 0; off < length; off += len) {
		len = length - off < piece ? (size_t)(length - off) : piece;
		if ((r = backend_body(b, backend_pattern_at(b, off), len)) < 0)
			return r;
	}
	return 0;
}

static int
backend_bytes(struct backend *b, const char *arg, size_t arg_len)
{
	uint64_t n;
	int r;

	if (backend_parse_u64(arg, arg_len, BACKEND_MAX_BYTES, &n) < 0)
		return backend_replyf(b, 400, "invalid byte count\n");
	if ((r = backend_head(b, 200, "application/octet-stream", (int64_t)n)) < 0)
		return r;
	if ((r = backend_send_pattern(b, n, BACKEND_IO_CHUNK)) < 0)
		return r;
	return backend_flush(b);
}

static int
backend_stream(struct backend *b, const char *arg, size_t arg_len)
{
	uint64_t n;
	size_t piece;
	int r;

	if (backend_parse_u64(arg, arg_len, BACKEND_MAX_BYTES, &n) < 0)
		return backend_replyf(b, 400, "invalid byte count\n");
	/* Small bodies still come in two chunks, so a client must reassemble. */
	piece = n < 2 * BACKEND_STREAM_CHUNK ? (size_t)(n + 1) / 2 : BACKEND_STREAM_CHUNK;
	if ((r = backend_head(b, 200, "application/octet-stream", -1)) < 0)
		return r;
	if (n > 0 && (r = backend_send_pattern(b, n, piece)) < 0)
		return r;
	return backend_body_end(b);
}

static int
backend_status(struct backend *b, const char *arg, size_t arg_len)
{
	uint64_t code;

	/* No 1xx: an interim response is not a reply to end a request with. */
	if (backend_parse_u64(arg, arg_len, 599, &code) < 0 || code < 200)
		return backend_replyf(b, 400, "invalid status code\n");
	return backend_replyf(b, (int)code, "%d %s\n", (int)code, http_reason((int)code));
}

static int
backend_delay(struct backend *b, const char *arg, size_t arg_len)
{
	uint64_t ms;
	int r;

	r = backend_parse_u64(arg, arg_len, UINT64_MAX / 10, &ms);
	if (r == -ERANGE || (r == 0 && ms > BACKEND_MAX_DELAY_MS))
		ms = BACKEND_MAX_DELAY_MS;
	else if (r < 0)
		return backend_replyf(b, 400, "invalid delay\n");
	backend_sleep_ms((unsigned int)ms);
	return backend_replyf(b, 200, "delayed %" PRIu64 " ms\n", ms);
}

static int
backend_sse(struct backend *b, const char *arg, size_t arg_len)
{
	char event[32];
	int i, n, r;

	if ((r = backend_head(b, 200, BACKEND_TYPE_SSE, -1)) < 0)
		return r;
	for (i = 1; i <= BACKEND_SSE_EVENTS && !b->no_body; i++) {
		if (i > 1)
			backend_sleep_ms(BACKEND_SSE_INTERVAL_MS);
		n = snprintf(event, sizeof(event), "data: event %d\n\n", i);
		if ((r = backend_body(b, event, (size_t)n)) < 0)
			return r;
	}
	return backend_body_end(b);
}

static int
backend_upload(struct backend *b, const char *arg, size_t arg_len)
{
	return backend_replyf(b, 200, "length: %" PRIu64 "\nsha256: %s\n", b->body_len,
	    b->body_sha256);
}

/* Promise more than we send, then go: the client must notice the truncation. */
static int
backend_close(struct backend *b, const char *arg, size_t arg_len)
{
	int r;

	b->keep_alive = false;
	if ((r = backend_head(b, 200, "application/octet-stream", BACKEND_CLOSE_PROMISED)) < 0)
		return r;
	if ((r = backend_send_pattern(b, BACKEND_CLOSE_SENT, BACKEND_IO_CHUNK)) < 0 ||
	    (r = backend_flush(b)) < 0)
		return r;
	return -ECONNABORTED;
}

static bool
backend_echo_add(char *buf, size_t *len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static bool
backend_echo_add(char *buf, size_t *len, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf + *len, BACKEND_ECHO_MAX - *len, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= BACKEND_ECHO_MAX - *len)
		return false;
	*len += (size_t)n;
	return true;
}

static int
backend_echo(struct backend *b, const char *arg, size_t arg_len)
{
	const struct http_request *req = &b->req;
	size_t i, len = 0;
	bool ok;

	/* Lengths, not %s, for the strings: a value may hold any byte llhttp let by. */
	ok = backend_echo_add(b->echo, &len, "method: %s\ntarget: %.*s\nversion: HTTP/%d.%d\n",
	    req->method, (int)req->target_len, req->target, req->version / 10,
	    req->version % 10);
	for (i = 0; ok && i < req->nheaders; i++)
		ok = backend_echo_add(b->echo, &len, "header: %.*s: %.*s\n",
		    (int)req->headers[i].name_len, req->headers[i].name,
		    (int)req->headers[i].value_len, req->headers[i].value);
	for (i = 0; ok && i < req->ntrailers; i++)
		ok = backend_echo_add(b->echo, &len, "trailer: %.*s: %.*s\n",
		    (int)req->trailers[i].name_len, req->trailers[i].name,
		    (int)req->trailers[i].value_len, req->trailers[i].value);
	if (ok)
		ok = backend_echo_add(b->echo, &len, "body-length: %" PRIu64 "\nbody-sha256: %s\n",
		    b->body_len, b->body_sha256);
	if (!ok) {
		b->keep_alive = false;
		return backend_replyf(b, 500, "echo too large\n");
	}
	return backend_reply(b, 200, BACKEND_TYPE_TEXT, b->echo, len);
}

/* Paths compare byte for byte, unlike header names. */
static bool
backend_path_is(const char *path, size_t path_len, const char *want)
{
	return strlen(want) == path_len && memcmp(path, want, path_len) == 0;
}

static int
backend_default(struct backend *b, const char *path, size_t path_len)
{
	if (backend_path_is(path, path_len, "/user/1") ||
	    backend_path_is(path, path_len, "/user/1/"))
		return backend_reply(b, 200, BACKEND_TYPE_TEXT, BACKEND_BODY_USER,
		    sizeof(BACKEND_BODY_USER) - 1);
	return backend_reply(b, 200, BACKEND_TYPE_TEXT, BACKEND_BODY_DEFAULT,
	    sizeof(BACKEND_BODY_DEFAULT) - 1);
}

/* The path of the target: no query or fragment, no scheme and authority. */
static void
backend_path(const char *target, const char **ret_path, size_t *ret_len)
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
 * Read the whole request body, hashing it when asked. On failure the request
 * has been answered with its own status and the connection must close.
 */
static int
backend_read_body(struct backend *b, bool digest)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0, i;
	ssize_t n;

	b->body_len = 0;
	b->body_sha256[0] = '\0';
	if (digest && !EVP_DigestInit_ex(b->md, EVP_sha256(), NULL))
		return -EIO;
	while ((n = http_read_body(&b->http, b->buf, sizeof(b->buf))) > 0) {
		b->body_len += (uint64_t)n;
		if (digest && !EVP_DigestUpdate(b->md, b->buf, (size_t)n))
			return -EIO;
	}
	if (n < 0) {
		b->status = b->http.status;
		b->keep_alive = false;
		(void)http_error(&b->conn, b->http.status, b->http.why);
		return -EPROTO;
	}
	if (digest) {
		if (!EVP_DigestFinal_ex(b->md, md, &mdlen) || mdlen * 2 >= sizeof(b->body_sha256))
			return -EIO;
		for (i = 0; i < mdlen; i++) {
			b->body_sha256[2 * i] = hex[md[i] >> 4];
			b->body_sha256[2 * i + 1] = hex[md[i] & 0xf];
		}
		b->body_sha256[2 * mdlen] = '\0';
	}
	return 0;
}

static void
backend_log(struct backend *b)
{
	char target[4 * HTTP_MAX_REQUEST_LINE + 1], status[8], sent[24], received[24];
	struct journal_field fields[] = {
		{ "REMOTE_ADDR", b->conn.peer_addr },
		{ "REMOTE_PORT", b->conn.peer_port },
		{ "HTTP_METHOD", b->req.method },
		{ "HTTP_TARGET", target },
		{ "HTTP_STATUS", status },
		{ "HTTP_RESPONSE_BYTES", sent },
		{ "HTTP_REQUEST_BYTES", received },
	};

	journal_escape(target, sizeof(target), b->req.target, b->req.target_len);
	snprintf(status, sizeof(status), "%d", b->status);
	snprintf(sent, sizeof(sent), "%" PRIu64, b->sent);
	snprintf(received, sizeof(received), "%" PRIu64, b->body_len);
	journal_log(LOG_INFO, fields, sizeof(fields) / sizeof(fields[0]), "%s %s %d %" PRIu64 "B",
	    b->req.method, target, b->status, b->sent);
}

/* Serve one request whose head has been read. Returns < 0 to end the connection. */
static int
backend_serve(struct backend *b)
{
	const struct backend_endpoint *ep = NULL;
	const char *path;
	size_t path_len, plen, i;
	int r;

	b->keep_alive = b->req.keep_alive && !b->http.closing;
	b->status = 0;
	b->sent = 0;
	b->head_len = 0;

	backend_path(b->req.target, &path, &path_len);
	for (i = 0; b->test_endpoints && i < sizeof(backend_endpoints) /
	    sizeof(backend_endpoints[0]); i++) {
		plen = strlen(backend_endpoints[i].path);
		if (backend_endpoints[i].match == BACKEND_EXACT ? path_len == plen :
		    path_len >= plen) {
			if (strncmp(path, backend_endpoints[i].path, plen) == 0) {
				ep = &backend_endpoints[i];
				break;
			}
		}
	}

	if ((r = backend_read_body(b, ep != NULL && ep->digest)) < 0) {
		if (r != -EPROTO)
			(void)http_error(&b->conn, 500, "cannot digest the body");
		b->status = r == -EPROTO ? b->status : 500;
		backend_log(b);
		return r;
	}
	if (ep != NULL)
		r = ep->serve(b, path + strlen(ep->path), path_len - strlen(ep->path));
	else
		r = backend_default(b, path, path_len);
	backend_log(b);
	if (r < 0)
		return r;
	return b->keep_alive ? 0 : -ECONNRESET;
}

/*
 * After our last response, stop writing and read until the client closes
 * (briefly): closing with unread bytes would reset the connection and could
 * destroy that response before the client read it.
 */
static void
backend_linger(struct backend *b)
{
	int64_t deadline = conn_now_usec() + BACKEND_LINGER_MS * 1000LL;

	conn_shutdown(&b->conn);
	do
		b->conn.off = b->conn.len;
	while (conn_fill(&b->conn, deadline) > 0);
}

int
main(int argc, char *argv[])
{
	static const struct option longopts[] = {
		{ "test-endpoints", no_argument, NULL, 't' },
		{ "help",           no_argument, NULL, 'h' },
		{ "version",        no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 }
	};
	static struct backend backend;
	struct backend *b = &backend;
	const char *why = NULL;
	int ch, r;

	while ((ch = getopt_long(argc, argv, "hV", longopts, NULL)) != -1) {
		switch (ch) {
		case 't':
			b->test_endpoints = true;
			break;
		case 'h':
			backend_usage(stdout);
			return 0;
		case 'V':
			printf(BACKEND_NAME " " GFPROXY_VERSION "\n");
			return 0;
		default:
			backend_usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind != argc) {
		fprintf(stderr, BACKEND_NAME ": unexpected argument: %s\n", argv[optind]);
		backend_usage(stderr);
		return EXIT_USAGE;
	}

	journal_init(BACKEND_NAME);
	if ((r = conn_open(&b->conn, &why)) != 0) {
		journal_log(LOG_ERR, NULL, 0, "%s", why);
		return r;
	}
	if ((b->md = EVP_MD_CTX_new()) == NULL) {
		journal_log(LOG_ERR, NULL, 0, "cannot allocate a digest context");
		return EXIT_OSERR;
	}
	/*
	 * Every write is a whole response or a piece a client is waiting for
	 * (an event, a chunk, the last chunk): none should wait for an ACK.
	 * Not a TCP socket (inetd over AF_UNIX): nothing to do.
	 */
	(void)setsockopt(b->conn.fd, IPPROTO_TCP, TCP_NODELAY, &(int){ 1 }, sizeof(int));
	backend_pattern_init(b);
	http_server_init(&b->http, &b->conn, HTTP_MAX_BODY_DEFAULT);

	for (;;) {
		r = http_read_head(&b->http, &b->req);
		if (r == 0)
			break;
		if (r < 0) {
			journal_log(LOG_INFO, NULL, 0, "%s:%s %d %s: %s", b->conn.peer_addr,
			    b->conn.peer_port, b->http.status, http_reason(b->http.status),
			    b->http.why != NULL ? b->http.why : "");
			(void)http_error(&b->conn, b->http.status, b->http.why);
			break;
		}
		if (backend_serve(b) < 0)
			break;
	}
	backend_linger(b);
	EVP_MD_CTX_free(b->md);
	return 0;
}
