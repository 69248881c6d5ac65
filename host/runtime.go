// Package host is the dowasm runtime: it loads object classes (WebAssembly modules), keeps at
// most one live instance per object ID, delivers each object's events one at a time inside a
// transaction on the object's own database, and releases every response only after the commit
// that holds its writes. It is the only package that imports wazero.
package host

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dowasm/dowasm/abi"
	"github.com/dowasm/dowasm/host/fuel"
	"github.com/dowasm/dowasm/id"
	"github.com/dowasm/dowasm/internal/durablefs"
	"github.com/dowasm/dowasm/storage"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
	"golang.org/x/time/rate"
)

// Config sets up a Runtime. Zero values take the defaults documented on each field.
type Config struct {
	// DataDir holds every object's database and each class's namespace key.
	DataDir string
	// Durability: storage.Full (fsync before each response, the default) or storage.Relaxed.
	Durability storage.Durability
	// IdleTimeout evicts an object's instance after this long without events. Default 10s.
	IdleTimeout time.Duration
	// EventTimeout bounds one event's run time, its waits included (init included). Default 30s.
	EventTimeout time.Duration
	// EventCPU bounds the CPU time of one event: the time its thread spends in guest code and
	// host functions, init included, not its waits for other objects, the disk or a scheduler
	// slot (so a busy machine does not make a guest fail). A guest past it is stopped within
	// about a millisecond of compute with "exceeded the CPU time limit". Default 0: no limit
	// besides EventTimeout. Measured with the thread CPU clock (Linux, macOS).
	EventCPU time.Duration
	// MaxQueue bounds the events waiting for one object; more are refused. Default 1024.
	MaxQueue int
	// MaxBatch bounds the events that share one commit. Default 128.
	MaxBatch int
	// MaxInstances is a soft bound on live instances across all objects: past it, creating an
	// instance evicts the least recently active idle one. Default 1024 (standard-Go instances
	// cost 2-4 MB each).
	MaxInstances int
	// HardInstanceLimit makes MaxInstances a limit: when every live instance is busy, an event
	// that needs a new instance fails ("live instance limit reached") instead of exceeding it.
	HardInstanceLimit bool
	// MaxOpenDatabases bounds open SQLite handles. Default 4096 (3 descriptors each).
	MaxOpenDatabases int
	// MemoryLimitPages caps each instance's linear memory in 64 KiB pages. Default 2048 (128 MiB).
	MemoryLimitPages uint32
	// MaxTableElems caps each table of a module: a table without a maximum, or with a larger
	// one, gets this as its maximum (table.grow fails past it); a table whose minimum is larger
	// is refused when the module is loaded. Default 1<<20.
	MaxTableElems uint32
	// MaxCallDepth bounds the depth of guest calls; each frame costs host memory (wazero keeps
	// guest stacks on the Go heap): default 10000. A guest call that goes deeper fails with "call
	// depth limit of N frames exceeded (unbounded recursion?)". Only guest functions that call
	// others count; tail calls do not count up.
	MaxCallDepth uint32
	// CacheDir keeps compiled modules across restarts; empty means DataDir/.cache/wazero. The
	// runtime owns its entries (it deletes those no loaded class uses: see host/modcache.go);
	// runtimes may share it, also across processes.
	CacheDir string
	// Logger receives structured logs; nil means discard.
	Logger *slog.Logger
	// Clock is the wall clock of alarms and of guests (their WASI realtime clock). Default: the
	// system clock. Tests use a ManualClock.
	Clock Clock
	// AlarmHorizon is how far ahead an alarm may be set; alarm_set refuses later times with
	// INVALID_ARGUMENT. Default 10 years.
	AlarmHorizon time.Duration
	// AlarmConcurrency bounds the alarm events running at once across the runtime, so a backlog
	// of due alarms (after downtime) cannot starve live traffic. Default 64.
	AlarmConcurrency int
	// WSMaxSockets bounds the WebSockets of one object; ws_accept past it fails with
	// LIMIT_EXCEEDED. Default 32,768.
	WSMaxSockets int
	// WSMaxMessage bounds one WebSocket message in either direction. Default 1 MiB.
	WSMaxMessage int
	// WSSendBuffer bounds the bytes waiting to be sent to one socket; a client that lets more
	// pile up is disconnected (1008). Default 1 MiB.
	WSSendBuffer int
	// WSBatchBytes bounds the bytes of the messages one batch of events sends (held until its
	// commit); ws_send past it, or past WSSendBuffer for one socket, fails with LIMIT_EXCEEDED.
	// Consecutive sends of one message to many sockets count once. Default 64 MiB.
	WSBatchBytes int
	// MaxSockets bounds the open WebSockets of all objects together (0: no bound besides
	// WSMaxSockets per object); ws_accept past it fails with LIMIT_EXCEEDED.
	MaxSockets int
	// MaxMemoryBytes bounds the linear memory of all live instances together (0: no bound
	// besides MemoryLimitPages per instance): memory.grow past it fails in the guest, and an
	// instance that cannot get its initial memory is not created. The event's error says so.
	MaxMemoryBytes int64
	// MaxObjects and MaxStorageBytes bound the objects with stored data and the bytes they use
	// together (0: unbounded; see storage.Quota): past them, creating an object's database or a
	// write that may grow one fails the event, saying which limit.
	MaxObjects, MaxStorageBytes int64
	// GuestLogRate bounds what one object may write to the log (the log host function and
	// stdout/stderr), in bytes per second, with bursts of GuestLogBurst; GuestLogRateTotal and
	// GuestLogBurstTotal bound all objects together. Output past them is dropped, and a line
	// in the log says how much. Defaults: 64 KiB/s and 1 MiB per object, 1 MiB/s and 8 MiB in all.
	GuestLogRate, GuestLogBurst, GuestLogRateTotal, GuestLogBurstTotal int
	// WSPingInterval is how often the host pings each socket; a client that does not answer
	// within the interval is lost (close 1006). Default 30s.
	WSPingInterval time.Duration
	// OnAlarm, if set, is called as each alarm handler starts, with the time the alarm was set
	// for (metrics and benchmarks measure lateness with it). It must not block.
	OnAlarm func(class string, scheduled, started time.Time)
}

