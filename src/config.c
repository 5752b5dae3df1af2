/*
 * config.c - reading gfproxy.conf with libinih.
 *
 * Every connection starts a fresh gfproxy, so the file is read once per
 * connection: an edit applies to the next connection with no reload. That
 * makes two things matter here: the file is small and quick to read, and a
 * broken file must be loud (every error with its line, for --check-config
 * and for the journal) rather than half-applied.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include <ini.h>

#include "config.h"
#include "http.h"

struct config_parser {
	struct config   *cfg;
	FILE            *f;
	unsigned         line;          /* of the line libinih is looking at */
	struct route    *route;         /* the [route NAME] being read */
	bool             in_global;
	bool             in_tls;
	unsigned         proxy_protocol_line;
};

void
config_error(struct config *cfg, unsigned line, const char *fmt, ...)
{
	char msg[CONFIG_MAX_LINE + 64];
	va_list ap;

	if (cfg->nerrors == CONFIG_MAX_ERRORS)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	snprintf(cfg->errors[cfg->nerrors++], sizeof(cfg->errors[0]), "%s:%u: %s",
	    cfg->path != NULL ? cfg->path : "(built-in)", line, msg);
}

/* "30", "0.5", "500ms" -> milliseconds; -1 if malformed or out of range. */
long
config_parse_ms(const char *s)
{
	size_t n = strspn(s, "0123456789.");
	char *end;
	double v;

	/* Decimal only: strtod would also take hex, exponents, inf and nan. */
	if (n == 0 || (s[n] != '\0' && strcmp(s + n, "ms") != 0 && strcmp(s + n, "s") != 0))
		return -1;
	errno = 0;
	v = strtod(s, &end);
	if (errno != 0 || end == s || !(v >= 0))
		return -1;
	if (strcmp(end, "ms") == 0)
		;
	else if (*end == '\0' || strcmp(end, "s") == 0)
		v *= 1000;
	else
		return -1;
	if (!(v >= 1 && v <= CONFIG_MAX_TIMEOUT_MS))
		return -1;
	return (long)v;
}

/* "1048576", "512K", "1G" -> bytes; 0 if malformed. */
uint64_t
config_parse_size(const char *s)
{
	char *end;
	unsigned long long v;
	unsigned shift = 0;

	if (*s < '0' || *s > '9')
		return 0;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0)
		return 0;
	switch (*end) {
	case '\0': break;
	case 'k': case 'K': shift = 10; end++; break;
	case 'm': case 'M': shift = 20; end++; break;
	case 'g': case 'G': shift = 30; end++; break;
	default: return 0;
	}
	if (*end != '\0' || v > (UINT64_MAX >> shift))
		return 0;
	return (uint64_t)v << shift;
}

static int
config_parse_bool(const char *s)
{
	if (strcasecmp(s, "yes") == 0 || strcasecmp(s, "true") == 0 || strcmp(s, "1") == 0 ||
	    strcasecmp(s, "on") == 0)
		return 1;
	if (strcasecmp(s, "no") == 0 || strcasecmp(s, "false") == 0 || strcmp(s, "0") == 0 ||
	    strcasecmp(s, "off") == 0)
		return 0;
	return -1;
}

/*
 * http://host[:port][/base], https://…, or unix:/path/to.sock. The base
 * path is kept byte for byte, escapes included.
 */
/*
 * The TCP port of host[:port] between auth and end: the sandbox lets the
 * process connect to these ports only. An empty port is the scheme's.
 */
static int
config_parse_port(struct upstream_def *u, const char *auth, const char *end)
{
	const char *colon = NULL, *p;
	unsigned long port = 0;

	u->port = u->kind == UPSTREAM_HTTPS ? 443 : 80;
	p = auth;
	if (*p == '[' && (p = memchr(auth, ']', (size_t)(end - auth))) == NULL)
		return -1;
	for (; p < end; p++)
		if (*p == ':')
			colon = p;
	if (colon == NULL || colon + 1 == end)
		return 0;
	for (p = colon + 1; p < end; p++) {
		if (*p < '0' || *p > '9' || (port = port * 10 + (unsigned long)(*p - '0')) > 65535)
			return -1;
	}
	if (port == 0)
		return -1;
	u->port = (uint16_t)port;
	return 0;
}

