package host

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dowasm/dowasm/abi"
	"github.com/dowasm/dowasm/internal/testutil"
	"github.com/dowasm/dowasm/storage"
	"github.com/dowasm/dowasm/toolchain"
)

// guestWasm builds a guest from source with the project's own toolchain package (cached by
// content hash in build/guests, shared with `task guests`).
func guestWasm(t testing.TB, dir string) []byte {
	t.Helper()
	return testutil.Guest(t, dir, toolchain.Go)
}

func loadProbe(t testing.TB, rt *Runtime) *Class {
	t.Helper()
	c, err := rt.LoadClass(context.Background(), "probe", "tests/guests/probe", guestWasm(t, "tests/guests/probe"))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// do sends one request to the object named name and returns status and body (or the error).
func do(c *Class, name, pathAndQuery string) (int, string, error) {
	path, q, _ := strings.Cut(pathAndQuery, "?")
	resp, err := c.Fetch(context.Background(), c.Namespace().FromName(name), name, &abi.Request{Method: "POST", Path: path, Query: q})
	if err != nil {
		return 0, "", err
	}
	return resp.Status, string(resp.Body), nil
}

func mustDo(t testing.TB, c *Class, name, pq string) string {
	t.Helper()
	st, body, err := do(c, name, pq)
	if err != nil {
		t.Fatalf("%s %s: %v", name, pq, err)
	}
	if st != 200 {
		t.Fatalf("%s %s: status %d body %q", name, pq, st, body)
	}
	return body
}

func TestStateAndInstanceReuse(t *testing.T) {
	rt := newTestRuntime(t, Config{})
	c := loadProbe(t, rt)
	for i := 1; i <= 5; i++ {
		if got := mustDo(t, c, "a", "/incr"); got != strconv.Itoa(i) {
			t.Fatalf("incr %d: got %s", i, got)
		}
	}
	if got := mustDo(t, c, "b", "/incr"); got != "1" {
		t.Fatalf("objects share state: b got %s", got)
	}
	// same instance served every event of a (6 events, init once)
	if got := mustDo(t, c, "a", "/instance"); got != "6 1" {
		t.Fatalf("instance events/init = %q, want \"6 1\"", got)
	}
	if got := mustDo(t, c, "a", "/id"); got != c.Namespace().FromName("a").String() {
		t.Fatalf("object_id = %s", got)
	}
	if got := mustDo(t, c, "a", "/name"); got != "a" {
		t.Fatalf("object_name = %s", got)
	}
	// addressed by ID only, the object still knows its name (persisted in its metadata)
	resp, err := c.Fetch(context.Background(), c.Namespace().FromName("a"), "", &abi.Request{Method: "GET", Path: "/name"})
	if err != nil || string(resp.Body) != "a" {
		t.Fatalf("name by ID: %v %v", resp, err)
	}
	// a unique ID has no name
	resp, err = c.Fetch(context.Background(), c.Namespace().NewUnique(), "", &abi.Request{Method: "GET", Path: "/name"})
	if err != nil || resp.Status != 404 || string(resp.Body) != "-1" {
		t.Fatalf("unique ID name: %+v %v", resp, err)
	}
}

func TestTrapAndErrorRollBack(t *testing.T) {
	rt := newTestRuntime(t, Config{})
	c := loadProbe(t, rt)
	mustDo(t, c, "a", "/incr")
	for _, p := range []string{"/put-then-trap?k=x&v=1", "/put-then-error?k=x&v=1"} {
		_, _, err := do(c, "a", p)
		var ee *EventError
		if !errors.As(err, &ee) {
			t.Fatalf("%s: got %v, want an EventError", p, err)
		}
		want := "trap"
		if strings.Contains(p, "error") {
			want = "probe: handler error after write"
		}
		if !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), ee.Object) {
			t.Fatalf("%s: error %q should name the failure (%q) and the object", p, err, want)
		}
		if st, body, _ := do(c, "a", "/get?k=x"); st != 404 {
			t.Fatalf("%s: write survived the failure: %d %s", p, st, body)
		}
		// the next request works, on a fresh instance rebuilt from storage
		if got := mustDo(t, c, "a", "/instance"); got != "2 1" { // the /get above was its first event
			t.Fatalf("%s: instance not rebuilt after failure: %s", p, got)
		}
	}
	if got := mustDo(t, c, "a", "/get?k=n"); got != "1" {
		t.Fatalf("earlier committed state lost: %s", got)
	}
}

