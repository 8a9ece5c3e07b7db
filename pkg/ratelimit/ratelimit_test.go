package ratelimit

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/talentforge/auth/pkg/redistest"
)

// deadRedis is a client whose server does not exist: any command fails at once.
func deadRedis(t *testing.T) *redis.Client {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", DialTimeout: 200 * time.Millisecond, MaxRetries: -1})
	t.Cleanup(func() { _ = rdb.Close() })
	return rdb
}

// unique returns a marker no other test (or run) uses.
func unique(t *testing.T) string {
	t.Helper()
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b[:])
}

// scanKeys lists the keys matching pattern.
func scanKeys(t *testing.T, rdb *redis.Client, pattern string) []string {
	t.Helper()
	var keys []string
	iter := rdb.Scan(context.Background(), 0, pattern, 1000).Iterator()
	for iter.Next(context.Background()) {
		keys = append(keys, iter.Val())
	}
	if err := iter.Err(); err != nil {
		t.Fatalf("scan %s: %v", pattern, err)
	}
	return keys
}

// cleanupPattern deletes, when the test ends, every key matching pattern.
func cleanupPattern(t *testing.T, rdb *redis.Client, pattern string) {
	t.Helper()
	t.Cleanup(func() {
		if keys := scanKeys(t, rdb, pattern); len(keys) > 0 {
			_ = rdb.Del(context.Background(), keys...).Err()
		}
	})
}

// cleanupThrottle deletes, when the test ends, every throttle key of account (the
// account key and each account+IP key share the account's hash tag).
func cleanupThrottle(t *testing.T, rdb *redis.Client, th *Throttle, account string) {
	t.Helper()
	cleanupPattern(t, rdb, th.keys(account, "")[0]+"*")
}

// fakeClock drives the throttle's notion of now, so waits are exact and instant.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func newClockedThrottle(t *testing.T, rdb *redis.Client, cfg ThrottleConfig, account string) (*Throttle, *fakeClock) {
	t.Helper()
	th := NewThrottle(rdb, cfg)
	clock := &fakeClock{now: time.Now()}
	th.now = clock.Now
	cleanupThrottle(t, rdb, th, account)
	return th, clock
}

func attempt(t *testing.T, th *Throttle, account, ip string) (bool, time.Duration) {
	t.Helper()
	ok, wait, err := th.Attempt(context.Background(), account, ip)
	if err != nil {
		t.Fatalf("Attempt(%s, %s): %v", account, ip, err)
	}
	return ok, wait
}

func mustAllow(t *testing.T, th *Throttle, account, ip, what string) {
	t.Helper()
	if ok, wait := attempt(t, th, account, ip); !ok || wait != 0 {
		t.Fatalf("%s: allowed=%v wait=%v, want allowed with no wait", what, ok, wait)
	}
}

func mustWait(t *testing.T, th *Throttle, account, ip string, want time.Duration, what string) {
	t.Helper()
	if ok, wait := attempt(t, th, account, ip); ok || wait != want {
		t.Fatalf("%s: allowed=%v wait=%v, want refused with wait %v", what, ok, wait, want)
	}
}

func TestParseLimit(t *testing.T) {
	t.Parallel()
	good := []struct {
		in   string
		want Limit
	}{
		{"30/m", Limit{Rate: 30, Period: time.Minute, Burst: 30}},
		{"5/h", Limit{Rate: 5, Period: time.Hour, Burst: 5}},
		{"10/1s", Limit{Rate: 10, Period: time.Second, Burst: 10}},
		{"100/10m", Limit{Rate: 100, Period: 10 * time.Minute, Burst: 100}},
		{"1/s", Limit{Rate: 1, Period: time.Second, Burst: 1}},
		{"2/d", Limit{Rate: 2, Period: 24 * time.Hour, Burst: 2}},
		{"7/90s", Limit{Rate: 7, Period: 90 * time.Second, Burst: 7}},
		{"  20/h ", Limit{Rate: 20, Period: time.Hour, Burst: 20}},
		{"off", Limit{}},
		{"0", Limit{}},
	}
	for _, tc := range good {
		got, err := ParseLimit(tc.in)
		if err != nil {
			t.Errorf("ParseLimit(%q): %v", tc.in, err)
			continue
		}
		if got != tc.want {
			t.Errorf("ParseLimit(%q) = %+v, want %+v", tc.in, got, tc.want)
		}
		if got.Off() != (tc.want.Rate == 0) {
			t.Errorf("ParseLimit(%q).Off() = %v", tc.in, got.Off())
		}
	}
	bad := []string{
		"", " ", "abc", "30", "30/", "/m", "0/m", "-3/m", "x/m", "1.5/m", "30/x", "30/min",
		"30/500ms", "30/0s", "30/-1m", "30/m/2", "30 /m", "3e1/m", "Off", "30/M",
	}
	for _, in := range bad {
		if got, err := ParseLimit(in); err == nil {
			t.Errorf("ParseLimit(%q) = %+v, want an error", in, got)
		} else if !strings.Contains(err.Error(), "N/period") {
			t.Errorf("ParseLimit(%q) error %q does not say what is expected", in, err)
		}
	}
	if s := (Limit{Rate: 30, Period: time.Minute, Burst: 30}).String(); s != "30/1m0s" {
		t.Errorf("String() = %q", s)
	}
	if s := (Limit{}).String(); s != "off" {
		t.Errorf("off String() = %q", s)
	}
}

