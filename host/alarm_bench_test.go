package host

import (
	"context"
	"os"
	"runtime/pprof"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/dowasm/dowasm/abi"
	"github.com/dowasm/dowasm/internal/testutil"
	"github.com/dowasm/dowasm/storage"
	"github.com/dowasm/dowasm/toolchain"
)

// setAlarms sets an alarm on objects o0..o(n-1) of c, each at the time at(i) returns, from 16
// goroutines.
func setAlarms(b *testing.B, c *Class, n int, at func(i int) time.Time) {
	var wg sync.WaitGroup
	work := make(chan int)
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				name := "o" + strconv.Itoa(i)
				q := "t=" + strconv.FormatInt(at(i).UnixMilli(), 10)
				resp, err := c.Fetch(context.Background(), c.ns.FromName(name), name, &abi.Request{Method: "POST", Path: "/alarm-set", Query: q})
				if err != nil || string(resp.Body) != "0" {
					b.Errorf("object %d: %v %v", i, resp, err)
				}
			}
		}()
	}
	for i := 0; i < n; i++ {
		work <- i
	}
	close(work)
	wg.Wait()
}

func probeClass(b *testing.B, rt *Runtime) *Class {
	src := "tests/guests/probe"
	c, err := rt.LoadClass(context.Background(), "probe", src, testutil.Guest(b, src, toolchain.TinyGo))
	if err != nil {
		b.Fatal(err)
	}
	return c
}

// BenchmarkAlarmBacklog: n objects whose alarms all fell due while the host was "down" (a
// manual clock jumps past them): how fast the backlog drains, in alarms per second (each one
// wakes its object, runs the TinyGo probe's handler, commits and updates the index). Run once:
//
//	go test -run '^$' -bench AlarmBacklog -benchtime 1x ./host/
func BenchmarkAlarmBacklog(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run("objects="+strconv.Itoa(n), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				clock := NewManualClock(alarmEpoch)
				rt := newTestRuntime(b, Config{Clock: clock, Durability: storage.Relaxed, MaxInstances: 1024, MaxOpenDatabases: benchOpenDBs})
				c := probeClass(b, rt)
				setAlarms(b, c, n, func(i int) time.Time { return alarmEpoch.Add(time.Hour + time.Duration(i)*time.Millisecond) })
				b.ResetTimer()
				if p := os.Getenv("DOWASM_BENCH_CPUPROFILE"); p != "" {
					f, _ := os.Create(p)
					pprof.StartCPUProfile(f)
					defer pprof.StopCPUProfile()
				}
				start := time.Now()
				clock.Advance(2 * time.Hour)
				for rt.Stats().AlarmRuns < int64(n) {
					time.Sleep(time.Millisecond)
				}
				b.ReportMetric(float64(n)/time.Since(start).Seconds(), "alarms/s")
				b.StopTimer()
			}
		})
	}
}

// BenchmarkAlarmLateness: 400 alarms on 400 objects spread over the next 2 s of the real clock;
// how late each handler starts (p50, p99), idle and while 8 clients keep 64 other objects busy
// with durable writes.
//
//	go test -run '^$' -bench AlarmLateness -benchtime 1x ./host/
func BenchmarkAlarmLateness(b *testing.B) {
	for _, load := range []bool{false, true} {
		name := "idle"
		if load {
			name = "http-load"
		}
		b.Run(name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				var mu sync.Mutex
				var late []time.Duration
				rt := newTestRuntime(b, Config{OnAlarm: func(_ string, scheduled, started time.Time) {
					mu.Lock()
					late = append(late, started.Sub(scheduled))
					mu.Unlock()
				}})
				c := probeClass(b, rt)
				const n = 400
				// create the objects first (database creation is not what is measured)
				setAlarms(b, c, n, func(int) time.Time { return time.Now().Add(time.Hour) })
				stop := make(chan struct{})
				var wg sync.WaitGroup
				var loadEvents int64
				if load {
					for w := 0; w < 8; w++ {
						wg.Add(1)
						go func(w int) {
							defer wg.Done()
							for j := 0; ; j++ {
								select {
								case <-stop:
									return
								default:
								}
								name := "load" + strconv.Itoa((w*8+j)%64)
								if _, err := c.Fetch(context.Background(), c.ns.FromName(name), name, &abi.Request{Method: "POST", Path: "/incr"}); err != nil {
									b.Error(err)
									return
								}
								mu.Lock()
								loadEvents++
								mu.Unlock()
							}
						}(w)
					}
				}
				b.ResetTimer()
				t0 := time.Now().Add(200 * time.Millisecond)
				setAlarms(b, c, n, func(i int) time.Time { return t0.Add(time.Duration(i) * 5 * time.Millisecond) })
				for rt.Stats().AlarmRuns < n {
					time.Sleep(time.Millisecond)
				}
				elapsed := time.Since(t0)
				close(stop)
				wg.Wait()
				b.StopTimer()
				sort.Slice(late, func(i, j int) bool { return late[i] < late[j] })
				b.ReportMetric(float64(late[len(late)/2].Microseconds())/1000, "p50-ms")
				b.ReportMetric(float64(late[len(late)*99/100].Microseconds())/1000, "p99-ms")
				if load {
					b.ReportMetric(float64(loadEvents)/elapsed.Seconds(), "load-events/s")
				}
			}
		})
	}
}

// benchOpenDBs is the handle pool of BenchmarkAlarmBacklog (0: the default).
var benchOpenDBs, _ = strconv.Atoi(os.Getenv("DOWASM_BENCH_OPEN_DBS"))
