package password

import (
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// DefaultBreachBaseURL is the Have I Been Pwned Pwned Passwords API.
const DefaultBreachBaseURL = "https://api.pwnedpasswords.com"

// ErrBreachCheckUnavailable is returned, wrapping the cause, by a fail-closed
// BreachChecker that could not get an answer.
var ErrBreachCheckUnavailable = errors.New("password: breach check unavailable")

const (
	breachTimeout   = 3 * time.Second
	breachMaxBody   = 1 << 20 // a padded answer is ~40 KiB; anything near this is not one
	breachPrefixLen = 5
	breachUserAgent = "talentforge-auth-password-check"
)

// BreachChecker asks the Pwned Passwords range API whether a password is in
// a known breach, with k-anonymity: only the first 5 hex characters of the
// password's SHA-1 leave the process, and the answer lists every known
// suffix under that prefix (padded with decoys of count 0), which is
// compared locally. It is safe for concurrent use.
type BreachChecker struct {
	baseURL    string
	client     *http.Client
	failClosed bool
}

// NewBreachChecker returns a checker of the range API at baseURL
// (DefaultBreachBaseURL when empty). A nil client means one with a 3 s
// timeout. failClosed decides what an unanswered check returns: an error
// wrapping ErrBreachCheckUnavailable (true), or "not breached" (false).
func NewBreachChecker(baseURL string, client *http.Client, failClosed bool) *BreachChecker {
	if baseURL == "" {
		baseURL = DefaultBreachBaseURL
	}
	if client == nil {
		client = &http.Client{Timeout: breachTimeout}
	}
	return &BreachChecker{baseURL: strings.TrimRight(baseURL, "/"), client: client, failClosed: failClosed}
}

// Breached reports whether password (NFKC-normalised, as Hash does) appears
// in a known breach. When the API cannot be reached, answers other than 200,
// times out or sends something that is not a range answer, it returns
// (false, nil) if the checker fails open, and (false, an error wrapping
// ErrBreachCheckUnavailable and the cause) if it fails closed. Errors never
// contain the password or its hash beyond the 5-character prefix.
func (b *BreachChecker) Breached(ctx context.Context, password string) (bool, error) {
	sum := sha1.Sum(normalize(password)) // the API is keyed by SHA-1; nothing here relies on its strength
	hash := strings.ToUpper(hex.EncodeToString(sum[:]))
	prefix, suffix := hash[:breachPrefixLen], hash[breachPrefixLen:]

	found, err := b.lookup(ctx, prefix, suffix)
	if err != nil {
		if b.failClosed {
			return false, fmt.Errorf("%w: %w", ErrBreachCheckUnavailable, err)
		}
		return false, nil
	}
	return found, nil
}

func (b *BreachChecker) lookup(ctx context.Context, prefix, suffix string) (bool, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, b.baseURL+"/range/"+prefix, nil)
	if err != nil {
		return false, err
	}
	// Padding hides the size of the answer, and so the prefix, from anyone
	// watching the (encrypted) traffic.
	req.Header.Set("Add-Padding", "true")
	req.Header.Set("User-Agent", breachUserAgent)
	req.Header.Set("Accept", "text/plain")

	resp, err := b.client.Do(req)
	if err != nil {
		return false, err
	}
	// Closing without draining drops the connection: cheaper than reading
	// whatever a misbehaving server still has to send.
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return false, fmt.Errorf("range API answered %s", resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, breachMaxBody+1))
	if err != nil {
		return false, fmt.Errorf("read range answer: %w", err)
	}
	truncated := len(body) > breachMaxBody
	if truncated {
		// Keep only whole lines of the first MiB.
		body = body[:breachMaxBody]
		if i := bytes.LastIndexByte(body, '\n'); i >= 0 {
			body = body[:i+1]
		} else {
			body = nil
		}
	}

	valid := 0
	for line := range bytes.Lines(body) {
		s, c, ok := strings.Cut(strings.TrimSpace(string(line)), ":")
		if !ok || len(s) != len(suffix) {
			continue
		}
		count, err := strconv.ParseUint(c, 10, 64)
		if err != nil {
			continue
		}
		valid++
		// Padding lines carry count 0 and must not count as a match.
		if count > 0 && strings.EqualFold(s, suffix) {
			return true, nil
		}
	}
	switch {
	case truncated:
		// A match may be in the part left unread.
		return false, fmt.Errorf("range answer over %d bytes", breachMaxBody)
	case valid == 0:
		// Even an unpadded answer lists hundreds of suffixes; none at all
		// means a proxy or captive portal answered, not the API.
		return false, errors.New("range answer has no SUFFIX:COUNT line")
	}
	return false, nil
}
