package srp

import (
	"bytes"
	"errors"
	"testing"

	"pgregory.net/rapid"
)

// Generators. Every generated IU is valid, so Encode must succeed and
// Decode must give it back.

func genPortID(t *rapid.T, name string) (p [16]byte) {
	copy(p[:], rapid.SliceOfN(rapid.Byte(), 16, 16).Draw(t, name))
	return p
}

func genBytes(t *rapid.T, name string, max int) []byte {
	b := rapid.SliceOfN(rapid.Byte(), 0, max).Draw(t, name)
	if len(b) == 0 {
		return nil
	}
	return b
}

func genMemDesc(t *rapid.T, name string, maxLen uint32) MemDesc {
	return MemDesc{
		Addr: rapid.Uint64().Draw(t, name+".addr"),
		Key:  rapid.Uint32().Draw(t, name+".key"),
		Len:  rapid.Uint32Range(0, maxLen).Draw(t, name+".len"),
	}
}

func genLoginReq(t *rapid.T) *LoginReq {
	return &LoginReq{
		Tag:             rapid.Uint64().Draw(t, "tag"),
		MaxITIULen:      rapid.Uint32().Draw(t, "maxit"),
		BufFmt:          rapid.Uint16().Draw(t, "buffmt"),
		MultiChannel:    rapid.Uint8Range(0, 3).Draw(t, "mca"),
		Flags:           rapid.Uint8().Draw(t, "flags") &^ 3,
		ImmDataOffset:   rapid.Uint16().Draw(t, "immoff"),
		InitiatorPortID: genPortID(t, "iport"),
		TargetPortID:    genPortID(t, "tport"),
	}
}

func genLoginRsp(t *rapid.T) *LoginRsp {
	return &LoginRsp{
		Tag:          rapid.Uint64().Draw(t, "tag"),
		ReqLimDelta:  rapid.Int32().Draw(t, "delta"),
		MaxITIULen:   rapid.Uint32().Draw(t, "maxit"),
		MaxTIIULen:   rapid.Uint32().Draw(t, "maxti"),
		BufFmt:       rapid.Uint16().Draw(t, "buffmt"),
		MultiChannel: rapid.Uint8Range(0, 3).Draw(t, "mcr"),
		Flags:        rapid.Uint8().Draw(t, "flags") &^ 3,
	}
}

func genLoginRej(t *rapid.T) *LoginRej {
	return &LoginRej{Tag: rapid.Uint64().Draw(t, "tag"), Reason: rapid.Uint32().Draw(t, "reason"),
		BufFmt: rapid.Uint16().Draw(t, "buffmt")}
}

func genTskMgmt(t *rapid.T) *TskMgmt {
	return &TskMgmt{Tag: rapid.Uint64().Draw(t, "tag"), LUN: rapid.Uint64().Draw(t, "lun"),
		Function: rapid.Uint8().Draw(t, "fn"), TaskTag: rapid.Uint64().Draw(t, "tasktag"),
		SolNt: rapid.Uint8().Draw(t, "solnt")}
}

func genAerReq(t *rapid.T) *AerReq {
	return &AerReq{Tag: rapid.Uint64().Draw(t, "tag"), ReqLimDelta: rapid.Int32().Draw(t, "delta"),
		LUN: rapid.Uint64().Draw(t, "lun"), Sense: genBytes(t, "sense", 260), SolNt: rapid.Uint8().Draw(t, "solnt")}
}

func genRsp(t *rapid.T) *Rsp {
	x := &Rsp{
		Tag:             rapid.Uint64().Draw(t, "tag"),
		ReqLimDelta:     rapid.Int32().Draw(t, "delta"),
		SolNt:           rapid.Uint8().Draw(t, "solnt"),
		Status:          rapid.Uint8().Draw(t, "status"),
		DataOutResidual: rapid.Uint32().Draw(t, "doresid"),
		DataInResidual:  rapid.Uint32().Draw(t, "diresid"),
		RespData:        genBytes(t, "resp", 8),
		Sense:           genBytes(t, "sense", 260),
	}
	flags := rapid.Uint8().Draw(t, "flags")
	if flags&(RspFlagDoOver|RspFlagDoUnder) == RspFlagDoOver|RspFlagDoUnder {
		flags &^= RspFlagDoOver
	}
	if flags&(RspFlagDiOver|RspFlagDiUnder) == RspFlagDiOver|RspFlagDiUnder {
		flags &^= RspFlagDiUnder
	}
	// Encode sets a valid bit for present data; a valid bit without data
	// is allowed (length 0).
	if x.RespData != nil {
		flags |= RspFlagRspValid
	}
	if x.Sense != nil {
		flags |= RspFlagSnsValid
	}
	x.Flags = flags
	return x
}

