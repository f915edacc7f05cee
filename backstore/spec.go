package backstore

import (
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// Store kinds accepted by Open.
const (
	KindNull   = "null"
	KindMemory = "memory"
	KindFile   = "file"
	KindBlock  = "block"
)

// DefaultBlockSize is the block size of null, memory and file stores whose
// Spec leaves BlockSize at zero.
const DefaultBlockSize = 512

// maxPatternLen bounds Spec.NullPattern once decoded.
const maxPatternLen = 4096

// Spec describes a store to open. The zero value of every optional field
// means "the default"; fields that do not apply to Kind must be left zero.
type Spec struct {
	// Kind is one of "null", "memory", "file", "block".
	Kind string
	// Path names the file or block device (file and block only).
	Path string
	// Size is the capacity in bytes, a positive multiple of BlockSize.
	// Required for null and memory. For a file, zero means the file's
	// current size (rounded down to a multiple of BlockSize); a file smaller
	// than Size is extended, sparse, when Create is set and is an error
	// otherwise. For a block device, zero means the whole device (rounded
	// down likewise) and a non-zero Size must not exceed the device.
	Size int64
	// BlockSize is 512 or 4096. Zero means DefaultBlockSize, or for a block
	// device its logical sector size; a block device's BlockSize may not be
	// smaller than its logical sector size.
	BlockSize uint32
	// ReadOnly makes every write fail with ErrReadOnly.
	ReadOnly bool
	// Create creates a missing file and extends a short one to Size
	// (file only, not with ReadOnly).
	Create bool
	// Direct opens the file or device with O_DIRECT (file and block only).
	// Unaligned buffers and offsets go through aligned bounce buffers.
	Direct bool
	// NullPattern is what a null store reads: "" or "zeros" for zeros, or
	// "0x" followed by the hex bytes of a pattern repeated over the whole
	// address space (byte at offset o is pattern[o % len(pattern)]).
	NullPattern string
	// MaxAllocated caps a memory store's allocated bytes (0: no cap).
	// Writes that would allocate past it fail with ENOSPC.
	MaxAllocated int64
}

// Open validates spec and opens the store it describes. Invalid
// configuration fails with an error naming the field at fault and opens
// nothing.
func Open(spec Spec) (Store, error) {
	if err := spec.validate(); err != nil {
		return nil, err
	}
	switch spec.Kind {
	case KindNull:
		pat, err := parsePattern(spec.NullPattern)
		if err != nil {
			return nil, err
		}
		return newNull(spec.Size, spec.blockSize(), spec.ReadOnly, pat), nil
	case KindMemory:
		return newMemory(spec.Size, spec.blockSize(), spec.ReadOnly, spec.MaxAllocated), nil
	case KindFile:
		return openFile(spec)
	default: // KindBlock, by validate
		return openBlock(spec)
	}
}

func (s Spec) blockSize() uint32 {
	if s.BlockSize == 0 {
		return DefaultBlockSize
	}
	return s.BlockSize
}

// validate checks everything that can be checked without touching the
// system; openFile and openBlock check the rest against what they find.
func (s Spec) validate() error {
	switch s.Kind {
	case KindNull, KindMemory, KindFile, KindBlock:
	case "":
		return errors.New("backstore: kind is required (null, memory, file or block)")
	default:
		return fmt.Errorf("backstore: unknown kind %q (want null, memory, file or block)", s.Kind)
	}
	if s.BlockSize != 0 && s.BlockSize != 512 && s.BlockSize != 4096 {
		return fmt.Errorf("backstore: block size %d is not 512 or 4096", s.BlockSize)
	}
	if s.Size < 0 {
		return fmt.Errorf("backstore: size %d is negative", s.Size)
	}
	sized := s.Kind == KindNull || s.Kind == KindMemory
	if sized && s.Size == 0 {
		return fmt.Errorf("backstore: size is required for kind %s", s.Kind)
	}
	// A block device's default block size is only known once it is open;
	// openBlock checks its size then.
	if s.Size != 0 && (s.Kind != KindBlock || s.BlockSize != 0) && s.Size%int64(s.blockSize()) != 0 {
		return fmt.Errorf("backstore: size %d is not a multiple of block size %d", s.Size, s.blockSize())
	}
	onDisk := s.Kind == KindFile || s.Kind == KindBlock
	if onDisk && s.Path == "" {
		return fmt.Errorf("backstore: path is required for kind %s", s.Kind)
	}
	if !onDisk && s.Path != "" {
		return fmt.Errorf("backstore: path %q does not apply to kind %s", s.Path, s.Kind)
	}
	if !onDisk && s.Direct {
		return fmt.Errorf("backstore: direct does not apply to kind %s", s.Kind)
	}
	if s.Create && s.Kind != KindFile {
		return fmt.Errorf("backstore: create does not apply to kind %s", s.Kind)
	}
	if s.Create && s.ReadOnly {
		return errors.New("backstore: create and read-only are exclusive")
	}
	if s.Create && s.Size == 0 {
		return errors.New("backstore: create needs a size")
	}
	if s.NullPattern != "" && s.Kind != KindNull {
		return fmt.Errorf("backstore: null pattern does not apply to kind %s", s.Kind)
	}
	if s.MaxAllocated < 0 {
		return fmt.Errorf("backstore: max allocated %d is negative", s.MaxAllocated)
	}
	if s.MaxAllocated != 0 && s.Kind != KindMemory {
		return fmt.Errorf("backstore: max allocated does not apply to kind %s", s.Kind)
	}
	return nil
}

// parsePattern decodes Spec.NullPattern; nil means zeros.
func parsePattern(s string) ([]byte, error) {
	if s == "" || s == "zeros" {
		return nil, nil
	}
	h, ok := strings.CutPrefix(s, "0x")
	if !ok {
		return nil, fmt.Errorf("backstore: null pattern %q is not \"zeros\" or 0x-prefixed hex", s)
	}
	b, err := hex.DecodeString(h)
	if err != nil || len(b) == 0 {
		return nil, fmt.Errorf("backstore: null pattern %q is not \"zeros\" or 0x-prefixed hex", s)
	}
	if len(b) > maxPatternLen {
		return nil, fmt.Errorf("backstore: null pattern is %d bytes, more than %d", len(b), maxPatternLen)
	}
	for _, c := range b {
		if c != 0 {
			return b, nil
		}
	}
	return nil, nil // all zeros
}
