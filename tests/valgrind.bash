#!/bin/bash
# valgrind.bash [BUILD] - `make check-valgrind`: the bats suite with gfproxy,
# gfproxy-backend and the test peer (gfpeer) under valgrind memcheck, every
# process of every test.
#
# GFPROXY_VALGRIND=1 makes tests/helpers.bash exec each program through
# valgrind (see the valgrind section there), one log per process in $logs,
# named after its test. The conformance cases find their binaries in a build
# directory: they get one made of the same wrappers. When the suite is done,
# every log is read: any error (invalid read or write, use of uninitialised
# memory, bad free, a definite leak) fails the run and is printed with the
# test it came from.
#
# Left out, each for a reason:
#   run-local.bats    tests the `make run` script, which starts the binaries
#                     itself; nothing in it exercises memory that the other
#                     suites do not.
#   the 12 conformance cases titled "backend request aborted" (see below).
# Suppressed: tests/valgrind.supp (OpenSSL's one-time initialisation).
# The soak in resilience.bats runs the wrappers too (its --build names the
# wrapper directory). Timing checks that cannot hold with valgrind's ~1 s
# start per process are relaxed in the tests themselves where they read
# GFPROXY_VALGRIND.
#
# Environment: BATSFLAGS (e.g. --filter), VALGRIND_KEEP=1 keeps the logs.
set -u

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
build=${1:-${GFPROXY_BUILD:-build}}
case $build in /*) ;; *) build=$root/$build ;; esac

for t in valgrind bats; do
	command -v "$t" >/dev/null || { echo "valgrind.bash: '$t' is not installed" >&2; exit 2; }
done
for b in gfproxy gfproxy-backend gfpeer; do
	[ -x "$build/$b" ] || { echo "valgrind.bash: $build/$b not built (make all peer)" >&2; exit 2; }
done

logs=$(mktemp -d "${TMPDIR:-/tmp}/gfproxy-valgrind.XXXXXX")
export GFPROXY_VALGRIND=1 GFPROXY_VALGRIND_DIR=$logs GFPROXY_BUILD=$build

suites=()
for f in "$here"/*.bats; do
	case $(basename "$f") in
	run-local.bats) ;;
	conformance.bats) ;;   # below, with a wrapped build directory
	*) suites+=("$f") ;;
	esac
done

start=$SECONDS
status=0
# shellcheck disable=SC2086 # BATSFLAGS is a list of flags
bats ${BATSFLAGS:-} "${suites[@]}" || status=1

# The conformance runner takes GFPROXY_BUILD: give it wrappers named like
# the programs.
if command -v varnishtest >/dev/null; then
	mkdir -p "$logs/wrap/conformance"
	for b in gfproxy gfproxy-backend; do
		cat >"$logs/wrap/conformance/$b" <<-WRAP
			#!/bin/sh
			exec valgrind --tool=memcheck --quiet --leak-check=full --show-leak-kinds=definite \\
				--errors-for-leak-kinds=definite --error-exitcode=99 --child-silent-after-fork=yes \\
				--suppressions="$here/valgrind.supp" \\
				--log-file="$logs/conformance.$b.%p.log" "$build/$b" "\$@"
		WRAP
		chmod +x "$logs/wrap/conformance/$b"
	done
	# Case by case, as conformance.bats does, less the cases that need the
	# proxy to have forwarded a first piece of the body within the 0.5 s
	# before the bad bytes arrive ("backend request aborted"): under
	# valgrind gfproxy is not even started by then, reads everything at
	# once and refuses it before contacting the backend, which the case then
	# waits 30 s for. Each runs in the plain and ASan suites.
	n=0
	for f in "$here"/conformance/cases/*.vtc "$here"/conformance/cases/*.py; do
		name=$(basename "$f")
		n=$((n + 1))
		if grep -q 'backend request aborted' "$f"; then
			echo "ok $n conformance $name # skip under valgrind: needs the body to arrive in two timed pieces"
			continue
		fi
		if out=$(GFPROXY_BUILD=$logs/wrap/conformance "$here/conformance/run" "$name" 2>&1); then
			echo "ok $n conformance $name"
		else
			echo "not ok $n conformance $name"
			printf '%s\n' "$out" | tail -n 30 | sed 's/^/# /'
			status=1
		fi
	done
else
	echo "valgrind.bash: varnishtest not installed, conformance cases not run" >&2
	status=1
fi
took=$((SECONDS - start))

# With --quiet, a log holds only what valgrind found; its warnings about
# the client's unusual but legal requests are not errors.
nlogs=0
bad=()
for f in "$logs"/*.log; do
	[ -e "$f" ] || continue
	nlogs=$((nlogs + 1))
	if grep -vE '^==[0-9]+== *(Warning: |$)|^==[0-9]+==    (this|It|See|Valgrind|Try|Use|it)' "$f" |
		grep -q .; then
		bad+=("$f")
	fi
done
for f in "${bad[@]}"; do
	echo "valgrind: errors in $(basename "$f"):"
	sed 's/^/    /' "$f"
done
echo "valgrind: ${nlogs} processes checked in ${took} s, ${#bad[@]} with errors"
[ ${#bad[@]} -eq 0 ] || status=1
[ "$nlogs" -gt 0 ] || { echo "valgrind: no process ran under valgrind" >&2; status=1; }
if [ "$status" = 0 ] && [ "${VALGRIND_KEEP:-0}" != 1 ]; then
	rm -rf "$logs"
else
	echo "valgrind: logs kept in $logs"
fi
exit "$status"
