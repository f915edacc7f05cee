package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/srptgt/srptgt/backstore"
	"github.com/srptgt/srptgt/scsi"
)

// Allowed keys of each mapping, in the order error messages list them.
var (
	rootKeys      = []string{"target", "logging", "luns", "rdma", "xen", "acl"}
	targetKeys    = []string{"vendor", "oui", "state_dir"}
	loggingKeys   = []string{"level", "format"}
	luKeys        = []string{"name", "lun", "type", "backstore", "read_only", "serial", "wwn", "vendor", "product", "revision"}
	backstoreKeys = []string{"kind", "path", "size", "block_size", "create", "direct", "pattern", "max_allocated"}
	rdmaKeys      = []string{"listen", "port_id"}
	xenKeys       = []string{"guests"}
	guestKeys     = []string{"domain", "luns"}
)

// Limits.
const (
	maxLUN       = 16383
	maxLUs       = maxLUN + 1
	maxNameLen   = 64
	maxSerialLen = 64
	maxPattern   = 4096
	// syntaxSearchLines bounds the search for the line of a YAML error
	// the parser reported without one.
	syntaxSearchLines = 1000
)

var (
	nameRE   = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)
	lineRE   = regexp.MustCompile(`^line ([0-9]+): (.*)$`)
	domainRE = regexp.MustCompile(`^[A-Za-z0-9._:+-]{1,64}$`)
)

const nameAllowed = "1 to 64 of A-Z a-z 0-9 . _ -, but not . or .."

// Parse validates the configuration in data, read from file (which names
// it in error messages). The error, if any, is an Errors.
func Parse(file string, data []byte) (*Config, error) {
	p := &parser{file: file, lines: make(map[string]int)}
	root, err := p.document(data)
	if err != nil {
		return nil, err
	}
	cfg := p.config(root)
	if len(p.errs) > 0 {
		p.errs.sort()
		return nil, p.errs
	}
	cfg.File = file
	cfg.lines = p.lines
	return cfg, nil
}

type parser struct {
	file  string
	errs  Errors
	lines map[string]int
}

func (p *parser) errf(line int, field, format string, args ...any) {
	p.errs = append(p.errs, &Error{File: p.file, Line: line, Field: field, Msg: fmt.Sprintf(format, args...)})
}

// document parses the YAML into a node tree. A file with no document is an
// empty mapping; a second document is an error.
func (p *parser) document(data []byte) (*yaml.Node, error) {
	doc, err := decode(data)
	if err != nil {
		var second *secondDocError
		if errors.As(err, &second) {
			return nil, Errors{{File: p.file, Line: second.line, Msg: "a second YAML document (---): the configuration is one document"}}
		}
		return nil, Errors{p.syntaxError(data, err)}
	}
	if doc == nil || len(doc.Content) == 0 {
		return &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Line: 1}, nil
	}
	return doc.Content[0], nil
}

type secondDocError struct{ line int }

func (e *secondDocError) Error() string { return "second document" }

func decode(data []byte) (*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if err == io.EOF {
			return nil, nil
		}
		return nil, err
	}
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case err == io.EOF:
		return &doc, nil
	case err != nil:
		return nil, err
	default:
		return nil, &secondDocError{line: next.Line}
	}
}

// syntaxError turns a YAML parser error into an *Error with a line: the
// first line whose inclusion brings the error about. The parser's own line
// is often that of the enclosing block (and counted from zero), and some
// errors (an unknown anchor, a misplaced "-") have none.
func (p *parser) syntaxError(data []byte, err error) *Error {
	msg, line := splitLine(err)
	end := 0
	for l := 1; l <= syntaxSearchLines && end < len(data); l++ {
		i := bytes.IndexByte(data[end:], '\n')
		if i < 0 {
			end = len(data)
		} else {
			end += i + 1
		}
		if _, perr := decode(data[:end]); perr != nil {
			if m, _ := splitLine(perr); m == msg {
				line = l
				break
			}
		}
	}
	return &Error{File: p.file, Line: line, Msg: "YAML syntax: " + msg}
}

