package xensim

import (
	"fmt"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/srptgt/srptgt/transport/xen"
)

// GuestConfig describes a guest domain to create.
type GuestConfig struct {
	// DomID asks for a domain ID; 0 takes the lowest free one.
	DomID xen.DomID
	// Name is the domain's name (default "guestN"); names are unique.
	Name string
	// Pages and Grants size the domain's memory and grant table; 0 takes
	// the simulator's defaults.
	Pages, Grants int
}

// Guest is a guest domain: its connection to the simulator creates the
// domain, and closing it destroys the domain. It is the frontend's
// hypervisor: guest memory, the domain's own grant table, unbound event
// channels and a XenStore connection.
type Guest struct {
	r     *rpc
	dom   xen.DomID
	name  string
	uuid  string
	mem   []byte
	gt    []byte
	pages int
	nents int

	pmu  sync.Mutex
	used []bool // page frames allocated

	gmu      sync.Mutex
	freeRefs []uint32

	// cmu guards the mappings against Close: grant table and memory
	// accesses through Guest methods after Close are no-ops.
	cmu    sync.RWMutex
	closed bool
}

// DialGuest connects to the simulator at path and creates a guest domain.
func DialGuest(path string, cfg GuestConfig) (*Guest, error) {
	r, err := dialRPC(path)
	if err != nil {
		return nil, err
	}
	r.start()
	m, err := r.call(OpHello, cfg.Name, roleGuest, uint64(cfg.DomID), uint64(cfg.Pages), uint64(cfg.Grants))
	if err != nil {
		r.close()
		return nil, err
	}
	if len(m.fds) != 2 {
		closeFDs(m.fds)
		r.close()
		return nil, fmt.Errorf("xensim: hello reply with %d descriptors", len(m.fds))
	}
	g := &Guest{r: r, dom: xen.DomID(m.args[0]), pages: int(m.args[1]), nents: int(m.args[2]), uuid: m.str}
	defer closeFDs(m.fds)
	g.mem, err = unix.Mmap(m.fds[0], 0, g.pages*pageSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err == nil {
		g.gt, err = unix.Mmap(m.fds[1], 0, g.nents*EntrySize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	}
	if err != nil {
		if g.mem != nil {
			unix.Munmap(g.mem)
		}
		r.close()
		return nil, fmt.Errorf("xensim: mapping guest memory: %w", err)
	}
	g.used = make([]bool, g.pages)
	for i := g.nents - 1; i >= ReservedRefs; i-- {
		g.freeRefs = append(g.freeRefs, uint32(i))
	}
	g.name = cfg.Name
	return g, nil
}

// ID is the domain ID.
func (g *Guest) ID() xen.DomID { return g.dom }

// UUID is the domain's UUID (derived from its name).
func (g *Guest) UUID() string { return g.uuid }

// Done is closed when the domain is gone (the simulator destroyed it or
// went away).
func (g *Guest) Done() <-chan struct{} { return g.r.done }

// Close destroys the domain.
func (g *Guest) Close() error {
	err := g.r.close()
	g.cmu.Lock()
	defer g.cmu.Unlock()
	if !g.closed {
		g.closed = true
		unix.Munmap(g.gt)
		unix.Munmap(g.mem)
	}
	return err
}

// Memory is the whole of the domain's memory.
func (g *Guest) Memory() []byte { return g.mem }

// Page returns page frame f of the domain's memory.
func (g *Guest) Page(f uint32) []byte {
	off := int(f) * pageSize
	return g.mem[off : off+pageSize : off+pageSize]
}

// AllocPages allocates n contiguous page frames and returns the first and
// their memory.
func (g *Guest) AllocPages(n int) (uint32, []byte, error) {
	g.pmu.Lock()
	defer g.pmu.Unlock()
	run := 0
	for i := range g.used {
		if g.used[i] {
			run = 0
			continue
		}
		run++
		if run == n {
			first := i - n + 1
			for j := first; j <= i; j++ {
				g.used[j] = true
			}
			off := first * pageSize
			return uint32(first), g.mem[off : off+n*pageSize : off+n*pageSize], nil
		}
	}
	return 0, nil, fmt.Errorf("xensim: domain %d: no %d free contiguous pages of %d", g.dom, n, g.pages)
}

// FreePages frees pages from AllocPages.
func (g *Guest) FreePages(first uint32, n int) {
	g.pmu.Lock()
	defer g.pmu.Unlock()
	for j := int(first); j < int(first)+n && j < len(g.used); j++ {
		g.used[j] = false
	}
}

// AllocRef takes a free grant reference.
func (g *Guest) AllocRef() (xen.GrantRef, error) {
	g.gmu.Lock()
	defer g.gmu.Unlock()
	if len(g.freeRefs) == 0 {
		return 0, fmt.Errorf("xensim: domain %d: grant table full", g.dom)
	}
	r := g.freeRefs[len(g.freeRefs)-1]
	g.freeRefs = g.freeRefs[:len(g.freeRefs)-1]
	return xen.GrantRef(r), nil
}

// FreeRef returns a grant reference (revoking it).
func (g *Guest) FreeRef(r xen.GrantRef) {
	g.Revoke(r)
	g.gmu.Lock()
	g.freeRefs = append(g.freeRefs, uint32(r))
	g.gmu.Unlock()
}

// Grant grants page frame f to domain to (gnttab_grant_foreign_access_ref).
func (g *Guest) Grant(r xen.GrantRef, to xen.DomID, f uint32, readonly bool) {
	flags := uint16(GTFPermitAccess)
	if readonly {
		flags |= GTFReadonly
	}
	g.setEntry(r, Entry{Flags: flags, Dom: to, Frame: f}.encode())
}

func (g *Guest) setEntry(r xen.GrantRef, v uint64) {
	if uint64(r) >= uint64(g.nents) {
		return
	}
	g.cmu.RLock()
	if !g.closed {
		storeEntry(g.gt, uint32(r), v)
	}
	g.cmu.RUnlock()
}

// Revoke ends access to a grant (gnttab_end_foreign_access_ref).
func (g *Guest) Revoke(r xen.GrantRef) { g.setEntry(r, 0) }

// SetEntry writes a raw grant table entry (hostile-guest tests).
func (g *Guest) SetEntry(r xen.GrantRef, e Entry) { g.setEntry(r, e.encode()) }

// Grants is the size of the domain's grant table.
func (g *Guest) Grants() int { return g.nents }

// AllocUnbound allocates an event channel port that domain remote may
// bind (EVTCHNOP_alloc_unbound).
func (g *Guest) AllocUnbound(remote xen.DomID) (xen.EventChannel, error) {
	m, err := g.r.call(OpAllocUnbound, "", uint64(remote))
	if err != nil {
		return nil, err
	}
	return newEventChannel(g.r, m)
}

// Store opens a XenStore connection as this domain.
func (g *Guest) Store() (xen.Store, error) { return storeOf(g.r) }
