package webhook

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

func TestSignVerifiedByTheOfficialLibrary(t *testing.T) {
	oldS, newS := NewSecret(), NewSecret()
	if err := CheckSecret(newS); err != nil {
		t.Fatal(err)
	}
	body := []byte(`{"type":"auth.user.registered","timestamp":"2026-01-02T03:04:05Z","data":{}}`)
	ts := time.Now()
	sig, err := Sign([]string{newS, oldS}, "msg_1", ts, body)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(strings.Split(sig, " ")); n != 2 {
		t.Fatalf("%d signatures, want 2 during a rotation", n)
	}
	h := http.Header{}
	SetHeaders(h, "msg_1", ts, sig)
	for _, s := range []string{oldS, newS} {
		wh, err := standardwebhooks.NewWebhook(s)
		if err != nil {
			t.Fatal(err)
		}
		if err := wh.Verify(body, h); err != nil {
			t.Errorf("a receiver with one of the two secrets refused: %v", err)
		}
	}
	other, _ := standardwebhooks.NewWebhook(NewSecret())
	if other.Verify(body, h) == nil {
		t.Error("a stranger's secret verified")
	}
	wh, _ := standardwebhooks.NewWebhook(newS)
	if wh.Verify(append(body, ' '), h) == nil {
		t.Error("a changed body verified")
	}
}

// The spec's test vector (standard-webhooks spec, "Signature scheme").
func TestSignSpecVector(t *testing.T) {
	sig, err := Sign([]string{"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}, "msg_p5jXN8AQM9LWM0D4loKWxJek",
		time.Unix(1614265330, 0), []byte(`{"test": 2432232314}`))
	if err != nil {
		t.Fatal(err)
	}
	if want := "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="; sig != want {
		t.Errorf("signature %q, want %q", sig, want)
	}
}

func TestCheckSecret(t *testing.T) {
	for _, s := range []string{"", "whsec_", "secret", "whsec_!!!", "whsec_" + strings.Repeat("A", 8)} {
		if CheckSecret(s) == nil {
			t.Errorf("%q accepted", s)
		}
	}
}

func TestPolicyRefusesPrivateAndReserved(t *testing.T) {
	ctx := context.Background()
	p := Policy{}
	for _, raw := range []string{
		"http://example.com/x", "ftp://example.com", "https://", "/relative", "https://user:pw@example.com/",
		"https://127.0.0.1/x", "https://[::1]/", "https://10.1.2.3/", "https://172.16.0.1/", "https://192.168.1.1/",
		"https://169.254.169.254/latest/meta-data", "https://[fd00:ec2::254]/", "https://[fe80::1]/", "https://0.0.0.0/",
		"https://100.64.0.1/", "https://[::ffff:127.0.0.1]/", "https://[64:ff9b::a00:1]/", "https://localhost/",
		"https://example.com/#frag", "https://" + strings.Repeat("a", 2050) + ".com/",
	} {
		if _, err := p.CheckURL(ctx, raw); !errors.Is(err, ErrInvalidURL) {
			t.Errorf("%s: %v, want ErrInvalidURL", raw, err)
		}
	}
	if _, err := p.CheckURL(ctx, "https://93.184.215.14/hook"); err != nil {
		t.Errorf("a public address refused: %v", err)
	}
	// A name this network cannot resolve is accepted: each connection checks again.
	if _, err := p.CheckURL(ctx, "https://receiver.invalid/hook"); err != nil {
		t.Errorf("an unresolvable name refused at creation: %v", err)
	}
	if _, err := p.Client(2 * time.Second).Get("https://receiver.invalid/hook"); !errors.Is(err, ErrInvalidURL) {
		t.Errorf("connecting to an unresolvable name: %v", err)
	}
	allow := Policy{AllowPrivate: true}
	for _, raw := range []string{"http://127.0.0.1:9/x", "https://10.1.2.3/", "http://localhost:8080/"} {
		if _, err := allow.CheckURL(ctx, raw); err != nil {
			t.Errorf("%s refused with AllowPrivate: %v", raw, err)
		}
	}
	for _, raw := range []string{"http://169.254.169.254/latest/meta-data/", "https://[fd00:ec2::254]/", "http://[::ffff:169.254.169.254]/"} {
		if _, err := allow.CheckURL(ctx, raw); !errors.Is(err, ErrInvalidURL) {
			t.Errorf("%s: %v: a metadata service is refused even with AllowPrivate", raw, err)
		}
	}
	if _, err := allow.CheckURL(ctx, "ftp://127.0.0.1/"); err == nil {
		t.Error("ftp accepted with AllowPrivate")
	}
	if !p.allowed(netip.MustParseAddr("8.8.8.8")) || p.allowed(netip.MustParseAddr("::")) {
		t.Error("allowed() is wrong about 8.8.8.8 or ::")
	}
}

// The client checks the address it connects to, not only the URL an admin entered: a
// name that resolves to loopback (DNS rebinding, or a URL checked long ago) is refused at
// connection time, and redirects are answered, not followed.
func TestClientChecksWhenConnecting(t *testing.T) {
	var hits int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits++
		if r.URL.Path == "/redirect" {
			http.Redirect(w, r, "/elsewhere", http.StatusFound)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())

	if _, err := (Policy{}).Client(2 * time.Second).Get("http://localhost:" + port + "/"); err == nil {
		t.Fatal("the production policy connected to loopback")
	}
	if hits != 0 {
		t.Fatalf("%d requests reached loopback", hits)
	}
	c := Policy{AllowPrivate: true}.Client(2 * time.Second)
	resp, err := c.Get("http://localhost:" + port + "/redirect")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound || hits != 1 {
		t.Errorf("status %d after %d requests: the redirect was followed", resp.StatusCode, hits)
	}
}
