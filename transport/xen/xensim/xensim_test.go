package xensim

import (
	"bytes"
	"errors"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/srptgt/srptgt/transport/xen"
	"github.com/srptgt/srptgt/transport/xen/xenstore"
)

func startSim(t *testing.T) *Server {
	t.Helper()
	s, err := Listen(filepath.Join(t.TempDir(), "sim.sock"), Config{DefaultPages: 256, DefaultGrants: 64})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func dialBoth(t *testing.T, s *Server) (*Hypervisor, *Guest) {
	t.Helper()
	h, err := Dial(s.Path())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	g, err := DialGuest(s.Path(), GuestConfig{Name: "g1"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	return h, g
}

func TestGrantCopy(t *testing.T) {
	s := startSim(t)
	h, g := dialBoth(t, s)
	f, page, err := g.AllocPages(2)
	if err != nil {
		t.Fatal(err)
	}
	copy(page, bytes.Repeat([]byte("guest"), 1000))
	rw, _ := g.AllocRef()
	ro, _ := g.AllocRef()
	foreign, _ := g.AllocRef()
	unused, _ := g.AllocRef()
	g.Grant(rw, 0, f, false)
	g.Grant(ro, 0, f+1, true)
	g.Grant(foreign, 7, f, false)
	gr, _ := h.Grants()
	defer gr.Close()
	local := make([]byte, 100)
	segs := []xen.CopySeg{
		{Dom: g.ID(), Ref: rw, Offset: 10, Local: local[:50]},
		{Dom: g.ID(), Ref: rw, Offset: 0, Local: []byte("backend"), ToGuest: true},
		{Dom: g.ID(), Ref: ro, Offset: 0, Local: []byte("nope"), ToGuest: true},
		{Dom: g.ID(), Ref: ro, Offset: 0, Local: local[50:60]},
		{Dom: g.ID(), Ref: foreign, Local: local[:1]},
		{Dom: g.ID(), Ref: unused, Local: local[:1]},
		{Dom: g.ID(), Ref: 1 << 20, Local: local[:1]},
		{Dom: 99, Ref: rw, Local: local[:1]},
	}
	if err := gr.Copy(segs); err != nil {
		t.Fatal(err)
	}
	want := []xen.GrantStatus{xen.GrantOK, xen.GrantOK, xen.GrantPermission, xen.GrantOK,
		xen.GrantPermission, xen.GrantBadRef, xen.GrantBadRef, xen.GrantBadDomain}
	for i, w := range want {
		if segs[i].Status != w {
			t.Errorf("segment %d: status %v, want %v", i, segs[i].Status, w)
		}
	}
	if string(page[:7]) != "backend" || !bytes.Equal(local[:50], page[10:60]) && string(local[:5]) != "estgu" {
		t.Errorf("copy results wrong: %q %q", page[:7], local[:10])
	}
	if err := gr.Copy([]xen.CopySeg{{Dom: g.ID(), Ref: rw, Offset: 4000, Local: local}}); !errors.Is(err, syscall.EINVAL) {
		t.Errorf("page-crossing copy: %v", err)
	}
	g.Revoke(rw)
	segs = segs[:1]
	gr.Copy(segs)
	if segs[0].Status != xen.GrantBadRef {
		t.Errorf("revoked grant: %v", segs[0].Status)
	}
}

func TestGrantMap(t *testing.T) {
	s := startSim(t)
	h, g := dialBoth(t, s)
	f, page, _ := g.AllocPages(3)
	refs := make([]xen.GrantRef, 3)
	for i := range refs {
		refs[i], _ = g.AllocRef()
	}
	// granted out of order: the mapping follows the refs
	g.Grant(refs[0], 0, f+2, false)
	g.Grant(refs[1], 0, f, false)
	g.Grant(refs[2], 0, f+1, true)
	gr, _ := h.Grants()
	defer gr.Close()
	if _, err := gr.Map(g.ID(), refs, true); err == nil {
		t.Fatal("writable map of a read-only grant succeeded")
	}
	m, err := gr.Map(g.ID(), refs, false)
	if err != nil {
		t.Fatal(err)
	}
	page[2*4096] = 'a'
	page[0] = 'b'
	page[4096] = 'c'
	if string([]byte{m[0], m[4096], m[8192]}) != "abc" {
		t.Errorf("mapping order: %q", []byte{m[0], m[4096], m[8192]})
	}
	m2, err := gr.Map(g.ID(), refs[:2], true)
	if err != nil {
		t.Fatal(err)
	}
	m2[1] = 'z'
	if page[2*4096+1] != 'z' {
		t.Error("write through mapping not seen by the guest")
	}
	if err := gr.Unmap(m[:4096]); err == nil {
		t.Error("unmap of part of a region succeeded")
	}
	if err := gr.Unmap(m); err != nil {
		t.Error(err)
	}
	if err := gr.Unmap(m2); err != nil {
		t.Error(err)
	}
}

func TestEventChannel(t *testing.T) {
	s := startSim(t)
	h, g := dialBoth(t, s)
	ge, err := g.AllocUnbound(0)
	if err != nil {
		t.Fatal(err)
	}
	defer ge.Close()
	if _, err := h.BindInterdomain(g.ID(), ge.LocalPort()+7); err == nil {
		t.Error("bound a port that does not exist")
	}
	be, err := h.BindInterdomain(g.ID(), ge.LocalPort())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.BindInterdomain(g.ID(), ge.LocalPort()); err == nil {
		t.Error("bound a port twice")
	}
	// notifications while nobody waits are kept and coalesce
	ge.Notify()
	ge.Notify()
	if err := be.Wait(); err != nil {
		t.Fatal(err)
	}
	be.Notify()
	if err := ge.Wait(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error)
	go func() { done <- be.Wait() }()
	time.Sleep(20 * time.Millisecond)
	be.Close()
	if err := <-done; !errors.Is(err, xen.ErrClosed) {
		t.Errorf("Wait after Close: %v", err)
	}
	// the backend's close makes the guest port bindable again (restart)
	be2, err := h.BindInterdomain(g.ID(), ge.LocalPort())
	if err != nil {
		t.Fatalf("rebinding after close: %v", err)
	}
	be2.Close()
}

func TestXenStoreAndDomains(t *testing.T) {
	s := startSim(t)
	h, g := dialBoth(t, s)
	st, err := h.Store()
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.Watch(xenstore.ReleaseDomain, "rel"); err != nil {
		t.Fatal(err)
	}
	<-st.Events()
	name, err := st.Read(0, "/local/domain/1/name")
	if err != nil || name != "g1" {
		t.Fatalf("name %q %v", name, err)
	}
	gs, err := g.Store()
	if err != nil {
		t.Fatal(err)
	}
	defer gs.Close()
	if err := gs.Write(0, "/local/domain/0/x", "1"); !errors.Is(err, syscall.EACCES) {
		t.Errorf("guest wrote into dom0's tree: %v", err)
	}
	if err := gs.Write(0, "/local/domain/1/data/x", "1"); err != nil {
		t.Errorf("guest write to its own tree: %v", err)
	}
	gr, _ := h.Grants()
	defer gr.Close()
	f, _, _ := g.AllocPages(1)
	ref, _ := g.AllocRef()
	g.Grant(ref, 0, f, false)
	seg := []xen.CopySeg{{Dom: g.ID(), Ref: ref, Local: make([]byte, 8)}}
	gr.Copy(seg)
	if seg[0].Status != xen.GrantOK {
		t.Fatal(seg[0].Status)
	}
	if err := h.Destroy(g.ID()); err != nil {
		t.Fatal(err)
	}
	select {
	case ev := <-st.Events():
		if ev.Path != xenstore.ReleaseDomain {
			t.Errorf("event %v", ev)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no @releaseDomain")
	}
	<-g.Done()
	deadline := time.Now().Add(5 * time.Second)
	for {
		gr.Copy(seg)
		if seg[0].Status == xen.GrantBadDomain {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("copy from a destroyed domain: %v", seg[0].Status)
		}
		time.Sleep(time.Millisecond)
	}
}