func (c *Config) setDefaults() {
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = 10 * time.Second
	}
	if c.EventTimeout <= 0 {
		c.EventTimeout = 30 * time.Second
	}
	if c.MaxQueue <= 0 {
		c.MaxQueue = 1024
	}
	if c.MaxBatch <= 0 {
		c.MaxBatch = 128
	}
	if c.MaxInstances <= 0 {
		c.MaxInstances = 1024
	}
	if c.MaxOpenDatabases <= 0 {
		c.MaxOpenDatabases = 4096
	}
	if c.MemoryLimitPages == 0 {
		c.MemoryLimitPages = 2048
	}
	if c.MaxTableElems == 0 {
		c.MaxTableElems = 1 << 20
	}
	if c.MaxCallDepth == 0 {
		c.MaxCallDepth = 10000
	}
	if c.CacheDir == "" {
		c.CacheDir = filepath.Join(c.DataDir, ".cache", "wazero")
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if c.Clock == nil {
		c.Clock = systemClock{}
	}
	if c.AlarmHorizon <= 0 {
		c.AlarmHorizon = 10 * 365 * 24 * time.Hour
	}
	if c.AlarmConcurrency <= 0 {
		c.AlarmConcurrency = 64
	}
	if c.WSMaxSockets <= 0 {
		c.WSMaxSockets = 32768
	}
	if c.WSMaxMessage <= 0 {
		c.WSMaxMessage = 1 << 20
	}
	if c.WSSendBuffer <= 0 {
		c.WSSendBuffer = 1 << 20
	}
	if c.WSBatchBytes <= 0 {
		c.WSBatchBytes = 64 << 20
	}
	if c.GuestLogRate <= 0 {
		c.GuestLogRate = 64 << 10
	}
	if c.GuestLogBurst <= 0 {
		c.GuestLogBurst = 1 << 20
	}
	if c.GuestLogRateTotal <= 0 {
		c.GuestLogRateTotal = 1 << 20
	}
	if c.GuestLogBurstTotal <= 0 {
		c.GuestLogBurstTotal = 8 << 20
	}
	if c.WSPingInterval <= 0 {
		c.WSPingInterval = 30 * time.Second
	}
}

