package srp

import "fmt"

// SRP_CMD (SRP r16a 6.8, SRP-2 immediate data; Linux struct srp_cmd,
// srp_direct_buf, srp_indirect_buf, srp_imm_buf).
//
//	byte  0     IU TYPE (02h)
//	byte  1     UCSOLNT(2) SCSOLNT(1)
//	bytes 2-4   reserved
//	byte  5     DATA-OUT BUFFER DESCRIPTOR FORMAT (bits 7-4)
//	            DATA-IN BUFFER DESCRIPTOR FORMAT (bits 3-0)
//	byte  6     DATA-OUT BUFFER DESCRIPTOR COUNT
//	byte  7     DATA-IN BUFFER DESCRIPTOR COUNT
//	bytes 8-15  TAG
//	bytes 16-19 reserved
//	bytes 20-27 LOGICAL UNIT NUMBER
//	byte  28    reserved
//	byte  29    TASK ATTRIBUTE (bits 2-0)
//	byte  30    reserved
//	byte  31    ADDITIONAL CDB LENGTH (bits 7-2, in 4-byte words; bits 1-0 reserved)
//	bytes 32-47 CDB
//	bytes 48-   ADDITIONAL CDB, then the data-out buffer descriptor, then the
//	            data-in buffer descriptor; with SRP-2 immediate data the data
//	            starts at the IMMEDIATE DATA OFFSET negotiated at login.
//
// Descriptor layouts:
//
//	direct (16 bytes):   a MemDesc
//	indirect (20 + 16n): bytes 0-15 INDIRECT TABLE descriptor (a MemDesc
//	                     for the whole table in initiator memory; its
//	                     length is 16 x the number of table entries),
//	                     bytes 16-19 TOTAL LENGTH (sum of all entries'
//	                     lengths), bytes 20- the first n entries (the
//	                     partial memory descriptor list; n is the
//	                     descriptor count field)
//	immediate (4 bytes): bytes 0-3 data length (SRP-2, data-out only)

// CmdMinLen is the size of an SRP_CMD with a 16-byte CDB and no data.
const CmdMinLen = 48

// Linux ib_srp places immediate data at 48 + 16 + 4 = 68 (SRP_IMM_DATA_OFFSET:
// sizeof(struct srp_cmd) + SRP_MAX_ADD_CDB_LEN + sizeof(struct srp_imm_buf)).
const LinuxImmDataOffset = 68

// TASK ATTRIBUTE values, SRP_CMD byte 29 (ib_srpt.h "table 21";
// illumos srp.h SRP_TSK_ATTR_QTYPE_*).
const (
	TaskSimple      uint8 = 0
	TaskHeadOfQueue uint8 = 1
	TaskOrdered     uint8 = 2
	TaskACA         uint8 = 4
)

// BufFormat is a data buffer descriptor format code (SRP_CMD byte 5;
// Linux SRP_NO_DATA_DESC, SRP_DATA_DESC_DIRECT, _INDIRECT, _IMM).
type BufFormat uint8

const (
	BufNone     BufFormat = 0 // no data buffer descriptor
	BufDirect   BufFormat = 1 // one direct data buffer descriptor
	BufIndirect BufFormat = 2 // indirect data buffer descriptor
	BufImm      BufFormat = 3 // SRP-2 immediate data descriptor; data-out only
)

func (f BufFormat) String() string {
	switch f {
	case BufNone:
		return "none"
	case BufDirect:
		return "direct"
	case BufIndirect:
		return "indirect"
	case BufImm:
		return "immediate"
	}
	return fmt.Sprintf("format %d", uint8(f))
}

// BufDesc is one direction's data buffer descriptor of an SRP_CMD.
type BufDesc struct {
	Format BufFormat
	// Count is the descriptor count field as sent. For BufIndirect it is
	// the number of descriptors in Partial (Encode writes len(Partial));
	// for the other formats it is carried as is (Linux sends 0 for
	// direct and immediate descriptors).
	Count uint8
	// Direct is the descriptor of a BufDirect buffer.
	Direct MemDesc
	// Table locates the full indirect descriptor table in initiator
	// memory (BufIndirect). Table.Len/16 is the number of entries.
	Table MemDesc
	// TotalLen is the TOTAL LENGTH of a BufIndirect buffer, or the data
	// length of a BufImm buffer.
	TotalLen uint32
	// Partial holds the indirect descriptors present in the IU: the first
	// len(Partial) entries of the table. When it holds all of them the
	// table need not be fetched. After Decode it is a window of
	// Cmd.DescBuf.
	Partial []MemDesc
}

