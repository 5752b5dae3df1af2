/*
 * tunnel.c - WebSocket upgrades, the libcurl forwarder's sibling. libcurl's
 * easy interface cannot hand over a connection after 101, so the upstream
 * connection is made by libcurl with CONNECT_ONLY (upstream_connect(): same
 * timeouts, and TLS when the upstream has it), the request head is written
 * here with the fields rewrite.c gives, and the answer's head is read line
 * by line into the response model, which checks it as it checks libcurl's.
 * The client's answer is reply.c's, as for any request.
 *
 * After the 101 Switching Protocols of the handshake asked for, bytes are
 * relayed both ways until both sides have closed; a half-close travels
 * through as a half-close. Any other final answer (a refusal, or a page
 * served to a client that asked for an upgrade) is relayed whole, its body
 * framed by llhttp as it comes, and the connection ends after it.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <nettle/base64.h>
#include <nettle/sha1.h>

#include "rewrite.h"
#include "tunnel.h"

/* RFC 6455 1.3: appended to the client's key before hashing. */
#define TUNNEL_WEBSOCKET_GUID   "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#define TUNNEL_ACCEPT_LEN       BASE64_ENCODE_RAW_LENGTH(SHA1_DIGEST_SIZE)
#define TUNNEL_LINE_EXTRA       256   /* a status line, besides max-response-head */

/*
 * What the upstream sent: the head from its first byte (llhttp reads it
 * again to frame a body), then whatever came with it.
 */
struct tunnel_input {
	char       *raw;
	size_t      size;
	size_t      len;
	size_t      off;        /* the first byte the head did not take */
};

/* The request head for the upstream, as rewrite_request_fields() emits it. */
struct tunnel_request {
	char       *out;
	size_t      size;
	size_t      len;
	bool        host;       /* a Host went out (the client's, or a rule's) */
};

/* Only WebSocket is tunnelled; other upgrades (h2c) are dropped as hop-by-hop. */
bool
tunnel_wanted(const struct http_request *req)
{
	size_t i;

	if (!req->upgrade || req->method_id != HTTP_GET || req->version < 11 || req->has_body)
		return false;
	for (i = 0; i < req->nheaders; i++)
		if (http_name_eq(req->headers[i].name, req->headers[i].name_len, "Upgrade"))
			return http_name_eq(req->headers[i].value, req->headers[i].value_len,
			    "websocket");
	return false;
}

/* rewrite_request_fields()'s emitter for a request head of our own. */
static int
tunnel_emit(void *ctx, const char *name, const char *value)
{
	struct tunnel_request *rq = ctx;

	rq->host |= strcasecmp(name, "Host") == 0;
	return http_cat(rq->out, rq->size, &rq->len, name, ": ", value, "\r\n", NULL);
}

/*
 * The request as the upstream gets it: the rewritten fields plus the
 * upgrade. Without the client's Host (preserve-host = no) or a rule's, the
 * upstream's own authority, as libcurl gives it on the plain path
 * (localhost for a unix: upstream): HTTP/1.1 needs one.
 */
static int
tunnel_request_head(struct upstream *u, const struct route *r,
    const struct http_request *req, const char *target, const char *peer,
    struct tunnel_request *rq)
{
	const char *origin = u->origin_of->origin;
	size_t i;

	rq->len = 0;
	rq->host = false;
	if (http_cat(rq->out, rq->size, &rq->len, "GET ", target, " HTTP/1.1\r\n", NULL) < 0 ||
	    rewrite_request_fields(u->cfg, r, req, peer, tunnel_emit, rq) < 0 ||
	    (!rq->host && tunnel_emit(rq, "Host", strstr(origin, "://") + 3) < 0))
		return -1;
	for (i = 0; i < req->nheaders; i++)
		if (http_name_eq(req->headers[i].name, req->headers[i].name_len, "Upgrade"))
			return http_cat(rq->out, rq->size, &rq->len, "Upgrade: ",
			    req->headers[i].value, "\r\nConnection: Upgrade\r\n\r\n", NULL);
	return -1;
}

