package emailaddr

import (
	"errors"
	"strings"
	"testing"
)

func TestNormalize(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"alice@example.com", "alice@example.com"},
		{"  Alice@Example.COM ", "alice@example.com"},
		{"e\u0301lise@example.com", "\u00e9lise@example.com"}, // NFD → NFC
		{"\uff41lice@example.com", "alice@example.com"},       // fullwidth a
		{"first.last+tag@sub.example.org", "first.last+tag@sub.example.org"},
		// Lower-casing U+0130 undoes NFKC: one fold gave a form a second fold changed.
		{"a\u0130\u0301@b.c", "a\u00ed@b.c"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := Normalize(tt.in)
			if err != nil {
				t.Fatalf("Normalize(%q): %v", tt.in, err)
			}
			if got != tt.want {
				t.Fatalf("Normalize(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestNormalizeRefuses(t *testing.T) {
	bad := []string{
		"", " ", "alice", "@example.com", "alice@", "alice@example", "a@b@example.com",
		"Alice <alice@example.com>", "alice@example.com (comment)", "al ice@example.com",
		"alice@example..com", "alice@.example.com", "alice\x00@example.com", "alice\n@example.com",
		"' OR 1=1--@example.com", strings.Repeat("a", 65) + "@example.com",
		strings.Repeat("a", 60) + "@" + strings.Repeat("b", 200) + ".com",
		strings.Repeat("x", 1<<20),
	}
	for _, in := range bad {
		if got, err := Normalize(in); !errors.Is(err, ErrInvalid) {
			t.Errorf("Normalize(%.40q) = %q, %v; want ErrInvalid", in, got, err)
		}
	}
}

func TestLocalPart(t *testing.T) {
	if got := LocalPart("alice@example.com"); got != "alice" {
		t.Fatalf("LocalPart = %q", got)
	}
}

func FuzzNormalize(f *testing.F) {
	// The last ones: letters whose lower case undoes NFKC (a single fold was not canonical).
	for _, s := range []string{"alice@example.com", " A@B.C ", "\uff41@b.c", "x",
		"a\u0130\u0301@b.c", "a\u03aa\u0301@b.c", "a\u1fbc\u0301@b.c", "a\u03d4\u0301@b.c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out, err := Normalize(in)
		if err != nil {
			return
		}
		again, err := Normalize(out)
		if err != nil || again != out {
			t.Fatalf("not idempotent: %q → %q → %q, %v", in, out, again, err)
		}
		if len(out) > MaxLength {
			t.Fatalf("too long: %d", len(out))
		}
	})
}
