/* tunnel.h - Upgrade (WebSocket): after 101, relay bytes both ways */
#ifndef GFPROXY_TUNNEL_H
#define GFPROXY_TUNNEL_H

#include <stdbool.h>

#include "http.h"
#include "upstream.h"

#define TUNNEL_IDLE_TIMEOUT_MS  (300 * 1000)  /* silence in both directions ends it */
#define TUNNEL_BUFSIZE          (64 * 1024)

bool  tunnel_wanted(const struct http_request *req);
void  tunnel_forward(struct upstream *u, struct http_server *h,
          const struct http_request *req, const struct route *r,
          struct reply_result *res);

#endif
