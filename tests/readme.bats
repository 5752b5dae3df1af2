#!/usr/bin/env bats
# The README's console examples are what the programs print: each "$ command" of a
# ```console block is run and its output compared with the lines that follow it (a
# Date: field's value aside), so an example cannot go stale.

load helpers

# readme_examples: the README's console blocks as "CMD\tEXPECTED-LINE" rows, one per
# expected line ("CMD\t" alone for a command whose output is empty).
readme_examples() {
	awk '
		/^```console$/ { inblock = 1; cmd = ""; next }
		/^```/         { if (inblock && cmd != "" && !printed) print cmd "\t"; inblock = 0; next }
		!inblock       { next }
		/^\$ /         { if (cmd != "" && !printed) print cmd "\t"; cmd = substr($0, 3); printed = 0; next }
		               { print cmd "\t" $0; printed = 1 }' "$GF_ROOT/README.md"
}

# run_example CMD: the command as the README shows it, on this test's ports and build.
run_example() {
	local cmd=$1
	cmd=${cmd//127.0.0.1:8199/$GFPROXY_PROXY_ADDR}
	cmd=${cmd//127.0.0.1:8198/$GFPROXY_BACKEND_ADDR}
	[[ $cmd == gfproxy\ * ]] && cmd="$GF_BUILD_DIR/$cmd"
	# A terminal's curl shows no progress meter; one writing to a pipe does, unless told.
	(cd "$GF_TMP" && CURL_HOME=$GF_TMP bash -c "$cmd" 2>&1) | tr -d '\r' |
		sed 's/^Date: .*/Date: */'
}

@test "readme: every console example prints what the README shows" {
	gf_need_proxy
	gf_need_backend
	export GFPROXY_BACKEND_ADDR=127.0.0.1:$(gf_free_port)
	export GFPROXY_PROXY_ADDR=127.0.0.1:$(gf_free_port)
	gf_bg RUNLOCAL "$GF_ROOT/tests/run-local" "$GF_BUILD_DIR"
	for _ in $(seq 100); do
		gf_curl "http://$GFPROXY_PROXY_ADDR/proxy/user/1" >/dev/null 2>&1 && break
		sleep 0.05
	done
	# The file the --check-config example checks: its second line is the mistake shown.
	printf '[global]\ntimeout = soon\n' >"$GF_TMP/new.conf"
	printf 'silent\nshow-error\n' >"$GF_TMP/.curlrc"

	local cmds expected got n=0 cmd
	mapfile -t cmds < <(readme_examples | cut -f1 | awk '!seen[$0]++')
	[ "${#cmds[@]}" -ge 4 ]
	for cmd in "${cmds[@]}"; do
		expected=$(readme_examples | awk -F'\t' -v c="$cmd" '$1 == c { print substr($0, length(c) + 2) }' |
			sed 's/^Date: .*/Date: */')
		got=$(run_example "$cmd")
		if [ "$got" != "$expected" ]; then
			echo "README: \$ $cmd"
			diff <(echo "$expected") <(echo "$got") || true
			false
		fi
		n=$((n + 1))
	done
	echo "# $n examples checked" >&3
}
