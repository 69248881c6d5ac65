package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func write(t *testing.T, body string) string {
	t.Helper()
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "src"), 0o755)
	p := filepath.Join(dir, "dowasm.yaml")
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadValid(t *testing.T) {
	p := write(t, "listen: 127.0.0.1:9000\nidle_timeout: 2s\ndurability: relaxed\nclasses:\n  - name: counter\n    source: src\n  - name: b\n    module: b.wasm\n")
	c, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen != "127.0.0.1:9000" || c.IdleTimeout != 2*time.Second || !c.Relaxed || len(c.Classes) != 2 {
		t.Fatalf("%+v", c)
	}
	if c.Classes[0].Source != filepath.Join(filepath.Dir(p), "src") || !filepath.IsAbs(c.Classes[1].Module) {
		t.Fatalf("paths not anchored at the config file: %+v", c.Classes)
	}
	if c.EventTimeout != 30*time.Second || c.EventCPU != 0 || c.Data != filepath.Join(filepath.Dir(p), "data") {
		t.Fatalf("defaults: %+v", c)
	}
}

// Every error names the file, the line and the field.
func TestErrorsNameFileLineField(t *testing.T) {
	cases := []struct{ body, want string }{
		{"lisen: x\nclasses: []\n", ":1: field lisen not found"},
		{"classes:\n  - name: c\n    module: a.wasm\n    modul: b\n", ":4: field modul not found"},
		{"durability: fast\nclasses:\n  - name: c\n    module: a\n", ":1: durability: \"fast\" is not one of full, relaxed"},
		{"idle_timeout: soon\nclasses:\n  - name: c\n    module: a\n", ":1: idle_timeout: \"soon\" is not a positive duration"},
		{"classes:\n  - name: c\n", ":2: classes[0]: class \"c\" needs exactly one of module"},
		{"classes:\n  - name: Bad Name\n    module: a\n", ":2: classes[0].name: \"Bad Name\""},
		{"classes:\n  - name: a\n    module: a\n  - name: a\n    module: b\n", ":4: classes[1].name: class \"a\" is defined twice"},
		{"classes:\n  - name: a\n    source: nowhere\n", ":3: classes[0].source:"},
		{"classes:\n  - name: a\n    module: a\n    toolchain: cobol\n", ":4: classes[0].toolchain: \"cobol\" is not supported"},
		{"alarm_horizon: -1h\nclasses:\n  - name: c\n    module: a\n", ":1: alarm_horizon: \"-1h\" is not a positive duration"},
		{"event_cpu: 0s\nclasses:\n  - name: c\n    module: a\n", ":1: event_cpu: \"0s\" is not a positive duration"},
		{"classes:\n  - name: c\n    module: a\nalarm_concurrency: -2\n", ":4: alarm_concurrency: must be positive"},
		{"http:\n  body_timeout: slow\nclasses:\n  - name: c\n    module: a\n", ":2: http.body_timeout: \"slow\" is not a positive duration"},
		{"classes:\n  - name: c\n    module: a\nhttp:\n  idle_timeout: 0s\n", ":5: http.idle_timeout: \"0s\" is not a positive duration"},
		{"http:\n  max_connections: -1\nclasses:\n  - name: c\n    module: a\n", ":2: http.max_connections: must be positive"},
		{"http:\n  read_timeout: 1s\nclasses:\n  - name: c\n    module: a\n", ":2: field read_timeout not found"},
		{"", "at least one class is required"},
		{"classes: [\n", "yaml:"},
	}
	for _, tc := range cases {
		p := write(t, tc.body)
		_, err := Load(p)
		if err == nil {
			t.Errorf("%q: accepted", tc.body)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "dowasm.yaml") {
			t.Errorf("%q:\n got  %v\n want it to contain %q and the file name", tc.body, err, tc.want)
		}
	}
}

// The http section: given values are kept, the others take DefaultHTTP's; max_connections 0
// means "derive it from the open-file limit" (left to the server).
func TestHTTPSection(t *testing.T) {
	c, err := Load(write(t, "http:\n  body_timeout: 5s\n  max_connections: 100\nclasses:\n  - name: c\n    module: a\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := DefaultHTTP()
	want.BodyTimeout, want.MaxConnections = 5*time.Second, 100
	if c.HTTP != want {
		t.Errorf("http: %+v, want %+v", c.HTTP, want)
	}
	c, err = Load(write(t, "classes:\n  - name: c\n    module: a\n"))
	if err != nil {
		t.Fatal(err)
	}
	if d := DefaultHTTP(); c.HTTP != d || d.HeaderTimeout != 10*time.Second || d.BodyTimeout != time.Minute || d.WriteTimeout != time.Minute || d.IdleTimeout != time.Minute || d.MaxConnections != 0 {
		t.Errorf("defaults: %+v (DefaultHTTP %+v)", c.HTTP, d)
	}
}

func TestMissingFile(t *testing.T) {
	if _, err := Load(filepath.Join(t.TempDir(), "nope.yaml")); err == nil || !strings.Contains(err.Error(), "nope.yaml") {
		t.Fatalf("got %v", err)
	}
}
