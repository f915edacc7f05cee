package srp

// Login information units: SRP_LOGIN_REQ, SRP_LOGIN_RSP, SRP_LOGIN_REJ
// (SRP r16a 6.2-6.4, SRP-2 immediate data additions), and the RDMA CM
// private-data form of the login request that Linux uses.

// Encoded sizes.
const (
	LoginReqLen     = 64 // SRP_LOGIN_REQ (Linux struct srp_login_req)
	LoginReqRDMALen = 56 // Linux struct srp_login_req_rdma (RDMA CM private data)
	LoginRspLen     = 52 // SRP_LOGIN_RSP (Linux struct srp_login_rsp, packed)
	LoginRejLen     = 32 // SRP_LOGIN_REJ (Linux struct srp_login_rej)
)

// REQUIRED BUFFER FORMATS (SRP_LOGIN_REQ bytes 24-25) and SUPPORTED
// BUFFER FORMATS (SRP_LOGIN_RSP / SRP_LOGIN_REJ bytes 24-25).
// Linux: SRP_BUF_FORMAT_DIRECT = 1 << 1, SRP_BUF_FORMAT_INDIRECT = 1 << 2.
const (
	BufFmtDirect   uint16 = 0x0002 // DDBD: direct data buffer descriptor
	BufFmtIndirect uint16 = 0x0004 // IDBD: indirect data buffer descriptor
)

// MULTI-CHANNEL ACTION, SRP_LOGIN_REQ byte 26 bits 1-0
// (Linux SRP_MULTICHAN_SINGLE / SRP_MULTICHAN_MULTI; ib_srpt SRP_MTCH_ACTION = 0x03).
const (
	MultiChanSingle uint8 = 0 // terminate other channels of the same I_T nexus
	MultiChanMulti  uint8 = 1 // keep them: independent multichannel operation
)

// Other SRP_LOGIN_REQ byte 26 flags (ib_srpt.h, "table 9 in the SRP
// specification"; iPXE srp.h; SRP-2 adds bit 7, Linux SRP_IMMED_REQUESTED).
const (
	LoginFlagLOSolNt uint8 = 0x10 // LOSOLNT: solicited notification for SRP_T_LOGOUT
	LoginFlagCRSolNt uint8 = 0x20 // CRSOLNT: solicited notification for SRP_CRED_REQ
	LoginFlagAESolNt uint8 = 0x40 // AESOLNT: solicited notification for SRP_AER_REQ
	LoginFlagImmData uint8 = 0x80 // SRP-2: immediate data requested (IMMEDIATE DATA OFFSET valid)
)

// MULTI-CHANNEL RESULT, SRP_LOGIN_RSP byte 26 bits 1-0
// (Linux SRP_LOGIN_RSP_MULTICHAN_NO_CHAN / _TERMINATED / _MAINTAINED).
const (
	MultiChanNoExisting uint8 = 0 // no other channel of this I_T nexus existed
	MultiChanTerminated uint8 = 1 // existing channels were terminated
	MultiChanMaintained uint8 = 2 // existing channels continue independently
)

// Other SRP_LOGIN_RSP byte 26 flags.
const (
	LoginRspFlagSolNtSup uint8 = 0x10 // SOLNTSUP: target supports solicited notification (iPXE, illumos srp.h)
	LoginRspFlagImmData  uint8 = 0x80 // SRP-2: immediate data supported (Linux SRP_LOGIN_RSP_IMMED_SUPP)
)

// SRP_LOGIN_REJ REASON codes (bytes 4-7), Linux enum srp_login_rej_reason.
// SRP-2 adds no others that this codec knows of.
const (
	RejUnableToEstablish     uint32 = 0x00010000 // unable to establish RDMA channel, no reason specified
	RejInsufficientResources uint32 = 0x00010001 // insufficient RDMA channel resources
	RejITIULenTooLarge       uint32 = 0x00010002 // requested maximum initiator to target IU length too large
	RejUnableToAssociate     uint32 = 0x00010003 // unable to associate RDMA channel with specified I_T nexus
	RejBufFmtUnsupported     uint32 = 0x00010004 // one or more requested buffer formats not supported
	RejMultiChanUnsupported  uint32 = 0x00010005 // multiple RDMA channels per I_T nexus not supported
	RejChannelLimit          uint32 = 0x00010006 // RDMA channel limit reached for this initiator
)