// Len returns the number of data bytes the descriptor describes (the
// direct length, the total length, or the immediate data length).
func (d *BufDesc) Len() uint32 {
	switch d.Format {
	case BufDirect:
		return d.Direct.Len
	case BufIndirect, BufImm:
		return d.TotalLen
	}
	return 0
}

// Complete reports whether an indirect descriptor carries its whole table
// in the IU.
func (d *BufDesc) Complete() bool {
	return d.Format == BufIndirect && uint64(len(d.Partial))*MemDescLen == uint64(d.Table.Len)
}

// ValidateTable checks a full indirect table fetched from initiator memory
// (decoded with DecodeDescTable) against the descriptor: the entry count
// matches the table length, the entries in the IU are its prefix, and the
// lengths add up to TotalLen.
func (d *BufDesc) ValidateTable(full []MemDesc) error {
	if d.Format != BufIndirect {
		return errIncons(OpCmd, "DATA BUFFER DESCRIPTOR FORMAT", 5, "not an indirect descriptor")
	}
	if uint64(len(full))*MemDescLen != uint64(d.Table.Len) {
		return errIncons(OpCmd, "indirect table", 0,
			fmt.Sprintf("%d entries, table descriptor says %d bytes", len(full), d.Table.Len))
	}
	if len(d.Partial) > len(full) {
		return errIncons(OpCmd, "indirect table", 0, "shorter than the partial list in the IU")
	}
	var sum uint64
	for i, e := range full {
		if i < len(d.Partial) && d.Partial[i] != e {
			return errIncons(OpCmd, "indirect table", i*MemDescLen,
				fmt.Sprintf("entry %d differs from the copy in the IU", i))
		}
		sum += uint64(e.Len)
	}
	if sum != uint64(d.TotalLen) {
		return errIncons(OpCmd, "TOTAL LENGTH", 0,
			fmt.Sprintf("%d, table entries add up to %d", d.TotalLen, sum))
	}
	return nil
}

// wireLen is the size of the descriptor in the IU.
func (d *BufDesc) wireLen() int {
	switch d.Format {
	case BufDirect:
		return MemDescLen
	case BufIndirect:
		return 20 + MemDescLen*len(d.Partial)
	case BufImm:
		return 4
	}
	return 0
}

// checkIndirect returns a field name and reason if an indirect descriptor
// is inconsistent, "" otherwise. Shared by Decode and Encode so that every
// encoding decodes.
func (d *BufDesc) checkIndirect() (field, reason string) {
	if d.Table.Len%MemDescLen != 0 {
		return "INDIRECT TABLE DESCRIPTOR LENGTH", fmt.Sprintf("%d is not a multiple of 16", d.Table.Len)
	}
	entries := d.Table.Len / MemDescLen
	if uint64(len(d.Partial)) > uint64(entries) {
		return "DESCRIPTOR COUNT", fmt.Sprintf("%d descriptors in the IU but the table has %d", len(d.Partial), entries)
	}
	var sum uint64
	for _, p := range d.Partial {
		sum += uint64(p.Len)
	}
	if uint64(len(d.Partial)) == uint64(entries) && sum != uint64(d.TotalLen) {
		return "TOTAL LENGTH", fmt.Sprintf("%d, but the whole table adds up to %d", d.TotalLen, sum)
	}
	if sum > uint64(d.TotalLen) {
		return "TOTAL LENGTH", fmt.Sprintf("%d, but the descriptors in the IU add up to %d", d.TotalLen, sum)
	}
	return "", ""
}

// Cmd is SRP_CMD.
//
// Two fields are inputs that Decode keeps rather than reads from the wire:
// DescBuf (backing store for Partial) and ImmOffset (the channel's
// immediate data offset from login). Everything else is overwritten.
type Cmd struct {
	Tag      uint64
	LUN      uint64 // the 8-byte SAM LUN, big-endian
	TaskAttr uint8  // Task* constants (3 bits)
	SolNt    uint8  // byte 1 as sent; FlagSCSolNt | FlagUCSolNt
	// CDB is the 16-byte CDB followed by the additional CDB bytes. After
	// Decode it aliases the decoded buffer and is 16 + 4k bytes long.
	// Encode pads a shorter CDB with zeros to 16 bytes, and a longer one
	// to a multiple of 4; at most 16 + 252 bytes.
	CDB []byte
	// Out is the data-out buffer (initiator to target), In the data-in.
	Out, In BufDesc
	// Imm is the SRP-2 immediate data (Out.Format == BufImm). After
	// Decode it aliases the decoded buffer. Encode takes the data length
	// from len(Imm).
	Imm []byte

	// ImmOffset is the channel's immediate data offset (LoginReq's
	// ImmDataOffset once the target accepted immediate data; Linux uses
	// LinuxImmDataOffset). Zero means the data follows the descriptors
	// directly. Not on the wire; set it before Decode and Encode.
	ImmOffset uint16
	// DescBuf is caller-provided storage for Out.Partial and In.Partial.
	// Decode uses DescBuf[:0] and replaces it with a larger slice only if
	// its capacity is too small (at most 2 x 255 entries are ever needed),
	// so a Cmd reused across IUs stops allocating.
	DescBuf []MemDesc
}

