/*
 * proxy.c - gfproxy: serve the requests of one client connection by
 * forwarding them upstream, then exit.
 *
 * systemd (or inetd) starts one gfproxy per TCP connection, so everything
 * here lives exactly as long as one client: no accept loop, no state shared
 * between clients, and nothing running while nobody connects.
 */
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "conn.h"
#include "http.h"
#include "journal.h"
#include "proxyproto.h"
#include "route.h"
#include "sandbox.h"
#include "tls.h"
#include "tunnel.h"
#include "upstream.h"
#ifdef GFPROXY_ESCAPE_PROBE
#include "escape.h"
#endif

struct proxy_options {
	const char              *config_path;
	bool                     config_given;
	bool                     check_only;
	bool                     tls;           /* --tls: the client speaks TLS */
	const char              *rotate_path;   /* --rotate-ticket-key FILE */
	struct config_overrides  o;
};

static void
proxy_usage(FILE *f)
{
	fprintf(f,
	    "usage: gfproxy [options]\n"
	    "       gfproxy --check-config [FILE]\n"
	    "       gfproxy --rotate-ticket-key FILE\n"
	    "\n"
	    "Serve one client connection, passed by systemd socket activation (fd 3)\n"
	    "or inetd (stdin), forwarding requests to the upstreams of their route.\n"
	    "\n"
	    "  -f, --config FILE          routes and settings (default %s,\n"
	    "                             if it exists; see gfproxy.conf(5))\n"
	    "  -C, --check-config [FILE]  check the configuration, print each error\n"
	    "                             with its line, and exit\n"
	    "  -u, --upstream URL         one route to URL instead of the file's routes\n"
	    "                             (default %s)\n"
	    "  -p, --prefix PATH          path prefix of that route (default %s)\n"
	    "  -t, --timeout SECONDS      wait for the response head, and longest upstream\n"
	    "                             silence mid-response (default 30)\n"
	    "  -c, --connect-timeout SECONDS  upstream connect timeout (default 5)\n"
	    "  -b, --max-body BYTES       largest request body, K/M/G suffixes (default 1G)\n"
	    "  -T, --tls                  the client speaks TLS: certificates from [tls]\n"
	    "  -R, --rotate-ticket-key FILE  new TLS session ticket key in FILE, the\n"
	    "                             current one kept as the previous, and exit\n"
	    "  -h, --help                 show this help\n"
	    "  -V, --version              show the version, and libcurl's\n"
	    "\n"
	    "SECONDS may have a fraction or an \"ms\" suffix (e.g. 0.5 or 500ms).\n"
	    "Command-line options override the configuration file.\n"
	    "\n"
	    "Exit status: 0 served (or configuration valid), 64 usage error,\n"
	    "66 no connected socket to serve, 71 system error before serving,\n"
	    "78 configuration errors (--check-config).\n",
	    CONFIG_DEFAULT_PATH, CONFIG_DEFAULT_UPSTREAM, CONFIG_DEFAULT_PREFIX);
}

/* A mistyped option is a usage error now, not a 503 per connection later. */
static int
proxy_check_route_options(const struct config_overrides *o)
{
	struct upstream_def u;
	const char *why = NULL;
	int r;

	if (o->prefix != NULL && config_check_prefix(o->prefix, &why) < 0) {
		fprintf(stderr, "gfproxy: --prefix '%s': %s\n", o->prefix, why);
		return EXIT_USAGE;
	}
	if (o->upstream != NULL) {
		r = config_parse_upstream(&u, o->upstream, &why);
		config_free_upstream(&u);
		if (r < 0) {
			fprintf(stderr, "gfproxy: --upstream '%s': %s\n", o->upstream, why);
			return EXIT_USAGE;
		}
	}
	return 0;
}

