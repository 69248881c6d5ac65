package host

import (
	"context"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dowasm/dowasm/abi"
	"github.com/dowasm/dowasm/id"
)

// The meter counts the thread's CPU, not the time it waits: once a segment has run long enough
// to be read precisely, a sleep adds (almost) nothing, and nothing is counted while paused. A
// short segment is charged its wall time (an upper bound).
func TestCPUMeterCountsCPUNotWaits(t *testing.T) {
	m := cpuMeter{on: true}
	m.resume()
	spin(2 * preciseAfter)
	if m.exceeds(time.Hour) || !m.precise {
		t.Fatalf("after %s of spinning the meter should read the thread's clock: %+v", 2*preciseAfter, m)
	}
	time.Sleep(200 * time.Millisecond)
	if m.exceeds(50 * time.Millisecond) {
		t.Errorf("200 ms asleep counted: %s of CPU", m.total())
	}
	m.pause()
	before := m.total()
	spin(50 * time.Millisecond)
	if got := m.total(); got != before {
		t.Errorf("a paused meter moved from %s to %s", before, got)
	}
	// Spinning accrues CPU (however busy the machine: the loop runs until it has 50 ms).
	m.resume()
	giveUp := time.Now().Add(20 * time.Second)
	for !m.exceeds(before + 50*time.Millisecond) {
		if time.Now().After(giveUp) {
			t.Fatalf("20 s of spinning never reached 50 ms of CPU: %s", m.total()-before)
		}
	}
	m.pause()
	if got := m.total() - before; got < 50*time.Millisecond || got > time.Second {
		t.Errorf("spinning to 50 ms of CPU was charged %s", got)
	}
	// short segments: charged their wall time
	m = cpuMeter{on: true}
	m.resume()
	time.Sleep(200 * time.Microsecond)
	m.pause()
	if m.used < 200*time.Microsecond || m.used > preciseAfter+time.Second {
		t.Errorf("a 200 µs segment was charged %s", m.used)
	}
}

func spin(d time.Duration) {
	for end := time.Now().Add(d); time.Now().Before(end); {
	}
}

// A class's CPU limit stops a guest that computes past it (naming the limit, rolling back) while
// the event timeout is far away; time spent waiting on a call to another object is not counted.
func TestEventCPULimit(t *testing.T) {
	rt := newTestRuntime(t, Config{EventTimeout: 20 * time.Second})
	loadProbe(t, rt) // "probe": no CPU limit
	limited, err := rt.DeployClass(context.Background(), "limited", "tests/guests/probe", guestWasm(t, "tests/guests/probe"), ClassLimits{EventCPU: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if l := limited.Limits(); l.EventCPU != 100*time.Millisecond {
		t.Fatalf("limit not applied: %+v", l)
	}

	start := time.Now()
	_, body, err := do(limited, "a", "/sleep?ms=3000") // spins on the clock for 3 s of CPU
	if err == nil || !strings.Contains(err.Error(), "fetch exceeded the CPU time limit of 100ms per event (used ") {
		t.Fatalf("3 s of compute under a 100 ms CPU limit: %q %v", body, err)
	}
	t.Logf("%v; stopped after %s", err, time.Since(start).Round(time.Millisecond))
	if got := mustDo(t, limited, "a", "/incr"); got != "1" {
		t.Fatalf("after the CPU limit: incr = %q", got)
	}

	// The caller (CPU limit 100 ms) waits 400 ms for a callee of the unlimited class: fine.
	start = time.Now()
	if got := mustDo(t, limited, "a", "/call-rpc?class=probe&name=b&method=sleep&arg=400"); got != "ok slept" {
		t.Fatalf("a call taking longer than the caller's CPU limit: %q", got)
	}
	if d := time.Since(start); d < 400*time.Millisecond {
		t.Fatalf("the callee slept only %s", d)
	}
	// The callee of the limited class is held to its own limit; the caller hears why.
	if got := mustDo(t, limited, "a", "/call-rpc?class=limited&name=c&method=sleep&arg=3000"); !strings.Contains(got, "limited/c: rpc exceeded the CPU time limit of 100ms per event") {
		t.Fatalf("a limited callee computing 3 s: %q", got)
	}
}

// The cost of metering CPU per event: warm events with and without a class CPU limit, one
// object after another and 64 objects in parallel (the Go ticket example, GET / reads a key).
//
//	go test -run '^$' -bench BenchmarkCPULimitCost -count 6 ./host/
func BenchmarkCPULimitCost(b *testing.B) {
	for _, par := range []bool{false, true} {
		for _, limit := range []time.Duration{0, 5 * time.Second} {
			name := "serial"
			if par {
				name = "parallel64"
			}
			name += "/cpu_limit=off"
			if limit > 0 {
				name = strings.TrimSuffix(name, "off") + "on"
			}
			b.Run(name, func(b *testing.B) {
				rt := newTestRuntime(b, Config{EventCPU: limit})
				c := loadExample(b, rt, "ticket")
				ids := make([]id.ID, 64)
				for i := range ids {
					name := "w" + strconv.Itoa(i)
					ids[i] = c.Namespace().FromName(name)
					if _, err := c.Fetch(context.Background(), ids[i], name, &abi.Request{Method: "POST", Path: "/claim"}); err != nil {
						b.Fatal(err)
					}
				}
				req := &abi.Request{Method: "GET", Path: "/"}
				b.ReportAllocs()
				b.ResetTimer()
				if !par {
					for i := 0; i < b.N; i++ {
						if resp, err := c.Fetch(context.Background(), ids[0], "w0", req); err != nil || resp.Status != 200 {
							b.Fatal(resp, err)
						}
					}
					return
				}
				var next atomic.Int64
				b.SetParallelism(64 / max(1, runtime.GOMAXPROCS(0)))
				b.RunParallel(func(pb *testing.PB) {
					i := int(next.Add(1)) % len(ids)
					for pb.Next() {
						if resp, err := c.Fetch(context.Background(), ids[i], "w"+strconv.Itoa(i), req); err != nil || resp.Status != 200 {
							b.Error(resp, err)
							return
						}
					}
				})
			})
		}
	}
}
