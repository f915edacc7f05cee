package srp

// SRP_RSP (SRP r16a 6.9; Linux struct srp_rsp, packed to 36 bytes).
//
//	byte  0     IU TYPE (C1h)
//	byte  1     SOLNT (bit 0)
//	bytes 2-3   reserved
//	bytes 4-7   REQUEST LIMIT DELTA
//	bytes 8-15  TAG
//	bytes 16-17 reserved
//	byte  18    DIUNDER(5) DIOVER(4) DOUNDER(3) DOOVER(2) SNSVALID(1) RSPVALID(0)
//	byte  19    STATUS
//	bytes 20-23 DATA-OUT RESIDUAL COUNT
//	bytes 24-27 DATA-IN RESIDUAL COUNT
//	bytes 28-31 SENSE DATA LIST LENGTH
//	bytes 32-35 RESPONSE DATA LIST LENGTH
//	bytes 36-   RESPONSE DATA, then SENSE DATA
//
// Linux ib_srp copies sense from data + resp_data_len, and reads a task
// management RESPONSE CODE from data[3] when resp_data_len >= 4; ib_srpt
// builds the same layout.

// RspMinLen is the size of an SRP_RSP without response or sense data.
const RspMinLen = 36

// SRP_RSP byte 18 flags (Linux SRP_RSP_FLAG_*).
const (
	RspFlagRspValid uint8 = 0x01 // RESPONSE DATA LIST LENGTH valid
	RspFlagSnsValid uint8 = 0x02 // SENSE DATA LIST LENGTH valid
	RspFlagDoOver   uint8 = 0x04 // DATA-OUT RESIDUAL COUNT valid, overflow
	RspFlagDoUnder  uint8 = 0x08 // DATA-OUT RESIDUAL COUNT valid, underflow
	RspFlagDiOver   uint8 = 0x10 // DATA-IN RESIDUAL COUNT valid, overflow
	RspFlagDiUnder  uint8 = 0x20 // DATA-IN RESIDUAL COUNT valid, underflow
)

// RespDataLen is the length of the response data of a task management
// response: bytes 0-2 reserved, byte 3 RESPONSE CODE (RspCode*).
const RespDataLen = 4

// Rsp is SRP_RSP.
type Rsp struct {
	Tag         uint64
	ReqLimDelta int32 // Linux ib_srp adds it to its s32 request limit
	SolNt       uint8 // byte 1 as sent; FlagSolNt
	// Flags is byte 18 as sent (RspFlag*). Encode additionally sets
	// RspFlagRspValid when RespData is non-empty and RspFlagSnsValid when
	// Sense is non-empty.
	Flags           uint8
	Status          uint8  // SCSI status
	DataOutResidual uint32 // meaningful with RspFlagDoOver/DoUnder
	DataInResidual  uint32 // meaningful with RspFlagDiOver/DiUnder
	// RespData and Sense alias the decoded buffer after Decode. A length
	// field whose valid bit is clear is reserved and ignored.
	RespData []byte
	Sense    []byte
}

// Len returns the encoded size.
func (x *Rsp) Len() int { return RspMinLen + len(x.RespData) + len(x.Sense) }

// RespCode returns the task management RESPONSE CODE (byte 3 of the
// response data) if RSPVALID is set and at least 4 bytes are present.
func (x *Rsp) RespCode() (uint8, bool) {
	if x.Flags&RspFlagRspValid == 0 || len(x.RespData) < RespDataLen {
		return 0, false
	}
	return x.RespData[3], true
}

func checkResidualFlags(f uint8) (field, reason string) {
	if f&(RspFlagDoOver|RspFlagDoUnder) == RspFlagDoOver|RspFlagDoUnder {
		return "DOOVER/DOUNDER", "data-out overflow and underflow both set"
	}
	if f&(RspFlagDiOver|RspFlagDiUnder) == RspFlagDiOver|RspFlagDiUnder {
		return "DIOVER/DIUNDER", "data-in overflow and underflow both set"
	}
	return "", ""
}

// Decode parses an SRP_RSP. RespData and Sense alias b. Bytes after the
// sense data are ignored.
func (x *Rsp) Decode(b []byte) error {
	if err := checkHead(b, OpRsp, RspMinLen); err != nil {
		return err
	}
	flags := b[18]
	if field, reason := checkResidualFlags(flags); field != "" {
		return errIncons(OpRsp, field, 18, reason)
	}
	var snsLen, rspLen uint32
	if flags&RspFlagRspValid != 0 {
		rspLen = be.Uint32(b[32:36])
	}
	if flags&RspFlagSnsValid != 0 {
		snsLen = be.Uint32(b[28:32])
	}
	if uint64(RspMinLen)+uint64(rspLen) > uint64(len(b)) {
		return errShort(OpRsp, "RESPONSE DATA LIST LENGTH", 32, capInt(uint64(RspMinLen)+uint64(rspLen)), len(b))
	}
	sns := RspMinLen + int(rspLen)
	end := uint64(sns) + uint64(snsLen)
	if end > uint64(len(b)) {
		return errShort(OpRsp, "SENSE DATA LIST LENGTH", 28, capInt(end), len(b))
	}
	x.SolNt = b[1]
	x.ReqLimDelta = int32(be.Uint32(b[4:8]))
	x.Tag = be.Uint64(b[8:16])
	x.Flags = flags
	x.Status = b[19]
	x.DataOutResidual = be.Uint32(b[20:24])
	x.DataInResidual = be.Uint32(b[24:28])
	x.RespData, x.Sense = nil, nil
	if rspLen > 0 {
		x.RespData = b[RspMinLen:sns:sns]
	}
	if snsLen > 0 {
		x.Sense = b[sns:int(end):int(end)]
	}
	return nil
}

// Encode writes the SRP_RSP into b: the fixed part, the response data,
// then the sense data.
func (x *Rsp) Encode(b []byte) (int, error) {
	if field, reason := checkResidualFlags(x.Flags); field != "" {
		return 0, errInvalid(OpRsp, field, reason)
	}
	if uint64(len(x.RespData)) > 0xFFFFFFFF || uint64(len(x.Sense)) > 0xFFFFFFFF {
		return 0, errInvalid(OpRsp, "data", "longer than 2^32-1 bytes")
	}
	n := x.Len()
	if err := begin(b, OpRsp, n); err != nil {
		return 0, err
	}
	flags := x.Flags
	if len(x.RespData) > 0 {
		flags |= RspFlagRspValid
	}
	if len(x.Sense) > 0 {
		flags |= RspFlagSnsValid
	}
	b[1] = x.SolNt
	be.PutUint32(b[4:8], uint32(x.ReqLimDelta))
	be.PutUint64(b[8:16], x.Tag)
	b[18] = flags
	b[19] = x.Status
	be.PutUint32(b[20:24], x.DataOutResidual)
	be.PutUint32(b[24:28], x.DataInResidual)
	be.PutUint32(b[28:32], uint32(len(x.Sense)))
	be.PutUint32(b[32:36], uint32(len(x.RespData)))
	copy(b[RspMinLen:], x.RespData)
	copy(b[RspMinLen+len(x.RespData):], x.Sense)
	return n, nil
}
