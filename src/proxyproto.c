/*
 * proxyproto.c - the PROXY protocol header (haproxy's proxy-protocol.txt,
 * versions 1 and 2) that an L4 balancer sends before the client's bytes, so
 * the client's own address reaches the log and X-Forwarded-For.
 *
 * The header is read through the connection's buffer: whatever follows it
 * (the client's request) stays there for the HTTP reader. Whether the sender
 * may send it at all is the caller's decision (trusted-proxies); here it is
 * only parsed, strictly, and within the bounds in proxyproto.h.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "proxyproto.h"

#define PROXYPROTO_STR_(x)  #x
#define PROXYPROTO_STR(x)   PROXYPROTO_STR_(x)

static const char proxyproto_v1_sig[] = "PROXY ";
static const unsigned char proxyproto_v2_sig[12] = {
	0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a
};
#define PROXYPROTO_V2_FIXED 16          /* signature, version and command, family, length */

/* Version 2's command (low 4 bits of byte 13) and address families (high 4 of 14). */
enum { PROXYPROTO_V2_LOCAL = 0x0, PROXYPROTO_V2_PROXY = 0x1 };
enum { PROXYPROTO_AF_UNSPEC, PROXYPROTO_AF_INET, PROXYPROTO_AF_INET6, PROXYPROTO_AF_UNIX };
enum { PROXYPROTO_TRANSPORT_UNSPEC, PROXYPROTO_TRANSPORT_STREAM, PROXYPROTO_TRANSPORT_DGRAM };

/* Bytes of each family's address block: two addresses, two ports (none for unix). */
static const size_t proxyproto_v2_addr_len[] = {
	[PROXYPROTO_AF_UNSPEC] = 0,
	[PROXYPROTO_AF_INET] = 2 * 4 + 2 * 2,
	[PROXYPROTO_AF_INET6] = 2 * 16 + 2 * 2,
	[PROXYPROTO_AF_UNIX] = 2 * 108,
};

/* An address as conn.c writes a peer's: an IPv4-mapped IPv6 one as IPv4. */
static void
proxyproto_ntop(int family, const unsigned char *a, unsigned port, struct proxyproto *ret)
{
	struct in6_addr a6;

	if (family == AF_INET6) {
		memcpy(&a6, a, sizeof(a6));
		if (IN6_IS_ADDR_V4MAPPED(&a6))
			family = AF_INET, a += 12;
	}
	inet_ntop(family, a, ret->addr, sizeof(ret->addr));
	snprintf(ret->port, sizeof(ret->port), "%u", port);
	ret->source = PROXYPROTO_CLIENT;
}

/* A version 1 port: decimal, 0 to 65535, no leading zero. -1 if not. */
static long
proxyproto_v1_port(const char *s)
{
	size_t n = strspn(s, "0123456789");
	long v = 0;
	size_t i;

	if (n == 0 || n > 5 || s[n] != '\0' || (s[0] == '0' && n > 1))
		return -1;
	for (i = 0; i < n; i++)
		v = v * 10 + (s[i] - '0');
	return v <= 65535 ? v : -1;
}

