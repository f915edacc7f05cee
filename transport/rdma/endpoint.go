package rdma

import (
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/srptgt/srptgt/srp"
	"github.com/srptgt/srptgt/transport/rdma/provider"
)

// Work request IDs: kind in the top byte, a buffer or waiter index in the
// next three, and for send queue work requests the sequence number the
// request was posted with in the low four.
const (
	kindRecv  = 1
	kindSend  = 2
	kindRead  = 3
	kindWrite = 4
)

func wrID(kind, idx int, seq uint32) uint64 {
	return uint64(kind)<<56 | uint64(idx&0xFFFFFF)<<32 | uint64(seq)
}

func kindName(kind int) string {
	switch kind {
	case kindRecv:
		return "RECV"
	case kindSend:
		return "SEND"
	case kindRead:
		return "RDMA_READ"
	case kindWrite:
		return "RDMA_WRITE"
	}
	return "work request"
}

func wrKind(id uint64) int      { return int(id >> 56) }
func wrIndex(id uint64) int     { return int(id>>32) & 0xFFFFFF }
func wrSeq(id uint64) uint32    { return uint32(id) }
func seqAfter(a, b uint32) bool { return int32(a-b) > 0 }

// ErrBadDescriptor reports memory descriptors that cover less than the
// transfer.
var ErrBadDescriptor = errors.New("rdma: memory descriptors do not cover the transfer")

// ErrDisconnected is the close reason of a channel the peer disconnected.
var ErrDisconnected = errors.New("rdma: peer disconnected")

// WCError is a work request that completed in error (the queue pair is in
// the error state after it).
type WCError struct {
	Op     string
	Status provider.WCStatus
}

func (e *WCError) Error() string { return fmt.Sprintf("rdma: %s completed with %v", e.Op, e.Status) }

type recvDone struct {
	idx int32
	n   uint32
}

type deferredFree struct {
	b   []byte
	seq uint32
}

// waiter collects the completions of one ReadData call.
type waiter struct {
	remaining atomic.Int32
	done      chan struct{}
	mu        sync.Mutex
	err       error
}

func (w *waiter) setErr(err error) {
	w.mu.Lock()
	if w.err == nil {
		w.err = err
	}
	w.mu.Unlock()
}

// finish accounts n completed (or abandoned) reads.
func (w *waiter) finish(n int32) {
	if w.remaining.Add(-n) == 0 {
		w.done <- struct{}{}
	}
}

// endpointConfig sizes an endpoint.
type endpointConfig struct {
	recvs     int // receive buffers
	recvSize  int // bytes each
	sends     int // send buffers
	sendSize  int
	sqDepth   int // send queue work requests
	readDepth int // RDMA READs outstanding
	waiters   int
	maxMsg    uint32
	polling   bool
	// drainRecv delivers messages received before a close (initiator
	// side); the target stops at once.
	drainRecv bool
}

// endpoint is one reliable-connected queue pair with its completion
// queue, receive ring and send buffers: the part of a target Channel and
// an initiator Conn that moves bytes.
//
// One goroutine (run) polls the completion queue in batches and dispatches:
// receives to the receive queue, send completions to the send buffer free
// list and the send queue accounting, RDMA READ completions to their
// waiters. It blocks on the completion channel through Go's poller unless
// the endpoint polls (Config.Polling). When the endpoint closes, the same
// goroutine lets posted sends finish, disconnects, waits for the flushed
// work requests, destroys the queue pair and releases the memory.
type endpoint struct {
	log *zap.Logger
	ds  *devState
	ar  *arena
	id  provider.ID
	cq  provider.CQ
	qp  provider.QP
	cfg endpointConfig

	// receive ring, owned by the receiving goroutine
	rblock   []byte
	rstride  int
	recvq    chan recvDone
	held     int32
	repost   []provider.RecvWR
	recvOut  atomic.Int32 // receives posted and not completed
	recvRefs atomic.Int32 // the ring is freed when both holders let go
	recvSide atomic.Bool  // the receiving side has let go
	rqMu     sync.Mutex   // serialises PostRecv against teardown

	// send buffers
	sblock  []byte
	sstride int
	sfree   chan int32

	mu   sync.Mutex
	cond sync.Cond
	// pend holds work requests waiting to be posted, in order; one
	// goroutine at a time (flushing) posts them, up to the send queue's
	// room, in batches, so that concurrent senders share one
	// ibv_post_send (one system call on soft RoCE).
	pend     []provider.SendWR
	batch    []provider.SendWR // the flusher's
	flushing bool
	sqUsed   int    // posted and not known complete
	seq      uint32 // last posted
	doneSeq  uint32 // last known complete
	unsig    int    // unsignaled posted since the last signaled
	rdUsed   int    // RDMA READs queued or posted and not complete
	deferred []deferredFree
	torn     bool

	waiters []waiter
	wfree   chan int32

	done      chan struct{}
	closeOnce sync.Once
	reasonMu  sync.Mutex
	reason    error
	// life is held (shared) by every call that touches the buffers or the
	// queue pair; teardown takes it exclusively before freeing them.
	life    sync.RWMutex
	stopped chan struct{}
	onStop  func()
}

