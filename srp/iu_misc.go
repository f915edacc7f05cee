package srp

// Logout, task management, credit and asynchronous event IUs
// (SRP r16a 6.5-6.7 and 6.10-6.13; Linux include/scsi/srp.h).

// Encoded sizes.
const (
	ILogoutLen   = 16 // SRP_I_LOGOUT
	TLogoutLen   = 16 // SRP_T_LOGOUT
	TskMgmtLen   = 48 // SRP_TSK_MGMT
	CredReqLen   = 16 // SRP_CRED_REQ
	CredRspLen   = 16 // SRP_CRED_RSP
	AerReqMinLen = 36 // SRP_AER_REQ without sense data
	AerRspLen    = 16 // SRP_AER_RSP
)

// Solicited notification bits in byte 1 of several IUs.
const (
	// FlagSolNt is SOLNT (bit 0) in SRP_RSP, SRP_T_LOGOUT, SRP_CRED_REQ and
	// SRP_AER_REQ (ib_srpt.h SRP_SOLNT, "tables 16 and 22").
	FlagSolNt uint8 = 0x01
	// FlagSCSolNt is SCSOLNT (bit 1) in SRP_CMD and SRP_TSK_MGMT: solicited
	// notification for a successful completion (ib_srpt.h SRP_SCSOLNT,
	// "tables 18 and 20").
	FlagSCSolNt uint8 = 0x02
	// FlagUCSolNt is UCSOLNT (bit 2) in SRP_CMD and SRP_TSK_MGMT: solicited
	// notification for an unsuccessful completion (ib_srpt.h SRP_UCSOLNT).
	FlagUCSolNt uint8 = 0x04
)

// SRP_T_LOGOUT REASON codes (bytes 4-7).
//
// Codes 0-4 and 8 agree in every source found (iPXE srp.h, illumos
// comstar srpt srp.h). For the two "unsupported format code" reasons the
// sources disagree: illumos has 6 (data-out) and 7 (data-in) with 5 unused,
// iPXE has 5 and 6 with 7 unused. These constants follow illumos; the T10
// table itself could not be consulted. Linux ib_srp ignores SRP_T_LOGOUT
// contents entirely ("XXX Handle target logout").
const (
	TLogoutNoReason                 uint32 = 0 // no reason specified
	TLogoutInactive                 uint32 = 1 // inactive RDMA channel (reclaiming resources)
	TLogoutInvalidIUType            uint32 = 2 // invalid IU type code received by the target port
	TLogoutUnexpectedResponse       uint32 = 3 // initiator sent a response with no corresponding request
	TLogoutMultiChannelAction       uint32 = 4 // channel disconnected by a new login's MULTI-CHANNEL ACTION
	TLogoutUnsupportedDataOutFormat uint32 = 6 // unsupported DATA-OUT BUFFER DESCRIPTOR FORMAT (see above)
	TLogoutUnsupportedDataInFormat  uint32 = 7 // unsupported DATA-IN BUFFER DESCRIPTOR FORMAT (see above)
	TLogoutInvalidIULen             uint32 = 8 // invalid length for the IU type
)

// TASK MANAGEMENT FUNCTION codes, SRP_TSK_MGMT byte 30 (SRP r16a; Linux
// SRP_TSK_ABORT_TASK ... SRP_TSK_CLEAR_ACA; illumos and iPXE agree).
const (
	TMFAbortTask        uint8 = 0x01
	TMFAbortTaskSet     uint8 = 0x02
	TMFClearTaskSet     uint8 = 0x04
	TMFLogicalUnitReset uint8 = 0x08
	TMFClearACA         uint8 = 0x40
	// TMFQueryTask is not in SRP r16a nor in any Linux, illumos or iPXE
	// header; the value comes from the design brief and is unverified.
	TMFQueryTask uint8 = 0x80
)

// RESPONSE CODE values: byte 3 of the 4-byte response data of the SRP_RSP
// that answers an SRP_TSK_MGMT (ib_srpt.h "table 24"; illumos srp.h
// SRP_TM_*). Linux ib_srpt sends only Complete, NotSupported and Failed;
// Linux ib_srp treats any value other than 0 as failure.
const (
	RspCodeComplete      uint8 = 0x00 // no failure / task management function complete
	RspCodeInvalidFields uint8 = 0x02 // request fields invalid
	RspCodeNotSupported  uint8 = 0x04 // task management function not supported
	RspCodeFailed        uint8 = 0x05 // task management function failed
	// The next two are SAM-4/5 service responses (FUNCTION SUCCEEDED,
	// INCORRECT LOGICAL UNIT NUMBER) numbered as in FCP-4; SRP r16a does not
	// list them and no SRP implementation found uses them.
	RspCodeSucceeded    uint8 = 0x08
	RspCodeIncorrectLUN uint8 = 0x09
)

