package store

import (
	"github.com/redis/go-redis/v9"

	"github.com/talentforge/auth/pkg/accounts"
	"github.com/talentforge/auth/pkg/postgres"
	"github.com/talentforge/auth/pkg/session"
	"github.com/talentforge/auth/pkg/usercache"
)

// UserCache is the account core's Redis user cache (accounts.Cache).
type UserCache = accounts.Cache

// NewUserCache returns the cache over db's users; opts are the invalidations'
// (usercache.New).
func NewUserCache(rdb redis.UniversalClient, db *postgres.DB, sessions *session.Store, opts ...usercache.Option) *UserCache {
	entries := usercache.New(rdb, opts...)
	return accounts.NewCache(rdb, accounts.NewStore(db, entries), sessions, entries)
}
