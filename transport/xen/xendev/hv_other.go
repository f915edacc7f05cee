//go:build !linux

package xendev

import (
	"errors"

	"github.com/srptgt/srptgt/transport/xen"
)

// Hypervisor is unavailable off Linux.
type Hypervisor struct{ StorePath string }

var errNotLinux = errors.New("xendev: the Xen devices exist only on Linux")

// Open fails off Linux.
func Open() (*Hypervisor, error) { return nil, errNotLinux }

func (h *Hypervisor) Store() (xen.Store, error)   { return nil, errNotLinux }
func (h *Hypervisor) Grants() (xen.Grants, error) { return nil, errNotLinux }
func (h *Hypervisor) BindInterdomain(xen.DomID, uint32) (xen.EventChannel, error) {
	return nil, errNotLinux
}
