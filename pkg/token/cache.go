package token

import (
	"crypto"
	"crypto/sha256"
	"slices"
	"sync"
	"time"
)

// WithVerifiedCache makes a Verifier remember up to size tokens whose signature it
// has checked, so a token presented again costs a hash and a map lookup instead of a
// signature verification (Verifier only; size <= 0 disables it, the default).
//
// An entry is keyed by the SHA-256 of the full raw token, so only the exact bytes
// that were verified hit, and the cache never holds a token. It lives until the
// token's exp, never longer: a hit past exp falls through to the full check, which
// fails. A hit also requires the token's kid to still name the same public key in
// the KeySet, so removing or replacing a key stops its tokens at once. Nothing else
// is skipped: revocation (the session check) is the caller's, per request.
func WithVerifiedCache(size int) Option {
	return func(o *options) { o.verifiedCache = size }
}

const cacheShards = 16

// verifiedCache is a bounded, sharded map of verified tokens.
type verifiedCache struct {
	now    func() time.Time
	perCap int
	shards [cacheShards]cacheShard
}

type cacheShard struct {
	mu sync.RWMutex
	m  map[[sha256.Size]byte]cacheEntry
}

type cacheEntry struct {
	claims *AccessClaims // never handed out: hits return a copy
	kid    string
	public crypto.PublicKey
	exp    time.Time
}

func newVerifiedCache(size int, now func() time.Time) *verifiedCache {
	c := &verifiedCache{now: now, perCap: max(1, (size+cacheShards-1)/cacheShards)}
	for i := range c.shards {
		c.shards[i].m = make(map[[sha256.Size]byte]cacheEntry)
	}
	return c
}

func (c *verifiedCache) shard(k *[sha256.Size]byte) *cacheShard {
	return &c.shards[k[0]%cacheShards]
}

// get returns a copy of the claims of a token verified before, if it has not
// expired and its key is still the one in ks.
func (c *verifiedCache) get(k [sha256.Size]byte, ks *KeySet) (*AccessClaims, bool) {
	s := c.shard(&k)
	s.mu.RLock()
	e, ok := s.m[k]
	s.mu.RUnlock()
	if !ok {
		return nil, false
	}
	if !c.now().Before(e.exp) || !sameKey(ks, e.kid, e.public) {
		s.mu.Lock()
		delete(s.m, k)
		s.mu.Unlock()
		return nil, false
	}
	cl := *e.claims
	cl.Audience = slices.Clone(e.claims.Audience)
	cl.Roles = slices.Clone(e.claims.Roles)
	cl.AMR = slices.Clone(e.claims.AMR)
	return &cl, true
}

// put remembers claims verified with key until their exp. When the shard is full it
// drops expired entries, then arbitrary ones, so memory stays bounded.
func (c *verifiedCache) put(k [sha256.Size]byte, claims *AccessClaims, key *signingKey) {
	if claims.ExpiresAt == nil {
		return
	}
	e := cacheEntry{kid: key.kid, public: key.public, exp: claims.ExpiresAt.Time}
	cl := *claims
	cl.Audience = slices.Clone(claims.Audience)
	cl.Roles = slices.Clone(claims.Roles)
	cl.AMR = slices.Clone(claims.AMR)
	e.claims = &cl
	now := c.now()
	s := c.shard(&k)
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.m) >= c.perCap {
		for old, oe := range s.m {
			if !now.Before(oe.exp) {
				delete(s.m, old)
			}
		}
		for old := range s.m {
			if len(s.m) < c.perCap {
				break
			}
			delete(s.m, old)
		}
	}
	s.m[k] = e
}

// len counts the entries (tests).
func (c *verifiedCache) len() int {
	n := 0
	for i := range c.shards {
		c.shards[i].mu.RLock()
		n += len(c.shards[i].m)
		c.shards[i].mu.RUnlock()
	}
	return n
}

// sameKey reports whether kid still names public in ks.
func sameKey(ks *KeySet, kid string, public crypto.PublicKey) bool {
	k, ok := ks.lookup(kid)
	if !ok {
		return false
	}
	eq, ok := k.public.(interface{ Equal(crypto.PublicKey) bool })
	return ok && eq.Equal(public)
}
