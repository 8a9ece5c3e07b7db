package webhooks

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"strings"
	"syscall"
	"time"

	"github.com/talentforge/auth/pkg/webhook"
)

// reasonPolicy is the reason of a call the SSRF policy refused (webhook.Policy): the URL
// is not https (without WEBHOOK_ALLOW_PRIVATE_NETWORKS), or its host resolves to a
// loopback, private, link-local or metadata address. Nothing was sent.
const reasonPolicy = "refused by the address policy"

// reason is the short, fixed description of a failed call kept in last_error and shown
// to admins: never the error's own text, which may quote the URL (and a secret in its
// query) or what the endpoint answered.
func reason(err error, timeout time.Duration) string {
	var (
		ne      net.Error
		dnsErr  *net.DNSError
		certErr *tls.CertificateVerificationError
		unknown x509.UnknownAuthorityError
		host    x509.HostnameError
		invalid x509.CertificateInvalidError
		record  tls.RecordHeaderError
	)
	switch {
	case errors.Is(err, webhook.ErrNoAddress):
		return "the host does not resolve"
	case errors.Is(err, webhook.ErrInvalidURL):
		return reasonPolicy
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return fmt.Sprintf("timeout after %s", timeout)
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return "connection reset"
	case errors.As(err, &dnsErr):
		return "the host does not resolve"
	case errors.As(err, &certErr), errors.As(err, &unknown), errors.As(err, &host), errors.As(err, &invalid):
		return "TLS certificate not trusted"
	case errors.As(err, &record), strings.Contains(err.Error(), "server gave HTTP response to HTTPS client"):
		return "TLS handshake failed (the endpoint answers plain HTTP)"
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return "host unreachable"
	}
	return "connection failed"
}
