package natsx

import (
	"os"
	"strings"
	"testing"
	"time"
)

func testURL() string {
	if u := os.Getenv("NATS_URL"); u != "" {
		return u
	}
	return "nats://127.0.0.1:4222"
}

func TestConnectAndCheck(t *testing.T) {
	nc, err := Connect(testURL(), "natsx-test")
	if err != nil {
		t.Fatalf("Connect(%s): %v", testURL(), err)
	}
	defer nc.Close()
	// RetryOnFailedConnect makes Connect return before the first dial succeeds.
	deadline := time.Now().Add(5 * time.Second)
	for Check(nc) != nil && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if err := Check(nc); err != nil {
		t.Fatalf("NATS not reachable at %s: %v", testURL(), err)
	}
	if got := nc.Opts.Name; got != "natsx-test" {
		t.Fatalf("connection name = %q", got)
	}
	if nc.Opts.MaxReconnect != -1 {
		t.Fatalf("MaxReconnect = %d, want -1 (reconnect forever)", nc.Opts.MaxReconnect)
	}
	js, err := nc.JetStream()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.AccountInfo(); err != nil {
		t.Fatalf("JetStream not enabled on %s: %v", testURL(), err)
	}
}

func TestCheckReportsDownConnections(t *testing.T) {
	tests := []struct {
		name  string
		url   string
		close bool
	}{
		{"after close", testURL(), true},
		{"server not there", "nats://127.0.0.1:1", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			nc, err := Connect(tt.url, "natsx-test")
			if err != nil {
				// Connect retries in the background instead of failing.
				t.Fatalf("Connect(%s) = %v, want a connection that keeps retrying", tt.url, err)
			}
			defer nc.Close()
			if tt.close {
				deadline := time.Now().Add(5 * time.Second)
				for Check(nc) != nil && time.Now().Before(deadline) {
					time.Sleep(20 * time.Millisecond)
				}
				if err := Check(nc); err != nil {
					t.Fatalf("NATS not reachable at %s: %v", tt.url, err)
				}
				nc.Close()
			}
			err = Check(nc)
			if err == nil {
				t.Fatal("Check = nil on a connection that is not up")
			}
			if !strings.HasPrefix(err.Error(), "nats:") {
				t.Fatalf("Check error %q", err)
			}
		})
	}
}
