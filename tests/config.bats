#!/usr/bin/env bats
# gfproxy.conf: routes, upstreams, header and trust rules, error reporting,
# and the file read afresh by every connection (gfproxy.conf(5)).

load helpers
load config_helpers

# ---------------------------------------------------------------- the shipped file

@test "config: the shipped packaging/gfproxy.conf passes --check-config" {
	gf_need_proxy
	run "$GF_PROXY_BIN" --check-config "$GF_ROOT/packaging/gfproxy.conf"
	assert_success
	assert_output --partial '1 route, configuration OK'
}

@test "config: the shipped file reproduces the default: /proxy/user/1 reaches the upstream as /user/1" {
	start_backend
	sed "s|^upstream = http://127.0.0.1:8198\$|upstream = $BACKEND_URL|" \
		"$GF_ROOT/packaging/gfproxy.conf" >"$GF_TMP/shipped.conf"
	grep -q "^upstream = $BACKEND_URL\$" "$GF_TMP/shipped.conf" ||
		fail "the shipped file has no active 'upstream = http://127.0.0.1:8198' line"
	start_conf_proxy shipped
	run gf_curl -w ' %{http_code}' "$PURL/proxy/user/1"
	assert_output 'user info from server backend 200'
	run status_of "$PURL/proxyfoo"
	assert_output 404
	wait_log BACKEND '^<6>GET /user/1 200'
}

@test "config: every key of the shipped file is one gfproxy knows (uncommented, still valid)" {
	gf_need_proxy
	# Uncomment every "#key = value" line: the examples must parse too. The
	# [tls] files they name are made here, as the administrator would.
	sed -E 's/^#([a-z-]+ = )/\1/; s/^#(\[route |\[tls\])/\1/' "$GF_ROOT/packaging/gfproxy.conf" |
		sed "s|/etc/gfproxy/tls/|$GF_TMP/|g; s|/var/lib/gfproxy-tls/|$GF_TMP/|g" >"$GF_TMP/all.conf"
	grep -q "^certificate = $GF_TMP/fullchain.pem $GF_TMP/privkey.pem\$" "$GF_TMP/all.conf" ||
		fail "the shipped file has no [tls] example"
	if ! gf_has_tls; then
		run "$GF_PROXY_BIN" --check-config "$GF_TMP/all.conf"
		assert_failure 78
		assert_output --partial "[tls]: this gfproxy is built without TLS"
		assert_output --partial 'gfproxy: 1 error in'
		return
	fi
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
		-subj /CN=example.test -keyout "$GF_TMP/privkey.pem" -out "$GF_TMP/fullchain.pem" \
		2>/dev/null || fail "openssl: certificate"
	"$GF_PROXY_BIN" --rotate-ticket-key "$GF_TMP/ticket.key"
	run "$GF_PROXY_BIN" --check-config "$GF_TMP/all.conf"
	assert_success
	assert_output --partial '2 routes, configuration OK'
}

# ---------------------------------------------------------------- --check-config

@test "config: --check-config on a valid file prints the route count and exits 0" {
	gf_need_proxy
	conf ok <<-EOF
	[global]
	timeout = 2.5
	[route a]
	prefix = /a
	upstream = http://127.0.0.1:1
	[route b]
	prefix = /b
	upstream = unix:/run/b.sock
	EOF
	run "$GF_PROXY_BIN" --check-config "$GF_TMP/ok.conf"
	assert_success
	assert_output "$GF_TMP/ok.conf: 2 routes, configuration OK"
}

