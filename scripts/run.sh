#!/usr/bin/env bash
# The processes of `make run` (the Makefile has already started PostgreSQL, Redis and NATS
# when needed, built and migrated): Mailpit unless SMTP_HOST names a relay of your own, the
# fake Twilio (e2e/cmd/faketwilio) unless TWILIO_* name a Twilio of your own, then auth,
# oauth and the token-worker, in the foreground. Ctrl-C (or any of them stopping)
# stops every process this started; the machine's PostgreSQL, Redis and NATS keep running.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { echo "make run: $*" >&2; }
answers() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

export LOG_FORMAT=${LOG_FORMAT:-console}
# Dev keys made by the Makefile (var/), unless given.
if [ -z "${EVENT_KEYS:-}${EVENT_KEYS_FILE:-}" ]; then export EVENT_KEYS_FILE=var/event-keys; fi
if [ -z "${MFA_ENCRYPTION_KEYS:-}${MFA_ENCRYPTION_KEYS_FILE:-}" ]; then export MFA_ENCRYPTION_KEYS_FILE=var/mfa-keys; fi

# The hosted UI is the web app of a laptop: the email links land on its pages, and its
# login page offers the oauth service's providers (their callback allowlisted).
export APP_URL=${APP_URL:-http://localhost:8081/ui}
export UI_OAUTH_URL=${UI_OAUTH_URL:-http://localhost:8082}
export OAUTH_REDIRECT_ALLOWLIST=${OAUTH_REDIRECT_ALLOWLIST:-http://localhost:3000,http://localhost:8081/ui/oauth/callback}

# A laptop's webhook receivers listen on localhost: allowed here, never by default.
export WEBHOOK_ALLOW_PRIVATE_NETWORKS=${WEBHOOK_ALLOW_PRIVATE_NETWORKS:-true}

ports=(8081 8082 8083)
mailpit=
if [ -z "${SMTP_HOST:-}" ]; then
	mailpit=yes
	ports+=(1025 8025)
	bash scripts/mailpit.sh path >/dev/null # the first run builds it, in the foreground
fi
# SMS go to the fake Twilio, whose credentials the worker is given, unless the user set any
# of TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN, TWILIO_API_URL: then they go where those say.
export SMS_PROVIDER=${SMS_PROVIDER:-twilio}
faketwilio=
if [ "$SMS_PROVIDER" = twilio ] && [ -z "${TWILIO_ACCOUNT_SID:-}${TWILIO_AUTH_TOKEN:-}${TWILIO_API_URL:-}" ]; then
	faketwilio=yes
	ports+=(8026)
	export TWILIO_ACCOUNT_SID=AC00000000000000000000000000000000 TWILIO_AUTH_TOKEN=faketwilio-dev-token
	export TWILIO_API_URL=http://127.0.0.1:8026 TWILIO_FROM=${TWILIO_FROM:-+15005550006}
	CGO_ENABLED=0 "${GO:-go}" build -trimpath -o bin/faketwilio ./e2e/cmd/faketwilio
fi
for p in "${ports[@]}"; do
	if answers "$p"; then
		say "127.0.0.1:$p is already taken (another make run?): stop what listens there first"
		exit 1
	fi
done

declare -A names # pid -> name
# shellcheck disable=SC2317 # called by the trap
stop() {
	trap - INT TERM EXIT
	if [ ${#names[@]} -gt 0 ]; then
		kill "${!names[@]}" 2>/dev/null || true
		wait "${!names[@]}" 2>/dev/null || true
	fi
}
trap stop EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

start() { # name command...
	local name=$1
	shift
	"$@" &
	names[$!]=$name
}

if [ -n "$mailpit" ]; then start mailpit bash scripts/mailpit.sh run; fi
# On loopback like Mailpit: its message list (SMS codes) has no auth.
if [ -n "$faketwilio" ]; then
	start faketwilio ./bin/faketwilio -addr 127.0.0.1:8026 \
		-account-sid "$TWILIO_ACCOUNT_SID" -auth-token "$TWILIO_AUTH_TOKEN"
fi
start auth ./bin/auth
# auth writes the dev signing key on its first start; oauth signs with the same one.
for _ in $(seq 100); do [ -n "$(ls "${JWT_KEYS_DIR:-var/keys}" 2>/dev/null)" ] && break; sleep 0.1; done
sleep 0.2
start oauth ./bin/oauth
start token-worker ./bin/token-worker

alive() { for pid in "${!names[@]}"; do kill -0 "$pid" 2>/dev/null || return 1; done; }
for _ in $(seq 300); do # up to 30 s for every port to answer
	up=yes
	for p in "${ports[@]}"; do answers "$p" || { up=; break; }; done
	[ -n "$up" ] && break
	alive || break
	sleep 0.1
done

if alive; then
	if [ -n "$mailpit" ]; then
		mail="Mailpit       http://localhost:8025   (every email sent, SMTP 127.0.0.1:1025)"
		inbox="open http://localhost:8025"
	else
		mail="Mailpit       not started: emails go to SMTP_HOST=$SMTP_HOST"
		inbox="open the email at your relay ($SMTP_HOST)"
	fi
	if [ -n "$faketwilio" ]; then
		sms="Fake Twilio   http://localhost:8026   (every SMS sent)"
	elif [ "$SMS_PROVIDER" = twilio ]; then
		sms="Fake Twilio   not started: SMS go to ${TWILIO_API_URL:-https://api.twilio.com}"
	else
		sms="Fake Twilio   not started: SMS_PROVIDER=$SMS_PROVIDER"
	fi
	cat <<-BANNER

		==> TalentForge Auth is running; Ctrl-C stops it all.
		      auth          http://localhost:8081
		      hosted UI     http://localhost:8081/ui/   (sign up, sign in, passkeys, two-step, sessions)
		      oauth         http://localhost:8082
		      token-worker  http://localhost:8083/readyz
		      $mail
		      $sms
		    Quick start, in another terminal (README "Calling it" goes on to login):
		      curl -si localhost:8081/v1/auth/register -H 'Content-Type: application/json' -d '{"email":"ada@example.com","password":"plum kettle orbit 42"}'
		      $inbox and copy the token from the link in the email
		      curl -si localhost:8081/v1/auth/email/verify -H 'Content-Type: application/json' -d '{"token":"PASTE_TOKEN_HERE"}'

	BANNER
fi

# Ctrl-C reaches every process of the group: the services stop by themselves (status 0),
# and bash then leaves the interrupt to them.
status=0
wait -n -p ended "${!names[@]}" || status=$?
if [ "$status" -eq 0 ]; then
	say "stopping everything it started (${names[$ended]:-a service} stopped)"
else
	say "${names[$ended]:-a service} exited with status $status (its log is above): stopping the rest"
fi
unset "names[$ended]"
exit "$status"
