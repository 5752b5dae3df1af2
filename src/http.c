/*
 * http.c - reading HTTP/1.x requests from a client on top of llhttp, the
 * protocol tables, and the one error responder.
 *
 * llhttp does the parsing. This file adds what a proxy needs on top of it:
 * limits checked as bytes arrive, the stricter field rules that keep a
 * request from meaning one thing here and another thing upstream, deadlines,
 * and streaming of the body in pieces no larger than the caller's buffer.
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "http.h"

static bool http_is_tchar(unsigned char ch);

static const struct {
	int         status;
	const char *reason;
} http_statuses[] = {
	{ 100, "Continue" },
	{ 101, "Switching Protocols" },
	{ 102, "Processing" },
	{ 103, "Early Hints" },
	{ 200, "OK" },
	{ 201, "Created" },
	{ 202, "Accepted" },
	{ 203, "Non-Authoritative Information" },
	{ 204, "No Content" },
	{ 205, "Reset Content" },
	{ 206, "Partial Content" },
	{ 207, "Multi-Status" },
	{ 300, "Multiple Choices" },
	{ 301, "Moved Permanently" },
	{ 302, "Found" },
	{ 303, "See Other" },
	{ 304, "Not Modified" },
	{ 307, "Temporary Redirect" },
	{ 308, "Permanent Redirect" },
	{ 400, "Bad Request" },
	{ 401, "Unauthorized" },
	{ 403, "Forbidden" },
	{ 404, "Not Found" },
	{ 405, "Method Not Allowed" },
	{ 406, "Not Acceptable" },
	{ 408, "Request Timeout" },
	{ 409, "Conflict" },
	{ 410, "Gone" },
	{ 411, "Length Required" },
	{ 412, "Precondition Failed" },
	{ 413, "Content Too Large" },
	{ 414, "URI Too Long" },
	{ 415, "Unsupported Media Type" },
	{ 416, "Range Not Satisfiable" },
	{ 417, "Expectation Failed" },
	{ 418, "I'm a teapot" },
	{ 421, "Misdirected Request" },
	{ 422, "Unprocessable Content" },
	{ 425, "Too Early" },
	{ 426, "Upgrade Required" },
	{ 428, "Precondition Required" },
	{ 429, "Too Many Requests" },
	{ 431, "Request Header Fields Too Large" },
	{ 500, "Internal Server Error" },
	{ 501, "Not Implemented" },
	{ 502, "Bad Gateway" },
	{ 503, "Service Unavailable" },
	{ 504, "Gateway Timeout" },
	{ 505, "HTTP Version Not Supported" },
};

/* RFC 9110 7.6.1 and RFC 9112 9.6, plus the de facto Proxy-Connection. */
static const char *const http_hop_by_hop_fields[] = {
	"Connection",
	"Keep-Alive",
	"Proxy-Authenticate",
	"Proxy-Authorization",
	"Proxy-Connection",
	"TE",
	"Trailer",
	"Transfer-Encoding",
	"Upgrade",
};

/*
 * Fields the proxy relies on or sets itself: a Connection list naming them
 * does not make them hop-by-hop (RFC 9110 7.6.1 lets a proxy keep what it
 * must), so a client cannot make Host vanish, nor an upstream the length
 * of its body.
 */
static const char *const http_connection_protected_fields[] = {
	"Content-Length",
	"Expect",
	"Forwarded",
	"Host",
	"Via",
	"X-Forwarded-For",
	"X-Forwarded-Host",
	"X-Forwarded-Proto",
};

/*
 * Fields that tell a backend where a request came from. Backends that map
 * names to variables (CGI, WSGI, PHP) read '-' and '_' alike, so each is
 * matched in every such spelling.
 */
static const char *const http_forwarded_address_fields[] = {
	"Forwarded",
	"X-Client-IP",
	"X-Forwarded-For",
	"X-Forwarded-Host",
	"X-Forwarded-Port",
	"X-Forwarded-Prefix",
	"X-Forwarded-Proto",
	"X-Forwarded-Server",
	"X-Real-IP",
};

/* RFC 9110 6.5.1: fields that must not travel in a trailer section. */
static const char *const http_trailer_forbidden_fields[] = {
	"Authorization",
	"Cache-Control",
	"Content-Encoding",
	"Content-Length",
	"Content-Range",
	"Content-Type",
	"Cookie",
	"Expect",
	"Host",
	"Max-Forwards",
	"Set-Cookie",
};

const char *
http_reason(int status)
{
	size_t i;

	for (i = 0; i < sizeof(http_statuses) / sizeof(http_statuses[0]); i++)
		if (http_statuses[i].status == status)
			return http_statuses[i].reason;
	return "Unknown";
}

