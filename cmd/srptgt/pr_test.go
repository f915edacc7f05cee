package main

import (
	be "encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/srptgt/srptgt/cmd/srptgt/internal/config"
	"github.com/srptgt/srptgt/cmd/srptgt/internal/prstate"
	"github.com/srptgt/srptgt/scsi"
	"github.com/srptgt/srptgt/scsi/scsitest"
)

// prOut sends PERSISTENT RESERVE OUT and fails unless its status is want.
func prOut(t *testing.T, c *scsitest.Client, sa, typ byte, p []byte, want scsi.Status) *scsitest.Response {
	t.Helper()
	resp, err := c.Do(scsitest.PROut(sa, 0, typ, uint32(len(p))), p, 0)
	if err != nil {
		t.Fatalf("PERSISTENT RESERVE OUT %d: %v", sa, err)
	}
	if resp.Status != want {
		t.Fatalf("PERSISTENT RESERVE OUT %d: status %#x (%v), want %#x", sa, resp.Status, resp.Err(), want)
	}
	return resp
}

// readKeys returns PRgeneration and the registered keys.
func readKeys(t *testing.T, c *scsitest.Client) (uint32, []uint64) {
	t.Helper()
	resp, err := c.Do(scsitest.PRIn(scsitest.PRInReadKeys, 1024), nil, 1024)
	if err != nil || resp.Err() != nil {
		t.Fatalf("READ KEYS: %v %v", err, resp.Err())
	}
	d := resp.Data
	var keys []uint64
	for i := 8; i < 8+int(be.BigEndian.Uint32(d[4:])); i += 8 {
		keys = append(keys, be.BigEndian.Uint64(d[i:]))
	}
	return be.BigEndian.Uint32(d), keys
}

// readReservation returns the reservation key and type (0, 0: none).
func readReservation(t *testing.T, c *scsitest.Client) (uint64, byte) {
	t.Helper()
	resp, err := c.Do(scsitest.PRIn(scsitest.PRInReadReservation, 1024), nil, 1024)
	if err != nil || resp.Err() != nil {
		t.Fatalf("READ RESERVATION: %v %v", err, resp.Err())
	}
	if be.BigEndian.Uint32(resp.Data[4:]) == 0 {
		return 0, 0
	}
	return be.BigEndian.Uint64(resp.Data[8:]), resp.Data[21] & 0x0F
}

// TestServePersistentReservationsAPTPL: with target.state_dir, a
// registration made with APTPL=1 and the reservation taken after it are in
// <state_dir>/<lu>/pr before the commands complete, and the next run
// restores them (SPC-4 5.12.5); without APTPL a restart clears them.
func TestServePersistentReservationsAPTPL(t *testing.T) {
	dir := t.TempDir()
	cfg := writeConfig(t, dir, `
target: {state_dir: "%DIR%/state"}
luns:
  - name: shared
    backstore: {kind: memory, size: 8MiB}
`)
	r := startServe(t, cfg, nil)
	r.waitServing()
	in, c := r.dial()
	disk := lun(c, 0)
	disk.ClearUA()
	prOut(t, disk, scsitest.PROutRegister, 0, scsitest.PROutParams{SAKey: 0xFE, APTPL: true}.Bytes(), scsi.StatusGood)
	prOut(t, disk, scsitest.PROutReserve, scsitest.PRTypeWERO, scsitest.PROutParams{Key: 0xFE}.Bytes(), scsi.StatusGood)
	_, st, err := prstate.Load(filepath.Join(dir, "state", "shared"))
	if err != nil || st == nil || st.String() != "aptpl=true registrations=1 reservation=WE-RO" {
		t.Fatalf("saved state %v, %v", st, err)
	}
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
	in.Close()

	r = startServe(t, cfg, nil)
	r.waitServing()
	if !strings.Contains(r.log.String(), "restored persistent reservations\t{\"lu\": \"shared\", \"state\": \"aptpl=true registrations=1 reservation=WE-RO\"}") {
		t.Errorf("log:\n%s", r.log.String())
	}
	in, c = r.dial()
	disk = lun(c, 0)
	disk.ClearUA()
	if gen, keys := readKeys(t, disk); gen != 0 || len(keys) != 1 || keys[0] != 0xFE {
		t.Fatalf("after restart: PRgeneration %d keys %x", gen, keys)
	}
	if key, typ := readReservation(t, disk); key != 0xFE || typ != scsitest.PRTypeWERO {
		t.Fatalf("after restart: reservation %#x type %d", key, typ)
	}
	// APTPL off: saved as such, and the next run starts clear.
	prOut(t, disk, scsitest.PROutRegisterIgnore, 0, scsitest.PROutParams{SAKey: 0xFE}.Bytes(), scsi.StatusGood)
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
	in.Close()
	r = startServe(t, cfg, nil)
	r.waitServing()
	in, c = r.dial()
	disk = lun(c, 0)
	disk.ClearUA()
	if _, keys := readKeys(t, disk); len(keys) != 0 {
		t.Fatalf("APTPL off, after restart: keys %x", keys)
	}
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
	in.Close()
}

