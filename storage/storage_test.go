package storage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

func openStore(t testing.TB, opts Options) *Store {
	t.Helper()
	if opts.Dir == "" {
		opts.Dir = t.TempDir()
	}
	s, err := Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func hexID(i int) string { return fmt.Sprintf("%064x", i+1) }

func acquire(t testing.TB, s *Store, id string) *DB {
	t.Helper()
	d, err := s.Acquire(context.Background(), "c", id)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestRoundTripBinaryAndEmptyKeys(t *testing.T) {
	s := openStore(t, Options{})
	d := acquire(t, s, hexID(0))
	defer s.Release(d)
	keys := [][]byte{{}, {0}, {0xff}, {0, 0xff, 0}, []byte("a")}
	for i, k := range keys {
		if err := d.Put(k, []byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	for i, k := range keys {
		v, ok, err := d.Get(k)
		if err != nil || !ok || !bytes.Equal(v, []byte{byte(i)}) {
			t.Fatalf("get %x: %x %v %v", k, v, ok, err)
		}
	}
	if err := d.Put([]byte("e"), nil); err != nil {
		t.Fatal(err)
	}
	if v, ok, _ := d.Get([]byte("e")); !ok || v == nil || len(v) != 0 {
		t.Fatalf("empty value: %v %v", v, ok)
	}
	if ok, _ := d.Delete([]byte{}); !ok {
		t.Fatal("delete of empty key reported missing")
	}
	if ok, _ := d.Delete([]byte{}); ok {
		t.Fatal("second delete reported existing")
	}
	if _, ok, _ := d.Get([]byte("missing")); ok {
		t.Fatal("missing key found")
	}
}

func TestLimits(t *testing.T) {
	s := openStore(t, Options{})
	d := acquire(t, s, hexID(0))
	defer s.Release(d)
	k := bytes.Repeat([]byte("k"), MaxKeySize)
	if err := d.Put(k, []byte("v")); err != nil {
		t.Fatalf("2 KiB key: %v", err)
	}
	if err := d.Put(append(k, 'k'), nil); !errors.Is(err, ErrKeyTooLarge) {
		t.Fatalf("2049-byte key: %v", err)
	}
	if _, _, err := d.Get(append(k, 'k')); !errors.Is(err, ErrKeyTooLarge) {
		t.Fatalf("get with long key: %v", err)
	}
	v := bytes.Repeat([]byte("v"), MaxEntrySize-1)
	if err := d.Put([]byte("k"), v); err != nil {
		t.Fatalf("exactly 2 MiB: %v", err)
	}
	if err := d.Put([]byte("k"), append(v, 'v')); !errors.Is(err, ErrValueTooLarge) {
		t.Fatalf("2 MiB + 1: %v", err)
	}
}

func TestBatches(t *testing.T) {
	s := openStore(t, Options{})
	d := acquire(t, s, hexID(0))
	defer s.Release(d)
	var es []Entry
	var keys [][]byte
	for i := 0; i < MaxBatch; i++ {
		k := []byte(fmt.Sprintf("k%03d", i))
		es = append(es, Entry{k, []byte{byte(i)}})
		keys = append(keys, k)
	}
	if err := d.PutMany(es); err != nil {
		t.Fatal(err)
	}
	if err := d.PutMany(append(es, Entry{[]byte("x"), nil})); !errors.Is(err, ErrTooManyKeys) {
		t.Fatalf("129 entries: %v", err)
	}
	bad := []Entry{{[]byte("new1"), nil}, {bytes.Repeat([]byte("k"), MaxKeySize+1), nil}}
	if err := d.PutMany(bad); !errors.Is(err, ErrKeyTooLarge) {
		t.Fatalf("bad entry: %v", err)
	}
	if _, ok, _ := d.Get([]byte("new1")); ok {
		t.Fatal("PutMany with a bad entry wrote the good ones")
	}
	vals, found, err := d.GetMany(append(keys[:2:2], []byte("nope")))
	if err != nil || !found[0] || !found[1] || found[2] || vals[1][0] != 1 {
		t.Fatalf("GetMany: %v %v %v", vals, found, err)
	}
	n, err := d.DeleteMany(append(keys[:3:3], []byte("nope")))
	if err != nil || n != 3 {
		t.Fatalf("DeleteMany: %d %v", n, err)
	}
	if _, err := d.DeleteMany(make([][]byte, MaxBatch+1)); !errors.Is(err, ErrTooManyKeys) {
		t.Fatalf("129 deletes: %v", err)
	}
}

// List against a brute-force reference over random binary keys and random options.
func TestListMatchesReference(t *testing.T) {
	s := openStore(t, Options{})
	d := acquire(t, s, hexID(0))
	defer s.Release(d)
	rng := rand.New(rand.NewSource(1))
	alphabet := []byte{0x00, 0x01, 'a', 'b', 0xfe, 0xff}
	randKey := func() []byte {
		k := make([]byte, rng.Intn(4))
		for i := range k {
			k[i] = alphabet[rng.Intn(len(alphabet))]
		}
		return k
	}
	ref := map[string][]byte{}
	for i := 0; i < 300; i++ {
		k := randKey()
		v := []byte(fmt.Sprint(i))
		ref[string(k)] = v
		if err := d.Put(k, v); err != nil {
			t.Fatal(err)
		}
	}
	var sorted []string
	for k := range ref {
		sorted = append(sorted, k)
	}
	sort.Strings(sorted) // Go string order is byte order
	for trial := 0; trial < 2000; trial++ {
		var o ListOptions
		if rng.Intn(3) == 0 {
			o.HasStart, o.Start = true, randKey()
		} else if rng.Intn(3) == 0 {
			o.HasStartAfter, o.StartAfter = true, randKey()
		}
		if rng.Intn(3) == 0 {
			o.HasEnd, o.End = true, randKey()
		}
		if rng.Intn(3) == 0 {
			o.HasPrefix, o.Prefix = true, randKey()
		}
		o.Reverse = rng.Intn(2) == 0
		if rng.Intn(2) == 0 {
			o.Limit = rng.Intn(10)
		}
		var want []string
		for _, k := range sorted {
			kb := []byte(k)
			if o.HasStart && bytes.Compare(kb, o.Start) < 0 ||
				o.HasStartAfter && bytes.Compare(kb, o.StartAfter) <= 0 ||
				o.HasEnd && bytes.Compare(kb, o.End) >= 0 ||
				o.HasPrefix && !bytes.HasPrefix(kb, o.Prefix) {
				continue
			}
			want = append(want, k)
		}
		if o.Reverse {
			for i, j := 0, len(want)-1; i < j; i, j = i+1, j-1 {
				want[i], want[j] = want[j], want[i]
			}
		}
		if o.Limit > 0 && len(want) > o.Limit {
			want = want[:o.Limit]
		}
		var got []string
		err := d.List(o, func(k, v []byte) error {
			if !bytes.Equal(v, ref[string(k)]) {
				t.Fatalf("value of %x: %q want %q", k, v, ref[string(k)])
			}
			got = append(got, string(k))
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if strings.Join(got, "|") != strings.Join(want, "|") {
			t.Fatalf("options %+v:\n got  %q\n want %q", o, got, want)
		}
	}
	if err := d.List(ListOptions{HasStart: true, HasStartAfter: true}, nil); !errors.Is(err, ErrInvalid) {
		t.Fatalf("start+startAfter: %v", err)
	}
	stop := errors.New("stop")
	n := 0
	if err := d.List(ListOptions{}, func(k, v []byte) error { n++; return stop }); err != stop || n != 1 {
		t.Fatalf("callback error should stop the iteration: %v after %d", err, n)
	}
}

func TestTransactionsAndSavepoints(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, Options{Dir: dir})
	d := acquire(t, s, hexID(0))
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(d.Begin())
	must(d.Put([]byte("a"), []byte("1")))
	must(d.Savepoint("ev"))
	must(d.Put([]byte("b"), []byte("2")))
	must(d.Savepoint("t1"))
	must(d.Put([]byte("c"), []byte("3")))
	must(d.RollbackTo("t1"))
	must(d.ReleaseSavepoint("ev"))
	must(d.Commit())
	for k, want := range map[string]bool{"a": true, "b": true, "c": false} {
		if _, ok, _ := d.Get([]byte(k)); ok != want {
			t.Fatalf("%s present=%v want %v", k, ok, want)
		}
	}
	must(d.Begin())
	must(d.Put([]byte("d"), []byte("4")))
	must(d.DeleteAll())
	must(d.Rollback())
	if _, ok, _ := d.Get([]byte("a")); !ok {
		t.Fatal("rolled back DeleteAll took effect")
	}
	if _, ok, _ := d.Get([]byte("d")); ok {
		t.Fatal("rolled back put took effect")
	}
	if err := d.Savepoint("bad name;"); !errors.Is(err, ErrInvalid) {
		t.Fatalf("savepoint name not checked: %v", err)
	}
	s.Release(d)
	s.Close()
	// durable across reopen
	s2 := openStore(t, Options{Dir: dir})
	d2 := acquire(t, s2, hexID(0))
	defer s2.Release(d2)
	if v, ok, _ := d2.Get([]byte("b")); !ok || string(v) != "2" {
		t.Fatalf("after reopen: %q %v", v, ok)
	}
}

func TestPoolBound(t *testing.T) {
	s := openStore(t, Options{MaxOpen: 8, Durability: Relaxed})
	for i := 0; i < 200; i++ {
		d := acquire(t, s, hexID(i))
		if err := d.Put([]byte("i"), []byte(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
		s.Release(d)
		if st := s.Stats(); st.Open > 8 {
			t.Fatalf("%d handles open, limit 8", st.Open)
		}
	}
	for i := 0; i < 200; i++ {
		d := acquire(t, s, hexID(i))
		v, ok, err := d.Get([]byte("i"))
		s.Release(d)
		if err != nil || !ok || string(v) != fmt.Sprint(i) {
			t.Fatalf("object %d: %q %v %v", i, v, ok, err)
		}
	}
	if st := s.Stats(); st.Open > 8 || st.Creates != 200 {
		t.Fatalf("stats %+v", st)
	}
	if !s.Exists("c", hexID(3)) || s.Exists("c", hexID(999)) {
		t.Fatal("Exists is wrong")
	}
	if _, err := os.Stat(s.Path("c", hexID(999))); err == nil {
		t.Fatal("Exists created a file")
	}
}

// Many goroutines lease a few objects through a tiny pool: leases of one object never overlap,
// and nothing deadlocks.
func TestConcurrentAcquire(t *testing.T) {
	s := openStore(t, Options{MaxOpen: 4, Durability: Relaxed})
	const objects = 16
	var holders [objects]int32
	var mu sync.Mutex
	var wg sync.WaitGroup
	for g := 0; g < 16; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				o := (g*7 + i) % objects
				d, err := s.Acquire(context.Background(), "c", hexID(o))
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				holders[o]++
				if holders[o] > 1 {
					t.Errorf("object %d leased twice at once", o)
				}
				mu.Unlock()
				d.Put([]byte("k"), []byte("v"))
				mu.Lock()
				holders[o]--
				mu.Unlock()
				s.Release(d)
			}
		}(g)
	}
	wg.Wait()
	if st := s.Stats(); st.Open > 4 || st.Leased != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestAcquireCancelledWhileWaiting(t *testing.T) {
	s := openStore(t, Options{MaxOpen: 1})
	d := acquire(t, s, hexID(0))
	defer s.Release(d)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() {
		_, err := s.Acquire(ctx, "c", hexID(1))
		done <- err
	}()
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v", err)
	}
}

func TestCorruptFileNamesPath(t *testing.T) {
	s := openStore(t, Options{})
	p := s.Path("c", hexID(0))
	os.MkdirAll(filepath.Dir(p), 0o755)
	os.WriteFile(p, bytes.Repeat([]byte("garbage!"), 512), 0o644)
	_, err := s.Acquire(context.Background(), "c", hexID(0))
	if err == nil || !strings.Contains(err.Error(), p) {
		t.Fatalf("corrupt database: %v (should name %s)", err, p)
	}
	// the pool slot was given back
	if st := s.Stats(); st.Open != 0 {
		t.Fatalf("stats after failed open: %+v", st)
	}
}

func TestClosedStore(t *testing.T) {
	s := openStore(t, Options{})
	s.Close()
	if _, err := s.Acquire(context.Background(), "c", hexID(0)); !errors.Is(err, ErrClosed) {
		t.Fatalf("got %v", err)
	}
}

func TestAbsentUntilFirstWrite(t *testing.T) {
	s := openStore(t, Options{})
	d := acquire(t, s, hexID(7))
	defer s.Release(d)
	if d.Exists() || s.Exists("c", hexID(7)) {
		t.Fatal("acquiring created the database")
	}
	if _, ok, err := d.Get([]byte("k")); ok || err != nil {
		t.Fatalf("get: %v %v", ok, err)
	}
	n := 0
	if err := d.List(ListOptions{}, func(k, v []byte) error { n++; return nil }); err != nil || n != 0 {
		t.Fatalf("list: %d %v", n, err)
	}
	if ok, err := d.Delete([]byte("k")); ok || err != nil {
		t.Fatalf("delete: %v %v", ok, err)
	}
	if n, err := d.DeleteMany([][]byte{[]byte("k")}); n != 0 || err != nil {
		t.Fatalf("delete many: %v %v", n, err)
	}
	if err := d.DeleteAll(); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := d.Meta("name"); ok || s.Exists("c", hexID(7)) {
		t.Fatal("reads and deletes created the database")
	}
	if err := d.Begin(); err != nil {
		t.Fatal(err)
	}
	if err := d.Put([]byte("k"), []byte("v")); err != nil {
		t.Fatal(err)
	}
	if err := d.Commit(); err != nil {
		t.Fatal(err)
	}
	if !s.Exists("c", hexID(7)) || s.Stats().Creates != 1 {
		t.Fatalf("first write: exists %v, stats %+v", s.Exists("c", hexID(7)), s.Stats())
	}
}

// Above its high-water mark the pool closes idle handles in the background, so leases rarely
// close one themselves.
func TestTrimmerKeepsRoom(t *testing.T) {
	s := openStore(t, Options{MaxOpen: 16, Durability: Relaxed})
	for i := 0; i < 100; i++ {
		d := acquire(t, s, hexID(i))
		d.Put([]byte("k"), []byte("v"))
		s.Release(d)
		time.Sleep(time.Millisecond) // give the trimmer its turn, as idle time does
	}
	st := s.Stats()
	if st.Open > 16 || st.Trimmed == 0 {
		t.Fatalf("stats %+v: the trimmer never ran", st)
	}
	if st.EvictedForRoom > st.Trimmed {
		t.Fatalf("stats %+v: most handles were closed on the lease path", st)
	}
	t.Logf("%+v", st)
}

// Tenants' data is not readable by the machine's other users: databases are 0600 (their -wal and
// -shm take the same mode) in 0700 directories.
func TestFilesArePrivate(t *testing.T) {
	root := filepath.Join(t.TempDir(), "data")
	s := openStore(t, Options{Dir: root})
	d := acquire(t, s, hexID(1))
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(d.Begin())
	must(d.Put([]byte("k"), []byte("v")))
	must(d.Commit())
	x, err := s.OpenAlarmIndex("c")
	must(err)
	defer x.Close()
	path := d.Path()
	for _, f := range []string{path, path + "-wal", path + "-shm", filepath.Join(root, "c", "alarms.sqlite")} {
		fi, err := os.Stat(f)
		must(err)
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, want 0600", f, fi.Mode().Perm())
		}
	}
	for dir := filepath.Dir(path); len(dir) >= len(root); dir = filepath.Dir(dir) {
		fi, err := os.Stat(dir)
		must(err)
		if fi.Mode().Perm() != 0o700 {
			t.Errorf("%s: mode %v, want 0700", dir, fi.Mode().Perm())
		}
	}
	s.Release(d)
}

// The WAL is not bounded by max_page_count: after a big transaction it keeps its size unless
// journal_size_limit truncates it. Disk use must stay near the object's limit.
func TestWALStaysNearTheLimit(t *testing.T) {
	s := openStore(t, Options{})
	d := acquire(t, s, hexID(1))
	defer s.Release(d)
	const limit = 1 << 20
	if err := d.SetMaxBytes(limit); err != nil {
		t.Fatal(err)
	}
	val := bytes.Repeat([]byte("x"), 64<<10)
	for round := 0; round < 3; round++ {
		if err := d.Begin(); err != nil {
			t.Fatal(err)
		}
		if err := d.DeleteAll(); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 11; i++ { // ~700 KiB
			if err := d.Put([]byte(fmt.Sprint(i)), val); err != nil {
				t.Fatal(err)
			}
		}
		if err := d.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	db, _ := os.Stat(d.Path())
	wal, err := os.Stat(d.Path() + "-wal")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("database %d KiB, WAL %d KiB (limit %d KiB)", db.Size()>>10, wal.Size()>>10, limit>>10)
	if db.Size()+wal.Size() > limit+limit/4 {
		t.Errorf("database %d + WAL %d bytes: more than the limit of %d + a quarter", db.Size(), wal.Size(), limit)
	}
}
