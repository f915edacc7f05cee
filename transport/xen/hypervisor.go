package xen

import (
	"errors"
	"strconv"

	"github.com/srptgt/srptgt/transport/xen/xenstore"
)

// DomID is a Xen domain ID (domid_t).
type DomID uint16

// GrantRef is a grant reference (grant_ref_t): names one page a domain
// granted to another.
type GrantRef uint32

// PageSize is the grant page size (XEN_PAGE_SIZE, VSCSIIF_PAGE_SIZE).
const PageSize = 4096

// Hypervisor is everything the Xen transport needs from Xen. Two
// implementations exist: package xendev drives the real Linux devices in
// dom0 (/dev/xen/gntdev, /dev/xen/evtchn, /dev/xen/xenbus or xenstored's
// socket), and a simulator (srptgt xensim; package xentest in tests) plays
// Xen with ordinary memory, notifications and an in-memory XenStore.
//
// The transport calls Store once per Backend, Grants once per ring and
// BindInterdomain once per ring. Every method is safe for concurrent use.
type Hypervisor interface {
	// Store opens a new connection to XenStore.
	Store() (Store, error)
	// Grants opens a new grant-table handle (one gntdev file). Mappings
	// made through it are released when it is closed.
	Grants() (Grants, error)
	// BindInterdomain binds a new local event channel to the port
	// remotePort that domain dom allocated for this domain (a frontend's
	// "event-channel" node).
	BindInterdomain(dom DomID, remotePort uint32) (EventChannel, error)
}

// Grants maps and copies pages that another domain granted to this one
// (Linux /dev/xen/gntdev).
type Grants interface {
	// Map maps the pages refs of domain dom, in order, as one contiguous
	// region of len(refs)*PageSize bytes (IOCTL_GNTDEV_MAP_GRANT_REF +
	// mmap). writable must be false for pages the domain granted
	// read-only. The region stays valid until Unmap.
	Map(dom DomID, refs []GrantRef, writable bool) ([]byte, error)
	// Unmap releases a region Map returned (munmap +
	// IOCTL_GNTDEV_UNMAP_GRANT_REF). mem must be exactly the slice Map
	// returned.
	Unmap(mem []byte) error
	// Copy performs a batch of grant copies in one call
	// (IOCTL_GNTDEV_GRANT_COPY) and fills in each segment's Status. It
	// returns an error only when the batch as a whole could not be
	// attempted; a segment that failed has Status != GrantOK. Local
	// memory should come from the transport's buffers (Alloc), which
	// Linux pins for the copy.
	Copy(segs []CopySeg) error
	// Close unmaps everything still mapped and releases the handle.
	Close() error
}

// CopySeg is one grant copy: between Local and bytes
// [Offset, Offset+len(Local)) of the page Ref that Dom granted. A segment
// never crosses a page of the granting domain: Offset+len(Local) <=
// PageSize (gntdev refuses the whole batch otherwise).
type CopySeg struct {
	Dom    DomID
	Ref    GrantRef
	Offset uint16
	Local  []byte
	// ToGuest selects the direction: true copies Local into the granted
	// page (data-in, a SCSI READ), false copies the page into Local
	// (data-out, a SCSI WRITE).
	ToGuest bool
	// Status is set by Copy: GrantOK or a negative GNTST_* code.
	Status GrantStatus
}

// GrantStatus is a GNTST_* result code (xen/include/public/grant_table.h).
type GrantStatus int16

// GNTST_* values.
const (
	GrantOK              GrantStatus = 0
	GrantGeneralError    GrantStatus = -1
	GrantBadDomain       GrantStatus = -2
	GrantBadRef          GrantStatus = -3
	GrantBadHandle       GrantStatus = -4
	GrantBadVirtAddr     GrantStatus = -5
	GrantBadDevAddr      GrantStatus = -6
	GrantNoDeviceSpace   GrantStatus = -7
	GrantPermission      GrantStatus = -8
	GrantBadPage         GrantStatus = -9
	GrantBadCopyArg      GrantStatus = -10
	GrantAddressTooBig   GrantStatus = -11
	GrantEAgain          GrantStatus = -12
	grantStatusFirstNone GrantStatus = -13
)

func (s GrantStatus) Error() string {
	names := [...]string{"okay", "general error", "bad domain", "bad grant reference", "bad handle",
		"bad virtual address", "bad device address", "no device space", "permission denied",
		"bad page", "bad copy argument", "address too big", "try again"}
	if s <= 0 && s > grantStatusFirstNone {
		return "grant copy: " + names[-s]
	}
	return "grant copy: status " + strconv.Itoa(int(s))
}

// EventChannel is one bound interdomain event channel (Linux
// /dev/xen/evtchn: IOCTL_EVTCHN_BIND_INTERDOMAIN, NOTIFY, read and
// write-to-unmask).
type EventChannel interface {
	// LocalPort is this domain's port number.
	LocalPort() uint32
	// Wait blocks until the remote end notified the port at least once
	// since the previous Wait returned, then re-enables (unmasks) the
	// port and returns. Notifications that arrive while the caller is
	// not waiting are not lost: the next Wait returns at once. It
	// returns ErrClosed once Close was called (from any goroutine).
	Wait() error
	// Notify signals the remote end.
	Notify() error
	// Close unbinds the port and wakes a blocked Wait.
	Close() error
}

// Store is a XenStore connection (xs_wire over /dev/xen/xenbus or
// xenstored's Unix socket: xenstore.Client; or an in-memory store). Paths
// are absolute. A missing node is an error that errors.Is matches against
// fs.ErrNotExist (syscall.ENOENT); a transaction that must be retried
// ends with syscall.EAGAIN; a refused access with syscall.EACCES.
type Store interface {
	// Read returns a node's value.
	Read(tx xenstore.Tx, path string) (string, error)
	// Write creates or overwrites a node (and any missing parents, which
	// inherit the permissions of their parent).
	Write(tx xenstore.Tx, path, value string) error
	// Mkdir creates a node with an empty value if it does not exist.
	Mkdir(tx xenstore.Tx, path string) error
	// Remove deletes a node and everything below it. Removing a missing
	// node is not an error.
	Remove(tx xenstore.Tx, path string) error
	// List returns the names of a node's children.
	List(tx xenstore.Tx, path string) ([]string, error)
	// Perms returns a node's access list.
	Perms(tx xenstore.Tx, path string) ([]xenstore.Perm, error)
	// SetPerms replaces a node's access list (first entry: owner).
	SetPerms(tx xenstore.Tx, path string, perms []xenstore.Perm) error
	// Begin starts a transaction.
	Begin() (xenstore.Tx, error)
	// End commits (commit=true) or abandons a transaction. A commit that
	// conflicts with another writer fails with syscall.EAGAIN and the
	// caller starts over.
	End(tx xenstore.Tx, commit bool) error
	// Watch sets a watch on path (and everything below it) and returns
	// after it is set; its events, tagged with token, arrive on Events.
	// The watch fires once at once.
	Watch(path, token string) error
	// Unwatch removes a watch.
	Unwatch(path, token string) error
	// Events delivers watch events in order. It is never closed while the
	// Store is open; the Store does not block on a slow reader (events
	// queue up).
	Events() <-chan xenstore.WatchEvent
	// Close closes the connection (its watches and open transactions
	// end with it) and closes Events.
	Close() error
}

// ErrClosed is returned by a closed event channel, grant handle or store.
var ErrClosed = errors.New("xen: closed")
