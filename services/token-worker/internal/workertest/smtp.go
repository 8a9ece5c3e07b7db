package workertest

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

// Stages of an SMTP conversation a failure can be injected at.
const (
	StageHello = "hello" // EHLO: the relay refuses the session
	StageMail  = "mail"
	StageRcpt  = "rcpt"
	StageData  = "data"
)

// Message is one email the fake relay accepted.
type Message struct {
	From string
	To   []string
	Raw  []byte
}

// SMTP is a real SMTP server (go-smtp) on 127.0.0.1 that keeps what it accepts. A test
// makes it refuse with Fail.
type SMTP struct {
	Addr string
	Host string
	Port int

	srv *smtp.Server
	ln  net.Listener

	mu       sync.Mutex
	messages []Message
	attempts int
	fail     func(stage string) error
	notify   chan struct{}
}

// SMTPOption configures the fake relay.
type SMTPOption func(*smtp.Server) (implicitTLS bool)

// WithSTARTTLS offers STARTTLS with cfg.
func WithSTARTTLS(cfg *tls.Config) SMTPOption {
	return func(s *smtp.Server) bool { s.TLSConfig = cfg; return false }
}

// WithImplicitTLS speaks TLS from the first byte with cfg.
func WithImplicitTLS(cfg *tls.Config) SMTPOption {
	return func(s *smtp.Server) bool { s.TLSConfig = cfg; return true }
}

// StartSMTP starts the fake relay; it stops with the test.
func StartSMTP(t testing.TB, opts ...SMTPOption) *SMTP {
	t.Helper()
	f := &SMTP{notify: make(chan struct{}, 1)}
	f.srv = smtp.NewServer(smtp.BackendFunc(f.newSession))
	f.srv.Domain = "relay.test"
	f.srv.AllowInsecureAuth = true
	f.srv.ReadTimeout, f.srv.WriteTimeout = 10*time.Second, 10*time.Second
	implicit := false
	for _, o := range opts {
		implicit = o(f.srv) || implicit
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if implicit {
		ln = tls.NewListener(ln, f.srv.TLSConfig)
	}
	f.ln = ln
	f.Addr = ln.Addr().String()
	tcp := ln.Addr().(*net.TCPAddr)
	f.Host, f.Port = "127.0.0.1", tcp.Port
	go func() { _ = f.srv.Serve(ln) }()
	t.Cleanup(func() { _ = f.srv.Close() })
	return f
}

// Fail makes the relay answer fn(stage) at each stage; nil answers accept. Fail(nil)
// makes it accept everything again.
func (f *SMTP) Fail(fn func(stage string) error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fail = fn
}

// Refuse is an SMTP error reply.
func Refuse(code int, msg string) error {
	return &smtp.SMTPError{Code: code, EnhancedCode: smtp.EnhancedCodeNotSet, Message: msg}
}

func (f *SMTP) check(stage string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if stage == StageHello {
		f.attempts++
	}
	if f.fail != nil {
		return f.fail(stage)
	}
	return nil
}

// Attempts counts the sessions clients opened (EHLO), accepted or not.
func (f *SMTP) Attempts() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.attempts
}

// Messages returns what the relay accepted so far.
func (f *SMTP) Messages() []Message {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Message(nil), f.messages...)
}

// WaitFor waits until the relay accepted n messages and returns them.
func (f *SMTP) WaitFor(t testing.TB, n int, timeout time.Duration) []Message {
	t.Helper()
	deadline := time.After(timeout)
	for {
		if m := f.Messages(); len(m) >= n {
			return m
		}
		select {
		case <-f.notify:
		case <-time.After(20 * time.Millisecond):
		case <-deadline:
			t.Fatalf("the relay accepted %d messages within %s, want %d", len(f.Messages()), timeout, n)
		}
	}
}

func (f *SMTP) newSession(*smtp.Conn) (smtp.Session, error) {
	if err := f.check(StageHello); err != nil {
		return nil, err
	}
	return &session{f: f}, nil
}

type session struct {
	f    *SMTP
	from string
	to   []string
}

func (s *session) Reset()        { s.from, s.to = "", nil }
func (s *session) Logout() error { return nil }
func (s *session) Mail(from string, _ *smtp.MailOptions) error {
	if err := s.f.check(StageMail); err != nil {
		return err
	}
	s.from = from
	return nil
}
func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	if err := s.f.check(StageRcpt); err != nil {
		return err
	}
	s.to = append(s.to, to)
	return nil
}
func (s *session) Data(r io.Reader) error {
	raw, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if err := s.f.check(StageData); err != nil {
		return err
	}
	s.f.mu.Lock()
	s.f.messages = append(s.f.messages, Message{From: s.from, To: s.to, Raw: raw})
	s.f.mu.Unlock()
	select {
	case s.f.notify <- struct{}{}:
	default:
	}
	return nil
}

// Email is a parsed message.
type Email struct {
	Header mail.Header
	Text   string
	HTML   string
}

// Parse reads m: its headers and its text and HTML parts, decoded.
func (m Message) Parse(t testing.TB) Email {
	t.Helper()
	msg, err := mail.ReadMessage(bytes.NewReader(m.Raw))
	if err != nil {
		t.Fatalf("parse message: %v", err)
	}
	e := Email{Header: msg.Header}
	if err := walk(msg.Header.Get("Content-Type"), msg.Header.Get("Content-Transfer-Encoding"), msg.Body, &e); err != nil {
		t.Fatalf("parse message body: %v\n%s", err, m.Raw)
	}
	return e
}

func walk(contentType, encoding string, body io.Reader, e *Email) error {
	mt, params, err := mime.ParseMediaType(contentType)
	if err != nil {
		return err
	}
	if strings.HasPrefix(mt, "multipart/") {
		mr := multipart.NewReader(body, params["boundary"])
		for {
			p, err := mr.NextRawPart()
			if errors.Is(err, io.EOF) {
				return nil
			}
			if err != nil {
				return err
			}
			if err := walk(p.Header.Get("Content-Type"), p.Header.Get("Content-Transfer-Encoding"), p, e); err != nil {
				return err
			}
		}
	}
	if strings.EqualFold(encoding, "quoted-printable") {
		body = quotedprintable.NewReader(body)
	}
	b, err := io.ReadAll(body)
	if err != nil {
		return err
	}
	text := strings.ReplaceAll(string(b), "\r\n", "\n")
	switch mt {
	case "text/plain":
		e.Text = text
	case "text/html":
		e.HTML = text
	}
	return nil
}

// Subject decodes the Subject header.
func (e Email) Subject() string {
	s, err := new(mime.WordDecoder).DecodeHeader(e.Header.Get("Subject"))
	if err != nil {
		return e.Header.Get("Subject")
	}
	return s
}
