package xenstore

import (
	"errors"
	"io/fs"
	"syscall"
)

func isNotExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }

// IsNotExist reports whether err means the node does not exist.
func IsNotExist(err error) bool { return isNotExist(err) }

// IsAgain reports whether err means a transaction must be retried.
func IsAgain(err error) bool { return errors.Is(err, syscall.EAGAIN) }
