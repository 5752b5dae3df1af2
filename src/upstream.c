/*
 * upstream.c - one request through libcurl, the only file that calls it:
 * the request fields rewrite.c gives, in libcurl's spelling, the body
 * pulled from the client as libcurl asks for it, each line of the answer's
 * head into the response model (response.c), and the answer handed to the
 * client's writer (reply.c) piece by piece as it arrives. Also the
 * connection a tunnel (tunnel.c) runs on.
 *
 * One easy handle serves every request of the connection, so libcurl keeps
 * the upstream connection open between them. Nothing here holds a whole
 * body: request bodies go through the read callback in libcurl's upload
 * buffer, response bodies through the write callback.
 *
 * libcurl is driven through a multi handle, with the client in the same
 * poll: while the client's body is slow to come, the upload pauses and the
 * upstream is still heard, so an answer it gives before taking the whole
 * body (an early 401 or 413) reaches the client at once.
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "rewrite.h"
#include "upstream.h"

/*
 * State of one transfer, passed to every callback, besides the response
 * model and the reply (struct upstream holds both). Owned by struct
 * upstream and reused for every request of the connection: only the part
 * before `staged` is cleared per request.
 */
struct transfer {
	struct upstream            *up;
	struct http_server         *h;
	const struct http_request  *req;
	struct reply_result        *res;
	const struct route         *route;

	int64_t     last_progress;  /* for the upstream idle timeout */
	int64_t     last_liveness;  /* when the client was last checked */
	curl_off_t  last_dl, last_ul;
	uint64_t    body_handed;    /* request body bytes given to libcurl */
	unsigned    sends;          /* times libcurl began sending this request */
	size_t      staged_len;     /* the body the client had already sent, */
	size_t      staged_off;     /* checked before going upstream */
	int64_t     body_since;     /* since when the upload waits for the client, or 0 */
	bool        body_paused;    /* the upload waits for the client */
	bool        resp_faulty;    /* its framing or what followed ends the connection */
	bool        expect_refused; /* a 417 to our Expect, its head held */

	char        staged[UPSTREAM_STAGE_SIZE];
};

/*
 * Every upstream socket libcurl opens is made and closed here, so that the
 * connections it keeps between requests can be looked at (see
 * upstream_check_kept()). One more than we can track is refused: libcurl
 * then fails that connect, which is a 502, not an unchecked connection;
 * upstream_check_kept() closes them all before the table can fill up.
 */
static curl_socket_t
upstream_open_socket(void *clientp, curlsocktype purpose, struct curl_sockaddr *addr)
{
	struct upstream *u = clientp;
	curl_socket_t fd;

	if (purpose != CURLSOCKTYPE_IPCXN || u->nsocks == UPSTREAM_MAX_SOCKETS)
		return CURL_SOCKET_BAD;
	fd = socket(addr->family, addr->socktype | SOCK_CLOEXEC, addr->protocol);
	if (fd != CURL_SOCKET_BAD)
		u->socks[u->nsocks++] = fd;
	return fd;
}

static int
upstream_close_socket(void *clientp, curl_socket_t fd)
{
	struct upstream *u = clientp;
	size_t i;

	for (i = 0; i < u->nsocks; i++)
		if (u->socks[i] == fd) {
			u->socks[i] = u->socks[--u->nsocks];
			break;
		}
	return close(fd);
}

/*
 * A new easy handle with what every use of it shares, forwarding or tunnel:
 * the connection cache, no proxy, the protocols, the error buffer, our
 * sockets.
 */
static int
upstream_fresh_handle(struct upstream *u)
{
	if (u->curl != NULL)
		curl_easy_cleanup(u->curl);
	if ((u->curl = curl_easy_init()) == NULL)
		return -1;
	u->stale = false;
	curl_easy_setopt(u->curl, CURLOPT_SHARE, u->share);
	curl_easy_setopt(u->curl, CURLOPT_OPENSOCKETFUNCTION, upstream_open_socket);
	curl_easy_setopt(u->curl, CURLOPT_OPENSOCKETDATA, u);
	curl_easy_setopt(u->curl, CURLOPT_CLOSESOCKETFUNCTION, upstream_close_socket);
	curl_easy_setopt(u->curl, CURLOPT_CLOSESOCKETDATA, u);
	/* Upstreams come from the configuration only, never from http_proxy and co. */
	curl_easy_setopt(u->curl, CURLOPT_PROXY, "");
	curl_easy_setopt(u->curl, CURLOPT_PROTOCOLS_STR, u->protocols);
	curl_easy_setopt(u->curl, CURLOPT_ERRORBUFFER, u->errbuf);
	curl_easy_setopt(u->curl, CURLOPT_NOSIGNAL, 1L);
	return 0;
}

static int    upstream_check_kept(struct upstream *, bool);
static size_t upstream_header_cb(char *, size_t, size_t, void *);
static size_t upstream_write_cb(char *, size_t, size_t, void *);
static size_t upstream_read_cb(char *, size_t, size_t, void *);
static int    upstream_seek_cb(void *, curl_off_t, int);
static int    upstream_progress_cb(void *, curl_off_t, curl_off_t, curl_off_t, curl_off_t);
static int    upstream_prereq_cb(void *, char *, char *, int, int);
static int    upstream_debug_cb(CURL *, curl_infotype, char *, size_t, void *);

