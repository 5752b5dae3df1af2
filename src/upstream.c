/*
 * upstream.c - one request through libcurl: the request headers rewritten
 * for the upstream, the body pulled from the client as libcurl asks for it,
 * and the response streamed back piece by piece as it arrives.
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

#include "mount.h"
#include "upstream.h"

/*
 * State of one transfer, passed to every callback. Owned by struct upstream
 * and reused for every request of the connection: only the part before
 * `field_off` is cleared per request, the buffers after it are written
 * before they are read. field_off, head and head_out are one allocation,
 * made in upstream_init() for the largest limits any route sets and freed
 * in upstream_free(); a request is held to its own route's.
 */
struct transfer {
	struct upstream            *up;
	struct http_server         *h;
	const struct http_request  *req;
	struct upstream_result     *res;
	const struct route         *route;

	size_t      head_len;       /* of the response head being collected */
	size_t      nfields;
	int         status;
	char        reason[128];
	bool        head_sent;      /* the final head is made: out, or on its way */
	size_t      held;           /* bytes of it in head_out not yet written */
	bool        chunked_out;    /* we frame the body in chunks */
	bool        no_body;        /* HEAD, 1xx, 204, 304 */
	bool        in_trailers;    /* header lines after the body */
	bool        want_trailers;  /* the client sent TE: trailers */
	bool        failed;         /* aborted on purpose: fail_status, res->why */
	int         fail_status;
	int64_t     last_progress;  /* for the upstream idle timeout */
	int64_t     last_liveness;  /* when the client was last checked */
	curl_off_t  last_dl, last_ul;
	uint64_t    body_handed;    /* request body bytes given to libcurl */
	unsigned    sends;          /* times libcurl began sending this request */
	size_t      staged_len;     /* the body the client had already sent, */
	size_t      staged_off;     /* checked before going upstream */
	bool        body_paused;    /* the upload waits for the client */
	int64_t     body_since;     /* since when it has waited, or 0 */
	int64_t     resp_left;      /* body bytes the final head announced, or -1 */
	bool        resp_closes;    /* the upstream closes after this response */
	bool        resp_http10;    /* its status line said HTTP/1.0 */
	bool        resp_faulty;    /* its framing or what followed ends the connection */
	bool        expect_refused; /* a 417 to our Expect, its head held */
	char        why[128];       /* res->why, when it is made here */

	/* Buffers, not cleared between requests. */
	size_t     *field_off;      /* [max_fields]: where each field is in head */
	char       *head;           /* [head_size]: the fields, NUL-terminated */
	char       *head_out;       /* [out_size]: the head for the client */
	size_t      max_fields, head_size, out_size;
	char        staged[UPSTREAM_STAGE_SIZE];
};

static int
transfer_fail(struct transfer *t, int status, const char *why)
{
	if (status == 499)
		t->res->client_fault = true;
	if (!t->failed) {
		t->failed = true;
		t->fail_status = status;
		t->res->why = why;
	}
	return -1;
}

/* A 502 for a response head past one of the route's limits, saying which. */
static int
transfer_fail_limit(struct transfer *t, bool fields)
{
	const char *what = t->in_trailers ? "trailers" : "response head";

	if (t->failed)
		return -1;
	if (fields)
		snprintf(t->why, sizeof(t->why), "upstream %s: more than max-response-fields (%zu) fields",
		    what, t->route->max_response_fields);
	else
		snprintf(t->why, sizeof(t->why), "upstream %s larger than max-response-head (%zu bytes)",
		    what, t->route->max_response_head);
	return transfer_fail(t, 502, t->why);
}

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
CURL *
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
 * A handle for a tunnel: fresh, only connecting. The connection is then
 * ours, so the handle is not used to forward again.
 */
CURL *
upstream_tunnel_handle(struct upstream *u)
{
	/* libcurl may pick a kept connection for it: the same check first. */
	if (upstream_check_kept(u, false) < 0 || upstream_fresh_handle(u) < 0)
		return NULL;
	u->stale = true;
	curl_easy_setopt(u->curl, CURLOPT_CONNECT_ONLY, 1L);
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
	t->max_fields = fields;
	t->head_size = head;
	t->out_size = head + UPSTREAM_HEAD_OUT_EXTRA;
	t->field_off = malloc(fields * sizeof(*t->field_off) + t->head_size + t->out_size);
	if (t->field_off == NULL)
		return -1;
	t->head = (char *)(t->field_off + fields);
	t->head_out = t->head + t->head_size;
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
	if (u->t != NULL)
		free(u->t->field_off);
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

/* Is this field named by one of the route's remove or set rules? */
static bool
upstream_rule_replaces(const struct header_rule *rules, size_t n, const char *name, size_t len)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (rules[i].op != HEADER_ADD && http_name_eq(name, len, rules[i].name))
			return true;
	return false;
}

