package scsi

// TMFResult is a task management function's service response (SAM-5 7.1).
type TMFResult uint8

const (
	// TMFComplete: FUNCTION COMPLETE.
	TMFComplete TMFResult = iota
	// TMFSucceeded: FUNCTION SUCCEEDED (QUERY TASK found the task).
	TMFSucceeded
	// TMFRejected: FUNCTION REJECTED.
	TMFRejected
	// TMFIncorrectLUN: INCORRECT LOGICAL UNIT NUMBER.
	TMFIncorrectLUN
)

func (r TMFResult) String() string {
	switch r {
	case TMFComplete:
		return "FUNCTION COMPLETE"
	case TMFSucceeded:
		return "FUNCTION SUCCEEDED"
	case TMFRejected:
		return "FUNCTION REJECTED"
	case TMFIncorrectLUN:
		return "INCORRECT LOGICAL UNIT NUMBER"
	}
	return "UNKNOWN"
}

// Mark names the moment a task management function was received: it
// affects only tasks that arrived (Nexus.Start) before it (SAM-5 7.1: a
// task received after the function is not in its scope).
type Mark uint64

// Mark returns the current arrival mark. The transport takes it when it
// receives a task management function, after starting every command it
// received before.
func (n *Nexus) Mark() Mark { return Mark(n.target.arrivals.Load()) }

func (m Mark) covers(c *Command) bool { return c.arrival <= uint64(m) }

func (n *Nexus) tmfLU(lun uint64) *itl {
	l, wk, ok := DecodeLUN(lun)
	if !ok || wk {
		return nil
	}
	return n.maps.Load().get(l)
}

// AbortTask aborts the nexus's task with the given tag (SAM-5 7.2). It
// returns once the task, if it was still running, moves no more data; the
// aborted command gets no response. A task that already completed is not
// found, which is FUNCTION COMPLETE too.
func (n *Nexus) AbortTask(lun, tag uint64, m Mark) TMFResult {
	x := n.tmfLU(lun)
	if x == nil {
		return TMFIncorrectLUN
	}
	if x.lu.tasks.abort(func(c *Command) bool { return c.nexus == n && c.Tag == tag && m.covers(c) }) > 0 {
		x.lu.tasks.waitAborted()
	}
	return TMFComplete
}

// AbortTaskSet aborts every task of this nexus on the LU (SAM-5 7.3).
func (n *Nexus) AbortTaskSet(lun uint64, m Mark) TMFResult {
	x := n.tmfLU(lun)
	if x == nil {
		return TMFIncorrectLUN
	}
	if x.lu.tasks.abort(func(c *Command) bool { return c.nexus == n && m.covers(c) }) > 0 {
		x.lu.tasks.waitAborted()
	}
	return TMFComplete
}

// ClearTaskSet aborts every task on the LU, from every nexus (SAM-5 7.5).
// With TAS 0, other nexuses whose tasks were cleared get COMMANDS CLEARED
// BY ANOTHER INITIATOR.
func (n *Nexus) ClearTaskSet(lun uint64, m Mark) TMFResult {
	x := n.tmfLU(lun)
	if x == nil {
		return TMFIncorrectLUN
	}
	x.lu.clearTasks(n, m, ASCCommandsClearedByAnother)
	return TMFComplete
}

// LUReset performs a logical unit reset (SAM-5 7.7): every task is aborted,
// mode parameters return to their saved values, SPC-2 style state clears
// (the SPC-2 reservation included; persistent reservations stay),
// and every nexus, this one included, gets BUS DEVICE RESET FUNCTION
// OCCURRED.
func (n *Nexus) LUReset(lun uint64, m Mark) TMFResult {
	x := n.tmfLU(lun)
	if x == nil {
		return TMFIncorrectLUN
	}
	x.lu.reset(m)
	return TMFComplete
}

// ClearACA (SAM-5 7.4): this target never establishes an ACA condition
// (NormACA is 0), so there is none to clear.
func (n *Nexus) ClearACA(lun uint64) TMFResult {
	if n.tmfLU(lun) == nil {
		return TMFIncorrectLUN
	}
	return TMFComplete
}

// QueryTask (SAM-5 7.8) reports FUNCTION SUCCEEDED when the task with the
// tag is in the task set, FUNCTION COMPLETE when it is not.
func (n *Nexus) QueryTask(lun, tag uint64, m Mark) TMFResult {
	x := n.tmfLU(lun)
	if x == nil {
		return TMFIncorrectLUN
	}
	if x.lu.tasks.find(func(c *Command) bool { return c.nexus == n && c.Tag == tag && m.covers(c) }) {
		return TMFSucceeded
	}
	return TMFComplete
}

// clearTasks aborts every task of the LU and tells the other nexuses that
// lost tasks.
func (lu *LU) clearTasks(by *Nexus, m Mark, asc ASC) {
	hit := map[*Nexus]bool{}
	lu.tasks.abort(func(c *Command) bool {
		if !m.covers(c) {
			return false
		}
		if c.nexus != by {
			hit[c.nexus] = true
		}
		return true
	})
	lu.tasks.waitAborted()
	lu.mu.Lock()
	for x := range lu.itls {
		if hit[x.nexus] {
			x.ua.add(asc)
		}
	}
	lu.mu.Unlock()
}

// reset performs a logical unit reset for the tasks that arrived up to m.
func (lu *LU) reset(m Mark) {
	lu.tasks.abort(m.covers)
	lu.tasks.waitAborted()
	lu.mode.resetToSaved()
	lu.applyMode()
	lu.prevent.Store(false)
	lu.dropSPC2(nil) // SPC-2 reservations end; persistent ones stay
	lu.dev.reset()
	lu.ua(ASCBusDeviceReset, nil)
}
