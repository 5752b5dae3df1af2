/* reply.h - the one writer of the answer the client gets to a forwarded request */
#ifndef GFPROXY_REPLY_H
#define GFPROXY_REPLY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "http.h"
#include "mount.h"
#include "response.h"

/*
 * The head as the client gets it has room for the route's response head
 * limit, a status line and the route's response rules on top; trailers
 * take at most REPLY_TRAILERS_SIZE, and what does not fit is dropped.
 */
#define REPLY_HEAD_EXTRA     (256 + CONFIG_MAX_RULES * (CONFIG_MAX_LINE + 4))
#define REPLY_TRAILERS_SIZE  (64 * 1024)
#define REPLY_WHY_SIZE       512   /* a reason made up of parts (libcurl's and the system's) */

/* What happened to one request, for the log line. */
struct reply_result {
	int          status;        /* what the client got */
	uint64_t     bytes_sent;    /* response body bytes written to the client */
	uint64_t     bytes_received;/* request body bytes read from the client */
	const char  *why;           /* the one reason, set when something failed */
	bool         keep_alive;    /* the connection may carry another request */
	bool         truncated;     /* the client got a head but not all the body */
	bool         client_fault;  /* the status is the client's doing */
	bool         forwarded;     /* an upstream was chosen: log its URL */
	char         why_text[REPLY_WHY_SIZE];  /* why, when it is made of parts */
};

/* How far the answer has gone out. */
enum reply_state {
	REPLY_NONE,     /* nothing: a failure can still be answered in full */
	REPLY_HELD,     /* the final head is made, not yet written */
	REPLY_SENT,     /* the final head went out: only a cut can signal a failure */
};

/* How the body is framed for the client. */
enum reply_framing {
	REPLY_EMPTY,    /* HEAD, 204, 304, or a 101 that opens a tunnel */
	REPLY_LENGTH,   /* Content-Length, as the upstream said */
	REPLY_CHUNKED,  /* chunks of our own, trailers after them */
	REPLY_CLOSE,    /* the end of the connection ends it (HTTP/1.0 client) */
};

struct reply {
	struct http_server         *h;
	const struct http_request  *req;
	const struct route         *route;
	struct mount_view           mount;      /* where the client reached the route */
	struct reply_result        *res;
	enum reply_state            state;
	enum reply_framing          framing;
	int64_t                     left;       /* body bytes still owed under REPLY_LENGTH */
	int                         fail_status;/* 0, or the first failure's status */
	bool                        why_public; /* the reason may go to the client */
	size_t                      held;       /* bytes of out not yet written */
	char                       *out;        /* [out_size]: the head for the client */
	size_t                      out_size;
};

int   reply_alloc(struct reply *rp, size_t head_size);
void  reply_free(struct reply *rp);
void  reply_begin(struct reply *rp, struct http_server *h, const struct http_request *req,
          const struct route *r, bool trusted, struct reply_result *res);
int   reply_fail(struct reply *rp, int status, const char *why);
int   reply_fail_quietly(struct reply *rp, int status, const char *why);
int   reply_head(struct reply *rp, struct response *resp, bool hold);
void  reply_retract(struct reply *rp);
int   reply_flush(struct reply *rp);
int   reply_body(struct reply *rp, const char *buf, size_t len);
int   reply_end(struct reply *rp, const struct response *trailers);
void  reply_finish(struct reply *rp);

#endif