int
config_parse_upstream(struct upstream_def *u, const char *url, const char **ret_why)
{
	const char *auth, *path;
	size_t schemelen;

	memset(u, 0, sizeof(*u));
	if (strpbrk(url, " \t\r\n") != NULL) {
		*ret_why = "upstream URL contains whitespace";
		return -1;
	}
	if (strncmp(url, "unix:", 5) == 0) {
		if (url[5] != '/') {
			*ret_why = "unix: upstream needs an absolute socket path";
			return -1;
		}
		u->kind = UPSTREAM_UNIX;
		u->url = strdup(url);
		u->unix_path = strdup(url + 5);
		/* libcurl needs a URL; the Host it implies is localhost. */
		u->origin = strdup("http://localhost");
		u->base = strdup("");
		goto check;
	}
	if (strncasecmp(url, "http://", 7) == 0) {
		u->kind = UPSTREAM_HTTP;
		schemelen = 7;
	} else if (strncasecmp(url, "https://", 8) == 0) {
		u->kind = UPSTREAM_HTTPS;
		schemelen = 8;
	} else {
		*ret_why = "upstream must be http://, https:// or unix:";
		return -1;
	}
	auth = url + schemelen;
	path = auth + strcspn(auth, "/?#");
	if (path == auth || *path == '?' || *path == '#' || strchr(auth, '@') != NULL) {
		*ret_why = "upstream must be scheme://host[:port][/base-path]";
		return -1;
	}
	if (config_parse_port(u, auth, path) < 0) {
		*ret_why = "upstream port must be a number from 1 to 65535";
		return -1;
	}
	u->url = strdup(url);
	u->origin = strndup(url, (size_t)(path - url));
	u->base = strdup(path);
check:
	if (u->url == NULL || u->origin == NULL || u->base == NULL ||
	    (u->kind == UPSTREAM_UNIX && u->unix_path == NULL)) {
		*ret_why = "out of memory";
		return -1;
	}
	return 0;
}

void
config_free_upstream(struct upstream_def *u)
{
	free(u->url);
	free(u->origin);
	free(u->base);
	free(u->unix_path);
}

static void
config_free_route(struct route *r)
{
	size_t i;

	if (r == NULL)
		return;
	for (i = 0; i < r->nupstreams; i++)
		config_free_upstream(&r->upstreams[i]);
	for (i = 0; i < r->nrequest_rules; i++) {
		free(r->request_rules[i].name);
		free(r->request_rules[i].value);
	}
	for (i = 0; i < r->nresponse_rules; i++) {
		free(r->response_rules[i].name);
		free(r->response_rules[i].value);
	}
	for (i = 0; i < r->nredirect_rules; i++) {
		free(r->redirect_rules[i].from);
		free(r->redirect_rules[i].to);
	}
	free(r->name);
	free(r->prefix);
	free(r->host);
	free(r->ca_file);
	free(r);
}

void
config_free(struct config *cfg)
{
	size_t i;

	for (i = 0; i < cfg->nroutes; i++)
		config_free_route(cfg->routes[i]);
	cfg->nroutes = 0;
	for (i = 0; i < cfg->ntls_pairs; i++) {
		free(cfg->tls_pairs[i].chain);
		free(cfg->tls_pairs[i].key);
	}
	cfg->ntls_pairs = 0;
	free(cfg->tls_ticket_key);
	cfg->tls_ticket_key = NULL;
}

static struct route *
config_new_route(struct config *cfg, const char *name, unsigned line)
{
	struct route *r;

	if (cfg->nroutes == CONFIG_MAX_ROUTES) {
		config_error(cfg, line, "more than %d routes", CONFIG_MAX_ROUTES);
		return NULL;
	}
	if ((r = calloc(1, sizeof(*r))) == NULL || (r->name = strdup(name)) == NULL) {
		free(r);
		config_error(cfg, line, "out of memory");
		return NULL;
	}
	r->strip_prefix = true;
	r->preserve_host = true;
	r->connect_timeout_ms = r->timeout_ms = -1;     /* inherit */
	r->line = line;
	cfg->routes[cfg->nroutes++] = r;
	return r;
}

