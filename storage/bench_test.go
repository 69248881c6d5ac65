package storage

import (
	"bytes"
	"fmt"
	"testing"
)

func benchDB(b *testing.B, dur Durability) (*Store, *DB) {
	s := openStore(b, Options{Durability: dur})
	d := acquire(b, s, hexID(0))
	b.Cleanup(func() { s.Release(d) })
	return s, d
}

// A point read of a 128-byte value on a warm handle.
func BenchmarkGet(b *testing.B) {
	_, d := benchDB(b, Relaxed)
	d.Put([]byte("key"), bytes.Repeat([]byte("v"), 128))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, ok, err := d.Get([]byte("key")); !ok || err != nil {
			b.Fatal(ok, err)
		}
	}
}

func benchPutCommit(b *testing.B, dur Durability, perCommit int) {
	_, d := benchDB(b, dur)
	v := bytes.Repeat([]byte("v"), 128)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := d.Begin(); err != nil {
			b.Fatal(err)
		}
		for j := 0; j < perCommit; j++ {
			// a value that changes every time: SQLite writes nothing for an identical row
			v[0], v[1] = byte(i), byte(i>>8)
			d.Put([]byte(fmt.Sprint(j)), v)
		}
		if err := d.Commit(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*perCommit)/b.Elapsed().Seconds(), "puts/s")
}

func BenchmarkPutCommitFull(b *testing.B)       { benchPutCommit(b, Full, 1) }
func BenchmarkPutCommitRelaxed(b *testing.B)    { benchPutCommit(b, Relaxed, 1) }
func BenchmarkPut100PerCommitFull(b *testing.B) { benchPutCommit(b, Full, 100) }

// Lease and release of an open handle: the per-batch cost of the pool.
func BenchmarkAcquireRelease(b *testing.B) {
	s, d := benchDB(b, Relaxed)
	s.Release(d)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		d := acquire(b, s, hexID(0))
		s.Release(d)
	}
	d = acquire(b, s, hexID(0)) // for the cleanup's Release
}

// Opening an existing database when its handle was closed (a pool of one alternating two objects).
func BenchmarkReopen(b *testing.B) {
	s := openStore(b, Options{MaxOpen: 1, Durability: Relaxed})
	for i := 0; i < 2; i++ {
		d := acquire(b, s, hexID(i))
		d.Put([]byte("k"), []byte("v")) // a database file exists only after a write
		s.Release(d)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		s.Release(acquire(b, s, hexID(i%2)))
	}
}

// Creating a new object's database (several fsyncs).
func BenchmarkCreate(b *testing.B) {
	s := openStore(b, Options{MaxOpen: 64})
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		d := acquire(b, s, hexID(i))
		d.Put([]byte("k"), []byte("v")) // the first write creates the file
		s.Release(d)
	}
}
