package xenstore

import (
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"math/rand"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"syscall"
	"testing"
	"time"
)

// pair returns a Client talking xs_wire to a Mem through a pipe.
func pair(t *testing.T, m *Mem, dom uint16) *Client {
	a, b := net.Pipe()
	go Serve(b, m.Connect(dom))
	c := NewClient(a)
	t.Cleanup(func() { c.Close() })
	return c
}

func nextEvent(t *testing.T, ch <-chan WatchEvent) WatchEvent {
	t.Helper()
	select {
	case ev := <-ch:
		return ev
	case <-time.After(5 * time.Second):
		t.Fatal("no watch event")
	}
	return WatchEvent{}
}

func TestClientOverWire(t *testing.T) {
	m := NewMem()
	c := pair(t, m, 0)
	if err := c.Write(None, "/a/b/c", "v1"); err != nil {
		t.Fatal(err)
	}
	if v, err := c.Read(None, "/a/b/c"); v != "v1" || err != nil {
		t.Fatalf("Read = %q, %v", v, err)
	}
	if v, err := c.Read(None, "/a/b"); v != "" || err != nil {
		t.Fatalf("parent Read = %q, %v", v, err)
	}
	if _, err := c.Read(None, "/nope"); !errors.Is(err, fs.ErrNotExist) || !errors.Is(err, syscall.ENOENT) {
		t.Fatalf("missing node: %v", err)
	}
	c.Write(None, "/a/b/d", "")
	if l, err := c.List(None, "/a/b"); !reflect.DeepEqual(l, []string{"c", "d"}) || err != nil {
		t.Fatalf("List = %q, %v", l, err)
	}
	if l, err := c.List(None, "/a/b/c"); len(l) != 0 || err != nil {
		t.Fatalf("List of a leaf = %q, %v", l, err)
	}
	perms := []Perm{{Dom: 5}, {Dom: 0, Read: true}}
	if err := c.SetPerms(None, "/a", perms); err != nil {
		t.Fatal(err)
	}
	if p, err := c.Perms(None, "/a"); !reflect.DeepEqual(p, perms) || err != nil {
		t.Fatalf("Perms = %v, %v", p, err)
	}
	if err := c.Watch("/a", "tok"); err != nil {
		t.Fatal(err)
	}
	if ev := nextEvent(t, c.Events()); ev != (WatchEvent{"/a", "tok"}) {
		t.Fatalf("initial event %+v", ev)
	}
	tx, err := c.Begin()
	if err != nil {
		t.Fatal(err)
	}
	c.Write(tx, "/a/x", "1")
	if _, err := c.Read(None, "/a/x"); !IsNotExist(err) {
		t.Fatalf("uncommitted write visible: %v", err)
	}
	if err := c.End(tx, true); err != nil {
		t.Fatal(err)
	}
	if ev := nextEvent(t, c.Events()); ev != (WatchEvent{"/a/x", "tok"}) {
		t.Fatalf("event %+v", ev)
	}
	// a conflicting transaction must be retried
	tx, _ = c.Begin()
	c.Write(None, "/a/y", "2")
	nextEvent(t, c.Events())
	c.Write(tx, "/a/z", "3")
	if err := c.End(tx, true); !IsAgain(err) {
		t.Fatalf("conflicting commit: %v", err)
	}
	if err := c.Remove(None, "/a"); err != nil {
		t.Fatal(err)
	}
	if err := c.Remove(None, "/a"); err != nil {
		t.Fatalf("removing a missing node: %v", err)
	}
	if err := c.Unwatch("/a", "tok"); err != nil {
		t.Fatal(err)
	}
}

