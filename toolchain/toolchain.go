// Package toolchain builds guest object classes from source into WebAssembly modules, caching
// each build by a hash of its sources so an unchanged class is never rebuilt.
package toolchain

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
)

// Kind names a guest toolchain.
type Kind string

const (
	Go Kind = "go"
)

// ErrMissing is wrapped when the toolchain a build needs is not installed.
var ErrMissing = errors.New("toolchain not installed")

// Detect picks the toolchain for a source directory: go.mod means Go (or the configured
// override).
func Detect(dir string, configured string) (Kind, error) {
	if configured != "" {
		return Kind(configured), nil
	}
	if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
		return Go, nil
	}
	if _, err := os.Stat(filepath.Join(dir, "Cargo.toml")); err == nil {
		return "", fmt.Errorf("%s: Rust guests (Cargo.toml) are not supported by this version of dowasm yet", dir)
	}
	return "", fmt.Errorf("%s: no go.mod found: cannot tell how to build this class", dir)
}

// Build compiles the class in dir and returns the path of the module in cacheDir. Build output
// (compiler messages) goes to progress.
func Build(ctx context.Context, dir string, kind Kind, cacheDir string, progress io.Writer) (string, error) {
	if kind != Go {
		return "", fmt.Errorf("%s: toolchain %q is not supported (supported: go)", dir, kind)
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("%s: %w: the Go toolchain (go) is not on PATH; run `task setup` or install Go 1.25+", dir, ErrMissing)
	}
	goVersion, err := exec.CommandContext(ctx, goBin, "env", "GOVERSION").Output()
	if err != nil {
		return "", fmt.Errorf("%s: running go env: %w", dir, err)
	}
	sum, err := hashSources(dir, string(kind)+"\x00"+strings.TrimSpace(string(goVersion)))
	if err != nil {
		return "", err
	}
	// The compiler runs in the source directory: every path given to it must be absolute.
	cacheDir, err = filepath.Abs(cacheDir)
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return "", err
	}
	out := filepath.Join(cacheDir, filepath.Base(dir)+"-"+sum[:16]+".wasm")
	if filepath.Base(dir) == "go" {
		out = filepath.Join(cacheDir, filepath.Base(filepath.Dir(dir))+"-go-"+sum[:16]+".wasm")
	}
	if _, err := os.Stat(out); err == nil {
		return out, nil
	}
	tmp := out + fmt.Sprintf(".tmp%d", os.Getpid())
	cmd := exec.CommandContext(ctx, goBin, "build", "-buildmode=c-shared", "-trimpath", "-o", tmp, ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0", "GOWORK=off")
	var buf bytes.Buffer
	w := io.Writer(&buf)
	if progress != nil {
		w = io.MultiWriter(&buf, progress)
	}
	cmd.Stdout, cmd.Stderr = w, w
	if progress != nil {
		fmt.Fprintf(progress, "building %s (GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared)\n", dir)
	}
	if err := cmd.Run(); err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("building %s failed: %w\n%s", dir, err, strings.TrimSpace(buf.String()))
	}
	if err := os.Rename(tmp, out); err != nil {
		return "", err
	}
	return out, nil
}

// hashSources hashes every regular file under dir and under the local directories that its
// go.mod replaces modules with (the guest SDK), so a change to either rebuilds.
func hashSources(dir, salt string) (string, error) {
	dirs := []string{dir}
	if gm, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil {
		sc := bufio.NewScanner(bytes.NewReader(gm))
		for sc.Scan() {
			line := sc.Text()
			// replace lines, alone or in a block: "old => ../path"
			if i := strings.Index(line, "=>"); i >= 0 {
				target := strings.Fields(line[i+2:])
				if len(target) > 0 && (strings.HasPrefix(target[0], ".") || filepath.IsAbs(target[0])) {
					t := target[0]
					if !filepath.IsAbs(t) {
						t = filepath.Join(dir, t)
					}
					dirs = append(dirs, t)
				}
			}
		}
	}
	h := sha256.New()
	io.WriteString(h, salt)
	for _, d := range dirs {
		var files []string
		err := filepath.WalkDir(d, func(p string, e fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if e.IsDir() && p != d && (strings.HasPrefix(e.Name(), ".") || e.Name() == "target") {
				return filepath.SkipDir
			}
			if e.Type().IsRegular() {
				files = append(files, p)
			}
			return nil
		})
		if err != nil {
			return "", fmt.Errorf("hashing sources: %w", err)
		}
		sort.Strings(files)
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				return "", err
			}
			rel, _ := filepath.Rel(d, f)
			fmt.Fprintf(h, "%s\x00%d\x00", rel, len(b))
			h.Write(b)
		}
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
