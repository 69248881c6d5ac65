package host

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/tetratelabs/wazero"
)

// The compilation cache (Config.CacheDir) is wazero's: compiling a module writes it there as one
// file (an entry: ~8 MB for a standard Go guest), named by a hash of wazero's own making, and a
// later compile of the same bytes, in this process or after a restart, reads it back instead of
// compiling. wazero never deletes an entry, and since every deploy instruments its module (host/
// fuel), every version of every class ever deployed would stay there.
//
// dowasm keeps the directory down to what loaded classes use with an index of its own in it
// (cacheIndexFile). It does not compute wazero's file names: it lists the entries before and after
// each compile, with compiles serialized (per directory, across this process's runtimes and, with
// a lock file, across processes), and records the new entries under the module's key: the SHA-256
// of the bytes compiled. A compile that writes nothing was a cache hit (or found the module in
// the runtime's memory: a class deployed again with a module it still holds) and keeps what is
// recorded. (The price: deploys sharing a directory compile one at a time, ~0.7 s for a standard
// Go guest, a few ms on a hit.)
// The index also records which module each class uses, by the class's data directory
// (DataDir/<class>), so runtimes that share the directory (the tenants of dowasm serve) count as
// holders of one module, and the records survive restarts, which find their entries again.
//
// A module's entries are deleted when its last holder lets go: a deploy of another module for the
// class, DeleteClass, or a deploy that failed after its compile. Runtime.Close lets go of nothing
// (a restart needs the entries); a class whose data directory is gone (its tenant was deleted, a
// test's temporary directory removed) lets go at the next sweep, which runs at the first cache
// operation of a process and then at most every cacheSweepEvery, and deletes such a module once
// nothing has used it for cacheGrace (so a deleted and recreated tenant, or a test suite run after
// run, still finds its entries). The sweep also deletes entries no module records (a crash between
// a compile and the index write; another wazero version's) once they are cacheOrphanAge old.
//
// Every failure here is logged and costs at most a recompile: losing a needed entry makes the next
// compile of its module slower, never an error.
const (
	cacheIndexFile = "dowasm-cache.json"
	cacheLockFile  = "dowasm-cache.lock"
	// cacheEntryDirPrefix names the subdirectories wazero keeps its entries in (one per wazero
	// version, architecture and OS). Only files directly in those are ever listed or deleted.
	// TestModuleCacheLayout fails if wazero writes elsewhere.
	cacheEntryDirPrefix = "wazero-"
	// namespaceKeyFile is in each class's data directory (DeployClass creates it): a class whose
	// directory lacks it has no data left, so no use for a compiled module.
	namespaceKeyFile = "namespace.key"

	cacheSweepEvery = time.Minute
	cacheGrace      = time.Hour
	cacheOrphanAge  = time.Minute
)

// cacheIndex is the content of cacheIndexFile.
type cacheIndex struct {
	Version int `json:"version"`
	// Modules maps a module's key (hex SHA-256 of the bytes compiled) to its entries.
	Modules map[string]*cachedModule `json:"modules"`
	// Holders maps a class's data directory to the key of the class's module.
	Holders map[string]string `json:"holders"`
}

type cachedModule struct {
	// Files are the module's entries, relative to the cache directory, slash-separated.
	Files []string `json:"files"`
	// Used is the time (Unix seconds) of the module's last compile or deploy.
	Used int64 `json:"used"`
}

// moduleCache tracks one cache directory for one runtime.
type moduleCache struct {
	dir string // absolute, symbolic links resolved

	mu      sync.Mutex     // serializes the runtime's compiles and index updates (with the lock file)
	pending map[string]int // compiled by this runtime, not yet held by a class or released
	swept   time.Time      // zero: the next operation sweeps

	sweepEvery, grace, orphanAge time.Duration
}

// newModuleCache returns a tracker of cache directory dir. Each runtime has its own: runtimes
// sharing a directory (the tenants of dowasm serve, several processes) coordinate through the
// index on disk and the lock file, which serializes their compiles and index updates.
func newModuleCache(dir string) *moduleCache {
	return &moduleCache{dir: canonicalPath(dir), pending: map[string]int{},
		sweepEvery: cacheSweepEvery, grace: cacheGrace, orphanAge: cacheOrphanAge}
}

// canonicalPath makes p absolute and resolves its symbolic links (when it exists).
func canonicalPath(p string) string {
	abs, err := filepath.Abs(p)
	if err != nil {
		return filepath.Clean(p)
	}
	if real, err := filepath.EvalSymlinks(abs); err == nil {
		return real
	}
	return abs
}

// The runtime's side: its cache directory's tracker, and its classes as holders.

func (r *Runtime) moduleCache() *moduleCache { return r.mcache }

func (r *Runtime) classHolder(name string) string {
	return filepath.Join(canonicalPath(r.cfg.DataDir), name)
}

