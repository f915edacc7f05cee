package config

import (
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/srptgt/srptgt/backstore"
	"github.com/srptgt/srptgt/scsi"
)

// lines joins configuration lines, so that tests can count them.
func lines(l ...string) string { return strings.Join(l, "\n") + "\n" }

func wwn(s string) [16]byte {
	w, err := ParseWWN(s)
	if err != nil {
		panic(err)
	}
	return w
}

func defaults() *Config {
	return &Config{
		File:    "config.yaml",
		Target:  Target{Vendor: DefaultVendor, OUI: scsi.DefaultOUI},
		Logging: Logging{Level: "info", Format: "console"},
	}
}

// memLU is an LU as the defaults make it.
func memLU(i int, name string, size int64) LU {
	return LU{
		Index: i, Name: name, LUN: uint16(i), Type: TypeDisk,
		Backstore: backstore.Spec{Kind: "memory", Size: size},
		Serial:    name, WWN: GenerateWWN(scsi.DefaultOUI, name, name), Vendor: DefaultVendor,
	}
}

func TestParseGood(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want func() *Config
	}{{
		name: "minimal",
		yaml: lines(
			"luns:",
			"  - name: disk0",
			"    backstore: {kind: memory, size: 64MiB}",
		),
		want: func() *Config {
			c := defaults()
			c.LUs = []LU{memLU(0, "disk0", 64<<20)}
			return c
		},
	}, {
		name: "everything",
		yaml: lines(
			"# a comment",
			"target:",
			"  vendor: ACME",
			"  oui: 0x00A0B8",
			"  state_dir: /var/lib/srptgt",
			"logging:",
			"  level: debug",
			"  format: json",
			"luns:",
			"  - name: disk0",
			"    backstore: {kind: memory, size: 1G, max_allocated: 512M}",
			"  - name: big.file_1",
			"    lun: 7",
			"    type: disk",
			"    read_only: true",
			"    serial: \"0001\"",
			"    wwn: naa.6001405ABBCCDDEEFF00112233445566",
			"    vendor: OTHER",
			"    product: FAST DISK",
			"    revision: \"2.0\"",
			"    backstore:",
			"      kind: file",
			"      path: /srv/disk1.img",
			"      block_size: 4096",
			"      direct: true",
			"  - name: zero",
			"    backstore: {kind: 'null', size: 1TiB, pattern: 0xdeadbeef}",
			"  - name: dev",
			"    lun: 0x10",
			"    backstore: {kind: block, path: /dev/sdb, size: 1536, create: false}",
			"rdma:",
			"  listen: [\"169.254.10.1:5000\", \"[fe80::1%ib0]:5001\"]",
			"  port_id: \"0x0000000000000000000000fffe000001\"",
			"xen:",
			"  guests:",
			"    - {domain: guest1, luns: [\"disk0, 0:0:0:0\", \"big.file_1, 0:0:0:1\"]}",
			"    - domain: \"7\"",
			"      luns: [\"disk0,1:0:0:0\"]",
		),
		want: func() *Config {
			c := defaults()
			c.Target = Target{Vendor: "ACME", OUI: 0x00A0B8, StateDir: "/var/lib/srptgt"}
			c.Logging = Logging{Level: "debug", Format: "json"}
			c.LUs = []LU{{
				Index: 0, Name: "disk0", LUN: 0, Type: TypeDisk,
				Backstore: backstore.Spec{Kind: "memory", Size: 1 << 30, MaxAllocated: 512 << 20},
				Serial:    "disk0", WWN: GenerateWWN(0x00A0B8, "disk0", "disk0"), Vendor: "ACME",
			}, {
				Index: 1, Name: "big.file_1", LUN: 7, Type: TypeDisk, ReadOnly: true,
				Backstore: backstore.Spec{Kind: "file", Path: "/srv/disk1.img", BlockSize: 4096, Direct: true, ReadOnly: true},
				Serial:    "0001", WWN: wwn("6001405abbccddeeff00112233445566"), WWNSet: true,
				Vendor: "OTHER", Product: "FAST DISK", Revision: "2.0",
			}, {
				Index: 2, Name: "zero", LUN: 2, Type: TypeDisk,
				Backstore: backstore.Spec{Kind: "null", Size: 1 << 40, NullPattern: "0xdeadbeef"},
				Serial:    "zero", WWN: GenerateWWN(0x00A0B8, "zero", "zero"), Vendor: "ACME",
			}, {
				Index: 3, Name: "dev", LUN: 16, Type: TypeDisk,
				Backstore: backstore.Spec{Kind: "block", Path: "/dev/sdb", Size: 1536},
				Serial:    "dev", WWN: GenerateWWN(0x00A0B8, "dev", "dev"), Vendor: "ACME",
			}}
			c.RDMA = &RDMA{
				Listen:    []netip.AddrPort{netip.MustParseAddrPort("169.254.10.1:5000"), netip.MustParseAddrPort("[fe80::1%ib0]:5001")},
				PortID:    scsi.PortID{11: 0xff, 12: 0xfe, 15: 0x01},
				PortIDSet: true,
			}
			c.Xen = &Xen{Guests: []XenGuest{
				{Domain: "guest1", LUNs: []XenLUN{{LU: "disk0"}, {LU: "big.file_1", LUN: 1}}},
				{Domain: "7", LUNs: []XenLUN{{LU: "disk0", Host: 1}}},
			}}
			return c
		},
	}, {
		name: "kind null unquoted is the null store",
		yaml: lines(
			"luns:",
			"  - name: n",
			"    backstore: {kind: null, size: 4096}",
		),
		want: func() *Config {
			c := defaults()
			lu := memLU(0, "n", 4096)
			lu.Backstore.Kind = "null"
			c.LUs = []LU{lu}
			return c
		},
	}, {
		name: "file with create, default LUNs after an explicit one",
		yaml: lines(
			"luns:",
			"  - {name: a, lun: 5, backstore: {kind: memory, size: 512}}",
			"  - name: b",
			"    backstore: {kind: file, path: b.img, size: 64 MiB, create: \"true\", direct: False}",
			"    read_only: false",
		),
		want: func() *Config {
			c := defaults()
			a := memLU(0, "a", 512)
			a.LUN = 5
			b := memLU(1, "b", 0)
			b.Backstore = backstore.Spec{Kind: "file", Path: "b.img", Size: 64 << 20, Create: true}
			c.LUs = []LU{a, b}
			return c
		},
	}, {
		name: "anchors and aliases",
		yaml: lines(
			"luns:",
			"  - name: a",
			"    backstore: &mem {kind: memory, size: 1M}",
			"  - name: b",
			"    backstore: *mem",
		),
		want: func() *Config {
			c := defaults()
			c.LUs = []LU{memLU(0, "a", 1<<20), memLU(1, "b", 1<<20)}
			return c
		},
	}, {
		name: "the VM harness's xen config",
		yaml: lines(
			"luns:",
			"  - name: disk0",
			"    backstore: {kind: memory, size: 64MiB}",
			"  - name: disk1",
			"    backstore: {kind: file, path: /srv/disk1.img, size: 64MiB}",
			"xen:",
			"  guests:",
			"    - {domain: guest1, luns: [\"disk0, 0:0:0:0\", \"disk1, 0:0:0:1\"]}",
			"    - {domain: guest1, luns: [\"disk0, 1:0:0:0\", \"disk1, 1:0:0:1\"]}",
		),
		want: func() *Config {
			c := defaults()
			d1 := memLU(1, "disk1", 0)
			d1.Backstore = backstore.Spec{Kind: "file", Path: "/srv/disk1.img", Size: 64 << 20}
			c.LUs = []LU{memLU(0, "disk0", 64<<20), d1}
			c.Xen = &Xen{Guests: []XenGuest{
				{Domain: "guest1", LUNs: []XenLUN{{LU: "disk0"}, {LU: "disk1", LUN: 1}}},
				{Domain: "guest1", LUNs: []XenLUN{{LU: "disk0", Host: 1}, {LU: "disk1", Host: 1, LUN: 1}}},
			}}
			return c
		},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Parse("config.yaml", []byte(tc.yaml))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			got.lines = nil
			if want := tc.want(); !reflect.DeepEqual(got, want) {
				t.Errorf("Parse:\n got %+v\nwant %+v", got, want)
				if !reflect.DeepEqual(got.RDMA, want.RDMA) {
					t.Errorf("rdma:\n got %+v\nwant %+v", got.RDMA, want.RDMA)
				}
				if !reflect.DeepEqual(got.Xen, want.Xen) {
					t.Errorf("xen:\n got %+v\nwant %+v", got.Xen, want.Xen)
				}
				for i := range min(len(got.LUs), len(want.LUs)) {
					if !reflect.DeepEqual(got.LUs[i], want.LUs[i]) {
						t.Errorf("LU %d:\n got %+v\nwant %+v", i, got.LUs[i], want.LUs[i])
					}
				}
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	const size = "a whole number of bytes, optionally with a binary unit K, M, G, T, KiB, MiB, GiB or TiB, as 512, 64MiB or 1GiB"
	const name = "1 to 64 of A-Z a-z 0-9 . _ -, but not . or .."
	tests := []struct {
		name string
		yaml string
		want []string
	}{{
		name: "empty file",
		yaml: "",
		want: []string{"config.yaml:1: luns: required (a list of at least one LU)"},
	}, {
		name: "comments only",
		yaml: lines("# nothing", "# here"),
		want: []string{"config.yaml:1: luns: required (a list of at least one LU)"},
	}, {
		name: "empty luns",
		yaml: lines("logging: {level: info}", "luns: []"),
		want: []string{"config.yaml:2: luns: required (a list of at least one LU)"},
	}, {
		name: "not a mapping",
		yaml: lines("- a", "- b"),
		want: []string{
			"config.yaml:1: a list is not allowed (a mapping with keys target, logging, luns, rdma, xen, acl)",
			"config.yaml:1: luns: required (a list of at least one LU)",
		},
	}, {
		name: "luns not a list",
		yaml: lines("luns:", "  name: disk0"),
		want: []string{"config.yaml:2: luns: a mapping is not allowed (a list of LUs)"},
	}, {
		name: "unknown keys everywhere, duplicate key",
		yaml: lines(
			"targt: {}",
			"logging: {level: info, colour: true}",
			"luns:",
			"  - name: a",
			"    name: b",
			"    sise: 1G",
			"    backstore: {kind: memory, size: 1M, compress: true}",
			"<<: {x: 1}",
		),
		want: []string{
			"config.yaml:1: targt: unknown key (allowed: target, logging, luns, rdma, xen, acl)",
			"config.yaml:2: logging.colour: unknown key (allowed: level, format)",
			"config.yaml:5: luns[0].name: given twice (first at line 4)",
			"config.yaml:6: luns[0].sise: unknown key (allowed: name, lun, type, backstore, read_only, serial, wwn, vendor, product, revision)",
			"config.yaml:7: luns[0].backstore.compress: unknown key (allowed: kind, path, size, block_size, create, direct, pattern, max_allocated)",
			"config.yaml:8: merge keys (<<) are not supported (write the keys out: target, logging, luns, rdma, xen, acl)",
		},
	}, {
		name: "the brief's block size example",
		yaml: lines(
			"luns:",
			"  - name: disk0",
			"    backstore: {kind: memory, size: 1M}",
			"  - name: disk1",
			"    backstore:",
			"      kind: file",
			"      path: /srv/disk1.img",
			"      size: 1GiB",
			"      block_size: 1000",
		),
		want: []string{"config.yaml:9: luns[1].backstore.block_size: 1000 is not allowed (512 or 4096)"},
	}, {
		name: "target and logging values",
		yaml: lines(
			"target:",
			"  vendor: TOOLONGVENDOR",
			"  oui: 0x1000000",
			"  state_dir: \"\"",
			"logging:",
			"  level: loud",
			"  format: [json]",
			"luns: [{name: a, backstore: {kind: memory, size: 1M}}]",
		),
		want: []string{
			`config.yaml:2: target.vendor: "TOOLONGVENDOR" is not allowed (1 to 8 printable ASCII characters)`,
			"config.yaml:3: target.oui: 0x1000000 is not allowed (a 24-bit IEEE company id, 0x000000 to 0xFFFFFF)",
			`config.yaml:4: target.state_dir: "" is not allowed (a directory path)`,
			`config.yaml:6: logging.level: "loud" is not allowed (debug, info, warn or error)`,
			"config.yaml:7: logging.format: a list is not allowed (console or json)",
		},
	}, {
		name: "duplicates, missing fields, defaults colliding",
		yaml: lines(
			"luns:",
			"  - name: a",
			"    lun: 1",
			"    backstore: {kind: memory, size: 1M}",
			"  - name: b",
			"    backstore: {kind: memory, size: 1M}",
			"  - name: a",
			"    lun: 2",
			"    backstore: {kind: memory, size: 1M}",
			"  - lun: 3",
			"  - name: w",
			"    wwn: 0x6001405abbccddeeff00112233445566",
			"    backstore: {kind: memory, size: 1M}",
			"  - name: v",
			"    wwn: 6001405ABBCCDDEEFF00112233445566",
			"    backstore: {kind: memory, size: 1M}",
		),
		want: []string{
			"config.yaml:5: luns[1].lun: 1 (the default: the LU's position in the list) is already the LUN of luns[0] (line 2); LUNs must be unique, set lun to a free one",
			`config.yaml:7: luns[2].name: "a" is already the name of luns[0] (line 2); names must be unique`,
			"config.yaml:10: luns[3].name: required (" + name + ")",
			"config.yaml:10: luns[3].backstore: required (a mapping with kind null, memory, file or block and its settings)",
			"config.yaml:15: luns[5].wwn: naa.6001405abbccddeeff00112233445566 is already the WWN of luns[4] (line 11); WWNs must be unique",
		},
	}, {
		name: "LU values",
		yaml: lines(
			"luns:",
			"  - name: bad name",
			"    lun: 16384",
			"    type: tape",
			"    read_only: yes",
			"    serial: \"\"",
			"    wwn: naa.5001405aabbccddeeff00112233445566",
			"    vendor: ÄÖÜ",
			"    product: THIS PRODUCT ID IS LONG",
			"    revision: 12345",
			"    backstore: {kind: memory, size: 1M}",
			"  - name: ..",
			"    lun: -1",
			"    type: robot",
			"    wwn: naa.6001",
			"    backstore: {kind: memory, size: 1M}",
			"  -",
			"  - just a string",
		),
		want: []string{
			`config.yaml:2: luns[0].name: "bad name" is not allowed (` + name + `)`,
			"config.yaml:3: luns[0].lun: 16384 is not allowed (0 to 16383)",
			"config.yaml:4: luns[0].type: tape is not supported yet (only disk)",
			`config.yaml:5: luns[0].read_only: "yes" is not allowed (true or false)`,
			`config.yaml:6: luns[0].serial: "" is not allowed (1 to 64 printable ASCII characters)`,
			`config.yaml:7: luns[0].wwn: "naa.5001405aabbccddeeff00112233445566" is not allowed (32 hex digits of an NAA 6 designator: naa.6…, 0x6… or 6…)`,
			`config.yaml:8: luns[0].vendor: "ÄÖÜ" is not allowed (1 to 8 printable ASCII characters)`,
			`config.yaml:9: luns[0].product: "THIS PRODUCT ID IS LONG" is not allowed (1 to 16 printable ASCII characters)`,
			`config.yaml:10: luns[0].revision: "12345" is not allowed (1 to 4 printable ASCII characters)`,
			`config.yaml:12: luns[1].name: ".." is not allowed (` + name + `)`,
			"config.yaml:13: luns[1].lun: -1 is not allowed (0 to 16383)",
			`config.yaml:14: luns[1].type: "robot" is not allowed (disk)`,
			`config.yaml:15: luns[1].wwn: "naa.6001" is not allowed (32 hex digits of an NAA 6 designator: naa.6…, 0x6… or 6…)`,
			"config.yaml:17: luns[2]: empty is not allowed (a mapping with keys name, lun, type, backstore, read_only, serial, wwn, vendor, product, revision)",
			`config.yaml:18: luns[3]: "just a string" is not allowed (a mapping with keys name, lun, type, backstore, read_only, serial, wwn, vendor, product, revision)`,
		},
	}, {
		name: "backstore rules",
		yaml: lines(
			"luns:",
			"  - name: m",
			"    backstore: {kind: memory}",
			"  - name: f",
			"    backstore: {kind: file, size: 1000}",
			"  - name: b",
			"    backstore: {kind: block, size: 1000}",
			"  - name: b2",
			"    backstore: {kind: block, path: /dev/x, size: 6K, block_size: 4096}",
			"  - name: n",
			"    backstore: {kind: 'null', size: 1M, path: /x, create: true, direct: true, max_allocated: 1G, pattern: zeros}",
			"  - name: x",
			"    backstore: {kind: nfs, size: 12XB, pattern: 0xabc}",
			"  - name: y",
			"    backstore: {size: 0, block_size: four}",
			"  - name: ro",
			"    read_only: true",
			"    backstore: {kind: file, path: ro.img, size: 1M, create: true}",
			"  - name: nosize",
			"    backstore: {kind: file, path: f.img, create: true, max_allocated: 1M}",
			"  - name: mem",
			"    backstore: {kind: memory, size: 1M, pattern: 0x00, direct: false, create: false}",
		),
		want: []string{
			"config.yaml:3: luns[0].backstore.size: required for kind memory (" + size + ")",
			"config.yaml:5: luns[1].backstore.path: required for kind file (the file's path)",
			"config.yaml:5: luns[1].backstore.size: 1000 (1000 bytes) is not allowed (a multiple of the block size 512)",
			"config.yaml:7: luns[2].backstore.path: required for kind block (the device's path)",
			"config.yaml:9: luns[3].backstore.size: 6K (6144 bytes) is not allowed (a multiple of the block size 4096)",
			"config.yaml:11: luns[4].backstore.path: not allowed for kind null (only for file and block)",
			"config.yaml:11: luns[4].backstore.create: not allowed for kind null (only for file)",
			"config.yaml:11: luns[4].backstore.direct: not allowed for kind null (only for file and block)",
			"config.yaml:11: luns[4].backstore.max_allocated: not allowed for kind null (only for memory)",
			`config.yaml:13: luns[5].backstore.kind: "nfs" is not allowed (null, memory, file or block)`,
			`config.yaml:13: luns[5].backstore.size: "12XB" is not allowed (` + size + `)`,
			`config.yaml:13: luns[5].backstore.pattern: "0xabc" is not allowed (zeros, or 0x and the hex bytes of a pattern of 1 to 4096 bytes)`,
			"config.yaml:15: luns[6].backstore.kind: required (null, memory, file or block)",
			`config.yaml:15: luns[6].backstore.block_size: "four" is not allowed (512 or 4096)`,
			"config.yaml:15: luns[6].backstore.size: 0 is not allowed (a positive multiple of the block size; for file and block leave size out to use the whole file or device)",
			"config.yaml:18: luns[7].backstore.create: true is not allowed with read_only: true (a read-only LU does not create its file)",
			"config.yaml:20: luns[8].backstore.create: true needs a size (the size to create or extend the file to)",
			"config.yaml:20: luns[8].backstore.max_allocated: not allowed for kind file (only for memory)",
			"config.yaml:22: luns[9].backstore.pattern: not allowed for kind memory (only for null)",
		},
	}, {
		name: "rdma",
		yaml: lines(
			"luns: [{name: a, backstore: {kind: memory, size: 1M}}]",
			"rdma:",
			"  listen:",
			"    - localhost:5000",
			"    - 192.0.2.1:0",
			"    - 192.0.2.1",
			"    - 192.0.2.1:5000",
			"    - 192.0.2.1:5000",
			"    -",
			"  port_id: 0x1234",
			"  portid: 1",
		),
		want: []string{
			`config.yaml:4: rdma.listen[0]: "localhost:5000" is not allowed (IP:port, as 192.0.2.1:5000 or [fe80::1%ib0]:5000, port 1 to 65535)`,
			`config.yaml:5: rdma.listen[1]: "192.0.2.1:0" is not allowed (IP:port, as 192.0.2.1:5000 or [fe80::1%ib0]:5000, port 1 to 65535)`,
			`config.yaml:6: rdma.listen[2]: "192.0.2.1" is not allowed (IP:port, as 192.0.2.1:5000 or [fe80::1%ib0]:5000, port 1 to 65535)`,
			`config.yaml:8: rdma.listen[4]: "192.0.2.1:5000" is already rdma.listen[3]`,
			"config.yaml:9: rdma.listen[5]: empty is not allowed (IP:port, as 192.0.2.1:5000 or [fe80::1%ib0]:5000)",
			"config.yaml:10: rdma.port_id: 0x1234 is not allowed (32 hex digits, optionally prefixed by 0x)",
			"config.yaml:11: rdma.portid: unknown key (allowed: listen, port_id)",
		},
	}, {
		name: "empty rdma and xen sections",
		yaml: lines(
			"luns: [{name: a, backstore: {kind: memory, size: 1M}}]",
			"rdma:",
			"xen: {}",
		),
		want: []string{
			"config.yaml:2: rdma.listen: required (a list of at least one address, IP:port, as 192.0.2.1:5000 or [fe80::1%ib0]:5000)",
			"config.yaml:3: xen.guests: required (a list of at least one guest with domain and luns)",
		},
	}, {
		name: "xen",
		yaml: lines(
			"luns:",
			"  - {name: disk0, backstore: {kind: memory, size: 1M}}",
			"  - {name: disk1, backstore: {kind: memory, size: 1M}}",
			"xen:",
			"  guests:",
			"    - domain: guest1",
			"      luns:",
			"        - nosuch, 0:0:0:0",
			"        - disk0 0:0:0:0",
			"        - disk0, 0:0:0",
			"        - disk0, 0:0:0:16384",
			"        - disk0, 0:0:x:0",
			"        - disk0, 0:0:0:0",
			"    - domain: bad/dom",
			"    - {domain: guest1, luns: [\"disk1, 0:0:0:0\", \"disk1, 0:0:0:1\"]}",
			"    - luns: [\"disk1, 0:0:0:0\"]",
			"    -",
		),
		want: []string{
			`config.yaml:8: xen.guests[0].luns[0]: LU "nosuch" is not allowed (the name of an LU of luns: disk0, disk1)`,
			`config.yaml:9: xen.guests[0].luns[1]: "disk0 0:0:0:0" is not allowed: no comma between LU and address ('LU, H:C:T:L' with the name of an LU of luns and a virtual SCSI address, as 'disk0, 0:0:0:0')`,
			`config.yaml:10: xen.guests[0].luns[2]: "disk0, 0:0:0" is not allowed: "0:0:0" is not H:C:T:L ('LU, H:C:T:L' with the name of an LU of luns and a virtual SCSI address, as 'disk0, 0:0:0:0')`,
			`config.yaml:11: xen.guests[0].luns[3]: "disk0, 0:0:0:16384" is not allowed: L "16384" is not 0 to 16383 ('LU, H:C:T:L' with the name of an LU of luns and a virtual SCSI address, as 'disk0, 0:0:0:0')`,
			`config.yaml:12: xen.guests[0].luns[4]: "disk0, 0:0:x:0" is not allowed: T "x" is not 0 to 65535 ('LU, H:C:T:L' with the name of an LU of luns and a virtual SCSI address, as 'disk0, 0:0:0:0')`,
			`config.yaml:14: xen.guests[1].domain: "bad/dom" is not allowed (a domain name or id: 1 to 64 of A-Z a-z 0-9 . _ : + -)`,
			"config.yaml:14: xen.guests[1].luns: required (a list of at least one entry 'LU, H:C:T:L' with the name of an LU of luns and a virtual SCSI address, as 'disk0, 0:0:0:0')",
			"config.yaml:15: xen.guests[2].luns[0]: 0:0:0:0 of domain guest1 is already taken by xen.guests[0].luns[5]; each virtual SCSI address is given once",
			"config.yaml:16: xen.guests[3].domain: required (a domain name or id: 1 to 64 of A-Z a-z 0-9 . _ : + -)",
			"config.yaml:17: xen.guests[4]: empty is not allowed (a mapping with keys domain, luns)",
		},
	}, {
		name: "YAML syntax: unclosed flow sequence",
		yaml: lines("luns:", "  - name: a", "    backstore: {kind: memory, size: ["),
		want: []string{"config.yaml:3: YAML syntax: did not find expected node content"},
	}, {
		name: "YAML syntax: bad indentation",
		yaml: lines("luns:", "  - name: a", "   backstore: {}"),
		want: []string{"config.yaml:3: YAML syntax: did not find expected '-' indicator"},
	}, {
		name: "YAML syntax: tab",
		yaml: lines("luns:", "\t- name: a"),
		want: []string{"config.yaml:2: YAML syntax: found character that cannot start any token"},
	}, {
		name: "YAML syntax: unknown anchor (no line from the parser)",
		yaml: lines("logging: {level: info}", "luns:", "  - name: *nope"),
		want: []string{"config.yaml:3: YAML syntax: unknown anchor 'nope' referenced"},
	}, {
		name: "two documents",
		yaml: lines("luns: [{name: a, backstore: {kind: memory, size: 1M}}]", "---", "luns: []"),
		want: []string{"config.yaml:2: a second YAML document (---): the configuration is one document"},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Parse("config.yaml", []byte(tc.yaml))
			if err == nil {
				t.Fatalf("Parse succeeded: %+v", cfg)
			}
			es, ok := err.(Errors)
			if !ok {
				t.Fatalf("error is %T, want Errors", err)
			}
			var got []string
			for _, e := range es {
				got = append(got, e.Error())
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

// TestErrorsEachNamesFileLineField: every validation error has the form
// FILE:LINE: FIELD: message, and its message says what is allowed.
func TestErrorsEachNamesFileLineField(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("testdata", "broken.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = Parse("testdata/broken.yaml", data)
	es, ok := err.(Errors)
	if !ok || len(es) < 20 {
		t.Fatalf("want many errors, got %v", err)
	}
	re := regexp.MustCompile(`^testdata/broken\.yaml:[1-9][0-9]*: [a-z_]+(\[[0-9]+\])?(\.[a-z_]+(\[[0-9]+\])?)*: .*(\(.+\)|is already .*|given twice .*)$`)
	for _, e := range es {
		if !re.MatchString(e.Error()) {
			t.Errorf("error %q does not name file, line and field and say what is allowed", e)
		}
	}
}

func TestErrorf(t *testing.T) {
	cfg, err := Parse("c.yaml", []byte(lines(
		"luns:",
		"  - name: a",
		"    backstore:",
		"      kind: memory",
		"      size: 1M",
	)))
	if err != nil {
		t.Fatal(err)
	}
	for field, want := range map[string]string{
		"luns[0].backstore.size": "c.yaml:5: luns[0].backstore.size: boom",
		"luns[0].backstore.path": "c.yaml:3: luns[0].backstore.path: boom", // not given: the enclosing mapping
		"luns[0]":                "c.yaml:2: luns[0]: boom",
		"target.state_dir":       "c.yaml: target.state_dir: boom",
	} {
		if got := cfg.Errorf(field, "boom").Error(); got != want {
			t.Errorf("Errorf(%q) = %q, want %q", field, got, want)
		}
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	if err := os.WriteFile(good, []byte("luns: [{name: a, backstore: {kind: memory, size: 1M}}]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(good)
	if err != nil || cfg.File != good || len(cfg.LUs) != 1 {
		t.Fatalf("Load(good) = %+v, %v", cfg, err)
	}
	missing := filepath.Join(dir, "missing.yaml")
	if _, err := Load(missing); err == nil || err.Error() != missing+": cannot read: no such file or directory" {
		t.Errorf("Load(missing) error %v", err)
	}
	big := filepath.Join(dir, "big.yaml")
	if err := os.WriteFile(big, make([]byte, MaxFileSize+1), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(big); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("Load(big) error %v", err)
	}
}

func TestParseSize(t *testing.T) {
	good := map[string]int64{
		"0": 0, "512": 512, "1K": 1024, "1k": 1024, "1KiB": 1024, "1Ki": 1024, "64MiB": 64 << 20, "64 MiB": 64 << 20,
		"1G": 1 << 30, "1gib": 1 << 30, "2TiB": 2 << 40, "1T": 1 << 40, "512B": 512, "8388607T": 8388607 << 40,
	}
	for s, want := range good {
		if got, err := ParseSize(s); err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", s, got, err, want)
		}
	}
	for _, s := range []string{"", "-1", "1.5G", "1KB", "1MB", "1 GB", "G", "1P", "0x100", "8388608T", "99999999999999999999", "1 2"} {
		if got, err := ParseSize(s); err == nil {
			t.Errorf("ParseSize(%q) = %d, want an error", s, got)
		}
	}
}

func TestFormatSize(t *testing.T) {
	for n, want := range map[int64]string{0: "0", 512: "512", 1536: "1536", 4096: "4KiB", 64 << 20: "64MiB", 1 << 30: "1GiB", 3 << 40: "3TiB"} {
		if got := FormatSize(n); got != want {
			t.Errorf("FormatSize(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestParseWWNAndPortID(t *testing.T) {
	want := [16]byte{0x60, 0x01, 0x40, 0x5a, 0xbb, 0xcc, 0xdd, 0xee, 0xff, 0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66}
	for _, s := range []string{"naa.6001405abbccddeeff00112233445566", "NAA.6001405ABBCCDDEEFF00112233445566", "0x6001405abbccddeeff00112233445566", "6001405abbccddeeff00112233445566"} {
		if got, err := ParseWWN(s); err != nil || got != want {
			t.Errorf("ParseWWN(%q) = %x, %v", s, got, err)
		}
	}
	for _, s := range []string{"", "naa.", "naa.5001405abbccddeeff00112233445566", "naa.6001405abbccddeeff0011223344556", "naa.6001405abbccddeeff001122334455667", "naa.6001405abbccddeeff0011223344556g", "eui.6001405abbccddeeff00112233445566"} {
		if _, err := ParseWWN(s); err == nil {
			t.Errorf("ParseWWN(%q) succeeded", s)
		}
	}
	id, err := ParsePortID("0x0000000000000000000000fffe000001")
	if err != nil || id != (scsi.PortID{11: 0xff, 12: 0xfe, 15: 1}) {
		t.Errorf("ParsePortID = %x, %v", id, err)
	}
	for _, s := range []string{"", "0x", "0x1", "0000000000000000000000fffe00000g", "0x0000000000000000000000fffe00000100"} {
		if _, err := ParsePortID(s); err == nil {
			t.Errorf("ParsePortID(%q) succeeded", s)
		}
	}
}

func TestGenerateWWN(t *testing.T) {
	a := GenerateWWN(scsi.DefaultOUI, "disk0", "disk0")
	if a != GenerateWWN(scsi.DefaultOUI, "disk0", "disk0") {
		t.Error("GenerateWWN is not deterministic")
	}
	// NAA 6 with the OUI in bits 59..36 (SPC-4 7.8.6.6.6).
	if a[0]>>4 != 6 || uint32(a[0]&0x0F)<<20|uint32(a[1])<<12|uint32(a[2])<<4|uint32(a[3]>>4) != scsi.DefaultOUI {
		t.Errorf("GenerateWWN = %x: not NAA 6 with OUI %06x", a, scsi.DefaultOUI)
	}
	for _, o := range [][16]byte{
		GenerateWWN(scsi.DefaultOUI, "disk1", "disk0"),
		GenerateWWN(scsi.DefaultOUI, "disk0", "disk1"),
		GenerateWWN(0x00A0B8, "disk0", "disk0"),
	} {
		if o == a {
			t.Errorf("GenerateWWN ignores an input: %x", o)
		}
	}
}

// TestDocsExamples keeps docs/configuration.md true: every ```yaml block
// in it is a valid configuration.
func TestDocsExamples(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "..", "..", "docs", "configuration.md"))
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)```yaml\n(.*?)```").FindAllSubmatch(doc, -1)
	if len(blocks) == 0 {
		t.Fatal("no yaml examples in docs/configuration.md")
	}
	for i, b := range blocks {
		if _, err := Parse("docs example", b[1]); err != nil {
			t.Errorf("example %d does not parse:\n%v\n%s", i+1, err, b[1])
		}
	}
	// Every key the parser allows is documented.
	for _, keys := range [][]string{rootKeys, targetKeys, loggingKeys, luKeys, backstoreKeys, rdmaKeys, xenKeys, guestKeys, aclKeys, aclEntryKeys, aclLUNKeys} {
		for _, k := range keys {
			if !strings.Contains(string(doc), "`"+k+"`") && !strings.Contains(string(doc), "]."+k+"`") {
				t.Errorf("key %s is not documented in docs/configuration.md", k)
			}
		}
	}
}
