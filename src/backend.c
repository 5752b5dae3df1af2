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
 * Request bodies are read before the endpoint runs (and so kept in step with
 * pipelining) but never held whole: they stream through one buffer, into a
 * digest when the endpoint reports one. The two endpoints that must decide
 * before the body, /continue and /ws, read it themselves or refuse it.
 *
 * /ws switches the connection to WebSocket (RFC 6455) for good: once it has
 * answered 101, no HTTP request is read again.
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

#include <nettle/base64.h>
#include <nettle/sha1.h>
#include <nettle/sha2.h>

#include "conn.h"
#include "http.h"
#include "journal.h"
#include "sandbox.h"
#ifdef GFPROXY_ESCAPE_PROBE
#include "escape.h"
#endif

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
#define BACKEND_MAX_HEAD        512           /* bytes of a response head */
#define BACKEND_SMALL_BODY      128           /* bytes of a fixed or formatted body */
#define BACKEND_EARLY_HINTS_MS  100           /* /early-hints: from the 103 to the 200 */
/* WebSocket (RFC 6455) limits. */
#define BACKEND_WS_MAX_FRAME    ((uint64_t)16 << 20)  /* 16 MiB of payload; 1009 beyond */
#define BACKEND_WS_MAX_CONTROL  125           /* bytes of a control frame's payload */
#define BACKEND_WS_MAX_HEADER   14            /* bytes of a frame header, mask included */
#define BACKEND_WS_TIMEOUT_MS   HTTP_IDLE_TIMEOUT_MS  /* longest silence from the client */
/* Every string of a request lives in its arena; the echo adds a prefix per line. */
#define BACKEND_ECHO_MAX        (sizeof(((struct http_request *)0)->arena) + \
                                 (HTTP_MAX_HEADERS + HTTP_MAX_TRAILERS) * \
                                 sizeof("trailer: : \n") + 512)

#define BACKEND_TYPE_TEXT       "text/plain; charset=utf-8"
#define BACKEND_TYPE_SSE        "text/event-stream"
#define BACKEND_BODY_USER       "user info from server backend"
#define BACKEND_BODY_DEFAULT    "response from server backend"
#define BACKEND_BODY_TRAILERS   "hello"
#define BACKEND_BODY_HINTS      "early hints sent"
#define BACKEND_BODY_COOKIES    "cookies"

#define BACKEND_TRAILER_FIELDS  "X-Checksum, X-Trailer-Two"
#define BACKEND_TRAILER_MD5     "5d41402abc4b2a76b9719d911017c592"  /* of the body */
#define BACKEND_TRAILERS        "X-Checksum: " BACKEND_TRAILER_MD5 "\r\n" \
                                "X-Trailer-Two: 2\r\n"
#define BACKEND_HINTS_LINK      "</style.css>; rel=preload"
#define BACKEND_COOKIE_FIELDS   "Set-Cookie: a=1\r\n" \
                                "Set-Cookie: b=2\r\n" \
                                "Set-Cookie: c=3\r\n" \
                                "X-Order: 1\r\n" \
                                "X-Order: 2\r\n"

/* RFC 6455 1.3: appended to Sec-WebSocket-Key before hashing it for Sec-WebSocket-Accept. */
#define BACKEND_WS_GUID         "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#define BACKEND_WS_KEY_LEN      24            /* base64 of the 16-byte nonce */

/* RFC 6455 5.2 and 7.4.1 */
enum backend_ws_opcode {
	BACKEND_WS_CONTINUATION = 0x0,
	BACKEND_WS_TEXT         = 0x1,
	BACKEND_WS_BINARY       = 0x2,
	BACKEND_WS_CLOSE        = 0x8,
	BACKEND_WS_PING         = 0x9,
	BACKEND_WS_PONG         = 0xa,
};

enum backend_ws_status {
	BACKEND_WS_NORMAL       = 1000,
	BACKEND_WS_GOING_AWAY   = 1001,
	BACKEND_WS_PROTOCOL     = 1002,
	BACKEND_WS_INVALID_DATA = 1007,
	BACKEND_WS_TOO_BIG      = 1009,
	BACKEND_WS_INTERNAL     = 1011,
};

/* One connection's state; there is only ever one per process. */
struct backend {
	struct conn          conn;
	struct http_server   http;
	struct http_request  req;
	bool                 test_endpoints;
	const char          *confinement;   /* the SANDBOX field of every entry */
	int64_t              start_usec;    /* when the request's head was read */
	/* The response being sent. */
	bool                 keep_alive;
	bool                 chunked;       /* chunked framing, else length or close */
	bool                 no_body;       /* HEAD, 204, 304: head only */
	int                  status;
	const char          *fields;        /* more header lines, each ending in CRLF, or NULL */
	uint64_t             sent;          /* body bytes written, for the log */
	char                 head[BACKEND_MAX_HEAD];
	size_t               head_len;      /* not yet written: goes with the body */
	/* The request body, as read. */
	uint64_t             body_len;
	char                 body_sha256[2 * SHA256_DIGEST_SIZE + 1];
	char                 buf[BACKEND_IO_CHUNK];
	char                 echo[BACKEND_ECHO_MAX];
	/* Any window of up to BACKEND_IO_CHUNK bytes of the pattern, at any phase. */
	bool                 pattern_ready;
	unsigned char        pattern[BACKEND_IO_CHUNK + BACKEND_PATTERN_PERIOD];
};

