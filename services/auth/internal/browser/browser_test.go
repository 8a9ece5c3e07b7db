package browser

import (
	"net/http"
	"testing"

	"github.com/talentforge/auth/pkg/redirect"
)

func TestReturnToAndGatewayAdmitOurHostsOnly(t *testing.T) {
	allow, err := redirect.Parse([]string{"https://app.example.com/welcome"})
	if err != nil {
		t.Fatal(err)
	}
	p := Policy{PublicURL: "https://auth.corp.test", CookieDomain: "corp.test", Allowlist: allow}
	for raw, want := range map[string]string{
		"/ui/account?x=1":                          "https://auth.corp.test/ui/account?x=1",
		"https://auth.corp.test/anything":          "https://auth.corp.test/anything",
		"https://wiki.corp.test/page":              "https://wiki.corp.test/page",
		"https://corp.test/":                       "https://corp.test/",
		"https://app.example.com/welcome/x":        "https://app.example.com/welcome/x",
		"http://wiki.corp.test/page":               "", // the cookie is Secure: https only
		"https://corp.test.evil.test/":             "",
		"https://evilcorp.test/":                   "",
		"https://app.example.com/other":            "",
		"https://user@wiki.corp.test/":             "",
		"//evil.test/":                             "",
		"/\\evil.test":                             "",
		"javascript:alert(1)":                      "",
		"https://wiki.corp.test/a b":               "",
		"https://app.example.com/welcome/../admin": "",
		"": "",
	} {
		if got := p.ReturnTo(raw); got != want {
			t.Errorf("ReturnTo(%q) = %q, want %q", raw, got, want)
		}
	}
	// The gateway sends browsers back only to hosts the cookie reaches.
	if p.Gateway("https://app.example.com/welcome") || !p.Gateway("https://wiki.corp.test/x") || p.Gateway("http://wiki.corp.test/x") {
		t.Error("Gateway admits the wrong hosts")
	}
	hostOnly := Policy{PublicURL: "http://localhost:8081"}
	if !hostOnly.Gateway("http://localhost:8081/private") || hostOnly.Gateway("http://localhost:9999/") || hostOnly.SessionName() != "__Host-session" {
		t.Error("host-only policy")
	}
	if p.SessionName() != "__Secure-session" {
		t.Error(p.SessionName())
	}
}

func TestForwardedIsTheURLTheGatewayWasAskedFor(t *testing.T) {
	r, _ := http.NewRequest(http.MethodGet, "/v1/auth/verify", nil)
	if Forwarded(r) != "" {
		t.Fatal("no headers, yet a URL")
	}
	r.Header.Set("X-Forwarded-Proto", "https")
	r.Header.Set("X-Forwarded-Host", "app.corp.test")
	r.Header.Set("X-Forwarded-Uri", "/a?b=1")
	if got := Forwarded(r); got != "https://app.corp.test/a?b=1" {
		t.Fatal(got)
	}
	r.Header.Set("X-Forwarded-Proto", "javascript")
	if Forwarded(r) != "" {
		t.Fatal("a scheme other than http(s)")
	}
}
