package srp

import (
	"bytes"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
)

// unhex turns a hex dump into bytes. Spaces, tabs and "|" separate
// fields; "--" starts a comment that runs to the end of the line.
func unhex(t testing.TB, s string) []byte {
	t.Helper()
	var sb strings.Builder
	for _, line := range strings.Split(s, "\n") {
		if i := strings.Index(line, "--"); i >= 0 {
			line = line[:i]
		}
		sb.WriteString(strings.NewReplacer(" ", "", "\t", "", "|", "").Replace(line))
	}
	b, err := hex.DecodeString(sb.String())
	if err != nil {
		t.Fatalf("bad hex literal: %v", err)
	}
	return b
}

// codec is what every IU type implements.
type codec interface {
	Len() int
	Encode([]byte) (int, error)
	Decode([]byte) error
}

// checkGolden encodes x, compares with want, decodes want into fresh and
// compares with x.
func checkGolden(t *testing.T, x, fresh codec, want []byte) {
	t.Helper()
	if x.Len() != len(want) {
		t.Fatalf("Len() = %d, want %d", x.Len(), len(want))
	}
	buf := bytes.Repeat([]byte{0xEE}, len(want)+7) // dirty: reserved bytes must be cleared
	n, err := x.Encode(buf)
	if err != nil {
		t.Fatalf("Encode: %v", err)
	}
	if n != len(want) || !bytes.Equal(buf[:n], want) {
		t.Fatalf("Encode:\n got %x\nwant %x", buf[:n], want)
	}
	if err := fresh.Decode(want); err != nil {
		t.Fatalf("Decode: %v", err)
	}
	if !iuEqual(x, fresh) {
		t.Fatalf("Decode:\n got %+v\nwant %+v", fresh, x)
	}
	if _, err := x.Encode(make([]byte, len(want)-1)); !errors.Is(err, ErrBufferTooSmall) {
		t.Fatalf("Encode into short buffer: err = %v, want ErrBufferTooSmall", err)
	}
}

var (
	tag8     = uint64(0x0102030405060708)
	iportID  = [16]byte{0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xfe, 0, 0, 0x01}
	tportID  = [16]byte{0, 0, 0, 0xff, 0xfe, 0, 0, 0x01, 0, 0, 0, 0xff, 0xfe, 0, 0, 0x01}
	fixSense = []byte{0x70, 0x00, 0x06, 0, 0, 0, 0, 0x0a, 0, 0, 0, 0, 0x29, 0x00, 0, 0, 0, 0} // UNIT ATTENTION, POWER ON OR RESET
)

func TestGoldenLoginReq(t *testing.T) {
	// SRP_LOGIN_REQ, 64 bytes (srp.h struct srp_login_req).
	want := unhex(t, `
		00 | 00 00 00 00 00 00 00          -- 0 IU TYPE, 1-7 reserved
		01 02 03 04 05 06 07 08            -- 8-15 TAG
		00 00 20 44 | 00 00 00 00          -- 16-19 REQ IT IU LEN 8260, 20-23 reserved
		00 06 | 91 | 00 | 00 44 | 00 00    -- 24-25 DDBD|IDBD, 26 IMM|LOSOLNT|MULTI, 27 rsvd, 28-29 IMM OFFSET 68, 30-31 rsvd
		fe 80 00 00 00 00 00 00 00 00 00 ff fe 00 00 01   -- 32-47 INITIATOR PORT ID
		00 00 00 ff fe 00 00 01 00 00 00 ff fe 00 00 01   -- 48-63 TARGET PORT ID
	`)
	x := &LoginReq{Tag: tag8, MaxITIULen: 8260, BufFmt: BufFmtDirect | BufFmtIndirect,
		MultiChannel: MultiChanMulti, Flags: LoginFlagImmData | LoginFlagLOSolNt, ImmDataOffset: 68,
		InitiatorPortID: iportID, TargetPortID: tportID}
	checkGolden(t, x, &LoginReq{}, want)
}

