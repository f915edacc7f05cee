// Package frontend is a Xen PV SCSI frontend in Go, the guest side of the
// Xen transport: it does what Linux xen-scsifront does (grants its ring,
// allocates its event channel, writes its XenStore nodes, attaches, sends
// CDBs with direct or indirect segments, aborts and resets), for the
// vscsiif ring (VSCSI, a scsitest.Initiator) and for the native SRP ring
// (SRPConn, an initiator.Conn, so the Go SRP initiator runs over it
// unchanged). It runs over any Guest; xensim.Guest is the simulated one.
package frontend

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/srptgt/srptgt/transport/xen"
	"github.com/srptgt/srptgt/transport/xen/xenbus"
	"github.com/srptgt/srptgt/transport/xen/xenstore"
)

// Guest is what a frontend needs from the hypervisor of its own domain:
// memory pages to grant, its grant table, unbound event channels and
// XenStore. xensim.Guest implements it.
type Guest interface {
	ID() xen.DomID
	AllocPages(n int) (first uint32, mem []byte, err error)
	FreePages(first uint32, n int)
	AllocRef() (xen.GrantRef, error)
	FreeRef(r xen.GrantRef)
	Grant(r xen.GrantRef, to xen.DomID, frame uint32, readonly bool)
	Revoke(r xen.GrantRef)
	AllocUnbound(remote xen.DomID) (xen.EventChannel, error)
	Store() (xen.Store, error)
}

// device is one frontend device directory and its backend's.
type device struct {
	g         Guest
	st        xen.Store
	fe, be    string
	backendID xen.DomID
	token     string
}

// ErrBackendGone is returned when the backend closed the device.
var ErrBackendGone = errors.New("frontend: the backend closed the device")

// openDevice waits for the toolstack to create device/<typ>/<vhost> and
// reads where its backend is.
func openDevice(ctx context.Context, g Guest, typ string, vhost int) (*device, error) {
	st, err := g.Store()
	if err != nil {
		return nil, err
	}
	d := &device{g: g, st: st, fe: fmt.Sprintf("/local/domain/%d/device/%s/%d", g.ID(), typ, vhost),
		token: "fe-" + typ + strconv.Itoa(vhost)}
	if err := st.Watch(d.fe, d.token); err != nil {
		st.Close()
		return nil, err
	}
	err = d.wait(ctx, func() (bool, error) {
		be, err := st.Read(0, d.fe+"/backend")
		if err != nil {
			return false, nil
		}
		id, err := st.Read(0, d.fe+"/backend-id")
		if err != nil {
			return false, nil
		}
		n, err := strconv.ParseUint(id, 10, 16)
		if err != nil {
			return false, fmt.Errorf("frontend: backend-id %q", id)
		}
		d.be, d.backendID = be, xen.DomID(n)
		return true, nil
	})
	if err != nil {
		st.Close()
		return nil, err
	}
	if err := st.Watch(d.be, d.token); err != nil {
		st.Close()
		return nil, err
	}
	return d, nil
}

// wait calls cond after every XenStore event until it is true.
func (d *device) wait(ctx context.Context, cond func() (bool, error)) error {
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for {
		ok, err := cond()
		if err != nil || ok {
			return err
		}
		select {
		case _, open := <-d.st.Events():
			if !open {
				return xen.ErrClosed
			}
		case <-t.C:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (d *device) backendState() xenbus.State {
	v, err := d.st.Read(0, d.be+"/state")
	if err != nil {
		return xenbus.Unknown
	}
	return xenbus.ParseState(v)
}

func (d *device) setState(s xenbus.State) error {
	return d.st.Write(0, d.fe+"/state", strconv.Itoa(int(s)))
}

// writeNodes writes nodes and the state in one transaction.
func (d *device) writeNodes(nodes [][2]string, s xenbus.State) error {
	for {
		tx, err := d.st.Begin()
		if err != nil {
			return err
		}
		for _, kv := range nodes {
			if err := d.st.Write(tx, d.fe+"/"+kv[0], kv[1]); err != nil {
				d.st.End(tx, false)
				return err
			}
		}
		if err := d.st.Write(tx, d.fe+"/state", strconv.Itoa(int(s))); err != nil {
			d.st.End(tx, false)
			return err
		}
		err = d.st.End(tx, true)
		if err == nil || !xenstore.IsAgain(err) {
			return err
		}
	}
}

func (d *device) readUint(node string) (uint64, error) {
	v, err := d.st.Read(0, d.be+"/"+node)
	if err != nil {
		return 0, err
	}
	return strconv.ParseUint(v, 10, 64)
}

// grantPages allocates n pages, grants them to the backend and returns
// the first frame, their memory and the references.
func (d *device) grantPages(n int, readonly bool) (uint32, []byte, []xen.GrantRef, error) {
	f, mem, err := d.g.AllocPages(n)
	if err != nil {
		return 0, nil, nil, err
	}
	refs := make([]xen.GrantRef, n)
	for i := range refs {
		r, err := d.g.AllocRef()
		if err != nil {
			for _, x := range refs[:i] {
				d.g.FreeRef(x)
			}
			d.g.FreePages(f, n)
			return 0, nil, nil, err
		}
		refs[i] = r
		d.g.Grant(r, d.backendID, f+uint32(i), readonly)
	}
	return f, mem, refs, nil
}

func (d *device) ungrantPages(f uint32, refs []xen.GrantRef) {
	for _, r := range refs {
		d.g.FreeRef(r)
	}
	d.g.FreePages(f, len(refs))
}
