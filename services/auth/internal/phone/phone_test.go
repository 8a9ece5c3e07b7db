package phone

import (
	"errors"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	us, err := NewPolicy("US", nil)
	if err != nil {
		t.Fatal(err)
	}
	none, _ := NewPolicy("", nil)
	euOnly, _ := NewPolicy("", []string{"DE", "FR"})
	cases := []struct {
		name string
		p    Policy
		in   string
		want string
		err  error
	}{
		{"e164", none, "+14155550123", "+14155550123", nil},
		{"unassigned range", none, "+1 999 555 0123", "", ErrInvalid},
		{"us national with region", us, "(650) 253-0000", "+16502530000", nil},
		{"us international", none, "+1 650 253 0000", "+16502530000", nil},
		{"uk", none, "+44 20 7946 0958", "+442079460958", nil},
		{"national without region", none, "650 253 0000", "", ErrInvalid},
		{"letters", none, "+1 CALL NOW", "", ErrInvalid},
		{"too short", none, "+1 650", "", ErrInvalid},
		{"empty", none, "  ", "", ErrInvalid},
		{"too long input", none, "+1" + strings.Repeat("0", 80), "", ErrInvalid},
		{"allowed country", euOnly, "+49 30 901820", "+4930901820", nil},
		{"refused country", euOnly, "+1 650 253 0000", "", ErrCountry},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := c.p.Parse(c.in)
			if !errors.Is(err, c.err) || got != c.want {
				t.Fatalf("Parse(%q) = %q, %v; want %q, %v", c.in, got, err, c.want, c.err)
			}
		})
	}
}

func TestNewPolicyRefusesUnknownRegions(t *testing.T) {
	if _, err := NewPolicy("XX", nil); err == nil {
		t.Fatal("XX accepted as default region")
	}
	if _, err := NewPolicy("", []string{"US", "QQ"}); err == nil {
		t.Fatal("QQ accepted as allowed country")
	}
}
