// Package xenbus is the backend half of the XenBus handshake of a vscsi
// device (xen/include/public/io/xenbus.h, vscsiif.h, and what Linux
// xen-scsiback and xen-scsifront do) as a pure state machine, in the
// manner of etcd's raft: no goroutines, no XenStore, no clock. The caller
// reads the device's nodes into a Snapshot whenever a watch fires, calls
// Step, and performs the returned Actions in order: XenStore writes
// relative to the backend directory, attaching and detaching the ring,
// and adding and removing LUNs from the ring's map.
//
// Device states (backend "state" node):
//
//	Initialising (toolstack) -> InitWait (backend probed, feature-sg-grant
//	written) -> Connected (frontend Initialised: ring attached, LUNs added)
//	-> Closing (frontend closing, or backend shutting down) -> Closed.
//	Connected -> Reconfiguring (toolstack hot-plug) -> Reconfigured
//	(frontend Reconfiguring: LUNs added/removed) -> Connected.
//
// Per-LUN states (vscsi-devs/dev-N/state in the backend directory):
//
//	Initialising (toolstack adds) -> Initialised (backend accepted it) ->
//	Connected (frontend Connected); or Closed (refused).
//	Closing (toolstack removes) -> Closed (backend removed it, after the
//	frontend removed the disk).
package xenbus

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// State is enum xenbus_state; XenStore holds it as a decimal string.
type State int

// XenBus states.
const (
	Unknown       State = 0
	Initialising  State = 1
	InitWait      State = 2
	Initialised   State = 3
	Connected     State = 4
	Closing       State = 5
	Closed        State = 6
	Reconfiguring State = 7
	Reconfigured  State = 8
)

var stateNames = [...]string{"Unknown", "Initialising", "InitWait", "Initialised", "Connected", "Closing", "Closed", "Reconfiguring", "Reconfigured"}

func (s State) String() string {
	if s >= 0 && int(s) < len(stateNames) {
		return stateNames[s]
	}
	return "State(" + strconv.Itoa(int(s)) + ")"
}

// ParseState parses a state node's value ("" or garbage is Unknown).
func ParseState(v string) State {
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n < 0 || n > int(Reconfigured) {
		return Unknown
	}
	return State(n)
}

// Dev is one LUN entry of the backend directory, vscsi-devs/<Name>.
type Dev struct {
	Name  string // "dev-N"
	PDev  string // backend device: a configured LUN name
	VDev  string // guest address "h:c:t:l"
	State State
}

// Snapshot is what XenStore says about one device, read by the caller.
type Snapshot struct {
	// Exists: the backend directory exists.
	Exists bool
	// State is the backend directory's state node.
	State State
	// Online is the backend's online node ("1").
	Online bool
	// FrontendExists: the frontend directory exists.
	FrontendExists bool
	// Frontend is the frontend's state node.
	Frontend State
	// RingRef and EventChannel are the frontend's nodes; RingOK says both
	// were present and parsed.
	RingRef      uint32
	EventChannel uint32
	RingOK       bool
	// Devs are the backend's vscsi-devs entries.
	Devs []Dev
}

// Op is the kind of an Action.
type Op int

const (
	// Write: write Value to the node Path, relative to the backend
	// directory.
	Write Op = iota
	// Connect: map the ring (RingRef) and bind the event channel
	// (EventChannel); start serving it. Resume is set when the frontend
	// was already Connected (a backend restart): the ring is live.
	Connect
	// Disconnect: stop serving the ring (answer what is outstanding),
	// unbind and unmap it.
	Disconnect
	// AddLUN: the ring exposes Dev.PDev at Dev.VDev from now on.
	AddLUN
	// RemoveLUN: the ring no longer exposes Dev.
	RemoveLUN
)

// Action is one thing the caller must do.
type Action struct {
	Op           Op
	Path, Value  string
	RingRef      uint32
	EventChannel uint32
	Resume       bool
	Dev          Dev
}

func (a Action) String() string {
	switch a.Op {
	case Write:
		return fmt.Sprintf("write %s=%s", a.Path, a.Value)
	case Connect:
		s := fmt.Sprintf("connect ring-ref=%d event-channel=%d", a.RingRef, a.EventChannel)
		if a.Resume {
			s += " resume"
		}
		return s
	case Disconnect:
		return "disconnect"
	case AddLUN:
		return fmt.Sprintf("add-lun %s p-dev=%s v-dev=%s", a.Dev.Name, a.Dev.PDev, a.Dev.VDev)
	case RemoveLUN:
		return fmt.Sprintf("remove-lun %s p-dev=%s v-dev=%s", a.Dev.Name, a.Dev.PDev, a.Dev.VDev)
	}
	return "?"
}

// CheckFunc says whether a LUN entry can be served (p-dev names a
// configured LUN, v-dev is a valid address not already taken); nil
// means yes. It must be pure.
type CheckFunc func(d Dev, active []Dev) error

