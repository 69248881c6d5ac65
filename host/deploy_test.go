package host

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dowasm/dowasm/abi"
	"github.com/dowasm/dowasm/internal/testutil"
	"github.com/dowasm/dowasm/toolchain"
)

// Replacing a class: an event running on the old module finishes on it; the object's next
// event runs on the new module (its constructor runs again); the old module is closed once its
// last instance is gone; the object's data carries over.
func TestReplaceClassLiveObjects(t *testing.T) {
	rt := newTestRuntime(t, Config{})
	probe := testutil.Guest(t, "tests/guests/probe", toolchain.TinyGo)
	counter := testutil.Guest(t, "examples/counter/go", toolchain.TinyGo)
	ctx := context.Background()
	c, err := rt.DeployClass(ctx, "x", "probe", probe, ClassLimits{})
	if err != nil {
		t.Fatal(err)
	}
	mustDo(t, c, "a", "/put?k=value&v=41") // the counter stores its value under "value"
	old := c.cur.Load()

	var wg sync.WaitGroup
	var slow string
	wg.Add(1)
	go func() {
		defer wg.Done()
		slow = mustDo(t, c, "a", "/sleep?ms=300")
	}()
	// Wait until the slow event runs (it holds the object's only instance), then replace.
	for deadline := time.Now().Add(30 * time.Second); rt.Stats().LiveInstances == 0 || !waiting(rt, c, "a"); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the slow event did not start")
		}
	}
	if _, err := rt.DeployClass(ctx, "x", "counter", counter, ClassLimits{}); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if slow != "slept" {
		t.Errorf("the event running during the replacement answered %q, want the old module's %q", slow, "slept")
	}
	// The next event runs on the counter, over the same data.
	st, body, err := doMethod(c, "a", "POST", "/increment")
	if err != nil || st != 200 || body != "42" {
		t.Errorf("after the replacement: %d %q %v, want the counter's 42", st, body, err)
	}
	c.modMu.Lock()
	closed, refs := old.retired, old.refs
	c.modMu.Unlock()
	if !closed || refs != 0 {
		t.Errorf("old module: retired %v with %d instances, want retired with 0", closed, refs)
	}
	// A module that does not load leaves the class as it was.
	if _, err := rt.DeployClass(ctx, "x", "garbage", []byte("\x00asm\x01\x00\x00\x00\x01"), ClassLimits{}); err == nil {
		t.Fatal("a corrupt replacement was accepted")
	}
	if st, body, _ := doMethod(c, "a", "POST", "/increment"); st != 200 || body != "43" {
		t.Errorf("after a refused replacement: %d %q, want 43", st, body)
	}
}

// waiting reports whether the object named name is running an event (it is active and not
// in the idle set).
func waiting(rt *Runtime, c *Class, name string) bool {
	key := c.name + "/" + c.Namespace().FromName(name).String()
	sh := rt.objects.shard(key)
	sh.mu.Lock()
	o := sh.m[key]
	sh.mu.Unlock()
	if o == nil {
		return false
	}
	rt.idle.mu.Lock()
	defer rt.idle.mu.Unlock()
	return o.idleElem == nil
}

func doMethod(c *Class, name, method, pathAndQuery string) (int, string, error) {
	path, q, _ := strings.Cut(pathAndQuery, "?")
	resp, err := c.Fetch(context.Background(), c.Namespace().FromName(name), name, &abi.Request{Method: method, Path: path, Query: q})
	if err != nil {
		return 0, "", err
	}
	return resp.Status, string(resp.Body), nil
}

// Deleting a class: it stops answering (ErrNoClass), and deploying it again finds its data.
func TestDeleteClassKeepsData(t *testing.T) {
	rt := newTestRuntime(t, Config{})
	probe := testutil.Guest(t, "tests/guests/probe", toolchain.TinyGo)
	ctx := context.Background()
	c, err := rt.DeployClass(ctx, "x", "probe", probe, ClassLimits{})
	if err != nil {
		t.Fatal(err)
	}
	mustDo(t, c, "a", "/incr")
	if err := rt.DeleteClass("x"); err != nil {
		t.Fatal(err)
	}
	if rt.Class("x") != nil || len(rt.Classes()) != 0 {
		t.Errorf("a deleted class is still listed: %v", rt.Classes())
	}
	if _, _, err := do(c, "a", "/incr"); !errors.Is(err, ErrNoClass) {
		t.Errorf("event to a deleted class: %v, want ErrNoClass", err)
	}
	if err := rt.DeleteClass("x"); !errors.Is(err, ErrNoClass) {
		t.Errorf("deleting twice: %v", err)
	}
	c2, err := rt.DeployClass(ctx, "x", "probe", probe, ClassLimits{})
	if err != nil {
		t.Fatal(err)
	}
	if got := mustDo(t, c2, "a", "/incr"); got != "2" {
		t.Errorf("after deploying again: %q, want 2 (the data stayed)", got)
	}
}

