/*
 * mount.c - the upstream as seen from under its route's prefix.
 *
 * A route that strips its prefix, or forwards to an upstream URL with a
 * base path, shows the client other paths than the upstream believes it
 * serves: the client's /proxy/app is the upstream's /app. What the
 * upstream says about its own paths in a response head is translated back
 * here, as nginx's "proxy_redirect default" and proxy_cookie_path do:
 *
 *   Location, Content-Location, the URL of Refresh
 *       a path, or an absolute URL naming the upstream (its configured
 *       origin, or the Host it was given), goes back under the prefix and,
 *       when absolute, to the client's origin; others are left alone.
 *       The route's redirect-rewrite FROM TO rules come first.
 *   Set-Cookie
 *       Path goes under the prefix, and a Domain naming the upstream's
 *       host is dropped, making the cookie the client host's own.
 *
 * Everything here works on the bytes it is given, lengths included (a
 * tunnel's values are not NUL-terminated), writes only into the caller's
 * buffer, and neither allocates nor logs.
 */
#include <string.h>
#include <strings.h>

#include "mount.h"

#define MOUNT_PORT_HTTP     80
#define MOUNT_PORT_HTTPS    443

/* The rewritten value being written into the caller's buffer. */
struct mount_out {
	char    *buf;
	size_t   size;
	size_t   len;
	bool     over;          /* something did not fit: MOUNT_TOO_LONG */
};

/* host[:port], the port filled in from the scheme when not given. */
struct mount_authority {
	const char  *host;
	size_t       host_len;
	unsigned     port;
};

/* Which of the route's upstreams a URL names: one, or any of them (a path). */
#define MOUNT_ANY_UPSTREAM  ((size_t)-1)

static void
mount_put(struct mount_out *o, const char *s, size_t n)
{
	/* One byte is kept for the NUL. */
	if (o->over || n >= o->size - o->len) {
		o->over = true;
		return;
	}
	memcpy(o->buf + o->len, s, n);
	o->len += n;
}

static void
mount_puts(struct mount_out *o, const char *s)
{
	mount_put(o, s, strlen(s));
}

static bool
mount_name_is(const char *name, size_t len, const char *want)
{
	return strlen(want) == len && strncasecmp(name, want, len) == 0;
}

static bool
mount_blank(char c)
{
	return c == ' ' || c == '\t';
}

/* [*s, *e) without the blanks around it. */
static void
mount_trim(const char **s, const char **e)
{
	while (*s < *e && mount_blank(**s))
		(*s)++;
	while (*e > *s && mount_blank((*e)[-1]))
		(*e)--;
}

static unsigned
mount_default_port(const char *scheme)
{
	return strcmp(scheme, "https") == 0 ? MOUNT_PORT_HTTPS : MOUNT_PORT_HTTP;
}

/*
 * Split host[:port] (an IPv6 host in brackets). No userinfo: a URL with
 * one names nobody gfproxy knows, and is left alone.
 */
static int
mount_split_authority(const char *s, size_t len, unsigned default_port,
    struct mount_authority *ret)
{
	const char *e = s + len, *colon, *p;
	unsigned long port = 0;

	if (len == 0 || memchr(s, '@', len) != NULL)
		return -1;
	if (*s == '[') {
		if ((p = memchr(s, ']', len)) == NULL)
			return -1;
		p++;
		if (p < e && *p != ':')
			return -1;
		colon = p < e ? p : NULL;
	} else
		colon = memchr(s, ':', len);
	ret->host = s;
	ret->host_len = colon != NULL ? (size_t)(colon - s) : len;
	ret->port = default_port;
	if (ret->host_len == 0)
		return -1;
	if (colon == NULL || colon + 1 == e)
		return 0;
	for (p = colon + 1; p < e; p++)
		if (*p < '0' || *p > '9' || (port = port * 10 + (unsigned long)(*p - '0')) > 65535)
			return -1;
	ret->port = (unsigned)port;
	return 0;
}

static bool
mount_same_authority(const struct mount_authority *a, const struct mount_authority *b)
{
	return a->port == b->port && a->host_len == b->host_len &&
	    strncasecmp(a->host, b->host, a->host_len) == 0;
}

