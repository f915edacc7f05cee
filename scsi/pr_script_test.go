package scsi_test

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/srptgt/srptgt/backstore"
	"github.com/srptgt/srptgt/scsi"
	"github.com/srptgt/srptgt/scsi/scsitest"
)

// Persistent reservation scenarios as scripts with their expected output
// (testdata/pr/*.txt), in the manner of etcd raft's interaction tests: a
// reviewer reads what each initiator sends and what it gets back without
// reading Go. Each file covers one clause group of SPC-4 and cites the
// clauses in its comments. `go test ./scsi -run TestPRScripts -rewrite`
// regenerates the expected output after a deliberate change; review the
// diff.
//
// A script is a series of blocks:
//
//	# comment lines
//	command args...
//	----
//	expected output (no blank line inside)
//	<blank line>
//
// The initiators are named: A is an initiator port logged in through
// target port 1, A@2 the same initiator port through target port 2.
// Responses are decoded from the bytes on the wire by this file, not by
// the code under test: status, sense key and additional sense code (with
// the field pointer), and the PERSISTENT RESERVE IN parameter data field
// by field.

var rewrite = flag.Bool("rewrite", false, "rewrite the expected output of testdata/pr/*.txt")

func TestPRScripts(t *testing.T) {
	files, err := filepath.Glob("testdata/pr/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no scripts: %v", err)
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".txt"), func(t *testing.T) { runScript(t, f) })
	}
}

type scriptBlock struct {
	comments []string
	cmd      string
	line     int
	want     []string
}

func parseScript(t *testing.T, data string) []scriptBlock {
	var blocks []scriptBlock
	var cur scriptBlock
	state := 0 // 0: comments/command, 1: expected output
	sc := bufio.NewScanner(strings.NewReader(data))
	n := 0
	for sc.Scan() {
		n++
		l := sc.Text()
		switch state {
		case 0:
			switch {
			case strings.HasPrefix(l, "#") || (l == "" && cur.cmd == ""):
				cur.comments = append(cur.comments, l)
			case l == "----":
				if cur.cmd == "" {
					t.Fatalf("line %d: ---- without a command", n)
				}
				state = 1
			case cur.cmd != "":
				t.Fatalf("line %d: a second command line %q (want ----)", n, l)
			default:
				cur.cmd, cur.line = l, n
			}
		case 1:
			if l == "" {
				blocks = append(blocks, cur)
				cur, state = scriptBlock{}, 0
				continue
			}
			cur.want = append(cur.want, l)
		}
	}
	if state == 1 || cur.cmd != "" {
		blocks = append(blocks, cur)
	} else if len(cur.comments) > 0 {
		blocks = append(blocks, cur) // trailing comments
	}
	return blocks
}

