package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/talentforge/auth/pkg/keyring"
	"github.com/talentforge/auth/pkg/webhook"
	"github.com/talentforge/auth/services/auth/internal/apitest"
)

// A public address written as an IP literal: accepted by the production URL policy
// without a DNS lookup, and never called (no token-worker runs in these tests).
const whPublicURL = "https://93.184.215.14/hooks/auth"

var whKeys = []string{"created_at", "description", "disabled_at", "events", "failing_since", "id", "last_error",
	"previous_secret_expires_at", "url"}

func whCreate(t testing.TB, e *apitest.Env, at string, body any) *apitest.Response {
	t.Helper()
	return admDo(t, e, http.MethodPost, "/v1/admin/webhooks", body, at)
}

func whKeysOf(t testing.TB, raw []byte) []string {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("%s: %v", raw, err)
	}
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// whSecret opens an endpoint's sealed secret (column) the way the token-worker does.
func whSecret(t testing.TB, e *apitest.Env, id, column string) string {
	t.Helper()
	var raw string
	admScan(t, e, &raw, "SELECT "+column+"::text FROM webhook_endpoints WHERE id = ?", id)
	var sealed keyring.Sealed
	if err := json.Unmarshal([]byte(raw), &sealed); err != nil {
		t.Fatalf("%s: %v", column, err)
	}
	plain, err := e.App.EventKeys.Open(sealed, id)
	if err != nil {
		t.Fatalf("open %s: %v", column, err)
	}
	return string(plain)
}

type whView struct {
	ID                      string     `json:"id"`
	URL                     string     `json:"url"`
	Events                  []string   `json:"events"`
	Description             string     `json:"description"`
	Secret                  string     `json:"secret"`
	CreatedAt               time.Time  `json:"created_at"`
	DisabledAt              *time.Time `json:"disabled_at"`
	PreviousSecretExpiresAt *time.Time `json:"previous_secret_expires_at"`
}