func cdbWireLen(n int) int {
	if n <= 16 {
		return 16
	}
	return 16 + (n-16+3)&^3
}

// Len returns the encoded size.
func (x *Cmd) Len() int {
	n := CmdMinLen - 16 + cdbWireLen(len(x.CDB)) + x.Out.wireLen() + x.In.wireLen()
	if x.Out.Format == BufImm {
		if x.ImmOffset != 0 && int(x.ImmOffset) > n {
			n = int(x.ImmOffset)
		}
		n += len(x.Imm)
	}
	return n
}

// Decode parses an SRP_CMD, keeping x.DescBuf and x.ImmOffset. CDB,
// Partial and Imm alias b or DescBuf; they stay valid while b is unchanged.
// Bytes after the last descriptor (or after the immediate data) are ignored.
func (x *Cmd) Decode(b []byte) error {
	descBuf, immOff := x.DescBuf, x.ImmOffset
	*x = Cmd{DescBuf: descBuf, ImmOffset: immOff}
	if err := checkHead(b, OpCmd, CmdMinLen); err != nil {
		return err
	}
	outFmt, inFmt := BufFormat(b[5]>>4), BufFormat(b[5]&0x0F)
	if outFmt > BufImm {
		return &DecodeError{IU: OpCmd, Field: "DATA-OUT BUFFER DESCRIPTOR FORMAT", Off: 5, Kind: ErrBadFormat,
			Reason: outFmt.String() + " is not defined"}
	}
	if inFmt > BufIndirect {
		return &DecodeError{IU: OpCmd, Field: "DATA-IN BUFFER DESCRIPTOR FORMAT", Off: 5, Kind: ErrBadFormat,
			Reason: inFmt.String() + " is not defined for data-in"}
	}
	x.Out.Format, x.Out.Count = outFmt, b[6]
	x.In.Format, x.In.Count = inFmt, b[7]
	x.SolNt = b[1]
	x.Tag = be.Uint64(b[8:16])
	x.LUN = be.Uint64(b[20:28])
	x.TaskAttr = b[29] & 0x07

	off := CmdMinLen + int(b[31]&^0x03)
	if len(b) < off {
		return errShort(OpCmd, "ADDITIONAL CDB LENGTH", 31, off, len(b))
	}
	x.CDB = b[32:off:off]

	// Size the descriptors before touching DescBuf.
	nOut, nIn := 0, 0
	if outFmt == BufIndirect {
		nOut = int(b[6])
	}
	if inFmt == BufIndirect {
		nIn = int(b[7])
	}
	if cap(descBuf) < nOut+nIn {
		descBuf = make([]MemDesc, nOut+nIn)
		x.DescBuf = descBuf
	}
	descBuf = descBuf[:nOut+nIn]

	outOff := off
	var err error
	if off, err = x.Out.decode(b, off, descBuf[:nOut:nOut], "DATA-OUT"); err != nil {
		return err
	}
	if off, err = x.In.decode(b, off, descBuf[nOut:], "DATA-IN"); err != nil {
		return err
	}

	if outFmt == BufImm {
		start := off
		if immOff != 0 {
			if int(immOff) < off {
				return errIncons(OpCmd, "immediate data offset", off,
					fmt.Sprintf("channel offset %d overlaps the descriptors ending at %d", immOff, off))
			}
			start = int(immOff)
		}
		end := uint64(start) + uint64(x.Out.TotalLen)
		if end > uint64(len(b)) {
			return errShort(OpCmd, "immediate data length", outOff, capInt(end), len(b))
		}
		if x.Out.TotalLen > 0 {
			x.Imm = b[start:int(end):int(end)]
		}
	}
	return nil
}

