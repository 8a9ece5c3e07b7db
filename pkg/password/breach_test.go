package password

import (
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// sha1Hex is the upper-case hex SHA-1 the range API is keyed by.
func sha1Hex(s string) string {
	sum := sha1.Sum([]byte(s))
	return strings.ToUpper(hex.EncodeToString(sum[:]))
}

var rangePrefix = regexp.MustCompile(`^[0-9A-F]{5}$`)

// fakePwned speaks the Pwned Passwords range protocol: GET /range/{5 hex}
// answers "SUFFIX:COUNT" lines, CRLF-separated, for every known hash under
// the prefix, plus decoy lines of count 0 when Add-Padding is true. It
// records every request as it arrived on the wire.
type fakePwned struct {
	counts  map[string]int // upper-case hex SHA-1 → times seen in breaches
	padding []string       // extra "SUFFIX:0" lines sent with Add-Padding

	mu       sync.Mutex
	requests []string // httputil.DumpRequest of each request, body included
}

func newFakePwned(t *testing.T, breached map[string]int) (*fakePwned, *httptest.Server) {
	t.Helper()
	f := &fakePwned{counts: map[string]int{}}
	for pw, n := range breached {
		f.counts[sha1Hex(pw)] = n
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /range/{prefix}", f.serveRange)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		f.record(r)
		http.NotFound(w, r)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return f, srv
}

func (f *fakePwned) record(r *http.Request) {
	dump, err := httputil.DumpRequest(r, true)
	if err != nil {
		dump = []byte("dump failed: " + err.Error())
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests = append(f.requests, string(dump))
}

func (f *fakePwned) seen() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.requests...)
}

func (f *fakePwned) serveRange(w http.ResponseWriter, r *http.Request) {
	f.record(r)
	prefix := r.PathValue("prefix")
	if !rangePrefix.MatchString(prefix) {
		http.Error(w, "The hash prefix was not in a valid format", http.StatusBadRequest)
		return
	}
	var lines []string
	for h, n := range f.counts {
		if strings.HasPrefix(h, prefix) {
			lines = append(lines, fmt.Sprintf("%s:%d", h[5:], n))
		}
	}
	// Unrelated real-looking entries, as every prefix has hundreds.
	rng := rand.New(rand.NewPCG(1, 2))
	for range 300 {
		lines = append(lines, fmt.Sprintf("%s:%d", randomSuffix(rng), 1+rng.IntN(5000)))
	}
	if r.Header.Get("Add-Padding") == "true" {
		lines = append(lines, f.padding...)
		for range 200 {
			lines = append(lines, randomSuffix(rng)+":0")
		}
	}
	w.Header().Set("Content-Type", "text/plain")
	io.WriteString(w, strings.Join(lines, "\r\n"))
}

func randomSuffix(rng *rand.Rand) string {
	const digits = "0123456789ABCDEF"
	b := make([]byte, 35)
	for i := range b {
		b[i] = digits[rng.IntN(16)]
	}
	return string(b)
}

func TestNewBreachCheckerDefaults(t *testing.T) {
	b := NewBreachChecker("", nil, false)
	if b.baseURL != DefaultBreachBaseURL {
		t.Errorf("baseURL = %q, want %q", b.baseURL, DefaultBreachBaseURL)
	}
	if b.client == nil || b.client.Timeout != 3*time.Second {
		t.Errorf("default client = %+v, want a 3s timeout", b.client)
	}
	c := &http.Client{}
	if b := NewBreachChecker("http://x.test/api/", c, true); b.baseURL != "http://x.test/api" || b.client != c || !b.failClosed {
		t.Errorf("NewBreachChecker kept %q, %p, %v", b.baseURL, b.client, b.failClosed)
	}
}

func TestBreached(t *testing.T) {
	_, srv := newFakePwned(t, map[string]int{
		"P@ssw0rd":                     52256179,
		"password":                     9545824,
		"once":                         1,
		"correct horse battery staple": 0, // listed with count 0: padding-like
	})
	tests := []struct {
		password string
		want     bool
	}{
		{"P@ssw0rd", true},
		{"password", true},
		{"ｐａｓｓｗｏｒｄ", true}, // NFKC: fullwidth is the same password
		{"once", true},
		{"Password", false}, // SHA-1 is case-sensitive
		{"correct horse battery staple", false},
		{"xq7#kpzw-Vq9!tLm2", false},
		{"", false},
	}
	for _, failClosed := range []bool{false, true} {
		b := NewBreachChecker(srv.URL, srv.Client(), failClosed)
		for _, tt := range tests {
			got, err := b.Breached(context.Background(), tt.password)
			if err != nil || got != tt.want {
				t.Errorf("failClosed=%v: Breached(%q) = %v, %v; want %v, nil", failClosed, tt.password, got, err, tt.want)
			}
		}
	}
}

func TestBreachedPaddingLinesDoNotMatch(t *testing.T) {
	const pw = "xq7#kpzw-Vq9!tLm2"
	f, srv := newFakePwned(t, nil)
	// The password's own suffix as a padding line: count 0 means "not seen".
	f.padding = []string{sha1Hex(pw)[5:] + ":0"}
	b := NewBreachChecker(srv.URL, srv.Client(), true)
	if got, err := b.Breached(context.Background(), pw); got || err != nil {
		t.Fatalf("Breached = %v, %v; want false, nil", got, err)
	}
	// Without the padding, the same suffix with a count is a match.
	f.counts[sha1Hex(pw)] = 3
	if got, err := b.Breached(context.Background(), pw); !got || err != nil {
		t.Fatalf("Breached = %v, %v; want true, nil", got, err)
	}
}

func TestBreachedAnswerParsing(t *testing.T) {
	const pw = "hunter2-hunter2"
	suffix := sha1Hex(pw)[5:]
	tests := []struct {
		name string
		body string
		want bool
	}{
		{"CRLF", "0018A45C4D1DEF81644B54AB7F969B88D65:1\r\n" + suffix + ":7\r\n", true},
		{"LF, no final newline", "0018A45C4D1DEF81644B54AB7F969B88D65:1\n" + suffix + ":7", true},
		{"lower-case suffix", strings.ToLower(suffix) + ":7\r\n", true},
		{"count 0", suffix + ":0\r\n" + "0018A45C4D1DEF81644B54AB7F969B88D65:1\r\n", false},
		{"bad count skipped", suffix + ":many\r\n" + "0018A45C4D1DEF81644B54AB7F969B88D65:1\r\n", false},
		{"negative count skipped", suffix + ":-3\r\n" + "0018A45C4D1DEF81644B54AB7F969B88D65:1\r\n", false},
		{"full hash is not a suffix", sha1Hex(pw) + ":7\r\n" + "0018A45C4D1DEF81644B54AB7F969B88D65:1\r\n", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				io.WriteString(w, tt.body)
			}))
			defer srv.Close()
			got, err := NewBreachChecker(srv.URL, srv.Client(), true).Breached(context.Background(), pw)
			if err != nil || got != tt.want {
				t.Fatalf("Breached = %v, %v; want %v, nil", got, err, tt.want)
			}
		})
	}
}

