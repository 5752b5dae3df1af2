/*
 * proxy.c - gfproxy: serve the requests of one client connection by
 * forwarding them upstream, then exit.
 *
 * systemd (or inetd) starts one gfproxy per TCP connection, so everything
 * here lives exactly as long as one client: no accept loop, no state shared
 * between clients, and nothing running while nobody connects.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conn.h"
#include "http.h"
#include "journal.h"
#include "route.h"
#include "tunnel.h"
#include "upstream.h"

#define PROXY_DEFAULT_UPSTREAM  "http://127.0.0.1:8198"
#define PROXY_DEFAULT_PREFIX    "/proxy"
#define PROXY_MAX_TIMEOUT_MS    (24 * 3600 * 1000L)   /* sanity ceiling: a day */

struct proxy_config {
	const char  *upstream;
	const char  *prefix;
	long         connect_timeout_ms;
	long         timeout_ms;
	uint64_t     max_body;
};

static void
proxy_usage(FILE *f)
{
	fprintf(f,
	    "usage: gfproxy [options]\n"
	    "\n"
	    "Serve one client connection, passed by systemd socket activation (fd 3)\n"
	    "or inetd (stdin), forwarding requests under PREFIX to the upstream.\n"
	    "\n"
	    "  -u, --upstream URL         upstream origin and base path (default %s)\n"
	    "  -p, --prefix PATH          path prefix to forward and strip (default %s)\n"
	    "  -t, --timeout SECONDS      wait for the response head, and longest upstream\n"
	    "                             silence mid-response (default %d)\n"
	    "  -c, --connect-timeout SECONDS  upstream connect timeout (default %d)\n"
	    "  -b, --max-body BYTES       largest request body, K/M/G suffixes (default 1G)\n"
	    "  -h, --help                 show this help\n"
	    "  -V, --version              show the version\n"
	    "\n"
	    "SECONDS may have a fraction or an \"ms\" suffix (e.g. 0.5 or 500ms).\n"
	    "\n"
	    "Exit status: 0 served, 64 usage error, 66 no connected socket to serve,\n"
	    "71 system error before serving.\n",
	    PROXY_DEFAULT_UPSTREAM, PROXY_DEFAULT_PREFIX,
	    UPSTREAM_TIMEOUT_MS / 1000, UPSTREAM_CONNECT_TIMEOUT_MS / 1000);
}

/* "30", "0.5", "500ms" -> milliseconds; -1 if malformed or out of range. */
static long
proxy_parse_ms(const char *s)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno != 0 || end == s || v < 0)
		return -1;
	if (strcmp(end, "ms") == 0)
		;
	else if (*end == '\0' || strcmp(end, "s") == 0)
		v *= 1000;
	else
		return -1;
	if (v < 1 || v > PROXY_MAX_TIMEOUT_MS)
		return -1;
	return (long)v;
}

/* "1048576", "512K", "1G" -> bytes; 0 if malformed. */
static uint64_t
proxy_parse_size(const char *s)
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
proxy_options(int argc, char **argv, struct proxy_config *cfg)
{
	static const struct option longopts[] = {
		{ "upstream",        required_argument, NULL, 'u' },
		{ "prefix",          required_argument, NULL, 'p' },
		{ "timeout",         required_argument, NULL, 't' },
		{ "connect-timeout", required_argument, NULL, 'c' },
		{ "max-body",        required_argument, NULL, 'b' },
		{ "help",            no_argument,       NULL, 'h' },
		{ "version",         no_argument,       NULL, 'V' },
		{ NULL, 0, NULL, 0 }
	};
	int ch;

	while ((ch = getopt_long(argc, argv, "u:p:t:c:b:hV", longopts, NULL)) != -1) {
		switch (ch) {
		case 'u':
			cfg->upstream = optarg;
			break;
		case 'p':
			cfg->prefix = optarg;
			break;
		case 't':
			if ((cfg->timeout_ms = proxy_parse_ms(optarg)) < 0) {
				fprintf(stderr, "gfproxy: invalid --timeout '%s'\n", optarg);
				return EXIT_USAGE;
			}
			break;
		case 'c':
			if ((cfg->connect_timeout_ms = proxy_parse_ms(optarg)) < 0) {
				fprintf(stderr, "gfproxy: invalid --connect-timeout '%s'\n", optarg);
				return EXIT_USAGE;
			}
			break;
		case 'b':
			if ((cfg->max_body = proxy_parse_size(optarg)) == 0) {
				fprintf(stderr, "gfproxy: invalid --max-body '%s'\n", optarg);
				return EXIT_USAGE;
			}
			break;
		case 'h':
			proxy_usage(stdout);
			exit(EXIT_SUCCESS);
		case 'V':
			printf("gfproxy %s\n", GFPROXY_VERSION);
			exit(EXIT_SUCCESS);
		default:
			proxy_usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "gfproxy: unexpected argument '%s'\n", argv[optind]);
		return EXIT_USAGE;
	}
	return 0;
}

/*
 * One journal entry per request, written after the response is flushed so
 * the client never waits for it.
 */
