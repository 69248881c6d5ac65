package fuel_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/dowasm/dowasm/host/fuel"
)

// The guests here are generated as binary modules: their shape (how much
// straight-line code, where) is the point, and binaryen's wasm-as cannot
// write some of the instructions.

// Opcodes used by the generated guests.
const (
	xLocalGet = 0x20
	xLocalSet = 0x21
	xI32Const = 0x41
	xI64Const = 0x42
	xI32Sub   = 0x6b
	xI32Eqz   = 0x45
	xI64Add   = 0x7c
	xI64Mul   = 0x7e
	xI64Xor   = 0x85
	xI64ShrU  = 0x88
	xI64ExtU  = 0xad
	xCall     = 0x10
	xLoop     = 0x03
	xIf       = 0x04
	xBr       = 0x0c
	xBrIf     = 0x0d
	xEnd      = 0x0b
	xDrop     = 0x1a
	xRefFunc  = 0xd2
)

// straightLine returns about size bytes of straight-line code (no branch,
// no call) that scrambles the i64 local x: rounds of
// x = x*3 ^ x>>7, 8 instructions in 13 bytes.
func straightLine(x byte, size int) []byte {
	round := []byte{xLocalGet, x, xI64Const, 3, xI64Mul, xLocalGet, x, xI64Const, 7, xI64ShrU, xI64Xor, xLocalSet, x}
	var b []byte
	for len(b) < size {
		b = append(b, round...)
	}
	return b
}

// bigModule has three shapes of runaway code built around size bytes of
// straight-line code:
//
//	0 big(x i64) i64    the straight-line code, a leaf
//	1 loopcall()        a loop that calls big for ever
//	2 rec(d i32) i64    the straight-line code, then rec(d-1) twice: a
//	                    loop-free recursion tree of big functions
//	3 bigloop()         a loop whose body is the straight-line code
//	4 once(x i64) i64   big(x), once: for checking results
func bigModule(size int) []byte {
	const (
		tBig  = iota // (i64) -> i64
		tVoid        // () -> ()
		tRec         // (i32) -> i64
	)
	i32, i64 := byte(0x7f), byte(0x7e)
	types := section(1, vec(
		[]byte{0x60, 1, i64, 1, i64},
		[]byte{0x60, 0, 0},
		[]byte{0x60, 1, i32, 1, i64},
	))
	funcs := section(3, vec([]byte{tBig}, []byte{tVoid}, []byte{tRec}, []byte{tVoid}, []byte{tBig}))
	var exports [][]byte
	for i, name := range []string{"big", "loopcall", "rec", "bigloop", "once"} {
		exports = append(exports, cat(str(name), []byte{0x00, byte(i)}))
	}
	oneI64 := []byte{1, 1, i64}
	code := section(10, vec(
		fn(noLocals, cat(straightLine(0, size), []byte{xLocalGet, 0})...),
		fn(oneI64, xLoop, 0x40, xLocalGet, 0, xCall, 0, xLocalSet, 0, xBr, 0, xEnd),
		fn(oneI64, cat(
			[]byte{xLocalGet, 0, xI64ExtU, xLocalSet, 1},
			straightLine(1, size),
			[]byte{xLocalGet, 0, xIf, 0x40,
				xLocalGet, 1, xLocalGet, 0, xI32Const, 1, xI32Sub, xCall, 2, xI64Add,
				xLocalGet, 0, xI32Const, 1, xI32Sub, xCall, 2, xI64Add, xLocalSet, 1,
				xEnd, xLocalGet, 1},
		)...),
		fn(oneI64, cat([]byte{xLoop, 0x40}, straightLine(0, size), []byte{xBr, 0, xEnd})...),
		fn(noLocals, xLocalGet, 0, xCall, 0),
	))
	return module(types, funcs, section(7, vec(exports...)), code)
}

// TestStopsStraightLineCode: a guest that runs large amounts of code
// between loop headers and calls (a loop calling a big loop-free function,
// a loop-free recursion tree of big functions, a loop with a big body) is
// stopped within maxStopLatency of its deadline, with the host's refill of
// 2^20 units. Before the meter charged straight-line code by its size, a
// loop calling a 10 KB function ran on for seconds past the deadline.
func TestStopsStraightLineCode(t *testing.T) {
	for _, size := range []int{10 << 10, 100 << 10} {
		plain := bigModule(size)
		for _, o := range optionSets {
			metered := instrument(t, plain, o.opts)
			for _, c := range []struct {
				export string
				params []uint64
			}{{"loopcall", nil}, {"rec", []uint64{60}}, {"bigloop", nil}} {
				t.Run(fmt.Sprintf("%s/%dKB/%s", c.export, size>>10, o.name), func(t *testing.T) {
					var refills int64
					rt := newRuntime(t, false, refillFunc(1<<20, &refills))
					mod := instantiate(t, rt, metered)
					ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
					defer cancel()
					deadline, _ := ctx.Deadline()
					_, err := mod.ExportedFunction(c.export).Call(ctx, c.params...)
					late := time.Since(deadline)
					if !errors.Is(err, errDeadline) {
						t.Fatalf("err = %v, want the refill function's trap", err)
					}
					t.Logf("stopped %v after the deadline; %d refills", late.Round(time.Microsecond), refills)
					if late > maxStopLatency {
						t.Errorf("stopped %v after the deadline, more than %v", late, maxStopLatency)
					}
				})
			}
		}
	}
}

