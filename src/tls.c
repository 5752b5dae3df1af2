/*
 * tls.c - TLS towards the client (gfproxy --tls), under conn.c's reads and
 * writes, so nothing above the connection knows it is there.
 *
 * The library is OpenSSL 3: libcurl4 already loads it for https upstreams,
 * so a TLS connection adds no library to the process and no second TLS
 * stack to keep patched. GnuTLS measured faster to set up per process
 * (2.5 ms of CPU against 4.8 ms, most of it SSL_CTX_new), but would be a
 * second library; the end-to-end cost is within its targets (gfproxy(8),
 * TLS; tests/bench/RESULTS-tls.md).
 *
 * Each process serves one connection, which shapes the rest:
 * - the certificate chains and keys are read by the process, from the paths
 *   in [tls], before it is confined: a renewal (an ACME client replacing the
 *   files) applies to the next connection, with no reload;
 * - only the pair SNI chooses is parsed; every key's bytes are wiped as soon
 *   as the choice is made, and the chosen key lives in OpenSSL, which wipes
 *   it when the connection ends (with the process);
 * - resumption across processes comes from session tickets sealed with a key
 *   file all instances read, rotated by gfproxy --rotate-ticket-key; the
 *   previous key is still accepted for one rotation.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "tls.h"

#ifndef GFPROXY_NO_TLS

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

/*
 * Mozilla's "intermediate" configuration (v5.7): TLS 1.2 with forward-secret
 * AEAD suites only, and TLS 1.3 with OpenSSL's defaults. DHE is left out:
 * ECDHE covers every client that speaks TLS 1.2. The server's order wins,
 * which testssl.sh asks for; with AEAD suites only, either order is sound.
 */
#define TLS_CIPHERS_12 "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:" \
	"ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:" \
	"ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"
#define TLS_GROUPS     "X25519:P-256:P-384"
/* ALPN: HTTP/1.1 is all gfproxy speaks. */
static const unsigned char tls_alpn[] = "\x08http/1.1";

struct tls_file {
	char    *data;
	size_t   len;
};

struct tls_ticket_key {
	unsigned char name[16];
	unsigned char hmac[32];
	unsigned char aes[32];
};

struct tls {
	SSL_CTX                 *ctx;
	SSL                     *ssl;
	const struct config     *cfg;
	struct tls_file          chains[CONFIG_MAX_CERTS];
	struct tls_file          keys[CONFIG_MAX_CERTS];
	size_t                   npairs;
	struct tls_ticket_key    tickets[TLS_TICKET_KEYS];
	size_t                   ntickets;
	int                      fd;
	unsigned char           *prefix;        /* read before the handshake began */
	size_t                   prefix_off, prefix_len;
	BIO_METHOD              *bio_method;
	enum tls_fault           fault;
	char                     why[256];
	unsigned char            out[TLS_RECORD_MAX];   /* a record's worth of an iovec */
};

bool
tls_available(void)
{
	return true;
}

static void
tls_wipe(struct tls_file *f)
{
	if (f->data != NULL) {
		OPENSSL_cleanse(f->data, f->len);
		free(f->data);
	}
	f->data = NULL;
	f->len = 0;
}

/* A whole file into memory, up to TLS_MAX_FILE bytes. */
static int
tls_slurp(const char *path, struct tls_file *f)
{
	struct stat st;
	size_t size;
	ssize_t n;
	int fd, e = 0;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY)) < 0)
		return -errno;
	if (fstat(fd, &st) < 0)
		e = errno;
	else if (!S_ISREG(st.st_mode))
		e = EINVAL;
	else if (st.st_size > TLS_MAX_FILE)
		e = EFBIG;
	else if ((f->data = malloc((size_t)st.st_size + 1)) == NULL)
		e = ENOMEM;
	if (e != 0) {
		close(fd);
		return -e;
	}
	size = (size_t)st.st_size;
	f->len = 0;
	while (f->len < size && (n = read(fd, f->data + f->len, size - f->len)) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			e = errno;
			close(fd);
			tls_wipe(f);
			return -e;
		}
		f->len += (size_t)n;
	}
	close(fd);
	return 0;
}