// A guest cannot write into a directory that is not yours: the race of
// vm-xen.md, seen through permissions.
func TestMemPermissions(t *testing.T) {
	m := NewMem()
	d0 := m.Connect(0)
	g := m.Connect(7)
	defer d0.Close()
	defer g.Close()
	d0.Write(None, "/local/domain/7/device/vscsi/0/state", "1")
	if err := g.Write(None, "/local/domain/7/device/vscsi/0/ring-ref", "8"); !errors.Is(err, syscall.EACCES) {
		t.Fatalf("guest wrote into dom0's node: %v", err)
	}
	d0.SetPerms(None, "/local/domain/7/device/vscsi/0", []Perm{{Dom: 7}, {Dom: 0, Read: true}})
	if err := g.Write(None, "/local/domain/7/device/vscsi/0/ring-ref", "8"); err != nil {
		t.Fatalf("guest owning the directory: %v", err)
	}
	if _, err := g.Read(None, "/local/domain/7/device/vscsi/0/state"); !errors.Is(err, syscall.EACCES) {
		t.Fatalf("child written before the chmod kept dom0's perms: %v", err)
	}
}

func TestClientClose(t *testing.T) {
	m := NewMem()
	c := pair(t, m, 0)
	c.Watch("/", "x")
	c.Close()
	if _, err := c.Read(None, "/"); !errors.Is(err, ErrClosed) {
		t.Fatalf("Read after Close: %v", err)
	}
	for range c.Events() {
	}
}

func seedMsgs() [][]byte {
	var out [][]byte
	add := func(h Header, raw bool, parts ...string) {
		b, _ := AppendMsg(nil, h, raw, parts...)
		out = append(out, b)
	}
	add(Header{Type: Read, ReqID: 1}, false, "/local/domain/0/backend/vscsi/1/0/state")
	add(Header{Type: Read, ReqID: 1}, true, "4")
	add(Header{Type: Write, ReqID: 2, TxID: 9}, true, "/local/domain/1/device/vscsi/0/state", "1")
	add(Header{Type: WatchEventMsg}, false, "/local/domain/1/device/vscsi/0/state", "fe:1:0")
	add(Header{Type: Error, ReqID: 3}, false, "ENOENT")
	add(Header{Type: Directory, ReqID: 4}, false, "dev-0", "dev-1")
	add(Header{Type: GetPerms, ReqID: 5}, false, "n1", "r0")
	add(Header{Type: TransactionStart, ReqID: 6}, false, "17")
	return out
}

var writeCorpus = flag.Bool("xenstore.write-corpus", false, "rewrite testdata/fuzz seed corpora")

// go test ./transport/xen/xenstore -run TestWriteSeedCorpus -xenstore.write-corpus
func TestWriteSeedCorpus(t *testing.T) {
	if !*writeCorpus {
		t.Skip("use -xenstore.write-corpus")
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzMsg")
	os.MkdirAll(dir, 0o755)
	for i, s := range seedMsgs() {
		body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", s)
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("seed-%03d", i)), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestMsgPrefixesRejected(t *testing.T) {
	for _, b := range seedMsgs() {
		if _, _, err := DecodeMsg(b); err != nil {
			t.Fatal(err)
		}
		for n := 0; n < len(b); n++ {
			if _, _, err := DecodeMsg(b[:n]); !errors.Is(err, ErrBadMessage) {
				t.Fatalf("prefix %d of %q: %v", n, b, err)
			}
		}
	}
	rng := rand.New(rand.NewSource(2))
	b := make([]byte, 64)
	for i := 0; i < 100000; i++ {
		rng.Read(b)
		checkMsg(t, b)
	}
}

func checkMsg(t testing.TB, b []byte) {
	h, p, err := DecodeMsg(b)
	if err != nil {
		if !errors.Is(err, ErrBadMessage) {
			t.Fatalf("error %v is not ErrBadMessage", err)
		}
		return
	}
	if int(h.Len) != len(p) || h.Len > PayloadMax {
		t.Fatalf("header %+v with %d payload bytes", h, len(p))
	}
	// every payload parser copes with anything
	Strings(p)
	ParseWatchEvent(p)
	ParsePerms(p)
	ParseError(p)
	re, err := AppendMsg(nil, h, true, string(p))
	if err != nil || string(re) != string(b[:HeaderSize+len(p)]) {
		t.Fatalf("re-encoding %q: %q, %v", b, re, err)
	}
}

// FuzzMsg: the xs_wire decoder and payload parsers never panic, and what
// decodes re-encodes to the same bytes.
func FuzzMsg(f *testing.F) {
	for _, s := range seedMsgs() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) { checkMsg(t, b) })
}
