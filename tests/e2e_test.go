// Package tests runs dowasm end to end: the real binary, a real dowasm.yaml, the example guests
// built from source, real sockets and real SQLite files, including restarts and kill -9.
package tests

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dowasm/dowasm/internal/testutil"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testutil.RemoveDowasm()
	os.Exit(code)
}

// server is a running `dowasm run`.
type server struct {
	t       *testing.T
	cmd     *exec.Cmd
	URL     string
	stderr  *testutil.LockedBuffer
	exited  chan struct{} // closed when the process has exited; then waitErr is set
	waitErr error
}

// writeConfig writes a dowasm.yaml serving the examples, with data in dataDir.
func writeConfig(t *testing.T, dir, dataDir string, extra string) string {
	t.Helper()
	cfg := fmt.Sprintf(`data: %s
idle_timeout: 10s
%s
classes:
  - name: counter
    source: %s
  - name: ticket
    source: %s
  - name: ratelimit
    source: %s
  - name: sessions
    source: %s
`, dataDir, extra, testutil.Path("examples/counter/go"), testutil.Path("examples/ticket/go"), testutil.Path("examples/ratelimit/go"), testutil.Path("examples/sessions/go"))
	p := filepath.Join(dir, "dowasm.yaml")
	if err := os.WriteFile(p, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func startServer(t *testing.T, config string, args ...string) *server {
	t.Helper()
	cmd := exec.Command(testutil.Dowasm(t), append([]string{"run", "--config", config, "--listen", "127.0.0.1:0"}, args...)...)
	stdout, _ := cmd.StdoutPipe()
	s := &server{t: t, cmd: cmd, stderr: &testutil.LockedBuffer{}, exited: make(chan struct{})}
	cmd.Stderr = s.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	urlc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if m := testutil.ListenRE.FindStringSubmatch(sc.Text()); m != nil {
				urlc <- m[1]
			}
		}
	}()
	go func() { s.waitErr = cmd.Wait(); close(s.exited) }()
	select {
	case s.URL = <-urlc:
	case <-s.exited:
		t.Fatalf("dowasm run exited before listening: %v\n%s", s.waitErr, s.stderr)
	case <-time.After(5 * time.Minute):
		cmd.Process.Kill()
		t.Fatalf("dowasm run did not start in time\n%s", s.stderr)
	}
	t.Cleanup(func() { s.kill() })
	return s
}

func (s *server) kill() {
	s.cmd.Process.Signal(syscall.SIGKILL)
	<-s.exited
}

// stop sends SIGTERM and waits for a clean exit.
func (s *server) stop() {
	s.t.Helper()
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
		if s.waitErr != nil {
			s.t.Fatalf("dowasm exited with %v after SIGTERM\n%s", s.waitErr, s.stderr)
		}
	case <-time.After(60 * time.Second):
		s.t.Fatalf("dowasm did not stop after SIGTERM\n%s", s.stderr)
	}
}

var client = &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 256}}

func call(t *testing.T, method, url string) (int, string, http.Header) {
	t.Helper()
	st, body, h, err := tryCall(method, url)
	if err != nil {
		t.Fatal(err)
	}
	return st, body, h
}

