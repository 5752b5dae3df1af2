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

int
route_init(struct route *r, const char *prefix, const char *upstream, const char **ret_why)
{
	const char *auth, *path;
	size_t len;

	memset(r, 0, sizeof(*r));
	len = strlen(prefix);
	if (prefix[0] != '/' || len >= sizeof(r->prefix) || strpbrk(prefix, "?#%") != NULL) {
		*ret_why = "prefix must be a path starting with '/', without '?', '#' or '%'";
		return -1;
	}
	while (len > 0 && prefix[len - 1] == '/')
		len--;
	memcpy(r->prefix, prefix, len);
	r->prefix_len = len;

	if (strncasecmp(upstream, "http://", 7) == 0)
		auth = upstream + 7;
	else if (strncasecmp(upstream, "https://", 8) == 0)
		auth = upstream + 8;
	else {
		*ret_why = "upstream must be an http:// or https:// URL";
		return -1;
	}
	path = auth + strcspn(auth, "/?#");
	if (path == auth || *path == '?' || *path == '#' ||
	    strlen(upstream) >= sizeof(r->origin)) {
		*ret_why = "upstream must be scheme://host[:port][/base-path]";
		return -1;
	}
	if (strpbrk(upstream, " \t\r\n") != NULL) {
		*ret_why = "upstream URL contains whitespace";
		return -1;
	}
	memcpy(r->origin, upstream, (size_t)(path - upstream));
	snprintf(r->base, sizeof(r->base), "%s", path);
	return 0;
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

/*
 * Rewrite a request target for the upstream. Returns 0 with the new target
 * in ret_target, or the HTTP status to answer instead (404, 400, 414).
 */
int
route_rewrite(const struct route *r, const char *target, char *ret_target, size_t size,
    const char **ret_why)
{
	const char *path = route_path(target), *rest;
	size_t pathlen, baselen = strlen(r->base);
	int n;

	if (*path != '/' && *path != '?' && *path != '\0') {
		*ret_why = "request target is not a path";
		return 404;
	}
	if (*path != '/' && r->prefix_len > 0) {
		*ret_why = "not under the proxied prefix";
		return 404;
	}
	if (strncmp(path, r->prefix, r->prefix_len) != 0 ||
	    (path[r->prefix_len] != '\0' && path[r->prefix_len] != '/' &&
	     path[r->prefix_len] != '?')) {
		*ret_why = "not under the proxied prefix";
		return 404;
	}
	pathlen = strcspn(path, "?#");
	if (route_has_dot_segment(path, pathlen)) {
		*ret_why = "dot segment in path";
		return 400;
	}

	rest = path + r->prefix_len;
	/* Join like Go's singleJoiningSlash: exactly one slash between the two. */
	if (baselen > 0 && r->base[baselen - 1] == '/' && *rest == '/')
		rest++;
	n = snprintf(ret_target, size, "%s%s%s", r->base,
	    *rest == '/' || (baselen > 0 && r->base[baselen - 1] == '/') ? "" : "/", rest);
	if (n < 0 || (size_t)n >= size) {
		*ret_why = "rewritten target too long";
		return 414;
	}
	return 0;
}
