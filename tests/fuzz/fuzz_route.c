/*
 * fuzz_route.c - libFuzzer target: route_match() and route_rewrite() from
 * src/route.c on fuzzed request targets, under a few real configurations
 * built by config_load() from --prefix and --upstream overrides.
 *
 * Input: one byte picking the configuration, then the target (up to the
 * first NUL, as the request reader hands it on), then optionally a NUL and
 * a Host value. Checked on every accepted rewrite, abort() on a violation:
 *   - the rewritten target starts with '/', and with the upstream's base path;
 *   - its path has no dot segment ("." or "..", raw or %2e, between '/',
 *     '\', %2f or %5c), so nothing climbs out of the base;
 *   - the query string (from the first '?') survives byte for byte;
 *   - no byte appears that was neither in the target nor in the base;
 *   - the request's path was under the matched route's prefix.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config.h"
#include "route.h"

static const struct {
	const char *prefix;
	const char *upstream;
} fuzz_setups[] = {
	{ "/proxy",    "http://127.0.0.1:8198" },
	{ "/proxy/",   "http://127.0.0.1:8198/base" },
	{ "/",         "http://127.0.0.1:8198/base/" },
	{ "/a/b",      "https://backend.example:8443/x/y/" },
	{ "/api",      "http://[::1]:8080/" },
	{ "/v1.0/x~y", "http://127.0.0.1:8198/v1" },
};
#define FUZZ_NSETUPS (sizeof(fuzz_setups) / sizeof(fuzz_setups[0]))

static struct config fuzz_configs[FUZZ_NSETUPS];

static void
fuzz_fail(const char *what, const char *target, const char *out)
{
	fprintf(stderr, "fuzz_route: broken invariant: %s\n  target: \"%s\"\n  rewritten: \"%s\"\n",
	    what, target, out != NULL ? out : "");
	abort();
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct config_overrides o;
	size_t i;

	for (i = 0; i < FUZZ_NSETUPS; i++) {
		memset(&o, 0, sizeof(o));
		o.prefix = fuzz_setups[i].prefix;
		o.upstream = fuzz_setups[i].upstream;
		/* No such file: the command-line route alone, as with --prefix/--upstream. */
		if (config_load(&fuzz_configs[i], "/nonexistent/gfproxy-fuzz.conf", false, &o) != 0 ||
		    fuzz_configs[i].nroutes == 0) {
			fprintf(stderr, "fuzz_route: setup %s -> %s refused: %s\n", o.prefix,
			    o.upstream, fuzz_configs[i].nerrors > 0 ? fuzz_configs[i].errors[0] : "");
			abort();
		}
	}
	return 0;
}

/* The length of a separator at p (in [p, end)): '/', '\', %2f, %5c; else 0. */
static size_t
fuzz_separator(const char *p, const char *end)
{
	if (*p == '/' || *p == '\\')
		return 1;
	if (end - p >= 3 && p[0] == '%' && (strncasecmp(p + 1, "2f", 2) == 0 ||
	    strncasecmp(p + 1, "5c", 2) == 0))
		return 3;
	return 0;
}

/* Is [s, e), with %2e decoded, exactly "." or ".."? */
static bool
fuzz_is_dots(const char *s, const char *e)
{
	char dec[3];
	size_t n = 0;

	while (s < e) {
		if (n == 2)
			return false;
		if (*s == '.') {
			dec[n++] = '.';
			s++;
		} else if (e - s >= 3 && s[0] == '%' && s[1] == '2' && (s[2] == 'e' || s[2] == 'E')) {
			dec[n++] = '.';
			s += 3;
		} else
			return false;
	}
	return n > 0;
}

static bool
fuzz_has_dot_segment(const char *path, size_t len)
{
	const char *p = path, *end = path + len, *seg = path;
	size_t n;

	while (p < end) {
		if ((n = fuzz_separator(p, end)) == 0) {
			p++;
			continue;
		}
		if (fuzz_is_dots(seg, p))
			return true;
		p += n;
		seg = p;
	}
	return fuzz_is_dots(seg, end);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char target[ROUTE_MAX_TARGET + 1], host[256], out[ROUTE_MAX_TARGET];
	const struct config *cfg;
	const struct route *r;
	const char *why = NULL, *path, *query, *oq, *base;
	size_t tlen, i, setup, baselen;
	const uint8_t *nul;
	int status;

	if (size < 1)
		return -1;
	setup = data[0] % FUZZ_NSETUPS;
	cfg = &fuzz_configs[setup];
	data++, size--;

	nul = memchr(data, '\0', size);
	tlen = nul != NULL ? (size_t)(nul - data) : size;
	if (tlen == 0 || tlen > (8 * 1024))
		return -1;
	memcpy(target, data, tlen);
	target[tlen] = '\0';
	host[0] = '\0';
	if (nul != NULL) {
		size_t hl = size - tlen - 1;
		if (hl >= sizeof(host))
			hl = sizeof(host) - 1;
		memcpy(host, nul + 1, hl);
		host[hl] = '\0';
	}

	path = route_path(target);
	if (path < target || path > target + tlen)
		fuzz_fail("route_path() points outside the target", target, NULL);

	r = route_match(cfg, target, host[0] != '\0' ? host : NULL);
	if (r == NULL)
		return 0;
	if (path[0] != '/')
		fuzz_fail("matched a target whose path does not start with '/'", target, NULL);
	if (strncmp(path, r->prefix, r->prefix_len) != 0)
		fuzz_fail("matched a path not under the route's prefix", target, NULL);

	status = route_rewrite(r, 0, target, out, sizeof(out), &why);
	if (status != 0) {
		if (status != 400 && status != 414)
			fuzz_fail("route_rewrite() refused with an unexpected status", target, NULL);
		if (why == NULL)
			fuzz_fail("route_rewrite() refused without saying why", target, NULL);
		return 0;
	}

	base = r->upstreams[0].base;
	baselen = strlen(base);
	if (out[0] != '/')
		fuzz_fail("rewritten target does not start with '/'", target, out);
	/* The base path, less a trailing slash the join may have merged. */
	if (baselen > 0 && strncmp(out, base, baselen - (base[baselen - 1] == '/')) != 0)
		fuzz_fail("rewritten target does not start with the upstream's base path", target, out);
	if (fuzz_has_dot_segment(out, strcspn(out, "?#")))
		fuzz_fail("dot segment in the rewritten path", target, out);
	query = strchr(path, '?');
	if (query != NULL) {
		oq = strchr(out, '?');
		if (oq == NULL || strcmp(oq, query) != 0)
			fuzz_fail("query string changed", target, out);
	}
	for (i = 0; out[i] != '\0'; i++)
		if (memchr(target, out[i], tlen) == NULL && memchr(base, out[i], baselen) == NULL &&
		    out[i] != '/')
			fuzz_fail("byte in the rewritten target from nowhere", target, out);
	return 0;
}
