package host

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/dowasm/dowasm/internal/testutil"
	"github.com/dowasm/dowasm/toolchain"
	"github.com/tetratelabs/wazero"
)

// The compilation cache tests use their own cache directories (not the suite's shared one), and
// real wazero, files and guests.

// cacheFiles lists the entries in cache directory dir: the files in wazero's directories.
func cacheFiles(t *testing.T, dir string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, cacheEntryDirPrefix+"*", "*"))
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(files)
	return files
}

// readCacheIndex reads dir's index as written.
func readCacheIndex(t *testing.T, dir string) cacheIndex {
	t.Helper()
	var idx cacheIndex
	b, err := os.ReadFile(filepath.Join(dir, cacheIndexFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &idx); err != nil {
		t.Fatal(err)
	}
	return idx
}

// newProcessCache gives rt a tracker of its cache directory as a new process would have (nothing
// pending, a sweep at its first operation), with grace as the time unused modules whose classes'
// data is gone are kept.
func newProcessCache(rt *Runtime, grace time.Duration) *moduleCache {
	mc := newModuleCache(rt.cfg.CacheDir)
	mc.grace = grace
	rt.mcache = mc
	return mc
}

func deploy(t *testing.T, rt *Runtime, name string, wasm []byte, l ClassLimits) *Class {
	t.Helper()
	c, err := rt.DeployClass(context.Background(), name, name, wasm, l)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// wazero writes one file per compiled module, during CompileModule, in a directory named
// wazero-<version>-<arch>-<os> under the cache directory, and reads it back instead of compiling.
// The bookkeeping (modcache.go) relies on exactly that: if a wazero upgrade changes it, this test
// fails, and so do the others below.
func TestModuleCacheLayout(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	wasm := minimalGuest(nil, i32const(7)).encode()
	compile := func() {
		cache, err := wazero.NewCompilationCacheWithDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		wz := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigCompiler().WithCompilationCache(cache))
		defer wz.Close(ctx)
		if _, err := wz.CompileModule(ctx, wasm); err != nil {
			t.Fatal(err)
		}
	}
	compile()
	files := cacheFiles(t, dir)
	all, _ := filepath.Glob(filepath.Join(dir, "*", "*"))
	if len(files) != 1 || len(all) != 1 {
		t.Fatalf("after one compile: entries %v, files %v; want one file in %s<...>/ (wazero's cache layout changed: see modcache.go)",
			files, all, cacheEntryDirPrefix)
	}
	old := time.Now().Add(-time.Hour).Truncate(time.Second)
	if err := os.Chtimes(files[0], old, old); err != nil {
		t.Fatal(err)
	}
	compile() // a new runtime: a cache hit reads the file and writes nothing
	st, err := os.Stat(files[0])
	if got := cacheFiles(t, dir); err != nil || !slices.Equal(got, files) || !st.ModTime().Equal(old) {
		t.Fatalf("after compiling the same module again: entries %v (modified %v, %v), want %v unchanged (wazero's cache changed: see modcache.go)",
			got, st.ModTime(), err, files)
	}
}

// Deploying a new version of a class leaves only the new version's entry, also while an object
// still runs on the old one; deleting the class leaves nothing.
func TestModuleCacheReplaceAndDelete(t *testing.T) {
	cacheDir := t.TempDir()
	rt := newTestRuntime(t, Config{CacheDir: cacheDir})
	v1 := testutil.Guest(t, "tests/guests/probe", toolchain.TinyGo)
	v2 := testutil.Guest(t, "examples/counter/go", toolchain.TinyGo)

	c := deploy(t, rt, "x", v1, ClassLimits{})
	first := cacheFiles(t, cacheDir)
	if len(first) != 1 {
		t.Fatalf("after deploying v1: entries %v, want 1", first)
	}
	mustDo(t, c, "a", "/put?k=value&v=41") // a live instance of v1
	deploy(t, rt, "x", v2, ClassLimits{})
	second := cacheFiles(t, cacheDir)
	if len(second) != 1 || second[0] == first[0] {
		t.Fatalf("after deploying v2: entries %v, want only v2's (v1's was %v)", second, first)
	}
	if st, body, err := doMethod(c, "a", "POST", "/increment"); err != nil || st != 200 || body != "42" {
		t.Errorf("after the replacement: %d %q %v, want v2's 42", st, body, err)
	}
	// Other limits instrument the module differently: another entry, which replaces v2's.
	deploy(t, rt, "x", v2, ClassLimits{MemoryPages: 100})
	third := cacheFiles(t, cacheDir)
	if len(third) != 1 || third[0] == second[0] {
		t.Fatalf("after deploying v2 with other limits: entries %v, want one other than %v", third, second)
	}
	// A class of its own uses v1: a second entry; deploying v1 again over it changes nothing.
	deploy(t, rt, "y", v1, ClassLimits{})
	deploy(t, rt, "y", v1, ClassLimits{})
	if got := cacheFiles(t, cacheDir); len(got) != 2 {
		t.Fatalf("with x and y loaded: entries %v, want 2", got)
	}

	if err := rt.DeleteClass("x"); err != nil {
		t.Fatal(err)
	}
	if err := rt.DeleteClass("y"); err != nil {
		t.Fatal(err)
	}
	if got := cacheFiles(t, cacheDir); len(got) != 0 {
		t.Errorf("after deleting the classes: entries %v, want none", got)
	}
	if idx := readCacheIndex(t, cacheDir); len(idx.Modules) != 0 || len(idx.Holders) != 0 {
		t.Errorf("after deleting the classes the index still has %+v", idx)
	}

	// Deploying again works: the deleted class's module is still in memory, so wazero writes no
	// entry now (the next process compiles it again and writes one).
	c = deploy(t, rt, "x", v1, ClassLimits{})
	mustDo(t, c, "b", "/incr")
	if idx := readCacheIndex(t, cacheDir); len(idx.Modules) != 1 || len(idx.Holders) != 1 {
		t.Errorf("after deploying again the index has %+v, want the class and its module", idx)
	}
}

// A module that compiles but is not a guest, or whose deploy fails after its compile, leaves no
// entry.
func TestModuleCacheFailedDeploy(t *testing.T) {
	cacheDir := t.TempDir()
	rt := newTestRuntime(t, Config{CacheDir: cacheDir})
	m := minimalGuest(nil, i32const(0))
	delete(m.exports, "dowasm_abi_v1")
	if _, err := rt.LoadClass(context.Background(), "x", "bad", m.encode()); !errors.Is(err, ErrNotGuest) {
		t.Fatalf("deploying a module without a version marker: %v", err)
	}
	if got := cacheFiles(t, cacheDir); len(got) != 0 {
		t.Errorf("after a refused module: entries %v, want none", got)
	}
	// A class directory that cannot be created fails the deploy after the compile.
	if err := os.WriteFile(filepath.Join(rt.cfg.DataDir, "y"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := rt.LoadClass(context.Background(), "y", "good", minimalGuest(nil, i32const(0)).encode()); err == nil {
		t.Fatal("deploying a class whose directory is a file succeeded")
	}
	if got := cacheFiles(t, cacheDir); len(got) != 0 {
		t.Errorf("after a failed deploy: entries %v, want none", got)
	}
}

// Runtimes sharing a cache directory (dowasm serve's tenants) share an entry for the same module,
// also when they deploy it at the same time; deleting it from one keeps it for the other.
func TestModuleCacheSharedByRuntimes(t *testing.T) {
	cacheDir := t.TempDir()
	rt1 := newTestRuntime(t, Config{CacheDir: cacheDir})
	rt2 := newTestRuntime(t, Config{CacheDir: cacheDir})
	probe := testutil.Guest(t, "tests/guests/probe", toolchain.TinyGo)
	counter := testutil.Guest(t, "examples/counter/go", toolchain.TinyGo)

	var wg sync.WaitGroup
	for _, rt := range []*Runtime{rt1, rt2} {
		for _, name := range []string{"p", "q"} {
			wg.Go(func() {
				if _, err := rt.DeployClass(context.Background(), name, name, probe, ClassLimits{}); err != nil {
					t.Error(err)
				}
			})
		}
	}
	wg.Wait()
	shared := cacheFiles(t, cacheDir)
	if len(shared) != 1 {
		t.Fatalf("four classes deployed with the same module at once: entries %v, want 1", shared)
	}
	if idx := readCacheIndex(t, cacheDir); len(idx.Holders) != 4 || len(idx.Modules) != 1 {
		t.Errorf("index %+v, want 4 holders of 1 module", idx)
	}
	for _, name := range []string{"p", "q"} {
		if err := rt1.DeleteClass(name); err != nil {
			t.Fatal(err)
		}
	}
	deploy(t, rt2, "q", counter, ClassLimits{})
	if got := cacheFiles(t, cacheDir); len(got) != 2 || !slices.Contains(got, shared[0]) {
		t.Errorf("after deleting the module's classes from one runtime: entries %v, want %v kept and the counter's", got, shared)
	}
	if got := mustDo(t, rt2.Class("p"), "a", "/incr"); got != "1" {
		t.Errorf("the other runtime's class: %q", got)
	}
	if err := rt2.DeleteClass("p"); err != nil {
		t.Fatal(err)
	}
	if got := cacheFiles(t, cacheDir); len(got) != 1 || got[0] == shared[0] {
		t.Errorf("after deleting its last class: entries %v, want only the counter's", got)
	}
}

// A restart (a new process, runtime on the same directories) reuses the entries of its classes;
// the first sweep deletes an entry written by a compile whose index write a crash prevented, and
// (once unused for the grace period) the entries of classes whose data is gone (a deleted tenant).
func TestModuleCacheRestart(t *testing.T) {
	cacheDir := t.TempDir()
	dataA, dataB := t.TempDir(), t.TempDir()
	probe := testutil.Guest(t, "tests/guests/probe", toolchain.TinyGo)
	counter := testutil.Guest(t, "examples/counter/go", toolchain.TinyGo)
	ctx := context.Background()

	rtA := newTestRuntime(t, Config{DataDir: dataA, CacheDir: cacheDir})
	deploy(t, rtA, "x", probe, ClassLimits{})
	entryA := cacheFiles(t, cacheDir)
	rtB := newTestRuntime(t, Config{DataDir: dataB, CacheDir: cacheDir})
	deploy(t, rtB, "y", counter, ClassLimits{})
	if got := cacheFiles(t, cacheDir); len(entryA) != 1 || len(got) != 2 {
		t.Fatalf("entries %v then %v, want 1 then 2", entryA, got)
	}
	rtA.Close(ctx)
	rtB.Close(ctx)
	if got := cacheFiles(t, cacheDir); len(got) != 2 {
		t.Fatalf("after closing the runtimes: entries %v, want both kept", got)
	}
	// Tenant B is deleted: its data goes.
	if err := os.RemoveAll(dataB); err != nil {
		t.Fatal(err)
	}
	// A compile that wrote its entry but never the index (a crash in between).
	cache, err := wazero.NewCompilationCacheWithDir(cacheDir)
	if err != nil {
		t.Fatal(err)
	}
	wz := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigCompiler().WithCompilationCache(cache))
	if _, err := wz.CompileModule(ctx, minimalGuest(nil, i32const(9)).encode()); err != nil {
		t.Fatal(err)
	}
	wz.Close(ctx)
	if got := cacheFiles(t, cacheDir); len(got) != 3 {
		t.Fatalf("entries %v, want 3", got)
	}
	old := time.Now().Add(-time.Hour).Truncate(time.Second)
	for _, f := range cacheFiles(t, cacheDir) {
		if err := os.Chtimes(f, old, old); err != nil {
			t.Fatal(err)
		}
	}

	// Restart: the orphan goes; B's entry stays for now (unused for less than the grace period).
	rtA = newTestRuntime(t, Config{DataDir: dataA, CacheDir: cacheDir})
	newProcessCache(rtA, time.Hour)
	start := time.Now()
	c := deploy(t, rtA, "x", probe, ClassLimits{})
	t.Logf("deploy after the restart: %v", time.Since(start))
	got := cacheFiles(t, cacheDir)
	if len(got) != 2 || !slices.Contains(got, entryA[0]) {
		t.Fatalf("after the restart: entries %v, want A's %v and B's", got, entryA)
	}
	if st, err := os.Stat(entryA[0]); err != nil || !st.ModTime().Equal(old) {
		t.Errorf("A's entry was written again (modified %v, %v): not a cache hit", st.ModTime(), err)
	}
	if got := mustDo(t, c, "a", "/incr"); got != "1" {
		t.Errorf("restarted class: %q", got)
	}

	// Past the grace period, the next sweep deletes B's entry.
	mc := newProcessCache(rtA, 0)
	deploy(t, rtA, "z", probe, ClassLimits{})
	if got := cacheFiles(t, cacheDir); !slices.Equal(got, entryA) {
		t.Errorf("after a sweep past the grace period: entries %v, want only A's %v", got, entryA)
	}
	if idx := readCacheIndex(t, cacheDir); len(idx.Holders) != 2 || len(idx.Modules) != 1 {
		t.Errorf("index %+v, want A's 2 classes of 1 module", idx)
	}
	if mc.swept.IsZero() {
		t.Error("no sweep")
	}
}

// An index that cannot be read costs recompiles, not errors.
func TestModuleCacheCorruptIndex(t *testing.T) {
	cacheDir := t.TempDir()
	probe := testutil.Guest(t, "tests/guests/probe", toolchain.TinyGo)
	rt := newTestRuntime(t, Config{CacheDir: cacheDir})
	deploy(t, rt, "x", probe, ClassLimits{})
	if err := os.WriteFile(filepath.Join(cacheDir, cacheIndexFile), []byte("{garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	deploy(t, rt, "y", probe, ClassLimits{})
	if err := rt.DeleteClass("x"); err != nil {
		t.Fatal(err)
	}
	if idx := readCacheIndex(t, cacheDir); len(idx.Holders) != 1 || idx.Holders[rt.classHolder("y")] == "" {
		t.Errorf("index after a corrupt one: %+v, want y's module", idx)
	}
}
