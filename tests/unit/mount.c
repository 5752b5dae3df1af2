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

/* A request from the client with this Host (NULL: none) and fields. */
static struct http_request *
request(const char *host, const char *f1, const char *v1)
{
	static struct http_request req;

	memset(&req, 0, sizeof(req));
	req.host = host;
	if (f1 != NULL) {
		req.headers[0] = (struct http_header){ f1, v1, strlen(f1), strlen(v1) };
		req.nheaders = 1;
	}
	return &req;
}

static void
expect(const char *what, const struct route *r, const struct http_request *req, bool trusted,
    const char *name, const char *value, const char *want)
{
	struct mount_view v;
	char buf[512];
	ssize_t n;

	checks++;
	mount_view_init(&v, r, req, trusted);
	memset(buf, 'Z', sizeof(buf));
	n = mount_rewrite(&v, name, strlen(name), value, strlen(value), buf, sizeof(buf) - 1);
	if (want == NULL) {
		if (n != MOUNT_UNCHANGED) {
			printf("FAIL %s: %s: %s became \"%s\", want it unchanged\n", what, name, value,
			    n >= 0 ? buf : "(too long)");
			failures++;
		}
		return;
	}
	if (n < 0 || strcmp(buf, want) != 0 || (size_t)n != strlen(want)) {
		printf("FAIL %s: %s: %s became \"%s\" (%zd), want \"%s\"\n", what, name, value,
		    n >= 0 ? buf : "", n, want);
		failures++;
	}
}

