#!/usr/bin/env bash
# Mailpit, the local mail catcher of `make run` and `make smoke`: it takes the worker's SMTP
# and shows every message in a web UI and a JSON API. Built once from the Go module proxy
# into the cache folder, reused after (delete the folder to rebuild).
#
#   scripts/mailpit.sh path          build it if needed, print the binary's path
#   scripts/mailpit.sh run [FLAG..]  build it if needed, then serve SMTP on 127.0.0.1:1025 and
#                                    the UI and API on http://localhost:8025 (FLAGs override)
#
# MAILPIT_VERSION picks the release (default below); the build needs Go, and Node with npm
# for the web UI: without npm it builds without the UI, and serves only SMTP and the API.
set -euo pipefail

version=${MAILPIT_VERSION:-v1.27.11}
module=github.com/axllent/mailpit
dir=${XDG_CACHE_HOME:-$HOME/.cache}/talentforge/mailpit-$version
bin=$dir/mailpit

say() { echo "mailpit: $*" >&2; }
die() { say "$*"; exit 1; }

# build makes $bin from the module's source: the module holds the UI's sources and its
# package.json, not the bundle (server/ui/dist) that the binary embeds, so `go install`
# alone gives a binary whose UI is a blank page. npm builds the bundle first.
build() {
	command -v go >/dev/null || die "Go is needed to build Mailpit (https://go.dev/dl/)"
	mkdir -p "$dir"
	if command -v flock >/dev/null; then # one build at a time (make run beside make smoke)
		exec 9>"$dir/.lock"
		flock 9
		[ -x "$bin" ] && return 0
	fi
	say "building $module@$version once into $dir (a few minutes; reused after)"
	local json src tmp
	json=$(cd "$dir" && GOWORK=off GOFLAGS=-mod=mod go mod download -json "$module@$version") ||
		die "go mod download $module@$version failed: $json"
	src=$(sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p' <<<"$json")
	[ -d "$src" ] || die "go mod download gave no source folder: $json"
	tmp=$dir/src
	rm -rf "$tmp"
	cp -R "$src" "$tmp"
	chmod -R u+w "$tmp"
	rm -f "$dir/no-ui"
	if ! command -v npm >/dev/null; then
		say "npm not found (Node.js is not installed): building without the web UI"
		placeholder "$tmp"
	elif ! (cd "$tmp" && npm ci --no-audit --no-fund && npm run build) >"$dir/npm.log" 2>&1; then
		say "the web UI did not build (see $dir/npm.log): building without it"
		placeholder "$tmp"
	fi
	(cd "$tmp" && CGO_ENABLED=0 GOWORK=off go build -trimpath \
		-ldflags "-s -w -X $module/config.Version=$version" -o "$bin.tmp" .) ||
		die "go build failed in $tmp"
	mv "$bin.tmp" "$bin"
	rm -rf "$tmp"
	say "built $bin"
}

# placeholder stands in for the UI bundle: a page that points at the API.
placeholder() {
	mkdir -p "$1/server/ui/dist"
	: >"$1/server/ui/dist/app.css"
	echo 'document.body.textContent = "Mailpit was built without its web UI (no Node.js/npm). The API serves the messages: /api/v1/messages";' \
		>"$1/server/ui/dist/app.js"
	touch "$dir/no-ui"
}

ensure() {
	[ -x "$bin" ] || build
	if [ -e "$dir/no-ui" ]; then
		say "built without its web UI (no Node.js/npm): only SMTP and the API (/api/v1/messages) are served"
		say "install Node.js with npm, then delete $dir to get the UI"
	fi
}

case ${1:-} in
path)
	ensure
	echo "$bin"
	;;
run)
	shift
	ensure
	# No database file: messages live in a temporary store, gone when Mailpit stops.
	exec "$bin" --smtp 127.0.0.1:1025 --listen 127.0.0.1:8025 \
		--smtp-auth-accept-any --smtp-auth-allow-insecure --disable-version-check --quiet "$@"
	;;
*)
	echo "usage: $0 path | run [mailpit flags]" >&2
	exit 2
	;;
esac
