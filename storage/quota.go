package storage

import (
	"database/sql/driver"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
)

// Quota bounds what all the objects of a store use together (a tenant's objects under `dowasm
// serve`); zero fields are unlimited. Each object's own limit (DB.SetMaxBytes) is separate.
type Quota struct {
	// MaxObjects bounds the object databases: creating one more fails with ErrQuota.
	MaxObjects int64
	// MaxBytes bounds the bytes of all object databases (with their WALs): past it, writes
	// that may grow a database fail with ErrQuota; deletes still work, to make room.
	MaxBytes int64
}

// ErrQuota is wrapped when a store's Quota refuses a write.
var ErrQuota = errors.New("storage quota reached")

// usage is what the objects of a store use, counted at Open (a scan of the store's directory,
// only when a quota is set) and kept up to date as databases are created and commit.
type usage struct {
	objects, bytes atomic.Int64
}

// Usage is what the objects of a store use on disk.
type Usage struct {
	Objects, Bytes int64
}

// Usage returns what the store's objects use (counted only when the store has a quota).
func (s *Store) Usage() Usage {
	return Usage{Objects: s.usage.objects.Load(), Bytes: s.usage.bytes.Load()}
}

func (q Quota) set() bool { return q.MaxObjects > 0 || q.MaxBytes > 0 }

// scanUsage counts the object databases under dir and their sizes.
func (s *Store) scanUsage() error {
	var objects, bytes int64
	err := filepath.WalkDir(s.opts.Dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if d.IsDir() || !isObjectFile(d.Name()) {
			return nil
		}
		objects++
		bytes += usedBytes(path)
		return nil
	})
	if err != nil {
		return fmt.Errorf("counting the objects' storage under %s: %w", s.opts.Dir, err)
	}
	s.usage.objects.Store(objects)
	s.usage.bytes.Store(bytes)
	return nil
}

// isObjectFile reports whether name is an object database (<64 hex>.sqlite).
func isObjectFile(name string) bool {
	id, ok := strings.CutSuffix(name, ".sqlite")
	return ok && len(id) == 64
}

// usedBytes is what a database file uses as its header says: its pages less the free ones (so
// that deleting data counts although SQLite does not shrink the file). After a clean close (the
// last connection checkpoints the WAL) this is what measure counted last. A file without a valid
// header counts its size.
func usedBytes(path string) int64 {
	f, err := os.Open(path)
	if err != nil {
		return 0
	}
	defer f.Close()
	var h [100]byte
	if _, err := io.ReadFull(f, h[:]); err != nil || string(h[:16]) != "SQLite format 3\x00" {
		return fileSize(path)
	}
	size := int64(binary.BigEndian.Uint16(h[16:]))
	if size == 1 {
		size = 65536
	}
	pages, free := int64(binary.BigEndian.Uint32(h[28:])), int64(binary.BigEndian.Uint32(h[36:]))
	if pages == 0 || binary.BigEndian.Uint32(h[24:]) != binary.BigEndian.Uint32(h[92:]) {
		pages = fileSize(path) / size // (the header's page count is not valid)
	}
	return max(pages-free, 0) * size
}

func fileSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// reserveObject counts a database about to be created, unless the quota is reached.
func (s *Store) reserveObject() error {
	max := s.opts.Quota.MaxObjects
	if n := s.usage.objects.Add(1); max > 0 && n > max {
		s.usage.objects.Add(-1)
		return fmt.Errorf("%w: the limit of %d objects with stored data is reached (delete an object's data with deleteAll, or raise max_objects)", ErrQuota, max)
	}
	return nil
}

// checkBytes refuses a write that may grow a database once the store's objects use their quota.
func (s *Store) checkBytes() error {
	max := s.opts.Quota.MaxBytes
	if max > 0 {
		if n := s.usage.bytes.Load(); n >= max {
			return fmt.Errorf("%w: all objects together store %d bytes, the limit is %d (deletes still work; or raise max_storage_bytes)", ErrQuota, n, max)
		}
	}
	return nil
}

// measure updates the store's usage with the bytes the database uses now: its pages less the
// free ones, so that deleting data makes room although SQLite does not shrink the file. (The
// scan at Open and a reopened handle count the same from the file's header: usedBytes. The WAL
// is not counted: walLimit bounds it.)
func (d *DB) measure() {
	if !d.store.opts.Quota.set() || d.conn == nil {
		return
	}
	var pages int64 = -1
	d.query("SELECT (SELECT page_count FROM pragma_page_count()) - (SELECT freelist_count FROM pragma_freelist_count())", 1, func(row []driver.Value) error {
		pages, _ = row[0].(int64)
		return nil
	})
	if pages < 0 {
		return // (the query failed: keep the last count)
	}
	n := pages * pageSize
	d.store.usage.bytes.Add(n - d.size)
	d.size = n
}
