/* origin.h - answering HTTP/1.1 requests on one connection, as the origin server */
#ifndef GFPROXY_ORIGIN_H
#define GFPROXY_ORIGIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "conn.h"
#include "http.h"

#define ORIGIN_IO_CHUNK         (64 * 1024)   /* bytes per body read */
#define ORIGIN_MAX_HEAD         512           /* bytes of a response head */
#define ORIGIN_SMALL_BODY       128           /* bytes of a formatted body */
#define ORIGIN_TYPE_TEXT        "text/plain; charset=utf-8"

/* A handler's answer: it answered (0), left the request to the example's answers, or failed (< 0). */
#define ORIGIN_PASS             1

/* One connection's state; there is only ever one per process. */
struct origin {
	struct conn          conn;
	struct http_server   http;
	struct http_request  req;
	const char          *confinement;   /* the SANDBOX field of every entry */
	int64_t              start_usec;    /* when the request's head was read */
	/* The response being sent. */
	bool                 keep_alive;
	bool                 chunked;       /* chunked framing, else length or close */
	bool                 no_body;       /* HEAD, 204, 304: head only */
	int                  status;
	const char          *why;           /* why the request failed, for the log */
	const char          *fields;        /* more header lines, each ending in CRLF, or NULL */
	uint64_t             sent;          /* body bytes written, for the log */
	uint64_t             received;      /* request body bytes read, for the log */
	char                 head[ORIGIN_MAX_HEAD];
	size_t               head_len;      /* not yet written: goes with the body */
	char                 buf[ORIGIN_IO_CHUNK];
};

/*
 * Answers one request whose head is in o->req: reads or refuses its body,
 * then answers. path is the target's path, without query or fragment.
 */
typedef int origin_handler(struct origin *o, const char *path, size_t path_len);

int   origin_main(struct origin *o, int argc, char *argv[], const char *name,
          void (*usage)(FILE *), origin_handler *handler);
int   origin_head(struct origin *o, int status, const char *type, int64_t length);
int   origin_body(struct origin *o, const void *data, size_t len);
int   origin_flush(struct origin *o);
int   origin_end(struct origin *o, const char *trailers);
int   origin_reply(struct origin *o, int status, const char *type, const char *body,
          size_t len);
int   origin_replyf(struct origin *o, int status, const char *fmt, ...)
          __attribute__((format(printf, 3, 4)));
int   origin_read_body(struct origin *o, void (*each)(void *arg, const char *data, size_t len),
          void *arg);

#endif
