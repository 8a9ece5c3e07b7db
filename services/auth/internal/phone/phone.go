// Package phone reads the phone numbers people type into E.164 with
// github.com/nyaruka/phonenumbers (libphonenumber's metadata), and keeps SMS to the
// countries a deployment allows: SMS pumping (fraudsters making a service text premium
// numbers of far-away ranges) is stopped before any code is written.
package phone

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/nyaruka/phonenumbers"
)

// ErrInvalid: the input is no valid number (or names a region this policy refuses);
// ErrCountry: a valid number of a country SMS may not go to.
var (
	ErrInvalid = errors.New("not a valid phone number")
	ErrCountry = errors.New("SMS may not be sent to this country")
)

// Policy is SMS_DEFAULT_REGION and SMS_ALLOWED_COUNTRIES.
type Policy struct {
	// DefaultRegion reads numbers typed without +country (empty: they are refused).
	DefaultRegion string
	// Allowed are the regions SMS may go to; empty: any.
	Allowed []string
}

// NewPolicy checks that the library knows every region of the settings.
func NewPolicy(defaultRegion string, allowed []string) (Policy, error) {
	known := phonenumbers.GetSupportedRegions()
	for _, r := range append([]string{defaultRegion}, allowed...) {
		if _, ok := known[r]; r != "" && !ok {
			return Policy{}, fmt.Errorf("%q is not a region with phone numbers", r)
		}
	}
	return Policy{DefaultRegion: defaultRegion, Allowed: slices.Clone(allowed)}, nil
}

// maxInput bounds what is parsed: the longest sensible typed number with spaces.
const maxInput = 64

// Parse reads raw into E.164 (+ and up to 15 digits). A number must be valid for its
// region (libphonenumber's ranges), not merely possible, and of an allowed country.
func (p Policy) Parse(raw string) (string, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" || len(raw) > maxInput {
		return "", ErrInvalid
	}
	region := p.DefaultRegion
	if region == "" && !strings.HasPrefix(raw, "+") {
		return "", ErrInvalid
	}
	if region == "" {
		region = "ZZ" // unknown: only +country numbers parse
	}
	n, err := phonenumbers.Parse(raw, region)
	if err != nil || !phonenumbers.IsValidNumber(n) {
		return "", ErrInvalid
	}
	if len(p.Allowed) > 0 && !slices.Contains(p.Allowed, phonenumbers.GetRegionCodeForNumber(n)) {
		return "", ErrCountry
	}
	return phonenumbers.Format(n, phonenumbers.E164), nil
}