func TestWebhookEndpointLifecycle(t *testing.T) {
	t.Parallel()
	e, adm := admStart(t, nil)
	at := adm.AccessToken

	r := whCreate(t, e, at, map[string]any{"url": whPublicURL, "description": "CRM sync",
		"events": []string{"auth.user.registered", "auth.admin.user_disabled", "auth.user.registered"}})
	apitest.Expect(t, r, http.StatusCreated, "")
	if got, want := whKeysOf(t, r.Body), append(slices.Clone(whKeys), "secret"); !slices.Equal(got, slices.Sorted(slices.Values(want))) {
		t.Errorf("created keys %v", got)
	}
	if cc := r.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("an answer with a secret has Cache-Control %q", cc)
	}
	var created whView
	r.JSON(t, &created)
	if err := webhook.CheckSecret(created.Secret); err != nil || !strings.HasPrefix(created.Secret, "whsec_") {
		t.Fatalf("secret %q: %v", created.Secret, err)
	}
	if !slices.Equal(created.Events, []string{"auth.admin.user_disabled", "auth.user.registered"}) {
		t.Errorf("events %v: want sorted, without the duplicate", created.Events)
	}
	if created.URL != whPublicURL || created.Description != "CRM sync" || created.DisabledAt != nil {
		t.Errorf("created %+v", created)
	}

	// Stored sealed under EVENT_KEYS, bound to the endpoint: not in any column as is.
	var row string
	admScan(t, e, &row, "SELECT row_to_json(w)::text FROM webhook_endpoints w WHERE id = ?", created.ID)
	if strings.Contains(row, created.Secret) || strings.Contains(row, strings.TrimPrefix(created.Secret, "whsec_")) {
		t.Fatal("the secret is stored in plaintext")
	}
	if got := whSecret(t, e, created.ID, "secret_sealed"); got != created.Secret {
		t.Fatal("the sealed secret does not open to the one shown")
	}
	if n := admOutboxCount(t, e, "auth.admin.webhook_created", adm.User.ID, "webhook_id", created.ID); n != 1 {
		t.Errorf("%d webhook_created events", n)
	}
	var outbox string
	admScan(t, e, &outbox, "SELECT payload::text FROM outbox WHERE subject = 'auth.admin.webhook_created' AND payload->'payload'->>'webhook_id' = ?", created.ID)
	if strings.Contains(outbox, strings.TrimPrefix(created.Secret, "whsec_")) {
		t.Fatal("the audit event holds the secret")
	}

	// Listed without secrets.
	r = admDo(t, e, http.MethodGet, "/v1/admin/webhooks", nil, at)
	apitest.Expect(t, r, http.StatusOK, "")
	if strings.Contains(string(r.Body), "whsec_") || strings.Contains(string(r.Body), `"secret"`) {
		t.Fatalf("the list shows a secret: %s", r.Body)
	}
	var list struct {
		Webhooks []json.RawMessage `json:"webhooks"`
	}
	r.JSON(t, &list)
	found := false
	for _, w := range list.Webhooks {
		var v whView
		_ = json.Unmarshal(w, &v)
		if v.ID == created.ID {
			found = true
			if got := whKeysOf(t, w); !slices.Equal(got, whKeys) {
				t.Errorf("listed keys %v", got)
			}
		}
	}
	if !found {
		t.Fatal("the new endpoint is not listed")
	}

	// Deliveries, as the token-worker writes them.
	eventID := uuid.Must(uuid.NewV7()).String()
	admExec(t, e, `INSERT INTO webhook_deliveries (id, endpoint_id, event_id, event_type, body, attempts, last_status_code,
		last_error, next_attempt_at) VALUES (?, ?, ?, 'auth.user.registered', '{}', 2, 503, 'HTTP 503', now() + interval '30 seconds')`,
		uuid.NewString(), created.ID, eventID)
	r = admDo(t, e, http.MethodGet, "/v1/admin/webhooks/"+created.ID+"/deliveries?limit=10", nil, at)
	apitest.Expect(t, r, http.StatusOK, "")
	var dl struct {
		Deliveries []struct {
			EventID        string     `json:"event_id"`
			Status         string     `json:"status"`
			Attempts       int        `json:"attempts"`
			LastStatusCode *int       `json:"last_status_code"`
			LastError      *string    `json:"last_error"`
			NextAttemptAt  *time.Time `json:"next_attempt_at"`
		} `json:"deliveries"`
	}
	r.JSON(t, &dl)
	if len(dl.Deliveries) != 1 {
		t.Fatalf("deliveries %s", r.Body)
	}
	d := dl.Deliveries[0]
	if d.EventID != eventID || d.Status != "pending" || d.Attempts != 2 || d.LastStatusCode == nil || *d.LastStatusCode != 503 ||
		d.LastError == nil || *d.LastError != "HTTP 503" || d.NextAttemptAt == nil {
		t.Errorf("delivery %s", r.Body)
	}
	apitest.Expect(t, admDo(t, e, http.MethodGet, "/v1/admin/webhooks/"+created.ID+"/deliveries?limit=0", nil, at), http.StatusBadRequest, "invalid_request")
	apitest.Expect(t, admDo(t, e, http.MethodGet, "/v1/admin/webhooks/"+created.ID+"/deliveries?limit=201", nil, at), http.StatusBadRequest, "invalid_request")

	// Rotation: a new secret, the old one kept as the previous, signing for a day.
	r = admDo(t, e, http.MethodPost, "/v1/admin/webhooks/"+created.ID+"/rotate-secret", map[string]any{}, at)
	apitest.Expect(t, r, http.StatusOK, "")
	var rotated whView
	r.JSON(t, &rotated)
	if rotated.Secret == created.Secret || webhook.CheckSecret(rotated.Secret) != nil {
		t.Fatalf("rotated secret %q", rotated.Secret)
	}
	if got := whSecret(t, e, created.ID, "secret_sealed"); got != rotated.Secret {
		t.Error("the signing secret is not the new one")
	}
	if got := whSecret(t, e, created.ID, "previous_secret_sealed"); got != created.Secret {
		t.Error("the previous secret is not the old one")
	}
	if p := rotated.PreviousSecretExpiresAt; p == nil || p.Before(time.Now().Add(23*time.Hour)) || p.After(time.Now().Add(25*time.Hour)) {
		t.Errorf("previous_secret_expires_at %v, want in about 24 h", p)
	}
	if n := admOutboxCount(t, e, "auth.admin.webhook_secret_rotated", adm.User.ID, "webhook_id", created.ID); n != 1 {
		t.Errorf("%d webhook_secret_rotated events", n)
	}

	// Enable clears what the worker set when it disabled the endpoint.
	admExec(t, e, "UPDATE webhook_endpoints SET disabled_at = now(), failing_since = now() - interval '2 days', last_error = 'HTTP 500' WHERE id = ?", created.ID)
	r = admDo(t, e, http.MethodPost, "/v1/admin/webhooks/"+created.ID+"/enable", nil, at)
	apitest.Expect(t, r, http.StatusOK, "")
	var enabled whView
	r.JSON(t, &enabled)
	if enabled.DisabledAt != nil {
		t.Errorf("still disabled: %s", r.Body)
	}
	if n := admOutboxCount(t, e, "auth.admin.webhook_enabled", adm.User.ID, "webhook_id", created.ID); n != 1 {
		t.Errorf("%d webhook_enabled events", n)
	}

	// Delete: gone from the list, its pending delivery cancelled, every route 404.
	apitest.Expect(t, admDo(t, e, http.MethodDelete, "/v1/admin/webhooks/"+created.ID, nil, at), http.StatusNoContent, "")
	var status string
	admScan(t, e, &status, "SELECT status FROM webhook_deliveries WHERE endpoint_id = ? AND event_id = ?", created.ID, eventID)
	if status != "cancelled" {
		t.Errorf("a pending delivery of a deleted endpoint is %q", status)
	}
	if n := admOutboxCount(t, e, "auth.admin.webhook_deleted", adm.User.ID, "webhook_id", created.ID); n != 1 {
		t.Errorf("%d webhook_deleted events", n)
	}
	r = admDo(t, e, http.MethodGet, "/v1/admin/webhooks", nil, at)
	if strings.Contains(string(r.Body), created.ID) {
		t.Error("a deleted endpoint is listed")
	}
	for _, c := range []struct{ method, path string }{
		{http.MethodDelete, ""}, {http.MethodPost, "/rotate-secret"}, {http.MethodPost, "/enable"}, {http.MethodGet, "/deliveries"},
	} {
		apitest.Expect(t, admDo(t, e, c.method, "/v1/admin/webhooks/"+created.ID+c.path, nil, at), http.StatusNotFound, "not_found")
		apitest.Expect(t, admDo(t, e, c.method, "/v1/admin/webhooks/not-a-uuid"+c.path, nil, at), http.StatusNotFound, "not_found")
	}
}

