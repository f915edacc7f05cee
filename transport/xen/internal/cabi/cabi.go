// Package cabi builds and runs small C programs against the Xen and Linux
// headers of Debian (libxen-dev, linux-libc-dev), for the ABI tests of the
// Xen transport: the Go layouts are checked against what gcc says, never
// against numbers typed by hand.
package cabi

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// The headers the tests need: libxen-dev's public headers and the Linux
// uapi ones (gntdev.h and evtchn.h come from linux-libc-dev).
var needed = []string{"xen/io/vscsiif.h", "xen/io/ring.h", "xen/io/xs_wire.h", "xen/grant_table.h", "xen/gntdev.h", "xen/evtchn.h"}

var (
	once    sync.Once
	incDir  string
	findErr string
	findLog strings.Builder
)

func have(dir string) bool {
	for _, h := range needed {
		if _, err := os.Stat(filepath.Join(dir, h)); err != nil {
			return false
		}
	}
	return true
}

func run(name string, args ...string) error {
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	out, err := cmd.CombinedOutput()
	findLog.WriteString("$ " + name + " " + strings.Join(args, " ") + "\n" + string(out))
	return err
}

// find locates the headers: /usr/include if both packages are installed;
// else it installs them with apt-get (as root); else it downloads them
// with apt-get download and extracts them with dpkg-deb -x into a cache
// directory.
func find() {
	if have("/usr/include") {
		incDir = "/usr/include"
		return
	}
	pkgs := []string{"libxen-dev", "linux-libc-dev"}
	if os.Geteuid() == 0 {
		args := append([]string{"install", "-y", "--no-install-recommends"}, pkgs...)
		if run("apt-get", args...) != nil {
			run("apt-get", "update")
			run("apt-get", args...)
		}
		if have("/usr/include") {
			incDir = "/usr/include"
			return
		}
	}
	base, err := os.UserCacheDir()
	if err != nil {
		base = os.TempDir()
	}
	dir := filepath.Join(base, "srptgt-xen-abi")
	root := filepath.Join(dir, "root")
	if have(filepath.Join(root, "usr/include")) {
		incDir = filepath.Join(root, "usr/include")
		return
	}
	os.MkdirAll(root, 0o755)
	dl := exec.Command("apt-get", append([]string{"download"}, pkgs...)...)
	dl.Dir = dir
	if out, err := dl.CombinedOutput(); err != nil {
		findLog.WriteString("$ apt-get download\n" + string(out))
		run("apt-get", "update")
		dl = exec.Command("apt-get", append([]string{"download"}, pkgs...)...)
		dl.Dir = dir
		out, _ = dl.CombinedOutput()
		findLog.WriteString("$ apt-get download\n" + string(out))
	}
	debs, _ := filepath.Glob(filepath.Join(dir, "*.deb"))
	for _, d := range debs {
		run("dpkg-deb", "-x", d, root)
	}
	if have(filepath.Join(root, "usr/include")) {
		incDir = filepath.Join(root, "usr/include")
		return
	}
	findErr = "could not install or download libxen-dev and linux-libc-dev:\n" + findLog.String()
}

// IncludeDir returns a directory holding the Xen and Linux uapi headers,
// installing or downloading them if needed. It fails the test (never
// skips) if it cannot.
func IncludeDir(t testing.TB) string {
	t.Helper()
	once.Do(find)
	if findErr != "" {
		t.Fatal(findErr)
	}
	return incDir
}

// Run compiles the C program src against the headers and returns its
// output, parsed as lines "name value" (value a decimal or 0x number).
func Run(t testing.TB, src string) map[string]uint64 {
	t.Helper()
	inc := IncludeDir(t)
	if _, err := exec.LookPath("gcc"); err != nil {
		if os.Geteuid() == 0 {
			run("apt-get", "install", "-y", "--no-install-recommends", "gcc", "libc6-dev")
		}
		if _, err := exec.LookPath("gcc"); err != nil {
			t.Fatalf("no gcc to build the ABI probe: %v\n%s", err, findLog.String())
		}
	}
	dir := t.TempDir()
	c := filepath.Join(dir, "abi.c")
	bin := filepath.Join(dir, "abi")
	if err := os.WriteFile(c, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{"-Wall", "-o", bin, c}
	if inc != "/usr/include" {
		// libxen-dev's headers are found first; the system's own uapi
		// headers (asm/..., linux/...) still come from /usr/include.
		args = append([]string{"-I", inc}, args...)
	}
	if out, err := exec.Command("gcc", args...).CombinedOutput(); err != nil {
		t.Fatalf("gcc %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	out, err := exec.Command(bin).Output()
	if err != nil {
		t.Fatalf("ABI probe: %v", err)
	}
	m := map[string]uint64{}
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 2 {
			continue
		}
		v, err := strconv.ParseUint(f[1], 0, 64)
		if err != nil {
			t.Fatalf("ABI probe line %q: %v", sc.Text(), err)
		}
		m[f[0]] = v
	}
	return m
}
