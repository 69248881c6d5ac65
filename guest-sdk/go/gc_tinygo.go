//go:build tinygo

package dowasm

import "runtime"

// TinyGo's collector runs synchronously inside an allocation when the heap is full, so memory
// stays bounded without help; a collection every 64 events returns memory to the free lists
// promptly after a burst and is cheap for the small heaps TinyGo objects have. (Unmeasured until
// the TinyGo build lands.)
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
