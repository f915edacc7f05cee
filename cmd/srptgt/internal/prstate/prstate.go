// Package prstate keeps a logical unit's persistent reservation state in
// <state_dir>/<lu>/pr while APTPL is in force (SPC-4 5.12.5). The scsi
// package encodes the state and checks it (a text file with a CRC-32C
// trailer, see scsi.ParsePRState); this package only moves the bytes, with
// atomicfile's atomic, durable replacement.
package prstate

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/srptgt/srptgt/cmd/srptgt/internal/atomicfile"
	"github.com/srptgt/srptgt/scsi"
)

// FileName is the file's name inside an LU's state directory.
const FileName = "pr"

// maxFile bounds what Load reads.
const maxFile = 1 << 20

// Load reads the state saved in dir and checks it. A missing file is no
// state (nil, nil, nil). A file that is not a valid state is an error: the
// caller must not start the LU without the reservations it held, since
// they may fence an initiator off the data.
func Load(dir string) ([]byte, *scsi.PRState, error) {
	path := filepath.Join(dir, FileName)
	if err := atomicfile.RemoveStale(dir, FileName); err != nil {
		return nil, nil, err
	}
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxFile+1))
	if err != nil {
		return nil, nil, fmt.Errorf("read %s: %w", path, err)
	}
	if len(data) > maxFile {
		return nil, nil, fmt.Errorf("%s: larger than %d bytes: %w", path, maxFile, scsi.ErrPRStateCorrupt)
	}
	st, err := scsi.ParsePRState(data)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	return data, st, nil
}

// Save replaces the state saved in dir atomically and durably.
func Save(dir string, state []byte) error {
	return atomicfile.Write(dir, FileName, state, 0o600)
}