/*
 * More bytes from the upstream after those in, by the deadline: the count,
 * 0 at its end, or -1, recorded.
 */
static ssize_t
tunnel_read(struct upstream *u, struct tunnel_input *in, int64_t deadline)
{
	struct pollfd pfd = { .fd = u->tunnel_fd, .events = POLLIN };
	ssize_t n;

	for (;;) {
		n = upstream_recv(u, in->raw + in->len, in->size - in->len);
		if (n != UPSTREAM_RECV_LATER)
			break;
		if (conn_now_usec() >= deadline ||
		    poll(&pfd, 1, (int)((deadline - conn_now_usec()) / 1000) + 1) < 0)
			return reply_fail(&u->reply, 504, u->reply.state != REPLY_NONE ?
			    "upstream stalled mid-response" : "no response from upstream in time");
	}
	if (n < 0)
		return reply_fail_quietly(&u->reply, 502, "upstream connection failed");
	in->len += (size_t)n;
	return n;
}

/*
 * The upstream's response head, each line into the response model as it
 * arrives, up to the blank line that ends a final head (an interim one
 * cannot end the exchange: refused). Returns 0 or -1, recorded.
 */
static int
tunnel_read_head(struct upstream *u, struct tunnel_input *in, int64_t deadline)
{
	struct response *resp = &u->resp;
	const char *nl, *why;
	ssize_t n;
	int r;

	for (;;) {
		while ((nl = memchr(in->raw + in->off, '\n', in->len - in->off)) != NULL) {
			r = response_line(resp, in->raw + in->off,
			    (size_t)(nl + 1 - (in->raw + in->off)), &why);
			in->off = (size_t)(nl + 1 - in->raw);
			if (r < 0)
				return reply_fail(&u->reply, 502, why);
			if (r == 1 && resp->status != 101 && resp->status < 200)
				return reply_fail(&u->reply, 502,
				    "interim response to the upgrade request");
			if (r == 1)
				return 0;
		}
		if (in->len == in->size)
			return reply_fail(&u->reply, 502, response_too_large(resp));
		if ((n = tunnel_read(u, in, deadline)) < 0)
			return -1;
		if (n == 0)
			return reply_fail(&u->reply, 502, "invalid response to the upgrade request");
	}
}

static int
tunnel_on_body(llhttp_t *p, const char *at, size_t len)
{
	struct upstream *u = p->data;

	return reply_body(&u->reply, at, len) < 0 ? -1 : 0;
}

static int
tunnel_on_message_complete(llhttp_t *p)
{
	return HPE_PAUSED;
}

/*
 * A final answer other than the 101: relayed whole, its body taken out of
 * the upstream's framing by llhttp (Content-Length, chunks, or the close)
 * and framed again by reply.c. llhttp reads the stream from its first
 * byte, the head response.c has already checked included. The upstream
 * may be silent for the route's timeout between two reads, as on the
 * plain path.
 */
static void
tunnel_relay_answer(struct upstream *u, struct tunnel_input *in, const struct route *rt)
{
	static llhttp_settings_t settings;
	llhttp_t parser;
	llhttp_errno_t err;
	ssize_t n;

	llhttp_settings_init(&settings);
	settings.on_body = tunnel_on_body;
	settings.on_message_complete = tunnel_on_message_complete;
	llhttp_init(&parser, HTTP_RESPONSE, &settings);
	parser.data = u;
	for (;;) {
		err = llhttp_execute(&parser, in->raw, in->len);
		if (err == HPE_PAUSED)
			break;
		if (err != HPE_OK) {
			if (u->reply.fail_status == 0)
				reply_fail(&u->reply, 502,
				    "invalid framing in the answer to the upgrade request");
			return;
		}
		/* What llhttp has seen is done with. */
		in->len = 0;
		if ((n = tunnel_read(u, in, conn_now_usec() + (int64_t)rt->timeout_ms * 1000)) < 0)
			return;
		if (n == 0) {
			/* The close ends a body without a length: the message completes. */
			err = llhttp_finish(&parser);
			if (err != HPE_OK && err != HPE_PAUSED)
				reply_fail_quietly(&u->reply, 502,
				    "upstream closed before the end of the body");
			break;
		}
	}
	(void)reply_end(&u->reply, NULL);
}

