package scsi

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"strconv"
	"strings"
)

// The saved persistent reservation state (APTPL, SPC-4 5.12.5). The scsi
// package encodes and checks it; where it lives is the caller's business
// (DiskConfig.SavePR and SavedPR). The encoding is text an administrator
// can read, one item per line, closed by a CRC-32C of everything before
// it, so that a torn or edited file is refused as a whole:
//
//	srptgt persistent reservations v1
//	aptpl 1
//	reg 000000000000000a 00000000000000010200000000000001 0000000000000000000000fffe000001
//	reg 000000000000000b 00000000000000020200000000000001 all
//	res 1 00000000000000010200000000000001 0000000000000000000000fffe000001
//	crc32c 5d1a0f3e
//
// A reg line is a registration: its key, initiator port and target port
// ("all": ALL_TG_PT). The res line is the reservation: its type and,
// unless it is an all-registrants type ("- -"), the holder's I_T nexus.
// The PRgeneration counter is not saved: SPC-4 6.15.2 sets it to zero at
// power on whatever APTPL says. With APTPL off the state is just
// "aptpl 0": a restart clears the reservations (SPC-4 5.12.5).

const prStateHeader = "srptgt persistent reservations v1"

var prCastagnoli = crc32.MakeTable(crc32.Castagnoli)

// ErrPRStateCorrupt is wrapped by every ParsePRState error.
var ErrPRStateCorrupt = errors.New("scsi: corrupt persistent reservation state")

// PRState is a logical unit's persistent reservation state as saved.
type PRState struct {
	APTPL         bool
	Registrations []PRRegistration
	// Reservation is nil when there is none.
	Reservation *PRReservation
}

// PRRegistration is one registration.
type PRRegistration struct {
	Key uint64
	// Initiator and Target name the I_T nexus; AllTargetPorts registers
	// the initiator port through every target port (ALL_TG_PT), and
	// Target is then not used.
	Initiator, Target PortID
	AllTargetPorts    bool
}

// PRReservation is the persistent reservation: its type (1h WE, 3h EA, 5h
// WE-RO, 6h EA-RO, 7h WE-AR, 8h EA-AR) and, except for the all-registrants
// types, the holder's I_T nexus.
type PRReservation struct {
	Type   byte
	Holder NexusID
}

// String summarises the state for a log line.
func (s *PRState) String() string {
	r := "none"
	if s.Reservation != nil {
		r = prTypeName(s.Reservation.Type)
	}
	return fmt.Sprintf("aptpl=%v registrations=%d reservation=%s", s.APTPL, len(s.Registrations), r)
}

func prTypeName(t byte) string {
	switch t {
	case prWE:
		return "WE"
	case prEA:
		return "EA"
	case prWERO:
		return "WE-RO"
	case prEARO:
		return "EA-RO"
	case prWEAR:
		return "WE-AR"
	case prEAAR:
		return "EA-AR"
	}
	return fmt.Sprintf("type %#x", t)
}

// encodeState renders d's persistent part.
func (d *prData) encodeState() []byte {
	var b bytes.Buffer
	b.WriteString(prStateHeader + "\n")
	if !d.aptpl {
		b.WriteString("aptpl 0\n")
	} else {
		b.WriteString("aptpl 1\n")
		for _, r := range d.regs {
			t := "all"
			if !r.allTgPt {
				t = hex.EncodeToString(r.tport[:])
			}
			fmt.Fprintf(&b, "reg %016x %s %s\n", r.key, hex.EncodeToString(r.init[:]), t)
		}
		if d.rtype != 0 {
			if allRegistrants(d.rtype) {
				fmt.Fprintf(&b, "res %d - -\n", d.rtype)
			} else {
				fmt.Fprintf(&b, "res %d %s %s\n", d.rtype, hex.EncodeToString(d.holder.Initiator[:]), hex.EncodeToString(d.holder.Target[:]))
			}
		}
	}
	fmt.Fprintf(&b, "crc32c %08x\n", crc32.Checksum(b.Bytes(), prCastagnoli))
	return b.Bytes()
}

// ParsePRState decodes and checks a saved state. Anything but a complete,
// consistent state is an error wrapping ErrPRStateCorrupt: a truncated,
// torn or edited file never yields a partial state.
func ParsePRState(b []byte) (*PRState, error) {
	d, err := parsePRData(b)
	if err != nil {
		return nil, err
	}
	s := &PRState{APTPL: d.aptpl}
	for _, r := range d.regs {
		s.Registrations = append(s.Registrations, PRRegistration{Key: r.key, Initiator: r.init, Target: r.tport, AllTargetPorts: r.allTgPt})
	}
	if d.rtype != 0 {
		s.Reservation = &PRReservation{Type: d.rtype, Holder: d.holder}
	}
	return s, nil
}