func TestWebhookEndpointRefusals(t *testing.T) {
	t.Parallel()
	e, adm := admStart(t, nil)
	at := adm.AccessToken
	ok := []string{"auth.user.registered"}
	for _, c := range []struct {
		name string
		body any
		code string
	}{
		{"http without the setting", map[string]any{"url": "http://example.com/hook", "events": ok}, "invalid_url"},
		{"loopback", map[string]any{"url": "https://127.0.0.1/hook", "events": ok}, "invalid_url"},
		{"loopback v6", map[string]any{"url": "https://[::1]/hook", "events": ok}, "invalid_url"},
		{"localhost", map[string]any{"url": "https://localhost/hook", "events": ok}, "invalid_url"},
		{"private", map[string]any{"url": "https://10.0.0.7/hook", "events": ok}, "invalid_url"},
		{"metadata", map[string]any{"url": "https://169.254.169.254/latest/meta-data/", "events": ok}, "invalid_url"},
		{"mapped loopback", map[string]any{"url": "https://[::ffff:127.0.0.1]/", "events": ok}, "invalid_url"},
		{"no scheme", map[string]any{"url": "example.com/hook", "events": ok}, "invalid_url"},
		{"user info", map[string]any{"url": "https://u:p@93.184.215.14/", "events": ok}, "invalid_url"},
		{"no url", map[string]any{"events": ok}, "invalid_request"},
		{"no events", map[string]any{"url": whPublicURL, "events": []string{}}, "unknown_event"},
		{"events missing", map[string]any{"url": whPublicURL}, "unknown_event"},
		{"unknown event", map[string]any{"url": whPublicURL, "events": []string{"auth.user.registered", "auth.user.exploded"}}, "unknown_event"},
		{"long description", map[string]any{"url": whPublicURL, "events": ok, "description": strings.Repeat("d", 501)}, "invalid_description"},
		{"control characters", map[string]any{"url": whPublicURL, "events": ok, "description": "a\nb"}, "invalid_description"},
		{"events not a list", map[string]any{"url": whPublicURL, "events": "auth.user.registered"}, "invalid_json"},
		{"not json", "{", "invalid_json"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := whCreate(t, e, at, c.body)
			apitest.Expect(t, r, http.StatusBadRequest, c.code)
			if strings.Contains(string(r.Body), "u:p@") {
				t.Errorf("the error repeats user info: %s", r.Body)
			}
		})
	}

	// Admins only.
	_, user := e.NewUser(t)
	apitest.Expect(t, whCreate(t, e, user.AccessToken, map[string]any{"url": whPublicURL, "events": ok}), http.StatusForbidden, "forbidden")
	apitest.Expect(t, admDo(t, e, http.MethodGet, "/v1/admin/webhooks", nil, user.AccessToken), http.StatusForbidden, "forbidden")
	apitest.Expect(t, admDo(t, e, http.MethodGet, "/v1/admin/webhooks", nil, ""), http.StatusUnauthorized, "unauthorized")

	// A name this network cannot resolve is taken: each connection checks it again.
	r := whCreate(t, e, at, map[string]any{"url": "https://crm.example.invalid/hooks/auth", "events": ok})
	apitest.Expect(t, r, http.StatusCreated, "")
	var named whView
	r.JSON(t, &named)
	apitest.Expect(t, admDo(t, e, http.MethodDelete, "/v1/admin/webhooks/"+named.ID, nil, at), http.StatusNoContent, "")

	// The setting admits http and private addresses (tests, private deployments).
	priv, padm := admStart(t, map[string]string{"WEBHOOK_ALLOW_PRIVATE_NETWORKS": "true"})
	r = whCreate(t, priv, padm.AccessToken, map[string]any{"url": "http://127.0.0.1:9/hook", "events": ok})
	apitest.Expect(t, r, http.StatusCreated, "")
	var v whView
	r.JSON(t, &v)
	apitest.Expect(t, admDo(t, priv, http.MethodDelete, "/v1/admin/webhooks/"+v.ID, nil, padm.AccessToken), http.StatusNoContent, "")
}

