package hostile

import (
	"fmt"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dowasm/dowasm/host"
)

// eventTimeout is the event deadline of the runaway cases (infinite loop, exponential recursion,
// a constructor that never returns).
const eventTimeout = 300 * time.Millisecond

// The issue asks for runaway guests to be stopped within 50 ms of their deadline. Each runaway
// case attacks several times and reports every overrun and whether 50 ms was met. It fails when
// the median overrun is beyond stopFail, or any single one beyond stopHard: a shared 2-CPU
// machine (and the race detector) has latency spikes of a few hundred ms even for the tenant's
// trivial requests with no attack at all (see the baseline row), while a broken stop (no fuel
// check on some path, a refill that grants far too much) delays every attack.
const (
	stopGoal = 50 * time.Millisecond
	stopFail = 250 * time.Millisecond
	stopHard = 2 * time.Second
)

// TestHostile runs every hostile guest against a real runtime and gateway over HTTP, each while
// a well-behaved class answers requests, and logs a table of the results (bench/RESULTS.md holds
// a copy).
func TestHostile(t *testing.T) {
	tenantModule(t) // build it once, before any timing starts
	t.Run("baseline", testBaseline)
	t.Run("infinite_loop", infiniteLoop.run)
	t.Run("exponential_recursion", exponentialRecursion.run)
	t.Run("host_call_loop", hostCallLoop.run)
	t.Run("cpu_limit", cpuLimit.run)
	t.Run("fuel_straight_line", testFuelStraightLine)
	t.Run("fuel_ref_func", testFuelRefFunc)
	t.Run("unbounded_recursion", testUnboundedRecursion)
	t.Run("deep_recursion_held", testDeepRecursionHeld)
	t.Run("memory_bomb", testMemoryBomb)
	t.Run("table_bomb", testTableBomb)
	t.Run("many_tables", testManyTables)
	t.Run("many_growing_tables", testManyGrowingTables)
	t.Run("many_globals", testManyGlobals)
	t.Run("bad_pointers", testBadPointers)
	t.Run("init_trap", testInitTrap)
	t.Run("init_loop", testInitLoop)
	t.Run("start_loop", testStartLoop)
	t.Run("alarm_always_fails", testAlarmAlwaysFails)
	t.Run("socket_flood", testSocketFlood)
	t.Run("send_flood", testSendFlood)
	t.Run("tenant_memory", testTenantMemory)
	t.Run("tenant_sockets", testTenantSockets)
	t.Logf("results (go test -v -run TestHostile ./tests/hostile/):\n%s", resultsTable())
}

// testBaseline measures the tenant with no attack, for comparison.
func testBaseline(t *testing.T) {
	e := newEnv(t, host.Config{})
	m := e.startTenant()
	time.Sleep(time.Second)
	record(resultRow{Case: "none (baseline)", Stop: "-", Outcome: "-", Tenant: m.finish()})
}

// runaway sends n attacks (POST) to class/name, each of which must be stopped at the event
// deadline with an error containing wants, and describes the overruns: the time from the
// deadline (request sent + EventTimeout, so never later than the real one) to the answer.
func runaway(e *env, class, name string, n int, wants ...string) string {
	return runawayLimit(e, class, name, n, e.cfg.EventTimeout, "deadline", wants...)
}

