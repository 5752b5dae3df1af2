/*
 * peer.c - gfpeer, the test peer: a TEST TOOL, never built by `make all`
 * nor installed. The test suite runs it where it needs a backend it can
 * steer: it echoes what it received, sends bodies of any size in either
 * framing, answers any status, waits, streams events, sends trailers and
 * interim responses, speaks WebSocket, and breaks off a response on purpose.
 * Any other path gets the sample backend's answers, so a test can use it
 * wherever gfproxy-backend would do.
 *
 * It is gfproxy-backend with endpoints: the same connection handling,
 * confinement, response writer and log entries (src/origin.c), linked
 * from the same objects; only the endpoints are here.
 *
 * Request bodies are read before the endpoint runs (and so kept in step with
 * pipelining) but never held whole: they stream through one buffer, into a
 * digest when the endpoint reports one. The two endpoints that must decide
 * before the body, /continue and /ws, read it themselves or refuse it.
 *
 * /ws switches the connection to WebSocket (RFC 6455) for good: once it has
 * answered 101, no HTTP request is read again.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nettle/base64.h>
#include <nettle/sha1.h>
#include <nettle/sha2.h>

#include "journal.h"
#include "origin.h"

#define PEER_NAME            "gfpeer"

#define PEER_STREAM_CHUNK    (16 * 1024)   /* bytes per chunk of /stream */
#define PEER_PATTERN_PERIOD  256           /* the /bytes pattern repeats this often */
#define PEER_MAX_BYTES       ((uint64_t)1 << 50)  /* 1 PiB; /bytes and /stream */
#define PEER_MAX_DELAY_MS    600000        /* 10 min; longer /delay is cut to this */
#define PEER_SSE_EVENTS      10
#define PEER_SSE_INTERVAL_MS 100
#define PEER_CLOSE_PROMISED  1000          /* bytes /close announces */
#define PEER_CLOSE_SENT      100           /* bytes /close sends before closing */
#define PEER_EARLY_HINTS_MS  100           /* /early-hints: from the 103 to the 200 */
/* WebSocket (RFC 6455) limits. */
#define PEER_WS_MAX_FRAME    ((uint64_t)16 << 20)  /* 16 MiB of payload; 1009 beyond */
#define PEER_WS_MAX_CONTROL  125           /* bytes of a control frame's payload */
#define PEER_WS_TIMEOUT_MS   HTTP_IDLE_TIMEOUT_MS  /* longest silence from the client */
/* Every string of a request lives in its arena; the echo adds a prefix per line. */
#define PEER_ECHO_MAX        (sizeof(((struct http_request *)0)->arena) + \
                              (HTTP_MAX_HEADERS + HTTP_MAX_TRAILERS) * \
                              sizeof("trailer: : \n") + 512)

#define PEER_TYPE_SSE        "text/event-stream"
#define PEER_BODY_TRAILERS   "hello"
#define PEER_BODY_HINTS      "early hints sent"
#define PEER_BODY_COOKIES    "cookies"

#define PEER_TRAILER_FIELDS  "X-Checksum, X-Trailer-Two"
#define PEER_TRAILER_MD5     "5d41402abc4b2a76b9719d911017c592"  /* of the body */
#define PEER_TRAILERS        "X-Checksum: " PEER_TRAILER_MD5 "\r\n" \
                             "X-Trailer-Two: 2\r\n"
#define PEER_HINTS_LINK      "</style.css>; rel=preload"
#define PEER_COOKIE_FIELDS   "Set-Cookie: a=1\r\n" \
                             "Set-Cookie: b=2\r\n" \
                             "Set-Cookie: c=3\r\n" \
                             "X-Order: 1\r\n" \
                             "X-Order: 2\r\n"

/* RFC 6455 1.3: appended to Sec-WebSocket-Key before hashing it for Sec-WebSocket-Accept. */
#define PEER_WS_GUID         "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#define PEER_WS_KEY_LEN      24            /* base64 of the 16-byte nonce */

