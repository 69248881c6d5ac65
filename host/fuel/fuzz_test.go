package fuel_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"

	"github.com/dowasm/dowasm/host/fuel"
)

// FuzzInstrument checks that Instrument never panics, fails only with a
// *fuel.Error, grows a module by a bounded factor, and produces only
// modules that wazero compiles, unless wazero rejects the original too.
//
//	go test -run '^$' -fuzz FuzzInstrument -fuzztime 60s ./host/fuel/
func FuzzInstrument(f *testing.F) {
	f.Add(module())
	f.Add(shiftModule())
	f.Add(envModule())
	for _, name := range []string{"features", "runaway", "tailcall"} {
		// Seeds are optional: without wasm-as the fuzzer starts from the
		// hand-assembled modules only.
		out := filepath.Join(f.TempDir(), name+".wasm")
		if exec.Command("/usr/bin/wasm-as", "-all", filepath.Join("testdata", name+".wat"), "-o", out).Run() == nil {
			if wasm, err := os.ReadFile(out); err == nil {
				f.Add(wasm)
			}
		}
	}
	ctx := context.Background()
	// The interpreter validates exactly as the compiler does, faster.
	cfg := wazero.NewRuntimeConfigInterpreter().WithCoreFeatures(api.CoreFeaturesV2 |
		experimental.CoreFeaturesThreads | experimental.CoreFeaturesTailCall | experimental.CoreFeaturesExtendedConst)
	rt := wazero.NewRuntimeWithConfig(ctx, cfg)
	f.Cleanup(func() { rt.Close(ctx) })

	f.Fuzz(func(t *testing.T, wasm []byte) {
		// The depth limit varies with the input (0 turns it off).
		out, err := fuel.Instrument(wasm, fuel.Options{MaxTableElems: 1 << 16, MaxCallDepth: uint32(len(wasm) % 3 * 1000)})
		if err != nil {
			var fe *fuel.Error
			if !errors.As(err, &fe) {
				t.Fatalf("error of type %T: %v", err, err)
			}
			return
		}
		// The checks of a loop take at most about 90 bytes and the loop at
		// least three bytes of input (loop, block type and end); other
		// checks follow at least 256 instructions.
		if limit := 40*len(wasm) + 256; len(out) > limit {
			t.Fatalf("output of %d bytes for %d bytes of input", len(out), len(wasm))
		}
		if _, err := fuel.Instrument(out, fuel.Options{}); !errors.Is(err, fuel.ErrReservedImport) {
			t.Fatalf("instrumenting twice: err = %v, want ErrReservedImport", err)
		}
		compiled, err := rt.CompileModule(ctx, out)
		if err == nil {
			compiled.Close(ctx)
			return
		}
		if orig, origErr := rt.CompileModule(ctx, wasm); origErr == nil {
			orig.Close(ctx)
			t.Fatalf("wazero compiles the original but not the instrumented module: %v", err)
		}
	})
}