func runScript(t *testing.T, file string) {
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	blocks := parseScript(t, string(data))
	s := &script{t: t}
	defer s.close()
	var out strings.Builder
	for i, b := range blocks {
		for _, c := range b.comments {
			out.WriteString(c + "\n")
		}
		if b.cmd == "" {
			continue
		}
		got := s.run(b.cmd)
		out.WriteString(b.cmd + "\n----\n" + got + "\n")
		if i < len(blocks)-1 {
			out.WriteString("\n")
		}
		if !*rewrite && got != strings.Join(b.want, "\n") {
			t.Errorf("%s:%d: %s\n got:\n%s\nwant:\n%s", file, b.line, b.cmd, indent(got), indent(strings.Join(b.want, "\n")))
		}
	}
	if *rewrite {
		if err := os.WriteFile(file, []byte(out.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func indent(s string) string { return "    " + strings.ReplaceAll(s, "\n", "\n    ") }

// script is the state of one running script: a target with one disk LU
// and up to two target ports, and the logged-in initiators.
type script struct {
	t       *testing.T
	tgt     *scsi.Target
	ports   []*scsi.Port
	lu      *scsi.LU
	store   *prGateStore
	nexuses map[string]*scsi.Nexus
	inits   map[string]*scsitest.Direct
	// ptpl: the LU has a saver (APTPL supported); saved is what it
	// saved last, as durable storage would hold it.
	ptpl     bool
	saved    []byte
	saveFail bool
	// started commands blocked in the backstore, by initiator and tag.
	started map[string]*startedCmd
}

type startedCmd struct {
	c    *scsi.Command
	done chan struct{}
}

var scriptPorts = []scsi.PortID{
	{0xFE, 0x80, 0, 0, 0, 0, 0, 0, 0x00, 0x02, 0xC9, 0x03, 0x00, 0x00, 0x00, 0x01},
	{0xFE, 0x80, 0, 0, 0, 0, 0, 0, 0x00, 0x02, 0xC9, 0x03, 0x00, 0x00, 0x00, 0x02},
}

// initiatorID is the initiator port of a name: A is 00..00 0A 00..01.
func initiatorID(name string) scsi.PortID {
	var id scsi.PortID
	id[7] = name[0]
	id[15] = 0x01
	return id
}

func initiatorName(id scsi.PortID) string {
	for c := byte('A'); c <= 'Z'; c++ {
		if initiatorID(string(c)) == id {
			return string(c)
		}
	}
	return "0x" + hex.EncodeToString(id[:])
}

func (s *script) close() {
	for _, sc := range s.started {
		<-sc.done
	}
	if s.lu != nil {
		s.lu.Close()
	}
}

// build makes a fresh target (keeping the saved state when restart).
func (s *script) build(nports int, restart bool) error {
	if s.lu != nil {
		for _, n := range s.tgt.Nexuses() {
			s.tgt.Detach(n)
		}
		s.lu.Close()
		s.lu = nil
	}
	mem, err := backstore.Open(backstore.Spec{Kind: backstore.KindMemory, Size: 1 << 20, BlockSize: 512})
	if err != nil {
		return err
	}
	s.store = &prGateStore{Store: mem, gates: map[int64]*prGate{}}
	cfg := scsi.DiskConfig{Name: "d0", Store: s.store, Identity: scsi.Identity{NAA: testNAA}}
	if s.ptpl {
		cfg.SavePR = func(b []byte) error {
			if s.saveFail {
				return errors.New("injected save failure")
			}
			s.saved = append([]byte(nil), b...)
			return nil
		}
		if restart {
			cfg.SavedPR = s.saved
		}
	}
	lu, err := scsi.NewDisk(cfg)
	if err != nil {
		return err
	}
	s.lu = lu
	s.tgt = scsi.NewTarget(scsi.TargetConfig{})
	s.ports = nil
	for i := 0; i < nports; i++ {
		s.ports = append(s.ports, s.tgt.AddPort(scriptPorts[i], fmt.Sprintf("port%d", i+1)))
	}
	s.nexuses = map[string]*scsi.Nexus{}
	s.inits = map[string]*scsitest.Direct{}
	s.started = map[string]*startedCmd{}
	return s.tgt.AddLU(lu)
}

// nexusName splits "A@2" into the initiator and the target port index.
func (s *script) nexusID(name string) (scsi.NexusID, *scsi.Port, error) {
	ini, port, _ := strings.Cut(name, "@")
	p := 1
	if port != "" {
		var err error
		if p, err = strconv.Atoi(port); err != nil || p < 1 || p > len(s.ports) {
			return scsi.NexusID{}, nil, fmt.Errorf("no target port %q", port)
		}
	}
	if len(ini) != 1 || ini[0] < 'A' || ini[0] > 'Z' {
		return scsi.NexusID{}, nil, fmt.Errorf("initiator %q is not a letter", ini)
	}
	return scsi.NexusID{Initiator: initiatorID(ini), Target: s.ports[p-1].ID}, s.ports[p-1], nil
}

func (s *script) ini(name string) (*scsitest.Direct, error) {
	d := s.inits[name]
	if d == nil {
		return nil, fmt.Errorf("%s is not logged in", name)
	}
	return d, nil
}

// args parses key=value arguments; a bare word is key=true.
type args map[string]string

func parseArgs(fields []string) args {
	a := args{}
	for _, f := range fields {
		k, v, ok := strings.Cut(f, "=")
		if !ok {
			v = "true"
		}
		a[k] = v
	}
	return a
}

func (a args) u64(k string) uint64 {
	v, ok := a[k]
	if !ok {
		return 0
	}
	n, err := strconv.ParseUint(strings.TrimPrefix(v, "0x"), 16, 64)
	if err != nil {
		panic(fmt.Sprintf("%s=%s: not hex", k, v))
	}
	return n
}

func (a args) flag(k string) bool { return a[k] == "true" }

var prTypes = map[string]byte{"WE": 1, "EA": 3, "WE-RO": 5, "EA-RO": 6, "WE-AR": 7, "EA-AR": 8}

func typeName(t byte) string {
	for k, v := range prTypes {
		if v == t {
			return k
		}
	}
	return fmt.Sprintf("%#x", t)
}

func (a args) prType() byte {
	v, ok := a["type"]
	if !ok {
		return 0
	}
	if t, ok := prTypes[v]; ok {
		return t
	}
	n, err := strconv.ParseUint(strings.TrimPrefix(v, "0x"), 16, 8)
	if err != nil {
		panic("bad type " + v)
	}
	return byte(n)
}

func (s *script) run(line string) (out string) {
	defer func() {
		if r := recover(); r != nil {
			out = fmt.Sprintf("error: %v", r)
		}
	}()
	f := strings.Fields(line)
	cmd, rest := f[0], f[1:]
	if cmd == "target" {
		a := parseArgs(rest)
		s.ptpl = a.flag("ptpl")
		s.saved = nil
		n := 1
		if a["ports"] != "" {
			n, _ = strconv.Atoi(a["ports"])
		}
		if err := s.build(n, false); err != nil {
			return "error: " + err.Error()
		}
		return "ok"
	}
	if s.lu == nil {
		return "error: no target"
	}
	switch cmd {
	case "login":
		var lines []string
		for _, name := range rest {
			id, port, err := s.nexusID(name)
			if err != nil {
				return "error: " + err.Error()
			}
			n, err := s.tgt.Attach(id, port)
			if err != nil {
				return "error: " + err.Error()
			}
			s.nexuses[name] = n
			s.inits[name] = scsitest.NewDirect(n)
			// The new nexus's unit attention, as REQUEST SENSE reports it.
			if u := s.uas(name); u != "POWER ON, RESET, OR BUS DEVICE RESET OCCURRED" {
				lines = append(lines, name+": "+u)
			}
		}
		if len(lines) == 0 {
			return "ok"
		}
		return strings.Join(lines, "\n")
	case "logout":
		for _, name := range rest {
			n := s.nexuses[name]
			if n == nil {
				return "error: " + name + " is not logged in"
			}
			s.tgt.Detach(n)
			delete(s.nexuses, name)
			delete(s.inits, name)
		}
		return "ok"
	case "restart":
		// A restart of the daemon: the LU is built again from what the
		// saver made durable; every initiator logs in again.
		names := make([]string, 0, len(s.nexuses))
		for n := range s.nexuses {
			names = append(names, n)
		}
		sort.Strings(names)
		if err := s.build(len(s.ports), true); err != nil {
			return "error: " + err.Error()
		}
		if len(names) > 0 {
			if r := s.run("login " + strings.Join(names, " ")); r != "ok" {
				return r
			}
		}
		return "restarted: " + s.lu.PRState().String()
	case "saved":
		if s.saved == nil {
			return "nothing saved"
		}
		return strings.TrimSuffix(string(s.saved), "\n")
	case "save-fails":
		s.saveFail = len(rest) == 0 || rest[0] != "off"
		return "ok"
	case "ua":
		return s.uas(rest[0])
	case "lu-reset":
		n := s.nexuses[rest[0]]
		return n.LUReset(scsi.EncodeLUN(0), n.Mark()).String()
	case "conflicts":
		return s.conflicts(parseArgs(rest))
	case "start":
		return s.start(rest)
	case "wait":
		return s.wait(rest)
	}
	if len(rest) == 0 {
		return "error: no initiator"
	}
	name := rest[0]
	a := parseArgs(rest[1:])
	var cdb, param []byte
	inLen := 0
	switch cmd {
	case "register", "register-ignore":
		sa := byte(scsitest.PROutRegister)
		if cmd == "register-ignore" {
			sa = scsitest.PROutRegisterIgnore
		}
		p := scsitest.PROutParams{Key: a.u64("key"), SAKey: a.u64("sakey"), AllTgPt: a.flag("all-tg-pt"), APTPL: a.flag("aptpl")}
		if l, ok := a["spec-i-pt"]; ok {
			p.SpecIPT = true
			for _, n := range strings.Split(l, ",") {
				p.TransportIDs = append(p.TransportIDs, initiatorID(n))
			}
		}
		param = p.Bytes()
		cdb = scsitest.PROut(sa, 0, a.prType(), uint32(len(param)))
	case "reserve", "release", "clear", "preempt", "preempt-abort":
		sa := map[string]byte{"reserve": scsitest.PROutReserve, "release": scsitest.PROutRelease, "clear": scsitest.PROutClear,
			"preempt": scsitest.PROutPreempt, "preempt-abort": scsitest.PROutPreemptAbort}[cmd]
		param = scsitest.PROutParams{Key: a.u64("key"), SAKey: a.u64("sakey")}.Bytes()
		scope := byte(0)
		if a["scope"] != "" {
			scope = byte(a.u64("scope"))
		}
		cdb = scsitest.PROut(sa, scope, a.prType(), uint32(len(param)))
		if cmd == "preempt-abort" {
			return s.preemptAbort(name, cdb, param)
		}
	case "register-move":
		id, _, err := s.nexusID(a["to"])
		if err != nil {
			return "error: " + err.Error()
		}
		rel := uint16(1)
		if a["port"] != "" {
			rel = uint16(a.u64("port"))
		}
		param = scsitest.RegisterMoveParams{Key: a.u64("key"), SAKey: a.u64("sakey"), Unreg: a.flag("unreg"), APTPL: a.flag("aptpl"),
			RelativePort: rel, To: id.Initiator}.Bytes()
		cdb = scsitest.PROut(scsitest.PROutRegisterMove, 0, 0, uint32(len(param)))
	case "prout":
		// A raw PERSISTENT RESERVE OUT: sa, scope, type, the parameter
		// list in hex and optionally a PARAMETER LIST LENGTH that differs
		// from its length.
		param = hx(strings.ReplaceAll(a["param"], "_", ""))
		plen := uint32(len(param))
		if a["plen"] != "" {
			v, _ := strconv.Atoi(a["plen"])
			plen = uint32(v)
		}
		scope := byte(a.u64("scope"))
		cdb = scsitest.PROut(byte(a.u64("sa")), scope, a.prType(), plen)
	case "read-keys", "read-reservation", "report-capabilities", "read-full-status":
		sa := map[string]byte{"read-keys": 0, "read-reservation": 1, "report-capabilities": 2, "read-full-status": 3}[cmd]
		cdb, inLen = scsitest.PRIn(sa, 4096), 4096
	case "read":
		cdb, inLen = scsitest.RW10(0x28, 0, uint32(a.u64("lba")), 1), 512
	case "write":
		cdb, param = scsitest.RW10(0x2A, 0, uint32(a.u64("lba")), 1), pattern(512, byte(name[0]))
	case "tur":
		cdb = scsitest.TestUnitReady()
	case "inquiry":
		cdb, inLen = scsitest.Inquiry(false, 0, 96), 96
	case "report-luns":
		cdb, inLen = scsitest.ReportLUNs(0, 64), 64
	case "read-capacity":
		cdb, inLen = scsitest.ReadCapacity10(), 8
	case "mode-sense":
		cdb, inLen = scsitest.ModeSense6(true, 0, 0x3F, 0, 255), 255
	case "mode-select":
		param = controlPage(false, false)
		cdb = scsitest.ModeSelect10(false, uint16(len(param)))
	case "sync-cache":
		cdb = scsitest.RW10(0x35, 0, 0, 0)
	case "start-stop":
		b4 := byte(a.u64("b4"))
		cdb = scsitest.StartStop(false, b4)
	case "prevent":
		cdb = []byte{0x1E, 0, 0, 0, byte(a.u64("prevent")), 0}
	case "reserve6":
		cdb = scsitest.Reserve6()
	case "release6":
		cdb = scsitest.Release6()
	case "reserve10":
		cdb = scsitest.Reserve10()
	case "release10":
		cdb = scsitest.Release10()
	case "cdb":
		cdb = hx(strings.ReplaceAll(a["hex"], "_", ""))
		if a["out"] != "" {
			param = hx(strings.ReplaceAll(a["out"], "_", ""))
		}
		if a["in"] != "" {
			inLen, _ = strconv.Atoi(a["in"])
		}
	default:
		return "error: unknown command " + cmd
	}
	d, err := s.ini(name)
	if err != nil {
		return "error: " + err.Error()
	}
	resp, err := d.Do(context.Background(), &scsitest.Request{LUN: scsi.EncodeLUN(0), CDB: cdb, DataOut: param, InLen: inLen})
	if err != nil {
		return "error: " + err.Error()
	}
	return describe(cmd, resp)
}

// uas drains the unit attentions pending for an initiator with REQUEST
// SENSE, which reports and clears them (SPC-4 5.14) and is allowed whatever
// the reservation.
func (s *script) uas(name string) string {
	d, err := s.ini(name)
	if err != nil {
		return "error: " + err.Error()
	}
	var list []string
	for i := 0; i < 10; i++ {
		resp, err := d.Do(context.Background(), &scsitest.Request{LUN: scsi.EncodeLUN(0), CDB: scsitest.RequestSense(false, 18), InLen: 18})
		if err != nil || resp.Status != scsi.StatusGood || len(resp.Data) < 14 {
			return fmt.Sprintf("error: REQUEST SENSE: %v %v", err, resp)
		}
		if resp.Data[2]&0x0F != 0x6 {
			break
		}
		list = append(list, ascName(uint16(resp.Data[12])<<8|uint16(resp.Data[13])))
	}
	if len(list) == 0 {
		return "no unit attention"
	}
	return strings.Join(list, "; ")
}

// describe renders a response.
func describe(cmd string, r *scsitest.Response) string {
	switch r.Status {
	case scsi.StatusGood:
	case scsi.StatusReservationConflict:
		return "RESERVATION CONFLICT"
	case scsi.StatusCheckCondition:
		return describeSense(r.Sense)
	default:
		return fmt.Sprintf("status %#02x", uint8(r.Status))
	}
	d := r.Data
	switch cmd {
	case "read-keys":
		gen, n := binary.BigEndian.Uint32(d), int(binary.BigEndian.Uint32(d[4:]))
		var keys []string
		for i := 8; i+8 <= 8+n && i+8 <= len(d); i += 8 {
			keys = append(keys, fmt.Sprintf("%#x", binary.BigEndian.Uint64(d[i:])))
		}
		return fmt.Sprintf("PRgeneration=%d keys=[%s]", gen, strings.Join(keys, " "))
	case "read-reservation":
		gen, n := binary.BigEndian.Uint32(d), binary.BigEndian.Uint32(d[4:])
		if n == 0 {
			return fmt.Sprintf("PRgeneration=%d no reservation", gen)
		}
		return fmt.Sprintf("PRgeneration=%d key=%#x %s type=%s (additional length %d)", gen, binary.BigEndian.Uint64(d[8:]),
			scopeName(d[21]>>4), typeName(d[21]&0x0F), n)
	case "report-capabilities":
		var b []string
		for _, f := range []struct {
			byte, bit int
			name      string
		}{{2, 4, "CRH"}, {2, 3, "SIP_C"}, {2, 2, "ATP_C"}, {2, 0, "PTPL_C"}, {3, 7, "TMV"}, {3, 0, "PTPL_A"}} {
			if d[f.byte]>>f.bit&1 != 0 {
				b = append(b, f.name)
			}
		}
		b = append(b, fmt.Sprintf("ALLOW_COMMANDS=%d", d[3]>>4&7))
		var types []string
		for _, f := range []struct {
			byte, bit int
			name      string
		}{{4, 1, "WE"}, {4, 3, "EA"}, {4, 5, "WE-RO"}, {4, 6, "EA-RO"}, {4, 7, "WE-AR"}, {5, 0, "EA-AR"}} {
			if d[f.byte]>>f.bit&1 != 0 {
				types = append(types, f.name)
			}
		}
		return fmt.Sprintf("length=%d %s types=%s", binary.BigEndian.Uint16(d), strings.Join(b, " "), strings.Join(types, ","))
	case "read-full-status":
		gen, n := binary.BigEndian.Uint32(d), int(binary.BigEndian.Uint32(d[4:]))
		lines := []string{fmt.Sprintf("PRgeneration=%d", gen)}
		for p := 8; p < 8+n && p+24 <= len(d); {
			desc := d[p:]
			l := int(binary.BigEndian.Uint32(desc[20:]))
			s := fmt.Sprintf("  key=%#x", binary.BigEndian.Uint64(desc))
			if desc[12]&0x02 != 0 {
				s += " all-target-ports"
			} else {
				s += fmt.Sprintf(" rel-port=%d", binary.BigEndian.Uint16(desc[18:]))
			}
			if desc[12]&0x01 != 0 {
				s += fmt.Sprintf(" holder %s type=%s", scopeName(desc[13]>>4), typeName(desc[13]&0x0F))
			}
			tid := desc[24 : 24+l]
			if id, tl, err := scsi.ParseTransportID(tid); err == nil && tl == l {
				s += fmt.Sprintf(" transport-id=SRP(%s)", initiatorName(id))
			} else {
				s += fmt.Sprintf(" transport-id=% x", tid)
			}
			lines = append(lines, s)
			p += 24 + l
		}
		return strings.Join(lines, "\n")
	case "read":
		return fmt.Sprintf("GOOD (%d bytes)", len(d))
	}
	return "GOOD"
}

func scopeName(s byte) string {
	if s == 0 {
		return "LU_SCOPE"
	}
	return fmt.Sprintf("scope=%#x", s)
}

var senseKeys = []string{"NO SENSE", "RECOVERED ERROR", "NOT READY", "MEDIUM ERROR", "HARDWARE ERROR", "ILLEGAL REQUEST",
	"UNIT ATTENTION", "DATA PROTECT", "BLANK CHECK", "VENDOR SPECIFIC", "COPY ABORTED", "ABORTED COMMAND", "RESERVED",
	"VOLUME OVERFLOW", "MISCOMPARE", "COMPLETED"}

// ascName names the additional sense codes the scripts meet (SPC-4
// 4.5.6).
func ascName(asc uint16) string {
	names := map[uint16]string{
		0x1A00: "PARAMETER LIST LENGTH ERROR",
		0x2000: "INVALID COMMAND OPERATION CODE",
		0x2400: "INVALID FIELD IN CDB",
		0x2600: "INVALID FIELD IN PARAMETER LIST",
		0x2604: "INVALID RELEASE OF PERSISTENT RESERVATION",
		0x2900: "POWER ON, RESET, OR BUS DEVICE RESET OCCURRED",
		0x2903: "BUS DEVICE RESET FUNCTION OCCURRED",
		0x2907: "I_T NEXUS LOSS OCCURRED",
		0x2A03: "RESERVATIONS PREEMPTED",
		0x2A04: "RESERVATIONS RELEASED",
		0x2A05: "REGISTRATIONS PREEMPTED",
		0x2F00: "COMMANDS CLEARED BY ANOTHER INITIATOR",
		0x3F0E: "REPORTED LUNS DATA HAS CHANGED",
		0x4400: "INTERNAL TARGET FAILURE",
		0x5504: "INSUFFICIENT REGISTRATION RESOURCES",
	}
	if n, ok := names[asc]; ok {
		return n
	}
	return fmt.Sprintf("ASC/ASCQ %02Xh/%02Xh", asc>>8, asc&0xFF)
}

func describeSense(b []byte) string {
	if len(b) < 18 || b[0]&0x7F != 0x70 {
		return fmt.Sprintf("CHECK CONDITION, sense % x", b)
	}
	asc := uint16(b[12])<<8 | uint16(b[13])
	s := fmt.Sprintf("CHECK CONDITION %s %s", senseKeys[b[2]&0x0F], ascName(asc))
	if b[15]&0x80 != 0 {
		where := "parameter list"
		if b[15]&0x40 != 0 {
			where = "CDB"
		}
		s += fmt.Sprintf(" (%s byte %d", where, binary.BigEndian.Uint16(b[16:]))
		if b[15]&0x08 != 0 {
			s += fmt.Sprintf(" bit %d", b[15]&7)
		}
		s += ")"
	}
	return s
}

// start begins a one-block WRITE that blocks in the backstore until it is
// aborted or waited for: "start A lba=8 tag=1".
func (s *script) start(rest []string) string {
	name := rest[0]
	a := parseArgs(rest[1:])
	n := s.nexuses[name]
	if n == nil {
		return "error: " + name + " is not logged in"
	}
	lba := a.u64("lba")
	c := &scsi.Command{}
	c.CDB = scsitest.RW10(0x2A, 0, uint32(lba), 1)
	c.LUN = scsi.EncodeLUN(0)
	c.Tag = a.u64("tag")
	c.DataOut = pattern(512, 0x5A)
	g := s.store.arm(int64(lba)*512, c)
	sc := &startedCmd{c: c, done: make(chan struct{})}
	s.started[name+"/"+a["tag"]] = sc
	go func() {
		defer close(sc.done)
		n.Execute(c)
	}()
	select {
	case <-g.entered:
		return "blocked in the backstore"
	case <-sc.done:
		return "finished at once: " + describe("write", cmdResponse(c))
	case <-time.After(5 * time.Second):
		return "error: the write did not reach the backstore"
	}
}

// wait lets a started command finish and reports its outcome.
func (s *script) wait(rest []string) string {
	name := rest[0]
	a := parseArgs(rest[1:])
	key := name + "/" + a["tag"]
	sc := s.started[key]
	if sc == nil {
		return "error: nothing started as " + key
	}
	delete(s.started, key)
	s.store.release(sc.c)
	select {
	case <-sc.done:
	case <-time.After(5 * time.Second):
		return "error: still running"
	}
	if sc.c.Aborted() {
		return "aborted: no response (TAS=0)"
	}
	return describe("write", cmdResponse(sc.c))
}

func cmdResponse(c *scsi.Command) *scsitest.Response {
	return &scsitest.Response{Status: c.Status, Sense: c.SenseData(), Data: c.DataIn[:c.InLen]}
}

// preemptAbort runs PREEMPT AND ABORT while commands are blocked in the
// backstore: those it aborts return from the backstore (as a real one
// finishes its I/O) and the service action completes once they have.
func (s *script) preemptAbort(name string, cdb, param []byte) string {
	d, err := s.ini(name)
	if err != nil {
		return "error: " + err.Error()
	}
	type result struct {
		resp *scsitest.Response
		err  error
	}
	ch := make(chan result, 1)
	go func() {
		resp, err := d.Do(context.Background(), &scsitest.Request{LUN: scsi.EncodeLUN(0), CDB: cdb, DataOut: param})
		ch <- result{resp, err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			return "error: " + r.err.Error()
		}
		return describe("preempt-abort", r.resp)
	case <-time.After(10 * time.Second):
		return "error: PREEMPT AND ABORT did not complete"
	}
}

// prGateStore holds writes to armed offsets in the backstore until their
// command is aborted or released.
type prGateStore struct {
	backstore.Store
	mu    sync.Mutex
	gates map[int64]*prGate
}

type prGate struct {
	c        *scsi.Command
	entered  chan struct{}
	released chan struct{}
}

func (g *prGateStore) arm(off int64, c *scsi.Command) *prGate {
	gt := &prGate{c: c, entered: make(chan struct{}), released: make(chan struct{})}
	g.mu.Lock()
	g.gates[off] = gt
	g.mu.Unlock()
	return gt
}

func (g *prGateStore) release(c *scsi.Command) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for off, gt := range g.gates {
		if gt.c == c {
			close(gt.released)
			delete(g.gates, off)
		}
	}
}

func (g *prGateStore) WriteAt(p []byte, off int64) (int, error) {
	g.mu.Lock()
	gt := g.gates[off]
	g.mu.Unlock()
	if gt != nil {
		close(gt.entered)
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
	wait:
		for {
			select {
			case <-gt.released:
				break wait
			case <-tick.C:
				if gt.c.Aborted() {
					break wait
				}
			}
		}
	}
	return g.Store.WriteAt(p, off)
}

func (g *prGateStore) WriteAtSync(p []byte, off int64) (int, error) { return g.WriteAt(p, off) }

// conflictRows are the commands of the conflict matrix: SPC-4 5.12.1
// (commands allowed in the presence of various reservations) and SBC-3
// 4.18 for every command this LU implements, except PERSISTENT RESERVE
// OUT, whose service actions the other scripts cover.
var conflictRows = []struct {
	name  string
	cdb   []byte
	out   func() []byte
	inLen int
}{
	{"TEST UNIT READY", scsitest.TestUnitReady(), nil, 0},
	{"INQUIRY", scsitest.Inquiry(false, 0, 96), nil, 96},
	{"REPORT LUNS", scsitest.ReportLUNs(0, 64), nil, 64},
	{"REQUEST SENSE", scsitest.RequestSense(false, 18), nil, 18},
	{"PERSISTENT RESERVE IN", scsitest.PRIn(0, 64), nil, 64},
	{"MODE SENSE(6)", scsitest.ModeSense6(true, 0, 0x3F, 0, 255), nil, 255},
	{"MODE SENSE(10)", scsitest.ModeSense10(false, true, 0, 0x3F, 0, 512), nil, 512},
	{"MODE SELECT(10)", scsitest.ModeSelect10(false, 20), func() []byte { return controlPage(false, false) }, 0},
	{"REPORT SUPPORTED OPERATION CODES", scsitest.ReportOpcodes(false, 0, 0, 0, 4096), nil, 4096},
	{"REPORT SUPPORTED TASK MANAGEMENT FUNCTIONS", scsitest.ReportTMFs(false, 4), nil, 4},
	{"SEND DIAGNOSTIC (self-test)", []byte{0x1D, 0x04, 0, 0, 0, 0}, nil, 0},
	{"PREVENT ALLOW MEDIUM REMOVAL, PREVENT=0", []byte{0x1E, 0, 0, 0, 0, 0}, nil, 0},
	{"PREVENT ALLOW MEDIUM REMOVAL, PREVENT=1", []byte{0x1E, 0, 0, 0, 1, 0}, nil, 0},
	{"RESERVE(6)", scsitest.Reserve6(), nil, 0},
	{"RELEASE(6)", scsitest.Release6(), nil, 0},
	{"READ(10)", scsitest.RW10(0x28, 0, 0, 1), nil, 512},
	{"READ(16)", scsitest.RW16(0x88, 0, 0, 1), nil, 512},
	{"VERIFY(10)", scsitest.RW10(0x2F, 0, 0, 1), nil, 0},
	{"READ CAPACITY(10)", scsitest.ReadCapacity10(), nil, 8},
	{"READ CAPACITY(16)", scsitest.ReadCapacity16(32), nil, 32},
	{"GET LBA STATUS", scsitest.GetLBAStatus(0, 24), nil, 24},
	{"WRITE(10)", scsitest.RW10(0x2A, 0, 0, 1), func() []byte { return make([]byte, 512) }, 0},
	{"WRITE(16)", scsitest.RW16(0x8A, 0, 0, 1), func() []byte { return make([]byte, 512) }, 0},
	{"WRITE AND VERIFY(10)", scsitest.RW10(0x2E, 0, 0, 1), func() []byte { return make([]byte, 512) }, 0},
	{"WRITE SAME(16)", scsitest.WriteSame16(0, 0, 1), func() []byte { return make([]byte, 512) }, 0},
	{"COMPARE AND WRITE", scsitest.CompareAndWrite(0, 0, 1), func() []byte { return make([]byte, 1024) }, 0},
	{"UNMAP", func() []byte { c, _ := scsitest.Unmap([2]uint64{0, 1}); return c }(), func() []byte { _, p := scsitest.Unmap([2]uint64{0, 1}); return p }, 0},
	{"SYNCHRONIZE CACHE(10)", scsitest.RW10(0x35, 0, 0, 0), nil, 0},
	{"FORMAT UNIT", []byte{0x04, 0, 0, 0, 0, 0}, nil, 0},
	{"START STOP UNIT, START=1", scsitest.StartStop(false, 0x01), nil, 0},
	{"START STOP UNIT, START=1 POWER CONDITION=1", scsitest.StartStop(false, 0x11), nil, 0},
	{"START STOP UNIT, START=0", scsitest.StartStop(false, 0x00), nil, 0},
}

// conflicts sends every command of conflictRows from the holder, a
// registered I_T nexus that does not hold the reservation and an
// unregistered one, and prints what each got. After each command the
// holder starts the LU and allows medium removal again (and sends the
// command after=, as RESERVE(6) to keep an SPC-2 reservation), and pending unit
// attentions (MODE PARAMETERS CHANGED after MODE SELECT) are cleared, so
// that rows do not affect each other.
func (s *script) conflicts(a args) string {
	cols := []string{a["holder"], a["registered"], a["unregistered"]}
	var b strings.Builder
	fmt.Fprintf(&b, "%-44s %-22s %-22s %s", "command", "holder "+cols[0], "registered "+cols[1], "unregistered "+cols[2])
	short := func(r string) string {
		switch {
		case strings.HasPrefix(r, "GOOD"):
			return "GOOD"
		case r == "RESERVATION CONFLICT":
			return "CONFLICT"
		case strings.HasPrefix(r, "CHECK CONDITION "):
			r = strings.TrimPrefix(r, "CHECK CONDITION ")
			r, _, _ = strings.Cut(r, " (")
			return strings.TrimPrefix(r, "ILLEGAL REQUEST ")
		}
		return r
	}
	for _, row := range conflictRows {
		fmt.Fprintf(&b, "\n%-44s", row.name)
		for i, name := range cols {
			if name == "" {
				continue
			}
			d, err := s.ini(name)
			if err != nil {
				return "error: " + err.Error()
			}
			var out []byte
			if row.out != nil {
				out = row.out()
			}
			resp, err := d.Do(context.Background(), &scsitest.Request{LUN: scsi.EncodeLUN(0), CDB: row.cdb, DataOut: out, InLen: row.inLen})
			r := ""
			if err != nil {
				r = "error: " + err.Error()
			} else {
				r = short(describe("", resp))
			}
			if i < 2 {
				fmt.Fprintf(&b, " %-22s", r)
			} else {
				fmt.Fprintf(&b, " %s", r)
			}
			hd, _ := s.ini(cols[0])
			for _, c := range [][]byte{scsitest.StartStop(false, 0x01), {0x1E, 0, 0, 0, 0, 0}} {
				hd.Do(context.Background(), &scsitest.Request{LUN: scsi.EncodeLUN(0), CDB: c})
			}
			if a["after"] != "" {
				s.run(a["after"] + " " + cols[0])
			}
			for _, n := range cols {
				if n != "" {
					s.uas(n)
				}
			}
		}
	}
	return b.String()
}
