package scsi

import "sync"

// task is a command's place in its logical unit's task set.
type task struct {
	next, prev *Command // every task of the LU, in arrival order
	qnext      *Command // blocked tasks, FIFO
	wake       chan struct{}
	queued     bool // in the task list
	blocked    bool // waiting for older tasks (ORDERED, or behind one)
	running    bool // counted as an executing task
	aborting   bool // marked by a task management function
}

func (t *task) reset() {
	t.next, t.prev, t.qnext = nil, nil, nil
	t.queued, t.blocked, t.running, t.aborting = false, false, false, false
	if t.wake != nil {
		select {
		case <-t.wake:
		default:
		}
	}
}

// taskSet orders a logical unit's tasks by their task attribute
// (SAM-5 8.6, with the queue algorithm modifier at 0: restricted
// reordering). SIMPLE tasks run concurrently; an ORDERED task starts when
// every older task has ended and holds back every newer task except HEAD OF
// QUEUE ones; a HEAD OF QUEUE task starts at once.
//
// All tasks, running or blocked, stay on one list in arrival order so task
// management functions can find them by nexus and tag.
type taskSet struct {
	mu             sync.Mutex
	head, tail     *Command
	qhead, qtail   *Command
	active         int  // tasks executing
	orderedRunning bool // an ORDERED task is executing
	quiesced       sync.Cond
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
		ts.run(c)
		ts.mu.Unlock()
		return true
	}
	if c.task.wake == nil {
		c.task.wake = make(chan struct{}, 1)
	}
	c.task.blocked = true
	c.task.qnext = nil
	if ts.qtail != nil {
		ts.qtail.task.qnext = c
	} else {
		ts.qhead = c
	}
	ts.qtail = c
	ts.mu.Unlock()

	<-c.task.wake
	ts.mu.Lock()
	ok := c.task.running
	ts.mu.Unlock()
	return ok
}

// mayStart reports whether c can start now; ts.mu is held.
func (ts *taskSet) mayStart(c *Command) bool {
	switch c.Attr {
	case HeadOfQueue:
		return true
	case Ordered:
		return ts.active == 0 && ts.qhead == nil
	default:
		return !ts.orderedRunning && ts.qhead == nil
	}
}

func (ts *taskSet) run(c *Command) {
	c.task.running = true
	c.task.blocked = false
	ts.active++
	if c.Attr == Ordered {
		ts.orderedRunning = true
	}
}

// end removes c from the task set and starts the blocked tasks that may now
// run.
func (ts *taskSet) end(c *Command) {
	ts.mu.Lock()
	if c.task.running {
		c.task.running = false
		ts.active--
		if c.Attr == Ordered {
			ts.orderedRunning = false
		}
	}
	if c.task.blocked {
		ts.unqueue(c)
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
}

// unqueue removes a blocked task from the FIFO; ts.mu is held.
func (ts *taskSet) unqueue(c *Command) {
	var prev *Command
	for p := ts.qhead; p != nil; p = p.task.qnext {
		if p == c {
			if prev != nil {
				prev.task.qnext = p.task.qnext
			} else {
				ts.qhead = p.task.qnext
			}
			if ts.qtail == c {
				ts.qtail = prev
			}
			c.task.qnext = nil
			c.task.blocked = false
			return
		}
		prev = p
	}
}

// dispatch starts blocked tasks from the head of the FIFO while they may
// run; ts.mu is held.
func (ts *taskSet) dispatch() {
	for c := ts.qhead; c != nil; c = ts.qhead {
		ok := false
		switch c.Attr {
		case Ordered:
			ok = ts.active == 0
		default:
			ok = !ts.orderedRunning
		}
		if !ok {
			return
		}
		ts.qhead = c.task.qnext
		if ts.qhead == nil {
			ts.qtail = nil
		}
		c.task.qnext = nil
		ts.run(c)
		c.task.wake <- struct{}{}
		if c.Attr == Ordered {
			return
		}
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
			ts.unqueue(c)
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
