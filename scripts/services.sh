#!/usr/bin/env bash
# Start the local PostgreSQL (127.0.0.1:5432), Redis (:6379) and NATS with JetStream (:4222)
# that are installed but not answering, then wait until all three answer. One that is not
# installed stops it with one line naming it and how to get it. Used by .ci/run and
# `make run`; services it starts keep running (they are the machine's, not make run's).
#
#   scripts/services.sh [LABEL]    LABEL prefixes the messages (default "services")
set -euo pipefail

label=${1:-services}

answers() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_for() { # port name
	for _ in $(seq 1 60); do
		answers "$1" && return 0
		sleep 0.5
	done
	echo "$label: $2 is not answering on 127.0.0.1:$1" >&2
	exit 1
}

nats_server=$(command -v nats-server || { [ -x /usr/sbin/nats-server ] && echo /usr/sbin/nats-server; } || true)

# Every service that is down and has no binary, in one line.
missing=() packages=()
if ! answers 5432 && { ! command -v pg_ctlcluster >/dev/null || [ -z "$(ls /etc/postgresql 2>/dev/null)" ]; }; then
	missing+=(PostgreSQL) packages+=(postgresql)
fi
if ! answers 6379 && ! command -v redis-server >/dev/null; then
	missing+=(Redis) packages+=(redis-server)
fi
if ! answers 4222 && [ -z "$nats_server" ]; then
	missing+=(NATS) packages+=(nats-server)
fi
if [ ${#missing[@]} -gt 0 ]; then
	names=$(printf '%s, ' "${missing[@]}")
	names=${names%, }
	echo "$label: ${names} not running and not installed: apt-get install ${packages[*]}" >&2
	exit 1
fi

if ! answers 5432; then
	echo "$label: starting PostgreSQL"
	pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql)" main start
fi
if ! answers 6379; then
	echo "$label: starting Redis"
	redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no
fi
if ! answers 4222; then
	echo "$label: starting NATS"
	start-stop-daemon --start --oknodo --background --exec "$nats_server" -- -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server
fi
wait_for 5432 PostgreSQL
wait_for 6379 Redis
wait_for 4222 NATS
