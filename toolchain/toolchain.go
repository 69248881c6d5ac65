// Package toolchain builds guest object classes from source into WebAssembly modules, caching
// each build by a hash of its sources so an unchanged class is never rebuilt.
//
// Three toolchains are supported: standard Go (go.mod, GOOS=wasip1), TinyGo (the same Go
// sources, chosen in the config) and Rust (Cargo.toml, wasm32-unknown-unknown).
package toolchain

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

// Kind names a guest toolchain.
type Kind string

const (
	Go     Kind = "go"
	TinyGo Kind = "tinygo"
	Rust   Kind = "rust"
)

// Kinds lists the supported toolchains in the order the docs name them.
var Kinds = []Kind{Go, TinyGo, Rust}

// ErrMissing is wrapped when the toolchain a build needs is not installed.
var ErrMissing = errors.New("toolchain not installed")

// Detect picks the toolchain for a source directory: go.mod means Go (or TinyGo when configured),
// Cargo.toml means Rust. A configured toolchain must match what the directory holds.
func Detect(dir string, configured string) (Kind, error) {
	hasGo := exists(filepath.Join(dir, "go.mod"))
	hasCargo := exists(filepath.Join(dir, "Cargo.toml"))
	switch Kind(configured) {
	case "":
		switch {
		case hasGo:
			return Go, nil
		case hasCargo:
			return Rust, nil
		}
		return "", fmt.Errorf("%s: no go.mod or Cargo.toml found: cannot tell how to build this class", dir)
	case Go, TinyGo:
		if !hasGo {
			return "", fmt.Errorf("%s: toolchain %s needs a go.mod in the source directory", dir, configured)
		}
		return Kind(configured), nil
	case Rust:
		if !hasCargo {
			return "", fmt.Errorf("%s: toolchain rust needs a Cargo.toml in the source directory", dir)
		}
		return Rust, nil
	}
	return "", fmt.Errorf("%s: toolchain %q is not supported (supported: go, tinygo, rust)", dir, configured)
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// Build compiles the class in dir and returns the path of the module in cacheDir. Build output
// (compiler messages) goes to progress.
func Build(ctx context.Context, dir string, kind Kind, cacheDir string, progress io.Writer) (string, error) {
	var b builder
	var err error
	switch kind {
	case Go:
		b, err = goBuilder(ctx, dir)
	case TinyGo:
		b, err = tinygoBuilder(ctx, dir)
	case Rust:
		b, err = rustBuilder(ctx, dir)
	default:
		return "", fmt.Errorf("%s: toolchain %q is not supported (supported: go, tinygo, rust)", dir, kind)
	}
	if err != nil {
		return "", err
	}
	sum, err := hashSources(dir, string(kind)+"\x00"+b.version)
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
	out := filepath.Join(cacheDir, moduleName(dir, kind)+"-"+sum[:16]+".wasm")
	if exists(out) {
		return out, nil
	}
	tmp := out + fmt.Sprintf(".tmp%d", os.Getpid())
	defer os.Remove(tmp)
	var buf bytes.Buffer
	w := io.Writer(&buf)
	if progress != nil {
		w = io.MultiWriter(&buf, progress)
		fmt.Fprintf(progress, "building %s (%s)\n", dir, b.describe)
	}
	if err := b.build(ctx, cacheDir, tmp, w); err != nil {
		msg := strings.TrimSpace(buf.String())
		if msg != "" {
			msg = "\n" + msg
		}
		return "", fmt.Errorf("building %s with %s failed: %w%s", dir, kind, err, msg)
	}
	if err := os.Rename(tmp, out); err != nil {
		return "", err
	}
	return out, nil
}

// moduleName names a built module after its directory; examples/counter/rust becomes
// counter-rust, examples/counter/go built by TinyGo counter-tinygo.
func moduleName(dir string, kind Kind) string {
	base := filepath.Base(dir)
	switch Kind(base) {
	case Go, TinyGo, Rust:
		base = filepath.Base(filepath.Dir(dir))
	}
	return base + "-" + string(kind)
}

// builder is one toolchain made ready for one source directory.
type builder struct {
	version  string // hashed with the sources: a new compiler rebuilds
	describe string // shown in the progress line
	build    func(ctx context.Context, cacheDir, out string, output io.Writer) error
}

func run(ctx context.Context, dir string, env []string, output io.Writer, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = output, output
	return cmd.Run()
}

func goBuilder(ctx context.Context, dir string) (builder, error) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		return builder{}, fmt.Errorf("%s: %w: the Go toolchain (go) is not on PATH; run `./task setup` or install Go 1.25+", dir, ErrMissing)
	}
	v, err := exec.CommandContext(ctx, goBin, "env", "GOVERSION").Output()
	if err != nil {
		return builder{}, fmt.Errorf("%s: running go env: %w", dir, err)
	}
	return builder{
		version:  strings.TrimSpace(string(v)),
		describe: "GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared",
		build: func(ctx context.Context, _, out string, w io.Writer) error {
			return run(ctx, dir, []string{"GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0", "GOWORK=off"}, w,
				goBin, "build", "-buildmode=c-shared", "-trimpath", "-o", out, ".")
		},
	}, nil
}