func TestLimiterAllowsBudgetThenRefuses(t *testing.T) {
	t.Parallel()
	rdb := redistest.Client(t)
	prefix := "rltest:" + unique(t) + ":"
	cleanupPattern(t, rdb, prefix+"*")
	l := NewLimiter(rdb)
	ctx := context.Background()
	lim := Limit{Rate: 3, Period: time.Minute, Burst: 3}

	for i := 1; i <= 3; i++ {
		d, err := l.Allow(ctx, prefix+"a", lim)
		if err != nil {
			t.Fatal(err)
		}
		if !d.Allowed || d.Limit != 3 || d.Remaining != 3-i || d.RetryAfter != 0 {
			t.Fatalf("event %d: %+v, want allowed, limit 3, remaining %d", i, d, 3-i)
		}
		if d.ResetAfter <= 0 || d.ResetAfter > time.Minute {
			t.Fatalf("event %d: ResetAfter %v, want in (0, 1m]", i, d.ResetAfter)
		}
	}
	for i := 0; i < 3; i++ {
		d, err := l.Allow(ctx, prefix+"a", lim)
		if err != nil {
			t.Fatal(err)
		}
		// One event per 20 s refills: the next fits in just under 20 s.
		if d.Allowed || d.Remaining != 0 || d.Limit != 3 {
			t.Fatalf("over budget: %+v, want refused with remaining 0", d)
		}
		if d.RetryAfter < 10*time.Second || d.RetryAfter > 20*time.Second {
			t.Fatalf("RetryAfter = %v, want just under 20s", d.RetryAfter)
		}
		if d.ResetAfter < 50*time.Second || d.ResetAfter > time.Minute {
			t.Fatalf("ResetAfter = %v, want just under 1m", d.ResetAfter)
		}
	}

	// Keys are independent: another key has its whole budget, and spending it does
	// not give the first one anything back.
	for i := 1; i <= 3; i++ {
		d, err := l.Allow(ctx, prefix+"b", lim)
		if err != nil {
			t.Fatal(err)
		}
		if !d.Allowed || d.Remaining != 3-i {
			t.Fatalf("key b event %d: %+v", i, d)
		}
	}
	if d, err := l.Allow(ctx, prefix+"a", lim); err != nil || d.Allowed {
		t.Fatalf("key a after key b: %+v %v, want still refused", d, err)
	}
}

func TestLimiterRetryAfterIsWhenTheNextEventFits(t *testing.T) {
	t.Parallel()
	rdb := redistest.Client(t)
	prefix := "rltest:" + unique(t) + ":"
	cleanupPattern(t, rdb, prefix+"*")
	l := NewLimiter(rdb)
	ctx := context.Background()
	lim, err := ParseLimit("10/1s") // one event per 100 ms
	if err != nil {
		t.Fatal(err)
	}
	allowed := 0
	var refused Decision
	for i := 0; i < 15; i++ {
		d, err := l.Allow(ctx, prefix+"k", lim)
		if err != nil {
			t.Fatal(err)
		}
		if d.Allowed {
			allowed++
		} else {
			refused = d
			break
		}
	}
	if allowed < 10 || allowed > 11 || refused.Allowed {
		t.Fatalf("allowed %d of a 10/1s budget before a refusal (%+v)", allowed, refused)
	}
	if refused.RetryAfter <= 0 || refused.RetryAfter > 100*time.Millisecond {
		t.Fatalf("RetryAfter = %v, want in (0, 100ms]", refused.RetryAfter)
	}
	time.Sleep(refused.RetryAfter + 20*time.Millisecond)
	if d, err := l.Allow(ctx, prefix+"k", lim); err != nil || !d.Allowed {
		t.Fatalf("after RetryAfter: %+v %v, want allowed", d, err)
	}
}

