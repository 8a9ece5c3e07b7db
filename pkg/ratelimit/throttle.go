package ratelimit

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// ThrottleConfig is Keycloak's brute-force model: after Failures consecutive failures
// each further failure makes the next attempt wait, doubling from WaitIncrement up to
// MaxWait. A success resets; nothing ever locks for good.
type ThrottleConfig struct {
	Failures      int // per account, whatever the client IP
	FailuresPerIP int // per account and client IP: one source is stopped sooner
	WaitIncrement time.Duration
	MaxWait       time.Duration
	ForgetAfter   time.Duration // counters die after this long without a failure
	// IPv6Prefix is how many leading bits of an IPv6 client address name one client
	// (RATE_LIMIT_IPV6_PREFIX, default 64), for this throttle and for every per-IP budget
	// of the Guard; see ClientKey.
	IPv6Prefix int
}

// Throttle is the progressive login delay. Attempts are counted before the password
// is checked, in one script, so parallel guesses cannot overrun the threshold.
type Throttle struct {
	rdb redis.UniversalClient
	cfg ThrottleConfig
	now func() time.Time
}

// NewThrottle returns a throttle; zero fields take safe defaults.
func NewThrottle(rdb redis.UniversalClient, cfg ThrottleConfig) *Throttle {
	if cfg.Failures <= 0 {
		cfg.Failures = 10
	}
	if cfg.FailuresPerIP <= 0 {
		cfg.FailuresPerIP = 5
	}
	if cfg.WaitIncrement <= 0 {
		cfg.WaitIncrement = time.Second
	}
	if cfg.MaxWait <= 0 {
		cfg.MaxWait = 15 * time.Minute
	}
	if cfg.IPv6Prefix <= 0 || cfg.IPv6Prefix > 128 {
		cfg.IPv6Prefix = DefaultIPv6Prefix
	}
	if cfg.ForgetAfter < cfg.MaxWait {
		cfg.ForgetAfter = max(12*time.Hour, cfg.MaxWait)
	}
	return &Throttle{rdb: rdb, cfg: cfg, now: time.Now}
}

// keys are hashed so that no address rests in Redis in clear, and share one hash tag
// so the script works on Redis Cluster. The client is keyed by ClientKey: every address
// of one IPv6 /64 is one client.
func (t *Throttle) keys(account, ip string) []string {
	sum := sha256.Sum256([]byte(account))
	tag := "{" + hex.EncodeToString(sum[:12]) + "}"
	return []string{"throttle:" + tag, "throttle:" + tag + ":" + ClientKey(ip, t.cfg.IPv6Prefix)}
}

// KEYS: account, account+ip. ARGV: now ms, threshold per key (2), increment ms,
// max ms, forget ms. Returns {allowed, wait ms}.
var attemptScript = redis.NewScript(`
local now = tonumber(ARGV[1])
for i = 1, 2 do
  local u = tonumber(redis.call('HGET', KEYS[i], 'until') or '0')
  if now < u then
    return {0, u - now}
  end
end
for i = 1, 2 do
  local n = redis.call('HINCRBY', KEYS[i], 'n', 1)
  local over = n - tonumber(ARGV[1 + i])
  if over >= 0 then
    -- This attempt is still evaluated; the next one waits.
    local wait = math.min(tonumber(ARGV[4]) * (2 ^ over), tonumber(ARGV[5]))
    redis.call('HSET', KEYS[i], 'until', string.format('%d', now + wait))
  end
  redis.call('PEXPIRE', KEYS[i], ARGV[6])
end
return {1, 0}
`)

// Attempt counts one login attempt for account (a normalised email, known or not) from
// ip. It answers the wait when the attempt must not be evaluated.
func (t *Throttle) Attempt(ctx context.Context, account, ip string) (allowed bool, wait time.Duration, err error) {
	res, err := attemptScript.Run(ctx, t.rdb, t.keys(account, ip),
		t.now().UnixMilli(), t.cfg.Failures, t.cfg.FailuresPerIP,
		t.cfg.WaitIncrement.Milliseconds(), t.cfg.MaxWait.Milliseconds(), t.cfg.ForgetAfter.Milliseconds()).Int64Slice()
	if err != nil {
		return false, 0, fmt.Errorf("login throttle: %w", err)
	}
	return res[0] == 1, time.Duration(res[1]) * time.Millisecond, nil
}

// Reset forgets the failures of account (a success).
func (t *Throttle) Reset(ctx context.Context, account, ip string) error {
	if err := t.rdb.Del(ctx, t.keys(account, ip)...).Err(); err != nil {
		return fmt.Errorf("login throttle reset: %w", err)
	}
	return nil
}
