package host

import (
	"fmt"
	"sync/atomic"
	"syscall"

	"github.com/tetratelabs/wazero/experimental"
)

// mmapMemory backs a guest's linear memory with one anonymous mapping of the memory's maximum
// size, reserved but not committed (MAP_NORESERVE): growing it never copies (wazero's default
// reallocates and copies the whole memory on every memory.grow), and pages cost nothing until
// the guest touches them. Measured on standard-Go guests, whose runtimes grow memory many times
// while starting, this cuts instantiation by more than half.
//
// Its size is charged to the runtime's memoryBudget: a guest's memory.grow fails when all the
// live instances together would use more than Config.MaxMemoryBytes.
type mmapMemory struct {
	buf    []byte
	size   int64 // charged to budget
	budget *memoryBudget
	in     *instance
}

// memoryBudget is what the live instances of a runtime (a tenant's) may use together.
type memoryBudget struct {
	max  int64 // 0: unbounded
	used atomic.Int64
}

func (b *memoryBudget) take(n int64) bool {
	if u := b.used.Add(n); b.max > 0 && u > b.max {
		b.used.Add(-n)
		return false
	}
	return true
}

// refusal is the explanation added to the error of an event whose guest was refused memory.
func (b *memoryBudget) refusal() string {
	return fmt.Sprintf("memory refused: the live instances together may use %d bytes of linear memory (max_memory_bytes)", b.max)
}

// allocator returns the memory allocator of instance in.
func (r *Runtime) allocator(in *instance) experimental.MemoryAllocator {
	return experimental.MemoryAllocatorFunc(func(cap, max uint64) experimental.LinearMemory {
		b, err := syscall.Mmap(-1, 0, int(max), syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE|syscall.MAP_ANON|syscall.MAP_NORESERVE)
		if err != nil {
			return nil // wazero reports the instantiation as failed
		}
		m := &mmapMemory{buf: b, budget: &r.memory, in: in}
		in.mem = m
		return m
	})
}

func (m *mmapMemory) Reallocate(size uint64) []byte {
	if size > uint64(len(m.buf)) {
		return nil // beyond the maximum: memory.grow fails in the guest
	}
	if grow := int64(size) - m.size; grow > 0 {
		if !m.budget.take(grow) {
			m.in.memRefused = true
			return nil
		}
		m.size = int64(size)
	}
	return m.buf[:size]
}

func (m *mmapMemory) Free() {
	if m.buf != nil {
		syscall.Munmap(m.buf)
		m.buf = nil
		m.budget.used.Add(-m.size)
		m.size = 0
	}
}
