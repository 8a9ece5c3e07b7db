package ratelimit

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"time"

	"github.com/redis/go-redis/v9"
)

// Guard bundles the budgets of a service by purpose and the login throttle, and turns
// them all off at once when rate limiting is disabled (RATE_LIMIT_ENABLED=false).
type Guard struct {
	limiter  *Limiter
	throttle *Throttle
	budgets  map[string]Limit
	enabled  bool
}

// NewGuard returns a guard over rdb with one budget per purpose.
func NewGuard(rdb redis.UniversalClient, budgets map[string]Limit, throttle ThrottleConfig, enabled bool) *Guard {
	return &Guard{limiter: NewLimiter(rdb), throttle: NewThrottle(rdb, throttle), budgets: budgets, enabled: enabled}
}

// Allow spends one event of the purpose's budget for key (a client IP, a user id, a
// hash of an address). A client IP is keyed by ClientKey, so every address of one IPv6
// /64 spends one budget. A purpose without a budget is unlimited.
func (g *Guard) Allow(ctx context.Context, purpose, key string) (Decision, error) {
	lim, ok := g.budgets[purpose]
	if !g.enabled || !ok {
		return Decision{Allowed: true, Limit: -1, Remaining: -1}, nil
	}
	return g.limiter.Allow(ctx, "rl:"+purpose+":"+ClientKey(key, g.throttle.cfg.IPv6Prefix), lim)
}

// LoginAttempt counts an attempt for account from ip; see Throttle.Attempt.
func (g *Guard) LoginAttempt(ctx context.Context, account, ip string) (bool, time.Duration, error) {
	if !g.enabled {
		return true, 0, nil
	}
	return g.throttle.Attempt(ctx, account, ip)
}

// LoginSucceeded resets the throttle of account and ip.
func (g *Guard) LoginSucceeded(ctx context.Context, account, ip string) error {
	if !g.enabled {
		return nil
	}
	return g.throttle.Reset(ctx, account, ip)
}

// PurposeEmails is the per-address email budget (RATE_LIMIT_EMAILS_PER_ADDRESS): every
// service that mails an address spends the same one.
const PurposeEmails = "emails_per_address"

// The buckets of the per-address email budget: links (verification, reset) and notices
// (someone tried to sign up with the address) count apart, so notices cannot use up the
// owner's links.
const (
	BucketLinks   = ""
	BucketNotices = "notice:"
)

// AddressKey keys an address in a per-address budget: a bucket (BucketLinks,
// BucketNotices) and a hash of the address, so Redis never holds an address someone typed.
func AddressKey(bucket, address string) string {
	sum := sha256.Sum256([]byte(address))
	return bucket + hex.EncodeToString(sum[:16])
}
