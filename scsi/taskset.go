package scsi

import "sync"

// task is a command's place in its logical unit's task set.
type task struct {
	next, prev *Command // every task of the LU, in arrival order
	wake       chan struct{}
	queued     bool // in the task list
	special    bool // ORDERED or HEAD OF QUEUE: counted in taskSet.special
	blocked    bool // waiting for older tasks to end
	running    bool // enabled: executing
	aborting   bool // marked by a task management function
}

func (t *task) reset() {
	t.next, t.prev = nil, nil
	t.queued, t.special, t.blocked, t.running, t.aborting = false, false, false, false, false
	if t.wake != nil {
		select {
		case <-t.wake:
		default:
		}
	}
}

// taskSet orders a logical unit's tasks by their task attribute (SAM-5
// 8.6; the control mode page reports QUEUE ALGORITHM MODIFIER 1, so SIMPLE
// tasks need no ordering among themselves). The order that counts is
// arrival: the order of Nexus.Start, not of Execute, since a transport
// may fetch a newer command's data-out first.
//
//   - HEAD OF QUEUE starts at once.
//   - ORDERED starts once every older task has ended.
//   - SIMPLE starts once every older ORDERED and HEAD OF QUEUE task has
//     ended (SAM-5 8.6.2).
//
// All tasks, running or blocked, stay on one list in arrival order so task
// management functions can find them by nexus and tag. With no ORDERED or
// HEAD OF QUEUE task in the set, a SIMPLE task starts without looking at
// the list.
type taskSet struct {
	mu         sync.Mutex
	head, tail *Command
	special    int // ORDERED and HEAD OF QUEUE tasks on the list
	blocked    int // tasks waiting to start
	quiesced   sync.Cond
}

func (ts *taskSet) init() { ts.quiesced.L = &ts.mu }

// add puts c on the task list at arrival. It does not start c.
func (ts *taskSet) add(c *Command) {
	ts.mu.Lock()
	c.task.prev = ts.tail
	c.task.next = nil
	if ts.tail != nil {
		ts.tail.task.next = c
	} else {
		ts.head = c
	}
	ts.tail = c
	c.task.queued = true
	if c.Attr == Ordered || c.Attr == HeadOfQueue {
		c.task.special = true
		ts.special++
	}
	ts.mu.Unlock()
}

// start blocks until c may execute under its task attribute. It returns
// false if c was aborted before it could start.
func (ts *taskSet) start(c *Command) bool {
	ts.mu.Lock()
	if c.task.aborting {
		ts.mu.Unlock()
		return false
	}
	if ts.mayStart(c) {
		c.task.running = true
		ts.mu.Unlock()
		return true
	}
	if c.task.wake == nil {
		c.task.wake = make(chan struct{}, 1)
	}
	c.task.blocked = true
	ts.blocked++
	ts.mu.Unlock()

	<-c.task.wake
	ts.mu.Lock()
	ok := c.task.running
	ts.mu.Unlock()
	return ok
}

// mayStart reports whether c can start now, given the tasks that arrived
// before it; ts.mu is held.
func (ts *taskSet) mayStart(c *Command) bool {
	switch c.Attr {
	case HeadOfQueue:
		return true
	case Ordered:
		return c.task.prev == nil
	}
	if ts.special == 0 {
		return true
	}
	for p := c.task.prev; p != nil; p = p.task.prev {
		if p.task.special {
			return false
		}
	}
	return true
}

// end removes c from the task set and starts the blocked tasks that may now
// run.
func (ts *taskSet) end(c *Command) {
	ts.mu.Lock()
	c.task.running = false
	if c.task.blocked {
		c.task.blocked = false
		ts.blocked--
	}
	ts.unlink(c)
	ts.dispatch()
	if c.task.aborting {
		ts.quiesced.Broadcast()
	}
	ts.mu.Unlock()
}

func (ts *taskSet) unlink(c *Command) {
	if !c.task.queued {
		return
	}
	if c.task.prev != nil {
		c.task.prev.task.next = c.task.next
	} else {
		ts.head = c.task.next
	}
	if c.task.next != nil {
		c.task.next.task.prev = c.task.prev
	} else {
		ts.tail = c.task.prev
	}
	c.task.next, c.task.prev = nil, nil
	c.task.queued = false
	if c.task.special {
		c.task.special = false
		ts.special--
	}
}

// dispatch starts the blocked tasks that may now run, walking the list in
// arrival order; ts.mu is held.
func (ts *taskSet) dispatch() {
	if ts.blocked == 0 {
		return
	}
	older, olderSpecial := false, false
	for p := ts.head; p != nil; p = p.task.next {
		if p.task.blocked {
			ok := false
			switch p.Attr {
			case HeadOfQueue:
				ok = true
			case Ordered:
				ok = !older
			default:
				ok = !olderSpecial
			}
			if ok {
				p.task.blocked = false
				ts.blocked--
				p.task.running = true
				p.task.wake <- struct{}{}
			}
		}
		older = true
		olderSpecial = olderSpecial || p.task.special
	}
}

// abort marks every task for which match is true as aborted, wakes the ones
// still blocked so they end without executing, and returns how many it
// marked. Tasks that already completed are not on the list.
func (ts *taskSet) abort(match func(*Command) bool) int {
	ts.mu.Lock()
	n := 0
	for c := ts.head; c != nil; c = c.task.next {
		if c.task.aborting || !match(c) {
			continue
		}
		if !c.state.CompareAndSwap(cmdRunning, cmdAborted) {
			continue
		}
		c.task.aborting = true
		n++
		if c.task.blocked {
			c.task.blocked = false
			ts.blocked--
			c.task.wake <- struct{}{}
		}
	}
	if n > 0 {
		ts.dispatch()
	}
	ts.mu.Unlock()
	return n
}

// waitAborted blocks until no aborted task is left on the list: aborted
// tasks that were executing have finished their I/O and will move no more
// data.
func (ts *taskSet) waitAborted() {
	ts.mu.Lock()
	for ts.hasAborting() {
		ts.quiesced.Wait()
	}
	ts.mu.Unlock()
}

func (ts *taskSet) hasAborting() bool {
	for c := ts.head; c != nil; c = c.task.next {
		if c.task.aborting {
			return true
		}
	}
	return false
}

// noSpecial reports whether no ORDERED or HEAD OF QUEUE task is in the set.
func (ts *taskSet) noSpecial() bool {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return ts.special == 0
}

// find reports whether a task matching match is on the list.
func (ts *taskSet) find(match func(*Command) bool) bool {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	for c := ts.head; c != nil; c = c.task.next {
		if !c.task.aborting && match(c) {
			return true
		}
	}
	return false
}
