package xen

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/srptgt/srptgt/transport/xen/xenbus"
	"github.com/srptgt/srptgt/transport/xen/xenstore"
)

// The toolstack's part. Upstream xl 4.17 has no PV SCSI: nobody else
// writes the vscsi nodes, so srptgt does, in an order that avoids the
// race vm-xen.md describes (the guest probes the moment the frontend's
// state node exists; if its directory is not yet the guest's, the
// frontend cannot write ring-ref and fails with EACCES):
//
//  1. create the backend directory empty, owned by the backend domain,
//     readable by the guest; create the frontend directory empty, owned
//     by the guest, readable by the backend domain;
//  2. write every key of both sides in one transaction (the new nodes
//     inherit their directory's permissions).
//
// A device written by a toolstack that does support vscsi= (SUSE's libxl:
// libxl_ctrl_index, feature-host, p-devname) is served the same way.

// DomainInfo identifies a domain in XenStore.
type DomainInfo struct {
	ID   DomID
	Name string
	UUID string // "" if the domain has no /vm entry
}

// Domains lists the domains XenStore knows (/local/domain/*).
func Domains(st Store) ([]DomainInfo, error) {
	ids, err := st.List(xenstore.None, "/local/domain")
	if err != nil {
		return nil, err
	}
	var out []DomainInfo
	for _, s := range ids {
		n, err := strconv.ParseUint(s, 10, 16)
		if err != nil {
			continue
		}
		d := DomainInfo{ID: DomID(n)}
		d.Name, _ = st.Read(xenstore.None, "/local/domain/"+s+"/name")
		if vm, err := st.Read(xenstore.None, "/local/domain/"+s+"/vm"); err == nil && vm != "" {
			d.UUID = vm[strings.LastIndexByte(vm, '/')+1:]
		}
		out = append(out, d)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// FindDomain resolves a domain name or numeric ID.
func FindDomain(st Store, nameOrID string) (DomainInfo, error) {
	doms, err := Domains(st)
	if err != nil {
		return DomainInfo{}, err
	}
	for _, d := range doms {
		if d.Name == nameOrID {
			return d, nil
		}
	}
	if n, err := strconv.ParseUint(nameOrID, 10, 16); err == nil {
		for _, d := range doms {
			if d.ID == DomID(n) {
				return d, nil
			}
		}
	}
	return DomainInfo{}, fmt.Errorf("xen: no domain %q", nameOrID)
}

func bePath(self, dom DomID, vhost int) string {
	return fmt.Sprintf("/local/domain/%d/backend/vscsi/%d/%d", self, dom, vhost)
}

func fePath(dom DomID, vhost int) string {
	return fmt.Sprintf("/local/domain/%d/device/vscsi/%d", dom, vhost)
}

// transact runs f in a transaction, retrying on conflict.
func transact(st Store, f func(tx xenstore.Tx) error) error {
	for i := 0; ; i++ {
		tx, err := st.Begin()
		if err != nil {
			return err
		}
		if err := f(tx); err != nil {
			st.End(tx, false)
			return err
		}
		err = st.End(tx, true)
		if err == nil || !xenstore.IsAgain(err) || i == 20 {
			return err
		}
		time.Sleep(time.Duration(i+1) * time.Millisecond)
	}
}

// createDevice writes a new vscsi device with its LUNs, both directories,
// in the race-free order.
func createDevice(st Store, self, dom DomID, vhost int, luns []LUNSpec) error {
	be, fe := bePath(self, dom, vhost), fePath(dom, vhost)
	if err := st.Mkdir(xenstore.None, be); err != nil {
		return err
	}
	if err := st.SetPerms(xenstore.None, be, []xenstore.Perm{{Dom: uint16(self)}, {Dom: uint16(dom), Read: true}}); err != nil {
		return err
	}
	if err := st.Mkdir(xenstore.None, fe); err != nil {
		return err
	}
	if err := st.SetPerms(xenstore.None, fe, []xenstore.Perm{{Dom: uint16(dom)}, {Dom: uint16(self), Read: true}}); err != nil {
		return err
	}
	return transact(st, func(tx xenstore.Tx) error {
		kv := [][2]string{
			{be + "/frontend", fe}, {be + "/frontend-id", strconv.Itoa(int(dom))},
			{be + "/online", "1"}, {be + "/feature-host", "0"},
		}
		for i, l := range luns {
			d := fmt.Sprintf("%s/vscsi-devs/dev-%d", be, i)
			kv = append(kv, [2]string{d + "/p-dev", l.LU}, [2]string{d + "/v-dev", l.Addr.String()},
				[2]string{d + "/state", "1"})
		}
		kv = append(kv, [2]string{be + "/state", "1"},
			[2]string{fe + "/backend", be}, [2]string{fe + "/backend-id", strconv.Itoa(int(self))},
			[2]string{fe + "/state", "1"})
		for _, x := range kv {
			if err := st.Write(tx, x[0], x[1]); err != nil {
				return err
			}
		}
		return nil
	})
}

// readDevs lists a device's LUN entries.
func readDevs(st Store, be string) []devEntry {
	names, _ := st.List(xenstore.None, be+"/vscsi-devs")
	var out []devEntry
	for _, n := range names {
		e := devEntry{Name: n}
		e.PDev, _ = st.Read(xenstore.None, be+"/vscsi-devs/"+n+"/p-dev")
		e.VDev, _ = st.Read(xenstore.None, be+"/vscsi-devs/"+n+"/v-dev")
		s, _ := st.Read(xenstore.None, be+"/vscsi-devs/"+n+"/state")
		e.State = xenbus.ParseState(s)
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return devNum(out[i].Name) < devNum(out[j].Name) })
	return out
}

type devEntry struct {
	Name, PDev, VDev string
	State            xenbus.State
}

func devNum(name string) int {
	n, err := strconv.Atoi(strings.TrimPrefix(name, "dev-"))
	if err != nil {
		return 1 << 30
	}
	return n
}

// removeForReset removes a device that a clean backend stop left Closed,
// frontend directory first (the guest unregisters its device), and
// returns the LUN entries to write again (those not removed). The caller
// writes the device again with createDevice after the guest had time to
// unregister the old one: Linux's xenbus probes a device directory only
// if it has no device for it, so a directory removed and re-created
// before the guest noticed is never probed again.
func removeForReset(st Store, self, dom DomID, vhost int) ([]LUNSpec, error) {
	be := bePath(self, dom, vhost)
	var luns []LUNSpec
	for _, e := range readDevs(st, be) {
		if e.State == xenbus.Closing || e.State == xenbus.Closed {
			continue
		}
		a, err := ParseAddr(e.VDev)
		if err != nil {
			continue
		}
		luns = append(luns, LUNSpec{LU: e.PDev, Addr: a})
	}
	if err := st.Remove(xenstore.None, fePath(dom, vhost)); err != nil {
		return nil, err
	}
	return luns, st.Remove(xenstore.None, be)
}

// AttachRequest is `srptgt xen attach`: give a guest a LUN.
type AttachRequest struct {
	Domain string // name or ID
	LU     string
	Addr   Addr // vhost = Addr.Host
	// BackendDom is the backend's domain (0).
	BackendDom DomID
}

// Attach gives a guest a LUN: it creates the vhost's device if there is
// none, adds the LUN entry to a device whose frontend has not connected
// yet, or hot-adds it to a connected one (entry Initialising, backend
// Reconfiguring: the running backend and the guest do the rest).
func Attach(st Store, req AttachRequest) error {
	if _, ok := req.Addr.SAMLUN(); !ok {
		return fmt.Errorf("xen: %s: channel must be 0, target 0..%d, LUN 0..%d", req.Addr, MaxTarget, MaxLUN)
	}
	dom, err := FindDomain(st, req.Domain)
	if err != nil {
		return err
	}
	vhost := int(req.Addr.Host)
	be := bePath(req.BackendDom, dom.ID, vhost)
	if _, err := st.Read(xenstore.None, be+"/frontend"); err != nil {
		if !xenstore.IsNotExist(err) {
			return err
		}
		return createDevice(st, req.BackendDom, dom.ID, vhost, []LUNSpec{{LU: req.LU, Addr: req.Addr}})
	}
	next := 0
	for _, e := range readDevs(st, be) {
		a, err := ParseAddr(e.VDev)
		if err == nil && e.State != xenbus.Closed && e.State != xenbus.Closing && sameLUN(a, req.Addr) {
			return fmt.Errorf("xen: %s of domain %s is already %s (%s)", req.Addr, dom.Name, e.PDev, e.Name)
		}
		if n := devNum(e.Name); n < 1<<30 && n >= next {
			next = n + 1
		}
	}
	state, _ := st.Read(xenstore.None, be+"/state")
	return transact(st, func(tx xenstore.Tx) error {
		d := fmt.Sprintf("%s/vscsi-devs/dev-%d", be, next)
		for _, x := range [][2]string{{d + "/p-dev", req.LU}, {d + "/v-dev", req.Addr.String()}, {d + "/state", "1"}} {
			if err := st.Write(tx, x[0], x[1]); err != nil {
				return err
			}
		}
		if xenbus.ParseState(state) == xenbus.Connected {
			return st.Write(tx, be+"/state", strconv.Itoa(int(xenbus.Reconfiguring)))
		}
		return nil
	})
}

func sameLUN(a, b Addr) bool { return a.Channel == b.Channel && a.Target == b.Target && a.LUN == b.LUN }

// DetachRequest is `srptgt xen detach`: take a LUN (or, with no LU and no
// address, the whole vhost) away from a guest.
type DetachRequest struct {
	Domain string
	Vhost  int
	// LU or Addr selects the LUN entry; both empty: the whole device.
	LU         string
	Addr       *Addr
	BackendDom DomID
	// Wait bounds how long a whole-device detach waits for the backend
	// to reach Closed before removing the nodes.
	Wait time.Duration
}

// ErrNotAttached: no such device or LUN entry.
var ErrNotAttached = errors.New("xen: not attached")

// Detach hot-removes a LUN (entry Closing, backend Reconfiguring: the
// guest removes the disk, then the backend drops it) or removes a whole
// device (online 0, backend Closing; once Closed, both directories are
// removed).
func Detach(st Store, req DetachRequest) error {
	dom, err := FindDomain(st, req.Domain)
	if err != nil {
		return err
	}
	be := bePath(req.BackendDom, dom.ID, req.Vhost)
	if _, err := st.Read(xenstore.None, be+"/frontend"); err != nil {
		return fmt.Errorf("%w: domain %s has no vscsi vhost %d", ErrNotAttached, dom.Name, req.Vhost)
	}
	state, _ := st.Read(xenstore.None, be+"/state")
	connected := xenbus.ParseState(state) == xenbus.Connected
	if req.LU == "" && req.Addr == nil {
		if err := transact(st, func(tx xenstore.Tx) error {
			if err := st.Write(tx, be+"/online", "0"); err != nil {
				return err
			}
			return st.Write(tx, be+"/state", strconv.Itoa(int(xenbus.Closing)))
		}); err != nil {
			return err
		}
		deadline := time.Now().Add(req.Wait)
		for time.Now().Before(deadline) {
			s, _ := st.Read(xenstore.None, be+"/state")
			if xenbus.ParseState(s) == xenbus.Closed {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if err := st.Remove(xenstore.None, fePath(dom.ID, req.Vhost)); err != nil {
			return err
		}
		return st.Remove(xenstore.None, be)
	}
	for _, e := range readDevs(st, be) {
		if e.State == xenbus.Closed || e.State == xenbus.Closing {
			continue
		}
		a, _ := ParseAddr(e.VDev)
		if req.LU != "" && e.PDev != req.LU || req.Addr != nil && !sameLUN(a, *req.Addr) {
			continue
		}
		d := be + "/vscsi-devs/" + e.Name
		if !connected {
			return st.Remove(xenstore.None, d)
		}
		return transact(st, func(tx xenstore.Tx) error {
			if err := st.Write(tx, d+"/state", strconv.Itoa(int(xenbus.Closing))); err != nil {
				return err
			}
			return st.Write(tx, be+"/state", strconv.Itoa(int(xenbus.Reconfiguring)))
		})
	}
	return fmt.Errorf("%w: domain %s vhost %d has no such LUN", ErrNotAttached, dom.Name, req.Vhost)
}

// DeviceInfo is one vscsi device, for `srptgt xen list`.
type DeviceInfo struct {
	Domain   DomID
	Name     string
	Vhost    int
	Backend  xenbus.State
	Frontend xenbus.State // Unknown if the frontend directory is missing
	LUNs     []LUNInfo
}

// LUNInfo is one LUN entry of a device.
type LUNInfo struct {
	Entry string // dev-N
	LU    string // p-dev
	Addr  string // v-dev
	State xenbus.State
}

// List returns every vscsi device whose backend is domain self.
func List(st Store, self DomID) ([]DeviceInfo, error) {
	root := fmt.Sprintf("/local/domain/%d/backend/vscsi", self)
	doms, err := st.List(xenstore.None, root)
	if err != nil {
		if xenstore.IsNotExist(err) {
			return nil, nil
		}
		return nil, err
	}
	var out []DeviceInfo
	for _, ds := range doms {
		vhosts, _ := st.List(xenstore.None, root+"/"+ds)
		for _, vs := range vhosts {
			k, ok := parseKey(ds, vs)
			if !ok {
				continue
			}
			be := root + "/" + ds + "/" + vs
			info := DeviceInfo{Domain: k.dom, Vhost: k.vhost}
			info.Name, _ = st.Read(xenstore.None, "/local/domain/"+ds+"/name")
			s, _ := st.Read(xenstore.None, be+"/state")
			info.Backend = xenbus.ParseState(s)
			if fe, err := st.Read(xenstore.None, be+"/frontend"); err == nil {
				s, _ := st.Read(xenstore.None, fe+"/state")
				info.Frontend = xenbus.ParseState(s)
			}
			for _, e := range readDevs(st, be) {
				info.LUNs = append(info.LUNs, LUNInfo{Entry: e.Name, LU: e.PDev, Addr: e.VDev, State: e.State})
			}
			out = append(out, info)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		return out[i].Domain < out[j].Domain || out[i].Domain == out[j].Domain && out[i].Vhost < out[j].Vhost
	})
	return out, nil
}

// autoAttach creates the devices of configured guests that exist and have
// none yet.
func (l *Listener) autoAttach() {
	if len(l.cfg.Guests) == 0 {
		return
	}
	doms, err := Domains(l.st)
	if err != nil {
		return
	}
	for _, dm := range doms {
		byVhost := map[int][]LUNSpec{}
		for _, g := range l.cfg.Guests {
			if g.Domain != dm.Name && g.Domain != strconv.Itoa(int(dm.ID)) {
				continue
			}
			for _, s := range g.LUNs {
				byVhost[int(s.Addr.Host)] = append(byVhost[int(s.Addr.Host)], s)
			}
		}
		for vhost, luns := range byVhost {
			if l.reattaching[devKey{dm.ID, vhost}] {
				continue
			}
			be := bePath(l.cfg.BackendDom, dm.ID, vhost)
			if _, err := l.st.Read(xenstore.None, be+"/frontend"); err == nil {
				continue
			}
			l.log.Info("attaching a configured guest", zap.String("name", dm.Name), zap.Uint16("domain", uint16(dm.ID)),
				zap.Int("vhost", vhost), zap.Int("luns", len(luns)))
			if err := createDevice(l.st, l.cfg.BackendDom, dm.ID, vhost, luns); err != nil {
				l.log.Warn("attaching failed", zap.String("name", dm.Name), zap.Error(err))
			}
		}
	}
}

// cleanupDomains removes the backend directories of domains that are
// gone (the toolstack's job on domain destruction).
//
// The backend directories are listed before the domains: a directory is
// written only after its domain exists, so one listed first belongs to a
// domain the later listing shows unless it is really gone. (Listing the
// domains first removed the devices of a guest created and attached
// between the two listings.) Each removal is checked once more against
// the domain's own node.
func (l *Listener) cleanupDomains() {
	ids, err := l.st.List(xenstore.None, l.root)
	if err != nil || len(ids) == 0 {
		return
	}
	doms, err := Domains(l.st)
	if err != nil {
		return
	}
	alive := map[DomID]bool{}
	for _, d := range doms {
		alive[d.ID] = true
	}
	for _, s := range ids {
		n, err := strconv.ParseUint(s, 10, 16)
		if err != nil || alive[DomID(n)] {
			continue
		}
		if _, err := l.st.Read(xenstore.None, "/local/domain/"+s); err == nil {
			continue // it exists after all
		}
		l.log.Info("domain gone: removing its vscsi devices", zap.Uint64("domain", n))
		l.st.Remove(xenstore.None, l.root+"/"+s)
		for k, d := range l.devs {
			if k.dom == DomID(n) {
				l.step(d)
			}
		}
	}
}
