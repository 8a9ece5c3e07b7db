package natstest

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func TestStopAndRestartKeepTheURLAndTheStore(t *testing.T) {
	s := Run(t)
	url := s.URL()
	nc, err := nats.Connect(url, nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "KEPT", Subjects: []string{"kept.>"}}); err != nil {
		t.Fatal(err)
	}
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
	if _, err := js.Stream(ctx, "KEPT"); err != nil {
		t.Fatalf("the stream did not survive the restart: %v", err)
	}
}

// The server is the binary on the machine, not a library: its version is what
// NATS_SERVER_BIN (or the PATH's nats-server) says.
func TestRunsTheMachinesBinary(t *testing.T) {
	s := Run(t)
	t.Logf("%s is nats-server %s; the shared server at %s is %s", Bin(), s.Version(), URL(), Version(t, URL()))
	if s.Version() == "" {
		t.Fatal("no server version")
	}
}

func TestWithoutJetStreamRefusesJetStream(t *testing.T) {
	s := Run(t, WithoutJetStream())
	nc, err := nats.Connect(s.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if _, err := js.AccountInfo(ctx); err == nil {
		t.Fatal("JetStream answered on a server started without it")
	}
}

func TestNamespaceStreamsAreDeletedWithTheTest(t *testing.T) {
	var ns string
	name := ""
	t.Run("inner", func(t *testing.T) {
		ns = Namespace(t)
		nc, err := nats.Connect(URL())
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		js, _ := jetstream.New(nc)
		name = "NSTEST_" + ns
		if _, err := js.CreateStream(context.Background(), jetstream.StreamConfig{Name: name, Subjects: []string{ns + ".x"}}); err != nil {
			t.Fatal(err)
		}
	})
	nc, err := nats.Connect(URL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	if _, err := js.Stream(context.Background(), name); err == nil {
		t.Fatalf("stream %s of namespace %s outlived its test", name, ns)
	}
}
