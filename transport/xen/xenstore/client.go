package xenstore

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
)

// ErrClosed is returned by a closed client.
var ErrClosed = errors.New("xenstore: connection closed")

// Client is a XenStore connection over any byte stream that carries
// xs_wire messages: xenstored's Unix socket (Dial) or the kernel's
// /dev/xen/xenbus (package xendev opens it). Requests may be issued from
// many goroutines; replies are matched by req_id, and watch events go to
// Events through an unbounded queue, so a slow event reader never stalls
// replies.
type Client struct {
	conn io.ReadWriteCloser

	wmu  sync.Mutex // one whole message per write
	wbuf []byte

	mu      sync.Mutex
	nextID  uint32
	pending map[uint32]chan reply
	closed  bool
	err     error

	evq    eventQueue
	events chan WatchEvent
	done   chan struct{}
}

type reply struct {
	h Header
	p []byte
}

// Dial connects to xenstored's Unix socket (/run/xenstored/socket).
func Dial(path string) (*Client, error) {
	c, err := net.Dial("unix", path)
	if err != nil {
		return nil, err
	}
	return NewClient(c), nil
}

// NewClient runs the protocol over conn, which it owns from now on.
func NewClient(conn io.ReadWriteCloser) *Client {
	c := &Client{
		conn:    conn,
		pending: make(map[uint32]chan reply),
		events:  make(chan WatchEvent),
		done:    make(chan struct{}),
	}
	c.evq.init()
	go c.readLoop()
	go c.evq.pump(c.events)
	return c
}

func (c *Client) readLoop() {
	r := bufio.NewReaderSize(c.conn, HeaderSize+PayloadMax)
	var hb [HeaderSize]byte
	var err error
	for {
		if _, err = io.ReadFull(r, hb[:]); err != nil {
			break
		}
		var h Header
		if h, err = DecodeHeader(hb[:]); err != nil {
			break
		}
		p := make([]byte, h.Len)
		if _, err = io.ReadFull(r, p); err != nil {
			break
		}
		if h.Type == WatchEventMsg {
			if ev, perr := ParseWatchEvent(p); perr == nil {
				c.evq.push(ev)
			}
			continue
		}
		c.mu.Lock()
		ch := c.pending[h.ReqID]
		delete(c.pending, h.ReqID)
		c.mu.Unlock()
		if ch != nil {
			ch <- reply{h, p}
		}
	}
	c.shutdown(fmt.Errorf("%w: %v", ErrClosed, err))
}

func (c *Client) shutdown(err error) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	c.err = err
	for id, ch := range c.pending {
		close(ch)
		delete(c.pending, id)
	}
	c.mu.Unlock()
	c.conn.Close()
	c.evq.close()
	close(c.done)
}

// Close closes the connection; Events is closed after the queued events.
func (c *Client) Close() error {
	c.shutdown(ErrClosed)
	return nil
}

// Done is closed when the connection ends (Close, or the peer hung up).
func (c *Client) Done() <-chan struct{} { return c.done }

// Events delivers watch events.
func (c *Client) Events() <-chan WatchEvent { return c.events }

// request sends one message and waits for its reply payload.
func (c *Client) request(t MsgType, tx Tx, path string, raw bool, parts ...string) ([]byte, error) {
	ch := make(chan reply, 1)
	c.mu.Lock()
	if c.closed {
		err := c.err
		c.mu.Unlock()
		return nil, &OpError{t, path, err}
	}
	c.nextID++
	id := c.nextID
	c.pending[id] = ch
	c.mu.Unlock()

	c.wmu.Lock()
	var err error
	c.wbuf, err = AppendMsg(c.wbuf[:0], Header{Type: t, ReqID: id, TxID: uint32(tx)}, raw, parts...)
	if err == nil {
		_, err = c.conn.Write(c.wbuf)
	}
	c.wmu.Unlock()
	if err != nil {
		c.mu.Lock()
		delete(c.pending, id)
		c.mu.Unlock()
		return nil, &OpError{t, path, err}
	}
	r, ok := <-ch
	if !ok {
		c.mu.Lock()
		err := c.err
		c.mu.Unlock()
		return nil, &OpError{t, path, err}
	}
	if r.h.Type == Error {
		return nil, &OpError{t, path, ParseError(r.p)}
	}
	if r.h.Type != t {
		return nil, &OpError{t, path, bad("answered with %v", r.h.Type)}
	}
	return r.p, nil
}

