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
