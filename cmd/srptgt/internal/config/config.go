// Package config reads and validates srptgt's YAML configuration file.
//
// Validation is static: nothing is opened or created. Every problem found is
// reported, each as an *Error naming the file, the line, the field path
// (luns[1].backstore.size) and what the field allows. The schema is
// documented in docs/configuration.md; keep the two in step.
package config

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/netip"
	"os"
	"slices"
	"strings"

	"github.com/srptgt/srptgt/backstore"
	"github.com/srptgt/srptgt/scsi"
)

// Defaults of optional settings.
const (
	DefaultVendor    = "SRPTGT"
	DefaultLogLevel  = "info"
	DefaultLogFormat = "console"
	TypeDisk         = "disk"
)

// MaxFileSize bounds the configuration file.
const MaxFileSize = 4 << 20

// Config is a validated configuration.
type Config struct {
	// File is the path the configuration was read from, as given.
	File    string
	Target  Target
	Logging Logging
	// LUs are in file order.
	LUs []LU
	// RDMA and Xen are nil when their section is absent.
	RDMA *RDMA
	Xen  *Xen
	// ACL is nil when the acl section is absent: every initiator sees
	// every LU.
	ACL *ACL

	// lines maps a field path to the line it was given on.
	lines map[string]int
}

// Target holds the target-wide settings.
type Target struct {
	// Vendor is the T10 vendor identification (1 to 8 printable ASCII).
	Vendor string
	// OUI is the 24-bit IEEE company id of generated NAA designators.
	OUI uint32
	// StateDir is where per-LU state (saved mode pages) persists; empty
	// means none is kept and mode pages cannot be saved.
	StateDir string
}

// Logging selects the log level and encoding.
type Logging struct {
	Level  string // debug, info, warn or error
	Format string // console or json
}

// LU is one logical unit.
type LU struct {
	// Index is the LU's position in the luns list.
	Index int
	Name  string
	LUN   uint16
	Type  string
	// Backstore is ready for backstore.Open; its ReadOnly mirrors the
	// LU's.
	Backstore backstore.Spec
	ReadOnly  bool
	// Serial is VPD page 80h's unit serial number.
	Serial string
	// WWN is the NAA 6 designator, configured or generated; WWNSet tells
	// which.
	WWN    [16]byte
	WWNSet bool
	// Vendor, Product and Revision override INQUIRY's; empty Product and
	// Revision take the device type's defaults.
	Vendor, Product, Revision string
}

// Field returns the path of one of the LU's fields ("backstore.size"),
// as error messages name it.
func (lu *LU) Field(sub string) string {
	if sub == "" {
		return fmt.Sprintf("luns[%d]", lu.Index)
	}
	return fmt.Sprintf("luns[%d].%s", lu.Index, sub)
}

// Identity returns what INQUIRY and the VPD pages report about the LU.
func (lu *LU) Identity() scsi.Identity {
	return scsi.Identity{Vendor: lu.Vendor, Product: lu.Product, Revision: lu.Revision, Serial: lu.Serial, NAA: lu.WWN}
}

// RDMA is the rdma section.
type RDMA struct {
	// Listen holds the addresses to listen on for RDMA CM connections.
	Listen []netip.AddrPort
	// PortID is the SRP target port identifier when PortIDSet.
	PortID    scsi.PortID
	PortIDSet bool
}

// Xen is the xen section.
type Xen struct {
	Guests []XenGuest
}

// XenGuest is one virtual SCSI host of a guest: which LUs it sees where.
type XenGuest struct {
	// Domain is the guest's domain name or numeric id.
	Domain string
	LUNs   []XenLUN
}

// XenLUN maps an LU to a guest's virtual SCSI address, as in an xl config
// vscsi entry 'disk0, 0:0:0:0'.
type XenLUN struct {
	LU                         string
	Host, Channel, Target, LUN uint32
}

// VDev returns the H:C:T:L address.
func (x XenLUN) VDev() string {
	return fmt.Sprintf("%d:%d:%d:%d", x.Host, x.Channel, x.Target, x.LUN)
}

// Transports returns the names of the configured transport sections.
func (c *Config) Transports() []string {
	var t []string
	if c.RDMA != nil {
		t = append(t, "rdma")
	}
	if c.Xen != nil {
		t = append(t, "xen")
	}
	return t
}

// Errorf returns an error at the line field was given on (or, if it was
// not given, the nearest enclosing field that was), for problems found
// after validation, such as a backstore that does not open. format may
// wrap an error with %w; the *Error unwraps to it.
func (c *Config) Errorf(field, format string, args ...any) *Error {
	line := 0
	for f := field; f != ""; f = parentField(f) {
		if l, ok := c.lines[f]; ok {
			line = l
			break
		}
	}
	err := fmt.Errorf(format, args...)
	return &Error{File: c.File, Line: line, Field: field, Msg: err.Error(), Err: err}
}

// parentField strips the last component of a field path:
// luns[1].backstore.size -> luns[1].backstore -> luns[1] -> luns -> "".
func parentField(f string) string {
	if strings.HasSuffix(f, "]") {
		if i := strings.LastIndexByte(f, '['); i > 0 {
			return f[:i]
		}
		return ""
	}
	if i := strings.LastIndexByte(f, '.'); i >= 0 {
		return f[:i]
	}
	return ""
}

// Error is one problem in a configuration file.
type Error struct {
	File  string
	Line  int    // 0: the file as a whole
	Field string // empty: not about one field (YAML syntax)
	Msg   string
	// Err is the underlying error, if any (Errorf's %w).
	Err error
}

func (e *Error) Unwrap() error { return e.Err }

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	b.WriteString(": ")
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Errors is every problem found in a file, in line order. It is the error
// Load and Parse return.
type Errors []*Error

func (es Errors) Error() string {
	s := make([]string, len(es))
	for i, e := range es {
		s[i] = e.Error()
	}
	return strings.Join(s, "\n")
}

// Unwrap lets errors.Is and errors.As look into each error.
func (es Errors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

func (es Errors) sort() {
	slices.SortStableFunc(es, func(a, b *Error) int { return cmp.Compare(a.Line, b.Line) })
}

// Load reads and validates the configuration file at path.
func Load(path string) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, Errors{{File: path, Msg: fmt.Sprintf("cannot read: %v", unwrapPath(err))}}
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, Errors{{File: path, Msg: fmt.Sprintf("cannot read: %v", unwrapPath(err))}}
	}
	if len(data) > MaxFileSize {
		return nil, Errors{{File: path, Msg: fmt.Sprintf("larger than %d bytes", MaxFileSize)}}
	}
	return Parse(path, data)
}

// unwrapPath drops the path from an *os.PathError, which the caller's
// message already names.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
