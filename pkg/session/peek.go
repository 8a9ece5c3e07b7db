package session

import (
	"context"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// KEYS: hash[, extra]. ARGV: now, sha(presented), grace ms.
// Returns {'ok', fields...} (then the GET of the extra key, nil when missing) when the
// presented secret is one Refresh would accept now: the live one, or the one just
// rotated away within the grace. Anything else is {'invalid'}. It writes nothing:
// no rotation, no expiry, no reuse detection (the Refresh that follows does those).
var peekScript = redis.NewScript(fieldsLua + `
local now = tonumber(ARGV[1])
local exp = redis.call('HGET', KEYS[1], 'exp')
if not exp or now >= tonumber(exp) then
  return {'invalid'}
end
local s = redis.call('HMGET', KEYS[1], 'cur', 'prev', 'rot')
local ok = s[1] and ARGV[2] == s[1]
if not ok then
  local grace = tonumber(ARGV[3])
  ok = grace > 0 and s[2] and s[3] and ARGV[2] == s[2] and now - tonumber(s[3]) <= grace
end
if not ok then
  return {'invalid'}
end
local t = {'ok'}
local v = redis.call('HMGET', KEYS[1], unpack(F))
for i = 1, #F do
  t[1 + i] = v[i]
end
if KEYS[2] then
  t[#F + 2] = redis.call('GET', KEYS[2])
end
return t
`)

// PeekWith reports whether Refresh would accept refreshToken now, without rotating
// it or changing anything: the session (as it stands) when the token is the live one
// or the one just rotated away within the reuse grace, else ErrInvalidToken (a retired
// token included: only Refresh detects reuse and ends the session). Like RefreshWith
// it also GETs UserKey(prefix, the token's user) in the same round trip (prefix ""
// reads nothing more; redis.Nil when the key is missing).
//
// A caller that must do something slow or fallible before the rotation commits (the
// access-token hook) peeks first: when that step fails, the token was not rotated, so
// the client's retry with it is an ordinary refresh, never a replay nor a reuse.
func (s *Store) PeekWith(ctx context.Context, refreshToken, prefix string) (Session, *redis.StringCmd, error) {
	tok, err := parseToken(refreshToken)
	if err != nil {
		return Session{}, nil, err
	}
	_, skey, _ := keys(tok.userID, tok.sessionID)
	ks := []string{skey}
	if prefix != "" {
		ks = append(ks, prefix+"{"+tok.userID.String()+"}") // UserKey
	}
	res, err := peekScript.Run(ctx, s.rdb, ks, s.now().UnixMilli(), hashSecret(tok.secret), s.grace.Milliseconds()).Slice()
	if err != nil {
		return Session{}, nil, fmt.Errorf("session: peek: %w", err)
	}
	var status string
	if len(res) > 0 {
		status, _ = res[0].(string)
	}
	if status == "invalid" {
		return Session{}, nil, ErrInvalidToken
	}
	if status != "ok" || len(res) != 1+len(fields)+len(ks)-1 {
		return Session{}, nil, fmt.Errorf("session: peek: unexpected reply %v", res)
	}
	sess, err := parseSession(tok.sessionID.String(), res[1:1+len(fields)])
	if err != nil {
		return Session{}, nil, err
	}
	var extra *redis.StringCmd
	if prefix != "" {
		extra = getReply(res[len(res)-1], "peek")
	}
	return sess, extra, nil
}
