package host

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dowasm/dowasm/internal/testutil"
	"github.com/dowasm/dowasm/toolchain"
)

func TestCallRPCAndFetch(t *testing.T) {
	rt := newTestRuntime(t, Config{})
	c := loadProbe(t, rt)
	for i := 1; i <= 2; i++ {
		if got := mustDo(t, c, "a", "/call-rpc?name=b&method=incr"); got != "ok "+strconv.Itoa(i) {
			t.Fatalf("rpc %d: %s", i, got)
		}
	}
	if got := mustDo(t, c, "b", "/get?k=n"); got != "2" {
		t.Fatalf("callee state: %s", got)
	}
	if got := mustDo(t, c, "a", "/call-fetch?name=b&p=/incr"); got != "ok 200 3" {
		t.Fatalf("fetch: %s", got)
	}
	if got := mustDo(t, c, "a", "/call-fetch?name=b&p=incr"); got != "err 6" {
		t.Fatalf("fetch of a path without /: %s", got)
	}
	if got := mustDo(t, c, "a", "/call-rpc?name=b&method=echo&arg=hello"); got != "ok hello" {
		t.Fatalf("echo: %s", got)
	}
	// by ID
	bid := c.ns.FromName("b").String()
	if got := mustDo(t, c, "a", "/call-rpc?name=id:"+bid+"&method=incr"); got != "ok 4" {
		t.Fatalf("rpc by ID: %s", got)
	}
}

// A callee's failure or trap reaches the caller as CALL_FAILED with the callee's message (its
// writes rolled back); the caller's own event is unaffected. Bad targets are refused.
func TestCallErrorsReachTheCaller(t *testing.T) {
	rt := newTestRuntime(t, Config{})
	c := loadProbe(t, rt)
	for _, tc := range []struct{ q, want string }{
		{"name=b&method=fail", "err 14 probe/b: rpc returned error code 1"},
		{"name=b&method=fail", "probe: rpc failure"},
		{"name=b&method=trap", "rpc trapped"},
		{"name=b&method=nope", "probe: unknown method nope"},
		{"class=nosuch&name=b&method=echo", "err 1 no class \"nosuch\""},
		{"name=id:00ff&method=echo", "err 6 call target:"},
		{"name=&method=echo", "err 6 call target: an object name is 1 to 1024 bytes"},
	} {
		got := mustDo(t, c, "a", "/call-rpc?"+tc.q)
		if !strings.Contains(got, tc.want) {
			t.Errorf("%s: %q, want it to contain %q", tc.q, got, tc.want)
		}
	}
	if st, body, _ := do(c, "b", "/get?k=lost"); st != 404 {
		t.Fatalf("a failed callee's write survived: %d %s", st, body)
	}
	if got := mustDo(t, c, "a", "/call-rpc?name=b&method=incr"); got != "ok 1" {
		t.Fatalf("the callee after its failures: %s", got)
	}
}

// Cycles of length 1, 2 and 3 fail at once with CALL_CYCLE naming the chain.
func TestCallCyclesAreRefused(t *testing.T) {
	rt := newTestRuntime(t, Config{EventTimeout: 20 * time.Second})
	c := loadProbe(t, rt)
	for _, tc := range []struct{ q, chain string }{
		{"name=a&method=echo", "call cycle: probe/a -> probe/a"},
		{"name=b&method=call&arg=a|echo|x", "call cycle: probe/b -> probe/a -> probe/b"},
		{"name=b&method=call&arg=c|call|a|echo|x", "call cycle: probe/c -> probe/a -> probe/b -> probe/c"},
	} {
		start := time.Now()
		got := mustDo(t, c, "a", "/call-rpc?"+tc.q)
		t.Logf("%s: %s", tc.q, got)
		if !strings.Contains(got, "err 13 "+tc.chain) {
			t.Errorf("%s: %q, want CALL_CYCLE (13) naming %q", tc.q, got, tc.chain)
		}
		if time.Since(start) > 5*time.Second {
			t.Errorf("%s: the cycle took %s to detect", tc.q, time.Since(start))
		}
	}
}

