package apitest

import (
	"context"

	"github.com/talentforge/auth/pkg/session"
)

// ForgetCachedUser drops the user's cache entry, for tests that change the database
// behind the service's back (the service itself invalidates on every write).
func (e *Env) ForgetCachedUser(userID string) {
	e.T.Helper()
	key, err := session.UserKey("user:", userID)
	if err != nil {
		e.T.Fatal(err)
	}
	if err := e.App.Redis.Del(context.Background(), key).Err(); err != nil {
		e.T.Fatal(err)
	}
}
