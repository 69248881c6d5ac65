// Package testutil is what the project's tests share: paths in the repository, guest modules
// built from source with the project's own toolchain package, and the dowasm binary. Only tests
// import it.
package testutil

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/dowasm/dowasm/toolchain"
)

// Root is the repository's root directory (found from this file, so a test in any directory
// gets the same answer).
func Root() string {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		panic("testutil: no caller information")
	}
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// Path is rel (slash-separated, relative to the repository's root) as an absolute path.
func Path(rel string) string { return filepath.Join(Root(), filepath.FromSlash(rel)) }

// GuestPath builds the guest whose source is in dir (relative to the repository's root) with the
// toolchain kind, cached by content hash in build/guests (shared with `task guests`), and returns
// the module's path. A failure (a missing toolchain names the task that installs it) fails the
// test.
func GuestPath(t testing.TB, dir string, kind toolchain.Kind) string {
	t.Helper()
	p, err := toolchain.Build(context.Background(), Path(dir), kind, Path("build/guests"), nil)
	if err != nil {
		t.Fatalf("building %s with %s: %v", dir, kind, err)
	}
	return p
}

// Guest is GuestPath's module.
func Guest(t testing.TB, dir string, kind toolchain.Kind) []byte {
	t.Helper()
	b, err := os.ReadFile(GuestPath(t, dir, kind))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var dowasm struct {
	once sync.Once
	dir  string
	path string
	err  error
}

// Dowasm builds the dowasm binary (cli/dowasm) once per test binary and returns its path.
// RemoveDowasm deletes it.
func Dowasm(t testing.TB) string {
	t.Helper()
	dowasm.once.Do(func() {
		if dowasm.dir, dowasm.err = os.MkdirTemp("", "dowasm-test-bin"); dowasm.err != nil {
			return
		}
		dowasm.path = filepath.Join(dowasm.dir, "dowasm")
		cmd := exec.Command("go", "build", "-o", dowasm.path, "./cli/dowasm")
		cmd.Dir = Root()
		if out, err := cmd.CombinedOutput(); err != nil {
			dowasm.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if dowasm.err != nil {
		t.Fatal(dowasm.err)
	}
	return dowasm.path
}

// RemoveDowasm deletes the binary Dowasm built, if any (from TestMain, after the tests).
func RemoveDowasm() {
	if dowasm.dir != "" {
		os.RemoveAll(dowasm.dir)
	}
}

// ListenRE finds the URL in the line `dowasm run` and `dowasm serve` print once they listen.
var ListenRE = regexp.MustCompile(`listening on (http://[0-9.:]+)`)

// LockedBuffer collects a process's output from one goroutine while a test reads it from another.
type LockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *LockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *LockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