// Read returns a node's value.
func (c *Client) Read(tx Tx, path string) (string, error) {
	p, err := c.request(Read, tx, path, false, path)
	return string(p), err
}

// Write sets a node's value, creating it and missing parents.
func (c *Client) Write(tx Tx, path, value string) error {
	_, err := c.request(Write, tx, path, true, path, value)
	return err
}

// Mkdir creates a node with an empty value if missing.
func (c *Client) Mkdir(tx Tx, path string) error {
	_, err := c.request(Mkdir, tx, path, false, path)
	return err
}

// Remove deletes a node and its children; a missing node is not an error.
func (c *Client) Remove(tx Tx, path string) error {
	_, err := c.request(Rm, tx, path, false, path)
	if isNotExist(err) {
		return nil
	}
	return err
}

// List returns the names of a node's children.
func (c *Client) List(tx Tx, path string) ([]string, error) {
	p, err := c.request(Directory, tx, path, false, path)
	if err != nil {
		return nil, err
	}
	return Strings(p), nil
}

// Perms returns a node's access list.
func (c *Client) Perms(tx Tx, path string) ([]Perm, error) {
	p, err := c.request(GetPerms, tx, path, false, path)
	if err != nil {
		return nil, err
	}
	ps, err := ParsePerms(p)
	if err != nil {
		return nil, &OpError{GetPerms, path, err}
	}
	return ps, nil
}

// SetPerms replaces a node's access list.
func (c *Client) SetPerms(tx Tx, path string, perms []Perm) error {
	parts := []string{path}
	for _, p := range perms {
		parts = append(parts, p.String())
	}
	_, err := c.request(SetPerms, tx, path, false, parts...)
	return err
}

// Begin starts a transaction.
func (c *Client) Begin() (Tx, error) {
	p, err := c.request(TransactionStart, None, "", false, "")
	if err != nil {
		return 0, err
	}
	s := string(p)
	for len(s) > 0 && s[len(s)-1] == 0 {
		s = s[:len(s)-1]
	}
	id, err := strconv.ParseUint(s, 10, 32)
	if err != nil || id == 0 {
		return 0, &OpError{TransactionStart, "", bad("transaction id %q", s)}
	}
	return Tx(id), nil
}

// End commits or abandons a transaction (EAGAIN: start over).
func (c *Client) End(tx Tx, commit bool) error {
	arg := "F"
	if commit {
		arg = "T"
	}
	_, err := c.request(TransactionEnd, tx, "", false, arg)
	return err
}

// Watch sets a watch; it fires once at once.
func (c *Client) Watch(path, token string) error {
	_, err := c.request(Watch, None, path, false, path, token)
	return err
}

// Unwatch removes a watch.
func (c *Client) Unwatch(path, token string) error {
	_, err := c.request(Unwatch, None, path, false, path, token)
	return err
}

// eventQueue is an unbounded FIFO of watch events feeding a channel.
type eventQueue struct {
	mu     sync.Mutex
	cond   *sync.Cond
	q      []WatchEvent
	closed bool
	stop   chan struct{}
}

func (e *eventQueue) init() {
	e.cond = sync.NewCond(&e.mu)
	e.stop = make(chan struct{})
}

func (e *eventQueue) push(ev WatchEvent) {
	e.mu.Lock()
	if !e.closed {
		e.q = append(e.q, ev)
		e.cond.Signal()
	}
	e.mu.Unlock()
}

func (e *eventQueue) close() {
	e.mu.Lock()
	if !e.closed {
		close(e.stop)
	}
	e.closed = true
	e.cond.Broadcast()
	e.mu.Unlock()
}

// pump moves queued events to out until the queue is closed, then closes
// out.
func (e *eventQueue) pump(out chan<- WatchEvent) {
	defer close(out)
	for {
		e.mu.Lock()
		for len(e.q) == 0 && !e.closed {
			e.cond.Wait()
		}
		if len(e.q) == 0 {
			e.mu.Unlock()
			return
		}
		if e.closed {
			e.q = nil
			e.mu.Unlock()
			return
		}
		ev := e.q[0]
		e.q = e.q[1:]
		e.mu.Unlock()
		select {
		case out <- ev:
		case <-e.stop:
			return
		}
	}
}
