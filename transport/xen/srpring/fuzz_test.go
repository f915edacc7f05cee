package srpring

import (
	"bytes"
	"testing"

	"github.com/srptgt/srptgt/srp"
)

// seedSlots are valid request slots: a login, commands with each
// descriptor format, a task management function, a logout.
func seedSlots(t testing.TB) [][]byte {
	ius := []srp.IU{
		{Op: srp.OpLoginReq, LoginReq: srp.LoginReq{Tag: 1, MaxITIULen: 248, BufFmt: srp.BufFmtDirect | srp.BufFmtIndirect}},
		{Op: srp.OpCmd, Cmd: srp.Cmd{Tag: 2, LUN: 0, CDB: []byte{0x28, 0, 0, 0, 0, 1, 0, 0, 8, 0},
			In: srp.BufDesc{Format: srp.BufDirect, Direct: srp.MemDesc{Addr: 0, Key: 9, Len: 4096}}}},
		{Op: srp.OpCmd, Cmd: srp.Cmd{Tag: 3, CDB: []byte{0x2a, 0, 0, 0, 0, 1, 0, 0, 16, 0},
			Out: srp.BufDesc{Format: srp.BufIndirect, Table: srp.MemDesc{Addr: RegionFlag, Key: 10, Len: 32}, TotalLen: 8192,
				Partial: []srp.MemDesc{{Addr: RegionFlag, Key: 11, Len: 4096}, {Addr: RegionFlag | 4096, Key: 11, Len: 4096}}}}},
		{Op: srp.OpTskMgmt, TskMgmt: srp.TskMgmt{Tag: 4, Function: srp.TMFAbortTask, TaskTag: 2}},
		{Op: srp.OpILogout, ILogout: srp.ILogout{Tag: 5}},
	}
	var out [][]byte
	for i := range ius {
		s := make([]byte, 256)
		n, err := ius[i].Encode(s[SlotHeader:])
		if err != nil {
			t.Fatal(err)
		}
		PutSlot(s, n)
		out = append(out, s)
	}
	return out
}

// FuzzRequestSlot feeds arbitrary slots to the backend's decoder: it
// must never panic, and a slot it accepts must re-encode to an IU that
// decodes to the same thing.
func FuzzRequestSlot(f *testing.F) {
	for _, s := range seedSlots(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, slot []byte) {
		var iu srp.IU
		iu.Cmd.DescBuf = make([]srp.MemDesc, 0, 4)
		if err := DecodeRequest(slot, &iu); err != nil {
			return
		}
		for _, d := range descsOf(&iu) {
			CheckDesc(d) // must not panic
		}
		b := make([]byte, 1<<16)
		n, err := iu.Encode(b)
		if err != nil {
			return // the codec accepts some IUs it would not produce
		}
		var again srp.IU
		if err := again.DecodeFromInitiator(b[:n]); err != nil {
			t.Fatalf("re-encoded %v does not decode: %v", iu.Op, err)
		}
		b2 := make([]byte, 1<<16)
		n2, err := again.Encode(b2)
		if err != nil || !bytes.Equal(b[:n], b2[:n2]) {
			t.Fatalf("%v does not round-trip: %v", iu.Op, err)
		}
	})
}

func descsOf(iu *srp.IU) []srp.MemDesc {
	if iu.Op != srp.OpCmd {
		return nil
	}
	var out []srp.MemDesc
	for _, b := range []*srp.BufDesc{&iu.Cmd.Out, &iu.Cmd.In} {
		switch b.Format {
		case srp.BufDirect:
			out = append(out, b.Direct)
		case srp.BufIndirect:
			out = append(out, b.Table)
			out = append(out, b.Partial...)
		}
	}
	return out
}

func TestSeedSlotsDecode(t *testing.T) {
	for i, s := range seedSlots(t) {
		var iu srp.IU
		if err := DecodeRequest(s, &iu); err != nil {
			t.Errorf("seed %d: %v", i, err)
		}
		// Every strict prefix of the IU is refused.
		b, _ := SlotIU(s)
		for n := 1; n < len(b); n++ {
			p := append([]byte(nil), s...)
			PutSlot(p, n)
			if iu.Op == srp.OpCmd && n >= srp.CmdMinLen {
				continue // a shorter command may still be a valid one
			}
			if err := DecodeRequest(p, &iu); err == nil {
				t.Errorf("seed %d: prefix of %d bytes accepted", i, n)
			}
		}
	}
	for _, bad := range [][]byte{nil, make([]byte, 7), make([]byte, 256)} {
		var iu srp.IU
		if err := DecodeRequest(bad, &iu); err == nil {
			t.Errorf("slot %x accepted", bad)
		}
	}
	s := seedSlots(t)[0]
	PutSlot(s, 1000) // a length word past the slot
	var iu srp.IU
	if err := DecodeRequest(s, &iu); err == nil {
		t.Error("lying length accepted")
	}
}

func srpDesc(addr uint64, n uint32) srp.MemDesc { return srp.MemDesc{Addr: addr, Key: 1, Len: n} }
