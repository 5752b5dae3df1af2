/*
 * mount.c - checks mount_rewrite() and friends of src/mount.c directly:
 * each form of Location, Content-Location, Refresh and Set-Cookie the
 * upstream may send, against routes with and without a prefix stripped or
 * a base path, and the buffer rules. tests/proxy-mount.bats builds and
 * runs it; the same forms go through the real proxy there too.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mount.h"

static int failures, checks;

/* A route from its prefix (stripped or not) and upstream URLs. */
static struct route *
route(const char *prefix, bool strip, const char *up1, const char *up2)
{
	static struct route r;
	const char *why;
	size_t i;

	for (i = 0; i < r.nupstreams; i++)
		config_free_upstream(&r.upstreams[i]);
	memset(&r, 0, sizeof(r));
	r.prefix = (char *)prefix;
	r.prefix_len = strlen(prefix);
	r.strip_prefix = strip;
	r.preserve_host = true;
	r.redirect_rewrite = r.cookie_rewrite = REWRITE_YES;
	if (config_parse_upstream(&r.upstreams[r.nupstreams++], up1, &why) < 0 ||
	    (up2 != NULL && config_parse_upstream(&r.upstreams[r.nupstreams++], up2, &why) < 0)) {
		printf("bad upstream: %s\n", why);
		exit(1);
	}
	return &r;
}

/*
 * One case: a field from the upstream and what the client must get (NULL:
 * the field unchanged), for a client with this Host ("" for none; NULL for
 * gw.example:8080) and at most one more request field, trusted or not,
 * over http or (scheme) https.
 */
struct mount_case {
	const char  *what;
	const char  *name;
	const char  *value;
	const char  *want;
	const char  *host;
	const char  *field;
	const char  *field_value;
	bool         trusted;
	const char  *scheme;
};

static void
check(const struct route *r, const struct mount_case *c)
{
	static struct http_request req;
	struct mount_view v;
	char buf[512];
	ssize_t n;

	checks++;
	memset(&req, 0, sizeof(req));
	req.scheme = c->scheme != NULL ? c->scheme : "http";
	req.host = c->host == NULL ? "gw.example:8080" : c->host[0] != '\0' ? c->host : NULL;
	if (c->field != NULL) {
		req.headers[0] = (struct http_header){ c->field, c->field_value, strlen(c->field),
		    strlen(c->field_value) };
		req.nheaders = 1;
	}
	mount_view_init(&v, r, &req, c->trusted);
	memset(buf, 'Z', sizeof(buf));
	n = mount_rewrite(&v, c->name, strlen(c->name), c->value, strlen(c->value), buf,
	    sizeof(buf) - 1);
	if (c->want == NULL ? n != MOUNT_UNCHANGED :
	    n < 0 || strcmp(buf, c->want) != 0 || (size_t)n != strlen(c->want)) {
		printf("FAIL %s: %s: %s became \"%s\" (%zd), want \"%s\"\n", c->what, c->name,
		    c->value, n >= 0 ? buf : "", n, c->want != NULL ? c->want : "(unchanged)");
		failures++;
	}
}

#define CHECK_ALL(r, cases) \
	for (size_t i_ = 0; i_ < sizeof(cases) / sizeof(cases[0]); i_++) \
		check((r), &(cases)[i_])

