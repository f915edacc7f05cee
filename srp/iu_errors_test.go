package srp

import (
	"errors"
	"strings"
	"testing"
)

// A valid SRP_CMD with a data-out indirect descriptor (2 of 3 entries in
// the IU) and a direct data-in descriptor; the cases below break it.
func indirectCmd() *Cmd {
	return &Cmd{Tag: 1, CDB: make([]byte, 16),
		Out: BufDesc{Format: BufIndirect, Table: MemDesc{Addr: 0x1000, Key: 1, Len: 48}, TotalLen: 0x3000,
			Partial: []MemDesc{{0x10000, 2, 0x1000}, {0x20000, 2, 0x1000}}},
		In: BufDesc{Format: BufDirect, Direct: MemDesc{Addr: 0x9000, Key: 3, Len: 512}}}
}

func encodeOf(t *testing.T, x codec) []byte {
	t.Helper()
	b := make([]byte, x.Len())
	if _, err := x.Encode(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDecodeRejects(t *testing.T) {
	// Offsets of the indirect descriptor fields in indirectCmd's encoding.
	const (
		tableLen = 48 + 12 // table descriptor length
		totalLen = 48 + 16 // TOTAL LENGTH
	)
	immCmd := &Cmd{Tag: 2, CDB: make([]byte, 16), ImmOffset: LinuxImmDataOffset,
		Out: BufDesc{Format: BufImm, TotalLen: 4}, Imm: []byte{1, 2, 3, 4}}
	rsp := &Rsp{Tag: 3, Flags: RspFlagSnsValid | RspFlagRspValid, RespData: []byte{0, 0, 0, 0}, Sense: fixSense}

	cases := []struct {
		name   string
		x      codec
		mutate func(b []byte) []byte
		kind   error
		field  string
		off    int
	}{
		{"cmd opcode", &Cmd{}, func(b []byte) []byte { b[0] = byte(OpRsp); return b }, ErrBadOpcode, "IU TYPE", 0},
		{"cmd additional CDB past end", &Cmd{}, func(b []byte) []byte { b[31] = 0x10; return append(b, make([]byte, 12)...) },
			ErrShort, "ADDITIONAL CDB LENGTH", 31},
		{"cmd data-out format 4", &Cmd{}, func(b []byte) []byte { b[5] = 0x40; return b },
			ErrBadFormat, "DATA-OUT BUFFER DESCRIPTOR FORMAT", 5},
		{"cmd data-out format 15", &Cmd{}, func(b []byte) []byte { b[5] = 0xF0; return b },
			ErrBadFormat, "DATA-OUT BUFFER DESCRIPTOR FORMAT", 5},
		{"cmd data-in immediate", &Cmd{}, func(b []byte) []byte { b[5] = 0x03; return b },
			ErrBadFormat, "DATA-IN BUFFER DESCRIPTOR FORMAT", 5},
		{"cmd direct descriptor missing", &Cmd{}, func(b []byte) []byte { b[5] = 0x10; return b },
			ErrShort, "DATA-OUT direct data buffer descriptor", 48},
		{"cmd indirect count exceeds bytes", indirectCmd(), func(b []byte) []byte { b[6] = 4; return b },
			ErrShort, "DATA-OUT indirect data buffer descriptor", 48},
		{"cmd indirect count exceeds table", indirectCmd(), func(b []byte) []byte {
			b[6] = 3
			b[tableLen+3] = 32 // table of 2 entries, IU claims 3
			return b
		}, ErrInconsistent, "DATA-OUT DESCRIPTOR COUNT", 48},
		{"cmd table length not a multiple of 16", indirectCmd(), func(b []byte) []byte { b[tableLen+3] = 47; return b },
			ErrInconsistent, "DATA-OUT INDIRECT TABLE DESCRIPTOR LENGTH", 48},
		{"cmd complete table total mismatch", indirectCmd(), func(b []byte) []byte { b[tableLen+3] = 32; return b },
			ErrInconsistent, "DATA-OUT TOTAL LENGTH", 48},
		{"cmd total smaller than partial list", indirectCmd(), func(b []byte) []byte { b[totalLen+2] = 0x10; return b },
			ErrInconsistent, "DATA-OUT TOTAL LENGTH", 48},
		{"cmd data-in direct descriptor cut", indirectCmd(), func(b []byte) []byte { return b[:len(b)-1] },
			ErrShort, "DATA-IN direct data buffer descriptor", 48 + 20 + 32},
		{"cmd immediate data past end", immCmd, func(b []byte) []byte { return b[:len(b)-1] },
			ErrShort, "immediate data length", 48},
		{"cmd immediate length huge", immCmd, func(b []byte) []byte { b[48] = 0xFF; return b },
			ErrShort, "immediate data length", 48},
		{"rsp opcode", rsp, func(b []byte) []byte { b[0] = byte(OpCmd); return b }, ErrBadOpcode, "IU TYPE", 0},
		{"rsp DIOVER and DIUNDER", rsp, func(b []byte) []byte { b[18] |= RspFlagDiOver | RspFlagDiUnder; return b },
			ErrInconsistent, "DIOVER/DIUNDER", 18},
		{"rsp DOOVER and DOUNDER", rsp, func(b []byte) []byte { b[18] |= RspFlagDoOver | RspFlagDoUnder; return b },
			ErrInconsistent, "DOOVER/DOUNDER", 18},
		{"rsp response length past end", rsp, func(b []byte) []byte { b[35] = 200; return b },
			ErrShort, "RESPONSE DATA LIST LENGTH", 32},
		{"rsp response length 2^32-1", rsp, func(b []byte) []byte { copy(b[32:], []byte{0xFF, 0xFF, 0xFF, 0xFF}); return b },
			ErrShort, "RESPONSE DATA LIST LENGTH", 32},
		{"rsp sense length past end", rsp, func(b []byte) []byte { b[31]++; return b },
			ErrShort, "SENSE DATA LIST LENGTH", 28},
		{"rsp sense length 2^32-1", rsp, func(b []byte) []byte { copy(b[28:], []byte{0xFF, 0xFF, 0xFF, 0xFF}); return b },
			ErrShort, "SENSE DATA LIST LENGTH", 28},
		{"aer sense length past end", &AerReq{Sense: fixSense}, func(b []byte) []byte { b[31]++; return b },
			ErrShort, "SENSE DATA LIST LENGTH", 28},
		{"login req opcode", &LoginReq{}, func(b []byte) []byte { b[0] = byte(OpLoginRsp); return b },
			ErrBadOpcode, "IU TYPE", 0},
		{"login rsp short", &LoginRsp{}, func(b []byte) []byte { return b[:51] }, ErrShort, "IU", 0},
		{"tsk mgmt opcode", &TskMgmt{}, func(b []byte) []byte { b[0] = byte(OpCmd); return b }, ErrBadOpcode, "IU TYPE", 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := c.mutate(encodeOf(t, c.x))
			err := fresh(c.x).Decode(b)
			if !errors.Is(err, c.kind) {
				t.Fatalf("err = %v, want %v", err, c.kind)
			}
			var de *DecodeError
			if !errors.As(err, &de) || de.Field != c.field || de.Off != c.off {
				t.Fatalf("err = %#v, want field %q at %d", err, c.field, c.off)
			}
			if !strings.Contains(err.Error(), c.field) {
				t.Fatalf("message %q lacks the field name", err)
			}
		})
	}
}

func TestDecodeImmOffsetBeforeDescriptors(t *testing.T) {
	x := &Cmd{CDB: make([]byte, 16), Out: BufDesc{Format: BufImm, TotalLen: 2}, Imm: []byte{1, 2}}
	b := encodeOf(t, x) // data right after the descriptor, at 52
	y := &Cmd{ImmOffset: 51}
	if err := y.Decode(b); !errors.Is(err, ErrInconsistent) {
		t.Fatalf("offset inside the descriptor: %v", err)
	}
	y.ImmOffset = 52
	if err := y.Decode(b); err != nil || string(y.Imm) != "\x01\x02" {
		t.Fatalf("offset 52: %v %x", err, y.Imm)
	}
}

func TestUnionRejects(t *testing.T) {
	var u IU
	if err := u.Decode(nil); !errors.Is(err, ErrShort) {
		t.Fatalf("empty: %v", err)
	}
	if _, err := PeekOpcode([]byte{0x55}); !errors.Is(err, ErrBadOpcode) {
		t.Fatalf("PeekOpcode(55h): %v", err)
	}
	if err := u.Decode([]byte{0x04, 0, 0, 0}); !errors.Is(err, ErrBadOpcode) || u.Op != 0x04 {
		t.Fatalf("opcode 04h: %v op %v", err, u.Op)
	}
	rsp := encodeOf(t, &Rsp{})
	if err := u.DecodeFromInitiator(rsp); !errors.Is(err, ErrBadOpcode) || u.Op != OpRsp {
		t.Fatalf("SRP_RSP at a target: %v", err)
	}
	cmd := encodeOf(t, &Cmd{})
	if err := u.DecodeFromTarget(cmd); !errors.Is(err, ErrBadOpcode) || u.Op != OpCmd {
		t.Fatalf("SRP_CMD at an initiator: %v", err)
	}
	if err := u.DecodeFromInitiator(cmd[:47]); !errors.Is(err, ErrShort) {
		t.Fatalf("short SRP_CMD: %v", err)
	}
	for op := 0; op < 256; op++ {
		if Opcode(op).Valid() != (Opcode(op).String()[:4] == "SRP_") {
			t.Fatalf("Valid/String disagree for %#x", op)
		}
	}
	u.Op = 0x55
	if _, err := u.Encode(make([]byte, 64)); !errors.Is(err, ErrInvalid) || u.Len() != 0 {
		t.Fatalf("Encode of unknown opcode: %v", err)
	}
}

func TestDecodeDescTableRejects(t *testing.T) {
	if _, err := DecodeDescTable(make([]byte, 17), nil); !errors.Is(err, ErrShort) {
		t.Fatalf("17 bytes: %v", err)
	}
	dst := make([]MemDesc, 0, 2)
	got, err := DecodeDescTable(make([]byte, 32), dst)
	if err != nil || len(got) != 2 || &got[0] != &dst[:1][0] {
		t.Fatalf("did not reuse dst: %v", err)
	}
	if _, err := EncodeDescTable(make([]byte, 15), []MemDesc{{}}); !errors.Is(err, ErrBufferTooSmall) {
		t.Fatalf("EncodeDescTable short: %v", err)
	}
	var d BufDesc
	if err := d.ValidateTable(nil); !errors.Is(err, ErrInconsistent) {
		t.Fatalf("ValidateTable on a non-indirect descriptor: %v", err)
	}
}

func TestEncodeRejects(t *testing.T) {
	cases := []struct {
		name string
		x    codec
		kind error
	}{
		{"login req multichannel 4", &LoginReq{MultiChannel: 4}, ErrInvalid},
		{"login req flags bit 0", &LoginReq{Flags: 0x01}, ErrInvalid},
		{"login rsp multichannel 4", &LoginRsp{MultiChannel: 4}, ErrInvalid},
		{"login rsp flags bit 1", &LoginRsp{Flags: 0x02}, ErrInvalid},
		{"cmd CDB of 269 bytes", &Cmd{CDB: make([]byte, 269)}, ErrInvalid},
		{"cmd task attribute 8", &Cmd{TaskAttr: 8}, ErrInvalid},
		{"cmd data-in immediate", &Cmd{In: BufDesc{Format: BufImm}}, ErrInvalid},
		{"cmd data-out format 4", &Cmd{Out: BufDesc{Format: 4}}, ErrInvalid},
		{"cmd immediate data without format", &Cmd{Imm: []byte{1}}, ErrInvalid},
		{"cmd immediate offset inside descriptors", &Cmd{ImmOffset: 50, Out: BufDesc{Format: BufImm}, Imm: []byte{1}}, ErrInvalid},
		{"cmd indirect total mismatch", &Cmd{Out: BufDesc{Format: BufIndirect, Table: MemDesc{Len: 16}, TotalLen: 1,
			Partial: []MemDesc{{Len: 2}}}}, ErrInvalid},
		{"cmd indirect 256 descriptors", &Cmd{In: BufDesc{Format: BufIndirect, Table: MemDesc{Len: 256 * 16},
			Partial: make([]MemDesc, 256)}}, ErrInvalid},
		{"rsp DIOVER and DIUNDER", &Rsp{Flags: RspFlagDiOver | RspFlagDiUnder}, ErrInvalid},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := c.x.Encode(make([]byte, 8192))
			var ee *EncodeError
			if !errors.Is(err, c.kind) || !errors.As(err, &ee) || ee.Error() == "" {
				t.Fatalf("err = %v, want %v", err, c.kind)
			}
		})
	}
	if _, err := (&LoginReq{MultiChannel: 4}).EncodeRDMA(make([]byte, 56)); !errors.Is(err, ErrInvalid) {
		t.Fatalf("EncodeRDMA: %v", err)
	}
	if _, err := (&LoginReq{}).EncodeRDMA(make([]byte, 55)); !errors.Is(err, ErrBufferTooSmall) {
		t.Fatalf("EncodeRDMA short: %v", err)
	}
}

