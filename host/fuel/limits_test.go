package fuel_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"github.com/dowasm/dowasm/host/fuel"
	"github.com/dowasm/dowasm/internal/testutil"
	"github.com/dowasm/dowasm/toolchain"
)

// Builders of modules with n of something, for the limit tests. Each module is valid (wazero
// compiles it) unless said otherwise.

// repeat is a vector of n copies of item.
func repeat(n uint32, item []byte) []byte { return cat(leb(n), bytes.Repeat(item, int(n))) }

var (
	voidType  = section(1, vec([]byte{0x60, 0, 0}))
	oneFunc   = section(3, vec([]byte{0}))
	emptyBody = section(10, vec(fn(noLocals)))
	oneMemory = section(5, vec([]byte{0x00, 0x01}))
)

// split divides n into parts that add up to n (the last takes the rest).
func split(n uint32, parts int) []uint32 {
	out := make([]uint32, parts)
	for i := range out {
		out[i] = n / uint32(parts)
	}
	out[parts-1] += n % uint32(parts)
	return out
}

// tablesHolding is a module with len(mins) tables (no maximum) of the given minimum sizes.
func tablesHolding(mins ...uint32) []byte {
	var items [][]byte
	for _, m := range mins {
		items = append(items, cat([]byte{0x70, 0x00}, leb(m)))
	}
	return module(section(4, vec(items...)))
}

// passiveElems is a module whose function 0 fills passive element segments of the given sizes.
func passiveElems(sizes ...uint32) []byte {
	var segs [][]byte
	for _, n := range sizes {
		segs = append(segs, cat([]byte{0x01, 0x00}, repeat(n, []byte{0})))
	}
	return module(voidType, oneFunc, section(9, vec(segs...)), emptyBody)
}

// passiveData is a module with a memory and passive data segments of the given sizes (filled
// with 'x').
func passiveData(sizes ...uint32) []byte {
	var segs [][]byte
	for _, n := range sizes {
		segs = append(segs, cat([]byte{0x01}, leb(n), bytes.Repeat([]byte{'x'}, int(n))))
	}
	return module(oneMemory, section(11, vec(segs...)))
}