/* A route /proxy -> http://app:5000, the common case. */
static const struct mount_case plain[] = {
	{ "path", "Location", "/relative-redirect/2", "/proxy/relative-redirect/2" },
	{ "root", "Location", "/", "/proxy/" },
	{ "query", "Location", "/get?a=1&b=/x#f", "/proxy/get?a=1&b=/x#f" },
	{ "blanks", "location", "  /a  ", "/proxy/a" },
	{ "absolute, upstream", "Location", "http://app:5000/x?y", "http://gw.example:8080/proxy/x?y" },
	{ "absolute, no path", "Location", "http://APP:5000", "http://gw.example:8080/proxy/" },
	{ "absolute, query only", "Location", "http://app:5000?q", "http://gw.example:8080/proxy/?q" },
	{ "absolute, the Host it was given", "Location", "http://gw.example:8080/absolute-redirect/1",
	  "http://gw.example:8080/proxy/absolute-redirect/1" },
	{ "network-path", "Location", "//app:5000/n", "//gw.example:8080/proxy/n" },
	{ "already under the prefix", "Location", "/proxy/x", NULL },
	{ "already under the prefix, absolute", "Location", "http://app:5000/proxy/x",
	  "http://gw.example:8080/proxy/x" },
	{ "prefix as a word", "Location", "/proxyx", "/proxy/proxyx" },
	{ "relative path", "Location", "next/page", NULL },
	{ "dot relative", "Location", "../up", NULL },
	{ "foreign host", "Location", "http://other.example/x", NULL },
	{ "other port", "Location", "http://app:5001/x", NULL },
	{ "other scheme", "Location", "https://app:5000/x", NULL },
	{ "userinfo", "Location", "http://u@app:5000/x", NULL },
	{ "not a URL", "Location", "mailto:a@b", NULL },
	{ "empty", "Location", "", NULL },
	{ "content-location", "Content-Location", "/doc/1", "/proxy/doc/1" },
	{ "other field", "Link", "</a>; rel=next", NULL },
	{ "refresh", "Refresh", "5; url=/next", "5; url=/proxy/next" },
	{ "refresh, quoted", "Refresh", "0;URL='/n?x'", "0;URL='/proxy/n?x'" },
	{ "refresh, comma", "Refresh", "3, /n", "3, /proxy/n" },
	{ "refresh, absolute", "Refresh", "1; url=http://app:5000/z",
	  "1; url=http://gw.example:8080/proxy/z" },
	{ "refresh, no url", "Refresh", "30", NULL },
	{ "refresh, foreign", "Refresh", "1; url=http://x.example/", NULL },
	/* Without a usable Host, an absolute URL becomes a path from the origin. */
	{ "no Host", "Location", "http://app:5000/x", "/proxy/x", "" },
	{ "Host with a slash", "Location", "http://app:5000/x", "/proxy/x", "evil.example/x" },
	{ "no Host, double slash", "Location", "http://app:5000//evil.example/x",
	  "/proxy//evil.example/x", "" },
	/* A trusted proxy's X-Forwarded-Proto and -Host are the client's origin. */
	{ "trusted proto", "Location", "http://app:5000/x", "https://gw/proxy/x", "gw",
	  "X-Forwarded-Proto", "https, http", true },
	{ "untrusted proto", "Location", "http://app:5000/x", "http://gw/proxy/x", "gw",
	  "X-Forwarded-Proto", "https", false },
	{ "trusted host", "Location", "http://inner/x", "http://pub.example/proxy/x", "inner",
	  "X-Forwarded-Host", "pub.example", true },
	/* Over TLS (--tls), the client's own scheme; a trusted proxy's still wins. */
	{ "https", "Location", "http://app:5000/x", "https://gw/proxy/x", "gw", NULL, NULL, false,
	  "https" },
	{ "https, network-path", "Location", "//gw/x", "//gw/proxy/x", "gw", NULL, NULL, false,
	  "https" },
	{ "https, refresh", "Refresh", "1; url=http://app:5000/z", "1; url=https://gw/proxy/z", "gw",
	  NULL, NULL, false, "https" },
	{ "https, trusted proto", "Location", "http://app:5000/x", "http://gw/proxy/x", "gw",
	  "X-Forwarded-Proto", "http", true, "https" },
	/* Cookies. */
	{ "cookie path", "Set-Cookie", "a=1; Path=/app", "a=1; Path=/proxy/app" },
	{ "cookie root", "Set-Cookie", "a=1; Path=/", "a=1; Path=/proxy" },
	{ "cookie dir", "Set-Cookie", "a=1; path=/app/; HttpOnly", "a=1; path=/proxy/app/; HttpOnly" },
	{ "cookie no path", "Set-Cookie", "a=1; HttpOnly", NULL },
	{ "cookie value with Path=", "Set-Cookie", "a=Path=/x", NULL },
	{ "cookie already prefixed", "Set-Cookie", "a=1; Path=/proxy/x", NULL },
	{ "cookie domain of upstream", "Set-Cookie", "a=1; Domain=app; Path=/", "a=1; Path=/proxy" },
	{ "cookie domain with dot", "Set-Cookie", "a=1;Domain=.APP", "a=1" },
	{ "cookie domain of client", "Set-Cookie", "a=1; Domain=gw.example", NULL },
	{ "cookie foreign domain", "Set-Cookie", "a=1; Domain=example.org", NULL },
	{ "cookie parent domain", "Set-Cookie", "a=1; Domain=example; Path=/",
	  "a=1; Domain=example; Path=/proxy", "gw.example" },
	{ "cookie domain of the Host given", "Set-Cookie", "a=1; Domain=inner", "a=1", "inner",
	  "X-Forwarded-Host", "pub.example", true },
};