func TestLimiterOffLimitAllowsWithoutRedis(t *testing.T) {
	t.Parallel()
	l := NewLimiter(deadRedis(t))
	for i := 0; i < 5; i++ {
		d, err := l.Allow(context.Background(), "rltest:off", Limit{})
		if err != nil || !d.Allowed || d.Limit != -1 || d.Remaining != -1 {
			t.Fatalf("off limit: %+v %v, want allowed, limit -1, remaining -1", d, err)
		}
	}
}

func TestLimiterSharedBetweenInstances(t *testing.T) {
	t.Parallel()
	opts := redistest.Options(t)
	rdb1 := redistest.Client(t)
	rdb2 := redis.NewClient(opts) // a second connection pool: another replica
	t.Cleanup(func() { _ = rdb2.Close() })
	key := "rltest:" + unique(t) + ":shared"
	cleanupPattern(t, rdb1, key)
	limiters := []*Limiter{NewLimiter(rdb1), NewLimiter(rdb2)}
	lim := Limit{Rate: 4, Period: time.Minute, Burst: 4}

	allowed := 0
	for i := 0; i < 10; i++ {
		d, err := limiters[i%2].Allow(context.Background(), key, lim)
		if err != nil {
			t.Fatal(err)
		}
		if d.Allowed {
			allowed++
			if d.Remaining != 4-allowed {
				t.Fatalf("call %d (instance %d): remaining %d, want %d: the instances do not share the budget",
					i, i%2, d.Remaining, 4-allowed)
			}
		}
		if i >= 4 && d.Allowed {
			t.Fatalf("call %d (instance %d) allowed past the shared budget of 4", i, i%2)
		}
	}
	if allowed != 4 {
		t.Fatalf("two instances allowed %d events of one 4/m budget, want 4", allowed)
	}
}

func TestLimiterFailsClosedWhenRedisIsDown(t *testing.T) {
	t.Parallel()
	d, err := NewLimiter(deadRedis(t)).Allow(context.Background(), "rltest:down", Limit{Rate: 5, Period: time.Minute, Burst: 5})
	if err == nil || d.Allowed {
		t.Fatalf("Redis down: %+v %v, want an error and not allowed", d, err)
	}
}

func TestThrottleWaitStartsAtThresholdDoublesAndCaps(t *testing.T) {
	t.Parallel()
	rdb := redistest.Client(t)
	account := "throttle-" + unique(t) + "@example.com"
	const ip = "203.0.113.10"
	th, clock := newClockedThrottle(t, rdb, ThrottleConfig{
		Failures: 3, FailuresPerIP: 100, WaitIncrement: time.Second, MaxWait: 5 * time.Second,
	}, account)

	for i := 1; i <= 3; i++ {
		mustAllow(t, th, account, ip, fmt.Sprintf("attempt %d", i))
	}
	mustWait(t, th, account, ip, time.Second, "attempt 4")
	// Refused attempts are not evaluated and do not lengthen the wait.
	clock.Advance(400 * time.Millisecond)
	for i := 0; i < 5; i++ {
		mustWait(t, th, account, ip, 600*time.Millisecond, "refused attempt while waiting")
	}
	clock.Advance(600 * time.Millisecond)
	mustAllow(t, th, account, ip, "attempt after the first wait")
	mustWait(t, th, account, ip, 2*time.Second, "after one more failure the wait doubles")
	clock.Advance(2 * time.Second)
	mustAllow(t, th, account, ip, "attempt after the second wait")
	mustWait(t, th, account, ip, 4*time.Second, "third wait")
	clock.Advance(4 * time.Second)
	mustAllow(t, th, account, ip, "attempt after the third wait")
	mustWait(t, th, account, ip, 5*time.Second, "fourth wait, capped at MaxWait")
	clock.Advance(5 * time.Second)
	mustAllow(t, th, account, ip, "attempt after the fourth wait")
	mustWait(t, th, account, ip, 5*time.Second, "fifth wait, still capped")

	// A success resets: the whole threshold again, then the first wait again.
	if err := th.Reset(context.Background(), account, ip); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 3; i++ {
		mustAllow(t, th, account, ip, fmt.Sprintf("attempt %d after Reset", i))
	}
	mustWait(t, th, account, ip, time.Second, "attempt 4 after Reset")
}