// splitLine splits "yaml: line N: msg" into msg and N (0 if absent).
func splitLine(err error) (string, int) {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	if m := lineRE.FindStringSubmatch(msg); m != nil {
		n, _ := strconv.Atoi(m[1])
		return m[2], n
	}
	return msg, 0
}

// fields checks that n is a mapping whose keys are all allowed and given
// once, records their lines under field, and returns each key's value.
// Aliases are resolved; a null or missing n is an empty mapping.
func (p *parser) fields(n *yaml.Node, field string, allowed []string) map[string]*yaml.Node {
	out := make(map[string]*yaml.Node)
	n = resolve(n, 0)
	if n == nil || isNull(n) {
		return out
	}
	if n.Kind != yaml.MappingNode {
		p.errf(n.Line, field, "%s is not allowed (a mapping with keys %s)", describe(n), strings.Join(allowed, ", "))
		return out
	}
	seen := make(map[string]int)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			p.errf(k.Line, field, "%s is not allowed as a key (one of %s)", describe(k), strings.Join(allowed, ", "))
			continue
		}
		path := join(field, k.Value)
		if k.Value == "<<" {
			p.errf(k.Line, field, "merge keys (<<) are not supported (write the keys out: %s)", strings.Join(allowed, ", "))
			continue
		}
		if !contains(allowed, k.Value) {
			p.errf(k.Line, path, "unknown key (allowed: %s)", strings.Join(allowed, ", "))
			continue
		}
		if first, dup := seen[k.Value]; dup {
			p.errf(k.Line, path, "given twice (first at line %d)", first)
			continue
		}
		seen[k.Value] = k.Line
		p.lines[path] = k.Line
		v = resolve(v, k.Line)
		if v.Kind == yaml.ScalarNode && v.Line != k.Line {
			// A scalar's problems are reported on its key's line.
			c := *v
			c.Line = k.Line
			v = &c
		}
		out[k.Value] = v
	}
	return out
}

// list checks that n is a sequence and returns its items (aliases
// resolved); a null or missing n is an empty list.
func (p *parser) list(n *yaml.Node, field, what string) []*yaml.Node {
	n = resolve(n, 0)
	if n == nil || isNull(n) {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		p.errf(n.Line, field, "%s is not allowed (a list of %s)", describe(n), what)
		return nil
	}
	items := make([]*yaml.Node, len(n.Content))
	for i, it := range n.Content {
		items[i] = resolve(it, it.Line)
		p.lines[fmt.Sprintf("%s[%d]", field, i)] = it.Line
	}
	return items
}

// resolve follows aliases; an alias's target is returned as a copy that
// carries the alias's line (line > 0) so errors point at the use.
func resolve(n *yaml.Node, line int) *yaml.Node {
	if n == nil || n.Kind != yaml.AliasNode {
		return n
	}
	t := n
	for t.Kind == yaml.AliasNode && t.Alias != nil {
		t = t.Alias
	}
	c := *t
	if line > 0 {
		c.Line = line
	} else {
		c.Line = n.Line
	}
	return &c
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// describe names a node's value for an error message.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if n.ShortTag() == "!!str" {
			return strconv.Quote(n.Value)
		}
		return n.Value
	}
	return "this"
}

