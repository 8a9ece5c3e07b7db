package apitest

import (
	"testing"

	"github.com/talentforge/auth/pkg/natstest"
)

// NATS is a NATS server of one test's own (see natstest). Pass URL() as NATS_URL to
// Start, which then does not insist that NATS answers.
type NATS = natstest.Server

// StartNATS starts the server; it stops when the test ends.
func StartNATS(t testing.TB) *NATS { return natstest.Run(t) }
