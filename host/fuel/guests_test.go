package fuel_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"

	"github.com/dowasm/dowasm/host/fuel"
)

// Guests are built from testdata/ at test time, once per test binary run,
// into a directory removed when the tests end.

var buildDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "fuel-test-*")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	buildDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// builds caches build results by output name; a failed build is cached too
// so that every test depending on it reports the same error.
var builds sync.Map // string -> *build

type build struct {
	once    sync.Once
	wasm    []byte
	err     error
	missing string
}

func cachedBuild(tb testing.TB, out, tool string, args ...string) []byte {
	tb.Helper()
	v, _ := builds.LoadOrStore(out, &build{})
	b := v.(*build)
	b.once.Do(func() {
		if _, err := os.Stat(tool); err != nil {
			b.missing = fmt.Sprintf("%s is not installed: cannot build %s (run ./task setup-guests: it installs Debian's rustc and binaryen)", tool, out)
			return
		}
		path := filepath.Join(buildDir, out)
		cmd := exec.Command(tool, append(args, "-o", path)...)
		if msg, err := cmd.CombinedOutput(); err != nil {
			b.err = fmt.Errorf("%s %s: %v\n%s", tool, strings.Join(args, " "), err, msg)
			return
		}
		b.wasm, b.err = os.ReadFile(path)
	})
	if b.missing != "" {
		// A missing tool fails rather than skips: a silently skipped test would hide a lost
		// setup step.
		tb.Fatal(b.missing)
	}
	if b.err != nil {
		tb.Fatal(b.err)
	}
	return b.wasm
}

// wat assembles testdata/<name>.wat with binaryen's wasm-as.
func wat(tb testing.TB, name string) []byte {
	tb.Helper()
	return cachedBuild(tb, name+".wasm", "/usr/bin/wasm-as", "-all", filepath.Join("testdata", name+".wat"))
}

// rustVariant is one way of compiling testdata/compute.rs.
type rustVariant struct {
	name  string
	flags []string
}

// rustVariants: the default target (WebAssembly MVP, with DWARF sections
// that Instrument drops) and one with SIMD, bulk memory, sign extension and
// saturating conversions enabled, stripped of debug info.
var rustVariants = []rustVariant{
	{"mvp", nil},
	{"simd", []string{"-C", "strip=debuginfo", "-C",
		"target-feature=+simd128,+bulk-memory,+sign-ext,+nontrapping-fptoint,+mutable-globals"}},
}

// rust compiles testdata/<name>.rs for wasm32-unknown-unknown with the
// rustc 1.63 that has that target installed.
func rust(tb testing.TB, name string, v rustVariant) []byte {
	tb.Helper()
	args := append([]string{"--target", "wasm32-unknown-unknown", "-O", "--crate-type", "cdylib"}, v.flags...)
	args = append(args, filepath.Join("testdata", name+".rs"))
	return cachedBuild(tb, name+"-"+v.name+".wasm", "/usr/bin/rustc", args...)
}

// errDeadline is what the test refill function panics with to stop a guest.
var errDeadline = errors.New("guest ran past its deadline")

// refillFunc is the host side of the meter used by the tests: it traps once
// the deadline of the guest call's context has passed, and otherwise grants
// amount units of fuel.
func refillFunc(amount int64, calls *int64) func(context.Context) int64 {
	return func(ctx context.Context) int64 {
		if calls != nil {
			*calls++ // a guest call runs on one goroutine at a time
		}
		if d, ok := ctx.Deadline(); ok && time.Now().After(d) {
			panic(errDeadline)
		}
		return amount
	}
}

// errTooDeep is what the test too_deep function panics with.
var errTooDeep = errors.New("call depth limit exceeded")

func tooDeep(context.Context) { panic(errTooDeep) }

// newRuntime returns a compiler runtime with the fuel host module: refill,
// and too_deep, which panics with errTooDeep. Tail calls are enabled on top
// of WebAssembly 2.0 for tailcall.wat.
func newRuntime(tb testing.TB, closeOnDone bool, refill func(context.Context) int64) wazero.Runtime {
	tb.Helper()
	ctx := context.Background()
	cfg := wazero.NewRuntimeConfigCompiler().
		WithCoreFeatures(api.CoreFeaturesV2 | experimental.CoreFeaturesTailCall).
		WithCloseOnContextDone(closeOnDone)
	rt := wazero.NewRuntimeWithConfig(ctx, cfg)
	tb.Cleanup(func() { rt.Close(ctx) })
	if refill != nil {
		_, err := rt.NewHostModuleBuilder(fuel.ImportModule).
			NewFunctionBuilder().WithFunc(refill).Export(fuel.RefillName).
			NewFunctionBuilder().WithFunc(tooDeep).Export(fuel.TooDeepName).
			Instantiate(ctx)
		if err != nil {
			tb.Fatal(err)
		}
	}
	return rt
}

// instantiate compiles and instantiates wasm under a fresh anonymous name.
func instantiate(tb testing.TB, rt wazero.Runtime, wasm []byte) api.Module {
	tb.Helper()
	ctx := context.Background()
	compiled, err := rt.CompileModule(ctx, wasm)
	if err != nil {
		tb.Fatal(err)
	}
	mod, err := rt.InstantiateModule(ctx, compiled, wazero.NewModuleConfig().WithName(""))
	if err != nil {
		tb.Fatal(err)
	}
	return mod
}

// instrument is fuel.Instrument that fails the test on error; opts are
// fuel.Options{} unless given.
func instrument(tb testing.TB, wasm []byte, opts ...fuel.Options) []byte {
	tb.Helper()
	var o fuel.Options
	if len(opts) > 0 {
		o = opts[0]
	}
	out, err := fuel.Instrument(wasm, o)
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

// optionSets are the ways of instrumenting that the equivalence tests
// compare with the original: fuel only, and fuel with a call depth limit
// that the test guests stay within.
var optionSets = []struct {
	name string
	opts fuel.Options
}{
	{"fuel", fuel.Options{}},
	{"depth", fuel.Options{MaxCallDepth: 10_000}},
}

// call calls an exported function and returns its first result.
func call(tb testing.TB, ctx context.Context, mod api.Module, name string, params ...uint64) uint64 {
	tb.Helper()
	res, err := mod.ExportedFunction(name).Call(ctx, params...)
	if err != nil {
		tb.Fatalf("%s%v: %v", name, params, err)
	}
	if len(res) == 0 {
		return 0
	}
	return res[0]
}