/* The scheme and authority of one of the route's upstreams, as configured. */
static const char *
mount_upstream_authority(const struct upstream_def *u, struct mount_authority *ret)
{
	const char *scheme = u->kind == UPSTREAM_HTTPS ? "https" : "http";
	const char *auth = strstr(u->origin, "://");

	if (auth == NULL || mount_split_authority(auth + 3, strlen(auth + 3),
	    mount_default_port(scheme), ret) < 0)
		return NULL;
	if (u->kind != UPSTREAM_UNIX)
		ret->port = u->port;
	return scheme;
}

/* The length of a base path without its trailing slashes ("/" is ""). */
static size_t
mount_base_len(const char *base)
{
	size_t n = strlen(base);

	while (n > 0 && base[n - 1] == '/')
		n--;
	return n;
}

/* Is the path [p, p + len) b itself or below it, on a segment boundary? */
static bool
mount_under(const char *p, size_t len, const char *b, size_t n)
{
	return len >= n && memcmp(p, b, n) == 0 && (len == n || p[n] == '/');
}

/*
 * The client's path for the upstream path [p, p + len) (no query), into o:
 * the upstream's base path taken off and, on a route that strips it, the
 * prefix put on. Returns false when the path is not the route's to map
 * (outside every base path), leaving o as it was.
 *
 * On a route without a base path, a path already under the prefix is the
 * client's already: the upstream built it knowing where it is mounted (from
 * X-Forwarded-Prefix), and it stays as it is rather than get the prefix
 * twice.
 *
 * A cookie's path may also be wider than the base path (Path=/ from an
 * upstream whose base is /app): it then covers everything the route
 * reaches, and becomes the prefix. And a cookie for the whole upstream
 * (Path=/) becomes Path=/proxy, not /proxy/: the route takes /proxy itself
 * too, and RFC 6265 5.1.4 lets Path=/proxy match /proxy, /proxy/ and
 * /proxy/x, but not /proxyx.
 */
static bool
mount_map_path(const struct route *r, size_t which, const char *p, size_t len, bool cookie,
    struct mount_out *o)
{
	const char *x = r->strip_prefix ? r->prefix : "";
	size_t xn = r->strip_prefix ? r->prefix_len : 0, i, n, best = 0, plen;
	bool found = false;

	for (i = 0; i < r->nupstreams; i++) {
		if (which != MOUNT_ANY_UPSTREAM && i != which)
			continue;
		n = mount_base_len(r->upstreams[i].base);
		if (mount_under(p, len, r->upstreams[i].base, n) && (!found || n > best)) {
			found = true;
			best = n;
		}
	}
	if (found) {
		if (best == 0 && xn > 0 && mount_under(p, len, x, xn)) {
			mount_put(o, p, len);
		} else if (cookie && len - best <= 1 && xn > 0) {
			mount_put(o, x, xn);
		} else {
			mount_put(o, x, xn);
			if (len - best == 0 && xn == 0)
				mount_puts(o, "/");
			mount_put(o, p + best, len - best);
		}
		return true;
	}
	if (!cookie)
		return false;
	/* A cookie path wider than a base path: the whole route. */
	for (plen = len; plen > 0 && p[plen - 1] == '/'; plen--)
		;
	for (i = 0; i < r->nupstreams; i++) {
		n = mount_base_len(r->upstreams[i].base);
		if (n > 0 && mount_under(r->upstreams[i].base, n, p, plen)) {
			if (xn > 0)
				mount_put(o, x, xn);
			else
				mount_puts(o, "/");
			return true;
		}
	}
	return false;
}

/*
 * Does a browser read this path as a network-path reference ("//host")?
 * It takes a backslash for a slash and drops every tab and line break
 * (WHATWG URL), so "/\\host" and "/\t/host" are "//host" too.
 */
static bool
mount_names_host(const char *s, size_t len)
{
	size_t i, n = 0;

	for (i = 0; i < len && n < 2; i++) {
		if (s[i] == '\t' || s[i] == '\r' || s[i] == '\n')
			continue;
		if (s[i] != '/' && s[i] != '\\')
			return false;
		n++;
	}
	return n == 2;
}