// newEndpoint allocates the endpoint's buffers and queues on id's device
// and posts the receives. run must be started by the caller.
func newEndpoint(ds *devState, ar *arena, id provider.ID, cfg endpointConfig, log *zap.Logger) (*endpoint, error) {
	e := &endpoint{
		log: log, ds: ds, ar: ar, id: id, cfg: cfg, held: -1,
		recvq:   make(chan recvDone, cfg.recvs),
		sfree:   make(chan int32, cfg.sends),
		wfree:   make(chan int32, cfg.waiters),
		done:    make(chan struct{}),
		stopped: make(chan struct{}),
		repost:  make([]provider.RecvWR, 0, cfg.recvs),
	}
	e.cond.L = &e.mu
	e.recvRefs.Store(2)
	e.rstride = (cfg.recvSize + 63) &^ 63
	e.sstride = (cfg.sendSize + 63) &^ 63
	var err error
	if e.rblock, err = ar.alloc(e.rstride * cfg.recvs); err != nil {
		return nil, fmt.Errorf("rdma: receive buffers: %w", err)
	}
	if e.sblock, err = ar.alloc(e.sstride * cfg.sends); err != nil {
		ar.free(e.rblock)
		return nil, fmt.Errorf("rdma: send buffers: %w", err)
	}
	for i := 0; i < cfg.sends; i++ {
		e.sfree <- int32(i)
	}
	e.waiters = make([]waiter, cfg.waiters)
	for i := range e.waiters {
		e.waiters[i].done = make(chan struct{}, 1)
		e.wfree <- int32(i)
	}
	dev := ds.dev
	e.cq, err = dev.CreateCQ(cfg.recvs + cfg.sqDepth + 16)
	if err == nil {
		e.qp, err = id.CreateQP(ds.pd, e.cq, provider.QPCap{
			MaxSendWR: cfg.sqDepth, MaxRecvWR: cfg.recvs, MaxSendSGE: 1, MaxRecvSGE: 1})
	}
	if err == nil {
		for i := 0; i < cfg.recvs; i++ {
			e.repost = append(e.repost, e.recvWR(int32(i)))
		}
		err = e.flushReposts()
	}
	if err != nil {
		if e.qp != nil {
			e.qp.Close()
		}
		if e.cq != nil {
			e.cq.Close()
		}
		ar.free(e.rblock)
		ar.free(e.sblock)
		return nil, err
	}
	return e, nil
}

func (e *endpoint) rbuf(i int32) []byte {
	off := int(i) * e.rstride
	return e.rblock[off : off+e.cfg.recvSize : off+e.cfg.recvSize]
}

func (e *endpoint) sbuf(i int32) []byte {
	off := int(i) * e.sstride
	return e.sblock[off : off+e.cfg.sendSize : off+e.cfg.sendSize]
}

func (e *endpoint) recvWR(i int32) provider.RecvWR {
	sge, _ := e.ar.sge(e.rbuf(i))
	return provider.RecvWR{ID: wrID(kindRecv, int(i), 0), Local: sge}
}

// flushReposts posts the receive buffers given back since the last call.
func (e *endpoint) flushReposts() error {
	if len(e.repost) == 0 {
		return nil
	}
	e.rqMu.Lock()
	defer e.rqMu.Unlock()
	if e.torn {
		e.repost = e.repost[:0]
		return srp.ErrClosed
	}
	n, err := e.qp.PostRecv(e.repost)
	e.recvOut.Add(int32(n))
	e.repost = e.repost[:0]
	if err != nil {
		err = fmt.Errorf("rdma: posting receives: %w", err)
		e.close(err)
	}
	return err
}

