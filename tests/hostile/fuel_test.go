package hostile

import (
	"fmt"
	"testing"
	"time"

	"github.com/dowasm/dowasm/host"
)

// Fuel metering holes (issue 12): guests whose cost the fuel meter (host/fuel) did not see. A
// call to a function without loops or calls cost one unit of fuel however much code it ran, so
// a loop calling a large one ran on for tens of seconds past its deadline; and every ref.func a
// guest executed allocated host memory that the instance kept.

// fuelBigRounds is how often testdata/fuelbig.wat repeats its round of straight-line code (13
// bytes each): about 100 KB.
const fuelBigRounds = 8000

// testFuelStraightLine: a loop calling a function of 100 KB of straight-line code (no loop, no
// call) for ever, under a 300 ms event timeout. The meter charges a call by the code the callee
// runs, so the guest is stopped within a few ms of its deadline, like the infinite loop; before,
// each call cost one unit of fuel (a refill of 2^20 units lasted 10 s or more).
func testFuelStraightLine(t *testing.T) {
	wasm := expandEach(t, "fuelbig.wat", ";; each round", fuelBigRounds)
	t.Logf("fuelbig.wat: a module of %d bytes", len(wasm))
	if len(wasm) < 100_000 {
		t.Fatalf("the guest has %d bytes, want a function of about 100 KB", len(wasm))
	}
	e := newEnv(t, host.Config{EventTimeout: eventTimeout})
	e.load("fuelbig", wasm)
	e.must("PUT", "/fuelbig/victim/", 204)
	m := e.startTenant()
	stop := runaway(e, "fuelbig", "victim", 5, "fetch exceeded the event time limit of 300ms")
	st := m.finish()
	e.expectRolledBack("fuelbig", "victim")
	record(resultRow{Case: "loop calling a 100 KB function without loops or calls", Stop: stop,
		Outcome: "500 `fetch exceeded the event time limit of 300ms`, rolled back", Tenant: st})
}

// testFuelRefFunc: an object whose requests each execute ref.func 500,000 times and succeed,
// so its instance stays live. In wazero each ref.func executed allocates a function instance
// kept as long as the instance (about 31 bytes: 15 MiB a request); the instrumented guest reads
// the reference from a global instead, and the host's heap stays flat.
func testFuelRefFunc(t *testing.T) {
	const requests = 20
	e := newEnv(t, host.Config{EventTimeout: 10 * time.Second})
	e.load("fuelreffunc", assemble(t, "fuelreffunc.wat"))
	e.must("GET", "/fuelreffunc/victim/", 200) // start the instance
	m := e.startTenant()
	heap0 := heapInUse()
	rss := watchRSS(t)
	start := time.Now()
	var slowest time.Duration
	for i := 0; i < requests; i++ {
		r := e.must("POST", "/fuelreffunc/victim/", 204)
		slowest = max(slowest, r.took)
	}
	took := time.Since(start)
	grew := rss.end()
	st := m.finish()
	e.must("GET", "/fuelreffunc/victim/", 200) // the instance is still live
	held := (float64(heapInUse()) - float64(heap0)) / (1 << 20)
	t.Logf("%d requests of 500,000 ref.func each in %s (slowest %s): the live instance holds %+.1f MiB of Go heap; peak resident memory %+.0f MiB",
		requests, took.Round(time.Millisecond), ms(slowest), held, grew)
	record(resultRow{Case: fmt.Sprintf("ref.func executed %d million times by one live instance", requests/2),
		Stop:    fmt.Sprintf("each request answered 204 (slowest %s)", ms(slowest)),
		Outcome: fmt.Sprintf("the live instance holds %+.1f MiB of host heap; peak RSS %+.0f MiB", held, grew), Tenant: st})
	// Uninstrumented, the instance would hold about 300 MiB.
	if held > 30 {
		t.Errorf("%d million ref.func executed by a live instance hold %.0f MiB of host heap (limit 30 MiB): each ref.func allocates a function instance", requests/2, held)
	}
}