/* RFC 6455 5.2 and 7.4.1 */
enum peer_ws_opcode {
	PEER_WS_CONTINUATION = 0x0,
	PEER_WS_TEXT         = 0x1,
	PEER_WS_BINARY       = 0x2,
	PEER_WS_CLOSE        = 0x8,
	PEER_WS_PING         = 0x9,
	PEER_WS_PONG         = 0xa,
};

enum peer_ws_status {
	PEER_WS_NORMAL       = 1000,
	PEER_WS_GOING_AWAY   = 1001,
	PEER_WS_PROTOCOL     = 1002,
	PEER_WS_INVALID_DATA = 1007,
	PEER_WS_TOO_BIG      = 1009,
	PEER_WS_INTERNAL     = 1011,
};

/* The connection, and what the endpoints keep besides. */
struct peer {
	struct origin        o;             /* first: the handler is given &o */
	char                 body_sha256[2 * SHA256_DIGEST_SIZE + 1];  /* of the request body */
	char                 echo[PEER_ECHO_MAX];
	/* Any window of up to ORIGIN_IO_CHUNK bytes of the pattern, at any phase. */
	bool                 pattern_ready;
	unsigned char        pattern[ORIGIN_IO_CHUNK + PEER_PATTERN_PERIOD];
};

enum peer_match {
	PEER_EXACT,          /* the path and nothing else */
	PEER_ARG,            /* the prefix, then one argument */
};

enum peer_body {
	PEER_READ,           /* read before the handler runs */
	PEER_DIGEST,         /* read and hashed before the handler runs */
	PEER_OWN,            /* the handler reads it, refuses it, or takes the connection */
};

struct peer_endpoint {
	const char          *path;
	enum peer_match      match;
	enum peer_body       body;
	int                (*serve)(struct peer *, const char *arg, size_t arg_len);
};

static int peer_echo(struct peer *, const char *, size_t);
static int peer_bytes(struct peer *, const char *, size_t);
static int peer_stream(struct peer *, const char *, size_t);
static int peer_status(struct peer *, const char *, size_t);
static int peer_delay(struct peer *, const char *, size_t);
static int peer_sse(struct peer *, const char *, size_t);
static int peer_upload(struct peer *, const char *, size_t);
static int peer_close(struct peer *, const char *, size_t);
static int peer_ws(struct peer *, const char *, size_t);
static int peer_trailers(struct peer *, const char *, size_t);
static int peer_early_hints(struct peer *, const char *, size_t);
static int peer_cookies(struct peer *, const char *, size_t);
static int peer_continue(struct peer *, const char *, size_t);

static const struct peer_endpoint peer_endpoints[] = {
	{ "/echo",        PEER_EXACT, PEER_DIGEST, peer_echo },
	{ "/bytes/",      PEER_ARG,   PEER_READ,   peer_bytes },
	{ "/stream/",     PEER_ARG,   PEER_READ,   peer_stream },
	{ "/status/",     PEER_ARG,   PEER_READ,   peer_status },
	{ "/delay/",      PEER_ARG,   PEER_READ,   peer_delay },
	{ "/sse",         PEER_EXACT, PEER_READ,   peer_sse },
	{ "/upload",      PEER_EXACT, PEER_DIGEST, peer_upload },
	{ "/close",       PEER_EXACT, PEER_READ,   peer_close },
	{ "/ws",          PEER_EXACT, PEER_OWN,    peer_ws },
	{ "/trailers",    PEER_EXACT, PEER_READ,   peer_trailers },
	{ "/early-hints", PEER_EXACT, PEER_READ,   peer_early_hints },
	{ "/cookies",     PEER_EXACT, PEER_READ,   peer_cookies },
	{ "/continue",    PEER_EXACT, PEER_OWN,    peer_continue },
};

