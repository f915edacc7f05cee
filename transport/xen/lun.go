package xen

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
)

// Addr is a virtual SCSI address "H:C:T:L" (v-dev). The frontend uses
// channel, target and LUN; H names the guest's virtual host (vhost), as in
// SUSE libxl's vscsi= syntax.
type Addr struct {
	Host, Channel, Target, LUN uint32
}

func (a Addr) String() string {
	return fmt.Sprintf("%d:%d:%d:%d", a.Host, a.Channel, a.Target, a.LUN)
}

// ParseAddr parses "H:C:T:L" (decimal).
func ParseAddr(s string) (Addr, error) {
	f := strings.Split(strings.TrimSpace(s), ":")
	if len(f) != 4 {
		return Addr{}, fmt.Errorf("xen: %q is not H:C:T:L", s)
	}
	var v [4]uint32
	for i, x := range f {
		n, err := strconv.ParseUint(x, 10, 32)
		if err != nil {
			return Addr{}, fmt.Errorf("xen: %q is not H:C:T:L: %q is not a number", s, x)
		}
		v[i] = uint32(n)
	}
	return Addr{v[0], v[1], v[2], v[3]}, nil
}

// Limits of the addresses Linux xen-scsifront uses (max_channel 0,
// max_id 64, max_lun 255) that this backend can map to a SAM LUN.
const (
	MaxTarget = 63
	MaxLUN    = 255
)

// SAMLUN returns the LUN number (0..16383) that a guest address maps to:
// target<<8 | lun. ok is false for an address this backend cannot serve
// (channel other than 0, target above 63, LUN above 255).
func (a Addr) SAMLUN() (n uint16, ok bool) {
	return lunNumber(a.Channel, a.Target, a.LUN)
}

func lunNumber(channel, target, lun uint32) (uint16, bool) {
	if channel != 0 || target > MaxTarget || lun > MaxLUN {
		return 0, false
	}
	return uint16(target<<8 | lun), true
}

// EncodeLUN is the 8-byte SAM LUN of LUN number n, as scsi.EncodeLUN:
// peripheral device addressing below 256, flat space addressing above.
// (The transport does not import scsi; a test checks they agree.)
func EncodeLUN(n uint16) uint64 {
	if n < 256 {
		return uint64(n) << 48
	}
	return uint64(0x4000|n&0x3FFF) << 48
}

// LUNSpec is one entry of a guest's LUN list: "LUN, H:C:T:L" (the LU
// named LUN at guest address H:C:T:L, vhost H).
type LUNSpec struct {
	LU   string
	Addr Addr
}

// ParseLUNSpec parses "disk0, 0:0:0:1".
func ParseLUNSpec(s string) (LUNSpec, error) {
	name, addr, ok := strings.Cut(s, ",")
	name = strings.TrimSpace(name)
	if !ok || name == "" {
		return LUNSpec{}, fmt.Errorf("xen: %q is not 'LUN, H:C:T:L'", s)
	}
	a, err := ParseAddr(addr)
	if err != nil {
		return LUNSpec{}, err
	}
	if _, ok := a.SAMLUN(); !ok {
		return LUNSpec{}, fmt.Errorf("xen: %s: channel must be 0, target 0..%d, LUN 0..%d", a, MaxTarget, MaxLUN)
	}
	return LUNSpec{LU: name, Addr: a}, nil
}

func (l LUNSpec) String() string { return l.LU + ", " + l.Addr.String() }

// InitiatorPortID is the SRP initiator port identifier of a guest's
// virtual host: bytes 0..13 of the domain's UUID (or of the SHA-256 of its
// name when it has none), then the vhost number big-endian. It is stable
// across reboots and backend restarts, so reservations and unit
// attentions follow the guest.
func InitiatorPortID(uuid [16]byte, vhost uint16) [16]byte {
	var id [16]byte
	copy(id[:14], uuid[:14])
	id[14], id[15] = byte(vhost>>8), byte(vhost)
	return id
}

// DomainUUID parses a domain UUID ("xxxxxxxx-xxxx-...") or, if s is not
// one, hashes s (a domain name) into 16 bytes.
func DomainUUID(s string) [16]byte {
	var u [16]byte
	h := strings.ReplaceAll(s, "-", "")
	if len(h) == 32 {
		if b, err := hex.DecodeString(h); err == nil {
			copy(u[:], b)
			return u
		}
	}
	sum := sha256.Sum256([]byte("srptgt xen domain " + s))
	copy(u[:], sum[:16])
	return u
}
