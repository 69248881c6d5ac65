package host

import (
	"context"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dowasm/dowasm/abi"
	"github.com/dowasm/dowasm/storage"
)

// BenchmarkCall measures a call between objects against the floor of a direct event to the
// callee in the same run (Class.Fetch, no HTTP on either side), with the TinyGo probe:
//
//	direct:   a client event to b (RPC-equivalent work: /incr)
//	via-call: a client event to a whose handler makes one call_rpc to b (incr)
//	fan-out:  one event to a calling 100 objects in turn (/call-many?n=100); per call
//
//	go test -run '^$' -bench BenchmarkCall -benchtime 3000x ./host/
func BenchmarkCall(b *testing.B) {
	rt := newTestRuntime(b, Config{Durability: storage.Relaxed, MaxInstances: 512})
	c := probeClass(b, rt)
	fetch := func(name, pq string) time.Duration {
		path, q, _ := cut(pq)
		start := time.Now()
		resp, err := c.Fetch(context.Background(), c.ns.FromName(name), name, &abi.Request{Method: "POST", Path: path, Query: q})
		if err != nil || resp.Status != 200 {
			b.Fatal(resp, err)
		}
		return time.Since(start)
	}
	measure := func(b *testing.B, name, pq string) {
		fetch(name, pq) // warm
		lat := make([]time.Duration, 0, b.N)
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			lat = append(lat, fetch(name, pq))
		}
		b.StopTimer()
		sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
		b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
	}
	b.Run("direct", func(b *testing.B) { measure(b, "b", "/incr") })
	b.Run("via-call", func(b *testing.B) { measure(b, "a", "/call-rpc?name=b&method=incr") })
	b.Run("fan-out-100", func(b *testing.B) {
		fetch("front", "/call-many?n=100")
		b.ResetTimer()
		start := time.Now()
		for i := 0; i < b.N; i++ {
			fetch("front", "/call-many?n=100")
		}
		b.ReportMetric(float64(100*b.N)/time.Since(start).Seconds(), "calls/s")
	})
	b.Run("direct-100", func(b *testing.B) {
		b.ResetTimer()
		start := time.Now()
		for i := 0; i < b.N; i++ {
			for j := 0; j < 100; j++ {
				fetch("p"+strconv.Itoa(j), "/incr")
			}
		}
		b.ReportMetric(float64(100*b.N)/time.Since(start).Seconds(), "events/s")
	})
}

func cut(pq string) (string, string, bool) { return strings.Cut(pq, "?") }
