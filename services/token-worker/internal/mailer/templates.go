package mailer

import (
	"bytes"
	"embed"
	"fmt"
	htemplate "html/template"
	ttemplate "text/template"
	"time"
)

//go:embed templates
var templateFS embed.FS

// Product is the name every email carries.
const Product = "TalentForge"

// Kind is one of the emails the worker sends.
type Kind string

// The emails, one text and one HTML template each.
const (
	KindVerification     Kind = "verification"
	KindPasswordReset    Kind = "password_reset"
	KindRegisterExisting Kind = "register_existing"
	KindPasswordChanged  Kind = "password_changed"
	KindEmailVerified    Kind = "email_verified"
	KindMFAEnabled       Kind = "mfa_enabled"
	KindMFADisabled      Kind = "mfa_disabled"
	KindPasskeyAdded     Kind = "passkey_added"
	KindPasskeyRemoved   Kind = "passkey_removed"
	KindOTP              Kind = "otp"
	KindPhoneVerified    Kind = "phone_verified"
	// KindWebhookDisabled tells an admin the worker disabled a failing webhook endpoint.
	KindWebhookDisabled Kind = "webhook_disabled"
)

// Kinds lists every kind.
var Kinds = []Kind{KindVerification, KindPasswordReset, KindRegisterExisting, KindPasswordChanged, KindEmailVerified,
	KindMFAEnabled, KindMFADisabled, KindPasskeyAdded, KindPasskeyRemoved, KindOTP, KindPhoneVerified, KindWebhookDisabled}

var subjects = map[Kind]string{
	KindVerification:     "Confirm your email address for " + Product,
	KindPasswordReset:    "Reset your " + Product + " password",
	KindRegisterExisting: "Someone tried to sign up to " + Product + " with your address",
	KindPasswordChanged:  "Your " + Product + " password was changed",
	KindEmailVerified:    "Your " + Product + " email address is confirmed",
	KindMFAEnabled:       "Two-step sign-in is on for your " + Product + " account",
	KindMFADisabled:      "Two-step sign-in was turned off for your " + Product + " account",
	KindPasskeyAdded:     "A passkey was added to your " + Product + " account",
	KindPasskeyRemoved:   "A passkey was removed from your " + Product + " account",
	KindOTP:              "Your sign-in code for " + Product,
	KindPhoneVerified:    "A phone number was set on your " + Product + " account",
	KindWebhookDisabled:  "A " + Product + " webhook endpoint was disabled",
}

// Data is what a template shows. Link and AppURL are built from APP_URL only; nothing
// else in an event becomes a URL.
type Data struct {
	Name       string    // greeting; empty for "Hi,"
	Link       string    // verification, reset and otp: the single-use link
	Code       string    // otp: the one-time code
	AppURL     string    // the web app, for notices
	ExpiresAt  time.Time // when Link stops working
	How        string    // password_changed: "reset" or "change"
	OccurredAt time.Time // when the event happened
	// phone_verified: the number set and the one it replaced, masked by the caller.
	Phone, PreviousPhone string
	// webhook_disabled: the endpoint (its id and URL), its last failure, and since when
	// it failed. The URL is shown as text, never made a link.
	WebhookID, WebhookURL, LastError string
	FailingSince                     time.Time
}

type view struct {
	Data
	Product, Subject, Expires, When string
	// Since is FailingSince as the emails write times.
	Since string
}

// Templates are the parsed text and HTML templates of every kind.
type Templates struct {
	text map[Kind]*ttemplate.Template
	html map[Kind]*htemplate.Template
}

// ParseTemplates parses the embedded templates; an error is a bug in them.
func ParseTemplates() (*Templates, error) {
	t := &Templates{text: map[Kind]*ttemplate.Template{}, html: map[Kind]*htemplate.Template{}}
	for _, k := range Kinds {
		tt, err := ttemplate.ParseFS(templateFS, "templates/layout.txt", "templates/"+string(k)+".txt")
		if err != nil {
			return nil, fmt.Errorf("parse text template %s: %w", k, err)
		}
		ht, err := htemplate.ParseFS(templateFS, "templates/layout.html", "templates/"+string(k)+".html")
		if err != nil {
			return nil, fmt.Errorf("parse html template %s: %w", k, err)
		}
		t.text[k], t.html[k] = tt.Option("missingkey=error"), ht.Option("missingkey=error")
	}
	return t, nil
}

// Render returns the subject, text and HTML of an email of kind at time now.
func (t *Templates) Render(kind Kind, d Data, now time.Time) (subject, text, html string, err error) {
	tt, ok := t.text[kind]
	if !ok {
		return "", "", "", fmt.Errorf("no template for email kind %q", kind)
	}
	v := view{Data: d, Product: Product, Subject: subjects[kind], Expires: expires(d.ExpiresAt, now), When: when(d.OccurredAt, now),
		Since: when(d.FailingSince, now)}
	var tb, hb bytes.Buffer
	if err := tt.ExecuteTemplate(&tb, "layout", v); err != nil {
		return "", "", "", fmt.Errorf("render text %s: %w", kind, err)
	}
	if err := t.html[kind].ExecuteTemplate(&hb, "layout", v); err != nil {
		return "", "", "", fmt.Errorf("render html %s: %w", kind, err)
	}
	return v.Subject, tb.String(), hb.String(), nil
}

// Subject returns the subject line of kind.
func Subject(kind Kind) string { return subjects[kind] }

func expires(at, now time.Time) string {
	if at.IsZero() {
		return "soon"
	}
	left := at.Sub(now)
	rel := ""
	switch {
	case left >= 2*time.Hour:
		rel = fmt.Sprintf(" (in about %d hours)", int((left + 30*time.Minute).Hours()))
	case left >= 2*time.Minute:
		rel = fmt.Sprintf(" (in about %d minutes)", int((left + 30*time.Second).Minutes()))
	}
	return "on " + at.UTC().Format("2 January 2006 at 15:04 MST") + rel
}

func when(at, now time.Time) string {
	if at.IsZero() {
		at = now
	}
	return at.UTC().Format("2 January 2006 at 15:04 MST")
}
