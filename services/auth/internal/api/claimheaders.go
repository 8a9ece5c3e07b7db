package api

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"unicode"

	"github.com/talentforge/auth/pkg/token"
)

// setClaimHeaders sets, for each VERIFY_CLAIM_HEADERS pair, its header to the access
// token's claim at its path (ext, the hook's claims, included): a string as it is, a
// number or a boolean formatted, an array of scalars joined with ",", anything else as
// compact JSON, with control characters (CR and LF first) removed. A claim the token
// lacks (or null) sets the header empty, so the gateway replaces any the client sent.
func (h *Handler) setClaimHeaders(hd http.Header, claims *token.AccessClaims) {
	if len(h.cfg.ClaimHeaders) == 0 {
		return
	}
	var top map[string]any // the claims as JSON, decoded once and only when a path needs it
	for _, ch := range h.cfg.ClaimHeaders {
		var v any
		switch {
		case claims == nil:
		case ch.Claim[0] == "ext":
			v = claimAt(claims.Ext, ch.Claim[1:])
		default:
			if top == nil {
				top = claimsJSON(claims)
			}
			v = claimAt(top, ch.Claim)
		}
		hd[ch.Header] = []string{claimHeaderValue(v)} // the key is canonical (config)
	}
}

// claimsJSON is claims as a verifier of the raw token would read them.
func claimsJSON(claims *token.AccessClaims) map[string]any {
	b, err := json.Marshal(claims)
	if err != nil {
		return map[string]any{}
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var m map[string]any
	if dec.Decode(&m) != nil || m == nil {
		return map[string]any{}
	}
	return m
}

// claimAt is the value at path under root; nil when there is none.
func claimAt(root map[string]any, path []string) any {
	if root == nil {
		return nil
	}
	var cur any = root
	for _, seg := range path {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		if cur, ok = m[seg]; !ok {
			return nil
		}
	}
	return cur
}

// claimHeaderValue formats a claim for a header (see setClaimHeaders).
func claimHeaderValue(v any) string {
	if s, ok := scalar(v); ok {
		return headerSafe(s)
	}
	if a, ok := v.([]any); ok {
		parts := make([]string, 0, len(a))
		for _, e := range a {
			s, ok := scalar(e)
			if !ok || e == nil {
				parts = nil
				break
			}
			parts = append(parts, s)
		}
		if parts != nil || len(a) == 0 {
			return headerSafe(strings.Join(parts, ","))
		}
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if enc.Encode(v) != nil {
		return ""
	}
	return headerSafe(strings.TrimSuffix(b.String(), "\n"))
}

// scalar formats a JSON scalar (nil is "").
func scalar(v any) (string, bool) {
	switch x := v.(type) {
	case nil:
		return "", true
	case string:
		return x, true
	case json.Number:
		return x.String(), true
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64), true
	case bool:
		return strconv.FormatBool(x), true
	}
	return "", false
}

// headerSafe drops every control character (CR, LF, NUL, TAB, DEL and the C1 range):
// a claim can never split or smuggle a header.
func headerSafe(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return -1
		}
		return r
	}, s)
}