func TestBreachedSendsOnlyThePrefix(t *testing.T) {
	const pw = "P@ssw0rd"
	hash := sha1Hex(pw)
	f, srv := newFakePwned(t, map[string]int{pw: 10})
	b := NewBreachChecker(srv.URL+"/", srv.Client(), true)
	if got, err := b.Breached(context.Background(), pw); !got || err != nil {
		t.Fatalf("Breached = %v, %v; want true, nil", got, err)
	}
	reqs := f.seen()
	if len(reqs) != 1 {
		t.Fatalf("server saw %d requests, want 1:\n%s", len(reqs), strings.Join(reqs, "\n---\n"))
	}
	dump := reqs[0]
	first, _, _ := strings.Cut(dump, "\r\n")
	if want := "GET /range/" + hash[:5] + " HTTP/1.1"; first != want {
		t.Errorf("request line = %q, want %q", first, want)
	}
	if !strings.Contains(dump, "\r\nAdd-Padding: true\r\n") {
		t.Errorf("no Add-Padding: true header in\n%s", dump)
	}
	if !regexp.MustCompile(`\r\nUser-Agent: \S+`).MatchString(dump) || strings.Contains(dump, "Go-http-client") {
		t.Errorf("no User-Agent of ours in\n%s", dump)
	}
	if !strings.HasSuffix(dump, "\r\n\r\n") {
		t.Errorf("request has a body:\n%s", dump)
	}
	// Nothing beyond the 5-character prefix: not the 6th character on, not
	// the password, in either case, anywhere in the request.
	lower := strings.ToLower(dump)
	for _, secret := range []string{hash[:6], hash[5:], hash[5:11], hash[len(hash)-6:], pw} {
		if strings.Contains(lower, strings.ToLower(secret)) {
			t.Errorf("request carries %q:\n%s", secret, dump)
		}
	}
}

