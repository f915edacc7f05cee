package scsi_test

import (
	"testing"

	"github.com/srptgt/srptgt/backstore"
	"github.com/srptgt/srptgt/scsi"
	"github.com/srptgt/srptgt/scsi/scsitest"
)

// readPath is a 4 KiB READ(16) through Nexus.Execute with one reused
// Command and a preallocated data-in buffer: the steady-state data path
// of a transport.
type readPath struct {
	n   *scsi.Nexus
	c   scsi.Command
	cdb []byte
	in  []byte
	lun uint64
}

func newReadPath(tb testing.TB, s backstore.Store) *readPath {
	tb.Helper()
	lu, err := scsi.NewDisk(scsi.DiskConfig{Name: "bench", Store: s})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { lu.Close() })
	tgt := scsi.NewTarget(scsi.TargetConfig{})
	port := tgt.AddPort(testPort, "p")
	if err := tgt.AddLU(lu); err != nil {
		tb.Fatal(err)
	}
	n, err := tgt.Attach(scsi.NexusID{Initiator: initiator, Target: testPort}, port)
	if err != nil {
		tb.Fatal(err)
	}
	p := &readPath{n: n, cdb: scsitest.RW16(0x88, 0, 8, 8), in: make([]byte, 4096), lun: scsi.EncodeLUN(0)}
	p.c.CDB, p.c.LUN = scsitest.TestUnitReady(), p.lun
	n.Execute(&p.c) // takes the power-on unit attention
	return p
}

func (p *readPath) once(tb testing.TB) {
	c := &p.c
	c.Reset()
	c.CDB = p.cdb
	c.LUN = p.lun
	c.Tag = 1
	c.DataIn = p.in
	p.n.Execute(c)
	if c.Status != scsi.StatusGood || c.InLen != 4096 {
		tb.Fatalf("READ(16): status %#x sense % x InLen %d", c.Status, c.SenseData(), c.InLen)
	}
}

func nullStore(tb testing.TB) backstore.Store {
	s, err := openNull(1 << 30)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

func benchRead(b *testing.B, s backstore.Store) {
	p := newReadPath(b, s)
	b.SetBytes(4096)
	b.ReportAllocs()
	for b.Loop() {
		p.once(b)
	}
}

// BenchmarkRead16Null measures the SCSI layer alone.
func BenchmarkRead16Null(b *testing.B) { benchRead(b, nullStore(b)) }

// BenchmarkRead16Memory adds a memory store's copy.
func BenchmarkRead16Memory(b *testing.B) {
	s := memStore(b, 1<<30, 512)
	if _, err := s.WriteAt(make([]byte, 1<<20), 0); err != nil {
		b.Fatal(err)
	}
	benchRead(b, s)
}

// BenchmarkRead16NullParallel runs the path from every P on its own nexus
// command, as many channels do.
func BenchmarkRead16NullParallel(b *testing.B) {
	p := newReadPath(b, nullStore(b))
	b.SetBytes(4096)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		q := &readPath{n: p.n, cdb: p.cdb, in: make([]byte, 4096), lun: p.lun}
		for pb.Next() {
			q.once(b)
		}
	})
}

// TestReadPathAllocs holds the per-command data path to zero allocations
// (the brief's "no allocation per command in steady state").
func TestReadPathAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	for name, s := range map[string]backstore.Store{"null": nullStore(t), "memory": memStore(t, 1<<20, 512)} {
		p := newReadPath(t, s)
		if a := testing.AllocsPerRun(1000, func() { p.once(t) }); a != 0 {
			t.Errorf("%s: %v allocations per READ(16), want 0", name, a)
		}
	}
}
