package app_test

import (
	"os"
	"testing"

	"github.com/talentforge/auth/services/token-worker/internal/workertest"
)

// The package's tests share one fresh database; each test has its own NATS server,
// relay and addresses.
func TestMain(m *testing.M) {
	code := m.Run()
	workertest.DropDatabase()
	os.Exit(code)
}
