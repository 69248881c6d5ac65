package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dowasm/dowasm/host"
	"github.com/dowasm/dowasm/internal/testutil"
	"github.com/dowasm/dowasm/toolchain"
)

// FuzzGateway sends random methods, raw paths (malformed escapes included), headers and bodies
// through the real Gateway in front of a runtime serving the probe guest, and checks that it never
// panics, answers only the statuses it documents (or the probe guest's own), and that its own
// error bodies are valid JSON naming the error.
//
//	go test -run '^$' -fuzz '^FuzzGateway$' -fuzztime 60s ./gateway/

// gatewayStatuses are the statuses a request can get: the gateway's own (200 stats/new-id, 400 bad
// ID or body, 404 route or class, 405 admin method, 413 body, 500 event failure, 503 overloaded),
// and the probe guest's answers (200, 204, 404, 500).
var gatewayStatuses = map[int]bool{200: true, 204: true, 400: true, 404: true, 405: true, 413: true, 500: true, 503: true}

// jsonOnly are statuses only the gateway itself produces: their bodies must be its JSON errors.
var jsonOnly = map[int]bool{400: true, 405: true, 413: true, 503: true}

func newFuzzGateway(f *testing.F) *Gateway {
	rt, err := host.New(context.Background(), host.Config{
		DataDir:      f.TempDir(),
		CacheDir:     filepath.Join(os.TempDir(), "dowasm-test-wazero-cache"),
		EventTimeout: 2 * time.Second, // the probe's /loop and /sleep end quickly
		IdleTimeout:  time.Second,     // random names make many objects: evict them early
		MaxInstances: 16,
	})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { rt.Close(context.Background()) })
	p := testutil.GuestPath(f, "tests/guests/probe", toolchain.Go)
	wasm, err := os.ReadFile(p)
	if err != nil {
		f.Fatal(err)
	}
	if _, err := rt.LoadClass(context.Background(), "probe", p, wasm); err != nil {
		f.Fatal(err)
	}
	g := New(rt, nil)
	g.MaxBodySize = 4096
	return g
}

// fuzzURL builds the request URL as a server would (url.ParseRequestURI); a target no server
// would accept is still given to the handler, as the raw path, the way a handler wrapping the
// gateway (a mux that rewrites paths) could.
func fuzzURL(raw string) *url.URL {
	if u, err := url.ParseRequestURI(raw); err == nil {
		return u
	}
	if p, err := url.PathUnescape(raw); err == nil {
		return &url.URL{Path: p, RawPath: raw}
	}
	return &url.URL{Path: raw}
}

func FuzzGateway(f *testing.F) {
	g := newFuzzGateway(f)
	probe := g.rt.Class("probe")
	good := probe.Namespace().FromName("x").String()
	f.Add("POST", "/probe/a/incr", "", []byte(nil))
	f.Add("GET", "/probe/a/get?k=n", "Accept: */*\nX-A: 1\nX-A: 2", []byte(nil))
	f.Add("PUT", "/probe/a%20b/put?k=k&v=v", "Content-Type: text/plain", []byte("body"))
	f.Add("GET", "/probe/id/"+good+"/name", "", []byte(nil))
	f.Add("GET", "/probe/id/"+strings.Repeat("0", 64)+"/id", "", []byte(nil))
	f.Add("GET", "/probe/id/XYZ/", "", []byte(nil))
	f.Add("GET", "/probe/%zz/get", "", []byte(nil))
	f.Add("GET", "/probe/a%2Fb/%zz", "", []byte(nil))
	f.Add("GET", "/probe/a/../../etc", "", []byte(nil))
	f.Add("GET", "/nope/a/", "", []byte(nil))
	f.Add("GET", "/", "", []byte(nil))
	f.Add("GET", "//probe/a", "", []byte(nil))
	f.Add("POST", "/probe/a/incr", "", bytes.Repeat([]byte("x"), 5000))
	f.Add("POST", "/_dowasm/probe/new-id", "", []byte(nil))
	f.Add("GET", "/_dowasm/probe/new-id", "", []byte(nil))
	f.Add("POST", "/_dowasm/nope/new-id", "", []byte(nil))
	f.Add("GET", "/_dowasm/stats", "", []byte(nil))
	f.Add("DELETE", "/_dowasm/stats", "", []byte(nil))
	f.Add("GET", "/_dowasm/", "", []byte(nil))
	f.Add("GET", "/probe/ws/x", "Upgrade: websocket\nConnection: Upgrade\nSec-WebSocket-Version: 13\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==", []byte(nil))
	f.Add("POST", "/probe/a/put-then-trap?k=x&v=1", "", []byte(nil))
	f.Add("POST", "/probe/a/put-then-error?k=x&v=1", "", []byte(nil))
	f.Add("POST", "/probe/a/bad-response", "", []byte(nil))
	f.Add("POST", "/probe/a/call-fetch?name=b&p=/incr", "", []byte(nil))
	f.Add("POST", "/probe/a/call-rpc?name=a&method=incr", "", []byte(nil))
	f.Add("\x00", "/probe/\xff/\x00?\xff", "X: \xff", []byte{0xff})
	f.Fuzz(func(t *testing.T, method, rawPath, headers string, body []byte) {
		// Statistics and new IDs are fine; only the events of /loop-like probes are slow, and
		// /limits writes 4 MiB: skip the probes that only cost time.
		for _, slow := range []string{"/loop", "/sleep", "/limits", "/garbage", "/call-many", "/call-seq", "/call-chain"} {
			if strings.Contains(rawPath, slow) {
				return
			}
		}
		h := http.Header{}
		for _, line := range strings.Split(headers, "\n") {
			if name, value, ok := strings.Cut(line, ":"); ok {
				h.Add(name, strings.TrimSpace(value))
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		r := (&http.Request{
			Method:     method,
			URL:        fuzzURL(rawPath),
			RequestURI: rawPath,
			Proto:      "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
			Header:        h,
			Body:          io.NopCloser(bytes.NewReader(body)),
			ContentLength: int64(len(body)),
			Host:          "example.com",
			RemoteAddr:    "192.0.2.1:1234",
		}).WithContext(ctx)
		w := httptest.NewRecorder()
		g.ServeHTTP(w, r)
		res := w.Result()
		b, _ := io.ReadAll(res.Body)
		if testing.Verbose() {
			t.Logf("%q %q -> %d %q", method, rawPath, res.StatusCode, b)
		}
		if !gatewayStatuses[res.StatusCode] {
			t.Fatalf("%q %q: status %d, not one the gateway documents; body %q", method, rawPath, res.StatusCode, b)
		}
		isJSON := res.Header.Get("Content-Type") == "application/json"
		if jsonOnly[res.StatusCode] && !isJSON {
			t.Fatalf("%q %q: status %d without a JSON body: %q", method, rawPath, res.StatusCode, b)
		}
		if !isJSON {
			return
		}
		if !json.Valid(b) {
			t.Fatalf("%q %q: status %d with invalid JSON %q", method, rawPath, res.StatusCode, b)
		}
		if res.StatusCode >= 400 {
			var e struct {
				Error string `json:"error"`
			}
			if err := json.Unmarshal(b, &e); err != nil || e.Error == "" {
				t.Fatalf("%q %q: status %d with a JSON body naming no error: %q", method, rawPath, res.StatusCode, b)
			}
		}
	})
}