// TestStraightLineResults: the big functions compute the same results
// instrumented.
func TestStraightLineResults(t *testing.T) {
	ctx := context.Background()
	plain := bigModule(10 << 10)
	rt := newRuntime(t, false, refillFunc(1000, nil))
	orig := instantiate(t, rt, plain)
	for _, o := range optionSets {
		inst := instantiate(t, rt, instrument(t, plain, o.opts))
		for _, x := range []uint64{0, 1, 12345, 1 << 63} {
			if got, want := call(t, ctx, inst, "once", x), call(t, ctx, orig, "once", x); got != want {
				t.Errorf("%s: once(%d) = %#x, original %#x", o.name, x, got, want)
			}
		}
		for _, d := range []uint64{0, 1, 5} {
			if got, want := call(t, ctx, inst, "rec", d), call(t, ctx, orig, "rec", d); got != want {
				t.Errorf("%s: rec(%d) = %#x, original %#x", o.name, d, got, want)
			}
		}
	}
}

// TestChargesBySize: a call to a function is charged by the code it runs.
// A loop that calls a 10 KB function 1,000 times gets through more fuel
// than a loop of 1,000 empty calls: at least one unit per instruction of
// the function (about 6,000 each).
func TestChargesBySize(t *testing.T) {
	ctx := context.Background()
	for _, o := range optionSets {
		var refills int64
		rt := newRuntime(t, false, refillFunc(100_000, &refills))
		mod := instantiate(t, rt, instrument(t, bigModule(10<<10), o.opts))
		for i := 0; i < 1000; i++ {
			call(t, ctx, mod, "once", uint64(i))
		}
		// 1,000 calls of about 6,300 instructions: 6.3M units, 63 refills of
		// 100,000.
		if refills < 50 {
			t.Errorf("%s: 1,000 calls of a 10 KB function took %d refills of 100,000 units, want about 63", o.name, refills)
		}
	}
}

// refFuncModule: spin(n) executes ref.func n times (function 0 is the
// target, declared by a declarative element segment); get() returns
// whether ref.func gives a non-null reference.
func refFuncModule() []byte {
	return module(
		section(1, vec([]byte{0x60, 0, 0}, []byte{0x60, 1, 0x7f, 0}, []byte{0x60, 0, 1, 0x7f})),
		section(3, vec([]byte{0}, []byte{1}, []byte{2})),
		section(7, vec(cat(str("spin"), []byte{0x00, 1}), cat(str("get"), []byte{0x00, 2}))),
		section(9, vec([]byte{0x03, 0x00, 1, 0})), // declare func 0
		section(10, vec(
			fn(noLocals),
			fn(noLocals, xLoop, 0x40,
				xRefFunc, 0, xDrop,
				xLocalGet, 0, xI32Const, 1, xI32Sub, xLocalSet, 0,
				xLocalGet, 0, xBrIf, 0, xEnd),
			fn(noLocals, xRefFunc, 0, 0xd1, xI32Eqz), // ref.is_null, i32.eqz
		)),
	)
}

// TestRefFuncKeepsNoMemory: in wazero every ref.func executed allocates a
// function instance that lives as long as the instance (310 MiB for 10
// million); instrumented, the host's heap stays flat however often a guest
// executes ref.func.
func TestRefFuncKeepsNoMemory(t *testing.T) {
	ctx := context.Background()
	for _, o := range optionSets {
		rt := newRuntime(t, false, refillFunc(1<<20, nil))
		mod := instantiate(t, rt, instrument(t, refFuncModule(), o.opts))
		if got := call(t, ctx, mod, "get"); got != 1 {
			t.Errorf("%s: ref.func gave a null reference", o.name)
		}
		before := heapAlloc()
		const n = 2_000_000
		if _, err := mod.ExportedFunction("spin").Call(ctx, n); err != nil {
			t.Fatal(err)
		}
		grew := float64(int64(heapAlloc())-int64(before)) / (1 << 20)
		runtime.KeepAlive(mod)
		t.Logf("%s: %d ref.func: heap %+.1f MiB", o.name, n, grew)
		if grew > 8 {
			t.Errorf("%s: %d executions of ref.func grew the heap by %.0f MiB", o.name, n, grew)
		}
	}
}