// The 56-byte srp_login_req_rdma the Linux 6.1 initiator sent over RDMA CM
// (shared/notes/vm-rdma.md), decoded, re-encoded, and converted to the
// 64-byte SRP_LOGIN_REQ.
func TestGoldenLoginReqRDMAFromWire(t *testing.T) {
	wire := unhex(t, `
		00 00 00 00 00 00 00 00 00 06 80 00 00 00 20 44
		fe 80 00 00 00 00 00 00 00 00 00 ff fe 00 00 01
		00 00 00 ff fe 00 00 01 00 00 00 ff fe 00 00 01
		00 44 00 00 00 00 00 00
	`)
	want := LoginReq{Tag: 0, BufFmt: BufFmtDirect | BufFmtIndirect, Flags: LoginFlagImmData,
		MultiChannel: MultiChanSingle, MaxITIULen: 8260, ImmDataOffset: 68,
		InitiatorPortID: iportID, TargetPortID: tportID}
	var got LoginReq
	if err := got.DecodeRDMA(wire); err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Fatalf("DecodeRDMA:\n got %+v\nwant %+v", got, want)
	}
	buf := bytes.Repeat([]byte{0xEE}, 60)
	n, err := want.EncodeRDMA(buf)
	if err != nil || n != LoginReqRDMALen || !bytes.Equal(buf[:n], wire) {
		t.Fatalf("EncodeRDMA = %d, %v:\n got %x\nwant %x", n, err, buf[:n], wire)
	}
	// Private data padded by the CM decodes the same; a strict prefix does not.
	if err := got.DecodeRDMA(append(wire, make([]byte, 36)...)); err != nil || got != want {
		t.Fatalf("padded DecodeRDMA: %v %+v", err, got)
	}
	if err := got.DecodeRDMA(wire[:55]); !errors.Is(err, ErrShort) {
		t.Fatalf("55-byte DecodeRDMA: %v", err)
	}
	bad := bytes.Clone(wire)
	bad[11] = byte(OpCmd)
	if err := got.DecodeRDMA(bad); !errors.Is(err, ErrBadOpcode) {
		t.Fatalf("opcode 02 in RDMA login: %v", err)
	}
	// Same login as the 64-byte IU.
	full := unhex(t, `
		00 00 00 00 00 00 00 00 | 00 00 00 00 00 00 00 00
		00 00 20 44 00 00 00 00 | 00 06 80 00 00 44 00 00
		fe 80 00 00 00 00 00 00 00 00 00 ff fe 00 00 01
		00 00 00 ff fe 00 00 01 00 00 00 ff fe 00 00 01
	`)
	checkGolden(t, &want, &LoginReq{}, full)
}

func TestGoldenLoginRsp(t *testing.T) {
	// SRP_LOGIN_RSP, 52 bytes; also the RDMA CM accept private data.
	want := unhex(t, `
		c0 | 00 00 00 | 00 00 00 80       -- 0 IU TYPE, 1-3 rsvd, 4-7 REQ LIM DELTA 128
		01 02 03 04 05 06 07 08           -- 8-15 TAG
		00 00 20 44 | 00 00 01 00         -- 16-19 MAX IT IU LEN 8260, 20-23 MAX TI IU LEN 256
		00 06 | 91                        -- 24-25 DDBD|IDBD, 26 IMMED|SOLNTSUP|TERMINATED
		00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00  -- 27-51 reserved
	`)
	x := &LoginRsp{Tag: tag8, ReqLimDelta: 128, MaxITIULen: 8260, MaxTIIULen: 256,
		BufFmt: BufFmtDirect | BufFmtIndirect, MultiChannel: MultiChanTerminated,
		Flags: LoginRspFlagImmData | LoginRspFlagSolNtSup}
	checkGolden(t, x, &LoginRsp{}, want)
}

func TestGoldenLoginRej(t *testing.T) {
	// SRP_LOGIN_REJ, 32 bytes; also the RDMA CM reject private data.
	want := unhex(t, `
		c2 | 00 00 00 | 00 01 00 02       -- 0 IU TYPE, 1-3 rsvd, 4-7 REASON IT IU length too large
		01 02 03 04 05 06 07 08           -- 8-15 TAG
		00 00 00 00 00 00 00 00           -- 16-23 reserved
		00 06 | 00 00 00 00 00 00         -- 24-25 SUPPORTED BUFFER FORMATS, 26-31 reserved
	`)
	x := &LoginRej{Tag: tag8, Reason: RejITIULenTooLarge, BufFmt: BufFmtDirect | BufFmtIndirect}
	checkGolden(t, x, &LoginRej{}, want)
}