int
config_check_prefix(const char *prefix, const char **ret_why)
{
	if (prefix[0] != '/' || strpbrk(prefix, "?#% \t") != NULL) {
		*ret_why = "prefix must be a path starting with '/', without '?', '#', '%' or blanks";
		return -1;
	}
	return 0;
}

static int
config_set_prefix(struct route *r, const char *prefix, const char **ret_why)
{
	size_t len = strlen(prefix);

	if (config_check_prefix(prefix, ret_why) < 0)
		return -1;
	while (len > 0 && prefix[len - 1] == '/')
		len--;
	free(r->prefix);
	if ((r->prefix = strndup(prefix, len)) == NULL) {
		*ret_why = "out of memory";
		return -1;
	}
	r->prefix_len = len;
	return 0;
}

/* "Name: value" for add and set, "Name" for remove. */
static int
config_add_rule(struct route *r, bool request, enum header_op op, const char *spec,
    const char **ret_why)
{
	struct header_rule *rules = request ? r->request_rules : r->response_rules;
	size_t *n = request ? &r->nrequest_rules : &r->nresponse_rules;
	const char *colon = strchr(spec, ':'), *v, *p;
	size_t namelen = colon != NULL ? (size_t)(colon - spec) : strlen(spec);

	if (*n == CONFIG_MAX_RULES) {
		*ret_why = "too many header rules";
		return -1;
	}
	if (namelen == 0) {
		*ret_why = "header rule needs a field name";
		return -1;
	}
	for (p = spec; p < spec + namelen; p++)
		if (*p <= ' ' || *p >= 0x7f || strchr("\"(),/:;<=>?@[\\]{}", *p) != NULL) {
			*ret_why = "invalid character in a header rule's field name";
			return -1;
		}
	/* Framing and hop-by-hop fields are gfproxy's to write, never a rule's. */
	if (http_is_hop_by_hop(spec, namelen) || http_name_eq(spec, namelen, "Content-Length")) {
		*ret_why = "header rules cannot name Content-Length or hop-by-hop fields";
		return -1;
	}
	if (op == HEADER_REMOVE && colon != NULL) {
		*ret_why = "a remove rule takes only a field name";
		return -1;
	}
	if (op != HEADER_REMOVE && colon == NULL) {
		*ret_why = "header rule must be \"Name: value\"";
		return -1;
	}
	rules[*n].op = op;
	rules[*n].name = strndup(spec, namelen);
	rules[*n].value = NULL;
	if (op != HEADER_REMOVE) {
		for (v = colon + 1; *v == ' ' || *v == '\t'; v++)
			;
		for (p = v; *p != '\0'; p++)
			if ((unsigned char)*p < 0x20 && *p != '\t') {
				*ret_why = "control character in a header rule's value";
				free(rules[*n].name);
				return -1;
			}
		rules[*n].value = strdup(v);
	}
	if (rules[*n].name == NULL || (op != HEADER_REMOVE && rules[*n].value == NULL)) {
		*ret_why = "out of memory";
		free(rules[*n].name);
		free(rules[*n].value);
		return -1;
	}
	(*n)++;
	return 0;
}

