/* conn.h - the one client connection a gfproxy process serves */
#ifndef GFPROXY_CONN_H
#define GFPROXY_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#define CONN_BUFSIZE          (64 * 1024)  /* bytes read ahead from the client */
#define CONN_SEND_TIMEOUT_MS  60000        /* send-timeout's default: longest a peer may */
#define CONN_SEND_TIMEOUT_MAX_MS 3600000   /* refuse to read between two writes; its ceiling */
#define CONN_LINGER_IDLE_MS   2000         /* draining a client after our last reply: */
#define CONN_LINGER_MAX_MS    30000        /* until silent this long, at most this long */

struct tls;

struct conn {
	int     fd;                 /* the connection, read and written */
	struct tls *tls;            /* TLS over fd (gfproxy --tls), or NULL */
	char    peer_addr[64];      /* the client: numeric address, or "unix" */
	char    peer_port[8];
	char    proxy_addr[64];     /* the balancer's, when its PROXY header named the peer */
	char    proxy_port[8];
	bool    trusted;            /* its forwarding fields are believed (proxy.c) */
	size_t  off;                /* first unconsumed byte in buf */
	size_t  len;                /* bytes in buf */
	bool    answered;           /* written to since the last read */
	int64_t send_timeout_usec;  /* send-timeout: longest wait for the client to read */
	char    lost_why[64];       /* why the last write to the client failed */
	bool    head_request;       /* answering a HEAD: replies carry no body */
	char    buf[CONN_BUFSIZE];
};

/* Exit codes shared by both programs (sysexits.h values). */
#define EXIT_USAGE   64   /* bad command line */
#define EXIT_NOCONN  66   /* no connected stream socket to serve */
#define EXIT_OSERR   71   /* a system call failed before serving */
#define EXIT_CONFIG  78   /* configuration error */

int      conn_open(struct conn *c, const char **ret_why);
int      conn_start_tls(struct conn *c, struct tls *t);
ssize_t  conn_read(struct conn *c, void *buf, size_t len);
ssize_t  conn_fill(struct conn *c, int64_t deadline_usec);
int      conn_write(struct conn *c, const void *data, size_t len);
int      conn_writev(struct conn *c, struct iovec *iov, int iovcnt);
void     conn_shutdown(struct conn *c);
bool     conn_has_input(const struct conn *c);
void     conn_linger(struct conn *c);
int64_t  conn_now_usec(void);
const char *conn_lost_why(const struct conn *c);

/* The scheme the client used, for X-Forwarded-Proto and Forwarded. */
static inline const char *
conn_scheme(const struct conn *c)
{
	return c->tls != NULL ? "https" : "http";
}

static inline size_t
conn_pending(const struct conn *c)
{
	return c->len - c->off;
}

#endif
