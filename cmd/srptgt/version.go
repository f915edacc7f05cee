package main

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
)

// version is the release version, set at link time:
//
//	go build -ldflags "-X main.version=1.2.3" ./cmd/srptgt
var version = "dev"

// printVersion prints the version lines. The last line is exactly
// "transports: " and the space-separated transports built in, or "none";
// the VM test harness reads it.
func printVersion(w io.Writer) {
	fmt.Fprintf(w, "srptgt %s\n", version)
	fmt.Fprintf(w, "go: %s %s/%s\n", runtime.Version(), runtime.GOOS, runtime.GOARCH)
	if rev := vcsRevision(); rev != "" {
		fmt.Fprintf(w, "commit: %s\n", rev)
	}
	fmt.Fprintf(w, "transports: %s\n", transportsLine())
}

// vcsRevision returns the commit the binary was built from, when the
// build recorded it.
func vcsRevision() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return ""
	}
	rev, dirty := "", false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if rev != "" && dirty {
		rev += " (modified)"
	}
	return rev
}
