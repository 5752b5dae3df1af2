#!/usr/bin/env bats
# Resilience: under load, faults and abuse, nothing is lost and nothing leaks.
#
# Each fault is real: a backend process SIGKILLed, a client that hangs up, a
# peer that never answers, a network namespace with no routes, an fd limit,
# 1,000 idle connections. Only 127.0.0.1 and our own namespaces carry traffic.

load helpers

# How soon the upstream must see a departed client's request aborted: 1 s,
# 2 s under valgrind (which slows gfproxy's 200 ms liveness checks).
GONE_LIMIT=1.0
[ "${GFPROXY_VALGRIND:-0}" = 1 ] && GONE_LIMIT=2.0

# Seconds (float) between two $EPOCHREALTIME-style stamps.
secs() {
	"$GF_PY" -c "import sys; print('%.3f' % (float(sys.argv[2]) - float(sys.argv[1])))" "$1" "$2"
}

# float_lt A B: A < B
float_lt() {
	"$GF_PY" -c "import sys; sys.exit(0 if float(sys.argv[1]) < float(sys.argv[2]) else 1)" "$1" "$2"
}

# A scripted upstream that reports, with a wall-clock stamp, when its
# connection closes: what the C backend cannot tell us. Modes:
#   sink    read the request and its body, never answer
#   silent  read the head, never answer
#   source  answer 200 with a huge Content-Length and send until it fails
#   stall   answer a head promising 1000 bytes, send 100, then go quiet
# stdout: the port, then "first T" (first body byte or first send) and
# "closed T BYTES" lines.
peer() {
	cat >"$GF_TMP/peer.py" <<-'EOF'
		import socket, sys, time
		mode, life = sys.argv[1], float(sys.argv[2])
		ls = socket.socket()
		ls.bind(("127.0.0.1", 0))
		ls.listen(16)
		print(ls.getsockname()[1], flush=True)
		ls.settimeout(life)
		c, _ = ls.accept()
		c.settimeout(life)
		buf = b""
		while b"\r\n\r\n" not in buf:
		    d = c.recv(65536)
		    if not d:
		        print("closed %.6f 0" % time.time(), flush=True)
		        sys.exit(0)
		    buf += d
		n = len(buf) - buf.index(b"\r\n\r\n") - 4
		print("head %.6f" % time.time(), flush=True)
		try:
		    if mode == "source":
		        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1099511627776\r\n\r\n")
		        block = bytes(65536)
		        print("first %.6f" % time.time(), flush=True)
		        while True:
		            c.sendall(block)
		            n += len(block)
		    if mode == "stall":
		        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" + b"x" * 100)
		    first = False
		    while True:
		        d = c.recv(65536)
		        if not d:
		            break
		        if not first and mode == "sink":
		            print("first %.6f" % time.time(), flush=True)
		            first = True
		        n += len(d)
		except OSError:
		    pass
		print("closed %.6f %d" % (time.time(), n), flush=True)
	EOF
	gf_bg "${2:-PEER}" "$GF_PY" "$GF_TMP/peer.py" "$1" 30
}

# The stamp of the peer's "closed" line, waited for (bounded).
peer_closed() {
	local f=$GF_TMP/${1:-PEER}.out i
	for i in $(seq 100); do
		grep -q '^closed ' "$f" && break
		sleep 0.05
	done
	sed -n 's/^closed \([0-9.]*\) .*/\1/p' "$f"
}

# A proxy child's exit as systemd-socket-activate reported it.
assert_proxy_exits_cleanly() {
	wait_children_gone "$PROXY_SSA" 5 || fail "gfproxy still running: $(ps -o pid,stat,etimes,args --ppid "$PROXY_SSA")"
	run grep -a '^Child .* died with code' "$GF_TMP/PROXY.err"
	assert_success
	refute_output --regexp 'died with code [1-9]'
}

