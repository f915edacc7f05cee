package rdma

import (
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/Mellanox/rdmamap"
)

// DeviceInfo describes an RDMA device as sysfs shows it. Devices reads it
// without opening the device, so it works in a binary built without cgo.
type DeviceInfo struct {
	Name        string
	NodeGUID    string
	NodeType    string
	CharDevices []string // /dev/infiniband/uverbsN, rdma_cm, ...
	Ports       []PortInfo
}

// PortInfo is one port of a device.
type PortInfo struct {
	Num       int
	State     string // ACTIVE, DOWN, ...
	LinkLayer string // InfiniBand or Ethernet
	GIDs      []GIDInfo
	// PortID is the SRP target port ID srptgt uses by default on this
	// port (from GID 0; zero if the port has none).
	PortID [16]byte
}

// GIDInfo is one GID table entry in use.
type GIDInfo struct {
	Index  int
	GID    string
	Type   string // "RoCE v2", "IB/RoCE v1"
	Netdev string
	// Addrs are the network device's addresses (listen candidates).
	Addrs []string
}

func readSys(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// Devices lists the RDMA devices (none, without error, on a machine that
// has no RDMA driver loaded).
func Devices() ([]DeviceInfo, error) {
	var out []DeviceInfo
	names := rdmamap.GetRdmaDeviceList()
	sort.Strings(names)
	for _, name := range names {
		dir := filepath.Join(rdmamap.RdmaClassDir, name)
		d := DeviceInfo{Name: name, NodeGUID: readSys(filepath.Join(dir, "node_guid")),
			NodeType: readSys(filepath.Join(dir, "node_type")), CharDevices: rdmamap.GetRdmaCharDevices(name)}
		ports := rdmamap.GetPorts(name)
		sort.Slice(ports, func(i, j int) bool { return atoi(ports[i]) < atoi(ports[j]) })
		for _, p := range ports {
			d.Ports = append(d.Ports, readPort(filepath.Join(dir, rdmamap.RdmaPortsdir, p), atoi(p)))
		}
		out = append(out, d)
	}
	return out, nil
}

func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

func readPort(dir string, num int) PortInfo {
	pi := PortInfo{Num: num, LinkLayer: readSys(filepath.Join(dir, "link_layer"))}
	st := readSys(filepath.Join(dir, "state")) // "4: ACTIVE"
	if _, s, ok := strings.Cut(st, ": "); ok {
		st = s
	}
	pi.State = st
	ents, _ := os.ReadDir(filepath.Join(dir, "gids"))
	sort.Slice(ents, func(i, j int) bool { return atoi(ents[i].Name()) < atoi(ents[j].Name()) })
	addrs := map[string][]string{}
	for _, e := range ents {
		idx := atoi(e.Name())
		gid := readSys(filepath.Join(dir, "gids", e.Name()))
		raw, err := hex.DecodeString(strings.ReplaceAll(gid, ":", ""))
		if err != nil || len(raw) != 16 || allZero(raw) {
			continue
		}
		if idx == 0 {
			if guid := be64(raw[8:16]); guid != 0 {
				pi.PortID = PortIDFromGUID(guid)
			}
		}
		g := GIDInfo{Index: idx, GID: gid,
			Type:   readSys(filepath.Join(dir, rdmamap.RdmaGidAttrDir, "types", e.Name())),
			Netdev: readSys(filepath.Join(dir, rdmamap.RdmaGidAttrDir, rdmamap.RdmaGidAttrNdevDir, e.Name()))}
		if g.Netdev != "" {
			if _, ok := addrs[g.Netdev]; !ok {
				addrs[g.Netdev] = netdevAddrs(g.Netdev)
			}
			g.Addrs = addrs[g.Netdev]
		}
		pi.GIDs = append(pi.GIDs, g)
	}
	return pi
}

func allZero(b []byte) bool {
	for _, x := range b {
		if x != 0 {
			return false
		}
	}
	return true
}

func netdevAddrs(name string) []string {
	ifi, err := net.InterfaceByName(name)
	if err != nil {
		return nil
	}
	as, _ := ifi.Addrs()
	var out []string
	for _, a := range as {
		out = append(out, a.String())
	}
	return out
}

// WriteDevices prints devices for people.
func WriteDevices(w io.Writer, devs []DeviceInfo) {
	if len(devs) == 0 {
		fmt.Fprintln(w, "no RDMA devices (no RDMA driver loaded; soft RoCE: modprobe rdma_rxe; rdma link add rxe0 type rxe netdev eth0)")
		return
	}
	for _, d := range devs {
		fmt.Fprintf(w, "%s  node_guid %s", d.Name, d.NodeGUID)
		if d.NodeType != "" {
			fmt.Fprintf(w, "  %s", d.NodeType)
		}
		if len(d.CharDevices) > 0 {
			fmt.Fprintf(w, "  (%s)", strings.Join(d.CharDevices, " "))
		}
		fmt.Fprintln(w)
		for _, p := range d.Ports {
			fmt.Fprintf(w, "  port %d: %s, %s\n", p.Num, p.State, p.LinkLayer)
			netdevs := map[string][]string{}
			var order []string
			for _, g := range p.GIDs {
				fmt.Fprintf(w, "    gid %-3d %s  %-10s %s\n", g.Index, g.GID, g.Type, g.Netdev)
				if _, ok := netdevs[g.Netdev]; !ok && g.Netdev != "" {
					netdevs[g.Netdev] = g.Addrs
					order = append(order, g.Netdev)
				}
			}
			for _, n := range order {
				fmt.Fprintf(w, "    netdev %s: %s\n", n, strings.Join(netdevs[n], " "))
			}
			if p.PortID != ([16]byte{}) {
				fmt.Fprintf(w, "    SRP target port: %s\n", FormatPortID(p.PortID))
			}
		}
	}
}