// limitCases are the limits on what a module declares: limit is the value the test sets (with
// set), build(n) a module with n of the thing, and msg, formatted with n and the limit, what the
// error for limit+1 must say.
var limitCases = []struct {
	name  string
	limit uint32
	set   func(o *fuel.Options, v uint32)
	build func(n uint32) []byte
	kind  error
	msg   string
	where string // what else the error must say
}{
	{
		name: "tables", limit: 50, set: func(o *fuel.Options, v uint32) { o.MaxTables = v },
		build: func(n uint32) []byte { return module(section(4, repeat(n, []byte{0x70, 0x00, 0x00}))) },
		kind:  fuel.ErrTableLimit, msg: "module declares %d tables; the limit is %d",
	},
	{
		name: "tables, one imported", limit: 50, set: func(o *fuel.Options, v uint32) { o.MaxTables = v },
		build: func(n uint32) []byte {
			return module(section(2, vec(cat(str("env"), str("t"), []byte{0x01, 0x70, 0x01, 0, 0}))),
				section(4, repeat(n-1, []byte{0x70, 0x00, 0x00})))
		},
		kind: fuel.ErrTableLimit, msg: "module declares %d tables; the limit is %d",
	},
	{
		name: "table elements in all", limit: 1000, set: func(o *fuel.Options, v uint32) { o.MaxTableElems = v },
		build: func(n uint32) []byte { return tablesHolding(split(n, 4)...) },
		kind:  fuel.ErrTableLimit, msg: "module declares 4 tables holding %d elements in all; the limit is %d",
	},
	{
		name: "table elements in all, one imported", limit: 1000, set: func(o *fuel.Options, v uint32) { o.MaxTableElems = v },
		build: func(n uint32) []byte {
			return module(section(2, vec(cat(str("env"), str("t"), []byte{0x01, 0x70, 0x01, 0}, leb(400)))),
				section(4, vec(cat([]byte{0x70, 0x00}, leb(n-400)))))
		},
		kind: fuel.ErrTableLimit, msg: "module declares 2 tables holding %d elements in all; the limit is %d",
	},
	{
		name: "types", limit: 100, set: func(o *fuel.Options, v uint32) { o.MaxTypes = v },
		build: func(n uint32) []byte { return module(section(1, repeat(n, []byte{0x60, 0, 0}))) },
		kind:  fuel.ErrModuleLimit, msg: "module declares %d function types; the limit is %d",
	},
	{
		name: "imports", limit: 100, set: func(o *fuel.Options, v uint32) { o.MaxImports = v },
		build: func(n uint32) []byte {
			return module(voidType, section(2, repeat(n, cat(str("env"), str("f"), []byte{0x00, 0}))))
		},
		kind: fuel.ErrModuleLimit, msg: "module declares %d imports; the limit is %d",
	},
	{
		name: "functions", limit: 100, set: func(o *fuel.Options, v uint32) { o.MaxFunctions = v },
		build: func(n uint32) []byte {
			return module(voidType, section(3, repeat(n, []byte{0})), section(10, repeat(n, fn(noLocals))))
		},
		kind: fuel.ErrModuleLimit, msg: "module defines %d functions; the limit is %d",
	},
	{
		name: "globals", limit: 100, set: func(o *fuel.Options, v uint32) { o.MaxGlobals = v },
		build: func(n uint32) []byte {
			return module(section(6, repeat(n, []byte{0x7f, 0x01, 0x41, 0x00, 0x0b})))
		},
		kind: fuel.ErrModuleLimit, msg: "module declares %d globals; the limit is %d",
	},
	{
		name: "globals, 10 imported", limit: 100, set: func(o *fuel.Options, v uint32) { o.MaxGlobals = v },
		build: func(n uint32) []byte {
			return module(section(2, repeat(10, cat(str("env"), str("g"), []byte{0x03, 0x7f, 0x00}))),
				section(6, repeat(n-10, []byte{0x7f, 0x01, 0x41, 0x00, 0x0b})))
		},
		kind: fuel.ErrModuleLimit, msg: "module declares %d globals (10 imported); the limit is %d",
	},
	{
		name: "exports", limit: 100, set: func(o *fuel.Options, v uint32) { o.MaxExports = v },
		build: func(n uint32) []byte {
			var exps [][]byte
			for i := uint32(0); i < n; i++ {
				exps = append(exps, cat(str(fmt.Sprint("e", i)), []byte{0x00, 0}))
			}
			return module(voidType, oneFunc, section(7, vec(exps...)), emptyBody)
		},
		kind: fuel.ErrModuleLimit, msg: "module declares %d exports; the limit is %d",
	},
	{
		name: "element segments", limit: 100, set: func(o *fuel.Options, v uint32) { o.MaxElemSegments = v },
		build: func(n uint32) []byte { return module(section(9, repeat(n, []byte{0x01, 0x00, 0x00}))) },
		kind:  fuel.ErrModuleLimit, msg: "module declares %d element segments; the limit is %d",
	},
	{
		name: "element entries in all", limit: 1000, set: func(o *fuel.Options, v uint32) { o.MaxElemEntries = v },
		build: func(n uint32) []byte { return passiveElems(split(n, 3)...) },
		kind:  fuel.ErrModuleLimit, msg: "element segments 0 to 2 hold %d entries in all; the limit is %d",
	},
	{
		name: "data segments", limit: 100, set: func(o *fuel.Options, v uint32) { o.MaxDataSegments = v },
		build: func(n uint32) []byte { return module(oneMemory, section(11, repeat(n, []byte{0x01, 0x00}))) },
		kind:  fuel.ErrModuleLimit, msg: "module declares %d data segments; the limit is %d",
	},
	{
		name: "data count", limit: 100, set: func(o *fuel.Options, v uint32) { o.MaxDataSegments = v },
		build: func(n uint32) []byte {
			return module(oneMemory, section(12, leb(n)), section(11, repeat(n, []byte{0x01, 0x00})))
		},
		kind: fuel.ErrModuleLimit, msg: "data count section declares %d data segments; the limit is %d",
	},
	{
		name: "data bytes in all", limit: 1000, set: func(o *fuel.Options, v uint32) { o.MaxDataBytes = v },
		build: func(n uint32) []byte { return passiveData(split(n, 2)...) },
		kind:  fuel.ErrModuleLimit, msg: "data segments 0 to 1 hold %d bytes in all; the limit is %d",
	},
	{
		name: "locals of a function", limit: 100, set: func(o *fuel.Options, v uint32) { o.MaxLocals = v },
		build: func(n uint32) []byte {
			// two parameters, and n-2 locals in two groups
			rest := split(n-2, 2)
			locals := cat([]byte{2}, leb(rest[0]), []byte{0x7f}, leb(rest[1]), []byte{0x7e})
			return module(section(1, vec([]byte{0x60, 2, 0x7f, 0x7f, 0})), oneFunc, section(10, vec(fn(locals))))
		},
		kind: fuel.ErrModuleLimit, msg: "declares %d locals (parameters included); the limit is %d", where: "code section: function 0: ",
	},
	{
		name: "function body bytes", limit: 1000, set: func(o *fuel.Options, v uint32) { o.MaxFuncBytes = v },
		build: func(n uint32) []byte {
			// a body of n bytes: no locals, n-2 nops, end
			return module(voidType, section(3, vec([]byte{0}, []byte{0})),
				section(10, vec(fn(noLocals), fn(noLocals, bytes.Repeat([]byte{0x01}, int(n)-2)...))))
		},
		kind: fuel.ErrModuleLimit, msg: "body of %d bytes; the limit is %d", where: "code section: function 1: ",
	},
}

