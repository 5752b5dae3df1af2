/*
 * response.c - an upstream's response head, one line at a time. libcurl's
 * header callback (upstream.c) and the tunnel's reader (tunnel.c) hand
 * every line they get to response_line(), so a head gets the same checks
 * and the same limits whichever way it came: CRLF line ends, a valid status
 * line, field lines without folding or control bytes, the route's
 * max-response-fields and max-response-head. Parsers here return -1 with
 * a reason and never log.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http.h"
#include "response.h"

/* The storage for the largest head any route allows; freed by response_free(). */
int
response_alloc(struct response *r, size_t max_fields, size_t max_bytes)
{
	memset(r, 0, sizeof(*r));
	if ((r->field_off = malloc(max_fields * sizeof(*r->field_off) + max_bytes)) == NULL)
		return -1;
	r->text = (char *)(r->field_off + max_fields);
	r->room_fields = max_fields;
	r->room_bytes = max_bytes;
	return 0;
}

void
response_free(struct response *r)
{
	if (r == NULL)
		return;
	free(r->field_off);
	r->field_off = NULL;
	r->text = NULL;
}

/* No fields yet. */
static void
response_clear(struct response *r)
{
	r->nfields = r->nconnection = r->nlength = r->nencoding = r->len = 0;
}

/* Ready for a new exchange, held to a route's limits. */
void
response_begin(struct response *r, size_t max_fields, size_t max_bytes)
{
	r->phase = RESPONSE_STATUS;
	r->status = 0;
	r->http10 = false;
	response_clear(r);
	r->max_fields = max_fields;
	r->max_bytes = max_bytes;
	r->length = -1;
	r->chunked = r->closes = false;
}

/* "HTTP/1.1 200 OK": keep the code, and the reason if it is clean text. */
static int
response_status_line(struct response *r, const char *line, size_t len, const char **ret_why)
{
	struct http_status_line sl;
	const char *p;

	if (http_check_status_line(line, len, &sl, ret_why) < 0)
		return -1;
	r->status = sl.status;
	r->http10 = sl.http10;
	p = sl.reason;
	len = sl.reason_len;
	if (p == NULL || len == 0 || len >= sizeof(r->reason)) {
		p = http_reason(r->status);
		len = strnlen(p, sizeof(r->reason) - 1);
	}
	memcpy(r->reason, p, len);
	r->reason[len] = '\0';
	response_clear(r);
	r->phase = RESPONSE_FIELDS;
	return 0;
}

/* A reason naming the limit passed, with the route's value. */
static const char *
response_limit_why(const struct response *r, bool fields)
{
	static char why[128];
	const char *what = r->phase == RESPONSE_TRAILERS ? "trailers" : "response head";

	if (fields)
		snprintf(why, sizeof(why), "upstream %s: more than max-response-fields (%zu) fields",
		    what, r->max_fields);
	else
		snprintf(why, sizeof(why), "upstream %s larger than max-response-head (%zu bytes)",
		    what, r->max_bytes);
	return why;
}

/*
 * One line as the upstream sent it, CRLF included. Returns 1 at the blank
 * line that ends a head or a trailer section, 0 for a line taken, -1 for
 * one that makes the response invalid. After a head, the caller says what
 * comes next: another status line (after a 1xx) or trailers.
 */
int
response_line(struct response *r, const char *line, size_t len, const char **ret_why)
{
	size_t n, name_len;

	/* RFC 9112 2.2: CRLF ends each line, as the client's must. */
	if (len < 2 || line[len - 2] != '\r' || line[len - 1] != '\n') {
		*ret_why = "upstream header line not ended by CRLF";
		return -1;
	}
	n = len - 2;
	if (r->phase == RESPONSE_STATUS) {
		if (n < 5 || strncmp(line, "HTTP/", 5) != 0) {
			*ret_why = "invalid status line from upstream";
			return -1;
		}
		return response_status_line(r, line, n, ret_why);
	}
	if (n == 0)
		return 1;
	/* A field line: no folding, no control bytes, a token for a name. */
	if (http_check_response_field(line, n, &name_len, ret_why) < 0)
		return -1;
	/*
	 * Held to the route's limits, counting the bytes as sent: each field
	 * is kept with a NUL for its CRLF, len + nfields bytes so far.
	 */
	if (r->nfields == r->max_fields || r->nfields == r->room_fields) {
		*ret_why = response_limit_why(r, true);
		return -1;
	}
	if (r->len + r->nfields + n + 2 > r->max_bytes || n + 1 > r->room_bytes - r->len) {
		*ret_why = response_limit_why(r, false);
		return -1;
	}
	/* Noted now, so that response_framing() reads only these. */
	if (name_len == 10 && http_name_eq(line, name_len, "Connection"))
		r->nconnection++;
	else if (name_len == 14 && http_name_eq(line, name_len, "Content-Length")) {
		r->nlength++;
		r->length_at = r->nfields;
	} else if (name_len == 17 && http_name_eq(line, name_len, "Transfer-Encoding")) {
		r->nencoding++;
		r->encoding_at = r->nfields;
	}
	r->field_off[r->nfields++] = r->len;
	memcpy(r->text + r->len, line, n);
	r->len += n;
	r->text[r->len++] = '\0';
	return 0;
}