// runawayLimit is runaway for a limit other than the event deadline: the attack must not be
// answered before limit (for the CPU limit: CPU time is at most the wall time), and its overrun
// is measured from it (for the CPU limit: in CPU time, as charged).
func runawayLimit(e *env, class, name string, n int, limit time.Duration, what string, wants ...string) string {
	t := e.t
	t.Helper()
	var overs []time.Duration
	met := 0
	for i := 0; i < n; i++ {
		r, err := e.do("POST", "/"+class+"/"+name+"/")
		if err != nil {
			t.Fatalf("attack %d: %v", i+1, err)
		}
		e.expectFailure(r, class, name, wants...)
		over := r.took - limit
		if what == "CPU limit" {
			// The CPU the attack was charged when it was stopped, from its error: on a busy
			// machine a guest gets a share of a core, and its wall time says nothing about how
			// fast the CPU limit stopped it.
			used := cpuUsed(t, r.err.Error)
			t.Logf("attack %d: charged %s of CPU (answered after %s of wall time)", i+1, ms(used), ms(r.took))
			over = used - limit
		}
		t.Logf("attack %d: answered %d after %s: %s after the %s %s (goal %s met: %v)", i+1, r.status, ms(r.took), ms(over), limit, what, stopGoal, over <= stopGoal)
		if r.took < limit {
			t.Errorf("attack %d: answered after %s, before its %s %s", i+1, ms(r.took), limit, what)
		}
		if over > stopHard {
			t.Errorf("attack %d: stopped %s after its %s (limit for any attack: %s)", i+1, ms(over), what, stopHard)
		}
		if over <= stopGoal {
			met++
		}
		overs = append(overs, over)
	}
	slices.Sort(overs)
	median, worst := overs[len(overs)/2], overs[len(overs)-1]
	if median > stopFail {
		t.Errorf("median overrun %s after the %s (limit %s)", ms(median), what, stopFail)
	}
	unit := ""
	if what == "CPU limit" {
		unit = " of CPU time"
	}
	return fmt.Sprintf("%s%s after the %s %s (median of %d; worst %s; %d of %d within %s)", ms(median), unit, limit, what, n, ms(worst), met, n, stopGoal)
}

// fetchRunaway is a runaway fetch handler: the object "victim" of class (guest testdata/<wat>)
// is seeded, attacked 5 times under cfg, each attack stopped at limit (the event deadline, or the
// CPU limit) with an error containing want, and its write rolled back.
type fetchRunaway struct {
	name, class, wat string
	cfg              host.Config
	limit            time.Duration // default: cfg.EventTimeout
	what             string        // the limit's name in the results: default "deadline"
	want             string
	outcome          string // the results' outcome column: default "500 `<want>`, rolled back"
}

func (c fetchRunaway) run(t *testing.T) {
	e := newEnv(t, c.cfg)
	e.load(c.class, assemble(t, c.wat))
	e.must("PUT", "/"+c.class+"/victim/", 204)
	m := e.startTenant()
	limit, what, outcome := c.limit, c.what, c.outcome
	if limit == 0 {
		limit, what = c.cfg.EventTimeout, "deadline"
	}
	if outcome == "" {
		outcome = "500 `" + c.want + "`, rolled back"
	}
	stop := runawayLimit(e, c.class, "victim", 5, limit, what, c.want)
	st := m.finish()
	e.expectRolledBack(c.class, "victim")
	record(resultRow{Case: c.name, Stop: stop, Outcome: outcome, Tenant: st})
}

var (
	infiniteLoop = fetchRunaway{name: "infinite loop", class: "loop", wat: "loop.wat",
		cfg: host.Config{EventTimeout: eventTimeout}, want: "fetch exceeded the event time limit of 300ms"}
	exponentialRecursion = fetchRunaway{name: "loop-free exponential recursion (fib(60))", class: "fib", wat: "fib.wat",
		cfg: host.Config{EventTimeout: eventTimeout}, want: "fetch exceeded the event time limit of 300ms"}
	// a loop of 1 MiB copies by a host function (result_read), each one fuel unit for the
	// guest and tens of microseconds for the host; stopped by the host functions' own deadline
	// check (without it: a minute late)
	hostCallLoop = fetchRunaway{name: "loop of 1 MiB host-function copies (host-call bound)", class: "hostcalls", wat: "hostcallloop.wat",
		cfg: host.Config{EventTimeout: eventTimeout}, want: "fetch exceeded the event time limit of 300ms"}
	// the infinite loop under a 300 ms CPU limit per event and a 20 s event timeout: stopped by
	// its CPU time, measured on its thread's clock
	cpuLimit = fetchRunaway{name: "infinite loop under a CPU limit (20 s event timeout)", class: "loop", wat: "loop.wat",
		cfg:   host.Config{EventTimeout: 20 * time.Second, EventCPU: eventTimeout},
		limit: eventTimeout, what: "CPU limit", want: "fetch exceeded the CPU time limit of 300ms per event",
		outcome: "500 `fetch exceeded the CPU time limit of 300ms per event (used …)`, rolled back"}
)

