// Package hostile runs hostile guests (issue 7) against a real runtime and gateway over HTTP:
// an infinite loop, a loop-free exponential recursion, unbounded and deep recursion, a memory
// bomb, a table bomb, out-of-range pointers and absurd lengths to every host function, a
// constructor that traps or never returns, an alarm that always fails and re-arms, and a socket
// flood. Each guest is written in WAT (testdata/*.wat, the bad-pointer guest generated from
// abi.HostFuncs) and assembled with binaryen's wasm-as at test time. Each must be stopped with a
// clear error and its writes rolled back while another class keeps answering; its latency during
// each attack is logged, and the whole table at the end (copied to bench/RESULTS.md).
//
//	go test -v -run TestHostile ./tests/hostile/
package hostile

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dowasm/dowasm/gateway"
	"github.com/dowasm/dowasm/host"
	"github.com/dowasm/dowasm/internal/testutil"
	"github.com/dowasm/dowasm/storage"
	"github.com/dowasm/dowasm/toolchain"
)

// The test harness: a real host.Runtime behind the real gateway on a real HTTP server
// (httptest), the hostile guests assembled from testdata/*.wat with binaryen's wasm-as, and a
// well-behaved tenant class (the counter example, TinyGo build) whose latency is measured while
// each attack runs.

// assemble turns testdata/<name> (WAT) into a module with binaryen's wasm-as. A missing
// assembler is a failure, not a skip: these tests are part of the suite.
func assemble(t testing.TB, name string) []byte {
	t.Helper()
	src, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return assembleText(t, name, string(src))
}

