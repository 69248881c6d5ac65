package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/dowasm/dowasm/host"
	"github.com/dowasm/dowasm/internal/testutil"
	"github.com/dowasm/dowasm/toolchain"
)

// WebSocket tests against a real runtime serving the chat example (TinyGo build: its instances
// start in ~0.1 ms, so tests can evict and wake rooms many times) over real sockets.

type wsEnv struct {
	rt  *host.Runtime
	srv *httptest.Server
	url string // ws://127.0.0.1:port
}

func newWSEnv(t *testing.T, cfg host.Config) *wsEnv {
	t.Helper()
	cfg.DataDir = t.TempDir()
	cfg.CacheDir = filepath.Join(os.TempDir(), "dowasm-test-wazero-cache")
	rt, err := host.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rt.LoadClass(context.Background(), "chat", "examples/chat/go", testutil.Guest(t, "examples/chat/go", toolchain.TinyGo)); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(New(rt, nil))
	e := &wsEnv{rt: rt, srv: srv, url: "ws" + strings.TrimPrefix(srv.URL, "http")}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		rt.Close(ctx)
		srv.Close()
	})
	return e
}

// client is a chat member whose received messages are collected by a reader goroutine.
type client struct {
	t    *testing.T
	name string
	conn *websocket.Conn
	mu   sync.Mutex
	msgs []chatMsg
	cond *sync.Cond
	end  error // why reading stopped
}

type chatMsg struct {
	Type    string   `json:"type"`
	Name    string   `json:"name"`
	Text    string   `json:"text"`
	Seq     int64    `json:"seq"`
	Members []string `json:"members"`
	Error   string   `json:"error"`
	raw     string
}

func (e *wsEnv) join(t *testing.T, room, name string) *client {
	t.Helper()
	c, err := e.dial(room, name)
	if err != nil {
		t.Fatalf("join %s as %s: %v", room, name, err)
	}
	c.t = t
	go c.read()
	c.waitFor(func(m chatMsg) bool { return m.Type == "welcome" }, "welcome")
	return c
}

func (e *wsEnv) dial(room, name string) (*client, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, _, err := websocket.Dial(ctx, e.url+"/chat/"+room+"/ws?name="+name, nil)
	if err != nil {
		return nil, err
	}
	conn.SetReadLimit(4 << 20)
	c := &client{name: name, conn: conn}
	c.cond = sync.NewCond(&c.mu)
	return c, nil
}

func (c *client) read() {
	for {
		typ, b, err := c.conn.Read(context.Background())
		c.mu.Lock()
		if err != nil {
			c.end = err
			c.cond.Broadcast()
			c.mu.Unlock()
			return
		}
		m := chatMsg{raw: string(b)}
		if typ == websocket.MessageText && strings.HasPrefix(m.raw, "{") {
			if jerr := json.Unmarshal(b, &m); jerr != nil {
				m.Type = "invalid JSON: " + jerr.Error()
			}
		}
		c.msgs = append(c.msgs, m)
		c.cond.Broadcast()
		c.mu.Unlock()
	}
}

// waitFor waits until some received message satisfies ok (at most 30 s).
func (c *client) waitFor(ok func(chatMsg) bool, what string) chatMsg {
	c.t.Helper()
	return c.waitCount(ok, 1, what)
}

// waitCount waits until n received messages satisfy ok and returns the last of them.
func (c *client) waitCount(ok func(chatMsg) bool, n int, what string) chatMsg {
	c.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	timer := time.AfterFunc(30*time.Second, func() { c.mu.Lock(); c.cond.Broadcast(); c.mu.Unlock() })
	defer timer.Stop()
	c.mu.Lock()
	defer c.mu.Unlock()
	for {
		found, last := 0, chatMsg{}
		for _, m := range c.msgs {
			if ok(m) {
				found++
				last = m
			}
		}
		if found >= n {
			return last
		}
		if c.end != nil || time.Now().After(deadline) {
			c.t.Fatalf("%s waited for %d× %s, got %d (connection: %v); received %d messages", c.name, n, what, found, c.end, len(c.msgs))
		}
		c.cond.Wait()
	}
}

func (c *client) count(ok func(chatMsg) bool) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, m := range c.msgs {
		if ok(m) {
			n++
		}
	}
	return n
}

func (c *client) send(text string) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.conn.Write(ctx, websocket.MessageText, []byte(text)); err != nil {
		c.t.Fatalf("%s send: %v", c.name, err)
	}
}

