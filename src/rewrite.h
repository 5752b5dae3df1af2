/* rewrite.h - what a request and its answer become on the way through: fields and rules */
#ifndef GFPROXY_REWRITE_H
#define GFPROXY_REWRITE_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "http.h"
#include "mount.h"
#include "response.h"

/*
 * Receives each field for the upstream in order, value "" when empty;
 * returns -1 when it has no room. Each forwarder writes them its own way:
 * libcurl's list (upstream.c) or the tunnel's request head (tunnel.c).
 */
typedef int (*rewrite_emit_fn)(void *ctx, const char *name, const char *value);

int  rewrite_request_fields(const struct config *cfg, const struct route *r,
         const struct http_request *req, const char *peer, rewrite_emit_fn emit, void *ctx);
bool rewrite_wants_trailers(const struct http_request *req);
bool rewrite_request_trailer(const struct route *r, const struct http_header *hd);
int  rewrite_response_field(const struct mount_view *m, const struct response *resp,
         const char *line, char *out, size_t size, size_t *len);
int  rewrite_response_rules(const struct route *r, char *out, size_t size, size_t *len);

#endif
