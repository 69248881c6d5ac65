//go:build tinygo

package dowasm

import "runtime"

// TinyGo's collector runs synchronously inside an allocation when the heap is full (and grows the
// heap when a collection leaves less than a third of it free), so memory stays bounded without
// help; a collection every 64 events is a cheap extra. Measured over HTTP with TinyGo 0.39
// (20,000 events to one object): the counter example peaks at ~100 KiB of linear memory, ~2 MiB
// with 64 KiB request bodies; ticket and ratelimit at 0.4-1.3 MiB. Collecting every 64 events or
// never made no measurable difference to memory or time per event.
const gcEvery = 64

var gcEvents int

func noteAlloc(int) {}

func afterEvent() {
	gcEvents++
	if gcEvents >= gcEvery {
		gcEvents = 0
		runtime.GC()
	}
}
