/*
 * fuzz_mount.c - libFuzzer target: mount_rewrite() and mount_cat_line()
 * from src/mount.c on fuzzed response fields, under a few
 * route shapes (prefix stripped or not, base paths, several upstreams, a
 * redirect-rewrite rule) and client origins.
 *
 * Input: one byte picking the route and (its top bit) whether the client
 * came over https, one picking the field name, whether
 * the client is a trusted proxy and the output room; then the client's Host
 * up to a NUL (none if the NUL is first), then the field's value (without a
 * NUL, as http.c lets none through). Checked,
 * abort() on a violation:
 *   - nothing is written past the room given (ASan, the buffer is exact);
 *   - a length returned is the NUL-terminated string's, within the room;
 *   - no control byte but HTAB appears that the value did not have;
 *   - a Location's query and fragment survive byte for byte, and one that
 *     is neither a path nor an http(s) URL is never touched;
 *   - a Set-Cookie's name=value pair survives byte for byte;
 *   - on a route without a base path, translating twice changes nothing
 *     more (a translated URL is under the prefix, at the client's origin);
 *   - the line form appends exactly "Name: " and the translation, or the
 *     field as given, and near the buffer's end refuses what does not fit.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mount.h"

struct fuzz_setup {
	const char  *prefix;
	bool         strip;
	const char  *up[2];
	bool         rule;          /* redirect-rewrite = http://pub.example/ /proxy/ */
	bool         base;          /* an upstream has a base path */
};

static const struct fuzz_setup fuzz_setups[] = {
	{ "/proxy", true,  { "http://app:5000", NULL },                  false, false },
	{ "/one",   true,  { "http://app:5000/two/", NULL },             false, true },
	{ "/api",   false, { "https://[::1]:8443/v2", NULL },            false, true },
	{ "",       true,  { "http://app", NULL },                       false, false },
	{ "/proxy", true,  { "unix:/run/app.sock", "https://b.example" }, false, false },
	{ "/p/q",   true,  { "http://app:5000", NULL },                  true,  false },
};
#define FUZZ_NSETUPS (sizeof(fuzz_setups) / sizeof(fuzz_setups[0]))

static const char *const fuzz_names[] = {
	"Location", "Content-Location", "Refresh", "Set-Cookie", "location", "X-Other",
};
#define FUZZ_NNAMES (sizeof(fuzz_names) / sizeof(fuzz_names[0]))

static struct route fuzz_routes[FUZZ_NSETUPS];

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct route *r;
	const char *why;
	size_t i, j;

	for (i = 0; i < FUZZ_NSETUPS; i++) {
		r = &fuzz_routes[i];
		r->prefix = (char *)fuzz_setups[i].prefix;
		r->prefix_len = strlen(r->prefix);
		r->strip_prefix = fuzz_setups[i].strip;
		r->preserve_host = true;
		r->redirect_rewrite = r->cookie_rewrite = REWRITE_YES;
		for (j = 0; j < 2 && fuzz_setups[i].up[j] != NULL; j++)
			if (config_parse_upstream(&r->upstreams[r->nupstreams++], fuzz_setups[i].up[j],
			    &why) < 0) {
				fprintf(stderr, "fuzz_mount: %s refused: %s\n", fuzz_setups[i].up[j], why);
				abort();
			}
		if (fuzz_setups[i].rule) {
			r->redirect_rules[0] = (struct redirect_rule){ "http://pub.example/", "/proxy/" };
			r->nredirect_rules = 1;
		}
	}
	return 0;
}

static void
fuzz_fail(const char *what, const char *name, const char *value, size_t len, const char *out)
{
	fprintf(stderr, "fuzz_mount: broken invariant: %s\n  %s: \"%.*s\"\n  became: \"%s\"\n",
	    what, name, (int)len, value, out != NULL ? out : "");
	abort();
}

