/* mount.h - the upstream as seen from under its route's prefix: redirects and cookies */
#ifndef GFPROXY_MOUNT_H
#define GFPROXY_MOUNT_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "config.h"
#include "http.h"

/* What mount_rewrite() returns instead of a length. */
#define MOUNT_UNCHANGED     (-1)    /* the field goes to the client as it came */
#define MOUNT_TOO_LONG      (-2)    /* the rewritten value does not fit */

/*
 * Where the client reached the route: its scheme and authority, as the
 * request says them, and the Host the upstream was given. Made by
 * mount_view_init(); every string points into the request or the route.
 */
struct mount_view {
	const struct route  *route;
	const char          *scheme;        /* "http" or "https" */
	const char          *host;          /* the client's authority, or NULL */
	size_t               host_len;
	const char          *sent_host;     /* Host the upstream got, or NULL */
	size_t               sent_host_len;
};

void     mount_view_init(struct mount_view *v, const struct route *r,
             const struct http_request *req, bool trusted);
ssize_t  mount_rewrite(const struct mount_view *v, const char *name, size_t name_len,
             const char *value, size_t value_len, char *buf, size_t size);
int      mount_cat_line(const struct mount_view *v, char *buf, size_t size, size_t *len,
             const char *line);

#endif