// testStartLoop: a module whose start function never returns, under a CPU limit and a much
// longer event timeout: the CPU limit stops it (before, the start function ran before the
// instance was attached to its event and only the 20 s timeout stopped it).
func testStartLoop(t *testing.T) {
	e := newEnv(t, host.Config{EventTimeout: 20 * time.Second, EventCPU: eventTimeout})
	e.load("startloop", assemble(t, "startloop.wat"))
	m := e.startTenant()
	stop := runawayLimit(e, "startloop", "victim", 3, eventTimeout, "CPU limit", "start function exceeded the CPU time limit of 300ms per event")
	st := m.finish()
	record(resultRow{Case: "start function that never returns (CPU limit 300 ms, 20 s timeout)", Stop: stop,
		Outcome: "500 `start function exceeded the CPU time limit of 300ms per event (used …)`", Tenant: st})
}

func testInitLoop(t *testing.T) {
	e := newEnv(t, host.Config{EventTimeout: eventTimeout})
	e.load("initloop", assemble(t, "initloop.wat"))
	m := e.startTenant()
	stop := runaway(e, "initloop", "victim", 5, "init exceeded the event time limit of 300ms")
	st := m.finish()
	if v, ok := e.stored("initloop", "victim", "v"); ok {
		t.Errorf("the looping constructor's write was kept: v = %q", v)
	}
	record(resultRow{Case: "constructor that never returns", Stop: stop,
		Outcome: "500 `init exceeded the event time limit of 300ms`, rolled back", Tenant: st})
}

// testUnboundedRecursion: the recursion hits the call depth limit (host.Config.MaxCallDepth,
// counted by the fuel instrumentation) and traps, the host survives, the write is rolled back.
// The stack of a recursing guest lives on the host (wazero grows it up to its own ceiling, not
// bounded by MemoryLimitPages), so the test also measures the host's memory for one recursing
// object and for several at once: the depth limit must keep it small.
func testUnboundedRecursion(t *testing.T) {
	e := newEnv(t, host.Config{EventTimeout: 60 * time.Second})
	e.load("recursion", assemble(t, "recursion.wat"))
	const parallel = 4
	for i := 0; i < parallel; i++ {
		e.must("PUT", fmt.Sprintf("/recursion/victim%d/", i), 204)
	}
	m := e.startTenant()
	rss := watchRSS(t)
	var r reply
	attacks := repeatFor(time.Second, func() {
		var err error
		if r, err = e.do("POST", "/recursion/victim0/"); err != nil {
			t.Fatal(err)
		}
		e.expectFailure(r, "recursion", "victim0", "fetch trapped", "call depth limit of 10000 frames exceeded")
	})
	one := rss.end()
	t.Logf("one recursing object, %d times in a row: trapped after %s (the last); peak resident memory +%.0f MiB", attacks, ms(r.took), one)

	// several objects recursing at once
	rss = watchRSS(t)
	var wg sync.WaitGroup
	replies := make([]reply, parallel)
	for i := 0; i < parallel; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := e.do("POST", fmt.Sprintf("/recursion/victim%d/", i))
			if err != nil {
				t.Error(err)
			}
			replies[i] = r
		}()
	}
	wg.Wait()
	many := rss.end()
	st := m.finish()
	var slowest time.Duration
	for i, r := range replies {
		e.expectFailure(r, "recursion", fmt.Sprintf("victim%d", i), "fetch trapped", "call depth limit of 10000 frames exceeded")
		slowest = max(slowest, r.took)
	}
	t.Logf("%d objects recursing at once: all trapped within %s; peak resident memory +%.0f MiB", parallel, ms(slowest), many)
	for i := 0; i < parallel; i++ {
		e.expectRolledBack("recursion", fmt.Sprintf("victim%d", i))
	}
	record(resultRow{Case: "unbounded recursion", Stop: fmt.Sprintf("call depth limit (10,000 frames) after %s (%d at once: %s)", ms(r.took), parallel, ms(slowest)),
		Outcome: fmt.Sprintf("500 `fetch trapped: call depth limit of 10000 frames exceeded (unbounded recursion?)`, rolled back; peak RSS +%.0f MiB (1 object), +%.0f MiB (%d at once)", one, many, parallel), Tenant: st})
	// A guest's call stack is host memory outside MemoryLimitPages: it must stay bounded too.
	const limitMiB = 200
	if many > limitMiB {
		t.Errorf("%d objects recursing at once grew the host's resident memory by %.0f MiB (one: %.0f MiB), over %d MiB: the call depth limit should keep a guest's call stack (host memory) small", parallel, many, one, limitMiB)
	}
}