/*
 * Which upstream does the absolute URL's scheme and authority name? One of
 * the route's upstreams as configured, or the Host the upstream was given
 * or the client's own (the upstream builds its URLs from the Host it got):
 * then any of them. Returns false for any other origin.
 */
static bool
mount_names_upstream(const struct mount_view *v, const char *scheme, const char *auth,
    size_t auth_len, size_t *ret_which)
{
	struct mount_authority a, b;
	const char *us;
	size_t i;

	if (mount_split_authority(auth, auth_len, mount_default_port(scheme), &a) < 0)
		return false;
	for (i = 0; i < v->route->nupstreams; i++) {
		us = mount_upstream_authority(&v->route->upstreams[i], &b);
		if (us != NULL && strcmp(us, scheme) == 0 && mount_same_authority(&a, &b)) {
			*ret_which = i;
			return true;
		}
	}
	*ret_which = MOUNT_ANY_UPSTREAM;
	if (v->sent_host != NULL && mount_split_authority(v->sent_host, v->sent_host_len,
	    mount_default_port(scheme), &b) == 0 && mount_same_authority(&a, &b))
		return true;
	return v->host != NULL && mount_split_authority(v->host, v->host_len,
	    mount_default_port(scheme), &b) == 0 && mount_same_authority(&a, &b);
}

/*
 * A URL reference from the upstream, translated into o: an absolute path,
 * or an absolute or network-path URL naming the upstream. Returns false
 * for anything else (a relative path resolves under the prefix by itself;
 * a foreign origin is not ours), leaving o as it was.
 */
static bool
mount_map_url(const struct mount_view *v, const char *s, size_t len, struct mount_out *o)
{
	const char *e = s + len, *scheme = NULL, *auth = NULL, *path, *pe;
	size_t which = MOUNT_ANY_UPSTREAM, mark = o->len, written;
	bool network = false, over = o->over;

	if (len >= 2 && s[0] == '/' && s[1] == '/') {
		network = true;
		scheme = v->scheme;
		auth = s + 2;
	} else if (len >= 7 && strncasecmp(s, "http://", 7) == 0) {
		scheme = "http";
		auth = s + 7;
	} else if (len >= 8 && strncasecmp(s, "https://", 8) == 0) {
		scheme = "https";
		auth = s + 8;
	} else if (len == 0 || s[0] != '/')
		return false;
	path = s;
	if (auth != NULL) {
		for (path = auth; path < e && *path != '/' && *path != '?' && *path != '#'; path++)
			;
		if (!mount_names_upstream(v, scheme, auth, (size_t)(path - auth), &which))
			return false;
		if (v->host != NULL) {
			if (network)
				mount_puts(o, "//");
			else {
				mount_puts(o, v->scheme);
				mount_puts(o, "://");
			}
			mount_put(o, v->host, v->host_len);
		}
	}
	for (pe = path; pe < e && *pe != '?' && *pe != '#'; pe++)
		;
	written = o->len;
	/*
	 * A path from the origin must not begin with "//" (which an empty
	 * prefix can leave of "/base//host/x"), or what a browser reads so:
	 * that would name another host.
	 */
	if (!mount_map_path(v->route, which, path == pe ? "/" : path,
	    path == pe ? 1 : (size_t)(pe - path), false, o) ||
	    (written == mark && mount_names_host(o->buf + mark, o->len - mark))) {
		o->len = mark;
		o->over = over;
		return false;
	}
	mount_put(o, pe, (size_t)(e - pe));
	return true;
}

/*
 * The route's redirect-rewrite FROM TO rules, first match, FROM without
 * case as nginx. What follows FROM cannot turn a TO path into another
 * host ("/" and "/evil.example"): then the field is left alone.
 */
