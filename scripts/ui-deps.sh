#!/usr/bin/env bash
# What the browser tests (make test-ui, e2e/cmd/uitest) need, installed when missing:
# Debian's Chromium (/usr/bin/chromium; Playwright's own browser download cannot work
# here) and the npm packages of e2e/ui (playwright-core and axe-core, exact versions from
# its package-lock.json). Idempotent and quiet when everything is there; prints one line
# per thing it installs. Uses sudo only when not root.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { echo "ui-deps: $*"; }
die() { say "$*" >&2; exit 1; }

as_root() {
	if [ "$(id -u)" = 0 ]; then
		"$@"
	elif command -v sudo >/dev/null; then
		sudo "$@"
	else
		die "not root and no sudo: install it yourself: $*"
	fi
}

if [ ! -x /usr/bin/chromium ]; then
	command -v apt-get >/dev/null || die "/usr/bin/chromium is missing and there is no apt-get: install Chromium"
	log=$(mktemp)
	trap 'rm -f "$log"' EXIT
	# The package lists may be missing or stale on a new machine: update once, then install.
	if ! as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium >"$log" 2>&1; then
		as_root apt-get update -q >>"$log" 2>&1 || { cat "$log" >&2; die "apt-get update failed"; }
		as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium >>"$log" 2>&1 ||
			{ tail -n 30 "$log" >&2; die "apt-get install chromium failed"; }
	fi
	[ -x /usr/bin/chromium ] || die "apt-get installed chromium but /usr/bin/chromium is missing"
	say "installed $(/usr/bin/chromium --version 2>/dev/null || echo chromium) (Debian package chromium)"
fi

ui=e2e/ui
if [ ! -d "$ui/node_modules" ] || [ "$ui/package-lock.json" -nt "$ui/node_modules" ] ||
	[ ! -d "$ui/node_modules/playwright-core" ] || [ ! -d "$ui/node_modules/axe-core" ]; then
	command -v npm >/dev/null || die "npm is missing: install Node.js 20 or later with npm"
	log=$(mktemp)
	(cd "$ui" && npm ci --no-audit --no-fund --loglevel=error) >"$log" 2>&1 ||
		{ cat "$log" >&2; rm -f "$log"; die "npm ci in $ui failed"; }
	rm -f "$log"
	touch "$ui/node_modules" # newer than the lock file: the next run stays quiet
	say "installed the npm packages of $ui: $(cd "$ui" && node -p 'Object.entries(require("./package.json").dependencies).map(([k,v]) => k+"@"+v).join(", ")')"
fi