// recv returns the next received message; it aliases the receive buffer
// until the next call, which gives that buffer back to the queue pair.
// One goroutine calls recv.
func (e *endpoint) recv() ([]byte, error) {
	if e.held >= 0 {
		e.repost = append(e.repost, e.recvWR(e.held))
		e.held = -1
	}
	var r recvDone
	if e.cfg.drainRecv {
		// Messages that arrived before the close come first (an
		// SRP_T_LOGOUT before the target's disconnect).
		select {
		case r = <-e.recvq:
			goto got
		default:
		}
	}
	select {
	case <-e.done:
		return e.recvClosed()
	default:
	}
	select {
	case r = <-e.recvq:
	default:
		// About to block: give every buffer back first, so the peer's
		// credits are all backed by posted receives.
		e.flushReposts()
		select {
		case r = <-e.recvq:
		case <-e.done:
			return e.recvClosed()
		}
	}
got:
	if len(e.repost) >= 16 {
		e.flushReposts()
	}
	e.held = r.idx
	return e.rbuf(r.idx)[:r.n], nil
}

// recvClosed ends recv on a closed endpoint. With drainRecv it first lets
// the teardown poll what arrived before the close (a completion still in
// the completion queue when the disconnect came) and delivers that.
func (e *endpoint) recvClosed() ([]byte, error) {
	if e.cfg.drainRecv {
		<-e.stopped
		select {
		case r := <-e.recvq:
			e.held = r.idx
			return e.rbuf(r.idx)[:r.n], nil
		default:
		}
	}
	e.releaseRecvSide()
	return nil, srp.ErrClosed
}

// releaseRecvSide says the receiving side will not look at a receive
// buffer again.
func (e *endpoint) releaseRecvSide() {
	if e.recvSide.CompareAndSwap(false, true) {
		e.releaseRecv()
	}
}

// releaseRecv drops one hold on the receive ring: the receiving side's
// or teardown's (no DMA into it any more).
func (e *endpoint) releaseRecv() {
	if e.recvRefs.Add(-1) == 0 {
		e.ar.free(e.rblock)
	}
}

func (e *endpoint) closed() bool {
	select {
	case <-e.done:
		return true
	default:
		return false
	}
}

// close closes the endpoint once; run tears it down.
func (e *endpoint) close(reason error) {
	e.mu.Lock()
	e.closeLocked(reason)
	e.mu.Unlock()
}

// closeLocked is close with e.mu held.
func (e *endpoint) closeLocked(reason error) {
	e.closeOnce.Do(func() {
		if reason == nil {
			reason = srp.ErrClosed
		}
		e.reasonMu.Lock()
		e.reason = reason
		e.reasonMu.Unlock()
		close(e.done)
		e.cond.Broadcast()
		e.cq.Interrupt()
	})
}

func (e *endpoint) closeReason() error {
	e.reasonMu.Lock()
	defer e.reasonMu.Unlock()
	return e.reason
}

// flushLocked posts the pending work requests the send queue has room
// for, unless another goroutine is already doing so (it will post these
// too). Sequence numbers are assigned here, in posting order. It returns
// the error of a post that failed (the endpoint is closed then). The
// caller holds e.mu; it is released during the post.
func (e *endpoint) flushLocked() error {
	if e.flushing {
		return nil
	}
	e.flushing = true
	defer func() {
		e.flushing = false
		e.cond.Broadcast() // teardown waits for the post in progress
	}()
	for len(e.pend) > 0 && !e.torn {
		room := e.cfg.sqDepth - e.sqUsed
		if room <= 0 {
			return nil // completions flush the rest
		}
		k := min(len(e.pend), room, 64)
		b := e.batch[:0]
		for _, w := range e.pend[:k] {
			e.seq++
			if w.Flags&provider.Signaled == 0 && e.unsig >= e.cfg.sqDepth/2 {
				// keep unsignaled requests from filling the queue
				w.Flags |= provider.Signaled
			}
			if w.Flags&provider.Signaled != 0 {
				e.unsig = 0
			} else {
				e.unsig++
			}
			w.ID |= uint64(e.seq)
			b = append(b, w)
		}
		e.batch = b
		e.pend = e.pend[:copy(e.pend, e.pend[k:])]
		e.sqUsed += k
		e.mu.Unlock()
		n, err := e.qp.PostSend(b)
		e.mu.Lock()
		if err != nil {
			err = fmt.Errorf("rdma: posting %v: %w", b[min(n, k-1)].Op, err)
			e.sqUsed -= k - n
			e.seq -= uint32(k - n)
			for _, w := range b[n:] {
				e.dropLocked(w, err)
			}
			e.closeLocked(err)
			return err
		}
	}
	return nil
}