enum backend_match {
	BACKEND_EXACT,          /* the path and nothing else */
	BACKEND_ARG,            /* the prefix, then one argument */
};

enum backend_body {
	BACKEND_READ,           /* read before the handler runs */
	BACKEND_DIGEST,         /* read and hashed before the handler runs */
	BACKEND_OWN,            /* the handler reads it, refuses it, or takes the connection */
};

struct backend_endpoint {
	const char          *path;
	enum backend_match   match;
	enum backend_body    body;
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
static int backend_ws(struct backend *, const char *, size_t);
static int backend_trailers(struct backend *, const char *, size_t);
static int backend_early_hints(struct backend *, const char *, size_t);
static int backend_cookies(struct backend *, const char *, size_t);
static int backend_continue(struct backend *, const char *, size_t);

static const struct backend_endpoint backend_endpoints[] = {
	{ "/echo",        BACKEND_EXACT, BACKEND_DIGEST, backend_echo },
	{ "/bytes/",      BACKEND_ARG,   BACKEND_READ,   backend_bytes },
	{ "/stream/",     BACKEND_ARG,   BACKEND_READ,   backend_stream },
	{ "/status/",     BACKEND_ARG,   BACKEND_READ,   backend_status },
	{ "/delay/",      BACKEND_ARG,   BACKEND_READ,   backend_delay },
	{ "/sse",         BACKEND_EXACT, BACKEND_READ,   backend_sse },
	{ "/upload",      BACKEND_EXACT, BACKEND_DIGEST, backend_upload },
	{ "/close",       BACKEND_EXACT, BACKEND_READ,   backend_close },
	{ "/ws",          BACKEND_EXACT, BACKEND_OWN,    backend_ws },
	{ "/trailers",    BACKEND_EXACT, BACKEND_READ,   backend_trailers },
	{ "/early-hints", BACKEND_EXACT, BACKEND_READ,   backend_early_hints },
	{ "/cookies",     BACKEND_EXACT, BACKEND_READ,   backend_cookies },
	{ "/continue",    BACKEND_EXACT, BACKEND_OWN,    backend_continue },
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
	    "                  one every %d ms, the first that long after the head\n"
	    "    /upload       \"length: N\\nsha256: HEX\\n\" of the decoded request body\n"
	    "    /close        announces %d body bytes, sends %d, then closes\n"
	    "    /ws           a WebSocket (RFC 6455, version 13) echo server: each text or\n"
	    "                  binary frame comes back unmasked with the same opcode and FIN\n"
	    "                  bit, ping is answered pong, close is echoed and ends the\n"
	    "                  connection, as does the client's EOF once everything before it\n"
	    "                  is echoed; payloads up to %d MiB a frame (1009 beyond), 1002\n"
	    "                  on a protocol error, 1007 on a text message not UTF-8, %d s\n"
	    "                  of silence ends it (1001). Without Upgrade: 426; a bad\n"
	    "                  handshake (not GET over HTTP/1.1, no \"Connection: upgrade\",\n"
	    "                  Upgrade without websocket, version other than 13, a key that\n"
	    "                  is not base64 of 16 bytes, a body): 400 and close\n"
	    "    /trailers     chunked \"" BACKEND_BODY_TRAILERS "\", announced with \"Trailer:\n"
	    "                  " BACKEND_TRAILER_FIELDS "\", then the trailers \"X-Checksum:\n"
	    "                  " BACKEND_TRAILER_MD5 "\" (MD5 of the body) and\n"
	    "                  \"X-Trailer-Two: 2\"; to HTTP/1.0 the body alone, until close\n"
	    "    /early-hints  \"103 Early Hints\" with \"Link: " BACKEND_HINTS_LINK "\"\n"
	    "                  (not to HTTP/1.0), %d ms later 200 \"" BACKEND_BODY_HINTS "\"\n"
	    "    /cookies      200 \"" BACKEND_BODY_COOKIES "\" with the fields \"Set-Cookie: a=1\",\n"
	    "                  \"Set-Cookie: b=2\", \"Set-Cookie: c=3\", \"X-Order: 1\" and\n"
	    "                  \"X-Order: 2\", in that order and each on its own line\n"
	    "    /continue     as /upload, after \"100 Continue\" if the request expects it\n"
	    "    /continue?reject\n"
	    "                  403 at once, without reading the body or sending 100\n"
	    "                  Continue, then closes\n"
	    "                  N up to 2^50; a malformed N, CODE or MS is answered 400, and\n"
	    "                  any other path gets the default answers\n"
	    "  -h, --help          show this help\n"
	    "  -V, --version       show the version\n"
	    "\n"
	    "Exit status: 0 after serving, %d bad usage, %d no connected stream socket on\n"
	    "fd 3 or stdin, %d a system call failed before serving.\n",
	    BACKEND_MAX_DELAY_MS, BACKEND_SSE_EVENTS, BACKEND_SSE_INTERVAL_MS,
	    BACKEND_CLOSE_PROMISED, BACKEND_CLOSE_SENT, (int)(BACKEND_WS_MAX_FRAME >> 20),
	    BACKEND_WS_TIMEOUT_MS / 1000, BACKEND_EARLY_HINTS_MS, EXIT_USAGE, EXIT_NOCONN,
	    EXIT_OSERR);
}

