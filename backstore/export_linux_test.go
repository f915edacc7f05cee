package backstore

// ForceNoDsync makes a file or block store act as if the kernel had no
// RWF_DSYNC, so that WriteAtSync takes its pwrite+fdatasync fallback.
func ForceNoDsync(s Store) { fileOf(s).forceNoDsync = true }

// UsesDsync reports whether WriteAtSync still uses RWF_DSYNC.
func UsesDsync(s Store) bool { return !fileOf(s).noDsync.Load() }

// DirectAlign reports a file or block store's O_DIRECT alignment.
func DirectAlign(s Store) int64 { return fileOf(s).align }

func fileOf(s Store) *fileStore {
	if r, ok := s.(regularFile); ok {
		return r.fileStore
	}
	return s.(*fileStore)
}
