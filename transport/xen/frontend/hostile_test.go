package frontend_test

// The hostile-frontend suite: in each test a bad guest breaks the
// protocol one way while a good guest runs verified I/O. The bad guest
// must be disconnected with a logged reason, the daemon (this process)
// must not panic, and the good guest's verified I/O must carry on.

import (
	"context"
	"encoding/binary"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/srptgt/srptgt/scsi/scsitest"
	"github.com/srptgt/srptgt/srp"
	"github.com/srptgt/srptgt/transport/xen"
	"github.com/srptgt/srptgt/transport/xen/frontend"
	"github.com/srptgt/srptgt/transport/xen/srpring"
	"github.com/srptgt/srptgt/transport/xen/vscsiif"
	"github.com/srptgt/srptgt/transport/xen/xensim"
)

func hostile(t *testing.T, ring string, attack func(e *env, bad *xensim.Guest)) {
	if testing.Short() {
		t.Skip("hostile suite")
	}
	e := newEnv(t, "good", "bad")
	gg := e.startGood("good", ring)
	time.Sleep(50 * time.Millisecond)
	mark := gg.n.Load()
	bad := e.guest("bad")
	attack(e, bad)
	why, ok := e.disconnected(uint16(bad.ID()))
	if !ok {
		e.dump()
		t.Fatal("the bad guest was not disconnected with a logged reason")
	}
	t.Logf("bad guest disconnected: %s", why)
	gg.check(t, mark)
}

// ---- vscsiif ----

func vscsiAttack(t *testing.T, attack func(e *env, f *frontend.VSCSI, bad *xensim.Guest)) {
	hostile(t, "vscsiif", func(e *env, bad *xensim.Guest) {
		f := e.dialVSCSI(bad)
		clearUA(t, f, 0)
		attack(e, f, bad)
	})
}

