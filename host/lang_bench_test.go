package host

import (
	"context"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dowasm/dowasm/abi"
	"github.com/dowasm/dowasm/internal/testutil"
	"github.com/dowasm/dowasm/storage"
	"github.com/dowasm/dowasm/toolchain"
)

// benchLanguages is every guest language, each building the counter example.
var benchLanguages = []struct {
	kind toolchain.Kind
	dir  string
}{
	{toolchain.Go, "examples/counter/go"},
	{toolchain.TinyGo, "examples/counter/go"},
	{toolchain.Rust, "examples/counter/rust"},
}

// BenchmarkLanguage measures, per guest language, the counter example's module size, cold
// compile (no compilation cache), time to create an instance (instantiate, init, first event of
// a new object) and memory per live instance, wake of an evicted object to its first response,
// and warm events on one object:
//
//	go test -run '^$' -bench BenchmarkLanguage -benchtime 2s ./host/
func BenchmarkLanguage(b *testing.B) {
	for _, l := range benchLanguages {
		wasm := testutil.Guest(b, l.dir, l.kind)
		b.Run(string(l.kind)+"/compile", func(b *testing.B) {
			b.ReportMetric(float64(len(wasm)), "module-bytes")
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				dir := b.TempDir()
				rt, err := New(context.Background(), Config{DataDir: dir, CacheDir: dir + "/wazero"})
				if err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				if _, err := rt.LoadClass(context.Background(), "counter", l.dir, wasm); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				rt.Close(context.Background())
				b.StartTimer()
			}
		})
		b.Run(string(l.kind)+"/instance-memory", func(b *testing.B) {
			// N live instances of distinct objects: resident memory and Go heap per instance.
			rt := newTestRuntime(b, Config{})
			c, err := rt.LoadClass(context.Background(), "counter", l.dir, wasm)
			if err != nil {
				b.Fatal(err)
			}
			const n = 200
			req := &abi.Request{Method: "GET", Path: "/"}
			fetch := func(name string) {
				if _, err := c.Fetch(context.Background(), c.Namespace().FromName(name), name, req); err != nil {
					b.Fatal(err)
				}
			}
			fetch("warmup")
			runtime.GC()
			rss0, heap0 := rss(), heapInUse()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				for j := 0; j < n; j++ {
					fetch("m" + strconv.Itoa(i) + "-" + strconv.Itoa(j))
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/new-instance")
			runtime.GC()
			live := float64(rt.Stats().LiveInstances - 1)
			b.ReportMetric(float64(rss()-rss0)/live, "rss-bytes/instance")
			b.ReportMetric(float64(heapInUse()-heap0)/live, "go-heap-bytes/instance")
		})
		b.Run(string(l.kind)+"/wake", func(b *testing.B) {
			rt := newTestRuntime(b, Config{IdleTimeout: time.Millisecond})
			c, err := rt.LoadClass(context.Background(), "counter", l.dir, wasm)
			if err != nil {
				b.Fatal(err)
			}
			benchWake(b, c, rt, "/")
		})
		b.Run(string(l.kind)+"/warm-read", func(b *testing.B) {
			rt := newTestRuntime(b, Config{})
			c, err := rt.LoadClass(context.Background(), "counter", l.dir, wasm)
			if err != nil {
				b.Fatal(err)
			}
			id := c.Namespace().FromName("w")
			req := &abi.Request{Method: "GET", Path: "/"}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if resp, err := c.Fetch(context.Background(), id, "w", req); err != nil || resp.Status != 200 {
					b.Fatal(resp, err)
				}
			}
		})
		b.Run(string(l.kind)+"/warm-write-relaxed", func(b *testing.B) {
			rt := newTestRuntime(b, Config{Durability: storage.Relaxed})
			c, err := rt.LoadClass(context.Background(), "counter", l.dir, wasm)
			if err != nil {
				b.Fatal(err)
			}
			id := c.Namespace().FromName("w")
			req := &abi.Request{Method: "POST", Path: "/increment"}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if resp, err := c.Fetch(context.Background(), id, "w", req); err != nil || resp.Status != 200 {
					b.Fatal(resp, err)
				}
			}
		})
	}
}

// rss is the process's resident set size in bytes (Linux).
func rss() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

func heapInUse() int64 {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapInuse)
}
