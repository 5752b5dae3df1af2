#!/usr/bin/env bats
# tests/run-local, what `make run` executes (on ports of its own here).

load helpers

# Start run-local in a session of its own with SIGINT at its default, as a
# terminal's Ctrl-C would find it; print its pid.
start_run_local() {
	"$GF_PY" - "$GF_ROOT/tests/run-local" "$GF_BUILD_DIR" "$GF_TMP/run-local.out" <<-'EOF' &
		import os, signal, subprocess, sys
		signal.signal(signal.SIGINT, signal.SIG_DFL)
		out = open(sys.argv[3], "wb")
		p = subprocess.Popen([sys.argv[1], sys.argv[2]], stdout=out, stderr=subprocess.STDOUT,
		                     stdin=subprocess.DEVNULL, start_new_session=True)
		print(p.pid, flush=True)
		p.wait()
	EOF
}

@test "run-local: serves the example, prints what to curl, and Ctrl-C stops both" {
	gf_need_proxy
	gf_need_backend
	export GFPROXY_BACKEND_ADDR=127.0.0.1:$(gf_free_port)
	export GFPROXY_PROXY_ADDR=127.0.0.1:$(gf_free_port)
	start_run_local >"$GF_TMP/pid" 3>&-
	local i pid
	for i in $(seq 100); do
		grep -q 'Ctrl-C' "$GF_TMP/run-local.out" 2>/dev/null && break
		sleep 0.05
	done
	pid=$(cat "$GF_TMP/pid")
	GF_GROUPS+=("$pid")
	run cat "$GF_TMP/run-local.out"
	assert_output --partial "curl http://$GFPROXY_PROXY_ADDR/proxy/user/1"
	assert_output --partial "user info from server backend"
	run gf_curl "http://$GFPROXY_PROXY_ADDR/proxy/user/1"
	assert_output "user info from server backend"
	# the two activators; each leads a process group holding its children
	local ssa; ssa=$(pgrep -P "$pid" -f "^systemd-socket-activate " | tr '\n' ' ')
	assert_equal "$(wc -w <<<"$ssa")" 2
	GF_GROUPS+=($ssa)
	kill -INT -- "-$pid"
	run timeout 5 tail --pid="$pid" -f /dev/null
	assert_success
	sleep 0.2
	local g
	for g in $ssa; do
		run pgrep -g "$g"
		assert_failure
	done
	run ss -Htln "sport = :${GFPROXY_PROXY_ADDR##*:} or sport = :${GFPROXY_BACKEND_ADDR##*:}"
	assert_output ''
}

@test "run-local: a port already in use is named, and it exits non-zero" {
	gf_need_proxy
	gf_need_backend
	gf_bg HOLD "$GF_PY" -c 'import socket, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen()
print(s.getsockname()[1], flush=True); time.sleep(30)'
	GFPROXY_BACKEND_ADDR=127.0.0.1:$(gf_free_port) GFPROXY_PROXY_ADDR=127.0.0.1:$HOLD_PORT \
		run timeout 10 "$GF_ROOT/tests/run-local" "$GF_BUILD_DIR"
	assert_failure 1
	assert_output --partial "port $HOLD_PORT is already in use"
}

@test "run-local: without a build directory it prints usage and exits 64" {
	run "$GF_ROOT/tests/run-local"
	assert_failure 64
	assert_output --partial "usage"
}