// waitEvicted waits until no instance is live (the room hibernates, its sockets still open).
func (e *wsEnv) waitEvicted(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for e.rt.Stats().LiveInstances != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the room was not evicted: %+v", e.rt.Stats())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func isType(typ string) func(chatMsg) bool { return func(m chatMsg) bool { return m.Type == typ } }

// 50 members in one room each send messages in rounds, with the room evicted between rounds:
// every message reaches every other member exactly once, in the sender's order, numbered by the
// room's committed counter without gaps.
func TestChatFiftyClientsAcrossHibernation(t *testing.T) {
	e := newWSEnv(t, host.Config{IdleTimeout: 30 * time.Millisecond})
	const n, rounds, perRound = 50, 4, 3
	clients := make([]*client, n)
	for i := range clients {
		clients[i] = e.join(t, "lobby", fmt.Sprintf("m%02d", i))
	}
	// Each member saw the others join after it (welcome lists the earlier ones).
	for i, c := range clients {
		c.waitCount(isType("join"), n-1-i, "join notices")
		c.mu.Lock()
		if got := len(c.msgs[0].Members); got != i {
			t.Errorf("%s's welcome lists %d members, want %d", c.name, got, i)
		}
		c.mu.Unlock()
	}
	created0 := e.rt.Stats().Created
	for r := 0; r < rounds; r++ {
		e.waitEvicted(t)
		if ws := e.rt.Stats().WebSockets; ws != n {
			t.Fatalf("round %d: %d sockets open while hibernating, want %d", r, ws, n)
		}
		var wg sync.WaitGroup
		for i, c := range clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for k := 0; k < perRound; k++ {
					c.send(fmt.Sprintf("m%02d/%d", i, r*perRound+k))
				}
			}()
		}
		wg.Wait()
		for _, c := range clients {
			c.waitCount(isType("message"), (r+1)*perRound*(n-1), "messages")
		}
	}
	if woke := e.rt.Stats().Created - created0; woke < rounds {
		t.Errorf("the room woke %d times, want at least %d (once per round)", woke, rounds)
	}
	total := int64(n * rounds * perRound)
	seen := map[int64]int{}
	for i, c := range clients {
		c.mu.Lock()
		next := map[string]int{}
		lastSeq := int64(0)
		for _, m := range c.msgs {
			if m.Type != "message" {
				continue
			}
			if m.Name == c.name {
				t.Errorf("%s received its own message %q", c.name, m.raw)
			}
			var k int
			if _, err := fmt.Sscanf(m.Text, m.Name+"/%d", &k); err != nil || k != next[m.Name] {
				t.Errorf("%s: from %s got %q, want %s/%d next (per-sender order)", c.name, m.Name, m.Text, m.Name, next[m.Name])
			}
			next[m.Name] = k + 1
			if m.Seq <= lastSeq || m.Seq > total {
				t.Errorf("%s: seq %d after %d (max %d)", c.name, m.Seq, lastSeq, total)
			}
			lastSeq = m.Seq
			seen[m.Seq]++
		}
		c.mu.Unlock()
		if len(next) != n-1 {
			t.Errorf("member %d heard from %d others, want %d", i, len(next), n-1)
		}
	}
	// Every seq 1..total was assigned once and delivered to the n-1 others.
	for s := int64(1); s <= total; s++ {
		if seen[s] != n-1 {
			t.Fatalf("seq %d delivered %d times, want %d", s, seen[s], n-1)
		}
	}
	if st := e.rt.Stats(); st.MaxLivePerID > 1 {
		t.Errorf("two instances of the room were alive at once: %+v", st)
	}
}