/*
 * The easy handle for the next forwarded request. The options all requests
 * share are set once per handle, so libcurl does not free, default and copy
 * them again for each one; upstream_forward() sets the rest every time.
 *
 * A handle is not used again (it is stale) after a chunked upload: libcurl
 * 7.88 overruns its upload buffer on a chunked upload after one that had
 * CURLOPT_TRAILERFUNCTION set on the same handle. Nor after libcurl resent
 * a request on a new connection because the kept one had closed: it counts
 * those for the life of the handle and gives up after five. Nor after a
 * 417 to our Expect (libcurl then never waits for a 100 on the handle
 * again), or a tunnel. Its connections stay in the share either way. (A
 * failed transfer ends the client's connection, so its handle is not
 * asked for again.)
 */
static CURL *
upstream_handle(struct upstream *u, bool chunked_upload)
{
	CURL *curl;

	if (u->stale || u->curl == NULL) {
		if (upstream_fresh_handle(u) < 0)
			return NULL;
		curl = u->curl;
		curl_easy_setopt(curl, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
		curl_easy_setopt(curl, CURLOPT_HTTP_CONTENT_DECODING, 0L);
		curl_easy_setopt(curl, CURLOPT_BUFFERSIZE, (long)UPSTREAM_BUFFER_SIZE);
		curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, upstream_header_cb);
		curl_easy_setopt(curl, CURLOPT_HEADERDATA, u->t);
		curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, upstream_write_cb);
		curl_easy_setopt(curl, CURLOPT_WRITEDATA, u->t);
		curl_easy_setopt(curl, CURLOPT_READFUNCTION, upstream_read_cb);
		curl_easy_setopt(curl, CURLOPT_READDATA, u->t);
		curl_easy_setopt(curl, CURLOPT_SEEKFUNCTION, upstream_seek_cb);
		curl_easy_setopt(curl, CURLOPT_SEEKDATA, u->t);
		curl_easy_setopt(curl, CURLOPT_EXPECT_100_TIMEOUT_MS, (long)UPSTREAM_EXPECT_WAIT_MS);
		curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, upstream_progress_cb);
		curl_easy_setopt(curl, CURLOPT_XFERINFODATA, u->t);
		curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
		curl_easy_setopt(curl, CURLOPT_PREREQFUNCTION, upstream_prereq_cb);
		curl_easy_setopt(curl, CURLOPT_PREREQDATA, u->t);
		curl_easy_setopt(curl, CURLOPT_DEBUGFUNCTION, upstream_debug_cb);
		curl_easy_setopt(curl, CURLOPT_DEBUGDATA, u->t);
		curl_easy_setopt(curl, CURLOPT_VERBOSE, 1L);
	}
	u->stale = chunked_upload;
	return u->curl;
}

/*
 * The connection cache lives in a share handle, so an easy handle can be
 * replaced without losing the upstream connection.
 */
static int
upstream_new_share(struct upstream *u)
{
	if ((u->share = curl_share_init()) == NULL ||
	    curl_share_setopt(u->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT) != CURLSHE_OK)
		return -1;
	return 0;
}

/*
 * Close every upstream connection libcurl keeps. libcurl has no call for
 * one connection; the share that holds the cache closes them all when it
 * goes, and the easy handle must let go of it first.
 */
static int
upstream_drop_connections(struct upstream *u)
{
	if (u->curl != NULL)
		curl_easy_cleanup(u->curl);
	u->curl = NULL;
	u->stale = true;
	if (u->share != NULL)
		curl_share_cleanup(u->share);
	u->share = NULL;
	/* Closed by libcurl, through upstream_close_socket() or not. */
	u->nsocks = 0;
	return upstream_new_share(u);
}

/*
 * No kept connection may carry the next request once something arrived on
 * it after its response was complete: those bytes (a second response, say)
 * would be read as the answer to that request (response queue poisoning;
 * libcurl 7.88 reuses such a connection, 8.0 does not). An end of file is
 * no better: the request would fail, and be resent. Between transfers
 * every tracked socket is idle in the cache, so a readable one is one of
 * these. Checked after each transfer, and again before the next one picks
 * a connection, as the bytes may come in between.
 */
static int
upstream_check_kept(struct upstream *u, bool drop)
{
	char byte;
	size_t i;

	/* A full table would refuse the next connect: start over instead. */
	if (u->nsocks + UPSTREAM_SOCKETS_SPARE > UPSTREAM_MAX_SOCKETS)
		drop = true;
	for (i = 0; !drop && i < u->nsocks; i++)
		drop = recv(u->socks[i], &byte, 1, MSG_PEEK | MSG_DONTWAIT) >= 0 ||
		    (errno != EAGAIN && errno != EWOULDBLOCK);
	return drop ? upstream_drop_connections(u) : 0;
}

