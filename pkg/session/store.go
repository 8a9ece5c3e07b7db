// Package session keeps login sessions and their rotating, opaque refresh
// tokens in Redis, shared by the auth and oauth services.
//
// Each refresh rotates the token. The token it replaced stays usable for a
// short grace and then answers the very same successor, so retries and
// parallel requests from one client never fork the chain; any other stale or
// forged secret ends the whole session (reuse detection). All multi-key work
// happens in single Lua scripts, so it is atomic and Cluster-safe.
package session

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"
)

var (
	ErrInvalidToken = errors.New("session: invalid refresh token")
	ErrReused       = errors.New("session: refresh token reused")
	ErrNotFound     = errors.New("session: not found")
)

// CredentialStamp is the stamp (see Session) of credentials last changed at
// changed, nil when never: the microseconds PostgreSQL keeps, so the value read
// at sign-in and the one read later compare exactly, with no clock involved.
func CredentialStamp(changed *time.Time) string {
	if changed == nil {
		return "0"
	}
	return strconv.FormatInt(changed.UnixMicro(), 10)
}

// Stamped reports whether the session was opened with the credentials of stamp.
// An empty stamp on either side is unknown (a session or a cached account older
// than stamps) and passes.
func (s Session) Stamped(stamp string) bool {
	return s.Stamp == "" || stamp == "" || s.Stamp == stamp
}

// Meta describes the client making a request.
type Meta struct{ IP, UserAgent string }

// Session is one login. ExpiresAt is the absolute end; the idle TTL only
// lives in Redis as the key's expiry.
//
// CreatedAt is when the user authenticated (a refresh never moves it: it is the
// tokens' auth_time). Stamp is the caller's version of the credentials the user
// authenticated with; a session whose stamp no longer matches the account's was
// opened with credentials that have since changed.
type Session struct {
	ID, UserID, Email                string
	AMR                              []string
	CreatedAt, LastUsedAt, ExpiresAt time.Time
	IP, UserAgent                    string
	Stamp                            string
}

// reuseHistory is how many retired secrets a session remembers for reuse
// detection: at one refresh per 15-minute access token that is five days of
// continuous use; a token older than that is refused without ending the session.
const reuseHistory = 512

// Store reads and writes sessions. It is safe for concurrent use.
type Store struct {
	rdb         redis.UniversalClient
	idle        time.Duration
	maxAge      time.Duration
	grace       time.Duration
	maxSessions int
	now         func() time.Time
}

// Option configures a Store.
type Option func(*Store)

// WithIdleTTL sets how long a session lives without a refresh
// (REFRESH_TOKEN_TTL, default 720h). Non-positive values are ignored.
func WithIdleTTL(d time.Duration) Option {
	return func(s *Store) {
		if d > 0 {
			s.idle = d
		}
	}
}

// WithMaxAge sets the absolute session lifetime (SESSION_MAX_AGE, default
// 2160h). Non-positive values are ignored.
func WithMaxAge(d time.Duration) Option {
	return func(s *Store) {
		if d > 0 {
			s.maxAge = d
		}
	}
}

// WithReuseGrace sets how long the previous token still answers the current
// successor (REFRESH_REUSE_GRACE, default 10s). Zero disables the grace.
func WithReuseGrace(d time.Duration) Option {
	return func(s *Store) {
		if d >= 0 {
			s.grace = d
		}
	}
}

// WithClock replaces time.Now. Scripts receive the time as an argument, so
// expiry decisions follow this clock (Redis key TTLs still run in real time).
func WithClock(now func() time.Time) Option {
	return func(s *Store) {
		if now != nil {
			s.now = now
		}
	}
}

// WithMaxSessions caps the sessions per user (default 100); creating one more
// drops the oldest. Non-positive values are ignored.
func WithMaxSessions(n int) Option {
	return func(s *Store) {
		if n > 0 {
			s.maxSessions = n
		}
	}
}