// tampered sends one 4 KiB READ (or WRITE) whose request bytes tamper
// rewrites, and does not wait for its (never coming) response.
func tampered(f *frontend.VSCSI, write bool, tamper func(b []byte)) {
	f.SetTamper(tamper)
	r := &frontend.Request{LUN: 0, CDB: scsitest.RW10(0x28, 0, 0, 8), InLen: 4096}
	if write {
		r = &frontend.Request{LUN: 0, CDB: scsitest.RW10(0x2a, 0, 0, 8), DataOut: make([]byte, 4096)}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if p, err := f.Submit(ctx, r); err == nil {
		p.Wait(ctx, new(frontend.Result), nil)
	}
	f.SetTamper(nil)
}

func seg(b []byte, i int) []byte { return b[vscsiif.ReqSeg+i*vscsiif.SegmentSize:] }

func TestHostileVSCSIProducerPastRing(t *testing.T) {
	vscsiAttack(t, func(e *env, f *frontend.VSCSI, _ *xensim.Guest) {
		unlock := f.LockRing()
		f.Ring().SetReqProd(f.Ring().ReqProdPvt + 1000)
		unlock()
		f.Notify()
	})
}

func TestHostileVSCSIMoreRequestsThanSlots(t *testing.T) {
	vscsiAttack(t, func(e *env, f *frontend.VSCSI, _ *xensim.Guest) {
		var b [vscsiif.RequestSize]byte
		unlock := f.LockRing()
		for i := 0; i <= vscsiif.RingSize; i++ {
			req := vscsiif.Request{Rqid: uint16(i), Act: vscsiif.ActSCSICDB, CmdLen: 6, Dir: vscsiif.DirNone}
			req.Encode(b[:])
			f.Ring().PutRaw(b[:])
		}
		f.Ring().Push()
		unlock()
		f.Notify()
	})
}

func TestHostileVSCSIBadGrantRef(t *testing.T) {
	vscsiAttack(t, func(e *env, f *frontend.VSCSI, _ *xensim.Guest) {
		tampered(f, false, func(b []byte) { binary.LittleEndian.PutUint32(seg(b, 0), 1<<30) })
	})
}

func TestHostileVSCSIForeignGrantRef(t *testing.T) {
	vscsiAttack(t, func(e *env, f *frontend.VSCSI, bad *xensim.Guest) {
		fr, _, _ := bad.AllocPages(1)
		ref, _ := bad.AllocRef()
		bad.Grant(ref, 7, fr, false) // granted to domain 7, not the backend
		tampered(f, false, func(b []byte) { binary.LittleEndian.PutUint32(seg(b, 0), uint32(ref)) })
	})
}

func TestHostileVSCSIWriteIntoReadOnlyGrant(t *testing.T) {
	vscsiAttack(t, func(e *env, f *frontend.VSCSI, bad *xensim.Guest) {
		fr, _, _ := bad.AllocPages(1)
		ref, _ := bad.AllocRef()
		bad.Grant(ref, 0, fr, true) // read-only, but the READ's data-in lands there
		tampered(f, false, func(b []byte) { binary.LittleEndian.PutUint32(seg(b, 0), uint32(ref)) })
	})
}

func TestHostileVSCSITooManySegments(t *testing.T) {
	vscsiAttack(t, func(e *env, f *frontend.VSCSI, _ *xensim.Guest) {
		tampered(f, false, func(b []byte) { b[vscsiif.ReqNrSegments] = vscsiif.SGTableSize + 1 })
	})
}

func TestHostileVSCSIIndirectCountOverflow(t *testing.T) {
	vscsiAttack(t, func(e *env, f *frontend.VSCSI, _ *xensim.Guest) {
		tampered(f, false, func(b []byte) {
			b[vscsiif.ReqNrSegments] = vscsiif.SGGrant | vscsiif.SGTableSize
			for i := 0; i < vscsiif.SGTableSize; i++ {
				binary.LittleEndian.PutUint16(seg(b, i)[vscsiif.SegOffset:], 0)
				binary.LittleEndian.PutUint16(seg(b, i)[vscsiif.SegLength:], vscsiif.PageSize)
			}
		})
	})
}

func TestHostileVSCSISegmentCrossesPage(t *testing.T) {
	vscsiAttack(t, func(e *env, f *frontend.VSCSI, _ *xensim.Guest) {
		tampered(f, false, func(b []byte) {
			binary.LittleEndian.PutUint16(seg(b, 0)[vscsiif.SegOffset:], 4000)
			binary.LittleEndian.PutUint16(seg(b, 0)[vscsiif.SegLength:], 200)
		})
	})
}

func TestHostileVSCSIUnknownAct(t *testing.T) {
	vscsiAttack(t, func(e *env, f *frontend.VSCSI, _ *xensim.Guest) {
		tampered(f, false, func(b []byte) { b[vscsiif.ReqAct] = 9 })
	})
}

// The guest rewrites the slots while the backend reads them: the backend
// copies each request once and validates the copy, so it either runs a
// consistent request or sees garbage and disconnects.
func TestHostileVSCSIDoubleFetch(t *testing.T) {
	vscsiAttack(t, func(e *env, f *frontend.VSCSI, _ *xensim.Guest) {
		page := f.RingPage()
		stop := make(chan struct{})
		go func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				s := vscsiif.RingHeaderSize + (i%vscsiif.RingSize)*vscsiif.RequestSize
				if i%2 == 0 {
					page[s+vscsiif.ReqNrSegments] = 200
				} else {
					page[s+vscsiif.ReqNrSegments] = 1
				}
			}
		}()
		defer close(stop)
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		for ctx.Err() == nil {
			if _, err := f.Do(ctx, &scsitest.Request{CDB: scsitest.RW10(0x28, 0, 0, 8), InLen: 4096}); err != nil {
				return
			}
		}
	})
}

func TestHostileVSCSIXenStoreGarbage(t *testing.T) {
	hostile(t, "vscsiif", func(e *env, bad *xensim.Guest) {
		st, err := bad.Store()
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		fe := "/local/domain/" + strconv.Itoa(int(bad.ID())) + "/device/vscsi/0"
		waitNode(t, st, fe+"/state")
		st.Write(0, fe+"/ring-ref", strings.Repeat("9", 3000)) // oversize garbage
		st.Write(0, fe+"/event-channel", "one")
		st.Write(0, fe+"/state", "3")
	})
}

// A frontend that never unmasks (never waits on) its event channel and
// never consumes responses: the backend cannot see a mask, and must
// neither block nor spin on it; the ring is detached when the domain
// goes.
func TestHostileVSCSINeverUnmasks(t *testing.T) {
	hostile(t, "vscsiif", func(e *env, bad *xensim.Guest) {
		f := e.dialVSCSI(bad)
		// fill the ring with requests whose responses nobody reads
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		defer cancel()
		for i := 0; i < vscsiif.RingSize; i++ {
			f.Submit(ctx, &frontend.Request{CDB: scsitest.TestUnitReady()})
		}
		time.Sleep(300 * time.Millisecond)
		bad.Close() // the guest dies with its ring full
	})
}

