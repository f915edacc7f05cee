package atomicfile_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/srptgt/srptgt/cmd/srptgt/internal/atomicfile"
)

func TestWriteReplaces(t *testing.T) {
	dir := t.TempDir()
	for _, s := range []string{"one", "two, longer", "3"} {
		if err := atomicfile.Write(dir, "f", []byte(s), 0o640); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join(dir, "f"))
		if err != nil || string(b) != s {
			t.Fatalf("read %q %v, want %q", b, err, s)
		}
	}
	fi, err := os.Stat(filepath.Join(dir, "f"))
	if err != nil || fi.Mode().Perm() != 0o640 {
		t.Fatalf("mode %v %v", fi.Mode(), err)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".f.*")); len(left) != 0 {
		t.Fatalf("temporary files left: %v", left)
	}
}

// A failed Write leaves the old content and no temporary file.
func TestWriteFailureKeepsOld(t *testing.T) {
	dir := t.TempDir()
	if err := atomicfile.Write(dir, "f", []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	// The rename fails: the target name is a non-empty directory.
	if err := os.Mkdir(filepath.Join(dir, "g"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "g", "x"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := atomicfile.Write(dir, "g", []byte("new"), 0o644); err == nil {
		t.Fatal("Write over a directory succeeded")
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".g.*")); len(left) != 0 {
		t.Fatalf("temporary files left: %v", left)
	}
	if err := atomicfile.Write(filepath.Join(dir, "missing"), "f", []byte("x"), 0o644); err == nil {
		t.Fatal("Write into a missing directory succeeded")
	}
	b, _ := os.ReadFile(filepath.Join(dir, "f"))
	if string(b) != "old" {
		t.Fatalf("old content %q", b)
	}
}

func TestRemoveStale(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []string{".f.123.tmp", ".f.456.tmp", ".g.1.tmp", "f"} {
		if err := os.WriteFile(filepath.Join(dir, n), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := atomicfile.RemoveStale(dir, "f"); err != nil {
		t.Fatal(err)
	}
	ents, _ := os.ReadDir(dir)
	var left []string
	for _, e := range ents {
		left = append(left, e.Name())
	}
	if len(left) != 2 || left[0] != ".g.1.tmp" || left[1] != "f" {
		t.Fatalf("left %v, want [.g.1.tmp f]", left)
	}
}
