// Package twiliofake is a local stand-in for Twilio's Messages API (2010-04-01), served over
// a real socket so the token-worker's Twilio client runs unchanged against it: the tests
// start one with Start, `make run` runs e2e/cmd/faketwilio. It takes what Twilio takes
// (form-encoded To, From, Body under HTTP basic auth), answers Twilio's resource and error
// JSON, sends nothing anywhere, and keeps the accepted messages in memory for the tests
// (Messages, WaitMessages) and for people (GET / and GET /api/messages, without auth: a
// loopback dev tool).
package twiliofake

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"
)

// Message is one message the fake accepted.
type Message struct {
	SID, AccountSID, To, From, Body string
	DateCreated                     time.Time
}

const (
	maxMessages = 1000 // kept, oldest dropped first: a long `make run` stays bounded
	maxBody     = 1600 // characters, Twilio's limit of a concatenated message
	maxForm     = 64 << 10
	apiVersion  = "2010-04-01"
	rfc2822     = "Mon, 02 Jan 2006 15:04:05 -0700" // Twilio's dates, in GMT: "+0000"
)

var e164 = regexp.MustCompile(`^\+[1-9][0-9]{6,14}$`)

// Server is a running fake. Its methods are safe for concurrent use.
type Server struct {
	accountSID string
	sidHash    [32]byte
	tokenHash  [32]byte
	url        string
	srv        *http.Server

	mu       sync.Mutex
	msgs     []Message
	changed  chan struct{} // closed and replaced at each accepted message (WaitMessages)
	requests int
	failN    int
	failCode int
	failStat int
}

// Start listens on 127.0.0.1:0, for tests.
func Start(accountSID, authToken string) (*Server, error) {
	return Listen("127.0.0.1:0", accountSID, authToken)
}

// Listen serves the fake on addr (e.g. ":8026") for the account accountSID, authenticated by
// authToken.
func Listen(addr, accountSID, authToken string) (*Server, error) {
	if accountSID == "" || authToken == "" {
		return nil, errors.New("twiliofake: an account sid and an auth token are needed")
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("twiliofake: %w", err)
	}
	s := &Server{
		accountSID: accountSID,
		// Hashed so the constant-time comparison does not leak the lengths either.
		sidHash:   sha256.Sum256([]byte(accountSID)),
		tokenHash: sha256.Sum256([]byte(authToken)),
		url:       baseURL(ln.Addr()),
		changed:   make(chan struct{}),
	}
	mux := http.NewServeMux()
	// No method in the pattern: other methods get Twilio's 405 JSON, not the mux's text.
	mux.HandleFunc("/2010-04-01/Accounts/{sid}/Messages.json", s.create)
	mux.HandleFunc("GET /api/messages", s.list)
	mux.HandleFunc("GET /{$}", s.page)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		twilioError(w, http.StatusNotFound, 20404, "The requested resource "+r.URL.Path+" was not found")
	})
	s.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = s.srv.Serve(ln) }()
	return s, nil
}

// baseURL names the listener as a client reaches it: an unspecified host (":8026") is
// reached on loopback.
func baseURL(a net.Addr) string {
	host, port, _ := net.SplitHostPort(a.String())
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port)
}

// URL is the base URL, e.g. http://127.0.0.1:PORT: what TWILIO_API_URL is set to.
func (s *Server) URL() string { return s.url }

// Close stops serving at once, open connections included.
func (s *Server) Close() error { return s.srv.Close() }

// Messages are the accepted messages, oldest first (a copy).
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.msgs)
}

// WaitMessages waits until n messages to `to` were accepted and returns every message to
// `to`, oldest first; when ctx ends first, it returns those so far and an error wrapping
// ctx.Err().
func (s *Server) WaitMessages(ctx context.Context, to string, n int) ([]Message, error) {
	for {
		s.mu.Lock()
		var got []Message
		for _, m := range s.msgs {
			if m.To == to {
				got = append(got, m)
			}
		}
		changed := s.changed
		s.mu.Unlock()
		if len(got) >= n {
			return got, nil
		}
		select {
		case <-ctx.Done():
			return got, fmt.Errorf("twiliofake: %d of %d messages to %s: %w", len(got), n, to, ctx.Err())
		case <-changed:
		}
	}
}

// FailNext makes the next n message POSTs answer status with Twilio error code (e.g.
// 429/20429, 500/20500) and accept nothing, whatever they carry; it replaces any earlier
// FailNext still pending.
func (s *Server) FailNext(n, status, code int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failN, s.failStat, s.failCode = n, status, code
}

// Requests counts the message POSTs received, failed ones included.
func (s *Server) Requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests
}

