// Package retry names what a failed event deserves: a retry that counts against the
// event's bounded deliveries (any error), a retry that does not because a dependency is
// down (ErrUnavailable), or none at all (ErrPermanent). It also computes the backoff.
package retry

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

var (
	// ErrPermanent marks a failure that no retry can fix (a malformed event): the event
	// goes to the dead-letter subject at once.
	ErrPermanent = errors.New("permanent failure")
	// ErrUnavailable marks a failure of a dependency (the relay's breaker is open, the
	// database is away, another worker holds the email): the event is retried later and
	// the attempt is not held against it.
	ErrUnavailable = errors.New("dependency unavailable")
)

// Permanent wraps err as ErrPermanent.
func Permanent(err error) error { return fmt.Errorf("%w: %w", ErrPermanent, err) }

// Unavailable wraps err as ErrUnavailable.
func Unavailable(err error) error { return fmt.Errorf("%w: %w", ErrUnavailable, err) }

// Backoff is the delay before attempt n+1 after n failed ones (n >= 1): min doubled
// n-1 times, capped at max, with ±20% jitter so retries of a burst spread out.
func Backoff(n int, min, max time.Duration) time.Duration {
	if n < 1 {
		n = 1
	}
	d := min
	for i := 1; i < n && d < max; i++ {
		d *= 2
	}
	if d > max {
		d = max
	}
	jitter := time.Duration(float64(d) * 0.2 * (2*rand.Float64() - 1))
	return d + jitter
}

// DB classifies a database error: a lost or refused connection, a server shutting down
// or out of resources, a serialization failure is ErrUnavailable (the database, not the
// event, is at fault); an error the server raised about the statement is returned as is.
func DB(err error) error {
	if err == nil {
		return nil
	}
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return Unavailable(err) // network, driver or context: nothing about the event
	}
	switch pe.Code[:2] {
	case "08", "40", "53", "57", "58":
		return Unavailable(err)
	}
	return err
}
