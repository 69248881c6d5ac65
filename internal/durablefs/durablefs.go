// Package durablefs makes changes to directories survive a crash. Creating or renaming a file
// changes its directory, and on Linux that change is durable only once the directory itself is
// fsynced: without it, a power loss after a commit can lose a whole object database, a namespace
// key or a deployed module although their own contents were fsynced.
//
// Directories it creates are private to the server's user (0700): objects' data belongs to
// tenants, not to the other users of the machine.
package durablefs

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// DirMode is the mode of the directories MkdirAll creates.
const DirMode = 0o700

// FileMode is the mode of the data files the server creates.
const FileMode = 0o600

// MkdirAll creates dir and any missing parents (mode DirMode), and fsyncs the parent of each
// directory it created, so the new path survives a crash. It does nothing when dir exists.
func MkdirAll(dir string) error {
	dir = filepath.Clean(dir)
	fi, err := os.Stat(dir)
	if err == nil {
		if !fi.IsDir() {
			return fmt.Errorf("%s: not a directory", dir)
		}
		return nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	parent := filepath.Dir(dir)
	if parent != dir {
		if err := MkdirAll(parent); err != nil {
			return err
		}
	}
	if err := os.Mkdir(dir, DirMode); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return nil // made meanwhile by another goroutine, which syncs it
		}
		return err
	}
	return SyncDir(parent)
}

// SyncDir fsyncs a directory, making the creations, renames and removals in it durable.
func SyncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return nil
}