// Encode pads short CDBs to 16 bytes and long ones to whole words.
func TestCmdCDBPadding(t *testing.T) {
	for _, c := range []struct{ in, wire int }{{0, 16}, {6, 16}, {16, 16}, {17, 20}, {32, 32}, {268, 268}} {
		x := &Cmd{CDB: make([]byte, c.in)}
		for i := range x.CDB {
			x.CDB[i] = byte(i + 1)
		}
		b := encodeOf(t, x)
		var y Cmd
		if err := y.Decode(b); err != nil || len(y.CDB) != c.wire || int(b[31]) != c.wire-16 {
			t.Fatalf("CDB %d: err %v, decoded %d bytes, field %d", c.in, err, len(y.CDB), b[31])
		}
		for i, v := range y.CDB {
			if want := byte(0); i < c.in && v != byte(i+1) || i >= c.in && v != want {
				t.Fatalf("CDB %d: byte %d = %d", c.in, i, v)
			}
		}
	}
	// Reserved low bits of ADDITIONAL CDB LENGTH are ignored.
	b := encodeOf(t, &Cmd{CDB: make([]byte, 20)})
	b[31] |= 0x03
	var y Cmd
	if err := y.Decode(b); err != nil || len(y.CDB) != 20 {
		t.Fatalf("reserved bits: %v %d", err, len(y.CDB))
	}
}