func TestEventTimeout(t *testing.T) {
	rt := newTestRuntime(t, Config{EventTimeout: 300 * time.Millisecond})
	c := loadProbe(t, rt)
	_, _, err := do(c, "a", "/loop")
	if err == nil || !strings.Contains(err.Error(), "exceeded the event time limit of 300ms") {
		t.Fatalf("runaway loop: %v", err)
	}
	if got := mustDo(t, c, "a", "/incr"); got != "1" {
		t.Fatalf("after timeout: %s", got)
	}
}

func TestStorageLimitsAndTransactions(t *testing.T) {
	rt := newTestRuntime(t, Config{})
	c := loadProbe(t, rt)
	want := fmt.Sprintf("0 %d 0 %d", -abi.KeyTooLarge, -abi.ValueTooLarge)
	if got := mustDo(t, c, "a", "/limits"); got != want {
		t.Fatalf("limits: got %q want %q (2 KiB key ok, 2049 too large, 2 MiB entry ok, +1 too large)", got, want)
	}
	if got := mustDo(t, c, "a", "/txn"); got != fmt.Sprintf("a=1 b=%d extra=%d", -abi.NotFound, -abi.NoTransaction) {
		t.Fatalf("nested transactions: %s", got)
	}
	if got := mustDo(t, c, "a", "/txn-restore"); got != "1" {
		t.Fatalf("a rolled-back overwrite is still visible: %q", got)
	}
	mustDo(t, c, "a", "/txn-open?k=open&v=yes")
	if got := mustDo(t, c, "a", "/get?k=open"); got != "yes" {
		t.Fatalf("an explicit transaction left open by a successful handler should commit: %s", got)
	}
	if got := mustDo(t, c, "a", "/bad-response"); got != strconv.Itoa(-int(abi.InvalidArgument)) {
		t.Fatalf("malformed response: %s", got)
	}
	mustDo(t, c, "a", "/deleteall")
	if st, _, _ := do(c, "a", "/get?k=a"); st != 404 {
		t.Fatal("deleteAll left keys")
	}
}

