/*
 * fuzz_http.c - libFuzzer target: the request reader of src/http.c, driven
 * exactly as gfproxy drives it, over a real socket.
 *
 * The input is the byte stream a client sends. It goes into one end of a
 * socketpair, that end is shut for writing, and http_read_head() and
 * http_read_body() read the other end through conn_fill(), so the reader
 * sees the data and then EOF, never a wait. Every refusal goes through
 * http_error(), as in proxy.c, and what the reader hands on is checked
 * against the promises the rest of gfproxy relies on; a broken promise is
 * an abort(), which libFuzzer reports with the input.
 *
 * The first byte is not part of the stream: it picks --max-body and the
 * size of the body buffer, so limits and piecewise reads get fuzzed too.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "http.h"
#include "fuzz_conn.h"

#define FUZZ_MAX_INPUT  (64 * 1024)

static void
fuzz_fail(const char *what)
{
	fprintf(stderr, "fuzz_http: broken invariant: %s\n", what);
	abort();
}

static int
fuzz_is_tchar(unsigned char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
	    (ch >= '0' && ch <= '9') || (ch != '\0' && strchr("!#$%&'*+-.^_`|~", ch) != NULL);
}

/*
 * Header names and values go to libcurl verbatim (CURLOPT_HTTPHEADER):
 * no CR, LF, NUL or other control byte may survive, names are tokens,
 * values carry no leading or trailing whitespace.
 */
static void
fuzz_check_fields(const struct http_header *f, size_t n)
{
	size_t i, j;
	unsigned char ch;

	for (i = 0; i < n; i++) {
		if (f[i].name == NULL || f[i].value == NULL)
			fuzz_fail("field without name or value");
		if (f[i].name_len == 0)
			fuzz_fail("empty field name");
		if (strlen(f[i].name) != f[i].name_len || strlen(f[i].value) != f[i].value_len)
			fuzz_fail("field length disagrees with its NUL terminator");
		for (j = 0; j < f[i].name_len; j++)
			if (!fuzz_is_tchar((unsigned char)f[i].name[j]))
				fuzz_fail("non-token byte in a field name");
		for (j = 0; j < f[i].value_len; j++) {
			ch = (unsigned char)f[i].value[j];
			if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
				fuzz_fail("control byte in a field value");
		}
		if (f[i].value_len > 0 && (f[i].value[0] == ' ' || f[i].value[0] == '\t' ||
		    f[i].value[f[i].value_len - 1] == ' ' || f[i].value[f[i].value_len - 1] == '\t'))
			fuzz_fail("field value with surrounding whitespace");
	}
}

static void
fuzz_check_request(const struct http_request *req)
{
	size_t i, hosts = 0, cls = 0, tes = 0;
	unsigned char ch;

	if (req->method == NULL || req->target == NULL)
		fuzz_fail("request without method or target");
	if (req->version != 10 && req->version != 11)
		fuzz_fail("version other than 1.0 or 1.1 accepted");
	if (strlen(req->target) != req->target_len || req->target_len == 0)
		fuzz_fail("target length disagrees with its NUL terminator");
	if (req->target_len > HTTP_MAX_REQUEST_LINE)
		fuzz_fail("target over the request-line limit");
	for (i = 0; i < req->target_len; i++) {
		ch = (unsigned char)req->target[i];
		if (ch <= 0x20 || ch == 0x7f)
			fuzz_fail("control byte or space in the target");
	}
	if (strcmp(req->method, "CONNECT") == 0)
		fuzz_fail("CONNECT accepted");
	if (req->nheaders > HTTP_MAX_HEADERS || req->ntrailers > HTTP_MAX_TRAILERS)
		fuzz_fail("more fields than the limit");
	fuzz_check_fields(req->headers, req->nheaders);
	for (i = 0; i < req->nheaders; i++) {
		if (http_name_eq(req->headers[i].name, req->headers[i].name_len, "Host"))
			hosts++;
		else if (http_name_eq(req->headers[i].name, req->headers[i].name_len, "Content-Length"))
			cls++;
		else if (http_name_eq(req->headers[i].name, req->headers[i].name_len,
		    "Transfer-Encoding"))
			tes++;
	}
	if (hosts > 1)
		fuzz_fail("more than one Host accepted");
	if (req->version == 11 && hosts == 0)
		fuzz_fail("HTTP/1.1 without Host accepted");
	if (cls > 1)
		fuzz_fail("more than one Content-Length accepted");
	if (cls > 0 && tes > 0)
		fuzz_fail("Content-Length with Transfer-Encoding accepted");
	if (req->chunked && req->content_length >= 0)
		fuzz_fail("chunked and a Content-Length at once");
	if (tes > 0 && !req->chunked && !req->upgrade)
		fuzz_fail("Transfer-Encoding accepted without chunked framing");
	if (req->has_body != (req->chunked || req->content_length > 0))
		fuzz_fail("has_body disagrees with the framing");
}

static int
fuzz_known_status(int status)
{
	return status >= 400 && status <= 599 && strcmp(http_reason(status), "Unknown") != 0;
}

/* Serve one input the way proxy.c's main loop does. */
static void
fuzz_serve(struct conn *c, uint64_t max_body, size_t room)
{
	static struct http_server h;
	static struct http_request req;
	static char body[8192];
	uint64_t total;
	ssize_t n;
	int r;

	http_server_init(&h, c, max_body);
	while ((r = http_read_head(&h, &req)) != 0) {
		if (r < 0) {
			if (!fuzz_known_status(h.status))
				fuzz_fail("refusal without a known 4xx/5xx status");
			http_error(c, h.status, h.why);
			return;
		}
		fuzz_check_request(&req);
		if (req.content_length > 0 && (uint64_t)req.content_length > max_body)
			fuzz_fail("Content-Length over --max-body accepted");
		total = 0;
		while ((n = http_read_body(&h, body, room)) > 0) {
			if ((size_t)n > room)
				fuzz_fail("body read returned more than the room given");
			total += (uint64_t)n;
			if (total > max_body)
				fuzz_fail("body over --max-body handed on");
		}
		if (n < 0) {
			if (!fuzz_known_status(h.status))
				fuzz_fail("body refusal without a known 4xx/5xx status");
			http_error(c, h.status, h.why);
			return;
		}
		if (req.content_length >= 0 && total != (uint64_t)req.content_length)
			fuzz_fail("body length differs from Content-Length");
		fuzz_check_fields(req.trailers, req.ntrailers);
		if (!req.keep_alive)
			return;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct conn c;
	static const uint64_t max_bodies[] = { 0, 1, 16, 1000, HTTP_MAX_BODY_DEFAULT };
	uint64_t max_body;
	size_t room;
	int sv[2];

	if (size < 1 || size > FUZZ_MAX_INPUT + 1)
		return -1;
	max_body = max_bodies[data[0] % 5];
	if (max_body == 0)
		max_body = HTTP_MAX_BODY_DEFAULT;
	room = (size_t)(data[0] >> 3) * 256 + 1;    /* 1 .. 7937 bytes */
	data++, size--;

	fuzz_conn(&c, sv, data, size, "0");
	fuzz_serve(&c, max_body, room);

	close(sv[0]);
	close(sv[1]);
	return 0;
}