/* redirect-rewrite = yes, no, or FROM TO (a rule). */
static void
config_redirect_rewrite(struct route *r, const char *value, const char **ret_why)
{
	struct redirect_rule *rule = &r->redirect_rules[r->nredirect_rules];
	size_t n = strcspn(value, " \t");
	const char *to = value + n + strspn(value + n, " \t"), *p;
	int b;

	/* TO goes into the client's response head. */
	for (p = value; *p != '\0'; p++)
		if (((unsigned char)*p < 0x20 && *p != '\t') || *p == 0x7f) {
			*ret_why = "control character in redirect-rewrite";
			return;
		}

	if (*to == '\0') {
		if ((b = config_parse_bool(value)) < 0)
			*ret_why = "expected yes, no, or FROM TO";
		else
			r->redirect_rewrite = b ? REWRITE_YES : REWRITE_NO;
		return;
	}
	if (r->nredirect_rules == CONFIG_MAX_RULES) {
		*ret_why = "too many redirect-rewrite rules";
		return;
	}
	if (to[strcspn(to, " \t")] != '\0') {
		*ret_why = "a redirect-rewrite rule is FROM TO, two words";
		return;
	}
	rule->from = strndup(value, n);
	rule->to = strdup(to);
	if (rule->from == NULL || rule->to == NULL) {
		free(rule->from);
		free(rule->to);
		*ret_why = "out of memory";
		return;
	}
	r->nredirect_rules++;
}

/* "10.0.0.0/8 127.0.0.1, ::1" */
static int
config_parse_trusted(struct config *cfg, const char *list, const char **ret_why)
{
	char item[INET6_ADDRSTRLEN + 8], *slash, *end;
	const char *p = list;
	struct cidr *c;
	size_t len;
	long bits;

	while (*p != '\0') {
		p += strspn(p, " \t,");
		if ((len = strcspn(p, " \t,")) == 0)
			break;
		if (len >= sizeof(item) || cfg->ntrusted == CONFIG_MAX_TRUSTED) {
			*ret_why = len >= sizeof(item) ? "malformed address in trusted-proxies" :
			    "too many trusted-proxies entries";
			return -1;
		}
		memcpy(item, p, len);
		item[len] = '\0';
		p += len;
		c = &cfg->trusted[cfg->ntrusted];
		if ((slash = strchr(item, '/')) != NULL)
			*slash++ = '\0';
		if (inet_pton(AF_INET, item, c->addr) == 1)
			c->family = AF_INET, c->bits = 32;
		else if (inet_pton(AF_INET6, item, c->addr) == 1)
			c->family = AF_INET6, c->bits = 128;
		else {
			*ret_why = "malformed address in trusted-proxies";
			return -1;
		}
		if (slash != NULL) {
			bits = strtol(slash, &end, 10);
			if (*slash == '\0' || *end != '\0' || bits < 0 || bits > (long)c->bits) {
				*ret_why = "malformed prefix length in trusted-proxies";
				return -1;
			}
			c->bits = (unsigned)bits;
		}
		cfg->ntrusted++;
	}
	return 0;
}

bool
config_trusted(const struct config *cfg, const char *addr)
{
	unsigned char a[16];
	int family;
	size_t i;
	unsigned full, rest;

	if (inet_pton(AF_INET, addr, a) == 1)
		family = AF_INET;
	else if (inet_pton(AF_INET6, addr, a) == 1)
		family = AF_INET6;
	else
		return false;
	for (i = 0; i < cfg->ntrusted; i++) {
		const struct cidr *c = &cfg->trusted[i];
		if (c->family != family)
			continue;
		full = c->bits / 8;
		rest = c->bits % 8;
		if (memcmp(a, c->addr, full) != 0)
			continue;
		if (rest == 0 || ((a[full] ^ c->addr[full]) & (0xff << (8 - rest))) == 0)
			return true;
	}
	return false;
}

