/*
 * reply.c - the answer the client gets to a forwarded request, written by
 * one writer whichever forwarder fed it: the head made from the upstream's
 * (response.c's model, each field through rewrite.c), the body framed as
 * the client needs it (the upstream's Content-Length, chunks of our own, or
 * the close), trailers after the last chunk, and the one failure exit.
 *
 * Where the answer stands is enum reply_state: nothing out, the final head
 * made and held (so a small response leaves in one write), or the head
 * sent. A failure is recorded once (reply_fail()), with its status and its
 * reason in the request's result; reply_finish() then answers it if nothing
 * went out yet, or cuts the response if its head did. The caller logs it,
 * and proxy.c lingers and ends the connection.
 */
#include <stdlib.h>
#include <string.h>

#include "reply.h"
#include "rewrite.h"

int
reply_alloc(struct reply *rp, size_t head_size)
{
	memset(rp, 0, sizeof(*rp));
	rp->out_size = head_size + REPLY_HEAD_EXTRA;
	return (rp->out = malloc(rp->out_size)) == NULL ? -1 : 0;
}

void
reply_free(struct reply *rp)
{
	if (rp == NULL)
		return;
	free(rp->out);
	rp->out = NULL;
}

/* A new exchange: nothing out, nothing failed, the result cleared. */
void
reply_begin(struct reply *rp, struct http_server *h, const struct http_request *req,
    const struct route *r, bool trusted, struct reply_result *res)
{
	rp->h = h;
	rp->req = req;
	rp->route = r;
	mount_view_init(&rp->mount, r, req, trusted);
	rp->res = res;
	rp->state = REPLY_NONE;
	rp->framing = REPLY_EMPTY;
	rp->left = -1;
	rp->fail_status = 0;
	rp->why_public = false;
	rp->held = 0;
	memset(res, 0, offsetof(struct reply_result, why_text));
	res->why_text[0] = '\0';
	res->keep_alive = req->keep_alive;
}

static int
reply_record(struct reply *rp, int status, const char *why, bool public)
{
	if (status == 499)
		rp->res->client_fault = true;
	if (rp->fail_status == 0) {
		rp->fail_status = status;
		rp->res->why = why;
		rp->why_public = public;
	}
	return -1;
}

/*
 * The exchange failed with this status, for this reason, which the client
 * may read in our error page. Only the first failure counts. Returns -1.
 */
int
reply_fail(struct reply *rp, int status, const char *why)
{
	return reply_record(rp, status, why, true);
}

/* The same, for a reason that stays in the journal (libcurl's, the system's). */
int
reply_fail_quietly(struct reply *rp, int status, const char *why)
{
	return reply_record(rp, status, why, false);
}

/*
 * A write to the client failed: it is gone, and so is keep-alive. If the
 * write held the final head, the client never had an answer: 499, not a
 * truncated response.
 */
static int
reply_client_lost(struct reply *rp, bool with_head)
{
	if (with_head)
		rp->state = REPLY_NONE;
	rp->held = 0;
	rp->res->keep_alive = false;
	return reply_fail(rp, 499, conn_lost_why(rp->h->conn));
}

/* How the final answer's body travels, and whether the connection stays. */
static void
reply_frame(struct reply *rp, const struct response *resp)
{
	struct reply_result *res = rp->res;

	/* A body we did not read keeps us from reading the next request. */
	if (!rp->h->body_done || rp->h->closing)
		res->keep_alive = false;
	if (resp->status == 101 || http_body_forbidden(rp->req->method, resp->status)) {
		rp->framing = REPLY_EMPTY;
		rp->left = 0;
	} else if (resp->length >= 0) {
		rp->framing = REPLY_LENGTH;
		rp->left = resp->length;
	} else if (rp->req->version >= 11) {
		rp->framing = REPLY_CHUNKED;
	} else {
		rp->framing = REPLY_CLOSE;
		res->keep_alive = false;    /* HTTP/1.0: the close ends it */
	}
}