func tryCall(method, url string) (int, string, http.Header, error) {
	req, _ := http.NewRequest(method, url, nil)
	resp, err := client.Do(req)
	if err != nil {
		return 0, "", nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header, err
}

func expect(t *testing.T, method, url string, wantStatus int, wantBody string) {
	t.Helper()
	st, body, _ := call(t, method, url)
	if st != wantStatus || body != wantBody {
		t.Fatalf("%s %s: got %d %q, want %d %q", method, url, st, body, wantStatus, wantBody)
	}
}

// The README's session, then a clean restart: the value survives.
func TestCounterREADMESessionAndRestart(t *testing.T) {
	dir := t.TempDir()
	cfg := writeConfig(t, dir, filepath.Join(dir, "data"), "")
	s := startServer(t, cfg)
	expect(t, "POST", s.URL+"/counter/my-counter/increment", 200, "1")
	expect(t, "POST", s.URL+"/counter/my-counter/increment", 200, "2")
	expect(t, "POST", s.URL+"/counter/my-counter/decrement", 200, "1")
	expect(t, "GET", s.URL+"/counter/my-counter/", 200, "1")
	s.stop()
	s2 := startServer(t, cfg)
	expect(t, "GET", s2.URL+"/counter/my-counter/", 200, "1")
	expect(t, "POST", s2.URL+"/counter/my-counter/increment", 200, "2")
}

func TestGatewayErrors(t *testing.T) {
	dir := t.TempDir()
	s := startServer(t, writeConfig(t, dir, filepath.Join(dir, "data"), ""))
	jsonErr := func(method, path string, want int, mention string) {
		t.Helper()
		st, body, h := call(t, method, s.URL+path)
		var e struct{ Error string }
		if st != want || json.Unmarshal([]byte(body), &e) != nil || !strings.Contains(e.Error, mention) || !strings.HasPrefix(h.Get("Content-Type"), "application/json") {
			t.Fatalf("%s %s: got %d %q (%s), want %d with a JSON error mentioning %q", method, path, st, body, h.Get("Content-Type"), want, mention)
		}
	}
	jsonErr("GET", "/nosuchclass/x/", 404, `unknown class "nosuchclass"`)
	jsonErr("GET", "/counter/id/xyz/", 400, "malformed object ID")
	jsonErr("GET", "/counter/id/"+strings.Repeat("0", 64)+"/", 400, "does not belong to this namespace")
	// an ID minted by another class's namespace is foreign here
	_, body, _ := call(t, "POST", s.URL+"/_dowasm/ticket/new-id")
	var minted struct{ ID string }
	json.Unmarshal([]byte(body), &minted)
	jsonErr("GET", "/counter/id/"+minted.ID+"/", 400, "does not belong to this namespace")
	// a unique ID of the right class works
	_, body, _ = call(t, "POST", s.URL+"/_dowasm/counter/new-id")
	json.Unmarshal([]byte(body), &minted)
	expect(t, "POST", s.URL+"/counter/id/"+minted.ID+"/increment", 200, "1")
	expect(t, "GET", s.URL+"/counter/id/"+minted.ID+"/", 200, "1")
	// the server keeps serving
	expect(t, "POST", s.URL+"/counter/still-alive/increment", 200, "1")
}

// postConcurrently sends n POSTs to url, 64 at a time, and returns the numbers they answered.
func postConcurrently(t *testing.T, n int, url string) []int {
	t.Helper()
	nums := make([]int, 0, n)
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, 64)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			st, body, _, err := tryCall("POST", url)
			if err != nil || st != 200 {
				t.Errorf("POST %s: %d %q %v", url, st, body, err)
				return
			}
			v, err := strconv.Atoi(strings.TrimSpace(body))
			if err != nil {
				t.Errorf("POST %s answered %q, not a number", url, body)
				return
			}
			mu.Lock()
			nums = append(nums, v)
			mu.Unlock()
		}()
	}
	wg.Wait()
	sort.Ints(nums)
	return nums
}

// expectOneToN fails unless nums (sorted) is exactly 1..n: each value answered once, no gaps.
func expectOneToN(t *testing.T, nums []int, n int) {
	t.Helper()
	if len(nums) != n {
		t.Fatalf("%d of %d requests answered", len(nums), n)
	}
	for i, v := range nums {
		if v != i+1 {
			t.Fatalf("answers are not exactly 1..%d: position %d has %d", n, i, v)
		}
	}
}

// 1,000 concurrent ticket claims: 1,000 distinct numbers, no gaps.
func TestConcurrentTicketsNoGapsNoDuplicates(t *testing.T) {
	dir := t.TempDir()
	s := startServer(t, writeConfig(t, dir, filepath.Join(dir, "data"), ""))
	expectOneToN(t, postConcurrently(t, 1000, s.URL+"/ticket/concert/claim"), 1000)
	expect(t, "GET", s.URL+"/ticket/concert/", 200, "1000")
}

// Every increment that got a response is present after kill -9 and restart, under both
// durabilities (relaxed gives up power-loss safety, not process-crash safety).
func TestKill9KeepsAcknowledgedWrites(t *testing.T) {
	for _, d := range []string{"full", "relaxed"} {
		t.Run(d, func(t *testing.T) { kill9(t, "durability: "+d) })
	}
}

func kill9(t *testing.T, extra string) {
	dir := t.TempDir()
	cfg := writeConfig(t, dir, filepath.Join(dir, "data"), extra)
	s := startServer(t, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	var mu sync.Mutex
	maxAcked, acked := 0, 0
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				st, body, _, err := tryCall("POST", s.URL+"/counter/crash/increment")
				if err != nil || st != 200 {
					return // the server died under us: this one was not acknowledged
				}
				v, _ := strconv.Atoi(body)
				mu.Lock()
				acked++
				maxAcked = max(maxAcked, v)
				mu.Unlock()
			}
		}()
	}
	time.Sleep(1500 * time.Millisecond)
	s.kill()
	wg.Wait()
	cancel()
	if acked < 10 {
		t.Fatalf("only %d increments acknowledged before the kill", acked)
	}
	s2 := startServer(t, cfg)
	_, body, _ := call(t, "GET", s2.URL+"/counter/crash/")
	got, _ := strconv.Atoi(body)
	if got < maxAcked || got < acked {
		t.Fatalf("after kill -9: counter %d, but %d increments were acknowledged (highest value %d)", got, acked, maxAcked)
	}
	t.Logf("acknowledged %d increments (highest %d); after restart the counter is %d", acked, maxAcked, got)
}