// Runtime hosts object classes.
type Runtime struct {
	cfg   Config
	log   *slog.Logger
	wz    wazero.Runtime
	store *storage.Store

	mu      sync.RWMutex
	classes map[string]*Class
	closed  bool
	// closeDone is closed when Close's release has finished, with closeErr its result
	closeDone chan struct{}
	closeErr  error
	deployMu  sync.Mutex // serializes DeployClass and DeleteClass

	objects registry
	idle    idleSet
	mcache  *moduleCache // the compilation cache's bookkeeping (modcache.go)
	memory  memoryBudget
	logRate *rate.Limiter // all guests' log output
	calls   callGraph
	ws      wsHub

	// shutdown is cancelled by Close: in-flight events see EVENT_CANCELLED and fail.
	shutdown       context.Context
	cancelShutdown context.CancelFunc
	loops          sync.WaitGroup
	// bg counts the alarm schedulers and their deliveries; alarmSlots bounds the deliveries.
	bg              sync.WaitGroup
	alarmSlots      chan struct{}
	alarmsDelivered atomic.Int64
	alarmRuns       atomic.Int64
	alarmFailures   atomic.Int64

	// Counters for tests and metrics.
	liveInstances atomic.Int64
	created       atomic.Int64
	destroyed     atomic.Int64
	// live tracks instances per object to prove at most one is alive (tests read it).
	liveMu  sync.Mutex
	liveIDs map[string]int
	// maxLivePerID is the highest count ever seen in liveIDs for any one object.
	maxLivePerID atomic.Int64
}

// New creates a runtime. Close it to release files and memory.
func New(ctx context.Context, cfg Config) (*Runtime, error) {
	if cfg.DataDir == "" {
		return nil, errors.New("host: DataDir is required")
	}
	cfg.setDefaults()
	if err := durablefs.MkdirAll(cfg.DataDir); err != nil {
		return nil, fmt.Errorf("data directory %s: %w", cfg.DataDir, err)
	}
	cache, err := wazero.NewCompilationCacheWithDir(cfg.CacheDir)
	if err != nil {
		return nil, fmt.Errorf("compilation cache %s: %w", cfg.CacheDir, err)
	}
	// No WithCloseOnContextDone: guests are fuel-instrumented when loaded (host/fuel), and the
	// refill function stops them at the event's deadline (see refill).
	wz := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigCompiler().
		WithCompilationCache(cache).
		WithMemoryLimitPages(cfg.MemoryLimitPages))
	if _, err := wasi_snapshot_preview1.Instantiate(ctx, wz); err != nil {
		wz.Close(ctx)
		return nil, err
	}
	if err := instantiateHostModule(ctx, wz); err != nil {
		wz.Close(ctx)
		return nil, err
	}
	if err := instantiateFuelModule(ctx, wz, cfg.MaxCallDepth); err != nil {
		wz.Close(ctx)
		return nil, err
	}
	st, err := storage.Open(storage.Options{Dir: cfg.DataDir, Durability: cfg.Durability, MaxOpen: cfg.MaxOpenDatabases,
		Quota: storage.Quota{MaxObjects: cfg.MaxObjects, MaxBytes: cfg.MaxStorageBytes}})
	if err != nil {
		wz.Close(ctx)
		return nil, err
	}
	r := &Runtime{
		cfg: cfg, log: cfg.Logger, wz: wz, store: st,
		classes:    map[string]*Class{},
		liveIDs:    map[string]int{},
		calls:      callGraph{waiting: map[string]callEdge{}},
		alarmSlots: make(chan struct{}, cfg.AlarmConcurrency),
	}
	r.mcache = newModuleCache(cfg.CacheDir)
	r.memory.max = cfg.MaxMemoryBytes
	r.logRate = rate.NewLimiter(rate.Limit(cfg.GuestLogRateTotal), cfg.GuestLogBurstTotal)
	r.shutdown, r.cancelShutdown = context.WithCancel(context.Background())
	r.objects.init()
	r.ws.init()
	return r, nil
}