static bool
fuzz_control(char c)
{
	return ((unsigned char)c < 0x20 && c != '\t') || c == 0x7f;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char host[256], again[4096], line[4096], cat[8192];
	const struct fuzz_setup *setup;
	struct http_request *req;
	struct mount_view v;
	const char *name, *value, *q, *oq;
	char *out;
	size_t room, vlen, i, len, nlen;
	const uint8_t *nul;
	ssize_t n, n2;
	int r;
	bool trusted, https, ctl;

	if (size < 2)
		return -1;
	setup = &fuzz_setups[data[0] % FUZZ_NSETUPS];
	name = fuzz_names[data[1] % FUZZ_NNAMES];
	trusted = data[1] & 0x80;
	https = data[0] & 0x80;
	room = 1 + (data[1] >> 3 & 0x0f) * 64;
	data += 2, size -= 2;
	if ((nul = memchr(data, '\0', size)) == NULL || (size_t)(nul - data) >= sizeof(host))
		return -1;
	memcpy(host, data, (size_t)(nul - data));
	host[nul - data] = '\0';
	value = (const char *)nul + 1;
	vlen = size - (size_t)(nul - data) - 1;
	/* Both callers hand over values http.c checked: never a NUL in them. */
	if (vlen >= sizeof(line) / 2 || memchr(value, '\0', vlen) != NULL)
		return -1;

	if ((req = calloc(1, sizeof(*req))) == NULL)
		abort();
	req->host = host[0] != '\0' ? host : NULL;
	req->scheme = https ? "https" : "http";
	/* A trusted proxy's say comes from the Host bytes too. */
	req->headers[0] = (struct http_header){ "X-Forwarded-Host", host, 16, strlen(host) };
	req->headers[1] = (struct http_header){ "X-Forwarded-Proto", "https", 17, 5 };
	req->nheaders = 2;
	mount_view_init(&v, &fuzz_routes[setup - fuzz_setups], req, trusted);

	if ((out = malloc(room)) == NULL)
		abort();
	n = mount_rewrite(&v, name, strlen(name), value, vlen, out, room);
	if (n != MOUNT_UNCHANGED && n != MOUNT_TOO_LONG) {
		if (n < 0 || (size_t)n >= room || strlen(out) != (size_t)n)
			fuzz_fail("length returned is not the string's, or past the room", name, value,
			    vlen, NULL);
		for (ctl = false, i = 0; i < vlen; i++)
			ctl |= fuzz_control(value[i]);
		for (i = 0; !ctl && i < (size_t)n; i++)
			if (fuzz_control(out[i]))
				fuzz_fail("control byte from nowhere", name, value, vlen, out);
		if (strcasecmp(name, "Location") == 0) {
			char *v0 = strndup(value, vlen);
			char *s = v0 + strspn(v0, " \t");
			size_t e = strlen(s);
			while (e > 0 && (s[e - 1] == ' ' || s[e - 1] == '\t'))
				s[--e] = '\0';
			if (s[0] != '/' && strncasecmp(s, "http://", 7) != 0 &&
			    strncasecmp(s, "https://", 8) != 0 && !setup->rule)
				fuzz_fail("a reference that is no path or http(s) URL was touched", name,
				    value, vlen, out);
			q = s + strcspn(s, "?#");
			oq = out + strcspn(out, "?#");
			if (!setup->rule && (strlen(q) > strlen(oq) || strcmp(oq + strlen(oq) - strlen(q), q) != 0))
				fuzz_fail("query or fragment changed", name, value, vlen, out);
			free(v0);
		}
		if (strcmp(name, "Set-Cookie") == 0) {
			const char *s = value + strspn(value, " \t");
			size_t pair = strcspn(s, ";");
			if (strncmp(out, s, pair) != 0)
				fuzz_fail("the cookie's name=value changed", name, value, vlen, out);
		}
		/* Twice is once, without a base path: the result is the client's already. */
		if (!setup->base && !setup->rule) {
			n2 = mount_rewrite(&v, name, strlen(name), out, (size_t)n, again, sizeof(again));
			if (n2 != MOUNT_UNCHANGED)
				fuzz_fail("translating the translation changed it again", name, out,
				    (size_t)n, n2 >= 0 ? again : "(too long)");
		}
	}

	/* The line form, as rewrite.c calls it for every response field. */
	{
		nlen = strlen(name);
		memcpy(line, name, nlen);
		memcpy(line + nlen, ":", 1);
		memcpy(line + nlen + 1, value, vlen);
		line[nlen + 1 + vlen] = '\0';
		len = 0;
		if (mount_cat_line(&v, cat, sizeof(cat), &len, line) < 0)
			fuzz_fail("the line form refused a field that fits", name, value, vlen, NULL);
		if (len != strlen(cat))
			fuzz_fail("the line form's length is wrong", name, value, vlen, cat);
		if (strcmp(cat, line) != 0 && (strncmp(cat, name, nlen) != 0 ||
		    strncmp(cat + nlen, ": ", 2) != 0))
			fuzz_fail("the line form changed the name", name, value, vlen, cat);
		/* Near the buffer's end: what does not fit is refused, and len left alone. */
		len = sizeof(cat) - room;
		r = mount_cat_line(&v, cat, sizeof(cat), &len, line);
		if ((r == 0 && len >= sizeof(cat)) || (r < 0 && len != sizeof(cat) - room))
			fuzz_fail("the line form wrote past its buffer", name, value, vlen, NULL);
	}
	free(out);
	free(req);
	return 0;
}