# Kill the backend process serving the running download once it has sent
# some bytes; the client's outcome goes to $GF_TMP/dl.
kill_backend_mid() {
	local path=$1 pid i
	gftool download --port "$PROXY_PORT" --path "$path" --timeout 30 >"$GF_TMP/dl" 2>&1 &
	local client=$!
	for i in $(seq 100); do
		pid=$(gf_children "$BACKEND_SSA" | head -n1)
		# streaming: it has written more than 1 MiB
		[ -n "$pid" ] && [ "$(awk '/^wchar/ {print $2}' "/proc/$pid/io" 2>/dev/null || echo 0)" -gt $((1 << 20)) ] && break
		sleep 0.05
	done
	[ -n "$pid" ] || fail "no backend process for $path"
	kill -KILL "$pid"
	wait "$client" || true
}

@test "resilience: a 10 s soak loses nothing, every body intact and every request accounted for" {
	local limit=0 build=$GF_BUILD_DIR
	# RSS means nothing under ASan's shadow memory or valgrind.
	[ "$GF_SANITIZED" = 1 ] || limit=16
	# Under valgrind: the wrappers, which are named like the programs.
	[ "${GFPROXY_VALGRIND:-0}" = 1 ] && build=$GF_VG_WRAP
	run timeout 600 "$GF_PY" "$BATS_TEST_DIRNAME/soak" --seconds 10 --build "$build" \
		--rss-limit "$limit"
	echo "# ${lines[0]}" >&3
	[ "$status" -eq 0 ] || fail "$output"
	assert_line --regexp '^soak: .* mismatches 0, unexpected statuses 0, errors 0,'
}

@test "resilience: a backend SIGKILLed mid chunked response leaves the client a truncated one" {
	start_pair
	kill_backend_mid "/proxy/stream/$((1 << 40))"
	run cat "$GF_TMP/dl"
	# No final chunk: the client's chunked reader hits the end of the stream.
	assert_output --partial "EOFError"
	refute_output --partial "status HTTP"
	wait_log PROXY '^<3>GET /proxy/stream/[0-9]+ -> .* 200 [0-9]+B .*: .+'
	assert_proxy_exits_cleanly
}

@test "resilience: a backend SIGKILLed mid Content-Length response leaves the client a short one" {
	start_pair
	kill_backend_mid "/proxy/bytes/$((1 << 40))"
	run cat "$GF_TMP/dl"
	assert_output --regexp 'EOFError: closed [0-9]+ bytes short'
	wait_log PROXY '^<3>GET /proxy/bytes/[0-9]+ -> .* 200 [0-9]+B .*: .+'
	assert_proxy_exits_cleanly
}

@test "resilience: a client gone mid-upload: the upstream connection closes within 1 s" {
	peer sink
	start_proxy --upstream "http://127.0.0.1:$PEER_PORT"
	run "$GF_PY" - "$PROXY_PORT" "$GF_TMP/PEER.out" <<-'EOF'
		import socket, sys, time
		s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
		s.sendall(b"POST /proxy/up HTTP/1.1\r\nHost: t\r\nContent-Length: 104857600\r\n\r\n")
		s.sendall(bytes(1 << 20))
		for _ in range(200):
		    if "first" in open(sys.argv[2]).read():
		        break
		    time.sleep(0.05)
		else:
		    sys.exit("the upstream never got body bytes")
		print("%.6f" % time.time())
		s.close()
	EOF
	assert_success
	local closed; closed=$(peer_closed)
	[ -n "$closed" ] || fail "the upstream connection is still open: $(cat "$GF_TMP/PEER.out")"
	local took; took=$(secs "$output" "$closed")
	echo "# upstream closed ${took}s after the client" >&3
	float_lt "$took" "$GONE_LIMIT" || fail "upstream closed ${took}s after the client"
	assert_proxy_exits_cleanly
	wait_log PROXY '^<4>POST /proxy/up -> .*'
}

