package frontend_test

import (
	"testing"

	"go.uber.org/goleak"
)

// The rings, the backends, the simulator and the guests leave no
// goroutine behind once a test has closed them.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
