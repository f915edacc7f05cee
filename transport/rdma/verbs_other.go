//go:build !linux || !cgo

package rdma

import "github.com/srptgt/srptgt/transport/rdma/provider"

// BuiltIn reports whether the rdma-core verbs layer is compiled in.
const BuiltIn = false

// Verbs reports ErrNotBuiltIn: this binary was built without cgo (or not
// for Linux), so it has no rdma-core.
func Verbs() (provider.Provider, error) { return nil, ErrNotBuiltIn }