static bool
mount_map_rule(const struct route *r, const char *s, size_t len, struct mount_out *o)
{
	const struct redirect_rule *rule;
	size_t i, n, mark = o->len;
	bool over = o->over;

	for (i = 0; i < r->nredirect_rules; i++) {
		rule = &r->redirect_rules[i];
		n = strlen(rule->from);
		if (len >= n && strncasecmp(s, rule->from, n) == 0) {
			mount_puts(o, rule->to);
			mount_put(o, s + n, len - n);
			if (!mount_names_host(rule->to, strlen(rule->to)) &&
			    mount_names_host(o->buf + mark, o->len - mark)) {
				o->len = mark;
				o->over = over;
				return false;
			}
			return true;
		}
	}
	return false;
}

static bool
mount_map_location(const struct mount_view *v, const char *s, size_t len, struct mount_out *o)
{
	return mount_map_rule(v->route, s, len, o) ||
	    (v->route->redirect_rewrite == REWRITE_YES && mount_map_url(v, s, len, o));
}

/*
 * Refresh: "5; url=/next" and its spellings as HTML's meta refresh reads
 * them ("5;URL='/next'", "0, /next"): the URL is translated, the rest kept.
 */
static bool
mount_map_refresh(const struct mount_view *v, const char *s, size_t len, struct mount_out *o)
{
	const char *e = s + len, *p = s, *q, *ue;

	while (p < e && ((*p >= '0' && *p <= '9') || *p == '.'))
		p++;
	if (p == s)
		return false;
	while (p < e && mount_blank(*p))
		p++;
	if (p < e && (*p == ';' || *p == ','))
		p++;
	while (p < e && mount_blank(*p))
		p++;
	if (e - p >= 3 && strncasecmp(p, "url", 3) == 0) {
		for (q = p + 3; q < e && mount_blank(*q); q++)
			;
		if (q < e && *q == '=')
			for (p = q + 1; p < e && mount_blank(*p); p++)
				;
	}
	ue = e;
	if (p < e && (*p == '"' || *p == '\'')) {
		if ((q = memchr(p + 1, *p, (size_t)(e - p - 1))) != NULL)
			ue = q;
		p++;
	}
	if (p >= ue)
		return false;
	mount_put(o, s, (size_t)(p - s));
	if (!mount_map_location(v, p, (size_t)(ue - p), o))
		return false;
	mount_put(o, ue, (size_t)(e - ue));
	return true;
}

/*
 * Does a cookie's Domain name the upstream, not the client? Then the
 * browser, on the client's host, would refuse the cookie. Dropping the
 * attribute makes it a host-only cookie of the client's host: what the
 * upstream meant, the closest the client can have. Rewriting it to the
 * client's host instead would widen it to every subdomain of that host,
 * which the upstream never asked for. A Domain the client's host is in
 * (a parent domain they share) is valid as it is, and kept.
 */
static bool
mount_foreign_domain(const struct mount_view *v, const char *d, size_t len)
{
	struct mount_authority a;
	size_t i;

	if (len > 0 && d[0] == '.') {
		d++;
		len--;
	}
	if (v->host != NULL && mount_split_authority(v->host, v->host_len, 0, &a) == 0 &&
	    a.host_len == len && strncasecmp(a.host, d, len) == 0)
		return false;
	if (v->sent_host != NULL && mount_split_authority(v->sent_host, v->sent_host_len, 0,
	    &a) == 0 && a.host_len == len && strncasecmp(a.host, d, len) == 0)
		return true;
	for (i = 0; i < v->route->nupstreams; i++)
		if (mount_upstream_authority(&v->route->upstreams[i], &a) != NULL &&
		    a.host_len == len && strncasecmp(a.host, d, len) == 0)
			return true;
	return false;
}

/*
 * Set-Cookie: the name=value pair and every other attribute byte for byte;
 * each Path translated as a path, each Domain naming the upstream dropped.
 */