// Per-class limits: event time, storage bytes, queue length, memory pages; each with a clear
// error, and each class's own.
func TestClassLimits(t *testing.T) {
	rt := newTestRuntime(t, Config{})
	probe := testutil.Guest(t, "tests/guests/probe", toolchain.TinyGo)
	ctx := context.Background()
	tight, err := rt.DeployClass(ctx, "tight", "probe", probe, ClassLimits{EventTimeout: 200 * time.Millisecond, StorageBytes: 256 << 10, MaxQueue: 1})
	if err != nil {
		t.Fatal(err)
	}
	loose, err := rt.DeployClass(ctx, "loose", "probe", probe, ClassLimits{})
	if err != nil {
		t.Fatal(err)
	}
	if l := loose.Limits(); l.EventTimeout != rt.cfg.EventTimeout || l.StorageBytes != 0 || l.MaxQueue != rt.cfg.MaxQueue {
		t.Errorf("defaults not applied: %+v", l)
	}

	start := time.Now()
	_, _, err = do(tight, "a", "/loop")
	if err == nil || !strings.Contains(err.Error(), "exceeded the event time limit of 200ms") {
		t.Errorf("runaway loop under a 200 ms class limit: %v", err)
	}
	t.Logf("stopped %s after the start (limit 200ms)", time.Since(start).Round(time.Millisecond))

	// Storage: a 2 MiB value does not fit in 256 KiB; smaller writes still do.
	mustDo(t, tight, "b", "/put?k=small&v=x")
	_, _, err = do(tight, "b", "/limits")
	if err == nil || !strings.Contains(err.Error(), "object storage limit of 262144 bytes reached") {
		t.Errorf("writing past the storage limit: %v", err)
	}
	if got := mustDo(t, tight, "b", "/get?k=small"); got != "x" {
		t.Errorf("data written before the limit: %q", got)
	}
	if got := mustDo(t, loose, "b", "/limits"); got != "0 -3 0 -4" {
		t.Errorf("the same writes in a class without a storage limit: %q", got)
	}

	// Memory: a module growing its memory is stopped at the class's page limit.
	grow := minimalGuest(nil, cat(i32const(10), []byte{0x40, 0x00}, i32const(-1), []byte{0x47}, []byte{0x04, 0x40}, []byte{0x00}, []byte{0x0b}, i32const(0)))
	small, err := rt.DeployClass(ctx, "small", "grow", grow.encode(), ClassLimits{MemoryPages: 4})
	if err != nil {
		t.Fatal(err)
	}
	if st, _, err := do(small, "a", "/"); err != nil || st != 204 {
		t.Errorf("memory.grow past a 4-page limit should fail in the guest (answer 204): %d %v", st, err)
	}
	big, err := rt.DeployClass(ctx, "big", "grow", grow.encode(), ClassLimits{})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := do(big, "a", "/"); err == nil || !strings.Contains(err.Error(), "unreachable") {
		t.Errorf("without the limit the same growth succeeds (and the guest traps on purpose): %v", err)
	}
	if _, err := rt.DeployClass(ctx, "tiny", "probe", probe, ClassLimits{MemoryPages: 1}); err == nil || !strings.Contains(err.Error(), "the limit is 1 pages") {
		t.Errorf("a module whose memory starts above the class limit: %v", err)
	}
}

// With HardInstanceLimit, an event that needs an instance while all are busy fails as
// overloaded instead of exceeding the limit.
func TestHardInstanceLimit(t *testing.T) {
	rt := newTestRuntime(t, Config{MaxInstances: 1, HardInstanceLimit: true})
	c, err := rt.DeployClass(context.Background(), "p", "probe", testutil.Guest(t, "tests/guests/probe", toolchain.TinyGo), ClassLimits{})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		do(c, "busy", "/sleep?ms=500")
	}()
	for deadline := time.Now().Add(30 * time.Second); !waiting(rt, c, "busy") || rt.Stats().LiveInstances == 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the busy event did not start")
		}
	}
	_, _, err = do(c, "other", "/incr")
	if !errors.Is(err, ErrOverloaded) || !strings.Contains(err.Error(), "live instance limit of 1 reached") {
		t.Errorf("second instance while the only one is busy: %v", err)
	}
	<-done
	// The busy object's loop puts its instance in the idle set (evictable) right after answering.
	for deadline := time.Now().Add(30 * time.Second); waiting(rt, c, "busy"); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the busy object did not become idle")
		}
	}
	if got := mustDo(t, c, "other", "/incr"); got != "1" {
		t.Errorf("once the busy one is idle (evictable): %q", got)
	}
}
