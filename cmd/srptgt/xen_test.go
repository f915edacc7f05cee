package main

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"

	"github.com/srptgt/srptgt/transport/xen/xensim"
)

// srptgt xen attach / list / detach against the simulator: the nodes of
// both sides appear with their permissions, a second LUN joins the same
// device, detach removes a LUN entry and then the whole vhost.
func TestXenCLI(t *testing.T) {
	sim, err := xensim.Listen(filepath.Join(t.TempDir(), "sim.sock"), xensim.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	g, err := xensim.DialGuest(sim.Path(), xensim.GuestConfig{Name: "guest1"})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	xs := func(args ...string) string {
		t.Helper()
		var out, errb bytes.Buffer
		if rc := run(append([]string{"xen", "--xen-sim", sim.Path()}, args...), &out, &errb); rc != 0 {
			t.Fatalf("srptgt xen %s: exit %d: %s", strings.Join(args, " "), rc, errb.String())
		}
		return out.String()
	}
	xs("attach", "--domain", "guest1", "--lun", "disk0", "--vdev", "0:0:0:0")
	xs("attach", "--domain", "guest1", "--lun", "disk1", "--vdev", "0:0:0:1")
	xs("attach", "--domain", "1", "--lun", "disk0", "--vdev", "0:0:0:0", "--vhost", "1")
	dump := strings.Join(sim.Store().Dump("/local/domain"), "\n")
	for _, want := range []string{
		`/local/domain/0/backend/vscsi/1/0 = "" (n0,r1)`,
		`/local/domain/0/backend/vscsi/1/0/vscsi-devs/dev-1/p-dev = "disk1" (n0,r1)`,
		`/local/domain/0/backend/vscsi/1/0/state = "1" (n0,r1)`,
		`/local/domain/1/device/vscsi/0 = "" (n1,r0)`,
		`/local/domain/1/device/vscsi/0/backend = "/local/domain/0/backend/vscsi/1/0" (n1,r0)`,
		`/local/domain/1/device/vscsi/0/state = "1" (n1,r0)`,
		`/local/domain/1/device/vscsi/1/backend-id = "0" (n1,r0)`,
	} {
		if !strings.Contains(dump, want) {
			t.Errorf("missing %s in\n%s", want, dump)
		}
	}
	list := xs("list")
	if !strings.Contains(list, "dev-0 0:0:0:0=disk0(Initialising), dev-1 0:0:0:1=disk1(Initialising)") || !strings.Contains(list, "guest1  1") {
		t.Errorf("list:\n%s", list)
	}
	var out, errb bytes.Buffer
	if rc := run([]string{"xen", "--xen-sim", sim.Path(), "attach", "--domain", "guest1", "--lun", "disk2", "--vdev", "0:0:0:1"}, &out, &errb); rc != 1 ||
		!strings.Contains(errb.String(), "already disk1") {
		t.Errorf("attaching a taken address: exit %d: %s", rc, errb.String())
	}
	xs("detach", "--domain", "guest1", "--lun", "disk1")
	if strings.Contains(xs("list"), "disk1") {
		t.Error("disk1 still listed after detach")
	}
	xs("detach", "--domain", "guest1", "--vhost", "1", "--wait", "0s")
	if l := xs("list"); strings.Contains(l, "guest1  1  ") || !strings.Contains(l, "guest1  0") {
		t.Errorf("after detaching vhost 1:\n%s", l)
	}
}
