package local

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"
)

const (
	// mailpitBuildTimeout bounds Mailpit's first build (minutes: Go and npm), which the
	// run's own bound must not count.
	mailpitBuildTimeout = 15 * time.Minute
	mailTimeout         = 60 * time.Second
)

// MailpitBinary builds Mailpit once (scripts/mailpit.sh, whose progress goes to stderr)
// and returns its path.
func MailpitBinary(ctx context.Context, root string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, mailpitBuildTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", filepath.Join(root, "scripts", "mailpit.sh"), "path")
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("scripts/mailpit.sh path: %v", err)
	}
	return strings.TrimSpace(string(out)), nil
}

// StartMailpit starts the Mailpit at path on the ports Prepare reserved, SMTP taking any
// login (the services' SMTP settings need none), and waits for its API.
func (s *Stack) StartMailpit(ctx context.Context, path string) error {
	s.Suspects = []string{"mailpit"}
	api := strings.TrimPrefix(s.MailURL, "http://")
	if err := s.spawn("mailpit", s.Env, path,
		"--smtp", fmt.Sprintf("127.0.0.1:%d", s.smtpPort), "--listen", api,
		"--smtp-auth-accept-any", "--smtp-auth-allow-insecure", "--disable-version-check"); err != nil {
		return err
	}
	return s.waitReady(ctx, "mailpit", s.MailURL+"/api/v1/messages")
}

// link is a URL in an email's text part.
var link = regexp.MustCompile(`https?://[^\s"'<>]+`)

// WaitLink polls Mailpit's API (GET /api/v1/messages, GET /api/v1/message/{ID}) for up
// to a minute, until an email to rcpt holds a link containing marker, and returns what
// follows marker in it up to an &, unescaped: the token of a verification or reset link.
func (s *Stack) WaitLink(ctx context.Context, rcpt, marker string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, mailTimeout)
	defer cancel()
	type address struct {
		Address string `json:"Address"`
	}
	isRcpt := func(a address) bool { return strings.EqualFold(a.Address, rcpt) }
	seen := map[string]bool{}
	for {
		var list struct {
			Messages []struct {
				ID string    `json:"ID"`
				To []address `json:"To"`
			} `json:"messages"`
		}
		if err := s.mailpit(ctx, "/api/v1/messages", &list); err == nil {
			for _, m := range list.Messages {
				if seen[m.ID] || !slices.ContainsFunc(m.To, isRcpt) {
					continue
				}
				var msg struct {
					Subject string `json:"Subject"`
					Text    string `json:"Text"`
				}
				if err := s.mailpit(ctx, "/api/v1/message/"+url.PathEscape(m.ID), &msg); err != nil {
					continue
				}
				seen[m.ID] = true
				for _, l := range link.FindAllString(msg.Text, -1) {
					i := strings.Index(l, marker)
					if i < 0 {
						continue
					}
					raw, _, _ := strings.Cut(l[i+len(marker):], "&")
					if raw == "" {
						continue
					}
					tok, err := url.QueryUnescape(raw)
					if err != nil {
						return "", fmt.Errorf("link in %q: %v", msg.Subject, err)
					}
					return tok, nil
				}
			}
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("no email to %s with a link holding %s in %s (%d messages to it seen): %v",
				rcpt, marker, mailTimeout, len(seen), context.Cause(ctx))
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// mailpit GETs path of Mailpit's API into out.
func (s *Stack) mailpit(ctx context.Context, path string, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.MailURL+path, nil)
	if err != nil {
		return err
	}
	res, err := client.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %d", path, res.StatusCode)
	}
	return json.NewDecoder(res.Body).Decode(out)
}
