// Package webhook is what our outgoing HTTP calls to other people's endpoints share: the
// Standard Webhooks secrets and signatures (standardwebhooks.com, through its official
// Go library), and the SSRF policy of the URLs we call: https only, public addresses
// only, the address checked when connecting, no redirects. auth checks an endpoint's
// URL when an admin adds it; the token-worker delivers through Policy.Client; the
// access-token hook signs its calls the same way.
package webhook

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

// The headers of a signed call (Standard Webhooks).
const (
	HeaderID        = standardwebhooks.HeaderWebhookID
	HeaderTimestamp = standardwebhooks.HeaderWebhookTimestamp
	HeaderSignature = standardwebhooks.HeaderWebhookSignature
)

const secretPrefix = "whsec_"

// ErrInvalidSecret: not "whsec_" + base64 of at least 24 bytes.
var ErrInvalidSecret = errors.New("webhook: a secret is whsec_ followed by the base64 of 24 to 64 random bytes")

// NewSecret returns a new signing secret: "whsec_" + base64 of 32 bytes from the CSPRNG.
func NewSecret() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return secretPrefix + base64.StdEncoding.EncodeToString(b)
}

// CheckSecret reports whether s is a secret NewSecret could have made (or an operator's
// of 24 to 64 bytes).
func CheckSecret(s string) error {
	raw, ok := strings.CutPrefix(s, secretPrefix)
	if !ok {
		return ErrInvalidSecret
	}
	b, err := base64.StdEncoding.DecodeString(raw)
	if err != nil || len(b) < 24 || len(b) > 64 {
		return ErrInvalidSecret
	}
	return nil
}

// Sign returns the webhook-signature header of body sent as message id at ts: one
// "v1,<base64>" per secret, space-separated (during a rotation both the new and the old
// secret sign, so a receiver that knows either accepts).
func Sign(secrets []string, id string, ts time.Time, body []byte) (string, error) {
	sigs := make([]string, 0, len(secrets))
	for _, s := range secrets {
		if err := CheckSecret(s); err != nil {
			return "", err
		}
		wh, err := standardwebhooks.NewWebhook(s)
		if err != nil {
			return "", ErrInvalidSecret
		}
		sig, err := wh.Sign(id, ts, body)
		if err != nil {
			return "", fmt.Errorf("webhook: sign: %w", err)
		}
		sigs = append(sigs, sig)
	}
	if len(sigs) == 0 {
		return "", ErrInvalidSecret
	}
	return strings.Join(sigs, " "), nil
}

// SetHeaders sets the three signature headers (and the JSON content type) on h.
func SetHeaders(h http.Header, id string, ts time.Time, signature string) {
	h.Set("Content-Type", "application/json")
	h.Set(HeaderID, id)
	h.Set(HeaderTimestamp, strconv.FormatInt(ts.Unix(), 10))
	h.Set(HeaderSignature, signature)
}

// ErrInvalidURL is why a URL may not be called; errors.Is finds it in Policy's errors.
var ErrInvalidURL = errors.New("webhook: URL refused")

// Policy is which URLs may be called. The zero Policy is production's: https only, to
// public addresses only.
type Policy struct {
	// AllowPrivate (WEBHOOK_ALLOW_PRIVATE_NETWORKS) admits http:// and loopback, private,
	// link-local and metadata addresses: tests and private deployments.
	AllowPrivate bool
	// Resolver resolves host names (nil: net.DefaultResolver).
	Resolver *net.Resolver
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidURL, fmt.Sprintf(format, args...))
}

// ParseURL checks the form of raw: an absolute https (or, with AllowPrivate, http) URL
// with a host, no user info, no fragment, at most 2,048 bytes. It does not resolve.
func (p Policy) ParseURL(raw string) (*url.URL, error) {
	if len(raw) > 2048 {
		return nil, invalid("longer than 2048 bytes")
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.Hostname() == "" {
		return nil, invalid("not an absolute URL")
	}
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && p.AllowPrivate:
	case u.Scheme == "http":
		return nil, invalid("http:// is allowed only with WEBHOOK_ALLOW_PRIVATE_NETWORKS=true; use https://")
	default:
		return nil, invalid("the scheme must be https")
	}
	if u.User != nil {
		return nil, invalid("user info is not allowed")
	}
	if u.Fragment != "" || strings.Contains(raw, "#") {
		return nil, invalid("a fragment is not allowed")
	}
	return u, nil
}