static void
peer_usage(FILE *f)
{
	fprintf(f,
	    "usage: " PEER_NAME "\n"
	    "       " PEER_NAME " -h | --help | -V | --version\n"
	    "\n"
	    "The test suite's HTTP/1.1 peer: a test tool, never installed. Started once per\n"
	    "connection like gfproxy-backend, it serves these endpoints, and any other path\n"
	    "as gfproxy-backend does (200 \"user info from server backend\" for /user/1,\n"
	    "200 \"response from server backend\" for anything else):\n"
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
	    "    /trailers     chunked \"" PEER_BODY_TRAILERS "\", announced with \"Trailer:\n"
	    "                  " PEER_TRAILER_FIELDS "\", then the trailers \"X-Checksum:\n"
	    "                  " PEER_TRAILER_MD5 "\" (MD5 of the body) and\n"
	    "                  \"X-Trailer-Two: 2\"; to HTTP/1.0 the body alone, until close\n"
	    "    /early-hints  \"103 Early Hints\" with \"Link: " PEER_HINTS_LINK "\"\n"
	    "                  (not to HTTP/1.0), %d ms later 200 \"" PEER_BODY_HINTS "\"\n"
	    "    /cookies      200 \"" PEER_BODY_COOKIES "\" with the fields \"Set-Cookie: a=1\",\n"
	    "                  \"Set-Cookie: b=2\", \"Set-Cookie: c=3\", \"X-Order: 1\" and\n"
	    "                  \"X-Order: 2\", in that order and each on its own line\n"
	    "    /continue     as /upload, after \"100 Continue\" if the request expects it\n"
	    "    /continue?reject\n"
	    "                  403 at once, without reading the body or sending 100\n"
	    "                  Continue, then closes\n"
	    "                  N up to 2^50; a malformed N, CODE or MS is answered 400\n"
	    "  -h, --help          show this help\n"
	    "  -V, --version       show the version\n"
	    "\n"
	    "Exit status: 0 after serving, %d bad usage, %d no connected stream socket on\n"
	    "fd 3 or stdin, %d a system call failed before serving.\n",
	    PEER_MAX_DELAY_MS, PEER_SSE_EVENTS, PEER_SSE_INTERVAL_MS,
	    PEER_CLOSE_PROMISED, PEER_CLOSE_SENT, (int)(PEER_WS_MAX_FRAME >> 20),
	    PEER_WS_TIMEOUT_MS / 1000, PEER_EARLY_HINTS_MS, EXIT_USAGE, EXIT_NOCONN,
	    EXIT_OSERR);
}

/* The deterministic body of /bytes and /stream: byte i is (i * 31 + 7) & 0xff. */
static void
peer_pattern_init(struct peer *b)
{
	size_t i;

	for (i = 0; i < sizeof(b->pattern); i++)
		b->pattern[i] = (unsigned char)((i * 31 + 7) & 0xff);
}

/*
 * The pattern from byte offset off on, valid for ORIGIN_IO_CHUNK bytes;
 * made on first use, as most connections never need it.
 */
static const unsigned char *
peer_pattern_at(struct peer *b, uint64_t off)
{
	if (!b->pattern_ready) {
		peer_pattern_init(b);
		b->pattern_ready = true;
	}
	return b->pattern + off % PEER_PATTERN_PERIOD;
}

static int
peer_parse_u64(const char *s, size_t len, uint64_t max, uint64_t *ret)
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
peer_sleep_ms(unsigned int ms)
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

/* Write length bytes of the pattern in pieces of at most piece bytes. */
static int
peer_send_pattern(struct peer *b, uint64_t length, size_t piece)
{
	uint64_t off;
	size_t len;
	int r;

	if (b->o.no_body)
		return 0;
	for (off = 0; off < length; off += len) {
		len = length - off < piece ? (size_t)(length - off) : piece;
		if ((r = origin_body(&b->o, peer_pattern_at(b, off), len)) < 0)
			return r;
	}
	return 0;
}

static int
peer_bytes(struct peer *b, const char *arg, size_t arg_len)
{
	uint64_t n;
	int r;

	if (peer_parse_u64(arg, arg_len, PEER_MAX_BYTES, &n) < 0)
		return origin_replyf(&b->o, 400, "invalid byte count\n");
	if ((r = origin_head(&b->o, 200, "application/octet-stream", (int64_t)n)) < 0)
		return r;
	if ((r = peer_send_pattern(b, n, ORIGIN_IO_CHUNK)) < 0)
		return r;
	return origin_flush(&b->o);
}

