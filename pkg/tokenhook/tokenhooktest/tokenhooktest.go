// Package tokenhooktest is an access-token hook receiver for tests, on a real socket
// (httptest): the hook is the operator's endpoint, outside the platform, so a test
// stands one up the way an operator would. It checks every call's signature with the
// official Standard Webhooks library, keeps what it was sent, and answers what the test
// set (by default {"claims": {}}).
package tokenhooktest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/talentforge/auth/pkg/webhook"
)

// Call is one call the receiver got.
type Call struct {
	Header http.Header
	Body   []byte
	// Request is Body decoded.
	Request Request
	// SignatureErr is the official library's verdict on the signature (nil: valid).
	SignatureErr error
}

// Request is a decoded call body.
type Request struct {
	Type    string         `json:"type"`
	User    map[string]any `json:"user"`
	Session map[string]any `json:"session"`
	Claims  map[string]any `json:"claims"`
}

// Receiver is a running hook receiver.
type Receiver struct {
	// URL is where to point ACCESS_TOKEN_HOOK_URL; Secret is its ACCESS_TOKEN_HOOK_SECRET.
	URL, Secret string

	t      testing.TB
	wh     *standardwebhooks.Webhook
	mu     sync.Mutex
	answer http.HandlerFunc
	calls  []Call
}

// Start runs a receiver until the test ends.
func Start(t testing.TB) *Receiver {
	t.Helper()
	r := &Receiver{t: t, Secret: webhook.NewSecret()}
	wh, err := standardwebhooks.NewWebhook(r.Secret)
	if err != nil {
		t.Fatal(err)
	}
	r.wh = wh
	r.Answer(http.StatusOK, `{"claims": {}}`)
	srv := httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(srv.Close)
	r.URL = srv.URL + "/hooks/access-token"
	return r
}

func (r *Receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(req.Body, 1<<20))
	c := Call{Header: req.Header.Clone(), Body: body}
	if req.Method != http.MethodPost || req.URL.Path != "/hooks/access-token" {
		c.SignatureErr = fmt.Errorf("%s %s: want POST /hooks/access-token", req.Method, req.URL.Path)
	} else {
		c.SignatureErr = r.wh.Verify(body, req.Header)
	}
	if err := json.Unmarshal(body, &c.Request); err != nil && c.SignatureErr == nil {
		c.SignatureErr = fmt.Errorf("body is not JSON: %w", err)
	}
	r.mu.Lock()
	r.calls = append(r.calls, c)
	answer := r.answer
	r.mu.Unlock()
	answer(w, req)
}

// Answer makes every later call answer status with body (JSON).
func (r *Receiver) Answer(status int, body string) {
	r.AnswerWith(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	})
}

// AnswerClaims makes every later call answer 200 {"claims": claims}.
func (r *Receiver) AnswerClaims(claims map[string]any) {
	b, err := json.Marshal(map[string]any{"claims": claims})
	if err != nil {
		r.t.Fatal(err)
	}
	r.Answer(http.StatusOK, string(b))
}

// AnswerWith makes every later call answer through f.
func (r *Receiver) AnswerWith(f http.HandlerFunc) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.answer = f
}

// Calls returns the calls so far, failing the test if any was not signed with Secret.
func (r *Receiver) Calls() []Call {
	r.t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	for i, c := range r.calls {
		if c.SignatureErr != nil {
			r.t.Fatalf("hook call %d not signed as Standard Webhooks sign: %v", i, c.SignatureErr)
		}
	}
	return append([]Call(nil), r.calls...)
}

// Count is how many calls arrived.
func (r *Receiver) Count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.calls)
}
