package host

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dowasm/dowasm/internal/testutil"
	"github.com/dowasm/dowasm/storage"
)

// checkFillLeavesNothing runs a guest that fills its storage, ignores the failed write and writes
// another key: the event must fail and leave nothing, the later key included (before the fix,
// SQLite had rolled back the batch's transaction by itself and the later write ran in autocommit,
// durable at once).
func checkFillLeavesNothing(t *testing.T, c *Class, wantErr string) {
	t.Helper()
	st, body, err := do(c, "filler", "/fill?k=after&v=1")
	if err == nil {
		t.Fatalf("filling the storage succeeded: %d %q", st, body)
	}
	if !strings.Contains(err.Error(), wantErr) {
		t.Fatalf("error %q does not say %q", err, wantErr)
	}
	for _, k := range []string{"after", "fill0"} {
		if st, body, err := do(c, "filler", "/get?k="+k); err != nil || st != 404 {
			t.Errorf("key %s after the failed event: %d %q %v (want 404: the event's writes must all be rolled back)", k, st, body, err)
		}
	}
	// The object still works.
	if got := mustDo(t, c, "filler", "/incr"); got != "1" {
		t.Errorf("incr after the failure = %s, want 1", got)
	}
}

func TestStorageQuotaIgnoredErrorLeavesNothing(t *testing.T) {
	rt := newTestRuntime(t, Config{})
	c, err := rt.DeployClass(context.Background(), "probe", "probe", guestWasm(t, "tests/guests/probe"), ClassLimits{StorageBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	checkFillLeavesNothing(t, c, "storage limit of 1048576 bytes reached")
}

// TestFullDiskIgnoredErrorLeavesNothing fills a real file system (a 3 MiB tmpfs).
func TestFullDiskIgnoredErrorLeavesNothing(t *testing.T) {
	dir := smallFS(t, "3m")
	rt := newTestRuntime(t, Config{DataDir: dir})
	c := loadProbe(t, rt)
	checkFillLeavesNothing(t, c, "full")
}

// smallFS mounts a tmpfs of the given size for the test (root only).
func smallFS(t *testing.T, size string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a small tmpfs (a real full disk)")
	}
	dir := filepath.Join(t.TempDir(), "fs")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs here (%v: %s)", err, out)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, syscall.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}

// A call leaves only after the writes before it are committed (the output gate, invariant 3):
// a caller that writes, calls and then traps keeps its write, as the callee keeps its own.
func TestCallCommitsWritesBeforeIt(t *testing.T) {
	rt := newTestRuntime(t, Config{})
	c := loadProbe(t, rt)
	if _, _, err := do(c, "caller", "/call-then-trap?k=mine&v=1&name=callee"); err == nil || !strings.Contains(err.Error(), "trap after a call") {
		t.Fatalf("call-then-trap: %v, want the trap", err)
	}
	if got := mustDo(t, c, "callee", "/get?k=n"); got != "1" {
		t.Errorf("callee's counter = %s, want 1", got)
	}
	if st, body, err := do(c, "caller", "/get?k=mine"); err != nil || st != 200 || body != "1" {
		t.Errorf("caller's write before the call: %d %q %v; want it committed", st, body, err)
	}
}

func TestCallInsideTransactionRefused(t *testing.T) {
	rt := newTestRuntime(t, Config{})
	c := loadProbe(t, rt)
	got := mustDo(t, c, "caller", "/call-in-txn?k=mine&v=1&name=callee")
	if !strings.HasPrefix(got, "err 11 ") || !strings.Contains(got, "inside a transaction") {
		t.Errorf("call inside a transaction: %q, want NOT_ALLOWED saying why", got)
	}
	if st, _, err := do(c, "callee", "/get?k=n"); err != nil || st != 404 {
		t.Errorf("the refused call reached the callee: %d %v", st, err)
	}
}

// queued reports how many events wait in the mailbox of the object named name, and whether the
// object has a loop at all.
func queued(c *Class, name string) (n int, active bool) {
	key := c.name + "/" + c.ns.FromName(name).String()
	sh := c.rt.objects.shard(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	o := sh.m[key]
	if o == nil {
		return 0, false
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.mailbox), true
}

// waitQueued waits until the object's mailbox holds n events (n = 0: it took its last one).
func waitQueued(t *testing.T, c *Class, name string, n int) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		if got, active := queued(c, name); active && got == n {
			return
		}
	}
	t.Fatalf("object %s never had %d events queued", name, n)
}

// When SQLite rolls back the batch's transaction by itself, every event of the batch fails, each
// caller told why, and none of their writes stays: the events before the failing one lost their
// writes with the transaction, the ones after it never run on a transaction that is gone.
func TestLostTransactionFailsWholeBatch(t *testing.T) {
	rt := newTestRuntime(t, Config{})
	c, err := rt.DeployClass(context.Background(), "probe", "probe", guestWasm(t, "tests/guests/probe"), ClassLimits{StorageBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	busy := make(chan error, 1)
	go func() { _, _, err := do(c, "o", "/sleep?ms=300"); busy <- err }()
	paths := []string{"/put?k=a&v=1", "/fill?k=after&v=1", "/put?k=b&v=1"}
	errs := make([]chan error, len(paths))
	waitQueued(t, c, "o", 0) // the sleeper runs (the object had no loop before it)
	for i, p := range paths {
		// Queued one after the other while the object sleeps: one batch, in this order.
		errs[i] = make(chan error, 1)
		go func() { _, _, err := do(c, "o", p); errs[i] <- err }()
		waitQueued(t, c, "o", i+1)
	}
	if err := <-busy; err != nil {
		t.Fatal(err)
	}
	for i, p := range paths {
		err := <-errs[i]
		if err == nil || !strings.Contains(err.Error(), "whole batch") {
			t.Errorf("%s: %v; want the whole batch to fail", p, err)
		}
	}
	for _, k := range []string{"a", "after", "b", "fill0"} {
		if st, _, err := do(c, "o", "/get?k="+k); err != nil || st != 404 {
			t.Errorf("key %s: %d %v, want 404", k, st, err)
		}
	}
	if got := mustDo(t, c, "o", "/incr"); got != "1" {
		t.Errorf("incr after the failed batch = %s, want 1", got)
	}
}

// One unreadable object database must not stop alarm recovery for its class: the index rebuild
// sets it aside with an error in the log and goes on (before, it stopped at the bad file and the
// alarms of the databases after it never fired, on every restart).
func TestAlarmRebuildSkipsUnreadableDatabase(t *testing.T) {
	dir := t.TempDir()
	clock := NewManualClock(alarmEpoch)
	rt := newTestRuntime(t, Config{DataDir: dir, Clock: clock})
	c := loadProbe(t, rt)
	var paths []string
	for _, name := range []string{"a", "b", "c"} {
		mustDo(t, c, name, "/alarm-in?d=5000")
		paths = append(paths, rt.store.Path("probe", c.ns.FromName(name).String()))
	}
	if err := rt.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	// The rebuild walks the tree in lexical order: damage the first database it meets.
	slices.Sort(paths)
	bad := paths[0]
	for _, suffix := range []string{"-wal", "-shm"} {
		os.Remove(bad + suffix)
	}
	if err := os.WriteFile(bad, []byte(strings.Repeat("not a database ", 500)), 0o600); err != nil {
		t.Fatal(err)
	}
	index := filepath.Join(dir, "probe", "alarms.sqlite")
	for _, suffix := range []string{"", "-wal", "-shm"} {
		os.Remove(index + suffix)
	}
	clock.Advance(time.Minute)
	var logs testutil.LockedBuffer
	rt2 := newTestRuntime(t, Config{DataDir: dir, Clock: clock, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	c2 := loadProbe(t, rt2)
	waitFor(t, "the two readable objects' alarms", func() bool { return rt2.Stats().AlarmRuns == 2 })
	if aside, _ := filepath.Glob(bad + ".unreadable-*"); len(aside) != 1 {
		t.Errorf("the unreadable database was not set aside: %v", aside)
	}
	if !strings.Contains(logs.String(), "object database is unreadable") || !strings.Contains(logs.String(), bad) {
		t.Errorf("no error naming %s in the log:\n%s", bad, logs.String())
	}
	for _, name := range []string{"a", "b", "c"} {
		if p := rt2.store.Path("probe", c2.ns.FromName(name).String()); p == bad {
			if got := mustDo(t, c2, name, "/incr"); got != "1" {
				t.Errorf("the object whose database was set aside: incr = %s, want 1 (a new database)", got)
			}
		}
	}
}

// A tenant's objects together: the objects with data and the bytes they store are bounded, each
// with an error that names the limit; deleting makes room again.
func TestTenantStorageQuotas(t *testing.T) {
	rt := newTestRuntime(t, Config{MaxObjects: 2})
	c := loadProbe(t, rt)
	mustDo(t, c, "a", "/incr")
	mustDo(t, c, "b", "/incr")
	if _, _, err := do(c, "c", "/incr"); err == nil || !strings.Contains(err.Error(), "limit of 2 objects") {
		t.Errorf("a third object: %v, want the object limit", err)
	}
	if got := mustDo(t, c, "a", "/incr"); got != "2" {
		t.Errorf("an existing object after the limit: incr = %s", got)
	}
	if st, _, err := do(c, "c", "/get?k=n"); err != nil || st != 404 {
		t.Errorf("reading an object without data at the limit: %d %v", st, err)
	}

	rt2 := newTestRuntime(t, Config{MaxStorageBytes: 512 << 10})
	c2 := loadProbe(t, rt2)
	if _, _, err := do(c2, "f", "/fill?k=after&v=1"); err == nil || !strings.Contains(err.Error(), "max_storage_bytes") {
		t.Fatalf("filling past the tenant's storage: %v", err)
	}
	// The failed fill left nothing: the quota is free again.
	for i := 0; ; i++ {
		_, _, err := do(c2, "g", "/put?k=k"+strconv.Itoa(i)+"&v="+strings.Repeat("v", 60000))
		if err != nil {
			if i < 5 || !strings.Contains(err.Error(), "max_storage_bytes") {
				t.Errorf("put %d of 60 KB under 512 KiB: %v", i, err)
			}
			break
		}
		if i > 20 {
			t.Fatal("512 KiB quota never reached")
		}
	}
	if got := mustDo(t, c2, "g", "/deleteall"); got != "0" {
		t.Errorf("deleteAll at the quota: %s", got)
	}
	if got := mustDo(t, c2, "g", "/put?k=again&v=1"); got != "0" {
		t.Errorf("put after deleteAll: %s, want 0", got)
	}
}

// A guest cannot flood the log: its output past the object's rate is dropped, and the log says
// how much.
func TestGuestLogRateLimited(t *testing.T) {
	var logs testutil.LockedBuffer
	rt := newTestRuntime(t, Config{GuestLogRate: 1000, GuestLogBurst: 2000, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	c := loadProbe(t, rt)
	mustDo(t, c, "p", "/print?n=1000") // 100 KB
	out := logs.String()
	lines := strings.Count(out, "source=guest-stdout")
	t.Logf("%d lines of 1000 logged", lines)
	if lines > 25 || lines < 10 {
		t.Errorf("%d lines of 100 bytes logged with a burst of 2000 bytes", lines)
	}
	if !strings.Contains(out, "guest log output dropped") {
		t.Errorf("no line says output was dropped:\n%.2000s", out)
	}
}

// A Close whose context ends before the object loops do still releases everything once they end
// (before, it returned early and left the databases, the alarm indexes and the wazero runtime
// open for good; a second Close returned nil at once).
func TestCloseReleasesAfterItsContextEnds(t *testing.T) {
	rt := newTestRuntime(t, Config{})
	c := loadProbe(t, rt)
	mustDo(t, c, "a", "/incr")
	busy := make(chan struct{})
	go func() { do(c, "s", "/sleep?ms=300"); close(busy) }()
	waitQueued(t, c, "s", 0) // (s had no loop before: it is running the sleep)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := rt.Close(ctx); err == nil {
		t.Fatal("Close with an ended context while an event runs returned nil")
	}
	<-busy
	if err := rt.Close(context.Background()); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := rt.Store().Acquire(context.Background(), "probe", c.ns.FromName("a").String()); !errors.Is(err, storage.ErrClosed) {
		t.Errorf("the store is still open after Close: %v", err)
	}
}

// A module whose instantiation fails after its memory was made (here: its start function traps)
// leaves no memory behind: wazero does not free it, and before this each attempt leaked its
// mapping and, with a memory budget, its share of the budget for good.
func TestFailedInstantiationFreesMemory(t *testing.T) {
	rt := newTestRuntime(t, Config{MaxMemoryBytes: 64 << 20})
	// (a 1-page memory, a start function that traps, and the ABI exports)
	wasm := startTrapGuest()
	c, err := rt.LoadClass(context.Background(), "starttrap", "starttrap", wasm)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 20; i++ {
		if _, _, err := do(c, "x", "/"); err == nil || !strings.Contains(err.Error(), "instantiate") {
			t.Fatalf("attempt %d: %v, want the failed instantiation", i, err)
		}
	}
	if used := rt.memory.used.Load(); used != 0 {
		t.Errorf("after 20 failed instantiations of a 1-page memory, %d bytes of the budget are still taken", used)
	}
}
