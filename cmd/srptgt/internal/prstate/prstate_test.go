package prstate_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/srptgt/srptgt/cmd/srptgt/internal/prstate"
	"github.com/srptgt/srptgt/scsi"
)

// A state as the scsi package saves it: two registrations (one with
// ALL_TG_PT) and an Exclusive Access – Registrants Only reservation.
const valid = "srptgt persistent reservations v1\naptpl 1\n" +
	"reg 000000000000000a 00000000000000410000000000000001 fe800000000000000002c90300000001\n" +
	"reg 000000000000000b 00000000000000420000000000000001 all\n" +
	"res 6 00000000000000410000000000000001 fe800000000000000002c90300000001\n"

func withCRC(t *testing.T, body string) []byte {
	t.Helper()
	// Let the scsi package tell us the checksum: it refuses the file and
	// names the sum it computed.
	_, err := scsi.ParsePRState([]byte(body + "crc32c 00000000\n"))
	if err == nil {
		t.Fatal("a zero checksum was accepted")
	}
	msg := err.Error()
	i := strings.Index(msg, "checksum ")
	if i < 0 {
		t.Fatalf("no checksum in %q", msg)
	}
	return []byte(body + "crc32c " + msg[i+9:i+17] + "\n")
}

func TestLoadMissing(t *testing.T) {
	b, st, err := prstate.Load(t.TempDir())
	if b != nil || st != nil || err != nil {
		t.Fatalf("Load of an empty directory: %q %v %v", b, st, err)
	}
}

func TestSaveLoad(t *testing.T) {
	dir := t.TempDir()
	data := withCRC(t, valid)
	if err := prstate.Save(dir, data); err != nil {
		t.Fatal(err)
	}
	b, st, err := prstate.Load(dir)
	if err != nil || string(b) != string(data) {
		t.Fatalf("Load: %q %v", b, err)
	}
	if got := st.String(); got != "aptpl=true registrations=2 reservation=EA-RO" {
		t.Fatalf("state %s", got)
	}
	fi, err := os.Stat(filepath.Join(dir, prstate.FileName))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("file mode %v %v", fi.Mode(), err)
	}
	left, _ := filepath.Glob(filepath.Join(dir, ".*"))
	if len(left) != 0 {
		t.Fatalf("temporary files left: %v", left)
	}
}

// TestTornWrites simulates what a crash can leave behind. With the atomic
// replacement, a crash leaves at most a partial temporary file next to the
// old state: Load ignores it (and removes it) and returns the old state.
// A disk that tears the file itself — every truncation, and every single
// byte changed — gives an error, never a partial or altered state.
func TestTornWrites(t *testing.T) {
	dir := t.TempDir()
	old := withCRC(t, valid)
	if err := prstate.Save(dir, old); err != nil {
		t.Fatal(err)
	}
	next := withCRC(t, strings.Replace(valid, "res 6", "res 3", 1))
	for i := 0; i <= len(next); i++ {
		tmp := filepath.Join(dir, "."+prstate.FileName+".123456.tmp")
		if err := os.WriteFile(tmp, next[:i], 0o600); err != nil {
			t.Fatal(err)
		}
		b, _, err := prstate.Load(dir)
		if err != nil || string(b) != string(old) {
			t.Fatalf("crash after %d bytes of the temporary file: %q %v", i, b, err)
		}
		if _, err := os.Stat(tmp); !os.IsNotExist(err) {
			t.Fatalf("stale temporary file not removed: %v", err)
		}
	}
	path := filepath.Join(dir, prstate.FileName)
	for i := 0; i < len(next); i++ {
		if err := os.WriteFile(path, next[:i], 0o600); err != nil {
			t.Fatal(err)
		}
		if b, st, err := prstate.Load(dir); err == nil || !errors.Is(err, scsi.ErrPRStateCorrupt) && i > 0 {
			t.Fatalf("a state torn at %d bytes loaded: %q %v %v", i, b, st, err)
		}
	}
	for i := 0; i < len(next); i++ {
		for _, flip := range []byte{0x01, 0x20, 0x80} {
			bad := append([]byte(nil), next...)
			bad[i] ^= flip
			if err := os.WriteFile(path, bad, 0o600); err != nil {
				t.Fatal(err)
			}
			if _, st, err := prstate.Load(dir); err == nil {
				t.Fatalf("byte %d ^ %#x loaded: %v", i, flip, st)
			}
		}
	}
}
