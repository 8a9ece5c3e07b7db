package ratelimit

import (
	"context"
	"crypto/rand"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/talentforge/auth/pkg/redistest"
)

// randomSlash64 is a /64 of 2001:db8::/32 no other test (or run) uses, as "a:b:c:d"
// (the first four groups).
func randomSlash64(t *testing.T) netip.Prefix {
	t.Helper()
	var b [16]byte
	if _, err := rand.Read(b[4:8]); err != nil {
		t.Fatal(err)
	}
	b[0], b[1], b[2], b[3] = 0x20, 0x01, 0x0d, 0xb8
	return netip.PrefixFrom(netip.AddrFrom16(b), 64)
}

// host is the address of the /64 with interface id iid.
func host(p netip.Prefix, iid uint64) string {
	b := p.Addr().As16()
	for i := 0; i < 8; i++ {
		b[15-i] = byte(iid >> (8 * i))
	}
	return netip.AddrFrom16(b).String()
}

// nextSlash64 is the /64 right after p (same /48 or /56, another subnet).
func nextSlash64(p netip.Prefix) netip.Prefix {
	b := p.Addr().As16()
	b[7]++
	return netip.PrefixFrom(netip.AddrFrom16(b), 64)
}

// An IPv6 client gets a /64 from its provider and can pick any address in it: the
// budgets must key it by the /64, IPv4 by the address, IPv4-mapped IPv6 as IPv4.
func TestGuardBudgetKeysIPv6ByPrefix(t *testing.T) {
	t.Parallel()
	rdb := redistest.Client(t)
	ctx := context.Background()
	purpose := "v6-" + unique(t)
	cleanupPattern(t, rdb, "rl:"+purpose+":*")
	g := NewGuard(rdb, map[string]Limit{purpose: {Rate: 2, Period: time.Minute, Burst: 2}}, ThrottleConfig{}, true)
	allow := func(ip string) bool {
		t.Helper()
		d, err := g.Allow(ctx, purpose, ip)
		if err != nil {
			t.Fatalf("Allow(%s): %v", ip, err)
		}
		return d.Allowed
	}

	net64 := randomSlash64(t)
	a, b, c := host(net64, 1), host(net64, 2), host(net64, 0xdead_beef_0000_0001)
	if !allow(a) || !allow(b) {
		t.Fatalf("the first two events of %s and %s refused", a, b)
	}
	if allow(c) {
		t.Fatalf("%s, %s and %s (one /64) each got a budget of their own: a client rotating addresses inside its /64 is never limited", a, b, c)
	}
	if other := host(nextSlash64(net64), 1); !allow(other) {
		t.Fatalf("%s, in the next /64, shares the budget of %s", other, net64)
	}

	// IPv4 by address; the IPv4-mapped form of an address is that address.
	var r [2]byte
	_, _ = rand.Read(r[:])
	v4 := fmt.Sprintf("10.%d.%d.7", r[0], r[1])
	v4next := fmt.Sprintf("10.%d.%d.8", r[0], r[1])
	if !allow(v4) || !allow("::ffff:"+v4) {
		t.Fatalf("first two events of %s refused", v4)
	}
	if allow(v4) {
		t.Fatalf("::ffff:%s has a budget apart from %s", v4, v4)
	}
	if !allow(v4next) {
		t.Fatalf("%s shares the budget of %s: IPv4 is keyed by the whole address", v4next, v4)
	}
}

// The per-account-and-IP counter of the login throttle keys IPv6 by the /64 too.
func TestThrottlePerIPCounterKeysIPv6ByPrefix(t *testing.T) {
	t.Parallel()
	rdb := redistest.Client(t)
	account := "v6-" + unique(t) + "@example.com"
	th, _ := newClockedThrottle(t, rdb, ThrottleConfig{
		Failures: 100, FailuresPerIP: 2, WaitIncrement: time.Minute, MaxWait: time.Hour,
	}, account)
	net64 := randomSlash64(t)
	mustAllow(t, th, account, host(net64, 1), "attempt 1 from ::1 of the /64")
	mustAllow(t, th, account, host(net64, 2), "attempt 2 from ::2 of the /64")
	mustWait(t, th, account, host(net64, 3), time.Minute, "attempt 3 from ::3 of the same /64")
	mustAllow(t, th, account, host(nextSlash64(net64), 1), "attempt from the next /64")

	// A success from any address of the /64 resets its counter.
	if err := th.Reset(context.Background(), account, host(net64, 9)); err != nil {
		t.Fatal(err)
	}
	mustAllow(t, th, account, host(net64, 4), "attempt after a success from the /64")
}

func TestClientKey(t *testing.T) {
	t.Parallel()
	cases := []struct {
		ip     string
		prefix int
		want   string
	}{
		{"203.0.113.7", 64, "203.0.113.7"},
		{"203.0.113.8", 64, "203.0.113.8"},
		{"::ffff:203.0.113.7", 64, "203.0.113.7"}, // IPv4-mapped: the IPv4 client
		{"::ffff:cb00:7107", 64, "203.0.113.7"},
		{"2001:db8::1", 64, "2001:db8::/64"},
		{"2001:db8::2", 64, "2001:db8::/64"},
		{"2001:db8:0:0:ffff:ffff:ffff:ffff", 64, "2001:db8::/64"},
		{"2001:DB8:0000::0002", 64, "2001:db8::/64"}, // spellings of one address
		{"[2001:db8::3]", 64, "2001:db8::/64"},
		{"fe80::1%eth0", 64, "fe80::/64"},
		{"2001:db8:0:1::1", 64, "2001:db8:0:1::/64"}, // the next /64
		{"2001:db8:0:1::1", 48, "2001:db8::/48"},
		{"2001:db8:0:1::1", 56, "2001:db8::/56"},
		{"2001:db8:0:1::1", 128, "2001:db8:0:1::1/128"},
		{"2001:db8:0:1::1", 0, "2001:db8:0:1::/64"}, // out of range: the default
		{"2001:db8:0:1::1", 129, "2001:db8:0:1::/64"},
		{"::1", 64, "::/64"},
		// Not addresses: keys of other kinds pass unchanged.
		{"", 64, ""},
		{"e62177ec-0fa2-4ead-872b-026825c035a0", 64, "e62177ec-0fa2-4ead-872b-026825c035a0"},
		{"0123456789abcdef0123456789abcdef", 64, "0123456789abcdef0123456789abcdef"},
		{"ip-1234", 64, "ip-1234"},
	}
	for _, c := range cases {
		if got := ClientKey(c.ip, c.prefix); got != c.want {
			t.Errorf("ClientKey(%q, %d) = %q, want %q", c.ip, c.prefix, got, c.want)
		}
	}
}

func TestNewThrottleDefaultsIPv6Prefix(t *testing.T) {
	t.Parallel()
	for in, want := range map[int]int{0: 64, -1: 64, 129: 64, 48: 48, 128: 128} {
		if got := NewThrottle(nil, ThrottleConfig{IPv6Prefix: in}).cfg.IPv6Prefix; got != want {
			t.Errorf("IPv6Prefix %d became %d, want %d", in, got, want)
		}
	}
}
