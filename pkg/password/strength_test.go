package password

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
)

func TestStrength(t *testing.T) {
	tests := []struct {
		password string
		min, max int // accepted score range, inclusive
	}{
		// Passphrases of several uncommon words.
		{"correct horse battery staple", 3, 4},
		{"purple-monkey-dishwasher-42", 3, 4},
		{"bobcat-saddle-42", 3, 4},
		// Repeats, sequences, keyboard walks, dictionary words.
		{"aaaaaaaa", 0, 1},
		{"abcdefgh", 0, 1},
		{"qwertyui", 0, 1},
		{"11111111", 0, 1},
		{"12345678", 0, 1},
		{"password", 0, 1},
		{"P@ssw0rd", 0, 1}, // l33t of a dictionary word
		{"ｐａｓｓｗｏｒｄ", 0, 1}, // fullwidth, scored after NFKC
		// Degenerate input.
		{"", 0, 0},
		{"xq7#\xff\xfekpzw", 0, 0}, // invalid UTF-8
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%q", tt.password), func(t *testing.T) {
			got := Strength(tt.password)
			if got < tt.min || got > tt.max {
				t.Fatalf("Strength(%q) = %d, want %d..%d", tt.password, got, tt.min, tt.max)
			}
		})
	}
}

func TestStrengthUserInputs(t *testing.T) {
	tests := []struct {
		password string
		inputs   []string
	}{
		// l33t and reversed spellings of the inputs, which the plain
		// substring rules of Policy do not see.
		{"z0rbl4xqu1nt", strengthInputs("Zorblaxquint@example.com")},
		{"tniuqxalbroz", strengthInputs("zorblaxquint@example.com")},
		{"7alentf0rge!", strengthInputs("")},
	}
	for _, tt := range tests {
		t.Run(tt.password, func(t *testing.T) {
			without, with := Strength(tt.password), Strength(tt.password, tt.inputs...)
			if without < 3 || with >= 2 {
				t.Fatalf("Strength(%q) = %d without inputs, %d with %q; want >= 3, then < 2",
					tt.password, without, with, tt.inputs)
			}
		})
	}
	// Empty and blank inputs are ignored rather than matched.
	if a, b := Strength("correct horse battery staple"), Strength("correct horse battery staple", "", " ", "\xff"); a != b {
		t.Fatalf("blank inputs changed the score: %d, then %d", a, b)
	}
}

func TestStrengthInputs(t *testing.T) {
	tests := []struct {
		email string
		want  []string
	}{
		{"", []string{"talentforge"}},
		{" Jane.Doe@Example.COM ", []string{"jane.doe@example.com", "jane.doe", "talentforge"}},
		{"ｊａｎｅ@example.com", []string{"jane@example.com", "jane", "talentforge"}},
		{"no-at-sign", []string{"no-at-sign", "talentforge"}},
	}
	for _, tt := range tests {
		if got := strengthInputs(tt.email); strings.Join(got, "|") != strings.Join(tt.want, "|") {
			t.Errorf("strengthInputs(%q) = %q, want %q", tt.email, got, tt.want)
		}
	}
}

func TestStrengthScoresOnlyPrefix(t *testing.T) {
	strong := "correct horse battery staple, purple monkey dishwasher; 42 zebras!"
	weak := strings.Repeat("a", strengthMaxRunes)

	// Whatever follows the first 100 runes is ignored: a weak prefix stays
	// weak (an underestimate), and a 1 MiB tail costs nothing.
	if got := Strength(weak + strong); got > 1 {
		t.Fatalf("weak prefix + strong tail = %d, want <= 1", got)
	}
	prefix := truncateRunes(strings.Repeat("é🔑x"+strong, 3), strengthMaxRunes)
	if a, b := Strength(prefix), Strength(prefix+strings.Repeat("z", 1<<20)); a != b {
		t.Fatalf("score of the prefix %d != score with a 1 MiB tail %d", a, b)
	}
	if got := Strength(strong); got < 3 {
		t.Fatalf("Strength(%q) = %d, want >= 3", strong, got)
	}
}

func TestTruncateRunes(t *testing.T) {
	tests := []struct {
		s    string
		n    int
		want string
	}{
		{"", 3, ""},
		{"abc", 3, "abc"},
		{"abcd", 3, "abc"},
		{"é🔑xé", 3, "é🔑x"},
		{"é🔑", 3, "é🔑"},
		{"abc", 0, ""},
	}
	for _, tt := range tests {
		if got := truncateRunes(tt.s, tt.n); got != tt.want {
			t.Errorf("truncateRunes(%q, %d) = %q, want %q", tt.s, tt.n, got, tt.want)
		}
	}
}

// Strength is called from concurrent requests; zxcvbn keeps shared tables.
func TestStrengthConcurrent(t *testing.T) {
	want := Strength("correct horse battery staple")
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 5 {
				if got := Strength("correct horse battery staple", "jane@example.com"); got != want {
					t.Errorf("concurrent Strength = %d, want %d", got, want)
				}
			}
		})
	}
	wg.Wait()
}

func TestPolicyMinStrength(t *testing.T) {
	tests := []struct {
		name     string
		policy   Policy
		password string
		email    string
		reason   string // "" means accepted
	}{
		{"off by default", Policy{}, "xq7#kpzw", "", ""},
		{"score 2 under 3", Policy{MinStrength: 3}, "xq7#kpzw", "", ReasonWeak},
		{"score 2 at 2", Policy{MinStrength: 2}, "xq7#kpzw", "", ""},
		{"passphrase", Policy{MinStrength: 3}, "correct horse battery staple", "jane.doe@example.com", ""},
		{"max score", Policy{MinStrength: 4}, "correct horse battery staple", "", ""},
		{"earlier rules first: length", Policy{MinStrength: 4}, "aaaa", "", ReasonTooShort},
		{"earlier rules first: common", Policy{MinStrength: 4}, "password123", "", ReasonCommon},
		{"earlier rules first: email", Policy{MinStrength: 4}, "xx-jane.doe-2024", "jane.doe@example.com", ReasonContainsEmail},
		{"weak pattern", Policy{MinStrength: 2}, "abcdefghijkl", "", ReasonWeak},
		{"l33t email local part", Policy{MinStrength: 3}, "Z0rbl4xQu1nt!", "zorblaxquint@example.com", ReasonWeak},
		{"same, other account", Policy{MinStrength: 3}, "Z0rbl4xQu1nt!", "jane@example.com", ""},
		{"l33t service name", Policy{MinStrength: 3}, "7alentf0rge!", "", ReasonWeak},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.policy.Check(tt.password, tt.email)
			if tt.reason == "" {
				if err != nil {
					t.Fatalf("Check refused: %v (score %d)", err, Strength(tt.password, strengthInputs(tt.email)...))
				}
				return
			}
			var v *Violation
			if !errors.As(err, &v) || v.Reason != tt.reason {
				t.Fatalf("Check = %v, want reason %s", err, tt.reason)
			}
			if v.Reason == ReasonWeak && v.Message != "is too easy to guess; add more words or characters" {
				t.Fatalf("message = %q", v.Message)
			}
		})
	}
}