func TestGoldenSmallIUs(t *testing.T) {
	t.Run("ILogout", func(t *testing.T) {
		want := unhex(t, `03 00 00 00 00 00 00 00 | 01 02 03 04 05 06 07 08`)
		checkGolden(t, &ILogout{Tag: tag8}, &ILogout{}, want)
	})
	t.Run("TLogout", func(t *testing.T) {
		// 0 IU TYPE, 1 SOLNT, 2-3 rsvd, 4-7 REASON (invalid IU length), 8-15 TAG
		want := unhex(t, `80 01 00 00 | 00 00 00 08 | 01 02 03 04 05 06 07 08`)
		checkGolden(t, &TLogout{Tag: tag8, Reason: TLogoutInvalidIULen, SolNt: FlagSolNt}, &TLogout{}, want)
	})
	t.Run("CredReq", func(t *testing.T) {
		// 0 IU TYPE, 1 SOLNT, 2-3 rsvd, 4-7 REQ LIM DELTA (-1), 8-15 TAG
		want := unhex(t, `81 01 00 00 | ff ff ff ff | 01 02 03 04 05 06 07 08`)
		checkGolden(t, &CredReq{Tag: tag8, ReqLimDelta: -1, SolNt: FlagSolNt}, &CredReq{}, want)
	})
	t.Run("CredRsp", func(t *testing.T) {
		want := unhex(t, `41 00 00 00 00 00 00 00 | 01 02 03 04 05 06 07 08`)
		checkGolden(t, &CredRsp{Tag: tag8}, &CredRsp{}, want)
	})
	t.Run("AerRsp", func(t *testing.T) {
		want := unhex(t, `42 00 00 00 00 00 00 00 | 01 02 03 04 05 06 07 08`)
		checkGolden(t, &AerRsp{Tag: tag8}, &AerRsp{}, want)
	})
}

func TestGoldenTskMgmt(t *testing.T) {
	want := unhex(t, `
		01 | 04 | 00 00 00 00 00 00       -- 0 IU TYPE, 1 UCSOLNT, 2-7 rsvd
		01 02 03 04 05 06 07 08           -- 8-15 TAG
		00 00 00 00                       -- 16-19 reserved
		00 02 00 00 00 00 00 00           -- 20-27 LUN 2
		00 00 | 01 | 00                   -- 28-29 rsvd, 30 ABORT TASK, 31 rsvd
		00 00 00 00 00 00 10 01           -- 32-39 TAG OF TASK TO BE MANAGED
		00 00 00 00 00 00 00 00           -- 40-47 reserved
	`)
	x := &TskMgmt{Tag: tag8, LUN: 0x0002000000000000, Function: TMFAbortTask, TaskTag: 0x1001, SolNt: FlagUCSolNt}
	checkGolden(t, x, &TskMgmt{}, want)
}

func TestGoldenAerReq(t *testing.T) {
	want := unhex(t, `
		82 | 01 | 00 00 | 00 00 00 01     -- 0 IU TYPE, 1 SOLNT, 2-3 rsvd, 4-7 REQ LIM DELTA 1
		01 02 03 04 05 06 07 08           -- 8-15 TAG
		00 00 00 00                       -- 16-19 reserved
		00 01 00 00 00 00 00 00           -- 20-27 LUN 1
		00 00 00 12 | 00 00 00 00         -- 28-31 SENSE DATA LIST LENGTH 18, 32-35 reserved
		70 00 06 00 00 00 00 0a 00 00 00 00 29 00 00 00 00 00  -- 36-53 SENSE DATA
	`)
	x := &AerReq{Tag: tag8, ReqLimDelta: 1, LUN: 0x0001000000000000, Sense: fixSense, SolNt: FlagSolNt}
	checkGolden(t, x, &AerReq{}, want)
}

