package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

// A receiver as a customer writes one: it checks every call with the official Standard
// Webhooks library and deduplicates on webhook-id.
type receiver struct {
	mu       sync.Mutex
	secret   string
	failures int // answer 503 to this many calls first (an outage)
	calls    []string
	bad      int
	got      map[string]map[string]any // webhook-id → body, the first accepted
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rc.mu.Lock()
	defer rc.mu.Unlock()
	id := r.Header.Get("webhook-id")
	rc.calls = append(rc.calls, id)
	wh, err := standardwebhooks.NewWebhook(rc.secret)
	if err != nil || wh.Verify(body, r.Header) != nil {
		rc.bad++
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	if rc.failures > 0 {
		rc.failures--
		http.Error(w, "down", http.StatusServiceUnavailable)
		return
	}
	if _, dup := rc.got[id]; !dup {
		var m map[string]any
		_ = json.Unmarshal(body, &m)
		rc.got[id] = m
	}
	w.WriteHeader(http.StatusNoContent)
}

// The webhook chain as users run it: an admin adds an endpoint through auth's API, a
// sign-up writes its event, auth's relay publishes it and the token-worker delivers it,
// signed, through a receiver outage, under the same webhook-id on every attempt.
func TestWebhooksThroughTheStack(t *testing.T) {
	adminEmail := "e2e-wh-admin-" + randomHex(4) + "@example.com"
	s := startStackOn(t, nil, "ADMIN_EMAILS="+adminEmail, "WEBHOOK_ALLOW_PRIVATE_NETWORKS=true",
		"WORKER_WEBHOOK_RETRY_SCHEDULE=200ms,400ms,800ms,1s,1s,1s,1s", "WORKER_WEBHOOK_POLL_INTERVAL=100ms")
	rc := &receiver{failures: 2, got: map[string]map[string]any{}}
	srv := httptest.NewServer(rc)
	t.Cleanup(srv.Close)

	s.mustPost("/v1/auth/register", map[string]string{"email": adminEmail, "password": password, "name": "Admin"}, http.StatusAccepted)
	s.mustPost("/v1/auth/email/verify", map[string]string{"token": tokenFrom(t, s.waitMail(adminEmail, 1)[0], "verify-email")}, http.StatusOK)
	var pair struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(s.mustPost("/v1/auth/login", map[string]string{"email": adminEmail, "password": password}, http.StatusOK), &pair); err != nil {
		t.Fatal(err)
	}
	status, body := postJSON(t, s.authURL+"/v1/admin/webhooks", map[string]any{"url": srv.URL + "/hooks",
		"events": []string{"auth.user.registered", "auth.user.email_verified"}}, pair.AccessToken)
	var ep struct {
		ID, Secret string
	}
	if status != http.StatusCreated || json.Unmarshal(body, &ep) != nil || ep.Secret == "" {
		t.Fatalf("create webhook: %d %s", status, body)
	}
	rc.mu.Lock()
	rc.secret = ep.Secret
	rc.mu.Unlock()

	// An event after the endpoint: a sign-up.
	email := "e2e-wh-" + randomHex(4) + "@example.com"
	s.mustPost("/v1/auth/register", map[string]string{"email": email, "password": password, "name": "Ada"}, http.StatusAccepted)
	var userID string
	deadline := time.Now().Add(45 * time.Second)
	for userID == "" {
		rc.mu.Lock()
		for _, m := range rc.got {
			if data, _ := m["data"].(map[string]any); m["type"] == "auth.user.registered" && data != nil {
				userID, _ = data["user_id"].(string)
			}
		}
		calls, bad := slices.Clone(rc.calls), rc.bad
		rc.mu.Unlock()
		if bad > 0 {
			t.Fatalf("%d calls with a signature the library refused", bad)
		}
		if time.Now().After(deadline) {
			t.Fatalf("no auth.user.registered delivered in 45 s; calls %v", calls)
		}
		time.Sleep(100 * time.Millisecond)
	}
	rc.mu.Lock()
	calls, delivered := slices.Clone(rc.calls), len(rc.got)
	rc.mu.Unlock()
	if len(calls) != 3 || slices.ContainsFunc(calls, func(id string) bool { return id != calls[0] || id == "" }) {
		t.Fatalf("calls %v: want 2 refused attempts and a third, all under one webhook-id", calls)
	}
	if delivered != 1 {
		t.Fatalf("%d events delivered, want the sign-up only (the admin's own came before the endpoint)", delivered)
	}

	// The admin sees the delivery: succeeded on the third attempt.
	status, body = get(t, s.authURL+"/v1/admin/webhooks/"+ep.ID+"/deliveries", pair.AccessToken)
	var dl struct {
		Deliveries []struct {
			EventID  string `json:"event_id"`
			Status   string `json:"status"`
			Attempts int    `json:"attempts"`
		} `json:"deliveries"`
	}
	if status != http.StatusOK || json.Unmarshal(body, &dl) != nil {
		t.Fatalf("deliveries: %d %s", status, body)
	}
	found := false
	for _, d := range dl.Deliveries {
		if d.EventID == calls[0] {
			found = true
			if d.Status != "succeeded" || d.Attempts != 3 {
				t.Errorf("delivery %+v, want succeeded after 3 attempts", d)
			}
		}
	}
	if !found {
		t.Fatalf("the delivery of %s is not listed: %s", calls[0], body)
	}
}