func genBufDesc(t *rapid.T, dir string, maxFmt BufFormat) BufDesc {
	d := BufDesc{Format: BufFormat(rapid.Uint8Range(0, uint8(maxFmt)).Draw(t, dir+".fmt"))}
	switch d.Format {
	case BufNone, BufImm:
		d.Count = rapid.Uint8().Draw(t, dir+".count")
	case BufDirect:
		d.Count = rapid.Uint8().Draw(t, dir+".count")
		d.Direct = genMemDesc(t, dir+".direct", ^uint32(0))
	case BufIndirect:
		entries := rapid.IntRange(0, 40).Draw(t, dir+".entries")
		n := rapid.IntRange(0, entries).Draw(t, dir+".partial")
		var sum uint32
		for i := 0; i < n; i++ {
			m := genMemDesc(t, dir+".entry", 1<<20)
			d.Partial = append(d.Partial, m)
			sum += m.Len
		}
		d.Count = uint8(n)
		d.Table = MemDesc{Addr: rapid.Uint64().Draw(t, dir+".table"), Key: rapid.Uint32().Draw(t, dir+".tablekey"),
			Len: uint32(entries * MemDescLen)}
		d.TotalLen = sum
		if n < entries {
			d.TotalLen += rapid.Uint32Range(0, 1<<26).Draw(t, dir+".rest")
		}
	}
	return d
}

func genCmd(t *rapid.T) *Cmd {
	addl := 4 * rapid.IntRange(0, 63).Draw(t, "addlwords")
	x := &Cmd{
		Tag:      rapid.Uint64().Draw(t, "tag"),
		LUN:      rapid.Uint64().Draw(t, "lun"),
		TaskAttr: rapid.Uint8Range(0, 7).Draw(t, "attr"),
		SolNt:    rapid.Uint8().Draw(t, "solnt"),
		CDB:      rapid.SliceOfN(rapid.Byte(), 16+addl, 16+addl).Draw(t, "cdb"),
		Out:      genBufDesc(t, "out", BufImm),
		In:       genBufDesc(t, "in", BufIndirect),
	}
	if x.Out.Format == BufImm {
		x.Imm = genBytes(t, "imm", 300)
		x.Out.TotalLen = uint32(len(x.Imm))
		if rapid.Bool().Draw(t, "immoffset") {
			descEnd := x.Len() - len(x.Imm)
			x.ImmOffset = uint16(descEnd + rapid.IntRange(0, 40).Draw(t, "immgap"))
		}
	}
	return x
}

func genSmall(t *rapid.T) codec {
	tag := rapid.Uint64().Draw(t, "tag")
	switch rapid.IntRange(0, 4).Draw(t, "kind") {
	case 0:
		return &ILogout{Tag: tag}
	case 1:
		return &TLogout{Tag: tag, Reason: rapid.Uint32().Draw(t, "reason"), SolNt: rapid.Uint8().Draw(t, "solnt")}
	case 2:
		return &CredReq{Tag: tag, ReqLimDelta: rapid.Int32().Draw(t, "delta"), SolNt: rapid.Uint8().Draw(t, "solnt")}
	case 3:
		return &CredRsp{Tag: tag}
	default:
		return &AerRsp{Tag: tag}
	}
}

// fresh returns an empty IU of x's type, carrying the channel inputs a Cmd
// decode needs.
func fresh(x codec) codec {
	switch x := x.(type) {
	case *LoginReq:
		return &LoginReq{}
	case *LoginRsp:
		return &LoginRsp{}
	case *LoginRej:
		return &LoginRej{}
	case *ILogout:
		return &ILogout{}
	case *TLogout:
		return &TLogout{}
	case *TskMgmt:
		return &TskMgmt{}
	case *CredReq:
		return &CredReq{}
	case *CredRsp:
		return &CredRsp{}
	case *AerReq:
		return &AerReq{}
	case *AerRsp:
		return &AerRsp{}
	case *Rsp:
		return &Rsp{}
	case *Cmd:
		return &Cmd{ImmOffset: x.ImmOffset}
	}
	panic("fresh")
}