static int
peer_stream(struct peer *b, const char *arg, size_t arg_len)
{
	uint64_t n;
	size_t piece;
	int r;

	if (peer_parse_u64(arg, arg_len, PEER_MAX_BYTES, &n) < 0)
		return origin_replyf(&b->o, 400, "invalid byte count\n");
	/* Small bodies still come in two chunks, so a client must reassemble. */
	piece = n < 2 * PEER_STREAM_CHUNK ? (size_t)(n + 1) / 2 : PEER_STREAM_CHUNK;
	if ((r = origin_head(&b->o, 200, "application/octet-stream", -1)) < 0)
		return r;
	if (n > 0 && (r = peer_send_pattern(b, n, piece)) < 0)
		return r;
	return origin_end(&b->o, "");
}

static int
peer_status(struct peer *b, const char *arg, size_t arg_len)
{
	uint64_t code;

	/* No 1xx: an interim response is not a reply to end a request with. */
	if (peer_parse_u64(arg, arg_len, 599, &code) < 0 || code < 200)
		return origin_replyf(&b->o, 400, "invalid status code\n");
	return origin_replyf(&b->o, (int)code, "%d %s\n", (int)code, http_reason((int)code));
}

static int
peer_delay(struct peer *b, const char *arg, size_t arg_len)
{
	uint64_t ms;
	int r;

	r = peer_parse_u64(arg, arg_len, UINT64_MAX / 10, &ms);
	if (r == -ERANGE || (r == 0 && ms > PEER_MAX_DELAY_MS))
		ms = PEER_MAX_DELAY_MS;
	else if (r < 0)
		return origin_replyf(&b->o, 400, "invalid delay\n");
	peer_sleep_ms((unsigned int)ms);
	return origin_replyf(&b->o, 200, "delayed %" PRIu64 " ms\n", ms);
}

static int
peer_sse(struct peer *b, const char *arg, size_t arg_len)
{
	char event[32];
	int i, n, r;

	/* The head goes at once, alone: a proxy must not hold it for the body. */
	if ((r = origin_head(&b->o, 200, PEER_TYPE_SSE, -1)) < 0 || (r = origin_flush(&b->o)) < 0)
		return r;
	for (i = 1; i <= PEER_SSE_EVENTS && !b->o.no_body; i++) {
		peer_sleep_ms(PEER_SSE_INTERVAL_MS);
		n = snprintf(event, sizeof(event), "data: event %d\n\n", i);
		if ((r = origin_body(&b->o, event, (size_t)n)) < 0)
			return r;
	}
	return origin_end(&b->o, "");
}

static int
peer_upload(struct peer *b, const char *arg, size_t arg_len)
{
	return origin_replyf(&b->o, 200, "length: %" PRIu64 "\nsha256: %s\n", b->o.received,
	    b->body_sha256);
}

/* Promise more than we send, then go: the client must notice the truncation. */
static int
peer_close(struct peer *b, const char *arg, size_t arg_len)
{
	int r;

	b->o.keep_alive = false;
	if ((r = origin_head(&b->o, 200, "application/octet-stream", PEER_CLOSE_PROMISED)) < 0)
		return r;
	if ((r = peer_send_pattern(b, PEER_CLOSE_SENT, ORIGIN_IO_CHUNK)) < 0 ||
	    (r = origin_flush(&b->o)) < 0)
		return r;
	return -ECONNABORTED;
}

static int
peer_echo(struct peer *b, const char *arg, size_t arg_len)
{
	const struct http_request *req = &b->o.req;
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
		    "body-length: %" PRIu64 "\nbody-sha256: %s\n", b->o.received, b->body_sha256);
	if (r < 0) {
		b->o.keep_alive = false;
		return origin_replyf(&b->o, 500, "echo too large\n");
	}
	return origin_reply(&b->o, 200, ORIGIN_TYPE_TEXT, b->echo, len);
}

static void
peer_digest_update(void *arg, const char *data, size_t len)
{
	sha256_update(arg, len, (const uint8_t *)data);
}

/*
 * Read the whole request body, hashing it when asked. On failure the
 * request has been answered and the connection must close.
 */
