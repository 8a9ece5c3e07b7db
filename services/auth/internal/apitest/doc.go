// Package apitest starts the real auth service (app.New, the same composition as main)
// against the machine's PostgreSQL, Redis and NATS, on a fresh database per test
// binary, and gives tests a small HTTP client. It fails loudly when a service is down:
// CI starts them, so a missing one is a broken machine, not a reason to skip.
package apitest
