package ui

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
	"time"

	"go.uber.org/zap"
)

// OAuth is the oauth service as the pages use it (UI_OAUTH_URL): its provider list,
// cached for a minute, and the exchange of a sign-in's one-time code.
type OAuth struct {
	base   string
	client *http.Client
	log    *zap.Logger

	mu      sync.Mutex
	list    []Provider
	fetched time.Time
}

// Provider is a social sign-in the login page offers.
type Provider struct {
	Name        string `json:"name"`
	DisplayName string `json:"display_name"`
	// URL starts the sign-in at the oauth service (set per page: it carries return_to).
	URL string `json:"-"`
}

// NewOAuth returns the client of the oauth service at base; "" is nil (none offered).
func NewOAuth(base string, log *zap.Logger) *OAuth {
	if base == "" {
		return nil
	}
	if log == nil {
		log = zap.NewNop()
	}
	return &OAuth{base: base, client: &http.Client{Timeout: 3 * time.Second}, log: log}
}

// Providers returns the providers with their start URLs, whose redirect_to is the UI's
// callback on publicURL (which must be in the oauth service's OAUTH_REDIRECT_ALLOWLIST).
// The oauth service down: none, logged, and asked again after 10 s.
func (o *OAuth) Providers(ctx context.Context, publicURL, returnTo string) []Provider {
	if o == nil {
		return nil
	}
	list := o.cached(ctx)
	back := publicURL + "/ui/oauth/callback"
	if returnTo != "" {
		back += "?return_to=" + url.QueryEscape(returnTo)
	}
	out := make([]Provider, len(list))
	for i, p := range list {
		p.URL = o.base + "/v1/oauth/" + url.PathEscape(p.Name) + "/authorize?redirect_to=" + url.QueryEscape(back)
		out[i] = p
	}
	return out
}

func (o *OAuth) cached(ctx context.Context) []Provider {
	o.mu.Lock()
	defer o.mu.Unlock()
	if time.Since(o.fetched) < time.Minute {
		return o.list
	}
	var body struct {
		Providers []Provider `json:"providers"`
	}
	if err := o.call(ctx, http.MethodGet, "/v1/oauth/providers", nil, &body); err != nil {
		o.log.Warn("ui: oauth providers not listed", zap.Error(err))
		o.fetched = time.Now().Add(-50 * time.Second)
		return o.list
	}
	o.list, o.fetched = body.Providers, time.Now()
	return o.list
}

// Exchanged is the oauth service's answer to a one-time code: a token pair, or the
// second factor's challenge.
type Exchanged struct {
	AccessToken string   `json:"access_token"`
	MFARequired bool     `json:"mfa_required"`
	MFAToken    string   `json:"mfa_token"`
	MFAFactors  []string `json:"factors"`
}

var errExchange = errors.New("ui: the oauth service refused the code")

// Exchange trades a sign-in's one-time code for its session (POST /v1/oauth/token).
func (o *OAuth) Exchange(ctx context.Context, code string) (Exchanged, error) {
	var ans Exchanged
	if code == "" || len(code) > 512 {
		return ans, errExchange
	}
	in, _ := json.Marshal(map[string]string{"code": code})
	if err := o.call(ctx, http.MethodPost, "/v1/oauth/token", in, &ans); err != nil {
		return ans, err
	}
	if ans.AccessToken == "" && !ans.MFARequired {
		return ans, errExchange
	}
	return ans, nil
}

func (o *OAuth) call(ctx context.Context, method, path string, body []byte, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, o.base+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := o.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		return fmt.Errorf("%w: %s %s answered %d", errExchange, method, path, resp.StatusCode)
	}
	return json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(out)
}
