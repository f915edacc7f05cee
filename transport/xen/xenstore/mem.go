package xenstore

import (
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// Mem is an in-memory XenStore: the nodes, their permissions, watches,
// transactions and the @introduceDomain/@releaseDomain events, enough to
// run the transport's backend protocol against simulated frontends. Each
// domain talks to it through its own connection (Connect); connections of
// domains other than 0 are subject to the node permissions, as in
// xenstored, so permission races show up in tests.
type Mem struct {
	mu      sync.Mutex
	nodes   map[string]*memNode
	gen     uint64
	conns   map[*MemConn]struct{}
	nextTx  uint32
	history []string // writes and removals, for tests
}

type memNode struct {
	value string
	perms []Perm
}

func (n *memNode) clone() *memNode {
	return &memNode{value: n.value, perms: append([]Perm(nil), n.perms...)}
}

// NewMem returns a store holding "/" (owned by dom0, others none).
func NewMem() *Mem {
	m := &Mem{nodes: map[string]*memNode{}, conns: map[*MemConn]struct{}{}}
	m.nodes["/"] = &memNode{perms: []Perm{{Dom: 0}}}
	return m
}

// MemConn is one domain's connection to a Mem. It implements the
// transport's Store interface.
type MemConn struct {
	m       *Mem
	dom     uint16
	watches map[[2]string]struct{}
	txs     map[Tx]*memTx
	evq     eventQueue
	events  chan WatchEvent
	closed  bool
}

type memTx struct {
	base  uint64
	nodes map[string]*memNode
}

// Connect opens a connection for domain dom.
func (m *Mem) Connect(dom uint16) *MemConn {
	c := &MemConn{m: m, dom: dom, watches: map[[2]string]struct{}{}, txs: map[Tx]*memTx{}, events: make(chan WatchEvent)}
	c.evq.init()
	go c.evq.pump(c.events)
	m.mu.Lock()
	m.conns[c] = struct{}{}
	m.mu.Unlock()
	return c
}

func parent(p string) string {
	i := strings.LastIndexByte(p, '/')
	if i <= 0 {
		return "/"
	}
	return p[:i]
}

func clean(p string) (string, error) {
	if !strings.HasPrefix(p, "/") || strings.Contains(p, "//") || len(p) > AbsPathMax || strings.ContainsRune(p, 0) {
		return "", syscall.EINVAL
	}
	if len(p) > 1 {
		p = strings.TrimSuffix(p, "/")
	}
	return p, nil
}

func (c *MemConn) can(n *memNode, write bool) bool {
	if c.dom == 0 || len(n.perms) == 0 {
		return true
	}
	if n.perms[0].Dom == c.dom {
		return true
	}
	for _, p := range n.perms[1:] {
		if p.Dom == c.dom {
			return write && p.Write || !write && p.Read
		}
	}
	return write && n.perms[0].Write || !write && n.perms[0].Read
}

// view returns the node map an operation works on.
func (c *MemConn) view(tx Tx) (map[string]*memNode, error) {
	if c.closed {
		return nil, ErrClosed
	}
	if tx == None {
		return c.m.nodes, nil
	}
	t := c.txs[tx]
	if t == nil {
		return nil, syscall.ENOENT
	}
	return t.nodes, nil
}

func (c *MemConn) op(t MsgType, tx Tx, path string, f func(nodes map[string]*memNode, p string) ([]string, error)) error {
	c.m.mu.Lock()
	defer c.m.mu.Unlock()
	p, err := clean(path)
	if err != nil {
		return &OpError{t, path, err}
	}
	nodes, err := c.view(tx)
	if err != nil {
		return &OpError{t, path, err}
	}
	changed, err := f(nodes, p)
	if err != nil {
		return &OpError{t, path, err}
	}
	if tx == None && len(changed) > 0 {
		c.m.gen++
		c.m.fire(changed)
	}
	return nil
}

// fire queues watch events for changed paths (m.mu held).
func (m *Mem) fire(changed []string) {
	for _, p := range changed {
		m.history = append(m.history, p)
		for c := range m.conns {
			for w := range c.watches {
				if p == w[0] || strings.HasPrefix(p, strings.TrimSuffix(w[0], "/")+"/") {
					c.evq.push(WatchEvent{Path: p, Token: w[1]})
				}
			}
		}
	}
}

func (c *MemConn) Read(tx Tx, path string) (string, error) {
	var v string
	err := c.op(Read, tx, path, func(nodes map[string]*memNode, p string) ([]string, error) {
		n := nodes[p]
		if n == nil {
			return nil, syscall.ENOENT
		}
		if !c.can(n, false) {
			return nil, syscall.EACCES
		}
		v = n.value
		return nil, nil
	})
	return v, err
}

// create makes p and missing parents (inheriting perms) and returns the
// created paths; the caller checked write access to the nearest ancestor.
func (c *MemConn) create(nodes map[string]*memNode, p string) ([]string, error) {
	var missing []string
	q := p
	for nodes[q] == nil {
		missing = append(missing, q)
		q = parent(q)
	}
	if !c.can(nodes[q], true) {
		return nil, syscall.EACCES
	}
	for i := len(missing) - 1; i >= 0; i-- {
		par := nodes[parent(missing[i])]
		perms := append([]Perm(nil), par.perms...)
		if c.dom != 0 && len(perms) > 0 {
			// xenstored: a node a guest creates is owned by the guest.
			perms[0].Dom = c.dom
		}
		nodes[missing[i]] = &memNode{perms: perms}
	}
	return missing, nil
}

func (c *MemConn) Write(tx Tx, path, value string) error {
	return c.op(Write, tx, path, func(nodes map[string]*memNode, p string) ([]string, error) {
		if n := nodes[p]; n != nil {
			if !c.can(n, true) {
				return nil, syscall.EACCES
			}
			n.value = value
			return []string{p}, nil
		}
		created, err := c.create(nodes, p)
		if err != nil {
			return nil, err
		}
		nodes[p].value = value
		return created, nil
	})
}

func (c *MemConn) Mkdir(tx Tx, path string) error {
	return c.op(Mkdir, tx, path, func(nodes map[string]*memNode, p string) ([]string, error) {
		if nodes[p] != nil {
			return nil, nil
		}
		return c.create(nodes, p)
	})
}

func (c *MemConn) Remove(tx Tx, path string) error {
	return c.op(Rm, tx, path, func(nodes map[string]*memNode, p string) ([]string, error) {
		n := nodes[p]
		if n == nil {
			return nil, nil
		}
		if !c.can(nodes[parent(p)], true) && !c.can(n, true) {
			return nil, syscall.EACCES
		}
		var gone []string
		for q := range nodes {
			if q == p || strings.HasPrefix(q, p+"/") {
				gone = append(gone, q)
			}
		}
		sort.Strings(gone)
		for _, q := range gone {
			delete(nodes, q)
		}
		return gone, nil
	})
}

func (c *MemConn) List(tx Tx, path string) ([]string, error) {
	var out []string
	err := c.op(Directory, tx, path, func(nodes map[string]*memNode, p string) ([]string, error) {
		n := nodes[p]
		if n == nil {
			return nil, syscall.ENOENT
		}
		if !c.can(n, false) {
			return nil, syscall.EACCES
		}
		pre := strings.TrimSuffix(p, "/") + "/"
		for q := range nodes {
			if strings.HasPrefix(q, pre) && !strings.Contains(q[len(pre):], "/") && q != "/" {
				out = append(out, q[len(pre):])
			}
		}
		sort.Strings(out)
		return nil, nil
	})
	return out, err
}

func (c *MemConn) Perms(tx Tx, path string) ([]Perm, error) {
	var out []Perm
	err := c.op(GetPerms, tx, path, func(nodes map[string]*memNode, p string) ([]string, error) {
		n := nodes[p]
		if n == nil {
			return nil, syscall.ENOENT
		}
		if !c.can(n, false) {
			return nil, syscall.EACCES
		}
		out = append(out, n.perms...)
		return nil, nil
	})
	return out, err
}

func (c *MemConn) SetPerms(tx Tx, path string, perms []Perm) error {
	return c.op(SetPerms, tx, path, func(nodes map[string]*memNode, p string) ([]string, error) {
		n := nodes[p]
		if n == nil {
			return nil, syscall.ENOENT
		}
		if len(perms) == 0 {
			return nil, syscall.EINVAL
		}
		if c.dom != 0 && (len(n.perms) == 0 || n.perms[0].Dom != c.dom) {
			return nil, syscall.EACCES
		}
		n.perms = append([]Perm(nil), perms...)
		return []string{p}, nil
	})
}

func (c *MemConn) Begin() (Tx, error) {
	c.m.mu.Lock()
	defer c.m.mu.Unlock()
	if c.closed {
		return 0, ErrClosed
	}
	c.m.nextTx++
	t := &memTx{base: c.m.gen, nodes: make(map[string]*memNode, len(c.m.nodes))}
	for k, n := range c.m.nodes {
		t.nodes[k] = n.clone()
	}
	c.txs[Tx(c.m.nextTx)] = t
	return Tx(c.m.nextTx), nil
}

func (c *MemConn) End(tx Tx, commit bool) error {
	c.m.mu.Lock()
	defer c.m.mu.Unlock()
	t := c.txs[tx]
	if t == nil {
		return &OpError{TransactionEnd, "", syscall.ENOENT}
	}
	delete(c.txs, tx)
	if !commit {
		return nil
	}
	if t.base != c.m.gen {
		return &OpError{TransactionEnd, "", syscall.EAGAIN}
	}
	var changed []string
	for k, n := range t.nodes {
		o := c.m.nodes[k]
		if o == nil || o.value != n.value || FormatPerms(o.perms) != FormatPerms(n.perms) {
			changed = append(changed, k)
		}
	}
	for k := range c.m.nodes {
		if t.nodes[k] == nil {
			changed = append(changed, k)
		}
	}
	sort.Strings(changed)
	c.m.nodes = t.nodes
	if len(changed) > 0 {
		c.m.gen++
		c.m.fire(changed)
	}
	return nil
}

func (c *MemConn) Watch(path, token string) error {
	c.m.mu.Lock()
	defer c.m.mu.Unlock()
	if c.closed {
		return ErrClosed
	}
	c.watches[[2]string{path, token}] = struct{}{}
	c.evq.push(WatchEvent{Path: path, Token: token})
	return nil
}

func (c *MemConn) Unwatch(path, token string) error {
	c.m.mu.Lock()
	defer c.m.mu.Unlock()
	if _, ok := c.watches[[2]string{path, token}]; !ok {
		return &OpError{Unwatch, path, syscall.ENOENT}
	}
	delete(c.watches, [2]string{path, token})
	return nil
}

func (c *MemConn) Events() <-chan WatchEvent { return c.events }

func (c *MemConn) Close() error {
	c.m.mu.Lock()
	defer c.m.mu.Unlock()
	if c.closed {
		return nil
	}
	c.closed = true
	delete(c.m.conns, c)
	c.evq.close()
	return nil
}

// IntroduceDomain creates /local/domain/<dom> with name and vm nodes (as
// a toolstack does) and fires @introduceDomain.
func (m *Mem) IntroduceDomain(dom uint16, name, uuid string) {
	base := "/local/domain/" + strconv.Itoa(int(dom))
	c := m.Connect(0)
	c.Write(None, base+"/name", name)
	if uuid != "" {
		c.Write(None, base+"/vm", "/vm/"+uuid)
		c.Write(None, "/vm/"+uuid+"/uuid", uuid)
	}
	c.SetPerms(None, base, []Perm{{Dom: dom}, {Dom: 0, Read: true}})
	c.Write(None, base+"/device", "")
	c.Close()
	m.mu.Lock()
	m.fire([]string{IntroduceDomain})
	m.mu.Unlock()
}

// ReleaseDomain removes /local/domain/<dom> and fires @releaseDomain.
func (m *Mem) ReleaseDomain(dom uint16) {
	c := m.Connect(0)
	c.Remove(None, "/local/domain/"+strconv.Itoa(int(dom)))
	c.Close()
	m.mu.Lock()
	m.fire([]string{ReleaseDomain})
	m.mu.Unlock()
}

// Dump lists every node as "path = value (perms)", sorted (for tests).
func (m *Mem) Dump(prefix string) []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for k, n := range m.nodes {
		if strings.HasPrefix(k, prefix) {
			out = append(out, k+" = \""+n.value+"\" ("+FormatPerms(n.perms)+")")
		}
	}
	sort.Strings(out)
	return out
}