// TestModuleLimits: for every limit, a module with just as many as the limit allows is
// instrumented into a module wazero compiles, and one with one more is refused with an error that
// says what is too large, how large, and the limit.
func TestModuleLimits(t *testing.T) {
	ctx := context.Background()
	rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigInterpreter().WithCoreFeatures(api.CoreFeaturesV2))
	defer rt.Close(ctx)
	for _, c := range limitCases {
		t.Run(c.name, func(t *testing.T) {
			var o fuel.Options
			c.set(&o, c.limit)
			under := c.build(c.limit)
			if orig, err := rt.CompileModule(ctx, under); err != nil {
				t.Fatalf("the test module is invalid: %v", err)
			} else {
				orig.Close(ctx)
			}
			out, err := fuel.Instrument(under, o)
			if err != nil {
				t.Fatalf("%s at the limit (%d): %v", c.name, c.limit, err)
			}
			if cm, err := rt.CompileModule(ctx, out); err != nil {
				t.Errorf("instrumented module at the limit does not compile: %v", err)
			} else {
				cm.Close(ctx)
			}

			over := c.build(c.limit + 1)
			_, err = fuel.Instrument(over, o)
			if !errors.Is(err, c.kind) {
				t.Fatalf("%s over the limit: err = %v, want %v", c.name, err, c.kind)
			}
			if want := fmt.Sprintf(c.msg, c.limit+1, c.limit); !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), c.where) {
				t.Errorf("error %q does not say %q (and %q)", err, want, c.where)
			}
		})
	}
}

// TestMemoryCount: a module may have one memory, imported or defined.
func TestMemoryCount(t *testing.T) {
	importMem := section(2, vec(cat(str("env"), str("m"), []byte{0x02, 0x00, 0x01})))
	for _, c := range []struct {
		name string
		wasm []byte
		ok   bool
	}{
		{"one defined", module(oneMemory), true},
		{"one imported", module(importMem), true},
		{"two defined", module(section(5, vec([]byte{0x00, 0x01}, []byte{0x00, 0x01}))), false},
		{"one imported, one defined", module(importMem, oneMemory), false},
	} {
		for _, o := range []fuel.Options{{}, {MaxMemoryPages: 16}} {
			_, err := fuel.Instrument(c.wasm, o)
			switch {
			case c.ok && err != nil:
				t.Errorf("%s (pages %d): %v", c.name, o.MaxMemoryPages, err)
			case !c.ok && !errors.Is(err, fuel.ErrMemoryLimit):
				t.Errorf("%s (pages %d): err = %v, want ErrMemoryLimit", c.name, o.MaxMemoryPages, err)
			case !c.ok && !strings.Contains(err.Error(), "module declares 2 memories; the limit is 1"):
				t.Errorf("%s (pages %d): error %q does not say how many and the limit", c.name, o.MaxMemoryPages, err)
			}
		}
	}
}