func waitNode(t *testing.T, st xen.Store, path string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := st.Read(0, path); err == nil {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("%s never appeared", path)
}

// ---- the SRP ring ----

type srpBad struct {
	conn *frontend.SRPConn
	g    *xensim.Guest
}

func srpAttack(t *testing.T, attack func(e *env, b *srpBad)) {
	hostile(t, "srp", func(e *env, bad *xensim.Guest) {
		conn, err := frontend.DialSRP(ctxT(t), bad, frontend.SRPConfig{})
		if err != nil {
			e.dump()
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		_, _, err = conn.Login(ctxT(t), &srp.LoginReq{Tag: 1, MaxITIULen: uint32(conn.MaxIU()),
			BufFmt: srp.BufFmtDirect | srp.BufFmtIndirect, InitiatorPortID: conn.InitiatorPortID(), TargetPortID: conn.TargetPortID()})
		if err != nil {
			t.Fatal(err)
		}
		b := &srpBad{conn: conn, g: bad}
		// consume the new nexus's unit attention, so that the attack's
		// command reaches its data phase
		b.send(&srp.IU{Op: srp.OpCmd, Cmd: srp.Cmd{Tag: 1, CDB: scsitest.TestUnitReady()}})
		conn.Recv()
		attack(e, b)
	})
}

// send puts an IU in the next request slot (waiting for a free one).
func (b *srpBad) send(iu *srp.IU) error {
	buf := make([]byte, b.conn.MaxIU())
	n, err := iu.Encode(buf)
	if err != nil {
		panic(err)
	}
	return b.conn.Send(buf[:n])
}

func (b *srpBad) read(key uint32, addr uint64, n uint32) {
	b.send(&srp.IU{Op: srp.OpCmd, Cmd: srp.Cmd{Tag: 77, CDB: scsitest.RW10(0x28, 0, 0, uint16(n/512)),
		In: srp.BufDesc{Format: srp.BufDirect, Direct: srp.MemDesc{Addr: addr, Key: key, Len: n}}}})
}

func TestHostileSRPProducerPastRing(t *testing.T) {
	srpAttack(t, func(e *env, b *srpBad) {
		r := b.conn.Ring()
		r.Store(srpring.OffReqProd, r.Load(srpring.OffReqProd)+1000)
		b.conn.Notify()
	})
}

// The frontend claims to have consumed more responses than were produced:
// the backend finds more response slots in use than the ring has.
func TestHostileSRPMoreResponsesThanSlots(t *testing.T) {
	srpAttack(t, func(e *env, b *srpBad) {
		r := b.conn.Ring()
		r.Store(srpring.OffRspCons, r.Load(srpring.OffRspProd)+1000)
		b.send(&srp.IU{Op: srp.OpCmd, Cmd: srp.Cmd{Tag: 5, CDB: scsitest.TestUnitReady()}})
	})
}

func TestHostileSRPBadGrantRef(t *testing.T) {
	srpAttack(t, func(e *env, b *srpBad) { b.read(1<<30, 0, 4096) })
}

func TestHostileSRPForeignGrantRef(t *testing.T) {
	srpAttack(t, func(e *env, b *srpBad) {
		fr, _, _ := b.g.AllocPages(1)
		ref, _ := b.g.AllocRef()
		b.g.Grant(ref, 7, fr, false)
		b.read(uint32(ref), 0, 4096)
	})
}

func TestHostileSRPWriteIntoReadOnlyGrant(t *testing.T) {
	srpAttack(t, func(e *env, b *srpBad) {
		fr, _, _ := b.g.AllocPages(1)
		ref, _ := b.g.AllocRef()
		b.g.Grant(ref, 0, fr, true)
		b.read(uint32(ref), 0, 4096)
	})
}

func TestHostileSRPDescriptorCrossesPage(t *testing.T) {
	srpAttack(t, func(e *env, b *srpBad) {
		fr, _, _ := b.g.AllocPages(1)
		ref, _ := b.g.AllocRef()
		b.g.Grant(ref, 0, fr, false)
		b.read(uint32(ref), 4000, 512)
	})
}

// An indirect descriptor whose count says more descriptors than the IU
// holds.
func TestHostileSRPIndirectCountOverflow(t *testing.T) {
	srpAttack(t, func(e *env, b *srpBad) {
		slot := make([]byte, b.conn.Geometry().SlotSize())
		iu := &srp.IU{Op: srp.OpCmd, Cmd: srp.Cmd{Tag: 9, CDB: scsitest.RW10(0x28, 0, 0, 8),
			In: srp.BufDesc{Format: srp.BufIndirect, Table: srp.MemDesc{Addr: srpring.RegionFlag, Key: 1, Len: 32}, TotalLen: 4096,
				Partial: []srp.MemDesc{{Addr: 0, Key: 1, Len: 2048}, {Addr: 2048, Key: 1, Len: 2048}}}}}
		n, _ := iu.Encode(slot[srpring.SlotHeader:])
		slot[srpring.SlotHeader+7] = 200 // DATA-IN BUFFER DESCRIPTOR COUNT
		srpring.PutSlot(slot, n)
		b.conn.PutRaw(slot)
	})
}

// The slot's length word is longer than the slot.
func TestHostileSRPLyingSlotLength(t *testing.T) {
	srpAttack(t, func(e *env, b *srpBad) {
		slot := make([]byte, b.conn.Geometry().SlotSize())
		iu := &srp.IU{Op: srp.OpCmd, Cmd: srp.Cmd{Tag: 9, CDB: scsitest.TestUnitReady()}}
		iu.Encode(slot[srpring.SlotHeader:])
		srpring.PutSlot(slot, 1<<20)
		b.conn.PutRaw(slot)
	})
}

// The slot's length word cuts the IU short of what its own fields say.
func TestHostileSRPLyingIULength(t *testing.T) {
	srpAttack(t, func(e *env, b *srpBad) {
		slot := make([]byte, b.conn.Geometry().SlotSize())
		iu := &srp.IU{Op: srp.OpCmd, Cmd: srp.Cmd{Tag: 9, CDB: scsitest.RW10(0x28, 0, 0, 8),
			In: srp.BufDesc{Format: srp.BufDirect, Direct: srp.MemDesc{Key: 1, Len: 4096}}}}
		n, _ := iu.Encode(slot[srpring.SlotHeader:])
		srpring.PutSlot(slot, n-8) // half the descriptor is missing
		b.conn.PutRaw(slot)
	})
}

func TestHostileSRPUnknownIU(t *testing.T) {
	srpAttack(t, func(e *env, b *srpBad) {
		slot := make([]byte, b.conn.Geometry().SlotSize())
		slot[srpring.SlotHeader] = 0x7f
		srpring.PutSlot(slot, 64)
		b.conn.PutRaw(slot)
	})
}

func TestHostileSRPDoubleFetch(t *testing.T) {
	srpAttack(t, func(e *env, b *srpBad) {
		r := b.conn.Ring()
		_ = r
		stop := make(chan struct{})
		slots := b.conn.Geometry().Slots()
		size := b.conn.Geometry().SlotSize()
		mem := requestSlots(b)
		go func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				// Every slot flips between garbage (three writes in four)
				// and a valid opcode, whatever the number of slots: the
				// backend must catch the garbage in its private copy.
				s := (i % slots) * size
				if (i/slots)%4 != 0 {
					mem[s+srpring.SlotHeader] = 0x7f
				} else {
					mem[s+srpring.SlotHeader] = byte(srp.OpCmd)
				}
			}
		}()
		defer close(stop)
		go func() {
			for {
				if _, err := b.conn.Recv(); err != nil {
					return
				}
			}
		}()
		// Keep sending until the backend catches the garbage in its copy
		// and disconnects (send fails); the flipper races every send, so
		// how many it takes depends on the scheduler.
		deadline := time.Now().Add(8 * time.Second)
		for i := 0; time.Now().Before(deadline); i++ {
			if b.send(&srp.IU{Op: srp.OpCmd, Cmd: srp.Cmd{Tag: uint64(i + 10), CDB: scsitest.TestUnitReady()}}) != nil {
				return
			}
		}
	})
}