// CMRejectConsumerDefined is the InfiniBand CM REJ reason
// (IB_CM_REJ_CONSUMER_DEFINED, Linux rdma/ib_cm.h) under which an SRP target
// carries an SRP_LOGIN_REJ in the reject private data. Linux ib_srp only
// looks for an SRP_LOGIN_REJ (opcode byte 0, reason bytes 4-7) when the
// reject reason is this value.
const CMRejectConsumerDefined = 28

// LoginReq is SRP_LOGIN_REQ.
//
//	byte  0     IU TYPE (00h)
//	bytes 1-7   reserved
//	bytes 8-15  TAG
//	bytes 16-19 REQUESTED MAXIMUM INITIATOR TO TARGET IU LENGTH
//	bytes 20-23 reserved
//	bytes 24-25 REQUIRED BUFFER FORMATS
//	byte  26    AESOLNT(6) CRSOLNT(5) LOSOLNT(4) MULTI-CHANNEL ACTION(1-0); SRP-2 bit 7 immediate data
//	byte  27    reserved
//	bytes 28-29 IMMEDIATE DATA OFFSET (SRP-2; Linux srp_login_req.imm_data_offset)
//	bytes 30-31 reserved
//	bytes 32-47 INITIATOR PORT IDENTIFIER
//	bytes 48-63 TARGET PORT IDENTIFIER
type LoginReq struct {
	Tag             uint64
	MaxITIULen      uint32
	BufFmt          uint16 // BufFmtDirect | BufFmtIndirect
	MultiChannel    uint8  // MultiChanSingle or MultiChanMulti (2 bits)
	Flags           uint8  // LoginFlag* bits; bits 1-0 must be zero (they are MultiChannel)
	ImmDataOffset   uint16 // meaningful when Flags has LoginFlagImmData
	InitiatorPortID [16]byte
	TargetPortID    [16]byte
}

// Len returns LoginReqLen.
func (x *LoginReq) Len() int { return LoginReqLen }

// Decode parses an SRP_LOGIN_REQ. Bytes past the 64th are ignored.
func (x *LoginReq) Decode(b []byte) error {
	if err := checkHead(b, OpLoginReq, LoginReqLen); err != nil {
		return err
	}
	x.Tag = be.Uint64(b[8:16])
	x.MaxITIULen = be.Uint32(b[16:20])
	x.BufFmt = be.Uint16(b[24:26])
	x.MultiChannel = b[26] & 0x03
	x.Flags = b[26] &^ 0x03
	x.ImmDataOffset = be.Uint16(b[28:30])
	copy(x.InitiatorPortID[:], b[32:48])
	copy(x.TargetPortID[:], b[48:64])
	return nil
}

func (x *LoginReq) flagsByte() (byte, error) {
	if x.MultiChannel > 3 {
		return 0, errInvalid(OpLoginReq, "MULTI-CHANNEL ACTION", "does not fit in 2 bits")
	}
	if x.Flags&0x03 != 0 {
		return 0, errInvalid(OpLoginReq, "flags", "bits 1-0 belong to MULTI-CHANNEL ACTION")
	}
	return x.Flags | x.MultiChannel, nil
}

// Encode writes the 64-byte SRP_LOGIN_REQ into b.
func (x *LoginReq) Encode(b []byte) (int, error) {
	fl, err := x.flagsByte()
	if err != nil {
		return 0, err
	}
	if err := begin(b, OpLoginReq, LoginReqLen); err != nil {
		return 0, err
	}
	be.PutUint64(b[8:16], x.Tag)
	be.PutUint32(b[16:20], x.MaxITIULen)
	be.PutUint16(b[24:26], x.BufFmt)
	b[26] = fl
	be.PutUint16(b[28:30], x.ImmDataOffset)
	copy(b[32:48], x.InitiatorPortID[:])
	copy(b[48:64], x.TargetPortID[:])
	return LoginReqLen, nil
}

