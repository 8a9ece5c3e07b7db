package workertest

import (
	"testing"

	"github.com/talentforge/auth/pkg/twiliofake"
)

// Twilio is a fake Twilio (pkg/twiliofake) on a socket of the test's own, with the
// account it accepts.
type Twilio struct {
	*twiliofake.Server
	AccountSID, AuthToken, From string
}

// StartTwilio starts the fake; it stops with the test.
func StartTwilio(t testing.TB) *Twilio {
	t.Helper()
	f := &Twilio{AccountSID: "AC" + RandomHex(16), AuthToken: RandomHex(16), From: "+15005550006"}
	srv, err := twiliofake.Start(f.AccountSID, f.AuthToken)
	if err != nil {
		t.Fatal(err)
	}
	f.Server = srv
	t.Cleanup(func() { _ = srv.Close() })
	return f
}

// Env is the worker's configuration for sending through the fake.
func (f *Twilio) Env() Env {
	return Env{"SMS_PROVIDER": "twilio", "TWILIO_ACCOUNT_SID": f.AccountSID, "TWILIO_AUTH_TOKEN": f.AuthToken,
		"TWILIO_FROM": f.From, "TWILIO_API_URL": f.URL()}
}