static void
tls_fail(struct tls *t, enum tls_fault fault, const char *fmt, const char *arg)
{
	unsigned long e = ERR_peek_last_error();
	size_t len;

	if (t->fault != TLS_FAULT_NONE)
		return;
	t->fault = fault;
	snprintf(t->why, sizeof(t->why), fmt, arg);
	if (e != 0 && ERR_reason_error_string(e) != NULL) {
		len = strlen(t->why);
		snprintf(t->why + len, sizeof(t->why) - len, " (%s)", ERR_reason_error_string(e));
	}
	ERR_clear_error();
}

/* The chain's first certificate, then the rest as its chain. */
static X509 *
tls_leaf(const struct tls_file *f, STACK_OF(X509) **ret_rest)
{
	BIO *b = BIO_new_mem_buf(f->data, (int)f->len);
	STACK_OF(X509) *rest = NULL;
	X509 *leaf, *x;

	if (b == NULL || (leaf = PEM_read_bio_X509(b, NULL, NULL, NULL)) == NULL) {
		BIO_free(b);
		return NULL;
	}
	if (ret_rest != NULL) {
		rest = sk_X509_new_null();
		while (rest != NULL && (x = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL)
			if (!sk_X509_push(rest, x))
				X509_free(x);
		ERR_clear_error();      /* the end of the file */
		*ret_rest = rest;
	}
	BIO_free(b);
	return leaf;
}

/*
 * Load pair i into ssl (or only check it, ssl NULL): the chain, the key,
 * and that they belong together. Fails with the reason in why.
 */
static int
tls_load_pair(const struct tls_file *chain, const struct tls_file *keyf, SSL *ssl,
    char *why, size_t why_size)
{
	STACK_OF(X509) *rest = NULL;
	EVP_PKEY *key = NULL;
	X509 *leaf;
	BIO *b;
	int r = -1;

	if ((leaf = tls_leaf(chain, &rest)) == NULL) {
		snprintf(why, why_size, "no PEM certificate in the chain file");
		goto out;
	}
	if ((b = BIO_new_mem_buf(keyf->data, (int)keyf->len)) != NULL) {
		key = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
		BIO_free(b);
	}
	if (key == NULL) {
		snprintf(why, why_size, "no PEM private key in the key file");
		goto out;
	}
	if (X509_check_private_key(leaf, key) != 1) {
		snprintf(why, why_size, "the key does not belong to the certificate");
		goto out;
	}
	if (ssl != NULL && SSL_use_cert_and_key(ssl, leaf, key, rest, 1) != 1) {
		snprintf(why, why_size, "OpenSSL refuses the pair");
		goto out;
	}
	r = 0;
out:
	ERR_clear_error();
	EVP_PKEY_free(key);
	X509_free(leaf);
	sk_X509_pop_free(rest, X509_free);
	return r;
}

/*
 * After the ClientHello: the first pair whose certificate names the SNI
 * host, or the first pair; then every key's bytes are wiped.
 */
static int
tls_servername(SSL *ssl, int *alert, void *arg)
{
	struct tls *t = arg;
	const char *host = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
	const struct tls_pair *tp;
	char why[128];
	size_t i, pick = 0;
	X509 *leaf;
	int r = -1;

	/*
	 * A second ClientHello (after a HelloRetryRequest for another key
	 * share) comes here again: the pair is chosen, and its key wiped.
	 */
	if (SSL_get_privatekey(ssl) != NULL)
		return SSL_TLSEXT_ERR_OK;
	for (i = 0; host != NULL && i < t->npairs; i++) {
		if (t->chains[i].data == NULL || (leaf = tls_leaf(&t->chains[i], NULL)) == NULL)
			continue;
		r = X509_check_host(leaf, host, 0, 0, NULL);
		X509_free(leaf);
		if (r == 1) {
			pick = i;
			break;
		}
	}
	ERR_clear_error();
	tp = &t->cfg->tls_pairs[pick];
	if (t->chains[pick].data == NULL || t->keys[pick].data == NULL) {
		snprintf(why, sizeof(why), "cannot read it");
		r = -1;
	} else
		r = tls_load_pair(&t->chains[pick], &t->keys[pick], ssl, why, sizeof(why));
	if (r < 0) {
		snprintf(t->why, sizeof(t->why), "%s:%u: certificate %s %s: %s",
		    t->cfg->path != NULL ? t->cfg->path : "gfproxy.conf", tp->line,
		    tp->chain, tp->key, why);
		t->fault = TLS_FAULT_CERT;
	}
	for (i = 0; i < t->npairs; i++)
		tls_wipe(&t->keys[i]);
	if (t->fault == TLS_FAULT_CERT) {
		*alert = SSL_AD_INTERNAL_ERROR;
		return SSL_TLSEXT_ERR_ALERT_FATAL;
	}
	return SSL_TLSEXT_ERR_OK;
}

static int
tls_alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
    const unsigned char *in, unsigned int inlen, void *arg)
{
	/* A client that offers ALPN without HTTP/1.1 has nothing to say to us. */
	if (SSL_select_next_proto((unsigned char **)out, outlen, tls_alpn,
	    sizeof(tls_alpn) - 1, in, inlen) != OPENSSL_NPN_NEGOTIATED)
		return SSL_TLSEXT_ERR_ALERT_FATAL;
	return SSL_TLSEXT_ERR_OK;
}