// New returns a Store using rdb, which may be a cluster client.
func New(rdb redis.UniversalClient, opts ...Option) *Store {
	s := &Store{
		rdb:         rdb,
		idle:        720 * time.Hour,
		maxAge:      2160 * time.Hour,
		grace:       10 * time.Second,
		maxSessions: 100,
		now:         time.Now,
	}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Create starts a session, stamped with stamp (see Session), and returns it with
// its first refresh token.
func (s *Store) Create(ctx context.Context, userID, email string, amr []string, stamp string, m Meta) (Session, string, error) {
	uid, err := uuid.Parse(userID)
	if err != nil {
		return Session{}, "", fmt.Errorf("session: invalid user id: %w", err)
	}
	for _, a := range amr {
		if strings.Contains(a, ",") {
			return Session{}, "", fmt.Errorf("session: amr value %q contains a comma", a)
		}
	}
	tok := newToken(uid, uuid.New())
	now := s.now().UnixMilli()
	exp := now + s.maxAge.Milliseconds()
	ttl := min(s.idle, s.maxAge).Milliseconds()
	prefix, key, idx := keys(tok.userID, tok.sessionID)
	err = createScript.Run(ctx, s.rdb, []string{key, idx},
		prefix, now, s.maxSessions, tok.sessionID.String(), ttl, exp,
		tok.userID.String(), email, strings.Join(amr, ","), m.IP, m.UserAgent,
		hashSecret(tok.secret), stamp).Err()
	if err != nil {
		return Session{}, "", fmt.Errorf("session: create: %w", err)
	}
	return Session{
		ID:         tok.sessionID.String(),
		UserID:     tok.userID.String(),
		Email:      email,
		AMR:        splitAMR(strings.Join(amr, ",")),
		CreatedAt:  time.UnixMilli(now),
		LastUsedAt: time.UnixMilli(now),
		ExpiresAt:  time.UnixMilli(exp),
		IP:         m.IP,
		UserAgent:  m.UserAgent,
		Stamp:      stamp,
	}, tok.String(), nil
}

// Refresh rotates refreshToken. It returns the session (LastUsedAt, IP and
// UserAgent updated) and the successor token. Within the reuse grace the
// just-replaced token returns the same successor again, with the session as
// the first use left it. Errors: ErrInvalidToken (malformed, unknown or
// expired session, or a secret it never had), ErrReused (a retired secret
// outside the grace; the session is ended).
func (s *Store) Refresh(ctx context.Context, refreshToken string, m Meta) (Session, string, error) {
	sess, next, _, err := s.RefreshWith(ctx, refreshToken, m, "")
	return sess, next, err
}

// RefreshWith is Refresh plus a GET of UserKey(prefix, the token's user) in the
// same script, hence the same round trip and the same atomic step (prefix ""
// reads nothing more). The key carries the user's hash tag, so Redis Cluster
// serves it from the slot of the user's sessions. The GET's answer (redis.Nil
// when the key is missing) is returned when the rotation succeeded or was
// replayed within the grace; with an error it is nil.
func (s *Store) RefreshWith(ctx context.Context, refreshToken string, m Meta, prefix string) (Session, string, *redis.StringCmd, error) {
	tok, err := parseToken(refreshToken)
	if err != nil {
		return Session{}, "", nil, err
	}
	// The successor is minted and sealed before we know whether it is needed:
	// the script decides atomically, and it cannot do AES.
	next := newToken(tok.userID, tok.sessionID)
	_, skey, idx := keys(tok.userID, tok.sessionID)
	ks := []string{skey, idx}
	if prefix != "" {
		ks = append(ks, prefix+"{"+tok.userID.String()+"}") // UserKey
	}
	res, err := refreshScript.Run(ctx, s.rdb, ks,
		tok.sessionID.String(), s.now().UnixMilli(),
		hashSecret(tok.secret), hashSecret(next.secret),
		sealSuccessor(tok.secret, next.secret, tok.sessionID),
		s.idle.Milliseconds(), s.grace.Milliseconds(), m.IP, m.UserAgent, reuseHistory).Slice()
	if err != nil {
		return Session{}, "", nil, fmt.Errorf("session: refresh: %w", err)
	}
	var status string
	if len(res) > 0 {
		status, _ = res[0].(string)
	}
	// The optional GET answer ends the 'ok' and 'replay' replies.
	tail := len(ks) - 2
	var extra *redis.StringCmd
	if tail == 1 && len(res) > 0 {
		extra = getReply(res[len(res)-1], "refresh")
	}
	switch {
	case status == "ok" && len(res) == 1+len(fields)+tail:
		sess, err := parseSession(tok.sessionID.String(), res[1:1+len(fields)])
		if err != nil {
			return Session{}, "", nil, err
		}
		return sess, next.String(), extra, nil
	case status == "replay" && len(res) == 2+len(fields)+tail:
		sealed, _ := res[1].(string)
		secret, err := openSuccessor(tok.secret, sealed, tok.sessionID)
		if err != nil {
			return Session{}, "", nil, err
		}
		sess, err := parseSession(tok.sessionID.String(), res[2:2+len(fields)])
		if err != nil {
			return Session{}, "", nil, err
		}
		return sess, token{userID: tok.userID, sessionID: tok.sessionID, secret: secret}.String(), extra, nil
	case status == "invalid":
		return Session{}, "", nil, ErrInvalidToken
	case status == "reused":
		return Session{}, "", nil, ErrReused
	}
	return Session{}, "", nil, fmt.Errorf("session: refresh: unexpected reply %v", res)
}

// Get is the access-token check: one round trip. It returns ErrNotFound if the
// session is gone or past its absolute expiry.
func (s *Store) Get(ctx context.Context, userID, sessionID string) (Session, error) {
	sess, _, err := s.GetWith(ctx, userID, sessionID, "")
	return sess, err
}

// GetWith is Get plus a GET of key in the same round trip (key "" reads nothing
// more). Build key with UserKey so that it lives with the user's sessions and
// Redis Cluster answers both from one node. The GET's answer is returned even
// when the session is gone; redis.Nil means key is missing.
func (s *Store) GetWith(ctx context.Context, userID, sessionID, key string) (Session, *redis.StringCmd, error) {
	uid, sid, ok := canonicalIDs(userID, sessionID)
	if !ok {
		return Session{}, nil, ErrNotFound
	}
	v, extra, err := s.readWith(ctx, hmget(ctx, sessionPrefix(uid)+sid, fieldArgs), key)
	if err != nil {
		return Session{}, extra, err
	}
	sess, err := parseSession(sid, v)
	if err != nil {
		return Session{}, extra, err
	}
	if !s.now().Before(sess.ExpiresAt) {
		return Session{}, extra, ErrNotFound
	}
	return sess, extra, nil
}

// LiveWith is GetWith for the check of every authenticated request: it reads only what
// that check needs (the Session holds ID, UserID, CreatedAt, ExpiresAt and Stamp; the
// rest is zero) and a GET of key, in one round trip, with arguments built once.
func (s *Store) LiveWith(ctx context.Context, userID, sessionID, key string) (Session, *redis.StringCmd, error) {
	uid, sid, ok := canonicalIDs(userID, sessionID)
	if !ok {
		return Session{}, nil, ErrNotFound
	}
	v, extra, err := s.readWith(ctx, hmget(ctx, sessionPrefix(uid)+sid, liveFieldArgs), key)
	if err != nil {
		return Session{}, extra, err
	}
	sess, err := s.parseLive(sid, v)
	return sess, extra, err
}

// parseLive reads liveFields' values: the session when it exists and has not reached
// its absolute expiry, else ErrNotFound.
func (s *Store) parseLive(sid string, v []any) (Session, error) {
	if len(v) != len(liveFields) || v[0] == nil {
		return Session{}, ErrNotFound
	}
	str := make([]string, len(v))
	for i, x := range v {
		str[i], _ = x.(string)
	}
	created, err1 := strconv.ParseInt(str[1], 10, 64)
	exp, err2 := strconv.ParseInt(str[2], 10, 64)
	if err1 != nil || err2 != nil {
		return Session{}, errors.New("session: corrupt created or exp field")
	}
	sess := Session{ID: sid, UserID: str[0], CreatedAt: time.UnixMilli(created), ExpiresAt: time.UnixMilli(exp), Stamp: str[3]}
	if !s.now().Before(sess.ExpiresAt) {
		return Session{}, ErrNotFound
	}
	return sess, nil
}

// liveFields are what LiveWith reads; liveFieldArgs and fieldArgs the fields as command
// arguments, built once.
var (
	liveFields    = []string{"uid", "created", "exp", "cs"}
	liveFieldArgs = anys(liveFields)
	fieldArgs     = anys(fields)
)

func anys(ss []string) []any {
	a := make([]any, len(ss))
	for i, s := range ss {
		a[i] = s
	}
	return a
}

func hmget(ctx context.Context, key string, fields []any) *redis.SliceCmd {
	return redis.NewSliceCmd(ctx, append([]any{"hmget", key}, fields...)...)
}

// readWith sends hm and, unless key is "", a GET of key in the same round trip.
func (s *Store) readWith(ctx context.Context, hm *redis.SliceCmd, key string) ([]any, *redis.StringCmd, error) {
	var extra *redis.StringCmd
	if key == "" {
		_ = s.rdb.Process(ctx, hm)
	} else {
		extra = redis.NewStringCmd(ctx, "get", key)
		_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			_ = p.Process(ctx, hm)
			_ = p.Process(ctx, extra)
			return nil
		})
		if err != nil && !errors.Is(err, redis.Nil) {
			return nil, nil, fmt.Errorf("session: get: %w", err)
		}
	}
	v, err := hm.Result()
	if err != nil {
		return nil, extra, fmt.Errorf("session: get: %w", err)
	}
	return v, extra, nil
}

