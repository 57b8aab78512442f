package dnsupdate

import (
	"testing"

	"go.uber.org/goleak"
)

// The Runner's goroutine and named's waiter must end with their tests.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