/* "PROXY TCP4 192.0.2.7 198.51.100.1 40312 80\r\n", or "PROXY UNKNOWN ...\r\n". */
static int
proxyproto_v1(const unsigned char *buf, size_t len, struct proxyproto *ret,
    const char **ret_why)
{
	char line[PROXYPROTO_V1_MAX], *field[6], *p;
	unsigned char src[16], dst[16];
	const unsigned char *lf;
	size_t n, i, nfields = 0;
	long sport, dport;
	int family;

	lf = memchr(buf, '\n', len < PROXYPROTO_V1_MAX ? len : PROXYPROTO_V1_MAX);
	if (lf == NULL) {
		if (len < PROXYPROTO_V1_MAX)
			return 0;
		*ret_why = "PROXY v1 header longer than " PROXYPROTO_STR(PROXYPROTO_V1_MAX) " bytes";
		return -1;
	}
	n = (size_t)(lf - buf);
	if (n == 0 || buf[n - 1] != '\r') {
		*ret_why = "PROXY v1 header not ended by CRLF";
		return -1;
	}
	for (i = 0; i < n - 1; i++) {
		if (buf[i] < 0x20 || buf[i] > 0x7e) {
			*ret_why = "control or non-ASCII byte in PROXY v1 header";
			return -1;
		}
		line[i] = (char)buf[i];
	}
	line[n - 1] = '\0';
	/* UNKNOWN: the receiver ignores the rest of the line. */
	if (strncmp(line, "PROXY UNKNOWN", 13) == 0 && (line[13] == '\0' || line[13] == ' ')) {
		ret->source = PROXYPROTO_PEER;
		return (int)n + 1;
	}
	/* Exactly six fields, one space apart. */
	for (p = line;;) {
		if (nfields == 6 || *p == '\0' || *p == ' ') {
			*ret_why = "malformed PROXY v1 header";
			return -1;
		}
		field[nfields++] = p;
		if ((p = strchr(p, ' ')) == NULL)
			break;
		*p++ = '\0';
	}
	if (nfields != 6 || (strcmp(field[1], "TCP4") != 0 && strcmp(field[1], "TCP6") != 0)) {
		*ret_why = "malformed PROXY v1 header";
		return -1;
	}
	family = field[1][3] == '4' ? AF_INET : AF_INET6;
	if (inet_pton(family, field[2], src) != 1 || inet_pton(family, field[3], dst) != 1) {
		*ret_why = "malformed address in PROXY v1 header";
		return -1;
	}
	if ((sport = proxyproto_v1_port(field[4])) < 0 || (dport = proxyproto_v1_port(field[5])) < 0) {
		*ret_why = "malformed port in PROXY v1 header";
		return -1;
	}
	proxyproto_ntop(family, src, (unsigned)sport, ret);
	return (int)n + 1;
}

/* The 16 fixed bytes, then the address block, then TLVs up to the announced length. */
static int
proxyproto_v2(const unsigned char *buf, size_t len, struct proxyproto *ret,
    const char **ret_why)
{
	size_t total, off, tlv_len, addr_len;
	unsigned cmd, af, transport;

	if (len < PROXYPROTO_V2_FIXED)
		return 0;
	if (buf[12] >> 4 != 2) {
		*ret_why = "PROXY v2 header of an unknown version";
		return -1;
	}
	cmd = buf[12] & 0x0f;
	if (cmd != PROXYPROTO_V2_LOCAL && cmd != PROXYPROTO_V2_PROXY) {
		*ret_why = "unknown command in PROXY v2 header";
		return -1;
	}
	/* Refused as soon as the length is known, without waiting for the bytes. */
	total = PROXYPROTO_V2_FIXED + ((size_t)buf[14] << 8 | buf[15]);
	if (total > PROXYPROTO_V2_MAX) {
		*ret_why = "PROXY v2 header longer than " PROXYPROTO_STR(PROXYPROTO_V2_MAX) " bytes";
		return -1;
	}
	if (len < total)
		return 0;
	af = buf[13] >> 4;
	transport = buf[13] & 0x0f;
	/*
	 * LOCAL (a balancer's own connection) ignores the whole block. With an
	 * unspecified family or transport, the specification lets the receiver
	 * keep the connection's own peer.
	 */
	if (cmd == PROXYPROTO_V2_LOCAL) {
		ret->source = PROXYPROTO_PEER;
		return (int)total;
	}
	if (af > PROXYPROTO_AF_UNIX || transport > PROXYPROTO_TRANSPORT_DGRAM) {
		*ret_why = "unknown address family or transport in PROXY v2 header";
		return -1;
	}
	if (af == PROXYPROTO_AF_UNSPEC || transport == PROXYPROTO_TRANSPORT_UNSPEC) {
		ret->source = PROXYPROTO_PEER;
		return (int)total;
	}
	addr_len = proxyproto_v2_addr_len[af];
	if (total - PROXYPROTO_V2_FIXED < addr_len) {
		*ret_why = "PROXY v2 address block shorter than its family's";
		return -1;
	}
	/* The TLVs are not used, but each must lie within the header. */
	for (off = PROXYPROTO_V2_FIXED + addr_len; off < total; off += 3 + tlv_len) {
		if (total - off < 3 ||
		    (tlv_len = (size_t)buf[off + 1] << 8 | buf[off + 2]) > total - off - 3) {
			*ret_why = "PROXY v2 TLV runs past the header";
			return -1;
		}
	}
	off = PROXYPROTO_V2_FIXED;
	if (af == PROXYPROTO_AF_INET)
		proxyproto_ntop(AF_INET, buf + off, (unsigned)buf[off + 8] << 8 | buf[off + 9], ret);
	else if (af == PROXYPROTO_AF_INET6)
		proxyproto_ntop(AF_INET6, buf + off, (unsigned)buf[off + 32] << 8 | buf[off + 33], ret);
	else {
		/* As conn.c names a unix peer. */
		snprintf(ret->addr, sizeof(ret->addr), "unix");
		snprintf(ret->port, sizeof(ret->port), "0");
		ret->source = PROXYPROTO_CLIENT;
	}
	return (int)total;
}

