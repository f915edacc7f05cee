package srp

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// Fuzz targets, one per decoder. Each checks that the decoder does not
// panic and that whatever it accepts re-encodes to something that decodes
// to the same value. The seed corpus lives in testdata/fuzz/<FuzzName>/ and
// is (re)written from seedIUs by
//
//	go test ./srp -run TestWriteSeedCorpus -srp.write-corpus

// linuxLoginRDMA is the 56-byte login the Linux 6.1 initiator sent over
// RDMA CM in the VM (shared/notes/vm-rdma.md).
var linuxLoginRDMA = []byte{
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x06, 0x80, 0x00, 0x00, 0x00, 0x20, 0x44,
	0xfe, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0xfe, 0x00, 0x00, 0x01,
	0x00, 0x00, 0x00, 0xff, 0xfe, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0xff, 0xfe, 0x00, 0x00, 0x01,
	0x00, 0x44, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
}

// seedIUs returns one or more representative values of every IU type.
func seedIUs() []codec {
	read10 := []byte{0x28, 0, 0, 0, 0x10, 0, 0, 0, 0x08, 0, 0, 0, 0, 0, 0, 0}
	return []codec{
		&LoginReq{Tag: 1, MaxITIULen: 8260, BufFmt: BufFmtDirect | BufFmtIndirect, Flags: LoginFlagImmData,
			ImmDataOffset: 68, InitiatorPortID: iportID, TargetPortID: tportID},
		&LoginRsp{Tag: 1, ReqLimDelta: 128, MaxITIULen: 8260, MaxTIIULen: 256, BufFmt: 6,
			MultiChannel: MultiChanTerminated, Flags: LoginRspFlagImmData},
		&LoginRej{Tag: 1, Reason: RejChannelLimit, BufFmt: 6},
		&ILogout{Tag: 2},
		&TLogout{Tag: 3, Reason: TLogoutInvalidIUType, SolNt: FlagSolNt},
		&TskMgmt{Tag: 4, LUN: 1 << 48, Function: TMFLogicalUnitReset, SolNt: FlagSCSolNt | FlagUCSolNt},
		&CredReq{Tag: 5, ReqLimDelta: 16, SolNt: FlagSolNt},
		&CredRsp{Tag: 5},
		&AerReq{Tag: 6, ReqLimDelta: 1, LUN: 1 << 48, Sense: fixSense},
		&AerRsp{Tag: 6},
		&Cmd{Tag: 7, CDB: read10, In: BufDesc{Format: BufDirect, Direct: MemDesc{Addr: 0x7f0012345000, Key: 0xabcd, Len: 4096}}},
		indirectCmd(),
		&Cmd{Tag: 8, CDB: make([]byte, 32), TaskAttr: TaskACA,
			In: BufDesc{Format: BufIndirect, Table: MemDesc{Addr: 0x2000, Key: 0x44, Len: 32}, TotalLen: 0x600,
				Partial: []MemDesc{{0xa0000, 0x44, 0x200}, {0xb0000, 0x44, 0x400}}}},
		&Cmd{Tag: 9, CDB: []byte{0x2a, 0, 0, 0, 0, 0x20, 0, 0, 0x01}, ImmOffset: LinuxImmDataOffset,
			Out: BufDesc{Format: BufImm, TotalLen: 8}, Imm: []byte("deadbeef")},
		&Rsp{Tag: 7, ReqLimDelta: 1, Flags: RspFlagDiUnder, DataInResidual: 512},
		&Rsp{Tag: 8, Flags: RspFlagSnsValid, Status: 0x02, Sense: fixSense},
		&Rsp{Tag: 9, Flags: RspFlagRspValid, RespData: []byte{0, 0, 0, RspCodeNotSupported}},
	}
}

func mustEncode(tb testing.TB, x codec) []byte {
	b := make([]byte, x.Len())
	if _, err := x.Encode(b); err != nil {
		tb.Fatalf("Encode(%+v): %v", x, err)
	}
	return b
}

func fuzzOne(t *testing.T, x codec, b []byte) {
	if x.Decode(b) == nil {
		reencode(t, x)
	}
}

func FuzzDecodeLoginReq(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) { fuzzOne(t, &LoginReq{}, b) })
}

func FuzzDecodeLoginReqRDMA(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		var x LoginReq
		if x.DecodeRDMA(b) != nil {
			return
		}
		enc := make([]byte, LoginReqRDMALen)
		if _, err := x.EncodeRDMA(enc); err != nil {
			t.Fatalf("EncodeRDMA: %v", err)
		}
		var y LoginReq
		if err := y.DecodeRDMA(enc); err != nil || y != x {
			t.Fatalf("decode/encode/decode: %v\n got %+v\nwant %+v", err, y, x)
		}
		// The 64-byte form carries the same login.
		if err := y.Decode(mustEncode(t, &x)); err != nil || y != x {
			t.Fatalf("RDMA -> IU form: %v", err)
		}
	})
}

func FuzzDecodeLoginRsp(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) { fuzzOne(t, &LoginRsp{}, b) })
}

func FuzzDecodeLoginRej(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) { fuzzOne(t, &LoginRej{}, b) })
}

func FuzzDecodeTskMgmt(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) { fuzzOne(t, &TskMgmt{}, b) })
}

