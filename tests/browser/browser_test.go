// Package browser drives the cursors example's page (examples/cursors/web) in headless Chromium,
// through chromedriver, against a real `dowasm run`: two pages in one room see each other's
// cursors and clicks, before and after the room object is evicted (hibernation).
//
// Needs chromium and chromedriver (./task setup-browser); DOWASM_SKIP_BROWSER=1 skips. The class
// is built from examples/cursors/go unless DOWASM_CURSORS_SOURCE names another source: a
// directory (e.g. examples/cursors/rust) or a compiled .wasm module.
package browser

import (
	"bufio"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
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

// startServer runs `dowasm run` serving the cursors class and its page at /ui/cursors/, and
// returns its URL; Cleanup kills it.
func startServer(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	// The class: built from examples/cursors/go, or DOWASM_CURSORS_SOURCE (a source directory,
	// or a compiled .wasm module).
	class := "source: " + testutil.Path("examples/cursors/go")
	if src := os.Getenv("DOWASM_CURSORS_SOURCE"); src != "" {
		abs, err := filepath.Abs(src)
		if err != nil {
			t.Fatal(err)
		}
		class = "source: " + abs
		if strings.HasSuffix(abs, ".wasm") {
			class = "module: " + abs
		}
	}
	config := filepath.Join(dir, "dowasm.yaml")
	err := os.WriteFile(config, []byte(fmt.Sprintf(`data: %s
idle_timeout: 300ms
assets:
  - path: /ui/cursors/
    dir: %s
classes:
  - name: cursors
    %s
`, filepath.Join(dir, "data"), testutil.Path("examples/cursors/web"), class)), 0o644)
	if err != nil {
		t.Fatal(err)
	}

	cmd := exec.Command(testutil.Dowasm(t), "run", "--config", config, "--listen", "127.0.0.1:0")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr := &testutil.LockedBuffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	urlc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if m := testutil.ListenRE.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case urlc <- m[1]:
				default:
				}
			}
		}
	}()
	exited := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGKILL)
		<-exited
		if t.Failed() {
			t.Logf("dowasm run stderr:\n%s", stderr)
		}
	})
	// Building a Go class from source takes a while the first time (the binary caches it).
	select {
	case url := <-urlc:
		return url
	case <-exited:
		t.Fatalf("dowasm run exited before listening: %v\n%s", waitErr, stderr)
	case <-time.After(5 * time.Minute):
		t.Fatalf("dowasm run did not start in 5 minutes\n%s", stderr)
	}
	return ""
}

