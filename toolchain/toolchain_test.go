package toolchain

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestBuildCachesByContentAndUsesRelativeOut(t *testing.T) {
	src, _ := filepath.Abs("../examples/counter/go")
	wd, _ := os.Getwd()
	tmp := t.TempDir()
	os.Chdir(tmp)
	defer os.Chdir(wd)
	p1, err := Build(context.Background(), src, Go, "out", nil) // relative to the working directory
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(p1, filepath.Join(tmp, "out")) {
		t.Fatalf("module at %s, want under %s", p1, filepath.Join(tmp, "out"))
	}
	st1, _ := os.Stat(p1)
	p2, err := Build(context.Background(), src, Go, "out", nil)
	if err != nil || p2 != p1 {
		t.Fatalf("second build: %s %v", p2, err)
	}
	if st2, _ := os.Stat(p2); !st2.ModTime().Equal(st1.ModTime()) {
		t.Fatal("unchanged sources were rebuilt")
	}
}

func TestBuildErrorsAreClear(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module x\n\ngo 1.24\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "main.go"), []byte("package main\n\nfunc main() { undefinedThing() }\n"), 0o644)
	_, err := Build(context.Background(), dir, Go, t.TempDir(), nil)
	if err == nil || !strings.Contains(err.Error(), "undefinedThing") || !strings.Contains(err.Error(), dir) {
		t.Fatalf("compile error should show the compiler's message and the directory: %v", err)
	}
	t.Setenv("PATH", t.TempDir())
	_, err = Build(context.Background(), dir, Go, t.TempDir(), nil)
	if !errors.Is(err, ErrMissing) || !strings.Contains(err.Error(), "task setup") {
		t.Fatalf("missing toolchain: %v", err)
	}
	if _, err := Detect(t.TempDir(), ""); err == nil {
		t.Fatal("a directory without go.mod was accepted")
	}
}

func TestDetect(t *testing.T) {
	goDir, rustDir, both := t.TempDir(), t.TempDir(), t.TempDir()
	os.WriteFile(filepath.Join(goDir, "go.mod"), []byte("module x\n"), 0o644)
	os.WriteFile(filepath.Join(rustDir, "Cargo.toml"), []byte("[package]\n"), 0o644)
	os.WriteFile(filepath.Join(both, "go.mod"), []byte("module x\n"), 0o644)
	os.WriteFile(filepath.Join(both, "Cargo.toml"), []byte("[package]\n"), 0o644)
	for _, c := range []struct {
		dir, configured string
		want            Kind
		err             string
	}{
		{goDir, "", Go, ""},
		{goDir, "tinygo", TinyGo, ""},
		{goDir, "go", Go, ""},
		{rustDir, "", Rust, ""},
		{rustDir, "rust", Rust, ""},
		{both, "", Go, ""},
		{both, "rust", Rust, ""},
		{goDir, "rust", "", "needs a Cargo.toml"},
		{rustDir, "tinygo", "", "needs a go.mod"},
		{goDir, "cobol", "", `"cobol" is not supported (supported: go, tinygo, rust)`},
		{t.TempDir(), "", "", "no go.mod or Cargo.toml"},
	} {
		got, err := Detect(c.dir, c.configured)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) || !strings.Contains(err.Error(), c.dir) {
				t.Errorf("Detect(%s, %q) = %v, want an error naming the directory and %q", c.dir, c.configured, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("Detect(%s, %q) = %q, %v; want %q", c.dir, c.configured, got, err, c.want)
		}
	}
}

// A missing TinyGo names the task that installs it.
func TestMissingTinyGoNamesTheTask(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module x\n"), 0o644)
	wd, _ := os.Getwd()
	os.Chdir(t.TempDir()) // no .bin/tinygo above the working directory either
	defer os.Chdir(wd)
	t.Setenv("PATH", t.TempDir())
	t.Setenv("DOWASM_TINYGO", "")
	_, err := Build(context.Background(), dir, TinyGo, t.TempDir(), nil)
	if !errors.Is(err, ErrMissing) || !strings.Contains(err.Error(), "./task setup-tinygo") || !strings.Contains(err.Error(), dir) {
		t.Fatalf("missing TinyGo: %v", err)
	}
}

// A Rust compile error shows rustc's message and the directory; the module of a good crate is
// cached by content like Go's.
func TestRustBuild(t *testing.T) {
	src, _ := filepath.Abs("../examples/counter/rust")
	out := t.TempDir()
	p1, err := Build(context.Background(), src, Rust, out, nil)
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Base(p1)[:len("counter-rust-")] != "counter-rust-" {
		t.Errorf("module named %s, want counter-rust-<hash>.wasm", p1)
	}
	if p2, err := Build(context.Background(), src, Rust, out, nil); err != nil || p2 != p1 {
		t.Fatalf("second build: %s %v", p2, err)
	}
	bad := t.TempDir()
	os.WriteFile(filepath.Join(bad, "Cargo.toml"), []byte("[package]\nname = \"bad\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[lib]\ncrate-type = [\"cdylib\"]\n"), 0o644)
	os.MkdirAll(filepath.Join(bad, "src"), 0o755)
	os.WriteFile(filepath.Join(bad, "src", "lib.rs"), []byte("pub fn f() { undefined_thing(); }\n"), 0o644)
	_, err = Build(context.Background(), bad, Rust, t.TempDir(), nil)
	if err == nil || !strings.Contains(err.Error(), "undefined_thing") || !strings.Contains(err.Error(), bad) {
		t.Fatalf("compile error should show rustc's message and the directory: %v", err)
	}
	// A crate that is not a cdylib produces no module: say so.
	os.WriteFile(filepath.Join(bad, "Cargo.toml"), []byte("[package]\nname = \"bad\"\nversion = \"0.1.0\"\nedition = \"2021\"\n"), 0o644)
	os.WriteFile(filepath.Join(bad, "src", "lib.rs"), []byte("pub fn f() {}\n"), 0o644)
	_, err = Build(context.Background(), bad, Rust, t.TempDir(), nil)
	if err == nil || !strings.Contains(err.Error(), "cdylib") {
		t.Fatalf("a non-cdylib crate: %v", err)
	}
}

func TestModuleName(t *testing.T) {
	for _, c := range []struct {
		dir  string
		kind Kind
		want string
	}{
		{"/x/examples/counter/go", Go, "counter-go"},
		{"/x/examples/counter/go", TinyGo, "counter-tinygo"},
		{"/x/examples/counter/rust", Rust, "counter-rust"},
		{"/x/myclass", Rust, "myclass-rust"},
	} {
		if got := moduleName(c.dir, c.kind); got != c.want {
			t.Errorf("moduleName(%s, %s) = %s, want %s", c.dir, c.kind, got, c.want)
		}
	}
}