static int
tls_ticket_mac(EVP_MAC_CTX *hctx, const struct tls_ticket_key *k)
{
	OSSL_PARAM params[] = {
		OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, (void *)k->hmac,
		    sizeof(k->hmac)),
		OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, "SHA256", 0),
		OSSL_PARAM_construct_end(),
	};

	return EVP_MAC_CTX_set_params(hctx, params);
}

/*
 * Session tickets sealed with the shared key: new ones with the current
 * key; the previous key still opens a ticket. Every resumption gets a fresh
 * ticket (2, "renew"): clients use a TLS 1.3 ticket once, and without one
 * every other connection would be a full handshake.
 */
static int
tls_ticket(SSL *ssl, unsigned char key_name[16], unsigned char *iv, EVP_CIPHER_CTX *cctx,
    EVP_MAC_CTX *hctx, int enc)
{
	struct tls *t = SSL_get_app_data(ssl);
	const struct tls_ticket_key *k;
	size_t i;

	if (enc) {
		k = &t->tickets[0];
		if (RAND_bytes(iv, 16) != 1 ||
		    EVP_EncryptInit_ex(cctx, EVP_aes_256_cbc(), NULL, k->aes, iv) != 1 ||
		    tls_ticket_mac(hctx, k) != 1)
			return -1;
		memcpy(key_name, k->name, sizeof(k->name));
		return 1;
	}
	for (i = 0; i < t->ntickets; i++) {
		k = &t->tickets[i];
		if (memcmp(key_name, k->name, sizeof(k->name)) != 0)
			continue;
		if (tls_ticket_mac(hctx, k) != 1 ||
		    EVP_DecryptInit_ex(cctx, EVP_aes_256_cbc(), NULL, k->aes, iv) != 1)
			return -1;
		return 2;
	}
	return 0;       /* an unknown or retired key: a full handshake */
}

/* The ticket key file: the current key, then the previous one. */
static int
tls_read_tickets(struct tls *t, const char *path)
{
	struct tls_file f = { 0 };
	int r;

	if ((r = tls_slurp(path, &f)) < 0)
		return r;
	if (f.len != TLS_TICKET_KEY_BYTES * TLS_TICKET_KEYS) {
		tls_wipe(&f);
		return -EINVAL;
	}
	_Static_assert(sizeof(struct tls_ticket_key) == TLS_TICKET_KEY_BYTES, "ticket key layout");
	memcpy(t->tickets, f.data, f.len);
	t->ntickets = TLS_TICKET_KEYS;
	tls_wipe(&f);
	return 0;
}

