package e2e

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// sixDigits finds the code in an SMS or an email's text.
var sixDigits = regexp.MustCompile(`\b(\d{6})\b`)

// A user proves a phone number by SMS, signs in by SMS code, by emailed code and by
// emailed link: the built binaries, PostgreSQL, Redis, NATS, the worker's SMTP and its
// Twilio calls to a fake of Twilio's Messages API, as processes and sockets.
func TestPhoneAndOneTimeCodesThroughTheStack(t *testing.T) {
	s := startStack(t)
	email := "e2e-otp-" + randomHex(4) + "@example.com"
	s.mustPost("/v1/auth/register", map[string]string{"email": email, "password": password, "name": "Ada"}, http.StatusAccepted)
	s.mustPost("/v1/auth/email/verify", map[string]string{"token": tokenFrom(t, s.waitMail(email, 1)[0], "verify-email")}, http.StatusOK)
	var pair struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(s.mustPost("/v1/auth/login", map[string]string{"email": email, "password": password}, http.StatusOK), &pair); err != nil {
		t.Fatal(err)
	}

	n, _ := rand.Int(rand.Reader, big.NewInt(8_000_000))
	number := fmt.Sprintf("+1650%07d", 2_000_000+n.Int64())
	if status, body := postJSON(t, s.authURL+"/v1/users/me/phone", map[string]string{"phone": number}, pair.AccessToken); status != http.StatusAccepted {
		t.Fatalf("phone: %d %s", status, body)
	}
	code := s.waitSMSCode(number, 1)
	status, body := postJSON(t, s.authURL+"/v1/users/me/phone/verify", map[string]string{"code": code}, pair.AccessToken)
	var u struct {
		Phone         string `json:"phone"`
		PhoneVerified bool   `json:"phone_verified"`
	}
	if status != http.StatusOK || json.Unmarshal(body, &u) != nil || u.Phone != number || !u.PhoneVerified {
		t.Fatalf("phone verify: %d %s", status, body)
	}
	notice := text(t, s.waitMailSaying(email, "phone number").Raw)
	if strings.Contains(notice, number) || !strings.Contains(notice, number[len(number)-2:]) {
		t.Fatalf("the notice shows the whole number, or none of it:\n%s", notice)
	}

	// SMS sign-in.
	s.mustPost("/v1/auth/otp", map[string]string{"phone": number}, http.StatusAccepted)
	code = s.waitSMSCode(number, 2)
	expectAMR(t, s.mustPost("/v1/auth/otp/verify", map[string]string{"phone": number, "code": code}, http.StatusOK), "sms")
	s.mustPost("/v1/auth/otp/verify", map[string]string{"phone": number, "code": code}, http.StatusUnauthorized)

	// Emailed code, then emailed link.
	s.mustPost("/v1/auth/otp", map[string]string{"email": email}, http.StatusAccepted)
	m := s.waitMailSaying(email, "magic-link")
	mailCode := sixDigits.FindStringSubmatch(text(t, m.Raw))
	if mailCode == nil {
		t.Fatalf("no code in:\n%s", text(t, m.Raw))
	}
	expectAMR(t, s.mustPost("/v1/auth/otp/verify", map[string]string{"email": email, "code": mailCode[1]}, http.StatusOK), "otp")
	s.mustPost("/v1/auth/otp/verify", map[string]string{"token": tokenFrom(t, m, "magic-link")}, http.StatusUnauthorized)
	before := len(s.waitMail(email, 1))
	s.mustPost("/v1/auth/otp", map[string]string{"email": email}, http.StatusAccepted)
	link := s.waitMail(email, before+1)
	expectAMR(t, s.mustPost("/v1/auth/otp/verify", map[string]string{"token": tokenFrom(t, link[len(link)-1], "magic-link")}, http.StatusOK), "otp")

	// Each SMS was sent once, from the configured number.
	msgs := s.sms.Messages()
	if len(msgs) != 2 || msgs[0].From != "+15005550006" || msgs[0].AccountSID != e2eTwilioSID {
		t.Fatalf("fake Twilio holds %+v", msgs)
	}
}

// waitSMSCode waits for the n-th SMS to number and returns its code.
func (s *stack) waitSMSCode(number string, n int) string {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	msgs, err := s.sms.WaitMessages(ctx, number, n)
	if err != nil {
		s.t.Fatalf("SMS to %s: %v", number, err)
	}
	m := sixDigits.FindStringSubmatch(msgs[n-1].Body)
	if m == nil {
		s.t.Fatalf("no code in the SMS %q", msgs[n-1].Body)
	}
	return m[1]
}

// expectAMR checks the amr of the access token of a token pair answer.
func expectAMR(t *testing.T, body []byte, want ...string) {
	t.Helper()
	var p struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(body, &p); err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(p.AccessToken, ".")
	if len(parts) != 3 {
		t.Fatalf("no access token in %s", body)
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	var claims struct {
		AMR []string `json:"amr"`
	}
	if err != nil || json.Unmarshal(raw, &claims) != nil || !slices.Equal(claims.AMR, want) {
		t.Fatalf("amr %v, want %v (%v)", claims.AMR, want, err)
	}
}
