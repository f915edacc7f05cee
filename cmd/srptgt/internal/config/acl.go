package config

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/srptgt/srptgt/scsi"
)

// ACL is the acl section: which initiators see which LUs, at which LUNs,
// read-write or read-only (LUN masking).
type ACL struct {
	// Enforce refuses initiators with no entry (their SRP login is
	// rejected). Without it they see every LU at its own LUN, as with no
	// acl section.
	Enforce    bool
	Initiators []ACLInitiator
}

// ACLInitiator is one initiator's entry. It names an SRP initiator port
// (PortID, as given or built from the ib_srp forms) or a Xen guest
// (XenDomain, every virtual SCSI host of it unless XenVHost is set).
type ACLInitiator struct {
	// Index is the entry's position in acl.initiators.
	Index int
	Name  string
	// PortID is set for SRP initiators.
	PortID    scsi.PortID
	PortIDSet bool
	// XenDomain is set for Xen guests: a domain name or UUID.
	XenDomain string
	XenVHost  int // -1: every vhost
	// AllLUs is `luns: all`: every LU at its own LUN, read-write unless
	// the LU is read-only (or ReadOnly is set).
	AllLUs   bool
	ReadOnly bool
	LUNs     []ACLLUN
}

// ACLLUN maps an LU to a LUN for an initiator.
type ACLLUN struct {
	LU       string
	LUN      uint16
	ReadOnly bool
}

// Field returns the path of one of the entry's fields.
func (a *ACLInitiator) Field(sub string) string {
	f := fmt.Sprintf("acl.initiators[%d]", a.Index)
	if sub != "" {
		f += "." + sub
	}
	return f
}

// Label names the entry in logs: its name, else its identity.
func (a *ACLInitiator) Label() string {
	switch {
	case a.Name != "":
		return a.Name
	case a.XenDomain != "" && a.XenVHost >= 0:
		return fmt.Sprintf("xen:%s/%d", a.XenDomain, a.XenVHost)
	case a.XenDomain != "":
		return "xen:" + a.XenDomain
	}
	return fmt.Sprintf("0x%x", a.PortID)
}

var (
	aclKeys      = []string{"enforce", "initiators"}
	aclEntryKeys = []string{"name", "port_id", "initiator_ext", "guid", "gid", "xen", "vhost", "read_only", "luns"}
	aclLUNKeys   = []string{"lu", "lun", "read_only"}
)

const (
	identityAllowed = "one of port_id; initiator_ext with guid or gid; or xen"
	extAllowed      = "the ib_srp initiator_ext: 1 to 16 hex digits, optionally prefixed by 0x (as ib_srp reads it: hex)"
	guidAllowed     = "a 64-bit port GUID: 16 hex digits, optionally grouped by colons (0002:c903:0011:2233) or prefixed by 0x"
	gidAllowed      = "a port GID as an IPv6 address (fe80::2:c903:11:2233, or as sysfs writes it, fe80:0000:...), or an IPv4 address for a RoCE v2 IPv4 GID"
	aclLUNsAllowed  = "all, or a list of {lu, lun, read_only}"
)

// parseACL parses the acl section; lus are the configured LUs.
func (p *parser) acl(n *yaml.Node, lus []LU) *ACL {
	a := &ACL{}
	f := p.fields(n, "acl", aclKeys)
	if b, ok := p.boolean(f["enforce"], "acl.enforce"); ok {
		a.Enforce = b
	}
	byName := make(map[string]LU, len(lus))
	for _, lu := range lus {
		if lu.Name != "" {
			byName[lu.Name] = lu
		}
	}
	items := p.list(f["initiators"], "acl.initiators", "initiator entries")
	ports := make(map[scsi.PortID]int)
	xens := make(map[string]int)
	for i, it := range items {
		e, ok := p.aclEntry(it, i, byName, lus)
		if !ok {
			continue
		}
		switch {
		case e.PortIDSet:
			if j, dup := ports[e.PortID]; dup {
				p.errf(it.Line, e.Field(""), "initiator port 0x%x is already acl.initiators[%d]; give each initiator one entry", e.PortID, j)
				continue
			}
			ports[e.PortID] = i
		case e.XenDomain != "":
			k := fmt.Sprintf("%s/%d", e.XenDomain, e.XenVHost)
			if j, dup := xens[k]; dup {
				p.errf(it.Line, e.Field(""), "Xen guest %s is already acl.initiators[%d]; give each guest (or vhost) one entry", e.Label(), j)
				continue
			}
			xens[k] = i
		}
		a.Initiators = append(a.Initiators, e)
	}
	return a
}

