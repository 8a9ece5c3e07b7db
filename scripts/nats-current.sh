#!/usr/bin/env bash
# The second NATS of the test matrix: a pinned current nats-server release, built once
# from the Go module proxy into the cache folder and reused after. The first is the
# machine's own (Debian 12 ships 2.9.10), which `make test` runs against.
#
#   scripts/nats-current.sh path        build it if needed, print the binary's path
#   scripts/nats-current.sh test CMD..  start it on a free port with a store of its own,
#                                       run CMD with NATS_URL and NATS_SERVER_BIN pointing
#                                       at it, stop it, and exit with CMD's status
#
# NATS_CURRENT_VERSION picks the release (default below).
set -euo pipefail

version=${NATS_CURRENT_VERSION:-v2.15.3}
dir=${XDG_CACHE_HOME:-$HOME/.cache}/talentforge/nats-server-$version
bin=$dir/nats-server

say() { echo "nats-current: $*" >&2; }

ensure() {
	[ -x "$bin" ] && return 0
	command -v go >/dev/null || { say "Go is needed to build nats-server $version"; exit 1; }
	say "building nats-server $version from the Go module proxy into $dir (once)"
	mkdir -p "$dir"
	GOWORK=off GOFLAGS=-mod=mod CGO_ENABLED=0 GOBIN="$dir" go install "github.com/nats-io/nats-server/v2@$version"
}

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' 2>/dev/null ||
		echo $((20000 + RANDOM % 20000))
}

case ${1:-} in
path)
	ensure
	echo "$bin"
	;;
test)
	shift
	[ $# -gt 0 ] || { say "usage: $0 test CMD.."; exit 2; }
	ensure
	store=$(mktemp -d)
	port=$(free_port)
	"$bin" -a 127.0.0.1 -p "$port" -js -sd "$store" -l "$store/nats-server.log" &
	pid=$!
	trap 'kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; rm -rf "$store"' EXIT
	for _ in $(seq 1 100); do
		(exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
		kill -0 "$pid" 2>/dev/null || { say "nats-server exited at start:"; cat "$store/nats-server.log" >&2; exit 1; }
		sleep 0.1
	done
	say "$("$bin" --version) on 127.0.0.1:$port"
	status=0
	NATS_URL="nats://127.0.0.1:$port" NATS_SERVER_BIN="$bin" "$@" || status=$?
	exit "$status"
	;;
*)
	say "usage: $0 path | test CMD.."
	exit 2
	;;
esac