bool
http_name_eq(const char *a, size_t alen, const char *b)
{
	/*
	 * Most names compared differ in their first letter: that, without a
	 * call, settles it. Two bytes equal but for case bit 0x20 differ only
	 * in case, or are not letters and go on to the full comparison.
	 */
	if (alen == 0 || (a[0] | 0x20) != (b[0] | 0x20))
		return alen == 0 && b[0] == '\0';
	return strlen(b) == alen && strncasecmp(a, b, alen) == 0;
}

/* Is this name, in any case, one of a table's? */
static bool
http_name_in(const char *const *table, size_t n, const char *name, size_t len)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (http_name_eq(name, len, table[i]))
			return true;
	return false;
}
#define HTTP_NAME_IN(table, name, len) \
	http_name_in((table), sizeof(table) / sizeof((table)[0]), (name), (len))

bool
http_is_hop_by_hop(const char *name, size_t len)
{
	return HTTP_NAME_IN(http_hop_by_hop_fields, name, len);
}

bool
http_connection_protected(const char *name, size_t len)
{
	return HTTP_NAME_IN(http_connection_protected_fields, name, len);
}

/* Is this a forwarded-address field, in any spelling of '-' and '_'? */
bool
http_is_forwarded_address(const char *name, size_t len)
{
	const char *f;
	size_t i, j;

	for (i = 0; i < sizeof(http_forwarded_address_fields) /
	    sizeof(http_forwarded_address_fields[0]); i++) {
		f = http_forwarded_address_fields[i];
		if (strlen(f) != len)
			continue;
		for (j = 0; j < len; j++)
			if (!(tolower((unsigned char)name[j]) == tolower((unsigned char)f[j]) ||
			    ((name[j] == '_' || name[j] == '-') && f[j] == '-')))
				break;
		if (j == len)
			return true;
	}
	return false;
}

bool
http_trailer_forbidden(const char *name, size_t len)
{
	/* A trailer is not a header: where it came from is never said there. */
	return http_is_hop_by_hop(name, len) || http_is_forwarded_address(name, len) ||
	    HTTP_NAME_IN(http_trailer_forbidden_fields, name, len);
}

/* Does a comma-separated list (Connection, TE, Expect) hold this token? */
bool
http_list_has(const char *list, size_t list_len, const char *token, size_t token_len)
{
	const char *p = list, *end = list + list_len, *s, *e;

	while (p < end) {
		while (p < end && (*p == ' ' || *p == '\t' || *p == ','))
			p++;
		s = p;
		while (p < end && *p != ',')
			p++;
		e = p;
		while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
			e--;
		if ((size_t)(e - s) == token_len && strncasecmp(s, token, token_len) == 0)
			return true;
	}
	return false;
}

void
http_date(char buf[static 32])
{
	struct tm tm;
	time_t now = time(NULL);

	gmtime_r(&now, &tm);
	strftime(buf, 32, "%a, %d %b %Y %H:%M:%S GMT", &tm);
}

/* Append to a fixed buffer; -1, and nothing appended, when it does not fit. */
int
http_appendf(char *buf, size_t size, size_t *len, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf + *len, size - *len, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= size - *len) {
		buf[*len] = '\0';
		return -1;
	}
	*len += (size_t)n;
	return 0;
}

/*
 * Append strings, up to a NULL, as http_appendf does: for the paths taken
 * on every request, where a format costs more than the copying.
 */
int
http_cat(char *buf, size_t size, size_t *len, ...)
{
	const char *s;
	size_t used = *len, n;
	va_list ap;
	int r = 0;

	va_start(ap, len);
	while ((s = va_arg(ap, const char *)) != NULL) {
		n = strlen(s);
		if (n >= size - used) {
			r = -1;
			break;
		}
		memcpy(buf + used, s, n);
		used += n;
	}
	va_end(ap);
	if (r == 0)
		*len = used;
	buf[*len] = '\0';
	return r;
}

bool
http_body_forbidden(const char *method, int status)
{
	return strcmp(method, "HEAD") == 0 || (status >= 100 && status < 200) ||
	    status == 204 || status == 304;
}

/*
 * The one error responder: a complete response with its own length, always
 * closing the connection, and never echoing what the client sent.
 */
int
http_error(struct conn *c, int status, const char *why)
{
	char head[512], body[256], date[32];
	int hlen, blen;
	struct iovec iov[2];

	http_date(date);
	blen = snprintf(body, sizeof(body), "%d %s%s%s\n", status, http_reason(status),
	    why != NULL ? ": " : "", why != NULL ? why : "");
	if (blen < 0 || (size_t)blen >= sizeof(body))
		blen = (int)sizeof(body) - 1;
	hlen = snprintf(head, sizeof(head),
	    "HTTP/1.1 %d %s\r\n"
	    "Date: %s\r\n"
	    "Content-Type: text/plain; charset=utf-8\r\n"
	    "Content-Length: %d\r\n"
	    "Connection: close\r\n"
	    "\r\n", status, http_reason(status), date, blen);
	iov[0] = (struct iovec){ head, (size_t)hlen };
	iov[1] = (struct iovec){ body, (size_t)blen };
	/* RFC 9110 9.3.2: the answer to a HEAD has the length, never the body. */
	return conn_writev(c, iov, c->head_request ? 1 : 2);
}