/*
 * A 101 opens the tunnel only when it is the WebSocket handshake we asked
 * for (RFC 6455 4.1): Upgrade: websocket, Connection: upgrade, and the
 * Sec-WebSocket-Accept that answers the client's key. Anything else (h2c,
 * an upstream that did not read the request) is a 502, and the client's
 * bytes never reach the upstream raw.
 */
static int
tunnel_check_101(const struct response *resp, const struct http_request *req,
    const char **ret_why)
{
	struct sha1_ctx sha;
	uint8_t digest[SHA1_DIGEST_SIZE];
	char expected[TUNNEL_ACCEPT_LEN];
	const char *key = NULL, *v;
	size_t i, len;

	v = response_get(resp, "Upgrade", &len);
	if (v == NULL || !http_name_eq(v, len, "websocket")) {
		*ret_why = "101 from upstream without Upgrade: websocket";
		return -1;
	}
	v = response_get(resp, "Connection", &len);
	if (v == NULL || !http_list_has(v, len, "upgrade", 7)) {
		*ret_why = "101 from upstream without Connection: upgrade";
		return -1;
	}
	for (i = 0; i < req->nheaders; i++)
		if (http_name_eq(req->headers[i].name, req->headers[i].name_len,
		    "Sec-WebSocket-Key")) {
			if (key != NULL) {
				key = NULL;
				break;
			}
			key = req->headers[i].value;
		}
	v = response_get(resp, "Sec-WebSocket-Accept", &len);
	if (key == NULL || v == NULL || len != sizeof(expected)) {
		*ret_why = "101 from upstream without the Sec-WebSocket-Accept for the key";
		return -1;
	}
	sha1_init(&sha);
	sha1_update(&sha, strlen(key), (const uint8_t *)key);
	sha1_update(&sha, sizeof(TUNNEL_WEBSOCKET_GUID) - 1,
	    (const uint8_t *)TUNNEL_WEBSOCKET_GUID);
	sha1_digest(&sha, sizeof(digest), digest);
	base64_encode_raw(expected, sizeof(digest), digest);
	if (memcmp(v, expected, sizeof(expected)) != 0) {
		*ret_why = "101 from upstream with a Sec-WebSocket-Accept that does not match the key";
		return -1;
	}
	return 0;
}

/*
 * Relay until both directions are closed or the tunnel idles out. Each
 * side's EOF becomes a shutdown of writing towards the other side.
 */
static void
tunnel_relay(struct upstream *u, struct conn *c, struct reply_result *res)
{
	char *buf;
	struct pollfd pfd[2];
	bool client_open = true, upstream_open = true;
	ssize_t n;
	int r;

	if ((buf = malloc(TUNNEL_BUFSIZE)) == NULL) {
		res->why = "out of memory";
		return;
	}
	while (client_open || upstream_open) {
		pfd[0] = (struct pollfd){ .fd = client_open ? c->fd : -1, .events = POLLIN };
		pfd[1] = (struct pollfd){ .fd = upstream_open ? u->tunnel_fd : -1, .events = POLLIN };
		r = poll(pfd, 2, TUNNEL_IDLE_TIMEOUT_MS);
		if (r == 0) {
			res->why = "tunnel idle timeout";
			break;
		}
		if (r < 0) {
			if (errno == EINTR)
				continue;
			res->why = "poll failed";
			break;
		}
		if (pfd[0].revents != 0) {
			n = conn_read(c, buf, TUNNEL_BUFSIZE);
			if (n == -EAGAIN)
				continue;
			if (n <= 0) {
				client_open = false;
				shutdown(u->tunnel_fd, SHUT_WR);
			} else if (upstream_send(u, buf, (size_t)n,
			    conn_now_usec() + c->send_timeout_usec) < 0) {
				res->why = "upstream write failed";
				break;
			} else
				res->bytes_received += (uint64_t)n;
		}
		if (pfd[1].revents != 0) {
			n = upstream_recv(u, buf, TUNNEL_BUFSIZE);
			if (n == UPSTREAM_RECV_LATER)
				continue;
			if (n <= 0) {
				upstream_open = false;
				conn_shutdown(c);
			} else if (conn_write(c, buf, (size_t)n) < 0) {
				res->why = "client write failed";
				break;
			} else
				res->bytes_sent += (uint64_t)n;
		}
	}
	free(buf);
}

