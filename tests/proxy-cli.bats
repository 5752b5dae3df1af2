#!/usr/bin/env bats
# gfproxy's command line, exit codes, and what it accepts as a connection.

load helpers

@test "cli: --help lists every option and exits 0" {
	gf_need_proxy
	local flag
	for flag in --help -h; do
		run "$GF_PROXY_BIN" "$flag"
		assert_success
		assert_output --partial "usage: gfproxy"
		local o
		for o in --upstream --prefix --timeout --connect-timeout --max-body --help --version; do
			assert_output --partial -- "$o"
		done
	done
}

@test "cli: --version prints the version and libcurl's, and exits 0" {
	gf_need_proxy
	for o in --version -V; do
		run "$GF_PROXY_BIN" "$o"
		assert_success
		assert_equal "${#lines[@]}" 2
		assert_line --index 0 --regexp '^gfproxy [0-9]+\.[0-9]+\.[0-9]+$'
		assert_line --index 1 --regexp '^libcurl/[0-9]+\.[0-9]+\.[0-9]+'
	done
}

@test "cli: an unknown option exits 64" {
	gf_need_proxy
	run "$GF_PROXY_BIN" --no-such-option
	assert_failure 64
}

@test "cli: malformed option values exit 64 with a message" {
	gf_need_proxy
	local args
	while read -r -a args; do
		run "$GF_PROXY_BIN" "${args[@]}"
		assert_failure 64
		assert_output --partial "gfproxy"
	done <<-EOF
		--timeout abc
		--timeout -1
		--connect-timeout 5x
		--max-body lots
		--upstream ftp://127.0.0.1:21
		--upstream not-a-url
		--prefix noslash
		--prefix /a?b
		--timeout
		extra-argument
	EOF
}

@test "cli: stdin a regular file exits 66 with a clear message" {
	gf_need_proxy
	echo 'GET / HTTP/1.1' >"$GF_TMP/file"
	run env -u LISTEN_FDS -u LISTEN_PID "$GF_PROXY_BIN" <"$GF_TMP/file"
	assert_failure 66
	assert_output --partial "stdin is not a stream socket"
}

@test "cli: stdin a listening socket (inetd wait mode) exits 66 with a clear message" {
	gf_need_proxy
	run gftool exec-listener --fd 0 "$GF_PROXY_BIN"
	assert_failure 66
	assert_output --partial "listening socket"
}

@test "cli: fd 3 a listening socket (socket unit without Accept=yes) exits 66" {
	gf_need_proxy
	run gftool exec-listener --fd 3 "$GF_PROXY_BIN"
	assert_failure 66
	assert_output --partial "listening socket"
}

@test "cli: under systemd-socket-activate without --accept the child exits 66" {
	gf_need_proxy
	# The activator execs the program with its listening socket on fd 3 at
	# the first connection, so its exit status is the program's.
	local port; port=$(gf_free_port)
	: >"$GF_TMP/nonaccept.err"
	setsid systemd-socket-activate -l "127.0.0.1:$port" "$GF_PROXY_BIN" \
		</dev/null >/dev/null 2>"$GF_TMP/nonaccept.err" 3>&- &
	local pid=$! i rc=0
	GF_GROUPS+=("$pid")
	for i in $(seq 100); do grep -q '^Listening on' "$GF_TMP/nonaccept.err" && break; sleep 0.05; done
	gf_curl -o /dev/null "http://127.0.0.1:$port/proxy/" || true
	run timeout 5 tail --pid="$pid" -f /dev/null
	assert_success
	wait "$pid" || rc=$?
	assert_equal "$rc" 66
	run cat "$GF_TMP/nonaccept.err"
	assert_output --partial "listening socket"
}
