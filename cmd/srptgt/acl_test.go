package main

import (
	"context"
	"errors"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/srptgt/srptgt/scsi"
	"github.com/srptgt/srptgt/scsi/scsitest"
	"github.com/srptgt/srptgt/srp"
	"github.com/srptgt/srptgt/srp/initiator"
)

// dialAs logs in to the daemon as initiator port id.
func (r *daemonRun) dialAs(id scsi.PortID) (*initiator.Initiator, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return initiator.Dial(ctx, r.l.Dial(), initiator.Config{InitiatorPortID: id, TargetPortID: testPortID})
}

func reportLUNs(t *testing.T, c *scsitest.Client) []uint16 {
	t.Helper()
	resp, err := c.Do(scsitest.ReportLUNs(0, 512), nil, 512)
	if err != nil || resp.Err() != nil {
		t.Fatalf("REPORT LUNS: %v %v", err, resp.Err())
	}
	var luns []uint16
	for i := 8; i+8 <= len(resp.Data); i += 8 {
		l, _, _ := scsi.DecodeLUN(uint64(resp.Data[i])<<56 | uint64(resp.Data[i+1])<<48)
		luns = append(luns, l)
	}
	return luns
}

// clearAll takes the unit attentions of every LUN the initiator sees.
func clearAll(t *testing.T, c *scsitest.Client) {
	t.Helper()
	for _, l := range reportLUNs(t, c) {
		lun(c, l).ClearUA()
	}
}

// TestServeACL: the acl section as the target's access function — an
// initiator without an entry is refused at login under enforce (SRP_LOGIN_REJ);
// entries by port ID and by ib_srp's initiator_ext + GUID; LUN masking and
// renumbering in REPORT LUNS; read-only LUs; and SIGHUP: a changed ACL
// reaches logged-in initiators as REPORTED LUNS DATA HAS CHANGED, an
// initiator that lost its entry gets SRP_T_LOGOUT and its next login is
// refused; an invalid file changes nothing.
func TestServeACL(t *testing.T) {
	dir := t.TempDir()
	a := scsi.PortID{0, 0, 0, 0, 0, 0, 0, 1, 0x02, 0, 0, 0xff, 0xfe, 0, 0, 1} // initiator_ext 1, GUID 0200:00ff:fe00:0001
	b := scsi.PortID{0xb, 15: 0xb}
	c := scsi.PortID{0xc, 15: 0xc}
	base := `
luns:
  - name: d0
    backstore: {kind: memory, size: 1MiB}
  - name: d1
    lun: 1
    backstore: {kind: memory, size: 1MiB}
  - name: d2
    lun: 2
    backstore: {kind: memory, size: 1MiB}
acl:
  enforce: true
  initiators:
    - {name: a, initiator_ext: 1, guid: "0200:00ff:fe00:0001", luns: all}
`
	cfg := writeConfig(t, dir, base+`    - {name: b, port_id: "0b00000000000000000000000000000b", luns: [{lu: d2, lun: 0}, {lu: d0, lun: 7, read_only: true}]}
`)
	r := startServe(t, cfg, nil)
	r.waitServing()

	// C has no entry: refused.
	if _, err := r.dialAs(c); !isReject(err, srp.RejUnableToEstablish) {
		t.Fatalf("login without an ACL entry: %v", err)
	}
	inA, err := r.dialAs(a)
	if err != nil {
		t.Fatal(err)
	}
	ca := &scsitest.Client{I: inA}
	clearAll(t, ca)
	if got := reportLUNs(t, ca); len(got) != 3 || got[0] != 0 || got[2] != 2 {
		t.Fatalf("A sees LUNs %v", got)
	}
	inB, err := r.dialAs(b)
	if err != nil {
		t.Fatal(err)
	}
	cb := &scsitest.Client{I: inB}
	clearAll(t, cb)
	if got := reportLUNs(t, cb); len(got) != 2 || got[0] != 0 || got[1] != 7 {
		t.Fatalf("B sees LUNs %v", got)
	}
	// B's LUN 0 is d2: what A writes to its LUN 2 B reads at LUN 0.
	blk := []byte(strings.Repeat("acl!", 128))
	if err := lun(ca, 2).Write(3, blk, 512); err != nil {
		t.Fatal(err)
	}
	if got, err := lun(cb, 0).Read(3, 1, 512); err != nil || string(got) != string(blk) {
		t.Fatalf("B reads its LUN 0: %v", err)
	}
	// B's LUN 7 (d0) is read-only.
	resp, err := lun(cb, 7).Do(scsitest.RW10(0x2A, 0, 0, 1), blk, 0)
	if e := resp.SenseError(); err != nil || e == nil || e.Key != scsi.DataProtect || e.ASC != scsi.ASCWriteProtected {
		t.Fatalf("write to a read-only LUN: %v %v", err, resp.Err())
	}

	// SIGHUP with an invalid file: nothing changes.
	writeConfig(t, dir, base+"    - {name: b, port_id: nonsense, luns: all}\n")
	r.sigs <- syscall.SIGHUP
	waitFor(t, 5*time.Second, "the reload error", func() bool {
		return strings.Contains(r.log.String(), "reload: the configuration is invalid; nothing changed")
	})
	if got := reportLUNs(t, cb); len(got) != 2 {
		t.Fatalf("after an invalid reload B sees %v", got)
	}

	// SIGHUP: A now sees only d1 at LUN 4; B has no entry any more.
	writeConfig(t, dir, `
luns:
  - name: d0
    backstore: {kind: memory, size: 1MiB}
  - name: d1
    lun: 1
    backstore: {kind: memory, size: 1MiB}
  - name: d2
    lun: 2
    backstore: {kind: memory, size: 1MiB}
acl:
  enforce: true
  initiators:
    - {name: a, initiator_ext: 1, guid: "0200:00ff:fe00:0001", luns: [{lu: d1, lun: 4}]}
`)
	r.sigs <- syscall.SIGHUP
	select {
	case <-inB.Done():
	case <-time.After(10 * time.Second):
		t.Fatalf("B was not logged out after losing its entry:\n%s", r.log.String())
	}
	if lo := inB.TargetLogout(); lo == nil {
		t.Errorf("B's channel ended without SRP_T_LOGOUT")
	}
	inB.Close()
	if _, err := r.dialAs(b); !isReject(err, srp.RejUnableToEstablish) {
		t.Fatalf("B's login after losing its entry: %v", err)
	}
	// A's next command reports the change; REPORT LUNS shows the new map.
	resp, err = lun(ca, 4).Do(scsitest.TestUnitReady(), nil, 0)
	if e := resp.SenseError(); err != nil || e == nil || e.Key != scsi.UnitAttention || e.ASC != scsi.ASCReportedLUNsDataChanged {
		t.Fatalf("A after the reload: %v %v", err, resp.Err())
	}
	if got := reportLUNs(t, ca); len(got) != 1 || got[0] != 4 {
		t.Fatalf("A sees LUNs %v after the reload", got)
	}
	if got, err := lun(ca, 4).Read(0, 1, 512); err != nil || len(got) != 512 {
		t.Fatalf("A reads its LUN 4: %v", err)
	}
	// (the reload logs its summary after the logouts it started, which
	// may be after the commands above)
	waitFor(t, 5*time.Second, "the reload summary", func() bool {
		return strings.Contains(r.log.String(), `reloaded the acl`)
	})
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
	inA.Close()
}

// isReject reports whether err is an SRP_LOGIN_REJ with reason.
func isReject(err error, reason uint32) bool {
	var rej *initiator.RejectError
	return errors.As(err, &rej) && rej.Reason == reason
}