int
main(void)
{
	struct http_request *cl = request("gw.example:8080", NULL, NULL);
	struct route *r;
	struct mount_view v;
	char buf[64];
	size_t len;

	/* A route /proxy -> http://app:5000, the common case. */
	r = route("/proxy", true, "http://app:5000", NULL);
	expect("path", r, cl, false, "Location", "/relative-redirect/2", "/proxy/relative-redirect/2");
	expect("root", r, cl, false, "Location", "/", "/proxy/");
	expect("query", r, cl, false, "Location", "/get?a=1&b=/x#f", "/proxy/get?a=1&b=/x#f");
	expect("blanks", r, cl, false, "location", "  /a  ", "/proxy/a");
	expect("absolute, upstream", r, cl, false, "Location", "http://app:5000/x?y",
	    "http://gw.example:8080/proxy/x?y");
	expect("absolute, no path", r, cl, false, "Location", "http://APP:5000",
	    "http://gw.example:8080/proxy/");
	expect("absolute, query only", r, cl, false, "Location", "http://app:5000?q",
	    "http://gw.example:8080/proxy/?q");
	expect("absolute, the Host it was given", r, cl, false, "Location",
	    "http://gw.example:8080/absolute-redirect/1", "http://gw.example:8080/proxy/absolute-redirect/1");
	expect("network-path", r, cl, false, "Location", "//app:5000/n", "//gw.example:8080/proxy/n");
	expect("already under the prefix", r, cl, false, "Location", "/proxy/x", NULL);
	expect("already under the prefix, absolute", r, cl, false, "Location",
	    "http://app:5000/proxy/x", "http://gw.example:8080/proxy/x");
	expect("prefix as a word", r, cl, false, "Location", "/proxyx", "/proxy/proxyx");
	expect("relative path", r, cl, false, "Location", "next/page", NULL);
	expect("dot relative", r, cl, false, "Location", "../up", NULL);
	expect("foreign host", r, cl, false, "Location", "http://other.example/x", NULL);
	expect("other port", r, cl, false, "Location", "http://app:5001/x", NULL);
	expect("other scheme", r, cl, false, "Location", "https://app:5000/x", NULL);
	expect("userinfo", r, cl, false, "Location", "http://u@app:5000/x", NULL);
	expect("not a URL", r, cl, false, "Location", "mailto:a@b", NULL);
	expect("empty", r, cl, false, "Location", "", NULL);
	expect("content-location", r, cl, false, "Content-Location", "/doc/1", "/proxy/doc/1");
	expect("other field", r, cl, false, "Link", "</a>; rel=next", NULL);
	expect("refresh", r, cl, false, "Refresh", "5; url=/next", "5; url=/proxy/next");
	expect("refresh, quoted", r, cl, false, "Refresh", "0;URL='/n?x'", "0;URL='/proxy/n?x'");
	expect("refresh, comma", r, cl, false, "Refresh", "3, /n", "3, /proxy/n");
	expect("refresh, absolute", r, cl, false, "Refresh", "1; url=http://app:5000/z",
	    "1; url=http://gw.example:8080/proxy/z");
	expect("refresh, no url", r, cl, false, "Refresh", "30", NULL);
	expect("refresh, foreign", r, cl, false, "Refresh", "1; url=http://x.example/", NULL);

	/* Without a usable Host, an absolute URL becomes a path from the origin (request()
	 * reuses its one request: cl is made again after these). */
	expect("no Host", r, request(NULL, NULL, NULL), false, "Location", "http://app:5000/x",
	    "/proxy/x");
	expect("Host with a slash", r, request("evil.example/x", NULL, NULL), false, "Location",
	    "http://app:5000/x", "/proxy/x");
	/* A trusted proxy's X-Forwarded-Proto and -Host are the client's origin. */
	expect("trusted proto", r, request("gw", "X-Forwarded-Proto", "https, http"), true,
	    "Location", "http://app:5000/x", "https://gw/proxy/x");
	expect("untrusted proto", r, request("gw", "X-Forwarded-Proto", "https"), false,
	    "Location", "http://app:5000/x", "http://gw/proxy/x");
	expect("trusted host", r, request("inner", "X-Forwarded-Host", "pub.example"), true,
	    "Location", "http://inner/x", "http://pub.example/proxy/x");

	/* Cookies. */
	cl = request("gw.example:8080", NULL, NULL);
	expect("cookie path", r, cl, false, "Set-Cookie", "a=1; Path=/app", "a=1; Path=/proxy/app");
	expect("cookie root", r, cl, false, "Set-Cookie", "a=1; Path=/", "a=1; Path=/proxy");
	expect("cookie dir", r, cl, false, "Set-Cookie", "a=1; path=/app/; HttpOnly",
	    "a=1; path=/proxy/app/; HttpOnly");
	expect("cookie no path", r, cl, false, "Set-Cookie", "a=1; HttpOnly", NULL);
	expect("cookie value with Path=", r, cl, false, "Set-Cookie", "a=Path=/x", NULL);
	expect("cookie already prefixed", r, cl, false, "Set-Cookie", "a=1; Path=/proxy/x", NULL);
	expect("cookie domain of upstream", r, cl, false, "Set-Cookie",
	    "a=1; Domain=app; Path=/", "a=1; Path=/proxy");
	expect("cookie domain with dot", r, cl, false, "Set-Cookie", "a=1;Domain=.APP", "a=1");
	expect("cookie domain of client", r, cl, false, "Set-Cookie", "a=1; Domain=gw.example", NULL);
	expect("cookie foreign domain", r, cl, false, "Set-Cookie", "a=1; Domain=example.org", NULL);
	expect("cookie parent domain", r, request("gw.example", NULL, NULL), false, "Set-Cookie",
	    "a=1; Domain=example; Path=/", "a=1; Domain=example; Path=/proxy");
	expect("cookie domain of the Host given", r,
	    request("inner", "X-Forwarded-Host", "pub.example"), true, "Set-Cookie",
	    "a=1; Domain=inner", "a=1");

	/* A route with an upstream base path: /one -> http://app:5000/two. */
	cl = request("gw.example:8080", NULL, NULL);     /* request() reuses its one request */
	r = route("/one", true, "http://app:5000/two/", NULL);
	expect("base", r, cl, false, "Location", "/two/x?q", "/one/x?q");
	expect("base itself", r, cl, false, "Location", "/two", "/one");
	expect("outside the base", r, cl, false, "Location", "/three/x", NULL);
	expect("base, absolute", r, cl, false, "Location", "http://app:5000/two/x",
	    "http://gw.example:8080/one/x");
	expect("base, absolute outside", r, cl, false, "Location", "http://app:5000/x", NULL);
	expect("base cookie", r, cl, false, "Set-Cookie", "s=1; Path=/two/x", "s=1; Path=/one/x");
	expect("base cookie wider", r, cl, false, "Set-Cookie", "s=1; Path=/", "s=1; Path=/one");
	expect("base cookie other", r, cl, false, "Set-Cookie", "s=1; Path=/three", NULL);

	/* Base path only, prefix kept: /api -> http://app:5000/v2, strip-prefix = no. */
	r = route("/api", false, "http://app:5000/v2", NULL);
	expect("no strip, base", r, cl, false, "Location", "/v2/api/x", "/api/x");
	expect("no strip, base root", r, cl, false, "Location", "/v2", "/");

	/* No prefix stripped, no base: paths are the client's; origins still are not. */
	r = route("/p", false, "http://app:5000", NULL);
	expect("no strip, path", r, cl, false, "Location", "/p/x", NULL);
	expect("no strip, absolute", r, cl, false, "Location", "http://app:5000/p/x",
	    "http://gw.example:8080/p/x");

	/* Failover: every upstream of the route is the route's own. */
	r = route("/proxy", true, "http://a:1", "https://b");
	expect("second upstream", r, cl, false, "Location", "https://b:443/x",
	    "http://gw.example:8080/proxy/x");
	expect("second upstream, wrong scheme", r, cl, false, "Location", "http://b/x", NULL);
	/* A unix: upstream is http://localhost. */
	r = route("/proxy", true, "unix:/run/app.sock", NULL);
	expect("unix", r, cl, false, "Location", "http://localhost/x", "http://gw.example:8080/proxy/x");

	/* Off, and explicit rules. */
	r = route("/proxy", true, "http://app:5000", NULL);
	r->redirect_rewrite = REWRITE_NO;
	r->cookie_rewrite = REWRITE_NO;
	expect("off", r, cl, false, "Location", "/x", NULL);
	expect("off, cookie", r, cl, false, "Set-Cookie", "a=1; Path=/", NULL);
	r->redirect_rules[0] = (struct redirect_rule){ "https://public.example/", "/proxy/" };
	r->nredirect_rules = 1;
	expect("rule", r, cl, false, "Location", "HTTPS://public.example/a", "/proxy/a");
	expect("rule, no match", r, cl, false, "Location", "/a", NULL);
	expect("rule, refresh", r, cl, false, "Refresh", "0; url=https://public.example/b",
	    "0; url=/proxy/b");
	r->redirect_rewrite = REWRITE_YES;
	expect("rule before default", r, cl, false, "Location", "https://public.example/c", "/proxy/c");
	expect("default after rules", r, cl, false, "Location", "/d", "/proxy/d");
	r->nredirect_rules = 0;

	/* The buffer: too small is MOUNT_TOO_LONG, never an overrun. */
	mount_view_init(&v, r, cl, false);
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
	len = 0;
	checks++;
	if (mount_cat_field(&v, buf, sizeof(buf), &len, "Location", 8, "/xyz", 2) < 0 ||
	    strcmp(buf, "Location: /proxy/x") != 0) {
		printf("FAIL cat_field: \"%s\"\n", buf);
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