// decode reads one buffer descriptor at b[off:] and returns the offset
// after it. part has room for the indirect partial list.
func (d *BufDesc) decode(b []byte, off int, part []MemDesc, dir string) (int, error) {
	switch d.Format {
	case BufDirect:
		if len(b) < off+MemDescLen {
			return 0, errShort(OpCmd, dir+" direct data buffer descriptor", off, off+MemDescLen, len(b))
		}
		d.Direct = getMemDesc(b[off:])
		return off + MemDescLen, nil
	case BufIndirect:
		end := off + 20 + MemDescLen*len(part)
		if len(b) < end {
			return 0, errShort(OpCmd, dir+" indirect data buffer descriptor", off, end, len(b))
		}
		d.Table = getMemDesc(b[off:])
		d.TotalLen = be.Uint32(b[off+16:])
		for i := range part {
			part[i] = getMemDesc(b[off+20+MemDescLen*i:])
		}
		d.Partial = part
		if field, reason := d.checkIndirect(); field != "" {
			return 0, errIncons(OpCmd, dir+" "+field, off, reason)
		}
		return end, nil
	case BufImm:
		if len(b) < off+4 {
			return 0, errShort(OpCmd, dir+" immediate data descriptor", off, off+4, len(b))
		}
		d.TotalLen = be.Uint32(b[off:])
		return off + 4, nil
	}
	return off, nil
}

func (d *BufDesc) check(dir string) error {
	switch d.Format {
	case BufNone, BufDirect:
	case BufIndirect:
		if len(d.Partial) > 255 {
			return errInvalid(OpCmd, dir+" DESCRIPTOR COUNT", "more than 255 descriptors in the IU")
		}
		if field, reason := d.checkIndirect(); field != "" {
			return errInvalid(OpCmd, dir+" "+field, reason)
		}
	case BufImm:
		if dir != "DATA-OUT" {
			return errInvalid(OpCmd, dir+" BUFFER DESCRIPTOR FORMAT", "immediate data is data-out only")
		}
	default:
		return errInvalid(OpCmd, dir+" BUFFER DESCRIPTOR FORMAT", d.Format.String()+" is not defined")
	}
	return nil
}

func (d *BufDesc) put(b []byte, off int) int {
	switch d.Format {
	case BufDirect:
		d.Direct.put(b[off:])
		return off + MemDescLen
	case BufIndirect:
		d.Table.put(b[off:])
		be.PutUint32(b[off+16:], d.TotalLen)
		for i, p := range d.Partial {
			p.put(b[off+20+MemDescLen*i:])
		}
		return off + 20 + MemDescLen*len(d.Partial)
	case BufImm:
		return off + 4 // length written by Cmd.Encode
	}
	return off
}

func (d *BufDesc) countByte() byte {
	if d.Format == BufIndirect {
		return byte(len(d.Partial))
	}
	return d.Count
}

// Encode writes the SRP_CMD into b and returns its length (Len()).
func (x *Cmd) Encode(b []byte) (int, error) {
	if cdbWireLen(len(x.CDB)) > 16+252 {
		return 0, errInvalid(OpCmd, "ADDITIONAL CDB LENGTH", fmt.Sprintf("a %d-byte CDB exceeds 268 bytes", len(x.CDB)))
	}
	if x.TaskAttr > 7 {
		return 0, errInvalid(OpCmd, "TASK ATTRIBUTE", "does not fit in 3 bits")
	}
	if err := x.Out.check("DATA-OUT"); err != nil {
		return 0, err
	}
	if err := x.In.check("DATA-IN"); err != nil {
		return 0, err
	}
	if x.Out.Format != BufImm && len(x.Imm) != 0 {
		return 0, errInvalid(OpCmd, "immediate data", "present but DATA-OUT format is not immediate")
	}
	if uint64(len(x.Imm)) > 0xFFFFFFFF {
		return 0, errInvalid(OpCmd, "immediate data", "longer than 2^32-1 bytes")
	}
	descEnd := CmdMinLen - 16 + cdbWireLen(len(x.CDB)) + x.Out.wireLen() + x.In.wireLen()
	if x.Out.Format == BufImm && x.ImmOffset != 0 && int(x.ImmOffset) < descEnd {
		return 0, errInvalid(OpCmd, "immediate data offset",
			fmt.Sprintf("channel offset %d overlaps the descriptors ending at %d", x.ImmOffset, descEnd))
	}
	n := x.Len()
	if err := begin(b, OpCmd, n); err != nil {
		return 0, err
	}
	b[1] = x.SolNt
	b[5] = byte(x.Out.Format)<<4 | byte(x.In.Format)
	b[6] = x.Out.countByte()
	b[7] = x.In.countByte()
	be.PutUint64(b[8:16], x.Tag)
	be.PutUint64(b[20:28], x.LUN)
	b[29] = x.TaskAttr
	cdb := cdbWireLen(len(x.CDB))
	b[31] = byte(cdb - 16)
	copy(b[32:], x.CDB)
	off := 32 + cdb
	outOff := off
	off = x.Out.put(b, off)
	off = x.In.put(b, off)
	if x.Out.Format == BufImm {
		be.PutUint32(b[outOff:], uint32(len(x.Imm)))
		if x.ImmOffset != 0 {
			off = int(x.ImmOffset)
		}
		copy(b[off:], x.Imm)
	}
	return n, nil
}
