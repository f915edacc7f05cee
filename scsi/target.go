package scsi

import (
	"errors"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
)

// Target is one SCSI target device: its logical units, its target ports and
// the I_T nexuses logged in through them. It is safe for concurrent use.
type Target struct {
	vendor string

	mu      sync.Mutex
	lus     map[string]*LU
	ports   []*Port
	nexuses map[NexusID]*Nexus
	seen    map[NexusID]bool
	access  AccessFunc

	// arrivals counts commands as they start (see Mark).
	arrivals atomic.Uint64
}

// Port is a target port: the SRP target port identifier and the relative
// target port number reported in VPD page 83h.
type Port struct {
	ID       PortID
	Relative uint16
	Name     string
}

// Mapping makes a logical unit visible to a nexus at a LUN.
type Mapping struct {
	LUN      uint16 // 0..16383
	LU       *LU
	ReadOnly bool
}

// AccessFunc decides which logical units a nexus sees. It returns the
// mappings for the nexus, or ErrAccessDenied to refuse it. Without one, every
// nexus sees every LU at its default LUN, read-write unless the LU is
// read-only. It is called with the target's lock held: it must not call
// back into the Target.
type AccessFunc func(id NexusID, port *Port) ([]Mapping, error)

// ErrAccessDenied refuses a nexus at login.
var ErrAccessDenied = errors.New("scsi: initiator not allowed by the access list")

// TargetConfig configures a Target.
type TargetConfig struct {
	// Vendor is the T10 vendor identification (8 ASCII characters, padded).
	Vendor string
}

// NewTarget returns an empty target.
func NewTarget(cfg TargetConfig) *Target {
	v := cfg.Vendor
	if v == "" {
		v = "SRPTGT"
	}
	return &Target{
		vendor:  v,
		lus:     make(map[string]*LU),
		nexuses: make(map[NexusID]*Nexus),
		seen:    make(map[NexusID]bool),
	}
}

// AddPort registers a target port and gives it the next relative port
// number.
func (t *Target) AddPort(id PortID, name string) *Port {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, p := range t.ports {
		if p.ID == id {
			return p
		}
	}
	p := &Port{ID: id, Relative: uint16(len(t.ports) + 1), Name: name}
	t.ports = append(t.ports, p)
	return p
}

// SetAccess installs the access function used for nexuses that log in from
// now on.
func (t *Target) SetAccess(f AccessFunc) {
	t.mu.Lock()
	t.access = f
	t.mu.Unlock()
}

// LU returns the logical unit with the given name.
func (t *Target) LU(name string) *LU {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.lus[name]
}

// LUs returns the logical units sorted by default LUN.
func (t *Target) LUs() []*LU {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.sortedLUs()
}

func (t *Target) sortedLUs() []*LU {
	out := make([]*LU, 0, len(t.lus))
	for _, lu := range t.lus {
		out = append(out, lu)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].lun < out[j].lun })
	return out
}

// AddLU adds a logical unit. Every logged-in nexus that the access policy
// lets see it gets REPORTED LUNS DATA HAS CHANGED.
func (t *Target) AddLU(lu *LU) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.lus[lu.name]; ok {
		return fmt.Errorf("scsi: logical unit %q already exists", lu.name)
	}
	for _, o := range t.lus {
		if o.lun == lu.lun {
			return fmt.Errorf("scsi: LUN %d already used by %q", lu.lun, o.name)
		}
	}
	lu.target = t
	t.lus[lu.name] = lu
	t.remapLocked()
	return nil
}

// RemoveLU removes a logical unit: its tasks are aborted, nexuses lose it
// and get REPORTED LUNS DATA HAS CHANGED. The caller closes the LU.
func (t *Target) RemoveLU(name string) (*LU, error) {
	t.mu.Lock()
	lu, ok := t.lus[name]
	if !ok {
		t.mu.Unlock()
		return nil, fmt.Errorf("scsi: no logical unit %q", name)
	}
	delete(t.lus, name)
	t.remapLocked()
	t.mu.Unlock()
	lu.tasks.abort(func(*Command) bool { return true })
	lu.tasks.waitAborted()
	return lu, nil
}

// Remap re-evaluates the access function for every logged-in nexus, as after
// an ACL change.
func (t *Target) Remap() {
	t.mu.Lock()
	t.remapLocked()
	t.mu.Unlock()
}

func (t *Target) remapLocked() {
	for _, n := range t.nexuses {
		m, err := t.mappingsLocked(n.id, n.port)
		if err != nil {
			m = nil
		}
		if n.setMappings(m) {
			n.allUA(ASCReportedLUNsDataChanged)
		}
	}
}

func (t *Target) mappingsLocked(id NexusID, port *Port) ([]Mapping, error) {
	if t.access != nil {
		return t.access(id, port)
	}
	var m []Mapping
	for _, lu := range t.sortedLUs() {
		m = append(m, Mapping{LUN: lu.lun, LU: lu, ReadOnly: lu.readOnly})
	}
	return m, nil
}

// CheckAccess reports whether the access function lets initiator port
// id.Initiator log in through port (ErrAccessDenied if not), without
// attaching anything: for a channel that joins an existing I_T nexus
// after an access list change.
func (t *Target) CheckAccess(id NexusID, port *Port) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	_, err := t.mappingsLocked(id, port)
	return err
}

// Attach creates the I_T nexus for a login through port. A nexus that
// already exists is returned as it is (a second channel of a multichannel
// login). A nexus seen before and lost gets I_T NEXUS LOSS OCCURRED; a new
// one gets POWER ON, RESET, OR BUS DEVICE RESET OCCURRED.
func (t *Target) Attach(id NexusID, port *Port) (*Nexus, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if n, ok := t.nexuses[id]; ok {
		return n, nil
	}
	m, err := t.mappingsLocked(id, port)
	if err != nil {
		return nil, err
	}
	n := &Nexus{id: id, port: port, target: t}
	n.setMappings(m)
	if t.seen[id] {
		n.allUA(ASCITNexusLoss)
	} else {
		n.allUA(ASCPowerOnReset)
	}
	t.seen[id] = true
	t.nexuses[id] = n
	return n, nil
}

// Detach ends an I_T nexus (logout or loss): its tasks are aborted and its
// per-LU state goes. It returns once no aborted task of the nexus moves data
// any more.
func (t *Target) Detach(n *Nexus) {
	t.mu.Lock()
	if t.nexuses[n.id] == n {
		delete(t.nexuses, n.id)
	}
	t.mu.Unlock()
	m := n.maps.Load()
	if m == nil {
		return
	}
	for _, x := range m.list {
		x.lu.tasks.abort(func(c *Command) bool { return c.nexus == n })
		x.lu.tasks.waitAborted()
		x.lu.detach(x)
		// SPC-2 reservations end with their I_T nexus; persistent
		// reservations and registrations stay (SPC-4 5.12.1).
		x.lu.dropSPC2(&n.id)
	}
	n.setMappings(nil)
}

// portList returns the target ports.
func (t *Target) portList() []*Port {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]*Port(nil), t.ports...)
}

// Nexuses returns the logged-in nexuses.
func (t *Target) Nexuses() []*Nexus {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]*Nexus, 0, len(t.nexuses))
	for _, n := range t.nexuses {
		out = append(out, n)
	}
	return out
}
