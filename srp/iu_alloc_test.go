package srp

import "testing"

// The per-command path (SRP_CMD in, SRP_RSP out, and the reverse on the Go
// initiator) allocates nothing.

func allocCmds() map[string]*Cmd {
	read10 := []byte{0x28, 0, 0, 0, 0x10, 0, 0, 0, 0x08, 0, 0, 0, 0, 0, 0, 0}
	return map[string]*Cmd{
		"direct": {Tag: 7, CDB: read10,
			In: BufDesc{Format: BufDirect, Direct: MemDesc{Addr: 0x7f0012345000, Key: 0xabcd, Len: 4096}}},
		"indirect": indirectCmd(),
		"immediate": {Tag: 9, CDB: read10, ImmOffset: LinuxImmDataOffset,
			Out: BufDesc{Format: BufImm, TotalLen: 4096}, Imm: make([]byte, 4096)},
	}
}

func allocRsp() *Rsp {
	return &Rsp{Tag: 8, ReqLimDelta: 1, Flags: RspFlagSnsValid | RspFlagDiUnder, Status: 0x02,
		DataInResidual: 512, Sense: fixSense}
}

func TestCmdRspZeroAlloc(t *testing.T) {
	buf := make([]byte, 8192)
	for name, x := range allocCmds() {
		enc := mustEncode(t, x)
		dec := &Cmd{ImmOffset: x.ImmOffset, DescBuf: make([]MemDesc, 0, 8)}
		if n := testing.AllocsPerRun(1000, func() {
			if err := dec.Decode(enc); err != nil {
				panic(err)
			}
		}); n != 0 {
			t.Errorf("Cmd.Decode(%s): %v allocs", name, n)
		}
		var u IU
		u.Cmd.ImmOffset = x.ImmOffset
		u.Cmd.DescBuf = make([]MemDesc, 0, 8)
		if n := testing.AllocsPerRun(1000, func() {
			if err := u.DecodeFromInitiator(enc); err != nil {
				panic(err)
			}
		}); n != 0 {
			t.Errorf("IU.DecodeFromInitiator(%s): %v allocs", name, n)
		}
		if n := testing.AllocsPerRun(1000, func() {
			if _, err := x.Encode(buf); err != nil {
				panic(err)
			}
		}); n != 0 {
			t.Errorf("Cmd.Encode(%s): %v allocs", name, n)
		}
	}
	x := allocRsp()
	enc := mustEncode(t, x)
	var dec Rsp
	if n := testing.AllocsPerRun(1000, func() {
		if err := dec.Decode(enc); err != nil {
			panic(err)
		}
	}); n != 0 {
		t.Errorf("Rsp.Decode: %v allocs", n)
	}
	if n := testing.AllocsPerRun(1000, func() {
		if _, err := x.Encode(buf); err != nil {
			panic(err)
		}
	}); n != 0 {
		t.Errorf("Rsp.Encode: %v allocs", n)
	}
	var u IU
	if n := testing.AllocsPerRun(1000, func() {
		if err := u.DecodeFromTarget(enc); err != nil {
			panic(err)
		}
	}); n != 0 {
		t.Errorf("IU.DecodeFromTarget(SRP_RSP): %v allocs", n)
	}
}

func BenchmarkCmdDecode(b *testing.B) {
	for name, x := range allocCmds() {
		b.Run(name, func(b *testing.B) {
			enc := mustEncode(b, x)
			dec := &Cmd{ImmOffset: x.ImmOffset, DescBuf: make([]MemDesc, 0, 8)}
			b.ReportAllocs()
			for b.Loop() {
				if err := dec.Decode(enc); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkCmdEncode(b *testing.B) {
	buf := make([]byte, 8192)
	for name, x := range allocCmds() {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := x.Encode(buf); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkRspDecode(b *testing.B) {
	enc := mustEncode(b, allocRsp())
	var dec Rsp
	b.ReportAllocs()
	for b.Loop() {
		if err := dec.Decode(enc); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRspEncode(b *testing.B) {
	x := allocRsp()
	buf := make([]byte, 256)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := x.Encode(buf); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkIUDecodeFromInitiator(b *testing.B) {
	enc := mustEncode(b, allocCmds()["direct"])
	var u IU
	b.ReportAllocs()
	for b.Loop() {
		if err := u.DecodeFromInitiator(enc); err != nil {
			b.Fatal(err)
		}
	}
}
