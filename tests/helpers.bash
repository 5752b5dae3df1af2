# helpers.bash - shared by every tests/*.bats file.
#
# Each test runs the real binaries under systemd-socket-activate on ports of
# its own, talks to them over real sockets on 127.0.0.1, and keeps everything
# in a mktemp -d sandbox removed at teardown. The programs' stderr (their log
# lines, and any sanitizer report) goes to one file per activator per test.
#
# Environment:
#   GFPROXY_BUILD      build directory relative to the repository (default build)
#   GFPROXY_SANITIZED  1 when the binaries are an ASan+UBSan build: sanitizer
#                      options are passed to the children, and any sanitizer
#                      report in their stderr fails the test
#   GF_MODE            fd3 (default; --accept, connection on fd 3) or stdin
#                      (--inetd --accept, connection on stdin/stdout)

load '/usr/lib/bats/bats-support/load'
load '/usr/lib/bats/bats-assert/load'

GF_ROOT=$(cd "$BATS_TEST_DIRNAME/.." && pwd)
GF_BUILD_DIR=${GFPROXY_BUILD:-build}
case $GF_BUILD_DIR in /*) ;; *) GF_BUILD_DIR=$GF_ROOT/$GF_BUILD_DIR ;; esac
GF_BACKEND_BIN=$GF_BUILD_DIR/gfproxy-backend
# The test peer (tests/peer): the sample backend's answers, and the endpoints tests drive.
GF_PEER_BIN=$GF_BUILD_DIR/gfpeer
GF_PROXY_BIN=$GF_BUILD_DIR/gfproxy
GF_TOOLS=$BATS_TEST_DIRNAME/gftool.py
GF_SANITIZED=${GFPROXY_SANITIZED:-0}
GF_MODE=${GF_MODE:-fd3}
# The distribution's python starts in a tenth of the time of a pyenv shim.
if [ -x /usr/bin/python3 ]; then GF_PY=/usr/bin/python3; else GF_PY=python3; fi

# Sizes for the long transfers: 1 GiB, or 64 MiB under ASan (still run, never skipped).
if [ "$GF_SANITIZED" = 1 ]; then
	GF_BIG=$((64 * 1024 * 1024))
else
	GF_BIG=$((1024 * 1024 * 1024))
fi

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:halt_on_error=1:detect_stack_use_after_return=1:strict_string_checks=1:check_initialization_order=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export LSAN_OPTIONS=report_objects=1

# ---------------------------------------------------------------- lifecycle

gf_require() {
	local t
	for t in curl python3 systemd-socket-activate setsid pgrep ss timeout sha256sum; do
		command -v "$t" >/dev/null || fail "required tool '$t' is not installed"
	done
}

# Call from setup(). Fails (never skips) when a binary is missing.
gf_setup() {
	gf_require
	GF_TMP=$(mktemp -d "${TMPDIR:-/tmp}/gfproxy-test.XXXXXX")
	GF_GROUPS=()
	GF_ERRFILES=()
}

gf_need_backend() {
	[ -x "$GF_BACKEND_BIN" ] || fail "$GF_BACKEND_BIN not built (make all)"
}
gf_need_peer() {
	[ -x "$GF_PEER_BIN" ] || fail "$GF_PEER_BIN not built (make peer)"
}
gf_need_proxy() {
	[ -x "$GF_PROXY_BIN" ] || fail "$GF_PROXY_BIN not built (make all)"
}

# A port nobody listens on right now. The activator binds it a moment later;
# gf_activate retries if another process wins the race.
gf_free_port() {
	"$GF_PY" -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}

# gf_activate NAME PROG ARGS... - start PROG under systemd-socket-activate on a
# free port in mode $GF_MODE. Sets <NAME>_PORT and <NAME>_SSA (the activator's
# pid, also its process group, which holds every per-connection child), and
# logs to $GF_TMP/<NAME>.err.
gf_activate() {
	local name=$1; shift
	local err=$GF_TMP/$name.err out=$GF_TMP/$name.out port pid try i
	local -a mode_args
	case $GF_MODE in
	fd3)   mode_args=(--accept) ;;
	stdin) mode_args=(--inetd --accept) ;;
	*)     fail "unknown GF_MODE '$GF_MODE'" ;;
	esac
	for try in 1 2 3 4 5; do
		port=$(gf_free_port)
		: >"$err"
		# setsid: the activator leads a new process group, so teardown finds
		# (and if need be kills) every child it spawned. 3>&- keeps bats from
		# waiting on the background process.
		setsid systemd-socket-activate "${mode_args[@]}" -l "127.0.0.1:$port" \
			-E ASAN_OPTIONS -E UBSAN_OPTIONS -E LSAN_OPTIONS \
			"$@" </dev/null >>"$out" 2>>"$err" 3>&- &
		pid=$!
		GF_GROUPS+=("$pid")
		for i in $(seq 100); do
			grep -q '^Listening on' "$err" && break
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.05
		done
		if grep -q '^Listening on' "$err"; then
			printf -v "${name}_PORT" '%s' "$port"
			printf -v "${name}_SSA" '%s' "$pid"
			GF_ERRFILES+=("$err")
			return 0
		fi
		kill -KILL -- "-$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
		grep -q 'Address already in use' "$err" || break
	done
	cat "$err" >&2
	fail "systemd-socket-activate for $name did not start listening"
}

# start_backend [ARGS...] - gfproxy-backend; sets BACKEND_PORT, BACKEND_URL.
start_backend() {
	gf_need_backend
	case " $* " in
	*" --test-endpoints "*) fail "start_backend: the test endpoints are the test peer's (start_peer)" ;;
	esac
	gf_activate BACKEND "$GF_BACKEND_BIN" "$@"
	BACKEND_URL=http://127.0.0.1:$BACKEND_PORT
}

# start_peer - the test peer in the backend's place: sets BACKEND_PORT,
# BACKEND_URL, and logs to BACKEND.err, as start_backend does.
start_peer() {
	gf_need_peer
	gf_activate BACKEND "$GF_PEER_BIN"
	BACKEND_URL=http://127.0.0.1:$BACKEND_PORT
}

# start_proxy [ARGS...] - gfproxy, upstream the running backend unless ARGS
# name one; sets PROXY_PORT, PURL (http://127.0.0.1:PORT).
start_proxy() {
	gf_need_proxy
	local a has_upstream=0
	for a in "$@"; do
		case $a in --upstream|--upstream=*) has_upstream=1 ;; esac
	done
	if [ $has_upstream = 0 ]; then
		[ -n "${BACKEND_URL:-}" ] || fail "start_proxy: no backend started and no --upstream"
		set -- --upstream "$BACKEND_URL" "$@"
	fi
	# Hermetic: never pick up a gfproxy.conf installed on this machine.
	if "$GF_PROXY_BIN" --help 2>/dev/null | grep -q -- '--config'; then
		: >"$GF_TMP/empty.conf"
		set -- --config "$GF_TMP/empty.conf" "$@"
	fi
	gf_activate PROXY "$GF_PROXY_BIN" "$@"
	PURL=http://127.0.0.1:$PROXY_PORT
}

# The proxy in front of the test peer.
start_pair() {
	start_peer
	start_proxy "$@"
}

# gf_bg NAME CMD... - a helper process (python server) in its own process
# group, cleaned up at teardown like the activators. Its first stdout line
# (a port) is waited for and stored in <NAME>_PORT.
gf_bg() {
	local name=$1; shift
	local out=$GF_TMP/$name.out err=$GF_TMP/$name.err i
	setsid "$@" </dev/null >"$out" 2>"$err" 3>&- &
	GF_GROUPS+=("$!")
	for i in $(seq 100); do
		[ -s "$out" ] && break
		sleep 0.05
	done
	[ -s "$out" ] || fail "$name did not start: $(cat "$err")"
	printf -v "${name}_PORT" '%s' "$(head -n1 "$out")"
}

# Per-connection children of an activator (pids, one a line).
gf_children() {
	pgrep -P "$1" || true
}

# Stop every activator, give the per-connection children a moment to finish
# (so a sanitized build gets to run its leak check at exit), then kill what is
# left. Fails if a sanitizer reported anything or a process survives.
gf_teardown() {
	local pid i left=() f status=0 busy
	# systemd-socket-activate passes its SIGTERM on to the children. Under
	# valgrind a child's own exit takes long enough to be caught halfway
	# through freeing, and its log would then show a leak that is not there:
	# let children that are already on their way out finish first.
	if [ "${GFPROXY_VALGRIND:-0}" = 1 ]; then
		for i in $(seq 60); do
			busy=0
			for pid in "${GF_GROUPS[@]}"; do
				pgrep -P "$pid" >/dev/null && busy=1
			done
			[ "$busy" = 0 ] && break
			sleep 0.05
		done
	fi
	for pid in "${GF_GROUPS[@]}"; do
		kill -TERM "$pid" 2>/dev/null
	done
	for pid in "${GF_GROUPS[@]}"; do
		wait "$pid" 2>/dev/null
	done
	for i in $(seq 60); do
		left=()
		for pid in "${GF_GROUPS[@]}"; do
			pgrep -g "$pid" >/dev/null && left+=("$pid")
		done
		[ ${#left[@]} -eq 0 ] && break
		sleep 0.05
	done
	if [ ${#left[@]} -gt 0 ]; then
		for pid in "${left[@]}"; do
			echo "# still running 3 s after teardown began (group $pid):" >&3
			ps -o pid,etimes,args -g "$pid" | sed 's/^/#   /' >&3
			kill -KILL -- "-$pid" 2>/dev/null
		done
		sleep 0.2
		for pid in "${left[@]}"; do
			if pgrep -g "$pid" >/dev/null; then
				echo "# process group $pid survived SIGKILL" >&3
				status=1
			fi
		done
	fi
	if [ "$GF_SANITIZED" = 1 ]; then
		for f in "${GF_ERRFILES[@]}"; do
			if grep -qE 'Sanitizer|runtime error:' "$f"; then
				echo "# sanitizer report in $(basename "$f"):" >&3
				sed 's/^/#   /' "$f" >&3
				status=1
			fi
		done
	fi
	if [ -n "${GF_TMP:-}" ] && [ -d "$GF_TMP" ]; then
		if [ "$status" != 0 ] || [ "${GF_KEEP_TMP:-0}" = 1 ]; then
			echo "# kept $GF_TMP" >&3
		else
			rm -rf "$GF_TMP"
		fi
	fi
	return $status
}

setup() {
	gf_setup
}

teardown() {
	gf_teardown
}

# ---------------------------------------------------------------- logs

# Program log lines (sd-daemon priority prefix), without the activator's own.
proxy_log() {
	grep -a '^<[0-7]>' "$GF_TMP/PROXY.err" || true
}
backend_log() {
	grep -a '^<[0-7]>' "$GF_TMP/BACKEND.err" || true
}

# wait_log NAME ERE [SECONDS] - a program writes its line after the reply, so
# poll for it (bounded).
wait_log() {
	local f=$GF_TMP/$1.err re=$2 t=${3:-3} i
	for i in $(seq $((t * 20))); do
		grep -aqE "$re" "$f" && return 0
		sleep 0.05
	done
	echo "no line matching /$re/ in $1's stderr within ${t}s:" >&2
	cat "$f" >&2
	return 1
}

# Number of connections an activator accepted so far (it logs one line each).
accepted() {
	grep -ac '^Connection from' "$GF_TMP/$1.err" || true
}

# Wait until every child of an activator has exited (bounded).
wait_children_gone() {
	local ssa=$1 t=${2:-5} i
	for i in $(seq $((t * 20))); do
		pgrep -P "$ssa" >/dev/null || return 0
		sleep 0.05
	done
	return 1
}

# ---------------------------------------------------------------- clients

# gf_curl ARGS... - curl with a bound wait; nothing from ~/.curlrc.
gf_curl() {
	curl -q --silent --show-error --max-time 10 "$@"
}

# raw PORT [OPTIONS] - send stdin byte for byte, print everything the server
# sends until it closes (see gftool.py raw).
raw() {
	local port=$1; shift
	gftool raw --port "$port" "$@"
}

gftool() {
	"$GF_PY" "$GF_TOOLS" "$@"
}

# A raw request with printf escapes and CRLF line ends: req 'GET / HTTP/1.1' 'Host: x'
req() {
	local line
	for line in "$@"; do
		printf '%s\r\n' "$line"
	done
	printf '\r\n'
}

# Body of an HTTP response (raw output in $output): everything after the
# first blank line.
resp_body() {
	"$GF_PY" -c 'import sys
d = sys.stdin.buffer.read()
i = d.find(b"\r\n\r\n")
sys.stdout.buffer.write(d[i + 4:] if i >= 0 else b"")'
}

# The response in FILE ends right after its head: no body bytes.
assert_ends_with_head() {
	local end
	end=$(tail -c 4 "$1" | od -An -tx1 | tr -d ' \n')
	[ "$end" = 0d0a0d0a ] || fail "bytes after the head in $1: $(od -c "$1" | tail -n 5)"
}

# ---------------------------------------------------------------- valgrind
# Added for `make check-valgrind` (tests/valgrind.bash). With
# GFPROXY_VALGRIND=1, GF_PROXY_BIN, GF_BACKEND_BIN and GF_PEER_BIN become wrappers that
# exec the real binaries under valgrind memcheck, one log per process in
# $GFPROXY_VALGRIND_DIR named after the test; tests/valgrind.bash reads them
# all when the suite is done. systemd-socket-activate passes no environment
# but its -E names, so the wrappers carry everything in their text.
# Transfers are as small as in the sanitized run, and RSS is not checked
# (GF_SANITIZED=1 does both; there is no sanitizer report to find).

gf_valgrind_wrap() {
	local real=$1 dir=$2 name
	name=$(basename "$real")
	cat >"$dir/$name" <<-WRAP
		#!/bin/sh
		exec valgrind --tool=memcheck --quiet --leak-check=full --show-leak-kinds=definite \\
			--errors-for-leak-kinds=definite --error-exitcode=${GFPROXY_VALGRIND_EXIT:-99} \\
			--track-origins=no --child-silent-after-fork=yes \\
			--suppressions="$GF_ROOT/tests/valgrind.supp" \\
			--log-file="$GFPROXY_VALGRIND_DIR/$GF_VG_TEST.$name.%p.log" "$real" "\$@"
	WRAP
	chmod +x "$dir/$name"
	printf '%s\n' "$dir/$name"
}

if [ "${GFPROXY_VALGRIND:-0}" = 1 ]; then
	[ -n "${GFPROXY_VALGRIND_DIR:-}" ] || GFPROXY_VALGRIND_DIR=${BATS_RUN_TMPDIR:-/tmp}/valgrind
	mkdir -p "$GFPROXY_VALGRIND_DIR/wrap"
	# One set of wrappers per test, so each log says which test it came from.
	GF_VG_TEST=$(printf '%s' "$(basename "${BATS_TEST_FILENAME:-bats}" .bats)-${BATS_TEST_NAME:-file}" |
		tr -c 'A-Za-z0-9_.-' '_' | cut -c1-150)
	GF_VG_WRAP=$GFPROXY_VALGRIND_DIR/wrap/$GF_VG_TEST
	mkdir -p "$GF_VG_WRAP"
	GF_PROXY_BIN=$(gf_valgrind_wrap "$GF_PROXY_BIN" "$GF_VG_WRAP")
	GF_BACKEND_BIN=$(gf_valgrind_wrap "$GF_BACKEND_BIN" "$GF_VG_WRAP")
	GF_PEER_BIN=$(gf_valgrind_wrap "$GF_PEER_BIN" "$GF_VG_WRAP")
	GF_SANITIZED=1
	GF_BIG=$((64 * 1024 * 1024))
fi
