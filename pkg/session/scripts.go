package session

import "github.com/redis/go-redis/v9"

// Every key of a user shares the hash tag {uid}, so each script below runs on
// one cluster node. Scripts that walk the index build session keys from the
// prefix "sess:{uid}:" passed as ARGV[1]; they stay in the declared slot.
//
// Session hash fields: uid email amr created last ip ua exp (times in unix ms),
// cur (sha256 hex of the live secret), prev (sha256 hex of the secret it
// replaced), rot (rotation time), succ (the live secret sealed under prev) and
// used (hash prefixes of retired secrets, for reuse detection).
// The index is a sorted set of session ids scored by creation time, which
// gives "newest first" and "oldest to evict" without reading every hash.
//
// "now" always comes from the caller so a test clock drives expiry decisions.
// Numbers handed back to Redis go through %d: Redis would print large Lua
// numbers in exponent form.

// fieldsLua lists the fields returned to Go, in the order parseSession reads.
const fieldsLua = `local F = {'uid', 'email', 'amr', 'created', 'last', 'ip', 'ua', 'exp', 'cs'}
`

// KEYS: hash, index. ARGV: prefix, now, maxSessions, sid, ttl, exp, uid,
// email, amr, ip, ua, cur, cs.
var createScript = redis.NewScript(`
local prefix, now, max = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
for _, id in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do
  local exp = redis.call('HGET', prefix .. id, 'exp')
  if not exp or tonumber(exp) <= now then
    redis.call('DEL', prefix .. id)
    redis.call('ZREM', KEYS[2], id)
  end
end
while redis.call('ZCARD', KEYS[2]) >= max do
  local oldest = redis.call('ZPOPMIN', KEYS[2])
  redis.call('DEL', prefix .. oldest[1])
end
redis.call('HSET', KEYS[1], 'uid', ARGV[7], 'email', ARGV[8], 'amr', ARGV[9],
  'created', ARGV[2], 'last', ARGV[2], 'ip', ARGV[10], 'ua', ARGV[11],
  'exp', ARGV[6], 'cur', ARGV[12], 'cs', ARGV[13])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[4])
-- The index must outlive its longest session; never shorten it.
local left = tonumber(ARGV[6]) - now
if redis.call('PTTL', KEYS[2]) < left then
  redis.call('PEXPIRE', KEYS[2], string.format('%d', left))
end
return 1
`)

// KEYS: hash. ARGV: cs. Sets the stamp of a session that exists; returns 1, or 0.
var setStampScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'cs', ARGV[1])
return 1
`)

// KEYS: hash, index[, extra]. ARGV: sid, now, sha(presented), sha(next), sealed
// next, idle ms, grace ms, ip, ua, history size.
// Returns {'ok', fields...}, {'replay', sealed, fields...}, {'invalid'} or
// {'reused'}. With a third key (RefreshWith: a key of the caller's under the
// user's hash tag, so the same slot), 'ok' and 'replay' end with its GET
// (nil when missing), read after the rotation in the same atomic step.
//
// 'used' holds the first 16 hex digits of the hashes of the session's retired
// secrets, newest first, bounded by ARGV[10]. Only a secret found there is
// reuse: a forged secret (anyone who saw an access token knows uid and sid)
// must not be able to end somebody else's session.
var refreshScript = redis.NewScript(fieldsLua + `
local function answer(t)
  local v = redis.call('HMGET', KEYS[1], unpack(F))
  local n = #t
  for i = 1, #F do
    t[n + i] = v[i]
  end
  if KEYS[3] then
    t[n + #F + 1] = redis.call('GET', KEYS[3])
  end
  return t
end
local now = tonumber(ARGV[2])
local exp = redis.call('HGET', KEYS[1], 'exp')
if not exp then
  return {'invalid'}
end
exp = tonumber(exp)
if now >= exp then
  redis.call('DEL', KEYS[1])
  redis.call('ZREM', KEYS[2], ARGV[1])
  return {'invalid'}
end
local s = redis.call('HMGET', KEYS[1], 'cur', 'prev', 'rot', 'succ', 'used')
local used = s[5] or ''
if ARGV[3] == s[1] then
  used = string.sub(s[1], 1, 16) .. used
  local cap = 16 * tonumber(ARGV[10])
  if #used > cap then
    used = string.sub(used, 1, cap)
  end
  redis.call('HSET', KEYS[1], 'prev', s[1], 'cur', ARGV[4], 'rot', ARGV[2],
    'succ', ARGV[5], 'last', ARGV[2], 'ip', ARGV[8], 'ua', ARGV[9], 'used', used)
  redis.call('PEXPIRE', KEYS[1], string.format('%d', math.min(tonumber(ARGV[6]), exp - now)))
  return answer({'ok'})
end
-- The token just rotated away, within the grace: hand back the same
-- successor (a client retry or a parallel request), never mint another.
local grace = tonumber(ARGV[7])
if grace > 0 and s[2] and ARGV[3] == s[2] and now - tonumber(s[3]) <= grace then
  return answer({'replay', s[4]})
end
-- A secret this session once had: the token leaked, so end the session.
local p = string.sub(ARGV[3], 1, 16)
for i = 1, #used, 16 do
  if string.sub(used, i, i + 15) == p then
    redis.call('DEL', KEYS[1])
    redis.call('ZREM', KEYS[2], ARGV[1])
    return {'reused'}
  end
end
return {'invalid'}
`)

// KEYS: hash, index. ARGV: sid. Returns 1 if the session existed.
var revokeScript = redis.NewScript(`
local n = redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
return n
`)

// KEYS: index. ARGV: prefix, keep. Returns how many sessions existed and ended.
var revokeAllScript = redis.NewScript(`
local n = 0
for _, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  if id ~= ARGV[2] then
    n = n + redis.call('DEL', ARGV[1] .. id)
    redis.call('ZREM', KEYS[1], id)
  end
end
return n
`)

// KEYS: index. ARGV: prefix, now. Returns {sid, fields...} per live session,
// newest first, pruning ids whose hash expired or passed its absolute expiry.
var listScript = redis.NewScript(fieldsLua + `
local now = tonumber(ARGV[2])
local out = {}
for _, id in ipairs(redis.call('ZREVRANGE', KEYS[1], 0, -1)) do
  local k = ARGV[1] .. id
  local v = redis.call('HMGET', k, unpack(F))
  if not v[1] or tonumber(v[8]) <= now then
    redis.call('DEL', k)
    redis.call('ZREM', KEYS[1], id)
  else
    out[#out + 1] = id
    for i = 1, #F do
      out[#out + 1] = v[i]
    end
  end
end
return out
`)
