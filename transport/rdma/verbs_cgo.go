//go:build linux && cgo

package rdma

import (
	"github.com/srptgt/srptgt/transport/rdma/internal/verbs"
	"github.com/srptgt/srptgt/transport/rdma/provider"
)

// BuiltIn reports whether the rdma-core verbs layer is compiled in.
const BuiltIn = true

// Verbs returns the rdma-core provider (libibverbs and librdmacm through
// cgo).
func Verbs() (provider.Provider, error) { return verbs.New(), nil }
