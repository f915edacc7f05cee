package vscsiif

import (
	"errors"
	"fmt"

	"github.com/srptgt/srptgt/transport/xen/internal/shm"
)

// ErrOverflow: the frontend's req_prod claims more requests than the ring
// can hold (RING_REQUEST_PROD_OVERFLOW) or moved backwards. Disconnect it.
var ErrOverflow = errors.New("vscsiif: request producer index overflows the ring")

func checkPage(page []byte) error {
	if len(page) < PageSize {
		return fmt.Errorf("vscsiif: shared ring of %d bytes, need %d", len(page), PageSize)
	}
	if !shm.Aligned(page, 4) {
		return errors.New("vscsiif: shared ring is not 4-byte aligned")
	}
	return nil
}

func slot(page []byte, i uint32) []byte {
	off := RingHeaderSize + int(i%RingSize)*RequestSize
	return page[off : off+RequestSize : off+RequestSize]
}

// BackRing is the backend's view of a shared ring (ring.h BACK_RING):
// the page plus two private indexes. Free-running 32-bit indexes; a slot
// is index mod 16. Not safe for concurrent use: the caller serializes
// request consumption, and response production, each under its own lock
// or goroutine (the two halves touch disjoint state).
type BackRing struct {
	page []byte
	// ReqCons is the next request to consume.
	ReqCons uint32
	// RspProdPvt is the next response slot; responses below it are
	// written, those at or above the shared rsp_prod not yet published.
	RspProdPvt uint32
	// seen is req_prod as Pending read it last (Linux's rp snapshot).
	seen uint32
	// pushed is rsp_prod as Push wrote it last.
	pushed uint32
}

// AttachBackRing returns the backend view of page, starting at the page's
// rsp_prod (BACK_RING_ATTACH): 0 on a fresh ring, the first unanswered
// request when a backend restarts on a live ring.
func AttachBackRing(page []byte) (*BackRing, error) {
	if err := checkPage(page); err != nil {
		return nil, err
	}
	p := shm.Load32(page, SringRspProd)
	return &BackRing{page: page[:PageSize], ReqCons: p, RspProdPvt: p, seen: p, pushed: p}, nil
}

// Pending reads req_prod once and returns how many requests wait to be
// consumed. It fails with ErrOverflow if the frontend claims more than
// the ring holds.
func (r *BackRing) Pending() (int, error) {
	rp := shm.Load32(r.page, SringReqProd)
	unconsumed := rp - r.ReqCons
	if unconsumed > RingSize || rp-r.RspProdPvt > RingSize {
		return 0, fmt.Errorf("%w: req_prod %d, req_cons %d, rsp_prod %d", ErrOverflow, rp, r.ReqCons, r.RspProdPvt)
	}
	r.seen = rp
	return int(unconsumed), nil
}

// Seen is how many requests the req_prod Pending read last says wait to
// be consumed, without reading the shared page: a backend takes a batch
// of requests for one read of req_prod, as Linux's backends do.
func (r *BackRing) Seen() int { return int(r.seen - r.ReqCons) }

// CopyRequest copies the next request out of the shared page into dst
// (RequestSize bytes) and consumes it. Validate dst, never the page.
func (r *BackRing) CopyRequest(dst []byte) {
	copy(dst[:RequestSize], slot(r.page, r.ReqCons))
	r.ReqCons++
}

// FinalCheck is RING_FINAL_CHECK_FOR_REQUESTS: when nothing is pending it
// asks for a notification on the next request (req_event = req_cons + 1)
// and checks once more, so a request that raced with it is not missed.
// It reports whether requests are pending.
func (r *BackRing) FinalCheck() (bool, error) {
	n, err := r.Pending()
	if err != nil || n > 0 {
		return n > 0, err
	}
	shm.Store32(r.page, SringReqEvent, r.ReqCons+1)
	n, err = r.Pending()
	return n > 0, err
}

// Outstanding is the number of consumed requests not yet answered.
func (r *BackRing) Outstanding() int { return int(r.ReqCons - r.RspProdPvt) }

// PutResponse writes a response into the next response slot (private
// until Push).
func (r *BackRing) PutResponse(rsp *Response) {
	rsp.Encode(slot(r.page, r.RspProdPvt))
	r.RspProdPvt++
}