// Every way a client can go away produces exactly one close event (the others get one leave
// notice): a clean close, an abrupt TCP close, and a half-open client that stops answering pings.
func TestCloseEventExactlyOnce(t *testing.T) {
	e := newWSEnv(t, host.Config{IdleTimeout: 20 * time.Millisecond, WSPingInterval: 200 * time.Millisecond})
	watcher := e.join(t, "r", "watcher")
	clean := e.join(t, "r", "clean")
	abrupt := e.join(t, "r", "abrupt")
	halfOpen := e.rawJoin(t, "r", "halfopen")
	watcher.waitCount(isType("join"), 3, "joins")

	clean.conn.Close(websocket.StatusNormalClosure, "bye")
	watcher.waitFor(func(m chatMsg) bool { return m.Type == "leave" && m.Name == "clean" }, "clean's leave")

	// Closing the TCP connection without a close frame.
	abrupt.conn.CloseNow()
	watcher.waitFor(func(m chatMsg) bool { return m.Type == "leave" && m.Name == "abrupt" }, "abrupt's leave")

	// The half-open client never answers the host's pings (it never reads); it is detected.
	watcher.waitFor(func(m chatMsg) bool { return m.Type == "leave" && m.Name == "halfopen" }, "halfopen's leave")
	halfOpen.Close()

	// A later message from the watcher's side makes sure no duplicate notice is still queued
	// before it: events are delivered in order, and the room processes them one at a time.
	other := e.join(t, "r", "late")
	watcher.waitFor(func(m chatMsg) bool { return m.Type == "join" && m.Name == "late" }, "late's join")
	time.Sleep(500 * time.Millisecond) // more than two ping intervals: time for a duplicate to show
	watcher.send("still here")
	other.waitFor(isType("message"), "the watcher's message")
	for _, name := range []string{"clean", "abrupt", "halfopen"} {
		if got := watcher.count(func(m chatMsg) bool { return m.Type == "leave" && m.Name == name }); got != 1 {
			t.Errorf("%s produced %d leave notices, want exactly 1", name, got)
		}
	}
	_ = other
	if ws := e.rt.Stats().WebSockets; ws != 2 {
		t.Errorf("%d sockets open, want 2 (watcher and late)", ws)
	}
}

// rawJoin performs the WebSocket handshake on a bare TCP connection and then never reads or
// writes again: a client whose machine vanished (half-open TCP).
func (e *wsEnv) rawJoin(t *testing.T, room, name string) net.Conn {
	t.Helper()
	addr := strings.TrimPrefix(e.srv.URL, "http://")
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(conn, "GET /chat/%s/ws?name=%s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n", room, name, addr)
	buf := make([]byte, 4096)
	conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	n, err := conn.Read(buf)
	if err != nil || !strings.HasPrefix(string(buf[:n]), "HTTP/1.1 101") {
		t.Fatalf("raw handshake: %v %q", err, buf[:n])
	}
	return conn
}

// A client that does not read is disconnected once its send buffer overflows (close 1008 when it
// finally reads, and one leave notice), while the others keep receiving everything.
func TestSlowConsumerDisconnected(t *testing.T) {
	e := newWSEnv(t, host.Config{WSSendBuffer: 256 << 10})
	watcher := e.join(t, "r", "watcher")
	talker := e.join(t, "r", "talker")
	slow, err := e.dial("r", "slow") // never reads
	if err != nil {
		t.Fatal(err)
	}
	slow.t = t
	watcher.waitCount(isType("join"), 2, "joins")
	// 400 messages of 32 KiB = 12.5 MiB: far more than the loopback's socket buffers plus the
	// 256 KiB send buffer.
	big := strings.Repeat("x", 32<<10)
	const msgs = 400
	for i := 0; i < msgs; i++ {
		talker.send(fmt.Sprintf("%d %s", i, big))
	}
	watcher.waitFor(func(m chatMsg) bool { return m.Type == "leave" && m.Name == "slow" }, "the slow consumer's leave")
	watcher.waitCount(isType("message"), msgs, "all messages")
	go slow.read()
	slow.mu.Lock()
	for slow.end == nil {
		slow.cond.Wait()
	}
	end := slow.end
	slow.mu.Unlock()
	if st := websocket.CloseStatus(end); st != websocket.StatusPolicyViolation && !isConnReset(end) {
		t.Errorf("slow consumer ended with %v, want close 1008 (or a reset connection)", end)
	}
	t.Logf("slow consumer received %d messages before being cut off: %v", len(slow.msgs), end)
	if got := watcher.count(func(m chatMsg) bool { return m.Type == "leave" && m.Name == "slow" }); got != 1 {
		t.Errorf("%d leave notices for the slow consumer, want 1", got)
	}
}

func isConnReset(err error) bool {
	return err != nil && (errors.Is(err, net.ErrClosed) || strings.Contains(err.Error(), "reset") || strings.Contains(err.Error(), "EOF"))
}

