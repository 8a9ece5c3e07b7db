package twiliofake

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	sid   = "AC0123456789abcdef0123456789abcdef"
	token = "secret-token"
)

func start(t *testing.T) *Server {
	t.Helper()
	s, err := Start(sid, token)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func form(to, from, body string) url.Values {
	return url.Values{"To": {to}, "From": {from}, "Body": {body}}
}

// send posts v to the account's Messages.json as user:pass (no auth when user is empty) and
// returns the status and the decoded JSON.
func send(t *testing.T, s *Server, account, user, pass string, v url.Values) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, s.URL()+"/2010-04-01/Accounts/"+account+"/Messages.json",
		strings.NewReader(v.Encode()))
	if err != nil {
		t.Error(err)
		return 0, nil
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	return do(t, req)
}

// do sends req and decodes its JSON answer. It fails with t.Error, not t.Fatal, so the
// goroutines of the concurrent tests may call it.
func do(t *testing.T, req *http.Request) (int, map[string]any) {
	t.Helper()
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Error(err)
		return 0, nil
	}
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	if err != nil {
		t.Error(err)
		return 0, nil
	}
	if ct := res.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q, body %s", ct, data)
	}
	var out map[string]any
	if err := json.Unmarshal(data, &out); err != nil {
		t.Errorf("%v: %s", err, data)
	}
	return res.StatusCode, out
}

func TestCreateAnswersTwiliosMessageResource(t *testing.T) {
	s := start(t)
	status, got := send(t, s, sid, sid, token, form("+15551234567", "+15005550006", "Your code is 123456"))
	if status != http.StatusCreated {
		t.Fatalf("status %d: %v", status, got)
	}
	msgSID, _ := got["sid"].(string)
	if !regexp.MustCompile(`^SM[0-9a-f]{32}$`).MatchString(msgSID) {
		t.Errorf("sid %q", msgSID)
	}
	want := map[string]any{
		"account_sid": sid, "to": "+15551234567", "from": "+15005550006", "body": "Your code is 123456",
		"status": "queued", "num_segments": "1", "direction": "outbound-api", "api_version": "2010-04-01",
		"price": nil, "error_code": nil, "error_message": nil,
		"uri": "/2010-04-01/Accounts/" + sid + "/Messages/" + msgSID + ".json",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %#v, want %#v", k, got[k], v)
		}
	}
	for _, k := range []string{"date_created", "date_updated"} {
		d, _ := got[k].(string)
		at, err := time.Parse(time.RFC1123Z, d)
		if err != nil || !strings.HasSuffix(d, " +0000") || time.Since(at) > time.Minute {
			t.Errorf("%s = %q (%v), want RFC 2822 in GMT, now", k, d, err)
		}
	}
	ms := s.Messages()
	if len(ms) != 1 || ms[0].SID != msgSID || ms[0].AccountSID != sid || ms[0].To != "+15551234567" ||
		ms[0].From != "+15005550006" || ms[0].Body != "Your code is 123456" ||
		ms[0].DateCreated.Format(time.RFC1123Z) != got["date_created"] {
		t.Errorf("Messages() = %+v", ms)
	}
	if s.Requests() != 1 {
		t.Errorf("Requests() = %d", s.Requests())
	}
}

func TestCreateAnswersTwiliosErrors(t *testing.T) {
	s := start(t)
	ok := form("+15551234567", "+15005550006", "hi")
	with := func(k, v string) url.Values {
		f := form(ok.Get("To"), ok.Get("From"), ok.Get("Body"))
		f.Set(k, v)
		return f
	}
	other := "AC" + strings.Repeat("f", 32)
	for _, c := range []struct {
		name          string
		account, user string
		pass          string
		form          url.Values
		status, code  int
	}{
		{"no auth", sid, "", "", ok, 401, 20003},
		{"wrong token", sid, sid, "nope", ok, 401, 20003},
		{"wrong user", sid, other, token, ok, 401, 20003},
		{"another account", other, sid, token, ok, 404, 20404},
		{"no To", sid, sid, token, with("To", ""), 400, 21604},
		{"no Body", sid, sid, token, with("Body", ""), 400, 21602},
		{"no From", sid, sid, token, with("From", ""), 400, 21603},
		{"To without +", sid, sid, token, with("To", "15551234567"), 400, 21211},
		{"To too short", sid, sid, token, with("To", "+123456"), 400, 21211},
		{"To too long", sid, sid, token, with("To", "+1234567890123456"), 400, 21211},
		{"To with 0 country", sid, sid, token, with("To", "+05551234567"), 400, 21211},
		{"To with letters", sid, sid, token, with("To", "+1555CALLNOW"), 400, 21211},
		{"Body over 1600", sid, sid, token, with("Body", strings.Repeat("é", 1601)), 400, 21617},
	} {
		t.Run(c.name, func(t *testing.T) {
			status, got := send(t, s, c.account, c.user, c.pass, c.form)
			wantErr(t, status, got, c.status, c.code)
		})
	}
	if status, _ := send(t, s, sid, sid, token, with("Body", strings.Repeat("é", 1600))); status != 201 {
		t.Errorf("1600 characters: %d, want 201", status)
	}
	req, _ := http.NewRequest(http.MethodGet, s.URL()+"/2010-04-01/Accounts/"+sid+"/Messages.json", nil)
	req.SetBasicAuth(sid, token)
	status, got := do(t, req)
	wantErr(t, status, got, 405, 20004)
	if n := len(s.Messages()); n != 1 {
		t.Errorf("%d messages accepted, want 1", n)
	}
	if n := s.Requests(); n != 14 { // the GET is no POST
		t.Errorf("Requests() = %d, want 14", n)
	}
}

