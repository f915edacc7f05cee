package backstore_test

import (
	"fmt"
	"os"
	"testing"

	"go.uber.org/goleak"
)

// scratchDir holds files that outlive one test, such as the benchmarks'
// data file; TestMain removes it.
var scratchDir string

func TestMain(m *testing.M) {
	var err error
	if scratchDir, err = os.MkdirTemp("", "backstore-test-"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(scratchDir)
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}