func FuzzDecodeCmd(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte, immOff uint16) {
		x := &Cmd{ImmOffset: immOff}
		if x.Decode(b) != nil {
			return
		}
		reencode(t, x)
		// Indirect descriptors: a table equal to the partial list validates
		// when the IU carries all of it.
		for _, d := range []*BufDesc{&x.Out, &x.In} {
			if d.Complete() {
				tbl, err := DecodeDescTable(mustEncodeTable(d.Partial), nil)
				if err != nil || d.ValidateTable(tbl) != nil {
					t.Fatalf("complete table does not validate: %v", err)
				}
			}
		}
	})
}

func mustEncodeTable(d []MemDesc) []byte {
	b := make([]byte, len(d)*MemDescLen)
	if _, err := EncodeDescTable(b, d); err != nil {
		panic(err)
	}
	return b
}

func FuzzDecodeRsp(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) { fuzzOne(t, &Rsp{}, b) })
}

func FuzzDecodeAerReq(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) { fuzzOne(t, &AerReq{}, b) })
}

func FuzzDecodeIU(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte, immOff uint16) {
		var u IU
		u.Cmd.ImmOffset = immOff
		errI := u.DecodeFromInitiator(b)
		errT := u.DecodeFromTarget(b)
		if err := u.Decode(b); err != nil {
			if errI == nil || errT == nil {
				t.Fatalf("Decode failed (%v) but a directional decode succeeded", err)
			}
			return
		}
		if (errI == nil) == (errT == nil) {
			t.Fatalf("exactly one direction must accept %v: %v / %v", u.Op, errI, errT)
		}
		enc := make([]byte, u.Len())
		if _, err := u.Encode(enc); err != nil {
			t.Fatalf("Encode: %v", err)
		}
		var v IU
		v.Cmd.ImmOffset = immOff
		if err := v.Decode(enc); err != nil || !iuEqual(&u, &v) {
			t.Fatalf("decode/encode/decode of %v: %v", u.Op, err)
		}
	})
}

func FuzzDecodeDescTable(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := DecodeDescTable(b, nil)
		if (err == nil) != (len(b)%MemDescLen == 0) {
			t.Fatalf("%d bytes: %v", len(b), err)
		}
		if err == nil && !bytes.Equal(mustEncodeTable(d), b) {
			t.Fatal("table does not re-encode to the same bytes")
		}
	})
}

var writeCorpus = flag.Bool("srp.write-corpus", false, "rewrite testdata/fuzz seed corpus from seedIUs")

// TestWriteSeedCorpus writes the checked-in seed corpus (only with
// -srp.write-corpus); without the flag it checks that every fuzz target
// has seeds.
func TestWriteSeedCorpus(t *testing.T) {
	type seed struct {
		name string
		data []byte
		imm  uint16
		hasU bool // the target takes a uint16 immediate data offset too
	}
	corpus := map[string][]seed{}
	add := func(target, name string, b []byte, imm uint16, hasU bool) {
		corpus[target] = append(corpus[target], seed{name, b, imm, hasU})
	}
	var table []MemDesc
	for i, x := range seedIUs() {
		b := mustEncode(t, x)
		name := fmt.Sprintf("seed-%02d-%s", i, opOf(x))
		var imm uint16
		if c, ok := x.(*Cmd); ok {
			imm = c.ImmOffset
			if c.Out.Format == BufIndirect {
				table = append(table, c.Out.Partial...)
			}
		}
		add("FuzzDecodeIU", name, b, imm, true)
		switch x.(type) {
		case *LoginReq:
			add("FuzzDecodeLoginReq", name, b, 0, false)
			rd := make([]byte, LoginReqRDMALen)
			if _, err := x.(*LoginReq).EncodeRDMA(rd); err != nil {
				t.Fatal(err)
			}
			add("FuzzDecodeLoginReqRDMA", name+"-rdma", rd, 0, false)
		case *LoginRsp:
			add("FuzzDecodeLoginRsp", name, b, 0, false)
		case *LoginRej:
			add("FuzzDecodeLoginRej", name, b, 0, false)
		case *TskMgmt:
			add("FuzzDecodeTskMgmt", name, b, 0, false)
		case *Cmd:
			add("FuzzDecodeCmd", name, b, imm, true)
		case *Rsp:
			add("FuzzDecodeRsp", name, b, 0, false)
		case *AerReq:
			add("FuzzDecodeAerReq", name, b, 0, false)
		}
	}
	add("FuzzDecodeLoginReqRDMA", "linux-6.1-wire", linuxLoginRDMA, 0, false)
	add("FuzzDecodeDescTable", "seed-table", mustEncodeTable(table), 0, false)

	for target, seeds := range corpus {
		dir := filepath.Join("testdata", "fuzz", target)
		if !*writeCorpus {
			if ents, err := os.ReadDir(dir); err != nil || len(ents) < len(seeds) {
				t.Errorf("%s: %d seed files, want at least %d (%v); run with -srp.write-corpus", dir, len(ents), len(seeds), err)
			}
			continue
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for _, s := range seeds {
			body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", s.data)
			if s.hasU {
				body += fmt.Sprintf("uint16(%d)\n", s.imm)
			}
			if err := os.WriteFile(filepath.Join(dir, s.name), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}
