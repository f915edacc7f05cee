package modepages

import (
	"bytes"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

var samplePages = [][]byte{
	{0x08, 0x12, 0x04, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
	{0x0A, 0x0A, 0x04, 0x10, 0, 0, 0, 0, 0xFF, 0xFF, 0, 0},
	{0x5C, 0x01, 0x00, 0x02, 0xAB, 0xCD}, // sub_page format
}

func TestEncodeDecode(t *testing.T) {
	for _, pages := range [][][]byte{nil, samplePages[:1], samplePages} {
		data := Encode(pages)
		got, err := Decode(data)
		if err != nil {
			t.Fatalf("Decode(Encode(%x)): %v", pages, err)
		}
		if len(got) != len(pages) || len(pages) > 0 && !reflect.DeepEqual(got, pages) {
			t.Errorf("round trip: got %x, want %x", got, pages)
		}
	}
	want := "srptgt mode pages v1\n0a0a041000000000ffff0000\ncrc32c "
	if got := string(Encode(samplePages[1:2])); got[:len(want)] != want {
		t.Errorf("Encode = %q, want it to start %q", got, want)
	}
}

// TestDecodeRejects: every strict prefix of a valid file, every one-byte
// corruption, and hand-made bad files are rejected with ErrCorrupt.
func TestDecodeRejects(t *testing.T) {
	data := Encode(samplePages)
	for n := 0; n < len(data); n++ {
		if _, err := Decode(data[:n]); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("prefix of %d bytes: err %v, want ErrCorrupt", n, err)
		}
	}
	for i := range data {
		bad := bytes.Clone(data)
		bad[i] ^= 0x01
		if _, err := Decode(bad); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("byte %d flipped: err %v, want ErrCorrupt", i, err)
		}
	}
	// Well-formed checksums over bad content.
	for _, body := range []string{
		"srptgt mode pages v2\n",
		"srptgt mode pages v1\nzz\n",
		"srptgt mode pages v1\n0a\n",
		"srptgt mode pages v1\n\n",
		"srptgt mode pages v1\n0a0\n",
	} {
		if _, err := Decode(withSum(body)); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%q: err %v, want ErrCorrupt", body, err)
		}
	}
}

func withSum(body string) []byte {
	return fmt.Appendf([]byte(body), "crc32c %08x\n", crc32.Checksum([]byte(body), castagnoli))
}

func TestLoadSave(t *testing.T) {
	dir := t.TempDir()
	// Nothing saved yet: no pages, no error.
	if p, err := Load(dir); err != nil || p != nil {
		t.Fatalf("Load(empty dir) = %x, %v", p, err)
	}
	if err := Save(dir, samplePages); err != nil {
		t.Fatal(err)
	}
	got, err := Load(dir)
	if err != nil || !reflect.DeepEqual(got, samplePages) {
		t.Fatalf("Load = %x, %v; want %x", got, err, samplePages)
	}
	// A second save replaces the first.
	if err := Save(dir, samplePages[:1]); err != nil {
		t.Fatal(err)
	}
	if got, err := Load(dir); err != nil || !reflect.DeepEqual(got, samplePages[:1]) {
		t.Fatalf("Load after second save = %x, %v", got, err)
	}
	// No temporary file is left behind.
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 1 || ents[0].Name() != FileName {
		t.Errorf("directory holds %v, want only %s", ents, FileName)
	}
	st, err := os.Stat(filepath.Join(dir, FileName))
	if err != nil || st.Mode().Perm() != 0o644 {
		t.Errorf("file mode %v, %v", st.Mode(), err)
	}
}

func TestLoadCorrupt(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, FileName), []byte("garbage\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if p, err := Load(dir); !errors.Is(err, ErrCorrupt) || p != nil {
		t.Errorf("Load(garbage) = %x, %v; want ErrCorrupt", p, err)
	}
	// A directory where the file should be.
	dir2 := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir2, FileName), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(dir2); err == nil {
		t.Error("Load of a directory succeeded")
	}
}

// TestSaveFailureLeavesNoTemp: a save whose rename fails (a non-empty
// directory where the file goes) reports it and removes its temporary file.
func TestSaveFailureLeavesNoTemp(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, FileName, "x"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := Save(dir, samplePages); err == nil {
		t.Fatal("Save over a non-empty directory succeeded")
	}
	ents, err := os.ReadDir(dir)
	if err != nil || len(ents) != 1 || ents[0].Name() != FileName {
		t.Errorf("directory holds %v (%v), want only %s", ents, err, FileName)
	}
	if err := Save(filepath.Join(dir, "missing"), samplePages); err == nil {
		t.Error("Save into a missing directory succeeded")
	}
}

// TestSaveFailureKeepsOld: a save that cannot write leaves the previous
// file as it was.
func TestSaveFailureKeepsOld(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root writes into read-only directories")
	}
	dir := t.TempDir()
	if err := Save(dir, samplePages); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o555); err != nil {
		t.Fatal(err)
	}
	defer os.Chmod(dir, 0o755)
	if err := Save(dir, samplePages[:1]); err == nil {
		t.Fatal("Save into a read-only directory succeeded")
	}
	if got, err := Load(dir); err != nil || !reflect.DeepEqual(got, samplePages) {
		t.Errorf("old pages not kept: %x, %v", got, err)
	}
}

func TestString(t *testing.T) {
	if got, want := String(samplePages), "08h 0ah 1ch/01h"; got != want {
		t.Errorf("String = %q, want %q", got, want)
	}
}
