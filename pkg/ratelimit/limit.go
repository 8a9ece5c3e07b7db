// Package ratelimit holds the limits every replica shares through Redis: GCRA budgets
// (go-redis/redis_rate) per purpose and key, and the progressive login throttle.
// Errors from Redis are returned, never swallowed: callers fail closed.
package ratelimit

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"
)

// Limit is a budget: Rate events per Period, with bursts up to Burst.
type Limit struct {
	Rate   int
	Period time.Duration
	Burst  int
}

// Off is the zero Limit: it allows everything.
func (l Limit) Off() bool { return l.Rate <= 0 }

func (l Limit) String() string {
	if l.Off() {
		return "off"
	}
	return fmt.Sprintf("%d/%s", l.Rate, l.Period)
}

// ParseLimit reads "N/unit" or "N/duration" ("30/m", "5/h", "10/1s", "100/10m"), or
// "off". The burst equals the rate.
func ParseLimit(s string) (Limit, error) {
	s = strings.TrimSpace(s)
	if s == "off" || s == "0" {
		return Limit{}, nil
	}
	n, per, ok := strings.Cut(s, "/")
	rate, err := strconv.Atoi(n)
	if !ok || err != nil || rate < 1 {
		return Limit{}, fmt.Errorf("%q is not N/period (e.g. 30/m, 5/h)", s)
	}
	var d time.Duration
	switch per {
	case "s":
		d = time.Second
	case "m":
		d = time.Minute
	case "h":
		d = time.Hour
	case "d":
		d = 24 * time.Hour
	default:
		if d, err = time.ParseDuration(per); err != nil || d < time.Second {
			return Limit{}, fmt.Errorf("%q is not N/period (e.g. 30/m, 5/h)", s)
		}
	}
	return Limit{Rate: rate, Period: d, Burst: rate}, nil
}

// Decision is the outcome of one check, with what the RateLimit-* headers need.
type Decision struct {
	Allowed    bool
	Limit      int
	Remaining  int
	RetryAfter time.Duration // when refused: until one more event fits
	ResetAfter time.Duration // until the budget is whole again
}

// Limiter checks budgets in Redis with GCRA.
type Limiter struct {
	l *redis_rate.Limiter
}

// NewLimiter returns a limiter over rdb.
func NewLimiter(rdb redis.UniversalClient) *Limiter {
	return &Limiter{l: redis_rate.NewLimiter(rdb)}
}

// Allow spends one event of key's budget.
func (l *Limiter) Allow(ctx context.Context, key string, lim Limit) (Decision, error) {
	if lim.Off() {
		return Decision{Allowed: true, Limit: -1, Remaining: -1}, nil
	}
	res, err := l.l.Allow(ctx, key, redis_rate.Limit{Rate: lim.Rate, Period: lim.Period, Burst: lim.Burst})
	if err != nil {
		return Decision{}, fmt.Errorf("rate limit %s: %w", key, err)
	}
	d := Decision{
		Allowed: res.Allowed > 0, Limit: lim.Rate, Remaining: res.Remaining,
		RetryAfter: res.RetryAfter, ResetAfter: res.ResetAfter,
	}
	if d.RetryAfter < 0 {
		d.RetryAfter = 0
	}
	return d, nil
}

// Headers are the answer headers of a refused decision: Retry-After and, for a budget,
// RateLimit-Limit, RateLimit-Remaining and RateLimit-Reset (IETF draft fields), in whole
// seconds rounded up.
func (d Decision) Headers() http.Header {
	secs := func(t time.Duration) string { return strconv.Itoa(max(1, int(math.Ceil(t.Seconds())))) }
	h := http.Header{}
	h.Set("Retry-After", secs(d.RetryAfter))
	if d.Limit >= 0 {
		h.Set("RateLimit-Limit", strconv.Itoa(d.Limit))
		h.Set("RateLimit-Remaining", strconv.Itoa(max(0, d.Remaining)))
		h.Set("RateLimit-Reset", secs(d.ResetAfter))
	}
	return h
}
