package vscsiif

import (
	"errors"
	"flag"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"testing"
)

func read10(rqid uint16, segs ...Segment) *Request {
	r := &Request{Rqid: rqid, Act: ActSCSICDB, CmdLen: 10, Dir: DirFromDevice, ID: 1, LUN: 2, Timeout: 30}
	copy(r.CDB[:], []byte{0x28, 0, 0, 0, 0x10, 0, 0, 0, 0x08, 0})
	r.NSeg = copy(r.Seg[:], segs)
	return r
}

func seedRequests() []*Request {
	abort := &Request{Rqid: 3, Act: ActSCSIAbort, RefRqid: 1, CmdLen: 10, Dir: DirFromDevice}
	reset := &Request{Rqid: 4, Act: ActSCSIReset, Dir: DirNone}
	ind := read10(5, Segment{Gref: 77, Offset: 0, Length: 8 * 100}, Segment{Gref: 78, Offset: 0, Length: 8 * 16})
	ind.Indirect = true
	write := read10(6, Segment{Gref: 9, Offset: 512, Length: 3584}, Segment{Gref: 10, Offset: 0, Length: 512})
	write.CDB[0], write.Dir = 0x2a, DirToDevice
	full := read10(7)
	for i := range full.Seg {
		full.Seg[i] = Segment{Gref: uint32(100 + i), Length: 4096}
	}
	full.NSeg = SGTableSize
	tur := &Request{Rqid: 8, Act: ActSCSICDB, CmdLen: 6, Dir: DirNone}
	return []*Request{read10(1, Segment{Gref: 8, Offset: 0, Length: 4096}), abort, reset, ind, write, full, tur}
}

func encode(r *Request) []byte {
	b := make([]byte, RequestSize)
	r.Encode(b)
	return b
}

// Round trip, every strict prefix rejected, random bytes never panic
// (the crypto/tls TestMarshalUnmarshal pattern).
func TestRequestRoundTrip(t *testing.T) {
	for _, r := range seedRequests() {
		b := encode(r)
		var got Request
		if err := got.Decode(b, 128); err != nil {
			t.Fatalf("%+v: %v", r, err)
		}
		b2 := encode(&got)
		if string(b) != string(b2) {
			t.Fatalf("re-encoding differs:\n%x\n%x", b, b2)
		}
		for n := 0; n < RequestSize; n++ {
			if err := got.Decode(b[:n], 128); !errors.Is(err, ErrMalformed) {
				t.Fatalf("prefix of %d bytes: %v", n, err)
			}
		}
	}
	rng := rand.New(rand.NewSource(1))
	b := make([]byte, RequestSize)
	var r Request
	for i := 0; i < 100000; i++ {
		rng.Read(b)
		if err := r.Decode(b, 128); err == nil {
			checkValid(t, &r, 128)
		}
	}
}

// checkValid asserts the decoder's guarantees on an accepted request.
func checkValid(t testing.TB, r *Request, maxSegs int) {
	if r.Act < ActSCSICDB || r.Act > ActSCSIReset || r.CmdLen > MaxCommandSize || r.Dir > DirNone {
		t.Fatalf("accepted %+v", r)
	}
	if r.Act != ActSCSICDB {
		return
	}
	if r.NSeg > SGTableSize || r.CmdLen == 0 {
		t.Fatalf("accepted %+v", r)
	}
	n := 0
	for _, s := range r.Seg[:r.NSeg] {
		if int(s.Offset)+int(s.Length) > PageSize {
			t.Fatalf("accepted a segment crossing its page: %+v", s)
		}
		n += int(s.Length) / SegmentSize
	}
	if r.Indirect && (n != r.IndirectSegs || n > maxSegs) {
		t.Fatalf("accepted %d indirect segments (max %d): %+v", n, maxSegs, r)
	}
}

func TestRequestRejects(t *testing.T) {
	mod := func(f func(b []byte)) []byte {
		b := encode(read10(1, Segment{Gref: 8, Length: 4096}))
		f(b)
		return b
	}
	for _, c := range []struct {
		name, field string
		b           []byte
	}{
		{"sg preset", "act", mod(func(b []byte) { b[ReqAct] = ActSCSISGPreset })},
		{"act 0", "act", mod(func(b []byte) { b[ReqAct] = 0 })},
		{"act 255", "act", mod(func(b []byte) { b[ReqAct] = 255 })},
		{"cmd_len 17", "cmd_len", mod(func(b []byte) { b[ReqCmdLen] = 17 })},
		{"cmd_len 0", "cmd_len", mod(func(b []byte) { b[ReqCmdLen] = 0 })},
		{"direction 4", "sc_data_direction", mod(func(b []byte) { b[ReqDataDirection] = 4 })},
		{"27 segments", "nr_segments", mod(func(b []byte) { b[ReqNrSegments] = 27 })},
		{"0 indirect pages", "nr_segments", mod(func(b []byte) { b[ReqNrSegments] = SGGrant })},
		{"27 indirect pages", "nr_segments", mod(func(b []byte) { b[ReqNrSegments] = SGGrant | 27 })},
		{"segment crosses page", "seg", mod(func(b []byte) { le.PutUint16(b[ReqSeg+SegOffset:], 1) })},
		{"offset 4096", "seg", mod(func(b []byte) { le.PutUint16(b[ReqSeg+SegOffset:], 4096); le.PutUint16(b[ReqSeg+SegLength:], 1) })},
		{"indirect list of 7 bytes", "seg", mod(func(b []byte) { b[ReqNrSegments] = SGGrant | 1; le.PutUint16(b[ReqSeg+SegLength:], 7) })},
		{"indirect too many", "seg", mod(func(b []byte) { b[ReqNrSegments] = SGGrant | 1; le.PutUint16(b[ReqSeg+SegLength:], 8*129) })},
		{"DMA_NONE with data", "sc_data_direction", mod(func(b []byte) { b[ReqDataDirection] = DirNone })},
	} {
		var r Request
		err := r.Decode(c.b, 128)
		var me *MalformedError
		if !errors.As(err, &me) || me.Field != c.field {
			t.Errorf("%s: %v, want a malformed %s", c.name, err, c.field)
		}
	}
	// ABORT and RESET ignore their segments.
	b := mod(func(b []byte) { b[ReqAct] = ActSCSIAbort; b[ReqNrSegments] = 200 })
	var r Request
	if err := r.Decode(b, 128); err != nil || r.NSeg != 0 {
		t.Fatalf("abort with junk segments: %v, NSeg %d", err, r.NSeg)
	}
}