int
upstream_init(struct upstream *u, const struct config *cfg)
{
	struct transfer *t;
	size_t fields, head;

	memset(u, 0, sizeof(*u));
	u->cfg = cfg;
	u->protocols = curl_version_info(CURLVERSION_NOW)->features & CURL_VERSION_SSL ?
	    "http,https" : "http";
	/*
	 * Large buffers: on the heap, once per connection. The pages of the
	 * head buffers are touched only as far as heads fill them.
	 */
	if ((t = u->t = malloc(sizeof(*u->t))) == NULL)
		return -1;
	config_response_limits(cfg, &head, &fields);
	if (response_alloc(&u->resp, fields, head) < 0 || reply_alloc(&u->reply, head) < 0)
		return -1;
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		return -1;
	if (upstream_new_share(u) < 0)
		return -1;
	if ((u->multi = curl_multi_init()) == NULL || (u->origin = curl_url()) == NULL)
		return -1;
	u->ready = true;
	return 0;
}

/* "libcurl/7.88.1 OpenSSL/3.0.17 ...", as curl -V's first line names it. */
const char *
upstream_version(void)
{
	return curl_version();
}

/*
 * Can the libcurl we run with reach every upstream? A libcurl built
 * without TLS or Unix sockets would otherwise fail each request at run time.
 */
void
upstream_check_config(struct config *cfg)
{
	const curl_version_info_data *v = curl_version_info(CURLVERSION_NOW);
	const struct route *r;
	size_t i, j;

	for (i = 0; i < cfg->nroutes; i++) {
		r = cfg->routes[i];
		for (j = 0; j < r->nupstreams; j++) {
			if (r->upstreams[j].kind == UPSTREAM_HTTPS && !(v->features & CURL_VERSION_SSL))
				config_error(cfg, r->line, "route %s: this libcurl has no TLS for %s",
				    r->name, r->upstreams[j].url);
			if (r->upstreams[j].kind == UPSTREAM_UNIX &&
			    !(v->features & CURL_VERSION_UNIX_SOCKETS))
				config_error(cfg, r->line, "route %s: this libcurl has no Unix sockets for %s",
				    r->name, r->upstreams[j].url);
		}
	}
}

void
upstream_free(struct upstream *u)
{
	if (u == NULL)
		return;
	u->ready = false;
	response_free(&u->resp);
	reply_free(&u->reply);
	free(u->t);
	u->t = NULL;
	if (u->curl != NULL)
		curl_easy_cleanup(u->curl);
	u->curl = NULL;
	if (u->multi != NULL)
		curl_multi_cleanup(u->multi);
	u->multi = NULL;
	curl_url_cleanup(u->origin);
	u->origin = NULL;
	u->origin_of = NULL;
	if (u->share != NULL) {
		curl_share_cleanup(u->share);
		u->share = NULL;
		curl_global_cleanup();
	}
}

/*
 * The request's fields for libcurl (CURLOPT_HTTPHEADER, which libcurl only
 * reads), made without allocating: the list's nodes and their text in one
 * block, reused by every request of the connection. rewrite.c says which
 * fields go; here they get libcurl's spelling.
 */
struct fields {
	struct curl_slist   node[UPSTREAM_MAX_FIELDS];
	size_t              n;
	size_t              used;
	bool                accept;     /* an Accept field is in the list */
	bool                expect;     /* an Expect field is in the list */
	char                text[UPSTREAM_FIELDS_BYTES];
};

/* Append "name" sep "value" to the list: sep is ": ", or ";" for an empty value. */
static int
fields_add(struct fields *f, const char *name, const char *sep, const char *value)
{
	size_t len = 0;

	if (f->n == UPSTREAM_MAX_FIELDS || f->used == sizeof(f->text) ||
	    http_cat(f->text + f->used, sizeof(f->text) - f->used, &len, name, sep, value, NULL) < 0)
		return -1;
	f->node[f->n].data = f->text + f->used;
	f->node[f->n].next = NULL;
	if (f->n > 0)
		f->node[f->n - 1].next = &f->node[f->n];
	f->n++;
	f->used += len + 1;
	return 0;
}

/* rewrite_request_fields()'s emitter for libcurl. */
static int
upstream_emit(void *ctx, const char *name, const char *value)
{
	struct fields *f = ctx;

	/* Most names start with neither letter: no comparison for them. */
	if ((name[0] | 0x20) == 'a')
		f->accept |= strcasecmp(name, "Accept") == 0;
	else if ((name[0] | 0x20) == 'e')
		f->expect |= strcasecmp(name, "Expect") == 0;
	/* libcurl reads "Name:" as "remove Name"; "Name;" sends it empty. */
	return fields_add(f, name, *value != '\0' ? ": " : ";", value);
}

/*
 * The fields for the upstream, as a list for CURLOPT_HTTPHEADER that stays
 * valid until the next call; NULL if they do not fit.
 */
static struct curl_slist *
upstream_request_fields(const struct config *cfg, const struct route *r,
    const struct http_request *req, const char *peer)
{
	/* Large: static, as one process serves one client. */
	static struct fields fields;
	struct fields *f = &fields;

	f->n = f->used = 0;
	f->accept = f->expect = false;
	if (rewrite_request_fields(cfg, r, req, peer, upstream_emit, f) < 0)
		return NULL;
	/* Keep libcurl from adding what the client did not send. */
	if ((!f->accept && fields_add(f, "Accept", ":", "") < 0) ||
	    (!f->expect && fields_add(f, "Expect", ":", "") < 0))
		return NULL;
	return &f->node[0];
}

