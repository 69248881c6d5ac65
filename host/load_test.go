package host

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/dowasm/dowasm/abi"
)

func newTestRuntime(t testing.TB, cfg Config) *Runtime {
	t.Helper()
	if cfg.DataDir == "" {
		cfg.DataDir = t.TempDir()
	}
	if cfg.CacheDir == "" {
		// compiled modules are keyed by content and wazero version: safe to share across tests
		cfg.CacheDir = filepath.Join(os.TempDir(), "dowasm-test-wazero-cache")
	}
	rt, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Close(context.Background()) })
	return rt
}

func TestHostBindingsMatchABI(t *testing.T) {
	var table, bound []string
	for _, f := range abi.HostFuncs {
		table = append(table, f.Name)
	}
	for name := range hostFuncs {
		bound = append(bound, name)
	}
	sort.Strings(table)
	sort.Strings(bound)
	if strings.Join(table, ",") != strings.Join(bound, ",") {
		t.Fatalf("abi.HostFuncs and the host's bindings differ:\n abi:  %v\n host: %v", table, bound)
	}
}

func TestLoadClassRejectsBadModules(t *testing.T) {
	rt := newTestRuntime(t, Config{})
	ok := minimalGuest(nil, i32const(0))
	withExports := func(m wmodule, f func(map[string]int)) wmodule {
		e := map[string]int{}
		for k, v := range m.exports {
			e[k] = v
		}
		f(e)
		m.exports = e
		return m
	}
	cases := []struct {
		name string
		wasm []byte
		want []string
		is   error
	}{
		{"not wasm", []byte("#!/bin/sh\necho hi\n"), []string{"not a WebAssembly module"}, ErrNotGuest},
		{"corrupt wasm", []byte("\x00asm\x01\x00\x00\x00\x01\xff"), []string{"invalid WebAssembly"}, nil},
		{"no version marker", withExports(ok, func(e map[string]int) { delete(e, "dowasm_abi_v1") }).encode(),
			[]string{"no dowasm_abi_v<N> export"}, ErrNotGuest},
		{"future version", withExports(ok, func(e map[string]int) { e["dowasm_abi_v2"] = e["dowasm_abi_v1"]; delete(e, "dowasm_abi_v1") }).encode(),
			[]string{"ABI v2", "ABI v1"}, ErrVersion},
		{"missing fetch", withExports(ok, func(e map[string]int) { delete(e, "dowasm_fetch") }).encode(),
			[]string{"missing export dowasm_fetch"}, ErrNotGuest},
		{"wrong export signature", withExports(ok, func(e map[string]int) { e["dowasm_fetch"] = e["dowasm_init"] }).encode(),
			[]string{"export dowasm_fetch has signature () -> (i32)", "(i32) -> (i32)"}, ErrNotGuest},
		{"unknown host function", minimalGuest([]wimport{{module: "dowasm", name: "launch_missiles", results: []byte{i32}}}, i32const(0)).encode(),
			[]string{"dowasm.launch_missiles"}, ErrNotGuest},
		{"wrong import signature", minimalGuest([]wimport{{module: "dowasm", name: "storage_get", params: []byte{i32}, results: []byte{i32}}}, i32const(0)).encode(),
			[]string{"storage_get as (i32) -> (i32)", "(i32, i32) -> (i32)"}, ErrNotGuest},
		{"foreign import module", minimalGuest([]wimport{{module: "env", name: "system"}}, i32const(0)).encode(),
			[]string{`unknown module "env"`}, ErrNotGuest},
		{"no memory", func() []byte { m := ok; m.noMem = true; return m.encode() }(),
			[]string{`memory`}, ErrNotGuest},
	}
	for _, tc := range cases {
		_, err := rt.LoadClass(context.Background(), "c", "test.wasm", tc.wasm)
		if err == nil {
			t.Errorf("%s: loaded", tc.name)
			continue
		}
		for _, w := range append(tc.want, "class c", "test.wasm") {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q does not mention %q", tc.name, err, w)
			}
		}
		if tc.is != nil && !errors.Is(err, tc.is) {
			t.Errorf("%s: error %v is not %v", tc.name, err, tc.is)
		}
	}
	if rt.Class("c") != nil {
		t.Fatal("a rejected module was registered")
	}
	if _, err := rt.LoadClass(context.Background(), "c", "ok.wasm", ok.encode()); err != nil {
		t.Fatalf("valid minimal guest rejected: %v", err)
	}
	if _, err := rt.LoadClass(context.Background(), "Bad/Name", "ok.wasm", ok.encode()); err == nil {
		t.Fatal("invalid class name accepted")
	}
}

// A guest that passes out-of-range pointers and absurd lengths to every host function that takes
// a pointer gets BAD_POINTER from each, and the host neither panics nor allocates: the fetch
// traps (unreachable) if any call returns anything else.
func TestBadPointersReturnStatus(t *testing.T) {
	rt := newTestRuntime(t, Config{})
	var imports []wimport
	var body []byte
	bad := [][2]int32{{-16, 256}, {0, 0x7fffffff}, {65535, 2}, {-1, -1}}
	for _, f := range abi.HostFuncs {
		// the (pointer, length) pairs among the parameters, by name: x_ptr followed by x_len
		var pairs []int
		for i := 0; i+1 < len(f.Params); i++ {
			if strings.HasSuffix(f.Params[i].Name, "ptr") && strings.HasSuffix(f.Params[i+1].Name, "len") {
				pairs = append(pairs, i)
			}
		}
		if len(pairs) == 0 {
			continue
		}
		idx := len(imports)
		imports = append(imports, abiImport(f.Name))
		for _, pl := range bad {
			// each pair bad in turn, the other pairs empty and valid, other parameters 0 (a log
			// level, a socket ID, a kind: the pointer is checked before them)
			for _, badPair := range pairs {
				var args []byte
				for i := 0; i < len(f.Params); i++ {
					switch {
					case i == badPair:
						args = append(args, cat(i32const(pl[0]), i32const(pl[1]))...)
						i++
					case slices.Contains(pairs, i):
						args = append(args, cat(i32const(0), i32const(0))...)
						i++
					default:
						args = append(args, i32const(0)...)
					}
				}
				body = append(body, cat(args, call(idx), i32const(-int32(abi.BadPointer)), opI32Ne, opIf, opUnreachable, opEnd)...)
			}
		}
	}
	body = append(body, i32const(0)...)
	m := minimalGuest(imports, body)
	c, err := rt.LoadClass(context.Background(), "bad", "bad.wasm", m.encode())
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Fetch(context.Background(), c.Namespace().FromName("x"), "x", &abi.Request{Method: "GET", Path: "/"})
	if err != nil {
		t.Fatalf("a host function did not answer BAD_POINTER: %v", err)
	}
	if resp.Status != 204 {
		t.Fatalf("status %d, want 204 (no response set)", resp.Status)
	}
}
