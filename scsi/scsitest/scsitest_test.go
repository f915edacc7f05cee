package scsitest_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"runtime"
	"strings"
	"testing"

	"github.com/srptgt/srptgt/backstore"
	"github.com/srptgt/srptgt/scsi"
	"github.com/srptgt/srptgt/scsi/scsitest"
)

func hx(s string) []byte {
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		panic(err)
	}
	return b
}

// TestCDBBuilders pins every builder to the CDB layout of SPC-4 / SBC-3.
func TestCDBBuilders(t *testing.T) {
	unmapCDB, unmapParam := scsitest.Unmap([2]uint64{0x0102030405060708, 0x11223344}, [2]uint64{9, 1})
	for _, tc := range []struct {
		name string
		got  []byte
		want string
	}{
		{"INQUIRY", scsitest.Inquiry(true, 0x83, 0x1234), "12 01 83 12 34 00"},
		{"TEST UNIT READY", scsitest.TestUnitReady(), "00 00 00 00 00 00"},
		{"REQUEST SENSE", scsitest.RequestSense(true, 252), "03 01 00 00 FC 00"},
		{"REPORT LUNS", scsitest.ReportLUNs(2, 0x01020304), "A0 00 02 00 00 00 01 02 03 04 00 00"},
		{"READ CAPACITY(16)", scsitest.ReadCapacity16(32), "9E 10 00 00 00 00 00 00 00 00 00 00 00 20 00 00"},
		{"READ CAPACITY(10)", scsitest.ReadCapacity10(), "25 00 00 00 00 00 00 00 00 00"},
		{"READ(16)", scsitest.RW16(0x88, 0x08, 0x0102030405060708, 0x0A0B0C0D), "88 08 01 02 03 04 05 06 07 08 0A 0B 0C 0D 00 00"},
		{"WRITE(10)", scsitest.RW10(0x2A, 0x08, 0x01020304, 0x0506), "2A 08 01 02 03 04 00 05 06 00"},
		{"READ(12)", scsitest.RW12(0xA8, 0, 0x01020304, 0x05060708), "A8 00 01 02 03 04 05 06 07 08 00 00"},
		{"READ(6)", scsitest.RW6(0x08, 0x1F0203, 4), "08 1F 02 03 04 00"},
		{"READ(6) LBA masked", scsitest.RW6(0x08, 0xFF0203, 4), "08 1F 02 03 04 00"},
		{"WRITE SAME(16)", scsitest.WriteSame16(0x08, 5, 6), "93 08 00 00 00 00 00 00 00 05 00 00 00 06 00 00"},
		{"COMPARE AND WRITE", scsitest.CompareAndWrite(0x08, 7, 2), "89 08 00 00 00 00 00 00 00 07 00 00 00 02 00 00"},
		{"UNMAP", unmapCDB, "42 00 00 00 00 00 00 00 28 00"},
		{"UNMAP parameters", unmapParam, "00 26 00 20 00 00 00 00  01 02 03 04 05 06 07 08 11 22 33 44 00 00 00 00  00 00 00 00 00 00 00 09 00 00 00 01 00 00 00 00"},
		{"GET LBA STATUS", scsitest.GetLBAStatus(3, 64), "9E 12 00 00 00 00 00 00 00 03 00 00 00 40 00 00"},
		{"MODE SENSE(6)", scsitest.ModeSense6(true, 1, 0x3F, 0xFF, 0xFC), "1A 08 7F FF FC 00"},
		{"MODE SENSE(10)", scsitest.ModeSense10(true, true, 3, 0x0A, 0, 0x0102), "5A 18 CA 00 00 00 00 01 02 00"},
		{"MODE SELECT(6)", scsitest.ModeSelect6(true, 20), "15 11 00 00 14 00"},
		{"MODE SELECT(10)", scsitest.ModeSelect10(false, 0x0102), "55 10 00 00 00 00 00 01 02 00"},
		{"REPORT SUPPORTED OPERATION CODES", scsitest.ReportOpcodes(true, 2, 0x9E, 0x10, 0x200), "A3 0C 82 9E 00 10 00 00 02 00 00 00"},
		{"REPORT SUPPORTED TMFs", scsitest.ReportTMFs(true, 16), "A3 0D 80 00 00 00 00 00 00 10 00 00"},
		{"START STOP UNIT", scsitest.StartStop(true, 0x01), "1B 01 00 00 01 00"},
	} {
		if !bytes.Equal(tc.got, hx(tc.want)) {
			t.Errorf("%s: % x, want %s", tc.name, tc.got, tc.want)
		}
	}
}