static bool
mount_map_cookie(const struct mount_view *v, const char *s, size_t len, struct mount_out *o)
{
	const char *e = s + len, *seg, *segend, *n, *ne, *val, *ve;
	bool changed = false;

	segend = memchr(s, ';', len);
	segend = segend != NULL ? segend : e;
	mount_put(o, s, (size_t)(segend - s));
	while (segend < e) {
		seg = segend + 1;
		segend = memchr(seg, ';', (size_t)(e - seg));
		segend = segend != NULL ? segend : e;
		for (n = seg; n < segend && mount_blank(*n); n++)
			;
		for (ne = n; ne < segend && *ne != '='; ne++)
			;
		val = ne < segend ? ne + 1 : segend;
		ve = segend;
		while (ne > n && mount_blank(ne[-1]))
			ne--;
		mount_trim(&val, &ve);
		if (mount_name_is(n, (size_t)(ne - n), "Domain") &&
		    mount_foreign_domain(v, val, (size_t)(ve - val))) {
			changed = true;
			continue;
		}
		mount_puts(o, ";");
		if (mount_name_is(n, (size_t)(ne - n), "Path") && val < ve && *val == '/') {
			mount_put(o, seg, (size_t)(val - seg));
			if (mount_map_path(v->route, MOUNT_ANY_UPSTREAM, val, (size_t)(ve - val), true, o))
				changed = true;
			else
				mount_put(o, val, (size_t)(ve - val));
			mount_put(o, ve, (size_t)(segend - ve));
		} else
			mount_put(o, seg, (size_t)(segend - seg));
	}
	return changed;
}

/* The fields translated, each only when its route asks for it. */
enum mount_field {
	MOUNT_FIELD_OTHER,
	MOUNT_FIELD_LOCATION,       /* Location, Content-Location */
	MOUNT_FIELD_REFRESH,
	MOUNT_FIELD_COOKIE,         /* Set-Cookie */
};

static enum mount_field
mount_field_kind(const struct route *r, const char *name, size_t len)
{
	bool redirects = r->redirect_rewrite == REWRITE_YES || r->nredirect_rules > 0;

	if (redirects && (mount_name_is(name, len, "Location") ||
	    mount_name_is(name, len, "Content-Location")))
		return MOUNT_FIELD_LOCATION;
	if (redirects && mount_name_is(name, len, "Refresh"))
		return MOUNT_FIELD_REFRESH;
	if (r->cookie_rewrite == REWRITE_YES && mount_name_is(name, len, "Set-Cookie"))
		return MOUNT_FIELD_COOKIE;
	return MOUNT_FIELD_OTHER;
}

/*
 * The value of one response field as the client gets it, into buf (NUL-
 * terminated): returns its length, MOUNT_UNCHANGED when the field goes as
 * it came (not one of ours, nothing to translate, or the same bytes), or
 * MOUNT_TOO_LONG when the translation does not fit in size bytes; the
 * caller then has no room for the head either, and fails it as too large.
 */
ssize_t
mount_rewrite(const struct mount_view *v, const char *name, size_t name_len,
    const char *value, size_t value_len, char *buf, size_t size)
{
	struct mount_out o = { .buf = buf, .size = size };
	const char *s = value, *e = value + value_len;
	bool mapped;

	if (size == 0)
		return MOUNT_TOO_LONG;
	mount_trim(&s, &e);
	switch (mount_field_kind(v->route, name, name_len)) {
	case MOUNT_FIELD_LOCATION:
		mapped = mount_map_location(v, s, (size_t)(e - s), &o);
		break;
	case MOUNT_FIELD_REFRESH:
		mapped = mount_map_refresh(v, s, (size_t)(e - s), &o);
		break;
	case MOUNT_FIELD_COOKIE:
		mapped = mount_map_cookie(v, s, (size_t)(e - s), &o);
		break;
	default:
		return MOUNT_UNCHANGED;
	}
	if (!mapped)
		return MOUNT_UNCHANGED;
	if (o.over)
		return MOUNT_TOO_LONG;
	if (o.len == (size_t)(e - s) && memcmp(buf, s, o.len) == 0)
		return MOUNT_UNCHANGED;
	buf[o.len] = '\0';
	return (ssize_t)o.len;
}

/*
 * Is this a plausible authority to build a URL with? The Host field comes
 * from the client (or a trusted proxy's X-Forwarded-Host): anything with a
 * slash, backslash, at sign or blank would make another URL than meant.
 */