// compileCached compiles bin (an instrumented module) through the compilation cache and returns
// the module's key; the caller then either holds it for a class (cacheHold) or releases it
// (cacheRelease).
func (r *Runtime) compileCached(ctx context.Context, bin []byte) (wazero.CompiledModule, string, error) {
	return r.moduleCache().compile(ctx, r.log, r.wz, bin)
}

// cacheHold records that class name now uses the module of key (compiled by compileCached); the
// entries of the module it used before go if nothing else uses them.
func (r *Runtime) cacheHold(name, key string) {
	r.moduleCache().hold(r.log, r.classHolder(name), key)
}

// cacheRelease undoes a compileCached whose module no class took.
func (r *Runtime) cacheRelease(key string) { r.moduleCache().release(r.log, key) }

// cacheDrop records that class name uses no module (DeleteClass).
func (r *Runtime) cacheDrop(name string) { r.moduleCache().drop(r.log, r.classHolder(name)) }

// The tracker's operations.

func (mc *moduleCache) compile(ctx context.Context, log *slog.Logger, wz wazero.Runtime, bin []byte) (cm wazero.CompiledModule, key string, err error) {
	sum := sha256.Sum256(bin)
	key = hex.EncodeToString(sum[:])
	mc.update(log, func(idx *cacheIndex) {
		var before map[string]bool
		if idx != nil {
			before = mc.entries()
		}
		if cm, err = wz.CompileModule(ctx, bin); err != nil {
			return
		}
		mc.pending[key]++
		if idx == nil {
			return
		}
		var fresh []string
		for e := range mc.entries() {
			if !before[e] {
				fresh = append(fresh, e)
			}
		}
		slices.Sort(fresh)
		m := idx.module(key)
		m.Used = time.Now().Unix()
		if len(fresh) > 0 {
			// A miss: wazero wrote the module's entries. Any recorded before were not the ones
			// it looks for (another wazero version or CPU): they go.
			stale := m.Files
			m.Files = fresh
			mc.removeFiles(log, idx, stale)
		}
	})
	return cm, key, err
}

func (mc *moduleCache) hold(log *slog.Logger, holder, key string) {
	mc.update(log, func(idx *cacheIndex) {
		mc.unpend(key)
		if idx == nil {
			return
		}
		old, had := idx.Holders[holder]
		idx.Holders[holder] = key
		idx.module(key).Used = time.Now().Unix()
		if had && old != key && mc.unused(idx, old) {
			mc.removeModule(log, idx, old)
		}
	})
}

func (mc *moduleCache) release(log *slog.Logger, key string) {
	mc.update(log, func(idx *cacheIndex) {
		mc.unpend(key)
		if idx != nil && mc.unused(idx, key) {
			mc.removeModule(log, idx, key)
		}
	})
}

func (mc *moduleCache) drop(log *slog.Logger, holder string) {
	mc.update(log, func(idx *cacheIndex) {
		if idx == nil {
			return
		}
		old, had := idx.Holders[holder]
		if !had {
			return
		}
		delete(idx.Holders, holder)
		if mc.unused(idx, old) {
			mc.removeModule(log, idx, old)
		}
	})
}

// update runs f on the index with the directory locked, sweeps if a sweep is due, and writes the
// index back. If the directory cannot be locked, f gets a nil index (and must not keep books).
func (mc *moduleCache) update(log *slog.Logger, f func(idx *cacheIndex)) {
	mc.mu.Lock()
	defer mc.mu.Unlock()
	unlock, err := mc.lockDir()
	if err != nil {
		log.Warn("compilation cache: cannot lock the directory; its entries are not tracked", "dir", mc.dir, "error", err)
		f(nil)
		return
	}
	defer unlock()
	idx := mc.load(log)
	f(idx)
	if mc.swept.IsZero() || time.Since(mc.swept) >= mc.sweepEvery {
		mc.sweep(log, idx)
	}
	if err := mc.save(idx); err != nil {
		log.Warn("compilation cache: cannot write the index", "dir", mc.dir, "error", err)
	}
}

// lockDir takes the directory's lock file, which serializes the processes sharing it.
func (mc *moduleCache) lockDir() (unlock func(), err error) {
	f, err := os.OpenFile(filepath.Join(mc.dir, cacheLockFile), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	for {
		if err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX); !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return func() { f.Close() }, nil // closing the file releases the lock
}

func (mc *moduleCache) load(log *slog.Logger) *cacheIndex {
	idx := &cacheIndex{Version: 1}
	b, err := os.ReadFile(filepath.Join(mc.dir, cacheIndexFile))
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		log.Warn("compilation cache: cannot read the index; starting a new one", "dir", mc.dir, "error", err)
	default:
		var got cacheIndex
		if err := json.Unmarshal(b, &got); err != nil || got.Version != 1 {
			log.Warn("compilation cache: unreadable index; starting a new one", "dir", mc.dir, "version", got.Version, "error", err)
		} else {
			idx = &got
		}
	}
	if idx.Modules == nil {
		idx.Modules = map[string]*cachedModule{}
	}
	if idx.Holders == nil {
		idx.Holders = map[string]string{}
	}
	for key, m := range idx.Modules {
		if m == nil {
			delete(idx.Modules, key)
			continue
		}
		// Only ever delete files in wazero's entry directories.
		m.Files = slices.DeleteFunc(m.Files, func(f string) bool { return !isEntryPath(f) })
	}
	return idx
}