func join(field, key string) string {
	if field == "" {
		return key
	}
	return field + "." + key
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// scalar returns a scalar's text; false if n is absent or null (nothing
// reported) or not a scalar (reported, with allowed).
func (p *parser) scalar(n *yaml.Node, field, allowed string) (string, bool) {
	if n == nil || isNull(n) {
		return "", false
	}
	if n.Kind != yaml.ScalarNode {
		p.errf(n.Line, field, "%s is not allowed (%s)", describe(n), allowed)
		return "", false
	}
	return n.Value, true
}

func (p *parser) boolean(n *yaml.Node, field string) (bool, bool) {
	s, ok := p.scalar(n, field, "true or false")
	if !ok {
		return false, false
	}
	// true and false, also quoted; not 1, 0, yes or no.
	switch strings.ToLower(s) {
	case "true":
		return true, true
	case "false":
		return false, true
	}
	p.errf(n.Line, field, "%s is not allowed (true or false)", describe(n))
	return false, false
}

// number parses a decimal or 0x-prefixed hexadecimal integer in [0, max].
func (p *parser) number(n *yaml.Node, field string, max uint64, allowed string) (uint64, bool) {
	s, ok := p.scalar(n, field, allowed)
	if !ok {
		return 0, false
	}
	v, err := parseUint(s)
	if err != nil || v > max {
		p.errf(n.Line, field, "%s is not allowed (%s)", describe(n), allowed)
		return 0, false
	}
	return v, true
}

func parseUint(s string) (uint64, error) {
	if h, ok := strings.CutPrefix(strings.ToLower(s), "0x"); ok {
		return strconv.ParseUint(h, 16, 64)
	}
	return strconv.ParseUint(s, 10, 64)
}

// text checks an ASCII identifier field: 1 to max printable characters.
func (p *parser) text(n *yaml.Node, field string, max int) (string, bool) {
	allowed := fmt.Sprintf("1 to %d printable ASCII characters", max)
	s, ok := p.scalar(n, field, allowed)
	if !ok {
		return "", false
	}
	if len(s) == 0 || len(s) > max || !printable(s) {
		p.errf(n.Line, field, "%s is not allowed (%s)", strconv.Quote(s), allowed)
		return "", false
	}
	return s, true
}

func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7E {
			return false
		}
	}
	return true
}

// oneOf checks a keyword field.
func (p *parser) oneOf(n *yaml.Node, field string, allowed ...string) (string, bool) {
	want := orList(allowed)
	s, ok := p.scalar(n, field, want)
	if !ok {
		return "", false
	}
	if !contains(allowed, s) {
		p.errf(n.Line, field, "%s is not allowed (%s)", describe(n), want)
		return "", false
	}
	return s, true
}

// orList renders "a", "a or b", "a, b or c".
func orList(s []string) string {
	switch len(s) {
	case 0:
		return ""
	case 1:
		return s[0]
	}
	return strings.Join(s[:len(s)-1], ", ") + " or " + s[len(s)-1]
}

func (p *parser) size(n *yaml.Node, field string) (int64, bool) {
	s, ok := p.scalar(n, field, sizeAllowed)
	if !ok {
		return 0, false
	}
	v, err := ParseSize(s)
	if err != nil {
		p.errf(n.Line, field, "%s is not allowed (%s)", describe(n), sizeAllowed)
		return 0, false
	}
	return v, true
}

func (p *parser) config(root *yaml.Node) *Config {
	cfg := &Config{
		Target:  Target{Vendor: DefaultVendor, OUI: scsi.DefaultOUI},
		Logging: Logging{Level: DefaultLogLevel, Format: DefaultLogFormat},
	}
	top := p.fields(root, "", rootKeys)
	p.target(top["target"], &cfg.Target)
	p.logging(top["logging"], &cfg.Logging)
	cfg.LUs = p.lus(top["luns"], root.Line, cfg.Target)
	if n, ok := top["rdma"]; ok {
		cfg.RDMA = p.rdma(n, p.lines["rdma"])
	}
	if n, ok := top["xen"]; ok {
		cfg.Xen = p.xen(n, p.lines["xen"], cfg.LUs)
	}
	if n, ok := top["acl"]; ok {
		cfg.ACL = p.acl(n, cfg.LUs)
	}
	return cfg
}

func (p *parser) target(n *yaml.Node, t *Target) {
	f := p.fields(n, "target", targetKeys)
	if s, ok := p.text(f["vendor"], "target.vendor", 8); ok {
		t.Vendor = s
	}
	if v, ok := p.number(f["oui"], "target.oui", 0xFFFFFF, "a 24-bit IEEE company id, 0x000000 to 0xFFFFFF"); ok {
		t.OUI = uint32(v)
	}
	if s, ok := p.scalar(f["state_dir"], "target.state_dir", "a directory path"); ok {
		if s == "" || strings.IndexByte(s, 0) >= 0 {
			p.errf(f["state_dir"].Line, "target.state_dir", "%s is not allowed (a directory path)", strconv.Quote(s))
		} else {
			t.StateDir = s
		}
	}
}