static int
proxy_options(int argc, char **argv, struct proxy_options *opt)
{
	static const struct option longopts[] = {
		{ "config",          required_argument, NULL, 'f' },
		{ "check-config",    no_argument,       NULL, 'C' },
		{ "upstream",        required_argument, NULL, 'u' },
		{ "prefix",          required_argument, NULL, 'p' },
		{ "timeout",         required_argument, NULL, 't' },
		{ "connect-timeout", required_argument, NULL, 'c' },
		{ "max-body",        required_argument, NULL, 'b' },
		{ "tls",             no_argument,       NULL, 'T' },
		{ "rotate-ticket-key", required_argument, NULL, 'R' },
		{ "help",            no_argument,       NULL, 'h' },
		{ "version",         no_argument,       NULL, 'V' },
		{ NULL, 0, NULL, 0 }
	};
	int ch;

	while ((ch = getopt_long(argc, argv, "f:Cu:p:t:c:b:TR:hV", longopts, NULL)) != -1) {
		switch (ch) {
		case 'f':
			opt->config_path = optarg;
			opt->config_given = true;
			break;
		case 'C':
			opt->check_only = true;
			break;
		case 'u':
			opt->o.upstream = optarg;
			break;
		case 'p':
			opt->o.prefix = optarg;
			break;
		case 't':
			if ((opt->o.timeout_ms = config_parse_ms(optarg)) < 0) {
				fprintf(stderr, "gfproxy: invalid --timeout '%s'\n", optarg);
				return EXIT_USAGE;
			}
			break;
		case 'c':
			if ((opt->o.connect_timeout_ms = config_parse_ms(optarg)) < 0) {
				fprintf(stderr, "gfproxy: invalid --connect-timeout '%s'\n", optarg);
				return EXIT_USAGE;
			}
			break;
		case 'b':
			if ((opt->o.max_body = config_parse_size(optarg)) == 0) {
				fprintf(stderr, "gfproxy: invalid --max-body '%s'\n", optarg);
				return EXIT_USAGE;
			}
			break;
		case 'T':
		case 'R':
			if (!tls_available()) {
				fprintf(stderr, "gfproxy: --%s: this gfproxy is built without TLS "
				    "(make CURL=static-notls)\n", ch == 'T' ? "tls" : "rotate-ticket-key");
				return EXIT_USAGE;
			}
			if (ch == 'T')
				opt->tls = true;
			else
				opt->rotate_path = optarg;
			break;
		case 'h':
			proxy_usage(stdout);
			exit(EXIT_SUCCESS);
		case 'V':
			/* And the libcurl it runs with: which TLS, if any. */
			printf("gfproxy %s\n%s\n", GFPROXY_VERSION, upstream_version());
			exit(EXIT_SUCCESS);
		default:
			proxy_usage(stderr);
			return EXIT_USAGE;
		}
	}
	/* --check-config takes the file as its operand, like nginx -t -c. */
	if (opt->check_only && optind + 1 == argc) {
		opt->config_path = argv[optind++];
		opt->config_given = true;
	}
	if (optind != argc) {
		fprintf(stderr, "gfproxy: unexpected argument '%s'\n", argv[optind]);
		return EXIT_USAGE;
	}
	return proxy_check_route_options(&opt->o);
}

/* gfproxy --check-config: every error with its line, like nginx -t. */
static int
proxy_check_config(const struct proxy_options *opt, struct config *cfg)
{
	size_t i;

	config_load(cfg, opt->config_path, opt->config_given, &opt->o);
	upstream_check_config(cfg);
	if (tls_available())
		tls_check_config(cfg);
	else if (cfg->ntls_pairs > 0 || cfg->tls_ticket_key != NULL)
		config_error(cfg, cfg->ntls_pairs > 0 ? cfg->tls_pairs[0].line :
		    cfg->tls_ticket_key_line, "[tls]: this gfproxy is built without TLS "
		    "(make CURL=static-notls)");
	for (i = 0; i < cfg->nerrors; i++)
		fprintf(stderr, "%s\n", cfg->errors[i]);
	if (cfg->nerrors > 0) {
		fprintf(stderr, "gfproxy: %zu error%s in %s\n", cfg->nerrors,
		    cfg->nerrors == 1 ? "" : "s", opt->config_path);
		return EXIT_CONFIG;
	}
	printf("%s: %zu route%s, configuration OK\n", cfg->path != NULL ? cfg->path :
	    "built-in defaults", cfg->nroutes, cfg->nroutes == 1 ? "" : "s");
	return EXIT_SUCCESS;
}

/*
 * What a confined proxy may still read: the CA stores (Debian's and Fedora's
 * layouts), the resolver's files and the NSS modules it loads for a host
 * name, OpenSSL's configuration and providers; and each route's CA file.
 */