// canonicalIDs checks that both are UUIDs and returns their canonical forms, without a
// new string when they already are (as in every token we sign).
func canonicalIDs(userID, sessionID string) (uid, sid string, ok bool) {
	canon := func(s string) (string, bool) {
		u, err := uuid.Parse(s)
		if err != nil {
			return "", false
		}
		if len(s) == 36 && strings.ToLower(s) == s {
			return s, true
		}
		return u.String(), true
	}
	uid, ok1 := canon(userID)
	sid, ok2 := canon(sessionID)
	return uid, sid, ok1 && ok2
}

// UserKey returns prefix followed by the user's hash tag: a key of the caller's
// that Redis Cluster keeps on the node of the user's sessions.
func UserKey(prefix, userID string) (string, error) {
	uid, err := uuid.Parse(userID)
	if err != nil {
		return "", fmt.Errorf("session: user id: %w", err)
	}
	return prefix + "{" + uid.String() + "}", nil
}

// SetStamp re-stamps a live session (see Session): the one that changed the
// credentials keeps working. ErrNotFound when the session is gone.
func (s *Store) SetStamp(ctx context.Context, userID, sessionID, stamp string) error {
	uid, err1 := uuid.Parse(userID)
	sid, err2 := uuid.Parse(sessionID)
	if err1 != nil || err2 != nil {
		return ErrNotFound
	}
	_, key, _ := keys(uid, sid)
	n, err := setStampScript.Run(ctx, s.rdb, []string{key}, stamp).Int()
	if err != nil {
		return fmt.Errorf("session: set stamp: %w", err)
	}
	if n == 0 {
		return ErrNotFound
	}
	return nil
}