/* Settings valid in [global] and in a route. */
static int
config_common_key(struct config_parser *p, const char *name, const char *value,
    long *connect_ms, long *timeout_ms, uint64_t *max_body, size_t *max_head,
    size_t *max_fields, const char **ret_why)
{
	uint64_t v;
	char *end;

	if (strcmp(name, "connect-timeout") == 0) {
		if ((*connect_ms = config_parse_ms(value)) < 0)
			*ret_why = "connect-timeout must be seconds (e.g. 5, 0.5 or 500ms)";
	} else if (strcmp(name, "timeout") == 0) {
		if ((*timeout_ms = config_parse_ms(value)) < 0)
			*ret_why = "timeout must be seconds (e.g. 30, 0.5 or 500ms)";
	} else if (strcmp(name, "max-body") == 0) {
		if ((*max_body = config_parse_size(value)) == 0)
			*ret_why = "max-body must be a size in bytes, with K, M or G";
	} else if (strcmp(name, "max-response-head") == 0) {
		v = config_parse_size(value);
		if (v < CONFIG_RESPONSE_HEAD_MIN || v > CONFIG_RESPONSE_HEAD_MAX)
			*ret_why = "max-response-head must be a size from 1K to 256K";
		else
			*max_head = (size_t)v;
	} else if (strcmp(name, "max-response-fields") == 0) {
		errno = 0;
		v = value[0] >= '0' && value[0] <= '9' ? strtoull(value, &end, 10) : 0;
		if (v == 0 || errno != 0 || *end != '\0' || v > CONFIG_RESPONSE_FIELDS_MAX)
			*ret_why = "max-response-fields must be a number from 1 to 10000";
		else
			*max_fields = (size_t)v;
	} else
		return 0;
	return 1;
}

static void
config_route_key(struct config_parser *p, const char *name, const char *value,
    const char **why)
{
	struct route *r = p->route;
	int b;

	if (config_common_key(p, name, value, &r->connect_timeout_ms, &r->timeout_ms,
	    &r->max_body, &r->max_response_head, &r->max_response_fields, why))
		return;
	if (strcmp(name, "prefix") == 0)
		config_set_prefix(r, value, why);
	else if (strcmp(name, "host") == 0) {
		free(r->host);
		if (*value == '\0' || strpbrk(value, " \t/") != NULL)
			*why = "host must be a host name";
		else if ((r->host = strdup(value)) == NULL)
			*why = "out of memory";
	} else if (strcmp(name, "upstream") == 0) {
		if (r->nupstreams == CONFIG_MAX_UPSTREAMS)
			*why = "too many upstreams in one route";
		else if (config_parse_upstream(&r->upstreams[r->nupstreams], value, why) == 0)
			r->nupstreams++;
		else
			config_free_upstream(&r->upstreams[r->nupstreams]);
	} else if (strcmp(name, "strip-prefix") == 0 || strcmp(name, "preserve-host") == 0) {
		if ((b = config_parse_bool(value)) < 0)
			*why = "expected yes or no";
		else if (name[0] == 's')
			r->strip_prefix = b;
		else
			r->preserve_host = b;
	} else if (strcmp(name, "redirect-rewrite") == 0)
		config_redirect_rewrite(r, value, why);
	else if (strcmp(name, "cookie-rewrite") == 0) {
		if ((b = config_parse_bool(value)) < 0)
			*why = "expected yes or no";
		else
			r->cookie_rewrite = b ? REWRITE_YES : REWRITE_NO;
	} else if (strcmp(name, "ca-file") == 0) {
		free(r->ca_file);
		if (value[0] != '/')
			*why = "ca-file must be an absolute path";
		else if ((r->ca_file = strdup(value)) == NULL)
			*why = "out of memory";
	} else if (strcmp(name, "request-header-add") == 0)
		config_add_rule(r, true, HEADER_ADD, value, why);
	else if (strcmp(name, "request-header-set") == 0)
		config_add_rule(r, true, HEADER_SET, value, why);
	else if (strcmp(name, "request-header-remove") == 0)
		config_add_rule(r, true, HEADER_REMOVE, value, why);
	else if (strcmp(name, "response-header-add") == 0)
		config_add_rule(r, false, HEADER_ADD, value, why);
	else if (strcmp(name, "response-header-set") == 0)
		config_add_rule(r, false, HEADER_SET, value, why);
	else if (strcmp(name, "response-header-remove") == 0)
		config_add_rule(r, false, HEADER_REMOVE, value, why);
	else
		*why = "unknown key in a route";
}

