//go:build !tinygo

package dowasm

import "runtime"

// Garbage collection policy for standard Go.
//
// In a wasip1 reactor nothing runs between calls into the module, and inside a call the Go
// runtime's background GC workers only get the CPU when the handler blocks, which it never does:
// cycles the runtime starts on its own advance only through allocation assists, its minimum heap
// goal is 4 MiB, and under heavy allocation (on a slow host) a heap can outgrow its goal before a
// cycle completes. Left alone, an instance of the counter example settles at about 7 MiB of
// linear memory, and heaps whose live part grows overshoot further. runtime.GC() instead runs a
// complete cycle (it blocks, so the background workers run).
//
// So the SDK collects explicitly, GOGC-style: every gcCheckEvery events (or sooner once the SDK
// itself has copied gcMinBytes of requests, results and response bodies) it reads the allocation
// counter, and it runs runtime.GC() once the bytes allocated since the last collection reach
// max(gcMinBytes, the live heap after that collection). The check costs ~5 µs
// (runtime.ReadMemStats; runtime/metrics would cost 1.6 µs but adds 0.1 MB to every module),
// amortised to ~0.3 µs per event; a collection costs ~0.35 ms on a small heap and ~3 ms per MiB
// of live heap, so scaling the threshold with the live heap keeps the cost per allocated byte
// constant, while small objects stay near 4 MiB of linear memory. (Linear memory never shrinks:
// what matters is the peak.) Measurements: README.md, "Memory and garbage collection".
const (
	gcCheckEvery = 16      // events between looks at the allocation counter
	gcMinBytes   = 1 << 20 // collect after at least this much allocation
)

var gcs struct {
	events    int
	staged    int // bytes noted by noteAlloc since the last look
	lastTotal uint64
	lastLive  uint64
	stats     runtime.MemStats
}

// noteAlloc counts bytes the SDK copied: staged results (requests, values, listings) and
// response bodies.
func noteAlloc(n int) { gcs.staged += n }

// afterEvent runs after the constructor and after every successful event.
func afterEvent() {
	gcs.events++
	if gcs.events < gcCheckEvery && gcs.staged < gcMinBytes {
		return
	}
	gcs.events, gcs.staged = 0, 0
	runtime.ReadMemStats(&gcs.stats)
	if gcs.stats.TotalAlloc-gcs.lastTotal < max(gcMinBytes, gcs.lastLive) {
		return
	}
	runtime.GC()
	runtime.ReadMemStats(&gcs.stats)
	gcs.lastTotal, gcs.lastLive = gcs.stats.TotalAlloc, gcs.stats.HeapAlloc
}