func opOf(x codec) Opcode {
	switch x.(type) {
	case *LoginReq:
		return OpLoginReq
	case *LoginRsp:
		return OpLoginRsp
	case *LoginRej:
		return OpLoginRej
	case *ILogout:
		return OpILogout
	case *TLogout:
		return OpTLogout
	case *TskMgmt:
		return OpTskMgmt
	case *CredReq:
		return OpCredReq
	case *CredRsp:
		return OpCredRsp
	case *AerReq:
		return OpAerReq
	case *AerRsp:
		return OpAerRsp
	case *Rsp:
		return OpRsp
	case *Cmd:
		return OpCmd
	}
	panic("opOf")
}

// marshalUnmarshal is the crypto/tls TestMarshalUnmarshal pattern: round
// trip, then every strict prefix must be rejected, then the union decoder
// agrees.
func marshalUnmarshal(t *rapid.T, x codec) {
	n := x.Len()
	enc := make([]byte, n)
	m, err := x.Encode(enc)
	if err != nil {
		t.Fatalf("Encode(%+v): %v", x, err)
	}
	if m != n {
		t.Fatalf("Encode wrote %d bytes, Len() = %d", m, n)
	}
	y := fresh(x)
	if err := y.Decode(enc); err != nil {
		t.Fatalf("Decode(%x): %v", enc, err)
	}
	if !iuEqual(x, y) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", y, x)
	}
	if y.Len() != n {
		t.Fatalf("decoded Len() = %d, encoded %d", y.Len(), n)
	}
	for i := 0; i < n; i++ {
		if err := fresh(x).Decode(enc[:i]); err == nil {
			t.Fatalf("strict prefix of %d/%d bytes accepted: %x", i, n, enc[:i])
		} else if !errors.Is(err, ErrShort) {
			t.Fatalf("strict prefix of %d/%d bytes: %v, want ErrShort", i, n, err)
		}
	}
	// Trailing bytes are ignored.
	if err := fresh(x).Decode(append(bytes.Clone(enc), 0xAB, 0xCD)); err != nil {
		t.Fatalf("Decode with trailing bytes: %v", err)
	}
	var u IU
	if c, ok := x.(*Cmd); ok {
		u.Cmd.ImmOffset = c.ImmOffset
	}
	if err := u.Decode(enc); err != nil || u.Op != opOf(x) || !iuEqual(x, u.member()) {
		t.Fatalf("IU.Decode: %v op %v", err, u.Op)
	}
	var dirErr error
	if opOf(x).FromInitiator() {
		dirErr = u.DecodeFromTarget(enc)
		err = u.DecodeFromInitiator(enc)
	} else {
		dirErr = u.DecodeFromInitiator(enc)
		err = u.DecodeFromTarget(enc)
	}
	if err != nil || !errors.Is(dirErr, ErrBadOpcode) {
		t.Fatalf("direction check: right way %v, wrong way %v", err, dirErr)
	}
	enc2 := make([]byte, u.Len())
	if _, err := u.Encode(enc2); err != nil || !bytes.Equal(enc, enc2) {
		t.Fatalf("IU.Encode: %v\n got %x\nwant %x", err, enc2, enc)
	}
}

func TestMarshalUnmarshal(t *testing.T) {
	gens := map[string]func(*rapid.T) codec{
		"LoginReq": func(t *rapid.T) codec { return genLoginReq(t) },
		"LoginRsp": func(t *rapid.T) codec { return genLoginRsp(t) },
		"LoginRej": func(t *rapid.T) codec { return genLoginRej(t) },
		"TskMgmt":  func(t *rapid.T) codec { return genTskMgmt(t) },
		"AerReq":   func(t *rapid.T) codec { return genAerReq(t) },
		"Rsp":      func(t *rapid.T) codec { return genRsp(t) },
		"Cmd":      func(t *rapid.T) codec { return genCmd(t) },
		"Small":    genSmall,
	}
	for name, gen := range gens {
		t.Run(name, func(t *testing.T) {
			rapid.Check(t, func(t *rapid.T) { marshalUnmarshal(t, gen(t)) })
		})
	}
}

func TestMarshalUnmarshalLoginReqRDMA(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		x := genLoginReq(t)
		enc := make([]byte, LoginReqRDMALen)
		if n, err := x.EncodeRDMA(enc); err != nil || n != LoginReqRDMALen {
			t.Fatalf("EncodeRDMA: %d %v", n, err)
		}
		var y LoginReq
		if err := y.DecodeRDMA(enc); err != nil || y != *x {
			t.Fatalf("DecodeRDMA: %v\n got %+v\nwant %+v", err, y, *x)
		}
		for i := 0; i < len(enc); i++ {
			if err := y.DecodeRDMA(enc[:i]); !errors.Is(err, ErrShort) {
				t.Fatalf("strict prefix %d: %v", i, err)
			}
		}
	})
}

