package session

import (
	"context"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"
)

// A browser reference is what the hosted UI's session cookie holds: "bs_" +
// base64url(uid || sid || secret), like a refresh token but only ever accepted by
// Browser, which no API route calls but ForwardAuth's. It rotates nothing and mints
// nothing: the session it names is checked on every request, so ending the session
// ends the cookie. Only SHA-256(secret) is kept, in the session's hash (field "bc").
const browserPrefix = "bs_"

var browserLen = len(browserPrefix) + tokenEncoding.EncodedLen(rawTokenLen)

// bindBrowserScript sets the browser reference of a live session. KEYS: hash.
// ARGV: sha(secret).
var bindBrowserScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'bc', ARGV[1])
return 1
`)

// BindBrowser gives the live session a browser reference and returns it; a session
// has at most one (binding again replaces it). ErrNotFound when the session is gone.
func (s *Store) BindBrowser(ctx context.Context, userID, sessionID string) (string, error) {
	uid, err1 := uuid.Parse(userID)
	sid, err2 := uuid.Parse(sessionID)
	if err1 != nil || err2 != nil {
		return "", ErrNotFound
	}
	tok := newToken(uid, sid)
	_, key, _ := keys(uid, sid)
	n, err := bindBrowserScript.Run(ctx, s.rdb, []string{key}, hashSecret(tok.secret)).Int()
	if err != nil {
		return "", fmt.Errorf("session: bind browser: %w", err)
	}
	if n == 0 {
		return "", ErrNotFound
	}
	return browserPrefix + strings.TrimPrefix(tok.String(), tokenPrefix), nil
}

// browserFieldArgs are LiveWith's fields and the browser reference's hash.
var browserFieldArgs = anys(append(append([]string(nil), liveFields...), "bc"))

// Browser is LiveWith for a browser reference: the session it names, when live and
// bound to that reference, plus a GET of the caller's key (UserKey) in the same round
// trip. ErrNotFound for anything else, malformed references included.
func (s *Store) Browser(ctx context.Context, ref, key string) (Session, *redis.StringCmd, error) {
	tok, err := parseBrowserRef(ref)
	if err != nil {
		return Session{}, nil, ErrNotFound
	}
	uid, sid := tok.userID.String(), tok.sessionID.String()
	v, extra, err := s.readWith(ctx, hmget(ctx, sessionPrefix(uid)+sid, browserFieldArgs), key)
	if err != nil {
		return Session{}, extra, err
	}
	if len(v) != len(liveFields)+1 {
		return Session{}, extra, ErrNotFound
	}
	stored, _ := v[len(liveFields)].(string)
	want, err := hex.DecodeString(stored)
	if err != nil || len(want) == 0 || subtle.ConstantTimeCompare(want, sha(tok.secret)) != 1 {
		return Session{}, extra, ErrNotFound
	}
	sess, err := s.parseLive(sid, v[:len(liveFields)])
	return sess, extra, err
}

// ParseBrowserRef exposes the user and session ids in a browser reference without
// touching Redis. It says nothing about whether the reference is valid.
func ParseBrowserRef(ref string) (userID, sessionID string, err error) {
	t, err := parseBrowserRef(ref)
	if err != nil {
		return "", "", err
	}
	return t.userID.String(), t.sessionID.String(), nil
}

func parseBrowserRef(ref string) (token, error) {
	if len(ref) != browserLen || !strings.HasPrefix(ref, browserPrefix) {
		return token{}, ErrInvalidToken
	}
	return parseToken(tokenPrefix + ref[len(browserPrefix):])
}
