package ratelimit

import (
	"net/netip"
	"strings"
)

// DefaultIPv6Prefix is how many leading bits of an IPv6 address name one client: a
// /64 is what a provider hands one subscriber, who can pick any address inside it.
const DefaultIPv6Prefix = 64

// ClientKey is the key under which every per-IP budget and the per-IP login throttle
// count a client address: an IPv4 address as itself, an IPv4-mapped IPv6 address
// (::ffff:a.b.c.d) as its IPv4 address, an IPv6 address as its network of ipv6Prefix
// bits ("2001:db8::/64"; outside 1..128 the default /64). A zone is dropped. Anything
// that is not an IP address (a user id, a hash) is returned unchanged.
func ClientKey(ip string, ipv6Prefix int) string {
	addr, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(ip, "["), "]"))
	if err != nil {
		return ip
	}
	addr = addr.WithZone("").Unmap()
	if addr.Is4() {
		return addr.String()
	}
	if ipv6Prefix < 1 || ipv6Prefix > 128 {
		ipv6Prefix = DefaultIPv6Prefix
	}
	p, err := addr.Prefix(ipv6Prefix)
	if err != nil {
		return addr.String()
	}
	return p.String()
}
