package vscsiif

import (
	"errors"
	"math/rand"
	"testing"
)

// newPair builds a shared ring on a heap page (standing in for the
// granted page) with every index at start, and both views of it.
func newPair(t *testing.T, start uint32) ([]byte, *FrontRing, *BackRing) {
	t.Helper()
	page := make([]byte, PageSize)
	if err := InitSharedRing(page, start); err != nil {
		t.Fatal(err)
	}
	f, err := AttachFrontRing(page)
	if err != nil {
		t.Fatal(err)
	}
	b, err := AttachBackRing(page)
	if err != nil {
		t.Fatal(err)
	}
	return page, f, b
}

func cdbReq(rqid uint16) *Request {
	r := &Request{Rqid: rqid, Act: ActSCSICDB, CmdLen: 6, Dir: DirNone}
	r.CDB[0] = 0x00 // TEST UNIT READY
	return r
}

// A batch of requests costs the backend one notification, and a batch of
// responses costs the frontend one (ring.h event suppression).
func TestRingBatching(t *testing.T) {
	page, f, b := newPair(t, 0)
	notifies := 0
	for i := 0; i < 5; i++ {
		f.PutRequest(cdbReq(uint16(i)))
		if f.Push() {
			notifies++
		}
	}
	if notifies != 1 {
		t.Fatalf("5 requests pushed one by one before the backend ran: %d notifications, want 1", notifies)
	}
	n, err := b.Pending()
	if err != nil || n != 5 {
		t.Fatalf("Pending = %d, %v; want 5", n, err)
	}
	var buf [RequestSize]byte
	var req Request
	for i := 0; i < n; i++ {
		b.CopyRequest(buf[:])
		if err := req.Decode(buf[:], SGTableSize); err != nil || req.Rqid != uint16(i) {
			t.Fatalf("request %d: rqid %d, %v", i, req.Rqid, err)
		}
	}
	if more, err := b.FinalCheck(); more || err != nil {
		t.Fatalf("FinalCheck = %v, %v", more, err)
	}
	if _, ev, _, _ := Indexes(page); ev != 6 {
		t.Fatalf("req_event = %d after consuming 5, want 6", ev)
	}
	// Responses: the frontend asked (rsp_event = 1) for the first only.
	notifies = 0
	for i := 0; i < 5; i++ {
		b.PutResponse(&Response{Rqid: uint16(i)})
		if b.Push() {
			notifies++
		}
	}
	if notifies != 1 {
		t.Fatalf("5 responses pushed one by one: %d notifications, want 1", notifies)
	}
	// The next request notifies again: the backend asked for it.
	f.PutRequest(cdbReq(9))
	if !f.Push() {
		t.Fatal("request after the backend's final check did not notify")
	}
	// The frontend consumes, re-arms, and the next response notifies.
	var rsp Response
	sense := make([]byte, SenseBufferSize)
	for f.Responses() > 0 {
		f.GetResponse(&rsp, sense)
	}
	if f.FinalCheck() {
		t.Fatal("responses left after consuming all")
	}
	b.CopyRequest(buf[:])
	b.PutResponse(&Response{Rqid: 9})
	if !b.Push() {
		t.Fatal("response after the frontend's final check did not notify")
	}
}