static SSL_CTX *
tls_context(struct tls *t)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

	if (ctx == NULL ||
	    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
	    SSL_CTX_set_cipher_list(ctx, TLS_CIPHERS_12) != 1 ||
	    SSL_CTX_set1_groups_list(ctx, TLS_GROUPS) != 1) {
		SSL_CTX_free(ctx);
		return NULL;
	}
	/*
	 * A client that closes without close_notify (browsers do, with the
	 * connections they open ahead) has ended the connection, as over TCP:
	 * HTTP/1.1's own framing tells a cut request from a whole one.
	 */
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION |
	    SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_IGNORE_UNEXPECTED_EOF);
	SSL_CTX_set_tlsext_servername_callback(ctx, tls_servername);
	SSL_CTX_set_tlsext_servername_arg(ctx, t);
	SSL_CTX_set_alpn_select_cb(ctx, tls_alpn_select, t);
	/* No process lives to see a client again: a cache would only cost. */
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_session_id_context(ctx, (const unsigned char *)"gfproxy", 7);
	SSL_CTX_set_timeout(ctx, TLS_TICKET_LIFETIME_S);
	if (t->ntickets > 0) {
		SSL_CTX_set_num_tickets(ctx, 1);
		SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, tls_ticket);
	} else {
		/* A ticket only this process could open would be a wasted record. */
		SSL_CTX_set_num_tickets(ctx, 0);
		SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
	}
	return ctx;
}

/*
 * Everything from the file system, before the process is confined: the
 * pairs' files and the ticket keys. A pair that cannot be read fails only
 * when SNI picks it; unreadable ticket keys only turn resumption off, and
 * are reported (ret_why) for the caller to log.
 */
int
tls_new(struct tls **ret, const struct config *cfg, const char **ret_why)
{
	struct tls *t;
	size_t i;

	*ret_why = NULL;
	if (cfg->ntls_pairs == 0) {
		*ret_why = "no certificate in [tls] (gfproxy.conf(5))";
		return -EINVAL;
	}
	if ((t = calloc(1, sizeof(*t))) == NULL) {
		*ret_why = "out of memory";
		return -ENOMEM;
	}
	t->cfg = cfg;
	t->npairs = cfg->ntls_pairs;
	for (i = 0; i < t->npairs; i++) {
		(void)tls_slurp(cfg->tls_pairs[i].chain, &t->chains[i]);
		(void)tls_slurp(cfg->tls_pairs[i].key, &t->keys[i]);
	}
	if (cfg->tls_ticket_key != NULL && tls_read_tickets(t, cfg->tls_ticket_key) < 0)
		*ret_why = "cannot read the ticket-key file, or it is not 160 bytes "
		    "(gfproxy --rotate-ticket-key): no resumption";
	if ((t->ctx = tls_context(t)) == NULL || (t->ssl = SSL_new(t->ctx)) == NULL) {
		tls_free(t);
		*ret_why = "cannot set up OpenSSL";
		return -ENOMEM;
	}
	SSL_set_app_data(t->ssl, t);
	*ret = t;
	return 0;
}

/* After SSL_ERROR_WANT_*: wait for the socket's readiness it names (-EAGAIN); 0 otherwise. */
static int
tls_want(int err, short *ret_events)
{
	if (err == SSL_ERROR_WANT_READ)
		*ret_events = POLLIN;
	else if (err == SSL_ERROR_WANT_WRITE)
		*ret_events = POLLOUT;
	else
		return 0;
	return -EAGAIN;
}

/*
 * The socket, as a BIO that first returns the bytes read before the
 * handshake began (those after a PROXY header, in the connection's buffer).
 */
static int
tls_bio_read(BIO *b, char *out, int outl)
{
	struct tls *t = BIO_get_data(b);
	size_t n;
	ssize_t r;

	BIO_clear_retry_flags(b);
	if (t->prefix_off < t->prefix_len) {
		n = t->prefix_len - t->prefix_off < (size_t)outl ? t->prefix_len - t->prefix_off :
		    (size_t)outl;
		memcpy(out, t->prefix + t->prefix_off, n);
		t->prefix_off += n;
		return (int)n;
	}
	if ((r = read(t->fd, out, (size_t)outl)) < 0 && (errno == EAGAIN || errno == EINTR))
		BIO_set_retry_read(b);
	return (int)r;
}

static int
tls_bio_write(BIO *b, const char *in, int inl)
{
	struct tls *t = BIO_get_data(b);
	ssize_t r;

	BIO_clear_retry_flags(b);
	if ((r = send(t->fd, in, (size_t)inl, MSG_NOSIGNAL)) < 0 && (errno == EAGAIN || errno == EINTR))
		BIO_set_retry_write(b);
	return (int)r;
}

static long
tls_bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
	return cmd == BIO_CTRL_FLUSH ? 1 : 0;
}

/*
 * The connection under TLS: fd, and the len bytes already read from it
 * (after a PROXY header), which the handshake reads first.
 */
