package main

import (
	"context"
	be "encoding/binary"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/srptgt/srptgt/scsi"
	"github.com/srptgt/srptgt/scsi/scsitest"
	"github.com/srptgt/srptgt/transport/xen"
	"github.com/srptgt/srptgt/transport/xen/frontend"
	"github.com/srptgt/srptgt/transport/xen/xensim"
)

// TestCrossTransportReservation: one LU served to a Xen guest over
// vscsiif (the simulated hypervisor) and to an SRP host over another
// transport (in memory here, RDMA in production) has one persistent
// reservation — it belongs to the LU, not to a transport (design brief,
// "Identity and sharing"). The guest reserves, the host's writes conflict;
// READ FULL STATUS shows both initiators by their SRP TransportIDs, the
// guest's carrying the stable port ID transport/xen derives from its
// domain; the host preempts the guest, and the guest's writes conflict.
// The acl section names the guest by domain name and makes its second
// LU read-only.
func TestCrossTransportReservation(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "sim.sock")
	sim, err := xensim.Listen(sock, xensim.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	cfg := writeConfig(t, dir, `
luns:
  - name: shared
    backstore: {kind: memory, size: 8MiB}
  - name: other
    lun: 1
    backstore: {kind: memory, size: 8MiB}
xen:
  guests:
    - {domain: guest1, luns: ["shared, 0:0:0:0", "other, 0:0:0:1"]}
acl:
  initiators:
    - {xen: guest1, luns: [{lu: shared}, {lu: other, read_only: true}]}
`)
	r := startServe(t, cfg, func(o *serveOptions) { o.xenSim = sock })
	r.waitServing()

	g, err := xensim.DialGuest(sock, xensim.GuestConfig{Name: "guest1"})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	f, err := frontend.DialVSCSI(ctx, g, frontend.VSCSIConfig{VHost: 0})
	cancel()
	if err != nil {
		t.Fatalf("vscsiif: %v\n%s", err, r.log.String())
	}
	defer f.Close()
	sl, ok := f.LUNByName("shared")
	ol, ok2 := f.LUNByName("other")
	if !ok || !ok2 {
		t.Fatalf("guest LUNs %v", f.LUNs())
	}
	guest := &guestNexus{f: f, lun: sl.SAM()}
	guest.clearUA(t)
	gOther := &guestNexus{f: f, lun: ol.SAM()}
	gOther.clearUA(t)

	in, c := r.dial()
	defer in.Close()
	host := lun(c, 0)
	host.ClearUA()

	do := func(n func(cdb, out []byte, in int) *scsitest.Response, sa, typ byte, p scsitest.PROutParams, want scsi.Status) {
		t.Helper()
		b := p.Bytes()
		if r := n(scsitest.PROut(sa, 0, typ, uint32(len(b))), b, 0); r.Status != want {
			t.Fatalf("PERSISTENT RESERVE OUT %d: status %#x %v, want %#x", sa, r.Status, r.Err(), want)
		}
	}
	gdo := func(cdb, out []byte, n int) *scsitest.Response { return guest.do(t, cdb, out, n) }
	hdo := func(cdb, out []byte, n int) *scsitest.Response {
		resp, err := host.Do(cdb, out, n)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	block := make([]byte, 512)

	do(gdo, scsitest.PROutRegister, 0, scsitest.PROutParams{SAKey: 0x6E}, scsi.StatusGood)
	do(hdo, scsitest.PROutRegister, 0, scsitest.PROutParams{SAKey: 0x4D}, scsi.StatusGood)
	do(gdo, scsitest.PROutReserve, scsitest.PRTypeWERO, scsitest.PROutParams{Key: 0x6E}, scsi.StatusGood)

	// Registrants only: the registered host may write; an unregistered
	// one may not.
	if r := hdo(scsitest.RW10(0x2A, 0, 1, 1), block, 0); r.Status != scsi.StatusGood {
		t.Fatalf("registered host's WRITE under WE-RO: %v", r.Err())
	}
	do(hdo, scsitest.PROutRegister, 0, scsitest.PROutParams{Key: 0x4D}, scsi.StatusGood) // unregister
	if r := hdo(scsitest.RW10(0x2A, 0, 1, 1), block, 0); r.Status != scsi.StatusReservationConflict {
		t.Fatalf("unregistered host's WRITE under the guest's reservation: status %#x %v", r.Status, r.Err())
	}
	do(hdo, scsitest.PROutRegister, 0, scsitest.PROutParams{SAKey: 0x4D}, scsi.StatusGood)

	// READ FULL STATUS from the host: the guest's TransportID holds the
	// initiator port ID the Xen transport derives from guest1's UUID.
	rs := hdo(scsitest.PRIn(scsitest.PRInReadFullStatus, 512), nil, 512)
	if rs.Status != scsi.StatusGood || be.BigEndian.Uint32(rs.Data[4:]) != 96 {
		t.Fatalf("READ FULL STATUS: %v % x", rs.Err(), rs.Data)
	}
	gid, _, err := scsi.ParseTransportID(rs.Data[8+24:])
	u := xen.DomainUUID(g.UUID())
	if err != nil || gid != scsi.PortID(xen.InitiatorPortID(u, 0)) || rs.Data[8+12] != 0x01 || rs.Data[8+13] != scsitest.PRTypeWERO {
		t.Fatalf("guest's descriptor % x: %v", rs.Data[8:8+48], err)
	}
	hid, _, err := scsi.ParseTransportID(rs.Data[8+48+24:])
	if err != nil || hid != scsi.PortID(testInitiatorID) {
		t.Fatalf("host's descriptor % x: %v", rs.Data[8+48:], err)
	}

	// The host preempts the guest (as fence_scsi does): the guest's
	// registration and reservation go, its writes conflict.
	do(hdo, scsitest.PROutPreemptAbort, scsitest.PRTypeWERO, scsitest.PROutParams{Key: 0x4D, SAKey: 0x6E}, scsi.StatusGood)
	if r := guest.do(t, scsitest.RW10(0x2A, 0, 2, 1), block, 0); r.Status != scsi.StatusCheckCondition || r.SenseError().ASC != scsi.ASCRegistrationsPreempted {
		t.Fatalf("guest after the preempt: %v", r.Err())
	}
	if r := guest.do(t, scsitest.RW10(0x2A, 0, 2, 1), block, 0); r.Status != scsi.StatusReservationConflict {
		t.Fatalf("preempted guest's WRITE: status %#x %v", r.Status, r.Err())
	}
	if r := hdo(scsitest.RW10(0x2A, 0, 2, 1), block, 0); r.Status != scsi.StatusGood {
		t.Fatalf("the new holder's WRITE: %v", r.Err())
	}

	// The acl entry found guest1 by name: its LU other is read-only.
	if r := gOther.do(t, scsitest.RW10(0x2A, 0, 0, 1), block, 0); r.SenseError() == nil || r.SenseError().Key != scsi.DataProtect {
		t.Fatalf("guest's write to its read-only LU: %v", r.Err())
	}
	if !strings.Contains(r.log.String(), "\tserving\t") {
		t.Fatal("no serving line")
	}
	f.Close()
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
}