// 1,000 concurrent increments against one object: each answered once, final value exactly
// 1,000, and every value 1..1000 answered exactly once (events run one at a time).
func TestConcurrentIncrementsOneObject(t *testing.T) {
	rt := newTestRuntime(t, Config{})
	c := loadProbe(t, rt)
	const n = 1000
	seen := make([]int, n+1)
	var mu sync.Mutex
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st, body, err := do(c, "hot", "/incr")
			if err != nil || st != 200 {
				errs <- fmt.Errorf("%d %s %v", st, body, err)
				return
			}
			v, _ := strconv.Atoi(body)
			mu.Lock()
			if v >= 1 && v <= n {
				seen[v]++
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for v := 1; v <= n; v++ {
		if seen[v] != 1 {
			t.Fatalf("value %d answered %d times", v, seen[v])
		}
	}
	if got := mustDo(t, c, "hot", "/get?k=n"); got != "1000" {
		t.Fatalf("final %s", got)
	}
}

// Many goroutines over few objects with a 1 ms idle timeout: eviction races every arrival.
// Invariants: never two live instances for one ID; no event lost or run twice.
func TestEvictionRacingEvents(t *testing.T) {
	// MaxInstances 2 over 4 objects: evictions requested by other objects race too.
	rt := newTestRuntime(t, Config{IdleTimeout: time.Millisecond, MaxInstances: 2})
	c := loadProbe(t, rt)
	const objects, workers, per = 4, 16, 40
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < per; i++ {
				name := "o" + strconv.Itoa((w+i)%objects)
				if st, body, err := do(c, name, "/incr"); err != nil || st != 200 {
					errs <- fmt.Errorf("%s: %d %s %v", name, st, body, err)
					return
				}
				if i%7 == 0 {
					time.Sleep(2 * time.Millisecond) // let the object go idle and be evicted
				}
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	total := 0
	for o := 0; o < objects; o++ {
		v, _ := strconv.Atoi(mustDo(t, c, "o"+strconv.Itoa(o), "/get?k=n"))
		total += v
	}
	if total != workers*per {
		t.Fatalf("sum of counters %d, want %d: an event was lost or ran twice", total, workers*per)
	}
	st := rt.Stats()
	if st.MaxLivePerID > 1 {
		t.Fatalf("two live instances for one ID at once (max %d)", st.MaxLivePerID)
	}
	if st.Created < 2 {
		t.Fatalf("eviction never happened (%d instances created)", st.Created)
	}
	deadline := time.Now().Add(5 * time.Second)
	for rt.Stats().LiveInstances != 0 || rt.Stats().ActiveObjects != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("idle objects not evicted: %+v", rt.Stats())
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Logf("instances created %d, destroyed %d", st.Created, rt.Stats().Destroyed)
}

func TestEvictedObjectKeepsState(t *testing.T) {
	rt := newTestRuntime(t, Config{IdleTimeout: 20 * time.Millisecond})
	c := loadProbe(t, rt)
	mustDo(t, c, "a", "/incr")
	mustDo(t, c, "a", "/incr")
	deadline := time.Now().Add(5 * time.Second)
	for rt.Stats().LiveInstances != 0 {
		if time.Now().After(deadline) {
			t.Fatal("not evicted")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if got := mustDo(t, c, "a", "/incr"); got != "3" {
		t.Fatalf("after eviction: %s", got)
	}
	if got := mustDo(t, c, "a", "/instance"); got != "2 1" {
		t.Fatalf("woken object should be a fresh instance: %s", got)
	}
}

func TestQueueBound(t *testing.T) {
	rt := newTestRuntime(t, Config{MaxQueue: 4})
	c := loadProbe(t, rt)
	mustDo(t, c, "a", "/incr")
	var wg sync.WaitGroup
	var mu sync.Mutex
	overloaded, ok := 0, 0
	for i := 0; i < 40; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _, err := do(c, "a", "/sleep?ms=20")
			mu.Lock()
			defer mu.Unlock()
			switch {
			case errors.Is(err, ErrOverloaded):
				overloaded++
				if !strings.Contains(err.Error(), "limit 4") {
					t.Errorf("overload error should give the reason: %v", err)
				}
			case err == nil:
				ok++
			default:
				t.Errorf("unexpected %v", err)
			}
		}()
	}
	wg.Wait()
	if overloaded == 0 || ok == 0 {
		t.Fatalf("ok %d overloaded %d: a bounded queue should refuse some and serve others", ok, overloaded)
	}
}

func TestGuestMemoryBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("long")
	}
	rt := newTestRuntime(t, Config{})
	c := loadProbe(t, rt)
	for i := 0; i < 2000; i++ {
		mustDo(t, c, "a", "/garbage")
	}
	var pages uint32
	rt.objects.shard(c.name + "/" + c.Namespace().FromName("a").String()).mu.Lock()
	for _, o := range rt.objects.shard(c.name + "/" + c.Namespace().FromName("a").String()).m {
		if o.inst != nil {
			pages = o.inst.mod.Memory().Size() / 65536
		}
	}
	rt.objects.shard(c.name + "/" + c.Namespace().FromName("a").String()).mu.Unlock()
	// 2,000 MiB allocated in total; with periodic GC (every 16 events in the probe) the heap stays small.
	if pages == 0 || pages > 1024 {
		t.Fatalf("guest memory %d pages (%d MiB) after 2,000 x 1 MiB garbage", pages, pages/16)
	}
	t.Logf("guest memory after 2,000 MiB of garbage: %d MiB", pages/16)
}

func TestShutdownFailsQueuedEventsAndRefusesNew(t *testing.T) {
	rt := newTestRuntime(t, Config{})
	c := loadProbe(t, rt)
	mustDo(t, c, "a", "/incr")
	done := make(chan error, 1)
	go func() { _, _, err := do(c, "a", "/loop"); done <- err }()
	time.Sleep(100 * time.Millisecond)
	if err := rt.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err == nil || !errors.Is(err, ErrShuttingDown) {
		t.Fatalf("in-flight event at shutdown: %v", err)
	}
	if _, _, err := do(c, "a", "/incr"); !errors.Is(err, ErrShuttingDown) {
		t.Fatalf("event after shutdown: %v", err)
	}
}

