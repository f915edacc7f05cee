package scsi

import "math/bits"

// opFlag describes how the SPC checks treat a command.
type opFlag uint16

const (
	// opUAExempt commands run while a unit attention is pending (INQUIRY,
	// REPORT LUNS, REQUEST SENSE; SPC-4 5.14).
	opUAExempt opFlag = 1 << iota
	// opMedium commands access the medium: they fail while the LU is
	// stopped or formatting.
	opMedium
	// opWrite commands modify the medium: they fail on a write-protected
	// LU.
	opWrite
	// opSPC2OK commands run while another I_T nexus holds an SPC-2
	// reservation (INQUIRY, REPORT LUNS, REQUEST SENSE, READ CAPACITY;
	// SPC-2 5.5.1 and table B.1).
	opSPC2OK
)

// opInfo describes one command (one operation code, or one service action
// of an operation code): its handler and its CDB usage data, the bitmap of
// CDB bits the device server looks at (SPC-4 6.35.3). Bits outside the
// usage data must be zero; the check reports the first one set as INVALID
// FIELD IN CDB.
type opInfo struct {
	name  string
	code  byte
	sa    uint16
	hasSA bool
	usage []byte
	flags opFlag
	// pr is how the command fares in the presence of reservations
	// (pr_lu.go); the zero value conflicts like a write.
	pr prClass
	fn func(*Command) error
}

// opTable maps operation codes (and service actions) to commands. Each
// logical unit has its own, built once from SPC and its device type.
type opTable struct {
	ops [256]*opInfo
	sas [256][]*opInfo
}

func (t *opTable) add(o *opInfo) {
	o.usage[0] = o.code
	if o.hasSA {
		l := append(t.sas[o.code], o)
		for i := len(l) - 1; i > 0 && l[i].sa < l[i-1].sa; i-- {
			l[i], l[i-1] = l[i-1], l[i]
		}
		t.sas[o.code] = l
		return
	}
	t.ops[o.code] = o
}

// saField returns the service action of a CDB whose operation code has
// service actions: byte 1 bits 4-0 for the 12- and 16-byte forms.
func saField(cdb []byte) uint16 {
	if len(cdb) < 2 {
		return 0xFFFF
	}
	return uint16(cdb[1] & 0x1F)
}

// lookup finds the command for a CDB: INVALID COMMAND OPERATION CODE for an
// unknown code, INVALID FIELD IN CDB (byte 1) for an unknown service action.
func (t *opTable) lookup(cdb []byte) (*opInfo, error) {
	code := cdb[0]
	if sas := t.sas[code]; sas != nil {
		sa := saField(cdb)
		for _, o := range sas {
			if o.sa == sa {
				return o, nil
			}
		}
		return nil, InvalidCDB(1, 4)
	}
	if o := t.ops[code]; o != nil {
		return o, nil
	}
	return nil, ErrInvalidOpcode
}

// checkCDB rejects a CDB shorter than the command's or with a bit set that
// the command does not use (reserved bits, and NACA/LINK in the control
// byte, which this target does not support).
func (o *opInfo) checkCDB(cdb []byte) error {
	if len(cdb) < len(o.usage) {
		return ErrInvalidCommandIU
	}
	for i := 1; i < len(o.usage); i++ {
		if bad := cdb[i] &^ o.usage[i]; bad != 0 {
			return InvalidCDB(i, bits.Len8(bad)-1)
		}
	}
	return nil
}

// each calls f for every command in operation code, then service action,
// order.
func (t *opTable) each(f func(*opInfo)) {
	for code := 0; code < 256; code++ {
		if o := t.ops[code]; o != nil {
			f(o)
		}
		for _, o := range t.sas[code] {
			f(o)
		}
	}
}

// cdb builds a usage bitmap: the operation code byte is filled by add.
func cdb(b ...byte) []byte { return append([]byte{0}, b...) }
