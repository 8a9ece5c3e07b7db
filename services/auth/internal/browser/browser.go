// Package browser is what a browser holds of the hosted UI and where it may be sent: the
// session cookie (an opaque reference to a session, never a token: session.BindBrowser),
// the UI's other cookies, and the return_to policy shared by the login page and the
// gateway's redirect to it.
package browser

import (
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/talentforge/auth/pkg/redirect"
)

// Cookie names. A host-only cookie is __Host- (Secure, Path=/, no Domain: no other host
// can set or read it); the session cookie carries a Domain when SESSION_COOKIE_DOMAIN is
// set, so that the gateway sees it on every host under it, and is then __Secure-.
const (
	hostSession   = "__Host-session"
	domainSession = "__Secure-session"
	CSRFCookie    = "__Host-csrf"
	MFACookie     = "__Host-mfa"
)

// Policy is the deployment's browser rules.
type Policy struct {
	// PublicURL is the auth service's public base (PUBLIC_URL): the UI lives at
	// PublicURL + "/ui".
	PublicURL string
	// CookieDomain is SESSION_COOKIE_DOMAIN: empty for a host-only session cookie.
	CookieDomain string
	// Allowlist is where a return_to may point besides our hosts (OAUTH_REDIRECT_ALLOWLIST,
	// judged as the oauth service judges a redirect_to).
	Allowlist redirect.Allowlist
	// MaxAge is the session cookie's lifetime (SESSION_MAX_AGE); the session behind it is
	// checked on every request whatever the cookie says.
	MaxAge time.Duration
}

// SessionName is the session cookie's name under p.
func (p Policy) SessionName() string {
	if p.CookieDomain != "" {
		return domainSession
	}
	return hostSession
}

// Session returns the request's session reference: the cookie of p's name only, so that
// a cookie planted under the other name by a sibling host is never read.
func (p Policy) Session(r *http.Request) string {
	c, err := r.Cookie(p.SessionName())
	if err != nil {
		return ""
	}
	return c.Value
}

// SetSession sets the session cookie to ref.
func (p Policy) SetSession(w http.ResponseWriter, ref string) {
	http.SetCookie(w, &http.Cookie{Name: p.SessionName(), Value: ref, Path: "/", Domain: p.CookieDomain,
		MaxAge: int(p.MaxAge / time.Second), Secure: true, HttpOnly: true, SameSite: http.SameSiteLaxMode})
}

// ClearSession removes the session cookie.
func (p Policy) ClearSession(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{Name: p.SessionName(), Value: "", Path: "/", Domain: p.CookieDomain,
		MaxAge: -1, Secure: true, HttpOnly: true, SameSite: http.SameSiteLaxMode})
}

// SetHostCookie sets a host-only __Host- cookie (CSRFCookie, MFACookie); maxAge 0 ends
// with the browser session, < 0 deletes it.
func SetHostCookie(w http.ResponseWriter, name, value string, maxAge time.Duration) {
	age := int(maxAge / time.Second)
	if maxAge < 0 {
		age = -1
	}
	http.SetCookie(w, &http.Cookie{Name: name, Value: value, Path: "/", MaxAge: age,
		Secure: true, HttpOnly: true, SameSite: http.SameSiteLaxMode})
}

// ReturnTo returns raw as the place to send the browser after sign-in, when it is one of
// ours: a path of this service (not //host or /\host), an http(s) URL starting with an
// allowlisted prefix, PUBLIC_URL's origin, or an https URL on a host equal to or under
// the cookie domain (the hosts the gateway protects with the session cookie). Else "".
func (p Policy) ReturnTo(raw string) string {
	if raw == "" || len(raw) > 2048 || strings.ContainsAny(raw, "\\\x00\r\n\t ") {
		return ""
	}
	if strings.HasPrefix(raw, "/") {
		if strings.HasPrefix(raw, "//") {
			return ""
		}
		u, err := url.Parse(raw)
		if err != nil || u.Host != "" || u.Scheme != "" {
			return ""
		}
		return p.PublicURL + u.RequestURI()
	}
	u, err := url.Parse(raw)
	if err != nil || u.User != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return ""
	}
	s := u.String()
	if p.Allowlist.Allows(s) || origin(u) == p.origin() || p.Gateway(s) {
		return s
	}
	return ""
}

// Origin is PUBLIC_URL's origin: the only one the UI's forms may be posted from.
func (p Policy) Origin() string { return p.origin() }

func (p Policy) origin() string {
	u, err := url.Parse(p.PublicURL)
	if err != nil {
		return ""
	}
	return origin(u)
}

func origin(u *url.URL) string { return strings.ToLower(u.Scheme + "://" + u.Host) }

// OriginOf is the origin of an absolute URL ("" for a path).
func OriginOf(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return ""
	}
	return origin(u)
}

// LoginURL is the hosted UI's sign-in page that sends the browser back to returnTo.
func (p Policy) LoginURL(returnTo string) string {
	if returnTo == "" {
		return p.PublicURL + "/ui/login"
	}
	return p.PublicURL + "/ui/login?return_to=" + url.QueryEscape(returnTo)
}

// WantsHTML reports whether the request is a browser navigation (it accepts text/html),
// not an API client: only those are sent to the sign-in page.
func WantsHTML(r *http.Request) bool {
	return strings.Contains(r.Header.Get("Accept"), "text/html")
}

// Forwarded is the URL the gateway was asked for, from Traefik's ForwardAuth headers
// (X-Forwarded-Proto, -Host, -Uri); "" when they are missing.
func Forwarded(r *http.Request) string {
	proto, host, uri := r.Header.Get("X-Forwarded-Proto"), r.Header.Get("X-Forwarded-Host"), r.Header.Get("X-Forwarded-Uri")
	if host == "" || (proto != "http" && proto != "https") {
		return ""
	}
	if uri == "" || uri[0] != '/' {
		uri = "/" + uri
	}
	return proto + "://" + host + uri
}

// Gateway reports whether the gateway may send a browser that asked for raw to sign in
// and back: an https URL on a host equal to or under the cookie domain, the hosts the
// session cookie reaches (without a cookie domain, PUBLIC_URL's origin only).
func (p Policy) Gateway(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil || u.User != nil || u.Host == "" {
		return false
	}
	host := strings.ToLower(u.Hostname())
	if d := p.CookieDomain; d != "" {
		return u.Scheme == "https" && (host == d || strings.HasSuffix(host, "."+d))
	}
	return origin(u) == p.origin()
}