// Machine is the backend state machine of one vscsi device. Not safe for
// concurrent use.
type Machine struct {
	// MaxSegs is written as feature-sg-grant.
	MaxSegs int
	check   CheckFunc

	started   bool
	state     State // what the backend state node should hold
	connected bool
	everConn  bool
	closing   bool // shutting down or faulted: heading for Closed
	luns      map[string]Dev
	ringRef   uint32
	evtchn    uint32
}

// New returns a machine for one device.
func New(maxSegs int, check CheckFunc) *Machine {
	if check == nil {
		check = func(Dev, []Dev) error { return nil }
	}
	return &Machine{MaxSegs: maxSegs, check: check, luns: map[string]Dev{}}
}

// Connected reports whether the ring is attached.
func (m *Machine) Connected() bool { return m.connected }

// State is the backend state the machine last wrote or adopted.
func (m *Machine) State() State { return m.state }

// Closed reports that the device reached Closed after Shutdown or Fail
// (or its frontend closed): nothing more will happen on it.
func (m *Machine) Closed() bool { return m.state == Closed && !m.connected }

// LUNs returns the active LUN entries, sorted by name.
func (m *Machine) LUNs() []Dev {
	out := make([]Dev, 0, len(m.luns))
	for _, d := range m.luns {
		out = append(out, d)
	}
	sort.Slice(out, func(i, j int) bool { return devLess(out[i].Name, out[j].Name) })
	return out
}

func devLess(a, b string) bool {
	na, ea := strconv.Atoi(strings.TrimPrefix(a, "dev-"))
	nb, eb := strconv.Atoi(strings.TrimPrefix(b, "dev-"))
	if ea == nil && eb == nil {
		return na < nb
	}
	return a < b
}

// Shutdown starts a clean disconnect: the backend goes Closing, the
// frontend removes its disks and closes, then the ring is detached and
// the backend goes Closed. Call Step after it.
func (m *Machine) Shutdown() { m.closing = true }

// Fail is Shutdown after a fault (a malformed request, a ring that could
// not be attached).
func (m *Machine) Fail() { m.closing = true }

// Reconfigure is the toolstack's hot-plug: after writing dev entries with
// state Initialising (add) or Closing (remove), it moves the backend to
// Reconfiguring, and the frontend answers by Reconfiguring itself.
func (m *Machine) Reconfigure() []Action {
	if m.state != Connected || m.closing {
		return nil
	}
	return m.set(nil, Reconfiguring)
}

func (m *Machine) set(acts []Action, s State) []Action {
	m.state = s
	return append(acts, Action{Op: Write, Path: "state", Value: strconv.Itoa(int(s))})
}

func devState(d Dev, s State) Action {
	return Action{Op: Write, Path: "vscsi-devs/" + d.Name + "/state", Value: strconv.Itoa(int(s))}
}

// Step takes a fresh snapshot and returns what to do.
func (m *Machine) Step(s Snapshot) []Action {
	var acts []Action
	if !s.Exists {
		// The toolstack removed the device.
		if m.connected {
			acts = m.disconnect(acts)
		}
		m.state = Closed
		return acts
	}
	if !m.started {
		m.started = true
		m.state = s.State
		acts = append(acts, Action{Op: Write, Path: "feature-sg-grant", Value: strconv.Itoa(m.MaxSegs)})
		switch s.State {
		case Unknown, Initialising:
			acts = m.set(acts, InitWait)
		case Closing, Closed:
			if !m.closing && s.FrontendExists && (s.Frontend == Initialising || s.Frontend == Initialised) {
				acts = m.set(acts, InitWait)
			}
		}
	} else if !s.Online && s.State == Closing && !m.closing {
		// The toolstack removes the device (online 0, state Closing).
		m.closing = true
		m.state = Closing
	} else if s.State == Reconfiguring && m.state == Connected {
		// written by the toolstack directly
		m.state = Reconfiguring
	}
	fe := s.Frontend
	if !s.FrontendExists {
		fe = Unknown
	}

	if m.closing {
		switch {
		case fe == Closed || fe == Closing || fe == Unknown || !m.connected:
			if m.connected {
				acts = m.disconnect(acts)
			}
			if m.state != Closed {
				acts = m.set(acts, Closed)
			}
		case m.state != Closing:
			acts = m.set(acts, Closing)
		}
		return acts
	}

	switch fe {
	case Unknown:
		// No frontend (yet, or any more: the domain died).
		if m.connected {
			acts = m.disconnect(acts)
		}
		if m.everConn && m.state != Closed {
			acts = m.set(acts, Closed)
		}
	case Initialising:
		if m.connected {
			acts = m.disconnect(acts)
		}
		if m.state == Closed || m.state == Closing || m.state == Connected {
			// the frontend restarted (module reload, kexec): start over
			acts = m.set(acts, InitWait)
		}
	case Initialised:
		if m.connected && s.RingOK && (s.RingRef != m.ringRef || s.EventChannel != m.evtchn) {
			// A frontend that re-initialised (a new ring) without
			// closing.
			acts = m.disconnect(acts)
		}
		if m.connected || !s.RingOK {
			// connected: waiting for the frontend to go Connected
			break
		}
		if m.state == Closed || m.state == Closing {
			acts = m.set(acts, InitWait)
		}
		acts = m.connect(acts, s, false)
		acts = m.hotplug(acts, s, passConnect)
		acts = m.set(acts, Connected)
	case Connected:
		if !m.connected {
			if !s.RingOK {
				break
			}
			// The backend restarted under a live frontend.
			acts = m.connect(acts, s, true)
			acts = m.hotplug(acts, s, passResume)
		}
		for _, d := range s.Devs {
			if d.State == Initialised {
				if _, ok := m.luns[d.Name]; ok {
					acts = append(acts, devState(d, Connected))
				}
			}
		}
		if m.state != Connected && m.state != Reconfiguring {
			// (Reconfiguring: the toolstack's hot-plug, waiting for
			// the frontend to answer it)
			acts = m.set(acts, Connected)
		}
		if m.state == Connected && m.pendingHotplug(s) {
			// An entry added or removed while a reconfiguration was
			// still running (the toolstack saw no Connected state to
			// move to Reconfiguring): start one now.
			acts = m.set(acts, Reconfiguring)
		}
	case Closing:
		if m.connected {
			acts = m.disconnect(acts)
		}
		if m.state != Closing {
			acts = m.set(acts, Closing)
		}
	case Closed:
		if m.connected {
			acts = m.disconnect(acts)
		}
		if m.state != Closed {
			acts = m.set(acts, Closed)
		}
	case Reconfiguring:
		if m.connected && m.state != Reconfigured {
			acts = m.hotplug(acts, s, passReconfigure)
			acts = m.set(acts, Reconfigured)
		}
	}
	return acts
}

