package host

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/dowasm/dowasm/abi"
	"github.com/dowasm/dowasm/internal/testutil"
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
	{"tests/guests/probe", toolchain.TinyGo},
	{"examples/sessions/go", toolchain.Go},
	{"examples/sessions/go", toolchain.TinyGo},
	{"examples/sessions/rust", toolchain.Rust},
	{"examples/shards/go", toolchain.Go},
	{"examples/shards/go", toolchain.TinyGo},
	{"examples/shards/rust", toolchain.Rust},
	{"examples/rooms/go", toolchain.Go},
	{"examples/rooms/go", toolchain.TinyGo},
	{"examples/rooms/rust", toolchain.Rust},
	{"examples/counter/rust", toolchain.Rust},
	{"examples/ticket/rust", toolchain.Rust},
	{"examples/ratelimit/rust", toolchain.Rust},
	{"tests/guests/sdkcheck-rust", toolchain.Rust},
	{"examples/chat/go", toolchain.Go},
	{"examples/chat/go", toolchain.TinyGo},
	{"examples/chat/rust", toolchain.Rust},
	{"examples/cursors/go", toolchain.Go},
	{"examples/cursors/go", toolchain.TinyGo},
	{"examples/cursors/rust", toolchain.Rust},
	{"tests/guests/wsprobe", toolchain.Go},
	{"tests/guests/wsprobe", toolchain.TinyGo},
}

// Every compiled guest's imports and exports agree with the ABI table (CheckModule names the
// function and both signatures when they do not).
func TestCompiledGuestsMatchABI(t *testing.T) {
	ctx := context.Background()
	r := wazero.NewRuntime(ctx)
	defer r.Close(ctx)
	for _, g := range guestSources {
		src := g.dir + " (" + string(g.kind) + ")"
		cm, err := r.CompileModule(ctx, testutil.Guest(t, g.dir, g.kind))
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
	checkSDKStatuses(t, "Go SDK", filepath.Join("..", "guest-sdk", "go", "status.go"),
		`(?m)^\s+Status(\w+)\s+Status = (\d+)$`, "OK")
}

// The Rust SDK's Status enum (guest-sdk/rust/src/status.rs) matches abi.Statuses name for name.
func TestRustSDKStatusesMatchABI(t *testing.T) {
	checkSDKStatuses(t, "Rust SDK", filepath.Join("..", "guest-sdk", "rust", "src", "status.rs"),
		`(?m)^    ([A-Z][A-Za-z]+) = (\d+),$`, "Ok")
}

// checkSDKStatuses compares the (CamelName, value) pairs that re finds in file with the ABI's
// statuses (SCREAMING_SNAKE in abi/abi.go; ok is what OK is spelled as in the SDK).
func checkSDKStatuses(t *testing.T, sdkName, file, re, ok string) {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	sdk := map[string]int{}
	for _, m := range regexp.MustCompile(re).FindAllStringSubmatch(string(b), -1) {
		v, _ := strconv.Atoi(m[2])
		sdk[m[1]] = v
	}
	if len(sdk) == 0 {
		t.Fatalf("%s: no status found in %s (format changed?)", sdkName, file)
	}
	for _, s := range abi.Statuses() {
		camel := ""
		for _, part := range strings.Split(s.String(), "_") {
			camel += part[:1] + strings.ToLower(part[1:])
		}
		if camel == "Ok" {
			camel = ok
		}
		v, found := sdk[camel]
		if !found {
			t.Errorf("%s (%s) lacks %s (%s = %d)", sdkName, file, camel, s, s)
		} else if v != int(s) {
			t.Errorf("%s (%s): %s = %d, ABI %s = %d", sdkName, file, camel, v, s, s)
		}
		delete(sdk, camel)
	}
	for name, v := range sdk {
		t.Errorf("%s (%s) has %s = %d, which the ABI does not", sdkName, file, name, v)
	}
}

func TestStorageLimitsMatchABI(t *testing.T) {
	if storage.MaxKeySize != abi.MaxKeySize || storage.MaxEntrySize != abi.MaxEntrySize || storage.MaxBatch != abi.MaxBatch {
		t.Fatalf("storage limits (%d, %d, %d) differ from the ABI's (%d, %d, %d)",
			storage.MaxKeySize, storage.MaxEntrySize, storage.MaxBatch, abi.MaxKeySize, abi.MaxEntrySize, abi.MaxBatch)
	}
}

// sdkChecks are the test guests that run an SDK's whole storage API against the real host
// (answering "ok" or the first mismatch), one per toolchain.
var sdkChecks = []struct {
	src  string
	kind toolchain.Kind
}{
	{"tests/guests/sdkcheck", toolchain.Go},
	{"tests/guests/sdkcheck", toolchain.TinyGo},
	{"tests/guests/sdkcheck-rust", toolchain.Rust},
}

// Every SDK's storage API (batches, listing, transactions, limits, typed values, identity)
// against the real host.
func TestSDKStorageAPI(t *testing.T) {
	for _, g := range sdkChecks {
		t.Run(string(g.kind), func(t *testing.T) {
			rt := newTestRuntime(t, Config{})
			c, err := rt.LoadClass(context.Background(), "sdkcheck", g.src, testutil.Guest(t, g.src, g.kind))
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

// A panic and a returned error both fail the event with the guest's own message (and, where the
// language gives it, location), and roll back the write made before them: standard Go's SDK
// recovers the panic; TinyGo cannot (its panic traps) but prints a "panic:" line, which the host
// takes as the trap's message; Rust's panic hook reports the panic before the abort traps.
func TestPanicAndErrorReachTheCaller(t *testing.T) {
	for _, g := range sdkChecks {
		t.Run(string(g.kind), func(t *testing.T) {
			testPanicAndError(t, g.src, g.kind)
		})
	}
}

func testPanicAndError(t *testing.T, src string, kind toolchain.Kind) {
	rt := newTestRuntime(t, Config{})
	c, err := rt.LoadClass(context.Background(), "sdkcheck", src, testutil.Guest(t, src, kind))
	if err != nil {
		t.Fatal(err)
	}
	panicWants := map[toolchain.Kind][]string{
		toolchain.Rust:   {"fetch trapped: panic: deliberate panic after a write [src/lib.rs:", "unreachable"},
		toolchain.Go:     {"fetch returned error code", "panic: deliberate panic after a write [", "main.go:"},
		toolchain.TinyGo: {"fetch trapped: panic: deliberate panic after a write", "unreachable"},
	}
	for path, want := range map[string][]string{
		"/panic": panicWants[kind],
		"/fail":  {"fetch returned error code 1: deliberate error after a write"},
	} {
		_, _, err := do(c, "p", path)
		var ee *EventError
		if !errors.As(err, &ee) {
			t.Fatalf("%s: got %v, want an EventError", path, err)
		}
		for _, w := range want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q lacks %q", path, err, w)
			}
		}
		if got := mustDo(t, c, "p", "/lost"); got != "false" {
			t.Errorf("%s: the write before the failure survived", path)
		}
	}
}
