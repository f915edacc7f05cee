package scsi_test

import (
	"bytes"
	"testing"

	"github.com/srptgt/srptgt/backstore"
	"github.com/srptgt/srptgt/scsi"
	"github.com/srptgt/srptgt/scsi/scsitest"
)

// A READ from a store that lends its bytes (backstore.Viewer) to a
// transport that takes any memory (InViewOK) hands the store's bytes over
// as InView, with the same data, length and residuals as a read into
// DataIn; without InViewOK, or from a store that does not lend, DataIn
// is filled as always.
func TestReadLendsStoreBytes(t *testing.T) {
	pat, err := backstore.Open(backstore.Spec{Kind: backstore.KindNull, Size: 1 << 30, NullPattern: "0x0102030405"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		store  backstore.Store
		viewOK bool
		lent   bool
	}{
		{"null, view allowed", pat, true, true},
		{"null, view not allowed", pat, false, false},
		{"memory store", memStore(t, 1<<20, 512), true, false},
	} {
		p := newReadPath(t, tc.store)
		want := make([]byte, 4096)
		if _, err := tc.store.ReadAt(want, 8*512); err != nil {
			t.Fatal(err)
		}
		c := &p.c
		c.Reset()
		c.CDB, c.LUN, c.Tag = p.cdb, p.lun, 1
		c.DataIn = bytes.Repeat([]byte{0xee}, 8192) // more than the CDB asks for
		c.InViewOK = tc.viewOK
		p.n.Execute(c)
		if c.Status != scsi.StatusGood || c.InLen != 4096 {
			t.Fatalf("%s: status %#x InLen %d", tc.name, c.Status, c.InLen)
		}
		if lent := c.InView != nil; lent != tc.lent {
			t.Fatalf("%s: lent %v, want %v", tc.name, lent, tc.lent)
		}
		if !bytes.Equal(c.InData(), want) {
			t.Fatalf("%s: data-in differs from the store's bytes", tc.name)
		}
		if tc.lent && !bytes.Equal(c.DataIn, bytes.Repeat([]byte{0xee}, 8192)) {
			t.Fatalf("%s: a lent read also wrote DataIn", tc.name)
		}
		if inOver, inUnder, _, _ := c.Residuals(); inOver != 0 || inUnder != 4096 {
			t.Fatalf("%s: data-in residuals over %d under %d; want an underflow of 4096", tc.name, inOver, inUnder)
		}
		c.DoneView()
		if c.InView != nil {
			t.Fatalf("%s: InView kept after DoneView", tc.name)
		}
		// an out-of-range read is refused whether or not a view is allowed
		c.Reset()
		c.CDB, c.LUN, c.Tag = scsitest.RW16(0x88, 0, 1<<40, 8), p.lun, 2
		c.DataIn, c.InViewOK = make([]byte, 4096), tc.viewOK
		p.n.Execute(c)
		if c.Status != scsi.StatusCheckCondition || c.InView != nil || c.InLen != 0 {
			t.Fatalf("%s: read past the end: status %#x InView %v InLen %d", tc.name, c.Status, c.InView != nil, c.InLen)
		}
	}
}