int
tls_attach(struct tls *t, int fd, const void *prefix, size_t len)
{
	BIO *b;

	t->fd = fd;
	if (len == 0)
		return SSL_set_fd(t->ssl, fd) == 1 ? 0 : -1;
	if ((t->prefix = malloc(len)) == NULL ||
	    (t->bio_method = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK,
	    "gfproxy prefix")) == NULL ||
	    BIO_meth_set_read(t->bio_method, tls_bio_read) != 1 ||
	    BIO_meth_set_write(t->bio_method, tls_bio_write) != 1 ||
	    BIO_meth_set_ctrl(t->bio_method, tls_bio_ctrl) != 1 ||
	    (b = BIO_new(t->bio_method)) == NULL)
		return -1;
	memcpy(t->prefix, prefix, len);
	t->prefix_len = len;
	BIO_set_data(b, t);
	BIO_set_init(b, 1);
	SSL_set_bio(t->ssl, b, b);
	return 0;
}

/*
 * One step of the handshake: 1 done, 0 to be called again once the socket
 * is ready for *ret_events, -1 failed (tls_fault_why()).
 */
int
tls_accept(struct tls *t, short *ret_events)
{
	int r, e;

	ERR_clear_error();
	if ((r = SSL_accept(t->ssl)) == 1)
		return 1;
	if (tls_want((e = SSL_get_error(t->ssl, r)), ret_events) < 0)
		return 0;
	switch (e) {
	case SSL_ERROR_SYSCALL:
	case SSL_ERROR_ZERO_RETURN:
		tls_fail(t, TLS_FAULT_PEER, "%s", "TLS handshake: the client closed the connection");
		return -1;
	default:
		tls_fail(t, TLS_FAULT_PEER, "%s", "TLS handshake failed");
		return -1;
	}
}

void
tls_abort(struct tls *t, enum tls_fault fault, const char *why)
{
	tls_fail(t, fault, "%s", why);
}

enum tls_fault
tls_fault_why(const struct tls *t, const char **ret_why)
{
	*ret_why = t->why;
	return t->fault;
}

/*
 * After SSL_ERROR_SYSCALL, with errno cleared before the call: the socket's
 * error; EINTR and EAGAIN (which the BIO normally turns into a retry) wait
 * for events and call again; no errno at all is none_errno (the peer gone).
 */
static ssize_t
tls_syscall_errno(short events, short *ret_events, ssize_t none_errno)
{
	int err = errno;

	ERR_clear_error();
	if (err == EINTR || err == EAGAIN || err == EWOULDBLOCK) {
		*ret_events = events;
		return -EAGAIN;
	}
	return err != 0 ? -err : none_errno;
}

/* Decrypted bytes, 0 at the client's end, or -EAGAIN to wait for *ret_events. */
ssize_t
tls_read(struct tls *t, void *buf, size_t len, short *ret_events)
{
	size_t n = 0;
	int r, e;

	ERR_clear_error();
	errno = 0;      /* SSL_ERROR_SYSCALL's errno is this call's, or 0 */
	if ((r = SSL_read_ex(t->ssl, buf, len, &n)) == 1)
		return (ssize_t)n;
	if (tls_want((e = SSL_get_error(t->ssl, r)), ret_events) < 0)
		return -EAGAIN;
	switch (e) {
	case SSL_ERROR_ZERO_RETURN:
		return 0;
	case SSL_ERROR_SYSCALL:
		return tls_syscall_errno(POLLIN, ret_events, 0);
	default:
		ERR_clear_error();
		return -EPROTO;
	}
}

/*
 * Up to a record of the iovec, gathered and sent whole: bytes written, or
 * -EAGAIN to wait for *ret_events and call again with the same iovec (which
 * gathers the same bytes at the same address, as OpenSSL requires).
 */
