package config

import (
	"reflect"
	"strings"
	"testing"

	"github.com/srptgt/srptgt/scsi"
)

const aclLUs = "luns:\n  - name: a\n    backstore: {kind: memory, size: 1MiB}\n  - name: b\n    lun: 3\n    backstore: {kind: memory, size: 1MiB}\n"

func TestParseACL(t *testing.T) {
	cfg, err := Parse("config.yaml", []byte(aclLUs+lines(
		"acl:",
		"  enforce: true",
		"  initiators:",
		"    - {name: pid, port_id: \"0x00000000000000010200000000000001\", luns: all}",
		"    - {initiator_ext: \"0000000000000002\", guid: \"0200:00ff:fe00:0001\", luns: [{lu: a}, {lu: b, lun: 7, read_only: true}]}",
		"    - {initiator_ext: 0x3, gid: \"fe80:0000:0000:0000:0200:00ff:fe00:0001\", read_only: true, luns: [{lu: b, read_only: false}, {lu: a}]}",
		"    - {gid: 169.254.10.1, luns: []}",
		"    - {xen: guest1, luns: all}",
		"    - {xen: guest1, vhost: 1, luns: [{lu: a, lun: 0}]}",
	)))
	if err != nil {
		t.Fatal(err)
	}
	a := cfg.ACL
	if a == nil || !a.Enforce || len(a.Initiators) != 6 {
		t.Fatalf("acl %+v", a)
	}
	pid := func(s string) scsi.PortID {
		id, err := ParsePortID(s)
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	want := []ACLInitiator{
		{Index: 0, Name: "pid", PortID: pid("00000000000000010200000000000001"), PortIDSet: true, XenVHost: -1, AllLUs: true},
		{Index: 1, PortID: pid("0000000000000002020000fffe000001"), PortIDSet: true, XenVHost: -1,
			LUNs: []ACLLUN{{LU: "a", LUN: 0}, {LU: "b", LUN: 7, ReadOnly: true}}},
		{Index: 2, PortID: pid("0000000000000003020000fffe000001"), PortIDSet: true, XenVHost: -1, ReadOnly: true,
			LUNs: []ACLLUN{{LU: "b", LUN: 3}, {LU: "a", LUN: 0, ReadOnly: true}}},
		// RoCE v2 IPv4 GID ::ffff:169.254.10.1, initiator_ext 0.
		{Index: 3, PortID: pid("000000000000000000000000ffffa9fe0a01"[4:]), PortIDSet: true, XenVHost: -1},
		{Index: 4, XenDomain: "guest1", XenVHost: -1, AllLUs: true},
		{Index: 5, XenDomain: "guest1", XenVHost: 1, LUNs: []ACLLUN{{LU: "a", LUN: 0}}},
	}
	if !reflect.DeepEqual(a.Initiators, want) {
		t.Fatalf("initiators\n%+v\nwant\n%+v", a.Initiators, want)
	}
	if l := a.Initiators[4].Label(); l != "xen:guest1" {
		t.Errorf("label %q", l)
	}
}

func TestParseACLErrors(t *testing.T) {
	tests := []struct {
		name string
		acl  []string
		want []string
	}{{
		name: "no identity, two identities",
		acl: []string{
			"acl:",
			"  initiators:",
			"    - {luns: all}",
			"    - {port_id: \"00000000000000010200000000000001\", xen: g, luns: all}",
		},
		want: []string{
			"config.yaml:9: acl.initiators[0]: no initiator given (one of port_id; initiator_ext with guid or gid; or xen)",
			"config.yaml:10: acl.initiators[1]: more than one initiator given (one of port_id; initiator_ext with guid or gid; or xen)",
		},
	}, {
		name: "bad values",
		acl: []string{
			"acl:",
			"  enforce: yes",
			"  initiators:",
			"    - {port_id: 12, luns: all}",
			"    - {initiator_ext: xyz, guid: \"0200:00ff:fe00:0001\", luns: all}",
			"    - {guid: \"0200:00ff\", luns: all}",
			"    - {gid: \"fe80::1%ib0\", luns: all}",
			"    - {xen: \"bad domain\", luns: all}",
			"    - {initiator_ext: 1, luns: all}",
			"    - {port_id: \"00000000000000010200000000000001\", vhost: 1, luns: all}",
		},
		want: []string{
			"config.yaml:8: acl.enforce: \"yes\" is not allowed (true or false)",
			"config.yaml:10: acl.initiators[0].port_id: 12 is not allowed (32 hex digits, optionally prefixed by 0x)",
			"config.yaml:11: acl.initiators[1].initiator_ext: \"xyz\" is not allowed (the ib_srp initiator_ext: 1 to 16 hex digits, optionally prefixed by 0x (as ib_srp reads it: hex))",
			"config.yaml:12: acl.initiators[2].guid: \"0200:00ff\" is not allowed (a 64-bit port GUID: 16 hex digits, optionally grouped by colons (0002:c903:0011:2233) or prefixed by 0x)",
			"config.yaml:13: acl.initiators[3].gid: \"fe80::1%ib0\" is not allowed (a port GID as an IPv6 address (fe80::2:c903:11:2233, or as sysfs writes it, fe80:0000:...), or an IPv4 address for a RoCE v2 IPv4 GID)",
			"config.yaml:14: acl.initiators[4].xen: \"bad domain\" is not allowed (a domain name or id: 1 to 64 of A-Z a-z 0-9 . _ : + -)",
			"config.yaml:15: acl.initiators[5].initiator_ext: needs guid or gid (the initiator port ID is initiator_ext followed by the port GUID)",
			"config.yaml:16: acl.initiators[6].vhost: only with xen",
		},
	}, {
		name: "luns",
		acl: []string{
			"acl:",
			"  initiators:",
			"    - {port_id: \"00000000000000010200000000000001\"}",
			"    - {port_id: \"00000000000000020200000000000001\", luns: some}",
			"    - port_id: \"00000000000000030200000000000001\"",
			"      luns:",
			"        - {lu: c}",
			"        - {lun: 2}",
			"        - {lu: a, lun: 3}",
			"        - {lu: b}",
			"        - {lu: a, lun: 4}",
			"        - {lu: b, lun: 16384}",
		},
		want: []string{
			"config.yaml:9: acl.initiators[0].luns: required (all, or a list of {lu, lun, read_only})",
			"config.yaml:10: acl.initiators[1].luns: \"some\" is not allowed (all, or a list of {lu, lun, read_only})",
			"config.yaml:13: acl.initiators[2].luns[0].lu: \"c\" is not allowed (the name of an LU of luns: a, b)",
			"config.yaml:14: acl.initiators[2].luns[1].lu: required (the name of an LU of luns: a, b)",
			"config.yaml:16: acl.initiators[2].luns[3].lun: LUN 3 is already acl.initiators[2].luns[2]; one LU per LUN",
			"config.yaml:17: acl.initiators[2].luns[4].lu: LU a is already acl.initiators[2].luns[2]; an initiator sees an LU at one LUN",
			"config.yaml:18: acl.initiators[2].luns[5].lun: 16384 is not allowed (0 to 16383)",
		},
	}, {
		name: "duplicate initiators",
		acl: []string{
			"acl:",
			"  initiators:",
			"    - {port_id: \"0000000000000001020000fffe000001\", luns: all}",
			"    - {initiator_ext: 1, guid: \"0x0200_00ff_fe00_0001\", luns: all}",
			"    - {initiator_ext: 1, gid: \"fe80::200:ff:fe00:1\", luns: all}",
			"    - {xen: g, luns: all}",
			"    - {xen: g, luns: all}",
			"    - {xen: g, vhost: 0, luns: all}",
		},
		want: []string{
			"config.yaml:10: acl.initiators[1].guid: \"0x0200_00ff_fe00_0001\" is not allowed (a 64-bit port GUID: 16 hex digits, optionally grouped by colons (0002:c903:0011:2233) or prefixed by 0x)",
			"config.yaml:11: acl.initiators[2]: initiator port 0x0000000000000001020000fffe000001 is already acl.initiators[0]; give each initiator one entry",
			"config.yaml:13: acl.initiators[4]: Xen guest xen:g is already acl.initiators[3]; give each guest (or vhost) one entry",
		},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("config.yaml", []byte(aclLUs+lines(tc.acl...)))
			if err == nil {
				t.Fatal("no error")
			}
			if got, want := err.Error(), strings.Join(tc.want, "\n"); got != want {
				t.Fatalf("errors:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}

func TestSRPInitiatorPortIDForms(t *testing.T) {
	g1, err := ParseGUID("0002:c903:0011:2233")
	if err != nil {
		t.Fatal(err)
	}
	g2, err := GUIDFromGID("fe80::2:c903:11:2233")
	if err != nil || g1 != g2 {
		t.Fatalf("GUID %x, from GID %x %v", g1, g2, err)
	}
	ext, err := ParseInitiatorExt("1")
	if err != nil {
		t.Fatal(err)
	}
	id := SRPInitiatorPortID(ext, g1)
	if want, _ := ParsePortID("00000000000000010002c90300112233"); id != want {
		t.Fatalf("port ID %x", id)
	}
}