// waitFor polls check every 50 ms until it reports done, failing the test after timeout with
// check's last description of what it saw.
func waitFor(t *testing.T, what string, timeout time.Duration, check func() (done bool, saw string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		done, saw := check()
		if done {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v, still waiting for %s; saw %s", timeout, what, saw)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// page is one browser window showing the cursors page.
type page struct {
	*session
	name string
}

func openPage(t *testing.T, d *chromedriver, server, room, name string) *page {
	t.Helper()
	p := &page{session: d.newSession(t), name: name}
	p.navigate(server + "/ui/cursors/?room=" + room + "&name=" + name)
	return p
}

func (p *page) status() string {
	var s string
	p.exec(&s, `var el = document.getElementById("status"); return el ? el.textContent : "(no #status)";`)
	return s
}

// connects is how many times the page's socket opened (window.__connects).
func (p *page) connects() int {
	var n int
	p.exec(&n, `return window.__connects || 0;`)
	return n
}

func (p *page) waitConnected(t *testing.T, room string) {
	t.Helper()
	want := "connected (room " + room + " as " + p.name + ")"
	waitFor(t, p.name+"'s page to connect", 30*time.Second, func() (bool, string) {
		s := p.status()
		return s == want, fmt.Sprintf("status %q", s)
	})
}

// cursorView is what a page shows of another member's cursor.
type cursorView struct {
	Found   bool    `json:"found"`
	Visible bool    `json:"visible"`
	Label   string  `json:"label"`
	X       float64 `json:"x"` // the arrow's tip, in CSS pixels from the viewport's top left
	Y       float64 `json:"y"`
	W       float64 `json:"w"` // the viewport
	H       float64 `json:"h"`
}

func (p *page) cursor(name string) cursorView {
	var v cursorView
	p.exec(&v, `
var el = document.querySelector('.cursor[data-name="' + CSS.escape(arguments[0]) + '"]');
var v = {found: !!el, visible: false, label: "", x: 0, y: 0, w: innerWidth, h: innerHeight};
if (!el) return v;
var r = el.getBoundingClientRect(), cs = getComputedStyle(el);
var label = el.querySelector(".label");
v.visible = !el.hidden && cs.display !== "none" && cs.visibility !== "hidden" && r.width > 0 && r.height > 0;
v.label = label && label.getBoundingClientRect().width > 0 ? label.textContent : "";
v.x = r.left; v.y = r.top;
return v;`, name)
	return v
}

// moveAndSee moves the real pointer in from to each point (fractions of the window's width and
// height) and waits, after each, until to shows from's cursor there (within 3% of the window).
func moveAndSee(t *testing.T, from, to *page, points [][2]float64) {
	t.Helper()
	for _, pt := range points {
		x, y, fx, fy := from.at(pt)
		from.pointer(moveTo(x, y))
		what := fmt.Sprintf("%s to see %s's cursor at (%.3f, %.3f) of the window", to.name, from.name, fx, fy)
		waitFor(t, what, 10*time.Second, func() (bool, string) {
			c := to.cursor(from.name)
			ok := c.Found && c.Visible && c.Label == from.name &&
				math.Abs(c.X/c.W-fx) <= 0.03 && math.Abs(c.Y/c.H-fy) <= 0.03
			return ok, fmt.Sprintf("%+v", c)
		})
	}
}

// at converts a point given as fractions of the window to CSS pixels in p, and back to the
// fractions that pixel stands for.
func (p *page) at(pt [2]float64) (x, y int, fx, fy float64) {
	var v struct{ W, H float64 }
	p.exec(&v, `return {W: innerWidth, H: innerHeight};`)
	x, y = int(pt[0]*v.W), int(pt[1]*v.H)
	return x, y, float64(x) / v.W, float64(y) / v.H
}

type rippleView struct {
	X    int    `json:"x"` // 0..10000
	Y    int    `json:"y"`
	Name string `json:"name"`
}

func (p *page) ripples() []rippleView {
	var r []rippleView
	p.exec(&r, `return window.__ripples || [];`)
	return r
}

// clickAndSee clicks in from at pt (fractions of the window) and waits until to shows a ripple
// there.
func clickAndSee(t *testing.T, from, to *page, pt [2]float64) {
	t.Helper()
	x, y, fx, fy := from.at(pt)
	before := len(to.ripples())
	from.pointer(moveTo(x, y), press(), release())
	near := func(r rippleView, name string) bool {
		return r.Name == name && math.Abs(float64(r.X)/10000-fx) <= 0.03 && math.Abs(float64(r.Y)/10000-fy) <= 0.03
	}
	waitFor(t, fmt.Sprintf("%s to see %s's click ripple at (%.3f, %.3f)", to.name, from.name, fx, fy), 10*time.Second, func() (bool, string) {
		rs := to.ripples()
		for _, r := range rs[min(before, len(rs)):] {
			if near(r, from.name) {
				return true, ""
			}
		}
		return false, fmt.Sprintf("ripples %+v", rs)
	})
	// The clicking page shows its own ripple too.
	own := from.ripples()
	if len(own) == 0 || !near(own[len(own)-1], from.name) {
		t.Errorf("%s's page did not show its own click ripple: %+v", from.name, own)
	}
}

// liveInstances reads live_instances from the server's /_dowasm/stats.
func liveInstances(server string) (int, error) {
	resp, err := http.Get(server + "/_dowasm/stats")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("GET /_dowasm/stats: %s", resp.Status)
	}
	var stats struct {
		LiveInstances *int `json:"live_instances"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&stats); err != nil {
		return 0, fmt.Errorf("GET /_dowasm/stats: %v", err)
	}
	if stats.LiveInstances == nil {
		return 0, fmt.Errorf("GET /_dowasm/stats: no live_instances")
	}
	return *stats.LiveInstances, nil
}

func TestCursorsTwoPages(t *testing.T) {
	if os.Getenv("DOWASM_SKIP_BROWSER") == "1" {
		t.Skip("DOWASM_SKIP_BROWSER=1")
	}
	browserPrograms(t) // fail early, before building anything, when the browser is missing
	server := startServer(t)
	d := startChromedriver(t)

	const room = "t1"
	a := openPage(t, d, server, room, "ann")
	b := openPage(t, d, server, room, "bob")
	a.waitConnected(t, room)
	b.waitConnected(t, room)

	moveAndSee(t, a, b, [][2]float64{{0.2, 0.15}, {0.5, 0.5}, {0.75, 0.8}})
	moveAndSee(t, b, a, [][2]float64{{0.1, 0.9}, {0.9, 0.1}, {0.42, 0.3}})
	clickAndSee(t, a, b, [2]float64{0.3, 0.35})

	// Both sockets stay open while nobody moves: the room object is evicted (hibernates).
	waitFor(t, "the room object to be evicted (live_instances 0)", 10*time.Second, func() (bool, string) {
		n, err := liveInstances(server)
		if err != nil {
			return false, err.Error()
		}
		return n == 0, fmt.Sprintf("live_instances %d", n)
	})
	for _, p := range []*page{a, b} {
		if s, want := p.status(), "connected (room "+room+" as "+p.name+")"; s != want {
			t.Fatalf("after eviction %s's page shows %q, want %q", p.name, s, want)
		}
		if n := p.connects(); n != 1 {
			t.Fatalf("%s's page connected %d times, want 1 (its socket should survive hibernation)", p.name, n)
		}
	}
	// The evicted room wakes with its sockets when a message arrives.
	moveAndSee(t, a, b, [][2]float64{{0.65, 0.45}, {0.12, 0.6}})
	moveAndSee(t, b, a, [][2]float64{{0.58, 0.85}, {0.33, 0.12}})
	clickAndSee(t, b, a, [2]float64{0.7, 0.55})

	// Closing bob's browser closes its socket: ann's page drops bob's cursor.
	b.close()
	waitFor(t, "ann's page to drop bob's cursor", 10*time.Second, func() (bool, string) {
		c := a.cursor("bob")
		return !c.Found, fmt.Sprintf("%+v", c)
	})
	var members string
	a.exec(&members, `return document.getElementById("members").textContent;`)
	if regexp.MustCompile(`\bbob\b`).MatchString(members) {
		t.Errorf("ann's member list still shows bob: %q", members)
	}
}