static void
config_global_key(struct config_parser *p, const char *name, const char *value,
    const char **why)
{
	struct config *cfg = p->cfg;
	int b;

	if (config_common_key(p, name, value, &cfg->connect_timeout_ms, &cfg->timeout_ms,
	    &cfg->max_body, &cfg->max_response_head, &cfg->max_response_fields, why))
		return;
	if (strcmp(name, "trusted-proxies") == 0)
		config_parse_trusted(cfg, value, why);
	else if (strcmp(name, "send-timeout") == 0) {
		cfg->send_timeout_ms = config_parse_ms(value);
		if (cfg->send_timeout_ms <= 0 || cfg->send_timeout_ms > CONN_SEND_TIMEOUT_MAX_MS)
			*why = "send-timeout must be seconds, more than 0 and at most 3600";
	}
	else if (strcmp(name, "forwarded") == 0 || strcmp(name, "via") == 0 ||
	    strcmp(name, "proxy-protocol") == 0) {
		if ((b = config_parse_bool(value)) < 0)
			*why = "expected yes or no";
		else if (name[0] == 'f')
			cfg->forwarded = b;
		else if (name[0] == 'v')
			cfg->via = b;
		else {
			cfg->proxy_protocol = b;
			p->proxy_protocol_line = p->line;
		}
	} else
		*why = "unknown key in [global]";
}

/*
 * [tls]: "certificate = CHAIN KEY", once per certificate (gfproxy --tls
 * picks one by SNI), and "ticket-key = FILE". Only the paths are kept: the
 * files are read by each connection, so a renewal needs no reload.
 */
static void
config_tls_key(struct config_parser *p, const char *name, const char *value,
    const char **why)
{
	struct config *cfg = p->cfg;
	struct tls_pair *tp;
	const char *sp;

	if (strcmp(name, "certificate") == 0) {
		sp = strpbrk(value, " \t");
		if (value[0] != '/' || sp == NULL || sp[strspn(sp, " \t")] != '/' ||
		    strpbrk(sp + strspn(sp, " \t"), " \t") != NULL)
			*why = "expected two absolute paths: the certificate chain, then its key";
		else if (cfg->ntls_pairs == CONFIG_MAX_CERTS)
			*why = "too many certificates (at most 16)";
		else {
			tp = &cfg->tls_pairs[cfg->ntls_pairs];
			tp->chain = strndup(value, (size_t)(sp - value));
			tp->key = strdup(sp + strspn(sp, " \t"));
			tp->line = p->line;
			if (tp->chain == NULL || tp->key == NULL) {
				free(tp->chain);
				free(tp->key);
				*why = "out of memory";
			} else
				cfg->ntls_pairs++;
		}
	} else if (strcmp(name, "ticket-key") == 0) {
		if (value[0] != '/')
			*why = "expected an absolute path";
		else if ((free(cfg->tls_ticket_key), cfg->tls_ticket_key = strdup(value)) == NULL)
			*why = "out of memory";
		else
			cfg->tls_ticket_key_line = p->line;
	} else
		*why = "unknown key in [tls]";
}

/* libinih calls this once per "name = value"; sections were seen by the reader. */
static int
config_handler(void *user, const char *section, const char *name, const char *value)
{
	struct config_parser *p = user;
	const char *why = NULL;

	if (p->in_global)
		config_global_key(p, name, value, &why);
	else if (p->in_tls)
		config_tls_key(p, name, value, &why);
	else if (p->route != NULL)
		config_route_key(p, name, value, &why);
	else if (*section == '\0')
		why = "setting outside a section";
	else
		return 1;   /* inside a section already reported */
	if (why != NULL)
		config_error(p->cfg, p->line, "%s = %s: %s", name, value, why);
	return 1;
}

