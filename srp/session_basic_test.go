package srp_test

import (
	"bytes"
	"math/rand"
	"testing"

	"github.com/srptgt/srptgt/backstore"
	"github.com/srptgt/srptgt/scsi"
	"github.com/srptgt/srptgt/scsi/scsitest"
	"github.com/srptgt/srptgt/srp"
	"github.com/srptgt/srptgt/srp/initiator"
	"github.com/srptgt/srptgt/transport"
)

// Reference: SRP r16a 6.2-6.3, SPC-4 6.6 — a login followed by commands
// with every descriptor format reads back what it wrote.
func TestSessionReadWriteAllFormats(t *testing.T) {
	e := newEnv(t, transport.MemConfig{}, srp.Config{}, memStore(t, 8<<20))
	for _, tc := range []struct {
		name string
		cfg  initiator.Config
	}{
		{"direct", initiator.Config{}},
		{"indirect", initiator.Config{Mode: initiator.Indirect, Segments: 5}},
		{"partial-indirect", initiator.Config{Mode: initiator.IndirectPartial, Segments: 7, InIU: 2}},
		{"immediate", initiator.Config{ImmData: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := e.mustDial(tc.cfg)
			if tc.cfg.ImmData && !in.ImmData() {
				t.Fatal("target did not accept immediate data")
			}
			c := client(in, 0)
			if err := c.ClearUA(); err != nil {
				t.Fatal(err)
			}
			rnd := rand.New(rand.NewSource(1))
			for i := 0; i < 50; i++ {
				n := 1 + rnd.Intn(16)
				lba := uint64(rnd.Intn(8<<20/512 - n))
				data := make([]byte, n*512)
				rnd.Read(data)
				if err := c.Write(lba, data, 512); err != nil {
					t.Fatal(err)
				}
				got, err := c.Read(lba, uint32(n), 512)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, data) {
					t.Fatalf("lba %d: read back differs", lba)
				}
			}
			r, err := c.Do([]byte{0x12, 0, 0, 0, 255, 0}, nil, 255)
			if err != nil || r.Status != scsi.StatusGood {
				t.Fatalf("inquiry: %v %v", err, r)
			}
			if r.InResidual != 255-96 || len(r.Data) != 96 {
				t.Fatalf("inquiry residual %d, %d bytes", r.InResidual, len(r.Data))
			}
		})
	}
}

// A null LU lends its bytes (backstore.Viewer) to a channel that copies
// data-in from any memory (the in-memory transport, like the Xen rings):
// every descriptor format receives exactly the pattern the store reads,
// at any offset, and an oversized buffer reports the underflow.
func TestSessionReadsLentBytes(t *testing.T) {
	st, err := backstore.Open(backstore.Spec{Kind: backstore.KindNull, Size: 64 << 20, NullPattern: "0x0102030405060708090a"})
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, transport.MemConfig{}, srp.Config{}, st)
	for _, cfg := range []initiator.Config{{}, {Mode: initiator.Indirect, Segments: 5}, {Mode: initiator.IndirectPartial, Segments: 7, InIU: 2}} {
		in := e.mustDial(cfg)
		c := client(in, 0)
		if err := c.ClearUA(); err != nil {
			t.Fatal(err)
		}
		for _, r := range [][2]int{{0, 1}, {3, 8}, {77, 128}, {1001, 255}} {
			want := make([]byte, r[1]*512)
			if _, err := st.ReadAt(want, int64(r[0])*512); err != nil {
				t.Fatal(err)
			}
			got, err := c.Read(uint64(r[0]), uint32(r[1]), 512)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("%+v: LBA %d, %d blocks: read differs from the store's bytes", cfg, r[0], r[1])
			}
		}
		resp, err := c.Do(scsitest.RW16(0x88, 0, 5, 4), nil, 4*512+100)
		if err != nil || resp.Status != scsi.StatusGood || resp.InResidual != 100 || len(resp.Data) != 4*512 {
			t.Fatalf("%+v: READ into a larger buffer: %v, %+v", cfg, err, resp)
		}
		in.Close()
	}
}
