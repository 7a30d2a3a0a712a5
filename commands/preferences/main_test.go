package preferences_test

import (
	"testing"

	"github.com/biosync/biosync/deploy/testbackend"
)

// The integration tests get PostgreSQL and Kafka from testbackend (and
// skip under -short); the unit tests need neither.
func TestMain(m *testing.M) { testbackend.Main(m) }
