/* response.h - the one model of an upstream's response head, validated line by line */
#ifndef GFPROXY_RESPONSE_H
#define GFPROXY_RESPONSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RESPONSE_MAX_REASON  128   /* bytes of a reason phrase kept; a longer one is replaced */

/* Where the next line of the upstream's stream belongs. */
enum response_phase {
	RESPONSE_STATUS,    /* a status line comes next */
	RESPONSE_FIELDS,    /* field lines, up to the blank line */
	RESPONSE_TRAILERS,  /* field lines after a chunked body */
};

/*
 * A head as the upstream sent it: status, reason and fields, whether the
 * lines came through libcurl's header callback or were read by the tunnel.
 * The fields are kept as "Name: value" text, NUL-terminated, in order.
 */
struct response {
	enum response_phase phase;
	int         status;
	bool        http10;             /* the status line said HTTP/1.0 */
	char        reason[RESPONSE_MAX_REASON];
	size_t      nfields;
	/* Of them, the fields about framing, counted as they come. */
	size_t      nconnection, nlength, nencoding;
	size_t      length_at, encoding_at; /* the last of each */
	size_t      len;                /* bytes of text in use */
	size_t      max_fields, max_bytes;  /* the route's limits */
	/* What the fields say about the body, after response_framing(). */
	int64_t     length;             /* Content-Length, or -1 */
	bool        chunked;            /* Transfer-Encoding: chunked */
	bool        closes;             /* the upstream closes the connection after it */
	/* Storage, sized once for the largest limits (response_alloc()). */
	size_t     *field_off;
	char       *text;
	size_t      room_fields, room_bytes;
};

int         response_alloc(struct response *r, size_t max_fields, size_t max_bytes);
void        response_free(struct response *r);
void        response_begin(struct response *r, size_t max_fields, size_t max_bytes);
int         response_line(struct response *r, const char *line, size_t len,
                const char **ret_why);
int         response_framing(struct response *r, const char **ret_why);
void        response_next(struct response *r);
const char *response_too_large(const struct response *r);
const char *response_field(const struct response *r, size_t i);
const char *response_get(const struct response *r, const char *name, size_t *ret_len);
bool        response_connection_names(const struct response *r, const char *name,
                size_t len);

#endif
