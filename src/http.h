/* http.h - HTTP/1.x limits, protocol tables, request reading, error replies */
#ifndef GFPROXY_HTTP_H
#define GFPROXY_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <llhttp.h>

#include "conn.h"

/* Limits on what a client may send; each has its own status. */
#define HTTP_MAX_REQUEST_LINE   (8 * 1024)          /* bytes; 414 beyond */
#define HTTP_MAX_HEADER_BYTES   (16 * 1024)         /* bytes of fields; 431 beyond */
#define HTTP_MAX_HEADERS        100                 /* fields; 431 beyond */
#define HTTP_MAX_TRAILERS       32                  /* trailer fields; 431 beyond */
#define HTTP_MAX_BODY_DEFAULT   ((uint64_t)1 << 30) /* 1 GiB; 413 beyond (--max-body) */

/* Deadlines on the client, in milliseconds. */
#define HTTP_IDLE_TIMEOUT_MS    15000  /* keep-alive wait for the next request */
#define HTTP_HEAD_TIMEOUT_MS    10000  /* first byte to the end of the head; 408 */
#define HTTP_BODY_TIMEOUT_MS    30000  /* longest silence inside a body; 408 */
#define HTTP_BODY_LATER         (-2)   /* http_read_body_ready(): nothing yet */

struct http_header {
	const char      *name;
	const char      *value;
	size_t           name_len;
	size_t           value_len;
};

struct http_request {
	const char          *method;        /* canonical name, from llhttp's table */
	int                  method_id;     /* llhttp_method_t */
	const char          *target;        /* as received, NUL-terminated */
	size_t               target_len;
	int                  version;       /* 10 or 11 */
	struct http_header   headers[HTTP_MAX_HEADERS];
	size_t               nheaders;
	struct http_header   trailers[HTTP_MAX_TRAILERS];
	size_t               ntrailers;
	const char          *host;          /* the Host field, or NULL */
	const char          *scheme;        /* "http", or "https" over TLS */
	bool                 trusted;       /* the connection's: see struct conn */
	int64_t              content_length; /* -1 when absent */
	bool                 chunked;
	bool                 has_body;
	bool                 keep_alive;    /* as far as the client is concerned */
	bool                 expect_continue;
	bool                 upgrade;
	/* Every string above points in here. */
	size_t               arena_len;
	char                 arena[HTTP_MAX_REQUEST_LINE + HTTP_MAX_HEADER_BYTES +
	                           4 * (HTTP_MAX_HEADERS + HTTP_MAX_TRAILERS) + 64];
};

/* Reads the requests of one client connection, in order. */
struct http_server {
	struct conn         *conn;
	llhttp_t             parser;
	llhttp_settings_t    settings;
	struct http_request *req;
	uint64_t             max_body;
	uint64_t             body_seen;     /* decoded body bytes so far */
	size_t               head_bytes;    /* raw bytes of the current head */
	size_t               url_len;
	size_t               field_bytes;
	size_t               nhosts;
	size_t               ntes;          /* Transfer-Encoding fields */
	char                 head_prev;     /* last raw head byte, for folding */
	bool                 head_counted;  /* the whole head went through the checks */
	size_t               mark;          /* arena offset of the span being copied */
	size_t               name_mark;     /* arena offset of the current field name */
	size_t               name_len;
	bool                 field_open;
	bool                 value_open;
	bool                 head_done;
	bool                 body_done;
	bool                 continue_sent; /* or too late: the final answer began */
	bool                 in_trailers;
	bool                 closing;       /* no further request will be read */
	const char          *feed_end;      /* end of the bytes llhttp is parsing */
	int                  crlf_left;     /* bytes of a chunk's CRLF still to check */
	bool                 ext_open;      /* inside a chunk extension's value */
	bool                 ext_quoted;    /* that value is a quoted string */
	bool                 ext_more;      /* a token value ended by ';': give it back */
	/* Where on_body copies during http_read_body(). */
	char                *out;
	size_t               out_len;
	size_t               out_room;
	/* Why the last call failed. */
	int                  status;
	const char          *why;
};

/* A response's status line, as http_check_status_line() found it. */
struct http_status_line {
	int                  status;        /* 100 to 599 */
	bool                 http10;        /* HTTP/1.0, not HTTP/1.1 */
	const char          *reason;        /* in the line, or NULL if not clean text */
	size_t               reason_len;
};

void         http_server_init(struct http_server *h, struct conn *c, uint64_t max_body);
int          http_read_head(struct http_server *h, struct http_request *req);
ssize_t      http_read_body(struct http_server *h, void *buf, size_t room);
ssize_t      http_read_body_ready(struct http_server *h, void *buf, size_t room,
                 int64_t since_usec);
int          http_send_continue(struct http_server *h);
void         http_answer_begun(struct http_server *h);
int          http_error(struct conn *c, int status, const char *why);

int          http_check_status_line(const char *line, size_t len,
                 struct http_status_line *ret, const char **ret_why);
int          http_check_response_field(const char *line, size_t len, size_t *ret_name_len,
                 const char **ret_why);

const char  *http_reason(int status);
bool         http_is_hop_by_hop(const char *name, size_t len);
bool         http_trailer_forbidden(const char *name, size_t len);
bool         http_connection_protected(const char *name, size_t len);
bool         http_is_forwarded_address(const char *name, size_t len);
bool         http_list_has(const char *list, size_t list_len, const char *token,
                 size_t token_len);
bool         http_name_eq(const char *a, size_t alen, const char *b);
void         http_date(char buf[static 32]);
int          http_appendf(char *buf, size_t size, size_t *len, const char *fmt, ...)
                 __attribute__((format(printf, 4, 5)));
int          http_cat(char *buf, size_t size, size_t *len, ...)
                 __attribute__((sentinel));
bool         http_body_forbidden(const char *method, int status);

#endif
