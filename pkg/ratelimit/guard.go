package ratelimit

import (
	"context"
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