/*
 * The head for the client, from the upstream's: its status and reason, its
 * fields as rewrite.c lets them pass, the route's rules, and framing of our
 * own where the upstream's cannot pass through. An interim head (1xx but a
 * 101) goes out at once; the final one is held when hold says so, until
 * the first body bytes or reply_flush(). Returns -1 on failure, recorded.
 */
int
reply_head(struct reply *rp, struct response *resp, bool hold)
{
	struct reply_result *res = rp->res;
	const struct route *r = rp->route;
	char *out = rp->out, code[4];
	const size_t cap = rp->out_size;
	bool interim = resp->status < 200 && resp->status != 101;
	const char *why;
	size_t i, len = 0;

	if (response_framing(resp, &why) < 0)
		return reply_fail(rp, 502, why);
	if (!interim)
		reply_frame(rp, resp);
	/* The status was checked to be three digits. */
	code[0] = (char)('0' + resp->status / 100);
	code[1] = (char)('0' + resp->status / 10 % 10);
	code[2] = (char)('0' + resp->status % 10);
	code[3] = '\0';
	if (http_cat(out, cap, &len, "HTTP/1.1 ", code, " ", resp->reason, "\r\n", NULL) < 0)
		goto too_large;
	for (i = 0; i < resp->nfields; i++)
		if (rewrite_response_field(&rp->mount, resp, response_field(resp, i), out, cap,
		    &len) < 0)
			goto too_large;
	if (!interim && rewrite_response_rules(r, out, cap, &len) < 0)
		goto too_large;
	if (resp->status == 101) {
		if (http_cat(out, cap, &len, "Connection: Upgrade\r\n", NULL) < 0)
			goto too_large;
	} else if (!interim && ((rp->framing == REPLY_CHUNKED &&
	    http_cat(out, cap, &len, "Transfer-Encoding: chunked\r\n", NULL) < 0) ||
	    (!res->keep_alive && http_cat(out, cap, &len, "Connection: close\r\n", NULL) < 0) ||
	    (res->keep_alive && rp->req->version < 11 &&
	     http_cat(out, cap, &len, "Connection: keep-alive\r\n", NULL) < 0)))
		goto too_large;
	if (http_cat(out, cap, &len, "\r\n", NULL) < 0)
		goto too_large;

	if (interim) {
		if (conn_write(rp->h->conn, out, len) < 0)
			return reply_client_lost(rp, false);
		return 0;
	}
	rp->state = REPLY_HELD;
	rp->held = len;
	res->status = resp->status;
	/* libcurl may still ask for the body, its wait for a 100 over. */
	http_answer_begun(rp->h);
	return hold ? 0 : reply_flush(rp);
too_large:
	return reply_fail(rp, 502, "upstream response head too large");
}

/*
 * Take back a held head: the upstream's answer will not be the client's
 * (upstream.c: a 417 to our Expect that libcurl answers by sending again).
 */
void
reply_retract(struct reply *rp)
{
	if (rp->state == REPLY_HELD)
		rp->state = REPLY_NONE;
	rp->held = 0;
}

/* Write the held head, if any, before whatever follows it. */
int
reply_flush(struct reply *rp)
{
	size_t len = rp->held;

	if (rp->state != REPLY_HELD)
		return 0;
	rp->held = 0;
	if (conn_write(rp->h->conn, rp->out, len) < 0)
		return reply_client_lost(rp, true);
	rp->state = REPLY_SENT;
	return 0;
}

/* "1f40\r\n": the size line of a chunk of len bytes, in buf. */
static struct iovec
reply_chunk_line(char buf[static 24], size_t len)
{
	static const char hex[] = "0123456789abcdef";
	char *p = buf + 24;

	*--p = '\n';
	*--p = '\r';
	do
		*--p = hex[len & 0xf];
	while ((len >>= 4) != 0);
	return (struct iovec){ p, (size_t)(buf + 24 - p) };
}