func TestBreachedServerDown(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close() // nothing listens there now: connection refused

	got, err := NewBreachChecker(url, nil, false).Breached(context.Background(), "P@ssw0rd")
	if got || err != nil {
		t.Fatalf("fail-open: Breached = %v, %v; want false, nil", got, err)
	}
	got, err = NewBreachChecker(url, nil, true).Breached(context.Background(), "P@ssw0rd")
	assertUnavailable(t, got, err, "P@ssw0rd")
}

func TestBreachedBadStatus(t *testing.T) {
	for _, status := range []int{http.StatusInternalServerError, http.StatusServiceUnavailable,
		http.StatusTooManyRequests, http.StatusNotFound, http.StatusBadRequest, http.StatusNoContent} {
		t.Run(http.StatusText(status), func(t *testing.T) {
			const pw = "P@ssw0rd"
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(status)
				// A body that would be a match if it were read as an answer.
				io.WriteString(w, sha1Hex(pw)[5:]+":99\r\n")
			}))
			defer srv.Close()
			got, err := NewBreachChecker(srv.URL, srv.Client(), false).Breached(context.Background(), pw)
			if got || err != nil {
				t.Fatalf("fail-open: Breached = %v, %v; want false, nil", got, err)
			}
			got, err = NewBreachChecker(srv.URL, srv.Client(), true).Breached(context.Background(), pw)
			assertUnavailable(t, got, err, pw)
			if !strings.Contains(err.Error(), fmt.Sprint(status)) {
				t.Errorf("error %q does not name the status", err)
			}
		})
	}
}

// A 200 that is not a range answer (a proxy's or captive portal's page) says
// nothing about the password.
func TestBreachedNotARangeAnswer(t *testing.T) {
	for _, body := range []string{"", "<html><body>Sign in to the Wi-Fi</body></html>", "ok:1\r\n"} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, body)
		}))
		got, err := NewBreachChecker(srv.URL, srv.Client(), true).Breached(context.Background(), "P@ssw0rd")
		assertUnavailable(t, got, err, "P@ssw0rd")
		got, err = NewBreachChecker(srv.URL, srv.Client(), false).Breached(context.Background(), "P@ssw0rd")
		if got || err != nil {
			t.Errorf("fail-open, body %q: Breached = %v, %v; want false, nil", body, got, err)
		}
		srv.Close()
	}
}

func TestBreachedSlowServer(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done(): // the client gave up and closed the connection
		case <-release:
		}
	}))
	defer srv.Close()
	defer close(release) // runs before srv.Close, so no handler outlives the test

	client := &http.Client{Timeout: 100 * time.Millisecond}
	for _, failClosed := range []bool{false, true} {
		start := time.Now()
		got, err := NewBreachChecker(srv.URL, client, failClosed).Breached(context.Background(), "P@ssw0rd")
		if elapsed := time.Since(start); elapsed > 2*time.Second {
			t.Errorf("failClosed=%v: took %v with a 100ms client timeout", failClosed, elapsed)
		}
		if !failClosed {
			if got || err != nil {
				t.Errorf("fail-open: Breached = %v, %v; want false, nil", got, err)
			}
			continue
		}
		assertUnavailable(t, got, err, "P@ssw0rd")
	}

	// The caller's deadline bounds the check as well.
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	got, err := NewBreachChecker(srv.URL, nil, true).Breached(ctx, "P@ssw0rd")
	assertUnavailable(t, got, err, "P@ssw0rd")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("error %v does not wrap context.DeadlineExceeded", err)
	}
}