@test "resilience: a client gone mid-download: the upstream connection closes within 1 s" {
	peer source
	start_proxy --upstream "http://127.0.0.1:$PEER_PORT"
	run "$GF_PY" - "$PROXY_PORT" <<-'EOF'
		import socket, sys, time
		s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
		s.sendall(b"GET /proxy/big HTTP/1.1\r\nHost: t\r\n\r\n")
		n = 0
		while n < (4 << 20):
		    d = s.recv(65536)
		    if not d:
		        sys.exit("closed early")
		    n += len(d)
		print("%.6f" % time.time())
		s.close()
	EOF
	assert_success
	local closed; closed=$(peer_closed)
	[ -n "$closed" ] || fail "the upstream connection is still open: $(cat "$GF_TMP/PEER.out")"
	local took; took=$(secs "$output" "$closed")
	echo "# upstream closed ${took}s after the client" >&3
	float_lt "$took" "$GONE_LIMIT" || fail "upstream closed ${took}s after the client"
	assert_proxy_exits_cleanly
}

@test "resilience: a client gone while the upstream thinks: the upstream connection closes within 1 s" {
	# gfproxy looks at its client from libcurl's progress callback: the
	# client leaves at different moments of that cycle, the slowest counts.
	local d i=0 closed took worst=0 all=() pv xv
	: >"$GF_TMP/empty.conf"
	for d in 0 0.15 0.3 0.6 0.9; do
		i=$((i + 1))
		peer silent "PEER$i"
		pv=PEER${i}_PORT
		gf_activate "PROXY$i" "$GF_PROXY_BIN" --config "$GF_TMP/empty.conf" \
			--upstream "http://127.0.0.1:${!pv}"
		xv=PROXY${i}_PORT
		run "$GF_PY" - "${!xv}" "$GF_TMP/PEER$i.out" "$d" <<-'EOF'
			import socket, sys, time
			s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
			s.sendall(b"GET /proxy/slow HTTP/1.1\r\nHost: t\r\n\r\n")
			# Leave only once the upstream has the request (before that,
			# gfproxy rightly never contacts it), then after a delay.
			for _ in range(400):
			    if "head" in open(sys.argv[2]).read():
			        break
			    time.sleep(0.01)
			else:
			    sys.exit("the upstream never got the request")
			time.sleep(float(sys.argv[3]))
			print("%.6f" % time.time())
			s.close()
		EOF
		assert_success
		closed=$(peer_closed "PEER$i")
		[ -n "$closed" ] || fail "left after ${d}s: the upstream connection is still open"
		took=$(secs "$output" "$closed")
		all+=("${d}s:${took}s")
		float_lt "$took" "$worst" || worst=$took
	done
	echo "# client left Ns after the upstream got the request: upstream closed Ms after the client: ${all[*]}" >&3
	float_lt "$worst" "$GONE_LIMIT" || fail "upstream closed up to ${worst}s after the client: ${all[*]}"
}