/*
 * Response heads get the checks request heads get, wherever they come from:
 * libcurl's header callback (upstream.c) or the tunnel's own reading
 * (tunnel.c). Like the request reader, these return an error and never log.
 */

/* "HTTP/1.1 200 OK": HTTP/1.0 or 1.1, three digits, an optional reason. */
int
http_check_status_line(const char *line, size_t len, struct http_status_line *ret,
    const char **ret_why)
{
	size_t i;

	if (len < 12 || strncmp(line, "HTTP/1.", 7) != 0 || (line[7] != '0' && line[7] != '1') ||
	    line[8] != ' ' || line[9] < '1' || line[9] > '5' || line[10] < '0' ||
	    line[10] > '9' || line[11] < '0' || line[11] > '9' || (len > 12 && line[12] != ' ')) {
		*ret_why = "invalid status line from upstream";
		return -1;
	}
	/* A line end or NUL inside is a line that means two things (RFC 9112 2.2). */
	if (memchr(line, '\r', len) != NULL || memchr(line, '\n', len) != NULL ||
	    memchr(line, '\0', len) != NULL) {
		*ret_why = "invalid status line from upstream";
		return -1;
	}
	ret->status = (line[9] - '0') * 100 + (line[10] - '0') * 10 + (line[11] - '0');
	ret->http10 = line[7] == '0';
	ret->reason = len > 13 ? line + 13 : NULL;
	ret->reason_len = len > 13 ? len - 13 : 0;
	/* A reason with control bytes is not relayed; ours replaces it. */
	for (i = 0; i < ret->reason_len; i++)
		if ((unsigned char)ret->reason[i] < 0x20 || ret->reason[i] == 0x7f) {
			ret->reason = NULL;
			ret->reason_len = 0;
			break;
		}
	return 0;
}

/*
 * One field line of a response head, without its CRLF: a token, the colon
 * right after it (RFC 9112 5.1: whitespace before it is refused, not
 * removed), and a value without control bytes but HTAB. A line starting
 * with whitespace is obsolete folding (RFC 9112 5.2).
 */
int
http_check_response_field(const char *line, size_t len, size_t *ret_name_len,
    const char **ret_why)
{
	size_t i, n;
	unsigned char ch;

	if (len > 0 && (line[0] == ' ' || line[0] == '\t')) {
		*ret_why = "obsolete line folding from upstream";
		return -1;
	}
	for (n = 0; n < len && line[n] != ':'; n++)
		if (!http_is_tchar((unsigned char)line[n])) {
			*ret_why = line[n] == ' ' || line[n] == '\t' ?
			    "whitespace before the colon in an upstream header" :
			    "malformed upstream header name";
			return -1;
		}
	if (n == 0 || n == len) {
		*ret_why = "malformed upstream header";
		return -1;
	}
	for (i = n + 1; i < len; i++) {
		ch = (unsigned char)line[i];
		if ((ch < 0x20 && ch != '\t') || ch == 0x7f) {
			*ret_why = "control character in upstream header";
			return -1;
		}
	}
	*ret_name_len = n;
	return 0;
}

/*
 * llhttp callbacks. Spans may arrive in pieces across reads, and the read
 * buffer moves between reads, so every string is copied into the request's
 * arena as it comes. A callback that finds a broken rule records the status
 * and reason and returns -1, which stops the parser.
 */
static struct http_server *
server_of(llhttp_t *p)
{
	return p->data;
}

static int
http_fail(struct http_server *h, int status, const char *why)
{
	h->status = status;
	h->why = why;
	return -1;
}

static int
http_arena_add(struct http_server *h, const char *at, size_t len)
{
	struct http_request *req = h->req;

	if (len > sizeof(req->arena) - 1 - req->arena_len)
		return http_fail(h, 431, "request head too large");
	memcpy(req->arena + req->arena_len, at, len);
	req->arena_len += len;
	return 0;
}

static const char *
http_arena_end(struct http_server *h, size_t mark)
{
	struct http_request *req = h->req;

	req->arena[req->arena_len++] = '\0';
	return req->arena + mark;
}

static bool
http_is_tchar(unsigned char ch)
{
	/* RFC 9110 5.6.2 token characters */
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
	    (ch >= '0' && ch <= '9') || (ch != '\0' && strchr("!#$%&'*+-.^_`|~", ch) != NULL);
}

static int
on_message_begin(llhttp_t *p)
{
	struct http_server *h = server_of(p);

	h->url_len = h->field_bytes = h->nhosts = h->ntes = 0;
	h->crlf_left = 0;
	h->in_trailers = false;
	h->ext_open = h->ext_more = false;
	return 0;
}