// dropLocked accounts a work request that will never complete.
func (e *endpoint) dropLocked(w provider.SendWR, err error) {
	switch wrKind(w.ID) {
	case kindSend:
		e.sfree <- int32(wrIndex(w.ID))
	case kindRead:
		e.rdUsed--
		wt := &e.waiters[wrIndex(w.ID)]
		wt.setErr(err)
		wt.finish(1)
	}
}

// send queues a SEND of the first n bytes of send buffer idx, after any
// RDMA WRITEs queued before, and posts what is pending. The buffer comes
// back to sfree when the SEND completes.
func (e *endpoint) send(idx int32, n int) error {
	sge, _ := e.ar.sge(e.sbuf(idx)[:n])
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.torn || e.closed() {
		e.sfree <- idx
		return srp.ErrClosed
	}
	e.pend = append(e.pend, provider.SendWR{ID: wrID(kindSend, int(idx), 0), Op: provider.OpSend,
		Flags: provider.Signaled, Local: sge})
	return e.flushLocked()
}

// getSendBuf waits for a free send buffer.
func (e *endpoint) getSendBuf() (int32, bool) {
	select {
	case i := <-e.sfree:
		return i, true
	case <-e.done:
		return 0, false
	}
}

// span walks memory descriptors, cutting them at the device's largest
// message.
type span struct {
	descs []srp.MemDesc
	i     int
	off   uint32
	left  int
	max   uint32
}

func newSpan(descs []srp.MemDesc, n int, maxMsg uint32) (span, error) {
	var total uint64
	for _, d := range descs {
		total += uint64(d.Len)
		if total >= uint64(n) {
			break
		}
	}
	if total < uint64(n) {
		return span{}, fmt.Errorf("%w: %d of %d bytes", ErrBadDescriptor, total, n)
	}
	return span{descs: descs, left: n, max: maxMsg}, nil
}

// next returns the next piece: remote address, key and length.
func (s *span) next() (addr uint64, key, n uint32) {
	for s.descs[s.i].Len == s.off {
		s.i++
		s.off = 0
	}
	d := s.descs[s.i]
	n = d.Len - s.off
	if n > s.max {
		n = s.max
	}
	if int(n) > s.left {
		n = uint32(s.left)
	}
	addr = d.Addr + uint64(s.off)
	s.off += n
	s.left -= int(n)
	return addr, d.Key, n
}

// local describes b if it lies in the arena; callers bounce other memory
// through an arena buffer.
func (e *endpoint) local(b []byte) (provider.SGE, bool) { return e.ar.sge(b) }