/* The request body, pulled from the client as libcurl wants it. */
static size_t
upstream_read_cb(char *buf, size_t size, size_t nmemb, void *userdata)
{
	struct transfer *t = userdata;
	ssize_t n;

	if (t->staged_off < t->staged_len) {
		n = (ssize_t)(t->staged_len - t->staged_off);
		if ((size_t)n > size * nmemb)
			n = (ssize_t)(size * nmemb);
		memcpy(buf, t->staged + t->staged_off, (size_t)n);
		t->staged_off += (size_t)n;
		t->body_handed += (uint64_t)n;
		return (size_t)n;
	}
	/* The client may be silent for a while from now, as in http_read_body(). */
	if (t->body_since == 0)
		t->body_since = conn_now_usec();
	n = http_read_body_ready(t->h, buf, size * nmemb, t->body_since);
	if (n == HTTP_BODY_LATER) {
		/* upstream_perform() resumes the upload when the client sends. */
		t->body_paused = true;
		return CURL_READFUNC_PAUSE;
	}
	if (n < 0) {
		t->res->client_fault = true;
		reply_fail(&t->up->reply, t->h->status, t->h->why);
		return CURL_READFUNC_ABORT;
	}
	t->body_since = 0;
	t->body_handed += (uint64_t)n;
	t->res->bytes_received += (uint64_t)n;
	return (size_t)n;
}

/*
 * Decode the body bytes the client has already sent before the upstream
 * hears of the request, so that a malformed chunked body arriving with its
 * head is refused without the upstream seeing any of it. Not done when the
 * client waits for 100 Continue: that body is the upstream's to ask for.
 */
static int
upstream_stage_body(struct transfer *t)
{
	struct http_server *h = t->h;
	ssize_t n;

	if (!t->req->has_body || t->req->expect_continue)
		return 0;
	while (conn_pending(h->conn) > 0 && !h->body_done &&
	    t->staged_len < sizeof(t->staged)) {
		n = http_read_body(h, t->staged + t->staged_len, sizeof(t->staged) - t->staged_len);
		if (n < 0) {
			t->res->client_fault = true;
			return reply_fail(&t->up->reply, h->status, h->why);
		}
		t->staged_len += (size_t)n;
		t->res->bytes_received += (uint64_t)n;
	}
	return 0;
}

/* The trailer section of a chunked upload, less what may not travel there. */
static int
upstream_trailer_cb(struct curl_slist **list, void *userdata)
{
	struct transfer *t = userdata;
	char line[HTTP_MAX_HEADER_BYTES + 256];
	const struct http_header *hd;
	struct curl_slist *l;
	size_t i, len;

	for (i = 0; i < t->req->ntrailers; i++) {
		hd = &t->req->trailers[i];
		if (!rewrite_request_trailer(t->route, hd))
			continue;
		/* libcurl's spelling, as in upstream_emit(). */
		len = 0;
		if (http_cat(line, sizeof(line), &len, hd->name, hd->value_len > 0 ? ": " : ";",
		    hd->value, NULL) < 0 || (l = curl_slist_append(*list, line)) == NULL)
			return CURL_TRAILERFUNC_ABORT;
		*list = l;
	}
	return CURL_TRAILERFUNC_OK;
}

/*
 * libcurl rewinds when a reused connection turned out to be closed and it
 * sends the request again on a new one. That is only possible while all of
 * the body it took is still in the staging buffer.
 */
static int
upstream_seek_cb(void *userdata, curl_off_t offset, int origin)
{
	struct transfer *t = userdata;

	if (offset == 0 && origin == SEEK_SET && t->body_handed <= t->staged_off) {
		t->staged_off = 0;
		t->body_handed = 0;
		return CURL_SEEKFUNC_OK;
	}
	return CURL_SEEKFUNC_CANTSEEK;
}

/*
 * The final head is made: for the client (reply.c), held or not. A 417 to
 * the Expect: 100-continue we forwarded, before any of the body: libcurl
 * then drops this answer's body and sends the request again without
 * waiting, which upstream_prereq_cb turns into our own 417. If it does not
 * (the upstream closes), the body comes and the head goes with it. Until
 * then the head is held.
 *
 * Otherwise the final head is held until the first body bytes, so a small
 * response leaves in one write and one segment; the progress callback
 * flushes it once libcurl has handled what it read, so a head whose body
 * comes later is not kept waiting. Not while the request body is still
 * coming: libcurl would read it before calling back, and a client may wait
 * for the head (an early 401 or 413) before sending more.
 */
static int
upstream_relay_head(struct transfer *t)
{
	struct response *resp = &t->up->resp;
	bool refused = resp->status == 417 && t->req->expect_continue && t->body_handed == 0;

	if (reply_head(&t->up->reply, resp, refused || t->h->body_done) < 0)
		return -1;
	if (resp->status < 200)
		return 0;
	/* Chunked from an HTTP/1.0 upstream: its connection ends after this. */
	t->resp_faulty = resp->http10 && resp->chunked;
	if (refused) {
		t->expect_refused = true;
		/* libcurl expects no 100 on this handle again: do not reuse it. */
		t->up->stale = true;
	}
	return 0;
}

/*
 * Called once per header line, not NUL-terminated, for every response
 * including interim ones, and for trailers after the body: each line goes
 * to the response model, which checks it.
 */
