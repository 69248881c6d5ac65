package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func run(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := Main(context.Background(), append([]string{"dowasm"}, args...), &out, &errb)
	return code, out.String(), errb.String()
}

func TestVersion(t *testing.T) {
	code, out, _ := run("version")
	if code != 0 || !strings.Contains(out, "guest ABI v1") {
		t.Fatalf("%d %q", code, out)
	}
}

func TestRunConfigErrors(t *testing.T) {
	code, _, errOut := run("run", "--config", filepath.Join(t.TempDir(), "missing.yaml"))
	if code != 2 || !strings.Contains(errOut, "missing.yaml") {
		t.Fatalf("missing config: %d %q", code, errOut)
	}
	p := filepath.Join(t.TempDir(), "dowasm.yaml")
	os.WriteFile(p, []byte("durability: maybe\nclasses:\n  - name: c\n    module: c.wasm\n"), 0o644)
	code, _, errOut = run("run", "--config", p)
	if code != 2 || !strings.Contains(errOut, "dowasm.yaml:1: durability") {
		t.Fatalf("bad field: %d %q", code, errOut)
	}
	code, _, errOut = run("run", "--config", p, "--log-format", "xml")
	if code != 2 || !strings.Contains(errOut, "--log-format") {
		t.Fatalf("bad flag value: %d %q", code, errOut)
	}
}

func TestBuildDirectory(t *testing.T) {
	src, _ := filepath.Abs("../examples/counter/go")
	code, out, errOut := run("build", "--out", t.TempDir(), src)
	if code != 0 || !strings.HasSuffix(strings.TrimSpace(out), ".wasm") {
		t.Fatalf("%d %q %q", code, out, errOut)
	}
	code, _, errOut = run("build", t.TempDir())
	if code == 0 || !strings.Contains(errOut, "no go.mod") {
		t.Fatalf("a directory without sources: %d %q", code, errOut)
	}
}
