package main

// The acl section as the target's access function (scsi.AccessFunc):
// which initiators may log in and which LUs each sees, at which LUNs,
// read-write or read-only.

import (
	"sync"

	"github.com/srptgt/srptgt/cmd/srptgt/internal/config"
	"github.com/srptgt/srptgt/scsi"
	"github.com/srptgt/srptgt/transport/xen"
	"github.com/srptgt/srptgt/transport/xen/xenstore"
)

// aclAccess decides what a nexus sees from the acl section. It is called
// with the target's lock held: it reads only its own state.
type aclAccess struct {
	mu  sync.RWMutex
	acl *config.ACL // nil: no acl section, every initiator sees every LU
	lus map[string]*scsi.LU
	// all is every LU at its own LUN, in LUN order.
	all []*scsi.LU
	// xenDomains maps the first 14 bytes of a Xen guest's initiator port
	// ID (transport/xen: from the domain's UUID) to the domain's name and
	// UUID, as XenStore says; refreshed when a guest's ring attaches.
	xenDomains map[[14]byte][2]string
}

func newACLAccess(acl *config.ACL) *aclAccess {
	return &aclAccess{acl: acl, lus: map[string]*scsi.LU{}, xenDomains: map[[14]byte][2]string{}}
}

// addLU makes an LU known before the target adds it.
func (a *aclAccess) addLU(lu *scsi.LU) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.lus[lu.Name()] = lu
	i := len(a.all)
	a.all = append(a.all, lu)
	for ; i > 0 && a.all[i].LUN() < a.all[i-1].LUN(); i-- {
		a.all[i], a.all[i-1] = a.all[i-1], a.all[i]
	}
}

// update installs a new acl section (nil: none).
func (a *aclAccess) update(acl *config.ACL) {
	a.mu.Lock()
	a.acl = acl
	a.mu.Unlock()
}

// entry returns the acl entry of an initiator port, or nil.
func (a *aclAccess) entry(ini scsi.PortID) *config.ACLInitiator {
	if a.acl == nil {
		return nil
	}
	var prefix [14]byte
	copy(prefix[:], ini[:14])
	vhost := int(ini[14])<<8 | int(ini[15])
	dom, known := a.xenDomains[prefix]
	for i := range a.acl.Initiators {
		e := &a.acl.Initiators[i]
		switch {
		case e.PortIDSet:
			if e.PortID == ini {
				return e
			}
		case e.XenDomain != "":
			if e.XenVHost >= 0 && e.XenVHost != vhost {
				continue
			}
			u := xen.DomainUUID(e.XenDomain)
			if [14]byte(u[:14]) == prefix || known && (dom[0] == e.XenDomain || dom[1] == e.XenDomain) {
				return e
			}
		}
	}
	return nil
}

// access is the scsi.AccessFunc of every target port but the Xen vscsiif
// one.
func (a *aclAccess) access(id scsi.NexusID, _ *scsi.Port) ([]scsi.Mapping, error) {
	a.mu.RLock()
	defer a.mu.RUnlock()
	e := a.entry(id.Initiator)
	if e == nil {
		if a.acl != nil && a.acl.Enforce {
			return nil, scsi.ErrAccessDenied
		}
		return a.allMappings(false), nil
	}
	if e.AllLUs {
		return a.allMappings(e.ReadOnly), nil
	}
	var out []scsi.Mapping
	for _, l := range e.LUNs {
		if lu := a.lus[l.LU]; lu != nil {
			out = append(out, scsi.Mapping{LUN: l.LUN, LU: lu, ReadOnly: l.ReadOnly})
		}
	}
	return out, nil
}

func (a *aclAccess) allMappings(ro bool) []scsi.Mapping {
	out := make([]scsi.Mapping, 0, len(a.all))
	for _, lu := range a.all {
		out = append(out, scsi.Mapping{LUN: lu.LUN(), LU: lu, ReadOnly: ro})
	}
	return out
}

// filterXen applies the acl to what a Xen guest's vscsiif ring was given
// (its xen.guests entries): the LUN numbers stay the guest's; the entry
// selects the LUs and makes them read-only.
func (a *aclAccess) filterXen(id scsi.NexusID, ms []scsi.Mapping) ([]scsi.Mapping, error) {
	a.mu.RLock()
	defer a.mu.RUnlock()
	e := a.entry(id.Initiator)
	if e == nil {
		if a.acl != nil && a.acl.Enforce {
			return nil, scsi.ErrAccessDenied
		}
		return ms, nil
	}
	var out []scsi.Mapping
	for _, m := range ms {
		if e.AllLUs {
			m.ReadOnly = m.ReadOnly || e.ReadOnly
			out = append(out, m)
			continue
		}
		for _, l := range e.LUNs {
			if l.LU == m.LU.Name() {
				m.ReadOnly = m.ReadOnly || l.ReadOnly
				out = append(out, m)
				break
			}
		}
	}
	return out, nil
}

// denied reports whether the acl refuses an initiator port altogether.
func (a *aclAccess) denied(ini scsi.PortID) bool {
	a.mu.RLock()
	defer a.mu.RUnlock()
	return a.acl != nil && a.acl.Enforce && a.entry(ini) == nil
}

// label names an initiator's entry for logs ("" if none).
func (a *aclAccess) label(ini scsi.PortID) string {
	a.mu.RLock()
	defer a.mu.RUnlock()
	if e := a.entry(ini); e != nil {
		return e.Label()
	}
	return ""
}

// learnXenDomains reads every domain's name and UUID from XenStore, so
// that entries naming a guest match its rings. It runs outside the
// target's lock (on the Xen backend's goroutine).
func (a *aclAccess) learnXenDomains(st xen.Store) {
	doms, err := st.List(xenstore.None, "/local/domain")
	if err != nil {
		return
	}
	m := make(map[[14]byte][2]string, len(doms))
	for _, d := range doms {
		base := "/local/domain/" + d
		name, _ := st.Read(xenstore.None, base+"/name")
		src, uuid := name, ""
		// As transport/xen derives the initiator port ID: from the UUID
		// of the domain's /vm node, else its name, else its ID.
		if vm, err := st.Read(xenstore.None, base+"/vm"); err == nil && vm != "" {
			uuid = vm[lastSlash(vm)+1:]
			src = uuid
		} else if name == "" {
			src = d
		}
		u := xen.DomainUUID(src)
		m[[14]byte(u[:14])] = [2]string{name, uuid}
	}
	a.mu.Lock()
	a.xenDomains = m
	a.mu.Unlock()
}

func lastSlash(s string) int {
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == '/' {
			return i
		}
	}
	return -1
}