// Push publishes the responses written since the last Push
// (RING_PUSH_RESPONSES_AND_CHECK_NOTIFY) and reports whether the frontend
// asked to be notified of one of them (rsp_event): one notification per
// batch, none while the frontend is still consuming.
func (r *BackRing) Push() bool {
	old := r.pushed
	nw := r.RspProdPvt
	if old == nw {
		return false
	}
	r.pushed = nw
	shm.Store32(r.page, SringRspProd, nw)
	ev := shm.Load32(r.page, SringRspEvent)
	return nw-ev < nw-old
}

// InitSharedRing initialises a shared page as a frontend does
// (SHARED_RING_INIT), with every index starting at start (0 in Linux;
// tests use values near 2^32 to cross the wrap).
func InitSharedRing(page []byte, start uint32) error {
	if err := checkPage(page); err != nil {
		return err
	}
	clear(page[:RingHeaderSize])
	shm.Store32(page, SringReqProd, start)
	shm.Store32(page, SringRspProd, start)
	shm.Store32(page, SringReqEvent, start+1)
	shm.Store32(page, SringRspEvent, start+1)
	return nil
}

// FrontRing is the frontend's view (ring.h FRONT_RING), for the simulator
// and tests.
type FrontRing struct {
	page       []byte
	ReqProdPvt uint32
	RspCons    uint32
}

// AttachFrontRing returns the frontend view of an initialised page.
func AttachFrontRing(page []byte) (*FrontRing, error) {
	if err := checkPage(page); err != nil {
		return nil, err
	}
	return &FrontRing{page: page[:PageSize], ReqProdPvt: shm.Load32(page, SringReqProd), RspCons: shm.Load32(page, SringRspProd)}, nil
}

// Free is how many more requests fit (RING_FREE_REQUESTS).
func (f *FrontRing) Free() int { return RingSize - int(f.ReqProdPvt-f.RspCons) }

// PutRequest writes a request into the next slot (private until Push).
func (f *FrontRing) PutRequest(req *Request) {
	req.Encode(slot(f.page, f.ReqProdPvt))
	f.ReqProdPvt++
}

// PutRaw writes raw bytes as the next request (hostile-frontend tests).
func (f *FrontRing) PutRaw(b []byte) {
	copy(slot(f.page, f.ReqProdPvt), b)
	f.ReqProdPvt++
}

// Push publishes requests (RING_PUSH_REQUESTS_AND_CHECK_NOTIFY) and
// reports whether the backend must be notified.
func (f *FrontRing) Push() bool {
	old := shm.Load32(f.page, SringReqProd)
	nw := f.ReqProdPvt
	shm.Store32(f.page, SringReqProd, nw)
	ev := shm.Load32(f.page, SringReqEvent)
	return nw-ev < nw-old
}

// SetReqProd stores req_prod directly (hostile-frontend tests).
func (f *FrontRing) SetReqProd(v uint32) { shm.Store32(f.page, SringReqProd, v) }

// Responses is how many published responses wait to be consumed.
func (f *FrontRing) Responses() int { return int(shm.Load32(f.page, SringRspProd) - f.RspCons) }

// GetResponse decodes the next response (sense into the caller's 96-byte
// buffer) and consumes it.
func (f *FrontRing) GetResponse(rsp *Response, sense []byte) error {
	err := rsp.Decode(slot(f.page, f.RspCons), sense)
	f.RspCons++
	return err
}

// FinalCheck is RING_FINAL_CHECK_FOR_RESPONSES.
func (f *FrontRing) FinalCheck() bool {
	if f.Responses() > 0 {
		return true
	}
	shm.Store32(f.page, SringRspEvent, f.RspCons+1)
	return f.Responses() > 0
}

// Indexes returns the four shared indexes (for tests and diagnostics).
func Indexes(page []byte) (reqProd, reqEvent, rspProd, rspEvent uint32) {
	return shm.Load32(page, SringReqProd), shm.Load32(page, SringReqEvent), shm.Load32(page, SringRspProd), shm.Load32(page, SringRspEvent)
}