/*
 * Request headers for the upstream. libcurl sends CURLOPT_HTTPHEADER
 * strings verbatim; they are safe because the http layer rejected CR, LF,
 * NUL and other control bytes in names and values, and the configuration
 * did the same for its rules.
 */
static bool
upstream_skip_request_field(const struct route *r, const struct http_request *req,
    const struct http_header *hd, bool trusted)
{
	size_t i;

	if (http_is_hop_by_hop(hd->name, hd->name_len) ||
	    http_name_eq(hd->name, hd->name_len, "Content-Length") ||
	    (!r->preserve_host && http_name_eq(hd->name, hd->name_len, "Host")) ||
	    upstream_rule_replaces(r->request_rules, r->nrequest_rules, hd->name, hd->name_len))
		return true;
	/*
	 * Where the request came from is ours to say, in every spelling a
	 * backend may read, unless a trusted proxy said it (the canonical
	 * names are collected in upstream_request_fields()).
	 */
	if (!trusted && http_is_forwarded_address(hd->name, hd->name_len) &&
	    !http_name_eq(hd->name, hd->name_len, "X-Forwarded-For") &&
	    !http_name_eq(hd->name, hd->name_len, "X-Forwarded-Prefix") &&
	    !http_name_eq(hd->name, hd->name_len, "X-Forwarded-Host") &&
	    !http_name_eq(hd->name, hd->name_len, "X-Forwarded-Proto") &&
	    !http_name_eq(hd->name, hd->name_len, "Forwarded"))
		return true;
	/* Fields the client named in Connection are hop-by-hop too, but not ours. */
	if (http_connection_protected(hd->name, hd->name_len))
		return false;
	for (i = 0; i < req->nheaders; i++)
		if (http_name_eq(req->headers[i].name, req->headers[i].name_len, "Connection") &&
		    http_list_has(req->headers[i].value, req->headers[i].value_len,
		    hd->name, hd->name_len))
			return true;
	return false;
}

/* Append "name" sep "value": sep is ": ", or ";" for an empty value. */
static int
upstream_add(struct curl_slist **list, const char *name, const char *sep, const char *value)
{
	char line[HTTP_MAX_HEADER_BYTES + 256];
	struct curl_slist *l;
	size_t len = 0;

	if (http_cat(line, sizeof(line), &len, name, sep, value, NULL) < 0)
		return -1;
	if ((l = curl_slist_append(*list, line)) == NULL)
		return -1;
	*list = l;
	return 0;
}

/*
 * The request's fields for libcurl (CURLOPT_HTTPHEADER, which libcurl only
 * reads), made without allocating: the list's nodes and their text in one
 * block, reused by every request of the connection.
 */
struct fields {
	struct curl_slist   node[UPSTREAM_MAX_FIELDS];
	size_t              n;
	size_t              used;
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

/* Append ", value" to a list being collected from repeated fields. */
static int
upstream_collect(char *buf, size_t size, const char *value)
{
	size_t len = strlen(buf);

	return http_cat(buf, size, &len, len > 0 ? ", " : "", value, NULL);
}

/*
 * X-Forwarded-*, Forwarded and Via. A client's own X-Forwarded-* and
 * Forwarded are believed, and appended to, only when it is a trusted
 * proxy; from anyone else they are replaced, so a client cannot choose the
 * address the upstream sees.
 */
struct forwarding {
	char    xff[HTTP_MAX_HEADER_BYTES];
	char    prefix[HTTP_MAX_HEADER_BYTES];  /* X-Forwarded-Prefix */
	char    forwarded[HTTP_MAX_HEADER_BYTES];
	char    via[HTTP_MAX_HEADER_BYTES];
	bool    xf_host;
	bool    xf_proto;
};

/* A field a set or remove rule names is the rule's, not ours. */
static bool
upstream_ruled(const struct route *r, const char *name)
{
	return upstream_rule_replaces(r->request_rules, r->nrequest_rules, name, strlen(name));
}

static int
upstream_forwarding_fields(struct fields *list, const struct config *cfg,
    const struct route *r, const struct http_request *req, const char *peer,
    struct forwarding *fw)
{
	char node[HTTP_MAX_HEADER_BYTES + 128];