// At most MaxEndpoints live endpoints, held under a burst of parallel creations.
func TestWebhookEndpointCap(t *testing.T) {
	t.Parallel()
	e, adm := admStart(t, map[string]string{"DATABASE_URL": apitest.NewDatabase(t)})
	at := adm.AccessToken
	body := map[string]any{"url": whPublicURL, "events": []string{"auth.user.registered"}}
	for range 95 {
		apitest.Expect(t, whCreate(t, e, at, body), http.StatusCreated, "")
	}
	var wg sync.WaitGroup
	codes := make([]int, 10)
	for i := range codes {
		wg.Go(func() {
			r, err := admSend(e.Client, e.URL, http.MethodPost, "/v1/admin/webhooks", body, at)
			if err == nil {
				codes[i] = r.Status
				if r.Status != http.StatusCreated && r.Code() != "too_many_webhooks" {
					t.Errorf("%d %s", r.Status, r.Body)
				}
			}
		})
	}
	wg.Wait()
	if n := whCount(codes, http.StatusCreated); n != 5 {
		t.Errorf("%d of 10 parallel creations past 95 succeeded, want 5 (codes %v)", n, codes)
	}
	var live int
	admScan(t, e, &live, "SELECT count(*) FROM webhook_endpoints WHERE deleted_at IS NULL")
	if live != 100 {
		t.Errorf("%d live endpoints", live)
	}
	apitest.Expect(t, whCreate(t, e, at, body), http.StatusConflict, "too_many_webhooks")
	// Deleting one makes room.
	var id string
	admScan(t, e, &id, "SELECT id FROM webhook_endpoints WHERE deleted_at IS NULL LIMIT 1")
	apitest.Expect(t, admDo(t, e, http.MethodDelete, "/v1/admin/webhooks/"+id, nil, at), http.StatusNoContent, "")
	apitest.Expect(t, whCreate(t, e, at, body), http.StatusCreated, "")
}

