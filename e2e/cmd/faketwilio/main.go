// Command faketwilio serves pkg/twiliofake, a local Twilio Messages API, for `make run`:
// point the token-worker at it with TWILIO_API_URL and the same account sid and auth
// token, and every SMS it sends shows at / (a page) and /api/messages (JSON) instead of
// reaching a phone. Messages live in memory, the newest 1000. SIGINT or SIGTERM stops it.
//
// Each flag's default can come from the environment: FAKETWILIO_ADDR,
// FAKETWILIO_ACCOUNT_SID, FAKETWILIO_AUTH_TOKEN (not TWILIO_*, so a shell set up for real
// Twilio does not hand its credentials to the fake).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/talentforge/auth/pkg/twiliofake"
)

func env(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

func main() {
	addr := flag.String("addr", env("FAKETWILIO_ADDR", ":8026"), "address to listen on")
	sid := flag.String("account-sid", env("FAKETWILIO_ACCOUNT_SID", "AC00000000000000000000000000000000"),
		"the account sid clients authenticate as (TWILIO_ACCOUNT_SID)")
	token := flag.String("auth-token", env("FAKETWILIO_AUTH_TOKEN", "faketwilio-dev-token"),
		"the auth token clients authenticate with (TWILIO_AUTH_TOKEN)")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	s, err := twiliofake.Listen(*addr, *sid, *token)
	if err != nil {
		fmt.Fprintf(os.Stderr, "faketwilio: %v\n", err)
		os.Exit(1)
	}
	fmt.Fprintf(os.Stderr, "faketwilio: Twilio Messages API for %s on %s (TWILIO_API_URL); messages at %s/\n",
		*sid, s.URL(), s.URL())
	<-ctx.Done()
	_ = s.Close()
}
