// Package conformance runs one set of behavioural checks against every compiled guest of each
// example: the same HTTP responses, the same stored state, the same answers to bad input, and the
// same behaviour across eviction, restart and a change of language over the same data.
//
// Adding a language is one entry in toolchains.
package conformance

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dowasm/dowasm/gateway"
	"github.com/dowasm/dowasm/host"
	"github.com/dowasm/dowasm/internal/testutil"
	"github.com/dowasm/dowasm/storage"
	"github.com/dowasm/dowasm/toolchain"
)

// toolchains maps each guest toolchain to the directory (under examples/<name>/) of the sources it
// builds. TinyGo builds the same sources as standard Go.
var toolchains = []struct {
	kind toolchain.Kind
	dir  string
}{
	{toolchain.Go, "go"},
	{toolchain.TinyGo, "go"},
	{toolchain.Rust, "rust"},
}

var examples = []string{"counter", "ticket", "ratelimit", "sessions", "shards", "rooms"}

// epoch is where every conformance run's clock starts: the runtime's clock (and so the guests'
// wall clock and alarms) is a manual one, so times in answers are exact and alarms fire when a
// step advances it.
var epoch = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

// at is epoch + d in milliseconds, as text.
func at(d time.Duration) string { return strconv.FormatInt(epoch.Add(d).UnixMilli(), 10) }

// module builds examples/<example>/<dir> with the toolchain (cached by content hash in
// build/guests, shared with `task guests`). A missing toolchain fails the test with the name of
// the task that installs it.
func module(t testing.TB, example string, kind toolchain.Kind, dir string) []byte {
	t.Helper()
	return testutil.Guest(t, "examples/"+example+"/"+dir, kind)
}

// server is one runtime serving one example class over a real loopback socket.
type server struct {
	t     *testing.T
	clock *host.ManualClock
	rt    *host.Runtime
	class *host.Class
	http  *httptest.Server
	data  string
}

// start serves class on a runtime over data whose clock is clock (a new one at epoch if nil).
func start(t *testing.T, data, class string, wasm []byte, idle time.Duration, clock *host.ManualClock) *server {
	t.Helper()
	if clock == nil {
		clock = host.NewManualClock(epoch)
	}
	rt, err := host.New(context.Background(), host.Config{
		DataDir:     data,
		IdleTimeout: idle,
		CacheDir:    filepath.Join(os.TempDir(), "dowasm-test-wazero-cache"),
		Clock:       clock,
	})
	if err != nil {
		t.Fatal(err)
	}
	c, err := rt.LoadClass(context.Background(), class, class, wasm)
	if err != nil {
		rt.Close(context.Background())
		t.Fatal(err)
	}
	s := &server{t: t, clock: clock, rt: rt, class: c, http: httptest.NewServer(gateway.New(rt, nil)), data: data}
	t.Cleanup(s.stop)
	return s
}

func (s *server) stop() {
	if s.http == nil {
		return
	}
	s.http.Close()
	if err := s.rt.Close(context.Background()); err != nil {
		s.t.Errorf("closing the runtime: %v", err)
	}
	s.http = nil
}

// step is one request and what a user relies on in its answer. status and body must match
// exactly (bodyRE instead when the body varies); headers lists response headers that must be
// present with these values.
type step struct {
	method, path string // path after /<class>/<object-name>, with the query
	header       [2]string
	body         string
	status       int
	want         string
	wantRE       string
	headers      map[string]string
	// advance moves the clock forward before the request; alarmRuns is then the number of alarm
	// handler runs (since the runtime started) to wait for before sending it.
	advance   time.Duration
	alarmRuns int64
}