func TestGoldenCmd(t *testing.T) {
	read10 := []byte{0x28, 0, 0, 0, 0x10, 0, 0, 0, 0x08, 0, 0, 0, 0, 0, 0, 0}

	t.Run("DirectDataIn", func(t *testing.T) {
		// READ(10) with a direct data-in descriptor, as Linux ib_srp sends
		// it (descriptor count 0 for a direct descriptor).
		want := unhex(t, `
			02 | 04 | 00 00 00 | 01 | 00 | 00     -- 0 IU TYPE, 1 UCSOLNT, 2-4 rsvd, 5 DO none/DI direct, 6-7 counts
			01 02 03 04 05 06 07 08               -- 8-15 TAG
			00 00 00 00                           -- 16-19 reserved
			00 01 00 00 00 00 00 00               -- 20-27 LUN 1
			00 | 01 | 00 | 00                     -- 28 rsvd, 29 HEAD OF QUEUE, 30 rsvd, 31 ADDITIONAL CDB LENGTH 0
			28 00 00 00 10 00 00 00 08 00 00 00 00 00 00 00   -- 32-47 CDB
			00 00 7f 00 12 34 50 00 | 00 00 ab cd | 00 00 10 00  -- 48-63 direct descriptor VA, R_Key, length 4096
		`)
		x := &Cmd{Tag: tag8, LUN: 0x0001000000000000, TaskAttr: TaskHeadOfQueue, SolNt: FlagUCSolNt,
			CDB: read10, In: BufDesc{Format: BufDirect, Direct: MemDesc{Addr: 0x7f0012345000, Key: 0xabcd, Len: 4096}}}
		checkGolden(t, x, &Cmd{}, want)
	})

	t.Run("PartialIndirectDataOutAndDirectDataIn", func(t *testing.T) {
		// A 32-byte CDB (additional CDB length 16 bytes = 4 words, field
		// value 10h), a data-out indirect descriptor carrying 2 of the
		// table's 3 entries, and a direct data-in descriptor.
		cdb32 := make([]byte, 32)
		cdb32[0], cdb32[7], cdb32[31] = 0x7f, 0x18, 0xaa
		want := unhex(t, `
			02 | 00 | 00 00 00 | 21 | 02 | 00     -- 5 DO indirect/DI direct, 6 DO count 2, 7 DI count 0
			01 02 03 04 05 06 07 08               -- 8-15 TAG
			00 00 00 00 | 00 00 00 00 00 00 00 00 -- 16-19 rsvd, 20-27 LUN 0
			00 | 02 | 00 | 10                     -- 29 ORDERED, 31 ADDITIONAL CDB LENGTH 16 bytes
			7f 00 00 00 00 00 00 18 00 00 00 00 00 00 00 00   -- 32-47 CDB
			00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 aa   -- 48-63 additional CDB
			00 00 00 00 00 00 10 00 | 00 00 00 11 | 00 00 00 30  -- 64-79 table descriptor: VA 1000h, key 11h, 48 bytes = 3 entries
			00 00 30 00                                        -- 80-83 TOTAL LENGTH 3000h
			00 00 00 00 00 01 00 00 | 00 00 00 22 | 00 00 10 00  -- 84-99 entry 0
			00 00 00 00 00 02 00 00 | 00 00 00 22 | 00 00 10 00  -- 100-115 entry 1
			00 00 00 00 00 09 00 00 | 00 00 00 33 | 00 00 02 00  -- 116-131 data-in direct descriptor
		`)
		x := &Cmd{Tag: tag8, TaskAttr: TaskOrdered, CDB: cdb32,
			Out: BufDesc{Format: BufIndirect, Count: 2, Table: MemDesc{Addr: 0x1000, Key: 0x11, Len: 48}, TotalLen: 0x3000,
				Partial: []MemDesc{{0x10000, 0x22, 0x1000}, {0x20000, 0x22, 0x1000}}},
			In: BufDesc{Format: BufDirect, Direct: MemDesc{Addr: 0x90000, Key: 0x33, Len: 0x200}}}
		got := &Cmd{}
		checkGolden(t, x, got, want)
		if got.Out.Complete() {
			t.Fatal("2 of 3 entries reported complete")
		}
		// The rest of the table, fetched from initiator memory.
		table := unhex(t, `
			00 00 00 00 00 01 00 00 00 00 00 22 00 00 10 00
			00 00 00 00 00 02 00 00 00 00 00 22 00 00 10 00
			00 00 00 00 00 03 00 00 00 00 00 22 00 00 10 00
		`)
		full, err := DecodeDescTable(table, make([]MemDesc, 0, 4))
		if err != nil {
			t.Fatal(err)
		}
		if err := got.Out.ValidateTable(full); err != nil {
			t.Fatal(err)
		}
		full[2].Len = 0x1001
		if err := got.Out.ValidateTable(full); !errors.Is(err, ErrInconsistent) {
			t.Fatalf("ValidateTable with wrong total: %v", err)
		}
		full[2].Len = 0x1000
		full[0].Key = 0x23
		if err := got.Out.ValidateTable(full); !errors.Is(err, ErrInconsistent) {
			t.Fatalf("ValidateTable with a different prefix: %v", err)
		}
		if err := got.Out.ValidateTable(full[:2]); !errors.Is(err, ErrInconsistent) {
			t.Fatalf("ValidateTable with a short table: %v", err)
		}
	})

	t.Run("CompleteIndirectDataIn", func(t *testing.T) {
		want := unhex(t, `
			02 | 00 | 00 00 00 | 02 | 00 | 02     -- 5 DI indirect, 7 DI count 2
			01 02 03 04 05 06 07 08
			00 00 00 00 | 00 00 00 00 00 00 00 00
			00 00 00 00
			28 00 00 00 10 00 00 00 08 00 00 00 00 00 00 00
			00 00 00 00 00 00 20 00 | 00 00 00 44 | 00 00 00 20  -- table: 2 entries
			00 00 06 00                                        -- TOTAL LENGTH 600h
			00 00 00 00 00 0a 00 00 | 00 00 00 44 | 00 00 02 00
			00 00 00 00 00 0b 00 00 | 00 00 00 44 | 00 00 04 00
		`)
		x := &Cmd{Tag: tag8, CDB: read10,
			In: BufDesc{Format: BufIndirect, Count: 2, Table: MemDesc{Addr: 0x2000, Key: 0x44, Len: 32}, TotalLen: 0x600,
				Partial: []MemDesc{{0xa0000, 0x44, 0x200}, {0xb0000, 0x44, 0x400}}}}
		got := &Cmd{DescBuf: make([]MemDesc, 0, 8)}
		checkGolden(t, x, got, want)
		if !got.In.Complete() || got.In.Len() != 0x600 || &got.In.Partial[0] != &got.DescBuf[:1][0] {
			t.Fatal("complete table not decoded into DescBuf")
		}
	})

	t.Run("ImmediateDataLinuxLayout", func(t *testing.T) {
		// WRITE(10) of 8 bytes as SRP-2 immediate data, laid out like Linux
		// ib_srp: 4-byte descriptor at 48, data at the login's offset 68.
		write10 := []byte{0x2a, 0, 0, 0, 0, 0x20, 0, 0, 0x01, 0, 0, 0, 0, 0, 0, 0}
		want := unhex(t, `
			02 | 00 | 00 00 00 | 30 | 00 | 00     -- 5 DO immediate
			01 02 03 04 05 06 07 08
			00 00 00 00 | 00 00 00 00 00 00 00 00
			00 00 00 00
			2a 00 00 00 00 20 00 00 01 00 00 00 00 00 00 00
			00 00 00 08                                        -- 48-51 immediate data length 8
			00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00    -- 52-67 unused up to IMMEDIATE DATA OFFSET
			de ad be ef ca fe ba be                            -- 68-75 immediate data
		`)
		x := &Cmd{Tag: tag8, CDB: write10, ImmOffset: LinuxImmDataOffset,
			Out: BufDesc{Format: BufImm, TotalLen: 8}, Imm: []byte{0xde, 0xad, 0xbe, 0xef, 0xca, 0xfe, 0xba, 0xbe}}
		checkGolden(t, x, &Cmd{ImmOffset: LinuxImmDataOffset}, want)
	})
}

