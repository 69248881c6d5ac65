package host

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/dowasm/dowasm/abi"
	"github.com/dowasm/dowasm/storage"
)

// Warm event overhead, HTTP aside: Class.Fetch to a warm object whose handler does one storage
// read, through the mailbox, loop, guest and back. Guest: the ticket example (standard Go, with
// the SDK), GET / reads one key.
func BenchmarkWarmEventOneRead(b *testing.B) {
	rt := newTestRuntime(b, Config{})
	c := loadExample(b, rt, "ticket")
	id := c.Namespace().FromName("w")
	if _, err := c.Fetch(context.Background(), id, "w", &abi.Request{Method: "POST", Path: "/claim"}); err != nil {
		b.Fatal(err)
	}
	req := &abi.Request{Method: "GET", Path: "/"}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		resp, err := c.Fetch(context.Background(), id, "w", req)
		if err != nil || resp.Status != 200 {
			b.Fatal(resp, err)
		}
	}
}

// The same event with a write: one commit per event (no concurrency to coalesce), under both
// durabilities.
func BenchmarkWarmEventOneWrite(b *testing.B) {
	for _, d := range []struct {
		name string
		dur  storage.Durability
	}{{"full", storage.Full}, {"relaxed", storage.Relaxed}} {
		b.Run(d.name, func(b *testing.B) {
			rt := newTestRuntime(b, Config{Durability: d.dur})
			c := loadExample(b, rt, "counter")
			id := c.Namespace().FromName("w")
			req := &abi.Request{Method: "POST", Path: "/increment"}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := c.Fetch(context.Background(), id, "w", req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// Writes to one object from many goroutines: queued events share commits (write coalescing).
func BenchmarkCoalescedWrites(b *testing.B) {
	rt := newTestRuntime(b, Config{})
	c := loadExample(b, rt, "counter")
	id := c.Namespace().FromName("w")
	req := &abi.Request{Method: "POST", Path: "/increment"}
	b.SetParallelism(8) // 16 concurrent callers on 2 cores
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := c.Fetch(context.Background(), id, "w", req); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// wake measures an evicted object's first response: instantiate, init, one event. It cycles
// through 500 objects whose databases exist and whose handles stay open (well under the pool's
// bound), so it measures waking the instance, not creating or reopening a database file.
func benchWake(b *testing.B, c *Class, rt *Runtime, path string) {
	req := &abi.Request{Method: "GET", Path: path}
	const objects = 500
	ids := make([]string, objects)
	fetch := func(i int) {
		if _, err := c.Fetch(context.Background(), c.Namespace().FromName(ids[i]), ids[i], req); err != nil {
			b.Fatal(err)
		}
	}
	waitEvicted := func() {
		for rt.Stats().LiveInstances != 0 {
			time.Sleep(100 * time.Microsecond)
		}
	}
	for i := range ids {
		ids[i] = "obj" + strconv.Itoa(i)
		fetch(i)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if i%objects == 0 {
			b.StopTimer()
			waitEvicted()
			b.StartTimer()
		}
		fetch(i % objects)
	}
}

// A small guest (a hand-assembled module doing one storage read) woken from eviction.
func BenchmarkWakeSmallGuest(b *testing.B) {
	rt := newTestRuntime(b, Config{IdleTimeout: time.Millisecond})
	m := minimalGuest([]wimport{abiImport("storage_get")}, cat(i32const(0), i32const(1), call(0), opDrop, i32const(0)))
	c, err := rt.LoadClass(context.Background(), "small", "small.wasm", m.encode())
	if err != nil {
		b.Fatal(err)
	}
	benchWake(b, c, rt, "/")
}

// The standard-Go counter example woken from eviction (its constructor reads the value).
func BenchmarkWakeGoGuest(b *testing.B) {
	rt := newTestRuntime(b, Config{IdleTimeout: time.Millisecond})
	c := loadExample(b, rt, "counter")
	benchWake(b, c, rt, "/")
}

func loadExample(b *testing.B, rt *Runtime, name string) *Class {
	src := "examples/" + name + "/go"
	c, err := rt.LoadClass(context.Background(), name, src, guestWasm(b, src))
	if err != nil {
		b.Fatal(err)
	}
	return c
}

// Warm event overhead with the small hand-assembled guest (one storage read): the host's own
// cost, without the standard Go runtime inside the guest.
func BenchmarkWarmEventSmallGuest(b *testing.B) {
	rt := newTestRuntime(b, Config{})
	m := minimalGuest([]wimport{abiImport("storage_get")}, cat(i32const(0), i32const(1), call(0), opDrop, i32const(0)))
	c, err := rt.LoadClass(context.Background(), "small", "small.wasm", m.encode())
	if err != nil {
		b.Fatal(err)
	}
	id := c.Namespace().FromName("w")
	req := &abi.Request{Method: "GET", Path: "/"}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := c.Fetch(context.Background(), id, "w", req); err != nil {
			b.Fatal(err)
		}
	}
}
