package scsi

import (
	"sync"
	"sync/atomic"
)

// maxUA bounds the unit attentions queued for one I_T_L nexus. SPC-4 5.14
// lets a device server drop the lower-priority ones when the queue is full;
// a POWER ON/RESET condition supersedes everything queued.
const maxUA = 8

// uaQueue holds the unit attention conditions pending for one I_T_L nexus.
// The count is atomic so the command path checks it without a lock.
type uaQueue struct {
	pending atomic.Int32
	mu      sync.Mutex
	q       [maxUA]ASC
	n       int
}

// add establishes a unit attention condition. A duplicate of a pending one
// is dropped, and a reset condition replaces the whole queue (SPC-4 5.14:
// the power on/reset condition reports that everything else happened too).
func (u *uaQueue) add(asc ASC) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if asc>>8 == 0x29 {
		u.q[0] = asc
		u.n = 1
		u.pending.Store(1)
		return
	}
	for i := 0; i < u.n; i++ {
		if u.q[i] == asc {
			return
		}
	}
	if u.n == maxUA {
		return
	}
	u.q[u.n] = asc
	u.n++
	u.pending.Store(int32(u.n))
}

// take removes and returns the oldest pending unit attention.
func (u *uaQueue) take() (ASC, bool) {
	if u.pending.Load() == 0 {
		return 0, false
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.n == 0 {
		return 0, false
	}
	asc := u.q[0]
	copy(u.q[:], u.q[1:u.n])
	u.n--
	u.pending.Store(int32(u.n))
	return asc, true
}

// clear removes a pending condition (REPORT LUNS clears REPORTED LUNS DATA
// HAS CHANGED).
func (u *uaQueue) clear(asc ASC) {
	if u.pending.Load() == 0 {
		return
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	j := 0
	for i := 0; i < u.n; i++ {
		if u.q[i] != asc {
			u.q[j] = u.q[i]
			j++
		}
	}
	u.n = j
	u.pending.Store(int32(j))
}