func (p *parser) logging(n *yaml.Node, l *Logging) {
	f := p.fields(n, "logging", loggingKeys)
	if s, ok := p.oneOf(f["level"], "logging.level", "debug", "info", "warn", "error"); ok {
		l.Level = s
	}
	if s, ok := p.oneOf(f["format"], "logging.format", "console", "json"); ok {
		l.Format = s
	}
}

// lus parses the luns list, then checks what no single LU can: unique
// names, LUNs and WWNs.
func (p *parser) lus(n *yaml.Node, rootLine int, t Target) []LU {
	items := p.list(n, "luns", "LUs")
	if len(items) == 0 {
		line := rootLine
		if l, ok := p.lines["luns"]; ok {
			line = l
		}
		if n == nil || isNull(n) || n.Kind == yaml.SequenceNode {
			p.errf(line, "luns", "required (a list of at least one LU)")
		}
		return nil
	}
	if len(items) > maxLUs {
		p.errf(p.lines["luns"], "luns", "%d LUs are not allowed (at most %d)", len(items), maxLUs)
		return nil
	}
	lus := make([]LU, 0, len(items))
	lunSet := make([]lunSource, 0, len(items))
	for i, it := range items {
		lu, src := p.lu(it, i, t)
		lus = append(lus, lu)
		lunSet = append(lunSet, src)
	}
	names := make(map[string]int)
	luns := make(map[uint16]int)
	wwns := make(map[[16]byte]int)
	for i := range lus {
		lu := &lus[i]
		if lu.Name != "" {
			if j, dup := names[lu.Name]; dup {
				p.errf(p.line(lu.Field("name")), lu.Field("name"), "%q is already the name of luns[%d] (line %d); names must be unique", lu.Name, j, p.line(lus[j].Field("")))
			} else {
				names[lu.Name] = i
			}
		}
		if lunSet[i] != lunInvalid {
			if j, dup := luns[lu.LUN]; dup {
				what := strconv.Itoa(int(lu.LUN))
				if lunSet[i] == lunDefault {
					what += " (the default: the LU's position in the list)"
				}
				p.errf(p.line(lu.Field("lun")), lu.Field("lun"), "%s is already the LUN of luns[%d] (line %d); LUNs must be unique, set lun to a free one", what, j, p.line(lus[j].Field("")))
			} else {
				luns[lu.LUN] = i
			}
		}
		// A generated WWN repeats whenever the name does: that is
		// reported already.
		if lu.WWNSet || lu.Name != "" && names[lu.Name] == i {
			if j, dup := wwns[lu.WWN]; dup {
				p.errf(p.line(lu.Field("wwn")), lu.Field("wwn"), "naa.%x is already the WWN of luns[%d] (line %d); WWNs must be unique", lu.WWN, j, p.line(lus[j].Field("")))
			} else {
				wwns[lu.WWN] = i
			}
		}
	}
	return lus
}

// line returns the line of field or of the nearest enclosing field given.
func (p *parser) line(field string) int {
	for f := field; f != ""; f = parentField(f) {
		if l, ok := p.lines[f]; ok {
			return l
		}
	}
	return 0
}

// lunSource tells where an LU's LUN came from.
type lunSource int

const (
	lunDefault lunSource = iota // the LU's position in the list
	lunGiven
	lunInvalid // given but invalid (reported), or no LU at all
)

