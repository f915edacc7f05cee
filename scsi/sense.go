package scsi

import (
	"encoding/binary"
	"fmt"
)

// SenseKey is the sense key of SPC-4 table 49.
type SenseKey uint8

const (
	NoSense        SenseKey = 0x0
	RecoveredError SenseKey = 0x1
	NotReady       SenseKey = 0x2
	MediumError    SenseKey = 0x3
	HardwareError  SenseKey = 0x4
	IllegalRequest SenseKey = 0x5
	UnitAttention  SenseKey = 0x6
	DataProtect    SenseKey = 0x7
	BlankCheck     SenseKey = 0x8
	AbortedCommand SenseKey = 0xB
	VolumeOverflow SenseKey = 0xD
	Miscompare     SenseKey = 0xE
)

var senseKeyNames = [16]string{
	"NO SENSE", "RECOVERED ERROR", "NOT READY", "MEDIUM ERROR", "HARDWARE ERROR",
	"ILLEGAL REQUEST", "UNIT ATTENTION", "DATA PROTECT", "BLANK CHECK", "VENDOR SPECIFIC",
	"COPY ABORTED", "ABORTED COMMAND", "RESERVED", "VOLUME OVERFLOW", "MISCOMPARE", "COMPLETED",
}

func (k SenseKey) String() string { return senseKeyNames[k&0xF] }

// ASC is an additional sense code and qualifier, ASC in the high byte and
// ASCQ in the low byte (SPC-4 table 50, 0x2400 = 24h/00h).
type ASC uint16

// Additional sense codes the target reports.
const (
	ASCNoAdditionalSense         ASC = 0x0000
	ASCNotReadyCause             ASC = 0x0400 // LOGICAL UNIT NOT READY, CAUSE NOT REPORTABLE
	ASCNotReadyInitCmdRequired   ASC = 0x0402 // LOGICAL UNIT NOT READY, INITIALIZING COMMAND REQUIRED
	ASCNotReadyManualIntervent   ASC = 0x0403 // LOGICAL UNIT NOT READY, MANUAL INTERVENTION REQUIRED
	ASCNotReadyFormatInProgress  ASC = 0x0404 // LOGICAL UNIT NOT READY, FORMAT IN PROGRESS
	ASCNotReadySelfTest          ASC = 0x0409 // LOGICAL UNIT NOT READY, SELF-TEST IN PROGRESS
	ASCWriteError                ASC = 0x0C00
	ASCUnrecoveredReadError      ASC = 0x1100
	ASCParamListLength           ASC = 0x1A00 // PARAMETER LIST LENGTH ERROR
	ASCMiscompareDuringVerify    ASC = 0x1D00
	ASCInvalidOpcode             ASC = 0x2000 // INVALID COMMAND OPERATION CODE
	ASCLBAOutOfRange             ASC = 0x2100
	ASCInvalidFieldInCDB         ASC = 0x2400
	ASCLUNotSupported            ASC = 0x2500 // LOGICAL UNIT NOT SUPPORTED
	ASCInvalidFieldInParamList   ASC = 0x2600
	ASCParamNotSupported         ASC = 0x2601
	ASCParamValueInvalid         ASC = 0x2602
	ASCWriteProtected            ASC = 0x2700
	ASCHardwareWriteProtected    ASC = 0x2701
	ASCSoftwareWriteProtected    ASC = 0x2702
	ASCSpaceAllocFailedWP        ASC = 0x2707 // SPACE ALLOCATION FAILED WRITE PROTECT
	ASCPowerOnReset              ASC = 0x2900 // POWER ON, RESET, OR BUS DEVICE RESET OCCURRED
	ASCPowerOn                   ASC = 0x2901
	ASCBusDeviceReset            ASC = 0x2903 // BUS DEVICE RESET FUNCTION OCCURRED
	ASCITNexusLoss               ASC = 0x2907 // I_T NEXUS LOSS OCCURRED
	ASCParametersChanged         ASC = 0x2A00
	ASCModeParametersChanged     ASC = 0x2A01
	ASCReservationsPreempted     ASC = 0x2A03
	ASCReservationsReleased      ASC = 0x2A04
	ASCRegistrationsPreempted    ASC = 0x2A05
	ASCCapacityDataChanged       ASC = 0x2A09
	ASCCommandsClearedByAnother  ASC = 0x2F00 // COMMANDS CLEARED BY ANOTHER INITIATOR
	ASCCommandsClearedByDevice   ASC = 0x2F02 // COMMANDS CLEARED BY DEVICE SERVER
	ASCSavingParamsNotSupported  ASC = 0x3900
	ASCReportedLUNsDataChanged   ASC = 0x3F0E
	ASCInternalTargetFailure     ASC = 0x4400
	ASCInvalidFieldInCommandIU   ASC = 0x0E03
	ASCMediumNotPresent          ASC = 0x3A00
	ASCLogicalUnitCommFailure    ASC = 0x0800
	ASCDiagnosticFailure         ASC = 0x4000
	ASCInsufficientResources     ASC = 0x5503
	ASCSystemResourceFailure     ASC = 0x5500
	ASCIllegalReqUnsupportedDesc ASC = 0x2604 // Deprecated: 26h/04h is ASCInvalidRelease
	ASCInvalidRelease            ASC = 0x2604 // INVALID RELEASE OF PERSISTENT RESERVATION
	ASCInsufficientRegRes        ASC = 0x5504 // INSUFFICIENT REGISTRATION RESOURCES
)