@test "resilience: a backend that accepts and never answers gets a 504 after --timeout" {
	peer silent
	start_proxy --upstream "http://127.0.0.1:$PEER_PORT" --timeout 1
	run gf_curl -o /dev/null -w '%{http_code} %{time_total}' "$PURL/proxy/x"
	assert_success
	local code=${output% *} t=${output#* }
	assert_equal "$code" 504
	float_lt 0.9 "$t" && float_lt "$t" 3 || fail "504 after ${t}s"
	wait_log PROXY '^<3>GET /proxy/x -> .* 504 .*: no response from upstream in time'
	assert_proxy_exits_cleanly
}

@test "resilience: a backend that sends a head then stalls: the client is cut after --timeout" {
	peer stall
	start_proxy --upstream "http://127.0.0.1:$PEER_PORT" --timeout 1
	local t0=$EPOCHREALTIME
	run gf_curl -o "$GF_TMP/body" "$PURL/proxy/x"
	local took; took=$(secs "$t0" "$EPOCHREALTIME")
	# 18: transfer closed with outstanding read data remaining
	assert_failure 18
	assert_equal "$(stat -c %s "$GF_TMP/body")" 100
	float_lt 0.9 "$took" && float_lt "$took" 3 || fail "cut after ${took}s"
	wait_log PROXY '^<3>GET /proxy/x -> .* 200 100B .*: upstream stalled mid-response'
	assert_proxy_exits_cleanly
}

@test "resilience: a closed backend port is a 502 within 100 ms" {
	local dead; dead=$(gf_free_port)
	start_proxy --upstream "http://127.0.0.1:$dead"
	gf_curl -o /dev/null "$PURL/proxy/warm-up" || true
	run gf_curl -o /dev/null -w '%{http_code} %{time_total}' "$PURL/proxy/x"
	assert_success
	local code=${output% *} t=${output#* }
	assert_equal "$code" 502
	# The proxy's own measure, from the request read to the answer.
	wait_log PROXY '^<3>GET /proxy/x -> .* 502 0B [0-9.]+ms: .*Couldn.t connect'
	local ms limit=100
	# valgrind runs gfproxy 20 to 50 times slower.
	[ "${GFPROXY_VALGRIND:-0}" = 1 ] && limit=2000
	ms=$(proxy_log | sed -n 's|^<3>GET /proxy/x -> .* 502 0B \([0-9.]*\)ms.*|\1|p')
	float_lt "$ms" "$limit" || fail "502 took ${ms} ms in gfproxy"
	# End to end, process start included: only meaningful without a sanitizer.
	if [ "$GF_SANITIZED" != 1 ] && [ "${GFPROXY_VALGRIND:-0}" != 1 ]; then
		float_lt "$t" 0.1 || fail "502 after ${t}s end to end"
	fi
	echo "# 502 in ${ms} ms (gfproxy), ${t} s end to end" >&3
}

# unshare -n: gfproxy alone in a new network namespace with no interface up,
# so nothing it tries can leave the machine (the resolver's server in
# resolv.conf and 192.0.2.1 are unreachable there, not merely unanswered).
# The client connection was accepted outside and still works.
start_isolated_proxy() {
	unshare -n true 2>/dev/null || fail "unshare -n does not work here (needs root or user namespaces)"
	: >"$GF_TMP/empty.conf"
	gf_activate PROXY unshare -n "$GF_PROXY_BIN" --config "$GF_TMP/empty.conf" "$@"
	PURL=http://127.0.0.1:$PROXY_PORT
}

@test "resilience: an unresolvable backend name is a 502 with the reason in the log" {
	start_isolated_proxy --upstream http://gfproxy-test.invalid:8198 --connect-timeout 2
	run gf_curl -i "$PURL/proxy/x"
	assert_success
	assert_line --index 0 --regexp $'^HTTP/1.1 502 '
	wait_log PROXY '^<3>GET /proxy/x -> http://gfproxy-test.invalid:8198/x 502 .*: .*resolve'
	assert_proxy_exits_cleanly
}

@test "resilience: an unroutable backend address is a 502 with the reason in the log" {
	start_isolated_proxy --upstream http://192.0.2.1:8198 --connect-timeout 2
	run gf_curl -i -w '\n%{time_total}' "$PURL/proxy/x"
	assert_success
	assert_line --index 0 --regexp $'^HTTP/1.1 502 '
	wait_log PROXY '^<3>GET /proxy/x -> http://192.0.2.1:8198/x 502 .*: .+'
	echo "# $(proxy_log | head -n1)" >&3
	assert_proxy_exits_cleanly
}

@test "resilience: a missing backend socket (unix:) is a 502 with the reason in the log" {
	start_proxy --upstream "unix:$GF_TMP/nonexistent.sock"
	run gf_curl -i "$PURL/proxy/x"
	assert_success
	assert_line --index 0 --regexp $'^HTTP/1.1 502 '
	wait_log PROXY '^<3>GET /proxy/x -> .* 502 .*: .+'
	assert_proxy_exits_cleanly
}

@test "resilience: without a journal socket the log goes to stderr with priorities" {
	[ ! -S /run/systemd/journal/socket ] || fail "this test needs a machine without journald at /run/systemd/journal/socket"
	start_pair
	run gf_curl "$PURL/proxy/status/503"
	wait_log PROXY '^<3>GET /proxy/status/503 -> .* 503 '
	run gf_curl "$PURL/proxy/user/1"
	wait_log PROXY '^<6>GET /proxy/user/1 -> .* 200 '
}

@test "resilience: a stopped journald (full socket buffer) never holds up a response" {
	start_peer
	start_journal_proxy --upstream "$BACKEND_URL"
	# The journal works: a request logged there, not on stderr.
	run gf_curl "http://127.0.0.1:$PROXY_PORT/proxy/user/1"
	assert_output "user info from server backend"
	kill -STOP "$JOURNALD_PID"
	# Nobody reads the journal socket now: after net.unix.max_dgram_qlen
	# entries its queue is full. 60 requests on one keep-alive connection
	# (one entry each), then a new connection: each must be answered in 1 s
	# (10 s under valgrind, whose start alone takes about a second).
	local limit=1
	[ "${GFPROXY_VALGRIND:-0}" = 1 ] && limit=10
	run "$GF_PY" - "$PROXY_PORT" "$limit" <<-'EOF'
		import socket, sys, time
		port, limit = int(sys.argv[1]), int(sys.argv[2])
		def one(s):
		    t = time.monotonic()
		    s.sendall(b"GET /proxy/user/1 HTTP/1.1\r\nHost: t\r\n\r\n")
		    buf = b""
		    while not buf.endswith(b"user info from server backend"):
		        try:
		            d = s.recv(4096)
		        except socket.timeout:
		            return None
		        if not d:
		            return None
		        buf += d
		    return time.monotonic() - t
		s = socket.create_connection(("127.0.0.1", port), timeout=limit)
		for i in range(60):
		    t = one(s)
		    if t is None:
		        print("request %d on the connection: no answer within %d s" % (i + 1, limit))
		        break
		else:
		    print("60 requests answered")
		s2 = socket.create_connection(("127.0.0.1", port), timeout=limit)
		print("new connection: %s" % ("answered" if one(s2) is not None else
		    "no answer within %d s" % limit))
	EOF
	local out=$output
	echo "# journald stopped: $(tr '\n' ';' <<<"$out") net.unix.max_dgram_qlen=$(cat /proc/sys/net/unix/max_dgram_qlen)" >&3
	local ssa; ssa=$(pgrep -P "$JOURNAL_NS_PID" systemd-socket)
	if [ -n "$(gf_children "$ssa")" ]; then
		echo "# gfproxy processes still there while journald is stopped:" >&3
		ps -o pid,stat,wchan:24,args --ppid "$ssa" | sed 's/^/#   /' >&3
	fi
	kill -CONT "$JOURNALD_PID"
	stop_journal_proxy || fail "gfproxy still running after journald resumed"
	run echo "$out"
	assert_line "60 requests answered"
	assert_line "new connection: answered"
}

@test "resilience: at the file descriptor limit each connection gets a clean answer, never a crash" {
	start_peer
	: >"$GF_TMP/empty.conf"
	local n got codes=() saw502=0
	# Below 5 descriptors the dynamic loader itself fails (exit 127, no
	# answer possible); from 5 up gfproxy runs, and somewhere in this range
	# libcurl's socket() hits EMFILE.
	# valgrind keeps descriptors of its own below the limit and needs more
	# to start: its band starts higher, and may not reach socket()'s EMFILE.
	local extra=0
	[ "${GFPROXY_VALGRIND:-0}" = 1 ] && extra=16
	for n in 5 6 7 8 9 10 12 16; do
		gf_activate PROXY prlimit --nofile="$((n + extra))" "$GF_PROXY_BIN" --config "$GF_TMP/empty.conf" \
			--upstream "$BACKEND_URL"
		got=$(gf_curl -i "http://127.0.0.1:$PROXY_PORT/proxy/user/1") || fail "nofile=$n: no answer"
		case $got in
		"HTTP/1.1 200 "*) [[ $got == *"user info from server backend" ]] || fail "nofile=$n: $got" ;;
		"HTTP/1.1 502 "*)
			[[ $got == *$'Connection: close\r'* ]] || fail "nofile=$n: $got"
			wait_log PROXY '^<3>GET /proxy/user/1 -> .* 502 .*: .+'
			[ "$saw502" = 1 ] || echo "# nofile=$n: $(proxy_log)" >&3
			saw502=1 ;;
		# Too few descriptors to build its sandbox: it serves nobody unconfined,
		# and exits 71 (system error before serving), as gfproxy(8) says.
		"HTTP/1.1 503 "*)
			[[ $got == *$'Connection: close\r'* ]] || fail "nofile=$n: $got"
			wait_log PROXY '^<2>cannot confine the process: .+'
			echo "# nofile=$n: $(proxy_log)" >&3 ;;
		*) fail "nofile=$n: unexpected answer: $got" ;;
		esac
		codes+=("$n:${got:9:3}")
		if [[ $got == "HTTP/1.1 503 "* ]]; then
			wait_children_gone "$PROXY_SSA" 5 || fail "gfproxy still running"
			grep -aq '^Child .* died with code 71$' "$GF_TMP/PROXY.err" || fail "$(proxy_log)"
		else
			assert_proxy_exits_cleanly
		fi
		kill -TERM "$PROXY_SSA"; wait "$PROXY_SSA" 2>/dev/null || true
	done
	echo "# nofile:status ${codes[*]}" >&3
	[ "$saw502" = 1 ] || [ "${GFPROXY_VALGRIND:-0}" = 1 ] ||
		fail "no limit in the range made socket() fail: ${codes[*]}"
	# The backend served the others undisturbed.
	run gf_curl "$BACKEND_URL/user/1"
	assert_output "user info from server backend"
}

