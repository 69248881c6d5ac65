package fuel_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// runaways are guests that never return on their own, one per shape that
// a meter must catch.
var runaways = []struct {
	name, wat, export string
	params            []uint64
}{
	{"infinite loop", "runaway", "spin", nil},
	{"loop-free recursion", "runaway", "fib", []uint64{60}},
	{"nested loops", "runaway", "nested", nil},
	{"loops in recursion", "runaway", "rec_loops", []uint64{60}},
	{"tail calls", "tailcall", "ping", []uint64{0}},
}

// maxStopLatency is how late after its deadline a guest may be stopped.
const maxStopLatency = 50 * time.Millisecond

// TestStopsRunaways runs each runaway guest with a deadline 50 ms away and
// a refill function that traps once the deadline has passed, and reports
// how long after the deadline the guest was stopped.
func TestStopsRunaways(t *testing.T) {
	for _, amount := range []int64{10_000, 1_000_000} {
		for _, g := range runaways {
			for _, o := range optionSets {
				t.Run(g.name+"/"+itoa(amount)+"/"+o.name, func(t *testing.T) {
					var refills int64
					rt := newRuntime(t, false, refillFunc(amount, &refills))
					mod := instantiate(t, rt, instrument(t, wat(t, g.wat), o.opts))
					ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
					defer cancel()
					deadline, _ := ctx.Deadline()
					_, err := mod.ExportedFunction(g.export).Call(ctx, g.params...)
					late := time.Since(deadline)
					if !errors.Is(err, errDeadline) {
						t.Fatalf("err = %v, want the refill function's trap", err)
					}
					t.Logf("stopped %v after the deadline; %d refills of %d", late.Round(time.Microsecond), refills, amount)
					if late > maxStopLatency {
						t.Errorf("stopped %v after the deadline, more than %v", late, maxStopLatency)
					}
				})
			}
		}
	}
}

func itoa(n int64) string {
	if n == 0 {
		return "0"
	}
	var b [20]byte
	i := len(b)
	for ; n > 0; n /= 10 {
		i--
		b[i] = byte('0' + n%10)
	}
	return string(b[i:])
}

// TestGCWhileRunaway checks that runtime.GC() completes while an
// instrumented guest spins in another goroutine: uninstrumented compiled
// code cannot be preempted, so a stop-the-world would wait for it forever.
// A process stuck that way cannot time itself out (every goroutine is
// stopped), so the scenario runs in a child process that the test kills
// after a timeout.
func TestGCWhileRunaway(t *testing.T) {
	if os.Getenv(gcChildEnv) != "" {
		gcChild(t)
		return
	}
	if testing.Short() {
		t.Skip("starts a child process")
	}
	wat(t, "runaway") // fail here, not in the child, if wasm-as is missing
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestGCWhileRunaway$", "-test.v")
	cmd.Env = append(os.Environ(), gcChildEnv+"=1")
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("the child process hung (runtime.GC() blocked by the guest?):\n%s", out)
	}
	if err != nil || !strings.Contains(string(out), gcChildOK) {
		t.Fatalf("child process: %v\n%s", err, out)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if strings.Contains(line, "runtime.GC") {
			t.Log(strings.TrimSpace(line))
		}
	}
}

const (
	gcChildEnv = "FUEL_TEST_GC_CHILD"
	gcChildOK  = "guest stopped after GC"
)

func gcChild(t *testing.T) {
	var stop atomic.Bool
	var refills atomic.Int64
	errStopped := errors.New("stopped by the test")
	rt := newRuntime(t, false, func(context.Context) int64 {
		refills.Add(1)
		if stop.Load() {
			panic(errStopped)
		}
		return 100_000
	})
	mod := instantiate(t, rt, instrument(t, wat(t, "runaway")))
	done := make(chan error, 1)
	go func() {
		_, err := mod.ExportedFunction("spin").Call(context.Background())
		done <- err
	}()
	for refills.Load() < 2 {
		time.Sleep(time.Millisecond)
	}
	start := time.Now()
	for i := 0; i < 3; i++ {
		runtime.GC()
	}
	t.Logf("3 x runtime.GC() took %v while the guest ran", time.Since(start))
	stop.Store(true)
	if err := <-done; !errors.Is(err, errStopped) {
		t.Fatalf("err = %v, want the refill function's trap", err)
	}
	t.Log(gcChildOK)
}
