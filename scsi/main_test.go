package scsi_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if a test leaves a goroutine behind (a task
// that never ended, a FORMAT UNIT IMMED still running, a blocked TMF).
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
