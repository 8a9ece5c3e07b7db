package natstest

import (
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

func TestStopAndRestartKeepTheURL(t *testing.T) {
	s := Run(t)
	url := s.URL()
	nc, err := nats.Connect(url, nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	s.Stop()
	if _, err := nats.Connect(url, nats.Timeout(200*time.Millisecond)); err == nil {
		t.Fatal("connected to a stopped server")
	}
	s.Restart()
	if s.URL() != url {
		t.Fatalf("URL changed across a restart: %s → %s", url, s.URL())
	}
	deadline := time.Now().Add(10 * time.Second)
	for nc.Status() != nats.CONNECTED {
		if time.Now().After(deadline) {
			t.Fatal("client did not reconnect after the restart")
		}
		time.Sleep(50 * time.Millisecond)
	}
}