// exchange sends one step and returns the answer in a normal form for comparing toolchains:
// "status\nheaders the guest set\n\nbody", with varying numbers replaced by #.
func (s *server) exchange(object string, st step) string {
	s.t.Helper()
	if st.advance > 0 {
		s.clock.Advance(st.advance)
	}
	for deadline := time.Now().Add(30 * time.Second); s.rt.Stats().AlarmRuns < st.alarmRuns; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			s.t.Fatalf("waiting for alarm run %d: %+v", st.alarmRuns, s.rt.Stats())
		}
	}
	req, err := http.NewRequest(st.method, s.http.URL+"/"+s.class.Name()+"/"+object+st.path, strings.NewReader(st.body))
	if err != nil {
		s.t.Fatal(err)
	}
	if st.header[0] != "" {
		req.Header.Set(st.header[0], st.header[1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatalf("%s %s: %v", st.method, st.path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	what := fmt.Sprintf("%s %s %s", s.class.Name(), st.method, st.path)
	if resp.StatusCode != st.status {
		s.t.Errorf("%s: status %d, want %d (body %q)", what, resp.StatusCode, st.status, b)
	}
	switch {
	case st.wantRE != "":
		if !regexp.MustCompile("^(?:" + st.wantRE + ")$").Match(b) {
			s.t.Errorf("%s: body %q does not match %q", what, b, st.wantRE)
		}
	case string(b) != st.want:
		s.t.Errorf("%s: body %q, want %q", what, b, st.want)
	}
	for k, v := range st.headers {
		if got := resp.Header.Get(k); got != v {
			s.t.Errorf("%s: header %s = %q, want %q", what, k, got, v)
		}
	}
	var hs []string
	for k, vs := range resp.Header {
		switch k {
		case "Date", "Content-Length", "X-Content-Type-Options":
			continue
		}
		hs = append(hs, k+": "+strings.Join(vs, ", "))
	}
	sort.Strings(hs)
	return fmt.Sprintf("%d\n%s\n\n%s", resp.StatusCode, strings.Join(hs, "\n"), normalize(b, st))
}

var digits = regexp.MustCompile(`[0-9]+`)

func normalize(b []byte, st step) string {
	if st.wantRE != "" {
		return digits.ReplaceAllString(string(b), "#")
	}
	return string(b)
}

// run sends the steps to the object in order and returns the transcript. With a short idle
// timeout it waits between steps until the instance was evicted, so every step after the first
// runs on a fresh instance rebuilt from storage.
func (s *server) run(object string, steps []step, evictBetween bool) []string {
	s.t.Helper()
	out := make([]string, len(steps))
	for i, st := range steps {
		out[i] = s.exchange(object, st)
		for evictBetween && s.rt.Stats().LiveInstances > 0 {
			time.Sleep(time.Millisecond)
		}
	}
	if evictBetween {
		if st := s.rt.Stats(); st.Created < int64(len(steps)) {
			s.t.Errorf("%d instances for %d steps: the object was not evicted between steps", st.Created, len(steps))
		}
	}
	return out
}

// dump returns every key and value stored by the named object, as "key=value" lines with
// bytes outside printable ASCII hex-escaped; timestamps can be masked by the caller.
func dump(t *testing.T, data, class, id string, mask func([]byte) []byte) []string {
	t.Helper()
	st, err := storage.Open(storage.Options{Dir: data})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	db, err := st.Acquire(context.Background(), class, id)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Release(db)
	var out []string
	err = db.List(storage.ListOptions{}, func(k, v []byte) error {
		if mask != nil {
			k = mask(k)
		}
		out = append(out, printable(k)+"="+printable(v))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func printable(b []byte) string {
	var sb strings.Builder
	for _, c := range b {
		if c >= 0x20 && c < 0x7f && c != '\\' {
			sb.WriteByte(c)
		} else {
			fmt.Fprintf(&sb, `\x%02x`, c)
		}
	}
	return sb.String()
}

const textPlain = "text/plain; charset=utf-8"

var text = map[string]string{"Content-Type": textPlain}

// script is what one example must do, run against one object.
type script struct {
	steps   []step
	stored  []string                // expected dump after steps
	mask    func(key []byte) []byte // masks the parts of stored keys that vary (timestamps)
	restart []step                  // after a restart over the same data: the state is still there
}

var longHolder = strings.Repeat("x", 1025)

var scripts = map[string]script{
	"counter": {
		steps: []step{
			{method: "GET", path: "/", status: 200, want: "0", headers: text},
			{method: "POST", path: "/increment", status: 200, want: "1", headers: text},
			{method: "POST", path: "/increment", status: 200, want: "2"},
			{method: "POST", path: "/decrement", status: 200, want: "1"},
			{method: "GET", path: "/value", status: 200, want: "1"},
			{method: "HEAD", path: "/", status: 200, want: ""},
			{method: "GET", path: "/increment", status: 405, want: "method not allowed\n", headers: map[string]string{"Allow": "POST", "Content-Type": textPlain}},
			{method: "PUT", path: "/", status: 405, want: "method not allowed\n", headers: map[string]string{"Allow": "GET, HEAD"}},
			{method: "GET", path: "/nope", status: 404, want: "not found: try POST /increment, POST /decrement or GET /\n", headers: text},
			{method: "POST", path: "/increment?x=1", body: "ignored", status: 200, want: "2"},
		},
		stored:  []string{"value=2"},
		restart: []step{{method: "GET", path: "/", status: 200, want: "2"}, {method: "POST", path: "/increment", status: 200, want: "3"}},
	},
	"ticket": {
		steps: []step{
			{method: "GET", path: "/", status: 200, want: "0", headers: text},
			{method: "POST", path: "/claim", header: [2]string{"X-Client", "alice"}, status: 200, want: "1", headers: text},
			{method: "POST", path: "/claim", body: "  bob \n  smith \n", status: 200, want: "2"},
			{method: "POST", path: "/claim", status: 200, want: "3"},
			{method: "POST", path: "/claim", body: longHolder, status: 400, want: "holder longer than 1024 bytes\n", headers: text},
			{method: "GET", path: "/", status: 200, want: "3"},
			{method: "GET", path: "/tickets", status: 200, want: "1 alice\n2 bob smith\n3 anonymous\n", headers: text},
			{method: "GET", path: "/tickets?limit=2", status: 200, want: "1 alice\n2 bob smith\n"},
			{method: "GET", path: "/tickets?after=1&limit=1", status: 200, want: "2 bob smith\n"},
			{method: "GET", path: "/tickets?after=3", status: 200, want: ""},
			{method: "GET", path: "/tickets?limit=0", status: 400, want: "limit must be 1..1000 and after a ticket number\n"},
			{method: "GET", path: "/tickets?limit=1001", status: 400, want: "limit must be 1..1000 and after a ticket number\n"},
			{method: "GET", path: "/tickets?limit=abc", status: 400, want: "limit must be 1..1000 and after a ticket number\n"},
			{method: "GET", path: "/tickets?after=-1", status: 400, want: "limit must be 1..1000 and after a ticket number\n"},
			{method: "GET", path: "/tickets/2", status: 200, want: "bob smith", headers: text},
			{method: "GET", path: "/tickets/9", status: 404, want: "no such ticket\n"},
			{method: "GET", path: "/tickets/0", status: 400, want: "not a ticket number\n"},
			{method: "GET", path: "/tickets/x", status: 400, want: "not a ticket number\n"},
			{method: "GET", path: "/claim", status: 405, want: "method not allowed\n", headers: map[string]string{"Allow": "POST"}},
			{method: "POST", path: "/", status: 405, want: "method not allowed\n", headers: map[string]string{"Allow": "GET"}},
			{method: "POST", path: "/tickets", status: 405, want: "method not allowed\n", headers: map[string]string{"Allow": "GET"}},
			{method: "GET", path: "/other", status: 404, want: "not found: try POST /claim, GET /, GET /tickets or GET /tickets/1\n"},
		},
		stored: []string{
			"next=3",
			"ticket:00000000000000000001=alice",
			"ticket:00000000000000000002=bob smith",
			"ticket:00000000000000000003=anonymous",
		},
		restart: []step{
			{method: "POST", path: "/claim", header: [2]string{"X-Client", "dave"}, status: 200, want: "4"},
			{method: "GET", path: "/tickets?after=2", status: 200, want: "3 anonymous\n4 dave\n"},
		},
	},
	"ratelimit": {
		steps: []step{
			{method: "GET", path: "/status?limit=2&window=60", status: 200, want: `{"allowed":true,"remaining":2}`, headers: map[string]string{"Content-Type": "application/json"}},
			{method: "POST", path: "/hit?limit=2&window=60", status: 200, want: `{"allowed":true,"remaining":1}`, headers: map[string]string{"Content-Type": "application/json"}},
			{method: "GET", path: "/hit?limit=2&window=60", status: 200, want: `{"allowed":true,"remaining":0}`},
			{method: "POST", path: "/hit?limit=2&window=60", status: 429, wantRE: `\{"allowed":false,"remaining":0,"retryAfter":(59|60)\}`, headers: map[string]string{"Content-Type": "application/json"}},
			{method: "GET", path: "/status?limit=2&window=60", status: 200, wantRE: `\{"allowed":false,"remaining":0,"retryAfter":(59|60)\}`},
			{method: "GET", path: "/status?limit=3&window=60", status: 200, want: `{"allowed":true,"remaining":1}`},
			{method: "POST", path: "/hit", status: 200, want: `{"allowed":true,"remaining":7}`},
			{method: "POST", path: "/hit?limit=0", status: 400, want: "limit must be 1..1000 hits and window 1..86400 seconds\n", headers: text},
			{method: "POST", path: "/hit?window=86401", status: 400, want: "limit must be 1..1000 hits and window 1..86400 seconds\n"},
			{method: "POST", path: "/hit?window=1x", status: 400, want: "limit must be 1..1000 hits and window 1..86400 seconds\n"},
			{method: "PUT", path: "/hit", status: 405, want: "method not allowed\n", headers: map[string]string{"Allow": "GET, POST"}},
			{method: "POST", path: "/status", status: 405, want: "method not allowed\n", headers: map[string]string{"Allow": "GET"}},
			{method: "GET", path: "/", status: 404, want: "not found: try POST /hit or GET /status\n"},
		},
		// Three hits: "t:" + 8-byte big-endian milliseconds + 4-byte sequence, empty values.
		stored: []string{"t:#=", "t:#=", "t:#="},
		mask: func(k []byte) []byte {
			if len(k) == 14 && string(k[:2]) == "t:" {
				return []byte("t:#")
			}
			return k
		},
		restart: []step{
			{method: "GET", path: "/status?limit=3&window=60", status: 200, wantRE: `\{"allowed":false,"remaining":0,"retryAfter":(59|60)\}`},
			{method: "GET", path: "/status?limit=5", status: 200, want: `{"allowed":true,"remaining":2}`},
		},
	},
}

func init() {
	nl := "\n"
	allow := func(a string) map[string]string { return map[string]string{"Allow": a, "Content-Type": textPlain} }
	scripts["sessions"] = script{
		steps: []step{
			{method: "GET", path: "/sessions", status: 200, want: "", headers: text},
			{method: "GET", path: "/alarm", status: 200, want: "none\n", headers: text},
			{method: "POST", path: "/sessions?ttl=60", body: "alice", status: 201, want: "1\n", headers: text},
			{method: "POST", path: "/sessions?ttl=30", body: "bob", status: 201, want: "2\n"},
			{method: "POST", path: "/sessions", status: 201, want: "3\n"}, // default ttl 60 s, empty data
			{method: "GET", path: "/alarm", status: 200, want: at(30*time.Second) + nl},
			{method: "GET", path: "/sessions", status: 200, want: "1 " + at(time.Minute) + nl + "2 " + at(30*time.Second) + nl + "3 " + at(time.Minute) + nl},
			{method: "GET", path: "/sessions/1", status: 200, want: "alice", headers: text},
			{method: "GET", path: "/sessions/3", status: 200, want: ""},
			{method: "GET", path: "/sessions/9", status: 404, want: "no such session\n", headers: text},
			{method: "GET", path: "/sessions/01", status: 400, want: "not a session id\n", headers: text},
			{method: "GET", path: "/sessions/0", status: 400, want: "not a session id\n"},
			{method: "GET", path: "/sessions/abc", status: 400, want: "not a session id\n"},
			{method: "GET", path: "/sessions/-1", status: 400, want: "not a session id\n"},
			{method: "POST", path: "/sessions?ttl=0", status: 400, want: "ttl must be 1..86400 seconds\n", headers: text},
			{method: "POST", path: "/sessions?ttl=86401", status: 400, want: "ttl must be 1..86400 seconds\n"},
			{method: "POST", path: "/sessions?ttl=1x", status: 400, want: "ttl must be 1..86400 seconds\n"},
			{method: "POST", path: "/sessions?ttl=10", body: strings.Repeat("d", 1025), status: 400, want: "data longer than 1024 bytes\n"},
			{method: "PUT", path: "/sessions", status: 405, want: "method not allowed\n", headers: allow("GET, POST")},
			{method: "POST", path: "/sessions/1", status: 405, want: "method not allowed\n", headers: allow("GET, DELETE")},
			{method: "DELETE", path: "/alarm", status: 405, want: "method not allowed\n", headers: allow("GET")},
			{method: "GET", path: "/nope", status: 404, want: "not found\n", headers: text},
			// 29.999 s later nothing has expired; at 30 s session 2 expires and the alarm removes
			// it and re-arms for the next expiry.
			{method: "GET", path: "/sessions/2", advance: 29999 * time.Millisecond, status: 200, want: "bob"},
			{method: "GET", path: "/sessions/2", advance: time.Millisecond, alarmRuns: 1, status: 404, want: "no such session\n"},
			{method: "GET", path: "/alarm", status: 200, want: at(time.Minute) + nl},
			{method: "GET", path: "/sessions", status: 200, want: "1 " + at(time.Minute) + nl + "3 " + at(time.Minute) + nl},
			{method: "DELETE", path: "/sessions/3", status: 204, want: ""},
			{method: "DELETE", path: "/sessions/3", status: 404, want: "no such session\n"},
			// a session expiring sooner than the alarm moves the alarm earlier
			{method: "POST", path: "/sessions?ttl=10", body: "carol", status: 201, want: "4\n"},
			{method: "GET", path: "/alarm", status: 200, want: at(40*time.Second) + nl},
			{method: "GET", path: "/sessions", advance: 10 * time.Second, alarmRuns: 2, status: 200, want: "1 " + at(time.Minute) + nl},
			{method: "GET", path: "/alarm", status: 200, want: at(time.Minute) + nl},
		},
		stored: []string{"next=5", "session:00000000000000000001=" + at(time.Minute) + " alice"},
		// After a restart the alarm is still there and fires: the last session goes.
		restart: []step{
			{method: "GET", path: "/sessions/1", status: 200, want: "alice"},
			{method: "GET", path: "/alarm", status: 200, want: at(time.Minute) + nl},
			{method: "GET", path: "/sessions", advance: 20 * time.Second, alarmRuns: 1, status: 200, want: ""},
			{method: "GET", path: "/alarm", status: 200, want: "none\n"},
		},
	}
}

func init() {
	allow := func(a string) map[string]string { return map[string]string{"Allow": a, "Content-Type": textPlain} }
	na := "method not allowed\n"
	// The front "conformance" spreads increments over its shards conformance.shard0..3 (RPC),
	// sums them (RPC) and shows them (fetch to each shard).
	scripts["shards"] = script{
		steps: []step{
			{method: "GET", path: "/total", status: 200, want: "0\n", headers: text},
			{method: "POST", path: "/increment", status: 200, want: "0 1\n", headers: text},
			{method: "POST", path: "/increment", status: 200, want: "1 1\n"},
			{method: "POST", path: "/increment", status: 200, want: "2 1\n"},
			{method: "POST", path: "/increment", status: 200, want: "3 1\n"},
			{method: "POST", path: "/increment", status: 200, want: "0 2\n"},
			{method: "GET", path: "/total", status: 200, want: "5\n"},
			{method: "GET", path: "/shards", status: 200, want: "0 2\n1 1\n2 1\n3 1\n", headers: text},
			{method: "GET", path: "/value", status: 200, want: "0\n"},
			{method: "GET", path: "/increment", status: 405, want: na, headers: allow("POST")},
			{method: "POST", path: "/total", status: 405, want: na, headers: allow("GET")},
			{method: "POST", path: "/shards", status: 405, want: na, headers: allow("GET")},
			{method: "PUT", path: "/value", status: 405, want: na, headers: allow("GET")},
			{method: "GET", path: "/nope", status: 404, want: "not found\n", headers: text},
		},
		stored: []string{"next=5"},
		restart: []step{
			{method: "GET", path: "/total", status: 200, want: "5\n"},
			{method: "POST", path: "/increment", status: 200, want: "1 2\n"},
		},
	}
	// The registry "conformance" and its rooms conformance.room.<room> (RPC join/leave/count).
	scripts["rooms"] = script{
		steps: []step{
			{method: "GET", path: "/rooms", status: 200, want: "", headers: text},
			{method: "POST", path: "/rooms/red/join?member=ann", status: 200, want: "1\n", headers: text},
			{method: "POST", path: "/rooms/red/join?member=bob", status: 200, want: "2\n"},
			{method: "POST", path: "/rooms/blue/join?member=ann", status: 200, want: "1\n"},
			{method: "POST", path: "/rooms/red/join?member=ann", status: 200, want: "2\n"}, // already in
			{method: "GET", path: "/rooms", status: 200, want: "blue 1\nred 2\n"},
			{method: "POST", path: "/rooms/red/leave?member=ann", status: 200, want: "1\n"},
			{method: "POST", path: "/rooms/blue/leave?member=ann", status: 200, want: "0\n"},
			{method: "GET", path: "/rooms", status: 200, want: "red 1\n"},
			{method: "GET", path: "/members", status: 200, want: ""},
			{method: "POST", path: "/rooms/Red/join?member=x", status: 400, want: "bad room name\n", headers: text},
			{method: "POST", path: "/rooms/" + strings.Repeat("r", 65) + "/join?member=x", status: 400, want: "bad room name\n"},
			{method: "POST", path: "/rooms/red/join?member=A", status: 400, want: "bad member name\n"},
			{method: "POST", path: "/rooms/red/join", status: 400, want: "bad member name\n"},
			{method: "GET", path: "/rooms/red/join?member=x", status: 405, want: na, headers: allow("POST")},
			{method: "POST", path: "/rooms", status: 405, want: na, headers: allow("GET")},
			{method: "POST", path: "/members", status: 405, want: na, headers: allow("GET")},
			{method: "GET", path: "/nope", status: 404, want: "not found\n", headers: text},
		},
		stored: []string{"room:red="},
		restart: []step{
			{method: "GET", path: "/rooms", status: 200, want: "red 1\n"},
		},
	}
}

// TestExamplesConform runs each example's script against every toolchain's build, with the
// default idle timeout and with a 1 ms one (the instance is evicted between most requests), then
// restarts the runtime over the same data, then compares every build's transcript and stored
// state with the first build's.
func TestExamplesConform(t *testing.T) {
	for _, ex := range examples {
		t.Run(ex, func(t *testing.T) {
			sc := scripts[ex]
			type result struct {
				transcript []string
				stored     []string
			}
			var first *result
			var firstKind toolchain.Kind
			for _, tc := range toolchains {
				t.Run(string(tc.kind), func(t *testing.T) {
					wasm := module(t, ex, tc.kind, tc.dir)
					for _, idle := range []time.Duration{10 * time.Second, time.Millisecond} {
						t.Run(fmt.Sprintf("idle=%s", idle), func(t *testing.T) {
							data := t.TempDir()
							clock := host.NewManualClock(epoch)
							s := start(t, data, ex, wasm, idle, clock)
							obj := "conformance"
							id := s.class.Namespace().FromName(obj).String()
							res := &result{transcript: s.run(obj, sc.steps, idle < time.Second)}
							s.stop()
							res.stored = dump(t, data, ex, id, sc.mask)
							if strings.Join(res.stored, "\n") != strings.Join(sc.stored, "\n") {
								t.Errorf("stored state:\n%s\nwant:\n%s", strings.Join(res.stored, "\n"), strings.Join(sc.stored, "\n"))
							}
							// A restart over the same data finds the state.
							s = start(t, data, ex, wasm, idle, clock)
							if len(sc.restart) > 0 {
								res.transcript = append(res.transcript, s.run(obj, sc.restart, idle < time.Second)...)
							}
							s.stop()
							if first == nil {
								first, firstKind = res, tc.kind
								return
							}
							for i := range res.transcript {
								if i < len(first.transcript) && res.transcript[i] != first.transcript[i] {
									t.Errorf("step %d differs from the %s build:\n%s\n--- %s build:\n%s", i, firstKind, res.transcript[i], firstKind, first.transcript[i])
								}
							}
						})
					}
				})
			}
		})
	}
}

// TestLanguagesShareState: an object's data written by one language's build is read and
// continued by every other's, in a chain over the same data directory (Go writes, TinyGo
// continues, Rust continues, ...). A user can change the language of a class without migrating
// its data.
func TestLanguagesShareState(t *testing.T) {
	data := t.TempDir()
	total := 0
	claimed := 0
	for round := 0; round < 2; round++ {
		for _, tc := range toolchains {
			s := start(t, data, "counter", module(t, "counter", tc.kind, tc.dir), time.Second, nil)
			total++
			s.exchange("shared", step{method: "POST", path: "/increment", status: 200, want: strconv.Itoa(total)})
			s.stop()

			s = start(t, data, "ticket", module(t, "ticket", tc.kind, tc.dir), time.Second, nil)
			claimed++
			s.exchange("shared", step{method: "POST", path: "/claim", header: [2]string{"X-Client", string(tc.kind)}, status: 200, want: strconv.Itoa(claimed)})
			var want strings.Builder
			for i := 0; i < claimed; i++ {
				fmt.Fprintf(&want, "%d %s\n", i+1, toolchains[i%len(toolchains)].kind)
			}
			s.exchange("shared", step{method: "GET", path: "/tickets", status: 200, want: want.String()})
			s.stop()
		}
	}
}

// TestConcurrentClientsEveryLanguage: 200 concurrent claims on one ticket object give exactly
// 1..200 in every language (one instance, one event at a time, whatever the guest).
func TestConcurrentClientsEveryLanguage(t *testing.T) {
	for _, tc := range toolchains {
		t.Run(string(tc.kind), func(t *testing.T) {
			s := start(t, t.TempDir(), "ticket", module(t, "ticket", tc.kind, tc.dir), time.Millisecond, nil)
			const n = 200
			got := make(chan int, n)
			for i := 0; i < n; i++ {
				go func() {
					resp, err := http.Post(s.http.URL+"/ticket/c/claim", "text/plain", nil)
					if err != nil {
						got <- -1
						return
					}
					b, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					v, err := strconv.Atoi(string(b))
					if err != nil || resp.StatusCode != 200 {
						v = -1
					}
					got <- v
				}()
			}
			seen := make([]bool, n+1)
			for i := 0; i < n; i++ {
				v := <-got
				if v < 1 || v > n || seen[v] {
					t.Fatalf("claim answered %d (duplicate, out of range or failed)", v)
				}
				seen[v] = true
			}
		})
	}
}