void
tunnel_forward(struct upstream *u, struct http_server *h, const struct http_request *req,
    const struct route *rt, struct reply_result *res)
{
	static char target[ROUTE_MAX_TARGET];
	struct reply *rp = &u->reply;
	struct response *resp = &u->resp;
	struct tunnel_input in = { 0 };
	struct tunnel_request rq = { 0 };
	const char *why;
	int64_t deadline;

	reply_begin(rp, h, req, rt, req->trusted, res);
	/* Whatever the answer, the connection ends with it. */
	h->closing = true;
	res->keep_alive = false;
	if (upstream_connect(u, rt, req, target, sizeof(target)) < 0)
		goto done;
	/*
	 * The input has room for a head at the route's limit and its status
	 * line; the request head for the client's fields, rewritten.
	 */
	in.size = rt->max_response_head + TUNNEL_LINE_EXTRA;
	rq.size = HTTP_MAX_REQUEST_LINE + UPSTREAM_FIELDS_BYTES;
	if ((in.raw = malloc(in.size)) == NULL || (rq.out = malloc(rq.size)) == NULL) {
		reply_fail_quietly(rp, 500, "out of memory");
		goto done;
	}
	deadline = conn_now_usec() + (int64_t)rt->timeout_ms * 1000;
	if (tunnel_request_head(u, rt, req, target, h->conn->peer_addr, &rq) < 0 ||
	    upstream_send(u, rq.out, rq.len, deadline) < 0) {
		reply_fail_quietly(rp, 502, "cannot send the upgrade request");
		goto done;
	}
	response_begin(resp, rt->max_response_fields, rt->max_response_head);
	if (tunnel_read_head(u, &in, deadline) < 0)
		goto done;
	if (resp->status != 101) {
		/*
		 * Refused, or answered otherwise: the whole answer is the client's,
		 * logged as on the plain path (no failure of ours, no reason).
		 */
		if (reply_head(rp, resp, true) == 0)
			tunnel_relay_answer(u, &in, rt);
		goto done;
	}
	if (tunnel_check_101(resp, req, &why) < 0) {
		reply_fail(rp, 502, why);
		goto done;
	}
	if (reply_head(rp, resp, false) < 0)
		goto done;
	/* Bytes that came along with either head already belong to the tunnel. */
	if ((in.len > in.off &&
	     conn_write(h->conn, in.raw + in.off, in.len - in.off) < 0) ||
	    (conn_pending(h->conn) > 0 &&
	     upstream_send(u, h->conn->buf + h->conn->off, conn_pending(h->conn),
	     conn_now_usec() + h->conn->send_timeout_usec) < 0)) {
		res->why = "tunnel write failed";
		goto done;
	}
	res->bytes_sent += in.len - in.off;
	res->bytes_received += conn_pending(h->conn);
	h->conn->off = h->conn->len;
	tunnel_relay(u, h->conn, res);
done:
	reply_finish(rp);
	free(in.raw);
	free(rq.out);
}