// TestServeNoStateDirNoAPTPL: without target.state_dir nothing can be
// saved: REPORT CAPABILITIES says PTPL_C=0 and APTPL=1 is refused with
// INVALID FIELD IN PARAMETER LIST (SPC-4 6.16.3).
func TestServeNoStateDirNoAPTPL(t *testing.T) {
	dir := t.TempDir()
	cfg := writeConfig(t, dir, `luns: [{name: m, backstore: {kind: memory, size: 1MiB}}]`)
	r := startServe(t, cfg, nil)
	r.waitServing()
	in, c := r.dial()
	disk := lun(c, 0)
	disk.ClearUA()
	resp, err := disk.Do(scsitest.PRIn(scsitest.PRInReportCaps, 8), nil, 8)
	if err != nil || resp.Err() != nil || resp.Data[2]&0x01 != 0 {
		t.Fatalf("REPORT CAPABILITIES: %v %v % x", err, resp.Err(), resp.Data)
	}
	resp = prOut(t, disk, scsitest.PROutRegister, 0, scsitest.PROutParams{SAKey: 1, APTPL: true}.Bytes(), scsi.StatusCheckCondition)
	if e := resp.SenseError(); e == nil || e.ASC != scsi.ASCInvalidFieldInParamList {
		t.Fatalf("APTPL=1: %v", resp.Err())
	}
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
	in.Close()
}

// TestServeCorruptPRState: a damaged pr file stops serve — the LU is not
// served without the reservations that may fence an initiator — with an
// error that names the file and what to do.
func TestServeCorruptPRState(t *testing.T) {
	dir := t.TempDir()
	lu := filepath.Join(dir, "state", "m")
	if err := os.MkdirAll(lu, 0o755); err != nil {
		t.Fatal(err)
	}
	torn := "srptgt persistent reservations v1\naptpl 1\nreg 000000000000000a 0000"
	if err := os.WriteFile(filepath.Join(lu, prstate.FileName), []byte(torn), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := writeConfig(t, dir, `
target: {state_dir: "%DIR%/state"}
luns: [{name: m, backstore: {kind: memory, size: 1MiB}}]
`)
	r := startServe(t, cfg, nil)
	var err error
	select {
	case err = <-r.errc:
	case <-waitTimeout():
		t.Fatal("serve started with a torn pr file")
	}
	var ce *config.Error
	if !errors.As(err, &ce) || ce.Line != 2 || !errors.Is(err, scsi.ErrPRStateCorrupt) ||
		!strings.Contains(err.Error(), filepath.Join(lu, "pr")) || !strings.Contains(err.Error(), "remove it to start with no reservations") {
		t.Fatalf("serve: %v", err)
	}
}

func waitTimeout() <-chan time.Time { return time.After(10 * time.Second) }