// walltime is the guests' WASI wall clock: the runtime's Clock.
func (r *Runtime) walltime() (int64, int32) {
	t := r.cfg.Clock.Now()
	return t.Unix(), int32(t.Nanosecond())
}

// Store exposes the storage layer (tests and tools inspect objects' databases through it).
func (r *Runtime) Store() *storage.Store { return r.store }

// Stats are counters about instances, for tests and metrics.
type Stats struct {
	LiveInstances, Created, Destroyed int64
	// MaxLivePerID is the most instances ever alive at once for a single object; anything
	// above 1 is a broken invariant.
	MaxLivePerID  int64
	ActiveObjects int
	// AlarmDeliveries counts alarm events delivered by the schedulers (including ones that found
	// the alarm not due); AlarmRuns the calls of alarm handlers, AlarmFailures the failed ones.
	AlarmDeliveries, AlarmRuns, AlarmFailures int64
	// WebSockets counts the open sockets (accepted and not ended), hibernating ones included.
	WebSockets int64
}

func (r *Runtime) Stats() Stats {
	return Stats{
		LiveInstances: r.liveInstances.Load(),
		Created:       r.created.Load(),
		Destroyed:     r.destroyed.Load(),
		MaxLivePerID:  r.maxLivePerID.Load(),
		ActiveObjects: r.objects.count(),

		AlarmDeliveries: r.alarmsDelivered.Load(),
		AlarmRuns:       r.alarmRuns.Load(),
		AlarmFailures:   r.alarmFailures.Load(),
		WebSockets:      r.ws.open.Load(),
	}
}

