package scsi

import (
	"encoding/binary"
	"sort"
	"sync"
)

// modePage is one mode page's definition: its default value (including the
// page header) and the mask of bits an initiator may change.
type modePage struct {
	code    byte
	subpage byte
	def     []byte
	mask    []byte
}

type modeEntry struct {
	page  *modePage
	cur   []byte
	saved []byte // nil when the page was never saved
}

// modeState holds a logical unit's mode pages (current, saved) under one
// lock. The LU is one mode page policy for all I_T nexuses (SPC-4 7.5.2:
// MODE SELECT changes are seen by every nexus, which gets MODE PARAMETERS
// CHANGED).
type modeState struct {
	mu    sync.RWMutex
	pages []*modeEntry
	// saver persists saved pages; nil means this LU cannot save
	// parameters (no state directory) and PC=3 / SP=1 are refused.
	saver func(pages [][]byte) error
}

func (m *modeState) init(pages []*modePage) {
	// Ascending page code order, as MODE SENSE with page 3Fh returns them.
	sort.Slice(pages, func(i, j int) bool {
		if pages[i].code != pages[j].code {
			return pages[i].code < pages[j].code
		}
		return pages[i].subpage < pages[j].subpage
	})
	for _, p := range pages {
		e := &modeEntry{page: p, cur: append([]byte(nil), p.def...)}
		m.pages = append(m.pages, e)
	}
}

// restore loads saved pages (as written by the saver) and makes them
// current. Unknown or malformed entries are ignored: a page that no longer
// matches its definition keeps its default.
func (m *modeState) restore(saved [][]byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, s := range saved {
		if len(s) < 2 {
			continue
		}
		code, sub := s[0]&0x3F, byte(0)
		if s[0]&0x40 != 0 && len(s) >= 2 {
			sub = s[1]
		}
		e := m.find(code, sub)
		if e == nil || len(s) != len(e.page.def) {
			continue
		}
		ok := true
		for i := 2; i < len(s); i++ {
			if (s[i]^e.page.def[i])&^e.page.mask[i] != 0 {
				ok = false
			}
		}
		if ok {
			e.saved = append([]byte(nil), s...)
			copy(e.cur, s)
		}
	}
}

func (m *modeState) find(code, sub byte) *modeEntry {
	for _, e := range m.pages {
		if e.page.code == code && e.page.subpage == sub {
			return e
		}
	}
	return nil
}

// get copies the current value of a page into dst and returns it.
func (m *modeState) get(code byte, dst []byte) []byte {
	m.mu.RLock()
	defer m.mu.RUnlock()
	e := m.find(code, 0)
	if e == nil {
		return nil
	}
	return append(dst[:0], e.cur...)
}

// resetToSaved makes the saved (or default) values current, as a logical
// unit reset does (SPC-4 7.5.2).
func (m *modeState) resetToSaved() {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, e := range m.pages {
		if e.saved != nil {
			copy(e.cur, e.saved)
		} else {
			copy(e.cur, e.page.def)
		}
	}
}

// Page control values of MODE SENSE.
const (
	pcCurrent    = 0
	pcChangeable = 1
	pcDefault    = 2
	pcSaved      = 3
)

// appendPage appends one page under page control pc to w.
func (m *modeState) appendPage(w *respWriter, e *modeEntry, pc byte) {
	var src []byte
	switch pc {
	case pcCurrent:
		src = e.cur
	case pcChangeable:
		src = e.page.mask
	case pcDefault:
		src = e.page.def
	case pcSaved:
		src = e.saved
		if src == nil {
			src = e.page.def
		}
	}
	start := w.n
	w.bytes(src)
	// Header bytes: page code with PS (saveable) and SPF, then length,
	// always from the definition (the mask has no header of its own).
	hdr := e.page.def[0] & 0x7F
	if m.saver != nil {
		hdr |= 0x80
	}
	w.setByte(start, hdr)
	w.setByte(start+1, e.page.def[1])
}

