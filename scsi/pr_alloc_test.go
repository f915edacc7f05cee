package scsi_test

import (
	"context"
	"testing"

	"github.com/srptgt/srptgt/scsi"
	"github.com/srptgt/srptgt/scsi/scsitest"
)

// TestReadPathAllocsWithReservation holds the READ(16) path to zero
// allocations while a persistent reservation and registrations exist: the
// conflict check reads an immutable snapshot and allocates nothing, for
// the holder and for an I_T nexus whose READ conflicts.
func TestReadPathAllocsWithReservation(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	lu, err := scsi.NewDisk(scsi.DiskConfig{Name: "bench", Store: nullStore(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lu.Close() })
	tgt := scsi.NewTarget(scsi.TargetConfig{})
	port := tgt.AddPort(testPort, "p")
	if err := tgt.AddLU(lu); err != nil {
		t.Fatal(err)
	}
	path := func(id scsi.PortID) *readPath {
		n, err := tgt.Attach(scsi.NexusID{Initiator: id, Target: testPort}, port)
		if err != nil {
			t.Fatal(err)
		}
		p := &readPath{n: n, cdb: scsitest.RW16(0x88, 0, 8, 8), in: make([]byte, 4096), lun: scsi.EncodeLUN(0)}
		p.c.CDB, p.c.LUN = scsitest.TestUnitReady(), p.lun
		n.Execute(&p.c) // takes the power-on unit attention
		return p
	}
	holder, nonHolder := path(initiator), path(other)
	d := scsitest.NewDirect(holder.n)
	for _, x := range []struct {
		cdb   []byte
		param scsitest.PROutParams
	}{
		{scsitest.PROut(scsitest.PROutRegister, 0, 0, 24), scsitest.PROutParams{SAKey: 0xA}},
		{scsitest.PROut(scsitest.PROutReserve, 0, scsitest.PRTypeEA, 24), scsitest.PROutParams{Key: 0xA}},
	} {
		resp, err := d.Do(context.Background(), &scsitest.Request{LUN: holder.lun, CDB: x.cdb, DataOut: x.param.Bytes()})
		if err != nil || resp.Status != scsi.StatusGood {
			t.Fatalf("PERSISTENT RESERVE OUT: %v %v", err, resp.Err())
		}
	}
	if a := testing.AllocsPerRun(1000, func() { holder.once(t) }); a != 0 {
		t.Errorf("holder: %v allocations per READ(16), want 0", a)
	}
	conflict := func() {
		c := &nonHolder.c
		c.Reset()
		c.CDB, c.LUN, c.Tag, c.DataIn = nonHolder.cdb, nonHolder.lun, 1, nonHolder.in
		nonHolder.n.Execute(c)
		if c.Status != scsi.StatusReservationConflict {
			t.Fatalf("READ(16) from a non-holder under Exclusive Access: status %#x", c.Status)
		}
	}
	if a := testing.AllocsPerRun(1000, conflict); a != 0 {
		t.Errorf("conflicting nexus: %v allocations per READ(16), want 0", a)
	}
}