func newTarget(t *testing.T) (*scsi.Nexus, *scsitest.Direct) {
	t.Helper()
	s, err := backstore.Open(backstore.Spec{Kind: backstore.KindMemory, Size: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	lu, err := scsi.NewDisk(scsi.DiskConfig{Name: "d", Store: s})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lu.Close() })
	tgt := scsi.NewTarget(scsi.TargetConfig{})
	port := tgt.AddPort(scsi.PortID{1}, "p")
	if err := tgt.AddLU(lu); err != nil {
		t.Fatal(err)
	}
	n, err := tgt.Attach(scsi.NexusID{Initiator: scsi.PortID{2}, Target: scsi.PortID{1}}, port)
	if err != nil {
		t.Fatal(err)
	}
	return n, scsitest.NewDirect(n)
}

// TestClient drives a disk through Direct and Client: ClearUA takes the
// power-on unit attention, Write and Read move data, errors carry sense.
func TestClient(t *testing.T) {
	_, d := newTarget(t)
	c := &scsitest.Client{I: d, LUN: scsi.EncodeLUN(0)}
	if _, err := c.Read(0, 1, 512); err == nil || !strings.Contains(err.Error(), "UNIT ATTENTION") {
		t.Fatalf("first READ: %v, want the unit attention", err)
	}
	if err := c.ClearUA(); err != nil {
		t.Fatal(err)
	}
	data := bytes.Repeat([]byte{0xA5, 0x5A}, 1024)
	if err := c.Write(4, data, 512); err != nil {
		t.Fatal(err)
	}
	got, err := c.Read(4, 4, 512)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("Read: %v, % x...", err, got[:8])
	}
	// An error response: CHECK CONDITION with parsed sense.
	r, err := c.Do(scsitest.RW16(0x88, 0, 1<<40, 1), nil, 512)
	if err != nil {
		t.Fatal(err)
	}
	e := r.SenseError()
	if r.Status != scsi.StatusCheckCondition || e == nil || e.Key != scsi.IllegalRequest || e.ASC != scsi.ASCLBAOutOfRange {
		t.Fatalf("out of range READ: %v", r.Err())
	}
	if want := "status 0x02: ILLEGAL REQUEST, ASC/ASCQ 21h/00h"; r.Err().Error() != want {
		t.Fatalf("Err() = %q, want %q", r.Err(), want)
	}
	// Residuals: the data-in buffer is larger than the data.
	r, err = c.Do(scsitest.Inquiry(false, 0, 36), nil, 100)
	if err != nil || r.Status != scsi.StatusGood || len(r.Data) != 36 || r.InResidual != 64 {
		t.Fatalf("INQUIRY: %v, %d bytes, residual %d", err, len(r.Data), r.InResidual)
	}
	// Responses without sense.
	if (&scsitest.Response{Status: scsi.StatusBusy}).Err() == nil || (&scsitest.Response{}).SenseError() != nil {
		t.Fatal("Response without sense")
	}
	if (&scsitest.Response{Status: scsi.StatusCheckCondition, Sense: []byte{0x7F}}).SenseError() != nil {
		t.Fatal("unparsable sense decoded")
	}
	// Context on the Client.
	c.Ctx = context.Background()
	if err := c.ClearUA(); err != nil {
		t.Fatal(err)
	}
}

// TestAbortBeforeExecute: ABORT TASK of a command that was started (in
// the task set) but not yet executed, as while a transport fetches its
// data-out, returns once the transport executes (or abandons) it;
// Execute then runs nothing and reports the command aborted.
func TestAbortBeforeExecute(t *testing.T) {
	n, d := newTarget(t)
	c := &scsitest.Client{I: d, LUN: scsi.EncodeLUN(0)}
	if err := c.ClearUA(); err != nil {
		t.Fatal(err)
	}
	cmd := &scsi.Command{CDB: scsitest.RW16(0x8A, 0, 0, 1), LUN: scsi.EncodeLUN(0), Tag: 5, DataOut: make([]byte, 512)}
	n.Start(cmd)
	done := make(chan scsi.TMFResult)
	go func() { done <- n.AbortTask(scsi.EncodeLUN(0), 5, n.Mark()) }()
	for n.QueryTask(scsi.EncodeLUN(0), 5, n.Mark()) == scsi.TMFSucceeded {
		runtime.Gosched() // until the TMF has marked it
	}
	n.Execute(cmd)
	if res := <-done; res != scsi.TMFComplete {
		t.Fatalf("ABORT TASK: %v", res)
	}
	if !cmd.Aborted() {
		t.Fatal("command not aborted")
	}
}