@test "resilience: a huge header set is refused with 431 in bounded memory, under an address-space limit" {
	start_peer
	: >"$GF_TMP/empty.conf"
	local as=0
	# ASan reserves terabytes of shadow address space and valgrind its own
	# heap: an address-space limit only applies to the plain build.
	if [ "$GF_SANITIZED" != 1 ] && [ "${GFPROXY_VALGRIND:-0}" != 1 ]; then
		as=$((160 << 20))
		gf_activate PROXY prlimit --as="$as" "$GF_PROXY_BIN" --config "$GF_TMP/empty.conf" \
			--upstream "$BACKEND_URL"
	else
		gf_activate PROXY "$GF_PROXY_BIN" --config "$GF_TMP/empty.conf" --upstream "$BACKEND_URL"
	fi
	# Near the limits (97 fields with Host and Connection, just under 16 KiB;
	# the backend has the same limits and gets three X-Forwarded-* more): forwarded.
	run "$GF_PY" - "$PROXY_PORT" 95 160 <<-'EOF'
		import socket, sys, time
		port, n, size = map(int, sys.argv[1:])
		s = socket.create_connection(("127.0.0.1", port), timeout=20)
		head = b"GET /proxy/echo HTTP/1.1\r\nHost: t\r\nConnection: close\r\n"
		head += b"".join(b"X-F%d: %s\r\n" % (i, b"v" * size) for i in range(n))
		s.sendall(head + b"\r\n")
		out = b""
		while True:
		    d = s.recv(65536)
		    if not d:
		        break
		    out += d
		print(out.split(b"\r\n")[0].decode(), out.count(b"header: X-F"))
	EOF
	assert_output "HTTP/1.1 200 OK 99"  # 95 + X-Forwarded-For, -Host, -Proto, -Prefix
	# 4 MiB of fields, then 100,000 tiny ones: 431 as soon as a limit is passed.
	for spec in "64 65536" "100000 1"; do
		run "$GF_PY" - "$PROXY_PORT" $spec <<-'EOF'
			import socket, sys
			port, n, size = map(int, sys.argv[1:])
			s = socket.create_connection(("127.0.0.1", port), timeout=20)
			s.sendall(b"GET /proxy/echo HTTP/1.1\r\nHost: t\r\n")
			try:
			    for i in range(n):
			        s.sendall(b"X-F%d: %s\r\n" % (i, b"v" * size))
			    s.sendall(b"\r\n")
			except OSError:
			    pass        # the proxy answered and closed while we sent
			out = b""
			try:
			    while True:
			        d = s.recv(65536)
			        if not d:
			            break
			        out += d
			except ConnectionResetError:
			    pass
			print(out.split(b"\r\n")[0].decode() or "nothing")
		EOF
		assert_output "HTTP/1.1 431 Request Header Fields Too Large"
	done
	run grep -ac '^<4>GET /proxy/echo 431 ' "$GF_TMP/PROXY.err"
	assert_output 2
	assert_proxy_exits_cleanly
}

