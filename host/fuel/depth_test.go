package fuel_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/tetratelabs/wazero/api"

	"github.com/dowasm/dowasm/host/fuel"
)

// depthModule has recursive functions that leave in every way a function
// can: falling off its end, return, br and br_table to the function's label
// (from nested blocks), with one result, two results (with a parameterless
// type of the same results and without one), and through call_indirect; and
// two tail-recursive counters (return_call, return_call_indirect). Each
// recursive f(n) makes n+1 nested calls of f. Functions, all exported:
//
//	0 rec(n) = n          return at the bottom, falls off the end above
//	1 recbr(n) = n        br to the function label in an if; br_table to it
//	2 mv(n) = (n, 7)      two results; type (i32) -> (i32 i32), reuses type 2
//	3 mv64(n) = (n, 9)    (i32) -> (i64 i32): needs a new block type
//	4 count(n, acc)       acc + n + (n-1) + ... + 1 by return_call
//	5 countind(n, acc)    the same by return_call_indirect (table[0])
//	6 ind(n) = n          recursion by call_indirect (table[1])
//	7 leafy(n) = n        calls a leaf with return and br to its label
//	8 leaf(n) = n         (not counted: it calls nothing)
func depthModule() []byte {
	const (
		tI   = iota // (i32) -> i32
		tMV         // (i32) -> (i32 i32)
		tV2         // () -> (i32 i32)
		tMV6        // (i32) -> (i64 i32)
		tCnt        // (i32 i32) -> i32
	)
	const i32, i64 = 0x7f, 0x7e
	types := section(1, vec(
		[]byte{0x60, 1, i32, 1, i32},
		[]byte{0x60, 1, i32, 2, i32, i32},
		[]byte{0x60, 0, 2, i32, i32},
		[]byte{0x60, 1, i32, 2, i64, i32},
		[]byte{0x60, 2, i32, i32, 1, i32},
	))
	funcs := section(3, vec([]byte{tI}, []byte{tI}, []byte{tMV}, []byte{tMV6}, []byte{tCnt}, []byte{tCnt}, []byte{tI}, []byte{tI}, []byte{tI}))
	table := section(4, vec([]byte{0x70, 0x01, 2, 2}))
	var exports [][]byte
	for i, name := range []string{"rec", "recbr", "mv", "mv64", "count", "countind", "ind", "leafy", "leaf"} {
		exports = append(exports, cat(str(name), []byte{0x00, byte(i)}))
	}
	elems := section(9, vec(cat([]byte{0, 0x41, 0, 0x0b}, vec([]byte{5}, []byte{6}))))
	const (
		get, set, eqz, sub, add, ifOp, end, ret = 0x20, 0x21, 0x45, 0x6b, 0x6a, 0x04, 0x0b, 0x0f
		br, brTable, call, callInd, retCall     = 0x0c, 0x0e, 0x10, 0x11, 0x12
		retCallInd, i32c, i64c, i64add          = 0x13, 0x41, 0x42, 0x7c
	)
	code := section(10, vec(
		// rec
		fn(noLocals, get, 0, eqz, ifOp, 0x40, i32c, 0, ret, end,
			get, 0, i32c, 1, sub, call, 0, i32c, 1, add),
		// recbr: the value, then br_table to the function label either way
		fn(noLocals, get, 0, eqz, ifOp, 0x40, i32c, 0, br, 1, end,
			0x02, 0x40, // block
			get, 0, i32c, 1, sub, call, 1, i32c, 1, add,
			get, 0, i32c, 1, 0x71, brTable, 1, 1, 1, // br_table [1] 1: out of the function
			end, i32c, 99),
		// mv: (n, 7)
		fn([]byte{1, 2, i32}, get, 0, eqz, ifOp, 0x40, i32c, 0, i32c, 7, ret, end,
			get, 0, i32c, 1, sub, call, 2, set, 2, set, 1, get, 1, i32c, 1, add, get, 2),
		// mv64: (n, 9)
		fn([]byte{2, 1, i64, 1, i32}, get, 0, eqz, ifOp, 0x40, i64c, 0, i32c, 9, br, 1, end,
			get, 0, i32c, 1, sub, call, 3, set, 2, set, 1, get, 1, i64c, 1, i64add, get, 2),
		// count
		fn(noLocals, get, 0, eqz, ifOp, 0x40, get, 1, ret, end,
			get, 0, i32c, 1, sub, get, 1, get, 0, add, retCall, 4),
		// countind
		fn(noLocals, get, 0, eqz, ifOp, 0x40, get, 1, ret, end,
			get, 0, i32c, 1, sub, get, 1, get, 0, add, i32c, 0, retCallInd, tCnt, 0),
		// ind
		fn(noLocals, get, 0, eqz, ifOp, 0x40, i32c, 0, ret, end,
			get, 0, i32c, 1, sub, i32c, 1, callInd, tI, 0, i32c, 1, add),
		// leafy
		fn(noLocals, get, 0, call, 8),
		// leaf
		fn(noLocals, get, 0, eqz, ifOp, 0x40, i32c, 0, br, 1, end, get, 0, ret),
	))
	return module(types, funcs, table, section(7, vec(exports...)), elems, code)
}

