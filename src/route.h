/* route.h - matching a request to a route and rewriting its target */
#ifndef GFPROXY_ROUTE_H
#define GFPROXY_ROUTE_H

#include <stddef.h>

#include "config.h"

#define ROUTE_MAX_TARGET   (16 * 1024)  /* bytes of a rewritten target */

const struct route *route_match(const struct config *cfg, const char *target,
                        const char *host);
int                 route_rewrite(const struct route *r, size_t upstream, const char *target,
                        char *ret_target, size_t size, const char **ret_why);
const char         *route_path(const char *target);

#endif