// findTool looks for a toolchain executable: the environment variable env (a path), then PATH,
// then a .bin/ directory beside the dowasm executable or above the source directory or the
// working directory (where the project's setup tasks install toolchains).
func findTool(name, env, srcDir string) (string, []string) {
	var tried []string
	if p := os.Getenv(env); p != "" {
		return p, nil
	}
	tried = append(tried, "$"+env)
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	tried = append(tried, name+" on PATH")
	var dirs []string
	if exe, err := os.Executable(); err == nil {
		dirs = append(dirs, filepath.Dir(exe))
	}
	wd, _ := os.Getwd()
	for _, start := range []string{srcDir, wd} {
		for d := start; d != ""; {
			dirs = append(dirs, filepath.Join(d, ".bin"))
			parent := filepath.Dir(d)
			if parent == d {
				break
			}
			d = parent
		}
	}
	seen := map[string]bool{}
	for _, d := range dirs {
		p := filepath.Join(d, name)
		if seen[p] {
			continue
		}
		seen[p] = true
		if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	tried = append(tried, ".bin/"+name+" beside dowasm or above the source")
	return "", tried
}

func tinygoBuilder(ctx context.Context, dir string) (builder, error) {
	bin, tried := findTool("tinygo", "DOWASM_TINYGO", dir)
	if bin == "" {
		return builder{}, fmt.Errorf("%s: %w: TinyGo is not installed (looked for %s); run `./task setup-tinygo` (builds TinyGo 0.39 from source into .bin/, a few minutes) or install TinyGo and put it on PATH",
			dir, ErrMissing, strings.Join(tried, ", "))
	}
	v, err := exec.CommandContext(ctx, bin, "version").CombinedOutput()
	if err != nil {
		return builder{}, fmt.Errorf("%s: %w: %s version failed: %v: %s; run `./task setup-tinygo` to reinstall it", dir, ErrMissing, bin, err, strings.TrimSpace(string(v)))
	}
	return builder{
		version:  strings.TrimSpace(string(v)),
		describe: "tinygo build -target=wasip1 -buildmode=c-shared",
		build: func(ctx context.Context, _, out string, w io.Writer) error {
			return run(ctx, dir, []string{"GOWORK=off"}, w,
				bin, "build", "-target=wasip1", "-buildmode=c-shared", "-no-debug", "-o", out, ".")
		},
	}, nil
}

// rustc finds a Rust compiler that has the wasm32-unknown-unknown standard library (rustup's
// compilers usually do not, and cannot download it offline; Debian's libstd-rust-dev-wasm32
// provides it for Debian's rustc).
func findRustc(ctx context.Context, dir string) (string, []string) {
	var cands, tried []string
	if p := os.Getenv("DOWASM_RUSTC"); p != "" {
		cands = append(cands, p)
	}
	cands = append(cands, "/usr/bin/rustc")
	if p, err := exec.LookPath("rustc"); err == nil {
		cands = append(cands, p)
	}
	for _, c := range cands {
		sysroot, err := exec.CommandContext(ctx, c, "--print", "sysroot").Output()
		if err != nil {
			tried = append(tried, c+" (not runnable)")
			continue
		}
		lib := filepath.Join(strings.TrimSpace(string(sysroot)), "lib", "rustlib", "wasm32-unknown-unknown")
		if !exists(lib) {
			tried = append(tried, c+" (no wasm32-unknown-unknown std)")
			continue
		}
		return c, nil
	}
	return "", tried
}

// rustc is passed to cargo as RUSTC; cargo itself comes from DOWASM_CARGO, beside that rustc,
// or PATH.
func rustBuilder(ctx context.Context, dir string) (builder, error) {
	rustc, tried := findRustc(ctx, dir)
	if rustc == "" {
		return builder{}, fmt.Errorf("%s: %w: no Rust compiler with the wasm32-unknown-unknown standard library (tried %s); run `./task setup-rust` (installs Debian's rustc, cargo and libstd-rust-dev-wasm32)",
			dir, ErrMissing, strings.Join(tried, ", "))
	}
	cargo := os.Getenv("DOWASM_CARGO")
	if cargo == "" {
		cargo = filepath.Join(filepath.Dir(rustc), "cargo")
		if !exists(cargo) {
			p, err := exec.LookPath("cargo")
			if err != nil {
				return builder{}, fmt.Errorf("%s: %w: cargo not found beside %s or on PATH; run `./task setup-rust`", dir, ErrMissing, rustc)
			}
			cargo = p
		}
	}
	rv, err := exec.CommandContext(ctx, rustc, "--version").Output()
	if err != nil {
		return builder{}, fmt.Errorf("%s: %s --version: %w", dir, rustc, err)
	}
	return builder{
		version:  strings.TrimSpace(string(rv)),
		describe: "cargo build --release --target wasm32-unknown-unknown with " + strings.TrimSpace(string(rv)),
		build: func(ctx context.Context, cacheDir, out string, w io.Writer) error {
			// One target directory per source directory, kept in the cache so that rebuilds
			// after an edit are incremental.
			h := sha256.Sum256([]byte(dir))
			target := filepath.Join(cacheDir, "cargo-target", hex.EncodeToString(h[:6]))
			var stdout bytes.Buffer
			cmd := exec.CommandContext(ctx, cargo, "build", "--offline", "--release",
				"--target", "wasm32-unknown-unknown", "--message-format=json-render-diagnostics")
			cmd.Dir = dir
			cmd.Env = append(os.Environ(), "RUSTC="+rustc, "CARGO_TARGET_DIR="+target, "CARGO_TERM_COLOR=never")
			cmd.Stdout, cmd.Stderr = &stdout, w
			if err := cmd.Run(); err != nil {
				return err
			}
			wasm, err := cargoArtifact(stdout.Bytes())
			if err != nil {
				return err
			}
			b, err := os.ReadFile(wasm)
			if err != nil {
				return err
			}
			return os.WriteFile(out, b, 0o644)
		},
	}, nil
}

// cargoArtifact finds the .wasm file of the package's cdylib in cargo's JSON messages.
func cargoArtifact(msgs []byte) (string, error) {
	var found []string
	sc := bufio.NewScanner(bytes.NewReader(msgs))
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var m struct {
			Reason    string   `json:"reason"`
			Filenames []string `json:"filenames"`
			Target    struct {
				CrateTypes []string `json:"crate_types"`
			} `json:"target"`
		}
		if json.Unmarshal(sc.Bytes(), &m) != nil || m.Reason != "compiler-artifact" {
			continue
		}
		for _, f := range m.Filenames {
			if strings.HasSuffix(f, ".wasm") {
				found = append(found, f)
			}
		}
	}
	switch len(found) {
	case 0:
		return "", errors.New("cargo produced no .wasm file: the crate needs `[lib] crate-type = [\"cdylib\"]`")
	case 1:
		return found[0], nil
	}
	return "", fmt.Errorf("cargo produced several .wasm files (%s): build one cdylib per class", strings.Join(found, ", "))
}

