package scsi

import "fmt"

// TransportIDs (SPC-4 7.6.4): how PERSISTENT RESERVE IN and OUT name an
// initiator port. Every initiator of this target is an SRP initiator port
// (a Xen guest's ring logs in with the stable port identifier its backend
// derives from the domain), so the one format is the SRP TransportID
// (SPC-4 7.6.4):
//
//	byte  0     FORMAT CODE (00b, bits 7-6) | PROTOCOL IDENTIFIER (4h)
//	bytes 1-7   reserved
//	bytes 8-23  INITIATOR PORT IDENTIFIER

// TransportIDLen is the length of an SRP TransportID.
const TransportIDLen = 24

// ProtocolSRP is the SCSI RDMA Protocol's protocol identifier (SPC-4
// 7.6.1).
const ProtocolSRP = 0x4

// TransportIDError describes a TransportID the target cannot use: Off is
// the offset of the offending byte within the TransportID.
type TransportIDError struct {
	Off int
	Msg string
}

func (e *TransportIDError) Error() string {
	return fmt.Sprintf("scsi: TransportID byte %d: %s", e.Off, e.Msg)
}

// SRPTransportID returns the SRP TransportID of initiator port id.
func SRPTransportID(id PortID) [TransportIDLen]byte {
	var b [TransportIDLen]byte
	b[0] = ProtocolSRP
	copy(b[8:], id[:])
	return b
}

// ParseTransportID decodes the TransportID at the start of b: an SRP one
// (format code 00b, protocol identifier 4h) of 24 bytes. It returns the
// initiator port identifier and the TransportID's length. Any other
// protocol or format, or a TransportID that b cuts short, is an error.
// Reserved bytes are not checked (SPC-4 leaves their checking to the
// device server; LIO and SCST ignore them too).
func ParseTransportID(b []byte) (PortID, int, error) {
	var id PortID
	if len(b) < 1 {
		return id, 0, &TransportIDError{Off: 0, Msg: "empty"}
	}
	if f := b[0] >> 6; f != 0 {
		return id, 0, &TransportIDError{Off: 0, Msg: fmt.Sprintf("format code %d (only 0 for SRP)", f)}
	}
	if p := b[0] & 0x0F; p != ProtocolSRP {
		return id, 0, &TransportIDError{Off: 0, Msg: fmt.Sprintf("protocol identifier %#x is not SRP (4h)", p)}
	}
	if len(b) < TransportIDLen {
		return id, 0, &TransportIDError{Off: len(b), Msg: fmt.Sprintf("SRP TransportID cut short at %d of %d bytes", len(b), TransportIDLen)}
	}
	copy(id[:], b[8:24])
	return id, TransportIDLen, nil
}