// sense renders MODE SENSE pages for page/subpage under pc.
func (m *modeState) sense(w *respWriter, page, sub, pc byte) error {
	if pc == pcSaved && m.saver == nil {
		return ErrSavingNotSupported
	}
	// Page 3Fh with subpage 01h-FEh is a reserved code value (SPC-4 table
	// "mode page code usage"), which is reported as an error (SPC-4 3.5,
	// "reserved": receipt of reserved code values ... shall be reported
	// as an error).
	if page == 0x3F && sub != 0x00 && sub != 0xFF {
		return InvalidCDB(3, -1)
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	found := false
	for _, e := range m.pages {
		match := false
		switch {
		case page == 0x3F && (sub == 0x00 || sub == 0xFF):
			match = sub == 0xFF || e.page.subpage == 0
		case e.page.code == page:
			match = sub == 0xFF || e.page.subpage == sub
		}
		if match {
			m.appendPage(w, e, pc)
			found = true
		}
	}
	if !found {
		if page == 0x3F {
			return nil
		}
		return InvalidCDB(2, 5)
	}
	return nil
}

// selectPages validates a MODE SELECT page list (the part after the header
// and block descriptors, at offset base of the parameter list) and, when it
// is valid, applies it. It reports whether a current value changed. Nothing
// changes if any page is invalid.
func (m *modeState) selectPages(list []byte, base int, save bool) (bool, error) {
	if save && m.saver == nil {
		return false, InvalidCDB(1, 0)
	}
	type upd struct {
		e   *modeEntry
		val []byte
	}
	var updates []upd
	m.mu.Lock()
	defer m.mu.Unlock()
	for off := 0; off < len(list); {
		if len(list)-off < 2 {
			return false, ErrParamListLength
		}
		code := list[off] & 0x3F
		spf := list[off]&0x40 != 0
		var sub byte
		var plen, hlen int
		if spf {
			if len(list)-off < 4 {
				return false, ErrParamListLength
			}
			sub = list[off+1]
			plen = int(binary.BigEndian.Uint16(list[off+2:]))
			hlen = 4
		} else {
			plen = int(list[off+1])
			hlen = 2
		}
		e := m.find(code, sub)
		if e == nil {
			return false, InvalidParam(base+off, 5)
		}
		// A page_0 page comes in the page_0 format, a subpage in the
		// sub_page format (SPC-4 7.5.7); the other header would put every
		// field at the wrong offset.
		if spf != (e.page.def[0]&0x40 != 0) {
			return false, InvalidParam(base+off, 6)
		}
		if hlen+plen != len(e.page.def) {
			return false, InvalidParam(base+off+1, -1)
		}
		if len(list)-off < hlen+plen {
			return false, ErrParamListLength
		}
		val := list[off : off+hlen+plen]
		for i := hlen; i < len(val); i++ {
			if bad := (val[i] ^ e.cur[i]) &^ e.page.mask[i]; bad != 0 {
				return false, InvalidParam(base+off+i, highBit(bad))
			}
		}
		updates = append(updates, upd{e, val})
		off += hlen + plen
	}
	changed := false
	for _, u := range updates {
		hlen := 2
		if u.e.page.def[0]&0x40 != 0 {
			hlen = 4
		}
		for i := hlen; i < len(u.val); i++ {
			if u.e.cur[i] != u.val[i] {
				changed = true
			}
			u.e.cur[i] = u.val[i]
		}
	}
	if save {
		// SP 1 saves every saveable page, not only those in the list
		// (SPC-4 6.9: "all the saveable mode pages including any sent").
		// The saved values change only once the saver has kept them.
		all := make([][]byte, len(m.pages))
		for i, e := range m.pages {
			all[i] = append([]byte(nil), e.cur...)
		}
		if err := m.saver(all); err != nil {
			return changed, ErrInternalFailure
		}
		for i, e := range m.pages {
			e.saved = all[i]
		}
	}
	return changed, nil
}

func highBit(b byte) int {
	for i := 7; i >= 0; i-- {
		if b&(1<<i) != 0 {
			return i
		}
	}
	return -1
}

// SPC mode pages shared by every device type.

// controlPage is the Control mode page (0Ah, SPC-4 7.5.8): D_SENSE and SWP
// are changeable. QUEUE ALGORITHM MODIFIER is 1 (unrestricted reordering
// allowed): SIMPLE tasks run concurrently.
func controlPage() *modePage {
	def := make([]byte, 12)
	def[0], def[1] = 0x0A, 0x0A
	def[3] = 0x10               // QAM 1
	def[8], def[9] = 0xFF, 0xFF // busy timeout period: unlimited
	mask := make([]byte, 12)
	mask[2] = 0x04 // D_SENSE
	mask[4] = 0x08 // SWP
	return &modePage{code: 0x0A, def: def, mask: mask}
}

// iecPage is the Informational Exceptions Control mode page (1Ch, SPC-4
// 7.5.14). Exceptions are disabled (DEXCPT); the target has no failure
// prediction, so DEXCPT is the only changeable bit.
func iecPage() *modePage {
	def := make([]byte, 12)
	def[0], def[1] = 0x1C, 0x0A
	def[2] = 0x08 // DEXCPT
	mask := make([]byte, 12)
	mask[2] = 0x08
	return &modePage{code: 0x1C, def: def, mask: mask}
}

func spcModePages() []*modePage { return []*modePage{controlPage(), iecPage()} }

// applyMode refreshes the LU's cached view of its mode pages.
func (lu *LU) applyMode() {
	var buf [64]byte
	if p := lu.mode.get(0x0A, buf[:0]); len(p) >= 5 {
		lu.dsense.Store(p[2]&0x04 != 0)
		lu.swp.Store(p[4]&0x08 != 0)
	}
	if a, ok := lu.dev.(interface{ applyMode(*modeState) }); ok {
		a.applyMode(&lu.mode)
	}
}
