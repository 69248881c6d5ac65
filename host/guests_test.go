package host

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/dowasm/dowasm/abi"
	"github.com/dowasm/dowasm/storage"
	"github.com/dowasm/dowasm/toolchain"
	"github.com/tetratelabs/wazero"
)

// guestSources is every guest the project builds, with each toolchain that builds it: adding a
// guest (or a language) is one entry.
var guestSources = []struct {
	dir  string
	kind toolchain.Kind
}{
	{"examples/counter/go", toolchain.Go},
	{"examples/ticket/go", toolchain.Go},
	{"examples/ratelimit/go", toolchain.Go},
	{"tests/guests/probe", toolchain.Go},
	{"tests/guests/sdkcheck", toolchain.Go},
	{"examples/counter/go", toolchain.TinyGo},
	{"examples/ticket/go", toolchain.TinyGo},
	{"examples/ratelimit/go", toolchain.TinyGo},
	{"tests/guests/sdkcheck", toolchain.TinyGo},
	{"examples/counter/rust", toolchain.Rust},
	{"examples/ticket/rust", toolchain.Rust},
	{"examples/ratelimit/rust", toolchain.Rust},
}

// Every compiled guest's imports and exports agree with the ABI table (CheckModule names the
// function and both signatures when they do not).
func TestCompiledGuestsMatchABI(t *testing.T) {
	ctx := context.Background()
	r := wazero.NewRuntime(ctx)
	defer r.Close(ctx)
	for _, g := range guestSources {
		src := g.dir + " (" + string(g.kind) + ")"
		cm, err := r.CompileModule(ctx, guestWasmWith(t, g.dir, g.kind))
		if err != nil {
			t.Fatalf("%s: %v", src, err)
		}
		if err := CheckModule(cm); err != nil {
			t.Errorf("%s: %v", src, err)
		}
		imported := 0
		for _, def := range cm.ImportedFunctions() {
			if mod, _, _ := def.Import(); mod == abi.ImportModule {
				imported++
			}
		}
		if imported == 0 {
			t.Errorf("%s imports nothing from %q", src, abi.ImportModule)
		}
	}
}

// The Go SDK's status table (guest-sdk/go/status.go) matches abi.Statuses name for name.
func TestGoSDKStatusesMatchABI(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "guest-sdk", "go", "status.go"))
	if err != nil {
		t.Fatal(err)
	}
	consts := regexp.MustCompile(`(?m)^\s+Status(\w+)\s+Status = (\d+)$`).FindAllStringSubmatch(string(b), -1)
	sdk := map[string]int{}
	for _, m := range consts {
		v, _ := strconv.Atoi(m[2])
		sdk[m[1]] = v
	}
	for _, s := range abi.Statuses() {
		camel := ""
		for _, part := range strings.Split(s.String(), "_") {
			camel += part[:1] + strings.ToLower(part[1:])
		}
		if camel == "Ok" {
			camel = "OK"
		}
		v, ok := sdk[camel]
		if !ok {
			t.Errorf("Go SDK lacks Status%s (%s = %d)", camel, s, s)
		} else if v != int(s) {
			t.Errorf("Go SDK Status%s = %d, ABI %s = %d", camel, v, s, s)
		}
		delete(sdk, camel)
	}
	for name, v := range sdk {
		t.Errorf("Go SDK has Status%s = %d, which the ABI does not", name, v)
	}
}

func TestStorageLimitsMatchABI(t *testing.T) {
	if storage.MaxKeySize != abi.MaxKeySize || storage.MaxEntrySize != abi.MaxEntrySize || storage.MaxBatch != abi.MaxBatch {
		t.Fatalf("storage limits (%d, %d, %d) differ from the ABI's (%d, %d, %d)",
			storage.MaxKeySize, storage.MaxEntrySize, storage.MaxBatch, abi.MaxKeySize, abi.MaxEntrySize, abi.MaxBatch)
	}
}

// The Go SDK's whole storage API against the real host (tests/guests/sdkcheck answers "ok" or
// the first mismatch).
// Built by standard Go and by TinyGo.
func TestGoSDKStorageAPI(t *testing.T) {
	for _, kind := range []toolchain.Kind{toolchain.Go, toolchain.TinyGo} {
		t.Run(string(kind), func(t *testing.T) {
			rt := newTestRuntime(t, Config{})
			src := "tests/guests/sdkcheck"
			c, err := rt.LoadClass(context.Background(), "sdkcheck", src, guestWasmWith(t, src, kind))
			if err != nil {
				t.Fatal(err)
			}
			for i := 0; i < 2; i++ { // twice: the second run starts from the first one's state
				if got := mustDo(t, c, "check", "/run"); got != "ok" {
					t.Fatal(got)
				}
			}
		})
	}
}
