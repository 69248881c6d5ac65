package browser

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dowasm/dowasm/internal/testutil"
)

// A minimal client for chromedriver's W3C WebDriver HTTP/JSON API: sessions, navigation,
// synchronous scripts and input actions; just what the browser tests need.

// chromedriver is a running chromedriver process listening on a loopback port.
type chromedriver struct {
	URL    string
	cmd    *exec.Cmd
	log    *testutil.LockedBuffer
	chrome string // path of the chromium binary
	http   *http.Client
}

// browserPrograms finds chromium and chromedriver, failing the test (with the setup command to
// run) when either is missing.
func browserPrograms(t *testing.T) (chrome, driver string) {
	t.Helper()
	var missing []string
	chrome, err := exec.LookPath("chromium")
	if err != nil {
		missing = append(missing, "chromium")
	}
	driver, err = exec.LookPath("chromedriver")
	if err != nil {
		missing = append(missing, "chromedriver")
	}
	if len(missing) > 0 {
		t.Fatalf("%s not found on PATH: run ./task setup-browser (or set DOWASM_SKIP_BROWSER=1 to skip)", strings.Join(missing, " and "))
	}
	return chrome, driver
}

// startChromedriver starts chromedriver on a free loopback port and waits until it is ready. It
// runs in its own process group, which Cleanup kills (with any browser it left behind).
func startChromedriver(t *testing.T) *chromedriver {
	t.Helper()
	chrome, driverPath := browserPrograms(t)
	port := freePort(t)
	d := &chromedriver{
		URL:    "http://127.0.0.1:" + strconv.Itoa(port),
		log:    &testutil.LockedBuffer{},
		chrome: chrome,
		http:   &http.Client{Timeout: 90 * time.Second},
	}
	d.cmd = exec.Command(driverPath, "--port="+strconv.Itoa(port))
	d.cmd.Stdout = d.log
	d.cmd.Stderr = d.log
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := d.cmd.Start(); err != nil {
		t.Fatalf("start chromedriver: %v", err)
	}
	exited := make(chan struct{})
	go func() { d.cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		syscall.Kill(-d.cmd.Process.Pid, syscall.SIGKILL)
		<-exited
		if t.Failed() {
			t.Logf("chromedriver output:\n%s", d.log)
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		var status struct {
			Ready bool `json:"ready"`
		}
		if err := d.do("GET", "/status", nil, &status); err == nil && status.Ready {
			return d
		}
		select {
		case <-exited:
			t.Fatalf("chromedriver exited before it was ready:\n%s", d.log)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("chromedriver not ready after 30s:\n%s", d.log)
		}
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// do sends one WebDriver command and decodes the "value" of the answer into out (if not nil).
func (d *chromedriver) do(method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, d.URL+path, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := d.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	var env struct {
		Value json.RawMessage `json:"value"`
	}
	if err := json.Unmarshal(raw, &env); err != nil {
		return fmt.Errorf("%s %s: %s: bad answer %q", method, path, resp.Status, raw)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error   string `json:"error"`
			Message string `json:"message"`
		}
		json.Unmarshal(env.Value, &e)
		return fmt.Errorf("%s %s: %s: %s: %s", method, path, resp.Status, e.Error, e.Message)
	}
	if out != nil {
		return json.Unmarshal(env.Value, out)
	}
	return nil
}

// session is one headless Chromium window.
type session struct {
	t      *testing.T
	d      *chromedriver
	id     string
	mu     sync.Mutex
	closed bool
}

// newSession starts a headless Chromium with a fresh profile; Cleanup closes it.
func (d *chromedriver) newSession(t *testing.T) *session {
	t.Helper()
	args := []string{
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
		"--disable-component-update", "--disable-sync", "--no-first-run", "--window-size=1000,800",
		"--user-data-dir=" + t.TempDir(),
	}
	caps := map[string]any{"capabilities": map[string]any{"alwaysMatch": map[string]any{
		"goog:chromeOptions": map[string]any{"binary": d.chrome, "args": args},
	}}}
	var created struct {
		SessionID string `json:"sessionId"`
	}
	if err := d.do("POST", "/session", caps, &created); err != nil {
		t.Fatalf("new WebDriver session: %v", err)
	}
	s := &session{t: t, d: d, id: created.SessionID}
	t.Cleanup(func() { s.close() })
	return s
}

// close ends the session (closing the browser); it is idempotent.
func (s *session) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	s.closed = true
	if err := s.d.do("DELETE", "/session/"+s.id, nil, nil); err != nil {
		s.t.Errorf("delete WebDriver session: %v", err)
	}
}

func (s *session) cmd(method, path string, body, out any) {
	s.t.Helper()
	if err := s.d.do(method, "/session/"+s.id+path, body, out); err != nil {
		s.t.Fatal(err)
	}
}

// navigate loads url and waits for the page to load.
func (s *session) navigate(url string) {
	s.t.Helper()
	s.cmd("POST", "/url", map[string]any{"url": url}, nil)
}

// exec runs script (a function body; arguments in `arguments`) in the page and decodes its
// return value into out (if not nil).
func (s *session) exec(out any, script string, args ...any) {
	s.t.Helper()
	if args == nil {
		args = []any{}
	}
	s.cmd("POST", "/execute/sync", map[string]any{"script": script, "args": args}, out)
}

// pointer performs pointer actions (WebDriver "pointerMove", "pointerDown", ...) with the mouse.
func (s *session) pointer(actions ...map[string]any) {
	s.t.Helper()
	s.cmd("POST", "/actions", map[string]any{"actions": []any{map[string]any{
		"type": "pointer", "id": "mouse", "parameters": map[string]any{"pointerType": "mouse"},
		"actions": actions,
	}}}, nil)
}

func moveTo(x, y int) map[string]any {
	return map[string]any{"type": "pointerMove", "duration": 0, "origin": "viewport", "x": x, "y": y}
}

func press() map[string]any   { return map[string]any{"type": "pointerDown", "button": 0} }
func release() map[string]any { return map[string]any{"type": "pointerUp", "button": 0} }
