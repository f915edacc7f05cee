package xenstore

import (
	"fmt"
	"strconv"
	"strings"
)

// Tx is a XenStore transaction ID; 0 (None) means no transaction.
type Tx uint32

// None is "no transaction".
const None Tx = 0

// Perm is one entry of a node's access list. The first entry of a list
// names the owner (who may do everything) and, in its access bits, what
// every domain not listed may do; the later entries grant a domain read
// and/or write (docs/misc/xenstore.txt, "Permissions").
type Perm struct {
	Dom   uint16
	Read  bool
	Write bool
}

// String is the wire form: "n5", "r5", "w5" or "b5".
func (p Perm) String() string {
	c := byte('n')
	switch {
	case p.Read && p.Write:
		c = 'b'
	case p.Read:
		c = 'r'
	case p.Write:
		c = 'w'
	}
	return string(c) + strconv.Itoa(int(p.Dom))
}

// ParsePerm parses the wire form of a permission.
func ParsePerm(s string) (Perm, error) {
	if len(s) < 2 {
		return Perm{}, fmt.Errorf("xenstore: bad permission %q", s)
	}
	var p Perm
	switch s[0] {
	case 'n':
	case 'r':
		p.Read = true
	case 'w':
		p.Write = true
	case 'b':
		p.Read, p.Write = true, true
	default:
		return Perm{}, fmt.Errorf("xenstore: bad permission %q", s)
	}
	d, err := strconv.ParseUint(s[1:], 10, 16)
	if err != nil {
		return Perm{}, fmt.Errorf("xenstore: bad permission %q", s)
	}
	p.Dom = uint16(d)
	return p, nil
}

// FormatPerms is a permission list as xenstore-ls shows it.
func FormatPerms(ps []Perm) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return strings.Join(s, ",")
}

// WatchEvent is one firing of a watch: the node that changed (or the
// special path "@introduceDomain" / "@releaseDomain") and the token given
// to Watch. A watch fires once as soon as it is set.
type WatchEvent struct {
	Path  string
	Token string
}

// Special watch paths (docs/misc/xenstore.txt).
const (
	IntroduceDomain = "@introduceDomain"
	ReleaseDomain   = "@releaseDomain"
)