func (p *parser) aclEntry(n *yaml.Node, i int, byName map[string]LU, lus []LU) (ACLInitiator, bool) {
	e := ACLInitiator{Index: i, XenVHost: -1}
	field := e.Field("")
	line := p.line(field)
	if n.Kind != yaml.MappingNode {
		if isNull(n) {
			p.errf(line, field, "empty is not allowed (a mapping with keys %s)", strings.Join(aclEntryKeys, ", "))
		} else {
			p.errf(n.Line, field, "%s is not allowed (a mapping with keys %s)", describe(n), strings.Join(aclEntryKeys, ", "))
		}
		return e, false
	}
	f := p.fields(n, field, aclEntryKeys)
	given := func(k string) bool { return f[k] != nil && !isNull(f[k]) }
	ok := true
	bad := func(k, format string, args ...any) {
		p.errf(f[k].Line, e.Field(k), format, args...)
		ok = false
	}

	if s, good := p.text(f["name"], e.Field("name"), 64); good {
		e.Name = s
	}

	// Identity: exactly one form.
	forms := 0
	for _, k := range []string{"port_id", "guid", "gid", "xen"} {
		if given(k) {
			forms++
		}
	}
	if given("guid") && given("gid") {
		forms-- // reported below
	}
	switch {
	case forms == 0 && !given("initiator_ext"):
		p.errf(line, field, "no initiator given (%s)", identityAllowed)
		return e, false
	case forms > 1:
		p.errf(line, field, "more than one initiator given (%s)", identityAllowed)
		return e, false
	}
	if given("guid") && given("gid") {
		bad("gid", "not allowed with guid (the port is named by one of them)")
	}
	if given("initiator_ext") && !given("guid") && !given("gid") {
		bad("initiator_ext", "needs guid or gid (the initiator port ID is initiator_ext followed by the port GUID)")
	}
	if (given("port_id") || given("xen")) && given("initiator_ext") {
		bad("initiator_ext", "only with guid or gid")
	}
	if given("vhost") && !given("xen") {
		bad("vhost", "only with xen")
	}

	if s, good := p.scalar(f["port_id"], e.Field("port_id"), portIDAllowed); good {
		id, err := ParsePortID(s)
		if err != nil {
			bad("port_id", "%s is not allowed (%s)", describe(f["port_id"]), portIDAllowed)
		} else {
			e.PortID, e.PortIDSet = id, true
		}
	}
	var ext uint64
	if s, good := p.scalar(f["initiator_ext"], e.Field("initiator_ext"), extAllowed); good {
		v, err := ParseInitiatorExt(s)
		if err != nil {
			bad("initiator_ext", "%s is not allowed (%s)", describe(f["initiator_ext"]), extAllowed)
		} else {
			ext = v
		}
	}
	if s, good := p.scalar(f["guid"], e.Field("guid"), guidAllowed); good {
		g, err := ParseGUID(s)
		if err != nil {
			bad("guid", "%s is not allowed (%s)", describe(f["guid"]), guidAllowed)
		} else {
			e.PortID, e.PortIDSet = SRPInitiatorPortID(ext, g), true
		}
	}
	if s, good := p.scalar(f["gid"], e.Field("gid"), gidAllowed); good && !given("guid") {
		g, err := GUIDFromGID(s)
		if err != nil {
			bad("gid", "%s is not allowed (%s)", describe(f["gid"]), gidAllowed)
		} else {
			e.PortID, e.PortIDSet = SRPInitiatorPortID(ext, g), true
		}
	}
	if s, good := p.scalar(f["xen"], e.Field("xen"), domainAllowed); good {
		if !domainRE.MatchString(s) {
			bad("xen", "%s is not allowed (%s)", strconv.Quote(s), domainAllowed)
		} else {
			e.XenDomain = s
		}
	}
	if v, good := p.number(f["vhost"], e.Field("vhost"), 65535, "a virtual SCSI host number, 0 to 65535"); good {
		e.XenVHost = int(v)
	}
	if b, good := p.boolean(f["read_only"], e.Field("read_only")); good {
		e.ReadOnly = b
	}

	// LUNs.
	ln := f["luns"]
	switch {
	case ln == nil || isNull(ln):
		p.errf(line, e.Field("luns"), "required (%s)", aclLUNsAllowed)
		ok = false
	case ln.Kind == yaml.ScalarNode:
		if ln.Value != "all" {
			p.errf(ln.Line, e.Field("luns"), "%s is not allowed (%s)", describe(ln), aclLUNsAllowed)
			ok = false
		} else {
			e.AllLUs = true
		}
	default:
		luns := make(map[uint16]int)
		names := make(map[string]int)
		for j, it := range p.list(ln, e.Field("luns"), "{lu, lun, read_only}") {
			lf := fmt.Sprintf("%s.luns[%d]", field, j)
			m := p.fields(it, lf, aclLUNKeys)
			if it.Kind != yaml.MappingNode {
				if isNull(it) {
					p.errf(it.Line, lf, "empty is not allowed (a mapping with keys %s)", strings.Join(aclLUNKeys, ", "))
				}
				ok = false
				continue
			}
			var l ACLLUN
			name, good := p.scalar(m["lu"], lf+".lu", "the name of an LU of luns")
			if !good {
				if m["lu"] == nil || isNull(m["lu"]) {
					p.errf(it.Line, lf+".lu", "required (the name of an LU of luns: %s)", luNames(lus))
				}
				ok = false
				continue
			}
			lu, known := byName[name]
			if !known {
				p.errf(m["lu"].Line, lf+".lu", "%q is not allowed (the name of an LU of luns: %s)", name, luNames(lus))
				ok = false
				continue
			}
			l.LU, l.LUN, l.ReadOnly = name, lu.LUN, e.ReadOnly
			if v, good := p.number(m["lun"], lf+".lun", maxLUN, fmt.Sprintf("0 to %d", maxLUN)); good {
				l.LUN = uint16(v)
			} else if m["lun"] != nil && !isNull(m["lun"]) {
				ok = false
				continue
			}
			if b, good := p.boolean(m["read_only"], lf+".read_only"); good {
				l.ReadOnly = b
			}
			at := it.Line
			if m["lun"] != nil {
				at = m["lun"].Line
			}
			if k, dup := luns[l.LUN]; dup {
				p.errf(at, lf+".lun", "LUN %d is already %s.luns[%d]; one LU per LUN", l.LUN, field, k)
				ok = false
				continue
			}
			if k, dup := names[l.LU]; dup {
				p.errf(m["lu"].Line, lf+".lu", "LU %s is already %s.luns[%d]; an initiator sees an LU at one LUN", l.LU, field, k)
				ok = false
				continue
			}
			luns[l.LUN], names[l.LU] = j, j
			e.LUNs = append(e.LUNs, l)
		}
	}
	return e, ok
}