// lu parses one LU.
func (p *parser) lu(n *yaml.Node, i int, t Target) (LU, lunSource) {
	lu := LU{Index: i, LUN: uint16(i), Type: TypeDisk, Vendor: t.Vendor}
	field := lu.Field("")
	line := p.line(field)
	f := p.fields(n, field, luKeys)
	if n.Kind != yaml.MappingNode {
		if isNull(n) {
			p.errf(line, field, "empty is not allowed (a mapping with keys %s)", strings.Join(luKeys, ", "))
		}
		return lu, lunInvalid // otherwise reported by fields
	}

	if s, ok := p.scalar(f["name"], lu.Field("name"), nameAllowed); ok {
		if !nameRE.MatchString(s) || s == "." || s == ".." {
			p.errf(f["name"].Line, lu.Field("name"), "%s is not allowed (%s)", strconv.Quote(s), nameAllowed)
		} else {
			lu.Name = s
		}
	} else if f["name"] == nil || isNull(f["name"]) {
		p.errf(line, lu.Field("name"), "required (%s)", nameAllowed)
	}

	src := lunDefault
	if v, ok := p.number(f["lun"], lu.Field("lun"), maxLUN, fmt.Sprintf("0 to %d", maxLUN)); ok {
		lu.LUN, src = uint16(v), lunGiven
	} else if f["lun"] != nil && !isNull(f["lun"]) {
		src = lunInvalid
	}

	if s, ok := p.scalar(f["type"], lu.Field("type"), "disk"); ok {
		switch s {
		case TypeDisk:
		case "tape", "changer":
			p.errf(f["type"].Line, lu.Field("type"), "%s is not supported yet (only disk)", s)
		default:
			p.errf(f["type"].Line, lu.Field("type"), "%s is not allowed (disk)", describe(f["type"]))
		}
	}

	if b, ok := p.boolean(f["read_only"], lu.Field("read_only")); ok {
		lu.ReadOnly = b
	}
	lu.Backstore = p.backstore(f["backstore"], &lu, line)

	lu.Serial = lu.Name
	if s, ok := p.text(f["serial"], lu.Field("serial"), maxSerialLen); ok {
		lu.Serial = s
	}
	for _, x := range []struct {
		key string
		max int
		dst *string
	}{{"vendor", 8, &lu.Vendor}, {"product", 16, &lu.Product}, {"revision", 4, &lu.Revision}} {
		if s, ok := p.text(f[x.key], lu.Field(x.key), x.max); ok {
			*x.dst = s
		}
	}

	if s, ok := p.scalar(f["wwn"], lu.Field("wwn"), wwnAllowed); ok {
		w, err := ParseWWN(s)
		if err != nil {
			p.errf(f["wwn"].Line, lu.Field("wwn"), "%s is not allowed (%s)", strconv.Quote(s), wwnAllowed)
		} else {
			lu.WWN, lu.WWNSet = w, true
		}
	}
	if !lu.WWNSet {
		lu.WWN = GenerateWWN(t.OUI, lu.Name, lu.Serial)
	}
	return lu, src
}

// GenerateWWN derives an LU's NAA 6 designator from the company id, the LU
// name and its serial number: stable across restarts, and changed by a
// change of any of the three.
func GenerateWWN(oui uint32, name, serial string) [16]byte {
	return scsi.NewNAA(oui, []byte(name+"/"+serial))
}

const wwnAllowed = "32 hex digits of an NAA 6 designator: naa.6…, 0x6… or 6…"

// ParseWWN parses an NAA 6 designator: 32 hex digits starting with 6,
// optionally prefixed by "naa." or "0x".
func ParseWWN(s string) ([16]byte, error) {
	var w [16]byte
	h := strings.ToLower(s)
	if rest, ok := strings.CutPrefix(h, "naa."); ok {
		h = rest
	} else if rest, ok := strings.CutPrefix(h, "0x"); ok {
		h = rest
	}
	if len(h) != 32 || h[0] != '6' {
		return w, errors.New("not an NAA 6 designator")
	}
	for i := 0; i < 16; i++ {
		v, err := strconv.ParseUint(h[2*i:2*i+2], 16, 8)
		if err != nil {
			return w, err
		}
		w[i] = byte(v)
	}
	return w, nil
}

const (
	portIDAllowed = "32 hex digits, optionally prefixed by 0x"
	kinds         = "null, memory, file or block"
)

// ParsePortID parses a 128-bit SRP port identifier written as 32 hex
// digits, optionally prefixed by "0x".
func ParsePortID(s string) (scsi.PortID, error) {
	var id scsi.PortID
	h := strings.TrimPrefix(strings.ToLower(s), "0x")
	if len(h) != 32 {
		return id, errors.New("not 32 hex digits")
	}
	for i := 0; i < 16; i++ {
		v, err := strconv.ParseUint(h[2*i:2*i+2], 16, 8)
		if err != nil {
			return id, err
		}
		id[i] = byte(v)
	}
	return id, nil
}

