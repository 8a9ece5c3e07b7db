// Package redact strips secrets from event payloads before they leave the worker's
// hands: the audit log stores what Payload returns, and so does every webhook body.
// There is one rule, here, so the two can never disagree about what a secret is.
package redact

import (
	"encoding/json"
	"strings"
)

// Payload returns raw without secrets: every field, at any depth, whose name contains
// token, code, secret, hash, sealed or password, or is otp or totp. An empty or null
// payload is {}; raw must otherwise be JSON.
func Payload(raw json.RawMessage) (json.RawMessage, error) { return payload(raw, Secret) }

// External is Payload for what leaves the platform (webhook bodies): digests go too
// (a field whose name contains sha256, e.g. a failed login's email_sha256, which the
// audit log keeps to link attempts on one address).
func External(raw json.RawMessage) (json.RawMessage, error) {
	return payload(raw, func(k string) bool { return Secret(k) || strings.Contains(strings.ToLower(k), "sha256") })
}

func payload(raw json.RawMessage, secret func(string) bool) (json.RawMessage, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return json.RawMessage("{}"), nil
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, err
	}
	out, err := json.Marshal(strip(v, secret))
	if err != nil {
		return nil, err
	}
	return out, nil
}

func strip(v any, secret func(string) bool) any {
	switch t := v.(type) {
	case map[string]any:
		for k, val := range t {
			if secret(k) {
				delete(t, k)
				continue
			}
			t[k] = strip(val, secret)
		}
	case []any:
		for i := range t {
			t[i] = strip(t[i], secret)
		}
	}
	return v
}

// secretParts are what a secret field's name contains.
var secretParts = []string{"token", "code", "secret", "hash", "sealed", "password"}

// Secret reports whether a field named key holds a secret (case-insensitive).
func Secret(key string) bool {
	k := strings.ToLower(key)
	switch k {
	case "otp", "totp":
		return true
	}
	for _, part := range secretParts {
		if strings.Contains(k, part) {
			return true
		}
	}
	return false
}