func TestThrottleAccountsAreIndependent(t *testing.T) {
	t.Parallel()
	rdb := redistest.Client(t)
	marker := unique(t)
	a, b := "a-"+marker+"@example.com", "b-"+marker+"@example.com"
	const ip = "203.0.113.11"
	cfg := ThrottleConfig{Failures: 2, FailuresPerIP: 2, WaitIncrement: time.Minute, MaxWait: time.Hour}
	th, _ := newClockedThrottle(t, rdb, cfg, a)
	cleanupThrottle(t, rdb, th, b)
	mustAllow(t, th, a, ip, "a 1")
	mustAllow(t, th, a, ip, "a 2")
	mustWait(t, th, a, ip, time.Minute, "a 3")
	mustAllow(t, th, b, ip, "b 1 from the same IP")
	mustAllow(t, th, b, ip, "b 2 from the same IP")
	mustWait(t, th, b, ip, time.Minute, "b 3")
}

func TestThrottlePerIPThresholdComesFirst(t *testing.T) {
	t.Parallel()
	rdb := redistest.Client(t)
	account := "perip-" + unique(t) + "@example.com"
	th, clock := newClockedThrottle(t, rdb, ThrottleConfig{
		Failures: 10, FailuresPerIP: 3, WaitIncrement: time.Second, MaxWait: time.Minute,
	}, account)

	const ipA, ipB = "203.0.113.20", "2001:db8::20"
	for i := 1; i <= 3; i++ {
		mustAllow(t, th, account, ipA, fmt.Sprintf("ip A attempt %d", i))
	}
	// One source is stopped after its own 3, long before the account's 10.
	mustWait(t, th, account, ipA, time.Second, "ip A attempt 4")
	// Another source is not held by A's wait...
	mustAllow(t, th, account, ipB, "ip B attempt 1")
	// ...and A stays throttled whatever B does.
	mustWait(t, th, account, ipA, time.Second, "ip A while B tries")

	// Rotating sources: each fresh IP is under its own threshold, but the account
	// counts every one (3 from A + 1 from B so far): the 11th attempt waits.
	for i := 5; i <= 10; i++ {
		mustAllow(t, th, account, fmt.Sprintf("198.51.100.%d", i), fmt.Sprintf("attempt %d from a fresh IP", i))
	}
	mustWait(t, th, account, "198.51.100.200", time.Second, "attempt 11 from a fresh IP")
	mustWait(t, th, account, ipB, time.Second, "attempt 11 from ip B")
	clock.Advance(time.Second)
	mustAllow(t, th, account, "198.51.100.201", "after the account wait")
}

func TestThrottleAccountThresholdHoldsAcrossIPs(t *testing.T) {
	t.Parallel()
	rdb := redistest.Client(t)
	account := "rotate-" + unique(t) + "@example.com"
	th, _ := newClockedThrottle(t, rdb, ThrottleConfig{
		Failures: 5, FailuresPerIP: 3, WaitIncrement: 2 * time.Second, MaxWait: time.Minute,
	}, account)
	for i := 1; i <= 5; i++ {
		mustAllow(t, th, account, fmt.Sprintf("198.51.100.%d", i), fmt.Sprintf("attempt %d", i))
	}
	for i := 6; i <= 20; i++ {
		mustWait(t, th, account, fmt.Sprintf("198.51.100.%d", i), 2*time.Second, fmt.Sprintf("attempt %d from a fresh IP", i))
	}
}