/*
 * Body bytes: straight to the client, after the head if it is still held,
 * in a chunk of their own if we frame. Under REPLY_LENGTH no more than the
 * length announced.
 */
int
reply_body(struct reply *rp, const char *buf, size_t len)
{
	char chunk[24];
	struct iovec iov[4];
	bool with_head;
	int n = 0;

	if (rp->state == REPLY_NONE)
		return reply_fail(rp, 502, "upstream body before its head");
	if (rp->framing == REPLY_EMPTY || len == 0)
		return 0;
	if (rp->framing == REPLY_LENGTH && (int64_t)len > rp->left)
		len = (size_t)rp->left;
	with_head = rp->state == REPLY_HELD;
	iov[n++] = (struct iovec){ rp->out, rp->held };
	if (rp->framing == REPLY_CHUNKED)
		iov[n++] = reply_chunk_line(chunk, len);
	iov[n++] = (struct iovec){ (char *)buf, len };
	if (rp->framing == REPLY_CHUNKED)
		iov[n++] = (struct iovec){ (char *)"\r\n", 2 };
	rp->held = 0;
	if (conn_writev(rp->h->conn, iov, n) < 0)
		return reply_client_lost(rp, with_head);
	rp->state = REPLY_SENT;
	rp->res->bytes_sent += len;
	if (rp->framing == REPLY_LENGTH)
		rp->left -= (int64_t)len;
	return 0;
}

/*
 * The upstream's body ended: the last chunk, with the upstream's trailers
 * if the client asked for them (trailers NULL: none), after the head if it
 * is still held. A body shorter than its length is a cut, not an end.
 */
int
reply_end(struct reply *rp, const struct response *trailers)
{
	char out[REPLY_TRAILERS_SIZE];
	size_t i, len = 0;
	struct iovec iov[2];
	bool with_head = rp->state == REPLY_HELD;

	if (rp->framing == REPLY_LENGTH && rp->left > 0)
		return reply_fail_quietly(rp, 502, "upstream closed before the end of the body");
	if (rp->framing != REPLY_CHUNKED)
		return reply_flush(rp);
	(void)http_cat(out, sizeof(out), &len, "0\r\n", NULL);
	if (trailers != NULL && rewrite_wants_trailers(rp->req))
		for (i = 0; i < trailers->nfields; i++)
			if (rewrite_response_field(&rp->mount, trailers,
			    response_field(trailers, i), out, sizeof(out), &len) < 0)
				break;  /* what does not fit is dropped, the body is complete */
	if (len + 2 > sizeof(out))
		len = 3;
	memcpy(out + len, "\r\n", 2);
	iov[0] = (struct iovec){ rp->out, rp->held };
	iov[1] = (struct iovec){ out, len + 2 };
	rp->held = 0;
	if (conn_writev(rp->h->conn, iov, 2) < 0)
		return reply_client_lost(rp, with_head);
	rp->state = REPLY_SENT;
	return 0;
}

/*
 * The one failure exit of a forwarded request: nothing to do after a
 * success; after a failure, the client gets our error page if nothing went
 * out yet, a held head included (not after a 499: nobody is there to read
 * it), and a cut response if the head did. Either way the connection ends.
 */
void
reply_finish(struct reply *rp)
{
	struct reply_result *res = rp->res;

	if (rp->fail_status == 0)
		return;
	res->keep_alive = false;
	/*
	 * A head still held never reached the client: it is dropped, and the
	 * failure answered as if nothing had come (a body cut before its first
	 * byte, a 417 to our Expect whose resend failed).
	 */
	if (rp->state == REPLY_HELD)
		reply_retract(rp);
	if (rp->state == REPLY_NONE) {
		res->status = rp->fail_status;
		if (res->status != 499)
			(void)http_error(rp->h->conn, res->status, rp->why_public ? res->why : NULL);
		return;
	}
	/*
	 * The head is out, so the only honest signal left is to close without
	 * the final chunk or the promised length.
	 */
	res->truncated = true;
}