// writeData queues RDMA WRITEs of src to the descriptors. They are posted
// with the next SEND (as LIO ib_srpt chains them before the response),
// which the queue pair executes after them; only the last is signaled, and
// a later Free of src waits for its completion.
func (e *endpoint) writeData(src []byte, descs []srp.MemDesc) error {
	if len(src) == 0 {
		return nil
	}
	sp, err := newSpan(descs, len(src), e.cfg.maxMsg)
	if err != nil {
		return err
	}
	e.life.RLock()
	defer e.life.RUnlock()
	sge, ok := e.local(src)
	if !ok {
		b, err := e.ar.alloc(len(src))
		if err != nil {
			return err
		}
		copy(b, src)
		defer e.free(b)
		sge, _ = e.local(b)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.torn || e.closed() {
		return srp.ErrClosed
	}
	pos := uint32(0)
	for sp.left > 0 {
		raddr, rkey, n := sp.next()
		w := provider.SendWR{ID: wrID(kindWrite, 0, 0), Op: provider.OpWrite,
			Local:      provider.SGE{Addr: sge.Addr + uint64(pos), Len: n, LKey: sge.LKey},
			RemoteAddr: raddr, RKey: rkey}
		if sp.left == 0 {
			w.Flags = provider.Signaled
		}
		e.pend = append(e.pend, w)
		pos += n
	}
	return nil
}

// readData fills dst from the descriptors with RDMA READs, at most
// readDepth outstanding on the queue pair, and waits for them.
func (e *endpoint) readData(dst []byte, descs []srp.MemDesc) error {
	if len(dst) == 0 {
		return nil
	}
	sp, err := newSpan(descs, len(dst), e.cfg.maxMsg)
	if err != nil {
		return err
	}
	e.life.RLock()
	defer e.life.RUnlock()
	target := dst
	sge, ok := e.local(dst)
	if !ok {
		if target, err = e.ar.alloc(len(dst)); err != nil {
			return err
		}
		defer e.ar.free(target)
		sge, _ = e.local(target)
	}
	// count the pieces
	pieces := int32(0)
	{
		c := sp
		for c.left > 0 {
			c.next()
			pieces++
		}
	}
	var wi int32
	select {
	case wi = <-e.wfree:
	case <-e.done:
		return srp.ErrClosed
	}
	w := &e.waiters[wi]
	w.err = nil
	w.remaining.Store(pieces)
	posted := int32(0)
	pos := uint32(0)
	var perr error
	e.mu.Lock()
	for posted < pieces {
		for e.rdUsed >= e.cfg.readDepth && !e.torn && !e.closed() {
			e.cond.Wait()
		}
		if e.torn || e.closed() {
			perr = srp.ErrClosed
			break
		}
		k := min(e.cfg.readDepth-e.rdUsed, int(pieces-posted))
		for i := 0; i < k; i++ {
			raddr, rkey, n := sp.next()
			e.pend = append(e.pend, provider.SendWR{ID: wrID(kindRead, int(wi), 0), Op: provider.OpRead,
				Flags: provider.Signaled, Local: provider.SGE{Addr: sge.Addr + uint64(pos), Len: n, LKey: sge.LKey},
				RemoteAddr: raddr, RKey: rkey})
			pos += n
		}
		e.rdUsed += k
		posted += int32(k)
		if perr = e.flushLocked(); perr != nil {
			break // the queued reads were dropped and finished
		}
	}
	e.mu.Unlock()
	if perr != nil {
		w.setErr(perr)
		if left := pieces - posted; left > 0 {
			w.finish(left)
		}
	}
	<-w.done
	err = w.err
	e.wfree <- wi
	if err == nil && !ok {
		copy(dst, target)
	}
	return err
}

// free gives an arena buffer back, after the RDMA WRITEs that may still
// read it have completed.
func (e *endpoint) free(b []byte) {
	e.mu.Lock()
	// the last queued work request gets this sequence number
	last := e.seq + uint32(len(e.pend))
	if !e.torn && e.doneSeq != last {
		e.deferred = append(e.deferred, deferredFree{b: b, seq: last})
		e.mu.Unlock()
		return
	}
	e.mu.Unlock()
	e.ar.free(b)
}

// completeSQ accounts send queue work requests up to seq as complete.
// The caller holds e.mu.
func (e *endpoint) completeSQ(seq uint32) {
	if !seqAfter(seq, e.doneSeq) {
		return
	}
	e.sqUsed -= int(seq - e.doneSeq)
	e.doneSeq = seq
	k := 0
	for k < len(e.deferred) && !seqAfter(e.deferred[k].seq, seq) {
		e.ar.free(e.deferred[k].b)
		e.deferred[k].b = nil
		k++
	}
	if k > 0 {
		n := copy(e.deferred, e.deferred[k:])
		e.deferred = e.deferred[:n]
	}
}

// handle dispatches a batch of completions.
func (e *endpoint) handle(wcs []provider.WC) {
	var failed error
	e.mu.Lock()
	for i := range wcs {
		wc := &wcs[i]
		kind := wrKind(wc.ID)
		if kind == kindRecv {
			e.recvOut.Add(-1)
			if wc.Status == provider.WCSuccess {
				e.recvq <- recvDone{idx: int32(wrIndex(wc.ID)), n: wc.Len}
			} else if wc.Status != provider.WCFlushErr && failed == nil {
				failed = &WCError{Op: "RECV", Status: wc.Status}
			}
			continue
		}
		e.completeSQ(wrSeq(wc.ID))
		switch kind {
		case kindSend:
			e.sfree <- int32(wrIndex(wc.ID))
		case kindRead:
			e.rdUsed--
			w := &e.waiters[wrIndex(wc.ID)]
			if wc.Status != provider.WCSuccess {
				w.setErr(&WCError{Op: "RDMA_READ", Status: wc.Status})
			}
			w.finish(1)
		}
		if wc.Status != provider.WCSuccess && wc.Status != provider.WCFlushErr && failed == nil {
			failed = &WCError{Op: kindName(kind), Status: wc.Status}
		}
	}
	if failed != nil {
		e.log.Warn("work request failed; closing the channel", zap.Error(failed))
		e.closeLocked(failed)
	} else if len(e.pend) > 0 {
		e.flushLocked()
	}
	e.cond.Broadcast()
	e.mu.Unlock()
}

// spinYields is how many times an idle poller yields to the other
// goroutines (the session's, about to post responses) and polls again
// before it arms the completion channel and sleeps: under load the next
// completion is usually that close, and arming, waking and reading the
// event cost system calls.
const spinYields = 4

// pollOnce handles what the completion queue holds, or waits (until
// deadline; zero: until woken) for a notification.
func (e *endpoint) pollOnce(wcs []provider.WC, deadline time.Time) {
	n, err := e.cq.Poll(wcs)
	for i := 0; err == nil && n == 0 && i < spinYields; i++ {
		runtime.Gosched()
		n, err = e.cq.Poll(wcs)
	}
	if err == nil && n == 0 && !e.cfg.polling {
		if err = e.cq.Arm(); err == nil {
			n, err = e.cq.Poll(wcs)
		}
	}
	if err != nil {
		e.close(fmt.Errorf("rdma: completion queue: %w", err))
		time.Sleep(time.Millisecond)
		return
	}
	if n > 0 {
		e.handle(wcs[:n])
		return
	}
	if e.cfg.polling {
		return
	}
	if err := e.cq.Wait(deadline); err != nil && !errors.Is(err, provider.ErrTimeout) {
		e.close(fmt.Errorf("rdma: completion channel: %w", err))
		time.Sleep(time.Millisecond)
	}
}

func (e *endpoint) sqIdle() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.doneSeq == e.seq && len(e.pend) == 0
}