static bool
mount_authority_ok(const char *s, size_t len)
{
	size_t i;

	if (len == 0)
		return false;
	for (i = 0; i < len; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
		    (s[i] >= '0' && s[i] <= '9') || strchr(".-_~:[]", s[i]) != NULL))
			return false;
	return true;
}

/* The first element of a trusted proxy's list, as [*ret, *ret + *ret_len). */
static void
mount_first_of(const struct http_header *hd, const char **ret, size_t *ret_len)
{
	const char *s = hd->value, *e = hd->value + hd->value_len, *c;

	if ((c = memchr(s, ',', hd->value_len)) != NULL)
		e = c;
	mount_trim(&s, &e);
	*ret = s;
	*ret_len = (size_t)(e - s);
}

/*
 * The client's origin as gfproxy sees it: the request's scheme (https
 * over --tls) and its Host, or what a trusted proxy says in
 * X-Forwarded-Proto and X-Forwarded-Host (the TLS terminator in front
 * knows the scheme the browser used). Without a usable authority,
 * translated URLs are given as paths from the origin.
 */
void
mount_view_init(struct mount_view *v, const struct route *r, const struct http_request *req,
    bool trusted)
{
	const struct http_header *hd;
	const char *s;
	size_t i, n;

	memset(v, 0, sizeof(*v));
	v->route = r;
	v->scheme = req->scheme;
	if (req->host != NULL && mount_authority_ok(req->host, strlen(req->host))) {
		v->host = req->host;
		v->host_len = strlen(req->host);
		if (r->preserve_host) {
			v->sent_host = v->host;
			v->sent_host_len = v->host_len;
		}
	}
	for (i = 0; trusted && i < req->nheaders; i++) {
		hd = &req->headers[i];
		if (mount_name_is(hd->name, hd->name_len, "X-Forwarded-Proto")) {
			mount_first_of(hd, &s, &n);
			if (mount_name_is(s, n, "https"))
				v->scheme = "https";
			else if (mount_name_is(s, n, "http"))
				v->scheme = "http";
		} else if (mount_name_is(hd->name, hd->name_len, "X-Forwarded-Host")) {
			mount_first_of(hd, &s, &n);
			if (mount_authority_ok(s, n)) {
				v->host = s;
				v->host_len = n;
			}
		}
	}
}

/* Append "name: value" to buf as http_cat() does: -1 when it does not fit. */
static int
mount_append(char *buf, size_t size, size_t *len, const char *name, size_t name_len,
    const char *sep, const char *value, size_t value_len)
{
	size_t seplen = strlen(sep);

	if (name_len + seplen + value_len >= size - *len) {
		buf[*len] = '\0';
		return -1;
	}
	memcpy(buf + *len, name, name_len);
	memcpy(buf + *len + name_len, sep, seplen);
	memcpy(buf + *len + name_len + seplen, value, value_len);
	*len += name_len + seplen + value_len;
	buf[*len] = '\0';
	return 0;
}

/*
 * Append a response field line "Name:value" as the upstream sent it: kept
 * byte for byte, or "Name: " and the translated value written in place.
 * -1 when it does not fit in buf (size bytes, *len used).
 */
int
mount_cat_line(const struct mount_view *v, char *buf, size_t size, size_t *len,
    const char *line)
{
	size_t name_len = strcspn(line, ":");
	const char *value = line + name_len;
	ssize_t n = MOUNT_UNCHANGED;

	if (*value == ':' && mount_field_kind(v->route, line, name_len) != MOUNT_FIELD_OTHER) {
		for (value++; mount_blank(*value); value++)
			;
		if (size - *len > name_len + 2)
			n = mount_rewrite(v, line, name_len, value, strlen(value),
			    buf + *len + name_len + 2, size - *len - name_len - 2);
	}
	if (n == MOUNT_TOO_LONG) {
		buf[*len] = '\0';
		return -1;
	}
	if (n == MOUNT_UNCHANGED)
		return mount_append(buf, size, len, line, strlen(line), "", "", 0);
	memcpy(buf + *len, line, name_len);
	memcpy(buf + *len + name_len, ": ", 2);
	*len += name_len + 2 + (size_t)n;
	return 0;
}
