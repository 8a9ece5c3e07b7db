// Package natsx connects to NATS. Streams and consumers come with the events package.
package natsx

import (
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
)

// Connect dials url and keeps reconnecting forever: the outbox holds events while
// NATS is away, so a service never needs to restart for it.
func Connect(url, name string) (*nats.Conn, error) {
	nc, err := nats.Connect(url,
		nats.Name(name),
		nats.Timeout(5*time.Second),
		nats.MaxReconnects(-1),
		nats.RetryOnFailedConnect(true),
		nats.ReconnectWait(time.Second),
	)
	if err != nil {
		return nil, fmt.Errorf("NATS_URL: connect: %w", err)
	}
	return nc, nil
}

// Check reports whether the connection is up (readiness).
func Check(nc *nats.Conn) error {
	if nc.Status() != nats.CONNECTED {
		return fmt.Errorf("nats: %s", nc.Status())
	}
	return nil
}
