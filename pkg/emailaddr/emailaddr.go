// Package emailaddr normalises and validates email addresses once, at the edge, so the
// database's unique index on the normalised form is the only identity of an address.
package emailaddr

import (
	"errors"
	"net/mail"
	"strings"
	"unicode"

	"golang.org/x/text/unicode/norm"
)

// MaxLength is the longest address SMTP can carry (RFC 5321 path limit less the brackets).
const MaxLength = 254

// ErrInvalid is returned for anything that is not a plain addr-spec.
var ErrInvalid = errors.New("invalid email address")

// Normalize trims, applies Unicode NFKC (so composed and decomposed, and fullwidth and
// ASCII forms are one address; NFKC includes NFC's composition) and lower-cases. It
// refuses display names, comments, control characters and over-long addresses.
func Normalize(raw string) (string, error) {
	if len(raw) > 4*MaxLength {
		return "", ErrInvalid
	}
	s := Fold(raw)
	if s == "" || len(s) > MaxLength {
		return "", ErrInvalid
	}
	for _, r := range s {
		if unicode.IsControl(r) || unicode.IsSpace(r) || r == unicode.ReplacementChar {
			return "", ErrInvalid
		}
	}
	at := strings.LastIndexByte(s, '@')
	if at < 1 || at > 64 || at == len(s)-1 || strings.Count(s, "@") != 1 {
		return "", ErrInvalid
	}
	domain := s[at+1:]
	if !strings.Contains(domain, ".") || strings.HasPrefix(domain, ".") || strings.HasSuffix(domain, ".") ||
		strings.Contains(domain, "..") {
		return "", ErrInvalid
	}
	// net/mail accepts "Name <a@b>" and comments; require that it reads back exactly.
	addr, err := mail.ParseAddress(s)
	if err != nil || addr.Name != "" || addr.Address != s {
		return "", ErrInvalid
	}
	return s, nil
}

// Fold is the canonical form without the validation: trimmed, NFKC, lower case. Use it
// for partial addresses such as search prefixes.
//
// Lower-casing can undo NFKC (U+0130 İ becomes i + U+0307, which then composes with a
// following accent), so one pass is not canonical: folding the result again would give
// another string, and the same address could be stored twice or fail to match itself.
// Fold therefore repeats NFKC and lower case until the string stops changing (two rounds
// for the worst case known; the bound only guards against a Unicode surprise).
func Fold(raw string) string {
	s := norm.NFKC.String(strings.TrimSpace(raw))
	for range 8 {
		next := norm.NFKC.String(strings.ToLower(s))
		if next == s {
			break
		}
		s = next
	}
	return s
}

// LocalPart returns what stands before the @ of a normalised address.
func LocalPart(addr string) string {
	if at := strings.LastIndexByte(addr, '@'); at >= 0 {
		return addr[:at]
	}
	return addr
}