func (m *Machine) connect(acts []Action, s Snapshot, resume bool) []Action {
	m.connected, m.everConn = true, true
	m.ringRef, m.evtchn = s.RingRef, s.EventChannel
	return append(acts, Action{Op: Connect, RingRef: s.RingRef, EventChannel: s.EventChannel, Resume: resume})
}

func (m *Machine) disconnect(acts []Action) []Action {
	m.connected = false
	for _, d := range m.LUNs() {
		acts = append(acts, Action{Op: RemoveLUN, Dev: d})
	}
	clear(m.luns)
	return append(acts, Action{Op: Disconnect})
}

type pass int

const (
	passConnect     pass = iota // a fresh ring
	passResume                  // a live ring after a backend restart
	passReconfigure             // the frontend answered Reconfiguring
)

// hotplug is scsiback's ADD_OR_DEL_LUN pass: entries Initialising are
// added (Initialised, or Closed if refused), entries Closing removed
// (Closed). On a fresh ring, entries left Initialised or Connected by an
// earlier frontend are added again and set Initialised, so that the new
// frontend's ADD_LUN pass finds them. On a resumed ring, entries
// Initialised or Connected are served again without a state change.
func (m *Machine) hotplug(acts []Action, s Snapshot, p pass) []Action {
	devs := append([]Dev(nil), s.Devs...)
	sort.Slice(devs, func(i, j int) bool { return devLess(devs[i].Name, devs[j].Name) })
	for _, d := range devs {
		readd := d.State == Initialised || d.State == Connected
		switch {
		case d.State == Initialising || readd && p != passReconfigure:
			if _, ok := m.luns[d.Name]; ok {
				break
			}
			if err := m.check(d, m.LUNs()); err != nil {
				if d.State != Closed && p != passResume {
					acts = append(acts, devState(d, Closed))
				}
				break
			}
			m.luns[d.Name] = d
			acts = append(acts, Action{Op: AddLUN, Dev: d})
			if p != passResume && d.State != Initialised {
				acts = append(acts, devState(d, Initialised))
			}
		case d.State == Closing:
			if old, ok := m.luns[d.Name]; ok {
				delete(m.luns, d.Name)
				acts = append(acts, Action{Op: RemoveLUN, Dev: old})
			}
			acts = append(acts, devState(d, Closed))
		}
	}
	return acts
}

// pendingHotplug reports LUN entries waiting for a reconfiguration: new
// ones (Initialising) and active ones marked for removal (Closing).
func (m *Machine) pendingHotplug(s Snapshot) bool {
	for _, d := range s.Devs {
		if d.State == Initialising {
			return true
		}
		if _, ok := m.luns[d.Name]; ok && d.State == Closing {
			return true
		}
	}
	return false
}

// Abandon gives up on a frontend that did not close in time (a paused or
// hung guest): the ring is detached and the backend goes Closed at once.
func (m *Machine) Abandon() []Action {
	m.closing = true
	var acts []Action
	if m.connected {
		acts = m.disconnect(acts)
	}
	if m.state != Closed {
		acts = m.set(acts, Closed)
	}
	return acts
}
