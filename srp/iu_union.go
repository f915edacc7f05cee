package srp

// PeekOpcode returns the IU type in byte 0 of b.
func PeekOpcode(b []byte) (Opcode, error) {
	if len(b) == 0 {
		return 0, errShort(0, "IU TYPE", 0, 1, 0)
	}
	op := Opcode(b[0])
	if !op.Valid() {
		return op, &DecodeError{IU: op, Field: "IU TYPE", Off: 0, Kind: ErrBadOpcode, Reason: "unknown IU type"}
	}
	return op, nil
}

// IU holds any one decoded information unit; Op says which field is valid.
// One IU per channel, reused for every received IU, decodes without
// allocating: set Cmd.ImmOffset once and give Cmd.DescBuf a capacity (or
// let the first indirect command size it); Decode preserves both. After a failed Decode the
// contents are unspecified except Op, which is the opcode byte when it was
// readable.
type IU struct {
	Op Opcode

	// Sent by an initiator.
	LoginReq LoginReq
	TskMgmt  TskMgmt
	Cmd      Cmd
	ILogout  ILogout
	CredRsp  CredRsp
	AerRsp   AerRsp

	// Sent by a target.
	LoginRsp LoginRsp
	LoginRej LoginRej
	Rsp      Rsp
	TLogout  TLogout
	CredReq  CredReq
	AerReq   AerReq
}

// Decode decodes an IU of any type.
func (u *IU) Decode(b []byte) error {
	op, err := PeekOpcode(b)
	u.Op = op
	if err != nil {
		return err
	}
	switch op {
	case OpLoginReq:
		return u.LoginReq.Decode(b)
	case OpTskMgmt:
		return u.TskMgmt.Decode(b)
	case OpCmd:
		return u.Cmd.Decode(b)
	case OpILogout:
		return u.ILogout.Decode(b)
	case OpCredRsp:
		return u.CredRsp.Decode(b)
	case OpAerRsp:
		return u.AerRsp.Decode(b)
	case OpLoginRsp:
		return u.LoginRsp.Decode(b)
	case OpLoginRej:
		return u.LoginRej.Decode(b)
	case OpRsp:
		return u.Rsp.Decode(b)
	case OpTLogout:
		return u.TLogout.Decode(b)
	case OpCredReq:
		return u.CredReq.Decode(b)
	default: // OpAerReq; PeekOpcode accepted only known opcodes
		return u.AerReq.Decode(b)
	}
}

// DecodeFromInitiator decodes an IU received by a target port: SRP_CMD,
// SRP_TSK_MGMT, SRP_I_LOGOUT, SRP_CRED_RSP, SRP_AER_RSP or SRP_LOGIN_REQ.
// A target-to-initiator IU is rejected with ErrBadOpcode (the session
// answers it with SRP_T_LOGOUT reason TLogoutInvalidIUType or
// TLogoutUnexpectedResponse).
func (u *IU) DecodeFromInitiator(b []byte) error {
	if len(b) > 0 && !Opcode(b[0]).FromInitiator() {
		u.Op = Opcode(b[0])
		return &DecodeError{IU: u.Op, Field: "IU TYPE", Off: 0, Kind: ErrBadOpcode,
			Reason: "not an initiator-to-target IU"}
	}
	return u.Decode(b)
}

// DecodeFromTarget decodes an IU received by an initiator port: SRP_RSP,
// SRP_CRED_REQ, SRP_AER_REQ, SRP_T_LOGOUT, SRP_LOGIN_RSP or SRP_LOGIN_REJ.
func (u *IU) DecodeFromTarget(b []byte) error {
	if len(b) > 0 && Opcode(b[0]).FromInitiator() {
		u.Op = Opcode(b[0])
		return &DecodeError{IU: u.Op, Field: "IU TYPE", Off: 0, Kind: ErrBadOpcode,
			Reason: "not a target-to-initiator IU"}
	}
	return u.Decode(b)
}

// Len returns the encoded size of the IU selected by Op (0 if Op is unknown).
func (u *IU) Len() int {
	switch u.Op {
	case OpLoginReq:
		return u.LoginReq.Len()
	case OpTskMgmt:
		return u.TskMgmt.Len()
	case OpCmd:
		return u.Cmd.Len()
	case OpILogout:
		return u.ILogout.Len()
	case OpCredRsp:
		return u.CredRsp.Len()
	case OpAerRsp:
		return u.AerRsp.Len()
	case OpLoginRsp:
		return u.LoginRsp.Len()
	case OpLoginRej:
		return u.LoginRej.Len()
	case OpRsp:
		return u.Rsp.Len()
	case OpTLogout:
		return u.TLogout.Len()
	case OpCredReq:
		return u.CredReq.Len()
	case OpAerReq:
		return u.AerReq.Len()
	}
	return 0
}

// Encode encodes the IU selected by Op into b.
func (u *IU) Encode(b []byte) (int, error) {
	switch u.Op {
	case OpLoginReq:
		return u.LoginReq.Encode(b)
	case OpTskMgmt:
		return u.TskMgmt.Encode(b)
	case OpCmd:
		return u.Cmd.Encode(b)
	case OpILogout:
		return u.ILogout.Encode(b)
	case OpCredRsp:
		return u.CredRsp.Encode(b)
	case OpAerRsp:
		return u.AerRsp.Encode(b)
	case OpLoginRsp:
		return u.LoginRsp.Encode(b)
	case OpLoginRej:
		return u.LoginRej.Encode(b)
	case OpRsp:
		return u.Rsp.Encode(b)
	case OpTLogout:
		return u.TLogout.Encode(b)
	case OpCredReq:
		return u.CredReq.Encode(b)
	case OpAerReq:
		return u.AerReq.Encode(b)
	}
	return 0, errInvalid(u.Op, "IU TYPE", "unknown IU type")
}
