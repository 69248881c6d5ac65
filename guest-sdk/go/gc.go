//go:build !tinygo

package dowasm

import (
	"runtime"
	"runtime/metrics"
)

// Standard Go in a wasip1 reactor cannot finish a background collection between calls (no
// goroutine runs while the host is not calling in), so a long-lived instance's heap only grows.
// The SDK collects explicitly, but only after enough allocation: a full collection costs about
// 1.5 ms here, so collecting every N events regardless would dominate small handlers.
const (
	gcCheckEvery = 16      // events between looks at the allocation counter (~1 µs each)
	gcAfterBytes = 8 << 20 // collect once this much was allocated since the last collection
)

var gcSample = []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}
var gcLast uint64

func maybeGC(events uint32) {
	if events%gcCheckEvery != 0 {
		return
	}
	metrics.Read(gcSample)
	allocs := gcSample[0].Value.Uint64()
	if allocs-gcLast >= gcAfterBytes {
		runtime.GC()
		metrics.Read(gcSample)
		gcLast = gcSample[0].Value.Uint64()
	}
}