/* A route with an upstream base path: /one -> http://app:5000/two/. */
static const struct mount_case based[] = {
	{ "base", "Location", "/two/x?q", "/one/x?q" },
	{ "base itself", "Location", "/two", "/one" },
	{ "outside the base", "Location", "/three/x", NULL },
	{ "base, absolute", "Location", "http://app:5000/two/x", "http://gw.example:8080/one/x" },
	{ "base, absolute outside", "Location", "http://app:5000/x", NULL },
	{ "base cookie", "Set-Cookie", "s=1; Path=/two/x", "s=1; Path=/one/x" },
	{ "base cookie wider", "Set-Cookie", "s=1; Path=/", "s=1; Path=/one" },
	{ "base cookie other", "Set-Cookie", "s=1; Path=/three", NULL },
};

/* Base path only, prefix kept: /api -> http://app:5000/v2, strip-prefix = no. */
static const struct mount_case kept[] = {
	{ "no strip, base", "Location", "/v2/api/x", "/api/x" },
	{ "no strip, base root", "Location", "/v2", "/" },
};

/* No prefix stripped, no base: paths are the client's; origins still are not. */
static const struct mount_case unmounted[] = {
	{ "no strip, path", "Location", "/p/x", NULL },
	{ "no strip, absolute", "Location", "http://app:5000/p/x", "http://gw.example:8080/p/x" },
};

/* Failover: every upstream of the route is the route's own. */
static const struct mount_case pair[] = {
	{ "second upstream", "Location", "https://b:443/x", "http://gw.example:8080/proxy/x" },
	{ "second upstream, wrong scheme", "Location", "http://b/x", NULL },
};

/*
 * Prefix / and a base path: what is left must not start with "//", nor
 * anything a browser reads as "//": a backslash for a slash, a tab or a
 * line break skipped (WHATWG URL).
 */
static const struct mount_case rooted[] = {
	{ "root prefix, base", "Location", "/two/x", "/x" },
	{ "root prefix, base, double slash", "Location", "/two//evil.example/x", NULL },
	{ "root prefix, base, no Host", "Location", "http://app:5000/two//evil.example/x", NULL, "" },
	{ "root prefix, base, backslash", "Location", "/two/\\evil.example/", NULL },
	{ "root prefix, base, tab", "Location", "/two/\t/evil.example", NULL },
	{ "root prefix, base, tab, backslash", "Location", "/two/\t\\evil.example", NULL },
	{ "root prefix, base, CR LF", "Location", "/two/\r\n/evil.example", NULL },
	{ "root prefix, base, refresh backslash", "Refresh", "0; url=/two/\\evil.example",
	  NULL },
	{ "root prefix, base, no Host, backslash", "Location",
	  "http://app:5000/two/\\evil.example/x", NULL, "" },
	{ "root prefix, base, no Host, tab", "Location", "http://app:5000/two/\t/evil.example/x",
	  NULL, "" },
	{ "root prefix, base, a backslash further on", "Location", "/two/x\\y", "/x\\y" },
	{ "root prefix, base, with Host", "Location", "http://app:5000/two//e/x",
	  "http://gw.example:8080//e/x" },
};

/* A unix: upstream is http://localhost. */
static const struct mount_case unix_socket[] = {
	{ "unix", "Location", "http://localhost/x", "http://gw.example:8080/proxy/x" },
};

