package api_test

import (
	"os"
	"testing"

	"github.com/talentforge/auth/services/auth/internal/apitest"
)

// The package's tests share one fresh database; each test uses its own addresses.
func TestMain(m *testing.M) {
	code := m.Run()
	apitest.DropDatabase()
	os.Exit(code)
}