// Two independent events that would deadlock (c waits on a, a waits on b, b calls c) do not:
// the last call is refused as a cycle, and the other event then completes.
func TestCallCrossEventCycle(t *testing.T) {
	rt := newTestRuntime(t, Config{EventTimeout: 20 * time.Second})
	c := loadProbe(t, rt)
	for _, n := range []string{"a", "b", "c"} { // warm the instances
		mustDo(t, c, n, "/incr")
	}
	waiting := func(name string) bool {
		key := c.name + "/" + c.ns.FromName(name).String()
		rt.calls.mu.Lock()
		defer rt.calls.mu.Unlock()
		_, ok := rt.calls.waiting[key]
		return ok
	}
	var wg sync.WaitGroup
	var first, second string
	wg.Add(2)
	go func() {
		defer wg.Done()
		// b waits 1.5 s, then calls c
		first = mustDo(t, c, "a", "/call-rpc?name=b&method=wait-then-call&arg=1500|c|echo|x")
	}()
	waitFor(t, "a to wait on b", func() bool { return waiting("a") })
	go func() {
		defer wg.Done()
		second = mustDo(t, c, "c", "/call-rpc?name=a&method=echo&arg=y") // a is busy: c waits on a
	}()
	waitFor(t, "c to wait on a", func() bool { return waiting("c") })
	wg.Wait()
	if !strings.Contains(first, "call cycle: probe/b -> probe/c -> probe/a -> probe/b") {
		t.Errorf("first: %q, want the cycle refused", first)
	}
	if second != "ok y" {
		t.Errorf("second: %q", second)
	}
}

func TestCallDepthLimit(t *testing.T) {
	rt := newTestRuntime(t, Config{MaxInstances: 64})
	src := "tests/guests/probe"
	c, err := rt.LoadClass(context.Background(), "probe", src, testutil.Guest(t, src, toolchain.TinyGo))
	if err != nil {
		t.Fatal(err)
	}
	chain := func(hops int) string { // p0 calls p1 ... calls p<hops>, which echoes x
		s := "p" + strconv.Itoa(hops) + "|echo|x"
		for i := hops - 1; i >= 2; i-- {
			s = "p" + strconv.Itoa(i) + "|call|" + s
		}
		return "/call-rpc?name=p1&method=call&arg=" + s
	}
	if got := mustDo(t, c, "p0", chain(15)); got != "ok x" {
		t.Fatalf("16 objects deep: %q", got)
	}
	if got := mustDo(t, c, "p0", chain(16)); !strings.Contains(got, "err 9 call depth 17 exceeds 16") {
		t.Fatalf("17 objects deep: %q", got)
	}
}

// One object fans out to 100 others and back; calls through one stub arrive in order while
// other clients load the callee.
func TestCallFanOutAndOrder(t *testing.T) {
	rt := newTestRuntime(t, Config{MaxInstances: 256})
	src := "tests/guests/probe"
	c, err := rt.LoadClass(context.Background(), "probe", src, testutil.Guest(t, src, toolchain.TinyGo))
	if err != nil {
		t.Fatal(err)
	}
	for round := 1; round <= 2; round++ {
		if got := mustDo(t, c, "front", "/call-many?n=100"); got != strconv.Itoa(100*round) {
			t.Fatalf("fan-out round %d: %s", round, got)
		}
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
					mustDo(t, c, "hot", "/incr")
				}
			}
		}()
	}
	got := mustDo(t, c, "caller", "/call-seq?name=hot&n=300")
	close(stop)
	wg.Wait()
	prev := 0
	for _, s := range strings.Split(got, ",") {
		v, _ := strconv.Atoi(s)
		if v <= prev {
			t.Fatalf("calls through one stub out of order: %d after %d", v, prev)
		}
		prev = v
	}
}