// backstore parses an LU's backstore mapping; line is the LU's.
func (p *parser) backstore(n *yaml.Node, lu *LU, luLine int) backstore.Spec {
	field := lu.Field("backstore")
	spec := backstore.Spec{ReadOnly: lu.ReadOnly}
	if n == nil || isNull(n) {
		p.errf(luLine, field, "required (a mapping with kind %s and its settings)", kinds)
		return spec
	}
	line := p.line(field)
	f := p.fields(n, field, backstoreKeys)
	if n.Kind != yaml.MappingNode {
		return spec
	}
	sub := func(k string) string { return field + "." + k }
	at := func(k string) int { return f[k].Line }
	given := func(k string) bool { return f[k] != nil && !isNull(f[k]) }

	if k := f["kind"]; k != nil && isNull(k) && strings.EqualFold(k.Value, "null") {
		// kind: null is the null store, not YAML's null.
		c := *k
		c.Tag = "!!str"
		f["kind"] = &c
	}
	kind, ok := p.oneOf(f["kind"], sub("kind"), "null", "memory", "file", "block")
	if !ok {
		if !given("kind") {
			p.errf(line, sub("kind"), "required (%s)", kinds)
		}
		// Without a kind the kind-dependent rules cannot be checked;
		// still check the values themselves.
	}
	spec.Kind = kind
	onDisk := kind == backstore.KindFile || kind == backstore.KindBlock

	// notFor reports a setting given for a kind it does not apply to.
	notFor := func(k, applies string) {
		p.errf(at(k), sub(k), "not allowed for kind %s (only for %s)", kind, applies)
	}

	if s, ok := p.scalar(f["path"], sub("path"), "a file or device path"); ok {
		switch {
		case s == "" || strings.IndexByte(s, 0) >= 0:
			p.errf(at("path"), sub("path"), "%s is not allowed (a file or device path)", strconv.Quote(s))
		case kind != "" && !onDisk:
			notFor("path", "file and block")
		default:
			spec.Path = s
		}
	} else if onDisk && !given("path") {
		p.errf(line, sub("path"), "required for kind %s (the %s's path)", kind, map[bool]string{true: "file", false: "device"}[kind == backstore.KindFile])
	}

	var bsOK = true
	if v, ok := p.number(f["block_size"], sub("block_size"), 1<<32-1, "512 or 4096"); ok {
		if v != 512 && v != 4096 {
			p.errf(at("block_size"), sub("block_size"), "%d is not allowed (512 or 4096)", v)
			bsOK = false
		} else {
			spec.BlockSize = uint32(v)
		}
	} else if given("block_size") {
		bsOK = false
	}

	if v, ok := p.size(f["size"], sub("size")); ok {
		bs := int64(spec.BlockSize)
		if bs == 0 && kind != backstore.KindBlock {
			bs = backstore.DefaultBlockSize
		}
		switch {
		case v == 0:
			p.errf(at("size"), sub("size"), "0 is not allowed (a positive multiple of the block size; for file and block leave size out to use the whole file or device)")
		case bs != 0 && bsOK && v%bs != 0:
			p.errf(at("size"), sub("size"), "%s (%d bytes) is not allowed (a multiple of the block size %d)", f["size"].Value, v, bs)
		default:
			spec.Size = v
		}
	} else if (kind == backstore.KindNull || kind == backstore.KindMemory) && !given("size") {
		p.errf(line, sub("size"), "required for kind %s (%s)", kind, sizeAllowed)
	}

	if b, ok := p.boolean(f["create"], sub("create")); ok && b {
		switch {
		case kind != "" && kind != backstore.KindFile:
			notFor("create", "file")
		case lu.ReadOnly:
			p.errf(at("create"), sub("create"), "true is not allowed with read_only: true (a read-only LU does not create its file)")
		case !given("size"):
			p.errf(at("create"), sub("create"), "true needs a size (the size to create or extend the file to)")
		default:
			spec.Create = true
		}
	}

	if b, ok := p.boolean(f["direct"], sub("direct")); ok && b {
		if kind != "" && !onDisk {
			notFor("direct", "file and block")
		} else {
			spec.Direct = true
		}
	}

	if s, ok := p.scalar(f["pattern"], sub("pattern"), patternAllowed); ok {
		switch {
		case !validPattern(s):
			p.errf(at("pattern"), sub("pattern"), "%s is not allowed (%s)", strconv.Quote(s), patternAllowed)
		case kind != "" && kind != backstore.KindNull:
			notFor("pattern", "null")
		default:
			spec.NullPattern = s
		}
	}

	if v, ok := p.size(f["max_allocated"], sub("max_allocated")); ok {
		if kind != "" && kind != backstore.KindMemory {
			notFor("max_allocated", "memory")
		} else {
			spec.MaxAllocated = v
		}
	}
	return spec
}