func wantErr(t *testing.T, status int, got map[string]any, wantStatus, wantCode int) {
	t.Helper()
	if status != wantStatus || got["code"] != float64(wantCode) || got["status"] != float64(wantStatus) ||
		got["more_info"] != fmt.Sprintf("https://www.twilio.com/docs/errors/%d", wantCode) ||
		got["message"] == "" || got["message"] == nil || len(got) != 4 {
		t.Errorf("got %d %v, want %d with code %d", status, got, wantStatus, wantCode)
	}
}

func TestFailNext(t *testing.T) {
	s := start(t)
	s.FailNext(2, http.StatusTooManyRequests, 20429)
	f := form("+15551234567", "+15005550006", "hi")
	for range 2 {
		status, got := send(t, s, sid, sid, token, f)
		wantErr(t, status, got, 429, 20429)
		if got["message"] != "Too Many Requests" {
			t.Errorf("message %q", got["message"])
		}
	}
	if status, _ := send(t, s, sid, sid, token, f); status != 201 {
		t.Errorf("third: %d, want 201", status)
	}
	s.FailNext(1, http.StatusInternalServerError, 20500)
	status, got := send(t, s, sid, sid, token, f)
	wantErr(t, status, got, 500, 20500)
	if n := len(s.Messages()); n != 1 {
		t.Errorf("%d messages accepted, want 1", n)
	}
	if n := s.Requests(); n != 4 {
		t.Errorf("Requests() = %d, want 4", n)
	}
}

func TestWaitMessages(t *testing.T) {
	s := start(t)
	const to = "+15551234567"
	go func() {
		for i := range 3 {
			time.Sleep(20 * time.Millisecond)
			send(t, s, sid, sid, token, form("+15559999999", "+15005550006", "other"))
			send(t, s, sid, sid, token, form(to, "+15005550006", fmt.Sprint("code ", i)))
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	got, err := s.WaitMessages(ctx, to, 3)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[0].Body != "code 0" || got[2].Body != "code 2" {
		t.Errorf("got %+v", got)
	}

	short, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	got, err = s.WaitMessages(short, to, 4)
	if !errors.Is(err, context.DeadlineExceeded) || len(got) != 3 {
		t.Errorf("got %d messages, %v; want 3 and the deadline", len(got), err)
	}
}

func TestConcurrentPosts(t *testing.T) {
	s := start(t)
	const n = 50
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			status, got := send(t, s, sid, sid, token, form(fmt.Sprintf("+1555000%04d", i), "+15005550006", "hi"))
			if status != 201 {
				t.Errorf("status %d: %v", status, got)
			}
			_ = s.Messages()
			_ = s.Requests()
		})
	}
	wg.Wait()
	ms := s.Messages()
	sids := map[string]bool{}
	for _, m := range ms {
		sids[m.SID] = true
	}
	if len(ms) != n || len(sids) != n || s.Requests() != n {
		t.Errorf("%d messages, %d sids, %d requests; want %d", len(ms), len(sids), s.Requests(), n)
	}
}

func TestKeepsTheNewest1000(t *testing.T) {
	s := start(t)
	for i := range maxMessages + 5 {
		if status, got := send(t, s, sid, sid, token, form("+15551234567", "+15005550006", fmt.Sprint(i))); status != 201 {
			t.Fatalf("status %d: %v", status, got)
		}
	}
	ms := s.Messages()
	if len(ms) != maxMessages || ms[0].Body != "5" || ms[len(ms)-1].Body != fmt.Sprint(maxMessages+4) {
		t.Errorf("%d messages, %q..%q", len(ms), ms[0].Body, ms[len(ms)-1].Body)
	}
}

func TestReads(t *testing.T) {
	s := start(t)
	send(t, s, sid, sid, token, form("+15551111111", "+15005550006", "first"))
	send(t, s, sid, sid, token, form("+15552222222", "+15005550006", "<b>second</b> & more"))

	req, _ := http.NewRequest(http.MethodGet, s.URL()+"/api/messages", nil)
	status, got := do(t, req)
	list, _ := got["messages"].([]any)
	if status != 200 || len(list) != 2 {
		t.Fatalf("%d %v", status, got)
	}
	newest, _ := list[0].(map[string]any)
	if newest["to"] != "+15552222222" || newest["body"] != "<b>second</b> & more" ||
		newest["from"] != "+15005550006" || newest["sid"] != s.Messages()[1].SID || newest["date_created"] == nil {
		t.Errorf("newest %v", newest)
	}

	res, err := http.Get(s.URL() + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	page, _ := io.ReadAll(res.Body)
	html := string(page)
	if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("%d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	if strings.Contains(html, "<b>second") || !strings.Contains(html, "&lt;b&gt;second&lt;/b&gt; &amp; more") {
		t.Errorf("the body is not escaped:\n%s", html)
	}
	if i, j := strings.Index(html, "15552222222"), strings.Index(html, "15551111111"); i < 0 || j < i {
		t.Errorf("not newest first:\n%s", html)
	}

	req, _ = http.NewRequest(http.MethodGet, s.URL()+"/nothing", nil)
	status, got = do(t, req)
	wantErr(t, status, got, 404, 20404)
}

func TestListenNeedsCredentials(t *testing.T) {
	if _, err := Start(sid, ""); err == nil {
		t.Error("no error without a token")
	}
}