	if (upstream_collect(fw->xff, sizeof(fw->xff), peer) < 0 ||
	    (!upstream_ruled(r, "X-Forwarded-For") &&
	     fields_add(list, "X-Forwarded-For", ": ", fw->xff) < 0) ||
	    (!fw->xf_host && req->host != NULL && !upstream_ruled(r, "X-Forwarded-Host") &&
	     fields_add(list, "X-Forwarded-Host", ": ", req->host) < 0) ||
	    (!fw->xf_proto && !upstream_ruled(r, "X-Forwarded-Proto") &&
	     fields_add(list, "X-Forwarded-Proto", ": ", "http") < 0))
		return -1;
	/*
	 * Where a prefix-stripping route is mounted (Traefik's stripPrefix
	 * convention), appended to a trusted proxy's own as X-Forwarded-For is.
	 */
	if (r->strip_prefix && r->prefix_len > 0 &&
	    upstream_collect(fw->prefix, sizeof(fw->prefix), r->prefix) < 0)
		return -1;
	if (fw->prefix[0] != '\0' && !upstream_ruled(r, "X-Forwarded-Prefix") &&
	    fields_add(list, "X-Forwarded-Prefix", ": ", fw->prefix) < 0)
		return -1;
	if (cfg->forwarded && !upstream_ruled(r, "Forwarded")) {
		/* RFC 7239: an IPv6 node is bracketed and quoted; quote the host always. */
		snprintf(node, sizeof(node), strchr(peer, ':') != NULL ?
		    "for=\"[%s]\";proto=http" : "for=%s;proto=http", peer);
		if (req->host != NULL && strpbrk(req->host, "\"\\") == NULL) {
			size_t len = strlen(node);
			snprintf(node + len, sizeof(node) - len, ";host=\"%s\"", req->host);
		}
		if (upstream_collect(fw->forwarded, sizeof(fw->forwarded), node) < 0 ||
		    fields_add(list, "Forwarded", ": ", fw->forwarded) < 0)
			return -1;
	}
	if (cfg->via && !upstream_ruled(r, "Via")) {
		if (upstream_collect(fw->via, sizeof(fw->via),
		    req->version >= 11 ? "1.1 gfproxy" : "1.0 gfproxy") < 0 ||
		    fields_add(list, "Via", ": ", fw->via) < 0)
			return -1;
	}
	return 0;
}

/*
 * The fields for the upstream, as a list for CURLOPT_HTTPHEADER that stays
 * valid until the next call; NULL if they do not fit.
 */
struct curl_slist *
upstream_request_fields(const struct config *cfg, const struct route *r,
    const struct http_request *req, const char *peer, bool *ret_trailers)
{
	/* Large buffers: static, as one process serves one client. */
	static struct forwarding forwarding;
	static struct fields fields;
	struct forwarding *fw = &forwarding;
	struct fields *list = &fields;
	const struct http_header *hd;
	bool trusted = config_trusted(cfg, peer), accept = false, expect = false;
	bool trailers = false;
	size_t i;

	list->n = list->used = 0;
	fw->xff[0] = fw->prefix[0] = fw->forwarded[0] = fw->via[0] = '\0';
	fw->xf_host = fw->xf_proto = false;
	for (i = 0; i < req->nheaders; i++) {
		hd = &req->headers[i];
		if (http_name_eq(hd->name, hd->name_len, "TE") &&
		    http_list_has(hd->value, hd->value_len, "trailers", 8))
			trailers = true;
		if (upstream_skip_request_field(r, req, hd, trusted))
			continue;
		if (http_name_eq(hd->name, hd->name_len, "X-Forwarded-For")) {
			if (trusted && upstream_collect(fw->xff, sizeof(fw->xff), hd->value) < 0)
				goto fail;
			continue;
		}
		if (http_name_eq(hd->name, hd->name_len, "X-Forwarded-Prefix")) {
			if (trusted && upstream_collect(fw->prefix, sizeof(fw->prefix), hd->value) < 0)
				goto fail;
			continue;
		}
		if (http_name_eq(hd->name, hd->name_len, "Forwarded")) {
			if (trusted && upstream_collect(fw->forwarded, sizeof(fw->forwarded),
			    hd->value) < 0)
				goto fail;
			if (trusted && !cfg->forwarded)
				goto pass;
			continue;
		}
		if (http_name_eq(hd->name, hd->name_len, "X-Forwarded-Host") ||
		    http_name_eq(hd->name, hd->name_len, "X-Forwarded-Proto")) {
			if (!trusted)
				continue;
			if (hd->name_len == strlen("X-Forwarded-Host"))
				fw->xf_host = true;
			else
				fw->xf_proto = true;
			goto pass;
		}
		if (cfg->via && http_name_eq(hd->name, hd->name_len, "Via")) {
			if (upstream_collect(fw->via, sizeof(fw->via), hd->value) < 0)
				goto fail;
			continue;
		}
pass:
		accept |= http_name_eq(hd->name, hd->name_len, "Accept");
		expect |= http_name_eq(hd->name, hd->name_len, "Expect");
		/* libcurl reads "Name:" as "remove Name"; "Name;" sends it empty. */
		if (fields_add(list, hd->name, hd->value_len > 0 ? ": " : ";", hd->value) < 0)
			goto fail;
	}
	if (upstream_forwarding_fields(list, cfg, r, req, peer, fw) < 0)
		goto fail;
	for (i = 0; i < r->nrequest_rules; i++) {
		if (r->request_rules[i].op == HEADER_REMOVE)
			continue;
		if (fields_add(list, r->request_rules[i].name,
		    *r->request_rules[i].value != '\0' ? ": " : ";", r->request_rules[i].value) < 0)
			goto fail;
		accept |= strcasecmp(r->request_rules[i].name, "Accept") == 0;
	}
	/* TE is hop-by-hop, but we relay trailers, so we may ask for them too. */
	if (trailers && fields_add(list, "TE", ": ", "trailers") < 0)
		goto fail;
	/* Keep libcurl from adding what the client did not send. */
	if ((!accept && fields_add(list, "Accept", ":", "") < 0) ||
	    (!expect && fields_add(list, "Expect", ":", "") < 0))
		goto fail;
	*ret_trailers = trailers;
	return &list->node[0];
fail:
	return NULL;
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
		transfer_fail(t, t->h->status, t->h->why);
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
			return transfer_fail(t, h->status, h->why);
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
	const struct http_header *hd;
	size_t i;

	for (i = 0; i < t->req->ntrailers; i++) {
		hd = &t->req->trailers[i];
		if (http_trailer_forbidden(hd->name, hd->name_len))
			continue;
		if (upstream_add(list, hd->name, hd->value_len > 0 ? ": " : ";", hd->value) < 0)
			return CURL_TRAILERFUNC_ABORT;
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

static bool
upstream_field_is(const char *line, const char *name)
{
	size_t len = strlen(name);

	return strncasecmp(line, name, len) == 0 && line[len] == ':';
}

/* Is this response field one the client must not see? */
static bool
upstream_skip_response_field(struct transfer *t, const char *line)
{
	size_t i, nlen = strcspn(line, ":");
	const char *v;

	if (http_is_hop_by_hop(line, nlen) ||
	    upstream_rule_replaces(t->route->response_rules, t->route->nresponse_rules, line, nlen))
		return true;
	/* RFC 9110 8.6: a 1xx or 204 has no Content-Length. */
	if ((t->status < 200 || t->status == 204) && http_name_eq(line, nlen, "Content-Length"))
		return true;
	/* The upstream's Connection list cannot take away the body's length. */
	if (http_connection_protected(line, nlen))
		return false;
	for (i = 0; i < t->nfields; i++) {
		v = t->head + t->field_off[i];
		if (upstream_field_is(v, "Connection")) {
			v += sizeof("Connection");
			if (http_list_has(v, strlen(v), line, nlen))
				return true;
		}
	}
	return false;
}

/*
 * A write to the client failed: it is gone, and so is keep-alive. If the
 * write held the final head, the client never had an answer: 499, not a
 * truncated response.
 */
static int
upstream_client_lost(struct transfer *t, bool with_head)
{
	if (with_head)
		t->head_sent = false;
	t->res->keep_alive = false;
	return transfer_fail(t, 499, conn_lost_why(t->h->conn));
}

/*
 * Write the response head for the client: the upstream's fields in order,
 * less hop-by-hop ones, with framing of our own where the upstream's cannot
 * pass through.
 */
static int
upstream_send_head(struct transfer *t)
{
	char *out = t->head_out;
	const size_t cap = t->out_size;
	const struct http_request *req = t->req;
	struct mount_view mount;
	size_t i, len = 0;
	bool has_length = false, has_te = false, interim = t->status < 200;
	bool closes = false, keeps = false;
	const char *line, *v;
	char code[4];
	long long length = -1;

	for (i = 0; i < t->nfields; i++) {
		line = t->head + t->field_off[i];
		if (upstream_field_is(line, "Content-Length")) {
			/* One plain decimal, or the framing is ambiguous. */
			v = line + sizeof("Content-Length");
			v += strspn(v, " \t");
			if (has_length || strspn(v, "0123456789") == 0 ||
			    v[strspn(v, "0123456789") + strspn(v + strspn(v, "0123456789"), " \t")] != '\0')
				return transfer_fail(t, 502, "invalid Content-Length from upstream");
			/* Beyond 63 bits libcurl ignores it and reads to the close. */
			errno = 0;
			length = strtoll(v, NULL, 10);
			if (errno == ERANGE)
				return transfer_fail(t, 502, "invalid Content-Length from upstream");
			has_length = true;
		} else if (upstream_field_is(line, "Transfer-Encoding")) {
			/*
			 * Only chunked, once, as from a client: libcurl decodes
			 * nothing else, and a coding after chunked would make the
			 * body end at the close (RFC 9112 6.3), so the client
			 * would get bytes framed other than they were sent.
			 */
			v = line + sizeof("Transfer-Encoding");
			v += strspn(v, " \t");
			if (has_te || strncasecmp(v, "chunked", 7) != 0 ||
			    v[7 + strspn(v + 7, " \t")] != '\0')
				return transfer_fail(t, 502, "Transfer-Encoding other than chunked from upstream");
			has_te = true;
		} else if (upstream_field_is(line, "Connection")) {
			v = line + sizeof("Connection");
			closes |= http_list_has(v, strlen(v), "close", 5);
			keeps |= http_list_has(v, strlen(v), "keep-alive", 10);
		}
	}
	if (has_length && has_te)
		return transfer_fail(t, 502, "upstream sent both Content-Length and Transfer-Encoding");

	if (!interim) {
		t->no_body = http_body_forbidden(req->method, t->status);
		t->resp_left = t->no_body ? 0 : has_length ? length : -1;
		/*
		 * RFC 9112 6.1: Transfer-Encoding in an HTTP/1.0 message is
		 * faulty framing; the connection closes after it, whatever it
		 * says about keep-alive.
		 */
		t->resp_faulty = t->resp_http10 && has_te;
		t->resp_closes = closes || (t->resp_http10 && !keeps) || t->resp_faulty;
		/* A body we did not read keeps us from reading the next request. */
		if (!t->h->body_done || t->h->closing)
			t->res->keep_alive = false;
		if (!t->no_body && !has_length) {
			if (req->version >= 11)
				t->chunked_out = true;
			else
				t->res->keep_alive = false;  /* HTTP/1.0: the close ends it */
		}
	}

	/* The status was checked to be three digits. */
	code[0] = (char)('0' + t->status / 100);
	code[1] = (char)('0' + t->status / 10 % 10);
	code[2] = (char)('0' + t->status % 10);
	code[3] = '\0';
	if (http_cat(out, cap, &len, "HTTP/1.1 ", code, " ", t->reason, "\r\n", NULL) < 0)
		return transfer_fail(t, 502, "upstream response head too large");
	/* Redirects and cookies translated for the route's prefix (mount.c). */
	mount_view_init(&mount, t->route, req, config_trusted(t->up->cfg, t->h->conn->peer_addr));
	for (i = 0; i < t->nfields; i++) {
		line = t->head + t->field_off[i];
		if (upstream_skip_response_field(t, line))
			continue;
		if (mount_cat_line(&mount, out, cap, &len, line) < 0 ||
		    http_cat(out, cap, &len, "\r\n", NULL) < 0)
			return transfer_fail(t, 502, "upstream response head too large");
	}
	for (i = 0; !interim && i < t->route->nresponse_rules; i++) {
		const struct header_rule *rule = &t->route->response_rules[i];
		if (rule->op != HEADER_REMOVE &&
		    http_cat(out, cap, &len, rule->name, ": ", rule->value, "\r\n", NULL) < 0)
			return transfer_fail(t, 502, "upstream response head too large");
	}
	if (!interim && ((t->chunked_out &&
	    http_cat(out, cap, &len, "Transfer-Encoding: chunked\r\n", NULL) < 0) ||
	    (!t->res->keep_alive && http_cat(out, cap, &len, "Connection: close\r\n", NULL) < 0) ||
	    (t->res->keep_alive && req->version < 11 &&
	     http_cat(out, cap, &len, "Connection: keep-alive\r\n", NULL) < 0)))
		return transfer_fail(t, 502, "upstream response head too large");
	if (http_cat(out, cap, &len, "\r\n", NULL) < 0)
		return transfer_fail(t, 502, "upstream response head too large");

	if (!interim) {
		t->head_sent = true;
		t->res->status = t->status;
		/* libcurl may still ask for the body, its wait for a 100 over. */
		http_answer_begun(t->h);
	}
	/*
	 * A 417 to the Expect: 100-continue we forwarded, before any of the
	 * body: libcurl then drops this answer's body and sends the request
	 * again without waiting, which upstream_prereq_cb turns into our own
	 * 417. If it does not (the upstream closes), the body comes and the
	 * head goes with it. Until then the head is held.
	 */
	if (t->status == 417 && req->expect_continue && t->body_handed == 0) {
		t->expect_refused = true;
		/* libcurl expects no 100 on this handle again: do not reuse it. */
		t->up->stale = true;
		t->held = len;
		return 0;
	}
	/*
	 * The final head is held until the first body bytes, so a small
	 * response leaves in one write and one segment; the progress callback
	 * flushes it once libcurl has handled what it read, so a head whose
	 * body comes later is not kept waiting. Not while the request body is
	 * still coming: libcurl would read it before calling back, and a client
	 * may wait for the head (an early 401 or 413) before sending more.
	 */
	if (!interim && t->h->body_done) {
		t->held = len;
		return 0;
	}
	if (conn_write(t->h->conn, out, len) < 0)
		return upstream_client_lost(t, !interim);
	return 0;
}

/* Write the held head, if any, before whatever follows it. */
static int
upstream_flush_head(struct transfer *t)
{
	size_t len = t->held;

	if (len == 0)
		return 0;
	t->held = 0;
	if (conn_write(t->h->conn, t->head_out, len) < 0)
		return upstream_client_lost(t, true);
	return 0;
}

/* "HTTP/1.1 200 OK": keep the code, and the reason if it is clean text. */
static int
upstream_status_line(struct transfer *t, const char *line, size_t len)
{
	struct http_status_line sl;
	const char *why, *p;

	if (http_check_status_line(line, len, &sl, &why) < 0)
		return transfer_fail(t, 502, why);
	t->status = sl.status;
	t->resp_http10 = sl.http10;
	p = sl.reason;
	len = sl.reason_len;
	if (p == NULL || len == 0 || len >= sizeof(t->reason)) {
		p = http_reason(t->status);
		len = strnlen(p, sizeof(t->reason) - 1);
	}
	memcpy(t->reason, p, len);
	t->reason[len] = '\0';
	t->head_len = t->nfields = 0;
	return 0;
}

/*
 * Called once per header line, not NUL-terminated, for every response
 * including interim ones, and for trailers after the body.
 */
static size_t
upstream_header_cb(char *buf, size_t size, size_t nmemb, void *userdata)
{
	struct transfer *t = userdata;
	size_t len = size * nmemb, n, name_len;
	const char *why;

	/* RFC 9112 2.2: CRLF ends each line, as the client's must. */
	if (len < 2 || buf[len - 2] != '\r' || buf[len - 1] != '\n')
		return transfer_fail(t, 502, "upstream header line not ended by CRLF"), 0;
	n = len - 2;

	if (t->in_trailers && n == 0)
		return len;     /* the end of the trailer section */
	if (!t->in_trailers && n >= 5 && strncmp(buf, "HTTP/", 5) == 0 && t->head_len == 0) {
		if (upstream_status_line(t, buf, n) < 0)
			return 0;
		return len;
	}
	if (t->status == 0 && !t->in_trailers)
		return transfer_fail(t, 502, "invalid status line from upstream"), 0;

	if (n == 0) {
		/* End of a head. */
		if (t->status == 100) {
			if (http_send_continue(t->h) < 0)
				return transfer_fail(t, 499, conn_lost_why(t->h->conn)), 0;
		} else if (t->status == 101) {
			return transfer_fail(t, 502, "unexpected 101 from upstream"), 0;
		} else if (t->status >= 200 || t->req->version >= 11) {
			if (upstream_send_head(t) < 0)
				return 0;
			if (t->status >= 200)
				t->in_trailers = true;
		}
		t->head_len = t->nfields = 0;
		if (t->status < 200)
			t->status = 0;
		return len;
	}

	/* A field line: no folding, no control bytes, a token for a name. */
	if (http_check_response_field(buf, n, &name_len, &why) < 0)
		return transfer_fail(t, 502, why), 0;
	/*
	 * Held to the route's limits, counting the bytes as sent: each field
	 * is kept with a NUL for its CRLF, head_len + nfields bytes so far.
	 */
	if (t->nfields == t->route->max_response_fields || t->nfields == t->max_fields)
		return transfer_fail_limit(t, true), 0;
	if (t->head_len + t->nfields + n + 2 > t->route->max_response_head ||
	    n + 1 > t->head_size - t->head_len)
		return transfer_fail_limit(t, false), 0;
	t->field_off[t->nfields++] = t->head_len;
	memcpy(t->head + t->head_len, buf, n);
	t->head_len += n;
	t->head[t->head_len++] = '\0';
	return len;
}

/*
 * The last chunk, with the upstream's trailers if the client asked for them,
 * after the head if it is still held (an empty body).
 */
static int
upstream_send_last_chunk(struct transfer *t)
{
	char out[UPSTREAM_TRAILERS_SIZE];
	const char *line;
	size_t i, len = 0;
	struct iovec iov[2];

	if (http_cat(out, sizeof(out), &len, "0\r\n", NULL) < 0)
		return -1;
	for (i = 0; t->want_trailers && i < t->nfields; i++) {
		line = t->head + t->field_off[i];
		if (http_trailer_forbidden(line, strcspn(line, ":")))
			continue;
		if (http_cat(out, sizeof(out), &len, line, "\r\n", NULL) < 0)
			break;  /* what does not fit is dropped, the body is complete */
	}
	if (len + 2 > sizeof(out))
		len = 3;
	memcpy(out + len, "\r\n", 2);
	iov[0] = (struct iovec){ t->head_out, t->held };
	iov[1] = (struct iovec){ out, len + 2 };
	if (conn_writev(t->h->conn, iov, 2) < 0) {
		if (t->held > 0)
			t->head_sent = false;   /* the client never had an answer */
		t->held = 0;
		return -1;
	}
	t->held = 0;
	return 0;
}

/* "1f40\r\n": the size line of a chunk of len bytes, in buf. */
static struct iovec
upstream_chunk_line(char buf[static 24], size_t len)
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
 * Response body: straight to the client, after the head if it is still
 * held, in a chunk of its own if we frame.
 */
static size_t
upstream_write_cb(char *buf, size_t size, size_t nmemb, void *userdata)
{
	struct transfer *t = userdata;
	size_t len = size * nmemb;
	char chunk[24];
	struct iovec iov[4];
	bool with_head;
	int n = 0;

	if (!t->head_sent)
		return transfer_fail(t, 502, "upstream body before its head"), 0;
	if (t->no_body || len == 0)
		return len;
	with_head = t->held > 0;
	iov[n++] = (struct iovec){ t->head_out, t->held };
	if (t->chunked_out)
		iov[n++] = upstream_chunk_line(chunk, len);
	iov[n++] = (struct iovec){ buf, len };
	if (t->chunked_out)
		iov[n++] = (struct iovec){ (char *)"\r\n", 2 };
	t->held = 0;
	if (conn_writev(t->h->conn, iov, n) < 0)
		return upstream_client_lost(t, with_head), 0;
	t->res->bytes_sent += len;
	if (t->resp_left > 0)
		t->resp_left -= (int64_t)len < t->resp_left ? (int64_t)len : t->resp_left;
	return len;
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
	struct pollfd pfd = { .fd = t->h->conn->fd, .events = POLLRDHUP };
	char byte;

	if (!t->h->body_done || conn_pending(t->h->conn) > 0 || poll(&pfd, 1, 0) <= 0)
		return false;
	if (pfd.revents & (POLLHUP | POLLERR))
		return true;
	/* Shut for writing: gone, unless pipelined bytes are still to be read. */
	return (pfd.revents & POLLRDHUP) && recv(t->h->conn->fd, &byte, 1, MSG_PEEK) == 0;
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
	if (!t->expect_refused && upstream_flush_head(t) < 0)
		return 1;
	/*
	 * A client that left is noticed in every phase: a write to it would fail
	 * by itself, but an upstream silent mid-response gives nothing to write.
	 */
	if (now - t->last_liveness >= UPSTREAM_LIVENESS_INTERVAL_MS * 1000LL) {
		t->last_liveness = now;
		if (upstream_client_gone(t)) {
			transfer_fail(t, 499, "client went away");
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
	transfer_fail(t, 504, t->head_sent ? "upstream stalled mid-response" :
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
		t->held = 0;
		t->head_sent = false;
		transfer_fail(t, 417, "upstream refused Expect: 100-continue");
		return CURL_PREREQFUNC_ABORT;
	}
	if (++t->sends > 1) {
		/* A resend: libcurl counts them for the life of the handle. */
		t->up->stale = true;
		if (!upstream_idempotent(t->req) || t->req->has_body) {
			transfer_fail(t, 502, "upstream closed a reused connection; not resending");
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

	if (t->head_sent || t->failed)
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
	snprintf(u->why, sizeof(u->why), "%s%s%s%s",
	    u->errbuf[0] != '\0' ? u->errbuf : curl_easy_strerror(rc),
	    os_errno != 0 ? " (" : "", os_errno != 0 ? strerror((int)os_errno) : "",
	    os_errno != 0 ? ")" : "");
	return u->why;
}

/* Where upstream i of the route gets this request, for libcurl and the log. */
int
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
	t->status = 0;
	t->head_len = t->nfields = 0;
	t->in_trailers = false;
	t->staged_off = 0;
	t->body_handed = 0;
	t->sends = 0;
	t->last_progress = conn_now_usec();
	/* The client was just heard from: the first check can wait an interval. */
	t->last_liveness = t->last_progress;
	t->last_dl = t->last_ul = -1;
	t->body_paused = false;
	t->body_since = 0;
	t->resp_left = -1;
	t->expect_refused = false;
	t->up->errbuf[0] = '\0';
}

/*
 * The final answer is out whole, and the client's body is not all read. Its
 * head may still be held only when it is a bodiless 417 to our Expect
 * (upstream_send_head()); upstream_forward() flushes it once the loop ends.
 */
static bool
upstream_answered_early(const struct transfer *t)
{
	return t->head_sent && t->resp_left == 0 && !t->h->body_done;
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
		if (upstream_answered_early(t) && t->resp_closes)
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
	if (upstream_answered_early(t) && !t->failed) {
		t->res->why = "upstream answered before the whole request body";
		rc = CURLE_OK;
	}
	return rc;
}

void
upstream_forward(struct upstream *u, struct http_server *h, const struct http_request *req,
    const struct route *r, struct upstream_result *res)
{
	static char target[ROUTE_MAX_TARGET];
	struct transfer *t = u->t;
	struct curl_slist *fields;
	CURL *curl;
	const char *why;
	CURLcode rc = CURLE_OK;
	size_t i;
	int status;

	memset(res, 0, sizeof(*res));
	res->keep_alive = req->keep_alive;
	memset(t, 0, offsetof(struct transfer, field_off));
	fields = upstream_request_fields(u->cfg, r, req, h->conn->peer_addr, &t->want_trailers);
	curl = fields != NULL && upstream_check_kept(u, false) == 0 ?
	    upstream_handle(u, req->chunked) : NULL;
	if (curl == NULL) {
		res->status = 500;
		res->why = fields == NULL ? "request fields for the upstream too large" :
		    "out of memory";
		res->keep_alive = false;
		http_error(h->conn, res->status, NULL);
		return;
	}
	t->up = u;
	t->h = h;
	t->req = req;
	t->res = res;
	t->route = r;
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, fields);
	curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, r->connect_timeout_ms);
	upstream_set_method(curl, req, t);

	if (upstream_stage_body(t) < 0)
		rc = CURLE_ABORTED_BY_CALLBACK;
	for (i = 0; !t->failed && i < r->nupstreams; i++) {
		if (i > 0 && !upstream_may_fail_over(t, rc))
			break;
		transfer_rewind(t);
		if ((status = upstream_point(u, r, i, req->target, target, sizeof(target), &why)) != 0) {
			res->client_fault = status < 500;
			transfer_fail(t, status, why);
			rc = CURLE_ABORTED_BY_CALLBACK;
			break;
		}
		res->forwarded = true;
		res->tries++;
		rc = upstream_perform(u, t);
		if (rc == CURLE_OK)
			break;
	}

	/* Whatever came after the response keeps its connection from the next request. */
	if (rc == CURLE_OK && upstream_check_kept(u, t->resp_faulty) < 0)
		res->keep_alive = false;
	/* libcurl saw the end, the length we relayed says otherwise: a cut. */
	if (rc == CURLE_OK && t->head_sent && t->resp_left > 0)
		rc = CURLE_PARTIAL_FILE;
	if (rc == CURLE_OK && t->head_sent) {
		if ((t->chunked_out ? upstream_send_last_chunk(t) : upstream_flush_head(t)) < 0) {
			res->why = conn_lost_why(t->h->conn);
			res->keep_alive = false;
			if (!t->head_sent)
				res->status = 499;  /* not even the head reached it */
		}
	} else if (t->head_sent) {
		/*
		 * The head is out, so the only honest signal left is to close
		 * without the final chunk or the promised length.
		 */
		if (t->held > 0)
			(void)conn_write(h->conn, t->head_out, t->held);
		res->truncated = true;
		res->keep_alive = false;
		if (!t->failed)
			res->why = u->errbuf[0] != '\0' ? u->errbuf : curl_easy_strerror(rc);
	} else {
		res->keep_alive = false;
		if (t->failed)
			res->status = t->fail_status;
		else {
			res->status = upstream_error_status(rc);
			res->why = upstream_why(u, rc);
		}
		/*
		 * 499: the client is gone, there is nobody to answer. libcurl's
		 * own messages stay in the journal; ours may go to the client.
		 */
		if (res->status != 499)
			http_error(h->conn, res->status, t->failed ? res->why : NULL);
	}
}
