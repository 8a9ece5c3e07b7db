package store

import "github.com/talentforge/auth/pkg/accounts"

// OnLoaded makes f run in each of c's loads, after PostgreSQL answered and before the
// cache is filled: a test holds a load there to race a write against it.
func OnLoaded(c *UserCache, f func(userID string)) { accounts.OnLoaded(c, f) }