// Teardown timeouts: how long posted sends may take to go out after
// Close, and how long the flushed work requests may take to complete after
// the disconnect.
const (
	drainSends   = time.Second
	drainFlushed = 2 * time.Second
)

// run is the endpoint's completion goroutine; it tears the endpoint down
// once it closes.
func (e *endpoint) run() {
	wcs := make([]provider.WC, 32)
	for !e.closed() {
		var dl time.Time
		if e.cfg.polling {
			dl = time.Now().Add(10 * time.Millisecond)
		}
		e.pollOnce(wcs, dl)
	}
	// Let what was posted before Close (an SRP_T_LOGOUT, the last
	// responses) go out, unless the peer is gone.
	if !errors.Is(e.closeReason(), ErrDisconnected) {
		e.mu.Lock()
		e.flushLocked()
		e.mu.Unlock()
		until := time.Now().Add(drainSends)
		for !e.sqIdle() && time.Now().Before(until) {
			e.pollOnce(wcs, time.Now().Add(20*time.Millisecond))
		}
	}
	e.id.Disconnect()
	until := time.Now().Add(drainFlushed)
	for !(e.sqIdle() && e.recvOut.Load() <= 0) && time.Now().Before(until) {
		e.pollOnce(wcs, time.Now().Add(20*time.Millisecond))
	}
	e.rqMu.Lock()
	e.mu.Lock()
	for e.flushing {
		e.cond.Wait()
	}
	e.torn = true
	for _, w := range e.pend {
		e.dropLocked(w, srp.ErrClosed)
	}
	e.pend = nil
	e.cond.Broadcast()
	e.mu.Unlock()
	e.rqMu.Unlock()
	e.qp.Close()
	// No DMA from here on: fail the reads still waiting.
	for i := range e.waiters {
		w := &e.waiters[i]
		if old := w.remaining.Swap(0); old > 0 {
			w.setErr(srp.ErrClosed)
			w.done <- struct{}{}
		}
	}
	e.life.Lock()
	e.ar.free(e.sblock)
	e.mu.Lock()
	for _, d := range e.deferred {
		e.ar.free(d.b)
	}
	e.deferred = nil
	e.mu.Unlock()
	e.life.Unlock()
	e.releaseRecv()
	e.cq.Close()
	e.id.Destroy()
	close(e.stopped)
	if e.onStop != nil {
		e.onStop()
	}
}