func whCount(codes []int, want int) int {
	n := 0
	for _, c := range codes {
		if c == want {
			n++
		}
	}
	return n
}

// oaWebhookFlows drives every webhook route of version c.ver through the description.
func oaWebhookFlows(c oaClient, adminEmail string) {
	t := c.t
	t.Helper()
	a := c.login(adminEmail)
	r := c.do(http.MethodPost, "/admin/webhooks", map[string]any{"url": whPublicURL, "events": []string{"auth.user.registered"}, "description": "oa"}, a.Access)
	oaExpect(t, r, http.StatusCreated, "")
	var v whView
	r.JSON(t, &v)
	oaExpect(t, c.do(http.MethodPost, "/admin/webhooks", map[string]any{"url": "http://example.com/", "events": []string{"auth.user.registered"}}, a.Access), http.StatusBadRequest, "invalid_url")
	oaExpect(t, c.do(http.MethodPost, "/admin/webhooks", map[string]any{"url": whPublicURL, "events": []string{"auth.nope.nope"}}, a.Access), http.StatusBadRequest, "unknown_event")
	oaExpect(t, c.do(http.MethodGet, "/admin/webhooks", nil, a.Access), http.StatusOK, "")
	if _, err := c.e.App.DB.NewRaw(`INSERT INTO webhook_deliveries (id, endpoint_id, event_id, event_type, body, status, attempts,
		last_status_code, finished_at) VALUES (?, ?, ?, 'auth.user.registered', '{}', 'succeeded', 1, 204, now())`,
		uuid.NewString(), v.ID, uuid.NewString()).Exec(context.Background()); err != nil {
		t.Fatal(err)
	}
	oaExpect(t, c.do(http.MethodGet, "/admin/webhooks/"+v.ID+"/deliveries", nil, a.Access), http.StatusOK, "")
	oaExpect(t, c.do(http.MethodPost, "/admin/webhooks/"+v.ID+"/rotate-secret", nil, a.Access), http.StatusOK, "")
	oaExpect(t, c.do(http.MethodPost, "/admin/webhooks/"+v.ID+"/enable", nil, a.Access), http.StatusOK, "")
	oaExpect(t, c.do(http.MethodDelete, "/admin/webhooks/"+v.ID, nil, a.Access), http.StatusNoContent, "")
	oaExpect(t, c.do(http.MethodDelete, "/admin/webhooks/"+v.ID, nil, a.Access), http.StatusNotFound, "not_found")
}
