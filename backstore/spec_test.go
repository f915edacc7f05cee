package backstore_test

import (
	"strings"
	"testing"

	"github.com/srptgt/srptgt/backstore"
)

// Bad configuration gets an error that names the field at fault.
func TestSpecValidation(t *testing.T) {
	for _, tc := range []struct {
		spec backstore.Spec
		want string
	}{
		{backstore.Spec{}, "kind is required"},
		{backstore.Spec{Kind: "tape", Size: 4096}, `unknown kind "tape"`},
		{backstore.Spec{Kind: "memory"}, "size is required for kind memory"},
		{backstore.Spec{Kind: "null"}, "size is required for kind null"},
		{backstore.Spec{Kind: "memory", Size: 1000}, "backstore: size 1000 is not a multiple of block size 512"},
		{backstore.Spec{Kind: "memory", Size: 8192, BlockSize: 4096 + 512}, "block size 4608 is not 512 or 4096"},
		{backstore.Spec{Kind: "memory", Size: 6144, BlockSize: 4096}, "size 6144 is not a multiple of block size 4096"},
		{backstore.Spec{Kind: "memory", Size: -512}, "size -512 is negative"},
		{backstore.Spec{Kind: "memory", Size: 4096, Path: "/x"}, `path "/x" does not apply to kind memory`},
		{backstore.Spec{Kind: "memory", Size: 4096, Direct: true}, "direct does not apply to kind memory"},
		{backstore.Spec{Kind: "memory", Size: 4096, NullPattern: "0x00"}, "null pattern does not apply to kind memory"},
		{backstore.Spec{Kind: "memory", Size: 4096, MaxAllocated: -1}, "max allocated -1 is negative"},
		{backstore.Spec{Kind: "null", Size: 4096, MaxAllocated: 1}, "max allocated does not apply to kind null"},
		{backstore.Spec{Kind: "null", Size: 4096, NullPattern: "deadbeef"}, `null pattern "deadbeef" is not "zeros" or 0x-prefixed hex`},
		{backstore.Spec{Kind: "null", Size: 4096, NullPattern: "0xabc"}, "0x-prefixed hex"},
		{backstore.Spec{Kind: "null", Size: 4096, NullPattern: "0x"}, "0x-prefixed hex"},
		{backstore.Spec{Kind: "null", Size: 4096, NullPattern: "0x" + strings.Repeat("ab", 4097)}, "null pattern is 4097 bytes, more than 4096"},
		{backstore.Spec{Kind: "block"}, "path is required for kind block"},
		{backstore.Spec{Kind: "null", Size: 4096, Create: true}, "create does not apply to kind null"},
	} {
		s, err := backstore.Open(tc.spec)
		if err == nil {
			s.Close()
			t.Errorf("Open(%+v) succeeded, want %q", tc.spec, tc.want)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Open(%+v) = %q, want %q", tc.spec, err, tc.want)
		}
	}
}

func TestSpecDefaults(t *testing.T) {
	for _, spec := range []backstore.Spec{
		{Kind: "memory", Size: 1 << 20},
		{Kind: "null", Size: 1 << 20, NullPattern: "zeros"},
		{Kind: "null", Size: 1 << 20, NullPattern: "0x0000"},
	} {
		s, err := backstore.Open(spec)
		if err != nil {
			t.Fatalf("Open(%+v): %v", spec, err)
		}
		if s.BlockSize() != 512 || s.Size() != 1<<20 {
			t.Errorf("Open(%+v): BlockSize %d, Size %d", spec, s.BlockSize(), s.Size())
		}
		if !s.Caps().UnmapZeroes {
			t.Errorf("Open(%+v): a zeros store without UnmapZeroes", spec)
		}
		s.Close()
	}
}

func TestOpErrorMessage(t *testing.T) {
	for _, tc := range []struct {
		err  *backstore.OpError
		want string
	}{
		{&backstore.OpError{Op: "read", Off: 4096, Len: 512, Err: backstore.ErrOutOfRange}, "backstore read at 4096+512: backstore: offset or length out of range"},
		{&backstore.OpError{Op: "flush", Err: backstore.ErrClosed}, "backstore flush: backstore: closed"},
	} {
		if got := tc.err.Error(); got != tc.want {
			t.Errorf("Error() = %q, want %q", got, tc.want)
		}
	}
}