func requestSlots(b *srpBad) []byte { return frontend.RequestSlotsForTest(b.conn) }

func TestHostileSRPXenStoreGarbage(t *testing.T) {
	hostile(t, "srp", func(e *env, bad *xensim.Guest) {
		st, err := bad.Store()
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		fe := "/local/domain/" + strconv.Itoa(int(bad.ID())) + "/device/vsrp/0"
		waitNode(t, st, fe+"/state")
		time.Sleep(100 * time.Millisecond) // the backend reaches InitWait
		st.Write(0, fe+"/ring-page-order", strings.Repeat("7", 4000))
		st.Write(0, fe+"/slot-order", "8")
		st.Write(0, fe+"/ring-ref0", "\x00\xff")
		st.Write(0, fe+"/event-channel", "-1")
		st.Write(0, fe+"/state", "3")
	})
}

// The frontend never unmasks (or acts on) its event channel and never
// consumes responses: the response ring fills, and the backend gives up
// on it after its send timeout instead of blocking forever.
func TestHostileSRPNeverUnmasks(t *testing.T) {
	srpAttack(t, func(e *env, b *srpBad) {
		for i := 0; i < 4*b.conn.Geometry().Slots(); i++ {
			if b.send(&srp.IU{Op: srp.OpCmd, Cmd: srp.Cmd{Tag: uint64(i + 10), CDB: scsitest.TestUnitReady()}}) != nil {
				return
			}
		}
	})
}
