package backstore

import (
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
)

// FaultOp selects the operations a Fault applies to; values combine.
type FaultOp uint8

const (
	FaultRead        FaultOp = 1 << iota // ReadAt
	FaultWrite                           // WriteAt and WriteAtSync
	FaultFlush                           // Flush
	FaultUnmap                           // Unmap
	FaultWriteZeroes                     // WriteZeroes

	FaultAny = FaultRead | FaultWrite | FaultFlush | FaultUnmap | FaultWriteZeroes
)

// Fault is a named fault-injection rule for a Faulty store.
type Fault struct {
	Name string
	Op   FaultOp
	// Off and Len give the byte range [Off, Off+Len) the rule watches; an
	// operation that overlaps it trips the rule. Len 0 watches to the end
	// of the store. Flush has no range: a flush rule always matches.
	Off, Len int64
	// Err is the error the operation fails with, inside an *OpError;
	// nil means syscall.EIO. Use syscall.ENOSPC for a full thin store.
	Err error
	// Short makes a tripped read or write short instead of failing whole:
	// the bytes before Off go to the inner store, and the operation
	// returns how many it moved (n < len) with the error.
	Short bool
	// Times trips the rule only so many times (0: every time).
	Times int
}

type faultRule struct {
	Fault
	left atomic.Int64 // trips left when Times > 0
	hits atomic.Int64
}

// Faulty wraps a Store and fails chosen operations at chosen offsets, for
// tests of the layers above. Rules are added and removed at any time, from
// any goroutine. Operations that no rule matches go straight to the inner
// store and cost one atomic load more; they allocate nothing.
//
// Closed, read-only and out-of-range operations are left to the inner
// store, so that they fail as they would without the wrapper.
type Faulty struct {
	inner Store
	mu    sync.Mutex                   // serialises rule changes
	rules atomic.Pointer[[]*faultRule] // copy on write
}

// NewFaulty wraps s with no rules.
func NewFaulty(s Store) *Faulty { return &Faulty{inner: s} }

// Inner returns the wrapped store.
func (f *Faulty) Inner() Store { return f.inner }

// Add installs a rule, replacing any rule of the same name.
func (f *Faulty) Add(flt Fault) {
	r := &faultRule{Fault: flt}
	r.left.Store(int64(flt.Times))
	f.update(func(rules []*faultRule) []*faultRule {
		rules = slices.DeleteFunc(rules, func(o *faultRule) bool { return o.Name == flt.Name })
		return append(rules, r)
	})
}

// Remove deletes the named rule and reports whether there was one.
func (f *Faulty) Remove(name string) bool {
	found := false
	f.update(func(rules []*faultRule) []*faultRule {
		return slices.DeleteFunc(rules, func(o *faultRule) bool {
			found = found || o.Name == name
			return o.Name == name
		})
	})
	return found
}

// Clear deletes every rule.
func (f *Faulty) Clear() {
	f.update(func([]*faultRule) []*faultRule { return nil })
}

// Hits reports how many times the named rule has tripped (0 if there is
// no such rule).
func (f *Faulty) Hits(name string) int {
	if p := f.rules.Load(); p != nil {
		for _, r := range *p {
			if r.Name == name {
				return int(r.hits.Load())
			}
		}
	}
	return 0
}

func (f *Faulty) update(change func([]*faultRule) []*faultRule) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var cur []*faultRule
	if p := f.rules.Load(); p != nil {
		cur = slices.Clone(*p)
	}
	next := change(cur)
	f.rules.Store(&next)
}