func TestThrottleParallelAttemptsNeverOverrunTheThreshold(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		cfg    ThrottleConfig
		sameIP bool
	}{
		{"per account and IP", ThrottleConfig{Failures: 100, FailuresPerIP: 5, WaitIncrement: time.Minute, MaxWait: time.Hour}, true},
		{"per account", ThrottleConfig{Failures: 5, FailuresPerIP: 100, WaitIncrement: time.Minute, MaxWait: time.Hour}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rdb := redistest.Client(t)
			account := "parallel-" + unique(t) + "@example.com"
			th := NewThrottle(rdb, tc.cfg)
			cleanupThrottle(t, rdb, th, account)
			var allowed, refused atomic.Int32
			errs := make(chan error, 60)
			var wg sync.WaitGroup
			start := make(chan struct{})
			for i := 0; i < 60; i++ {
				ip := "203.0.113.30"
				if !tc.sameIP {
					ip = fmt.Sprintf("198.51.100.%d", i)
				}
				wg.Go(func() {
					<-start
					ok, wait, err := th.Attempt(context.Background(), account, ip)
					switch {
					case err != nil:
						errs <- err
					case ok:
						allowed.Add(1)
					case wait > 0:
						refused.Add(1)
					default:
						errs <- fmt.Errorf("refused with no wait")
					}
				})
			}
			close(start)
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
			if allowed.Load() != 5 || refused.Load() != 55 {
				t.Fatalf("60 parallel attempts with a threshold of 5: %d allowed, %d refused; want 5 and 55",
					allowed.Load(), refused.Load())
			}
		})
	}
}

func TestThrottleCountersExpire(t *testing.T) {
	t.Parallel()
	rdb := redistest.Client(t)
	ctx := context.Background()
	const ip = "203.0.113.40"

	pttl := func(t *testing.T, key string) time.Duration {
		t.Helper()
		d, err := rdb.PTTL(ctx, key).Result()
		if err != nil {
			t.Fatal(err)
		}
		return d
	}

	t.Run("ForgetAfter is the TTL of both counters", func(t *testing.T) {
		account := "forget-" + unique(t) + "@example.com"
		th := NewThrottle(rdb, ThrottleConfig{Failures: 3, FailuresPerIP: 2, WaitIncrement: time.Second,
			MaxWait: time.Minute, ForgetAfter: 10 * time.Minute})
		cleanupThrottle(t, rdb, th, account)
		for i := 0; i < 3; i++ { // past the per-IP threshold: the "until" field is set too
			if _, _, err := th.Attempt(ctx, account, ip); err != nil {
				t.Fatal(err)
			}
		}
		for _, key := range th.keys(account, ip) {
			if d := pttl(t, key); d <= 9*time.Minute || d > 10*time.Minute {
				t.Fatalf("PTTL %s = %v, want just under ForgetAfter (10m); a negative value means no expiry", key, d)
			}
		}
	})

	t.Run("default ForgetAfter is 12h", func(t *testing.T) {
		account := "forget-default-" + unique(t) + "@example.com"
		th := NewThrottle(rdb, ThrottleConfig{Failures: 3, FailuresPerIP: 2})
		cleanupThrottle(t, rdb, th, account)
		if _, _, err := th.Attempt(ctx, account, ip); err != nil {
			t.Fatal(err)
		}
		for _, key := range th.keys(account, ip) {
			if d := pttl(t, key); d <= 11*time.Hour || d > 12*time.Hour {
				t.Fatalf("PTTL %s = %v, want just under 12h", key, d)
			}
		}
	})

	t.Run("ForgetAfter never shorter than MaxWait", func(t *testing.T) {
		account := "forget-max-" + unique(t) + "@example.com"
		th := NewThrottle(rdb, ThrottleConfig{Failures: 3, FailuresPerIP: 2, MaxWait: 13 * time.Hour, ForgetAfter: time.Minute})
		cleanupThrottle(t, rdb, th, account)
		if _, _, err := th.Attempt(ctx, account, ip); err != nil {
			t.Fatal(err)
		}
		for _, key := range th.keys(account, ip) {
			if d := pttl(t, key); d < 12*time.Hour {
				t.Fatalf("PTTL %s = %v, want at least MaxWait (13h): a wait must not outlive its counter", key, d)
			}
		}
	})

	t.Run("counters are gone after ForgetAfter", func(t *testing.T) {
		account := "forget-real-" + unique(t) + "@example.com"
		th := NewThrottle(rdb, ThrottleConfig{Failures: 2, FailuresPerIP: 2, WaitIncrement: 50 * time.Millisecond,
			MaxWait: 100 * time.Millisecond, ForgetAfter: 300 * time.Millisecond})
		cleanupThrottle(t, rdb, th, account)
		mustAllow(t, th, account, ip, "attempt 1")
		mustAllow(t, th, account, ip, "attempt 2")
		time.Sleep(450 * time.Millisecond)
		if n, err := rdb.Exists(ctx, th.keys(account, ip)...).Result(); err != nil || n != 0 {
			t.Fatalf("%d throttle keys left after ForgetAfter (%v)", n, err)
		}
		// Forgotten, not merely past the wait: two more attempts pass before a wait
		// (were the count kept, the first would start a 100 ms wait).
		mustAllow(t, th, account, ip, "attempt 1 after forgetting")
		mustAllow(t, th, account, ip, "attempt 2 after forgetting")
	})
}