// TestLimitsBeforeAllocating: a module of a few bytes that claims 10^8 of something is refused
// for its limit before anything proportional to the claim is allocated.
func TestLimitsBeforeAllocating(t *testing.T) {
	huge := leb(100_000_000)
	for _, c := range []struct {
		name string
		wasm []byte
		kind error
		msg  string
	}{
		{"types", module(section(1, huge)), fuel.ErrModuleLimit, "declares 100000000 function types"},
		{"imports", module(section(2, huge)), fuel.ErrModuleLimit, "declares 100000000 imports"},
		{"functions", module(voidType, section(3, huge)), fuel.ErrModuleLimit, "defines 100000000 functions"},
		{"tables", module(section(4, huge)), fuel.ErrTableLimit, "declares 100000000 tables"},
		{"memories", module(section(5, huge)), fuel.ErrMemoryLimit, "declares 100000000 memories"},
		{"globals", module(section(6, huge)), fuel.ErrModuleLimit, "declares 100000000 globals"},
		{"exports", module(section(7, huge)), fuel.ErrModuleLimit, "declares 100000000 exports"},
		{"element segments", module(section(9, huge)), fuel.ErrModuleLimit, "declares 100000000 element segments"},
		{"element entries", module(voidType, oneFunc, section(9, vec(cat([]byte{0x01, 0x00}, huge)))), fuel.ErrModuleLimit, "element segment 0 holds 100000000 entries"},
		{"data count", module(section(12, huge)), fuel.ErrModuleLimit, "declares 100000000 data segments"},
		{"data segments", module(section(11, huge)), fuel.ErrModuleLimit, "declares 100000000 data segments"},
		{"data bytes", module(oneMemory, section(11, vec(cat([]byte{0x01}, huge)))), fuel.ErrModuleLimit, "data segment 0 holds 100000000 bytes"},
		{"locals", module(voidType, oneFunc, section(10, vec(fn(cat([]byte{1}, leb(0xffffffff), []byte{0x7f}))))), fuel.ErrModuleLimit, "declares 4294967295 locals"},
		{"body bytes", module(voidType, oneFunc, section(10, cat([]byte{1}, huge, []byte{0, 0x0b}))), fuel.ErrModuleLimit, "body of 100000000 bytes"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if len(c.wasm) > 40 {
				t.Fatalf("test module of %d bytes", len(c.wasm))
			}
			var err error
			allocated := allocatedBy(func() { _, err = fuel.Instrument(c.wasm, fuel.Options{}) })
			if !errors.Is(err, c.kind) || !strings.Contains(err.Error(), c.msg) || !strings.Contains(err.Error(), "the limit is") {
				t.Errorf("%d bytes claiming 10^8: err = %v, want %v saying %q and the limit", len(c.wasm), err, c.kind, c.msg)
			}
			if allocated > 64<<10 {
				t.Errorf("%d bytes claiming 10^8 made Instrument allocate %d bytes", len(c.wasm), allocated)
			}
		})
	}
}

