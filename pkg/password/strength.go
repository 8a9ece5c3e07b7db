package password

import (
	"strings"
	"unicode/utf8"

	"github.com/trustelem/zxcvbn"
	"golang.org/x/text/unicode/norm"
)

// strengthMaxRunes bounds the input of Strength. zxcvbn's matching is
// superlinear in the length (every substring is looked up in every
// dictionary), so a long password is scored on its prefix. That can only
// underestimate: the guesses needed for a prefix are never more than for the
// whole password.
const strengthMaxRunes = 100

// Strength estimates offline how hard password is to guess and returns the
// zxcvbn score: 0 (too guessable) to 4 (very unguessable). Words in
// userInputs (the email, the name, the service name) count as known to the
// attacker. The password is NFKC-normalised first, as Hash and Policy do,
// and at most its first 100 characters are scored. Invalid UTF-8 scores 0.
func Strength(password string, userInputs ...string) int {
	if !utf8.ValidString(password) {
		return 0
	}
	// Cut before normalising, so a huge input costs nothing, and again after,
	// as NFKC can expand a character into several.
	pw := truncateRunes(norm.NFKC.String(truncateRunes(password, strengthMaxRunes)), strengthMaxRunes)
	if pw == "" {
		return 0
	}
	inputs := make([]string, 0, len(userInputs))
	for _, in := range userInputs {
		if in = strings.TrimSpace(norm.NFKC.String(in)); in != "" && utf8.ValidString(in) {
			inputs = append(inputs, in)
		}
	}
	return zxcvbn.PasswordStrength(pw, inputs).Score
}

// strengthInputs are the user inputs Policy passes to Strength for an
// account: the email, its local part and the service name.
func strengthInputs(email string) []string {
	email = strings.ToLower(norm.NFKC.String(strings.TrimSpace(email)))
	if email == "" {
		return []string{serviceName}
	}
	inputs := []string{email}
	if at := strings.LastIndexByte(email, '@'); at > 0 {
		inputs = append(inputs, email[:at])
	}
	return append(inputs, serviceName)
}

// truncateRunes returns the first n runes of s.
func truncateRunes(s string, n int) string {
	i := 0
	for pos := range s {
		if i == n {
			return s[:pos]
		}
		i++
	}
	return s
}