static int
on_url(llhttp_t *p, const char *at, size_t len)
{
	struct http_server *h = server_of(p);
	size_t i;

	/* llhttp's URL table lets HTAB and FF through; a target has no blanks. */
	for (i = 0; i < len; i++)
		if ((unsigned char)at[i] <= ' ' || at[i] == 0x7f)
			return http_fail(h, 400, "whitespace or control character in the target");

	if (h->url_len == 0)
		h->mark = h->req->arena_len;
	h->url_len += len;
	if (h->url_len > HTTP_MAX_REQUEST_LINE)
		return http_fail(h, 414, "request target too long");
	return http_arena_add(h, at, len);
}

static int
on_url_complete(llhttp_t *p)
{
	struct http_server *h = server_of(p);

	if (h->url_len == 0)
		h->mark = h->req->arena_len;
	h->req->target = http_arena_end(h, h->mark);
	h->req->target_len = h->url_len;
	return 0;
}

static int
on_method_complete(llhttp_t *p)
{
	struct http_server *h = server_of(p);

	h->req->method_id = p->method;
	h->req->method = llhttp_method_name((llhttp_method_t)p->method);
	h->conn->head_request = p->method == HTTP_HEAD;
	return 0;
}

static int
on_version_complete(llhttp_t *p)
{
	struct http_server *h = server_of(p);

	if (p->http_major != 1 || p->http_minor > 1)
		return http_fail(h, 505, "only HTTP/1.0 and HTTP/1.1 are supported");
	return 0;
}

static int
on_header_field(llhttp_t *p, const char *at, size_t len)
{
	struct http_server *h = server_of(p);
	size_t i;

	if (!h->field_open) {
		h->field_open = true;
		h->name_mark = h->req->arena_len;
		h->name_len = 0;
	}
	for (i = 0; i < len; i++)
		if (!http_is_tchar((unsigned char)at[i]))
			return http_fail(h, 400, at[i] == ' ' || at[i] == '\t' ?
			    "whitespace in or after a header name" : "invalid character in a header name");
	h->name_len += len;
	h->field_bytes += len;
	if (h->field_bytes > HTTP_MAX_HEADER_BYTES)
		return http_fail(h, 431, "header fields too large");
	return http_arena_add(h, at, len);
}

static int
on_header_field_complete(llhttp_t *p)
{
	struct http_server *h = server_of(p);

	h->field_open = false;
	if (h->name_len == 0)
		return http_fail(h, 400, "empty header name");
	(void)http_arena_end(h, h->name_mark);
	return 0;
}

static int
on_header_value(llhttp_t *p, const char *at, size_t len)
{
	struct http_server *h = server_of(p);
	size_t i;
	unsigned char ch;

	if (!h->value_open) {
		h->value_open = true;
		h->mark = h->req->arena_len;
	}
	for (i = 0; i < len; i++) {
		ch = (unsigned char)at[i];
		if (ch == '\r' || ch == '\n')
			return http_fail(h, 400, "obsolete line folding");
		if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
			return http_fail(h, 400, "control character in a header value");
	}
	h->field_bytes += len;
	if (h->field_bytes > HTTP_MAX_HEADER_BYTES)
		return http_fail(h, 431, "header fields too large");
	return http_arena_add(h, at, len);
}

static bool
http_is_hex(char ch)
{
	return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f') || (ch >= 'A' && ch <= 'F');
}

/* RFC 3986 2.3 and 2.2: unreserved and sub-delims. */
static bool
http_is_unreserved_or_sub_delim(char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
	    (ch != '\0' && strchr("-._~!$&'()*+,;=", ch) != NULL);
}

/*
 * RFC 9110 7.2 and RFC 3986 3.2.2: Host = uri-host [ ":" port ]. uri-host
 * is an IP literal in brackets (hex digits, ':' and '.' inside), or a
 * reg-name (an IPv4 address is one too) of unreserved characters,
 * sub-delims and well-formed percent-escapes, never empty for http (RFC
 * 9110 4.2.1). port is digits, at most five. No list, userinfo or path.
 */
static bool
http_valid_host(const char *v, size_t len)
{
	size_t i = 0, port;

	if (len > 0 && v[0] == '[') {
		for (i = 1; i < len && v[i] != ']'; i++)
			if (!http_is_hex(v[i]) && v[i] != ':' && v[i] != '.')
				return false;
		if (i == len || i == 1)
			return false;
		i++;
	} else {
		for (; i < len && v[i] != ':'; i++) {
			if (v[i] == '%' && i + 2 < len && http_is_hex(v[i + 1]) && http_is_hex(v[i + 2]))
				i += 2;
			else if (!http_is_unreserved_or_sub_delim(v[i]))
				return false;
		}
		if (i == 0)
			return false;
	}
	if (i == len)
		return true;
	if (v[i++] != ':')
		return false;
	for (port = 0; i < len; i++, port++)
		if (v[i] < '0' || v[i] > '9' || port == 5)
			return false;
	return true;
}

