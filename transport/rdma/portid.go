package rdma

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strings"
)

func be64(b []byte) uint64 { return binary.BigEndian.Uint64(b) }

// PortIDFromGUID is the SRP target port identifier LIO ib_srpt uses for a
// port: id_ext and ioc_guid both the port GUID. Linux ib_srp builds the
// target port ID it logs in to as id_ext || ioc_guid from its add_target
// options, so this port is reached with
// id_ext=<guid>,ioc_guid=<guid> (16 hex digits each).
func PortIDFromGUID(guid uint64) [16]byte {
	var id [16]byte
	binary.BigEndian.PutUint64(id[0:8], guid)
	binary.BigEndian.PutUint64(id[8:16], guid)
	return id
}

// ParsePortID parses a target port identifier: 32 hex digits, or
// "id_ext:ioc_guid" (16 hex digits each), optionally with 0x prefixes, and
// ':' separators between hex groups as in GUIDs (0000:00ff:fe00:0001).
func ParsePortID(s string) ([16]byte, error) {
	var id [16]byte
	t := strings.TrimSpace(s)
	parts := []string{t}
	if i := strings.Index(t, ","); i >= 0 {
		parts = []string{t[:i], t[i+1:]}
	}
	var hexs string
	for _, p := range parts {
		p = strings.TrimPrefix(strings.TrimPrefix(strings.TrimSpace(p), "0x"), "0X")
		hexs += strings.ReplaceAll(strings.ReplaceAll(p, ":", ""), "-", "")
	}
	b, err := hex.DecodeString(hexs)
	if err != nil || len(b) != 16 {
		return id, fmt.Errorf("rdma: target port ID %q: want 32 hex digits (id_ext then ioc_guid)", s)
	}
	copy(id[:], b)
	return id, nil
}

// FormatPortID writes a port ID as Linux ib_srp's add_target options name
// it: "id_ext=...,ioc_guid=...".
func FormatPortID(id [16]byte) string {
	return fmt.Sprintf("id_ext=%016x,ioc_guid=%016x", be64(id[0:8]), be64(id[8:16]))
}

// MakePortID builds a port ID from its two halves (for an initiator,
// Linux ib_srp uses initiator_ext and the port GUID).
func MakePortID(hi, lo uint64) [16]byte {
	var id [16]byte
	binary.BigEndian.PutUint64(id[0:8], hi)
	binary.BigEndian.PutUint64(id[8:16], lo)
	return id
}