// Pings from the host and the auto-response never wake a hibernated room; the auto-response
// time is recorded per socket.
func TestAutoResponseAndPingsDoNotWake(t *testing.T) {
	e := newWSEnv(t, host.Config{IdleTimeout: 20 * time.Millisecond, WSPingInterval: 20 * time.Millisecond})
	a := e.join(t, "r", "a")
	e.waitEvicted(t)
	created := e.rt.Stats().Created
	for i := 0; i < 20; i++ {
		a.send("ping")
	}
	a.waitCount(func(m chatMsg) bool { return m.raw == "pong" }, 20, "pongs")
	time.Sleep(100 * time.Millisecond) // several ping intervals of the host
	if got := e.rt.Stats().Created; got != created {
		t.Errorf("auto-responses or pings woke the room: %d instances created, want %d", got, created)
	}
	if st := e.rt.Stats(); st.LiveInstances != 0 || st.WebSockets != 1 {
		t.Errorf("stats %+v: want no live instance and 1 socket", st)
	}
}

// Limits: sockets per object, message size; refused upgrades get the guest's own answer.
func TestWebSocketLimitsAndRefusals(t *testing.T) {
	e := newWSEnv(t, host.Config{WSMaxSockets: 2, WSMaxMessage: 1024})
	a := e.join(t, "r", "a")
	e.join(t, "r", "b")
	if _, err := e.dial("r", "c"); err == nil || !strings.Contains(err.Error(), "500") {
		t.Errorf("third socket of a 2-socket object: %v, want a 500 (LIMIT_EXCEEDED)", err)
	}
	if _, err := e.dial("other", strings.Repeat("n", 33)); err == nil || !strings.Contains(err.Error(), "400") {
		t.Errorf("too long a name: %v, want 400", err)
	}
	resp, err := http.Get(e.srv.URL + "/chat/r/ws")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 426 {
		t.Errorf("GET /ws without upgrade: %d, want 426", resp.StatusCode)
	}
	// A message over the limit: the host closes with 1009 and the others hear that a left.
	b := e.join(t, "other", "b")
	big := e.join(t, "other", "big")
	big.send(strings.Repeat("x", 2000))
	b.waitFor(func(m chatMsg) bool { return m.Type == "leave" && m.Name == "big" }, "big's leave")
	big.mu.Lock()
	for big.end == nil {
		big.cond.Wait()
	}
	big.mu.Unlock()
	if st := websocket.CloseStatus(big.end); st != websocket.StatusMessageTooBig {
		t.Errorf("oversized message: connection ended with %v, want 1009", big.end)
	}
	_ = a
}

// Shutdown closes every socket with 1001 (going away).
func TestShutdownClosesSocketsGoingAway(t *testing.T) {
	e := newWSEnv(t, host.Config{})
	a := e.join(t, "r", "a")
	b := e.join(t, "r2", "b")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := e.rt.Close(ctx); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*client{a, b} {
		c.mu.Lock()
		for c.end == nil {
			c.cond.Wait()
		}
		c.mu.Unlock()
		if st := websocket.CloseStatus(c.end); st != websocket.StatusGoingAway {
			t.Errorf("%s: %v, want close 1001", c.name, c.end)
		}
	}
}

// dialRaw connects to path on e's server; messages are collected raw.
func (e *wsEnv) dialRaw(t *testing.T, path string) *client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, _, err := websocket.Dial(ctx, e.url+path, nil)
	if err != nil {
		t.Fatalf("dial %s: %v", path, err)
	}
	c := &client{t: t, name: path, conn: conn}
	c.cond = sync.NewCond(&c.mu)
	go c.read()
	return c
}

// expect waits for the next message after the n already checked and compares it.
func (c *client) expect(n *int, want string) {
	c.t.Helper()
	*n++
	got := c.waitCount(func(chatMsg) bool { return true }, *n, strconv.Quote(want))
	c.mu.Lock()
	got = c.msgs[*n-1]
	c.mu.Unlock()
	if got.raw != want {
		c.t.Errorf("%s: message %d is %q, want %q", c.name, *n, got.raw, want)
	}
}