// Sense flags carried in byte 2 of fixed sense data (SPC-4 4.5.3), used by
// stream devices.
const (
	SenseFilemark = 0x80
	SenseEOM      = 0x40
	SenseILI      = 0x20
)

// SenseError is a CHECK CONDITION: the sense key, additional sense code and
// the optional information and sense-key-specific fields. Command handlers
// return it as their error; Execute turns it into sense bytes in the format
// the logical unit's control mode page selects.
type SenseError struct {
	Key       SenseKey
	ASC       ASC
	Flags     uint8 // SenseFilemark | SenseEOM | SenseILI
	InfoValid bool
	Info      uint64
	// SKS is the 3-byte sense-key-specific field; SKS[0]&0x80 (SKSV) marks
	// it valid.
	SKS [3]byte
}

func (e *SenseError) Error() string {
	s := fmt.Sprintf("%v, ASC/ASCQ %02Xh/%02Xh", e.Key, uint8(e.ASC>>8), uint8(e.ASC))
	if e.SKS[0]&0x80 != 0 {
		s += fmt.Sprintf(", field pointer %d", binary.BigEndian.Uint16(e.SKS[1:]))
		if e.SKS[0]&0x08 != 0 {
			s += fmt.Sprintf(" bit %d", e.SKS[0]&7)
		}
	}
	if e.InfoValid {
		s += fmt.Sprintf(", information %d", e.Info)
	}
	return s
}

// Sense returns a SenseError with no information or sense-key-specific data.
func Sense(key SenseKey, asc ASC) *SenseError { return &SenseError{Key: key, ASC: asc} }

// Errors that carry no per-command data are shared values: returning them
// allocates nothing.
var (
	ErrInvalidOpcode       = Sense(IllegalRequest, ASCInvalidOpcode)
	ErrLBAOutOfRange       = Sense(IllegalRequest, ASCLBAOutOfRange)
	ErrLUNotSupported      = Sense(IllegalRequest, ASCLUNotSupported)
	ErrParamListLength     = Sense(IllegalRequest, ASCParamListLength)
	ErrInvalidCommandIU    = Sense(IllegalRequest, ASCInvalidFieldInCommandIU)
	ErrSavingNotSupported  = Sense(IllegalRequest, ASCSavingParamsNotSupported)
	ErrWriteProtected      = Sense(DataProtect, ASCWriteProtected)
	ErrSoftWriteProtected  = Sense(DataProtect, ASCSoftwareWriteProtected)
	ErrSpaceAllocFailed    = Sense(DataProtect, ASCSpaceAllocFailedWP)
	ErrNotReadyInitCmd     = Sense(NotReady, ASCNotReadyInitCmdRequired)
	ErrNotReady            = Sense(NotReady, ASCNotReadyCause)
	ErrInternalFailure     = Sense(HardwareError, ASCInternalTargetFailure)
	ErrInsufficientRes     = Sense(IllegalRequest, ASCInsufficientResources)
	ErrMediumNotPresent    = Sense(NotReady, ASCMediumNotPresent)
	ErrInvalidFieldInParam = Sense(IllegalRequest, ASCInvalidFieldInParamList)
)

// fieldPointer builds the sense-key-specific field pointer of SPC-4
// 4.5.2.4.2: SKSV, C/D, BPV with the bit pointer, and the byte offset.
func fieldPointer(cdb bool, byteOff, bit int) [3]byte {
	b0 := byte(0x80)
	if cdb {
		b0 |= 0x40
	}
	if bit >= 0 {
		b0 |= 0x08 | byte(bit&7)
	}
	return [3]byte{b0, byte(byteOff >> 8), byte(byteOff)}
}

// InvalidCDB reports INVALID FIELD IN CDB pointing at byte byteOff, bit bit
// of the CDB (bit < 0: the whole byte).
func InvalidCDB(byteOff, bit int) *SenseError {
	return &SenseError{Key: IllegalRequest, ASC: ASCInvalidFieldInCDB, SKS: fieldPointer(true, byteOff, bit)}
}

// InvalidParam reports INVALID FIELD IN PARAMETER LIST pointing at byte
// byteOff, bit bit of the parameter list (bit < 0: the whole byte).
func InvalidParam(byteOff, bit int) *SenseError {
	return &SenseError{Key: IllegalRequest, ASC: ASCInvalidFieldInParamList, SKS: fieldPointer(false, byteOff, bit)}
}