static void
config_section(struct config_parser *p, const char *s)
{
	const char *end = strchr(s, ']');
	char name[CONFIG_MAX_LINE + 1];
	size_t len;

	p->route = NULL;
	p->in_global = false;
	p->in_tls = false;
	if (end == NULL) {
		config_error(p->cfg, p->line, "malformed section header: missing ']'");
		return;
	}
	len = (size_t)(end - s - 1);
	memcpy(name, s + 1, len);
	name[len] = '\0';
	if (strcmp(name, "global") == 0)
		p->in_global = true;
	else if (strcmp(name, "tls") == 0)
		p->in_tls = true;
	else if (strncmp(name, "route ", 6) == 0 && name[6] != '\0' && name[6] != ' ')
		p->route = config_new_route(p->cfg, name + 6, p->line);
	else
		config_error(p->cfg, p->line, "unknown section [%s]: use [global], [tls] or [route NAME]",
		    name);
}

/*
 * libinih's reader: hand it one line at a time, counting lines, noting
 * sections (libinih reports none without a key in them) and malformed lines
 * (libinih reports only the first), and refusing a line too long for its
 * buffer rather than letting it be cut silently.
 */
static char *
config_reader(char *str, int num, void *stream)
{
	struct config_parser *p = stream;
	const char *s;
	size_t len;
	int ch;

	if (fgets(str, num, p->f) == NULL)
		return NULL;
	p->line++;
	len = strlen(str);
	if (len > 0 && str[len - 1] != '\n' && !feof(p->f)) {
		while ((ch = fgetc(p->f)) != EOF && ch != '\n')
			;
		config_error(p->cfg, p->line, "line longer than %d bytes", CONFIG_MAX_LINE);
		str[0] = '\0';
		return str;
	}
	s = str + strspn(str, " \t\r\n");
	if (*s == '\0' || *s == ';' || *s == '#')
		return str;
	if (*s == '[')
		config_section(p, s);
	else if (s == str && strpbrk(s, "=:") == NULL) {
		/* (A line starting with blanks continues the previous value.) */
		config_error(p->cfg, p->line, "malformed line: expected [section] or name = value");
		str[0] = '\0';
	}
	return str;
}

/*
 * Does the client see other paths than the upstream does: a prefix taken
 * off, or a base path put on? Then redirects and cookies are translated
 * unless the route says otherwise.
 */
static bool
config_mounted(const struct route *r)
{
	size_t i;

	if (r->strip_prefix && r->prefix_len > 0)
		return true;
	for (i = 0; i < r->nupstreams; i++)
		if (strspn(r->upstreams[i].base, "/") != strlen(r->upstreams[i].base))
			return true;
	return false;
}

/* What a route takes from [global] and the built-in defaults. */
static void
config_finish(struct config *cfg)
{
	struct route *r, *o;
	size_t i, j;

	for (i = 0; i < cfg->nroutes; i++) {
		r = cfg->routes[i];
		if (r->prefix == NULL)
			config_error(cfg, r->line, "route %s has no prefix", r->name);
		if (r->nupstreams == 0)
			config_error(cfg, r->line, "route %s has no upstream", r->name);
		if (r->connect_timeout_ms < 0)
			r->connect_timeout_ms = cfg->connect_timeout_ms;
		if (r->timeout_ms < 0)
			r->timeout_ms = cfg->timeout_ms;
		if (r->max_body == 0)
			r->max_body = cfg->max_body;
		if (r->max_response_head == 0)
			r->max_response_head = cfg->max_response_head;
		if (r->max_response_fields == 0)
			r->max_response_fields = cfg->max_response_fields;
		if (r->redirect_rewrite == REWRITE_DEFAULT)
			r->redirect_rewrite = config_mounted(r) ? REWRITE_YES : REWRITE_NO;
		if (r->cookie_rewrite == REWRITE_DEFAULT)
			r->cookie_rewrite = config_mounted(r) ? REWRITE_YES : REWRITE_NO;
		for (j = 0; j < i && r->prefix != NULL; j++) {
			o = cfg->routes[j];
			if (o->prefix != NULL && strcmp(o->prefix, r->prefix) == 0 &&
			    (o->host == NULL) == (r->host == NULL) &&
			    (o->host == NULL || strcasecmp(o->host, r->host) == 0))
				config_error(cfg, r->line, "route %s has the same prefix and host as route %s",
				    r->name, o->name);
		}
	}
}