ssize_t
tls_writev(struct tls *t, const struct iovec *iov, int iovcnt, short *ret_events)
{
	size_t n = 0, k, written = 0;
	int r, e;

	for (; iovcnt > 0 && n < sizeof(t->out); iov++, iovcnt--) {
		k = iov->iov_len < sizeof(t->out) - n ? iov->iov_len : sizeof(t->out) - n;
		memcpy(t->out + n, iov->iov_base, k);
		n += k;
	}
	ERR_clear_error();
	errno = 0;
	if ((r = SSL_write_ex(t->ssl, t->out, n, &written)) == 1)
		return (ssize_t)written;
	if (tls_want((e = SSL_get_error(t->ssl, r)), ret_events) < 0)
		return -EAGAIN;
	if (e == SSL_ERROR_SYSCALL)
		return tls_syscall_errno(POLLOUT, ret_events, -EPIPE);
	ERR_clear_error();
	return -EPIPE;
}

size_t
tls_pending(const struct tls *t)
{
	return t != NULL && t->ssl != NULL ? (size_t)SSL_pending(t->ssl) : 0;
}

/* close_notify, once, without waiting for the client's. */
void
tls_shutdown(struct tls *t)
{
	if (SSL_get_shutdown(t->ssl) & SSL_SENT_SHUTDOWN)
		return;
	ERR_clear_error();
	(void)SSL_shutdown(t->ssl);
	ERR_clear_error();
}

void
tls_free(struct tls *t)
{
	size_t i;

	if (t == NULL)
		return;
	SSL_free(t->ssl);
	SSL_CTX_free(t->ctx);
	BIO_meth_free(t->bio_method);
	free(t->prefix);
	for (i = 0; i < t->npairs; i++) {
		tls_wipe(&t->chains[i]);
		tls_wipe(&t->keys[i]);
	}
	OPENSSL_cleanse(t->tickets, sizeof(t->tickets));
	OPENSSL_cleanse(t->out, sizeof(t->out));
	free(t);
}

const char *
tls_version(const struct tls *t)
{
	return SSL_get_version(t->ssl);
}

const char *
tls_cipher(const struct tls *t)
{
	return SSL_get_cipher_name(t->ssl);
}

bool
tls_resumed(const struct tls *t)
{
	return SSL_session_reused(t->ssl) == 1;
}

/* gfproxy --check-config: every pair loads and matches, the ticket keys read. */
void
tls_check_config(struct config *cfg)
{
	struct tls_file chain = { 0 }, key = { 0 };
	const struct tls_pair *tp;
	char why[128];
	size_t i;
	int r;

	for (i = 0; i < cfg->ntls_pairs; i++) {
		tp = &cfg->tls_pairs[i];
		if ((r = tls_slurp(tp->chain, &chain)) < 0)
			config_error(cfg, tp->line, "certificate %s: %s", tp->chain, strerror(-r));
		else if ((r = tls_slurp(tp->key, &key)) < 0)
			config_error(cfg, tp->line, "certificate key %s: %s", tp->key, strerror(-r));
		else if (tls_load_pair(&chain, &key, NULL, why, sizeof(why)) < 0)
			config_error(cfg, tp->line, "certificate %s %s: %s", tp->chain, tp->key, why);
		tls_wipe(&chain);
		tls_wipe(&key);
	}
	/*
	 * A ticket key file not made yet is no error: gfproxy-tls.socket is
	 * ordered after gfproxy-ticket-rotate.service, which makes it.
	 */
	if (cfg->tls_ticket_key != NULL) {
		struct tls t = { 0 };
		if ((r = tls_read_tickets(&t, cfg->tls_ticket_key)) < 0 && r != -ENOENT)
			config_error(cfg, cfg->tls_ticket_key_line,
			    "ticket-key %s: cannot read it, or it is not %d bytes "
			    "(gfproxy --rotate-ticket-key makes it)", cfg->tls_ticket_key,
			    TLS_TICKET_KEY_BYTES * TLS_TICKET_KEYS);
		OPENSSL_cleanse(t.tickets, sizeof(t.tickets));
	}
}

/* The group a new ticket key file gets: the old file's, or its directory's; -1 if neither. */
static gid_t
tls_key_group(const char *path)
{
	char dir[4096];
	const char *slash;
	struct stat st;

	if (stat(path, &st) == 0)
		return st.st_gid;
	if ((slash = strrchr(path, '/')) == NULL)
		snprintf(dir, sizeof(dir), ".");
	else if ((size_t)snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path) >= sizeof(dir))
		return (gid_t)-1;
	if (dir[0] == '\0')
		snprintf(dir, sizeof(dir), "/");
	return stat(dir, &st) == 0 ? st.st_gid : (gid_t)-1;
}