/* The deterministic body of /bytes and /stream: byte i is (i * 31 + 7) & 0xff. */
static void
backend_pattern_init(struct backend *b)
{
	size_t i;

	for (i = 0; i < sizeof(b->pattern); i++)
		b->pattern[i] = (unsigned char)((i * 31 + 7) & 0xff);
}

/*
 * The pattern from byte offset off on, valid for BACKEND_IO_CHUNK bytes;
 * made on first use, as most connections never need it.
 */
static const unsigned char *
backend_pattern_at(struct backend *b, uint64_t off)
{
	if (!b->pattern_ready) {
		backend_pattern_init(b);
		b->pattern_ready = true;
	}
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
	    "%s%s"
	    "\r\n", status, http_reason(status), date,
	    type != NULL ? "Content-Type: " : "", type != NULL ? type : "",
	    type != NULL ? "\r\n" : "", framing, connection,
	    b->fields != NULL ? b->fields : "");
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

/* End the body; trailers, CRLF-terminated lines, go only where the framing has room. */
static int
backend_body_end_trailers(struct backend *b, const char *trailers)
{
	struct iovec iov[3] = {
		{ "0\r\n", 3 },
		{ (void *)trailers, strlen(trailers) },
		{ "\r\n", 2 },
	};
	int r;

	if ((r = backend_flush(b)) < 0)
		return r;
	if (!b->chunked)
		return 0;
	return conn_writev(&b->conn, iov, 3);
}