static size_t
upstream_header_cb(char *buf, size_t size, size_t nmemb, void *userdata)
{
	struct transfer *t = userdata;
	struct response *resp = &t->up->resp;
	size_t len = size * nmemb;
	const char *why;
	int r;

	if ((r = response_line(resp, buf, len, &why)) < 0)
		return reply_fail(&t->up->reply, 502, why), 0;
	if (r == 0 || resp->phase == RESPONSE_TRAILERS)
		return len;
	/* The end of a head. */
	if (resp->status == 100) {
		if (http_send_continue(t->h) < 0)
			return reply_fail(&t->up->reply, 499, conn_lost_why(t->h->conn)), 0;
	} else if (resp->status == 101) {
		return reply_fail(&t->up->reply, 502, "unexpected 101 from upstream"), 0;
	} else if (resp->status >= 200 || t->req->version >= 11) {
		if (upstream_relay_head(t) < 0)
			return 0;
	}
	response_next(resp);
	return len;
}

/* Response body: to the client, as reply.c frames it. */
static size_t
upstream_write_cb(char *buf, size_t size, size_t nmemb, void *userdata)
{
	struct transfer *t = userdata;
	size_t len = size * nmemb;

	return reply_body(&t->up->reply, buf, len) < 0 ? 0 : len;
}

/*
 * Has the client closed its connection while we wait on the upstream? Then
 * nobody wants the answer, and the upstream request is aborted, as nginx
 * does. Only once the request has been read whole: before that, the read
 * callback sees the end of the connection itself.
 */
static bool
upstream_client_gone(const struct transfer *t)
{
	struct conn *c = t->h->conn;
	struct pollfd pfd = { .fd = c->fd, .events = POLLRDHUP };
	char byte;
	ssize_t n;

	if (!t->h->body_done || conn_pending(c) > 0 || poll(&pfd, 1, 0) <= 0)
		return false;
	if (pfd.revents & (POLLHUP | POLLERR))
		return true;
	/* Shut for writing: gone, unless pipelined bytes are still to be read. */
	if (!(pfd.revents & POLLRDHUP))
		return false;
	if (c->tls == NULL)
		return recv(c->fd, &byte, 1, MSG_PEEK) == 0;
	/*
	 * A TLS client's close_notify comes before its FIN, so the socket is
	 * never at EOF: read through TLS without waiting. Pipelined requests
	 * stay in the buffer for the next request.
	 */
	n = conn_fill(c, 0);
	return n == 0 || (n < 0 && n != -ETIMEDOUT);
}

/*
 * libcurl has no HTTP timeout that suits streaming: the whole-transfer
 * timeout would cut a long download. Instead, abort when the upstream has
 * neither taken nor given a byte for timeout_ms: before the head that is a
 * 504, after it the response is cut.
 */
static int
upstream_progress_cb(void *userdata, curl_off_t dltotal, curl_off_t dlnow,
    curl_off_t ultotal, curl_off_t ulnow)
{
	struct transfer *t = userdata;
	int64_t now = conn_now_usec();

	/* libcurl is done with what it read: a head still held goes now. */
	if (!t->expect_refused && t->up->reply.state == REPLY_HELD &&
	    reply_flush(&t->up->reply) < 0)
		return 1;
	/*
	 * A client that left is noticed in every phase: a write to it would fail
	 * by itself, but an upstream silent mid-response gives nothing to write.
	 */
	if (now - t->last_liveness >= UPSTREAM_LIVENESS_INTERVAL_MS * 1000LL) {
		t->last_liveness = now;
		if (upstream_client_gone(t)) {
			reply_fail(&t->up->reply, 499, "client went away");
			return 1;
		}
	}
	/* Waiting for the client's body is not the upstream's silence. */
	if (t->body_paused || dlnow != t->last_dl || ulnow != t->last_ul) {
		t->last_dl = dlnow;
		t->last_ul = ulnow;
		t->last_progress = now;
		return 0;
	}
	if (now - t->last_progress < (int64_t)t->route->timeout_ms * 1000)
		return 0;
	reply_fail(&t->up->reply, 504, t->up->reply.state != REPLY_NONE ?
	    "upstream stalled mid-response" :
	    "no response from upstream in time");
	return 1;
}

/*
 * The method and body of this request. Each option is set every time, as
 * the handle carries the last request's.
 */
static void
upstream_set_method(CURL *curl, const struct http_request *req, struct transfer *t)
{
	bool head = strcmp(req->method, "HEAD") == 0;
	bool body = !head && (req->content_length >= 0 || req->chunked);

	/*
	 * In this order, as turning the upload off makes the request a GET.
	 * Even an empty body keeps its Content-Length: 0.
	 */
	curl_easy_setopt(curl, CURLOPT_UPLOAD, body ? 1L : 0L);
	curl_easy_setopt(curl, CURLOPT_NOBODY, head ? 1L : 0L);
	curl_easy_setopt(curl, CURLOPT_INFILESIZE_LARGE, !body || req->chunked ? (curl_off_t)-1 :
	    (curl_off_t)req->content_length);
	if (body && req->chunked) {
		curl_easy_setopt(curl, CURLOPT_TRAILERFUNCTION, upstream_trailer_cb);
		curl_easy_setopt(curl, CURLOPT_TRAILERDATA, t);
	}
	curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST,
	    head || (strcmp(req->method, "GET") == 0 && !body) ? NULL : req->method);
}