// assembleText assembles WAT source (named name in errors).
func assembleText(t testing.TB, name, src string) []byte {
	t.Helper()
	wasmAs, err := exec.LookPath("wasm-as")
	if err != nil {
		t.Fatalf("wasm-as (binaryen) is not installed, needed to assemble the hostile guests: run ./task setup-tinygo (installs binaryen): %v", err)
	}
	dir := t.TempDir()
	in, out := filepath.Join(dir, filepath.Base(name)), filepath.Join(dir, "out.wasm")
	if err := os.WriteFile(in, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(wasmAs, "--enable-reference-types", "--enable-bulk-memory", in, "-o", out)
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("wasm-as %s: %v\n%s", name, err, msg)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// tenantModule is the well-behaved class standing in for another tenant: the counter example
// built with TinyGo (instances start in ~0.1 ms).
func tenantModule(t testing.TB) []byte {
	t.Helper()
	return testutil.Guest(t, "examples/counter/go", toolchain.TinyGo)
}

type env struct {
	t    *testing.T
	rt   *host.Runtime
	srv  *httptest.Server
	url  string
	http *http.Client
	logs *logCapture
	cfg  host.Config
}

// newEnv starts a runtime with cfg (DataDir, CacheDir and Logger are set here), loads the tenant
// class as "tenant" and serves the gateway over HTTP.
func newEnv(t *testing.T, cfg host.Config) *env {
	t.Helper()
	cfg.DataDir = t.TempDir()
	// compiled modules are keyed by content and wazero version: safe to share across tests
	cfg.CacheDir = filepath.Join(os.TempDir(), "dowasm-test-wazero-cache")
	logs := &logCapture{}
	cfg.Logger = slog.New(logs)
	// Start each case from a collected heap, so that one case's garbage does not slow the next.
	runtime.GC()
	debug.FreeOSMemory()
	rt, err := host.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rt.LoadClass(context.Background(), "tenant", "examples/counter/go", tenantModule(t)); err != nil {
		rt.Close(context.Background())
		t.Fatal(err)
	}
	srv := httptest.NewServer(gateway.New(rt, nil))
	e := &env{t: t, rt: rt, srv: srv, url: srv.URL, logs: logs, cfg: cfg,
		http: &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := rt.Close(ctx); err != nil {
			t.Errorf("runtime close: %v", err)
		}
		srv.Close()
		e.http.CloseIdleConnections()
	})
	return e
}

// load loads a hostile class from its module and fails the test if the host refuses it.
func (e *env) load(class string, wasm []byte) *host.Class {
	e.t.Helper()
	c, err := e.rt.LoadClass(context.Background(), class, "testdata/"+class+".wat", wasm)
	if err != nil {
		e.t.Fatalf("load %s: %v", class, err)
	}
	return c
}

type reply struct {
	status int
	body   string
	took   time.Duration
	// the gateway's JSON error, when status >= 400
	err jsonError
}

type jsonError struct {
	Error  string `json:"error"`
	Class  string `json:"class"`
	Object string `json:"object"`
}

// do sends one request and reads the whole answer.
func (e *env) do(method, path string) (reply, error) {
	req, err := http.NewRequest(method, e.url+path, nil)
	if err != nil {
		return reply{}, err
	}
	start := time.Now()
	resp, err := e.http.Do(req)
	if err != nil {
		return reply{took: time.Since(start)}, err
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	r := reply{status: resp.StatusCode, body: string(b), took: time.Since(start)}
	if err != nil {
		return r, err
	}
	if r.status >= 400 && strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(b, &r.err); err != nil {
			return r, fmt.Errorf("error body %q is not the gateway's JSON: %v", b, err)
		}
	}
	return r, nil
}

// must sends a request and fails the test unless it answers want.
func (e *env) must(method, path string, want int) reply {
	e.t.Helper()
	r, err := e.do(method, path)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	if r.status != want {
		e.t.Fatalf("%s %s: status %d, want %d: %s", method, path, r.status, want, r.body)
	}
	return r
}

// objectHex is the ID of class/name as the gateway derives it.
func (e *env) objectHex(class, name string) string {
	return e.rt.Class(class).Namespace().FromName(name).String()
}

// expectFailure checks a 500 answer naming the class and object and containing every one of
// wants in its error message.
func (e *env) expectFailure(r reply, class, name string, wants ...string) {
	e.t.Helper()
	if r.status != http.StatusInternalServerError {
		e.t.Fatalf("status %d, want 500: %s", r.status, r.body)
	}
	hex := e.objectHex(class, name)
	if r.err.Class != class || r.err.Object != hex {
		e.t.Errorf("error names class %q object %q, want %q %q", r.err.Class, r.err.Object, class, hex)
	}
	for _, w := range append([]string{"object " + class + "/" + hex + ": "}, wants...) {
		if !strings.Contains(r.err.Error, w) {
			e.t.Errorf("error %q does not contain %q", r.err.Error, w)
		}
	}
}

// stored reads key from the object's database directly (the object must be idle: the read waits
// for the object's lease).
func (e *env) stored(class, name, key string) (string, bool) {
	e.t.Helper()
	return e.read(class, name, fmt.Sprintf("%q", key), func(db *storage.DB) ([]byte, bool, error) { return db.Get([]byte(key)) })
}

// storedMeta reads one of the object's metadata entries (the alarm, its retry count).
func (e *env) storedMeta(class, name, key string) (string, bool) {
	e.t.Helper()
	return e.read(class, name, fmt.Sprintf("meta %q", key), func(db *storage.DB) ([]byte, bool, error) { return db.Meta(key) })
}

// read runs get on the object's database (what names the value in errors).
func (e *env) read(class, name, what string, get func(*storage.DB) ([]byte, bool, error)) (string, bool) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	db, err := e.rt.Store().Acquire(ctx, class, e.objectHex(class, name))
	if err != nil {
		e.t.Fatalf("acquire %s/%s: %v", class, name, err)
	}
	defer e.rt.Store().Release(db)
	v, ok, err := get(db)
	if err != nil {
		e.t.Fatalf("read %s/%s %s: %v", class, name, what, err)
	}
	return string(v), ok
}

// expectRolledBack checks that the attacked object's "v" still holds "before", both in its
// database and as answered by a fresh instance (the next event after a failure builds one).
func (e *env) expectRolledBack(class, name string) {
	e.t.Helper()
	if v, ok := e.stored(class, name, "v"); !ok || v != "before" {
		e.t.Errorf("%s/%s: stored v = %q (present %v) after the attack, want \"before\": the attack's write was not rolled back", class, name, v, ok)
	}
	if r := e.must("GET", "/"+class+"/"+name+"/", 200); r.body != "before" {
		e.t.Errorf("%s/%s: GET after the attack answers %q, want \"before\"", class, name, r.body)
	}
}

