package xensim

import (
	"testing"

	"go.uber.org/goleak"
)

// Every test leaves no goroutine behind: connections, XenStore servers and
// event channels end with Close.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