/* The status for a transfer that failed before the client got a head. */
static int
upstream_error_status(CURLcode rc)
{
	switch (rc) {
	case CURLE_OPERATION_TIMEDOUT:
		return 504;
	default:
		return 502;
	}
}

static bool upstream_idempotent(const struct http_request *req);

/*
 * Called each time libcurl is about to send the request. A second call
 * means libcurl is resending on its own after a reused connection died;
 * the upstream may have acted on the first, so that is only safe when the
 * method is idempotent and there is no body (as for our own failover).
 */
static int
upstream_prereq_cb(void *userdata, char *conn_primary_ip, char *conn_local_ip,
    int conn_primary_port, int conn_local_port)
{
	struct transfer *t = userdata;

	if (t->expect_refused) {
		/* The upstream's 417 lost its body: the client gets ours. */
		reply_retract(&t->up->reply);
		reply_fail(&t->up->reply, 417, "upstream refused Expect: 100-continue");
		return CURL_PREREQFUNC_ABORT;
	}
	if (++t->sends > 1) {
		/* A resend: libcurl counts them for the life of the handle. */
		t->up->stale = true;
		if (!upstream_idempotent(t->req) || t->req->has_body) {
			reply_fail(&t->up->reply, 502,
			    "upstream closed a reused connection; not resending");
			return CURL_PREREQFUNC_ABORT;
		}
	}
	return CURL_PREREQFUNC_OK;
}

/*
 * Bytes libcurl read after the end of a response, in the same read as its
 * last ones, never show on the socket: libcurl 7.88 drops them, says so
 * only in its verbose text, and keeps the connection for the next request
 * (after the last chunk; after a Content-Length body it closes). Its text
 * is the only sign, so the handle is verbose, and every other message is
 * ignored here. The connection is then closed after the transfer.
 */
static int
upstream_debug_cb(CURL *curl, curl_infotype type, char *text, size_t len, void *userdata)
{
	static const char *const excess[] = { "Leftovers after chunking", "Excess found" };
	struct transfer *t = userdata;
	size_t i, n;

	if (type != CURLINFO_TEXT)
		return 0;
	for (i = 0; i < sizeof(excess) / sizeof(excess[0]); i++) {
		n = strlen(excess[i]);
		if (len >= n && memcmp(text, excess[i], n) == 0)
			t->resp_faulty = true;
	}
	return 0;
}