// An alarm pending when the server stops (SIGTERM) or dies (kill -9 right after the request that
// set it was acknowledged) fires after the restart, although it fell due while the server was down.
func TestAlarmSurvivesRestartAndKill9(t *testing.T) {
	for _, how := range []string{"sigterm", "kill9"} {
		t.Run(how, func(t *testing.T) {
			dir := t.TempDir()
			cfg := writeConfig(t, dir, filepath.Join(dir, "data"), "")
			s := startServer(t, cfg)
			base := s.URL + "/sessions/u"
			expect(t, "POST", base+"/sessions?ttl=3600", 201, "1\n")
			_, late, _ := call(t, "GET", base+"/alarm")
			expect(t, "POST", base+"/sessions?ttl=1", 201, "2\n") // moves the alarm 1 s ahead
			_, soon, _ := call(t, "GET", base+"/alarm")
			if soon >= late {
				t.Fatalf("alarm %q not moved earlier than %q", soon, late)
			}
			if how == "kill9" {
				s.kill()
			} else {
				s.stop()
			}
			due, _ := strconv.ParseInt(strings.TrimSpace(soon), 10, 64)
			time.Sleep(time.Until(time.UnixMilli(due)) + 200*time.Millisecond) // due while down
			s2 := startServer(t, cfg)
			deadline := time.Now().Add(30 * time.Second)
			for {
				_, got, _ := call(t, "GET", s2.URL+"/sessions/u/alarm")
				if got == late {
					break // the alarm ran: it deleted session 2 and re-armed for session 1
				}
				if time.Now().After(deadline) {
					t.Fatalf("alarm did not fire after the restart: alarm %q, want %q\n%s", got, late, s2.stderr)
				}
				time.Sleep(20 * time.Millisecond)
			}
			expect(t, "GET", s2.URL+"/sessions/u/sessions", 200, "1 "+late)
		})
	}
}

func TestRatelimit(t *testing.T) {
	dir := t.TempDir()
	s := startServer(t, writeConfig(t, dir, filepath.Join(dir, "data"), ""))
	for i := 0; i < 3; i++ {
		st, body, _ := call(t, "POST", s.URL+"/ratelimit/alice/hit?limit=3&window=60")
		if st != 200 || !strings.Contains(body, `"allowed":true`) {
			t.Fatalf("hit %d: %d %s", i, st, body)
		}
	}
	st, _, h := call(t, "POST", s.URL+"/ratelimit/alice/hit?limit=3&window=60")
	ra, _ := strconv.Atoi(h.Get("Retry-After"))
	if st != 429 || ra < 1 || ra > 60 {
		t.Fatalf("4th hit: %d Retry-After %q", st, h.Get("Retry-After"))
	}
	if st, _, _ := call(t, "POST", s.URL+"/ratelimit/bob/hit?limit=3&window=60"); st != 200 {
		t.Fatalf("bob is limited by alice's hits: %d", st)
	}
}

// Bad configuration and bad modules: a clear error naming the file (and line, field) and a
// non-zero exit, never a half-started server.
func TestBadConfigAndModules(t *testing.T) {
	dir := t.TempDir()
	run := func(cfg string) string {
		t.Helper()
		p := filepath.Join(dir, "bad.yaml")
		os.WriteFile(p, []byte(cfg), 0o644)
		cmd := exec.Command(testutil.Dowasm(t), "run", "--config", p, "--listen", "127.0.0.1:0")
		out, err := cmd.CombinedOutput()
		if err == nil {
			t.Fatalf("config accepted:\n%s", cfg)
		}
		return string(out)
	}
	out := run("classes:\n  - name: counter\n    modle: x.wasm\n")
	if !strings.Contains(out, "bad.yaml:3: field modle not found") {
		t.Fatalf("wrong field: %s", out)
	}
	notWasm := filepath.Join(dir, "notwasm.wasm")
	os.WriteFile(notWasm, []byte("this is not wasm"), 0o644)
	out = run("classes:\n  - name: counter\n    module: " + notWasm + "\n")
	if !strings.Contains(out, "notwasm.wasm") || !strings.Contains(out, "not a WebAssembly module") {
		t.Fatalf("not wasm: %s", out)
	}
	out = run("classes:\n  - name: counter\n    module: " + filepath.Join(dir, "missing.wasm") + "\n")
	if !strings.Contains(out, "missing.wasm") {
		t.Fatalf("missing module: %s", out)
	}
}

// 1,000 concurrent increments over HTTP against one counter: each answered once with a distinct
// value, and the final value is exactly 1,000.
func TestConcurrentIncrementsOverHTTP(t *testing.T) {
	dir := t.TempDir()
	s := startServer(t, writeConfig(t, dir, filepath.Join(dir, "data"), ""))
	expectOneToN(t, postConcurrently(t, 1000, s.URL+"/counter/many/increment"), 1000)
	expect(t, "GET", s.URL+"/counter/many/", 200, "1000")
}