// ---- the other tenant ----

// tenantLoad keeps a well-behaved class busy while an attack runs and measures its latency:
// two clients, each incrementing counters of the tenant class in turn (4 objects each) with a
// short pause between requests. Every request must succeed, and at the end every counter must
// hold exactly the number of increments it acknowledged.
type tenantLoad struct {
	e     *env
	stop  chan struct{}
	wg    sync.WaitGroup
	start time.Time

	mu     sync.Mutex
	lat    []time.Duration
	errs   []string
	counts map[string]int
}

const tenantClients, tenantObjects = 2, 4

func (e *env) startTenant() *tenantLoad {
	e.t.Helper()
	m := &tenantLoad{e: e, stop: make(chan struct{}), counts: map[string]int{}}
	// Warm up (not measured): each counter's first request creates its instance and database.
	for w := 0; w < tenantClients; w++ {
		for i := 0; i < tenantObjects; i++ {
			name := fmt.Sprintf("c%d-%d", w, i)
			e.must("POST", "/tenant/"+name+"/increment", 200)
			m.counts[name]++
		}
	}
	m.start = time.Now()
	for w := 0; w < tenantClients; w++ {
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			for i := 0; ; i++ {
				select {
				case <-m.stop:
					return
				default:
				}
				name := fmt.Sprintf("c%d-%d", w, i%tenantObjects)
				r, err := e.do("POST", "/tenant/"+name+"/increment")
				m.mu.Lock()
				switch {
				case err != nil:
					m.errs = append(m.errs, fmt.Sprintf("POST %s: %v", name, err))
				case r.status != 200:
					m.errs = append(m.errs, fmt.Sprintf("POST %s: status %d: %s", name, r.status, r.body))
				default:
					m.counts[name]++
					if want := strconv.Itoa(m.counts[name]); r.body != want {
						m.errs = append(m.errs, fmt.Sprintf("POST %s answered %q, want %s", name, r.body, want))
					}
					m.lat = append(m.lat, r.took)
				}
				m.mu.Unlock()
				select {
				case <-m.stop:
					return
				case <-time.After(5 * time.Millisecond):
				}
			}
		}()
	}
	return m
}

type latencyStats struct {
	N             int
	P50, P99, Max time.Duration
	Window        time.Duration
}

func (s latencyStats) String() string {
	return fmt.Sprintf("%d requests in %s: p50 %s, p99 %s, max %s", s.N, s.Window.Round(time.Millisecond), ms(s.P50), ms(s.P99), ms(s.Max))
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond)) }