static const char *const proxy_readable[] = {
	"/etc/ssl", "/usr/lib/ssl", "/usr/share/ca-certificates",
	"/usr/local/share/ca-certificates", "/etc/pki", "/etc/crypto-policies",
	"/etc/hosts", "/etc/resolv.conf", "/etc/nsswitch.conf", "/etc/host.conf",
	"/etc/gai.conf", "/run/systemd/resolve", "/etc/ld.so.cache",
	"/usr/lib", "/lib", "/usr/lib64", "/lib64",
};
#define PROXY_DNS_PORT 53   /* the resolver falls back to TCP for long answers */

_Static_assert(SANDBOX_MAX_PATHS >= CONFIG_MAX_ROUTES +
    sizeof(proxy_readable) / sizeof(proxy_readable[0]), "SANDBOX_MAX_PATHS too small");
_Static_assert(SANDBOX_MAX_PORTS > 1, "SANDBOX_MAX_PORTS too small");

/* Confined before the first byte from the client is read, with what this configuration needs. */
static const char *
proxy_sandbox(const struct config *cfg)
{
	static struct sandbox_policy p = { .inet = true };
	const struct route *r;
	size_t i, j;

	for (i = 0; i < sizeof(proxy_readable) / sizeof(proxy_readable[0]); i++)
		sandbox_allow_read(&p, proxy_readable[i]);
	sandbox_allow_connect(&p, PROXY_DNS_PORT);
	for (i = 0; i < cfg->nroutes; i++) {
		r = cfg->routes[i];
		sandbox_allow_read(&p, r->ca_file);
		for (j = 0; j < r->nupstreams; j++) {
			if (r->upstreams[j].kind == UPSTREAM_UNIX)
				continue;
			sandbox_allow_connect(&p, r->upstreams[j].port);
		}
	}
	return sandbox_enter(&p);
}

/* The decimal digits of v, at the end of buf. */
static const char *
proxy_number(char buf[static 24], uint64_t v)
{
	char *p = buf + 23;

	*p = '\0';
	do
		*--p = (char)('0' + v % 10);
	while ((v /= 10) != 0);
	return p;
}

/*
 * One journal entry per request, written after the response is flushed so
 * the client never waits for it.
 */
static const char *proxy_confinement;   /* the SANDBOX field of every entry */

/*
 * An entry's fields at most: REMOTE_ADDR and _PORT, PROXY_PEER_ADDR and
 * _PORT, HTTP_METHOD, HTTP_TARGET, UPSTREAM_URL, HTTP_STATUS, BYTES_SENT,
 * BYTES_RECEIVED, DURATION_USEC, ERROR, SANDBOX, TLS_VERSION, TLS_CIPHER.
 */
#define PROXY_LOG_FIELDS 15
_Static_assert(PROXY_LOG_FIELDS <= JOURNAL_MAX_FIELDS, "journal_write() drops fields");

/* Add a field to an entry, never past PROXY_LOG_FIELDS. */
static void
proxy_field(struct journal_field *fields, size_t *n, const char *name, const char *value)
{
	if (*n < PROXY_LOG_FIELDS)
		fields[(*n)++] = (struct journal_field){ name, value };
}