@test "resilience: 1,000 idle connections: every process gone after the idle timeout, no zombies" {
	local n=1000
	# An ASan process costs tens of MiB and a valgrind one hundreds: fewer.
	[ "$GF_SANITIZED" = 1 ] && n=200
	[ "${GFPROXY_VALGRIND:-0}" = 1 ] && n=40
	start_pair
	# The last close is due 15 s after the last process started; valgrind
	# takes up to half a minute to get 40 gfproxy to their first read on 2 cores.
	local late=17.5
	[ "${GFPROXY_VALGRIND:-0}" = 1 ] && late=45
	run "$GF_PY" - "$PROXY_PORT" "$n" "$PROXY_SSA" "$late" <<-'EOF'
		import os, resource, select, socket, subprocess, sys, time
		port, n, ssa = map(int, sys.argv[1:4])
		late = float(sys.argv[4])
		soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
		resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, n + 64)), hard))

		def procs():
		    out = subprocess.run(["ps", "-o", "pid=,stat=", "--ppid", str(ssa)],
		                         capture_output=True, text=True).stdout.split("\n")
		    rows = [l.split() for l in out if l.strip()]
		    return len(rows), sum(1 for r in rows if r[1].startswith("Z"))

		socks = []
		for i in range(n):
		    socks.append(socket.create_connection(("127.0.0.1", port), timeout=10))
		t0 = time.monotonic()
		# every connection gets its process
		for _ in range(600):
		    alive, zombies = procs()
		    if alive >= n:
		        break
		    time.sleep(0.05)
		t1 = time.monotonic()
		print("opened %d, processes %d" % (n, alive))
		print("# all %d processes running %.1f s after the connects" % (n, t1 - t0))
		peak = alive
		# each one closes its connection after the idle timeout (15 s)
		open_ = set(socks)
		first = None
		while open_ and time.monotonic() - t1 < max(30, late + 5):
		    r, _, _ = select.select(list(open_)[:1000], [], [], 0.5)
		    for s in r:
		        try:
		            d = s.recv(1)
		        except OSError:
		            d = b""
		        if not d:
		            open_.discard(s)
		            s.close()
		            if first is None:
		                first = time.monotonic() - t0
		last = time.monotonic() - t1
		print("closed by gfproxy: %d" % (n - len(open_)))
		# none before the idle timeout; all within it of their process's start
		print("first close %.1f s after the connects: %s" % (first or 0, "ok" if first and first >= 14 else "early"))
		print("last close %.1f s after the last process started: %s" % (last, "ok" if last <= late else "late"))
		for _ in range(100):
		    alive, zombies = procs()
		    if alive == 0:
		        break
		    time.sleep(0.05)
		print("left %d zombies %d" % (alive, zombies))
	EOF
	echo "# $(tr '\n' ';' <<<"$output")" >&3
	assert_success
	assert_line "opened $n, processes $n"
	assert_line "closed by gfproxy: $n"
	assert_line --regexp '^first close .*: ok$'
	assert_line --regexp '^last close .*: ok$'
	assert_line 'left 0 zombies 0'
	run grep -ac '^Child .* died with code 0$' "$GF_TMP/PROXY.err"
	assert_output "$n"
	# No orphan re-parented elsewhere: no gfproxy outside the activators.
	run pgrep -f "^$GF_PROXY_BIN .*--upstream $BACKEND_URL"
	assert_failure
}
