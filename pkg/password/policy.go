package password

import (
	_ "embed"
	"fmt"
	"strings"
	"sync"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// Reason codes of a Violation; stable, API clients match on them.
const (
	ReasonTooShort      = "too_short"
	ReasonTooLong       = "too_long"
	ReasonCommon        = "common"
	ReasonContainsEmail = "contains_email"
	ReasonInvalidUTF8   = "invalid_utf8"
	ReasonWeak          = "too_weak"
)

// serviceName is refused inside passwords: it is the first word an attacker
// targeting this service tries (NIST 800-63B "context-specific words").
const serviceName = "talentforge"

// Policy is the rule set for new passwords. Lengths count characters (runes)
// after NFKC; a zero field takes its DefaultPolicy value.
type Policy struct {
	MinLength, MaxLength int
	// MinStrength is the lowest Strength score (0..4) accepted; 0 turns
	// the estimate off.
	MinStrength int
}

// DefaultPolicy returns the NIST 800-63B minimum of 8 and a maximum of 256.
func DefaultPolicy() Policy { return Policy{MinLength: 8, MaxLength: 256} }

// Violation explains why a password was refused.
type Violation struct {
	Reason  string // one of the Reason constants
	Message string // human readable, safe to show to the user
}

func (v *Violation) Error() string { return "password: " + v.Message }

// Check returns a *Violation if password is not acceptable for the account
// with the given email, or nil.
func (p Policy) Check(password, email string) error {
	d := DefaultPolicy()
	if p.MinLength <= 0 {
		p.MinLength = d.MinLength
	}
	if p.MaxLength <= 0 {
		p.MaxLength = d.MaxLength
	}

	if p.TooLong(password) {
		return tooLong(p.MaxLength)
	}
	if !utf8.ValidString(password) || strings.IndexByte(password, 0) >= 0 {
		return &Violation{ReasonInvalidUTF8, "must be valid text without NUL characters"}
	}
	n := norm.NFKC.String(password)
	switch runes := utf8.RuneCountInString(n); {
	case runes < p.MinLength:
		return &Violation{ReasonTooShort, fmt.Sprintf("must be at least %d characters", p.MinLength)}
	case runes > p.MaxLength:
		return tooLong(p.MaxLength)
	}

	lower := strings.ToLower(n)
	if _, found := commonPasswords()[lower]; found {
		return &Violation{ReasonCommon, "is too common, choose another"}
	}
	if strings.Contains(lower, serviceName) {
		return &Violation{ReasonCommon, "must not contain the service name"}
	}
	if email = strings.ToLower(norm.NFKC.String(strings.TrimSpace(email))); email != "" {
		local := email
		if at := strings.LastIndexByte(email, '@'); at >= 0 {
			local = email[:at]
		}
		// Short local parts ("bob") would refuse too many honest passwords.
		if lower == email || (utf8.RuneCountInString(local) >= 4 && strings.Contains(lower, local)) {
			return &Violation{ReasonContainsEmail, "must not contain your email address"}
		}
	}
	// email is NFKC and lower case here; strengthInputs adds its local part
	// and the service name.
	if p.MinStrength > 0 && Strength(password, strengthInputs(email)...) < p.MinStrength {
		return &Violation{ReasonWeak, "is too easy to guess; add more words or characters"}
	}
	return nil
}

// TooLong reports whether password is over MaxLength characters as the policy
// counts them (after NFKC). Login uses it to refuse cheaply what no account can
// have, without hashing.
func (p Policy) TooLong(password string) bool {
	maxLen := p.MaxLength
	if maxLen <= 0 {
		maxLen = DefaultPolicy().MaxLength
	}
	// Cheap byte bound before any O(n) work, so huge inputs cost nothing.
	// Composition can fold several runes into one (decomposed Hangul: 9
	// bytes to 1 rune), hence the generous factor.
	if len(password) > 4*utf8.UTFMax*maxLen {
		return true
	}
	return utf8.RuneCountInString(norm.NFKC.String(password)) > maxLen
}

func tooLong(n int) *Violation {
	return &Violation{ReasonTooLong, fmt.Sprintf("must be at most %d characters", n)}
}

//go:embed common-passwords.txt
var commonPasswordsFile string

// commonPasswords is the embedded list as a set, built on first use only, as
// most processes (and most tests) never check a new password.
var commonPasswords = sync.OnceValue(func() map[string]struct{} {
	set := make(map[string]struct{}, 16384)
	for line := range strings.Lines(commonPasswordsFile) {
		line = strings.TrimRight(line, "\r\n")
		if line == "" || line[0] == '#' {
			continue
		}
		// The file is already normalised; redoing it keeps a hand edit from
		// adding an entry that can never match.
		set[strings.ToLower(norm.NFKC.String(line))] = struct{}{}
	}
	return set
})
