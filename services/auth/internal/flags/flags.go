// Package flags holds the auth service's feature flags: the experimental flows an
// operator may switch off (passkeys, otp_login, phone) without a deploy.
//
// A flag's value is, in order of precedence: the runtime value an admin set through the
// admin API (one Redis hash, Key, shared by every replica), its start-up value from
// FEATURE_FLAGS, its default (every flag is on by default: the API contract has these
// flows working). Every replica keeps the values in memory and re-reads the hash every
// RefreshInterval, so a change reaches all of them within about a second (the contract
// says 5 s); the replica that makes a change sees it at once. Evaluation is an in-memory
// read through the OpenFeature Go SDK (github.com/open-feature/go-sdk), with a provider
// of ours over those values and an OpenFeature API instance per Flags, so several apps
// in one process (tests) never share a provider. While Redis cannot be read, the last
// values read stay in force.
package flags

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// The known flags.
const (
	Passkeys = "passkeys"
	OTPLogin = "otp_login"
	Phone    = "phone"
)

// definition is a known flag: its name, its one-line description and its default.
type definition struct {
	name        string
	description string
	def         bool
}

// known are the flags the service knows, sorted by name.
var known = []definition{
	{name: OTPLogin, description: "Sign-in by a one-time code or link sent by email or SMS (/auth/otp, /auth/otp/verify).", def: true},
	{name: Passkeys, description: "Passkeys (WebAuthn): registration and management, passkey sign-in, and a passkey as second factor.", def: true},
	{name: Phone, description: "Phone numbers (/users/me/phone) and SMS sign-in codes.", def: true},
}

// Names are the known flags' names, sorted.
func Names() []string {
	out := make([]string, len(known))
	for i, d := range known {
		out[i] = d.name
	}
	return out
}

func lookup(name string) (definition, bool) {
	i := slices.IndexFunc(known, func(d definition) bool { return d.name == name })
	if i < 0 {
		return definition{}, false
	}
	return known[i], true
}

// Flag is one flag as it stands.
type Flag struct {
	Name        string
	Enabled     bool
	Description string
}

// ErrUnknownFlag: no flag has that name (404 unknown_flag).
var ErrUnknownFlag = errors.New("unknown feature flag")

// ErrDisabled is what every DisabledError is (errors.Is).
var ErrDisabled = errors.New("feature disabled")

// DisabledError: a route of a flow whose flag is off was called (404 feature_disabled).
type DisabledError struct{ Flag string }

func (e *DisabledError) Error() string { return "feature flag " + e.Flag + " is off" }

// Is makes a DisabledError match ErrDisabled.
func (e *DisabledError) Is(target error) bool { return target == ErrDisabled }

// Defaults are every known flag's default value.
func Defaults() map[string]bool {
	out := make(map[string]bool, len(known))
	for _, d := range known {
		out[d.name] = d.def
	}
	return out
}

// Parse reads FEATURE_FLAGS, "name=on|off[,...]" (on, off, true, false, any case;
// spaces around names and values and empty entries are ignored), into the start-up
// values: Defaults overridden by what raw names. An unknown name, a value that is none
// of those, an entry without "=" or a name given twice is an error naming
// FEATURE_FLAGS, so the service refuses to start.
func Parse(raw string) (map[string]bool, error) {
	out := Defaults()
	seen := map[string]bool{}
	for entry := range strings.SplitSeq(raw, ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		name, val, ok := strings.Cut(entry, "=")
		name = strings.TrimSpace(name)
		if !ok {
			return nil, fmt.Errorf("FEATURE_FLAGS: %q is not name=on|off", entry)
		}
		if _, ok := lookup(name); !ok {
			return nil, fmt.Errorf("FEATURE_FLAGS: unknown flag %q (known: %s)", name, strings.Join(Names(), ", "))
		}
		if seen[name] {
			return nil, fmt.Errorf("FEATURE_FLAGS: flag %q is given twice", name)
		}
		seen[name] = true
		on, ok := parseValue(val)
		if !ok {
			return nil, fmt.Errorf("FEATURE_FLAGS: flag %q: %q is not on, off, true or false", name, strings.TrimSpace(val))
		}
		out[name] = on
	}
	return out, nil
}

// parseValue reads on, off, true or false, in any case.
func parseValue(s string) (on, ok bool) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "on", "true":
		return true, true
	case "off", "false":
		return false, true
	}
	return false, false
}

// storedValue is how a value is kept in the Redis hash.
func storedValue(on bool) string {
	if on {
		return "on"
	}
	return "off"
}