func TestThrottleKeysHoldNoAddress(t *testing.T) {
	t.Parallel()
	rdb := redistest.Client(t)
	ctx := context.Background()
	marker := unique(t)
	account := "victim." + marker + "@example.com"
	const ip = "203.0.113.50"
	th, _ := newClockedThrottle(t, rdb, ThrottleConfig{Failures: 2, FailuresPerIP: 2, WaitIncrement: time.Minute}, account)
	for i := 0; i < 3; i++ {
		_, _, _ = th.Attempt(ctx, account, ip)
	}
	keys := th.keys(account, ip)
	if n, err := rdb.Exists(ctx, keys...).Result(); err != nil || n != 2 {
		t.Fatalf("%d of the throttle keys exist (%v), want 2", n, err)
	}
	for _, pattern := range []string{"*" + marker + "*", "*victim*" + marker[:6] + "*", "*example.com*" + marker[:6] + "*"} {
		if found := scanKeys(t, rdb, pattern); len(found) > 0 {
			t.Fatalf("Redis keys %v hold the address %s in clear", found, account)
		}
	}
	for _, key := range keys {
		if strings.Contains(key, account) || strings.Contains(key, marker) {
			t.Fatalf("key %q holds the address", key)
		}
		vals, err := rdb.HGetAll(ctx, key).Result()
		if err != nil {
			t.Fatal(err)
		}
		for f, v := range vals {
			if strings.Contains(f+v, marker) {
				t.Fatalf("key %q field %s=%s holds the address", key, f, v)
			}
		}
	}
}

func TestGuardDisabledAllowsEverythingAndTouchesNoKey(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	budgets := map[string]Limit{"login": {Rate: 1, Period: time.Hour, Burst: 1}, "forgot": {Rate: 1, Period: time.Hour, Burst: 1}}
	tcfg := ThrottleConfig{Failures: 1, FailuresPerIP: 1, WaitIncrement: time.Hour, MaxWait: time.Hour}

	t.Run("no Redis needed", func(t *testing.T) {
		g := NewGuard(deadRedis(t), budgets, tcfg, false)
		for i := 0; i < 20; i++ {
			if d, err := g.Allow(ctx, "login", "203.0.113.60"); err != nil || !d.Allowed {
				t.Fatalf("disabled guard, Redis down: %+v %v", d, err)
			}
			if ok, wait, err := g.LoginAttempt(ctx, "a@example.com", "203.0.113.60"); err != nil || !ok || wait != 0 {
				t.Fatalf("disabled guard LoginAttempt, Redis down: %v %v %v", ok, wait, err)
			}
		}
		if err := g.LoginSucceeded(ctx, "a@example.com", "203.0.113.60"); err != nil {
			t.Fatalf("disabled guard LoginSucceeded, Redis down: %v", err)
		}
	})

	t.Run("no key written", func(t *testing.T) {
		rdb := redistest.Client(t)
		marker := unique(t)
		ip := "ip-" + marker
		account := "guard-" + marker + "@example.com"
		g := NewGuard(rdb, budgets, tcfg, false)
		cleanupPattern(t, rdb, "*"+marker+"*")
		cleanupThrottle(t, rdb, NewThrottle(rdb, tcfg), account)
		for i := 0; i < 20; i++ {
			for _, purpose := range []string{"login", "forgot", "global"} {
				d, err := g.Allow(ctx, purpose, ip)
				if err != nil || !d.Allowed || d.Limit != -1 || d.Remaining != -1 {
					t.Fatalf("disabled guard Allow(%s) #%d: %+v %v, want allowed, limit -1", purpose, i, d, err)
				}
			}
			if ok, wait, err := g.LoginAttempt(ctx, account, ip); err != nil || !ok || wait != 0 {
				t.Fatalf("disabled guard LoginAttempt #%d: %v %v %v", i, ok, wait, err)
			}
		}
		if found := scanKeys(t, rdb, "*"+marker+"*"); len(found) > 0 {
			t.Fatalf("disabled guard wrote %v", found)
		}
		if found := scanKeys(t, rdb, NewThrottle(rdb, tcfg).keys(account, "")[0]+"*"); len(found) > 0 {
			t.Fatalf("disabled guard wrote throttle keys %v", found)
		}
	})
}