/*
 * gfproxy --rotate-ticket-key FILE: a new current key, the old current one
 * kept as the previous; written to a new file renamed over the old one, so
 * an instance reads either whole. The file is 0640, in the old file's
 * group, or the directory's on a first run: run by hand as root, it stays
 * readable by the group gfproxy runs in (the unit's Group=).
 */
int
tls_rotate_ticket_key(const char *path, const char **ret_why)
{
	unsigned char keys[TLS_TICKET_KEY_BYTES * TLS_TICKET_KEYS];
	struct tls_file old = { 0 };
	char tmp[4096];
	size_t off = 0;
	ssize_t n;
	gid_t gid;
	int fd, r = -1;

	if (RAND_bytes(keys, sizeof(keys)) != 1) {
		*ret_why = "no random bytes";
		return -1;
	}
	/* The current key becomes the previous; a first run makes both new. */
	if (tls_slurp(path, &old) == 0 && old.len == sizeof(keys))
		memcpy(keys + TLS_TICKET_KEY_BYTES, old.data, TLS_TICKET_KEY_BYTES);
	tls_wipe(&old);
	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.new", path) >= sizeof(tmp)) {
		*ret_why = "path too long";
		goto out;
	}
	(void)unlink(tmp);
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640)) < 0) {
		*ret_why = strerror(errno);
		goto out;
	}
	(void)fchmod(fd, 0640);     /* whatever the umask */
	if ((gid = tls_key_group(path)) != (gid_t)-1 && gid != getegid() &&
	    fchown(fd, (uid_t)-1, gid) < 0) {
		*ret_why = strerror(errno);
		close(fd);
		unlink(tmp);
		goto out;
	}
	while (off < sizeof(keys) && ((n = write(fd, keys + off, sizeof(keys) - off)) > 0 ||
	    (n < 0 && errno == EINTR)))
		off += n > 0 ? (size_t)n : 0;
	if (off != sizeof(keys) || fsync(fd) < 0) {
		*ret_why = strerror(errno);
		close(fd);
		unlink(tmp);
		goto out;
	}
	close(fd);
	if (rename(tmp, path) < 0) {
		*ret_why = strerror(errno);
		unlink(tmp);
		goto out;
	}
	r = 0;
out:
	OPENSSL_cleanse(keys, sizeof(keys));
	return r;
}

#else   /* GFPROXY_NO_TLS: built with CURL=static-notls, OpenSSL not linked */

struct tls {
	char unused;
};

bool
tls_available(void)
{
	return false;
}

int
tls_new(struct tls **ret, const struct config *cfg, const char **ret_why)
{
	*ret_why = "this gfproxy is built without TLS (make CURL=static-notls)";
	return -ENOTSUP;
}

int
tls_attach(struct tls *t, int fd, const void *prefix, size_t len)
{
	return -1;
}

int
tls_accept(struct tls *t, short *ret_events)
{
	return -1;
}

void
tls_abort(struct tls *t, enum tls_fault fault, const char *why)
{
}

enum tls_fault
tls_fault_why(const struct tls *t, const char **ret_why)
{
	*ret_why = "no TLS";
	return TLS_FAULT_CERT;
}

ssize_t
tls_read(struct tls *t, void *buf, size_t len, short *ret_events)
{
	return -EPROTO;
}

ssize_t
tls_writev(struct tls *t, const struct iovec *iov, int iovcnt, short *ret_events)
{
	return -EPIPE;
}

size_t
tls_pending(const struct tls *t)
{
	return 0;
}

void
tls_shutdown(struct tls *t)
{
}

void
tls_free(struct tls *t)
{
}

const char *
tls_version(const struct tls *t)
{
	return "";
}

const char *
tls_cipher(const struct tls *t)
{
	return "";
}

bool
tls_resumed(const struct tls *t)
{
	return false;
}

/* gfproxy --check-config reports a [tls] this build cannot serve (proxy.c). */
void
tls_check_config(struct config *cfg)
{
}

int
tls_rotate_ticket_key(const char *path, const char **ret_why)
{
	*ret_why = "this gfproxy is built without TLS (make CURL=static-notls)";
	return -1;
}

#endif
