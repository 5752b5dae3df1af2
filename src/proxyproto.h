/* proxyproto.h - the PROXY protocol header a balancer puts before the client's bytes */
#ifndef GFPROXY_PROXYPROTO_H
#define GFPROXY_PROXYPROTO_H

#include <stddef.h>

#include "conn.h"

/*
 * Bounds on the header. Version 1 is one line of at most 107 bytes, CRLF
 * included (the specification's own limit). Version 2 announces its length
 * in 16 bits, so up to 16 + 65535 bytes; real balancers send the addresses
 * and a few short TLVs, and nginx reads no more than 4096 bytes either: a
 * longer header is refused as soon as its length is read.
 */
#define PROXYPROTO_V1_MAX       107
#define PROXYPROTO_V2_MAX       4096
/*
 * From the connection to the header's last byte. As long as a plain client
 * may wait before its first request (HTTP_IDLE_TIMEOUT_MS): some balancers
 * send the header only with the client's first bytes.
 */
#define PROXYPROTO_TIMEOUT_MS   15000

/*
 * Whose address the header gives: the client's, or none (v2 LOCAL, as in a
 * balancer's health check; v1 UNKNOWN; an unspecified address family or
 * transport), when the connection's own peer stands.
 */
enum proxyproto_source { PROXYPROTO_PEER, PROXYPROTO_CLIENT };

struct proxyproto {
	enum proxyproto_source  source;
	char                    addr[64];       /* PROXYPROTO_CLIENT: numeric, or "unix" */
	char                    port[8];
};

int     proxyproto_parse(const unsigned char *buf, size_t len, struct proxyproto *ret,
            const char **ret_why);
int     proxyproto_read(struct conn *c, const char **ret_why);

#endif