static bool
upstream_idempotent(const struct http_request *req)
{
	static const char *const methods[] = { "GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE" };
	size_t i;

	for (i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
		if (strcmp(req->method, methods[i]) == 0)
			return true;
	return false;
}

/*
 * May the request go to the next upstream? Always when this one could not
 * be reached, since nothing was sent; after the request went out, only if
 * sending it twice cannot matter: an idempotent method without a body, and
 * no answer at all.
 */
static bool
upstream_may_fail_over(struct transfer *t, CURLcode rc)
{
	long sent = 0;

	if (t->up->reply.state != REPLY_NONE || t->up->reply.fail_status != 0)
		return false;
	curl_easy_getinfo(t->up->curl, CURLINFO_REQUEST_SIZE, &sent);
	if (sent == 0)
		return rc == CURLE_COULDNT_CONNECT || rc == CURLE_COULDNT_RESOLVE_HOST ||
		    rc == CURLE_OPERATION_TIMEDOUT;
	return (rc == CURLE_GOT_NOTHING || rc == CURLE_SEND_ERROR || rc == CURLE_RECV_ERROR) &&
	    upstream_idempotent(t->req) && !t->req->has_body;
}

/* libcurl's message, with the system's reason when there is one (EMFILE…). */
static const char *
upstream_why(struct upstream *u, CURLcode rc)
{
	long os_errno = 0;

	curl_easy_getinfo(u->curl, CURLINFO_OS_ERRNO, &os_errno);
	snprintf(u->reply.res->why_text, sizeof(u->reply.res->why_text), "%s%s%s%s",
	    u->errbuf[0] != '\0' ? u->errbuf : curl_easy_strerror(rc),
	    os_errno != 0 ? " (" : "", os_errno != 0 ? strerror((int)os_errno) : "",
	    os_errno != 0 ? ")" : "");
	return u->reply.res->why_text;
}

/* Where upstream i of the route gets this request, for libcurl and the log. */
static int
upstream_point(struct upstream *u, const struct route *r, size_t i, const char *target,
    char *ret_target, size_t size, const char **ret_why)
{
	const struct upstream_def *d = &r->upstreams[i];
	size_t len;
	int status;

	if ((status = route_rewrite(r, i, target, ret_target, size, ret_why)) != 0)
		return status;
	/* For the log; one too long for it names the upstream alone. */
	len = 0;
	if (http_cat(u->url, sizeof(u->url), &len, d->url, ret_target + strlen(d->base), NULL) < 0)
		(void)http_cat(u->url, sizeof(u->url), &len, d->url, NULL);
	/*
	 * Given a URL string, libcurl parses it again for every request; given
	 * a parsed one (CURLOPT_CURLU), it copies it. Requests of a connection
	 * nearly always go to the same upstream, so its origin is parsed once
	 * and kept until another one is asked.
	 */
	if (u->origin_of != d) {
		u->origin_of = NULL;
		if (curl_url_set(u->origin, CURLUPART_URL, d->origin, CURLU_NON_SUPPORT_SCHEME) !=
		    CURLUE_OK) {
			*ret_why = "libcurl refused the upstream's URL";
			return 502;
		}
		u->origin_of = d;
	}
	curl_easy_setopt(u->curl, CURLOPT_CURLU, u->origin);
	/* The string too: libcurl parses it instead when it sends again after a 417. */
	curl_easy_setopt(u->curl, CURLOPT_URL, d->origin);
	curl_easy_setopt(u->curl, CURLOPT_REQUEST_TARGET, ret_target);
	curl_easy_setopt(u->curl, CURLOPT_UNIX_SOCKET_PATH, d->unix_path);
	curl_easy_setopt(u->curl, CURLOPT_CAINFO, d->kind == UPSTREAM_HTTPS ? r->ca_file : NULL);
	return 0;
}

/* Forget a failed attempt, so the next upstream starts clean. */
static void
transfer_rewind(struct transfer *t)
{
	response_begin(&t->up->resp, t->route->max_response_fields, t->route->max_response_head);
	t->staged_off = 0;
	t->body_handed = 0;
	t->sends = 0;
	t->last_progress = conn_now_usec();
	/* The client was just heard from: the first check can wait an interval. */
	t->last_liveness = t->last_progress;
	t->last_dl = t->last_ul = -1;
	t->body_paused = false;
	t->body_since = 0;
	t->expect_refused = false;
	t->up->errbuf[0] = '\0';
}

/*
 * The final answer is out whole, and the client's body is not all read. Its
 * head may still be held only when it is a bodiless 417 to our Expect
 * (upstream_relay_head()); upstream_forward() flushes it once the loop ends.
 */
static bool
upstream_answered_early(const struct transfer *t)
{
	return t->up->reply.state != REPLY_NONE && t->up->reply.left == 0 && !t->h->body_done;
}
/*
 * curl_easy_perform() with the client in the poll: libcurl runs the
 * transfer, and while the upload is paused for want of the client's body,
 * the client's socket wakes us to resume it. The read callback turns a
 * client silent for too long into a 408.
 */
static CURLcode
upstream_perform(struct upstream *u, struct transfer *t)
{
	struct curl_waitfd client = { .fd = t->h->conn->fd, .events = CURL_WAIT_POLLIN };
	CURLcode rc = CURLE_OK;
	CURLMcode mc;
	CURLMsg *msg;
	int64_t left;
	int running = 0, wait_ms, nmsgs;

	if ((mc = curl_multi_add_handle(u->multi, u->curl)) != CURLM_OK)
		return CURLE_OUT_OF_MEMORY;
	for (;;) {
		if ((mc = curl_multi_perform(u->multi, &running)) != CURLM_OK || running == 0)
			break;
		/*
		 * The upstream answered in full before taking the whole body and
		 * closes (an early 401 or 413 with Connection: close, which keeps
		 * libcurl sending): that answer is the client's, and the rest of
		 * the body is nobody's. Removing the handle drops the connection.
		 * An upstream that keeps the connection may still read the body
		 * (a 202 before it): libcurl sends it, or stops by itself on a
		 * refusal.
		 */
		if (upstream_answered_early(t) && u->resp.closes)
			break;
		wait_ms = UPSTREAM_POLL_MS;
		if (t->body_paused) {
			/* Wake in time for the read callback to declare the body stalled. */
			left = t->body_since + HTTP_BODY_TIMEOUT_MS * 1000LL - conn_now_usec();
			if (left < (int64_t)wait_ms * 1000)
				wait_ms = left > 0 ? (int)((left + 999) / 1000) : 0;
		}
		if ((mc = curl_multi_poll(u->multi, &client, t->body_paused ? 1 : 0, wait_ms,
		    NULL)) != CURLM_OK)
			break;
		/*
		 * Whatever woke us, let the read callback look: it takes what the
		 * client sent, sees its end or error, or declares the stall. Only
		 * POLLIN is reported for the client, so waiting on that alone
		 * could spin on a socket that has only an error.
		 */
		if (t->body_paused) {
			t->body_paused = false;
			curl_easy_pause(u->curl, CURLPAUSE_CONT);
		}
	}
	if (mc != CURLM_OK) {
		snprintf(u->errbuf, sizeof(u->errbuf), "%s", curl_multi_strerror(mc));
		rc = CURLE_OUT_OF_MEMORY;
	}
	while ((msg = curl_multi_info_read(u->multi, &nmsgs)) != NULL)
		if (msg->msg == CURLMSG_DONE)
			rc = msg->data.result;
	curl_multi_remove_handle(u->multi, u->curl);
	/*
	 * The client has the whole answer, whatever became of the rest of the
	 * upload: we stopped it, libcurl did, or sending to an upstream that
	 * closed failed.
	 */
	if (upstream_answered_early(t) && u->reply.fail_status == 0) {
		t->res->why = "upstream answered before the whole request body";
		rc = CURLE_OK;
	}
	return rc;
}

/*
 * Forward one request with libcurl, to the route's upstreams in turn as
 * far as failover allows, and answer the client (reply.c) as the response
 * comes. Whatever happens is in res for the log.
 */
void
upstream_forward(struct upstream *u, struct http_server *h, const struct http_request *req,
    const struct route *r, struct reply_result *res)
{
	static char target[ROUTE_MAX_TARGET];
	struct transfer *t = u->t;
	struct reply *rp = &u->reply;
	struct curl_slist *fields;
	CURL *curl;
	const char *why;
	CURLcode rc = CURLE_OK;
	size_t i;
	int status;

	reply_begin(rp, h, req, r, req->trusted, res);
	memset(t, 0, offsetof(struct transfer, staged));
	t->up = u;
	t->h = h;
	t->req = req;
	t->res = res;
	t->route = r;
	if ((fields = upstream_request_fields(u->cfg, r, req, h->conn->peer_addr)) == NULL) {
		reply_fail_quietly(rp, 500, "request fields for the upstream too large");
		goto done;
	}
	if (upstream_check_kept(u, false) < 0 ||
	    (curl = upstream_handle(u, req->chunked)) == NULL) {
		reply_fail_quietly(rp, 500, "out of memory");
		goto done;
	}
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, fields);
	curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, r->connect_timeout_ms);
	upstream_set_method(curl, req, t);

	if (upstream_stage_body(t) < 0)
		rc = CURLE_ABORTED_BY_CALLBACK;
	for (i = 0; rp->fail_status == 0 && i < r->nupstreams; i++) {
		if (i > 0 && !upstream_may_fail_over(t, rc))
			break;
		transfer_rewind(t);
		if ((status = upstream_point(u, r, i, req->target, target, sizeof(target), &why)) != 0) {
			res->client_fault = status < 500;
			reply_fail(rp, status, why);
			break;
		}
		res->forwarded = true;
		rc = upstream_perform(u, t);
		if (rc == CURLE_OK)
			break;
	}

	/* Whatever came after the response keeps its connection from the next request. */
	if (rc == CURLE_OK && upstream_check_kept(u, t->resp_faulty) < 0)
		res->keep_alive = false;
	if (rc == CURLE_OK && rp->state != REPLY_NONE)
		(void)reply_end(rp, &u->resp);
	else if (rp->fail_status == 0)
		/* libcurl's own messages stay in the journal; ours may go to the client. */
		reply_fail_quietly(rp, rp->state != REPLY_NONE ? 502 : upstream_error_status(rc),
		    upstream_why(u, rc));
