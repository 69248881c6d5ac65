package fuel_test

import (
	"bytes"
	"context"
	"errors"
	"math/rand"
	"strings"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"github.com/dowasm/dowasm/host/fuel"
)

// TestComputeResultsMatch runs the Rust compute guest before and after
// instrumentation and expects identical results.
func TestComputeResultsMatch(t *testing.T) {
	calls := []struct {
		name   string
		params []uint64
	}{
		{"sort", []uint64{1, 1}}, {"sort", []uint64{1000, 2}}, {"sort", []uint64{100_000, 3}},
		{"hash", []uint64{64, 1}}, {"hash", []uint64{4096, 3}}, {"hash", []uint64{65536, 2}},
		{"matmul", []uint64{1}}, {"matmul", []uint64{17}}, {"matmul", []uint64{64}},
		{"fib", []uint64{0}}, {"fib", []uint64{1}}, {"fib", []uint64{25}},
		{"ops", []uint64{10_000, 42}},
	}
	for _, v := range rustVariants {
		for _, o := range optionSets {
			t.Run(v.name+"/"+o.name, func(t *testing.T) {
				ctx := context.Background()
				plain := rust(t, "compute", v)
				var refills int64
				rt := newRuntime(t, false, refillFunc(10_000, &refills))
				orig := instantiate(t, rt, plain)
				inst := instantiate(t, rt, instrument(t, plain, o.opts))
				for _, c := range calls {
					want := call(t, ctx, orig, c.name, c.params...)
					if got := call(t, ctx, inst, c.name, c.params...); got != want {
						t.Errorf("%s%v = %#x instrumented, %#x original", c.name, c.params, got, want)
					}
				}
				if refills == 0 {
					t.Error("the instrumented guest never called refill")
				}
			})
		}
	}
}

// TestFeaturesMatch covers bulk memory, reference types, SIMD, sign
// extension and saturating conversions, as assembled by binaryen.
func TestFeaturesMatch(t *testing.T) {
	ctx := context.Background()
	plain := wat(t, "features")
	rt := newRuntime(t, false, refillFunc(1000, nil))
	for _, c := range []struct {
		name   string
		params []uint64
	}{
		{"tables", nil}, {"bulk", nil},
		{"scalar", []uint64{0}}, {"scalar", []uint64{0x1ff}}, {"scalar", []uint64{0xfffe}}, {"scalar", []uint64{7}},
		{"simd", []uint64{0}}, {"simd", []uint64{12345}},
		{"loops", []uint64{1}}, {"loops", []uint64{100_000}},
	} {
		// A fresh pair of instances per call: the functions change state.
		want := call(t, ctx, instantiate(t, rt, plain), c.name, c.params...)
		for _, o := range optionSets {
			got := call(t, ctx, instantiate(t, rt, instrument(t, plain, o.opts)), c.name, c.params...)
			if got != want {
				t.Errorf("%s: %s%v = %#x instrumented, %#x original", o.name, c.name, c.params, got, want)
			}
		}
	}
}

func TestTailCallsMatch(t *testing.T) {
	ctx := context.Background()
	plain := wat(t, "tailcall")
	rt := newRuntime(t, false, refillFunc(1000, nil))
	want := call(t, ctx, instantiate(t, rt, plain), "count", 100_000, 0)
	for _, o := range optionSets {
		if got := call(t, ctx, instantiate(t, rt, instrument(t, plain, o.opts)), "count", 100_000, 0); got != want {
			t.Errorf("%s: count = %d instrumented, %d original", o.name, got, want)
		}
	}
}

// Hand assembly of test modules, for what binaryen cannot express.

