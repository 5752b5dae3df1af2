#!/usr/bin/env bats
# proxy-protocol = yes: the PROXY header (v1 and v2) an L4 balancer sends
# first, from trusted-proxies only; the client it names is the one logged
# and forwarded. Hand-made headers claim addresses no test client has
# (192.0.2.7, 2001:db8::7), so the backend seeing them proves they came from
# the header; a real haproxy proves interoperability. Everything else closes
# the connection with one log line and no answer.

load helpers
load config_helpers
load tls_helpers

# start_pp [TRUSTED] [GLOBAL LINE] - a backend, and gfproxy with
# proxy-protocol = yes from TRUSTED (default 127.0.0.1), reading pp.conf.
start_pp() {
	start_peer
	conf pp <<-EOF
	[global]
	proxy-protocol = yes
	trusted-proxies = ${1:-127.0.0.1}
	${2:-}
	[route a]
	prefix = /
	upstream = $BACKEND_URL
	EOF
	[ "${PP_JOURNAL:-0}" = 1 ] && start_journal_proxy --config "$GF_TMP/pp.conf" ||
		start_conf_proxy pp
}

# A test that failed before stopping its private journal has it stopped in order.
teardown() {
	[ -z "${JOURNAL_NS_PID:-}" ] || stop_journal_proxy
	gf_teardown
}

# The gfproxy entries of the private journal (start_journal_proxy), in
# journalctl's export format: FIELD=value lines, a blank line after each.
journal_entries() {
	nsenter -t "$JOURNALD_PID" -m journalctl --no-pager -o export SYSLOG_IDENTIFIER=gfproxy \
		2>/dev/null || true
}

# journal_until ERE... - $GF_TMP/journal (journal_entries) once a line matches
# each ERE, or after 10 s; then the proxy stopped.
journal_until() {
	local i re found
	for i in $(seq 100); do
		journal_entries >"$GF_TMP/journal"
		found=1
		for re in "$@"; do
			grep -qE "$re" "$GF_TMP/journal" || { found=0; break; }
		done
		[ "$found" = 1 ] && break
		sleep 0.1
	done
	stop_journal_proxy || fail "gfproxy still running"
}

# The v2 signature, then version 2 and a command byte (printf escapes).
V2='\r\n\r\n\x00\r\nQUIT\n'
# v2 PROXY, TCP over IPv4: 192.0.2.7:40312 -> 127.0.0.1:80 (12 address bytes).
V2_TCP4='\x21\x11\x00\x0c\xc0\x00\x02\x07\x7f\x00\x00\x01\x9d\x78\x00\x50'

# send FILE-NAME PRINTF-FORMAT... - the header (printf format) then a GET
# /echo with Connection: close, into $GF_TMP/NAME; the backend's echo lines
# (or nothing) on stdout.
pp_echo() {
	local name=$1; shift
	{
		printf "$@"
		req 'GET /echo HTTP/1.1' 'Host: t' 'X-Forwarded-For: 6.6.6.6' 'Connection: close'
	} >"$GF_TMP/$name"
	raw "$PROXY_PORT" <"$GF_TMP/$name" | resp_body
}