/*
 * The only transfer coding we implement is chunked, alone and once. Other
 * codings in front of it would reach the upstream undone once we reframe
 * the body, so they are refused, not passed on.
 */
static int
http_check_transfer_encoding(struct http_server *h, const char *value, size_t len)
{
	const char *last;

	if (++h->ntes > 1)
		return http_fail(h, 400, "more than one Transfer-Encoding field");
	if (http_name_eq(value, len, "chunked"))
		return 0;
	last = memrchr(value, ',', len);
	last = last != NULL ? last + 1 : value;
	while (*last == ' ' || *last == '\t')
		last++;
	if (strcasecmp(last, "chunked") == 0 && !http_list_has(value, (size_t)(last - value),
	    "chunked", 7))
		return http_fail(h, 501, "transfer coding not implemented");
	return http_fail(h, 400, "Transfer-Encoding other than chunked");
}

static int
on_header_value_complete(llhttp_t *p)
{
	struct http_server *h = server_of(p);
	struct http_request *req = h->req;
	struct http_header *hd;
	const char *value;
	size_t len;

	if (!h->value_open)
		h->mark = req->arena_len;
	h->value_open = false;
	len = req->arena_len - h->mark;
	while (len > 0 && (req->arena[h->mark + len - 1] == ' ' ||
	    req->arena[h->mark + len - 1] == '\t'))
		len--;
	req->arena_len = h->mark + len;
	value = http_arena_end(h, h->mark);

	if (h->in_trailers) {
		if (req->ntrailers == HTTP_MAX_TRAILERS)
			return http_fail(h, 431, "too many trailer fields");
		hd = &req->trailers[req->ntrailers++];
	} else {
		if (req->nheaders == HTTP_MAX_HEADERS)
			return http_fail(h, 431, "too many header fields");
		hd = &req->headers[req->nheaders++];
	}
	hd->name = req->arena + h->name_mark;
	hd->name_len = h->name_len;
	hd->value = value;
	hd->value_len = len;
	h->field_bytes += 4;    /* ": " and CRLF count against the limit */

	if (h->in_trailers)
		return 0;
	if (http_name_eq(hd->name, hd->name_len, "Host")) {
		if (++h->nhosts > 1)
			return http_fail(h, 400, "more than one Host field");
		if (!http_valid_host(value, len))
			return http_fail(h, 400, "Host is not a host[:port]");
		req->host = value;
	} else if (http_name_eq(hd->name, hd->name_len, "Transfer-Encoding")) {
		if (http_check_transfer_encoding(h, value, len) < 0)
			return -1;
	} else if (http_name_eq(hd->name, hd->name_len, "Expect")) {
		if (!http_name_eq(value, len, "100-continue"))
			return http_fail(h, 417, "unsupported expectation");
		req->expect_continue = true;
	}
	return 0;
}

/*
 * RFC 3986 3.3 and RFC 9112 3.2: the path is segments of pchar (unreserved,
 * well-formed percent-escapes, sub-delims, ':' and '@') between slashes.
 * Anything else (a backslash, quotes, braces, a raw non-ASCII byte, a
 * broken escape) means different things to different backends, so it is
 * refused, not passed on; so is an escaped NUL, which cuts a path short
 * wherever it is decoded. The query is the upstream's to interpret and
 * passes byte for byte (the reader refused blanks and controls already).
 * A fragment is never part of a request target.
 */
static int
http_check_path(struct http_server *h, const char *p)
{
	for (; *p != '\0' && *p != '?'; p++) {
		if (*p == '%') {
			if (!http_is_hex(p[1]) || !http_is_hex(p[2]))
				return http_fail(h, 400, "malformed percent-escape in the path");
			if (p[1] == '0' && p[2] == '0')
				return http_fail(h, 400, "escaped NUL in the path");
			p += 2;
		} else if (*p != '/' && *p != ':' && *p != '@' && !http_is_unreserved_or_sub_delim(*p))
			return http_fail(h, 400, *p == '#' ? "fragment in the request target" :
			    "character not allowed in a path");
	}
	if (strchr(p, '#') != NULL)
		return http_fail(h, 400, "fragment in the request target");
	return 0;
}

/* An absolute-form target must name the same authority as Host. */
static int
http_check_authority(struct http_server *h)
{
	struct http_request *req = h->req;
	const char *t = req->target, *auth, *end;

	if (strcmp(t, "*") == 0)
		return 0;
	if (t[0] == '/')
		return http_check_path(h, t);
	if (strncasecmp(t, "http://", 7) == 0)
		auth = t + 7;
	else if (strncasecmp(t, "https://", 8) == 0)
		auth = t + 8;
	else
		return http_fail(h, 400, "request target is not in origin or absolute form");
	end = auth + strcspn(auth, "/?#");
	/* RFC 9110 4.2.4: userinfo in an http URI is an error. */
	if (memchr(auth, '@', (size_t)(end - auth)) != NULL)
		return http_fail(h, 400, "userinfo in the request target");
	if (req->host == NULL || !http_name_eq(auth, (size_t)(end - auth), req->host))
		return http_fail(h, 400, "absolute-form target differs from Host");
	return http_check_path(h, end);
}