func TestDecodeIndirect(t *testing.T) {
	segs := []Segment{{1, 0, 4096}, {2, 512, 3584}, {3, 0, 8}}
	raw := make([]byte, len(segs)*SegmentSize)
	EncodeSegments(raw, segs)
	got, err := DecodeIndirect(raw, nil)
	if err != nil || fmt.Sprint(got) != fmt.Sprint(segs) {
		t.Fatalf("got %v, %v", got, err)
	}
	le.PutUint16(raw[SegmentSize+SegOffset:], 513)
	if _, err := DecodeIndirect(raw, nil); !errors.Is(err, ErrMalformed) {
		t.Fatalf("segment crossing a page: %v", err)
	}
	if _, err := DecodeIndirect(raw[:7], nil); !errors.Is(err, ErrMalformed) {
		t.Fatalf("7 bytes: %v", err)
	}
}

func TestResponseEncode(t *testing.T) {
	sense := make([]byte, 120)
	for i := range sense {
		sense[i] = byte(i + 1)
	}
	r := Response{Rqid: 7, Sense: sense, Rslt: Rslt(HostOK, 2), Residual: 512}
	b := make([]byte, ResponseSize)
	for i := range b {
		b[i] = 0xee
	}
	r.Encode(b)
	if b[RspSenseLen] != SenseBufferSize || b[RspSenseBuffer+95] != 96 || le.Uint32(b[RspRslt:]) != 2 ||
		le.Uint32(b[RspResidualLen:]) != 512 || le.Uint16(b) != 7 {
		t.Fatalf("bad encoding %x", b)
	}
	for i := RspReserved; i < ResponseSize; i++ {
		if b[i] != 0 {
			t.Fatalf("reserved byte %d = %#x", i, b[i])
		}
	}
	var d Response
	if err := d.Decode(b, make([]byte, SenseBufferSize)); err != nil || len(d.Sense) != 96 || d.Residual != 512 {
		t.Fatalf("decode: %+v %v", d, err)
	}
}

var writeCorpus = flag.Bool("vscsiif.write-corpus", false, "rewrite testdata/fuzz seed corpora")

func writeSeeds(t *testing.T, name string, seeds [][]byte) {
	dir := filepath.Join("testdata", "fuzz", name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for i, s := range seeds {
		body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", s)
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("seed-%03d", i)), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestWriteSeedCorpus regenerates the checked-in seed corpus:
//
//	go test ./transport/xen/vscsiif -run TestWriteSeedCorpus -vscsiif.write-corpus
func TestWriteSeedCorpus(t *testing.T) {
	if !*writeCorpus {
		t.Skip("use -vscsiif.write-corpus")
	}
	var seeds [][]byte
	for _, r := range seedRequests() {
		seeds = append(seeds, encode(r))
	}
	// an indirect request followed by its page list
	ind := seedRequests()[3]
	b := encode(ind)
	list := make([]byte, ind.Seg[0].Length/SegmentSize*SegmentSize+ind.Seg[1].Length)
	for i := 0; i+SegmentSize <= len(list); i += SegmentSize {
		Segment{Gref: uint32(1000 + i), Length: 4096}.put(list[i:])
	}
	seeds = append(seeds, append(b, list...))
	writeSeeds(t, "FuzzRequest", seeds)
}

// FuzzRequest: the decoder never panics, what it accepts satisfies its
// guarantees and re-encodes to the same request; bytes after the request
// are decoded as an indirect segment list, which must also hold.
func FuzzRequest(f *testing.F) {
	for _, r := range seedRequests() {
		f.Add(encode(r))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var r Request
		err := r.Decode(b, 128)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not match ErrMalformed", err)
			}
		} else {
			checkValid(t, &r, 128)
			var r2 Request
			err := r2.Decode(encode(&r), 128)
			if r.Act != ActSCSICDB {
				// ABORT and RESET ignore nr_segments; Encode writes NSeg.
				r2.NrSegments = r.NrSegments
			}
			if err != nil || r2 != r {
				t.Fatalf("re-decode: %v\n%+v\n%+v", err, r, r2)
			}
		}
		if len(b) > RequestSize {
			segs, err := DecodeIndirect(b[RequestSize:], nil)
			if err == nil {
				for _, s := range segs {
					if int(s.Offset)+int(s.Length) > PageSize {
						t.Fatalf("accepted %+v", s)
					}
				}
			}
		}
	})
}