const patternAllowed = "zeros, or 0x and the hex bytes of a pattern of 1 to 4096 bytes"

func validPattern(s string) bool {
	if s == "zeros" {
		return true
	}
	h, ok := strings.CutPrefix(s, "0x")
	if !ok || len(h) == 0 || len(h)%2 != 0 || len(h) > 2*maxPattern {
		return false
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

func (p *parser) rdma(n *yaml.Node, line int) *RDMA {
	r := &RDMA{}
	f := p.fields(n, "rdma", rdmaKeys)
	const listenAllowed = "IP:port, as 192.0.2.1:5000 or [fe80::1%ib0]:5000"
	items := p.list(f["listen"], "rdma.listen", "addresses "+listenAllowed)
	if len(items) == 0 && (f["listen"] == nil || isNull(f["listen"]) || f["listen"].Kind == yaml.SequenceNode) {
		p.errf(line, "rdma.listen", "required (a list of at least one address, %s)", listenAllowed)
	}
	seen := make(map[netip.AddrPort]int)
	for i, it := range items {
		field := fmt.Sprintf("rdma.listen[%d]", i)
		s, ok := p.scalar(it, field, listenAllowed)
		if !ok {
			if isNull(it) {
				p.errf(it.Line, field, "empty is not allowed (%s)", listenAllowed)
			}
			continue
		}
		ap, err := netip.ParseAddrPort(s)
		if err != nil || ap.Port() == 0 || !ap.Addr().IsValid() {
			p.errf(it.Line, field, "%s is not allowed (%s, port 1 to 65535)", strconv.Quote(s), listenAllowed)
			continue
		}
		if j, dup := seen[ap]; dup {
			p.errf(it.Line, field, "%s is already rdma.listen[%d]", strconv.Quote(s), j)
			continue
		}
		seen[ap] = i
		r.Listen = append(r.Listen, ap)
	}
	if s, ok := p.scalar(f["port_id"], "rdma.port_id", portIDAllowed); ok {
		id, err := ParsePortID(s)
		if err != nil {
			p.errf(f["port_id"].Line, "rdma.port_id", "%s is not allowed (%s)", describe(f["port_id"]), portIDAllowed)
		} else {
			r.PortID, r.PortIDSet = id, true
		}
	}
	return r
}

const (
	xenLUNAllowed = "'LU, H:C:T:L' with the name of an LU of luns and a virtual SCSI address, as 'disk0, 0:0:0:0'"
	domainAllowed = "a domain name or id: 1 to 64 of A-Z a-z 0-9 . _ : + -"
)

func (p *parser) xen(n *yaml.Node, line int, lus []LU) *Xen {
	x := &Xen{}
	f := p.fields(n, "xen", xenKeys)
	items := p.list(f["guests"], "xen.guests", "guests")
	if len(items) == 0 && (f["guests"] == nil || isNull(f["guests"]) || f["guests"].Kind == yaml.SequenceNode) {
		p.errf(line, "xen.guests", "required (a list of at least one guest with domain and luns)")
	}
	names := make(map[string]bool, len(lus))
	for _, lu := range lus {
		names[lu.Name] = true
	}
	type addr struct {
		domain string
		vdev   string
	}
	used := make(map[addr]string)
	for i, it := range items {
		field := fmt.Sprintf("xen.guests[%d]", i)
		g := XenGuest{}
		gf := p.fields(it, field, guestKeys)
		if it.Kind != yaml.MappingNode {
			if isNull(it) {
				p.errf(it.Line, field, "empty is not allowed (a mapping with keys %s)", strings.Join(guestKeys, ", "))
			}
			continue
		}
		if s, ok := p.scalar(gf["domain"], field+".domain", domainAllowed); ok {
			if !domainRE.MatchString(s) {
				p.errf(gf["domain"].Line, field+".domain", "%s is not allowed (%s)", strconv.Quote(s), domainAllowed)
			} else {
				g.Domain = s
			}
		} else if gf["domain"] == nil || isNull(gf["domain"]) {
			p.errf(it.Line, field+".domain", "required (%s)", domainAllowed)
		}
		luns := p.list(gf["luns"], field+".luns", "entries "+xenLUNAllowed)
		if len(luns) == 0 && (gf["luns"] == nil || isNull(gf["luns"]) || gf["luns"].Kind == yaml.SequenceNode) {
			p.errf(it.Line, field+".luns", "required (a list of at least one entry %s)", xenLUNAllowed)
		}
		for j, ln := range luns {
			lf := fmt.Sprintf("%s.luns[%d]", field, j)
			s, ok := p.scalar(ln, lf, xenLUNAllowed)
			if !ok {
				if isNull(ln) {
					p.errf(ln.Line, lf, "empty is not allowed (%s)", xenLUNAllowed)
				}
				continue
			}
			xl, err := ParseXenLUN(s)
			if err != nil {
				p.errf(ln.Line, lf, "%s is not allowed: %v (%s)", strconv.Quote(s), err, xenLUNAllowed)
				continue
			}
			if !names[xl.LU] {
				p.errf(ln.Line, lf, "LU %q is not allowed (the name of an LU of luns: %s)", xl.LU, luNames(lus))
				continue
			}
			if g.Domain != "" {
				a := addr{g.Domain, xl.VDev()}
				if prev, dup := used[a]; dup {
					p.errf(ln.Line, lf, "%s of domain %s is already taken by %s; each virtual SCSI address is given once", xl.VDev(), g.Domain, prev)
					continue
				}
				used[a] = lf
			}
			g.LUNs = append(g.LUNs, xl)
		}
		x.Guests = append(x.Guests, g)
	}
	return x
}

// ParseXenLUN parses an xl-style vscsi entry 'LU, H:C:T:L'. The virtual
// SCSI address's channel, target and LUN are 16-bit (vscsiif), the LUN at
// most 16383; the host is a virtual SCSI host number of the guest.
func ParseXenLUN(s string) (XenLUN, error) {
	var x XenLUN
	name, vdev, ok := strings.Cut(s, ",")
	if !ok {
		return x, errors.New("no comma between LU and address")
	}
	x.LU = strings.TrimSpace(name)
	if !nameRE.MatchString(x.LU) {
		return x, fmt.Errorf("%q is not an LU name", x.LU)
	}
	parts := strings.Split(strings.TrimSpace(vdev), ":")
	if len(parts) != 4 {
		return x, fmt.Errorf("%q is not H:C:T:L", strings.TrimSpace(vdev))
	}
	names := []string{"H", "C", "T", "L"}
	max := []uint64{65535, 65535, 65535, maxLUN}
	dst := []*uint32{&x.Host, &x.Channel, &x.Target, &x.LUN}
	for i, part := range parts {
		v, err := strconv.ParseUint(part, 10, 32)
		if err != nil || v > max[i] {
			return x, fmt.Errorf("%s %q is not 0 to %d", names[i], part, max[i])
		}
		*dst[i] = uint32(v)
	}
	return x, nil
}

// luNames lists the defined LU names for an error message.
func luNames(lus []LU) string {
	var names []string
	seen := make(map[string]bool)
	for _, lu := range lus {
		if lu.Name != "" && !seen[lu.Name] {
			seen[lu.Name] = true
			names = append(names, lu.Name)
		}
	}
	if len(names) == 0 {
		return "none is defined"
	}
	if len(names) > 8 {
		return strings.Join(names[:8], ", ") + ", ..."
	}
	return strings.Join(names, ", ")
}