func TestGoldenRsp(t *testing.T) {
	t.Run("GoodWithDataInUnderflow", func(t *testing.T) {
		want := unhex(t, `
			c1 | 01 | 00 00 | 00 00 00 01     -- 0 IU TYPE, 1 SOLNT, 4-7 REQ LIM DELTA 1
			01 02 03 04 05 06 07 08           -- 8-15 TAG
			00 00 | 20 | 00                   -- 16-17 rsvd, 18 DIUNDER, 19 STATUS GOOD
			00 00 00 00 | 00 00 02 00         -- 20-23 DATA-OUT RESIDUAL, 24-27 DATA-IN RESIDUAL 512
			00 00 00 00 | 00 00 00 00         -- 28-31 SENSE LEN, 32-35 RESPONSE LEN
		`)
		x := &Rsp{Tag: tag8, ReqLimDelta: 1, SolNt: FlagSolNt, Flags: RspFlagDiUnder, DataInResidual: 512}
		checkGolden(t, x, &Rsp{}, want)
	})
	t.Run("CheckConditionWithSense", func(t *testing.T) {
		want := unhex(t, `
			c1 00 00 00 00 00 00 01
			01 02 03 04 05 06 07 08
			00 00 | 02 | 02                   -- 18 SNSVALID, 19 CHECK CONDITION
			00 00 00 00 00 00 00 00
			00 00 00 12 | 00 00 00 00         -- 28-31 SENSE DATA LIST LENGTH 18
			70 00 06 00 00 00 00 0a 00 00 00 00 29 00 00 00 00 00
		`)
		x := &Rsp{Tag: tag8, ReqLimDelta: 1, Flags: RspFlagSnsValid, Status: 0x02, Sense: fixSense}
		checkGolden(t, x, &Rsp{}, want)
	})
	t.Run("TaskManagementFailed", func(t *testing.T) {
		// As ib_srpt builds it: RSPVALID, 4 bytes of response data with the
		// RESPONSE CODE in byte 3.
		want := unhex(t, `
			c1 00 00 00 00 00 00 01
			01 02 03 04 05 06 07 08
			00 00 | 01 | 00                   -- 18 RSPVALID
			00 00 00 00 00 00 00 00
			00 00 00 00 | 00 00 00 04         -- 32-35 RESPONSE DATA LIST LENGTH 4
			00 00 00 05                       -- 36-39 RESPONSE CODE: function failed
		`)
		x := &Rsp{Tag: tag8, ReqLimDelta: 1, Flags: RspFlagRspValid, RespData: []byte{0, 0, 0, RspCodeFailed}}
		got := &Rsp{}
		checkGolden(t, x, got, want)
		if c, ok := got.RespCode(); !ok || c != RspCodeFailed {
			t.Fatalf("RespCode = %#x, %v", c, ok)
		}
	})
}

func TestGoldenRspResponseBeforeSense(t *testing.T) {
	// Response data comes first, then sense data (ib_srp reads sense at
	// data + resp_data_len).
	want := unhex(t, `
		c1 00 00 00 00 00 00 00
		01 02 03 04 05 06 07 08
		00 00 | 07 | 02                   -- 18 RSPVALID|SNSVALID|DOOVER, 19 CHECK CONDITION
		00 00 00 07 | 00 00 00 00         -- 20-23 DATA-OUT RESIDUAL 7
		00 00 00 03 | 00 00 00 04         -- 28-31 SENSE LEN 3, 32-35 RESPONSE LEN 4
		00 00 00 00 | aa bb cc            -- response data, sense data
	`)
	x := &Rsp{Tag: tag8, Flags: RspFlagRspValid | RspFlagSnsValid | RspFlagDoOver, Status: 0x02,
		DataOutResidual: 7, RespData: []byte{0, 0, 0, 0}, Sense: []byte{0xaa, 0xbb, 0xcc}}
	checkGolden(t, x, &Rsp{}, want)
}