// finish stops the tenant's clients, checks that every request succeeded and every counter is
// exact, and returns the latencies measured.
func (m *tenantLoad) finish() latencyStats {
	m.e.t.Helper()
	close(m.stop)
	m.wg.Wait()
	window := time.Since(m.start)
	m.mu.Lock()
	defer m.mu.Unlock()
	for i, msg := range m.errs {
		if i == 10 {
			m.e.t.Errorf("... and %d more tenant failures", len(m.errs)-10)
			break
		}
		m.e.t.Errorf("the other tenant failed during the attack: %s", msg)
	}
	for name, n := range m.counts {
		if r := m.e.must("GET", "/tenant/"+name+"/", 200); r.body != strconv.Itoa(n) {
			m.e.t.Errorf("tenant counter %s = %s, want %d", name, r.body, n)
		}
	}
	if len(m.lat) == 0 {
		m.e.t.Errorf("the other tenant got no answer at all during the attack")
		return latencyStats{Window: window}
	}
	s := append([]time.Duration(nil), m.lat...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	q := func(p float64) time.Duration { return s[min(len(s)-1, int(p*float64(len(s))))] }
	st := latencyStats{N: len(s), P50: q(0.50), P99: q(0.99), Max: s[len(s)-1], Window: window}
	m.e.t.Logf("other tenant during the attack: %s", st)
	return st
}

// ---- results table ----

type resultRow struct {
	Case    string
	Stop    string // how fast the attack was stopped, or what stopped it
	Outcome string
	Tenant  latencyStats
}

var results struct {
	mu   sync.Mutex
	rows []resultRow
}

func record(r resultRow) {
	results.mu.Lock()
	results.rows = append(results.rows, r)
	results.mu.Unlock()
}

func resultsTable() string {
	results.mu.Lock()
	defer results.mu.Unlock()
	var b strings.Builder
	b.WriteString("| case | stopped | outcome | other class: requests | p50 | p99 | max |\n|---|---|---|---|---|---|---|\n")
	for _, r := range results.rows {
		fmt.Fprintf(&b, "| %s | %s | %s | %d | %s | %s | %s |\n", r.Case, r.Stop, r.Outcome, r.Tenant.N, ms(r.Tenant.P50), ms(r.Tenant.P99), ms(r.Tenant.Max))
	}
	return b.String()
}

// ---- process measurements ----

// procStatusKB reads a field (VmRSS, VmHWM) of /proc/self/status in KiB.
func procStatusKB(t testing.TB, field string) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatalf("read /proc/self/status: %v", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			f := strings.Fields(v)
			n, err := strconv.ParseInt(f[0], 10, 64)
			if err != nil {
				t.Fatalf("/proc/self/status %s: %q", field, line)
			}
			return n
		}
	}
	t.Fatalf("/proc/self/status has no %s", field)
	return 0
}

// rssWatch measures the process's peak resident memory over an attack: it resets the kernel's
// high-water mark (VmHWM, via /proc/self/clear_refs) and also samples VmRSS every 5 ms, in case
// the kernel does not support the reset.
type rssWatch struct {
	t        testing.TB
	base     int64
	peak     int64
	stop     chan struct{}
	done     chan struct{}
	resetHWM bool
}

func watchRSS(t testing.TB) *rssWatch {
	w := &rssWatch{t: t, stop: make(chan struct{}), done: make(chan struct{})}
	// start from a collected heap returned to the OS, so earlier garbage does not hide growth
	runtime.GC()
	debug.FreeOSMemory()
	w.resetHWM = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) == nil
	w.base = procStatusKB(t, "VmRSS")
	w.peak = w.base
	go func() {
		defer close(w.done)
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-w.stop:
				return
			case <-tick.C:
				if v := procStatusKB(t, "VmRSS"); v > w.peak {
					w.peak = v
				}
			}
		}
	}()
	return w
}

// end returns the peak growth of resident memory (MiB) since watchRSS.
func (w *rssWatch) end() float64 {
	close(w.stop)
	<-w.done
	if w.resetHWM {
		if v := procStatusKB(w.t, "VmHWM"); v > w.peak {
			w.peak = v
		}
	}
	return float64(w.peak-w.base) / 1024
}

// cpuTime is the CPU time (user + system) the process has used so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// ---- logs ----

// logCapture keeps the host's log records so tests can check what it reported.
type logCapture struct {
	mu   sync.Mutex
	recs []string
}

func (l *logCapture) Enabled(context.Context, slog.Level) bool { return true }
func (l *logCapture) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *logCapture) WithGroup(string) slog.Handler            { return l }
func (l *logCapture) Handle(_ context.Context, r slog.Record) error {
	var b bytes.Buffer
	b.WriteString(r.Level.String() + " " + r.Message)
	r.Attrs(func(a slog.Attr) bool {
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
		return true
	})
	l.mu.Lock()
	l.recs = append(l.recs, b.String())
	l.mu.Unlock()
	return nil
}

// matching returns the records containing every one of subs.
func (l *logCapture) matching(subs ...string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
next:
	for _, r := range l.recs {
		for _, s := range subs {
			if !strings.Contains(r, s) {
				continue next
			}
		}
		out = append(out, r)
	}
	return out
}

// repeatFor calls attack until it has run for at least d (and at least once).
func repeatFor(d time.Duration, attack func()) int {
	n := 0
	for start := time.Now(); n == 0 || time.Since(start) < d; n++ {
		attack()
	}
	return n
}

// waitFor polls cond for up to 30 s.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}