static void
config_defaults(struct config *cfg, const char *path)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->path = path;
	cfg->connect_timeout_ms = 5000;
	cfg->timeout_ms = 30000;
	cfg->send_timeout_ms = CONN_SEND_TIMEOUT_MS;
	cfg->max_body = HTTP_MAX_BODY_DEFAULT;
	cfg->max_response_head = CONFIG_RESPONSE_HEAD_DEFAULT;
	cfg->max_response_fields = CONFIG_RESPONSE_FIELDS_DEFAULT;
}

/* The largest response head and field count any route allows. */
void
config_response_limits(const struct config *cfg, size_t *ret_head, size_t *ret_fields)
{
	size_t i, head = cfg->max_response_head, fields = cfg->max_response_fields;

	for (i = 0; i < cfg->nroutes; i++) {
		if (cfg->routes[i]->max_response_head > head)
			head = cfg->routes[i]->max_response_head;
		if (cfg->routes[i]->max_response_fields > fields)
			fields = cfg->routes[i]->max_response_fields;
	}
	*ret_head = head;
	*ret_fields = fields;
}

/* The route the command line asks for: --upstream and --prefix. */
static void
config_cli_route(struct config *cfg, const struct config_overrides *o)
{
	struct route *r;
	const char *why = NULL;
	size_t i;

	for (i = 0; i < cfg->nroutes; i++)
		config_free_route(cfg->routes[i]);
	cfg->nroutes = 0;
	if ((r = config_new_route(cfg, "default", 0)) == NULL)
		return;
	if (config_set_prefix(r, o->prefix != NULL ? o->prefix : CONFIG_DEFAULT_PREFIX, &why) < 0 ||
	    config_parse_upstream(&r->upstreams[0], o->upstream != NULL ? o->upstream :
	    CONFIG_DEFAULT_UPSTREAM, &why) < 0)
		config_error(cfg, 0, "%s", why);
	else
		r->nupstreams = 1;
}

/*
 * Load the configuration. A missing file is fine unless must_exist (the
 * built-in route applies); the command line overrides the file. Returns
 * the number of errors, each in cfg->errors.
 */
int
config_load(struct config *cfg, const char *path, bool must_exist,
    const struct config_overrides *o)
{
	struct config_parser p = { .cfg = cfg };
	size_t i;
	int r;

	config_defaults(cfg, path);
	if ((p.f = fopen(path, "re")) == NULL) {
		if (must_exist || errno != ENOENT)
			config_error(cfg, 0, "cannot open: %s", strerror(errno));
		cfg->path = NULL;
	} else {
		r = ini_parse_stream(config_reader, &p, config_handler, &p);
		fclose(p.f);
		/* The reader has said why about every line libinih could refuse. */
		if (r != 0 && cfg->nerrors == 0)
			config_error(cfg, r > 0 ? (unsigned)r : 0, "cannot parse");
		/* Without a sender to accept it from, every connection would be refused. */
		if (cfg->proxy_protocol && cfg->ntrusted == 0)
			config_error(cfg, p.proxy_protocol_line,
			    "proxy-protocol = yes: needs trusted-proxies, the balancers that send the header");
	}

	if (o->connect_timeout_ms > 0)
		cfg->connect_timeout_ms = o->connect_timeout_ms;
	if (o->timeout_ms > 0)
		cfg->timeout_ms = o->timeout_ms;
	if (o->max_body > 0)
		cfg->max_body = o->max_body;
	if (o->upstream != NULL || o->prefix != NULL || cfg->nroutes == 0)
		config_cli_route(cfg, o);
	config_finish(cfg);
	/* The command line wins over every route's own settings too. */
	for (i = 0; i < cfg->nroutes; i++) {
		if (o->connect_timeout_ms > 0)
			cfg->routes[i]->connect_timeout_ms = o->connect_timeout_ms;
		if (o->timeout_ms > 0)
			cfg->routes[i]->timeout_ms = o->timeout_ms;
		if (o->max_body > 0)
			cfg->routes[i]->max_body = o->max_body;
	}
	return (int)cfg->nerrors;
}
