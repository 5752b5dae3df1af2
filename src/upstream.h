/* upstream.h - forwarding one request with libcurl and streaming the answer back */
#ifndef GFPROXY_UPSTREAM_H
#define GFPROXY_UPSTREAM_H

#include <stdbool.h>
#include <stdint.h>

#include <curl/curl.h>

#include "config.h"
#include "http.h"
#include "route.h"

/*
 * The response head limits are per route: max-response-head and
 * max-response-fields, CONFIG_RESPONSE_* in config.h. The head as the
 * client gets it has room for them, a status line and the route's
 * response rules on top; trailers for the client take at most
 * UPSTREAM_TRAILERS_SIZE, and what does not fit is dropped.
 */
#define UPSTREAM_HEAD_OUT_EXTRA      (256 + CONFIG_MAX_RULES * (CONFIG_MAX_LINE + 4))
#define UPSTREAM_TRAILERS_SIZE       (64 * 1024)
#define UPSTREAM_BUFFER_SIZE         (64 * 1024)  /* libcurl's download buffer */
#define UPSTREAM_STAGE_SIZE          (64 * 1024)  /* body checked before going upstream */
#define UPSTREAM_EXPECT_WAIT_MS      1000         /* wait for 100 Continue, then send */
#define UPSTREAM_LIVENESS_INTERVAL_MS 200         /* how often a waiting client is checked */
#define UPSTREAM_POLL_MS             1000         /* longest wait without calling libcurl */
#define UPSTREAM_MAX_SOCKETS         32           /* upstream sockets tracked at once */
#define UPSTREAM_SOCKETS_SPARE       4            /* room one request's connect needs */
/*
 * The request fields for the upstream: the client's, ours (X-Forwarded-For,
 * -Host, -Proto, -Prefix, Forwarded, Via, TE, Accept, Expect) and the route's
 * rules. The client's take at most HTTP_MAX_HEADER_BYTES, each of our five
 * that carry client text at most that and its name, a rule at most a line.
 */
#define UPSTREAM_MAX_FIELDS          (HTTP_MAX_HEADERS + 9 + CONFIG_MAX_RULES)
#define UPSTREAM_FIELDS_BYTES        (6 * HTTP_MAX_HEADER_BYTES + 5 * 32 + 256 + \
                                      CONFIG_MAX_RULES * (CONFIG_MAX_LINE + 3))

struct transfer;

struct upstream {
	CURL                *curl;  /* the handle of the request in flight, or NULL */
	CURLSH              *share; /* the connection cache, kept across handles */
	CURLM               *multi; /* runs the transfer, with the client in its poll */
	CURLU               *origin;     /* origin_of's origin, parsed */
	const struct upstream_def *origin_of;  /* the upstream last asked, or NULL */
	bool                 stale; /* replace curl before the next request */
	bool                 ready; /* upstream_init() succeeded */
	struct transfer     *t;     /* the state of the request in flight */
	curl_socket_t        socks[UPSTREAM_MAX_SOCKETS];  /* libcurl's, open now */
	size_t               nsocks;
	const struct config *cfg;
	const char          *protocols;  /* "http,https", or "http" without TLS */
	char                 errbuf[CURL_ERROR_SIZE];
	char                 url[ROUTE_MAX_TARGET + 512];  /* the last one asked, for the log */
	char                 why[CURL_ERROR_SIZE + 128];   /* errbuf and errno, for the log */
};

/* What happened to one request, for the log line. */
struct upstream_result {
	int          status;        /* what the client got */
	uint64_t     bytes_sent;    /* response body bytes written to the client */
	uint64_t     bytes_received;/* request body bytes read from the client */
	const char  *why;           /* set when something failed */
	bool         keep_alive;    /* the connection may carry another request */
	bool         truncated;     /* the client got a head but not all the body */
	bool         client_fault;  /* the status is the client's doing */
	bool         forwarded;     /* the upstream was asked */
	unsigned     tries;         /* upstreams asked, counting failovers */
};

int   upstream_init(struct upstream *u, const struct config *cfg);
void  upstream_free(struct upstream *u);
CURL *upstream_handle(struct upstream *u, bool chunked_upload);
CURL *upstream_tunnel_handle(struct upstream *u);
const char *upstream_version(void);
void  upstream_check_config(struct config *cfg);
struct curl_slist *upstream_request_fields(const struct config *cfg, const struct route *r,
          const struct http_request *req, const char *peer, bool *ret_trailers);
int   upstream_point(struct upstream *u, const struct route *r, size_t i, const char *target,
          char *ret_target, size_t size, const char **ret_why);
void  upstream_forward(struct upstream *u, struct http_server *h,
          const struct http_request *req, const struct route *r,
          struct upstream_result *res);

#endif
