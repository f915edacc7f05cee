package srp_test

import (
	"bytes"
	"math/rand"
	"testing"

	"github.com/srptgt/srptgt/scsi"
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
