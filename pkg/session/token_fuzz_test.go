package session

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/uuid"
)

// FuzzParseRefreshToken checks that ParseRefreshToken never panics, that it
// only ever yields canonical UUIDs, the same ones each time, and that a token
// it accepts has exactly one spelling. Seeds are in
// testdata/fuzz/FuzzParseRefreshToken.
func FuzzParseRefreshToken(f *testing.F) {
	good := newToken(uuid.New(), uuid.New()).String()
	f.Add(good)
	f.Add(newToken(uuid.Nil, uuid.Max).String())
	f.Add(good[:len(good)-1])                 // one character short
	f.Add(good + "A")                         // one character long
	f.Add(good + "=")                         // padded
	f.Add("RT_" + good[len(tokenPrefix):])    // prefix in upper case
	f.Add(strings.ReplaceAll(good, "-", "+")) // standard, not URL, alphabet
	f.Add(good[:len(good)-1] + "B")           // non-zero trailing bits
	f.Add("")
	f.Add(tokenPrefix)
	f.Add(tokenPrefix + strings.Repeat("A", tokenLen-len(tokenPrefix)))

	f.Fuzz(func(t *testing.T, s string) {
		uid, sid, err := ParseRefreshToken(s)
		if err != nil {
			if !errors.Is(err, ErrInvalidToken) || uid != "" || sid != "" {
				t.Fatalf("ParseRefreshToken(%q) = %q, %q, %v; want empty ids and ErrInvalidToken", s, uid, sid, err)
			}
			return
		}
		for _, id := range []string{uid, sid} {
			u, err := uuid.Parse(id)
			if err != nil || u.String() != id {
				t.Fatalf("ParseRefreshToken(%q) gave %q: not a canonical UUID (%v)", s, id, err)
			}
		}
		uid2, sid2, err := ParseRefreshToken(s)
		if err != nil || uid2 != uid || sid2 != sid {
			t.Fatalf("re-parsing %q gave %q, %q, %v; first %q, %q", s, uid2, sid2, err, uid, sid)
		}
		// Strict decoding: the token re-encodes to the very same string, so
		// no two spellings reach the same session.
		tok, err := parseToken(s)
		if err != nil {
			t.Fatalf("parseToken(%q) = %v after ParseRefreshToken accepted it", s, err)
		}
		if got := tok.String(); got != s {
			t.Fatalf("token %q re-encodes as %q", s, got)
		}
		if tok.userID.String() != uid || tok.sessionID.String() != sid || len(tok.secret) != secretLen {
			t.Fatalf("parseToken(%q) = %v, %v, %d-byte secret; ParseRefreshToken said %q, %q",
				s, tok.userID, tok.sessionID, len(tok.secret), uid, sid)
		}
	})
}