// Past MaxInstances, creating an instance evicts the coldest idle one: touching 20 objects keeps
// about 3 alive, and every object keeps its state.
func TestMaxInstancesEvictsColdest(t *testing.T) {
	rt := newTestRuntime(t, Config{MaxInstances: 3})
	c := loadProbe(t, rt)
	for round := 1; round <= 2; round++ {
		for i := 0; i < 20; i++ {
			if got := mustDo(t, c, "o"+strconv.Itoa(i), "/incr"); got != strconv.Itoa(round) {
				t.Fatalf("object %d round %d: %s", i, round, got)
			}
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for rt.Stats().LiveInstances > 4 {
		if time.Now().After(deadline) {
			t.Fatalf("%d live instances with MaxInstances 3", rt.Stats().LiveInstances)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if st := rt.Stats(); st.Created < 40 || st.MaxLivePerID > 1 {
		t.Fatalf("stats %+v: each touch should have needed a new instance", st)
	}
}

// A long-lived standard-Go instance's memory stays bounded: 600 requests with 1 MiB bodies
// (600 MiB read into the guest and dropped) leave the counter's memory far below that. This
// fails if the SDK retains requests or responses between events; Go's own collector and the
// SDK's explicit one (gc.go) both keep the heap small here.
func TestSDKGuestMemoryBounded(t *testing.T) {
	rt := newTestRuntime(t, Config{Durability: storage.Relaxed})
	src := "examples/counter/go"
	c, err := rt.LoadClass(context.Background(), "counter", src, guestWasm(t, src))
	if err != nil {
		t.Fatal(err)
	}
	id := c.Namespace().FromName("m")
	body := make([]byte, 1<<20)
	for i := 0; i < 600; i++ {
		if _, err := c.Fetch(context.Background(), id, "m", &abi.Request{Method: "GET", Path: "/", Body: body}); err != nil {
			t.Fatal(err)
		}
	}
	var pages uint32
	key := c.name + "/" + id.String()
	sh := rt.objects.shard(key)
	sh.mu.Lock()
	if o := sh.m[key]; o != nil && o.inst != nil {
		pages = o.inst.mod.Memory().Size() / 65536
	}
	sh.mu.Unlock()
	if pages == 0 || pages > 48*16 {
		t.Fatalf("counter instance memory %d MiB after 600 MiB of garbage", pages/16)
	}
	t.Logf("counter instance memory after 600 MiB of garbage: %d MiB", pages/16)
}

// Many stored objects through a small pool of database handles and a small instance cap: file
// descriptors stay bounded (3 per open WAL database) and every object keeps its own state.
func TestManyObjectsBoundedHandles(t *testing.T) {
	if testing.Short() {
		t.Skip("long")
	}
	rt := newTestRuntime(t, Config{MaxOpenDatabases: 16, MaxInstances: 8, Durability: storage.Relaxed})
	c := loadProbe(t, rt)
	fds := func() int {
		ents, err := os.ReadDir("/proc/self/fd")
		if err != nil {
			t.Skip("no /proc/self/fd")
		}
		return len(ents)
	}
	base := fds()
	const objects = 600
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	maxFDs := 0
	var mu sync.Mutex
	for round := 1; round <= 2; round++ {
		for i := 0; i < objects; i++ {
			wg.Add(1)
			sem <- struct{}{}
			go func(i int) {
				defer wg.Done()
				defer func() { <-sem }()
				name := "many" + strconv.Itoa(i)
				if got := mustDo(t, c, name, "/incr"); got != strconv.Itoa(round) {
					t.Errorf("%s round %d: %s", name, round, got)
				}
				n := fds()
				mu.Lock()
				maxFDs = max(maxFDs, n)
				mu.Unlock()
			}(i)
		}
		wg.Wait()
	}
	// 16 databases x 3 descriptors, plus a little for the runtime's own files.
	if maxFDs-base > 16*3+16 {
		t.Fatalf("open descriptors grew by %d with a pool of 16 databases", maxFDs-base)
	}
	if st := rt.Store().Stats(); st.Open > 16 || st.Creates != objects {
		t.Fatalf("pool stats %+v", st)
	}
	t.Logf("descriptors: base %d, peak %d; instances created %d", base, maxFDs, rt.Stats().Created)
}

// Reading an object that never wrote creates no database file (a stream of GETs to random names
// must not fill the disk); its first write does.
func TestReadsDoNotCreateDatabases(t *testing.T) {
	rt := newTestRuntime(t, Config{})
	c := loadProbe(t, rt)
	id := c.Namespace().FromName("ghost").String()
	if st, _, err := do(c, "ghost", "/get?k=x"); err != nil || st != 404 {
		t.Fatalf("get on a new object: %d %v", st, err)
	}
	mustDo(t, c, "ghost", "/name")
	if rt.Store().Exists("probe", id) {
		t.Fatal("a read-only event created the object's database")
	}
	mustDo(t, c, "ghost", "/put?k=x&v=1")
	if !rt.Store().Exists("probe", id) {
		t.Fatal("the first write did not create the database")
	}
	if got := mustDo(t, c, "ghost", "/get?k=x"); got != "1" {
		t.Fatalf("after the first write: %q", got)
	}
}