done:
	reply_finish(rp);
}

/*
 * For a tunnel (tunnel.c): a connection to the first of the route's
 * upstreams that takes one, made by libcurl (its timeouts, and TLS when the
 * upstream has it) and then ours: the handle only connects, and is not
 * used to forward again. Nothing has been sent, so each upstream may be
 * tried. Returns 0, or -1 with the failure recorded in the reply.
 */
int
upstream_connect(struct upstream *u, const struct route *r, const struct http_request *req,
    char *ret_target, size_t size)
{
	struct reply *rp = &u->reply;
	const char *why;
	CURLcode rc = CURLE_OK;
	size_t i;
	int status;

	/* libcurl may pick a kept connection for it: the same check first. */
	if (upstream_check_kept(u, false) < 0 || upstream_fresh_handle(u) < 0)
		return reply_fail_quietly(rp, 500, "out of memory");
	u->stale = true;
	curl_easy_setopt(u->curl, CURLOPT_CONNECT_ONLY, 1L);
	curl_easy_setopt(u->curl, CURLOPT_CONNECTTIMEOUT_MS, r->connect_timeout_ms);
	for (i = 0; i < r->nupstreams; i++) {
		if ((status = upstream_point(u, r, i, req->target, ret_target, size, &why)) != 0) {
			rp->res->client_fault = status < 500;
			return reply_fail(rp, status, why);
		}
		rp->res->forwarded = true;
		u->errbuf[0] = '\0';
		rc = curl_easy_perform(u->curl);
		if (rc == CURLE_OK && curl_easy_getinfo(u->curl, CURLINFO_ACTIVESOCKET,
		    &u->tunnel_fd) == CURLE_OK && u->tunnel_fd != CURL_SOCKET_BAD)
			return 0;
	}
	return reply_fail_quietly(rp, upstream_error_status(rc), upstream_why(u, rc));
}

/* Send all of data on the tunnel's connection, by the deadline. */
int
upstream_send(struct upstream *u, const char *data, size_t len, int64_t deadline)
{
	struct pollfd pfd = { .fd = u->tunnel_fd, .events = POLLOUT };
	size_t sent;
	CURLcode rc;

	while (len > 0) {
		rc = curl_easy_send(u->curl, data, len, &sent);
		if (rc == CURLE_AGAIN) {
			if (conn_now_usec() >= deadline ||
			    poll(&pfd, 1, (int)((deadline - conn_now_usec()) / 1000) + 1) < 0)
				return -1;
			continue;
		}
		if (rc != CURLE_OK)
			return -1;
		data += sent;
		len -= sent;
	}
	return 0;
}

/*
 * Read from the tunnel's connection: the byte count, 0 at its end, -1 on
 * an error, UPSTREAM_RECV_LATER when nothing has come yet.
 */
ssize_t
upstream_recv(struct upstream *u, char *buf, size_t size)
{
	size_t n;
	CURLcode rc;

	rc = curl_easy_recv(u->curl, buf, size, &n);
	if (rc == CURLE_AGAIN)
		return UPSTREAM_RECV_LATER;
	if (rc != CURLE_OK)
		return -1;
	return (ssize_t)n;
}