static void
proxy_log(const struct conn *c, const struct http_request *req, const char *upstream_url,
    int status, const struct reply_result *res, int64_t start_usec)
{
	char target[512], url[640], why[256], num[6][24], message[JOURNAL_MAX_MESSAGE];
	const char *code, *sent;
	int64_t usec = conn_now_usec() - start_usec;
	int prio;

	/*
	 * The escaped parts, a method, six numbers, and a TLS version and cipher
	 * (OpenSSL's names are under 40 bytes each) fit in one message.
	 */
	_Static_assert(sizeof(target) + sizeof(url) + sizeof(why) + sizeof(num) + 64 + 80 <=
	    JOURNAL_MAX_MESSAGE, "log message too small");
	struct journal_field fields[PROXY_LOG_FIELDS];
	size_t n = 0, len = 0;

	journal_escape(target, sizeof(target), req->target, req->target_len);
	journal_escape(url, sizeof(url), upstream_url, upstream_url != NULL ? strlen(upstream_url) : 0);
	journal_escape(why, sizeof(why), res->why, res->why != NULL ? strlen(res->why) : 0);

	if (res->client_fault)
		prio = LOG_WARNING;
	else if (status >= 500 || res->truncated)
		prio = LOG_ERR;
	else if (status >= 400)
		prio = LOG_WARNING;
	else
		prio = LOG_INFO;

	proxy_field(fields, &n, "REMOTE_ADDR", c->peer_addr);
	proxy_field(fields, &n, "REMOTE_PORT", c->peer_port);
	if (c->proxy_addr[0] != '\0') {
		proxy_field(fields, &n, "PROXY_PEER_ADDR", c->proxy_addr);
		proxy_field(fields, &n, "PROXY_PEER_PORT", c->proxy_port);
	}
	proxy_field(fields, &n, "HTTP_METHOD", req->method);
	proxy_field(fields, &n, "HTTP_TARGET", target);
	if (upstream_url != NULL)
		proxy_field(fields, &n, "UPSTREAM_URL", url);
	code = proxy_number(num[0], (uint64_t)status);
	sent = proxy_number(num[1], res->bytes_sent);
	proxy_field(fields, &n, "HTTP_STATUS", code);
	proxy_field(fields, &n, "BYTES_SENT", sent);
	proxy_field(fields, &n, "BYTES_RECEIVED", proxy_number(num[2], res->bytes_received));
	proxy_field(fields, &n, "DURATION_USEC", proxy_number(num[3], (uint64_t)usec));
	if (res->why != NULL)
		proxy_field(fields, &n, "ERROR", why);
	proxy_field(fields, &n, "SANDBOX", proxy_confinement);
	if (c->tls != NULL) {
		proxy_field(fields, &n, "TLS_VERSION", tls_version(c->tls));
		proxy_field(fields, &n, "TLS_CIPHER", tls_cipher(c->tls));
	}

	/* "GET /a -> http://b/a 200 29B 1.2ms[ TLSv1.3 CIPHER]: why": always fits, see above. */
	(void)http_cat(message, sizeof(message), &len, req->method, " ", target,
	    upstream_url != NULL ? " -> " : "", upstream_url != NULL ? url : "",
	    " ", code, " ", sent, "B ", proxy_number(num[4], (uint64_t)usec / 1000), ".",
	    proxy_number(num[5], (uint64_t)usec % 1000 / 100), "ms",
	    c->tls != NULL ? " " : "", c->tls != NULL ? tls_version(c->tls) : "",
	    c->tls != NULL ? " " : "", c->tls != NULL ? tls_cipher(c->tls) : "",
	    res->why != NULL ? ": " : "", why, NULL);
	journal_write(prio, fields, n, message);
}

/*
 * "OPTIONS *" asks about the server, not a resource: answer it here rather
 * than invent a path for the upstream.
 */
static bool
proxy_asterisk(struct conn *c, const struct http_request *req, int64_t start_usec)
{
	static const char allow[] = "HTTP/1.1 200 OK\r\n"
	    "Allow: GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS\r\n"
	    "Content-Length: 0\r\n\r\n";
	struct reply_result res = { .status = 200 };

	res.keep_alive = req->keep_alive && conn_write(c, allow, sizeof(allow) - 1) == 0;
	proxy_log(c, req, NULL, 200, &res, start_usec);
	return res.keep_alive;
}

/* A request we answer ourselves, without the upstream. */
static void
proxy_refuse(struct conn *c, const struct http_request *req, int status, const char *why,
    int64_t start_usec)
{
	struct reply_result res = { .status = status, .why = why, .client_fault = status != 500 };

	http_error(c, status, why);
	proxy_log(c, req, NULL, status, &res, start_usec);
}

/* Each mistake in the file, at PRIORITY 2 with its line. */
static void
proxy_log_config_errors(const struct config *cfg)
{
	struct journal_field field = { "CONFIG_ERROR", NULL };
	size_t i;

	for (i = 0; i < cfg->nerrors; i++) {
		field.value = cfg->errors[i];
		journal_log(LOG_CRIT, &field, 1, "%s", cfg->errors[i]);
	}
}

/*
 * A broken file must not take the service down silently: the mistake is in
 * the journal at PRIORITY 2 with its line, and the client gets a 503,
 * within one request.
 */
static void
proxy_broken_config(struct conn *c, const struct http_request *req, const struct config *cfg,
    int64_t start_usec)
{
	struct reply_result res = { .status = 503, .why = "configuration error" };

	http_error(c, 503, "configuration error");
	proxy_log_config_errors(cfg);
	proxy_log(c, req, NULL, 503, &res, start_usec);
}