func (mc *moduleCache) save(idx *cacheIndex) error {
	b, err := json.MarshalIndent(idx, "", "\t")
	if err != nil {
		return err
	}
	p := filepath.Join(mc.dir, cacheIndexFile)
	// (No fsync: an index lost in a crash only costs recompiles, see sweep.)
	if err := os.WriteFile(p+".tmp", b, 0o600); err != nil {
		return err
	}
	return os.Rename(p+".tmp", p)
}

// isEntryPath reports whether f (slash-separated, relative) names a file directly in one of
// wazero's entry directories.
func isEntryPath(f string) bool {
	dir, name, ok := strings.Cut(f, "/")
	return ok && strings.HasPrefix(dir, cacheEntryDirPrefix) && name != "" && !strings.Contains(name, "/") &&
		name != "." && name != ".." && filepath.IsLocal(filepath.FromSlash(f))
}

// entries lists the files in the directory's entry directories.
func (mc *moduleCache) entries() map[string]bool {
	out := map[string]bool{}
	tops, _ := os.ReadDir(mc.dir)
	for _, t := range tops {
		if !t.IsDir() || !strings.HasPrefix(t.Name(), cacheEntryDirPrefix) {
			continue
		}
		files, _ := os.ReadDir(filepath.Join(mc.dir, t.Name()))
		for _, f := range files {
			if f.Type().IsRegular() {
				out[t.Name()+"/"+f.Name()] = true
			}
		}
	}
	return out
}

func (idx *cacheIndex) module(key string) *cachedModule {
	m := idx.Modules[key]
	if m == nil {
		m = &cachedModule{Files: []string{}}
		idx.Modules[key] = m
	}
	return m
}

func (mc *moduleCache) unpend(key string) {
	if mc.pending[key] > 1 {
		mc.pending[key]--
	} else {
		delete(mc.pending, key)
	}
}

// unused reports whether no class holds the module of key and no compile of it awaits a class.
func (mc *moduleCache) unused(idx *cacheIndex, key string) bool {
	if mc.pending[key] > 0 {
		return false
	}
	for _, k := range idx.Holders {
		if k == key {
			return false
		}
	}
	return true
}

// removeModule forgets the module of key and deletes its entries.
func (mc *moduleCache) removeModule(log *slog.Logger, idx *cacheIndex, key string) {
	m := idx.Modules[key]
	delete(idx.Modules, key)
	if m != nil {
		mc.removeFiles(log, idx, m.Files)
	}
}

// removeFiles deletes the entries files that no module in idx records.
func (mc *moduleCache) removeFiles(log *slog.Logger, idx *cacheIndex, files []string) {
	if len(files) == 0 {
		return
	}
	recorded := idx.files()
	for _, f := range files {
		if recorded[f] || !isEntryPath(f) {
			continue
		}
		if err := os.Remove(filepath.Join(mc.dir, filepath.FromSlash(f))); err != nil && !errors.Is(err, fs.ErrNotExist) {
			log.Warn("compilation cache: cannot delete an entry", "file", f, "error", err)
		}
	}
}

func (idx *cacheIndex) files() map[string]bool {
	out := map[string]bool{}
	for _, m := range idx.Modules {
		for _, f := range m.Files {
			out[f] = true
		}
	}
	return out
}

// sweep lets go of the classes whose data directory is gone, deletes the modules that nothing
// holds or awaits and nothing used for mc.grace, and the entries no module records that are
// mc.orphanAge old.
func (mc *moduleCache) sweep(log *slog.Logger, idx *cacheIndex) {
	now := time.Now()
	mc.swept = now
	held := map[string]bool{}
	for holder, key := range idx.Holders {
		if _, err := os.Stat(filepath.Join(holder, namespaceKeyFile)); errors.Is(err, fs.ErrNotExist) {
			delete(idx.Holders, holder)
			continue
		}
		held[key] = true
	}
	for key, m := range idx.Modules {
		if !held[key] && mc.pending[key] == 0 && now.Sub(time.Unix(m.Used, 0)) >= mc.grace {
			mc.removeModule(log, idx, key)
		}
	}
	recorded := idx.files()
	for f := range mc.entries() {
		if recorded[f] {
			continue
		}
		p := filepath.Join(mc.dir, filepath.FromSlash(f))
		if st, err := os.Lstat(p); err == nil && now.Sub(st.ModTime()) >= mc.orphanAge {
			if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
				log.Warn("compilation cache: cannot delete an unrecorded entry", "file", f, "error", err)
			}
		}
	}
}
