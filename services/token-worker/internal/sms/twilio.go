package sms

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/talentforge/auth/services/token-worker/internal/retry"
)

// DefaultTwilioAPIURL is Twilio's REST API (TWILIO_API_URL's default).
const DefaultTwilioAPIURL = "https://api.twilio.com"

// maxResponse bounds what is read of an answer: Twilio's are a few hundred bytes.
const maxResponse = 64 << 10

// messagingServiceSID is a Twilio messaging service, which TWILIO_FROM may name instead
// of a number (Twilio picks the sender from the service's pool).
var messagingServiceSID = regexp.MustCompile(`^MG[0-9a-fA-F]{32}$`)

// TwilioConfig is SMS_PROVIDER=twilio's settings (TWILIO_* in API.md).
type TwilioConfig struct {
	AccountSID string
	AuthToken  string
	From       string
	APIURL     string
	// Timeout bounds one request (WORKER_SMS_TIMEOUT).
	Timeout time.Duration
}

// Validate names the first missing or malformed variable, so the worker stops at start
// with one line rather than failing every SMS.
func (c TwilioConfig) Validate() error {
	for _, v := range []struct{ name, value string }{
		{"TWILIO_ACCOUNT_SID", c.AccountSID}, {"TWILIO_AUTH_TOKEN", c.AuthToken}, {"TWILIO_FROM", c.From},
	} {
		if strings.TrimSpace(v.value) == "" {
			return fmt.Errorf("%s: required with SMS_PROVIDER=twilio", v.name)
		}
	}
	if !E164.MatchString(c.From) && !messagingServiceSID.MatchString(c.From) {
		return fmt.Errorf("TWILIO_FROM: %q is neither an E.164 number (+14155550100) nor a messaging service sid (MG and 32 hex digits)", c.From)
	}
	if c.APIURL != "" {
		if u, err := url.Parse(c.APIURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return fmt.Errorf("TWILIO_API_URL: %q is not an http(s) URL", c.APIURL)
		}
	}
	return nil
}

// Twilio sends through Twilio's Messages API; it is safe for concurrent use.
type Twilio struct {
	tracer   trace.Tracer
	endpoint string
	host     string
	port     int
	sid      string
	token    string
	from     string
	client   *http.Client
}

// NewTwilio returns the client; it does not call Twilio.
func NewTwilio(cfg TwilioConfig) (*Twilio, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	base := strings.TrimRight(cfg.APIURL, "/")
	if base == "" {
		base = DefaultTwilioAPIURL
	}
	u, _ := url.Parse(base) // Validate parsed it
	port, _ := strconv.Atoi(u.Port())
	if port == 0 {
		port = map[string]int{"http": 80, "https": 443}[u.Scheme]
	}
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	return &Twilio{
		tracer:   otel.Tracer("github.com/talentforge/auth/services/token-worker/internal/sms"),
		endpoint: base + "/2010-04-01/Accounts/" + url.PathEscape(cfg.AccountSID) + "/Messages.json",
		host:     u.Hostname(), port: port,
		sid: cfg.AccountSID, token: cfg.AuthToken, from: cfg.From,
		client: &http.Client{
			Timeout: timeout,
			Transport: &http.Transport{
				Proxy:               http.ProxyFromEnvironment,
				DialContext:         (&net.Dialer{Timeout: min(timeout, 5*time.Second)}).DialContext,
				TLSHandshakeTimeout: min(timeout, 5*time.Second),
				ForceAttemptHTTP2:   true,
				MaxIdleConnsPerHost: 8,
				IdleConnTimeout:     90 * time.Second,
			},
			// A redirect is no answer of Twilio's: the credentials and the code stay
			// with the configured host.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}, nil
}

// Send posts one message. A refusal no retry can fix (an invalid or unsubscribed number,
// a region not allowed, bad credentials) wraps retry.ErrPermanent; a rate limit, a 5xx
// or a network failure is a plain error (retried). Neither names the body.
func (t *Twilio) Send(ctx context.Context, to, body string) (err error) {
	ctx, span := t.tracer.Start(ctx, "twilio send", trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(semconv.ServerAddress(t.host), semconv.ServerPort(t.port)))
	defer func() {
		if err != nil {
			span.RecordError(err)
			span.SetStatus(codes.Error, "twilio send failed")
		}
		span.End()
	}()
	form := url.Values{"To": {to}, "From": {t.from}, "Body": {body}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return fmt.Errorf("twilio: %w", err)
	}
	req.SetBasicAuth(t.sid, t.token)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	resp, err := t.client.Do(req)
	if err != nil {
		return fmt.Errorf("twilio: %w", err)
	}
	defer resp.Body.Close()
	span.SetAttributes(semconv.HTTPResponseStatusCode(resp.StatusCode))
	raw, rerr := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return nil // Twilio has the message (queued); what it does next is its business
	}
	te := parseTwilioError(resp.StatusCode, raw)
	if rerr != nil && te.Message == "" {
		te.Message = "reading the answer: " + rerr.Error()
	}
	span.SetAttributes(attribute.Int("twilio.error_code", te.Code))
	if te.Reason() == ReasonRejected || te.Reason() == ReasonAccount {
		return retry.Permanent(te)
	}
	return te
}

// Reasons an SMS failed (token_worker_sms_failed_total's reason).
const (
	ReasonProvider    = "provider"     // network, 5xx, an unexpected answer: retried
	ReasonRateLimited = "rate_limited" // 429 / 20429: retried
	ReasonRejected    = "rejected"     // the provider refuses this message for good
	ReasonAccount     = "account"      // credentials or sender refused: permanent, and the provider's fault
	ReasonBreakerOpen = "breaker_open" // not tried: the breaker is open
)

// accountCodes are Twilio errors about the account or the sender, not the recipient:
// every message would fail alike (20003 authenticate, 20005 account not active, 20404
// unknown account, 21212/21606/21659 a From the account cannot use, 21603 no From).
var accountCodes = map[int]bool{20003: true, 20005: true, 20404: true, 21212: true, 21603: true, 21606: true, 21659: true}

// TwilioError is an error answer of Twilio's: its HTTP status, its error code
// (twilio.com/docs/errors/CODE) and its message.
type TwilioError struct {
	Status  int
	Code    int
	Message string
}

func (e *TwilioError) Error() string {
	if e.Code == 0 && e.Message == "" {
		return fmt.Sprintf("twilio answered %d", e.Status)
	}
	return fmt.Sprintf("twilio answered %d, error %d: %s", e.Status, e.Code, e.Message)
}

// Reason classifies the answer (the Reason* constants).
func (e *TwilioError) Reason() string {
	switch {
	case e.Status == http.StatusTooManyRequests || e.Code == 20429:
		return ReasonRateLimited
	case e.Status >= 500 || e.Status < 400:
		return ReasonProvider
	case e.Status == http.StatusUnauthorized || e.Status == http.StatusForbidden || accountCodes[e.Code]:
		return ReasonAccount
	}
	return ReasonRejected
}

// parseTwilioError reads Twilio's error JSON; an answer that is not one (a proxy's page)
// keeps only its status, so nothing but Twilio's own message reaches logs.
func parseTwilioError(status int, raw []byte) *TwilioError {
	var body struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	}
	_ = json.Unmarshal(raw, &body)
	return &TwilioError{Status: status, Code: body.Code, Message: clean(body.Message, 200)}
}

// clean keeps a message fit for one log line: no control characters, at most n runes.
func clean(s string, n int) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
	if r := []rune(s); len(r) > n {
		s = string(r[:n]) + "…"
	}
	return s
}