/* A line naming the client, for what happens before its first request. */
static void
proxy_conn_log(const struct conn *c, int prio, const char *why)
{
	struct journal_field fields[] = {
		{ "REMOTE_ADDR", c->peer_addr },
		{ "REMOTE_PORT", c->peer_port },
		{ "ERROR", why },
	};

	journal_log(prio, fields, sizeof(fields) / sizeof(fields[0]), "%s:%s: %s",
	    c->peer_addr, c->peer_port, why);
}

/*
 * --tls: no usable [tls] is the administrator's to fix, at PRIORITY 2;
 * unreadable ticket keys only cost resumption.
 */
static int
proxy_tls_files(const struct conn *c, const struct config *cfg, struct tls **ret)
{
	const char *why = NULL;

	if (tls_new(ret, cfg, &why) < 0) {
		proxy_conn_log(c, LOG_CRIT, why);
		return -1;
	}
	if (why != NULL)
		proxy_conn_log(c, LOG_ERR, why);
	return 0;
}

/*
 * A handshake that fails is one line, then the connection is closed: at
 * PRIORITY 2 when our certificate or key is at fault, 3 when the system is
 * (memory, poll), 4 when the client is.
 */
static int
proxy_handshake(struct conn *c, struct tls *t)
{
	enum tls_fault fault;
	const char *why;

	if (conn_start_tls(c, t) == 0)
		return 0;
	fault = tls_fault_why(t, &why);
	proxy_conn_log(c, fault == TLS_FAULT_CERT ? LOG_CRIT :
	    fault == TLS_FAULT_SYSTEM ? LOG_ERR : LOG_WARNING, why);
	return -1;
}

/*
 * The PROXY header a balancer sends before its client's bytes, accepted
 * from trusted-proxies only. Anything else closes the connection with one
 * entry and no answer, as haproxy and nginx do: the sender is a balancer,
 * or someone posing as one, not a client to explain HTTP errors to. A
 * broken file is named too, as it may be why a balancer is not trusted.
 */
static bool
proxy_balancer_header(struct conn *c, const struct config *cfg)
{
	struct journal_field fields[4];
	const char *why = NULL;     /* always one of ours: nothing of the sender's */
	int r;

	if (!config_trusted(cfg, c->peer_addr))
		why = "not in trusted-proxies, the only senders proxy-protocol = yes accepts";
	else if ((r = proxyproto_read(c, &why)) >= 0)
		return r > 0;
	fields[0] = (struct journal_field){ "REMOTE_ADDR", c->peer_addr };
	fields[1] = (struct journal_field){ "REMOTE_PORT", c->peer_port };
	fields[2] = (struct journal_field){ "ERROR", why };
	fields[3] = (struct journal_field){ "SANDBOX", proxy_confinement };
	journal_log(LOG_WARNING, fields, 4, "PROXY protocol: closed the connection from %s port %s: %s",
	    c->peer_addr, c->peer_port, why);
	proxy_log_config_errors(cfg);
	return false;
}