// ILogout is SRP_I_LOGOUT: byte 0 IU TYPE (03h), bytes 1-7 reserved,
// bytes 8-15 TAG.
type ILogout struct {
	Tag uint64
}

// Len returns ILogoutLen.
func (x *ILogout) Len() int { return ILogoutLen }

// Decode parses an SRP_I_LOGOUT.
func (x *ILogout) Decode(b []byte) error {
	if err := checkHead(b, OpILogout, ILogoutLen); err != nil {
		return err
	}
	x.Tag = be.Uint64(b[8:16])
	return nil
}

// Encode writes the 16-byte SRP_I_LOGOUT into b.
func (x *ILogout) Encode(b []byte) (int, error) {
	if err := begin(b, OpILogout, ILogoutLen); err != nil {
		return 0, err
	}
	be.PutUint64(b[8:16], x.Tag)
	return ILogoutLen, nil
}

// TLogout is SRP_T_LOGOUT.
//
//	byte  0     IU TYPE (80h)
//	byte  1     SOLNT (bit 0)
//	bytes 2-3   reserved
//	bytes 4-7   REASON (TLogout* constants)
//	bytes 8-15  TAG
type TLogout struct {
	Tag    uint64
	Reason uint32
	SolNt  uint8 // byte 1 as sent; FlagSolNt
}

// Len returns TLogoutLen.
func (x *TLogout) Len() int { return TLogoutLen }

// Decode parses an SRP_T_LOGOUT.
func (x *TLogout) Decode(b []byte) error {
	if err := checkHead(b, OpTLogout, TLogoutLen); err != nil {
		return err
	}
	x.SolNt = b[1]
	x.Reason = be.Uint32(b[4:8])
	x.Tag = be.Uint64(b[8:16])
	return nil
}

// Encode writes the 16-byte SRP_T_LOGOUT into b.
func (x *TLogout) Encode(b []byte) (int, error) {
	if err := begin(b, OpTLogout, TLogoutLen); err != nil {
		return 0, err
	}
	b[1] = x.SolNt
	be.PutUint32(b[4:8], x.Reason)
	be.PutUint64(b[8:16], x.Tag)
	return TLogoutLen, nil
}

// TskMgmt is SRP_TSK_MGMT.
//
//	byte  0     IU TYPE (01h)
//	byte  1     UCSOLNT(2) SCSOLNT(1)
//	bytes 2-7   reserved
//	bytes 8-15  TAG
//	bytes 16-19 reserved
//	bytes 20-27 LOGICAL UNIT NUMBER
//	bytes 28-29 reserved
//	byte  30    TASK MANAGEMENT FUNCTION (TMF* constants)
//	byte  31    reserved
//	bytes 32-39 TAG OF TASK TO BE MANAGED
//	bytes 40-47 reserved
type TskMgmt struct {
	Tag      uint64
	LUN      uint64 // the 8-byte SAM LUN, big-endian
	Function uint8
	TaskTag  uint64
	SolNt    uint8 // byte 1 as sent; FlagSCSolNt | FlagUCSolNt
}

// Len returns TskMgmtLen.
func (x *TskMgmt) Len() int { return TskMgmtLen }

// Decode parses an SRP_TSK_MGMT. Function codes are not checked here: an
// unknown one is answered with RspCodeNotSupported by the session layer.
func (x *TskMgmt) Decode(b []byte) error {
	if err := checkHead(b, OpTskMgmt, TskMgmtLen); err != nil {
		return err
	}
	x.SolNt = b[1]
	x.Tag = be.Uint64(b[8:16])
	x.LUN = be.Uint64(b[20:28])
	x.Function = b[30]
	x.TaskTag = be.Uint64(b[32:40])
	return nil
}

// Encode writes the 48-byte SRP_TSK_MGMT into b.
func (x *TskMgmt) Encode(b []byte) (int, error) {
	if err := begin(b, OpTskMgmt, TskMgmtLen); err != nil {
		return 0, err
	}
	b[1] = x.SolNt
	be.PutUint64(b[8:16], x.Tag)
	be.PutUint64(b[20:28], x.LUN)
	b[30] = x.Function
	be.PutUint64(b[32:40], x.TaskTag)
	return TskMgmtLen, nil
}

// CredReq is SRP_CRED_REQ.
//
//	byte  0     IU TYPE (81h)
//	byte  1     SOLNT (bit 0)
//	bytes 2-3   reserved
//	bytes 4-7   REQUEST LIMIT DELTA
//	bytes 8-15  TAG
type CredReq struct {
	Tag         uint64
	ReqLimDelta int32 // Linux ib_srp reads it as s32
	SolNt       uint8
}

// Len returns CredReqLen.
func (x *CredReq) Len() int { return CredReqLen }

// Decode parses an SRP_CRED_REQ.
func (x *CredReq) Decode(b []byte) error {
	if err := checkHead(b, OpCredReq, CredReqLen); err != nil {
		return err
	}
	x.SolNt = b[1]
	x.ReqLimDelta = int32(be.Uint32(b[4:8]))
	x.Tag = be.Uint64(b[8:16])
	return nil
}