// DecodeRDMA parses the login request in the form Linux ib_srp sends as
// RDMA CM connect private data (struct srp_login_req_rdma: "RDMA/CM over
// InfiniBand can only carry 92 - 36 = 56 bytes of private data", so the
// reserved bytes are dropped and the fields reordered):
//
//	bytes 0-7   TAG
//	bytes 8-9   REQUIRED BUFFER FORMATS
//	byte  10    flags (as SRP_LOGIN_REQ byte 26)
//	byte  11    IU TYPE (00h)
//	bytes 12-15 REQUESTED MAXIMUM INITIATOR TO TARGET IU LENGTH
//	bytes 16-31 INITIATOR PORT IDENTIFIER
//	bytes 32-47 TARGET PORT IDENTIFIER
//	bytes 48-49 IMMEDIATE DATA OFFSET
//	bytes 50-55 reserved
//
// Linux ib_srpt rejects private data shorter than 56 bytes and ignores
// anything after; so does this decoder.
func (x *LoginReq) DecodeRDMA(b []byte) error {
	if len(b) < LoginReqRDMALen {
		return errShort(OpLoginReq, "RDMA CM private data", 0, LoginReqRDMALen, len(b))
	}
	if Opcode(b[11]) != OpLoginReq {
		return &DecodeError{IU: OpLoginReq, Field: "IU TYPE", Off: 11, Kind: ErrBadOpcode,
			Reason: "got " + Opcode(b[11]).String()}
	}
	x.Tag = be.Uint64(b[0:8])
	x.BufFmt = be.Uint16(b[8:10])
	x.MultiChannel = b[10] & 0x03
	x.Flags = b[10] &^ 0x03
	x.MaxITIULen = be.Uint32(b[12:16])
	copy(x.InitiatorPortID[:], b[16:32])
	copy(x.TargetPortID[:], b[32:48])
	x.ImmDataOffset = be.Uint16(b[48:50])
	return nil
}

// EncodeRDMA writes the 56-byte RDMA CM form (see DecodeRDMA) into b.
func (x *LoginReq) EncodeRDMA(b []byte) (int, error) {
	fl, err := x.flagsByte()
	if err != nil {
		return 0, err
	}
	if len(b) < LoginReqRDMALen {
		return 0, errTooSmall(OpLoginReq, LoginReqRDMALen, len(b))
	}
	clear(b[:LoginReqRDMALen])
	be.PutUint64(b[0:8], x.Tag)
	be.PutUint16(b[8:10], x.BufFmt)
	b[10] = fl
	b[11] = byte(OpLoginReq)
	be.PutUint32(b[12:16], x.MaxITIULen)
	copy(b[16:32], x.InitiatorPortID[:])
	copy(b[32:48], x.TargetPortID[:])
	be.PutUint16(b[48:50], x.ImmDataOffset)
	return LoginReqRDMALen, nil
}

// LoginRsp is SRP_LOGIN_RSP.
//
//	byte  0     IU TYPE (C0h)
//	bytes 1-3   reserved
//	bytes 4-7   REQUEST LIMIT DELTA
//	bytes 8-15  TAG
//	bytes 16-19 MAXIMUM INITIATOR TO TARGET IU LENGTH
//	bytes 20-23 MAXIMUM TARGET TO INITIATOR IU LENGTH
//	bytes 24-25 SUPPORTED BUFFER FORMATS
//	byte  26    SOLNTSUP(4) MULTI-CHANNEL RESULT(1-0); SRP-2 bit 7 immediate data supported
//	bytes 27-51 reserved
//
// Over RDMA CM the target sends exactly these 52 bytes as the accept
// private data: Linux ib_srpt calls rdma_accept with private_data = the
// srp_login_rsp and private_data_len = sizeof(struct srp_login_rsp) = 52,
// and ib_srp, on RDMA_CM_EVENT_ESTABLISHED, reads opcode (byte 0),
// max_ti_iu_len, req_lim_delta, rsp_flags & SRP_LOGIN_RSP_IMMED_SUPP and
// max_it_iu_len from the event's private data. The received private data may
// be zero-padded by the CM; Decode ignores bytes past the 52nd.
type LoginRsp struct {
	Tag          uint64
	ReqLimDelta  int32 // initial request limit (credits)
	MaxITIULen   uint32
	MaxTIIULen   uint32
	BufFmt       uint16 // BufFmtDirect | BufFmtIndirect
	MultiChannel uint8  // MULTI-CHANNEL RESULT (2 bits)
	Flags        uint8  // LoginRspFlag* bits; bits 1-0 must be zero
}