func heapAlloc() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// TestRefFuncGlobalsLimit: the globals Instrument adds for ref.func count
// against MaxGlobals.
func TestRefFuncGlobalsLimit(t *testing.T) {
	var funcs, bodies [][]byte
	var refs []byte
	for i := 0; i < 20; i++ {
		funcs = append(funcs, []byte{0})
		refs = append(refs, xRefFunc, byte(i), xDrop)
	}
	for i := 0; i < 20; i++ {
		bodies = append(bodies, fn(noLocals, refs...))
	}
	var decl []byte
	for i := 0; i < 20; i++ {
		decl = append(decl, byte(i))
	}
	wasm := module(
		section(1, vec([]byte{0x60, 0, 0})),
		section(3, vec(funcs...)),
		section(6, vec([]byte{0x7f, 0, xI32Const, 0, xEnd})),
		section(9, vec(cat([]byte{0x03, 0x00, 20}, decl))),
		section(10, vec(bodies...)),
	)
	if _, err := fuel.Instrument(wasm, fuel.Options{MaxGlobals: 21}); err != nil {
		t.Errorf("1 global and 20 functions named by ref.func, limit 21: %v", err)
	}
	_, err := fuel.Instrument(wasm, fuel.Options{MaxGlobals: 20})
	if !errors.Is(err, fuel.ErrModuleLimit) || !strings.Contains(err.Error(), "21 globals") {
		t.Errorf("1 global and 20 functions named by ref.func, limit 20: err = %v, want ErrModuleLimit for 21 globals", err)
	}
}

// dispatchModule has a loop in the shape that Go's compiler gives every
// function: a br_table at the loop header jumps to one of several blocks,
// each of which ends by branching back to the loop. dispatch(n, mode) runs n
// iterations of the cheap block (mode 0: a few instructions) or of the
// expensive one (mode 1: about 600 instructions of straight-line code), then
// leaves through the third block, and returns a checksum.
func dispatchModule() []byte {
	const i32, i64 = 0x7f, 0x7e
	next := []byte{ // k++; pc = k >= n ? 2 : mode
		xLocalGet, 4, xI32Const, 1, 0x6a, 0x22, 4, xLocalGet, 0, 0x4f, // i32.add, local.tee, i32.ge_u
		xIf, i32, xI32Const, 2, 0x05, xLocalGet, 1, xEnd, xLocalSet, 2,
	}
	code := cat(
		[]byte{xLocalGet, 1, xLocalSet, 2},
		[]byte{xLoop, 0x40, 0x02, 0x40, 0x02, 0x40, 0x02, 0x40},
		[]byte{xLocalGet, 2, 0x0e, 2, 0, 1, 2, xEnd}, // br_table 0 1 2
		// cheap
		[]byte{xLocalGet, 3, xI64Const, 1, xI64Add, xLocalSet, 3}, next, []byte{xBr, 2, xEnd},
		// expensive
		straightLine(3, 1000), next, []byte{xBr, 1, xEnd},
		// exit
		[]byte{xEnd, xLocalGet, 3},
	)
	return module(
		section(1, vec([]byte{0x60, 2, i32, i32, 1, i64})),
		section(3, vec([]byte{0})),
		section(7, vec(cat(str("dispatch"), []byte{0x00, 0}))),
		section(10, vec(fn([]byte{3, 1, i32, 1, i64, 1, i32}, code...))), // locals pc, x, k
	)
}

// TestChargesByPath: in a loop whose iterations take paths of very
// different lengths (a dispatch loop), each iteration is charged by the
// path it took, not by the longest: 10^6 cheap iterations take a few
// refills, 10^6 expensive ones hundreds. Results match the original.
func TestChargesByPath(t *testing.T) {
	ctx := context.Background()
	plain := dispatchModule()
	rt := newRuntime(t, false, refillFunc(1<<20, nil))
	orig := instantiate(t, rt, plain)
	for _, o := range optionSets {
		var refills int64
		rt := newRuntime(t, false, refillFunc(1<<20, &refills))
		inst := instantiate(t, rt, instrument(t, plain, o.opts))
		for _, c := range [][]uint64{{0, 0}, {1, 0}, {1, 1}, {1000, 0}, {1000, 1}} {
			if got, want := call(t, ctx, inst, "dispatch", c...), call(t, ctx, orig, "dispatch", c...); got != want {
				t.Errorf("%s: dispatch%v = %#x, original %#x", o.name, c, got, want)
			}
		}
		count := func(mode uint64) int64 {
			refills = 0
			call(t, ctx, inst, "dispatch", 1_000_000, mode)
			return refills
		}
		cheap, expensive := count(0), count(1)
		t.Logf("%s: 10^6 iterations: %d refills of 2^20 units on the cheap path, %d on the expensive one", o.name, cheap, expensive)
		// Cheap: about 20 instructions an iteration; expensive: about 630.
		if cheap > 40 || expensive < 400 || expensive < 10*cheap {
			t.Errorf("%s: %d refills for the cheap path, %d for the expensive one: want about 20 and 600", o.name, cheap, expensive)
		}
	}
}