func TestMarshalUnmarshalDescTable(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		n := rapid.IntRange(0, 64).Draw(t, "n")
		descs := make([]MemDesc, n)
		for i := range descs {
			descs[i] = genMemDesc(t, "d", ^uint32(0))
		}
		enc := make([]byte, n*MemDescLen)
		if m, err := EncodeDescTable(enc, descs); err != nil || m != len(enc) {
			t.Fatalf("EncodeDescTable: %d %v", m, err)
		}
		got, err := DecodeDescTable(enc, nil)
		if err != nil || len(got) != n || (n > 0 && !bytes.Equal(enc, mustEncodeTable(got))) {
			t.Fatalf("DecodeDescTable: %v %v", got, err)
		}
		for i := 0; i < len(enc); i++ {
			if _, err := DecodeDescTable(enc[:i], nil); (i%MemDescLen == 0) != (err == nil) {
				t.Fatalf("DecodeDescTable(%d bytes): %v", i, err)
			}
		}
	})
}

// decoders lists one decode function per IU (plus the RDMA login form), for
// the never-panic and decode/encode/decode properties.
var decoders = []struct {
	op  Opcode
	new func() codec
}{
	{OpLoginReq, func() codec { return &LoginReq{} }},
	{OpLoginRsp, func() codec { return &LoginRsp{} }},
	{OpLoginRej, func() codec { return &LoginRej{} }},
	{OpILogout, func() codec { return &ILogout{} }},
	{OpTLogout, func() codec { return &TLogout{} }},
	{OpTskMgmt, func() codec { return &TskMgmt{} }},
	{OpCmd, func() codec { return &Cmd{} }},
	{OpCmd, func() codec { return &Cmd{ImmOffset: LinuxImmDataOffset} }},
	{OpRsp, func() codec { return &Rsp{} }},
	{OpCredReq, func() codec { return &CredReq{} }},
	{OpCredRsp, func() codec { return &CredRsp{} }},
	{OpAerReq, func() codec { return &AerReq{} }},
	{OpAerRsp, func() codec { return &AerRsp{} }},
}

// fataler is the part of testing.TB and *rapid.T that reencode needs.
type fataler interface {
	Fatalf(format string, args ...any)
}

// reencode checks that whatever a decoder accepted encodes and decodes
// back to the same value.
func reencode(t fataler, x codec) {
	enc := make([]byte, x.Len())
	if _, err := x.Encode(enc); err != nil {
		t.Fatalf("Encode of a decoded %T: %v (%+v)", x, err, x)
	}
	y := fresh(x)
	if err := y.Decode(enc); err != nil {
		t.Fatalf("Decode of a re-encoded %T: %v", x, err)
	}
	if !iuEqual(x, y) {
		t.Fatalf("decode/encode/decode of %T differs:\n got %+v\nwant %+v", x, y, x)
	}
}

func TestRandomBytesNeverPanic(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		b := rapid.SliceOfN(rapid.Byte(), 0, 600).Draw(t, "b")
		for _, d := range decoders {
			if len(b) > 0 && rapid.Bool().Draw(t, "setop") {
				b[0] = byte(d.op)
			}
			x := d.new()
			if x.Decode(b) == nil {
				reencode(t, x)
			}
		}
		var u IU
		_ = u.Decode(b)
		_ = u.DecodeFromInitiator(b)
		_ = u.DecodeFromTarget(b)
		var l LoginReq
		_ = l.DecodeRDMA(b)
		_, _ = DecodeDescTable(b, nil)
	})
}

// Valid encodings with one byte changed: decoders must not panic, and what
// they accept must survive re-encoding.
func TestMutatedEncodingsNeverPanic(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		var x codec
		if rapid.Bool().Draw(t, "cmd") {
			x = genCmd(t)
		} else {
			x = genRsp(t)
		}
		enc := make([]byte, x.Len())
		if _, err := x.Encode(enc); err != nil {
			t.Fatal(err)
		}
		for k := rapid.IntRange(1, 4).Draw(t, "flips"); k > 0; k-- {
			i := rapid.IntRange(0, len(enc)-1).Draw(t, "i")
			enc[i] = rapid.Byte().Draw(t, "v")
		}
		y := fresh(x)
		if y.Decode(enc) == nil {
			reencode(t, y)
		}
	})
}