func corrupt(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrPRStateCorrupt, fmt.Sprintf(format, args...))
}

// maxPRState bounds the saved state: a header, maxRegistrations reg
// lines of 87 bytes, a res line and the trailer fit well within it.
const maxPRState = 64 << 10

func parsePRData(b []byte) (prData, error) {
	var d prData
	if len(b) > maxPRState {
		return d, corrupt("%d bytes, more than %d", len(b), maxPRState)
	}
	if len(b) == 0 || b[len(b)-1] != '\n' {
		return d, corrupt("does not end with a newline")
	}
	i := bytes.LastIndexByte(b[:len(b)-1], '\n')
	if i < 0 {
		return d, corrupt("no crc32c trailer")
	}
	body, trailer := b[:i+1], string(b[i+1:len(b)-1])
	h, ok := strings.CutPrefix(trailer, "crc32c ")
	sum, err := strconv.ParseUint(h, 16, 32)
	if !ok || err != nil || h != fmt.Sprintf("%08x", sum) {
		return d, corrupt("bad trailer %q", trailer)
	}
	if got := crc32.Checksum(body, prCastagnoli); got != uint32(sum) {
		return d, corrupt("checksum %08x, trailer says %08x", got, sum)
	}
	lines := strings.Split(strings.TrimSuffix(string(body), "\n"), "\n")
	if lines[0] != prStateHeader {
		return d, corrupt("header is not %q", prStateHeader)
	}
	if len(lines) < 2 {
		return d, corrupt("no aptpl line")
	}
	switch lines[1] {
	case "aptpl 0":
		if len(lines) != 2 {
			return d, corrupt("state saved with APTPL off has registrations")
		}
		return d, nil
	case "aptpl 1":
		d.aptpl = true
	default:
		return d, corrupt("line 2: %q is not an aptpl line", lines[1])
	}
	resLine := 0
	for n, l := range lines[2:] {
		ln := n + 3
		f := strings.Split(l, " ")
		switch {
		case f[0] == "reg" && len(f) == 4 && resLine == 0:
			var r prReg
			key, err := strconv.ParseUint(f[1], 16, 64)
			if err != nil || len(f[1]) != 16 || key == 0 {
				return d, corrupt("line %d: bad key %q", ln, f[1])
			}
			r.key = key
			if r.init, err = parsePortHex(f[2]); err != nil {
				return d, corrupt("line %d: initiator: %v", ln, err)
			}
			if f[3] == "all" {
				r.allTgPt = true
			} else if r.tport, err = parsePortHex(f[3]); err != nil {
				return d, corrupt("line %d: target: %v", ln, err)
			}
			for _, o := range d.regs {
				if o.init == r.init && (o.allTgPt || r.allTgPt || o.tport == r.tport) {
					return d, corrupt("line %d: the I_T nexus is registered twice", ln)
				}
			}
			if len(d.regs) == maxRegistrations {
				return d, corrupt("line %d: more than %d registrations", ln, maxRegistrations)
			}
			d.regs = append(d.regs, r)
		case f[0] == "res" && len(f) == 4 && resLine == 0:
			resLine = ln
			t, err := strconv.ParseUint(f[1], 10, 8)
			if err != nil || !validPRType(byte(t)) {
				return d, corrupt("line %d: bad reservation type %q", ln, f[1])
			}
			d.rtype = byte(t)
			if allRegistrants(d.rtype) {
				if f[2] != "-" || f[3] != "-" {
					return d, corrupt("line %d: an all-registrants reservation names a holder", ln)
				}
				if len(d.regs) == 0 {
					return d, corrupt("line %d: a reservation without registrations", ln)
				}
				continue
			}
			if d.holder.Initiator, err = parsePortHex(f[2]); err != nil {
				return d, corrupt("line %d: holder initiator: %v", ln, err)
			}
			if d.holder.Target, err = parsePortHex(f[3]); err != nil {
				return d, corrupt("line %d: holder target: %v", ln, err)
			}
			if d.find(d.holder) < 0 {
				return d, corrupt("line %d: the holder is not registered", ln)
			}
		default:
			return d, corrupt("line %d: %q is not a reg or res line", ln, l)
		}
	}
	return d, nil
}

func parsePortHex(s string) (PortID, error) {
	var id PortID
	if len(s) != 32 {
		return id, fmt.Errorf("%q is not 32 hex digits", s)
	}
	if _, err := hex.Decode(id[:], []byte(s)); err != nil {
		return id, fmt.Errorf("%q is not 32 hex digits", s)
	}
	return id, nil
}