// Revoke ends one session; its tokens stop working as soon as it returns.
func (s *Store) Revoke(ctx context.Context, userID, sessionID string) error {
	uid, err1 := uuid.Parse(userID)
	sid, err2 := uuid.Parse(sessionID)
	if err1 != nil || err2 != nil {
		return ErrNotFound
	}
	_, key, idx := keys(uid, sid)
	n, err := revokeScript.Run(ctx, s.rdb, []string{key, idx}, sid.String()).Int()
	if err != nil {
		return fmt.Errorf("session: revoke: %w", err)
	}
	if n == 0 {
		return ErrNotFound
	}
	return nil
}

// RevokeAll ends every session of the user except keep ("" keeps none) and
// returns how many ended.
func (s *Store) RevokeAll(ctx context.Context, userID, keep string) (int, error) {
	uid, err := uuid.Parse(userID)
	if err != nil {
		return 0, fmt.Errorf("session: invalid user id: %w", err)
	}
	if k, err := uuid.Parse(keep); err == nil {
		keep = k.String()
	}
	prefix, _, idx := keys(uid, uuid.Nil)
	n, err := revokeAllScript.Run(ctx, s.rdb, []string{idx}, prefix, keep).Int()
	if err != nil {
		return 0, fmt.Errorf("session: revoke all: %w", err)
	}
	return n, nil
}