/*
 * Parse the header at the start of buf. Returns its length with *ret set,
 * 0 when more bytes are needed, or -1 with *ret_why when buf cannot start
 * with a valid header (decided as early as the bytes allow).
 */
int
proxyproto_parse(const unsigned char *buf, size_t len, struct proxyproto *ret,
    const char **ret_why)
{
	size_t n;

	if (len == 0)
		return 0;
	if (buf[0] == proxyproto_v1_sig[0]) {
		n = len < sizeof(proxyproto_v1_sig) - 1 ? len : sizeof(proxyproto_v1_sig) - 1;
		if (memcmp(buf, proxyproto_v1_sig, n) == 0)
			return n < len ? proxyproto_v1(buf, len, ret, ret_why) : 0;
	} else if (buf[0] == proxyproto_v2_sig[0]) {
		n = len < sizeof(proxyproto_v2_sig) ? len : sizeof(proxyproto_v2_sig);
		if (memcmp(buf, proxyproto_v2_sig, n) == 0)
			return proxyproto_v2(buf, len, ret, ret_why);
	}
	*ret_why = "no PROXY header";
	return -1;
}

/*
 * Read the header the connection must start with, and make the client it
 * names the connection's peer (the sender's address moves to proxy_addr).
 * Returns 1 when read, 0 when the sender closed before sending a byte (a
 * balancer's connect-only health check), -1 with *ret_why otherwise.
 */
int
proxyproto_read(struct conn *c, const char **ret_why)
{
	int64_t deadline = conn_now_usec() + PROXYPROTO_TIMEOUT_MS * 1000LL;
	struct proxyproto pp;
	ssize_t n;
	int r;

	while ((r = proxyproto_parse((const unsigned char *)c->buf + c->off, conn_pending(c),
	    &pp, ret_why)) == 0) {
		if ((n = conn_fill(c, deadline)) > 0)
			continue;
		if (n == 0 && conn_pending(c) == 0)
			return 0;
		*ret_why = n == 0 ? "connection closed inside the PROXY header" :
		    n == -ETIMEDOUT ? "no complete PROXY header within "
		    PROXYPROTO_STR(PROXYPROTO_TIMEOUT_MS) " ms" : "read error in the PROXY header";
		return -1;
	}
	if (r < 0)
		return -1;
	c->off += (size_t)r;
	if (pp.source == PROXYPROTO_CLIENT) {
		snprintf(c->proxy_addr, sizeof(c->proxy_addr), "%s", c->peer_addr);
		snprintf(c->proxy_port, sizeof(c->proxy_port), "%s", c->peer_port);
		snprintf(c->peer_addr, sizeof(c->peer_addr), "%s", pp.addr);
		snprintf(c->peer_port, sizeof(c->peer_port), "%s", pp.port);
	}
	return 1;
}
