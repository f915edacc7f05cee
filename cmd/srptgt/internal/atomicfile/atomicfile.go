// Package atomicfile replaces small state files so that a crash leaves the
// old content or the new, never a mixture: the data goes to a temporary
// file in the same directory, which is fsynced, renamed over the file, and
// the directory fsynced so that the rename itself is durable.
//
// The readers of such files (mode pages, persistent reservations) also
// check a checksum of their own, so that a file damaged otherwise (a disk
// that lies about fsync, an edit) is refused rather than half believed.
package atomicfile

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Write replaces dir/name with data, atomically and durably: when Write
// returns nil the new content survives a crash; when it fails the old
// content is still there (and no temporary file is left behind).
func Write(dir, name string, data []byte, perm os.FileMode) (err error) {
	tmp, err := os.CreateTemp(dir, "."+name+".*.tmp")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if _, err = tmp.Write(data); err != nil {
		return err
	}
	if err = tmp.Chmod(perm); err != nil {
		return err
	}
	if err = tmp.Sync(); err != nil {
		return err
	}
	if err = tmp.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp.Name(), filepath.Join(dir, name)); err != nil {
		return err
	}
	return SyncDir(dir)
}

// SyncDir fsyncs a directory, making renames and creations in it durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}

// RemoveStale deletes the temporary files Write leaves in dir when the
// process dies between creating and renaming one (kill -9, power loss).
// They are never read; this only reclaims the space.
func RemoveStale(dir, name string) error {
	matches, err := filepath.Glob(filepath.Join(dir, "."+name+".*.tmp"))
	if err != nil {
		return err
	}
	for _, m := range matches {
		if strings.HasPrefix(filepath.Base(m), "."+name+".") {
			if err := os.Remove(m); err != nil && !os.IsNotExist(err) {
				return err
			}
		}
	}
	return nil
}