# refused NAME REASON-ERE PRINTF-FORMAT... [-- RAW OPTIONS] - send the bytes,
# expect no answer at all, and exactly one log line saying why.
refused() {
	local name=$1 why=$2; shift 2
	local -a fmt=() opts=()
	while [ $# -gt 0 ] && [ "$1" != -- ]; do fmt+=("$1"); shift; done
	[ "${1:-}" = -- ] && shift && opts=("$@")
	printf "${fmt[@]}" >"$GF_TMP/$name"
	run raw "$PROXY_PORT" "${opts[@]}" <"$GF_TMP/$name"
	assert_output ''
	wait_log PROXY 'PROXY protocol: closed the connection'
	wait_children_gone "$PROXY_SSA" || fail "gfproxy still running"
	run lines PROXY
	assert_output --regexp "^<4>PROXY protocol: closed the connection from 127\.0\.0\.1 port [0-9]+: $why\$"
	[ "${#lines[@]}" = 1 ] || fail "expected one log line, got: $output"
	run backend_log
	assert_output ''
}

# ---------------------------------------------------------------- the client it names

@test "proxy-protocol: a v1 TCP4 header's client is X-Forwarded-For, replacing the client's own" {
	start_pp
	run pp_echo v1 'PROXY TCP4 192.0.2.7 127.0.0.1 40312 80\r\n'
	assert_line 'header: X-Forwarded-For: 192.0.2.7'
	refute_line --partial '6.6.6.6'
	refute_line --partial 'PROXY'
	assert_line 'method: GET'
	wait_log PROXY '^<6>GET /echo -> .* 200 '
}

@test "proxy-protocol: a v1 TCP6 header's client is Forwarded for=\"[...]\"" {
	start_pp 127.0.0.1 'forwarded = yes'
	run pp_echo v1 'PROXY TCP6 2001:db8::7 ::1 40312 80\r\n'
	assert_line 'header: X-Forwarded-For: 2001:db8::7'
	assert_line 'header: Forwarded: for="[2001:db8::7]";proto=http;host="t"'
}

@test "proxy-protocol: a v2 TCP4 header with TLVs names its client; the TLVs are skipped" {
	start_pp
	# Length 12 + 5 (ALPN "h2") + 3 (NOOP, empty) = 20.
	run pp_echo v2 "$V2"'\x21\x11\x00\x14\xc0\x00\x02\x07\x7f\x00\x00\x01\x9d\x78\x00\x50\x01\x00\x02h2\x04\x00\x00'
	assert_line 'header: X-Forwarded-For: 192.0.2.7'
	refute_line --partial '6.6.6.6'
}

@test "proxy-protocol: a v2 TCP6 header names its client, an IPv4-mapped one as IPv4" {
	start_pp
	run pp_echo v2 "$V2"'\x21\x21\x00\x24\x20\x01\x0d\xb8\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x07'"$(printf '\\x00%.0s' $(seq 16))"'\x9d\x78\x00\x50'
	assert_line 'header: X-Forwarded-For: 2001:db8::7'
	run pp_echo v2m "$V2"'\x21\x21\x00\x24'"$(printf '\\x00%.0s' $(seq 10))"'\xff\xff\xc0\x00\x02\x09'"$(printf '\\x00%.0s' $(seq 16))"'\x9d\x78\x00\x50'
	assert_line 'header: X-Forwarded-For: 192.0.2.9'
}

@test "proxy-protocol: v2 LOCAL, v2 UNSPEC and v1 UNKNOWN keep the sender as the client, its forwarding fields not believed" {
	start_pp 127.0.0.1 'forwarded = yes'
	# The bytes after such a header are still the relayed client's, so its
	# X-Forwarded-* and Forwarded are replaced as an untrusted client's are,
	# though the sender is in trusted-proxies.
	# LOCAL (a balancer's health check): even its address block is ignored.
	run pp_echo local "$V2"'\x20\x11\x00\x0c\xc0\x00\x02\x07\x7f\x00\x00\x01\x9d\x78\x00\x50'
	assert_line 'header: X-Forwarded-For: 127.0.0.1'
	refute_line --partial '6.6.6.6'
	run pp_echo unspec "$V2"'\x21\x00\x00\x00'
	assert_line 'header: X-Forwarded-For: 127.0.0.1'
	refute_line --partial '6.6.6.6'
	run pp_echo unknown 'PROXY UNKNOWN ff:ff::1 whatever\r\n'
	assert_line 'header: X-Forwarded-For: 127.0.0.1'
	refute_line --partial '6.6.6.6'
	# Nor the host, scheme or Forwarded it claims.
	{
		printf 'PROXY UNKNOWN\r\n'
		req 'GET /echo HTTP/1.1' 'Host: t' 'X-Forwarded-Host: evil.example' \
			'X-Forwarded-Proto: https' 'Forwarded: for=6.6.6.6' 'Connection: close'
	} >"$GF_TMP/claims"
	raw "$PROXY_PORT" <"$GF_TMP/claims" | resp_body >"$GF_TMP/claims.out"
	run cat "$GF_TMP/claims.out"
	assert_line 'header: X-Forwarded-Host: t'
	assert_line 'header: X-Forwarded-Proto: http'
	assert_line 'header: Forwarded: for=127.0.0.1;proto=http;host="t"'
	refute_line --partial 'evil.example'
	refute_line --partial '6.6.6.6'
	# A header that names a client in trusted-proxies: that client's are believed.
	run pp_echo trusted 'PROXY TCP4 127.0.0.1 127.0.0.1 40312 80\r\n'
	assert_line 'header: X-Forwarded-For: 6.6.6.6, 127.0.0.1'
}

@test "proxy-protocol: after v1 UNKNOWN a client's X-Forwarded-Host does not choose where a redirect goes" {
	printf '%s\n' 'HTTP/1.1 302 Found' 'Location: http://t/next' >"$GF_TMP/head"
	gf_bg CANNED "$GF_PY" "$GF_TOOLS" headers-backend --head "$GF_TMP/head"
	conf ppr <<-EOF
	[global]
	proxy-protocol = yes
	trusted-proxies = 127.0.0.1
	[route a]
	prefix = /a
	upstream = http://127.0.0.1:$CANNED_PORT
	EOF
	start_conf_proxy ppr
	{
		printf 'PROXY UNKNOWN\r\n'
		req 'GET /a/x HTTP/1.1' 'Host: t' 'X-Forwarded-Host: evil.example' \
			'X-Forwarded-Proto: https' 'Connection: close'
	} >"$GF_TMP/redir"
	run raw "$PROXY_PORT" <"$GF_TMP/redir"
	assert_line $'Location: http://t/a/next\r'
}

@test "proxy-protocol: a v2 AF_UNIX header's client is \"unix\"" {
	start_pp
	# 216 address bytes: two sun_path.
	run pp_echo unix "$V2"'\x21\x31\x00\xd8'"$(printf '\\x00%.0s' $(seq 216))"
	assert_line 'header: X-Forwarded-For: unix'
}

@test "proxy-protocol: the header arriving in pieces, then the request later, is read whole" {
	start_pp
	{
		printf "$V2"
		printf "$V2_TCP4"
		req 'GET /echo HTTP/1.1' 'Host: t' 'Connection: close'
	} >"$GF_TMP/split"
	# Cut inside the signature, then before the request.
	run raw "$PROXY_PORT" --split QUIT --pause 0.3 <"$GF_TMP/split"
	assert_line 'header: X-Forwarded-For: 192.0.2.7'
	{
		printf 'PROXY TCP4 192.0.2.7 127.0.0.1 40312 80\r\n'
		req 'GET /echo HTTP/1.1' 'Host: t' 'Connection: close'
	} >"$GF_TMP/split1"
	run raw "$PROXY_PORT" --split GET --pause 0.3 <"$GF_TMP/split1"
	assert_line 'header: X-Forwarded-For: 192.0.2.7'
}

@test "proxy-protocol: every request of a kept-alive connection has the header's client" {
	start_pp
	{
		printf 'PROXY TCP4 192.0.2.7 127.0.0.1 40312 80\r\n'
		req 'GET /echo HTTP/1.1' 'Host: t'
		req 'GET /echo HTTP/1.1' 'Host: t' 'Connection: close'
	} >"$GF_TMP/two"
	run raw "$PROXY_PORT" <"$GF_TMP/two"
	run grep -c '^header: X-Forwarded-For: 192.0.2.7' <<<"$output"
	assert_output 2
}

@test "proxy-protocol: a client behind a real haproxy (send-proxy and send-proxy-v2) is the one forwarded" {
	command -v haproxy >/dev/null || fail "haproxy is not installed"
	# haproxy connects from 127.0.0.3, the only trusted sender; the client
	# from 127.0.0.5, an address only the header can carry.
	start_pp 127.0.0.3
	local mode port
	for mode in send-proxy send-proxy-v2; do
		port=$(gf_free_port)
		cat >"$GF_TMP/haproxy-$mode.cfg" <<-EOF
		global
		    maxconn 16
		defaults
		    mode tcp
		    timeout connect 5s
		    timeout client 10s
		    timeout server 10s
		frontend f
		    bind 127.0.0.1:$port
		    default_backend b
		backend b
		    server gf 127.0.0.1:$PROXY_PORT $mode source 127.0.0.3
		EOF
		gf_bg HAPROXY sh -c "echo $port; exec haproxy -db -f '$GF_TMP/haproxy-$mode.cfg'"
		for i in $(seq 100); do
			ss -Hltn "sport = :$port" | grep -q . && break
			sleep 0.05
		done
		run gf_curl --interface 127.0.0.5 -H 'X-Forwarded-For: 6.6.6.6' "http://127.0.0.1:$port/echo"
		assert_line 'header: X-Forwarded-For: 127.0.0.5'
		refute_line --partial '6.6.6.6'
		kill -TERM "${GF_GROUPS[-1]}"
	done
	run lines PROXY
	refute_output --partial 'PROXY protocol: closed'
}

@test "proxy-protocol: the journal names the header's client in REMOTE_ADDR, the balancer in PROXY_PEER_ADDR" {
	command -v nsenter >/dev/null || fail "nsenter is not installed"
	PP_JOURNAL=1 start_pp
	run pp_echo v1 'PROXY TCP4 192.0.2.7 127.0.0.1 40312 80\r\n'
	assert_line 'header: X-Forwarded-For: 192.0.2.7'
	req 'GET /echo HTTP/1.1' 'Host: t' >"$GF_TMP/nohdr"
	run raw "$PROXY_PORT" <"$GF_TMP/nohdr"
	assert_output ''
	journal_until '^ERROR=no PROXY header$' '^HTTP_TARGET=/echo$'
	# One entry a line, its fields sorted, for whole-entry matching.
	run "$GF_PY" -c 'import sys
for e in open(sys.argv[1]).read().split("\n\n"):
    if "HTTP_TARGET=" in e or "PROXY protocol" in e:
        print(" | ".join(sorted(e.strip().split("\n"))) + " |")' "$GF_TMP/journal"
	[ "${#lines[@]}" = 2 ] || fail "expected the request's entry and the refusal's: $output"
	assert_line --regexp 'HTTP_TARGET=/echo \| .*PRIORITY=6 \| PROXY_PEER_ADDR=127\.0\.0\.1 \| PROXY_PEER_PORT=[0-9]+ \| REMOTE_ADDR=192\.0\.2\.7 \| REMOTE_PORT=40312 \|'
	assert_line --regexp 'ERROR=no PROXY header \| MESSAGE=PROXY protocol: closed the connection from 127\.0\.0\.1 port [0-9]+: no PROXY header \| PRIORITY=4 \| REMOTE_ADDR=127\.0\.0\.1 \| REMOTE_PORT=[0-9]+ \|'
	refute_line --regexp 'ERROR=.*PROXY_PEER'
}

@test "proxy-protocol: over --tls, a failing upstream's entry has all 15 fields (the most one has)" {
	command -v nsenter >/dev/null || fail "nsenter is not installed"
	gf_has_tls || { tls_without_tls; return; }
	tls_files
	{ printf '[global]\nproxy-protocol = yes\ntrusted-proxies = 127.0.0.1\n'
	  cat "$GF_TMP/tls.conf"; } >"$GF_TMP/pptls.conf"
	start_journal_proxy --config "$GF_TMP/pptls.conf" --tls
	# curl sends a v1 header naming its own address, then the ClientHello.
	run tls_curl a.test /down/x --haproxy-protocol -o /dev/null -w '%{http_code}'
	assert_output 502
	journal_until '^HTTP_TARGET=/down/x$'
	run "$GF_PY" -c 'import sys
for e in open(sys.argv[1]).read().split("\n\n"):
    if "HTTP_TARGET=" in e:
        print(" ".join(sorted(l.split("=")[0] for l in e.strip().split("\n")
            if l.split("=")[0] in sys.argv[2:])))' "$GF_TMP/journal" REMOTE_ADDR REMOTE_PORT \
		PROXY_PEER_ADDR PROXY_PEER_PORT HTTP_METHOD HTTP_TARGET UPSTREAM_URL HTTP_STATUS \
		BYTES_SENT BYTES_RECEIVED DURATION_USEC ERROR SANDBOX TLS_VERSION TLS_CIPHER
	assert_output 'BYTES_RECEIVED BYTES_SENT DURATION_USEC ERROR HTTP_METHOD HTTP_STATUS HTTP_TARGET PROXY_PEER_ADDR PROXY_PEER_PORT REMOTE_ADDR REMOTE_PORT SANDBOX TLS_CIPHER TLS_VERSION UPSTREAM_URL'
}

# ---------------------------------------------------------------- refused

@test "proxy-protocol: no header from a trusted sender closes with one log line" {
	start_pp
	refused nohdr 'no PROXY header' 'GET /echo HTTP/1.1\r\nHost: t\r\n\r\n'
}

@test "proxy-protocol: an untrusted sender is closed on, header or not, with one log line" {
	start_pp 127.0.0.2
	refused untrusted 'not in trusted-proxies, .*' 'PROXY TCP4 192.0.2.7 127.0.0.1 40312 80\r\n'
}

@test "proxy-protocol: malformed v1 headers close with one log line each" {
	start_pp
	refused fields 'malformed PROXY v1 header' 'PROXY TCP4 192.0.2.7 127.0.0.1 40312\r\n'
	: >"$GF_TMP/PROXY.err"
	refused twospace 'malformed PROXY v1 header' 'PROXY TCP4  192.0.2.7 127.0.0.1 40312 80\r\n'
	: >"$GF_TMP/PROXY.err"
	refused addr 'malformed address in PROXY v1 header' 'PROXY TCP4 192.0.2.300 127.0.0.1 40312 80\r\n'
	: >"$GF_TMP/PROXY.err"
	refused family 'malformed address in PROXY v1 header' 'PROXY TCP4 2001:db8::7 ::1 40312 80\r\n'
	: >"$GF_TMP/PROXY.err"
	refused port 'malformed port in PROXY v1 header' 'PROXY TCP4 192.0.2.7 127.0.0.1 65536 80\r\n'
	: >"$GF_TMP/PROXY.err"
	refused lf 'PROXY v1 header not ended by CRLF' 'PROXY TCP4 192.0.2.7 127.0.0.1 40312 80\n'
}

@test "proxy-protocol: a v1 header over 107 bytes closes with one log line" {
	start_pp
	refused long 'PROXY v1 header longer than 107 bytes' "PROXY UNKNOWN $(printf 'a%.0s' $(seq 100))\r\n"
}

@test "proxy-protocol: malformed v2 headers close with one log line each" {
	start_pp
	refused version 'PROXY v2 header of an unknown version' "$V2"'\x31\x11\x00\x0c\xc0\x00\x02\x07\x7f\x00\x00\x01\x9d\x78\x00\x50'
	: >"$GF_TMP/PROXY.err"
	refused family 'unknown address family or transport in PROXY v2 header' "$V2"'\x21\x41\x00\x00'
	: >"$GF_TMP/PROXY.err"
	refused short 'PROXY v2 address block shorter than its family.s' "$V2"'\x21\x21\x00\x0c\xc0\x00\x02\x07\x7f\x00\x00\x01\x9d\x78\x00\x50'
	: >"$GF_TMP/PROXY.err"
	# A TLV announcing 255 bytes in a header that has 2 left.
	refused tlv 'PROXY v2 TLV runs past the header' "$V2"'\x21\x11\x00\x11\xc0\x00\x02\x07\x7f\x00\x00\x01\x9d\x78\x00\x50\x01\x00\xffh2'
}

@test "proxy-protocol: a v2 header announcing more than 4096 bytes is refused before they come" {
	start_pp
	# 16 + 65535 announced, 4 sent: refused on the length alone, at once.
	SECONDS=0
	refused huge 'PROXY v2 header longer than 4096 bytes' "$V2"'\x21\x11\xff\xffabcd'
	[ "$SECONDS" -lt 5 ] || fail "took $SECONDS s"
}

@test "proxy-protocol: a header cut short by the sender closes with one log line" {
	start_pp
	refused cut 'connection closed inside the PROXY header' "$V2"'\x21\x11\x00\x0c\xc0\x00' -- --shut
	: >"$GF_TMP/PROXY.err"
	refused cut1 'connection closed inside the PROXY header' 'PROXY TCP4 192.0.2.7' -- --shut
}

@test "proxy-protocol: a header not complete within 15 s closes with one log line" {
	start_pp
	refused slow 'no complete PROXY header within 15000 ms' 'PROXY TCP4 192.0.2.7' -- --idle 25 --total 30
}

@test "proxy-protocol: a balancer that connects and closes (a health check) is not logged" {
	start_pp
	run raw "$PROXY_PORT" --shut </dev/null
	assert_output ''
	wait_children_gone "$PROXY_SSA" || fail "gfproxy still running"
	run lines PROXY
	assert_output ''
}

# ---------------------------------------------------------------- configuration

@test "proxy-protocol: yes without trusted-proxies, or not yes or no, is a configuration error" {
	gf_need_proxy
	conf nosender <<-'EOF'
	[global]
	proxy-protocol = yes
	EOF
	run "$GF_PROXY_BIN" --check-config "$GF_TMP/nosender.conf"
	assert_failure 78
	assert_line "$GF_TMP/nosender.conf:2: proxy-protocol = yes: needs trusted-proxies, the balancers that send the header"
	conf maybe <<-'EOF'
	[global]
	trusted-proxies = 127.0.0.1
	proxy-protocol = v2
	EOF
	run "$GF_PROXY_BIN" --check-config "$GF_TMP/maybe.conf"
	assert_failure 78
	assert_line "$GF_TMP/maybe.conf:3: proxy-protocol = v2: expected yes or no"
}

@test "proxy-protocol: off (the default), a PROXY line is an unknown method" {
	start_pair
	req 'PROXY TCP4 192.0.2.7 127.0.0.1 40312 80' >"$GF_TMP/off"
	run raw "$PROXY_PORT" <"$GF_TMP/off"
	assert_line --regexp '^HTTP/1.1 501 '
}