/*
 * After a head: another status line follows a 1xx, trailers may follow a
 * final one. The fields are the caller's until then.
 */
void
response_next(struct response *r)
{
	r->phase = r->status >= 200 ? RESPONSE_TRAILERS : RESPONSE_STATUS;
	response_clear(r);
}

/* The reason a head that cannot fit in bytes gets (the tunnel's reader). */
const char *
response_too_large(const struct response *r)
{
	return response_limit_why(r, false);
}

/* Field i, as "Name: value". */
const char *
response_field(const struct response *r, size_t i)
{
	return r->text + r->field_off[i];
}

static bool
response_field_is(const char *line, const char *name)
{
	size_t len = strlen(name);

	return strncasecmp(line, name, len) == 0 && line[len] == ':';
}

/* The value of field i, after its colon and leading whitespace. */
static const char *
response_value(const char *line)
{
	line += strcspn(line, ":") + 1;
	return line + strspn(line, " \t");
}

/* The one field of that name, its value trimmed; NULL when none or several. */
const char *
response_get(const struct response *r, const char *name, size_t *ret_len)
{
	const char *v = NULL, *line;
	size_t i, len = 0;

	for (i = 0; i < r->nfields; i++) {
		line = response_field(r, i);
		if (!response_field_is(line, name))
			continue;
		if (v != NULL)
			return NULL;
		v = response_value(line);
		len = strlen(v);
		while (len > 0 && (v[len - 1] == ' ' || v[len - 1] == '\t'))
			len--;
	}
	*ret_len = len;
	return v;
}

/* Does a Connection field of the upstream name this field? */
bool
response_connection_names(const struct response *r, const char *name, size_t len)
{
	const char *line, *v;
	size_t i;

	for (i = 0; r->nconnection > 0 && i < r->nfields; i++) {
		line = response_field(r, i);
		if (response_field_is(line, "Connection")) {
			v = line + sizeof("Connection");
			if (http_list_has(v, strlen(v), name, len))
				return true;
		}
	}
	return false;
}

/*
 * What the head says about its body and the connection: one plain
 * Content-Length, or Transfer-Encoding: chunked alone, never both.
 */
int
response_framing(struct response *r, const char **ret_why)
{
	bool keeps = false, closes = false;
	const char *line, *v;
	size_t i, digits;

	r->length = -1;
	r->chunked = false;
	if (r->nlength > 0) {
		/* One plain decimal, or the framing is ambiguous. */
		v = response_value(response_field(r, r->length_at));
		digits = strspn(v, "0123456789");
		if (r->nlength > 1 || digits == 0 || v[digits + strspn(v + digits, " \t")] != '\0')
			goto bad_length;
		/* Beyond 63 bits libcurl ignores it and reads to the close. */
		errno = 0;
		r->length = strtoll(v, NULL, 10);
		if (errno == ERANGE)
			goto bad_length;
	}
	if (r->nencoding > 0) {
		/*
		 * Only chunked, once, as from a client: libcurl decodes nothing
		 * else, and a coding after chunked would make the body end at
		 * the close (RFC 9112 6.3), so the client would get bytes
		 * framed other than they were sent.
		 */
		v = response_value(response_field(r, r->encoding_at));
		if (r->nencoding > 1 || strncasecmp(v, "chunked", 7) != 0 ||
		    v[7 + strspn(v + 7, " \t")] != '\0') {
			*ret_why = "Transfer-Encoding other than chunked from upstream";
			return -1;
		}
		r->chunked = true;
	}
	if (r->nlength > 0 && r->chunked) {
		*ret_why = "upstream sent both Content-Length and Transfer-Encoding";
		return -1;
	}
	for (i = 0; r->nconnection > 0 && i < r->nfields; i++) {
		line = response_field(r, i);
		if (response_field_is(line, "Connection")) {
			v = line + sizeof("Connection");
			closes |= http_list_has(v, strlen(v), "close", 5);
			keeps |= http_list_has(v, strlen(v), "keep-alive", 10);
		}
	}
	/*
	 * RFC 9112 6.1: Transfer-Encoding in an HTTP/1.0 message is faulty
	 * framing; the connection closes after it, whatever it says.
	 */
	r->closes = closes || (r->http10 && (!keeps || r->chunked));
	return 0;
bad_length:
	*ret_why = "invalid Content-Length from upstream";
	return -1;
}
