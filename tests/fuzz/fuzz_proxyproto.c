/*
 * fuzz_proxyproto.c - libFuzzer target: the PROXY protocol header reader in
 * src/proxyproto.c, on its own and through the connection's buffer.
 *
 * The input is what a balancer sends first. proxyproto_parse() sees it
 * whole and cut at every length up to FUZZ_PREFIXES (and just around the
 * header's end), each time in a buffer of exactly that size, so ASan
 * catches any read past it; proxyproto_read() then reads it from a
 * socketpair shut after it, as gfproxy reads a client. abort() when:
 *   - a result is not -1 (with a reason), 0, or a length within the input
 *     and the bounds (PROXYPROTO_V1_MAX for v1, PROXYPROTO_V2_MAX for v2);
 *   - a prefix of a valid header is refused, or parses to anything but
 *     "more bytes"; a longer input changes a decision already taken;
 *   - a client address is not one inet_pton() takes back (or "unix"), or
 *     its port is not a decimal number up to 65535;
 *   - proxyproto_read() disagrees with proxyproto_parse(), leaves other
 *     bytes than those after the header for the HTTP reader, or changes
 *     the peer when the header names no client.
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "proxyproto.h"
#include "fuzz_conn.h"

#define FUZZ_PREFIXES 256   /* every cut up to this length is parsed too */

static void
fuzz_fail(const char *what, size_t at)
{
	fprintf(stderr, "fuzz_proxyproto: broken invariant: %s (at %zu)\n", what, at);
	abort();
}

/* proxyproto_parse() on the first len bytes, in a buffer of exactly that size. */
static int
fuzz_parse(const uint8_t *data, size_t len, struct proxyproto *ret)
{
	unsigned char *copy = malloc(len > 0 ? len : 1);
	const char *why = NULL;
	int r;

	if (copy == NULL)
		abort();
	memcpy(copy, data, len);
	r = proxyproto_parse(copy, len, ret, &why);
	free(copy);
	if (r < -1 || (size_t)(r > 0 ? r : 0) > len)
		fuzz_fail("result out of range", len);
	if (r == -1 && (why == NULL || *why == '\0'))
		fuzz_fail("refused without a reason", len);
	if (r > 0 && r > (data[0] == 'P' ? PROXYPROTO_V1_MAX : PROXYPROTO_V2_MAX))
		fuzz_fail("header longer than its bound", len);
	return r;
}

static void
fuzz_check_client(const struct proxyproto *pp)
{
	unsigned char a[16];
	size_t n = strspn(pp->port, "0123456789");

	if (pp->source != PROXYPROTO_CLIENT)
		return;
	if (strcmp(pp->addr, "unix") != 0 && inet_pton(AF_INET, pp->addr, a) != 1 &&
	    inet_pton(AF_INET6, pp->addr, a) != 1)
		fuzz_fail("client address that is not one", 0);
	if (n == 0 || n > 5 || pp->port[n] != '\0' || atol(pp->port) > 65535)
		fuzz_fail("client port that is not one", 0);
}

/* The same input through proxyproto_read(), from a socketpair. */
static void
fuzz_read(const uint8_t *data, size_t size, int r, const struct proxyproto *pp)
{
	static struct conn c;
	const char *why = NULL;
	int sv[2], rr;

	fuzz_conn(&c, sv, data, size, "1");
	rr = proxyproto_read(&c, &why);
	if (rr != (size == 0 ? 0 : r > 0 ? 1 : -1))
		fuzz_fail("proxyproto_read() disagrees with proxyproto_parse()", size);
	if (rr < 0 && why == NULL)
		fuzz_fail("proxyproto_read() refused without a reason", size);
	if (rr == 1) {
		/* Fuzz inputs fit in the buffer: all of them was read. */
		if (c.off != (size_t)r || conn_pending(&c) != size - (size_t)r ||
		    memcmp(c.buf + c.off, data + r, size - (size_t)r) != 0)
			fuzz_fail("the bytes after the header are not what is left", (size_t)r);
		if (pp->source == PROXYPROTO_CLIENT ?
		    strcmp(c.peer_addr, pp->addr) != 0 || strcmp(c.peer_port, pp->port) != 0 ||
		    strcmp(c.proxy_addr, "fuzz") != 0 || strcmp(c.proxy_port, "1") != 0 :
		    strcmp(c.peer_addr, "fuzz") != 0 || c.proxy_addr[0] != '\0')
			fuzz_fail("peer not what the header says", (size_t)r);
	}
	close(sv[0]);
	close(sv[1]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct proxyproto pp, pk;
	size_t k, end;
	int r, rk, prev = 0;

	if (size > CONN_BUFSIZE)
		return -1;
	memset(&pp, 0, sizeof(pp));
	r = fuzz_parse(data, size, &pp);
	fuzz_check_client(&pp);

	/* Every cut up to FUZZ_PREFIXES, and the few around the header's end. */
	end = size < FUZZ_PREFIXES ? size : FUZZ_PREFIXES;
	for (k = 0; k <= size; k++) {
		if (k > end && !(r > 0 && k + 1 >= (size_t)r && k <= (size_t)r + 1))
			continue;
		memset(&pk, 0, sizeof(pk));
		rk = fuzz_parse(data, k, &pk);
		if (r > 0 && k < (size_t)r && rk != 0)
			fuzz_fail("a prefix of a valid header is not 'more bytes'", k);
		if (r > 0 && k >= (size_t)r && (rk != r || pk.source != pp.source ||
		    strcmp(pk.addr, pp.addr) != 0 || strcmp(pk.port, pp.port) != 0))
			fuzz_fail("bytes after the header change it", k);
		if (r == 0 && rk != 0)
			fuzz_fail("a prefix decided what the whole input did not", k);
		if (r < 0 && (rk > 0 || (prev < 0 && rk != -1)))
			fuzz_fail("a refusal taken back by more bytes", k);
		prev = rk;
	}
	fuzz_read(data, size, r, &pp);
	return 0;
}