int
main(int argc, char **argv)
{
	static struct proxy_options opt = { .config_path = CONFIG_DEFAULT_PATH };
	static struct config cfg;
	static struct conn conn;
	static struct http_server h;
	static struct http_request req;
	struct upstream up = { 0 };
	struct tls *tls = NULL;
	struct reply_result res;
	const struct route *route;
	const char *why = NULL;
	uint64_t max_body = 0;
	int64_t start;
	size_t i;
	int r;

	if ((r = proxy_options(argc, argv, &opt)) != 0)
		return r;
	if (opt.check_only)
		return proxy_check_config(&opt, &cfg);
	if (opt.rotate_path != NULL) {
		if (tls_rotate_ticket_key(opt.rotate_path, &why) < 0) {
			fprintf(stderr, "gfproxy: --rotate-ticket-key %s: %s\n", opt.rotate_path, why);
			return EXIT_OSERR;
		}
		return EXIT_SUCCESS;
	}
	if ((r = conn_open(&conn, &why)) != 0) {
		fprintf(stderr, "gfproxy: %s\n", why);
		return r;
	}
	journal_init("gfproxy");
	/* Read per connection: an edit applies to the next one, with no reload. */
	config_load(&cfg, opt.config_path, opt.config_given, &opt.o);
	upstream_check_config(&cfg);
	conn.send_timeout_usec = cfg.send_timeout_ms * 1000LL;
#ifdef GFPROXY_ESCAPE_PROBE
	/* A test build (tests/system/escape.c): confined as below, then it tries to get out. */
	if (getenv("GFPROXY_PROBE_UNCONFINED") == NULL)
		(void)proxy_sandbox(&cfg);
	http_server_init(&h, &conn, cfg.max_body);
	if (http_read_head(&h, &req) > 0)
		escape_probe(conn.fd, req.target);
	return EXIT_SUCCESS;
#endif
	/* The certificates and keys are read now, before confinement; parsed in the handshake. */
	if (opt.tls && proxy_tls_files(&conn, &cfg, &tls) < 0)
		return EXIT_CONFIG;
	if ((proxy_confinement = proxy_sandbox(&cfg)) == NULL) {
		if (tls == NULL)
			http_error(&conn, 503, "cannot confine the process");
		conn_linger(&conn);
		tls_free(tls);      /* wipes the keys' bytes */
		return EXIT_OSERR;
	}
	if (cfg.proxy_protocol && !proxy_balancer_header(&conn, &cfg)) {
		tls_free(tls);
		config_free(&cfg);
		return EXIT_SUCCESS;
	}
	/*
	 * Whose X-Forwarded-* and Forwarded are believed: a trusted peer's. A
	 * PROXY header naming no client (v1 UNKNOWN, v2 LOCAL or an unspecified
	 * family) leaves the balancer as the peer, but the bytes that follow are
	 * still whoever it relays: not the balancer's own.
	 */
	conn.trusted = config_trusted(&cfg, conn.peer_addr) &&
	    (!cfg.proxy_protocol || conn.proxy_addr[0] != '\0');
	/*
	 * The client's first bytes (after a balancer's PROXY header) are its
	 * ClientHello, parsed confined.
	 */
	if (tls != NULL && proxy_handshake(&conn, tls) < 0) {
		tls_free(tls);
		config_free(&cfg);
		return EXIT_SUCCESS;
	}
	/* Heads are checked against the largest limit, bodies against their route's. */
	for (i = 0; i < cfg.nroutes; i++)
		if (cfg.routes[i]->max_body > max_body)
			max_body = cfg.routes[i]->max_body;
	http_server_init(&h, &conn, max_body > 0 ? max_body : cfg.max_body);

	while ((r = http_read_head(&h, &req)) != 0) {
		start = conn_now_usec();
		if (r < 0) {
			proxy_refuse(&conn, &req, h.status, h.why, start);
			break;
		}
		if (cfg.nerrors > 0) {
			proxy_broken_config(&conn, &req, &cfg, start);
			break;
		}
		if (strcmp(req.target, "*") == 0) {
			if (req.method_id == HTTP_OPTIONS && !req.has_body) {
				if (!proxy_asterisk(&conn, &req, start))
					break;
				continue;
			}
			proxy_refuse(&conn, &req, 400, "asterisk target is only for OPTIONS", start);
			break;
		}
		if ((route = route_match(&cfg, req.target, req.host)) == NULL) {
			proxy_refuse(&conn, &req, 404, "no route", start);
			break;
		}
		if (req.content_length > 0 && (uint64_t)req.content_length > route->max_body) {
			proxy_refuse(&conn, &req, 413, "body larger than the route's maximum", start);
			break;
		}
		h.max_body = route->max_body;
		/* libcurl is set up only once there is something to send. */
		if (!up.ready && upstream_init(&up, &cfg) < 0) {
			proxy_refuse(&conn, &req, 500, "cannot initialise libcurl", start);
			break;
		}
		if (tunnel_wanted(&req))
			tunnel_forward(&up, &h, &req, route, &res);
		else
			upstream_forward(&up, &h, &req, route, &res);
		proxy_log(&conn, &req, res.forwarded ? up.url : NULL, res.status, &res, start);
		if (!res.keep_alive)
			break;
	}
	/*
	 * Linger when the client may still be sending: after a head we could
	 * not parse, a body we did not read, or with bytes already waiting.
	 */
	if (r < 0 || (h.head_done && !h.body_done) || conn_has_input(&conn))
		conn_linger(&conn);
	else
		conn_shutdown(&conn);
	upstream_free(&up);
	tls_free(tls);
	config_free(&cfg);
	return EXIT_SUCCESS;
}