static int
peer_read_body(struct peer *b, bool digest)
{
	static const char hex[] = "0123456789abcdef";
	struct sha256_ctx ctx;
	uint8_t md[SHA256_DIGEST_SIZE];
	unsigned int i;
	int r;

	sha256_init(&ctx);
	if ((r = origin_read_body(&b->o, digest ? peer_digest_update : NULL, &ctx)) < 0)
		return r;
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
peer_trailers(struct peer *b, const char *arg, size_t arg_len)
{
	int r;

	/* HTTP/1.0 has no chunked coding, so no trailers to announce. */
	if (b->o.req.version >= 11)
		b->o.fields = "Trailer: " PEER_TRAILER_FIELDS "\r\n";
	if ((r = origin_head(&b->o, 200, ORIGIN_TYPE_TEXT, -1)) < 0 ||
	    (r = origin_body(&b->o, PEER_BODY_TRAILERS, sizeof(PEER_BODY_TRAILERS) - 1)) < 0)
		return r;
	return origin_end(&b->o, PEER_TRAILERS);
}

static int
peer_early_hints(struct peer *b, const char *arg, size_t arg_len)
{
	static const char hints[] = "HTTP/1.1 103 Early Hints\r\n"
	    "Link: " PEER_HINTS_LINK "\r\n"
	    "\r\n";
	int r;

	/* RFC 9110 15.2: no 1xx to an HTTP/1.0 client. */
	if (b->o.req.version >= 11) {
		if ((r = conn_write(&b->o.conn, hints, sizeof(hints) - 1)) < 0)
			return r;
		peer_sleep_ms(PEER_EARLY_HINTS_MS);
	}
	return origin_reply(&b->o, 200, ORIGIN_TYPE_TEXT, PEER_BODY_HINTS,
	    sizeof(PEER_BODY_HINTS) - 1);
}

static int
peer_cookies(struct peer *b, const char *arg, size_t arg_len)
{
	b->o.fields = PEER_COOKIE_FIELDS;
	return origin_reply(&b->o, 200, ORIGIN_TYPE_TEXT, PEER_BODY_COOKIES,
	    sizeof(PEER_BODY_COOKIES) - 1);
}

/* The query of a target, without its '?', up to any fragment; empty if none. */
static void
peer_query(const char *target, const char **ret_query, size_t *ret_len)
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
peer_continue(struct peer *b, const char *arg, size_t arg_len)
{
	const char *query;
	size_t query_len;
	int r;

	peer_query(b->o.req.target, &query, &query_len);
	if (query_len == strlen("reject") && memcmp(query, "reject", query_len) == 0) {
		/*
		 * Refuse the upload before its body: no 100 Continue, and with
		 * the body unread the connection cannot carry another request.
		 */
		b->o.keep_alive = false;
		return origin_replyf(&b->o, 403, "upload refused\n");
	}
	/* Sends the 100 Continue the request expects before reading. */
	if ((r = peer_read_body(b, true)) < 0)
		return r;
	return peer_upload(b, arg, arg_len);
}

/*
 * WebSocket (RFC 6455). After the 101 the connection carries frames both
 * ways until a close frame, a protocol error, the client's EOF or silence.
 * Each data frame is echoed as one frame, with the opcode and FIN bit it
 * came with, so a fragmented message comes back fragmented the same way and
 * nothing larger than one frame is ever held.
 */
struct peer_ws {
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

struct peer_ws_frame {
	bool                 fin;
	int                  opcode;
	uint64_t             len;
};

static int
peer_ws_fail(struct peer_ws *ws, int code, const char *why)
{
	ws->fail_code = code;
	ws->fail_why = why;
	return -EPROTO;
}

/* Feed bytes to the UTF-8 validator (RFC 3629: no overlongs, surrogates or > U+10FFFF). */
static bool
peer_ws_utf8(struct peer_ws *ws, const unsigned char *p, uint64_t len)
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
peer_ws_need(struct peer *b, size_t n)
{
	ssize_t r;

	while (conn_pending(&b->o.conn) < n) {
		r = conn_fill(&b->o.conn, conn_now_usec() + PEER_WS_TIMEOUT_MS * 1000LL);
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
peer_ws_read_frame(struct peer *b, struct peer_ws *ws, struct peer_ws_frame *f)
{
	struct conn *c = &b->o.conn;
	const unsigned char *h;
	unsigned char mask[4], *p;
	size_t hlen, n;
	uint64_t i, left;
	int r;

	if ((r = peer_ws_need(b, 2)) < 0)
		return r;
	h = (const unsigned char *)c->buf + c->off;
	if (!(h[1] & 0x80))
		return peer_ws_fail(ws, PEER_WS_PROTOCOL, "unmasked client frame");
	hlen = 2 + ((h[1] & 0x7f) == 126 ? 2 : (h[1] & 0x7f) == 127 ? 8 : 0) + sizeof(mask);
	if ((r = peer_ws_need(b, hlen)) < 0)
		return r;
	h = (const unsigned char *)c->buf + c->off;     /* conn_fill may move the bytes */

	f->fin = (h[0] & 0x80) != 0;
	f->opcode = h[0] & 0x0f;
	if (h[0] & 0x70)
		return peer_ws_fail(ws, PEER_WS_PROTOCOL, "reserved bit set");
	switch (f->opcode) {
	case PEER_WS_CONTINUATION:
	case PEER_WS_TEXT:
	case PEER_WS_BINARY:
	case PEER_WS_CLOSE:
	case PEER_WS_PING:
	case PEER_WS_PONG:
		break;
	default:
		return peer_ws_fail(ws, PEER_WS_PROTOCOL, "unknown opcode");
	}
	f->len = h[1] & 0x7f;
	if (f->len == 126) {
		f->len = (uint64_t)h[2] << 8 | h[3];
		if (f->len < 126)
			return peer_ws_fail(ws, PEER_WS_PROTOCOL, "length not minimally encoded");
	} else if (f->len == 127) {
		for (f->len = 0, n = 2; n < 10; n++)
			f->len = f->len << 8 | h[n];
		if (f->len >> 63)
			return peer_ws_fail(ws, PEER_WS_PROTOCOL, "length with its top bit set");
		if (f->len <= 0xffff)
			return peer_ws_fail(ws, PEER_WS_PROTOCOL, "length not minimally encoded");
	}
	if (f->opcode >= PEER_WS_CLOSE && (!f->fin || f->len > PEER_WS_MAX_CONTROL))
		return peer_ws_fail(ws, PEER_WS_PROTOCOL, "fragmented or long control frame");
	if (f->len > PEER_WS_MAX_FRAME)
		return peer_ws_fail(ws, PEER_WS_TOO_BIG, "frame too large");
	memcpy(mask, h + hlen - sizeof(mask), sizeof(mask));
	c->off += hlen;

	if (f->len > ws->size) {
		n = f->len > ORIGIN_IO_CHUNK ? (size_t)f->len : ORIGIN_IO_CHUNK;
		if ((p = realloc(ws->data, n)) == NULL)
			return peer_ws_fail(ws, PEER_WS_INTERNAL, "out of memory");
		ws->data = p;
		ws->size = n;
	}
	/* Bytes already buffered with the handshake or the last frame come first. */
	for (p = ws->data, left = f->len; left > 0; p += n, left -= n) {
		if (conn_pending(c) == 0 && (r = peer_ws_need(b, 1)) < 0)
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
peer_ws_send(struct peer *b, bool fin, int opcode, const void *data, uint64_t len)
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
	return conn_writev(&b->o.conn, iov, len > 0 ? 2 : 1);
}

static int
peer_ws_send_close(struct peer *b, int code, const char *why)
{
	unsigned char payload[PEER_WS_MAX_CONTROL];
	size_t len = strlen(why);

	if (len > sizeof(payload) - 2)
		len = sizeof(payload) - 2;
	payload[0] = (unsigned char)(code >> 8);
	payload[1] = (unsigned char)code;
	memcpy(payload + 2, why, len);
	return peer_ws_send(b, true, PEER_WS_CLOSE, payload, 2 + len);
}

/* RFC 6455 7.4: the codes a close frame may carry on the wire. */
static bool
peer_ws_close_code_ok(unsigned int code)
{
	return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
	    (code >= 3000 && code <= 4999);
}

/* Check a data frame against the message it belongs to. 0, or -EPROTO. */
static int
peer_ws_check_data(struct peer_ws *ws, const struct peer_ws_frame *f)
{
	if (f->opcode == PEER_WS_CONTINUATION && ws->message < 0)
		return peer_ws_fail(ws, PEER_WS_PROTOCOL, "continuation outside a message");
	if (f->opcode != PEER_WS_CONTINUATION && ws->message >= 0)
		return peer_ws_fail(ws, PEER_WS_PROTOCOL, "new message inside a fragmented one");
	if (f->opcode != PEER_WS_CONTINUATION) {
		ws->message = f->opcode;
		ws->utf8_need = 0;
	}
	if (ws->message == PEER_WS_TEXT && (!peer_ws_utf8(ws, ws->data, f->len) ||
	    (f->fin && ws->utf8_need > 0)))
		return peer_ws_fail(ws, PEER_WS_INVALID_DATA, "text message not UTF-8");
	if (f->fin)
		ws->message = -1;
	return 0;
}

/*
 * Check a close frame's payload: empty, or a code and a UTF-8 reason. Returns
 * 0 if it can be echoed, or -EPROTO.
 */
static int
peer_ws_check_close(struct peer_ws *ws, const struct peer_ws_frame *f)
{
	struct peer_ws reason = { .message = -1 };

	if (f->len == 0)
		return 0;
	if (f->len == 1 || !peer_ws_close_code_ok((unsigned int)ws->data[0] << 8 | ws->data[1]))
		return peer_ws_fail(ws, PEER_WS_PROTOCOL, "invalid close code");
	if (!peer_ws_utf8(&reason, ws->data + 2, f->len - 2) || reason.utf8_need > 0)
		return peer_ws_fail(ws, PEER_WS_INVALID_DATA, "close reason not UTF-8");
	return 0;
}

/* Echo frames until the session ends. Returns 0, or a negative errno. */
static int
peer_ws_session(struct peer *b)
{
	struct peer_ws ws = { .message = -1 };
	struct peer_ws_frame f;
	int r;

	for (;;) {
		if ((r = peer_ws_read_frame(b, &ws, &f)) < 0)
			break;
		if (f.opcode == PEER_WS_CLOSE) {
			if ((r = peer_ws_check_close(&ws, &f)) < 0)
				break;
			/* Echo the code and reason, then close first, as a server should. */
			r = peer_ws_send(b, true, PEER_WS_CLOSE, ws.data, f.len);
			break;
		} else if (f.opcode == PEER_WS_PING) {
			if ((r = peer_ws_send(b, true, PEER_WS_PONG, ws.data, f.len)) < 0)
				break;
		} else if (f.opcode != PEER_WS_PONG) {
			if ((r = peer_ws_check_data(&ws, &f)) < 0)
				break;
			b->o.received += f.len;
			if ((r = peer_ws_send(b, f.fin, f.opcode, ws.data, f.len)) < 0)
				break;
			b->o.sent += f.len;
		}
	}
	free(ws.data);

	/* At EOF everything received has been echoed: a half-close just ends it. */
	if (r == -ENODATA)
		return 0;
	if (r == -ETIMEDOUT)
		peer_ws_fail(&ws, PEER_WS_GOING_AWAY, "idle timeout");
	if (ws.fail_code != 0) {
		journal_log(LOG_INFO, NULL, 0, "%s:%s WebSocket closed with %d: %s",
		    b->o.conn.peer_addr, b->o.conn.peer_port, ws.fail_code, ws.fail_why);
		(void)peer_ws_send_close(b, ws.fail_code, ws.fail_why);
		return 0;
	}
	return r;
}

/* Why a request with Upgrade is not a valid opening handshake, or NULL. */
static const char *
peer_ws_check_handshake(const struct http_request *req, const char **ret_key)
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
			if (hd->value_len != PEER_WS_KEY_LEN)
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
	for (i = 0; i < PEER_WS_KEY_LEN - 2; i++)
		if (key[i] == '\0' || strchr(b64, key[i]) == NULL)
			return "Sec-WebSocket-Key is not base64 of 16 bytes";
	if (strchr("AQgw", key[PEER_WS_KEY_LEN - 3]) == NULL ||
	    strcmp(key + PEER_WS_KEY_LEN - 2, "==") != 0)
		return "Sec-WebSocket-Key is not base64 of 16 bytes";
	*ret_key = key;
	return NULL;
}

static int
peer_ws(struct peer *b, const char *arg, size_t arg_len)
{
	char in[PEER_WS_KEY_LEN + sizeof(PEER_WS_GUID) - 1], date[32];
	struct sha1_ctx ctx;
	uint8_t md[SHA1_DIGEST_SIZE];
	char accept[BASE64_ENCODE_RAW_LENGTH(SHA1_DIGEST_SIZE) + 1];
	const char *key = NULL, *why;
	size_t i;
	int n, r;

	for (i = 0; i < b->o.req.nheaders; i++)
		if (http_name_eq(b->o.req.headers[i].name, b->o.req.headers[i].name_len, "Upgrade"))
			break;
	if (i == b->o.req.nheaders) {
		/* A body we did not read would be taken for the next request. */
		if (b->o.req.has_body)
			b->o.keep_alive = false;
		b->o.fields = "Upgrade: websocket\r\nConnection: Upgrade\r\n";
		return origin_replyf(&b->o, 426, "this resource speaks WebSocket only\n");
	}
	if ((why = peer_ws_check_handshake(&b->o.req, &key)) != NULL) {
		/* Frames a client sent too early must not be read as HTTP. */
		b->o.keep_alive = false;
		b->o.fields = "Sec-WebSocket-Version: 13\r\n";
		return origin_replyf(&b->o, 400, "bad WebSocket handshake: %s\n", why);
	}

	/* RFC 6455 4.2.2: base64 of the SHA-1 of the key and the GUID. */
	memcpy(in, key, PEER_WS_KEY_LEN);
	memcpy(in + PEER_WS_KEY_LEN, PEER_WS_GUID, sizeof(PEER_WS_GUID) - 1);
	sha1_init(&ctx);
	sha1_update(&ctx, sizeof(in), (const uint8_t *)in);
	sha1_digest(&ctx, sizeof(md), md);
	base64_encode_raw(accept, sizeof(md), md);
	accept[sizeof(accept) - 1] = '\0';

	/* From here on the connection is the WebSocket's: no HTTP request follows. */
	b->o.keep_alive = false;
	b->o.status = 101;
	http_date(date);
	n = snprintf(b->o.head, sizeof(b->o.head),
	    "HTTP/1.1 101 Switching Protocols\r\n"
	    "Date: %s\r\n"
	    "Upgrade: websocket\r\n"
	    "Connection: Upgrade\r\n"
	    "Sec-WebSocket-Accept: %s\r\n"
	    "\r\n", date, (const char *)accept);
	if (n < 0 || (size_t)n >= sizeof(b->o.head))
		return -ENOBUFS;
	if ((r = conn_write(&b->o.conn, b->o.head, (size_t)n)) < 0)
		return r;
	return peer_ws_session(b);
}

/*
 * The endpoint the path names, its body read first unless it handles the
 * body itself; ORIGIN_PASS for any other path.
 */
static int
peer_serve(struct origin *o, const char *path, size_t path_len)
{
	struct peer *b = (struct peer *)o;
	const struct peer_endpoint *ep;
	size_t plen, i;
	int r;

	b->body_sha256[0] = '\0';
	for (i = 0; i < sizeof(peer_endpoints) / sizeof(peer_endpoints[0]); i++) {
		ep = &peer_endpoints[i];
		plen = strlen(ep->path);
		if ((ep->match == PEER_EXACT ? path_len == plen : path_len >= plen) &&
		    strncmp(path, ep->path, plen) == 0) {
			if (ep->body != PEER_OWN && (r = peer_read_body(b, ep->body == PEER_DIGEST)) < 0)
				return r;
			return ep->serve(b, path + plen, path_len - plen);
		}
	}
	return ORIGIN_PASS;
}

int
main(int argc, char *argv[])
{
	static struct peer peer;

	return origin_main(&peer.o, argc, argv, PEER_NAME, peer_usage, peer_serve);
}
