/* config.h - gfproxy.conf: routes, upstreams, header rules, trust */
#ifndef GFPROXY_CONFIG_H
#define GFPROXY_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CONFIG_DEFAULT_PATH     "/etc/gfproxy/gfproxy.conf"
#define CONFIG_MAX_LINE         198   /* bytes per line, fitting libinih's 200-byte buffer */
#define CONFIG_MAX_ROUTES       256
#define CONFIG_MAX_UPSTREAMS    8     /* per route, tried in order */
#define CONFIG_MAX_RULES        16    /* header rules per route and direction */
#define CONFIG_MAX_TRUSTED      32    /* trusted-proxies entries */
#define CONFIG_MAX_ERRORS       32    /* reported per file */
#define CONFIG_MAX_TIMEOUT_MS   (24 * 3600 * 1000L)
#define CONFIG_MAX_CERTS        16    /* certificate pairs in [tls] */

/*
 * An upstream's response head: max-response-head bounds its field lines
 * in bytes as sent (CRLF included, the status line not), and
 * max-response-fields counts them; past either it is a 502. Both buffers
 * are allocated per connection at the largest limit any route sets.
 *
 * 64 KiB is what it always was, and as much as nginx takes with its
 * largest common proxy_buffer_size; 256 KiB is the most we accept as
 * libcurl 8.3 and later refuse 300 KiB of response head on their own
 * (and any one line over 100 KiB, whatever we allow). Fields have no
 * count limit in nginx, only the buffer: 1000 lets 210 Set-Cookie or an
 * httpbin /response-headers through with room to spare, and 10000 is
 * what a 256 KiB head of short fields comes to (the fields cost 8 bytes
 * each here, 32 in a tunnel).
 */
#define CONFIG_RESPONSE_HEAD_DEFAULT    (64 * 1024)
#define CONFIG_RESPONSE_HEAD_MIN        1024
#define CONFIG_RESPONSE_HEAD_MAX        (256 * 1024)
#define CONFIG_RESPONSE_FIELDS_DEFAULT  1000
#define CONFIG_RESPONSE_FIELDS_MAX      10000

#define CONFIG_DEFAULT_PREFIX   "/proxy"
#define CONFIG_DEFAULT_UPSTREAM "http://127.0.0.1:8198"

enum upstream_kind { UPSTREAM_HTTP, UPSTREAM_HTTPS, UPSTREAM_UNIX };

struct upstream_def {
	enum upstream_kind  kind;
	char               *url;        /* as written, for the log */
	char               *origin;     /* scheme://authority given to libcurl */
	char               *base;       /* base path, may be "" */
	char               *unix_path;  /* for unix: upstreams */
	uint16_t            port;       /* TCP port, the scheme's when not given */
};

enum header_op { HEADER_ADD, HEADER_SET, HEADER_REMOVE };

struct header_rule {
	enum header_op  op;
	char           *name;
	char           *value;          /* NULL for remove */
};

/*
 * What a route translates in the upstream's answers (mount.c): DEFAULT
 * until config_finish() decides, from whether the client sees other paths
 * than the upstream does.
 */
enum rewrite_mode { REWRITE_DEFAULT, REWRITE_YES, REWRITE_NO };

/* redirect-rewrite = FROM TO: a Location starting with FROM starts with TO instead. */
struct redirect_rule {
	char           *from;
	char           *to;
};

struct route {
	char                *name;
	char                *prefix;    /* without a trailing slash; "" is "/" */
	size_t               prefix_len;
	char                *host;      /* match on Host too, or NULL */
	bool                 strip_prefix;
	bool                 preserve_host;
	struct upstream_def  upstreams[CONFIG_MAX_UPSTREAMS];
	size_t               nupstreams;
	long                 connect_timeout_ms;
	long                 timeout_ms;
	uint64_t             max_body;
	size_t               max_response_head;     /* bytes, 0 until inherited */
	size_t               max_response_fields;   /* fields, 0 until inherited */
	char                *ca_file;
	struct header_rule   request_rules[CONFIG_MAX_RULES];
	size_t               nrequest_rules;
	struct header_rule   response_rules[CONFIG_MAX_RULES];
	size_t               nresponse_rules;
	enum rewrite_mode    redirect_rewrite;  /* Location, Content-Location, Refresh */
	enum rewrite_mode    cookie_rewrite;    /* Set-Cookie's Path and Domain */
	struct redirect_rule redirect_rules[CONFIG_MAX_RULES];
	size_t               nredirect_rules;
	unsigned             line;      /* where its section starts */
};

/* One [tls] "certificate = CHAIN KEY" line: PEM files, read per connection. */
struct tls_pair {
	char        *chain;             /* the certificate, then its intermediates */
	char        *key;
	unsigned     line;
};

struct cidr {
	int             family;         /* AF_INET or AF_INET6 */
	unsigned char   addr[16];
	unsigned        bits;
};

struct config {
	const char      *path;          /* NULL: built-in defaults */
	struct route    *routes[CONFIG_MAX_ROUTES];
	size_t           nroutes;
	long             connect_timeout_ms;
	long             timeout_ms;
	uint64_t         max_body;
	size_t           max_response_head;
	size_t           max_response_fields;
	struct cidr      trusted[CONFIG_MAX_TRUSTED];
	size_t           ntrusted;
	bool             forwarded;     /* emit RFC 7239 Forwarded */
	bool             via;           /* emit Via */
	bool             proxy_protocol; /* a PROXY header from trusted-proxies starts each connection */
	long             send_timeout_ms; /* longest a client may refuse to read */
	struct tls_pair  tls_pairs[CONFIG_MAX_CERTS];   /* [tls], chosen by SNI */
	size_t           ntls_pairs;
	char            *tls_ticket_key;  /* shared session ticket keys, or NULL */
	unsigned         tls_ticket_key_line;
	/* "FILE:LINE: message" for each problem found. */
	char             errors[CONFIG_MAX_ERRORS][CONFIG_MAX_LINE + 128];
	size_t           nerrors;
};

/* Command-line settings that override the file; 0 or NULL when not given. */
struct config_overrides {
	const char  *upstream;
	const char  *prefix;
	long         connect_timeout_ms;
	long         timeout_ms;
	uint64_t     max_body;
};

void         config_error(struct config *cfg, unsigned line, const char *fmt, ...)
                 __attribute__((format(printf, 3, 4)));
int          config_load(struct config *cfg, const char *path, bool must_exist,
                 const struct config_overrides *o);
void         config_free(struct config *cfg);
bool         config_trusted(const struct config *cfg, const char *addr);
void         config_response_limits(const struct config *cfg, size_t *ret_head,
                 size_t *ret_fields);
long         config_parse_ms(const char *s);
uint64_t     config_parse_size(const char *s);
void         config_free_upstream(struct upstream_def *u);
int          config_check_prefix(const char *prefix, const char **ret_why);
int          config_parse_upstream(struct upstream_def *u, const char *url,
                 const char **ret_why);

#endif