/* Off, with a rule https://public.example/ -> /proxy/. */
static const struct mount_case ruled_off[] = {
	{ "off", "Location", "/x", NULL },
	{ "off, cookie", "Set-Cookie", "a=1; Path=/", NULL },
	{ "rule", "Location", "HTTPS://public.example/a", "/proxy/a" },
	{ "rule, no match", "Location", "/a", NULL },
	{ "rule, refresh", "Refresh", "0; url=https://public.example/b", "0; url=/proxy/b" },
};

/* A rule to the root: what follows FROM cannot make it another host. */
static const struct mount_case ruled_root[] = {
	{ "rule to /", "Location", "https://public.example/a", "/a" },
	{ "rule to /, double slash", "Location", "https://public.example//evil.example", NULL },
	{ "rule to /, backslash", "Location", "https://public.example/\\evil.example", NULL },
	{ "rule to /, tab", "Location", "https://public.example/\t/evil.example", NULL },
};

/* On, with the same rule. */
static const struct mount_case ruled_on[] = {
	{ "rule before default", "Location", "https://public.example/c", "/proxy/c" },
	{ "default after rules", "Location", "/d", "/proxy/d" },
};

int
main(void)
{
	static struct http_request cl;
	struct route *r;
	struct mount_view v;
	char buf[64];
	size_t len;

	CHECK_ALL(route("/proxy", true, "http://app:5000", NULL), plain);
	CHECK_ALL(route("/one", true, "http://app:5000/two/", NULL), based);
	CHECK_ALL(route("/api", false, "http://app:5000/v2", NULL), kept);
	CHECK_ALL(route("/p", false, "http://app:5000", NULL), unmounted);
	CHECK_ALL(route("/proxy", true, "http://a:1", "https://b"), pair);
	CHECK_ALL(route("/proxy", true, "unix:/run/app.sock", NULL), unix_socket);
	CHECK_ALL(route("", true, "http://app:5000/two", NULL), rooted);
	r = route("/proxy", true, "http://app:5000", NULL);
	r->redirect_rewrite = r->cookie_rewrite = REWRITE_NO;
	r->redirect_rules[0] = (struct redirect_rule){ "https://public.example/", "/proxy/" };
	r->nredirect_rules = 1;
	CHECK_ALL(r, ruled_off);
	r->redirect_rules[0] = (struct redirect_rule){ "https://public.example/", "/" };
	CHECK_ALL(r, ruled_root);
	r->redirect_rules[0] = (struct redirect_rule){ "https://public.example/", "/proxy/" };
	r->redirect_rewrite = REWRITE_YES;
	CHECK_ALL(r, ruled_on);
	r->nredirect_rules = 0;

	/* The buffer: too small is MOUNT_TOO_LONG, never an overrun. */
	cl.host = "gw.example:8080";
	cl.scheme = "http";
	mount_view_init(&v, r, &cl, false);
	memset(buf, 'Z', sizeof(buf));
	checks++;
	if (mount_rewrite(&v, "Location", 8, "/abcdef", 7, buf, 8) != MOUNT_TOO_LONG ||
	    buf[8] != 'Z') {
		printf("FAIL too long: not refused, or written past the buffer\n");
		failures++;
	}
	checks++;
	if (mount_rewrite(&v, "Location", 8, "/abcdef", 7, buf, 14) != 13 ||
	    strcmp(buf, "/proxy/abcdef") != 0) {
		printf("FAIL just fits: \"%s\"\n", buf);
		failures++;
	}
	/* The line form keeps an untouched field byte for byte, and a changed one as Name: value. */
	len = 0;
	checks++;
	if (mount_cat_line(&v, buf, sizeof(buf), &len, "X-A:  b ") < 0 ||
	    mount_cat_line(&v, buf, sizeof(buf), &len, "Location:/x") < 0 ||
	    strcmp(buf, "X-A:  b Location: /proxy/x") != 0 || len != strlen(buf)) {
		printf("FAIL cat_line: \"%s\"\n", buf);
		failures++;
	}
	len = 50;
	checks++;
	if (mount_cat_line(&v, buf, sizeof(buf), &len, "Location: /abcdefgh") != -1 || len != 50) {
		printf("FAIL cat_line past the end: accepted\n");
		failures++;
	}

	if (failures > 0) {
		printf("mount: %d of %d checks failed\n", failures, checks);
		return 1;
	}
	printf("mount: all %d checks passed\n", checks);
	return 0;
}
