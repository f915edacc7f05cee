package scsi_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDependencies is the negative dependency test of the layering in the
// design brief: scsi knows no transport, no SRP session, no command-line
// code, and no cgo (it must build and run with CGO_ENABLED=0 on any
// platform the daemon's SCSI logic is tested on).
func TestDependencies(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go tool in PATH")
	}
	for _, pkg := range []string{"github.com/srptgt/srptgt/scsi", "github.com/srptgt/srptgt/scsi/scsitest"} {
		cmd := exec.Command(goTool, "list", "-deps", "-f", "{{.ImportPath}} {{len .CgoFiles}}", pkg)
		cmd.Env = append(cmd.Environ(), "CGO_ENABLED=1")
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("go list %s: %v", pkg, err)
		}
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		if len(lines) < 5 {
			t.Fatalf("go list %s: implausibly few dependencies: %q", pkg, out)
		}
		for _, l := range lines {
			path, cgo, _ := strings.Cut(l, " ")
			switch {
			case path == "C" || path == "runtime/cgo" || cgo != "0":
				t.Errorf("%s depends on cgo through %s", pkg, path)
			case strings.HasPrefix(path, "github.com/srptgt/srptgt/"):
				rest := strings.TrimPrefix(path, "github.com/srptgt/srptgt/")
				top, _, _ := strings.Cut(rest, "/")
				if top != "scsi" && top != "backstore" {
					t.Errorf("%s depends on %s: scsi may import only backstore from this module", pkg, path)
				}
			case strings.Contains(path, "rdma") || strings.Contains(path, "netlink"):
				t.Errorf("%s depends on the transport library %s", pkg, path)
			}
		}
	}
}