static void
proxy_log(const struct conn *c, const struct http_request *req, const char *upstream_url,
    int status, const struct upstream_result *res, int64_t start_usec)
{
	char target[512], url[640], why[256], num[6][24];
	int64_t usec = conn_now_usec() - start_usec;
	int prio;
	struct journal_field fields[11];
	size_t n = 0;

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

	snprintf(num[0], sizeof(num[0]), "%d", status);
	snprintf(num[1], sizeof(num[1]), "%" PRIu64, res->bytes_sent);
	snprintf(num[2], sizeof(num[2]), "%" PRIu64, res->bytes_received);
	snprintf(num[3], sizeof(num[3]), "%" PRId64, usec);
	fields[n++] = (struct journal_field){ "REMOTE_ADDR", c->peer_addr };
	fields[n++] = (struct journal_field){ "REMOTE_PORT", c->peer_port };
	fields[n++] = (struct journal_field){ "HTTP_METHOD", req->method };
	fields[n++] = (struct journal_field){ "HTTP_TARGET", target };
	if (upstream_url != NULL)
		fields[n++] = (struct journal_field){ "UPSTREAM_URL", url };
	fields[n++] = (struct journal_field){ "HTTP_STATUS", num[0] };
	fields[n++] = (struct journal_field){ "BYTES_SENT", num[1] };
	fields[n++] = (struct journal_field){ "BYTES_RECEIVED", num[2] };
	fields[n++] = (struct journal_field){ "DURATION_USEC", num[3] };
	if (res->why != NULL)
		fields[n++] = (struct journal_field){ "ERROR", why };

	journal_log(prio, fields, n, "%s %s%s%s %d %" PRIu64 "B %" PRId64 ".%" PRId64 "ms%s%s",
	    req->method, target, upstream_url != NULL ? " -> " : "", upstream_url != NULL ? url : "",
	    status, res->bytes_sent, usec / 1000, (usec % 1000) / 100,
	    res->why != NULL ? ": " : "", why);
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
	struct upstream_result res = { .status = 200 };

	res.keep_alive = req->keep_alive && conn_write(c, allow, sizeof(allow) - 1) == 0;
	proxy_log(c, req, NULL, 200, &res, start_usec);
	return res.keep_alive;
}

/* A request we answer ourselves, without the upstream. */
static void
proxy_refuse(struct conn *c, const struct http_request *req, int status, const char *why,
    int64_t start_usec)
{
	struct upstream_result res = { .status = status, .why = why, .client_fault = status != 500 };

	http_error(c, status, why);
	proxy_log(c, req, NULL, status, &res, start_usec);
}

int
main(int argc, char **argv)
{
	struct proxy_config cfg = {
		.upstream = PROXY_DEFAULT_UPSTREAM,
		.prefix = PROXY_DEFAULT_PREFIX,
		.connect_timeout_ms = UPSTREAM_CONNECT_TIMEOUT_MS,
		.timeout_ms = UPSTREAM_TIMEOUT_MS,
		.max_body = HTTP_MAX_BODY_DEFAULT,
	};
	static struct conn conn;
	static struct http_server h;
	static struct http_request req;
	static struct route route;
	static char target[ROUTE_MAX_TARGET], url[ROUTE_MAX_URL + ROUTE_MAX_TARGET];
	struct upstream up = { 0 };
	struct upstream_result res;
	const char *why = NULL;
	int64_t start;
	int r, status;

	if ((r = proxy_options(argc, argv, &cfg)) != 0)
		return r;
	if (route_init(&route, cfg.prefix, cfg.upstream, &why) < 0) {
		fprintf(stderr, "gfproxy: %s\n", why);
		return EXIT_USAGE;
	}
	if ((r = conn_open(&conn, &why)) != 0) {
		fprintf(stderr, "gfproxy: %s\n", why);
		return r;
	}
	journal_init("gfproxy");
	http_server_init(&h, &conn, cfg.max_body);

	while ((r = http_read_head(&h, &req)) != 0) {
		start = conn_now_usec();
		if (r < 0) {
			proxy_refuse(&conn, &req, h.status, h.why, start);
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
		status = route_rewrite(&route, req.target, target, sizeof(target), &why);
		if (status != 0) {
			proxy_refuse(&conn, &req, status, why, start);
			break;
		}
		/* libcurl is set up only once there is something to send. */
		if (up.curl == NULL && upstream_init(&up, route.origin, cfg.connect_timeout_ms,
		    cfg.timeout_ms) < 0) {
			proxy_refuse(&conn, &req, 500, "cannot initialise libcurl", start);
			break;
		}
		snprintf(url, sizeof(url), "%s%s", route.origin, target);
		if (tunnel_wanted(&req))
			tunnel_forward(&up, &h, &req, target, &res);
		else
			upstream_forward(&up, &h, &req, target, &res);
		proxy_log(&conn, &req, res.forwarded ? url : NULL, res.status, &res, start);
		if (!res.keep_alive)
			break;
	}
	conn_shutdown(&conn);
	upstream_free(&up);
	return EXIT_SUCCESS;
}