// The callee inherits the caller's deadline: a slow callee is cut off when the caller's event
// times out, and the caller is not left waiting.
func TestCallDeadlineIsInherited(t *testing.T) {
	rt := newTestRuntime(t, Config{EventTimeout: 500 * time.Millisecond})
	c := loadProbe(t, rt)
	mustDo(t, c, "a", "/incr")
	mustDo(t, c, "b", "/incr")
	start := time.Now()
	// The caller either sees EVENT_CANCELLED from the call (and answers with it) or is stopped
	// at its own deadline right after; either way it does not wait for the callee's 3 s.
	_, body, err := do(c, "a", "/call-rpc?name=b&method=sleep&arg=3000")
	// (or the callee, stopped at the shared deadline, fails first: CALL_FAILED naming the limit)
	if (err == nil || !strings.Contains(err.Error(), "time limit")) && !strings.HasPrefix(body, "err 12 call to probe/b: context deadline exceeded") &&
		!strings.HasPrefix(body, "err 14 probe/b: rpc exceeded the event time limit") {
		t.Fatalf("caller past its deadline: %q %v", body, err)
	}
	if d := time.Since(start); d > 2500*time.Millisecond {
		t.Fatalf("the caller waited %s for a callee sleeping 3 s past its 500 ms deadline", d)
	}
}

// A callee whose queue is full answers OVERLOADED; an object waiting on a call is not evicted
// even with a 1 ms idle timeout and a cap of one live instance.
func TestCallOverloadAndNoEvictionWhileWaiting(t *testing.T) {
	rt := newTestRuntime(t, Config{MaxQueue: 1, IdleTimeout: time.Millisecond, MaxInstances: 1, EventTimeout: 20 * time.Second})
	c := loadProbe(t, rt)
	bKey := c.name + "/" + c.ns.FromName("b").String()
	queued := func() int { // events waiting in b's mailbox; -1 while b has no loop
		sh := rt.objects.shard(bKey)
		sh.mu.Lock()
		defer sh.mu.Unlock()
		o := sh.m[bKey]
		if o == nil {
			return -1
		}
		o.mu.Lock()
		defer o.mu.Unlock()
		return len(o.mailbox)
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); mustDo(t, c, "b", "/sleep?ms=1500") }()
	waitFor(t, "b to be busy sleeping", func() bool { return queued() == 0 }) // its event taken
	var got string
	go func() {
		defer wg.Done()
		got = mustDo(t, c, "c", "/call-rpc?name=b&method=echo&arg=q") // waits in b's queue
	}()
	waitFor(t, "c's call to wait in b's queue", func() bool { return queued() == 1 })
	if r := mustDo(t, c, "a", "/call-rpc?name=b&method=echo&arg=z"); !strings.HasPrefix(r, "err 15 ") {
		t.Errorf("call to a full queue: %q", r)
	}
	wg.Wait()
	if got != "ok q" {
		t.Errorf("queued call: %q (its caller must have survived the wait)", got)
	}
	if s := rt.Stats(); s.MaxLivePerID > 1 {
		t.Fatalf("two instances of one object: %+v", s)
	}
}

// Calls to different objects run in parallel: while a1 waits on a slow call to b1, a call from
// a2 to b2 completes.
func TestCallsToDifferentObjectsRunInParallel(t *testing.T) {
	rt := newTestRuntime(t, Config{EventTimeout: 20 * time.Second})
	c := loadProbe(t, rt)
	for _, n := range []string{"a1", "a2", "b1", "b2"} {
		mustDo(t, c, n, "/incr") // warm the instances
	}
	a1 := c.name + "/" + c.ns.FromName("a1").String()
	waiting := func() bool {
		rt.calls.mu.Lock()
		defer rt.calls.mu.Unlock()
		_, ok := rt.calls.waiting[a1]
		return ok
	}
	done := make(chan string, 1)
	go func() { done <- mustDo(t, c, "a1", "/call-rpc?name=b1&method=sleep&arg=3000") }()
	waitFor(t, "a1 to wait on b1", waiting)
	if got := mustDo(t, c, "a2", "/call-rpc?name=b2&method=echo&arg=x"); got != "ok x" {
		t.Fatalf("a2: %s", got)
	}
	if !waiting() {
		t.Fatal("a2's call completed only after a1's: calls did not run in parallel")
	}
	if got := <-done; got != "ok slept" {
		t.Fatalf("a1: %s", got)
	}
}