// countingTransport counts the response body bytes the checker reads.
type countingTransport struct {
	base *http.Transport
	read atomic.Int64
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := c.base.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	resp.Body = &countingBody{ReadCloser: resp.Body, n: &c.read}
	return resp, nil
}

type countingBody struct {
	io.ReadCloser
	n *atomic.Int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n.Add(int64(n))
	return n, err
}

func TestBreachedHugeBody(t *testing.T) {
	const (
		pw       = "P@ssw0rd"
		maxWrite = 64 << 20
	)
	line := []byte("0018A45C4D1DEF81644B54AB7F969B88D65:0\r\n") // a padding line, 39 bytes
	tests := []struct {
		name string
		head string // sent before the endless padding
		want bool   // for both fail modes
	}{
		// The match is in the part read: a certain answer.
		{"match in the first MiB", sha1Hex(pw)[5:] + ":5\r\n", true},
		// No match in the first MiB: it may be in the rest, so unknown.
		{"no match in the first MiB", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			written := make(chan int, 1)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				n, _ := io.WriteString(w, tt.head)
				chunk := bytes.Repeat(line, 1000)
				for n < maxWrite {
					m, err := w.Write(chunk)
					n += m
					if err != nil {
						break // the client hung up
					}
				}
				written <- n
			}))
			defer srv.Close()
			tr := &countingTransport{base: &http.Transport{}}
			defer tr.base.CloseIdleConnections()
			client := &http.Client{Transport: tr, Timeout: 10 * time.Second}

			for _, failClosed := range []bool{true, false} {
				tr.read.Store(0)
				got, err := NewBreachChecker(srv.URL, client, failClosed).Breached(context.Background(), pw)
				if n := tr.read.Load(); n > breachMaxBody+1 {
					t.Errorf("failClosed=%v: read %d body bytes, want at most 1 MiB (+1)", failClosed, n)
				}
				switch {
				case tt.want || !failClosed:
					if got != tt.want || err != nil {
						t.Errorf("failClosed=%v: Breached = %v, %v; want %v, nil", failClosed, got, err, tt.want)
					}
				default:
					assertUnavailable(t, got, err, pw)
				}
				select {
				case n := <-written:
					if n >= maxWrite {
						t.Errorf("server wrote all %d bytes: the client read on after 1 MiB", n)
					}
				case <-time.After(10 * time.Second):
					t.Fatal("server still writing 10s after the check returned")
				}
			}
		})
	}
}

func TestBreachedConcurrent(t *testing.T) {
	f, srv := newFakePwned(t, map[string]int{"P@ssw0rd": 10})
	b := NewBreachChecker(srv.URL, srv.Client(), true)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			pw, want := "P@ssw0rd", true
			if i%2 == 1 {
				pw, want = fmt.Sprintf("xq7#kpzw-%d", i), false
			}
			if got, err := b.Breached(context.Background(), pw); got != want || err != nil {
				t.Errorf("Breached(%q) = %v, %v; want %v, nil", pw, got, err, want)
			}
		})
	}
	wg.Wait()
	if n := len(f.seen()); n != 8 {
		t.Errorf("server saw %d requests, want 8", n)
	}
}

// assertUnavailable checks a fail-closed answer: false, an error wrapping
// ErrBreachCheckUnavailable and a cause, and nothing of the secret in it.
func assertUnavailable(t *testing.T, got bool, err error, pw string) {
	t.Helper()
	if got || !errors.Is(err, ErrBreachCheckUnavailable) {
		t.Fatalf("fail-closed: Breached = %v, %v; want false, ErrBreachCheckUnavailable", got, err)
	}
	if err.Error() == ErrBreachCheckUnavailable.Error() {
		t.Errorf("error %q does not carry the cause", err)
	}
	msg := strings.ToUpper(err.Error())
	for _, secret := range []string{strings.ToUpper(pw), sha1Hex(pw)[5:], sha1Hex(pw)[:6]} {
		if strings.Contains(msg, secret) {
			t.Errorf("error %q contains %q", err, secret)
		}
	}
}
