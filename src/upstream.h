/* upstream.h - forwarding one request with libcurl and streaming the answer back */
#ifndef GFPROXY_UPSTREAM_H
#define GFPROXY_UPSTREAM_H

#include <stdbool.h>
#include <stdint.h>

#include <curl/curl.h>

#include "http.h"

#define UPSTREAM_MAX_RESPONSE_HEAD   (64 * 1024)  /* bytes; a larger head is a 502 */
#define UPSTREAM_MAX_RESPONSE_FIELDS 200          /* fields; more is a 502 */
#define UPSTREAM_BUFFER_SIZE         (64 * 1024)  /* libcurl's download buffer */
#define UPSTREAM_STAGE_SIZE          (64 * 1024)  /* body checked before going upstream */
#define UPSTREAM_EXPECT_WAIT_MS      1000         /* wait for 100 Continue, then send */
#define UPSTREAM_CONNECT_TIMEOUT_MS  5000         /* default, --connect-timeout */
#define UPSTREAM_TIMEOUT_MS          30000        /* default, --timeout */

struct upstream {
	CURL        *curl;          /* one handle: its connection is reused */
	const char  *origin;        /* scheme://authority */
	long         connect_timeout_ms;
	long         timeout_ms;    /* for the response head, then between reads */
	char         errbuf[CURL_ERROR_SIZE];
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
};

int   upstream_init(struct upstream *u, const char *origin, long connect_timeout_ms,
          long timeout_ms);
void  upstream_free(struct upstream *u);
struct curl_slist *upstream_request_fields(const struct http_request *req, const char *peer,
          bool *ret_trailers);
void  upstream_forward(struct upstream *u, struct http_server *h,
          const struct http_request *req, const char *target,
          struct upstream_result *res);

#endif
