/* sandbox.h - the confinement each program applies to itself once it holds its connection */
#ifndef GFPROXY_SANDBOX_H
#define GFPROXY_SANDBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SANDBOX_MAX_PATHS     300         /* files and trees readable */
#define SANDBOX_MAX_PORTS     64          /* TCP ports that may be connected to */
#define SANDBOX_MAX_FILES     64          /* RLIMIT_NOFILE, as LimitNOFILE= gave */
#define SANDBOX_MAX_DATA      (256UL << 20) /* RLIMIT_DATA: heap, stacks, arenas */

/* What the kernel let us apply; the journal field SANDBOX names each. */
enum sandbox_part {
	SANDBOX_RLIMITS        = 1 << 0,  /* resource ceilings, no core dumps */
	SANDBOX_SECCOMP        = 1 << 1,  /* the system call allow-list */
	SANDBOX_LANDLOCK_FS    = 1 << 2,  /* read-only access to the listed paths */
	SANDBOX_LANDLOCK_NET   = 1 << 3,  /* TCP connect to the listed ports, no bind */
	SANDBOX_LANDLOCK_SCOPE = 1 << 4,  /* no signals or abstract sockets outside */
};
#define SANDBOX_ALL  (SANDBOX_RLIMITS | SANDBOX_SECCOMP | SANDBOX_LANDLOCK_FS | \
                      SANDBOX_LANDLOCK_NET | SANDBOX_LANDLOCK_SCOPE)

struct sandbox_policy {
	const char  *read[SANDBOX_MAX_PATHS];   /* files or directories, read only */
	size_t       nread;
	uint16_t     connect[SANDBOX_MAX_PORTS]; /* TCP ports; none: no TCP connect at all */
	size_t       nconnect;
	bool         any_port;                   /* more ports than fit: TCP connect not limited */
	bool         inet;                       /* may open AF_INET/AF_INET6 sockets */
};

void         sandbox_allow_read(struct sandbox_policy *p, const char *path);
void         sandbox_allow_connect(struct sandbox_policy *p, uint16_t port);
int          sandbox_apply(const struct sandbox_policy *p, unsigned *ret_applied,
                 const char **ret_why);
bool         sandbox_complete(unsigned applied);
const char  *sandbox_describe(unsigned applied);
const char  *sandbox_enter(const struct sandbox_policy *p);

#endif
