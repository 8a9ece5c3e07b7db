// Command passkeytiming times passkey sign-ins (begin and finish, signed by
// pkg/softauthn) against password logins, alternating, on a running bin/auth: it adds a
// passkey to the account of -token (a session within REAUTH_MAX_AGE of its sign-in),
// then signs in -n times each way and prints the medians and tails. It asserts nothing.
// Rate limits count every request: run auth with RATE_LIMIT_ENABLED=false.
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"time"

	"github.com/talentforge/auth/pkg/softauthn"
)

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "passkeytiming: "+format+"\n", args...)
	os.Exit(1)
}

func post(base, path string, body any, bearer string, out any) int {
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(http.MethodPost, base+path, bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		fail("%v", err)
	}
	defer res.Body.Close()
	data, _ := io.ReadAll(res.Body)
	if out != nil {
		_ = json.Unmarshal(data, out)
	}
	return res.StatusCode
}

func main() {
	base := flag.String("url", "http://localhost:8081", "auth's URL, also the passkeys' origin")
	at := flag.String("token", "", "access token of a fresh session of the account")
	email := flag.String("email", "", "the account's address, for the password logins")
	pw := flag.String("password", "", "the account's password")
	n := flag.Int("n", 200, "sign-ins of each kind")
	flag.Parse()
	a := softauthn.New()
	var c struct {
		FlowID    string          `json:"flow_id"`
		PublicKey json.RawMessage `json:"publicKey"`
	}
	if s := post(*base, "/v1/users/me/passkeys/begin", map[string]any{}, *at, &c); s != http.StatusOK {
		fail("begin registration: %d", s)
	}
	cred, _, err := a.Create(c.PublicKey, softauthn.Options{Origin: *base})
	if err != nil {
		fail("create: %v", err)
	}
	if s := post(*base, "/v1/users/me/passkeys/finish", map[string]any{"flow_id": c.FlowID, "credential": cred}, *at, nil); s != http.StatusCreated {
		fail("finish registration: %d", s)
	}
	var pk, pwd []time.Duration
	for i := 0; i < *n; i++ {
		t0 := time.Now()
		if s := post(*base, "/v1/auth/passkey/begin", map[string]any{}, "", &c); s != http.StatusOK {
			fail("begin sign-in: %d", s)
		}
		as, err := a.Get(c.PublicKey, softauthn.Options{Origin: *base})
		if err != nil {
			fail("get: %v", err)
		}
		if s := post(*base, "/v1/auth/passkey/finish", map[string]any{"flow_id": c.FlowID, "credential": as}, "", nil); s != http.StatusOK {
			fail("finish sign-in: %d", s)
		}
		pk = append(pk, time.Since(t0))
		t0 = time.Now()
		if s := post(*base, "/v1/auth/login", map[string]string{"email": *email, "password": *pw}, "", nil); s != http.StatusOK {
			fail("password login: %d", s)
		}
		pwd = append(pwd, time.Since(t0))
	}
	slices.Sort(pk)
	slices.Sort(pwd)
	q := func(d []time.Duration, f float64) time.Duration { return d[int(float64(len(d)-1)*f)] }
	fmt.Printf("passkey sign-in (begin+finish, 2 requests): p50 %v p90 %v p99 %v\n", q(pk, .5), q(pk, .9), q(pk, .99))
	fmt.Printf("password login (1 request):                p50 %v p90 %v p99 %v\n", q(pwd, .5), q(pwd, .9), q(pwd, .99))
	fmt.Printf("ratio of medians passkey/password: %.2f (n=%d, alternating)\n", float64(q(pk, .5))/float64(q(pwd, .5)), *n)
}
