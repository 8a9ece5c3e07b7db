package config

import (
	"strconv"
	"testing"
)

func TestRateLimitIPv6Prefix(t *testing.T) {
	if got := mustLoad(t, ":8081", nil).LoginThrottle.IPv6Prefix; got != 64 {
		t.Fatalf("RATE_LIMIT_IPV6_PREFIX defaults to %d, want 64", got)
	}
	for _, n := range []string{"32", "48", "56", "128"} {
		got := mustLoad(t, ":8081", map[string]string{"RATE_LIMIT_IPV6_PREFIX": n}).LoginThrottle.IPv6Prefix
		if n != strconv.Itoa(got) {
			t.Errorf("RATE_LIMIT_IPV6_PREFIX=%s: got %d", n, got)
		}
	}
	for _, raw := range []string{"31", "129", "0", "-64", "/64", "64.5", "sixty-four"} {
		_, err := Load(":8081", env(map[string]string{"RATE_LIMIT_IPV6_PREFIX": raw}))
		assertOneLineError(t, err, "RATE_LIMIT_IPV6_PREFIX")
	}
}
