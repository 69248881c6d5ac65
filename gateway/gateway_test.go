package gateway

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dowasm/dowasm/host"
	"github.com/dowasm/dowasm/internal/testutil"
	"github.com/dowasm/dowasm/toolchain"
)

func TestParseRoute(t *testing.T) {
	cases := []struct {
		in   string
		want Route
		err  bool
	}{
		{"/counter/my-counter/increment", Route{Class: "counter", Name: "my-counter", Path: "/increment"}, false},
		{"/counter/my-counter", Route{Class: "counter", Name: "my-counter", Path: "/"}, false},
		{"/counter/my-counter/", Route{Class: "counter", Name: "my-counter", Path: "/"}, false},
		{"/counter/a%20b/x/y", Route{Class: "counter", Name: "a b", Path: "/x/y"}, false},
		{"/counter/id/abcd/x", Route{Class: "counter", IDHex: "abcd", Path: "/x"}, false},
		{"/", Route{}, true},
		{"/counter", Route{}, true},
		{"/counter/", Route{}, true},
		{"/counter/id/", Route{}, true},
		{"/counter/%zz/", Route{}, true},
	}
	for _, c := range cases {
		got, err := ParseRoute(c.in)
		if (err != nil) != c.err || (!c.err && got != c.want) {
			t.Errorf("ParseRoute(%q) = %+v, %v; want %+v, err %v", c.in, got, err, c.want, c.err)
		}
	}
}

func FuzzParseRoute(f *testing.F) {
	f.Add("/counter/x/y")
	f.Add("/c/id/00/")
	f.Fuzz(func(t *testing.T, p string) {
		r, err := ParseRoute(p)
		if err == nil && (r.Class == "" || !strings.HasPrefix(r.Path, "/") || (r.Name == "" && r.IDHex == "")) {
			t.Fatalf("ParseRoute(%q) accepted an incomplete route %+v", p, r)
		}
	})
}

// The gateway in front of a real runtime and the probe guest: errors become the right status
// with a JSON body naming the problem.
func TestGatewayStatuses(t *testing.T) {
	rt := probeRuntime(t, host.Config{MaxQueue: 1}, toolchain.Go)
	g := New(rt, nil)
	g.MaxBodySize = 1024
	srv := httptest.NewServer(g)
	defer srv.Close()
	get := func(method, path, body string) (int, string, http.Header) {
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), resp.Header
	}
	if st, body, _ := get("POST", "/probe/a/incr", ""); st != 200 || body != "1" {
		t.Fatalf("incr: %d %s", st, body)
	}
	st, body, _ := get("POST", "/probe/a/put-then-trap?k=x&v=1", "")
	var e struct{ Error, Class, Object string }
	if st != 500 || json.Unmarshal([]byte(body), &e) != nil || !strings.Contains(e.Error, "trap") || e.Object == "" {
		t.Fatalf("trap: %d %s", st, body)
	}
	if st, _, _ := get("POST", "/probe/a/get?k=x", ""); st != 404 {
		t.Fatal("a trapped event's write is visible")
	}
	if st, body, _ := get("POST", "/probe/a/incr", strings.Repeat("x", 2000)); st != 413 || !strings.Contains(body, "1024") {
		t.Fatalf("oversized body: %d %s", st, body)
	}
	if st, body, _ := get("GET", "/_dowasm/probe/new-id", ""); st != 405 {
		t.Fatalf("new-id with GET: %d %s", st, body)
	}
	if st, _, _ := get("POST", "/_dowasm/nope/new-id", ""); st != 404 {
		t.Fatal("new-id for an unknown class")
	}
	// A queue of 1: while a slow event runs and one waits, a third is refused with 503.
	done := make(chan int, 2)
	for i := 0; i < 2; i++ {
		go func() { st, _, _ := get("POST", "/probe/q/sleep?ms=500", ""); done <- st }()
		time.Sleep(100 * time.Millisecond) // the first one running, then the second one queued
	}
	saw503 := false
	deadline := time.Now().Add(600 * time.Millisecond) // before both slow events are over
	for !saw503 && time.Now().Before(deadline) {
		st, body, h := get("POST", "/probe/q/incr", "")
		if st == 503 {
			saw503 = true
			if h.Get("Retry-After") == "" || !strings.Contains(body, "queued") {
				t.Fatalf("503 without a reason or Retry-After: %s %v", body, h)
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	if a, b := <-done, <-done; a != 200 || b != 200 {
		t.Fatalf("slow requests answered %d and %d, want 200 (one running, one queued)", a, b)
	}
	if !saw503 {
		t.Fatal("a full queue never answered 503")
	}
}

// probeRuntime is a real runtime (closed with the test) with the probe guest, built with kind,
// loaded as class "probe".
func probeRuntime(t *testing.T, cfg host.Config, kind toolchain.Kind) *host.Runtime {
	t.Helper()
	cfg.DataDir = t.TempDir()
	cfg.CacheDir = filepath.Join(os.TempDir(), "dowasm-test-wazero-cache")
	rt, err := host.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Close(context.Background()) })
	p := testutil.GuestPath(t, "tests/guests/probe", kind)
	wasm, _ := os.ReadFile(p)
	if _, err := rt.LoadClass(context.Background(), "probe", p, wasm); err != nil {
		t.Fatal(err)
	}
	return rt
}