static int
on_headers_complete(llhttp_t *p)
{
	struct http_server *h = server_of(p);
	struct http_request *req = h->req;

	if (h->in_trailers)
		return 0;
	req->version = p->http_major * 10 + p->http_minor;
	req->chunked = (p->flags & F_CHUNKED) != 0;
	req->content_length = (p->flags & F_CONTENT_LENGTH) ? (int64_t)p->content_length : -1;
	req->has_body = req->chunked || req->content_length > 0;
	req->keep_alive = llhttp_should_keep_alive(p);
	req->upgrade = p->upgrade;

	if (p->http_major != 1 || p->http_minor > 1)
		return http_fail(h, 505, "only HTTP/1.0 and HTTP/1.1 are supported");
	/*
	 * RFC 9112 6.1: Transfer-Encoding in an HTTP/1.0 message is faulty
	 * framing (1.0 has no chunked coding); an HTTP/1.0 hop behind the
	 * client may have framed the body by its close instead.
	 */
	if (req->version == 10 && h->ntes > 0)
		return http_fail(h, 400, "Transfer-Encoding in an HTTP/1.0 request");
	if (p->method == HTTP_CONNECT)
		return http_fail(h, 405, "CONNECT is not supported");
	if (req->version == 11 && req->host == NULL)
		return http_fail(h, 400, "HTTP/1.1 request without Host");
	if (http_check_authority(h) < 0)
		return -1;
	if (req->content_length > 0 && (uint64_t)req->content_length > h->max_body)
		return http_fail(h, 413, "body larger than the configured maximum");
	h->head_done = true;
	h->in_trailers = true;
	return HPE_PAUSED;
}

/*
 * llhttp 8.1 steps over the two bytes after a chunk's data without looking
 * at them, so "5\r\nhelloXX" would pass and the bytes after could start a
 * second request upstream. Check them here: from the end of the data in
 * this feed, or at the start of the next feed when the data ended a read.
 */
static int
http_check_chunk_end(struct http_server *h, const char *pos, const char *end)
{
	static const char crlf[] = "\r\n";

	while (h->crlf_left > 0 && pos < end) {
		if (*pos++ != crlf[2 - h->crlf_left])
			return http_fail(h, 400, "missing CRLF after chunk data");
		h->crlf_left--;
	}
	return 0;
}

static int
on_body(llhttp_t *p, const char *at, size_t len)
{
	struct http_server *h = server_of(p);

	h->body_seen += len;
	if (h->body_seen > h->max_body)
		return http_fail(h, 413, "body larger than the configured maximum");
	/* Never more than fed, and http_read_body() feeds at most out_room. */
	memcpy(h->out + h->out_len, at, len);
	h->out_len += len;
	if ((p->flags & F_CHUNKED) && p->content_length == 0) {
		h->crlf_left = 2;
		return http_check_chunk_end(h, at + len, h->feed_end);
	}
	return 0;
}

/* Refuse an oversized chunk when its size line arrives, not after its data. */
static int
on_chunk_header(llhttp_t *p)
{
	struct http_server *h = server_of(p);

	if (p->content_length > h->max_body - h->body_seen)
		return http_fail(h, 413, "body larger than the configured maximum");
	return 0;
}

/*
 * llhttp 8.1 loses the ';' that ends a token-valued chunk extension: it
 * consumes it with the value, then expects another ';' or the CR, so
 * "4;a=b;c=d" is refused at 'c' although RFC 9112 7.1.1 allows any number
 * of extensions (a quoted value, or a name alone, is followed correctly).
 * The value's span ends at its terminator: when that is a ';' after a
 * token, the parser is paused as the value completes, and http_feed()
 * gives it the ';' again before the rest. Nothing else changes: names and
 * values are still llhttp's to check.
 */
static int
on_chunk_extension_value(llhttp_t *p, const char *at, size_t len)
{
	struct http_server *h = server_of(p);

	if (!h->ext_open) {
		h->ext_open = true;
		h->ext_quoted = len > 0 && at[0] == '"';
	}
	/* The last piece of the span stops at the byte that ended it. */
	h->ext_more = !h->ext_quoted && at + len < h->feed_end && at[len] == ';';
	return 0;
}

static int
on_chunk_extension_value_complete(llhttp_t *p)
{
	struct http_server *h = server_of(p);

	h->ext_open = false;
	return h->ext_more ? HPE_PAUSED : 0;
}

static int
on_message_complete(llhttp_t *p)
{
	struct http_server *h = server_of(p);

	h->body_done = true;
	return HPE_PAUSED;
}