# readme_run_lines: the lines of the block after "`make run` prints one line per
# request" in the README.
readme_run_lines() {
	awk '/`make run` prints one line per request/ { found = 1; next }
		found && /^```/ { if (inblock) exit; inblock = 1; next }
		inblock' "$GF_ROOT/README.md"
}

# What varies from run to run: the time, the client's port, the duration, our ports.
normalize_run_lines() {
	sed -E -e 's/^[0-9]{2}:[0-9]{2}:[0-9]{2} /TIME /' -e 's/^TIME 127\.0\.0\.1:[0-9]+ /TIME CLIENT /' \
		-e 's/ [0-9]+\.[0-9]ms/ Dms/' -e "s/127\.0\.0\.1:${GFPROXY_BACKEND_ADDR##*:}\//BACKEND\//" \
		-e 's/127\.0\.0\.1:8198\//BACKEND\//'
}

@test "run-local: on a terminal, one line per request and the backend's warnings, as the README shows" {
	gf_need_proxy
	gf_need_backend
	export GFPROXY_BACKEND_ADDR=127.0.0.1:$(gf_free_port)
	export GFPROXY_PROXY_ADDR=127.0.0.1:$(gf_free_port)
	run readme_run_lines
	[ "${#lines[@]}" -ge 3 ] || fail "no make run block in the README: $output"
	local expected=$output
	# The README's requests, then one straight to the backend, which adds no line,
	# and one the backend refuses, which adds its warning.
	local -a urls
	mapfile -t urls < <(readme_run_lines | awk '{ print $4 }' | sed "s|^|http://$GFPROXY_PROXY_ADDR|")
	urls+=("http://$GFPROXY_BACKEND_ADDR/user/1")
	# run-local with a terminal on stdout and stderr, as `make run` has; Ctrl-C at the end.
	"$GF_PY" - "$GF_ROOT/tests/run-local" "$GF_BUILD_DIR" "${#lines[@]}" "${urls[@]}" \
		>"$GF_TMP/pty.out" 2>"$GF_TMP/pty.err" 3>&- <<-'EOF'
		import os, pty, re, select, signal, socket, subprocess, sys, time
		script, build, n, urls = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4:]
		m, s = pty.openpty()
		p = subprocess.Popen([script, build], stdin=s, stdout=s, stderr=s, start_new_session=True)
		os.close(s)
		out = b""
		def pump(until, seconds):
		    global out
		    end = time.monotonic() + seconds
		    while time.monotonic() < end and not until(out):
		        if select.select([m], [], [], 0.05)[0]:
		            try:
		                out += os.read(m, 65536)
		            except OSError:
		                return
		try:
		    pump(lambda o: b"Ctrl-C stops both" in o, 10)
		    for u in urls:
		        subprocess.run(["curl", "-q", "-s", "-o", "/dev/null", "--max-time", "5", u])
		    host, port = os.environ["GFPROXY_BACKEND_ADDR"].split(":")
		    with socket.create_connection((host, int(port)), timeout=5) as c:
		        c.sendall(b"GET /a HTTP/1.1\r\nHost: x\r\nBad Name: 1\r\n\r\n")
		        while c.recv(4096):
		            pass
		    pump(lambda o: b"gfproxy-backend: " in o, 10)
		    # The requests to the proxy log one line each; the backend's is left out.
		    pump(lambda o: len(re.findall(rb"^\d\d:\d\d:\d\d ", o, re.M)) >= n, 10)
		    pump(lambda o: False, 0.5)
		finally:
		    os.killpg(p.pid, signal.SIGINT)
		    p.wait(10)
		sys.stdout.write(out.decode().replace("\r", ""))
	EOF
	run cat "$GF_TMP/pty.out"
	assert_output --partial "Ctrl-C stops both."
	# After the greeting, exactly the README's lines, one per request to gfproxy,
	# and the backend's warning.
	local got
	got=$(sed '1,/Ctrl-C stops both/d' "$GF_TMP/pty.out" | grep -v '^$' | grep -v '^gfproxy-backend: ' |
		normalize_run_lines)
	run normalize_run_lines <<<"$expected"
	assert_equal "$got" "$output"
	run bash -c "sed '1,/Ctrl-C stops both/d' '$GF_TMP/pty.out' | grep '^gfproxy-backend: '"
	assert_output --regexp '^gfproxy-backend: GET /a 400 0B: .+$'
}