// MiscompareAt reports MISCOMPARE DURING VERIFY OPERATION with the
// INFORMATION field set to the offset of the first byte that differed.
func MiscompareAt(off uint64) *SenseError {
	return &SenseError{Key: Miscompare, ASC: ASCMiscompareDuringVerify, InfoValid: true, Info: off}
}

// FixedSense writes fixed-format sense data (response code 70h, SPC-4
// 4.5.3) into b and returns its length (18).
func (e *SenseError) FixedSense(b []byte) int {
	var s [18]byte
	s[0] = 0x70
	if e.InfoValid && e.Info <= 0xFFFFFFFF {
		s[0] |= 0x80
		binary.BigEndian.PutUint32(s[3:7], uint32(e.Info))
	}
	s[2] = e.Flags&0xE0 | byte(e.Key)&0x0F
	s[7] = 10
	s[12] = byte(e.ASC >> 8)
	s[13] = byte(e.ASC)
	copy(s[15:18], e.SKS[:])
	return copy(b, s[:])
}

// DescriptorSense writes descriptor-format sense data (response code 72h,
// SPC-4 4.5.2) into b: the information descriptor when InfoValid, the
// sense-key-specific descriptor when SKSV is set, and the stream commands
// descriptor when Flags are set. It returns the length written.
func (e *SenseError) DescriptorSense(b []byte) int {
	var s [8 + 12 + 8 + 4]byte
	s[0] = 0x72
	s[1] = byte(e.Key) & 0x0F
	s[2] = byte(e.ASC >> 8)
	s[3] = byte(e.ASC)
	n := 8
	if e.InfoValid {
		// Information descriptor, SPC-4 4.5.2.2.
		s[n] = 0x00
		s[n+1] = 0x0A
		s[n+2] = 0x80
		binary.BigEndian.PutUint64(s[n+4:n+12], e.Info)
		n += 12
	}
	if e.SKS[0]&0x80 != 0 {
		// Sense key specific descriptor, SPC-4 4.5.2.4.
		s[n] = 0x02
		s[n+1] = 0x06
		copy(s[n+4:n+7], e.SKS[:])
		n += 8
	}
	if e.Flags != 0 {
		// Stream commands descriptor, SSC-4 4.2.19.
		s[n] = 0x04
		s[n+1] = 0x02
		s[n+3] = e.Flags & 0xE0
		n += 4
	}
	s[7] = byte(n - 8)
	return copy(b, s[:n])
}

// ParseSense decodes fixed or descriptor sense data: the inverse of
// FixedSense and DescriptorSense, for initiators and tests.
func ParseSense(b []byte) (*SenseError, error) {
	if len(b) < 1 {
		return nil, fmt.Errorf("scsi: empty sense data")
	}
	e := &SenseError{}
	switch b[0] & 0x7F {
	case 0x70, 0x71:
		if len(b) < 14 {
			return nil, fmt.Errorf("scsi: fixed sense data too short (%d bytes)", len(b))
		}
		e.Key = SenseKey(b[2] & 0x0F)
		e.Flags = b[2] & 0xE0
		e.ASC = ASC(b[12])<<8 | ASC(b[13])
		if b[0]&0x80 != 0 {
			e.InfoValid = true
			e.Info = uint64(binary.BigEndian.Uint32(b[3:7]))
		}
		if len(b) >= 18 {
			copy(e.SKS[:], b[15:18])
		}
	case 0x72, 0x73:
		if len(b) < 8 {
			return nil, fmt.Errorf("scsi: descriptor sense data too short (%d bytes)", len(b))
		}
		e.Key = SenseKey(b[1] & 0x0F)
		e.ASC = ASC(b[2])<<8 | ASC(b[3])
		end := 8 + int(b[7])
		if end > len(b) {
			return nil, fmt.Errorf("scsi: descriptor sense additional length %d exceeds %d bytes", b[7], len(b))
		}
		for p := 8; p+2 <= end; {
			typ, l := b[p], int(b[p+1])
			if p+2+l > end {
				return nil, fmt.Errorf("scsi: sense descriptor %#x overruns the sense data", typ)
			}
			d := b[p : p+2+l]
			switch {
			case typ == 0x00 && l == 0x0A:
				e.InfoValid = d[2]&0x80 != 0
				e.Info = binary.BigEndian.Uint64(d[4:12])
			case typ == 0x02 && l == 0x06:
				copy(e.SKS[:], d[4:7])
			case typ == 0x04 && l == 0x02:
				e.Flags = d[3] & 0xE0
			}
			p += 2 + l
		}
	default:
		return nil, fmt.Errorf("scsi: unknown sense response code %#x", b[0]&0x7F)
	}
	return e, nil
}
