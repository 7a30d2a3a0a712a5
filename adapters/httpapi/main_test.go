package httpapi

import (
	"testing"

	"github.com/biosync/biosync/deploy/testbackend"
)

// TestMain stops the throwaway PostgreSQL cluster (used by the session
// tests when BIOSYNC_DATABASE_URL is unset) when the tests end.
func TestMain(m *testing.M) { testbackend.Main(m) }