var classNameRE = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,62}$`)

// ValidClassName reports whether name can name a class (it becomes a URL segment and a
// directory name).
func ValidClassName(name string) bool { return classNameRE.MatchString(name) }

// Class is a loaded object class: its current compiled module (replaceable) plus its ID
// namespace.
type Class struct {
	rt   *Runtime
	name string
	ns   *id.Namespace

	// cur is the module new instances are made from. A replaced module is retired and closed
	// once its last instance is gone (modMu orders retirement with instance creation).
	cur     atomic.Pointer[classModule]
	modMu   sync.Mutex
	deleted atomic.Bool // DeleteClass: no new events; the name may be deployed again

	alarms    *storage.AlarmIndex
	alarmKick chan struct{}
}

// classModule is one compiled version of a class, with the limits it was compiled for.
type classModule struct {
	cm       wazero.CompiledModule
	limits   ClassLimits
	hasAlarm bool // the module exports dowasm_alarm
	// the module exports dowasm_ws_close / dowasm_ws_error (a socket's end wakes the object only
	// if it handles it)
	hasWSClose, hasWSError bool

	refs    int // live instances; guarded by Class.modMu
	retired bool
}

// ClassLimits bound one class's objects. Zero fields take the runtime's defaults (Config).
type ClassLimits struct {
	// MemoryPages caps each instance's linear memory in 64 KiB pages (at most the runtime's
	// MemoryLimitPages): the module's memory gets it as its maximum, so memory.grow fails past it.
	MemoryPages uint32
	// TableElems caps each table's size (its declared maximum).
	TableElems uint32
	// EventTimeout bounds one event's run time (CPU and waits), init included.
	EventTimeout time.Duration
	// EventCPU bounds the CPU time one event may use (guest code and host functions, init
	// included; not its waits for calls to other objects); 0 takes the runtime's EventCPU.
	EventCPU time.Duration
	// StorageBytes bounds each object's database (SQLite max_page_count); 0: unbounded. A write
	// past it fails the event with "storage limit reached".
	StorageBytes int64
	// MaxQueue bounds the events waiting for one object.
	MaxQueue int
	// MaxBodySize bounds a request body (the gateway answers 413 past it).
	MaxBodySize int64
}

// resolve fills l's zero fields from the runtime's configuration and caps memory at it.
func (r *Runtime) resolve(l ClassLimits) ClassLimits {
	if l.MemoryPages == 0 || l.MemoryPages > r.cfg.MemoryLimitPages {
		l.MemoryPages = r.cfg.MemoryLimitPages
	}
	if l.TableElems == 0 {
		l.TableElems = r.cfg.MaxTableElems
	}
	if l.EventTimeout <= 0 {
		l.EventTimeout = r.cfg.EventTimeout
	}
	if l.EventCPU <= 0 {
		l.EventCPU = r.cfg.EventCPU
	}
	if l.StorageBytes < 0 {
		l.StorageBytes = 0
	}
	if l.MaxQueue <= 0 {
		l.MaxQueue = r.cfg.MaxQueue
	}
	if l.MaxBodySize <= 0 || l.MaxBodySize > abi.MaxBodySize {
		l.MaxBodySize = abi.MaxBodySize
	}
	return l
}

// Name is the class's name.
func (c *Class) Name() string { return c.name }

// Namespace derives and checks the class's object IDs.
func (c *Class) Namespace() *id.Namespace { return c.ns }

// Limits returns the limits of the class's current module.
func (c *Class) Limits() ClassLimits { return c.cur.Load().limits }

// acquireModule returns the current module for a new instance, counting the instance.
func (c *Class) acquireModule() *classModule {
	c.modMu.Lock()
	defer c.modMu.Unlock()
	m := c.cur.Load()
	m.refs++
	return m
}

// releaseModule uncounts an instance; a retired module's last instance closes it.
func (c *Class) releaseModule(m *classModule) {
	c.modMu.Lock()
	m.refs--
	done := m.retired && m.refs == 0
	c.modMu.Unlock()
	if done {
		m.cm.Close(context.Background())
	}
}

// ErrVersion is wrapped by LoadClass when a module was built for another ABI version.
var ErrVersion = errors.New("unsupported ABI version")

// ErrNotGuest is wrapped by LoadClass for input that is not a usable dowasm module.
var ErrNotGuest = errors.New("not a dowasm guest")

// ErrNoClass is wrapped for events to a class that does not exist (or was deleted).
var ErrNoClass = errors.New("no such class")

// compile validates, instruments and compiles a module for class name with limits l (resolved).
// It returns the module's compilation cache key, for cacheHold or cacheRelease.
func (r *Runtime) compile(ctx context.Context, name, source string, wasm []byte, l ClassLimits) (*classModule, string, error) {
	if !ValidClassName(name) {
		return nil, "", fmt.Errorf("class %q: invalid name (want lowercase letters, digits, - and _, starting with a letter)", name)
	}
	if len(wasm) < 8 || string(wasm[:4]) != "\x00asm" {
		return nil, "", fmt.Errorf("class %s: %s: %w: not a WebAssembly module (missing \\0asm header)", name, source, ErrNotGuest)
	}
	// Instrumenting first is safe on unvalidated input: the rewriter refuses any reference to a
	// function, global or local beyond the module's own, so no guest can name what it adds; the
	// compile below validates the result.
	metered, err := fuel.Instrument(wasm, fuel.Options{MaxTableElems: l.TableElems, MaxMemoryPages: l.MemoryPages,
		MaxCallDepth: r.cfg.MaxCallDepth})
	switch {
	case errors.Is(err, fuel.ErrMalformed) || errors.Is(err, fuel.ErrUnsupported):
		return nil, "", fmt.Errorf("class %s: %s: invalid WebAssembly: %w", name, source, err)
	case errors.Is(err, fuel.ErrReservedImport):
		return nil, "", fmt.Errorf("class %s: %s: %w: %w", name, source, ErrNotGuest, err)
	case err != nil:
		return nil, "", fmt.Errorf("class %s: %s: %w", name, source, err)
	}
	cm, key, err := r.compileCached(ctx, metered)
	if err != nil {
		return nil, "", fmt.Errorf("class %s: %s: invalid WebAssembly: %w", name, source, err)
	}
	if err := CheckModule(cm); err != nil {
		cm.Close(ctx)
		r.cacheRelease(key)
		return nil, "", fmt.Errorf("class %s: %s: %w", name, source, err)
	}
	exports := cm.ExportedFunctions()
	m := &classModule{cm: cm, limits: l}
	_, m.hasAlarm = exports["dowasm_alarm"]
	_, m.hasWSClose = exports["dowasm_ws_close"]
	_, m.hasWSError = exports["dowasm_ws_error"]
	return m, key, nil
}

// LoadClass validates and compiles a module and registers it as class name with the runtime's
// default limits. source names the module in errors (a file path). Nothing is registered if any
// check fails.
func (r *Runtime) LoadClass(ctx context.Context, name, source string, wasm []byte) (*Class, error) {
	return r.DeployClass(ctx, name, source, wasm, ClassLimits{})
}

// DeployClass loads a class, or replaces the module (and limits) of a loaded one. A replacement
// is validated and compiled before it takes effect; objects finish the event they are running on
// the old module and wake on the new one at their next event. A deleted class of that name is
// deployed again with its data.
func (r *Runtime) DeployClass(ctx context.Context, name, source string, wasm []byte, limits ClassLimits) (*Class, error) {
	m, key, err := r.compile(ctx, name, source, wasm, r.resolve(limits))
	if err != nil {
		return nil, err
	}
	r.deployMu.Lock()
	defer r.deployMu.Unlock()
	r.mu.RLock()
	c, closed := r.classes[name], r.closed
	r.mu.RUnlock()
	if closed {
		m.cm.Close(ctx)
		r.cacheRelease(key)
		return nil, ErrShuttingDown
	}
	if c != nil {
		c.modMu.Lock()
		old := c.cur.Swap(m)
		old.retired = true
		done := old.refs == 0
		c.modMu.Unlock()
		if done {
			old.cm.Close(ctx)
		}
		c.deleted.Store(false)
		c.kickAlarms()
		r.cacheHold(name, key) // the old module's cache entry goes unless another class uses it
		return c, nil
	}
	nsKey, err := id.LoadOrCreateKey(filepath.Join(r.cfg.DataDir, name, namespaceKeyFile))
	if err != nil {
		m.cm.Close(ctx)
		r.cacheRelease(key)
		return nil, fmt.Errorf("class %s: %w", name, err)
	}
	c = &Class{rt: r, name: name, ns: id.NewNamespace(nsKey), alarmKick: make(chan struct{}, 1)}
	c.cur.Store(m)
	// Every class has an alarm index, also one without a handler today: its objects may hold
	// alarms set by an earlier version of the class.
	if c.alarms, err = r.store.OpenAlarmIndex(name); err != nil {
		m.cm.Close(ctx)
		r.cacheRelease(key)
		return nil, fmt.Errorf("class %s: %w", name, err)
	}
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		c.alarms.Close()
		m.cm.Close(ctx)
		r.cacheRelease(key)
		return nil, ErrShuttingDown
	}
	r.classes[name] = c
	r.bg.Add(1)
	r.mu.Unlock()
	r.cacheHold(name, key)
	go c.runAlarms()
	return c, nil
}

// DeleteClass stops serving a class: new events to it fail with ErrNoClass (the gateway answers
// 404), its WebSockets are closed (1001), its alarms wait; events already queued still run. Its
// objects' data stays: deploying the class again finds it. Its compiled module stays in memory
// (queued events and live instances use it) until the class is deployed again or the runtime
// closes; its compilation cache entry goes unless another class uses the same module.
func (r *Runtime) DeleteClass(name string) error {
	r.deployMu.Lock()
	defer r.deployMu.Unlock()
	c := r.Class(name)
	if c == nil {
		return fmt.Errorf("class %q: %w", name, ErrNoClass)
	}
	c.deleted.Store(true)
	r.ws.closeClass(c, "class deleted")
	r.cacheDrop(name) // its module's cache entry goes unless another class uses it
	return nil
}

// Class returns the loaded class called name, or nil (also for a deleted class).
func (r *Runtime) Class(name string) *Class {
	r.mu.RLock()
	defer r.mu.RUnlock()
	c := r.classes[name]
	if c == nil || c.deleted.Load() {
		return nil
	}
	return c
}

// Classes returns the names of the loaded classes, sorted.
func (r *Runtime) Classes() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]string, 0, len(r.classes))
	for n, c := range r.classes {
		if !c.deleted.Load() {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out
}

// CheckModule compares a compiled module's imports and exports with the ABI table: every
// import from the dowasm module must be an ABI host function with the same signature, the only
// other import module allowed is WASI, the version marker must name this host's version, and
// the required exports must exist with their ABI signatures.
func CheckModule(cm wazero.CompiledModule) error {
	exports := cm.ExportedFunctions()
	version := -1
	for name := range exports {
		if v, ok := strings.CutPrefix(name, abi.VersionExportPrefix); ok {
			n, err := strconv.Atoi(v)
			if err != nil {
				return fmt.Errorf("%w: malformed version marker export %q", ErrNotGuest, name)
			}
			version = n
		}
	}
	if version < 0 {
		return fmt.Errorf("%w: no %s<N> export (build it with a dowasm guest SDK)", ErrNotGuest, abi.VersionExportPrefix)
	}
	if version != abi.Version {
		return fmt.Errorf("%w: module built for ABI v%d; this host supports ABI v%d", ErrVersion, version, abi.Version)
	}
	if _, ok := cm.ExportedMemories()["memory"]; !ok {
		return fmt.Errorf("%w: module does not export its memory as \"memory\"", ErrNotGuest)
	}
	for _, f := range abi.GuestExports {
		def, ok := exports[f.Name]
		if !ok {
			if f.Optional {
				continue
			}
			return fmt.Errorf("%w: missing export %s (ABI: %s)", ErrNotGuest, f.Name, f.TypeSignature())
		}
		if got := defTypes(def); got != f.TypeSignature() {
			return fmt.Errorf("%w: export %s has signature %s; ABI v%d says %s", ErrNotGuest, f.Name, got, abi.Version, f.TypeSignature())
		}
	}
	for _, def := range cm.ImportedFunctions() {
		mod, name, _ := def.Import()
		switch mod {
		case abi.ImportModule:
			f, ok := abi.HostFunc(name)
			if !ok {
				return fmt.Errorf("%w: imports %s.%s, which ABI v%d does not have", ErrNotGuest, mod, name, abi.Version)
			}
			if got := defTypes(def); got != f.TypeSignature() {
				return fmt.Errorf("%w: imports %s.%s as %s; ABI v%d says %s", ErrNotGuest, mod, name, got, abi.Version, f.TypeSignature())
			}
		case wasi_snapshot_preview1.ModuleName:
		case fuel.ImportModule:
			// Added by the host's instrumentation (a guest importing it is refused before).
			if !(name == fuel.RefillName && defTypes(def) == "() -> (i64)") &&
				!(name == fuel.TooDeepName && defTypes(def) == "() -> ()") {
				return fmt.Errorf("%w: imports %s.%s, which is reserved for the host", ErrNotGuest, mod, name)
			}
		default:
			return fmt.Errorf("%w: imports %s.%s from unknown module %q", ErrNotGuest, mod, name, mod)
		}
	}
	return nil
}

func defTypes(def api.FunctionDefinition) string {
	conv := func(ts []api.ValueType) []abi.ValType {
		out := make([]abi.ValType, len(ts))
		for i, t := range ts {
			switch t {
			case api.ValueTypeI32:
				out[i] = abi.I32
			case api.ValueTypeI64:
				out[i] = abi.I64
			default:
				out[i] = abi.ValType(100 + t) // prints as an unknown type, never equal
			}
		}
		return out
	}
	return abi.FormatTypes(conv(def.ParamTypes()), conv(def.ResultTypes()))
}

// ErrShuttingDown is returned for events that arrive after Close started.
var ErrShuttingDown = errors.New("server is shutting down")

// Close stops accepting events, cancels in-flight ones (they fail and roll back, committing
// nothing half-done), waits for every object loop to finish, and closes all databases. If ctx
// ends first, Close returns an error but the release goes on in the background once the loops
// end; a later Close waits for it again (under its own ctx) and returns its result.
func (r *Runtime) Close(ctx context.Context) error {
	r.mu.Lock()
	if !r.closed {
		r.closed = true
		r.closeDone = make(chan struct{})
		go func() {
			r.closeErr = r.release()
			close(r.closeDone)
		}()
	}
	done := r.closeDone
	r.mu.Unlock()
	select {
	case <-done:
		return r.closeErr
	case <-ctx.Done():
		return fmt.Errorf("host: shutdown: %w (object loops or alarm schedulers still running; the runtime is released when they end)", ctx.Err())
	}
}

// release is Close's work: stop the loops, then close what they used.
func (r *Runtime) release() error {
	r.objects.closeAll()
	// Sockets get 1001 and no more events; their close handshakes get a few seconds.
	wsCtx, wsCancel := context.WithTimeout(context.Background(), 3*time.Second)
	r.ws.closeAll(wsCtx)
	wsCancel()
	r.cancelShutdown()
	r.loops.Wait()
	// Alarm schedulers stop at the shutdown signal; their deliveries end with the loops.
	r.bg.Wait()
	var err error
	for _, c := range r.classes {
		if cerr := c.alarms.Close(); err == nil {
			err = cerr
		}
	}
	if cerr := r.store.Close(); err == nil {
		err = cerr
	}
	if cerr := r.wz.Close(context.Background()); err == nil {
		err = cerr
	}
	return err
}

// fuelGrant is the fuel refill gives a guest at each check: roughly that many instructions,
// about a millisecond of compute or less, so a guest is stopped within a few ms of its deadline
// and returns to Go (where the scheduler and the garbage collector reach it) as often.
const fuelGrant = 1 << 20

// errDeadline aborts a guest at its event's deadline (the host reports the timeout from the
// event's context, not from this value).
var errDeadline = errors.New("event deadline passed")

// errCPULimit aborts a guest past its event's CPU time limit (reported from the event).
var errCPULimit = errors.New("event CPU time limit exceeded")

// enforceLimits stops the guest instance in, running under ctx (by panicking, which wazero turns
// into an error for the host's call into the guest), once its event's deadline has passed, the
// event was cancelled (shutdown) or it has used more CPU than its limit. Refill calls it, and so
// does every host function: a guest looping over slow host calls runs many of them per fuel
// grant. in may be nil (then only the context is checked).
func enforceLimits(ctx context.Context, in *instance) {
	// The timer behind ctx.Err() needs a free scheduler slot to fire; comparing the clock with
	// the deadline does not.
	if dl, ok := ctx.Deadline(); (ok && !time.Now().Before(dl)) || ctx.Err() != nil {
		panic(errDeadline)
	}
	if in != nil && in.ev != nil {
		if ev := in.ev; ev.cpuLimit > 0 && ev.cpu.exceeds(ev.cpuLimit) {
			ev.cpuExceeded = true
			panic(errCPULimit)
		}
	}
}

// instantiateFuelModule provides the functions that instrumented guests call: refill whenever
// their fuel runs out, which traps the guest once its event's deadline has passed or the event was
// cancelled (shutdown) and otherwise grants more fuel; and too_deep when a call would exceed
// maxDepth frames, which traps the guest. (Its counter is not unwound by a trap; the host
// discards an instance after any failed call.)
func instantiateFuelModule(ctx context.Context, rt wazero.Runtime, maxDepth uint32) error {
	errTooDeep := fmt.Errorf("call depth limit of %d frames exceeded (unbounded recursion?)", maxDepth)
	_, err := rt.NewHostModuleBuilder(fuel.ImportModule).
		NewFunctionBuilder().
		WithGoModuleFunction(api.GoModuleFunc(func(ctx context.Context, _ api.Module, stack []uint64) {
			in, _ := ctx.Value(instanceKey{}).(*instance)
			if in == nil {
				in, _ = ctx.Value(startingKey{}).(*instance) // a start function (newInstance)
			}
			enforceLimits(ctx, in)
			stack[0] = fuelGrant
		}), nil, []api.ValueType{api.ValueTypeI64}).
		Export(fuel.RefillName).
		NewFunctionBuilder().
		WithGoModuleFunction(api.GoModuleFunc(func(context.Context, api.Module, []uint64) {
			panic(errTooDeep)
		}), nil, nil).
		Export(fuel.TooDeepName).
		Instantiate(ctx)
	return err
}
