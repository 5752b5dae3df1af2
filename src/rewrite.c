/*
 * rewrite.c - every rewrite policy of the forwarding layer in one place,
 * used alike by the libcurl forwarder (upstream.c) and the tunnel
 * (tunnel.c): which of the client's fields go upstream and which we add
 * (X-Forwarded-*, Forwarded, Via, TE, the route's request rules), and
 * which of the upstream's fields reach the client and as what (the route's
 * response rules). The target itself is rewritten by route.c, which knows
 * the prefixes.
 *
 * Fields are safe to copy as they are: the http layer rejected CR, LF, NUL
 * and other control bytes in the client's names and values, response.c
 * those of the upstream, and the configuration those of its rules.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "rewrite.h"

/* Is this field named by one of the route's remove or set rules? */
static bool
rewrite_rule_replaces(const struct header_rule *rules, size_t n, const char *name, size_t len)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (rules[i].op != HEADER_ADD && http_name_eq(name, len, rules[i].name))
			return true;
	return false;
}

/* Is this field of the client's one the upstream must not get from it? */
static bool
rewrite_skip_request_field(const struct route *r, const struct http_request *req,
    const struct http_header *hd, bool trusted)
{
	size_t i;

	if (http_is_hop_by_hop(hd->name, hd->name_len) ||
	    http_name_eq(hd->name, hd->name_len, "Content-Length") ||
	    (!r->preserve_host && http_name_eq(hd->name, hd->name_len, "Host")) ||
	    rewrite_rule_replaces(r->request_rules, r->nrequest_rules, hd->name, hd->name_len))
		return true;
	/*
	 * Where the request came from is ours to say, in every spelling a
	 * backend may read, unless a trusted proxy said it (the canonical
	 * names are collected in rewrite_request_fields()).
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

/* Append ", value" to a list being collected from repeated fields. */
static int
rewrite_collect(char *buf, size_t size, const char *value)
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
rewrite_ruled(const struct route *r, const char *name)
{
	return rewrite_rule_replaces(r->request_rules, r->nrequest_rules, name, strlen(name));
}

static int
rewrite_forwarding_fields(const struct config *cfg, const struct route *r,
    const struct http_request *req, const char *peer, struct forwarding *fw,
    rewrite_emit_fn emit, void *ctx)
{
	char node[HTTP_MAX_HEADER_BYTES + 128];

	if (rewrite_collect(fw->xff, sizeof(fw->xff), peer) < 0 ||
	    (!rewrite_ruled(r, "X-Forwarded-For") &&
	     emit(ctx, "X-Forwarded-For", fw->xff) < 0) ||
	    (!fw->xf_host && req->host != NULL && !rewrite_ruled(r, "X-Forwarded-Host") &&
	     emit(ctx, "X-Forwarded-Host", req->host) < 0) ||
	    (!fw->xf_proto && !rewrite_ruled(r, "X-Forwarded-Proto") &&
	     emit(ctx, "X-Forwarded-Proto", req->scheme) < 0))
		return -1;
	/*
	 * Where a prefix-stripping route is mounted (Traefik's stripPrefix
	 * convention), appended to a trusted proxy's own as X-Forwarded-For is.
	 */
	if (r->strip_prefix && r->prefix_len > 0 &&
	    rewrite_collect(fw->prefix, sizeof(fw->prefix), r->prefix) < 0)
		return -1;
	if (fw->prefix[0] != '\0' && !rewrite_ruled(r, "X-Forwarded-Prefix") &&
	    emit(ctx, "X-Forwarded-Prefix", fw->prefix) < 0)
		return -1;
	if (cfg->forwarded && !rewrite_ruled(r, "Forwarded")) {
		/* RFC 7239: an IPv6 node is bracketed and quoted; quote the host always. */
		snprintf(node, sizeof(node), strchr(peer, ':') != NULL ?
		    "for=\"[%s]\";proto=%s" : "for=%s;proto=%s", peer, req->scheme);
		if (req->host != NULL && strpbrk(req->host, "\"\\") == NULL) {
			size_t len = strlen(node);
			snprintf(node + len, sizeof(node) - len, ";host=\"%s\"", req->host);
		}
		if (rewrite_collect(fw->forwarded, sizeof(fw->forwarded), node) < 0 ||
		    emit(ctx, "Forwarded", fw->forwarded) < 0)
			return -1;
	}
	if (cfg->via && !rewrite_ruled(r, "Via")) {
		if (rewrite_collect(fw->via, sizeof(fw->via),
		    req->version >= 11 ? "1.1 gfproxy" : "1.0 gfproxy") < 0 ||
		    emit(ctx, "Via", fw->via) < 0)
			return -1;
	}
	return 0;
}

/*
 * May this trailer of the client's go upstream? Not one RFC 9110 6.5.1
 * forbids, nor one the route's request rules remove or set: a rule holds
 * for the trailer section as for the head.
 */
bool
rewrite_request_trailer(const struct route *r, const struct http_header *hd)
{
	return !http_trailer_forbidden(hd->name, hd->name_len) &&
	    !rewrite_rule_replaces(r->request_rules, r->nrequest_rules, hd->name, hd->name_len);
}

/* Did the client send TE: trailers? Then it gets the upstream's trailers. */
bool
rewrite_wants_trailers(const struct http_request *req)
{
	size_t i;

	for (i = 0; i < req->nheaders; i++)
		if (http_name_eq(req->headers[i].name, req->headers[i].name_len, "TE") &&
		    http_list_has(req->headers[i].value, req->headers[i].value_len, "trailers", 8))
			return true;
	return false;
}

/*
 * The fields for the upstream, each handed to emit in the order they go:
 * the client's that may pass, ours, the route's set and add rules, and TE.
 * Returns -1 when emit has no room or a collected list does not fit.
 */
int
rewrite_request_fields(const struct config *cfg, const struct route *r,
    const struct http_request *req, const char *peer, rewrite_emit_fn emit, void *ctx)
{
	/* Large buffers: static, as one process serves one client. */
	static struct forwarding forwarding;
	struct forwarding *fw = &forwarding;
	const struct http_header *hd;
	bool trusted = req->trusted;
	size_t i;

	fw->xff[0] = fw->prefix[0] = fw->forwarded[0] = fw->via[0] = '\0';
	fw->xf_host = fw->xf_proto = false;
	for (i = 0; i < req->nheaders; i++) {
		hd = &req->headers[i];
		if (rewrite_skip_request_field(r, req, hd, trusted))
			continue;
		if (http_name_eq(hd->name, hd->name_len, "X-Forwarded-For")) {
			if (trusted && rewrite_collect(fw->xff, sizeof(fw->xff), hd->value) < 0)
				return -1;
			continue;
		}
		if (http_name_eq(hd->name, hd->name_len, "X-Forwarded-Prefix")) {
			if (trusted && rewrite_collect(fw->prefix, sizeof(fw->prefix), hd->value) < 0)
				return -1;
			continue;
		}
		if (http_name_eq(hd->name, hd->name_len, "Forwarded")) {
			if (trusted && rewrite_collect(fw->forwarded, sizeof(fw->forwarded),
			    hd->value) < 0)
				return -1;
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
			if (rewrite_collect(fw->via, sizeof(fw->via), hd->value) < 0)
				return -1;
			continue;
		}
pass:
		if (emit(ctx, hd->name, hd->value) < 0)
			return -1;
	}
	if (rewrite_forwarding_fields(cfg, r, req, peer, fw, emit, ctx) < 0)
		return -1;
	for (i = 0; i < r->nrequest_rules; i++)
		if (r->request_rules[i].op != HEADER_REMOVE &&
		    emit(ctx, r->request_rules[i].name, r->request_rules[i].value) < 0)
			return -1;
	/* TE is hop-by-hop, but we relay trailers, so we may ask for them too. */
	if (rewrite_wants_trailers(req) && emit(ctx, "TE", "trailers") < 0)
		return -1;
	return 0;
}

/* Is this field of the upstream's one the client must not see? */
static bool
rewrite_skip_response_field(const struct route *r, const struct response *resp,
    const char *line, size_t nlen)
{
	/* The route's remove and set rules hold for trailers too: no way around them. */
	if (resp->phase == RESPONSE_TRAILERS)
		return http_trailer_forbidden(line, nlen) ||
		    rewrite_rule_replaces(r->response_rules, r->nresponse_rules, line, nlen);
	/* The 101 that opens a tunnel says what the tunnel carries. */
	if (resp->status == 101 && http_name_eq(line, nlen, "Upgrade"))
		return false;
	if (http_is_hop_by_hop(line, nlen))
		return true;
	if (rewrite_rule_replaces(r->response_rules, r->nresponse_rules, line, nlen))
		return true;
	/* RFC 9110 8.6: a 1xx or 204 has no Content-Length. */
	if ((resp->status < 200 || resp->status == 204) &&
	    http_name_eq(line, nlen, "Content-Length"))
		return true;
	/* The upstream's Connection list cannot take away the body's length. */
	if (http_connection_protected(line, nlen))
		return false;
	return response_connection_names(resp, line, nlen);
}

/*
 * Every field of the upstream's on its way to the client, in a head or
 * in trailers, passes here: appended to out as it is to go ("Name:
 * value\r\n"), or left out. Returns -1 when out has no room.
 */
int
rewrite_response_field(const struct mount_view *m, const struct response *resp,
    const char *line, char *out, size_t size, size_t *len)
{
	if (rewrite_skip_response_field(m->route, resp, line, strcspn(line, ":")))
		return 0;
	/* A head's redirects and cookies, translated for the route's prefix (mount.c). */
	if (resp->phase != RESPONSE_TRAILERS)
		return mount_cat_line(m, out, size, len, line) < 0 ||
		    http_cat(out, size, len, "\r\n", NULL) < 0 ? -1 : 0;
	return http_cat(out, size, len, line, "\r\n", NULL);
}

/* The route's set and add rules for the client's head. */
int
rewrite_response_rules(const struct route *r, char *out, size_t size, size_t *len)
{
	const struct header_rule *rule;
	size_t i;

	for (i = 0; i < r->nresponse_rules; i++) {
		rule = &r->response_rules[i];
		if (rule->op != HEADER_REMOVE &&
		    http_cat(out, size, len, rule->name, ": ", rule->value, "\r\n", NULL) < 0)
			return -1;
	}
	return 0;
}