void
http_server_init(struct http_server *h, struct conn *c, uint64_t max_body)
{
	memset(h, 0, sizeof(*h));
	h->conn = c;
	h->max_body = max_body;
	llhttp_settings_init(&h->settings);
	h->settings.on_message_begin = on_message_begin;
	h->settings.on_method_complete = on_method_complete;
	h->settings.on_url = on_url;
	h->settings.on_url_complete = on_url_complete;
	h->settings.on_version_complete = on_version_complete;
	h->settings.on_header_field = on_header_field;
	h->settings.on_header_field_complete = on_header_field_complete;
	h->settings.on_header_value = on_header_value;
	h->settings.on_header_value_complete = on_header_value_complete;
	h->settings.on_headers_complete = on_headers_complete;
	h->settings.on_body = on_body;
	h->settings.on_chunk_header = on_chunk_header;
	h->settings.on_chunk_extension_value = on_chunk_extension_value;
	h->settings.on_chunk_extension_value_complete = on_chunk_extension_value_complete;
	h->settings.on_message_complete = on_message_complete;
	llhttp_init(&h->parser, HTTP_REQUEST, &h->settings);
	h->parser.data = h;
	h->body_done = true;
}

/* The status for a parse error no callback explained. */
static int
http_parse_error(struct http_server *h, llhttp_errno_t err, const char *pos)
{
	if (h->status != 0)
		return -1;
	h->why = llhttp_get_error_reason(&h->parser);
	switch (err) {
	case HPE_INVALID_METHOD:
		/* A well-formed token we do not know, or garbage? */
		h->status = pos != NULL && http_is_tchar((unsigned char)*pos) ? 501 : 400;
		h->why = h->status == 501 ? "unknown method" : "malformed request line";
		break;
	case HPE_INVALID_VERSION:
		/*
		 * An unsupported number is 505; a broken line after a good one
		 * ("Expected CRLF after version") is 400. llhttp tells the two
		 * apart only by its (constant) reason.
		 */
		h->status = strcmp(h->why, "Invalid HTTP version") == 0 ? 505 : 400;
		break;
	case HPE_INVALID_TRANSFER_ENCODING:
	case HPE_UNEXPECTED_CONTENT_LENGTH:
	case HPE_INVALID_CONTENT_LENGTH:
	case HPE_INVALID_CHUNK_SIZE:
	default:
		h->status = 400;
		break;
	}
	return -1;
}

/*
 * llhttp 8 accepts obsolete line folding, which a proxy must not pass on
 * (RFC 9112 5.2). It shows in the raw head as a line starting with SP or
 * HTAB, so look at the bytes the parser took as part of the head.
 */
static int
http_check_folding(struct http_server *h, const char *p, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++) {
		if (h->head_prev == '\n' && (p[i] == ' ' || p[i] == '\t'))
			return http_fail(h, 400, "obsolete line folding");
		h->head_prev = p[i];
	}
	return 0;
}

/*
 * Feed up to len buffered bytes to the parser. Returns 0 when they were
 * consumed or the parser paused (at the end of a head or a message), -1 on a
 * protocol error with h->status and h->why set.
 */
static int
http_feed(struct http_server *h, size_t len)
{
	struct conn *c = h->conn;
	const char *data = c->buf + c->off;
	llhttp_errno_t err;
	size_t used;

	if (h->crlf_left > 0 && http_check_chunk_end(h, data, data + len) < 0) {
		h->closing = true;
		return -1;
	}
	h->feed_end = data + len;
	err = llhttp_execute(&h->parser, data, len);
	if (err == HPE_OK)
		used = len;
	else if (err == HPE_PAUSED) {
		used = (size_t)(llhttp_get_error_pos(&h->parser) - data);
		llhttp_resume(&h->parser);
		if (h->ext_more) {
			/* The ';' llhttp took with a token value (on_chunk_extension_value). */
			static const char semicolon[] = ";";

			h->ext_more = false;
			h->feed_end = semicolon + 1;
			err = llhttp_execute(&h->parser, semicolon, 1);
			if (err != HPE_OK) {
				h->closing = true;
				return http_parse_error(h, err, NULL);
			}
		}
	} else if (err == HPE_PAUSED_UPGRADE) {
		/*
		 * After a request with Upgrade. If it was answered 101, the caller
		 * has taken the connection over and reads no further request; if
		 * not, the protocol did not switch and what follows is HTTP.
		 */
		used = (size_t)(llhttp_get_error_pos(&h->parser) - data);
		llhttp_resume_after_upgrade(&h->parser);
	} else {
		h->closing = true;
		return http_parse_error(h, err, llhttp_get_error_pos(&h->parser));
	}
	c->off += used;
	if (!h->head_counted) {
		h->head_counted = h->head_done;
		if (http_check_folding(h, data, used) < 0) {
			h->closing = true;
			return -1;
		}
		h->head_bytes += used;
		if (h->head_bytes > HTTP_MAX_REQUEST_LINE + HTTP_MAX_HEADER_BYTES) {
			h->closing = true;
			return http_fail(h, 431, "request head too large");
		}
	}
	return 0;
}

