// Package e2e runs the built binaries together as an operator would: bin/auth and
// bin/token-worker as processes, against the machine's PostgreSQL, a NATS server and
// an SMTP relay of the test's own, and checks what a user sees: the emails.
package e2e