// testDeepRecursionHeld: a recursion 9,000 calls deep (just under the 10,000-frame limit) that
// returns normally. Nothing fails, so the instance stays live (until idle eviction), and with it
// whatever host memory the call stack took. Four such idle instances must not hold more than
// 100 MiB of the host's memory.
func testDeepRecursionHeld(t *testing.T) {
	e := newEnv(t, host.Config{EventTimeout: 60 * time.Second, IdleTimeout: 2 * time.Second})
	e.load("deeprecursion", assemble(t, "deeprecursion.wat"))
	const objects = 4
	m := e.startTenant()
	heap0 := heapInUse()
	rss0 := procStatusKB(t, "VmRSS")
	var slowest time.Duration
	for i := 0; i < objects; i++ {
		r := e.must("POST", fmt.Sprintf("/deeprecursion/o%d/", i), 204)
		slowest = max(slowest, r.took)
	}
	st := m.finish()
	// keep the four instances warm and measure what they hold after a full collection
	for i := 0; i < objects; i++ {
		e.must("GET", fmt.Sprintf("/deeprecursion/o%d/", i), 200)
	}
	held := (float64(heapInUse()) - float64(heap0)) / (1 << 20)
	heldRSS := float64(procStatusKB(t, "VmRSS")-rss0) / 1024
	t.Logf("%d objects that recursed 9,000 deep (each answered within %s) hold +%.0f MiB of Go heap, +%.0f MiB resident, while their instances live", objects, ms(slowest), held, heldRSS)
	// after idle eviction the memory is released
	waitFor(t, "idle eviction", func() bool { return e.rt.Stats().LiveInstances == 0 })
	after := (float64(heapInUse()) - float64(heap0)) / (1 << 20)
	t.Logf("after their eviction: %+.0f MiB of Go heap", after)
	record(resultRow{Case: "deep recursion that returns (9,000 calls, under the limit)", Stop: fmt.Sprintf("answered 204 within %s", ms(slowest)),
		Outcome: fmt.Sprintf("%d live instances hold +%.0f MiB of host heap until evicted (%+.0f MiB after)", objects, held, after), Tenant: st})
	// An idle instance costs 28 KB to 1.6 MB (README); four of them holding 100 MiB is wrong.
	if held > 100 {
		t.Errorf("%d idle instances that once recursed 9,000 calls deep hold %.0f MiB of host memory (limit 100 MiB): wazero keeps each exported function's grown call stack for the life of the instance", objects, held)
	}
}

// heapInUse is the Go heap in use after a full collection.
func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

