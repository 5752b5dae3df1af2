/*
 * route.c - which requests go upstream, and as what target.
 *
 * Rewriting works on the raw bytes of the target: the query string and
 * every percent-escape reach the upstream exactly as the client sent them.
 * Only the dot-segment check looks through escapes, because that is where
 * "/proxy/%2e%2e/admin" would otherwise climb out of the prefix.
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "route.h"

/* The origin-form part of a target: absolute-form loses scheme and authority. */
const char *
route_path(const char *target)
{
	const char *p;

	if (strncasecmp(target, "http://", 7) == 0)
		p = target + 7;
	else if (strncasecmp(target, "https://", 8) == 0)
		p = target + 8;
	else
		return target;
	p += strcspn(p, "/?");
	return p;
}

/* Is [s, e) "." or "..", counting %2e and %2E as dots? */
static bool
route_is_dot_segment(const char *s, const char *e)
{
	int dots = 0;

	while (s < e) {
		if (*s == '.')
			s++;
		else if (e - s >= 3 && s[0] == '%' && s[1] == '2' && (s[2] == 'e' || s[2] == 'E'))
			s += 3;
		else
			return false;
		if (++dots > 2)
			return false;
	}
	return dots > 0;
}

/* Separators for the dot-segment check: '/' and '\', raw or escaped. */
static size_t
route_separator(const char *p)
{
	if (*p == '/' || *p == '\\')
		return 1;
	if (p[0] == '%' && (strncasecmp(p + 1, "2f", 2) == 0 || strncasecmp(p + 1, "5c", 2) == 0))
		return 3;
	return 0;
}

static bool
route_has_dot_segment(const char *path, size_t len)
{
	const char *p = path, *end = path + len, *seg = path;
	size_t n;

	while (p < end) {
		if ((n = route_separator(p)) == 0 || (size_t)(end - p) < n) {
			p++;
			continue;
		}
		if (route_is_dot_segment(seg, p))
			return true;
		p += n;
		seg = p;
	}
	return route_is_dot_segment(seg, end);
}

/* Is path under prefix, on a segment boundary? */
static bool
route_under(const char *path, const char *prefix, size_t len)
{
	return strncmp(path, prefix, len) == 0 &&
	    (path[len] == '\0' || path[len] == '/' || path[len] == '?' || len == 0);
}

/* Does the Host field name this host (any port)? */
static bool
route_host_is(const char *field, const char *host)
{
	size_t len = strlen(host);

	return field != NULL && strncasecmp(field, host, len) == 0 &&
	    (field[len] == '\0' || field[len] == ':');
}

/*
 * The route for a request: the longest prefix wins, and of two routes with
 * the same prefix the one that names the request's Host.
 */
const struct route *
route_match(const struct config *cfg, const char *target, const char *host)
{
	const char *path = route_path(target);
	const struct route *best = NULL, *r;
	size_t i;

	if (*path != '/')
		return NULL;
	for (i = 0; i < cfg->nroutes; i++) {
		r = cfg->routes[i];
		if (r->prefix == NULL || !route_under(path, r->prefix, r->prefix_len))
			continue;
		if (r->host != NULL && !route_host_is(host, r->host))
			continue;
		if (best == NULL || r->prefix_len > best->prefix_len ||
		    (r->prefix_len == best->prefix_len && r->host != NULL))
			best = r;
	}
	return best;
}

/*
 * Rewrite a request target for one of the route's upstreams. Returns 0 with
 * the new target in ret_target, or the status to answer instead (400, 414).
 */
int
route_rewrite(const struct route *r, size_t upstream, const char *target, char *ret_target,
    size_t size, const char **ret_why)
{
	const char *path = route_path(target), *rest, *base = r->upstreams[upstream].base;
	size_t pathlen, baselen = strlen(base);
	int n;

	pathlen = strcspn(path, "?#");
	if (route_has_dot_segment(path, pathlen)) {
		*ret_why = "dot segment in path";
		return 400;
	}
	rest = r->strip_prefix ? path + r->prefix_len : path;
	/* Join like Go's singleJoiningSlash: exactly one slash between the two. */
	if (baselen > 0 && base[baselen - 1] == '/' && *rest == '/')
		rest++;
	n = snprintf(ret_target, size, "%s%s%s", base,
	    *rest == '/' || (baselen > 0 && base[baselen - 1] == '/') ? "" : "/", rest);
	if (n < 0 || (size_t)n >= size) {
		*ret_why = "rewritten target too long";
		return 414;
	}
	return 0;
}
