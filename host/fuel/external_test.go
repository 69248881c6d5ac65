package fuel_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"

	"github.com/dowasm/dowasm/host/fuel"
)

// TestExternalModules instruments the modules matched by $FUEL_TEST_WASM
// (space-separated globs) and checks that every one wazero accepts still
// compiles afterwards, unless it uses a feature Instrument does not support.
// wazero's spec test corpus makes a thorough opcode check:
//
//	W=$(go list -m -f '{{.Dir}}' github.com/tetratelabs/wazero)
//	FUEL_TEST_WASM="$W/internal/integration_test/spectest/*/testdata/*.wasm" \
//		go test -run TestExternalModules ./host/fuel/
func TestExternalModules(t *testing.T) {
	pattern := os.Getenv("FUEL_TEST_WASM")
	if pattern == "" {
		t.Skip("set FUEL_TEST_WASM to a glob of .wasm files to instrument")
	}
	var paths []string
	for _, p := range strings.Fields(pattern) {
		matches, err := filepath.Glob(p)
		if err != nil {
			t.Fatal(err)
		}
		paths = append(paths, matches...)
	}
	ctx := context.Background()
	cfg := wazero.NewRuntimeConfigCompiler().
		WithCoreFeatures(api.CoreFeaturesV2 | experimental.CoreFeaturesThreads | experimental.CoreFeaturesTailCall)
	rt := wazero.NewRuntimeWithConfig(ctx, cfg)
	defer rt.Close(ctx)
	for _, path := range paths {
		t.Run(path, func(t *testing.T) {
			wasm, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := rt.CompileModule(ctx, wasm); err != nil {
				t.Skipf("wazero rejects the original: %v", err)
			}
			for _, o := range optionSets {
				out, err := fuel.Instrument(wasm, o.opts)
				if errors.Is(err, fuel.ErrUnsupported) {
					t.Skip(err)
				}
				if err != nil {
					t.Fatal(err)
				}
				if _, err := rt.CompileModule(ctx, out); err != nil {
					t.Fatalf("%s: instrumented module does not compile: %v", o.name, err)
				}
				t.Logf("%s: %d -> %d bytes", o.name, len(wasm), len(out))
			}
		})
	}
}
