package backstore

// Allocator is implemented by stores that can tell allocated ranges from
// holes (thin provisioning). GET LBA STATUS uses it; a store without it is
// reported as fully mapped.
type Allocator interface {
	// Allocation reports whether the byte at off is allocated and how many
	// bytes from off share that state (at least one block, at most the
	// rest of the store).
	Allocation(off int64) (allocated bool, run int64, err error)
}
