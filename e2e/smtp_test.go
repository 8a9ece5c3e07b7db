package e2e

import (
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

// mailbox is a real SMTP relay (go-smtp) on 127.0.0.1 that keeps every message.
type mailbox struct {
	addr *net.TCPAddr
	mu   sync.Mutex
	msgs []message
}

type message struct {
	To  []string
	Raw string
}

func startMailbox(t *testing.T) *mailbox {
	t.Helper()
	mb := &mailbox{}
	srv := smtp.NewServer(mb)
	srv.Domain = "localhost"
	srv.AllowInsecureAuth = true
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mb.addr = ln.Addr().(*net.TCPAddr)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return mb
}

func (mb *mailbox) NewSession(*smtp.Conn) (smtp.Session, error) { return &mailSession{mb: mb}, nil }

// to returns the messages sent to rcpt so far.
func (mb *mailbox) to(rcpt string) []message {
	mb.mu.Lock()
	defer mb.mu.Unlock()
	var out []message
	for _, m := range mb.msgs {
		for _, r := range m.To {
			if r == rcpt {
				out = append(out, m)
			}
		}
	}
	return out
}

type mailSession struct {
	mb *mailbox
	to []string
}

func (s *mailSession) Mail(string, *smtp.MailOptions) error { return nil }
func (s *mailSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.to = append(s.to, to)
	return nil
}
func (s *mailSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.mb.mu.Lock()
	s.mb.msgs = append(s.mb.msgs, message{To: s.to, Raw: string(b)})
	s.mb.mu.Unlock()
	return nil
}
func (s *mailSession) Reset()        { s.to = nil }
func (s *mailSession) Logout() error { return nil }
