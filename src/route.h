/* route.h - matching a request to the route and rewriting its target */
#ifndef GFPROXY_ROUTE_H
#define GFPROXY_ROUTE_H

#include <stddef.h>

#define ROUTE_MAX_URL      2048   /* bytes of an upstream URL */
#define ROUTE_MAX_TARGET   (8 * 1024 + ROUTE_MAX_URL)  /* a rewritten target */

struct route {
	char    prefix[ROUTE_MAX_URL];   /* without a trailing slash; "" matches all */
	size_t  prefix_len;
	char    origin[ROUTE_MAX_URL];   /* scheme://authority of the upstream */
	char    base[ROUTE_MAX_URL];     /* the upstream's base path, may be "" */
};

int  route_init(struct route *r, const char *prefix, const char *upstream,
         const char **ret_why);
int  route_rewrite(const struct route *r, const char *target, char *ret_target,
         size_t size, const char **ret_why);
const char *route_path(const char *target);

#endif
