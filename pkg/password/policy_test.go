package password

import (
	"errors"
	"runtime"
	"strings"
	"testing"
)

func TestPolicyCheck(t *testing.T) {
	const email = "Jane.Doe@Example.com"
	tests := []struct {
		name     string
		policy   Policy
		password string
		email    string
		reason   string // "" means accepted
	}{
		{"7 chars", Policy{}, "xq7#kpz", "", ReasonTooShort},
		{"8 chars", Policy{}, "xq7#kpzw", "", ""},
		{"trailing space counts, never trimmed", Policy{}, "xq7#kpz ", "", ""},
		{"7 runes of 2 bytes", Policy{}, strings.Repeat("ñ", 7), "", ReasonTooShort},
		{"8 runes of 2 bytes", Policy{}, strings.Repeat("ñ", 8), "", ""},
		{"length counted after NFKC", Policy{}, strings.Repeat("n\u0303", 7), "", ReasonTooShort},
		{"8 emoji", Policy{}, strings.Repeat("😀", 8), "", ""},
		{"configured minimum", Policy{MinLength: 12, MaxLength: 64}, "xq7#kpzw-abc", "", ""},
		{"below configured minimum", Policy{MinLength: 12, MaxLength: 64}, "xq7#kpzw-ab", "", ReasonTooShort},
		{"at max", Policy{MinLength: 8, MaxLength: 64}, strings.Repeat("xq7#", 16), "", ""},
		{"over max", Policy{MinLength: 8, MaxLength: 64}, strings.Repeat("xq7#", 16) + "z", "", ReasonTooLong},
		{"over max in emoji", Policy{MinLength: 8, MaxLength: 64}, strings.Repeat("😀", 65), "", ReasonTooLong},
		{"default max 256", Policy{}, strings.Repeat("q", 256), "", ""},
		{"over default max", Policy{}, strings.Repeat("q", 257), "", ReasonTooLong},
		{"1 MB", Policy{}, strings.Repeat("q", 1<<20), "", ReasonTooLong},
		{"NUL byte", Policy{}, "xq7#\x00kpzw", "", ReasonInvalidUTF8},
		{"invalid UTF-8", Policy{}, "xq7#\xff\xfekpzw", "", ReasonInvalidUTF8},
		{"common", Policy{}, "password123", "", ReasonCommon},
		{"common upper case", Policy{}, "PASSWORD123", "", ReasonCommon},
		{"common mixed case", Policy{}, "ILoveYou12", "", ReasonCommon},
		{"common qwerty123", Policy{}, "Qwerty123", "", ReasonCommon},
		{"common leet", Policy{}, "P@ssw0rd", "", ReasonCommon},
		{"common in fullwidth", Policy{}, "ｐａｓｓｗｏｒｄ１２３", "", ReasonCommon},
		{"service name", Policy{}, "MyTalentForge2024", "", ReasonCommon},
		{"equals email", Policy{}, "jane.doe@example.com", email, ReasonContainsEmail},
		{"contains local part", Policy{}, "xx-JANE.DOE-2024", email, ReasonContainsEmail},
		{"local part under 4 chars ignored", Policy{}, "bobcat-saddle-42", "bob@example.com", ""},
		{"short local part, whole email refused", Policy{}, "bob@example.com", "bob@example.com", ReasonContainsEmail},
		{"local part of 4 chars", Policy{}, "xq7-anna-kpzw", "anna@example.com", ReasonContainsEmail},
		{"passphrase", Policy{}, "correct horse battery staple", email, ""},
		{"no email given", Policy{}, "correct horse battery staple", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.policy.Check(tt.password, tt.email)
			if tt.reason == "" {
				if err != nil {
					t.Fatalf("Check refused: %v", err)
				}
				return
			}
			var v *Violation
			if !errors.As(err, &v) {
				t.Fatalf("Check = %v, want *Violation %q", err, tt.reason)
			}
			if v.Reason != tt.reason || v.Message == "" {
				t.Fatalf("Check = %+v, want reason %q", v, tt.reason)
			}
		})
	}
}

// A huge password is refused on its byte length, before normalisation or
// list lookups would allocate in proportion to it.
func TestPolicyHugePasswordIsCheap(t *testing.T) {
	huge := strings.Repeat("e\u0301", 1<<19) // 1.5 MB that NFKC would rewrite
	p := DefaultPolicy()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	err := p.Check(huge, "")
	runtime.ReadMemStats(&after)
	var v *Violation
	if !errors.As(err, &v) || v.Reason != ReasonTooLong {
		t.Fatalf("Check = %v, want too_long", err)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 256<<10 {
		t.Fatalf("Check allocated %d bytes for a refused huge password", alloc)
	}
}

func TestCommonListLoaded(t *testing.T) {
	set := commonPasswords()
	if len(set) < 15000 {
		t.Fatalf("common list has %d entries, want the full embedded list", len(set))
	}
	for pw := range set {
		if strings.HasPrefix(pw, "#") || pw == "" {
			t.Fatalf("comment or blank line loaded: %q", pw)
		}
	}
}
