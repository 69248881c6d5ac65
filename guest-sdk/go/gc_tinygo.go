//go:build tinygo

package dowasm

import "runtime"

// TinyGo's collector runs synchronously inside allocations and is cheap for small heaps; a
// periodic collection still returns memory promptly after a burst.
func maybeGC(events uint32) {
	if events%64 == 0 {
		runtime.GC()
	}
}