func testMemoryBomb(t *testing.T) {
	const pages = 256 // 16 MiB
	e := newEnv(t, host.Config{MemoryLimitPages: pages, EventTimeout: 10 * time.Second})

	// A module whose declared minimum is above the limit never gets memory.
	if _, err := e.rt.LoadClass(t.Context(), "hugememory", "testdata/hugememory.wat", assemble(t, "hugememory.wat")); err == nil {
		// Loaded: then instantiating it must fail with a clear error instead.
		r := e.must("GET", "/hugememory/x/", 500)
		if !strings.Contains(r.err.Error, "memory") {
			t.Errorf("a module declaring 4096 pages with a limit of %d: error %q does not mention its memory", pages, r.err.Error)
		}
		t.Logf("module declaring 4096 pages: loaded, first event failed: %s", r.err.Error)
	} else {
		if !strings.Contains(err.Error(), "memory") || !strings.Contains(err.Error(), "hugememory") {
			t.Errorf("a module declaring 4096 pages: load error %q does not name the class and its memory", err)
		}
		t.Logf("module declaring 4096 pages refused at load: %v", err)
	}

	e.load("membomb", assemble(t, "membomb.wat"))
	const objects = 4
	for i := 0; i < objects; i++ {
		e.must("PUT", fmt.Sprintf("/membomb/victim%d/", i), 204)
	}
	m := e.startTenant()
	rss := watchRSS(t)
	var mu sync.Mutex
	var worst time.Duration
	// two objects at a time, for at least a second
	bombs := 0
	repeatFor(time.Second, func() {
		for i := 0; i < objects; i += 2 {
			bombs += 2
			var wg sync.WaitGroup
			for j := i; j < i+2; j++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					name := fmt.Sprintf("victim%d", j)
					r, err := e.do("POST", "/membomb/"+name+"/")
					if err != nil {
						t.Error(err)
						return
					}
					e.expectFailure(r, "membomb", name, "fetch trapped",
						fmt.Sprintf("memory.grow returned -1; memory size in pages: %d", pages), "out of bounds memory access")
					mu.Lock()
					worst = max(worst, r.took)
					mu.Unlock()
				}()
			}
			wg.Wait()
		}
	})
	grew := rss.end()
	st := m.finish()
	t.Logf("%d memory bombs (2 at a time, %d pages each): answered within %s; peak resident memory +%.0f MiB", bombs, pages, ms(worst), grew)
	if grew > 200 {
		t.Errorf("memory bombs limited to %d pages grew the host's resident memory by %.0f MiB (limit 200 MiB)", pages, grew)
	}
	for i := 0; i < objects; i++ {
		e.expectRolledBack("membomb", fmt.Sprintf("victim%d", i))
	}
	record(resultRow{Case: "memory bomb (limit 256 pages = 16 MiB)", Stop: fmt.Sprintf("memory.grow -1 at 256 pages, then trap; answered within %s", ms(worst)),
		Outcome: fmt.Sprintf("500 `fetch trapped: memory.grow returned -1; memory size in pages: 256: ... out of bounds memory access`, rolled back; peak RSS +%.0f MiB (%d bombs, 2 at once); a declared minimum of 4096 pages is refused", grew, bombs), Tenant: st})
}

