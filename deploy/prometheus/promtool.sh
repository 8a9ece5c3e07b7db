#!/usr/bin/env bash
# promtool.sh ARGS...: runs promtool, fetching it first when it is missing.
#
# Order: promtool on PATH; else the copy cached in
# ${XDG_CACHE_HOME:-$HOME/.cache}/talentforge/promtool; else Debian's `prometheus`
# package is downloaded with `apt-get download` (no root needed; `apt-get update` is run
# first only when the download fails, which needs root) and unpacked with `dpkg-deb -x`,
# and its usr/bin/promtool is cached. Exits non-zero, saying why, when none works.
# PROMTOOL_PRINT_PATH=1 prints the promtool path instead of running it.
set -euo pipefail

cache_dir="${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/talentforge"
cached="$cache_dir/promtool"

find_promtool() {
	if command -v promtool >/dev/null 2>&1; then
		command -v promtool
		return 0
	fi
	if [[ -x "$cached" ]]; then
		echo "$cached"
		return 0
	fi
	return 1
}

fetch_promtool() {
	for tool in apt-get dpkg-deb; do
		if ! command -v "$tool" >/dev/null 2>&1; then
			echo "promtool.sh: promtool is not installed and $tool is missing to fetch it (install Debian's prometheus package)" >&2
			return 1
		fi
	done
	local tmp
	tmp="$(mktemp -d)"
	# shellcheck disable=SC2064 # expand now: tmp is local
	trap "rm -rf '$tmp'" RETURN
	chmod 0777 "$tmp" # apt's _apt sandbox user must be able to write the .deb
	if ! (cd "$tmp" && apt-get download -q prometheus >/dev/null 2>"$tmp/err"); then
		echo "promtool.sh: apt-get download prometheus failed; running apt-get update" >&2
		if ! apt-get update -q >/dev/null 2>>"$tmp/err" ||
			! (cd "$tmp" && apt-get download -q prometheus >/dev/null 2>>"$tmp/err"); then
			echo "promtool.sh: cannot download Debian's prometheus package:" >&2
			cat "$tmp/err" >&2
			return 1
		fi
	fi
	local deb
	deb="$(ls "$tmp"/prometheus_*.deb)"
	dpkg-deb -x "$deb" "$tmp/root"
	if [[ ! -x "$tmp/root/usr/bin/promtool" ]]; then
		echo "promtool.sh: $deb holds no usr/bin/promtool" >&2
		return 1
	fi
	mkdir -p "$cache_dir"
	install -m 0755 "$tmp/root/usr/bin/promtool" "$cached.tmp.$$"
	mv -f "$cached.tmp.$$" "$cached"
}

if ! promtool="$(find_promtool)"; then
	fetch_promtool
	promtool="$cached"
fi
if [[ "${PROMTOOL_PRINT_PATH:-}" == 1 ]]; then
	echo "$promtool"
	exit 0
fi
exec "$promtool" "$@"
