package httpx

import "strings"

// Bearer returns the token of an "Authorization: Bearer <token>" header (the scheme in
// any case, RFC 9110), or false.
func Bearer(header string) (string, bool) {
	const prefix = "bearer "
	if len(header) <= len(prefix) || !strings.EqualFold(header[:len(prefix)], prefix) {
		return "", false
	}
	tok := strings.TrimSpace(header[len(prefix):])
	return tok, tok != ""
}