static int
backend_body_end(struct backend *b)
{
	return backend_body_end_trailers(b, "");
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

	/* The head goes at once, alone: a proxy must not hold it for the body. */
	if ((r = backend_head(b, 200, BACKEND_TYPE_SSE, -1)) < 0 || (r = backend_flush(b)) < 0)
		return r;
	for (i = 1; i <= BACKEND_SSE_EVENTS && !b->no_body; i++) {
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

static int
backend_echo(struct backend *b, const char *arg, size_t arg_len)
{
	const struct http_request *req = &b->req;
	size_t i, len = 0;
	int r;

	/* Lengths, not %s, for the strings: a value may hold any byte llhttp let by. */
	r = http_appendf(b->echo, sizeof(b->echo), &len,
	    "method: %s\ntarget: %.*s\nversion: HTTP/%d.%d\n",
	    req->method, (int)req->target_len, req->target, req->version / 10,
	    req->version % 10);
	for (i = 0; r == 0 && i < req->nheaders; i++)
		r = http_appendf(b->echo, sizeof(b->echo), &len, "header: %.*s: %.*s\n",
		    (int)req->headers[i].name_len, req->headers[i].name,
		    (int)req->headers[i].value_len, req->headers[i].value);
	for (i = 0; r == 0 && i < req->ntrailers; i++)
		r = http_appendf(b->echo, sizeof(b->echo), &len, "trailer: %.*s: %.*s\n",
		    (int)req->trailers[i].name_len, req->trailers[i].name,
		    (int)req->trailers[i].value_len, req->trailers[i].value);
	if (r == 0)
		r = http_appendf(b->echo, sizeof(b->echo), &len,
		    "body-length: %" PRIu64 "\nbody-sha256: %s\n", b->body_len, b->body_sha256);
	if (r < 0) {
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

/* Answer a request whose body could not be read; the connection must close. */
static int
backend_read_body_fail(struct backend *b, int status, const char *why)
{
	b->status = status;
	b->keep_alive = false;
	(void)http_error(&b->conn, status, why);
	return -EPROTO;
}

/*
 * Read the whole request body, hashing it when asked; a 100 Continue the
 * request expects goes out first (http_read_body). On failure the request
 * has been answered with its own status and the connection must close.
 */
static int
backend_read_body(struct backend *b, bool digest)
{
	static const char hex[] = "0123456789abcdef";
	struct sha256_ctx ctx;
	uint8_t md[SHA256_DIGEST_SIZE];
	unsigned int i;
	ssize_t n;

	b->body_len = 0;
	b->body_sha256[0] = '\0';
	sha256_init(&ctx);
	while ((n = http_read_body(&b->http, b->buf, sizeof(b->buf))) > 0) {
		b->body_len += (uint64_t)n;
		if (digest)
			sha256_update(&ctx, (size_t)n, (const uint8_t *)b->buf);
	}
	if (n < 0)
		return backend_read_body_fail(b, b->http.status, b->http.why);
	if (digest) {
		sha256_digest(&ctx, sizeof(md), md);
		for (i = 0; i < sizeof(md); i++) {
			b->body_sha256[2 * i] = hex[md[i] >> 4];
			b->body_sha256[2 * i + 1] = hex[md[i] & 0xf];
		}
		b->body_sha256[2 * sizeof(md)] = '\0';
	}
	return 0;
}

static int
backend_trailers(struct backend *b, const char *arg, size_t arg_len)
{
	int r;

	/* HTTP/1.0 has no chunked coding, so no trailers to announce. */
	if (b->req.version >= 11)
		b->fields = "Trailer: " BACKEND_TRAILER_FIELDS "\r\n";
	if ((r = backend_head(b, 200, BACKEND_TYPE_TEXT, -1)) < 0 ||
	    (r = backend_body(b, BACKEND_BODY_TRAILERS, sizeof(BACKEND_BODY_TRAILERS) - 1)) < 0)
		return r;
	return backend_body_end_trailers(b, BACKEND_TRAILERS);
}

static int
backend_early_hints(struct backend *b, const char *arg, size_t arg_len)
{
	static const char hints[] = "HTTP/1.1 103 Early Hints\r\n"
	    "Link: " BACKEND_HINTS_LINK "\r\n"
	    "\r\n";
	int r;

	/* RFC 9110 15.2: no 1xx to an HTTP/1.0 client. */
	if (b->req.version >= 11) {
		if ((r = conn_write(&b->conn, hints, sizeof(hints) - 1)) < 0)
			return r;
		backend_sleep_ms(BACKEND_EARLY_HINTS_MS);
	}
	return backend_reply(b, 200, BACKEND_TYPE_TEXT, BACKEND_BODY_HINTS,
	    sizeof(BACKEND_BODY_HINTS) - 1);
}

static int
backend_cookies(struct backend *b, const char *arg, size_t arg_len)
{
	b->fields = BACKEND_COOKIE_FIELDS;
	return backend_reply(b, 200, BACKEND_TYPE_TEXT, BACKEND_BODY_COOKIES,
	    sizeof(BACKEND_BODY_COOKIES) - 1);
}

/* The query of a target, without its '?', up to any fragment; empty if none. */
static void
backend_query(const char *target, const char **ret_query, size_t *ret_len)
{
	const char *q = target + strcspn(target, "?#");

	if (*q != '?') {
		*ret_query = "";
		*ret_len = 0;
		return;
	}
	*ret_query = q + 1;
	*ret_len = strcspn(q + 1, "#");
}

static int
backend_continue(struct backend *b, const char *arg, size_t arg_len)
{
	const char *query;
	size_t query_len;
	int r;

	backend_query(b->req.target, &query, &query_len);
	if (query_len == strlen("reject") && memcmp(query, "reject", query_len) == 0) {
		/*
		 * Refuse the upload before its body: no 100 Continue, and with
		 * the body unread the connection cannot carry another request.
		 */
		b->keep_alive = false;
		return backend_replyf(b, 403, "upload refused\n");
	}
	/* Sends the 100 Continue the request expects before reading. */
	if ((r = backend_read_body(b, true)) < 0)
		return r;
	return backend_upload(b, arg, arg_len);
}

/*
 * WebSocket (RFC 6455). After the 101 the connection carries frames both
 * ways until a close frame, a protocol error, the client's EOF or silence.
 * Each data frame is echoed as one frame, with the opcode and FIN bit it
 * came with, so a fragmented message comes back fragmented the same way and
 * nothing larger than one frame is ever held.
 */
struct backend_ws {
	unsigned char       *data;          /* payload of the current frame */
	size_t               size;          /* bytes allocated at data */
	int                  message;       /* opcode of the unfinished message, or -1 */
	/* UTF-8 validation of a text message, carried across its frames. */
	unsigned int         utf8_need;     /* continuation bytes still to come */
	unsigned char        utf8_lo;       /* range of the next continuation byte */
	unsigned char        utf8_hi;
	/* Why the session ends with a close frame of our own. */
	int                  fail_code;
	const char          *fail_why;
};

struct backend_ws_frame {
	bool                 fin;
	int                  opcode;
	uint64_t             len;
};

static int
backend_ws_fail(struct backend_ws *ws, int code, const char *why)
{
	ws->fail_code = code;
	ws->fail_why = why;
	return -EPROTO;
}

/* Feed bytes to the UTF-8 validator (RFC 3629: no overlongs, surrogates or > U+10FFFF). */
static bool
backend_ws_utf8(struct backend_ws *ws, const unsigned char *p, uint64_t len)
{
	uint64_t i;
	unsigned char ch;

	for (i = 0; i < len; i++) {
		ch = p[i];
		if (ws->utf8_need > 0) {
			if (ch < ws->utf8_lo || ch > ws->utf8_hi)
				return false;
			ws->utf8_need--;
			ws->utf8_lo = 0x80;
			ws->utf8_hi = 0xbf;
			continue;
		}
		ws->utf8_lo = 0x80;
		ws->utf8_hi = 0xbf;
		if (ch < 0x80)
			continue;
		else if (ch >= 0xc2 && ch <= 0xdf)
			ws->utf8_need = 1;
		else if (ch >= 0xe0 && ch <= 0xef) {
			ws->utf8_need = 2;
			if (ch == 0xe0)
				ws->utf8_lo = 0xa0;     /* overlong */
			else if (ch == 0xed)
				ws->utf8_hi = 0x9f;     /* surrogates */
		} else if (ch >= 0xf0 && ch <= 0xf4) {
			ws->utf8_need = 3;
			if (ch == 0xf0)
				ws->utf8_lo = 0x90;     /* overlong */
			else if (ch == 0xf4)
				ws->utf8_hi = 0x8f;     /* beyond U+10FFFF */
		} else
			return false;
	}
	return true;
}

/* Wait until n bytes of the stream are buffered; -ENODATA at the client's EOF. */
static int
backend_ws_need(struct backend *b, size_t n)
{
	ssize_t r;

	while (conn_pending(&b->conn) < n) {
		r = conn_fill(&b->conn, conn_now_usec() + BACKEND_WS_TIMEOUT_MS * 1000LL);
		if (r == 0)
			return -ENODATA;
		if (r < 0)
			return (int)r;
	}
	return 0;
}

/*
 * Read one frame: header, then its payload unmasked into ws->data. Returns 0,
 * -ENODATA at EOF, -EPROTO with ws->fail_* set, or another negative errno.
 */
static int
backend_ws_read_frame(struct backend *b, struct backend_ws *ws, struct backend_ws_frame *f)
{
	struct conn *c = &b->conn;
	const unsigned char *h;
	unsigned char mask[4], *p;
	size_t hlen, n;
	uint64_t i, left;
	int r;

	if ((r = backend_ws_need(b, 2)) < 0)
		return r;
	h = (const unsigned char *)c->buf + c->off;
	if (!(h[1] & 0x80))
		return backend_ws_fail(ws, BACKEND_WS_PROTOCOL, "unmasked client frame");
	hlen = 2 + ((h[1] & 0x7f) == 126 ? 2 : (h[1] & 0x7f) == 127 ? 8 : 0) + sizeof(mask);
	if ((r = backend_ws_need(b, hlen)) < 0)
		return r;
	h = (const unsigned char *)c->buf + c->off;     /* conn_fill may move the bytes */

	f->fin = (h[0] & 0x80) != 0;
	f->opcode = h[0] & 0x0f;
	if (h[0] & 0x70)
		return backend_ws_fail(ws, BACKEND_WS_PROTOCOL, "reserved bit set");
	switch (f->opcode) {
	case BACKEND_WS_CONTINUATION:
	case BACKEND_WS_TEXT:
	case BACKEND_WS_BINARY:
	case BACKEND_WS_CLOSE:
	case BACKEND_WS_PING:
	case BACKEND_WS_PONG:
		break;
	default:
		return backend_ws_fail(ws, BACKEND_WS_PROTOCOL, "unknown opcode");
	}
	f->len = h[1] & 0x7f;
	if (f->len == 126) {
		f->len = (uint64_t)h[2] << 8 | h[3];
		if (f->len < 126)
			return backend_ws_fail(ws, BACKEND_WS_PROTOCOL, "length not minimally encoded");
	} else if (f->len == 127) {
		for (f->len = 0, n = 2; n < 10; n++)
			f->len = f->len << 8 | h[n];
		if (f->len >> 63)
			return backend_ws_fail(ws, BACKEND_WS_PROTOCOL, "length with its top bit set");
		if (f->len <= 0xffff)
			return backend_ws_fail(ws, BACKEND_WS_PROTOCOL, "length not minimally encoded");
	}
	if (f->opcode >= BACKEND_WS_CLOSE && (!f->fin || f->len > BACKEND_WS_MAX_CONTROL))
		return backend_ws_fail(ws, BACKEND_WS_PROTOCOL, "fragmented or long control frame");
	if (f->len > BACKEND_WS_MAX_FRAME)
		return backend_ws_fail(ws, BACKEND_WS_TOO_BIG, "frame too large");
	memcpy(mask, h + hlen - sizeof(mask), sizeof(mask));
	c->off += hlen;

	if (f->len > ws->size) {
		n = f->len > BACKEND_IO_CHUNK ? (size_t)f->len : BACKEND_IO_CHUNK;
		if ((p = realloc(ws->data, n)) == NULL)
			return backend_ws_fail(ws, BACKEND_WS_INTERNAL, "out of memory");
		ws->data = p;
		ws->size = n;
	}
	/* Bytes already buffered with the handshake or the last frame come first. */
	for (p = ws->data, left = f->len; left > 0; p += n, left -= n) {
		if (conn_pending(c) == 0 && (r = backend_ws_need(b, 1)) < 0)
			return r;
		n = conn_pending(c) < left ? conn_pending(c) : (size_t)left;
		memcpy(p, c->buf + c->off, n);
		c->off += n;
	}
	for (i = 0; i < f->len; i++)
		ws->data[i] ^= mask[i & 3];
	return 0;
}

/* Send one unmasked frame (servers never mask, RFC 6455 5.1). */
static int
backend_ws_send(struct backend *b, bool fin, int opcode, const void *data, uint64_t len)
{
	unsigned char h[10];
	struct iovec iov[2];
	size_t hlen, i;

	h[0] = (unsigned char)((fin ? 0x80 : 0) | opcode);
	if (len < 126) {
		h[1] = (unsigned char)len;
		hlen = 2;
	} else if (len <= 0xffff) {
		h[1] = 126;
		h[2] = (unsigned char)(len >> 8);
		h[3] = (unsigned char)len;
		hlen = 4;
	} else {
		h[1] = 127;
		for (i = 0; i < 8; i++)
			h[2 + i] = (unsigned char)(len >> (56 - 8 * i));
		hlen = 10;
	}
	iov[0] = (struct iovec){ h, hlen };
	iov[1] = (struct iovec){ (void *)data, (size_t)len };
	return conn_writev(&b->conn, iov, len > 0 ? 2 : 1);
}

static int
backend_ws_send_close(struct backend *b, int code, const char *why)
{
	unsigned char payload[BACKEND_WS_MAX_CONTROL];
	size_t len = strlen(why);

	if (len > sizeof(payload) - 2)
		len = sizeof(payload) - 2;
	payload[0] = (unsigned char)(code >> 8);
	payload[1] = (unsigned char)code;
	memcpy(payload + 2, why, len);
	return backend_ws_send(b, true, BACKEND_WS_CLOSE, payload, 2 + len);
}

/* RFC 6455 7.4: the codes a close frame may carry on the wire. */
static bool
backend_ws_close_code_ok(unsigned int code)
{
	return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
	    (code >= 3000 && code <= 4999);
}

/* Check a data frame against the message it belongs to. 0, or -EPROTO. */
static int
backend_ws_check_data(struct backend_ws *ws, const struct backend_ws_frame *f)
{
	if (f->opcode == BACKEND_WS_CONTINUATION && ws->message < 0)
		return backend_ws_fail(ws, BACKEND_WS_PROTOCOL, "continuation outside a message");
	if (f->opcode != BACKEND_WS_CONTINUATION && ws->message >= 0)
		return backend_ws_fail(ws, BACKEND_WS_PROTOCOL, "new message inside a fragmented one");
	if (f->opcode != BACKEND_WS_CONTINUATION) {
		ws->message = f->opcode;
		ws->utf8_need = 0;
	}
	if (ws->message == BACKEND_WS_TEXT && (!backend_ws_utf8(ws, ws->data, f->len) ||
	    (f->fin && ws->utf8_need > 0)))
		return backend_ws_fail(ws, BACKEND_WS_INVALID_DATA, "text message not UTF-8");
	if (f->fin)
		ws->message = -1;
	return 0;
}

/*
 * Check a close frame's payload: empty, or a code and a UTF-8 reason. Returns
 * 0 if it can be echoed, or -EPROTO.
 */
static int
backend_ws_check_close(struct backend_ws *ws, const struct backend_ws_frame *f)
{
	struct backend_ws reason = { .message = -1 };

	if (f->len == 0)
		return 0;
	if (f->len == 1 || !backend_ws_close_code_ok((unsigned int)ws->data[0] << 8 | ws->data[1]))
		return backend_ws_fail(ws, BACKEND_WS_PROTOCOL, "invalid close code");
	if (!backend_ws_utf8(&reason, ws->data + 2, f->len - 2) || reason.utf8_need > 0)
		return backend_ws_fail(ws, BACKEND_WS_INVALID_DATA, "close reason not UTF-8");
	return 0;
}

/* Echo frames until the session ends. Returns 0, or a negative errno. */
static int
backend_ws_session(struct backend *b)
{
	struct backend_ws ws = { .message = -1 };
	struct backend_ws_frame f;
	int r;

	for (;;) {
		if ((r = backend_ws_read_frame(b, &ws, &f)) < 0)
			break;
		if (f.opcode == BACKEND_WS_CLOSE) {
			if ((r = backend_ws_check_close(&ws, &f)) < 0)
				break;
			/* Echo the code and reason, then close first, as a server should. */
			r = backend_ws_send(b, true, BACKEND_WS_CLOSE, ws.data, f.len);
			break;
		} else if (f.opcode == BACKEND_WS_PING) {
			if ((r = backend_ws_send(b, true, BACKEND_WS_PONG, ws.data, f.len)) < 0)
				break;
		} else if (f.opcode != BACKEND_WS_PONG) {
			if ((r = backend_ws_check_data(&ws, &f)) < 0)
				break;
			b->body_len += f.len;
			if ((r = backend_ws_send(b, f.fin, f.opcode, ws.data, f.len)) < 0)
				break;
			b->sent += f.len;
		}
	}
	free(ws.data);

	/* At EOF everything received has been echoed: a half-close just ends it. */
	if (r == -ENODATA)
		return 0;
	if (r == -ETIMEDOUT)
		backend_ws_fail(&ws, BACKEND_WS_GOING_AWAY, "idle timeout");
	if (ws.fail_code != 0) {
		journal_log(LOG_INFO, NULL, 0, "%s:%s WebSocket closed with %d: %s",
		    b->conn.peer_addr, b->conn.peer_port, ws.fail_code, ws.fail_why);
		(void)backend_ws_send_close(b, ws.fail_code, ws.fail_why);
		return 0;
	}
	return r;
}

/* Why a request with Upgrade is not a valid opening handshake, or NULL. */
static const char *
backend_ws_check_handshake(const struct http_request *req, const char **ret_key)
{
	static const char b64[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	const struct http_header *hd;
	const char *key = NULL;
	size_t i, nkeys = 0, nversions = 0;
	bool upgrade = false, connection = false, version = false;

	if (strcmp(req->method, "GET") != 0)
		return "method is not GET";
	if (req->version < 11)
		return "not HTTP/1.1";
	if (req->has_body)
		return "handshake with a body";
	for (i = 0; i < req->nheaders; i++) {
		hd = &req->headers[i];
		if (http_name_eq(hd->name, hd->name_len, "Upgrade"))
			upgrade |= http_list_has(hd->value, hd->value_len, "websocket", 9);
		else if (http_name_eq(hd->name, hd->name_len, "Connection"))
			connection |= http_list_has(hd->value, hd->value_len, "upgrade", 7);
		else if (http_name_eq(hd->name, hd->name_len, "Sec-WebSocket-Version")) {
			nversions++;
			version = http_name_eq(hd->value, hd->value_len, "13");
		} else if (http_name_eq(hd->name, hd->name_len, "Sec-WebSocket-Key")) {
			nkeys++;
			key = hd->value;
			if (hd->value_len != BACKEND_WS_KEY_LEN)
				key = NULL;
		}
	}
	if (!upgrade)
		return "Upgrade does not name websocket";
	if (!connection)
		return "Connection does not hold upgrade";
	if (nversions != 1 || !version)
		return "Sec-WebSocket-Version is not 13";
	if (nkeys != 1 || key == NULL)
		return "Sec-WebSocket-Key is not base64 of 16 bytes";
	/* 16 bytes: 21 whole sextets, one with four zero bits, then "==". */
	for (i = 0; i < BACKEND_WS_KEY_LEN - 2; i++)
		if (key[i] == '\0' || strchr(b64, key[i]) == NULL)
			return "Sec-WebSocket-Key is not base64 of 16 bytes";
	if (strchr("AQgw", key[BACKEND_WS_KEY_LEN - 3]) == NULL ||
	    strcmp(key + BACKEND_WS_KEY_LEN - 2, "==") != 0)
		return "Sec-WebSocket-Key is not base64 of 16 bytes";
	*ret_key = key;
	return NULL;
}

static int
backend_ws(struct backend *b, const char *arg, size_t arg_len)
{
	char in[BACKEND_WS_KEY_LEN + sizeof(BACKEND_WS_GUID) - 1], date[32];
	struct sha1_ctx ctx;
	uint8_t md[SHA1_DIGEST_SIZE];
	char accept[BASE64_ENCODE_RAW_LENGTH(SHA1_DIGEST_SIZE) + 1];
	const char *key = NULL, *why;
	size_t i;
	int n, r;

	for (i = 0; i < b->req.nheaders; i++)
		if (http_name_eq(b->req.headers[i].name, b->req.headers[i].name_len, "Upgrade"))
			break;
	if (i == b->req.nheaders) {
		/* A body we did not read would be taken for the next request. */
		if (b->req.has_body)
			b->keep_alive = false;
		b->fields = "Upgrade: websocket\r\nConnection: Upgrade\r\n";
		return backend_replyf(b, 426, "this resource speaks WebSocket only\n");
	}
	if ((why = backend_ws_check_handshake(&b->req, &key)) != NULL) {
		/* Frames a client sent too early must not be read as HTTP. */
		b->keep_alive = false;
		b->fields = "Sec-WebSocket-Version: 13\r\n";
		return backend_replyf(b, 400, "bad WebSocket handshake: %s\n", why);
	}

	/* RFC 6455 4.2.2: base64 of the SHA-1 of the key and the GUID. */
	memcpy(in, key, BACKEND_WS_KEY_LEN);
	memcpy(in + BACKEND_WS_KEY_LEN, BACKEND_WS_GUID, sizeof(BACKEND_WS_GUID) - 1);
	sha1_init(&ctx);
	sha1_update(&ctx, sizeof(in), (const uint8_t *)in);
	sha1_digest(&ctx, sizeof(md), md);
	base64_encode_raw(accept, sizeof(md), md);
	accept[sizeof(accept) - 1] = '\0';

	/* From here on the connection is the WebSocket's: no HTTP request follows. */
	b->keep_alive = false;
	b->status = 101;
	http_date(date);
	n = snprintf(b->head, sizeof(b->head),
	    "HTTP/1.1 101 Switching Protocols\r\n"
	    "Date: %s\r\n"
	    "Upgrade: websocket\r\n"
	    "Connection: Upgrade\r\n"
	    "Sec-WebSocket-Accept: %s\r\n"
	    "\r\n", date, (const char *)accept);
	if (n < 0 || (size_t)n >= sizeof(b->head))
		return -ENOBUFS;
	if ((r = conn_write(&b->conn, b->head, (size_t)n)) < 0)
		return r;
	return backend_ws_session(b);
}

/* One entry per request, with the fields gfproxy-backend(8) lists. */
static void
backend_log(struct backend *b)
{
	char target[4 * HTTP_MAX_REQUEST_LINE + 1], status[8], sent[24], received[24], usec[24];
	struct journal_field fields[] = {
		{ "REMOTE_ADDR", b->conn.peer_addr },
		{ "REMOTE_PORT", b->conn.peer_port },
		{ "HTTP_METHOD", b->req.method },
		{ "HTTP_TARGET", target },
		{ "HTTP_STATUS", status },
		{ "BYTES_SENT", sent },
		{ "BYTES_RECEIVED", received },
		{ "DURATION_USEC", usec },
		{ "SANDBOX", b->confinement },
	};

	journal_escape(target, sizeof(target), b->req.target, b->req.target_len);
	snprintf(status, sizeof(status), "%d", b->status);
	snprintf(sent, sizeof(sent), "%" PRIu64, b->sent);
	snprintf(received, sizeof(received), "%" PRIu64, b->body_len);
	snprintf(usec, sizeof(usec), "%" PRId64, conn_now_usec() - b->start_usec);
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
	b->fields = NULL;
	b->sent = 0;
	b->head_len = 0;
	b->body_len = 0;
	b->body_sha256[0] = '\0';

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

	r = 0;
	if (ep == NULL || ep->body != BACKEND_OWN)
		r = backend_read_body(b, ep != NULL && ep->body == BACKEND_DIGEST);
	if (r == 0 && ep != NULL)
		r = ep->serve(b, path + strlen(ep->path), path_len - strlen(ep->path));
	else if (r == 0)
		r = backend_default(b, path, path_len);
	backend_log(b);
	if (r < 0)
		return r;
	return b->keep_alive ? 0 : -ECONNRESET;
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
	/*
	 * Every write is a whole response or a piece a client is waiting for
	 * (an event, a chunk, the last chunk): none should wait for an ACK.
	 * Not a TCP socket (inetd over AF_UNIX): nothing to do.
	 */
	(void)setsockopt(b->conn.fd, IPPROTO_TCP, TCP_NODELAY, &(int){ 1 }, sizeof(int));
	/*
	 * It answers from memory on the socket it was handed: no file to read,
	 * no socket of its own but the journal's, no TCP port to reach.
	 */
	if ((b->confinement = sandbox_enter(&(struct sandbox_policy){ .inet = false })) == NULL) {
		(void)http_error(&b->conn, 503, "cannot confine the process");
		conn_linger(&b->conn);
		return EXIT_OSERR;
	}
	http_server_init(&b->http, &b->conn, HTTP_MAX_BODY_DEFAULT);
#ifdef GFPROXY_ESCAPE_PROBE
	/* A test build (tests/system/escape.c): confined as above, then it tries to get out. */
	if (http_read_head(&b->http, &b->req) > 0)
		escape_probe(b->conn.fd, b->req.target);
	return 0;
#endif

	for (;;) {
		r = http_read_head(&b->http, &b->req);
		if (r == 0)
			break;
		b->start_usec = conn_now_usec();
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
	conn_linger(&b->conn);
	return 0;
}