/*
 * Read the next request head. Returns 1 with *req filled in, 0 when the
 * client closed or idled out between requests, -1 with h->status and h->why
 * set when the request cannot be served (the caller answers it and closes).
 */
int
http_read_head(struct http_server *h, struct http_request *req)
{
	struct conn *c = h->conn;
	int64_t deadline = conn_now_usec() + HTTP_IDLE_TIMEOUT_MS * 1000LL;
	bool started = false;
	ssize_t n;

	if (h->closing || !h->body_done)
		return 0;
	req->nheaders = req->ntrailers = req->arena_len = 0;
	req->host = NULL;
	req->scheme = conn_scheme(h->conn);
	req->trusted = h->conn->trusted;
	req->method = "-";         /* until the parser has seen one */
	req->method_id = -1;
	req->target = "";
	req->target_len = 0;
	req->expect_continue = false;
	h->conn->head_request = false;
	h->req = req;
	h->head_done = h->body_done = h->continue_sent = false;
	h->head_bytes = 0;
	h->head_prev = '\0';
	h->head_counted = false;
	h->body_seen = 0;
	h->status = 0;
	h->why = NULL;
	h->field_open = h->value_open = false;

	while (!h->head_done) {
		if (conn_pending(c) > 0) {
			if (!started) {
				started = true;
				deadline = conn_now_usec() + HTTP_HEAD_TIMEOUT_MS * 1000LL;
			}
			if (http_feed(h, conn_pending(c)) < 0)
				return -1;
			continue;
		}
		n = conn_fill(c, deadline);
		if (n > 0)
			continue;
		h->closing = true;
		if (!started && (n == 0 || n == -ETIMEDOUT))
			return 0;
		if (n == -ETIMEDOUT)
			return http_fail(h, 408, "request head not received in time");
		return http_fail(h, 400, n == 0 ? "client closed the connection mid-head" :
		    "read error");
	}

	if (!req->has_body) {
		/* Let the parser finish a bodiless message now, not at the next read. */
		if (http_feed(h, 0) < 0)
			return -1;
	}
	return 1;
}

int
http_send_continue(struct http_server *h)
{
	static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";

	if (h->continue_sent || !h->req->expect_continue || h->req->version < 11)
		return 0;
	h->continue_sent = true;
	return conn_write(h->conn, cont, sizeof(cont) - 1);
}

/*
 * The final answer to the current request is going out: a 100 Continue
 * can no longer be sent, as it would land inside that answer. A client
 * still waiting for one sends its body once its own wait is over.
 */
void
http_answer_begun(struct http_server *h)
{
	h->continue_sent = true;
}

/*
 * Read up to room bytes of the current request's body, decoded. The client
 * may be silent until stall_usec; waiting for it is optional. Returns the
 * byte count, 0 at the end of the body, HTTP_BODY_LATER when not waiting and
 * nothing has come yet, or -1 with h->status and h->why set.
 */
static ssize_t
http_body(struct http_server *h, void *buf, size_t room, int64_t stall_usec, bool wait)
{
	struct conn *c = h->conn;
	size_t len;
	ssize_t n;

	if (room == 0)
		return 0;
	if (http_send_continue(h) < 0) {
		h->closing = true;
		return http_fail(h, 400, "client gone before the body");
	}
	h->out = buf;
	h->out_room = room;
	h->out_len = 0;
	while (!h->body_done) {
		if (conn_pending(c) > 0) {
			/* Decoding only shrinks: feeding room bytes yields at most room. */
			len = conn_pending(c) < room ? conn_pending(c) : room;
			if (http_feed(h, len) < 0)
				return -1;
			if (h->out_len > 0)
				return (ssize_t)h->out_len;
			continue;
		}
		/* Not waiting: a deadline already past reads once, and does not poll. */
		n = conn_fill(c, wait ? stall_usec : 0);
		if (n > 0)
			continue;
		if (n == -ETIMEDOUT && !wait && conn_now_usec() < stall_usec)
			return HTTP_BODY_LATER;
		h->closing = true;
		if (n == -ETIMEDOUT)
			return http_fail(h, 408, "request body stalled");
		return http_fail(h, 400, n == 0 ? "client closed the connection mid-body" :
		    "read error");
	}
	return (ssize_t)h->out_len;
}

/* The body as above, waiting for the client as long as a body may be silent. */
ssize_t
http_read_body(struct http_server *h, void *buf, size_t room)
{
	return http_body(h, buf, room, conn_now_usec() + HTTP_BODY_TIMEOUT_MS * 1000LL, true);
}

/*
 * The body bytes at hand, without waiting: HTTP_BODY_LATER when there are
 * none, until the client has been silent since since_usec for longer than a
 * body may be (408).
 */
ssize_t
http_read_body_ready(struct http_server *h, void *buf, size_t room, int64_t since_usec)
{
	return http_body(h, buf, room, since_usec + HTTP_BODY_TIMEOUT_MS * 1000LL, false);
}