@test "config: --check-config prints every error as FILE:LINE: and exits 78" {
	gf_need_proxy
	conf bad <<-'EOF'
	# line 1
	timeout = 5
	[global]
	timeout = soon
	max-body = 0
	trusted-proxies = 10.0.0.0/33
	forwarded = maybe
	colour = blue
	[route a]
	prefix = relative
	upstream = ftp://127.0.0.1
	strip-prefix = perhaps
	ca-file = relative.pem
	request-header-set = NoColon
	response-header-remove = X-A: b
	request-header-add = Bad Name: x
	[server]
	[route b
	just some words
	[route c]
	prefix = /c
	[route d]
	prefix = /c
	upstream = http://127.0.0.1:1
	[route e]
	prefix = /c
	upstream = http://127.0.0.1:1
	EOF
	run "$GF_PROXY_BIN" --check-config "$GF_TMP/bad.conf"
	assert_failure 78
	local f=$GF_TMP/bad.conf
	assert_line "$f:2: timeout = 5: setting outside a section"
	assert_line --regexp "^$f:4: timeout = soon: "
	assert_line --regexp "^$f:5: max-body = 0: "
	assert_line --regexp "^$f:6: trusted-proxies = 10.0.0.0/33: "
	assert_line --regexp "^$f:7: forwarded = maybe: expected yes or no"
	assert_line "$f:8: colour = blue: unknown key in [global]"
	assert_line --regexp "^$f:10: prefix = relative: prefix must be a path"
	assert_line --regexp "^$f:11: upstream = ftp://127.0.0.1: upstream must be http://, https:// or unix:"
	assert_line --regexp "^$f:12: strip-prefix = perhaps: expected yes or no"
	assert_line --regexp "^$f:13: ca-file = relative.pem: ca-file must be an absolute path"
	assert_line --regexp "^$f:14: request-header-set = NoColon: "
	assert_line --regexp "^$f:15: response-header-remove = X-A: b: a remove rule takes only a field name"
	assert_line --regexp "^$f:16: request-header-add = Bad Name: x: invalid character"
	assert_line --regexp "^$f:17: unknown section \[server\]"
	assert_line --regexp "^$f:18: malformed section header"
	assert_line --regexp "^$f:19: malformed line"
	# Whole-route checks name the line of the route's section.
	assert_line "$f:9: route a has no prefix"
	assert_line "$f:20: route c has no upstream"
	assert_line "$f:25: route e has the same prefix and host as route d"
	assert_line --regexp "^gfproxy: [0-9]+ errors in $f\$"
}

@test "config: --check-config refuses a line longer than the line limit, with its number" {
	gf_need_proxy
	{
		printf '[route a]\nprefix = /\nupstream = http://127.0.0.1:1\n'
		printf 'request-header-add = X-Long: %s\n' "$(printf 'x%.0s' $(seq 250))"
	} >"$GF_TMP/long.conf"
	run "$GF_PROXY_BIN" --check-config "$GF_TMP/long.conf"
	assert_failure 78
	assert_line --regexp "^$GF_TMP/long.conf:4: line longer than [0-9]+ bytes\$"
}

@test "config: a line of 198 bytes is accepted" {
	gf_need_proxy
	local key='request-header-add = X-Long: '
	{
		printf '[route a]\nprefix = /\nupstream = http://127.0.0.1:1\n'
		printf '%s%s\n' "$key" "$(head -c $((198 - ${#key})) /dev/zero | tr '\0' x)"
	} >"$GF_TMP/l198.conf"
	[ "$(sed -n 4p "$GF_TMP/l198.conf" | tr -d '\n' | wc -c)" = 198 ]
	run "$GF_PROXY_BIN" --check-config "$GF_TMP/l198.conf"
	assert_success
}

@test "config: --check-config on a missing file exits 78 and says why" {
	gf_need_proxy
	run "$GF_PROXY_BIN" --check-config "$GF_TMP/nope.conf"
	assert_failure 78
	assert_line --partial "$GF_TMP/nope.conf:"
	assert_line --partial 'No such file or directory'
}

@test "config: comments, blank lines and ' ;' inline comments are ignored" {
	start_peer
	conf c <<-EOF
	# a comment
	; another

	[route a] ; trailing comment
	prefix = /a ; the prefix
	upstream = $BACKEND_URL ; the backend
	request-header-set = X-Tag: one;two ; the ';' right after 'one' is kept
	EOF
	run "$GF_PROXY_BIN" --check-config "$GF_TMP/c.conf"
	assert_success
	start_conf_proxy c
	run echo_via /a/echo
	assert_line 'target: /echo'
	assert_line 'header: X-Tag: one;two'
}

# ---------------------------------------------------------------- a broken file at run time

@test "config: a broken file answers 503 and logs each error with its line at priority 2" {
	start_peer
	conf broken <<-EOF
	[route a]
	prefix = /a
	upstream = $BACKEND_URL
	timeout = forever
	[route b]
	EOF
	start_conf_proxy broken
	run gf_curl -i "$PURL/a/echo"
	assert_line --regexp '^HTTP/1.1 503 '
	assert_line --partial 'configuration error'
	wait_log PROXY '^<3>GET /a/echo 503'
	run lines PROXY
	assert_line --regexp "^<2>$GF_TMP/broken.conf:4: timeout = forever: "
	assert_line "<2>$GF_TMP/broken.conf:5: route b has no prefix"
	assert_line "<2>$GF_TMP/broken.conf:5: route b has no upstream"
	# Nothing of the file was half-applied: the backend saw nothing.
	assert_equal "$(accepted BACKEND)" 0
}

@test "config: --config naming a missing file answers 503 (a typo never falls back silently)" {
	start_peer
	gf_need_proxy
	gf_activate PROXY "$GF_PROXY_BIN" --config "$GF_TMP/missing.conf"
	run status_of "http://127.0.0.1:$PROXY_PORT/proxy/echo"
	assert_output 503
	wait_log PROXY "^<2>$GF_TMP/missing.conf:.*No such file"
}

# ---------------------------------------------------------------- re-read per connection

@test "config: a change of file applies to the next connection, with no restart" {
	start_peer_as ONE
	start_peer_as TWO
	conf live <<-EOF
	[route a]
	prefix = /a
	upstream = http://127.0.0.1:$ONE_PORT
	EOF
	start_conf_proxy live
	run gf_curl -w ' %{http_code}' "$PURL/a/x1"
	assert_output 'response from server backend 200'
	# Replace the file the way an editor or a deployment does: rename over it.
	cat >"$GF_TMP/live.new" <<-EOF
	[route a]
	prefix = /a
	upstream = http://127.0.0.1:$TWO_PORT
	[route b]
	prefix = /b
	upstream = http://127.0.0.1:$TWO_PORT
	EOF
	mv "$GF_TMP/live.new" "$GF_TMP/live.conf"
	run gf_curl -w ' %{http_code}' "$PURL/a/x2" "$PURL/b/x3"
	assert_output 'response from server backend 200response from server backend 200'
	wait_log TWO '^<6>GET /x3 200'
	run lines ONE
	assert_output --regexp '^<6>GET /x1 200'
	refute_output --partial '/x2'
	run lines TWO
	assert_line --regexp '^<6>GET /x2 200'
	# The same activator (no restart) served all three.
	assert_equal "$(accepted PROXY)" 2
}

@test "config: requests on one connection that alternate between routes reach each its own upstream" {
	start_peer_as ONE
	start_peer_as TWO
	conf alternate <<-EOF
	[route a]
	prefix = /a
	upstream = http://127.0.0.1:$ONE_PORT
	[route b]
	prefix = /b
	upstream = http://127.0.0.1:$TWO_PORT
	EOF
	start_conf_proxy alternate
	run gf_curl -o /dev/null -w '%{http_code} ' "$PURL/a/1" \
		--next -s -o /dev/null -w '%{http_code} ' "$PURL/b/2" \
		--next -s -o /dev/null -w '%{http_code} ' "$PURL/a/3" \
		--next -s -o /dev/null -w '%{http_code} ' "$PURL/b/4" \
		--next -s -o /dev/null -w '%{http_code}' "$PURL/a/5"
	assert_output '200 200 200 200 200'
	assert_equal "$(accepted PROXY)" 1
	wait_log ONE '^<6>GET /5 200'
	wait_log TWO '^<6>GET /4 200'
	run lines ONE
	assert_output --regexp '^<6>GET /1 200.*
<6>GET /3 200.*
<6>GET /5 200'
	run lines TWO
	assert_output --regexp '^<6>GET /2 200.*
<6>GET /4 200'
	wait_log PROXY "^<6>GET /b/4 -> http://127.0.0.1:$TWO_PORT/4 200"
}

@test "config: a file broken, then fixed, between connections: 503, then served" {
	start_peer
	conf flip <<-EOF
	[route a]
	prefix = /a
	upstream = $BACKEND_URL
	EOF
	start_conf_proxy flip
	run status_of "$PURL/a/x"
	assert_output 200
	printf 'oops\n' >>"$GF_TMP/flip.conf"
	run status_of "$PURL/a/x"
	assert_output 503
	sed -i '$d' "$GF_TMP/flip.conf"
	run status_of "$PURL/a/x"
	assert_output 200
	wait_log PROXY "^<2>$GF_TMP/flip.conf:4: malformed line"
}

# ---------------------------------------------------------------- routes

@test "config: the longest matching prefix wins, whatever the order in the file" {
	start_peer
	conf routes <<-EOF
	[route deep]
	prefix = /a/b
	upstream = $BACKEND_URL
	request-header-set = X-Route: deep
	[route root]
	prefix = /
	upstream = $BACKEND_URL
	request-header-set = X-Route: root
	[route a]
	prefix = /a/
	upstream = $BACKEND_URL
	request-header-set = X-Route: a
	EOF
	start_conf_proxy routes
	run echo_via /a/b/echo
	assert_line 'header: X-Route: deep'
	assert_line 'target: /echo'
	run echo_via /a/echo
	assert_line 'header: X-Route: a'
	assert_line 'target: /echo'
	run echo_via /echo
	assert_line 'header: X-Route: root'
	assert_line 'target: /echo'
}

@test "config: prefixes match on segment boundaries only" {
	start_peer
	conf seg <<-EOF
	[route api]
	prefix = /api
	upstream = $BACKEND_URL
	EOF
	start_conf_proxy seg
	local p
	for p in /apix /apix/echo /ap /API/echo /x/api/echo; do
		run status_of --path-as-is "$PURL$p"
		assert_output 404
	done
	for p in /api /api/ '/api?q=1' /api/echo; do
		run status_of --path-as-is "$PURL$p"
		assert_output 200
	done
	wait_log BACKEND '^<6>GET /echo 200'
	run backend_log
	assert_line --regexp '^<6>GET /\?q=1 200'
}

@test "config: host matches the Host field (any case, any port) before a route without host" {
	start_peer
	conf hosts <<-EOF
	[route any]
	prefix = /
	upstream = $BACKEND_URL
	request-header-set = X-Route: any
	[route shop]
	prefix = /
	host = shop.example
	upstream = $BACKEND_URL
	request-header-set = X-Route: shop
	EOF
	start_conf_proxy hosts
	run echo_via /echo 'Host: shop.example'
	assert_line 'header: X-Route: shop'
	run echo_via /echo 'Host: SHOP.Example:8080'
	assert_line 'header: X-Route: shop'
	run echo_via /echo 'Host: shop.example.evil'
	assert_line 'header: X-Route: any'
	run echo_via /echo 'Host: www.shop.example'
	assert_line 'header: X-Route: any'
}

@test "config: a route with host does not take requests for other hosts: 404" {
	start_peer
	conf onlyhost <<-EOF
	[route shop]
	prefix = /
	host = shop.example
	upstream = $BACKEND_URL
	EOF
	start_conf_proxy onlyhost
	run status_of -H 'Host: shop.example' "$PURL/echo"
	assert_output 200
	run status_of -H 'Host: other.example' "$PURL/echo"
	assert_output 404
}

@test "config: strip-prefix = no forwards the path whole" {
	start_peer
	conf nostrip <<-EOF
	[route keep]
	prefix = /echo
	strip-prefix = no
	upstream = $BACKEND_URL
	[route strip]
	prefix = /s
	strip-prefix = yes
	upstream = $BACKEND_URL
	EOF
	start_conf_proxy nostrip
	run echo_via '/echo?x=1'
	assert_line 'target: /echo?x=1'
	run echo_via /s/echo
	assert_line 'target: /echo'
}

@test "config: preserve-host = no sends the upstream's host:port as Host; yes passes the client's" {
	start_peer
	conf host <<-EOF
	[route own]
	prefix = /own
	preserve-host = no
	upstream = $BACKEND_URL
	[route client]
	prefix = /client
	upstream = $BACKEND_URL
	EOF
	start_conf_proxy host
	run echo_via /own/echo 'Host: public.example'
	assert_line "header: Host: 127.0.0.1:$BACKEND_PORT"
	refute_line 'header: Host: public.example'
	assert_line 'header: X-Forwarded-Host: public.example'
	run echo_via /client/echo 'Host: public.example'
	assert_line 'header: Host: public.example'
}

@test "config: an upstream base path is joined with one slash, escapes and query kept" {
	start_peer
	conf base <<-EOF
	[route slash]
	prefix = /s
	upstream = $BACKEND_URL/base/
	[route noslash]
	prefix = /n
	upstream = $BACKEND_URL/base
	[route esc]
	prefix = /e
	upstream = $BACKEND_URL/a%2Fb
	[route echo]
	prefix = /q
	upstream = $BACKEND_URL/echo
	EOF
	start_conf_proxy base
	gf_curl --path-as-is -o /dev/null "$PURL/s/x%2Fy?q=%41" "$PURL/n/x" "$PURL/n" "$PURL/e/%7e"
	wait_log BACKEND '^<6>GET /a%2Fb/%7e 200'
	run backend_log
	assert_line --regexp '^<6>GET /base/x%2Fy\?q=%41 200'
	assert_line --regexp '^<6>GET /base/x 200'
	assert_line --regexp '^<6>GET /base/ 200'
	gf_curl -o /dev/null "$PURL/q?k=%2F"
	wait_log BACKEND '^<6>GET /echo/\?k=%2F 200'
}

# ---------------------------------------------------------------- upstream kinds

@test "config: an https upstream is verified by default: unknown CA gives 502" {
	make_test_ca
	tls_server TLS
	conf tls <<-EOF
	[route t]
	prefix = /
	upstream = https://127.0.0.1:$TLS_PORT
	EOF
	if ! gf_has_tls; then
		refused_without_tls tls
		return
	fi
	start_conf_proxy tls
	run gf_curl -i "$PURL/x"
	assert_line --regexp '^HTTP/1.1 502 '
	wait_log PROXY "^<3>GET /x -> https://127.0.0.1:$TLS_PORT/x 502"
}

@test "config: an https upstream with ca-file is verified against it: 200" {
	make_test_ca
	tls_server TLS
	conf tls <<-EOF
	[route t]
	prefix = /
	upstream = https://127.0.0.1:$TLS_PORT/base
	ca-file = $GF_TMP/ca.pem
	preserve-host = no
	EOF
	if ! gf_has_tls; then
		refused_without_tls tls
		return
	fi
	start_conf_proxy tls
	run gf_curl -w '%{http_code}\n' "$PURL/x?y"
	assert_line 'tls: GET /base/x?y HTTP/1.1'
	assert_line "Host: 127.0.0.1:$TLS_PORT"
	assert_line 200
	wait_log PROXY "^<6>GET /x\\?y -> https://127.0.0.1:$TLS_PORT/base/x\\?y 200"
}

@test "config: ca-file of another CA does not verify the upstream: 502" {
	make_test_ca
	cp "$GF_TMP/ca.pem" "$GF_TMP/first-ca.pem"
	make_test_ca    # a new CA and server certificate; first-ca.pem did not sign it
	tls_server TLS
	conf tls <<-EOF
	[route t]
	prefix = /
	upstream = https://127.0.0.1:$TLS_PORT
	ca-file = $GF_TMP/first-ca.pem
	EOF
	if ! gf_has_tls; then
		refused_without_tls tls
		return
	fi
	start_conf_proxy tls
	run status_of "$PURL/x"
	assert_output 502
}

@test "config: a unix: upstream reaches a backend on a Unix socket" {
	unix_peer UBE
	conf unix <<-EOF
	[route u]
	prefix = /u
	upstream = unix:$GF_TMP/UBE.sock
	preserve-host = no
	EOF
	start_conf_proxy unix
	run echo_via '/u/echo?z=1' 'Host: public.example'
	assert_line 'target: /echo?z=1'
	assert_line 'header: Host: localhost'
	wait_log PROXY "^<6>GET /u/echo\\?z=1 -> unix:$GF_TMP/UBE.sock/echo\\?z=1 200"
}

# ---------------------------------------------------------------- failover and retries

@test "config: upstreams are tried in order: a refused first upstream fails over to the second" {
	start_peer
	local dead
	dead=$(refused_port)
	conf fo <<-EOF
	[route a]
	prefix = /
	upstream = http://127.0.0.1:$dead
	upstream = $BACKEND_URL
	EOF
	start_conf_proxy fo
	run gf_curl -w ' %{http_code}' "$PURL/user/1"
	assert_output 'user info from server backend 200'
	# The journal entry names the upstream that served the request.
	wait_log PROXY "^<6>GET /user/1 -> $BACKEND_URL/user/1 200"
	run proxy_log
	refute_output --partial ":$dead"
}

@test "config: the first upstream that answers serves; later ones are not contacted" {
	start_peer_as ONE
	start_peer_as TWO
	conf order <<-EOF
	[route a]
	prefix = /
	upstream = http://127.0.0.1:$ONE_PORT
	upstream = http://127.0.0.1:$TWO_PORT
	EOF
	start_conf_proxy order
	run gf_curl "$PURL/a" "$PURL/b"
	wait_log PROXY "/b -> http://127.0.0.1:$ONE_PORT/b 200"
	assert_equal "$(accepted TWO)" 0
	run lines ONE
	assert_line --regexp '^<6>GET /a 200'
	assert_line --regexp '^<6>GET /b 200'
}

@test "config: a POST whose first upstream refuses is sent to the next, body intact" {
	start_peer
	local dead sum
	dead=$(refused_port)
	conf fopost <<-EOF
	[route a]
	prefix = /
	upstream = http://127.0.0.1:$dead
	upstream = $BACKEND_URL
	EOF
	start_conf_proxy fopost
	head -c 100000 /dev/urandom >"$GF_TMP/body"
	sum=$(sha256sum "$GF_TMP/body" | cut -d' ' -f1)
	run gf_curl --data-binary @"$GF_TMP/body" "$PURL/echo"
	assert_line 'method: POST'
	assert_line 'body-length: 100000'
	assert_line "body-sha256: $sum"
}

@test "config: all upstreams refused: 502, each tried once" {
	local d1 d2
	d1=$(refused_port)
	d2=$(refused_port)
	conf alldead <<-EOF
	[route a]
	prefix = /
	upstream = http://127.0.0.1:$d1
	upstream = http://127.0.0.1:$d2
	EOF
	start_conf_proxy alldead
	run status_of "$PURL/x"
	assert_output 502
	# The log names the last upstream tried.
	wait_log PROXY "^<3>GET /x -> http://127.0.0.1:$d2/x 502"
}

@test "config: a POST that reached an upstream is never sent twice, even when it got no answer" {
	hangup_server HUP1
	hangup_server HUP2
	conf post <<-EOF
	[route a]
	prefix = /
	upstream = http://127.0.0.1:$HUP1_PORT
	upstream = http://127.0.0.1:$HUP2_PORT
	EOF
	start_conf_proxy post
	run status_of -d 'charge=1' "$PURL/pay"
	assert_output 502
	wait_log PROXY '^<3>POST /pay .* 502'
	assert_equal "$(requests_seen HUP1)" 1
	assert_equal "$(requests_seen HUP2)" 0
}

@test "config: a POST on a reused upstream connection that got no answer is not sent again" {
	# The upstream answers the first request of its connection, then reads
	# the second (a POST) and closes without a word: the POST may have
	# taken effect, so it must not be sent again, to it or to another.
	hangup_server HUP 1
	hangup_server HUP2
	conf reuse <<-EOF
	[route a]
	prefix = /
	upstream = http://127.0.0.1:$HUP_PORT
	upstream = http://127.0.0.1:$HUP2_PORT
	EOF
	start_conf_proxy reuse
	# One client connection: a GET, then the POST (curl --next reuses it).
	run gf_curl -o /dev/null -w '%{http_code} ' "$PURL/first" \
		--next -q --silent --max-time 10 -o /dev/null -w '%{http_code}' -d 'charge=1' "$PURL/pay"
	assert_output --regexp '^200 (502|000)$'
	assert_equal "$(accepted PROXY)" 1
	wait_log PROXY '^<[0-7]>POST /pay '
	run grep -c '^request POST /pay' "$GF_TMP/HUP.err"
	assert_output 1
	assert_equal "$(requests_seen HUP2)" 0
}

@test "config: GETs on one client connection survive an upstream that drops every kept connection" {
	# The upstream answers one request per connection and closes on the
	# next without a word, so libcurl resends each later GET on a new
	# connection. It counts those resends for the life of its handle and
	# refuses the sixth; gfproxy takes a new handle instead.
	hangup_server HUP 1
	conf drops <<-EOF
	[route a]
	prefix = /
	upstream = http://127.0.0.1:$HUP_PORT
	EOF
	start_conf_proxy drops
	local i args=()
	for i in 1 2 3 4 5 6 7 8 9 10; do
		args+=(--next -q --silent --max-time 10 -o /dev/null -w '%{http_code} ' "$PURL/r$i")
	done
	run gf_curl -o /dev/null -w '%{http_code} ' "$PURL/r0" "${args[@]}"
	assert_output '200 200 200 200 200 200 200 200 200 200 200 '
	assert_equal "$(accepted PROXY)" 1
	# Every GET but the first reached the upstream twice.
	assert_equal "$(requests_seen HUP)" 21
	wait_log PROXY '^<6>GET /r10 -> .* 200'
}

@test "config: a GET without body that got no answer is retried on the next upstream" {
	start_peer
	hangup_server HUP
	conf get <<-EOF
	[route a]
	prefix = /
	upstream = http://127.0.0.1:$HUP_PORT
	upstream = $BACKEND_URL
	EOF
	start_conf_proxy get
	run gf_curl -w ' %{http_code}' "$PURL/user/1"
	assert_output 'user info from server backend 200'
	assert_equal "$(requests_seen HUP)" 1
	wait_log PROXY "^<6>GET /user/1 -> $BACKEND_URL/user/1 200"
}

@test "config: idempotent methods without a body are retried; with a body, or not idempotent, never" {
	start_peer
	hangup_server HUP
	conf methods <<-EOF
	[route a]
	prefix = /
	upstream = http://127.0.0.1:$HUP_PORT
	upstream = $BACKEND_URL
	EOF
	start_conf_proxy methods
	local m n=0
	for m in -I '-X OPTIONS' '-X DELETE'; do
		run status_of $m "$PURL/m"
		assert_output 200
		n=$((n + 1))
		assert_equal "$(requests_seen HUP)" "$n"
	done
	run status_of -X PUT -d 'x' "$PURL/m"    # idempotent, but has a body
	assert_output 502
	run status_of -X GET -d 'x' "$PURL/m"    # a GET with a body
	assert_output 502
	run status_of -X PATCH "$PURL/m"
	assert_output 502
	run status_of -X POST -H 'Content-Length: 0' "$PURL/m"
	assert_output 502
	assert_equal "$(requests_seen HUP)" $((n + 4))
	run backend_log
	refute_output --regexp '(PUT|PATCH|POST) /m'
	refute_output --regexp 'GET /m .*body-length'
}

# ---------------------------------------------------------------- timeouts and limits

@test "config: a route's max-body answers 413, other routes keep the global limit" {
	start_peer
	conf body <<-EOF
	[global]
	max-body = 2K
	[route small]
	prefix = /small
	upstream = $BACKEND_URL
	max-body = 100
	[route big]
	prefix = /big
	upstream = $BACKEND_URL
	max-body = 1M
	[route other]
	prefix = /other
	upstream = $BACKEND_URL
	EOF
	start_conf_proxy body
	head -c 101 /dev/zero >"$GF_TMP/b101"
	head -c 100 /dev/zero >"$GF_TMP/b100"
	head -c 4000 /dev/zero >"$GF_TMP/b4000"
	run status_of --data-binary @"$GF_TMP/b101" "$PURL/small/upload"
	assert_output 413
	run status_of --data-binary @"$GF_TMP/b100" "$PURL/small/upload"
	assert_output 200
	run status_of --data-binary @"$GF_TMP/b4000" "$PURL/big/upload"
	assert_output 200
	run status_of --data-binary @"$GF_TMP/b4000" "$PURL/other/upload"
	assert_output 413
	# Chunked: refused as the body arrives.
	run status_of -H 'Transfer-Encoding: chunked' --data-binary @"$GF_TMP/b4000" "$PURL/small/upload"
	assert_output 413
}

# cookie_head N - a canned head of N Set-Cookie fields and a Content-Length,
# in $GF_TMP/head; prints the bytes of its field lines as sent (CRLF ends).
cookie_head() {
	{
		echo 'HTTP/1.1 200 OK'
		for i in $(seq "$1"); do echo "Set-Cookie: c$i=v$i; Path=/"; done
		echo 'Content-Length: 6'
	} >"$GF_TMP/head"
	tail -n +2 "$GF_TMP/head" | sed 's/$/\r/' | wc -c
}

@test "config: 210 Set-Cookie fields reach the client by default" {
	cookie_head 210 >/dev/null
	gf_bg CANNED "$GF_PY" "$GF_TOOLS" headers-backend --head "$GF_TMP/head"
	start_proxy --upstream "http://127.0.0.1:$CANNED_PORT"
	run gf_curl -i "$PURL/proxy/x"
	assert_success
	assert_line --index 0 --regexp $'^HTTP/1.1 200 OK\r$'
	# Path=/ comes back under the prefix (cookie-rewrite).
	assert_equal "$(grep -ac '^Set-Cookie: c[0-9]*=v[0-9]*; Path=/proxy' <<<"$output")" 210
	assert_line $'Set-Cookie: c210=v210; Path=/proxy\r'
	assert_equal "${lines[-1]}" hello
}

@test "config: a route's max-response-fields answers 502 one field past it, and the log names it" {
	# 60 Set-Cookie and a Content-Length: 61 fields.
	cookie_head 60 >/dev/null
	gf_bg CANNED "$GF_PY" "$GF_TOOLS" headers-backend --head "$GF_TMP/head"
	conf fields <<-EOF
	[global]
	max-response-fields = 61
	[route at]
	prefix = /at
	upstream = http://127.0.0.1:$CANNED_PORT
	[route under]
	prefix = /under
	upstream = http://127.0.0.1:$CANNED_PORT
	max-response-fields = 60
	EOF
	start_conf_proxy fields
	run status_of "$PURL/at/x"
	assert_output 200
	run gf_curl -i "$PURL/under/x"
	assert_success
	assert_line --index 0 --regexp $'^HTTP/1.1 502 Bad Gateway\r$'
	wait_log PROXY '^<3>GET /under/x -> .* 502 .*more than max-response-fields \(60\) fields'
	run proxy_log
	assert_line --regexp '^<6>GET /at/x -> [^ ]+ 200 '
}

@test "config: a route's max-response-head answers 502 one byte past it, and the log names it" {
	local bytes; bytes=$(cookie_head 60)
	[ "$bytes" -gt 1024 ] || fail "head of $bytes bytes: too small for the test"
	gf_bg CANNED "$GF_PY" "$GF_TOOLS" headers-backend --head "$GF_TMP/head"
	conf headsize <<-EOF
	[route at]
	prefix = /at
	upstream = http://127.0.0.1:$CANNED_PORT
	max-response-head = $bytes
	[route under]
	prefix = /under
	upstream = http://127.0.0.1:$CANNED_PORT
	max-response-head = $((bytes - 1))
	[route small]
	prefix = /small
	upstream = http://127.0.0.1:$CANNED_PORT
	max-response-head = 1K
	EOF
	start_conf_proxy headsize
	run gf_curl -i "$PURL/at/x"
	assert_line --index 0 --regexp $'^HTTP/1.1 200 OK\r$'
	assert_equal "$(grep -ac '^Set-Cookie:' <<<"$output")" 60
	run status_of "$PURL/under/x"
	assert_output 502
	wait_log PROXY "^<3>GET /under/x -> .* 502 .*larger than max-response-head \\($((bytes - 1)) bytes\\)"
	run status_of "$PURL/small/x"
	assert_output 502
	wait_log PROXY '^<3>GET /small/x -> .* 502 .*larger than max-response-head \(1024 bytes\)'
}

@test "config: the answer to a WebSocket upgrade is held to the route's limits too" {
	cookie_head 60 >/dev/null
	mv "$GF_TMP/head" "$GF_TMP/head60"
	gf_bg BIG "$GF_PY" "$GF_TOOLS" headers-backend --head "$GF_TMP/head60"
	cookie_head 20 >/dev/null
	gf_bg CANNED "$GF_PY" "$GF_TOOLS" headers-backend --head "$GF_TMP/head"
	conf tunnel <<-EOF
	[route fields]
	prefix = /fields
	upstream = http://127.0.0.1:$CANNED_PORT
	max-response-fields = 20
	[route head]
	prefix = /head
	upstream = http://127.0.0.1:$BIG_PORT
	max-response-head = 1K
	[route ok]
	prefix = /ok
	upstream = http://127.0.0.1:$CANNED_PORT
	EOF
	start_conf_proxy tunnel
	local ws=(-H 'Connection: Upgrade' -H 'Upgrade: websocket' -H 'Sec-WebSocket-Version: 13'
		-H 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==')
	# Not a 101: the answer is relayed, and the connection ends.
	run gf_curl -i "${ws[@]}" "$PURL/ok/ws"
	assert_line --index 0 --regexp $'^HTTP/1.1 200 OK\r$'
	assert_equal "$(grep -ac '^Set-Cookie:' <<<"$output")" 20
	run status_of "${ws[@]}" "$PURL/fields/ws"
	assert_output 502
	wait_log PROXY '^<3>GET /fields/ws -> .* 502 .*more than max-response-fields \(20\) fields'
	# 60 fields of 1.5 KiB.
	run status_of "${ws[@]}" "$PURL/head/ws"
	assert_output 502
	wait_log PROXY '^<3>GET /head/ws -> .* 502 .*larger than max-response-head \(1024 bytes\)'
}

@test "config: max-response-head and max-response-fields out of range are errors with their line" {
	gf_need_proxy
	conf limits <<-'EOF'
	[global]
	max-response-head = 512K
	max-response-fields = 0
	[route a]
	prefix = /a
	upstream = http://127.0.0.1:1
	max-response-head = 1000
	max-response-fields = 10001
	[route b]
	prefix = /b
	upstream = http://127.0.0.1:1
	max-response-head = lots
	max-response-fields = 5K
	[route c]
	prefix = /c
	upstream = http://127.0.0.1:1
	max-response-head = 256K
	max-response-fields = 10000
	EOF
	run "$GF_PROXY_BIN" --check-config "$GF_TMP/limits.conf"
	assert_failure 78
	local f=$GF_TMP/limits.conf
	assert_line "$f:2: max-response-head = 512K: max-response-head must be a size from 1K to 256K"
	assert_line "$f:3: max-response-fields = 0: max-response-fields must be a number from 1 to 10000"
	assert_line --regexp "^$f:7: max-response-head = 1000: "
	assert_line --regexp "^$f:8: max-response-fields = 10001: "
	assert_line --regexp "^$f:12: max-response-head = lots: "
	assert_line --regexp "^$f:13: max-response-fields = 5K: "
	refute_line --regexp "^$f:1[78]:"
	assert_line --regexp "^gfproxy: 6 errors in $f\$"
}

@test "config: a route's timeout answers 504; another route waits longer" {
	start_peer
	conf slow <<-EOF
	[global]
	timeout = 5
	[route quick]
	prefix = /quick
	upstream = $BACKEND_URL
	timeout = 300ms
	[route patient]
	prefix = /patient
	upstream = $BACKEND_URL
	EOF
	start_conf_proxy slow
	run status_of "$PURL/quick/delay/1500"
	assert_output 504
	run status_of "$PURL/patient/delay/1000"
	assert_output 200
	wait_log PROXY '^<3>GET /quick/delay/1500 .* 504 .*no response from upstream in time'
}

@test "config: [global] timeout applies to routes without one" {
	start_peer
	conf gtime <<-EOF
	[global]
	timeout = 0.3
	[route a]
	prefix = /
	upstream = $BACKEND_URL
	EOF
	start_conf_proxy gtime
	run status_of "$PURL/delay/1500"
	assert_output 504
}

@test "config: connect-timeout answers 504 for an upstream that never accepts" {
	gf_bg HOLE "$GF_PY" "$GF_TOOLS" blackhole --lifetime 20
	conf ct <<-EOF
	[route a]
	prefix = /
	upstream = http://127.0.0.1:$HOLE_PORT
	connect-timeout = 300ms
	EOF
	start_conf_proxy ct
	local t0 t1
	t0=$(date +%s%N)
	run status_of "$PURL/x"
	t1=$(date +%s%N)
	assert_output 504
	[ $(((t1 - t0) / 1000000)) -lt 3000 ] || fail "took $(((t1 - t0) / 1000000)) ms"
}

@test "config: a connect timeout on the first upstream fails over to the second" {
	start_peer
	gf_bg HOLE "$GF_PY" "$GF_TOOLS" blackhole --lifetime 20
	conf ctfo <<-EOF
	[global]
	connect-timeout = 300ms
	[route a]
	prefix = /
	upstream = http://127.0.0.1:$HOLE_PORT
	upstream = $BACKEND_URL
	EOF
	start_conf_proxy ctfo
	run gf_curl -w ' %{http_code}' -d x "$PURL/user/1"
	assert_output 'user info from server backend 200'
}

# ---------------------------------------------------------------- header rules

@test "config: request header rules: remove drops, set replaces, add appends" {
	start_peer
	conf reqh <<-EOF
	[route a]
	prefix = /
	upstream = $BACKEND_URL
	request-header-remove = Cookie
	request-header-remove = x-secret
	request-header-set = X-Env: production
	request-header-add = X-Tag: added
	request-header-set = X-Empty:
	EOF
	start_conf_proxy reqh
	run echo_via /echo 'Cookie: a=1' 'X-Secret: s' 'X-Env: spoofed' 'X-Env: twice' \
		'X-Tag: client' 'X-Keep: yes'
	refute_line --partial 'Cookie'
	refute_line --partial 'X-Secret'
	refute_line --partial 'spoofed'
	refute_line --partial 'twice'
	assert_line 'header: X-Env: production'
	assert_line 'header: X-Tag: client'
	assert_line 'header: X-Tag: added'
	assert_line 'header: X-Keep: yes'
	assert_line --regexp '^header: X-Empty: ?$'
}

@test "config: a request-header-set rule for Host wins over preserve-host" {
	start_peer
	conf sethost <<-EOF
	[route a]
	prefix = /a
	upstream = $BACKEND_URL
	request-header-set = Host: inner.example
	[route b]
	prefix = /b
	upstream = $BACKEND_URL
	preserve-host = no
	request-header-set = Host: inner.example
	EOF
	start_conf_proxy sethost
	local p
	for p in /a/echo /b/echo; do
		run echo_via "$p" 'Host: public.example'
		assert_line 'header: Host: inner.example'
		assert_equal "$(grep -c '^header: Host:' <<<"$output")" 1
	done
}

@test "config: a request-header-set rule replaces the X-Forwarded-Proto gfproxy makes" {
	# Behind a TLS terminator: the upstream must see https, once.
	start_peer
	conf xfp <<-EOF
	[route a]
	prefix = /
	upstream = $BACKEND_URL
	request-header-set = X-Forwarded-Proto: https
	EOF
	start_conf_proxy xfp
	run echo_via /echo
	assert_line 'header: X-Forwarded-Proto: https'
	refute_line 'header: X-Forwarded-Proto: http'
}

@test "config: a response-header-remove rule for Content-Length is refused (it would unframe the body)" {
	gf_need_proxy
	local field
	for field in Content-Length Transfer-Encoding Connection; do
		printf '[route a]\nprefix = /\nupstream = http://127.0.0.1:1\nresponse-header-remove = %s\n' \
			"$field" >"$GF_TMP/frame.conf"
		run "$GF_PROXY_BIN" --check-config "$GF_TMP/frame.conf"
		assert_failure 78
		assert_line --regexp "^$GF_TMP/frame.conf:4: response-header-remove = $field: "
	done
}

@test "config: a request-header-set rule for Content-Length is refused (it would desync the upstream)" {
	gf_need_proxy
	printf '[route a]\nprefix = /\nupstream = http://127.0.0.1:1\nrequest-header-set = Content-Length: 30\n' \
		>"$GF_TMP/frame.conf"
	run "$GF_PROXY_BIN" --check-config "$GF_TMP/frame.conf"
	assert_failure 78
	assert_line --regexp "^$GF_TMP/frame.conf:4: request-header-set = Content-Length: 30: "
}

@test "config: response header rules: remove drops, set replaces, add appends" {
	start_peer
	conf resph <<-EOF
	[route a]
	prefix = /
	upstream = $BACKEND_URL
	response-header-remove = set-cookie
	response-header-set = X-Order: one
	response-header-add = X-Frame-Options: DENY
	response-header-add = Content-Type: text/x-added
	EOF
	start_conf_proxy resph
	run gf_curl -D - -o /dev/null "$PURL/cookies"
	refute_line --partial 'Set-Cookie'
	assert_equal "$(grep -ci '^X-Order:' <<<"$output")" 1
	assert_line $'X-Order: one\r'
	assert_line $'X-Frame-Options: DENY\r'
	# add keeps the upstream's field
	assert_line --regexp $'^Content-Type: text/plain'
	assert_line $'Content-Type: text/x-added\r'
}

@test "config: response header rules hold for trailers: a field removed or set is not relayed as a trailer" {
	start_peer
	conf trl <<-EOF
	[route b]
	prefix = /b
	upstream = $BACKEND_URL
	[route a]
	prefix = /a
	upstream = $BACKEND_URL
	response-header-remove = x-trailer-two
	response-header-set = X-Checksum: ours
	EOF
	start_conf_proxy trl
	# The peer's /trailers sends X-Checksum and X-Trailer-Two as trailers.
	req 'GET /b/trailers HTTP/1.1' 'Host: t' 'TE: trailers' 'Connection: close' >"$GF_TMP/b.req"
	run raw "$PROXY_PORT" <"$GF_TMP/b.req"
	assert_line $'X-Checksum: 5d41402abc4b2a76b9719d911017c592\r'
	assert_line $'X-Trailer-Two: 2\r'
	req 'GET /a/trailers HTTP/1.1' 'Host: t' 'TE: trailers' 'Connection: close' >"$GF_TMP/a.req"
	run raw "$PROXY_PORT" <"$GF_TMP/a.req"
	assert_line --partial 'HTTP/1.1 200'
	refute_line --partial 'X-Trailer-Two'
	refute_line --partial '5d41402abc4b2a76b9719d911017c592'
	assert_equal "$(grep -ci '^X-Checksum:' <<<"$output")" 1
	assert_line $'X-Checksum: ours\r'
	assert_line $'hello\r'
}

@test "config: request header rules hold for trailers: a field removed or set is not forwarded as a trailer" {
	start_peer
	conf rtrl <<-EOF
	[route a]
	prefix = /a
	upstream = $BACKEND_URL
	request-header-remove = x-secret
	request-header-set = X-Rule: ours
	EOF
	start_conf_proxy rtrl
	printf '%s\r\n' 'POST /a/echo HTTP/1.1' 'Host: t' 'Transfer-Encoding: chunked' \
		'Connection: close' '' 5 hello 0 'X-Sum: 42' 'X-Secret: s' 'X-Rule: theirs' '' >"$GF_TMP/t.req"
	run raw "$PROXY_PORT" <"$GF_TMP/t.req"
	assert_line --partial 'HTTP/1.1 200'
	assert_line --partial 'trailer: X-Sum: 42'
	refute_line --partial 'X-Secret'
	refute_line --partial 'theirs'
	assert_line --partial 'X-Rule: ours'
}

@test "config: header rules apply only to their route" {
	start_peer
	conf scope <<-EOF
	[route a]
	prefix = /a
	upstream = $BACKEND_URL
	request-header-set = X-Route: a
	[route b]
	prefix = /b
	upstream = $BACKEND_URL
	EOF
	start_conf_proxy scope
	run echo_via /b/echo
	refute_line --partial 'X-Route'
}

# ---------------------------------------------------------------- trust

@test "config: by default a client's X-Forwarded-* are replaced, not appended to" {
	start_peer
	conf notrust <<-EOF
	[route a]
	prefix = /
	upstream = $BACKEND_URL
	EOF
	start_conf_proxy notrust
	run echo_via /echo 'Host: real.example' 'X-Forwarded-For: 6.6.6.6' \
		'X-Forwarded-Host: evil.example' 'X-Forwarded-Proto: https' 'Forwarded: for=6.6.6.6'
	assert_line 'header: X-Forwarded-For: 127.0.0.1'
	assert_line 'header: X-Forwarded-Host: real.example'
	assert_line 'header: X-Forwarded-Proto: http'
	refute_line --partial '6.6.6.6'
	refute_line --partial 'evil.example'
	refute_line --partial 'Forwarded: for='
}

@test "config: a trusted proxy's X-Forwarded-* are kept and appended to" {
	start_peer
	conf trust <<-EOF
	[global]
	trusted-proxies = 10.0.0.0/8, 127.0.0.0/8 ::1
	[route a]
	prefix = /
	upstream = $BACKEND_URL
	EOF
	start_conf_proxy trust
	run echo_via /echo 'Host: inner' 'X-Forwarded-For: 203.0.113.7' \
		'X-Forwarded-Host: public.example' 'X-Forwarded-Proto: https'
	assert_line 'header: X-Forwarded-For: 203.0.113.7, 127.0.0.1'
	assert_line 'header: X-Forwarded-Host: public.example'
	assert_line 'header: X-Forwarded-Proto: https'
	refute_line 'header: X-Forwarded-Proto: http'
}

@test "config: trusted-proxies that do not cover the client change nothing" {
	start_peer
	conf othertrust <<-EOF
	[global]
	trusted-proxies = 10.0.0.0/8 127.0.0.2 ::1
	[route a]
	prefix = /
	upstream = $BACKEND_URL
	EOF
	start_conf_proxy othertrust
	run echo_via /echo 'X-Forwarded-For: 203.0.113.7'
	assert_line 'header: X-Forwarded-For: 127.0.0.1'
}

@test "config: forwarded = yes emits an RFC 7239 Forwarded field" {
	start_peer
	conf fwd <<-EOF
	[global]
	forwarded = yes
	[route a]
	prefix = /
	upstream = $BACKEND_URL
	EOF
	start_conf_proxy fwd
	run echo_via /echo 'Host: app.example:8080' 'Forwarded: for=6.6.6.6'
	assert_line 'header: Forwarded: for=127.0.0.1;proto=http;host="app.example:8080"'
	refute_line --partial '6.6.6.6'
}

@test "config: forwarded = yes from a trusted proxy appends to its Forwarded" {
	start_peer
	conf fwdt <<-EOF
	[global]
	forwarded = yes
	trusted-proxies = 127.0.0.1
	[route a]
	prefix = /
	upstream = $BACKEND_URL
	EOF
	start_conf_proxy fwdt
	run echo_via /echo 'Host: h' 'Forwarded: for=203.0.113.7'
	assert_line 'header: Forwarded: for=203.0.113.7, for=127.0.0.1;proto=http;host="h"'
}

@test "config: via = yes appends 1.1 gfproxy to the client's Via" {
	start_peer
	conf via <<-EOF
	[global]
	via = yes
	[route a]
	prefix = /
	upstream = $BACKEND_URL
	EOF
	start_conf_proxy via
	run echo_via /echo 'Via: 1.0 front'
	assert_line 'header: Via: 1.0 front, 1.1 gfproxy'
	run echo_via /echo
	assert_line 'header: Via: 1.1 gfproxy'
}

@test "config: forwarded and via are off by default" {
	start_peer
	conf plain <<-EOF
	[route a]
	prefix = /
	upstream = $BACKEND_URL
	EOF
	start_conf_proxy plain
	run echo_via /echo
	refute_line --regexp '^header: (Forwarded|Via):'
}

# ---------------------------------------------------------------- the command line

@test "config: --upstream and --prefix replace the file's routes with one" {
	start_peer_as ONE
	start_peer_as TWO
	conf cli <<-EOF
	[route a]
	prefix = /a
	upstream = http://127.0.0.1:$ONE_PORT
	EOF
	start_conf_proxy cli --upstream "http://127.0.0.1:$TWO_PORT" --prefix /p
	run status_of "$PURL/a/x"
	assert_output 404
	run status_of "$PURL/p/y"
	assert_output 200
	wait_log TWO '^<6>GET /y 200'
	assert_equal "$(accepted ONE)" 0
}

@test "config: --max-body and --timeout override every route's own" {
	start_peer
	conf over <<-EOF
	[route a]
	prefix = /
	upstream = $BACKEND_URL
	max-body = 1M
	timeout = 10
	EOF
	start_conf_proxy over --max-body 10 --timeout 300ms
	run status_of -d 'more than ten bytes' "$PURL/upload"
	assert_output 413
	run status_of "$PURL/delay/1500"
	assert_output 504
}

@test "config: --check-config applies the command line too" {
	gf_need_proxy
	conf chk <<-EOF
	[route a]
	prefix = /a
	upstream = http://127.0.0.1:1
	[route b]
	prefix = /b
	upstream = http://127.0.0.1:1
	EOF
	run "$GF_PROXY_BIN" --check-config "$GF_TMP/chk.conf"
	assert_output --partial '2 routes, configuration OK'
	run "$GF_PROXY_BIN" --upstream http://127.0.0.1:2 --check-config "$GF_TMP/chk.conf"
	assert_output --partial '1 route, configuration OK'
}
