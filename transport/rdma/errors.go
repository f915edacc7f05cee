package rdma

import "errors"

// ErrNotBuiltIn is returned by Verbs in a binary built without cgo.
var ErrNotBuiltIn = errors.New("RDMA transport not built in (CGO_ENABLED=0)")