// List returns the user's live sessions, newest first, and prunes index
// entries whose session expired.
func (s *Store) List(ctx context.Context, userID string) ([]Session, error) {
	uid, err := uuid.Parse(userID)
	if err != nil {
		return nil, fmt.Errorf("session: invalid user id: %w", err)
	}
	prefix, _, idx := keys(uid, uuid.Nil)
	res, err := listScript.Run(ctx, s.rdb, []string{idx}, prefix, s.now().UnixMilli()).Slice()
	if err != nil {
		return nil, fmt.Errorf("session: list: %w", err)
	}
	stride := 1 + len(fields)
	out := make([]Session, 0, len(res)/stride)
	for i := 0; i+stride <= len(res); i += stride {
		id, _ := res[i].(string)
		sess, err := parseSession(id, res[i+1:i+stride])
		if err != nil {
			return nil, err
		}
		out = append(out, sess)
	}
	return out, nil
}

// fields are read in this order by Get (HMGET) and returned in this order by
// the scripts (see fieldsLua).
var fields = []string{"uid", "email", "amr", "created", "last", "ip", "ua", "exp", "cs"}

func keys(uid, sid uuid.UUID) (prefix, session, index string) {
	prefix = sessionPrefix(uid.String())
	return prefix, prefix + sid.String(), prefix + "idx"
}

// sessionPrefix is the prefix of every key of the user uid (canonical form).
func sessionPrefix(uid string) string { return "sess:{" + uid + "}:" }

func parseSession(id string, v []any) (Session, error) {
	if len(v) != len(fields) || v[0] == nil {
		return Session{}, ErrNotFound
	}
	str := make([]string, len(v))
	for i, x := range v {
		str[i], _ = x.(string)
	}
	var ms [3]int64
	for i, f := range []int{3, 4, 7} {
		n, err := strconv.ParseInt(str[f], 10, 64)
		if err != nil {
			return Session{}, fmt.Errorf("session: corrupt %s field: %w", fields[f], err)
		}
		ms[i] = n
	}
	return Session{
		ID:         id,
		UserID:     str[0],
		Email:      str[1],
		AMR:        splitAMR(str[2]),
		CreatedAt:  time.UnixMilli(ms[0]),
		LastUsedAt: time.UnixMilli(ms[1]),
		ExpiresAt:  time.UnixMilli(ms[2]),
		IP:         str[5],
		UserAgent:  str[6],
		Stamp:      str[8],
	}, nil
}

func splitAMR(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

// getReply is a script's reply to the GET it made for the caller (the cached user), as
// the command a pipeline would have answered: redis.Nil for a missing key.
func getReply(v any, op string) *redis.StringCmd {
	switch v := v.(type) {
	case string:
		return redis.NewStringResult(v, nil)
	case nil:
		return redis.NewStringResult("", redis.Nil)
	}
	return redis.NewStringResult("", fmt.Errorf("session: %s: unexpected GET reply %T", op, v))
}