// Every index runs across 2^32: the slots, the overflow check and the
// notification test use modular arithmetic only.
func TestRingWrap(t *testing.T) {
	for _, start := range []uint32{0, 1<<32 - 1, 1<<32 - 7, 1<<32 - 16, 1 << 31} {
		_, f, b := newPair(t, start)
		rng := rand.New(rand.NewSource(int64(start)))
		sent, got := 0, 0
		next := uint16(0)
		var buf [RequestSize]byte
		var req Request
		var rsp Response
		sense := make([]byte, SenseBufferSize)
		inflight := []uint16{}
		for got < 300 {
			// frontend: a random batch
			k := rng.Intn(f.Free() + 1)
			for i := 0; i < k; i++ {
				f.PutRequest(cdbReq(next))
				next++
				sent++
			}
			f.Push()
			// backend: consume some, answer some, in random order
			n, err := b.Pending()
			if err != nil {
				t.Fatalf("start %#x: %v", start, err)
			}
			for i := rng.Intn(n + 1); i > 0; i-- {
				b.CopyRequest(buf[:])
				if err := req.Decode(buf[:], SGTableSize); err != nil {
					t.Fatal(err)
				}
				inflight = append(inflight, req.Rqid)
			}
			rng.Shuffle(len(inflight), func(i, j int) { inflight[i], inflight[j] = inflight[j], inflight[i] })
			k = rng.Intn(len(inflight) + 1)
			for _, id := range inflight[:k] {
				b.PutResponse(&Response{Rqid: id, Rslt: int32(id)})
			}
			inflight = inflight[k:]
			b.Push()
			for f.Responses() > 0 {
				f.GetResponse(&rsp, sense)
				if rsp.Rslt != int32(rsp.Rqid) {
					t.Fatalf("response %d carries %d", rsp.Rqid, rsp.Rslt)
				}
				got++
			}
			f.FinalCheck()
			if b.Outstanding() != len(inflight) {
				t.Fatalf("Outstanding %d, want %d", b.Outstanding(), len(inflight))
			}
		}
		t.Logf("start %#x: %d requests, %d responses, req_cons now %#x", start, sent, got, b.ReqCons)
	}
}

// A full ring holds 16 requests; a 17th claimed by req_prod, or req_prod
// moved backwards, is an overflow the backend refuses.
func TestRingFullAndOverflow(t *testing.T) {
	for _, start := range []uint32{0, 1<<32 - 3} {
		_, f, b := newPair(t, start)
		for i := 0; i < RingSize; i++ {
			f.PutRequest(cdbReq(uint16(i)))
		}
		if f.Free() != 0 {
			t.Fatalf("Free = %d after 16 requests", f.Free())
		}
		f.Push()
		if n, err := b.Pending(); n != RingSize || err != nil {
			t.Fatalf("Pending = %d, %v on a full ring", n, err)
		}
		f.SetReqProd(start + RingSize + 1)
		if _, err := b.Pending(); !errors.Is(err, ErrOverflow) {
			t.Fatalf("req_prod 17 ahead: %v, want ErrOverflow", err)
		}
		// consume 4, answer none: 16 outstanding is still the limit
		f.SetReqProd(start + RingSize)
		var buf [RequestSize]byte
		for i := 0; i < 4; i++ {
			b.CopyRequest(buf[:])
		}
		f.SetReqProd(start + RingSize + 2)
		if _, err := b.Pending(); !errors.Is(err, ErrOverflow) {
			t.Fatalf("18 outstanding: %v, want ErrOverflow", err)
		}
		f.SetReqProd(start + 2)
		if _, err := b.Pending(); !errors.Is(err, ErrOverflow) {
			t.Fatalf("req_prod moved back behind req_cons: %v, want ErrOverflow", err)
		}
		if _, err := b.FinalCheck(); !errors.Is(err, ErrOverflow) {
			t.Fatalf("FinalCheck on a bad ring: %v", err)
		}
	}
}

// A backend restarted on a live ring resumes at rsp_prod.
func TestRingAttachResumes(t *testing.T) {
	page, f, b := newPair(t, 100)
	for i := 0; i < 3; i++ {
		f.PutRequest(cdbReq(uint16(i)))
	}
	f.Push()
	var buf [RequestSize]byte
	b.CopyRequest(buf[:])
	b.CopyRequest(buf[:])
	b.PutResponse(&Response{Rqid: 0})
	b.Push()
	// the backend dies with request 1 consumed, unanswered
	b2, err := AttachBackRing(page)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := b2.Pending(); n != 2 || err != nil {
		t.Fatalf("after restart Pending = %d, %v; want 2 (requests 1 and 2)", n, err)
	}
	var req Request
	b2.CopyRequest(buf[:])
	req.Decode(buf[:], SGTableSize)
	if req.Rqid != 1 {
		t.Fatalf("first request after restart is %d, want 1", req.Rqid)
	}
}

func TestRingRejectsBadPages(t *testing.T) {
	if _, err := AttachBackRing(make([]byte, 100)); err == nil {
		t.Fatal("short page accepted")
	}
	p := make([]byte, PageSize+1)
	if _, err := AttachBackRing(p[1:]); err == nil {
		t.Fatal("misaligned page accepted")
	}
}
