/* tls.h - TLS towards the client, under conn.c's reads and writes */
#ifndef GFPROXY_TLS_H
#define GFPROXY_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

struct config;

#define TLS_HANDSHAKE_TIMEOUT_MS 10000      /* the whole handshake, from accept */
#define TLS_MAX_FILE          (64 * 1024)   /* bytes of one chain or key file */
#define TLS_RECORD_MAX        16384         /* plaintext bytes per record */
#define TLS_TICKET_LIFETIME_S 43200         /* a ticket's life: one rotation, 12 h */
#define TLS_TICKET_KEY_BYTES  80            /* name 16, HMAC key 32, AES key 32 */
#define TLS_TICKET_KEYS       2             /* the current key, then the previous */

/* Whose fault a failed handshake is, which decides its priority in the log. */
enum tls_fault {
	TLS_FAULT_NONE,
	TLS_FAULT_PEER,         /* the client: protocol, timeout, went away */
	TLS_FAULT_CERT,         /* ours: a certificate or key that does not load */
	TLS_FAULT_SYSTEM,       /* ours: out of memory, a failed system call */
};

struct tls;

bool         tls_available(void);
int          tls_new(struct tls **ret, const struct config *cfg, const char **ret_why);
int          tls_attach(struct tls *t, int fd, const void *prefix, size_t len);
int          tls_accept(struct tls *t, short *ret_events);
void         tls_abort(struct tls *t, enum tls_fault fault, const char *why);
enum tls_fault tls_fault_why(const struct tls *t, const char **ret_why);
ssize_t      tls_read(struct tls *t, void *buf, size_t len, short *ret_events);
ssize_t      tls_writev(struct tls *t, const struct iovec *iov, int iovcnt, short *ret_events);
size_t       tls_pending(const struct tls *t);
void         tls_shutdown(struct tls *t);
void         tls_free(struct tls *t);
const char  *tls_version(const struct tls *t);
const char  *tls_cipher(const struct tls *t);
bool         tls_resumed(const struct tls *t);
void         tls_check_config(struct config *cfg);
int          tls_rotate_ticket_key(const char *path, const char **ret_why);

#endif