func leb(v uint32) []byte {
	var b []byte
	for v >= 0x80 {
		b = append(b, byte(v)|0x80)
		v >>= 7
	}
	return append(b, byte(v))
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func vec(items ...[]byte) []byte { return cat(leb(uint32(len(items))), cat(items...)) }

func str(s string) []byte { return cat(leb(uint32(len(s))), []byte(s)) }

func section(id byte, payload ...[]byte) []byte {
	p := cat(payload...)
	return cat([]byte{id}, leb(uint32(len(p))), p)
}

// fn encodes a function body: locals is the encoded local declarations
// (including their count), code the instructions without the final end.
func fn(locals []byte, code ...byte) []byte {
	b := cat(locals, code, []byte{0x0b})
	return cat(leb(uint32(len(b))), b)
}

func module(sections ...[]byte) []byte {
	return cat([]byte{0, 'a', 's', 'm', 1, 0, 0, 0}, cat(sections...))
}

var noLocals = []byte{0}

// shiftModule exercises every place that holds a function index: all eight
// element segment forms, ref.func in code and in a global initializer,
// exports (of an import too), the start function and the name section. It
// also has a loop with parameters (multi-value). Function indices:
//
//	0 env.base (import) -> 1000    1-8 f1..f8 -> 1..8    9 dispatch(i)
//	10 start                       11 setup               12 mv(n)
//	13 f42 -> 42
//
// After setup, dispatch(i) for i = 0..11 calls table[i], which holds
// 1 2 3 4 null 5 6 7 8 42 2 8.
func shiftModule() []byte {
	const (
		t0 = iota // () -> i32
		t1        // (i32) -> i32
		t2        // (i32 i32) -> (i32 i32)
		t3        // () -> ()
	)
	i32 := byte(0x7f)
	types := section(1, vec(
		[]byte{0x60, 0, 1, i32},
		[]byte{0x60, 1, i32, 1, i32},
		[]byte{0x60, 2, i32, i32, 2, i32, i32},
		[]byte{0x60, 0, 0},
	))
	imports := section(2, vec(
		cat(str("env"), str("base"), []byte{0x00, t0}),
		cat(str("env"), str("g"), []byte{0x03, i32, 0}),
	))
	funcs := section(3, vec(
		[]byte{t0}, []byte{t0}, []byte{t0}, []byte{t0}, []byte{t0}, []byte{t0}, []byte{t0}, []byte{t0},
		[]byte{t1}, []byte{t3}, []byte{t3}, []byte{t1}, []byte{t0},
	))
	table := section(4, vec([]byte{0x70, 0x01, 12, 12}))
	globals := section(6, vec(
		[]byte{0x70, 0, 0xd2, 13, 0x0b}, // global 1: funcref = ref.func f42
		[]byte{i32, 1, 0x23, 0, 0x0b},   // global 2: started, mut i32 = global.get 0
	))
	exports := section(7, vec(
		cat(str("dispatch"), []byte{0x00, 9}),
		cat(str("setup"), []byte{0x00, 11}),
		cat(str("mv"), []byte{0x00, 12}),
		cat(str("f7"), []byte{0x00, 7}),
		cat(str("base"), []byte{0x00, 0}),
		cat(str("started"), []byte{0x03, 2}),
	))
	start := section(8, leb(10))
	end := []byte{0x0b}
	i32c := func(v byte) []byte { return []byte{0x41, v} }
	elems := section(9, vec(
		cat([]byte{0}, i32c(0), end, vec([]byte{1}, []byte{2})),                            // active, table 0
		cat([]byte{1, 0x00}, vec([]byte{6})),                                               // passive
		cat([]byte{2, 0}, i32c(2), end, []byte{0x00}, vec([]byte{3})),                      // active, explicit table
		cat([]byte{3, 0x00}, vec([]byte{8})),                                               // declarative
		cat([]byte{4}, i32c(3), end, vec([]byte{0xd2, 4, 0x0b}, []byte{0xd0, 0x70, 0x0b})), // active, expressions
		cat([]byte{5, 0x70}, vec([]byte{0xd2, 7, 0x0b})),                                   // passive, expressions
		cat([]byte{6, 0}, i32c(5), end, []byte{0x70}, vec([]byte{0xd2, 5, 0x0b})),          // active, table, expressions
		cat([]byte{7, 0x70}, vec([]byte{0xd2, 8, 0x0b})),                                   // declarative, expressions
	))
	var bodies [][]byte
	for i := byte(1); i <= 8; i++ {
		bodies = append(bodies, fn(noLocals, 0x41, i))
	}
	bodies = append(bodies,
		// dispatch: call_indirect (type t0) (local.get 0)
		fn(noLocals, 0x20, 0, 0x11, t0, 0),
		// start: global.set 2 (i32.add (call 0) (call 3))
		fn(noLocals, 0x10, 0, 0x10, 3, 0x6a, 0x24, 2),
		// setup
		fn(noLocals,
			0x41, 6, 0x41, 0, 0x41, 1, 0xfc, 12, 1, 0, // table.init seg 1 at 6
			0x41, 7, 0x41, 0, 0x41, 1, 0xfc, 12, 5, 0, // table.init seg 5 at 7
			0xfc, 13, 1, // elem.drop 1
			0x41, 8, 0xd2, 8, 0x26, 0, // table.set 8 (ref.func 8)
			0x41, 9, 0x23, 1, 0x26, 0, // table.set 9 (global.get 1)
			0x41, 10, 0x41, 1, 0x41, 1, 0xfc, 14, 0, 0, // table.copy 10 <- 1
			0x41, 11, 0xd2, 8, 0x41, 1, 0xfc, 17, 0, // table.fill 11 (ref.func 8) x1
		),
		// mv(n): a loop (param i32 i32) (result i32 i32) summing n..1
		fn([]byte{1, 2, i32},
			0x20, 0, 0x41, 0, // n, acc
			0x03, t2, // loop (type t2)
			0x21, 2, 0x21, 1, // acc -> local 2, n -> local 1
			0x20, 1, 0x41, 1, 0x6b, // n-1
			0x20, 2, 0x20, 1, 0x6a, // acc+n
			0x20, 1, 0x41, 1, 0x4b, 0x0d, 0, // br_if 0 (n > 1)
			0x0b,                   // end loop
			0x21, 2, 0x1a, 0x20, 2, // keep acc
		),
		fn(noLocals, 0x41, 42),
	)
	code := section(10, vec(bodies...))
	names := section(0, str("name"), section(1, vec(
		cat(leb(0), str("base")), cat(leb(9), str("dispatch")), cat(leb(12), str("mv")),
	)))
	return module(types, imports, funcs, table, globals, exports, start, elems, code, names)
}

// envModule provides the imports of shiftModule: function base and the
// immutable global g = 5. (wazero host modules cannot export globals.)
func envModule() []byte {
	return module(
		section(1, vec([]byte{0x60, 0, 1, 0x7f})),
		section(3, vec([]byte{0})),
		section(6, vec([]byte{0x7f, 0, 0x41, 5, 0x0b})),
		section(7, vec(cat(str("base"), []byte{0x00, 0}), cat(str("g"), []byte{0x03, 0}))),
		section(10, vec(fn(noLocals, 0x41, 0xe8, 0x07))), // i32.const 1000
	)
}

func TestIndexShift(t *testing.T) {
	ctx := context.Background()
	plain := shiftModule()
	for name, wasm := range map[string][]byte{"original": plain, "instrumented": instrument(t, plain),
		"depth": instrument(t, plain, fuel.Options{MaxCallDepth: 100})} {
		t.Run(name, func(t *testing.T) {
			rt := newRuntime(t, false, refillFunc(5, nil))
			compiled, err := rt.CompileModule(ctx, envModule())
			if err != nil {
				t.Fatal(err)
			}
			if _, err := rt.InstantiateModule(ctx, compiled, wazero.NewModuleConfig().WithName("env")); err != nil {
				t.Fatal(err)
			}
			mod := instantiate(t, rt, wasm)
			if got := mod.ExportedGlobal("started").Get(); got != 1003 {
				t.Errorf("start function set started = %d, want 1003", got)
			}
			if got := call(t, ctx, mod, "base"); got != 1000 {
				t.Errorf("re-exported import base() = %d, want 1000", got)
			}
			if got := call(t, ctx, mod, "f7"); got != 7 {
				t.Errorf("f7() = %d, want 7", got)
			}
			if got := call(t, ctx, mod, "mv", 10); got != 55 {
				t.Errorf("mv(10) = %d, want 55", got)
			}
			call(t, ctx, mod, "setup")
			want := []int64{1, 2, 3, 4, -1, 5, 6, 7, 8, 42, 2, 8}
			for i, w := range want {
				res, err := mod.ExportedFunction("dispatch").Call(ctx, uint64(i))
				switch {
				case w < 0 && err == nil:
					t.Errorf("dispatch(%d) = %d, want a trap on the null entry", i, res[0])
				case w >= 0 && err != nil:
					t.Errorf("dispatch(%d): %v", i, err)
				case w >= 0 && int64(res[0]) != w:
					t.Errorf("dispatch(%d) = %d, want %d", i, res[0], w)
				}
			}
		})
	}
}

// TestNamesFollowFunctions checks that the name section still names the
// right functions after the shift, in a compiler-made module.
func TestNamesFollowFunctions(t *testing.T) {
	ctx := context.Background()
	plain := rust(t, "compute", rustVariants[0])
	rt := wazero.NewRuntime(ctx)
	defer rt.Close(ctx)
	before, err := rt.CompileModule(ctx, plain)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range optionSets {
		after, err := rt.CompileModule(ctx, instrument(t, plain, o.opts))
		if err != nil {
			t.Fatal(err)
		}
		want := []string{fuel.RefillName}
		if o.opts.MaxCallDepth != 0 {
			want = append(want, fuel.TooDeepName)
		}
		for name, def := range before.ExportedFunctions() {
			got := after.ExportedFunctions()[name]
			if got.Name() != def.Name() || got.Index() != def.Index()+uint32(len(want)) {
				t.Errorf("%s: export %s: function %d %q became %d %q", o.name, name, def.Index(), def.Name(), got.Index(), got.Name())
			}
		}
		imports := after.ImportedFunctions()
		if len(imports) != len(want) {
			t.Fatalf("%s: %d imported functions, want %v", o.name, len(imports), want)
		}
		for i, w := range want {
			if mod, name, _ := imports[i].Import(); mod != fuel.ImportModule || name != w {
				t.Errorf("%s: import %s.%s, want %s.%s", o.name, mod, name, fuel.ImportModule, w)
			}
		}
		if got := imports[0].ResultTypes(); len(got) != 1 || got[0] != api.ValueTypeI64 || len(imports[0].ParamTypes()) != 0 {
			t.Errorf("%s: refill has type %v -> %v, want () -> i64", o.name, imports[0].ParamTypes(), got)
		}
		if len(want) == 2 && (len(imports[1].ParamTypes()) != 0 || len(imports[1].ResultTypes()) != 0) {
			t.Errorf("%s: too_deep has type %v -> %v, want () -> ()", o.name, imports[1].ParamTypes(), imports[1].ResultTypes())
		}
	}
}

func TestRejectsReservedImport(t *testing.T) {
	for _, c := range []struct {
		name string
		typ  []byte
	}{
		{"other", []byte{0x60, 0, 1, 0x7e}},
		{fuel.RefillName, []byte{0x60, 0, 1, 0x7e}},
		{fuel.TooDeepName, []byte{0x60, 0, 0}},
	} {
		wasm := module(
			section(1, vec(c.typ)),
			section(2, vec(cat(str(fuel.ImportModule), str(c.name), []byte{0x00, 0}))),
		)
		for _, o := range optionSets {
			_, err := fuel.Instrument(wasm, o.opts)
			if !errors.Is(err, fuel.ErrReservedImport) {
				t.Fatalf("%s, %s: err = %v, want ErrReservedImport", c.name, o.name, err)
			}
			if !strings.Contains(err.Error(), "import section") || !strings.Contains(err.Error(), fuel.ImportModule) {
				t.Errorf("error does not say where: %v", err)
			}
		}
	}
}

func TestTableLimit(t *testing.T) {
	defined := func(limits ...byte) []byte {
		return module(section(4, vec(cat([]byte{0x70}, limits))))
	}
	imported := func(limits ...byte) []byte {
		return module(section(2, vec(cat(str("env"), str("tab"), []byte{0x01, 0x70}, limits))))
	}
	for _, c := range []struct {
		name  string
		wasm  []byte
		limit uint32
		ok    bool
		where string
	}{
		{"no check", defined(0x00, 1), 0, true, ""},
		{"defined within", defined(0x01, 1, 100), 100, true, ""},
		{"defined no max: clamped", defined(0x00, 1), 100, true, ""},
		{"defined max over: clamped", defined(0x01, 1, 101), 100, true, ""},
		{"second table over: clamped", module(section(4, vec([]byte{0x70, 0x01, 0, 5}, []byte{0x6f, 0x01, 0, 0xe9, 0x07}))), 1000, true, ""},
		{"defined min over", defined(0x00, 101), 100, false, "table 0 has a minimum size of 101"},
		{"imported within", imported(0x01, 0, 10), 10, true, ""},
		{"imported no max", imported(0x00, 0), 10, false, `table 0 (imported as "env" "tab") has no maximum`},
	} {
		t.Run(c.name, func(t *testing.T) {
			out, err := fuel.Instrument(c.wasm, fuel.Options{MaxTableElems: c.limit})
			if c.ok {
				if err != nil {
					t.Fatal(err)
				}
				cm, err := wazero.NewRuntime(context.Background()).CompileModule(context.Background(), out)
				if err != nil {
					t.Fatalf("output does not compile: %v", err)
				}
				_ = cm
				if c.limit != 0 {
					for i, max := range definedTableMaxima(t, out) {
						if max < 0 || uint32(max) > c.limit {
							t.Errorf("table %d: maximum %d after instrumenting, want one within %d", i, max, c.limit)
						}
					}
				}
				return
			}
			if !errors.Is(err, fuel.ErrTableLimit) {
				t.Fatalf("err = %v, want ErrTableLimit", err)
			}
			if !strings.Contains(err.Error(), c.where) || !strings.Contains(err.Error(), "limit") {
				t.Errorf("error %q does not contain %q and the limit", err, c.where)
			}
		})
	}
}

// TestRejectsReferencesToInjected: an invalid guest naming the index that
// the fuel global, scratch local or refill function will take must not get
// through, even when the caller skipped validation.
func TestRejectsReferencesToInjected(t *testing.T) {
	oneFunc := func(locals []byte, code ...byte) []byte {
		return module(
			section(1, vec([]byte{0x60, 0, 0})),
			section(3, vec([]byte{0})),
			section(10, vec(fn(locals, code...))),
		)
	}
	for name, wasm := range map[string][]byte{
		"global.set fuel":   oneFunc(noLocals, 0x42, 0, 0x24, 0),
		"global.get fuel":   oneFunc(noLocals, 0x23, 0, 0x1a),
		"local.set scratch": oneFunc([]byte{1, 1, 0x7f}, 0x03, 0x40, 0x41, 0, 0x21, 1, 0x0b),
		"call refill":       oneFunc(noLocals, 0x10, 1),
		"call too_deep":     oneFunc(noLocals, 0x10, 2),
		"global.get depth":  oneFunc(noLocals, 0x23, 1, 0x1a),
		"ref.func refill":   oneFunc(noLocals, 0xd2, 1, 0x1a),
		"export fuel": module(
			section(7, vec(cat(str("fuel"), []byte{0x03, 0}))),
		),
	} {
		t.Run(name, func(t *testing.T) {
			for _, o := range optionSets {
				if _, err := fuel.Instrument(wasm, o.opts); !errors.Is(err, fuel.ErrMalformed) {
					t.Fatalf("%s: err = %v, want ErrMalformed", o.name, err)
				}
			}
		})
	}
}

func TestErrorsSayWhere(t *testing.T) {
	wasm := module(
		section(1, vec([]byte{0x60, 0, 0})),
		section(3, vec([]byte{0}, []byte{0})),
		section(10, vec(fn(noLocals), fn(noLocals, 0x01, 0x01, 0xfd, 0x9a))),
	)
	_, err := fuel.Instrument(wasm, fuel.Options{})
	var fe *fuel.Error
	if !errors.As(err, &fe) {
		t.Fatalf("err = %v, want a *fuel.Error", err)
	}
	opcodeOff := bytes.LastIndex(wasm, []byte{0xfd, 0x9a})
	if fe.Section != "code" || fe.Func != 1 || fe.Offset != opcodeOff || !errors.Is(err, fuel.ErrMalformed) {
		t.Errorf("got %+v, want code section, function 1, offset %#x", fe, opcodeOff)
	}
	for _, want := range []string{"code section", "function 1", "unknown opcode 0xfd 154"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
}

func TestUnsupportedFeatures(t *testing.T) {
	wasm := module(
		section(1, vec([]byte{0x60, 0, 0})),
		section(3, vec([]byte{0})),
		section(10, vec(fn(noLocals, 0x1f, 0x40, 0x00, 0x0b))), // try_table
	)
	if _, err := fuel.Instrument(wasm, fuel.Options{}); !errors.Is(err, fuel.ErrUnsupported) {
		t.Fatalf("err = %v, want ErrUnsupported", err)
	}
}

// TestMalformedInputs: every truncation of valid modules, and random
// corruptions of them, either instrument to a module wazero accepts or
// fail with a *fuel.Error; nothing panics.
func TestMalformedInputs(t *testing.T) {
	seeds := [][]byte{shiftModule(), envModule(), wat(t, "features"), wat(t, "runaway")}
	rng := rand.New(rand.NewSource(1))
	check := func(wasm []byte) {
		_, err := fuel.Instrument(wasm, fuel.Options{MaxTableElems: 100, MaxCallDepth: uint32(len(wasm))})
		var fe *fuel.Error
		if err != nil && !errors.As(err, &fe) {
			t.Fatalf("error of type %T: %v", err, err)
		}
	}
	for _, seed := range seeds {
		for n := 0; n < len(seed); n++ {
			check(seed[:n])
		}
		for i := 0; i < 2000; i++ {
			b := bytes.Clone(seed)
			for j := rng.Intn(4); j >= 0; j-- {
				b[rng.Intn(len(b))] = byte(rng.Intn(256))
			}
			check(b)
		}
	}
	check(nil)
	check([]byte("\x00asm\x01\x00\x00\x00\x0a\xff\xff\xff\xff\x0f"))
	// A data section claiming 10^8 segments in 9 bytes (found by the fuzzer:
	// wazero allocates gigabytes for it) is refused: over the limit on data
	// segments, and with a count under the limit, for its size.
	if _, err := fuel.Instrument([]byte("\x00asm\x01\x00\x00\x00\v\v\xc1\x80\xff00000000"), fuel.Options{}); !errors.Is(err, fuel.ErrModuleLimit) {
		t.Errorf("data section with an impossible count: err = %v, want ErrModuleLimit", err)
	}
	if _, err := fuel.Instrument([]byte("\x00asm\x01\x00\x00\x00\v\v\xc1\x80\x0600000000"), fuel.Options{}); !errors.Is(err, fuel.ErrMalformed) {
		t.Errorf("data section with an impossible count under the limit: err = %v, want ErrMalformed", err)
	}
}

// TestNoSections: an empty module gains the type, import and global
// sections in order.
func TestNoSections(t *testing.T) {
	out := instrument(t, module())
	rt := wazero.NewRuntime(context.Background())
	defer rt.Close(context.Background())
	compiled, err := rt.CompileModule(context.Background(), out)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(compiled.ImportedFunctions()); n != 1 {
		t.Errorf("%d imported functions, want 1", n)
	}
}

// definedTableMaxima reads the table section of a module: each defined table's maximum, -1
// when it has none.
func definedTableMaxima(t *testing.T, wasm []byte) []int64 {
	t.Helper()
	uleb := func(b []byte, i *int) uint64 {
		var v uint64
		for shift := 0; ; shift += 7 {
			c := b[*i]
			*i++
			v |= uint64(c&0x7f) << shift
			if c < 0x80 {
				return v
			}
		}
	}
	var out []int64
	for i := 8; i < len(wasm); {
		id := wasm[i]
		i++
		size := int(uleb(wasm, &i))
		if id == 4 {
			j := i
			n := int(uleb(wasm, &j))
			for k := 0; k < n; k++ {
				j++ // reference type
				flags := wasm[j]
				j++
				uleb(wasm, &j)
				max := int64(-1)
				if flags&1 != 0 {
					max = int64(uleb(wasm, &j))
				}
				out = append(out, max)
			}
		}
		i += size
	}
	return out
}

// TestMemoryLimit: memories get the limit as their maximum (memory.grow then fails past it);
// a minimum above the limit is refused.
func TestMemoryLimit(t *testing.T) {
	// (memory 1) (func (export "grow") (param i32) (result i32) local.get 0 memory.grow)
	mod := func(limits ...byte) []byte {
		return module(
			section(1, vec([]byte{0x60, 0x01, 0x7f, 0x01, 0x7f})),
			section(3, vec([]byte{0x00})),
			section(5, vec(limits)),
			section(7, vec(cat(str("grow"), []byte{0x00, 0x00}))),
			section(10, vec(cat([]byte{0x06, 0x00}, []byte{0x20, 0x00, 0x40, 0x00, 0x0b}))),
		)
	}
	ctx := context.Background()
	for _, c := range []struct {
		name   string
		limits []byte
	}{{"no max", []byte{0x00, 0x01}}, {"max above", []byte{0x01, 0x01, 0x80, 0x02}}} {
		out, err := fuel.Instrument(mod(c.limits...), fuel.Options{MaxMemoryPages: 4})
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		rt := wazero.NewRuntime(ctx)
		if _, err := rt.NewHostModuleBuilder(fuel.ImportModule).NewFunctionBuilder().
			WithFunc(func() int64 { return 1 << 20 }).Export(fuel.RefillName).Instantiate(ctx); err != nil {
			t.Fatal(err)
		}
		m, err := rt.InstantiateWithConfig(ctx, out, wazero.NewModuleConfig().WithName(""))
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		grow := m.ExportedFunction("grow")
		if r, err := grow.Call(ctx, 3); err != nil || int32(r[0]) != 1 {
			t.Errorf("%s: growing to the limit: %v %v, want old size 1", c.name, r, err)
		}
		if r, err := grow.Call(ctx, 1); err != nil || int32(r[0]) != -1 {
			t.Errorf("%s: growing past the limit: %v %v, want -1", c.name, r, err)
		}
		rt.Close(ctx)
	}
	if _, err := fuel.Instrument(mod(0x00, 5), fuel.Options{MaxMemoryPages: 4}); !errors.Is(err, fuel.ErrMemoryLimit) || !strings.Contains(err.Error(), "at least 5 pages") {
		t.Errorf("a 5-page minimum with a 4-page limit: %v", err)
	}
}