// Encode writes the 16-byte SRP_CRED_REQ into b.
func (x *CredReq) Encode(b []byte) (int, error) {
	if err := begin(b, OpCredReq, CredReqLen); err != nil {
		return 0, err
	}
	b[1] = x.SolNt
	be.PutUint32(b[4:8], uint32(x.ReqLimDelta))
	be.PutUint64(b[8:16], x.Tag)
	return CredReqLen, nil
}

// CredRsp is SRP_CRED_RSP: byte 0 IU TYPE (41h), bytes 1-7 reserved,
// bytes 8-15 TAG (of the SRP_CRED_REQ it answers).
type CredRsp struct {
	Tag uint64
}

// Len returns CredRspLen.
func (x *CredRsp) Len() int { return CredRspLen }

// Decode parses an SRP_CRED_RSP.
func (x *CredRsp) Decode(b []byte) error {
	if err := checkHead(b, OpCredRsp, CredRspLen); err != nil {
		return err
	}
	x.Tag = be.Uint64(b[8:16])
	return nil
}

// Encode writes the 16-byte SRP_CRED_RSP into b.
func (x *CredRsp) Encode(b []byte) (int, error) {
	if err := begin(b, OpCredRsp, CredRspLen); err != nil {
		return 0, err
	}
	be.PutUint64(b[8:16], x.Tag)
	return CredRspLen, nil
}

// AerReq is SRP_AER_REQ.
//
//	byte  0     IU TYPE (82h)
//	byte  1     SOLNT (bit 0)
//	bytes 2-3   reserved
//	bytes 4-7   REQUEST LIMIT DELTA
//	bytes 8-15  TAG
//	bytes 16-19 reserved
//	bytes 20-27 LOGICAL UNIT NUMBER
//	bytes 28-31 SENSE DATA LIST LENGTH
//	bytes 32-35 reserved
//	bytes 36-   SENSE DATA
type AerReq struct {
	Tag         uint64
	ReqLimDelta int32
	LUN         uint64
	Sense       []byte // after Decode, aliases the decoded buffer
	SolNt       uint8
}

// Len returns the encoded size, 36 + len(Sense).
func (x *AerReq) Len() int { return AerReqMinLen + len(x.Sense) }

// Decode parses an SRP_AER_REQ. Sense aliases b.
func (x *AerReq) Decode(b []byte) error {
	if err := checkHead(b, OpAerReq, AerReqMinLen); err != nil {
		return err
	}
	n := be.Uint32(b[28:32])
	if uint64(AerReqMinLen)+uint64(n) > uint64(len(b)) {
		return errShort(OpAerReq, "SENSE DATA LIST LENGTH", 28, AerReqMinLen+int(n), len(b))
	}
	x.SolNt = b[1]
	x.ReqLimDelta = int32(be.Uint32(b[4:8]))
	x.Tag = be.Uint64(b[8:16])
	x.LUN = be.Uint64(b[20:28])
	end := AerReqMinLen + int(n)
	x.Sense = nil
	if n > 0 {
		x.Sense = b[AerReqMinLen:end:end]
	}
	return nil
}

// Encode writes the SRP_AER_REQ into b.
func (x *AerReq) Encode(b []byte) (int, error) {
	if uint64(len(x.Sense)) > 0xFFFFFFFF {
		return 0, errInvalid(OpAerReq, "SENSE DATA", "longer than 2^32-1 bytes")
	}
	n := x.Len()
	if err := begin(b, OpAerReq, n); err != nil {
		return 0, err
	}
	b[1] = x.SolNt
	be.PutUint32(b[4:8], uint32(x.ReqLimDelta))
	be.PutUint64(b[8:16], x.Tag)
	be.PutUint64(b[20:28], x.LUN)
	be.PutUint32(b[28:32], uint32(len(x.Sense)))
	copy(b[AerReqMinLen:], x.Sense)
	return n, nil
}

// AerRsp is SRP_AER_RSP: byte 0 IU TYPE (42h), bytes 1-7 reserved,
// bytes 8-15 TAG (of the SRP_AER_REQ it answers).
type AerRsp struct {
	Tag uint64
}

// Len returns AerRspLen.
func (x *AerRsp) Len() int { return AerRspLen }

// Decode parses an SRP_AER_RSP.
func (x *AerRsp) Decode(b []byte) error {
	if err := checkHead(b, OpAerRsp, AerRspLen); err != nil {
		return err
	}
	x.Tag = be.Uint64(b[8:16])
	return nil
}

// Encode writes the 16-byte SRP_AER_RSP into b.
func (x *AerRsp) Encode(b []byte) (int, error) {
	if err := begin(b, OpAerRsp, AerRspLen); err != nil {
		return 0, err
	}
	be.PutUint64(b[8:16], x.Tag)
	return AerRspLen, nil
}