func (s *Server) create(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		twilioError(w, http.StatusMethodNotAllowed, 20004, "Method not allowed")
		return
	}
	s.mu.Lock()
	s.requests++
	fail, status, code := s.failN > 0, s.failStat, s.failCode
	if fail {
		s.failN--
	}
	s.mu.Unlock()
	if fail {
		twilioError(w, status, code, http.StatusText(status))
		return
	}
	user, pass, _ := r.BasicAuth()
	u, p := sha256.Sum256([]byte(user)), sha256.Sum256([]byte(pass))
	if subtle.ConstantTimeCompare(u[:], s.sidHash[:])&subtle.ConstantTimeCompare(p[:], s.tokenHash[:]) != 1 {
		w.Header().Set("WWW-Authenticate", `Basic realm="Twilio API"`)
		twilioError(w, http.StatusUnauthorized, 20003, "Authenticate")
		return
	}
	if r.PathValue("sid") != s.accountSID {
		twilioError(w, http.StatusNotFound, 20404, "The requested resource "+r.URL.Path+" was not found")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxForm)
	if err := r.ParseForm(); err != nil {
		twilioError(w, http.StatusBadRequest, 20001, "The request body could not be read: "+err.Error())
		return
	}
	to, from, body := r.PostForm.Get("To"), r.PostForm.Get("From"), r.PostForm.Get("Body")
	switch {
	case to == "":
		twilioError(w, http.StatusBadRequest, 21604, "A 'To' phone number is required.")
		return
	case from == "":
		twilioError(w, http.StatusBadRequest, 21603, "A 'From' phone number is required.")
		return
	case body == "":
		twilioError(w, http.StatusBadRequest, 21602, "Message body is required.")
		return
	case !e164.MatchString(to):
		twilioError(w, http.StatusBadRequest, 21211, "Invalid 'To' Phone Number: "+to)
		return
	case utf8.RuneCountInString(body) > maxBody:
		twilioError(w, http.StatusBadRequest, 21617, "The concatenated message body exceeds the 1600 character limit.")
		return
	}
	// Whole seconds: the JSON's RFC 2822 dates and Messages() then tell the same time.
	m := Message{SID: newSID(), AccountSID: s.accountSID, To: to, From: from, Body: body,
		DateCreated: time.Now().UTC().Truncate(time.Second)}
	s.mu.Lock()
	s.msgs = append(s.msgs, m)
	if len(s.msgs) > maxMessages {
		s.msgs = slices.Delete(s.msgs, 0, len(s.msgs)-maxMessages)
	}
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
	writeJSON(w, http.StatusCreated, newResource(m))
}

// resource is Twilio's Message resource as a create answers it, fields in Twilio's order.
type resource struct {
	AccountSID          string            `json:"account_sid"`
	APIVersion          string            `json:"api_version"`
	Body                string            `json:"body"`
	DateCreated         string            `json:"date_created"`
	DateSent            *string           `json:"date_sent"`
	DateUpdated         string            `json:"date_updated"`
	Direction           string            `json:"direction"`
	ErrorCode           *int              `json:"error_code"`
	ErrorMessage        *string           `json:"error_message"`
	From                string            `json:"from"`
	MessagingServiceSID *string           `json:"messaging_service_sid"`
	NumMedia            string            `json:"num_media"`
	NumSegments         string            `json:"num_segments"`
	Price               *string           `json:"price"`
	PriceUnit           string            `json:"price_unit"`
	SID                 string            `json:"sid"`
	Status              string            `json:"status"`
	SubresourceURIs     map[string]string `json:"subresource_uris"`
	To                  string            `json:"to"`
	URI                 string            `json:"uri"`
}

func newResource(m Message) resource {
	uri := "/" + apiVersion + "/Accounts/" + m.AccountSID + "/Messages/" + m.SID
	date := m.DateCreated.Format(rfc2822)
	return resource{
		AccountSID: m.AccountSID, APIVersion: apiVersion, Body: m.Body,
		DateCreated: date, DateUpdated: date, Direction: "outbound-api", From: m.From,
		NumMedia: "0", NumSegments: "1", PriceUnit: "USD", SID: m.SID, Status: "queued",
		SubresourceURIs: map[string]string{"media": uri + "/Media.json"},
		To:              m.To, URI: uri + ".json",
	}
}

// newSID is "SM" and 32 hex digits, as Twilio's message sids.
func newSID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return "SM" + hex.EncodeToString(b)
}

// twilioError writes Twilio's error JSON.
func twilioError(w http.ResponseWriter, status, code int, message string) {
	writeJSON(w, status, struct {
		Code     int    `json:"code"`
		Message  string `json:"message"`
		MoreInfo string `json:"more_info"`
		Status   int    `json:"status"`
	}{code, message, "https://www.twilio.com/docs/errors/" + strconv.Itoa(code), status})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// newestFirst is a copy of the messages, newest first, for the two reads.
func (s *Server) newestFirst() []Message {
	ms := s.Messages()
	slices.Reverse(ms)
	return ms
}

// listed is a message in GET /api/messages; its dates are RFC 3339 (our API, not Twilio's).
type listed struct {
	SID         string    `json:"sid"`
	To          string    `json:"to"`
	From        string    `json:"from"`
	Body        string    `json:"body"`
	DateCreated time.Time `json:"date_created"`
}

func (s *Server) list(w http.ResponseWriter, _ *http.Request) {
	out := struct {
		Messages []listed `json:"messages"`
	}{Messages: []listed{}}
	for _, m := range s.newestFirst() {
		out.Messages = append(out.Messages, listed{m.SID, m.To, m.From, m.Body, m.DateCreated})
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, out)
}

//go:embed page.html
var pageHTML string

var pageTmpl = template.Must(template.New("page").Parse(pageHTML))

func (s *Server) page(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_ = pageTmpl.Execute(w, struct {
		Account  string
		Messages []Message
	}{s.accountSID, s.newestFirst()})
}