// The WebSocket ABI through the Go SDK (wsprobe guest): tags, listing, attachments, the output
// gate of a failing handler, closing, refusals, and auto-response times, across hibernation.
func TestWebSocketABIThroughSDK(t *testing.T) {
	e := newWSEnv(t, host.Config{IdleTimeout: 20 * time.Millisecond})
	if _, err := e.rt.LoadClass(context.Background(), "wsprobe", "tests/guests/wsprobe", testutil.Guest(t, "tests/guests/wsprobe", toolchain.TinyGo)); err != nil {
		t.Fatal(err)
	}
	a := e.dialRaw(t, "/wsprobe/o/ws?tags=red,blue")
	na := 0
	a.expect(&na, "welcome 1")
	b := e.dialRaw(t, "/wsprobe/o/ws?tags=blue")
	nb := 0
	b.expect(&nb, "welcome 2")

	say := func(c *client, n *int, msg, want string) {
		t.Helper()
		c.send(msg)
		c.expect(n, want)
	}
	say(a, &na, "tags", "tags=red,blue")
	say(a, &na, "list:blue", "list=1,2")
	say(a, &na, "list:red", "list=1")
	say(a, &na, "list:", "list=1,2")
	say(a, &na, "list:green", "list=")
	say(a, &na, "att:alice", "att=alice")
	e.waitEvicted(t)
	say(a, &na, "get", "att=alice") // the attachment survived hibernation
	say(b, &nb, "get", "att=")

	// A failing handler's sends, attachment change and storage writes are all dropped.
	say(a, &na, "count", "count=1")
	a.send("fail:leaked")
	say(a, &na, "get", "att=alice")
	say(a, &na, "count", "count=2")

	// Messages to everyone, in order, released after the commit.
	say(a, &na, "all:x", "x")
	b.expect(&nb, "x")
	say(a, &na, "accept", "accept: dowasm: ws_accept: NOT_ALLOWED")
	say(a, &na, "big:2000000", "dowasm: ws_send: VALUE_TOO_LARGE")

	// The auto-response never wakes the object and records its time.
	say(a, &na, "autotime", "autotime=none")
	e.waitEvicted(t)
	created := e.rt.Stats().Created
	say(a, &na, "ping", "pong")
	if e.rt.Stats().Created != created {
		t.Error("the auto-response woke the object")
	}
	a.send("autotime")
	na++
	m := a.waitCount(func(chatMsg) bool { return true }, na, "autotime")
	a.mu.Lock()
	m = a.msgs[na-1]
	a.mu.Unlock()
	if ms, err := strconv.ParseInt(strings.TrimPrefix(m.raw, "autotime="), 10, 64); err != nil || time.Since(time.UnixMilli(ms)) > time.Minute || time.Since(time.UnixMilli(ms)) < 0 {
		t.Errorf("autotime answer %q: want a recent time in ms", m.raw)
	}

	// Closing by the object: the client sees its code; no close event reaches the object.
	b.send("close")
	b.mu.Lock()
	for b.end == nil {
		b.cond.Wait()
	}
	b.mu.Unlock()
	if st := websocket.CloseStatus(b.end); st != 4000 {
		t.Errorf("closed by the object: %v, want 4000", b.end)
	}
	say(a, &na, "list:", "list=1")
	a.send("send-after-close")
	a.mu.Lock()
	for a.end == nil {
		a.cond.Wait()
	}
	a.mu.Unlock()
	if st := websocket.CloseStatus(a.end); st != 4001 {
		t.Errorf("close then send: %v, want close 4001 (and the send refused)", a.end)
	}

	// A failed upgrade event leaves no socket behind; accepting a plain request is refused.
	if _, _, err := websocket.Dial(context.Background(), e.url+"/wsprobe/o/ws-fail", nil); err == nil || !strings.Contains(err.Error(), "500") {
		t.Errorf("upgrade whose handler failed: %v, want 500", err)
	}
	resp, err := http.Get(e.srv.URL + "/wsprobe/o/accept-plain")
	if err != nil {
		t.Fatal(err)
	}
	body := make([]byte, 200)
	n, _ := resp.Body.Read(body)
	resp.Body.Close()
	if string(body[:n]) != "dowasm: ws_accept: NOT_ALLOWED" {
		t.Errorf("accepting a plain request: %q", body[:n])
	}
	for deadline := time.Now().Add(30 * time.Second); e.rt.Stats().WebSockets != 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("sockets left open: %+v", e.rt.Stats())
		}
	}
	// Bad tags are refused by the SDK before the host sees them.
	if _, _, err := websocket.Dial(context.Background(), e.url+"/wsprobe/o/ws?tags="+strings.Repeat("t", 257), nil); err == nil || !strings.Contains(err.Error(), "400") {
		t.Errorf("a 257-byte tag: %v, want 400", err)
	}
}