// trip returns the first rule that matches op on [off, off+n) and may
// still trip, counting the trip; nil if none. Operations that the inner
// store would refuse anyway trip nothing.
func (f *Faulty) trip(op FaultOp, off, n int64) *faultRule {
	p := f.rules.Load()
	if p == nil || len(*p) == 0 {
		return nil
	}
	checked := false
	for _, r := range *p {
		if r.Op&op == 0 {
			continue
		}
		if op != FaultFlush {
			if n <= 0 || off+n <= r.Off || (r.Len > 0 && off >= r.Off+r.Len) {
				continue
			}
			if !checked && !f.valid(op != FaultRead, off, n) {
				return nil
			}
			checked = true
		}
		if r.Times > 0 && r.left.Add(-1) < 0 {
			continue
		}
		r.hits.Add(1)
		return r
	}
	return nil
}

func (r *faultRule) err() error {
	if r.Err == nil {
		return syscall.EIO
	}
	return r.Err
}

// valid reports whether an operation would pass the inner store's own
// checks, so that a rule never hides ErrOutOfRange or ErrReadOnly.
func (f *Faulty) valid(write bool, off, n int64) bool {
	if write && f.inner.Caps().ReadOnly {
		return false
	}
	return CheckRange(off, n, f.inner.Size()) == nil
}

// transfer runs a tripped read or write: the part before the rule's range
// first when the rule is Short, then the failure.
func (f *Faulty) transfer(r *faultRule, op string, p []byte, off int64, do func([]byte, int64) (int, error)) (int, error) {
	n := 0
	if r.Short && r.Off > off {
		var err error
		if n, err = do(p[:r.Off-off], off); err != nil {
			return n, err
		}
	}
	return n, &OpError{Op: op, Off: off, Len: int64(len(p)), Err: r.err()}
}

func (f *Faulty) ReadAt(p []byte, off int64) (int, error) {
	if r := f.trip(FaultRead, off, int64(len(p))); r != nil {
		return f.transfer(r, opRead, p, off, f.inner.ReadAt)
	}
	return f.inner.ReadAt(p, off)
}

func (f *Faulty) WriteAt(p []byte, off int64) (int, error) {
	if r := f.trip(FaultWrite, off, int64(len(p))); r != nil {
		return f.transfer(r, opWrite, p, off, f.inner.WriteAt)
	}
	return f.inner.WriteAt(p, off)
}

func (f *Faulty) WriteAtSync(p []byte, off int64) (int, error) {
	if r := f.trip(FaultWrite, off, int64(len(p))); r != nil {
		return f.transfer(r, opWrite, p, off, f.inner.WriteAtSync)
	}
	return f.inner.WriteAtSync(p, off)
}

func (f *Faulty) Flush() error {
	if r := f.trip(FaultFlush, 0, 0); r != nil {
		return &OpError{Op: opFlush, Err: r.err()}
	}
	return f.inner.Flush()
}

func (f *Faulty) Unmap(off, n int64) error {
	if r := f.trip(FaultUnmap, off, n); r != nil {
		return &OpError{Op: opUnmap, Off: off, Len: n, Err: r.err()}
	}
	return f.inner.Unmap(off, n)
}

func (f *Faulty) WriteZeroes(off, n int64) error {
	if r := f.trip(FaultWriteZeroes, off, n); r != nil {
		return &OpError{Op: opWriteZeroes, Off: off, Len: n, Err: r.err()}
	}
	return f.inner.WriteZeroes(off, n)
}

func (f *Faulty) Size() int64       { return f.inner.Size() }
func (f *Faulty) BlockSize() uint32 { return f.inner.BlockSize() }
func (f *Faulty) Caps() Caps        { return f.inner.Caps() }
func (f *Faulty) Close() error      { return f.inner.Close() }

// Allocation passes through to the inner store's Allocator, or reports
// everything allocated when it has none.
func (f *Faulty) Allocation(off int64) (bool, int64, error) {
	if a, ok := f.inner.(Allocator); ok {
		return a.Allocation(off)
	}
	if err := CheckRange(off, 1, f.inner.Size()); err != nil {
		return false, 0, &OpError{Op: opAllocation, Off: off, Len: 1, Err: err}
	}
	return true, f.inner.Size() - off, nil
}
