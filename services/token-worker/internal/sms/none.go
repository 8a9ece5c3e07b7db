package sms

import (
	"context"
	"errors"
)

// Provider names of SMS_PROVIDER.
const (
	ProviderNone   = "none"
	ProviderTwilio = "twilio"
)

// ErrNoProvider is what None.Send answers: nothing can send an SMS.
var ErrNoProvider = errors.New("sms: SMS_PROVIDER is none")

// None is SMS_PROVIDER=none: it sends nothing, and the service drops each SMS (outcome
// "dropped") before claiming it, so the ledger and the per-number cap see nothing.
type None struct{}

// Send sends nothing.
func (None) Send(context.Context, string, string) error { return ErrNoProvider }

// DropsAll tells the service to drop every SMS.
func (None) DropsAll() bool { return true }

// dropper is a provider that sends nothing at all (None, or a breaker around it).
type dropper interface{ DropsAll() bool }

func dropsAll(p Provider) bool {
	d, ok := p.(dropper)
	return ok && d.DropsAll()
}
