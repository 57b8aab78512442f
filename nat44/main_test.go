package nat44

import (
	"testing"

	"go.uber.org/goleak"
)

// The test's UDP receiver must end with its test.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