func TestGuardEnabled(t *testing.T) {
	t.Parallel()
	rdb := redistest.Client(t)
	ctx := context.Background()
	marker := unique(t)
	ip := "ip-" + marker
	account := "guard-on-" + marker + "@example.com"
	cleanupPattern(t, rdb, "rl:*"+marker+"*")
	tcfg := ThrottleConfig{Failures: 2, FailuresPerIP: 2, WaitIncrement: time.Minute, MaxWait: time.Hour}
	cleanupThrottle(t, rdb, NewThrottle(rdb, tcfg), account)
	g := NewGuard(rdb, map[string]Limit{
		"login":  {Rate: 2, Period: time.Minute, Burst: 2},
		"forgot": {Rate: 1, Period: time.Minute, Burst: 1},
	}, tcfg, true)

	for i := 1; i <= 2; i++ {
		if d, err := g.Allow(ctx, "login", ip); err != nil || !d.Allowed || d.Limit != 2 || d.Remaining != 2-i {
			t.Fatalf("login %d: %+v %v", i, d, err)
		}
	}
	if d, err := g.Allow(ctx, "login", ip); err != nil || d.Allowed || d.RetryAfter <= 0 {
		t.Fatalf("login 3: %+v %v, want refused with RetryAfter", d, err)
	}
	// Purposes are separate budgets for one key.
	if d, err := g.Allow(ctx, "forgot", ip); err != nil || !d.Allowed || d.Limit != 1 {
		t.Fatalf("forgot after login's budget is spent: %+v %v", d, err)
	}
	if d, err := g.Allow(ctx, "forgot", ip); err != nil || d.Allowed {
		t.Fatalf("forgot 2: %+v %v, want refused", d, err)
	}
	// The same purpose for another key is untouched.
	if d, err := g.Allow(ctx, "login", ip+"-other"); err != nil || !d.Allowed {
		t.Fatalf("login for another key: %+v %v", d, err)
	}
	// A purpose with no budget is unlimited.
	for i := 0; i < 10; i++ {
		if d, err := g.Allow(ctx, "unbudgeted", ip); err != nil || !d.Allowed || d.Limit != -1 {
			t.Fatalf("purpose without a budget: %+v %v", d, err)
		}
	}

	for i := 1; i <= 2; i++ {
		if ok, _, err := g.LoginAttempt(ctx, account, ip); err != nil || !ok {
			t.Fatalf("LoginAttempt %d: %v %v", i, ok, err)
		}
	}
	if ok, wait, err := g.LoginAttempt(ctx, account, ip); err != nil || ok || wait <= 0 || wait > time.Minute {
		t.Fatalf("LoginAttempt 3: %v %v %v, want refused with a wait of at most 1m", ok, wait, err)
	}
	if err := g.LoginSucceeded(ctx, account, ip); err != nil {
		t.Fatal(err)
	}
	if ok, _, err := g.LoginAttempt(ctx, account, ip); err != nil || !ok {
		t.Fatalf("LoginAttempt after LoginSucceeded: %v %v, want allowed", ok, err)
	}
}

func TestGuardFailsClosedWhenRedisIsDown(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	g := NewGuard(deadRedis(t), map[string]Limit{"login": {Rate: 100, Period: time.Minute, Burst: 100}},
		ThrottleConfig{Failures: 100, FailuresPerIP: 100}, true)
	if d, err := g.Allow(ctx, "login", "203.0.113.70"); err == nil || d.Allowed {
		t.Fatalf("Allow with Redis down: %+v %v, want an error and not allowed", d, err)
	}
	if ok, _, err := g.LoginAttempt(ctx, "down@example.com", "203.0.113.70"); err == nil || ok {
		t.Fatalf("LoginAttempt with Redis down: %v %v, want an error and not allowed", ok, err)
	}
	if err := g.LoginSucceeded(ctx, "down@example.com", "203.0.113.70"); err == nil {
		t.Fatal("LoginSucceeded with Redis down: no error")
	}
}
