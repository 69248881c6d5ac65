package durablefs

import (
	"os"
	"path/filepath"
	"testing"
)

func TestMkdirAllCreatesPrivateDirectories(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "a", "b", "c")
	if err := MkdirAll(dir); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{filepath.Join(root, "a"), filepath.Join(root, "a", "b"), dir} {
		fi, err := os.Stat(d)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != DirMode {
			t.Errorf("%s: mode %v, want %v", d, fi.Mode().Perm(), os.FileMode(DirMode))
		}
	}
	if err := MkdirAll(dir); err != nil {
		t.Errorf("again: %v", err)
	}
	f := filepath.Join(root, "file")
	if err := os.WriteFile(f, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := MkdirAll(filepath.Join(f)); err == nil {
		t.Error("MkdirAll over a file succeeded")
	}
}
