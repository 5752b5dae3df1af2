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
