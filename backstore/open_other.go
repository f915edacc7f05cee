//go:build !linux

package backstore

import "fmt"

func openFile(spec Spec) (Store, error) {
	return nil, fmt.Errorf("backstore: kind file: %w on this system", ErrNotSupported)
}

func openBlock(spec Spec) (Store, error) {
	return nil, fmt.Errorf("backstore: kind block: %w on this system", ErrNotSupported)
}
