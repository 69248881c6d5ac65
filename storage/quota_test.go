package storage

import (
	"bytes"
	"errors"
	"testing"
)

func TestQuotaObjects(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, Options{Dir: dir, Quota: Quota{MaxObjects: 2}})
	write := func(s *Store, i int) error {
		d := acquire(t, s, hexID(i))
		defer s.Release(d)
		if err := d.Begin(); err != nil {
			return err
		}
		if err := d.Put([]byte("k"), []byte("v")); err != nil {
			d.Rollback()
			return err
		}
		return d.Commit()
	}
	for i := 0; i < 2; i++ {
		if err := write(s, i); err != nil {
			t.Fatal(err)
		}
	}
	if err := write(s, 0); err != nil {
		t.Errorf("writing again to an existing object: %v", err)
	}
	if err := write(s, 2); !errors.Is(err, ErrQuota) {
		t.Fatalf("a third object: %v, want ErrQuota", err)
	}
	if u := s.Usage(); u.Objects != 2 {
		t.Errorf("usage %+v, want 2 objects", u)
	}
	s.Close()
	// A new store counts what is on disk.
	s2 := openStore(t, Options{Dir: dir, Quota: Quota{MaxObjects: 2}})
	if u := s2.Usage(); u.Objects != 2 {
		t.Errorf("after reopening: usage %+v, want 2 objects", u)
	}
	if err := write(s2, 3); !errors.Is(err, ErrQuota) {
		t.Errorf("a third object after reopening: %v, want ErrQuota", err)
	}
}

func TestQuotaBytes(t *testing.T) {
	const max = 256 << 10
	s := openStore(t, Options{Quota: Quota{MaxBytes: max}})
	d := acquire(t, s, hexID(1))
	defer s.Release(d)
	val := bytes.Repeat([]byte("v"), 64<<10)
	commit := func(f func() error) error {
		if err := d.SetMaxBytes(0); err != nil { // (as the host does before each batch)
			return err
		}
		if err := d.Begin(); err != nil {
			return err
		}
		if err := f(); err != nil {
			d.Rollback()
			return err
		}
		return d.Commit()
	}
	// Writes succeed until the objects use the quota; the write after that is refused.
	n := 0
	var err error
	for ; n < 10; n++ {
		if err = commit(func() error { return d.Put([]byte{byte(n)}, val) }); err != nil {
			break
		}
	}
	quotaFull := errors.Is(err, ErrQuota) || (IsFull(err) && d.QuotaBound())
	if !quotaFull || n < 3 || n > 5 {
		t.Fatalf("after %d puts of 64 KiB under a 256 KiB quota: %v (usage %+v)", n, err, s.Usage())
	}
	t.Logf("refused after %d puts: %v", n, err)
	// Deleting makes room, although SQLite does not shrink the file.
	if err := commit(d.DeleteAll); err != nil {
		t.Fatalf("deleteAll past the quota: %v", err)
	}
	if u := s.Usage(); u.Bytes >= max {
		t.Errorf("usage after deleteAll %+v", u)
	}
	if err := commit(func() error { return d.Put([]byte("more"), val) }); err != nil {
		t.Errorf("put after deleteAll: %v", err)
	}
}
