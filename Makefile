# The one entry point. `make help` lists the targets.
SHELL   := /bin/bash
MODULES := pkg migrations services/auth services/oauth services/token-worker e2e
SERVICES := auth oauth token-worker
GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT  ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo none)
LDFLAGS := -s -w -X main.version=$(VERSION) -X main.commit=$(COMMIT)
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
PKGS    := $(addprefix ./,$(addsuffix /...,$(MODULES)))
# The deployment checks (compose, Traefik, rules, dashboards; Helm charts) are modules of
# their own, outside go.work: their Kubernetes and Prometheus libraries must not move the
# versions the services build with. They run with GOWORK=off.
STANDALONE := deploy charts
# Short fuzz runs in `make test`; longer ones with `make fuzz FUZZTIME=1m`. Minimising a new
# input is capped: on 2 cores the default (60 s) outlives a short run and fails it.
FUZZTIME ?= 5s

.DEFAULT_GOAL := help

.PHONY: help
help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  %-10s %s\n", $$1, $$2}'

.PHONY: build
build: ## build every service into bin/
	@mkdir -p bin
	@for s in $(SERVICES); do \
		echo "build bin/$$s"; \
		(cd services/$$s && CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o ../../bin/$$s .) || exit 1; \
	done

# The dev key that seals tokens in events (EVENT_KEYS), made once; never used in production.
var/event-keys:
	@mkdir -p var && printf 'dev:%s\n' "$$(head -c 32 /dev/urandom | base64)" > var/event-keys && chmod 600 var/event-keys

# The dev key that seals TOTP secrets (MFA_ENCRYPTION_KEYS), made once; never used in production.
var/mfa-keys:
	@mkdir -p var && printf 'dev:%s\n' "$$(head -c 32 /dev/urandom | base64)" > var/mfa-keys && chmod 600 var/mfa-keys

.PHONY: migrate
migrate: build var/event-keys ## create the database if missing and apply every migration
	./bin/auth migrate

.PHONY: run
run: var/event-keys var/mfa-keys ## start PostgreSQL/Redis/NATS if needed, build, migrate, serve the three services and Mailpit (Ctrl-C stops them)
	@bash scripts/services.sh "make run"
	@$(MAKE) --no-print-directory migrate
	@bash scripts/run.sh

.PHONY: smoke
smoke: build ## sign up end to end on real processes, own database and ports: register, email via Mailpit, verify, login, reset
	$(GO) run ./e2e/cmd/smoke

.PHONY: test-ui
test-ui: build ## the hosted UI in headless Chromium (scripts/ui-deps.sh installs it): register to TOTP, passkeys, sessions, the gateway's ForwardAuth, axe; screenshots in var/ui-screenshots/
	$(GO) run ./e2e/cmd/uitest

.PHONY: enum-timing
enum-timing: build ## answer times of forgot, resend and login, known vs unknown address, on bin/auth: median, p90, Mann-Whitney U; asserts nothing (TIMINGFLAGS, e.g. -n 500)
	$(GO) run ./e2e/cmd/enumtiming $(TIMINGFLAGS)

.PHONY: test
test: ## every test of every module against the local PostgreSQL, Redis and NATS, with -race
	$(GO) test -race -count=1 -timeout 10m $(PKGS)
	$(MAKE) --no-print-directory smoke
	$(MAKE) --no-print-directory test-ui
	$(MAKE) --no-print-directory test-deploy
	$(MAKE) --no-print-directory fuzz

# The NATS half of the version matrix: the machine's server (Debian 12: 2.9.10) runs every
# test above; these run the NATS-dependent ones again on a pinned current release, built
# once from the Go module proxy into the cache folder (scripts/nats-current.sh).
NATS_TESTS_ALL  := ./pkg/natstest/... ./pkg/events/... ./services/token-worker/... ./e2e/...
NATS_TESTS_SOME := ./services/auth/internal/... ./services/oauth/internal/...
NATS_TESTS_RUN  := Event|NATS|Relay|Readyz

.PHONY: test-nats-current
test-nats-current: build ## the NATS-dependent tests and the smoke run again, on a pinned current nats-server
	bash scripts/nats-current.sh test bash -c '$(GO) test -race -count=1 -timeout 10m $(NATS_TESTS_ALL) && \
		$(GO) test -race -count=1 -timeout 10m -run "$(NATS_TESTS_RUN)" $(NATS_TESTS_SOME) && \
		$(GO) run ./e2e/cmd/smoke'

.PHONY: test-deploy
test-deploy: ## check docker-compose.yml, Traefik, the Prometheus rules (promtool), the dashboards and the Helm charts
	@set -e; for m in $(STANDALONE); do (cd $$m && GOWORK=off $(GO) test -race -count=1 -timeout 10m ./...); done

.PHONY: images
images: ## build the service images talentforge/<service>:$(VERSION) (needs a Docker engine)
	@docker info >/dev/null 2>&1 || { echo "images: no Docker engine answers here (docker info failed)" >&2; exit 1; }
	@for s in $(SERVICES); do \
		echo "image talentforge/$$s:$(VERSION)"; \
		docker build -f services/$$s/Dockerfile --build-arg VERSION=$(VERSION) --build-arg COMMIT=$(COMMIT) \
			-t talentforge/$$s:$(VERSION) . || exit 1; \
	done

.PHONY: fuzz
fuzz: ## run each fuzz target for FUZZTIME (seed corpora run in `make test` too)
	@set -eo pipefail; for t in FuzzNormalize:./pkg/emailaddr FuzzBindJSON:./pkg/httpx \
		FuzzParseRefreshToken:./pkg/session FuzzVerify:./pkg/token \
		FuzzResponses:./services/auth/internal/passkey; do \
		echo "fuzz $${t%%:*} for $(FUZZTIME)"; \
		out=$$($(GO) test -run '^$$' -fuzz "^$${t%%:*}$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 1s "$${t#*:}" 2>&1) \
			|| { echo "$$out"; exit 1; }; echo "$$out" | tail -n 1; \
	done

.PHONY: lint
lint: ## gofmt, go vet and staticcheck
	@out=$$(gofmt -l $(MODULES) $(STANDALONE)); if [ -n "$$out" ]; then echo "not gofmt-ed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	$(GO) run $(STATICCHECK) $(PKGS)
	@set -e; for m in $(STANDALONE); do (cd $$m && GOWORK=off $(GO) vet ./... && GOWORK=off $(GO) run $(STATICCHECK) ./...); done

.PHONY: tidy
tidy: ## go mod tidy in every module
	@for m in $(MODULES) $(STANDALONE); do (cd $$m && GOWORK=off $(GO) mod tidy) || exit 1; done

.PHONY: clean
clean: ## remove build output
	rm -rf bin

.PHONY: bench
bench: build ## load-test bin/auth against each baseline, every one its own process, then the micro-benchmarks (BENCHFLAGS, e.g. -c 32 -rounds 5 -d 5s)
	CGO_ENABLED=0 $(GO) build -trimpath -o bin/bench ./services/auth/cmd/bench
	./bin/bench -auth bin/auth $(BENCHFLAGS)
	$(GO) test -run '^$$' -bench . -benchtime 1s ./pkg/token ./pkg/session ./pkg/ratelimit ./services/auth/internal/store