func testTableBomb(t *testing.T) {
	const limit = 1 << 20
	e := newEnv(t, host.Config{MaxTableElems: limit, EventTimeout: 10 * time.Second})

	_, err := e.rt.LoadClass(t.Context(), "hugetable", "testdata/hugetable.wat", assemble(t, "hugetable.wat"))
	if err == nil {
		t.Fatal("a module declaring a table of 10,000,000 elements was loaded")
	}
	for _, w := range []string{"class hugetable", "table", "10000000", "1048576"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("load error %q does not mention %q", err, w)
		}
	}
	t.Logf("table of 10^7 elements refused at load: %v", err)
	if e.rt.Class("hugetable") != nil {
		t.Error("the refused class is registered")
	}

	e.load("tablebomb", assemble(t, "tablebomb.wat"))
	e.must("PUT", "/tablebomb/victim/", 204)
	m := e.startTenant()
	rss := watchRSS(t)
	var worst time.Duration
	bombs := repeatFor(time.Second, func() {
		r, err := e.do("POST", "/tablebomb/victim/")
		if err != nil {
			t.Fatal(err)
		}
		e.expectFailure(r, "tablebomb", "victim", fmt.Sprintf("fetch returned error code 1: table.grow returned -1; table size in elements: %d", limit))
		worst = max(worst, r.took)
	})
	grew := rss.end()
	st := m.finish()
	t.Logf("%d table bombs: answered within %s; peak resident memory +%.0f MiB", bombs, ms(worst), grew)
	if grew > 200 {
		t.Errorf("table bombs limited to %d elements grew the host's resident memory by %.0f MiB (limit 200 MiB)", limit, grew)
	}
	e.expectRolledBack("tablebomb", "victim")
	record(resultRow{Case: "table bomb", Stop: fmt.Sprintf("table of 10^7 refused at load; table.grow -1 at 2^20 elements, answered within %s", ms(worst)),
		Outcome: fmt.Sprintf("load error names the table and the limit; 500 `table.grow returned -1; table size in elements: 1048576`, rolled back; peak RSS +%.0f MiB", grew), Tenant: st})
}

func testInitTrap(t *testing.T) {
	e := newEnv(t, host.Config{EventTimeout: eventTimeout})
	e.load("inittrap", assemble(t, "inittrap.wat"))
	m := e.startTenant()
	before := e.rt.Stats()
	const n = 100
	start := time.Now()
	var slowest time.Duration
	for i := 0; i < n; i++ {
		r, err := e.do("POST", "/inittrap/victim/")
		if err != nil {
			t.Fatal(err)
		}
		e.expectFailure(r, "inittrap", "victim", "init trapped: constructor refuses to start", "unreachable")
		slowest = max(slowest, r.took)
	}
	took := time.Since(start)
	st := m.finish()
	after := e.rt.Stats()
	t.Logf("%d requests to an object whose constructor traps: %s in all (slowest %s)", n, took.Round(time.Millisecond), ms(slowest))
	if took > 20*time.Second {
		t.Errorf("%d failing requests took %s", n, took)
	}
	// One instance attempt per request, no retries: the tenant creates at most one instance per
	// counter.
	if created := after.Created - before.Created; created < n || created > n+tenantClients*tenantObjects {
		t.Errorf("%d requests created %d instances, want %d (plus at most %d for the tenant)", n, created, n, tenantClients*tenantObjects)
	}
	// No crash loop: once the requests stop, the process is idle.
	cpu0 := cpuTime()
	time.Sleep(500 * time.Millisecond)
	idle := cpuTime() - cpu0
	t.Logf("CPU used in the 500 ms after the last request: %s", ms(idle))
	if idle > 250*time.Millisecond {
		t.Errorf("the process used %s of CPU in the 500 ms after the requests stopped: a retry loop?", ms(idle))
	}
	if v, ok := e.stored("inittrap", "victim", "v"); ok {
		t.Errorf("the trapping constructor's write was kept: v = %q", v)
	}
	record(resultRow{Case: "trap in init", Stop: fmt.Sprintf("%d requests in %s (slowest %s)", n, took.Round(time.Millisecond), ms(slowest)),
		Outcome: fmt.Sprintf("each 500 `init trapped: constructor refuses to start: ... unreachable`, write rolled back, one instance attempt per request, %s CPU in the next 500 ms", ms(idle)), Tenant: st})
}

var usedRE = regexp.MustCompile(`\(used ([0-9.]+(?:ns|µs|ms|s))\)`)

// cpuUsed reads the CPU time an event was charged from its error ("... (used 301.2ms)").
func cpuUsed(t *testing.T, msg string) time.Duration {
	t.Helper()
	m := usedRE.FindStringSubmatch(msg)
	if m == nil {
		t.Fatalf("error %q does not say the CPU used", msg)
	}
	d, err := time.ParseDuration(m[1])
	if err != nil {
		t.Fatalf("error %q: %v", msg, err)
	}
	return d
}