// ParseInitiatorExt parses ib_srp's initiator_ext: hexadecimal, as the
// kernel reads it, 1 to 16 digits, optionally prefixed by 0x.
func ParseInitiatorExt(s string) (uint64, error) {
	h := strings.TrimPrefix(strings.ToLower(strings.TrimSpace(s)), "0x")
	if len(h) == 0 || len(h) > 16 {
		return 0, fmt.Errorf("%q is not 1 to 16 hex digits", s)
	}
	return strconv.ParseUint(h, 16, 64)
}

// ParseGUID parses a 64-bit GUID: 16 hex digits, optionally in colon
// separated groups (as ibstat and sysfs node_guid write it) or prefixed by
// 0x.
func ParseGUID(s string) (uint64, error) {
	h := strings.TrimPrefix(strings.ToLower(strings.TrimSpace(s)), "0x")
	h = strings.ReplaceAll(h, ":", "")
	if len(h) != 16 {
		return 0, fmt.Errorf("%q is not 16 hex digits", s)
	}
	return strconv.ParseUint(h, 16, 64)
}

// GUIDFromGID returns the interface identifier (the low 64 bits) of a
// port GID written as an IPv6 address, or, for an IPv4 address, of the
// RoCE v2 GID ::ffff:a.b.c.d.
func GUIDFromGID(s string) (uint64, error) {
	a, err := netip.ParseAddr(strings.TrimSpace(s))
	if err != nil || a.Zone() != "" {
		return 0, fmt.Errorf("%q is not an IPv6 or IPv4 address", s)
	}
	b := a.As16() // an IPv4 address becomes ::ffff:a.b.c.d
	var g uint64
	for _, x := range b[8:] {
		g = g<<8 | uint64(x)
	}
	return g, nil
}

// SRPInitiatorPortID is the initiator port identifier Linux ib_srp sends
// in SRP_LOGIN_REQ (SRP r16a 5.3): the 8-byte initiator_ext, then the
// port's 8-byte GUID (the interface identifier of GID index 0).
func SRPInitiatorPortID(ext, guid uint64) scsi.PortID {
	var id scsi.PortID
	for i := 0; i < 8; i++ {
		id[i] = byte(ext >> (56 - 8*i))
		id[8+i] = byte(guid >> (56 - 8*i))
	}
	return id
}
