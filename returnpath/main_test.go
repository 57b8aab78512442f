package returnpath

import (
	"testing"

	"go.uber.org/goleak"
)

// The LAN server's goroutine must end with its test.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