// CheckURL is ParseURL, then the host resolved: every address it resolves to must be
// allowed (a name that resolves to one private address is refused outright). A name
// that does not resolve now is accepted (its DNS may come later, or this network may
// not see it): every connection checks again, which is what keeps calls safe.
func (p Policy) CheckURL(ctx context.Context, raw string) (*url.URL, error) {
	u, err := p.ParseURL(raw)
	if err != nil {
		return nil, err
	}
	host := strings.ToLower(strings.TrimSuffix(u.Hostname(), "."))
	if !p.AllowPrivate && (host == "localhost" || strings.HasSuffix(host, ".localhost")) {
		return nil, invalid("localhost is loopback (WEBHOOK_ALLOW_PRIVATE_NETWORKS)")
	}
	if _, err := p.resolve(ctx, u.Hostname()); err != nil && !errors.Is(err, ErrNoAddress) {
		return nil, err
	}
	return u, nil
}

// ErrNoAddress: the host has no address (now); wrapped with ErrInvalidURL.
var ErrNoAddress = errors.New("the host does not resolve")

// resolve returns the allowed addresses of host, or an error if it has none or any of
// them is refused.
func (p Policy) resolve(ctx context.Context, host string) ([]netip.Addr, error) {
	var addrs []netip.Addr
	if a, err := netip.ParseAddr(host); err == nil {
		addrs = []netip.Addr{a}
	} else {
		r := p.Resolver
		if r == nil {
			r = net.DefaultResolver
		}
		if addrs, err = r.LookupNetIP(ctx, "ip", host); err != nil || len(addrs) == 0 {
			return nil, fmt.Errorf("%w: %w", ErrInvalidURL, ErrNoAddress)
		}
	}
	for i, a := range addrs {
		a = a.Unmap()
		if !p.allowed(a) {
			return nil, invalid("the host resolves to a loopback, private, link-local, metadata or reserved address (WEBHOOK_ALLOW_PRIVATE_NETWORKS allows all but metadata)")
		}
		addrs[i] = a
	}
	return addrs, nil
}

// reserved are the ranges netip's predicates miss: shared address space (CGNAT), the
// IETF and benchmarking blocks, documentation, 6to4 relays, "this network", and the
// future-use block and broadcast.
var reserved = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("100.64.0.0/10"),
	netip.MustParsePrefix("192.0.0.0/24"),
	netip.MustParsePrefix("192.0.2.0/24"),
	netip.MustParsePrefix("192.88.99.0/24"),
	netip.MustParsePrefix("198.18.0.0/15"),
	netip.MustParsePrefix("198.51.100.0/24"),
	netip.MustParsePrefix("203.0.113.0/24"),
	netip.MustParsePrefix("240.0.0.0/4"),
	netip.MustParsePrefix("64:ff9b::/96"), // NAT64 can reach any IPv4, private included
	netip.MustParsePrefix("64:ff9b:1::/48"),
	netip.MustParsePrefix("2001:db8::/32"),
	netip.MustParsePrefix("2002::/16"), // 6to4 embeds an IPv4
	netip.MustParsePrefix("100::/64"),
}

// metadata are the cloud instance-metadata services (AWS, GCP, Azure, OpenStack at
// 169.254.169.254, AWS over IPv6, ECS task credentials, Alibaba): refused even with
// AllowPrivate, since no receiver lives there and they hand out credentials.
var metadata = []netip.Addr{
	netip.MustParseAddr("169.254.169.254"),
	netip.MustParseAddr("fd00:ec2::254"),
	netip.MustParseAddr("169.254.170.2"),
	netip.MustParseAddr("100.100.100.200"),
}

// allowed reports whether a may be connected to: never a metadata service; with
// AllowPrivate any other address; else only a global unicast address outside every
// private and reserved range.
func (p Policy) allowed(a netip.Addr) bool {
	if slices.Contains(metadata, a) {
		return false
	}
	if p.AllowPrivate {
		return a.IsValid()
	}
	if !a.IsGlobalUnicast() || a.IsPrivate() || a.IsLoopback() || a.IsLinkLocalUnicast() {
		return false
	}
	for _, r := range reserved {
		if r.Contains(a) {
			return false
		}
	}
	return true
}

// Client returns an HTTP client for calls under the policy: each connection resolves
// the host once, refuses it if any address is not allowed, and dials the checked
// address itself (so a second lookup cannot answer differently); redirects are
// answered, not followed; no proxy from the environment; timeout bounds the whole call.
func (p Policy) Client(timeout time.Duration) *http.Client {
	dialer := &net.Dialer{Timeout: timeout}
	tr := &http.Transport{
		Proxy: nil,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			host, port, err := net.SplitHostPort(addr)
			if err != nil {
				return nil, err
			}
			addrs, err := p.resolve(ctx, host)
			if err != nil {
				return nil, err
			}
			var last error
			for _, a := range addrs {
				c, err := dialer.DialContext(ctx, network, net.JoinHostPort(a.String(), port))
				if err == nil {
					return c, nil
				}
				last = err
			}
			return nil, last
		},
		ForceAttemptHTTP2:     true,
		MaxIdleConnsPerHost:   4,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   timeout,
		ResponseHeaderTimeout: timeout,
	}
	return &http.Client{
		Transport:     tr,
		Timeout:       timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}
