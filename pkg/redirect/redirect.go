// Package redirect is the one check of where a browser may be sent back to after a
// sign-in: the oauth service's redirect_to and the hosted UI's return_to, against
// OAUTH_REDIRECT_ALLOWLIST.
package redirect

import (
	"fmt"
	"net/url"
	"path"
	"strings"
)

// Allowlist is the parsed OAUTH_REDIRECT_ALLOWLIST.
type Allowlist []*url.URL

// Parse reads the entries, each an absolute http(s) URL without user info.
func Parse(entries []string) (Allowlist, error) {
	var a Allowlist
	for _, raw := range entries {
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
			return nil, fmt.Errorf("OAUTH_REDIRECT_ALLOWLIST: %q is not an absolute http(s) URL", raw)
		}
		a = append(a, u)
	}
	return a, nil
}

// Allows accepts a URL only when it is an absolute http(s) URL without
// user info or fragment, its scheme and host (with port) equal an allowlist entry's,
// and its path is already clean and starts with the entry's path at a segment boundary.
//
// The path is judged as the browser will read it: percent-decoded, it may hold no
// "." or ".." segment (browsers resolve "%2e%2e" like ".."), no empty segment, no
// encoded "/" or "\" and no "%" left over (double encoding such as "%252e"), and
// resolving dot segments must leave it unchanged. The comparison with the entry is
// made on that decoded, clean path.
func (a Allowlist) Allows(raw string) bool {
	if raw == "" || len(raw) > 2048 || strings.ContainsFunc(raw, func(r rune) bool {
		return r <= ' ' || r == 0x7f || r == '\\' || r == '#'
	}) {
		return false
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.User != nil || u.Host == "" ||
		u.Opaque != "" || u.Fragment != "" || strings.Contains(u.Host, "%") {
		return false
	}
	p, ok := cleanPath(u)
	if !ok {
		return false
	}
	for _, e := range a {
		if u.Scheme != e.Scheme || !strings.EqualFold(u.Host, e.Host) {
			continue
		}
		prefix := strings.TrimSuffix(e.Path, "/")
		if prefix == "" || p == prefix || strings.HasPrefix(p, prefix+"/") {
			return true
		}
	}
	return false
}

// cleanPath returns u's percent-decoded path ("/" when empty), or false when the path
// holds a dot segment, an empty segment (a trailing "/" aside), an encoded slash or
// backslash, a leftover "%" (double encoding) or a control character.
func cleanPath(u *url.URL) (string, bool) {
	escaped := strings.ToLower(u.EscapedPath())
	if strings.Contains(escaped, "%2f") || strings.Contains(escaped, "%5c") || strings.Contains(escaped, "%25") {
		return "", false
	}
	p := u.Path // url.Parse has percent-decoded it once
	if p == "" {
		p = "/"
	}
	if !strings.HasPrefix(p, "/") || strings.ContainsFunc(p, func(r rune) bool {
		return r < ' ' || r == 0x7f || r == '\\' || r == '%'
	}) {
		return "", false
	}
	segs := strings.Split(strings.TrimSuffix(p[1:], "/"), "/")
	for i, seg := range segs {
		if seg == "." || seg == ".." || (seg == "" && !(i == 0 && len(segs) == 1)) {
			return "", false
		}
	}
	// Belt and braces: resolving dot segments changes nothing.
	if c := path.Clean(p); c != strings.TrimSuffix(p, "/") && c != p {
		return "", false
	}
	return p, true
}