// Len returns LoginRspLen.
func (x *LoginRsp) Len() int { return LoginRspLen }

// Decode parses an SRP_LOGIN_RSP.
func (x *LoginRsp) Decode(b []byte) error {
	if err := checkHead(b, OpLoginRsp, LoginRspLen); err != nil {
		return err
	}
	x.ReqLimDelta = int32(be.Uint32(b[4:8]))
	x.Tag = be.Uint64(b[8:16])
	x.MaxITIULen = be.Uint32(b[16:20])
	x.MaxTIIULen = be.Uint32(b[20:24])
	x.BufFmt = be.Uint16(b[24:26])
	x.MultiChannel = b[26] & 0x03
	x.Flags = b[26] &^ 0x03
	return nil
}

// Encode writes the 52-byte SRP_LOGIN_RSP into b.
func (x *LoginRsp) Encode(b []byte) (int, error) {
	if x.MultiChannel > 3 {
		return 0, errInvalid(OpLoginRsp, "MULTI-CHANNEL RESULT", "does not fit in 2 bits")
	}
	if x.Flags&0x03 != 0 {
		return 0, errInvalid(OpLoginRsp, "flags", "bits 1-0 belong to MULTI-CHANNEL RESULT")
	}
	if err := begin(b, OpLoginRsp, LoginRspLen); err != nil {
		return 0, err
	}
	be.PutUint32(b[4:8], uint32(x.ReqLimDelta))
	be.PutUint64(b[8:16], x.Tag)
	be.PutUint32(b[16:20], x.MaxITIULen)
	be.PutUint32(b[20:24], x.MaxTIIULen)
	be.PutUint16(b[24:26], x.BufFmt)
	b[26] = x.Flags | x.MultiChannel
	return LoginRspLen, nil
}

// LoginRej is SRP_LOGIN_REJ.
//
//	byte  0     IU TYPE (C2h)
//	bytes 1-3   reserved
//	bytes 4-7   REASON (Rej* constants)
//	bytes 8-15  TAG
//	bytes 16-23 reserved
//	bytes 24-25 SUPPORTED BUFFER FORMATS
//	bytes 26-31 reserved
//
// Over RDMA CM the target sends these 32 bytes as the reject private data
// with reject reason CMRejectConsumerDefined: Linux ib_srpt calls
// rdma_reject(cm_id, rej, sizeof(*rej), IB_CM_REJ_CONSUMER_DEFINED), and
// ib_srp, for that reason only, checks byte 0 == SRP_LOGIN_REJ and logs the
// reason in bytes 4-7. A reject without this payload shows up in ib_srp's
// log as "REJ reason: IB_CM_REJ_CONSUMER_DEFINED, opcode 0x.." (or another
// CM reason) and add_target fails with ECONNRESET either way.
type LoginRej struct {
	Tag    uint64
	Reason uint32
	BufFmt uint16
}

// Len returns LoginRejLen.
func (x *LoginRej) Len() int { return LoginRejLen }

// Decode parses an SRP_LOGIN_REJ.
func (x *LoginRej) Decode(b []byte) error {
	if err := checkHead(b, OpLoginRej, LoginRejLen); err != nil {
		return err
	}
	x.Reason = be.Uint32(b[4:8])
	x.Tag = be.Uint64(b[8:16])
	x.BufFmt = be.Uint16(b[24:26])
	return nil
}

// Encode writes the 32-byte SRP_LOGIN_REJ into b.
func (x *LoginRej) Encode(b []byte) (int, error) {
	if err := begin(b, OpLoginRej, LoginRejLen); err != nil {
		return 0, err
	}
	be.PutUint32(b[4:8], x.Reason)
	be.PutUint64(b[8:16], x.Tag)
	be.PutUint16(b[24:26], x.BufFmt)
	return LoginRejLen, nil
}