// allocatedBy is the number of bytes f allocates (on the heap, in all goroutines).
func allocatedBy(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// TestTableBudgetShared: MaxTableElems bounds the tables together. Their maxima are clamped so
// that they add up to the limit at most: what the minimums leave is shared evenly, a table that
// declares less than its share keeping its maximum.
func TestTableBudgetShared(t *testing.T) {
	type tab struct {
		min uint32
		max int64 // -1: none
	}
	enc := func(tabs ...tab) []byte {
		var items [][]byte
		for _, tb := range tabs {
			if tb.max < 0 {
				items = append(items, cat([]byte{0x70, 0x00}, leb(tb.min)))
			} else {
				items = append(items, cat([]byte{0x70, 0x01}, leb(tb.min), leb(uint32(tb.max))))
			}
		}
		return module(section(4, vec(items...)))
	}
	many := make([]tab, 1000)
	wantMany := make([]int64, 1000)
	for i := range many {
		many[i], wantMany[i] = tab{0, -1}, 100
	}
	for _, c := range []struct {
		name  string
		tabs  []tab
		limit uint32
		want  []int64
	}{
		{"one table gets it all", []tab{{1, -1}}, 1000, []int64{1000}},
		{"one table, smaller max kept", []tab{{1, 10}}, 1000, []int64{10}},
		{"1000 tables without maximum", many, 100_000, wantMany},
		{"minimums first, the rest shared", []tab{{10, -1}, {0, -1}}, 100, []int64{55, 45}},
		{"small maximum kept, the rest shared", []tab{{0, 5}, {0, -1}, {0, -1}, {0, 2000}}, 1000, []int64{5, 332, 332, 331}},
		{"minimums use it all", []tab{{600, -1}, {400, 1000}}, 1000, []int64{600, 400}},
		{"all within", []tab{{0, 300}, {0, 300}, {0, 400}}, 1000, []int64{300, 300, 400}},
	} {
		t.Run(c.name, func(t *testing.T) {
			out, err := fuel.Instrument(enc(c.tabs...), fuel.Options{MaxTableElems: c.limit})
			if err != nil {
				t.Fatal(err)
			}
			got := definedTableMaxima(t, out)
			var sum int64
			for i, m := range got {
				if m < 0 {
					t.Fatalf("table %d has no maximum after instrumenting", i)
				}
				sum += m
			}
			if sum > int64(c.limit) {
				t.Errorf("the maxima add up to %d, over the limit of %d", sum, c.limit)
			}
			if fmt.Sprint(got) != fmt.Sprint(c.want) {
				t.Errorf("maxima %v, want %v", short(got), short(c.want))
			}
		})
	}
}

// TestTableBudgetRandom: random tables and limits. A module whose minimums fit is accepted and
// compiles; its maxima lie between each table's minimum and declared maximum and add up to the
// limit at most (exactly, if a table declared none); a table clamped below its declared maximum
// grows by no less than any other table, give or take one element (max-min fairness).
func TestTableBudgetRandom(t *testing.T) {
	ctx := context.Background()
	rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigInterpreter())
	defer rt.Close(ctx)
	rng := rand.New(rand.NewSource(12))
	accepted := 0
	for iter := 0; iter < 500; iter++ {
		n := 1 + rng.Intn(8)
		limit := uint32(1 + rng.Intn(2000))
		mins, maxs := make([]uint32, n), make([]int64, n)
		var items [][]byte
		var sumMin uint64
		unbounded := false
		for i := range mins {
			mins[i] = uint32(rng.Intn(300))
			sumMin += uint64(mins[i])
			if rng.Intn(3) == 0 {
				maxs[i] = -1
				unbounded = true
				items = append(items, cat([]byte{0x70, 0x00}, leb(mins[i])))
			} else {
				maxs[i] = int64(mins[i]) + int64(rng.Intn(600))
				items = append(items, cat([]byte{0x70, 0x01}, leb(mins[i]), leb(uint32(maxs[i]))))
			}
		}
		desc := fmt.Sprintf("limit %d, minimums %v, maxima %v", limit, mins, maxs)
		out, err := fuel.Instrument(module(section(4, vec(items...))), fuel.Options{MaxTableElems: limit})
		if sumMin > uint64(limit) {
			if !errors.Is(err, fuel.ErrTableLimit) {
				t.Fatalf("%s: err = %v, want ErrTableLimit", desc, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", desc, err)
		}
		got := definedTableMaxima(t, out)
		var sum, most int64
		for i, m := range got {
			if m < int64(mins[i]) || (maxs[i] >= 0 && m > maxs[i]) {
				t.Fatalf("%s: table %d gets maximum %d", desc, i, m)
			}
			sum += m
			most = max(most, m-int64(mins[i]))
		}
		if sum > int64(limit) || (unbounded && sum != int64(limit)) {
			t.Fatalf("%s: maxima %v add up to %d", desc, got, sum)
		}
		for i, m := range got {
			if (maxs[i] < 0 || m < maxs[i]) && m-int64(mins[i]) < most-1 {
				t.Fatalf("%s: maxima %v: table %d is clamped to less than the others get", desc, got, i)
			}
		}
		cm, err := rt.CompileModule(ctx, out)
		if err != nil {
			t.Fatalf("%s: output does not compile: %v", desc, err)
		}
		cm.Close(ctx)
		accepted++
	}
	if accepted < 200 {
		t.Errorf("only %d of 500 random modules were within the limit", accepted)
	}
}

func short(v []int64) string {
	if len(v) > 8 {
		return fmt.Sprintf("%v ... (%d tables)", v[:8], len(v))
	}
	return fmt.Sprint(v)
}

// TestTableBudgetAtRuntime: three tables without a maximum and a budget of 90 elements: each
// grows to 30 and no further.
func TestTableBudgetAtRuntime(t *testing.T) {
	ctx := context.Background()
	// (table 0 funcref) x3; (func (export "growN") (param i32) (result i32)
	//   ref.null func, local.get 0, table.grow N)
	var exports, bodies [][]byte
	for i := byte(0); i < 3; i++ {
		exports = append(exports, cat(str(fmt.Sprint("grow", i)), []byte{0x00, i}))
		bodies = append(bodies, fn(noLocals, 0xd0, 0x70, 0x20, 0, 0xfc, 15, i))
	}
	wasm := module(
		section(1, vec([]byte{0x60, 1, 0x7f, 1, 0x7f})),
		section(3, vec([]byte{0}, []byte{0}, []byte{0})),
		section(4, repeat(3, []byte{0x70, 0x00, 0x00})),
		section(7, vec(exports...)),
		section(10, vec(bodies...)),
	)
	rt := newRuntime(t, false, refillFunc(1000, nil))
	mod := instantiate(t, rt, instrument(t, wasm, fuel.Options{MaxTableElems: 90}))
	for i := 0; i < 3; i++ {
		grow := fmt.Sprint("grow", i)
		if got := int32(call(t, ctx, mod, grow, 30)); got != 0 {
			t.Errorf("table %d: growing to 30 elements: table.grow = %d, want the old size 0", i, got)
		}
		if got := int32(call(t, ctx, mod, grow, 1)); got != -1 {
			t.Errorf("table %d: growing past 30 elements (a third of 90): table.grow = %d, want -1", i, got)
		}
	}
}

// TestDefaultLimits: Options{} applies the defaults.
func TestDefaultLimits(t *testing.T) {
	for _, c := range []struct {
		name  string
		wasm  []byte
		kind  error
		limit uint32
	}{
		{"table elements", tablesHolding(fuel.DefaultMaxTableElems/2, fuel.DefaultMaxTableElems/2+1), fuel.ErrTableLimit, fuel.DefaultMaxTableElems},
		{"tables", module(section(4, repeat(fuel.DefaultMaxTables+1, []byte{0x70, 0x00, 0x00}))), fuel.ErrTableLimit, fuel.DefaultMaxTables},
		{"globals", module(section(6, repeat(fuel.DefaultMaxGlobals+1, []byte{0x7f, 0x01, 0x41, 0x00, 0x0b}))), fuel.ErrModuleLimit, fuel.DefaultMaxGlobals},
		{"element entries", passiveElems(fuel.DefaultMaxElemEntries + 1), fuel.ErrModuleLimit, fuel.DefaultMaxElemEntries},
		{"data segments", module(oneMemory, section(11, repeat(fuel.DefaultMaxDataSegments+1, []byte{0x01, 0x00}))), fuel.ErrModuleLimit, fuel.DefaultMaxDataSegments},
		{"locals", module(voidType, oneFunc, section(10, vec(fn(cat([]byte{1}, leb(fuel.DefaultMaxLocals+1), []byte{0x7f}))))), fuel.ErrModuleLimit, fuel.DefaultMaxLocals},
	} {
		_, err := fuel.Instrument(c.wasm, fuel.Options{})
		if !errors.Is(err, c.kind) || !strings.Contains(err.Error(), fmt.Sprintf("the limit is %d", c.limit)) {
			t.Errorf("%s: err = %v, want %v with the default limit %d", c.name, err, c.kind, c.limit)
		}
	}
}

// TestRealGuestsWithinDefaults: the largest guests of each toolchain instrument with the default
// limits. (A missing toolchain fails the test: see testutil.Guest.)
func TestRealGuestsWithinDefaults(t *testing.T) {
	for _, g := range []struct {
		dir  string
		kind toolchain.Kind
	}{
		{"tests/guests/sdkcheck", toolchain.Go},
		{"tests/guests/sdkcheck", toolchain.TinyGo},
		{"tests/guests/sdkcheck-rust", toolchain.Rust},
		{"examples/ratelimit/go", toolchain.Go},
	} {
		t.Run(g.dir+"/"+string(g.kind), func(t *testing.T) {
			wasm := testutil.Guest(t, g.dir, g.kind)
			if _, err := fuel.Instrument(wasm, fuel.Options{MaxCallDepth: 10_000}); err != nil {
				t.Fatalf("%d-byte module: %v", len(wasm), err)
			}
		})
	}
	// and every other guest built so far
	paths, _ := filepath.Glob(testutil.Path("build/guests/*.wasm"))
	for _, p := range paths {
		wasm, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := fuel.Instrument(wasm, fuel.Options{MaxCallDepth: 10_000}); err != nil {
			t.Errorf("%s: %v", filepath.Base(p), err)
		}
	}
}
