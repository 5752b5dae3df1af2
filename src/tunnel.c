/*
 * tunnel.c - WebSocket upgrades. libcurl's easy interface cannot hand over
 * a connection after 101, so the upstream connection is made by libcurl
 * with CONNECT_ONLY (same timeouts, and TLS when the upstream has it), the
 * request head is written by us, the response head is read with llhttp,
 * and after 101 Switching Protocols bytes are relayed both ways until both
 * sides have closed. A half-close travels through as a half-close.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <nettle/base64.h>
#include <nettle/sha1.h>

#include "mount.h"
#include "tunnel.h"

/* RFC 6455 1.3: appended to the client's key before hashing. */
#define TUNNEL_WEBSOCKET_GUID   "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#define TUNNEL_ACCEPT_LEN       BASE64_ENCODE_RAW_LENGTH(SHA1_DIGEST_SIZE)

struct tunnel_head {
	llhttp_t            parser;
	llhttp_settings_t   settings;
	char               *raw;        /* the bytes read, which never move */
	size_t              len;
	size_t              parsed;
	/* [max_fields] each, one allocation after the struct. */
	const char        **name;
	size_t             *name_len;
	const char        **value;
	size_t             *value_len;
	size_t              nfields, max_fields;
	bool                too_many;   /* past max_fields: refused */
	bool                field_open;
	bool                value_open;
	bool                done;
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

static struct tunnel_head *
head_of(llhttp_t *p)
{
	return p->data;
}

/* Spans are contiguous in raw even when they arrive in pieces. */
static int
tunnel_on_field(llhttp_t *p, const char *at, size_t len)
{
	struct tunnel_head *th = head_of(p);

	if (!th->field_open) {
		if (th->nfields == th->max_fields) {
			th->too_many = true;
			return -1;
		}
		th->field_open = true;
		th->name[th->nfields] = th->value[th->nfields] = at;
		th->name_len[th->nfields] = th->value_len[th->nfields] = 0;
		th->nfields++;
	}
	th->name_len[th->nfields - 1] += len;
	return 0;
}

static int
tunnel_on_field_complete(llhttp_t *p)
{
	head_of(p)->field_open = false;
	return 0;
}

static int
tunnel_on_value(llhttp_t *p, const char *at, size_t len)
{
	struct tunnel_head *th = head_of(p);

	if (!th->value_open) {
		th->value_open = true;
		th->value[th->nfields - 1] = at;
	}
	th->value_len[th->nfields - 1] += len;
	return 0;
}

static int
tunnel_on_value_complete(llhttp_t *p)
{
	head_of(p)->value_open = false;
	return 0;
}

static int
tunnel_on_headers_complete(llhttp_t *p)
{
	head_of(p)->done = true;
	return HPE_PAUSED;
}

static int
tunnel_send(CURL *curl, curl_socket_t fd, const char *data, size_t len, int64_t deadline)
{
	struct pollfd pfd = { .fd = fd, .events = POLLOUT };
	size_t sent;
	CURLcode rc;

	while (len > 0) {
		rc = curl_easy_send(curl, data, len, &sent);
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

/* Read into buf; returns bytes, 0 at EOF, -1 on error, -2 when nothing yet. */
static ssize_t
tunnel_recv(CURL *curl, char *buf, size_t size)
{
	size_t n;
	CURLcode rc;

	rc = curl_easy_recv(curl, buf, size, &n);
	if (rc == CURLE_AGAIN)
		return -2;
	if (rc != CURLE_OK)
		return -1;
	return (ssize_t)n;
}

/* The request as the upstream gets it: the rewritten fields plus the upgrade. */
static int
tunnel_request_head(const struct config *cfg, const struct route *r,
    const struct http_request *req, const char *target, const char *peer,
    char *out, size_t size, size_t *ret_len)
{
	struct curl_slist *fields, *l;
	const struct http_header *hd;
	size_t len = 0, i, n;
	bool trailers, empty;

	if ((fields = upstream_request_fields(cfg, r, req, peer, &trailers)) == NULL)
		return -1;
	if (http_appendf(out, size, &len, "GET %s HTTP/1.1\r\n", target) < 0)
		return -1;
	for (l = fields; l != NULL; l = l->next) {
		n = strlen(l->data);
		if (n > 0 && l->data[n - 1] == ':')
			continue;       /* a libcurl "remove this field" entry */
		empty = n > 0 && l->data[n - 1] == ';';     /* libcurl's "Name;" */
		if (http_appendf(out, size, &len, "%.*s%s\r\n", (int)(n - empty), l->data,
		    empty ? ":" : "") < 0)
			return -1;
	}
	for (i = 0; i < req->nheaders; i++) {
		hd = &req->headers[i];
		if (!http_name_eq(hd->name, hd->name_len, "Upgrade"))
			continue;
		if (http_appendf(out, size, &len, "Upgrade: %s\r\nConnection: Upgrade\r\n\r\n",
		    hd->value) < 0)
			return -1;
		*ret_len = len;
		return 0;
	}
	return -1;
}

/* Read and parse the upstream's response head, up to its blank line. */
static int
tunnel_read_head(CURL *curl, curl_socket_t fd, struct tunnel_head *th, size_t size,
    int64_t deadline)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	llhttp_errno_t err;
	ssize_t n;

	while (!th->done) {
		if (th->len == size)
			return -EMSGSIZE;
		n = tunnel_recv(curl, th->raw + th->len, size - th->len);
		if (n == -2) {
			if (conn_now_usec() >= deadline ||
			    poll(&pfd, 1, (int)((deadline - conn_now_usec()) / 1000) + 1) < 0)
				return -ETIMEDOUT;
			continue;
		}
		if (n <= 0)
			return -1;
		err = llhttp_execute(&th->parser, th->raw + th->len, (size_t)n);
		th->len += (size_t)n;
		if (err == HPE_PAUSED) {
			th->parsed = (size_t)(llhttp_get_error_pos(&th->parser) - th->raw);
			return 0;
		}
		if (err != HPE_OK)
			return -1;
	}
	return 0;
}

/*
 * The head as read gets the checks every response head gets (the status
 * line and each field line, http.c), whatever llhttp let through: obsolete
 * folding, control bytes, whitespace before a colon.
 */
static int
tunnel_check_head(const struct tunnel_head *th, const char **ret_why)
{
	struct http_status_line sl;
	const char *p = th->raw, *end = th->raw + th->parsed, *nl;
	size_t len, name_len;
	bool first = true;

	while (p < end) {
		if ((nl = memchr(p, '\n', (size_t)(end - p))) == NULL)
			break;
		/* RFC 9112 2.2: CRLF ends each line, as the client's must. */
		len = (size_t)(nl - p);
		if (len == 0 || p[len - 1] != '\r') {
			*ret_why = "upstream header line not ended by CRLF";
			return -1;
		}
		len--;
		if (len == 0 && !first)
			return 0;
		if ((first ? http_check_status_line(p, len, &sl, ret_why) :
		    http_check_response_field(p, len, &name_len, ret_why)) < 0)
			return -1;
		first = false;
		p = nl + 1;
	}
	*ret_why = "invalid response to the upgrade request";
	return -1;
}

/* The one field of that name, its value trimmed; NULL when none or several. */
static const char *
tunnel_field(const struct tunnel_head *th, const char *name, size_t *ret_len)
{
	const char *v = NULL;
	size_t i, len = 0;

	for (i = 0; i < th->nfields; i++) {
		if (!http_name_eq(th->name[i], th->name_len[i], name))
			continue;
		if (v != NULL)
			return NULL;
		v = th->value[i];
		len = th->value_len[i];
		while (len > 0 && (v[len - 1] == ' ' || v[len - 1] == '\t'))
			len--;
	}
	*ret_len = len;
	return v;
}

/*
 * A 101 opens the tunnel only when it is the WebSocket handshake we asked
 * for (RFC 6455 4.1): Upgrade: websocket, Connection: upgrade, and the
 * Sec-WebSocket-Accept that answers the client's key. Anything else (h2c,
 * an upstream that did not read the request) is a 502, and the client's
 * bytes never reach the upstream raw.
 */
static int
tunnel_check_101(const struct tunnel_head *th, const struct http_request *req,
    const char **ret_why)
{
	struct sha1_ctx sha;
	uint8_t digest[SHA1_DIGEST_SIZE];
	char expected[TUNNEL_ACCEPT_LEN];
	const char *key = NULL, *v;
	size_t i, len;

	v = tunnel_field(th, "Upgrade", &len);
	if (v == NULL || !http_name_eq(v, len, "websocket")) {
		*ret_why = "101 from upstream without Upgrade: websocket";
		return -1;
	}
	v = tunnel_field(th, "Connection", &len);
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
	v = tunnel_field(th, "Sec-WebSocket-Accept", &len);
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

/* The head for the client: the upstream's fields less hop-by-hop ones. */
static int
tunnel_client_head(const struct tunnel_head *th, const struct mount_view *mount, int status,
    bool upgraded, char *out, size_t size, size_t *ret_len)
{
	size_t i, len = 0;

	if (http_appendf(out, size, &len, "HTTP/1.1 %d %s\r\n", status, http_reason(status)) < 0)
		return -1;
	for (i = 0; i < th->nfields; i++) {
		if (http_name_eq(th->name[i], th->name_len[i], "Connection") ||
		    (http_is_hop_by_hop(th->name[i], th->name_len[i]) &&
		     !(upgraded && http_name_eq(th->name[i], th->name_len[i], "Upgrade"))) ||
		    http_name_eq(th->name[i], th->name_len[i], "Content-Length"))
			continue;
		/* Redirects and cookies translated for the route's prefix (mount.c). */
		if (mount_cat_field(mount, out, size, &len, th->name[i], th->name_len[i],
		    th->value[i], th->value_len[i]) < 0 || http_cat(out, size, &len, "\r\n", NULL) < 0)
			return -1;
	}
	/*
	 * A refusal is relayed without its body: an empty one, said so, but
	 * where no Content-Length may be (RFC 9110 8.6) or means something
	 * else (a 304's is the resource's).
	 */
	if (http_appendf(out, size, &len, "%s%s\r\n", upgraded ? "Connection: Upgrade\r\n" :
	    "Connection: close\r\n", upgraded || status == 204 || status == 304 ? "" :
	    "Content-Length: 0\r\n") < 0)
		return -1;
	*ret_len = len;
	return 0;
}

/*
 * Relay until both directions are closed or the tunnel idles out. Each
 * side's EOF becomes a shutdown of writing towards the other side.
 */
static void
tunnel_relay(CURL *curl, curl_socket_t ufd, struct conn *c, struct upstream_result *res)
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
		pfd[1] = (struct pollfd){ .fd = upstream_open ? ufd : -1, .events = POLLIN };
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
			n = read(c->fd, buf, TUNNEL_BUFSIZE);
			if (n < 0 && (errno == EAGAIN || errno == EINTR))
				continue;
			if (n <= 0) {
				client_open = false;
				shutdown(ufd, SHUT_WR);
			} else if (tunnel_send(curl, ufd, buf, (size_t)n,
			    conn_now_usec() + c->send_timeout_usec) < 0) {
				res->why = "upstream write failed";
				break;
			} else
				res->bytes_received += (uint64_t)n;
		}
		if (pfd[1].revents != 0) {
			n = tunnel_recv(curl, buf, TUNNEL_BUFSIZE);
			if (n == -2)
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

/* Connect to the first upstream that answers: nothing has been sent yet. */
static int
tunnel_connect(struct upstream *u, const struct route *r, const struct http_request *req,
    char *target, size_t size, struct upstream_result *res, curl_socket_t *ret_fd)
{
	const char *why;
	CURLcode rc;
	size_t i;
	int status;

	if (upstream_tunnel_handle(u) == NULL) {
		res->status = 500;
		res->why = "out of memory";
		return -1;
	}
	curl_easy_setopt(u->curl, CURLOPT_CONNECTTIMEOUT_MS, r->connect_timeout_ms);
	for (i = 0; i < r->nupstreams; i++) {
		if ((status = upstream_point(u, r, i, req->target, target, size, &why)) != 0) {
			res->status = status;
			res->why = why;
			res->client_fault = true;
			return -1;
		}
		u->errbuf[0] = '\0';
		res->tries++;
		rc = curl_easy_perform(u->curl);
		if (rc == CURLE_OK && curl_easy_getinfo(u->curl, CURLINFO_ACTIVESOCKET, ret_fd) ==
		    CURLE_OK && *ret_fd != CURL_SOCKET_BAD)
			return 0;
		res->status = rc == CURLE_OPERATION_TIMEDOUT ? 504 : 502;
		res->why = u->errbuf[0] != '\0' ? u->errbuf : curl_easy_strerror(rc);
	}
	return -1;
}

void
tunnel_forward(struct upstream *u, struct http_server *h, const struct http_request *req,
    const struct route *rt, struct upstream_result *res)
{
	static char target[ROUTE_MAX_TARGET];
	static char why[128];
	struct tunnel_head *th = NULL;
	struct mount_view mount;
	char *out = NULL;
	curl_socket_t ufd;
	size_t len, nf = rt->max_response_fields;
	/*
	 * The raw head has the status line and the blank line besides the
	 * fields (256 bytes for both, more of a long reason counts against
	 * the fields); out takes the request head too, at least 64 KiB.
	 */
	size_t raw_size = rt->max_response_head + 256;
	size_t out_size = (rt->max_response_head > CONFIG_RESPONSE_HEAD_DEFAULT ?
	    rt->max_response_head : CONFIG_RESPONSE_HEAD_DEFAULT) + UPSTREAM_HEAD_OUT_EXTRA;
	int64_t deadline;
	int r;

	memset(res, 0, sizeof(*res));
	res->forwarded = true;
	res->status = 502;
	if (tunnel_connect(u, rt, req, target, sizeof(target), res, &ufd) < 0)
		goto fail;

	if ((th = calloc(1, sizeof(*th) + nf * (2 * sizeof(char *) + 2 * sizeof(size_t)))) ==
	    NULL || (th->raw = malloc(raw_size)) == NULL || (out = malloc(out_size)) == NULL) {
		res->status = 500;
		res->why = "out of memory";
		goto fail;
	}
	th->max_fields = nf;
	th->name = (const char **)(th + 1);
	th->value = th->name + nf;
	th->name_len = (size_t *)(th->value + nf);
	th->value_len = th->name_len + nf;
	deadline = conn_now_usec() + (int64_t)rt->timeout_ms * 1000;
	if (tunnel_request_head(u->cfg, rt, req, target, h->conn->peer_addr, out,
	    out_size, &len) < 0 ||
	    tunnel_send(u->curl, ufd, out, len, deadline) < 0) {
		res->why = "cannot send the upgrade request";
		goto fail;
	}

	llhttp_settings_init(&th->settings);
	th->settings.on_header_field = tunnel_on_field;
	th->settings.on_header_field_complete = tunnel_on_field_complete;
	th->settings.on_header_value = tunnel_on_value;
	th->settings.on_header_value_complete = tunnel_on_value_complete;
	th->settings.on_headers_complete = tunnel_on_headers_complete;
	llhttp_init(&th->parser, HTTP_RESPONSE, &th->settings);
	th->parser.data = th;
	r = tunnel_read_head(u->curl, ufd, th, raw_size, deadline);
	if (r < 0) {
		res->status = r == -ETIMEDOUT ? 504 : 502;
		res->why = r == -ETIMEDOUT ? "no response from upstream in time" :
		    "invalid response to the upgrade request";
		if (th->too_many) {
			snprintf(why, sizeof(why), "upstream response head: more than "
			    "max-response-fields (%zu) fields", nf);
			res->why = why;
		} else if (r == -EMSGSIZE) {
			snprintf(why, sizeof(why), "upstream response head larger than "
			    "max-response-head (%zu bytes)", rt->max_response_head);
			res->why = why;
		}
		goto fail;
	}

	if (tunnel_check_head(th, &res->why) < 0)
		goto fail;
	if (th->parser.status_code == 101 && tunnel_check_101(th, req, &res->why) < 0)
		goto fail;
	/*
	 * An interim answer (a 103) before the 101 or the refusal: the tunnel
	 * reads one head only, and a 1xx cannot end the exchange.
	 */
	if (th->parser.status_code < 200 && th->parser.status_code != 101) {
		res->why = "interim response to the upgrade request";
		goto fail;
	}
	res->status = th->parser.status_code;
	mount_view_init(&mount, rt, req, config_trusted(u->cfg, h->conn->peer_addr));
	if (res->status != 101) {
		/* Refused: relay the answer's head only, and end the connection. */
		if (tunnel_client_head(th, &mount, res->status, false, out, out_size,
		    &len) < 0 || conn_write(h->conn, out, len) < 0)
			res->why = conn_lost_why(h->conn);
		else
			res->why = "upstream refused the upgrade";
		res->client_fault = res->status < 500;
		goto done;
	}
	if (tunnel_client_head(th, &mount, 101, true, out, out_size, &len) < 0 ||
	    conn_write(h->conn, out, len) < 0) {
		res->why = conn_lost_why(h->conn);
		goto done;
	}
	/* Bytes that came along with either head already belong to the tunnel. */
	if ((th->len > th->parsed &&
	     conn_write(h->conn, th->raw + th->parsed, th->len - th->parsed) < 0) ||
	    (conn_pending(h->conn) > 0 &&
	     tunnel_send(u->curl, ufd, h->conn->buf + h->conn->off, conn_pending(h->conn),
	     conn_now_usec() + h->conn->send_timeout_usec) < 0)) {
		res->why = "tunnel write failed";
		goto done;
	}
	res->bytes_sent += th->len - th->parsed;
	res->bytes_received += conn_pending(h->conn);
	h->conn->off = h->conn->len;
	tunnel_relay(u->curl, ufd, h->conn, res);
	goto done;

fail:
	http_error(h->conn, res->status, NULL);
done:
	h->closing = true;
	res->keep_alive = false;
	if (th != NULL)
		free(th->raw);
	free(th);
	free(out);
}
