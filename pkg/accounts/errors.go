package accounts

import (
	"errors"
	"fmt"

	"github.com/talentforge/auth/pkg/postgres"
)

// Unavailable marks a store error as ErrUnavailable when it says PostgreSQL cannot be
// used now (unreachable, timed out, closed), so the HTTP layer answers 503 without
// knowing the driver; any other error passes unchanged.
func Unavailable(err error) error {
	if err == nil || errors.Is(err, ErrUnavailable) || !postgres.Unreachable(err) {
		return err
	}
	return fmt.Errorf("%w: %w", ErrUnavailable, err)
}
