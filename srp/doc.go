// Package srp implements the SCSI RDMA Protocol for srptgt: the wire codec
// for SRP information units (this file's section) and the session layer
// (documented in its own section below, by its own files).
//
// # Wire codec
//
// The codec covers every information unit of T10 SRP revision 16a plus the
// SRP-2 immediate data extension, big-endian at the standard's offsets:
//
//	initiator -> target: SRP_LOGIN_REQ (LoginReq), SRP_TSK_MGMT (TskMgmt),
//	                     SRP_CMD (Cmd), SRP_I_LOGOUT (ILogout),
//	                     SRP_CRED_RSP (CredRsp), SRP_AER_RSP (AerRsp)
//	target -> initiator: SRP_LOGIN_RSP (LoginRsp), SRP_LOGIN_REJ (LoginRej),
//	                     SRP_RSP (Rsp), SRP_T_LOGOUT (TLogout),
//	                     SRP_CRED_REQ (CredReq), SRP_AER_REQ (AerReq)
//
// Each IU type is a plain struct with three methods: Len (encoded size),
// Encode into a caller's buffer (ErrBufferTooSmall if it does not fit;
// reserved bytes are written as zero), and Decode from a received buffer.
// Decoders are bounds-checked field by field, never panic, and fail with a
// *DecodeError whose Kind (ErrShort, ErrBadOpcode, ErrBadFormat,
// ErrInconsistent) errors.Is matches; a decoder ignores reserved fields and
// bytes after the end of the IU. Variable parts (CDB, immediate data,
// sense and response data) alias the decoded buffer rather than being
// copied, and indirect descriptor lists land in caller-provided storage
// (Cmd.DescBuf), so decoding SRP_CMD and SRP_RSP allocates nothing.
// IU is a union of all twelve, decoded by opcode (PeekOpcode,
// IU.DecodeFromInitiator for a target, IU.DecodeFromTarget for an
// initiator).
//
// The codec checks structure, not policy: it rejects an IU whose lengths,
// counts and formats do not fit together (an additional CDB, descriptor
// list or immediate data running past the end of the IU; an indirect
// descriptor count larger than its table; a total length that does not add
// up; an unknown buffer format code), but leaves values with a protocol
// answer (task attributes, task management functions, IU lengths versus
// negotiated limits, buffer formats not agreed at login) to the session.
//
// An indirect data buffer descriptor may carry only the first entries of
// its table (BufDesc.Partial); the whole table then has to be fetched from
// initiator memory at BufDesc.Table, decoded with DecodeDescTable and
// checked with BufDesc.ValidateTable.
//
// SRP-2 immediate data: an SRP_CMD whose data-out format is BufImm carries
// a 4-byte length instead of a memory descriptor, and the data itself at
// the offset the initiator asked for in SRP_LOGIN_REQ (Linux: 68, after the
// largest additional CDB it sends). That offset is channel state, not part
// of the IU, so the session sets Cmd.ImmOffset before decoding.
//
// # RDMA CM login
//
// Over InfiniBand CM the login IUs travel as CM private data. Linux's
// ib_srp, when it connects with RDMA CM (dest=IP:port), sends not the
// 64-byte SRP_LOGIN_REQ but the 56-byte struct srp_login_req_rdma
// (LoginReq.DecodeRDMA / EncodeRDMA), because RDMA CM over IB leaves only
// 56 bytes of the 92-byte CM REQ private data. The answers are the plain
// IUs: a target accepts with the 52-byte SRP_LOGIN_RSP as accept private
// data (ib_srp reads its opcode, request limit delta, both maximum IU
// lengths and the immediate-data flag) and refuses with the 32-byte
// SRP_LOGIN_REJ as reject private data under CM reject reason
// CMRejectConsumerDefined (28).
//
// # Session layer
//
// (Documented by the session layer's own files.)
package srp