var cargoPathRE = regexp.MustCompile(`\bpath\s*=\s*"([^"]+)"`)

// localDeps returns the local directories a build also reads: go.mod replace targets (the guest
// SDK) and Cargo.toml path dependencies.
func localDeps(dir string) []string {
	var deps []string
	add := func(t string) {
		if !filepath.IsAbs(t) {
			t = filepath.Join(dir, t)
		}
		if st, err := os.Stat(t); err == nil && st.IsDir() {
			deps = append(deps, t)
		}
	}
	if gm, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil {
		sc := bufio.NewScanner(bytes.NewReader(gm))
		for sc.Scan() {
			// replace lines, alone or in a block: "old => ../path"
			if _, after, ok := strings.Cut(sc.Text(), "=>"); ok {
				if target := strings.Fields(after); len(target) > 0 && (strings.HasPrefix(target[0], ".") || filepath.IsAbs(target[0])) {
					add(target[0])
				}
			}
		}
	}
	if ct, err := os.ReadFile(filepath.Join(dir, "Cargo.toml")); err == nil {
		for _, m := range cargoPathRE.FindAllStringSubmatch(string(ct), -1) {
			add(m[1])
		}
	}
	return deps
}

// hashSources hashes every regular file under dir and under its local dependencies (the guest
// SDK), so a change to either rebuilds. Build output directories (target/) and hidden
// directories are skipped.
func hashSources(dir, salt string) (string, error) {
	h := sha256.New()
	io.WriteString(h, salt)
	for _, d := range append([]string{dir}, localDeps(dir)...) {
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