// TestCallDepthLimit: with MaxCallDepth = limit, every recursion of limit
// calls works, however its functions return, as often as it runs; one call
// more calls too_deep. Tail calls do not count up.
func TestCallDepthLimit(t *testing.T) {
	ctx := context.Background()
	const limit = 100
	plain := depthModule()
	metered := instrument(t, plain, fuel.Options{MaxCallDepth: limit})
	rt := newRuntime(t, false, refillFunc(1000, nil))
	orig := instantiate(t, rt, plain)
	inst := instantiate(t, rt, metered)
	recursive := []string{"rec", "recbr", "mv", "mv64", "ind"}
	for round := 0; round < 3; round++ {
		for _, name := range recursive {
			for _, n := range []uint64{0, 1, 7, limit - 1} {
				want := call(t, ctx, orig, name, n)
				res, err := inst.ExportedFunction(name).Call(ctx, n)
				if err != nil {
					t.Fatalf("round %d: %s(%d) within the limit: %v", round, name, n, err)
				}
				if res[0] != want || want != n {
					t.Fatalf("round %d: %s(%d) = %d, original %d", round, name, n, res[0], want)
				}
				if len(res) == 2 {
					if wantB := map[string]uint64{"mv": 7, "mv64": 9}[name]; res[1] != wantB {
						t.Fatalf("%s(%d) second result %d, want %d", name, n, res[1], wantB)
					}
				}
			}
		}
		// Tail calls: 10,000 calls in a row, the stack never deeper than one.
		for _, name := range []string{"count", "countind"} {
			want := call(t, ctx, orig, name, 10_000, 0)
			if got := call(t, ctx, inst, name, 10_000, 0); got != want || got != 10_000*10_001/2 {
				t.Fatalf("%s(10000, 0) = %d, original %d", name, got, want)
			}
		}
		if got := call(t, ctx, inst, "leafy", 5); got != 5 {
			t.Fatalf("leafy(5) = %d", got)
		}
	}
	// One call deeper: too_deep aborts the call. A trap leaves the counter
	// where it was, so each case gets a fresh instance.
	for _, name := range recursive {
		mod := instantiate(t, rt, metered)
		if _, err := mod.ExportedFunction(name).Call(ctx, limit); !errors.Is(err, errTooDeep) {
			t.Errorf("%s(%d), one call over the limit: err = %v, want too_deep's", name, limit, err)
		}
	}
	// Unbounded recursion, by the same code as the tests of the host.
	mod := instantiate(t, rt, metered)
	if _, err := mod.ExportedFunction("rec").Call(ctx, 1<<30); !errors.Is(err, errTooDeep) {
		t.Errorf("rec(2^30): err = %v, want too_deep's", err)
	}
}

// TestTooDeepMustNotReturn: a too_deep function that returns does not let
// the guest go on; it traps.
func TestTooDeepMustNotReturn(t *testing.T) {
	ctx := context.Background()
	rt := newRuntime(t, false, nil)
	_, err := rt.NewHostModuleBuilder(fuel.ImportModule).
		NewFunctionBuilder().WithFunc(func() int64 { return 1 << 20 }).Export(fuel.RefillName).
		NewFunctionBuilder().WithFunc(func() {}).Export(fuel.TooDeepName).
		Instantiate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	mod := instantiate(t, rt, instrument(t, depthModule(), fuel.Options{MaxCallDepth: 10}))
	if _, err := mod.ExportedFunction("rec").Call(ctx, 10); err == nil || !strings.Contains(err.Error(), "unreachable") {
		t.Errorf("rec(10) with a limit of 10 and a too_deep that returns: err = %v, want an unreachable trap", err)
	}
}

// TestCallDepthTypes: the wrapping blocks of functions with several results
// reuse a parameterless type with the same results, or add one.
func TestCallDepthTypes(t *testing.T) {
	ctx := context.Background()
	rt := newRuntime(t, false, nil)
	plain := depthModule()
	for _, limit := range []uint32{0, 1, 1 << 31, 1<<32 - 1} {
		out := instrument(t, plain, fuel.Options{MaxCallDepth: limit})
		cm, err := rt.CompileModule(ctx, out)
		if err != nil {
			t.Fatalf("limit %d: %v", limit, err)
		}
		// 5 types, refill's, the (i32 i32) -> i32 of the function checks
		// call when their counter is spent, and with a limit too_deep's and
		// (i64 i32).
		want := 7
		if limit != 0 {
			want = 9
		}
		if got := countTypes(t, out); got != want {
			t.Errorf("limit %d: %d types, want %d", limit, got, want)
		}
		cm.Close(ctx)
	}
}

// countTypes returns the number of entries of a module's type section.
func countTypes(t *testing.T, wasm []byte) int {
	t.Helper()
	for i := 8; i < len(wasm); {
		id := wasm[i]
		size, n := uleb(wasm[i+1:])
		if id == 1 {
			count, _ := uleb(wasm[i+1+n:])
			return int(count)
		}
		i += 1 + n + int(size)
	}
	t.Fatal("no type section")
	return 0
}

func uleb(b []byte) (uint64, int) {
	var v uint64
	for i, shift := 0, 0; ; i, shift = i+1, shift+7 {
		v |= uint64(b[i]&0x7f) << shift
		if b[i] < 0x80 {
			return v, i + 1
		}
	}
}

// TestCallDepthUnused: a module that calls nothing gets the import and the
// global but no other change, and runs with any limit.
func TestCallDepthUnused(t *testing.T) {
	ctx := context.Background()
	rt := newRuntime(t, false, refillFunc(1000, nil))
	mod := instantiate(t, rt, instrument(t, depthModule(), fuel.Options{MaxCallDepth: 1}))
	if got := call(t, ctx, mod, "leaf", 3); got != 3 {
		t.Errorf("leaf(3) = %d", got)
	}
	// leafy calls leaf: two frames, but only leafy counts.
	if got := call(t, ctx, mod, "leafy", 3); got != 3 {
		t.Errorf("leafy(3) = %d", got)
	}
	if _, err := mod.ExportedFunction("rec").Call(ctx, 1); !errors.Is(err, errTooDeep) {
		t.Errorf("rec(1) with a limit of 1: err = %v, want too_deep's", err)
	}
	var _ api.Module = mod
}
